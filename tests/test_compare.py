"""``fastopt compare``: every optimizer against the Newton optimum, and its command line."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from fastopt.comparison import COMPARE_OPTIMIZERS, compare, plot_loss_curves

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def short():
    return compare(epochs=10, progress=False)


def test_a_row_per_optimizer_with_newton_at_the_optimum(short):
    assert [row["optimizer"] for row in short.rows] == list(COMPARE_OPTIMIZERS)
    assert set(short.results) == set(COMPARE_OPTIMIZERS)
    gaps = {row["optimizer"]: row["gap"] for row in short.rows}
    assert all(gap >= -1e-9 for gap in gaps.values()), gaps
    assert abs(gaps["newton"]) < 1e-6
    assert short.optimum > 0
    assert all(0.9 < row["accuracy"] <= 1.0 for row in short.rows[:-1] if row["epochs"] > 0)
    assert short.rows[-1]["updates_to_target"] is not None
    text = short.to_text()
    assert all(name in text for name in COMPARE_OPTIMIZERS)
    table = short.table()
    assert len(table) == len(COMPARE_OPTIMIZERS)


def test_adam_gets_close_with_enough_epochs():
    result = compare(optimizers=["adam"], epochs=200, progress=False)
    assert 0 <= result.rows[0]["gap"] < 1e-2  # 5e-4 here; a few epochs give 1e-1


def test_linear_regression_on_given_data_reports_r2():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(300)
    result = compare(X, y, model="linear", optimizers=["sgd", "adam", "newton"], epochs=30,
                     alpha=0.0, penalty=None, progress=False)
    assert [row["optimizer"] for row in result.rows] == ["sgd", "adam", "newton"]
    assert all(row["r2"] > 0.9 and row["gap"] >= -1e-9 for row in result.rows)


def test_unknown_optimizer_is_a_value_error():
    with pytest.raises(ValueError, match="bogus"):
        compare(optimizers=["adam", "bogus"])


def test_plot_writes_a_png(short, tmp_path):
    pytest.importorskip("matplotlib")
    path = plot_loss_curves(short, tmp_path / "curves.png")
    with open(path, "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


def run(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "fastopt", *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)


def test_cli_default_run_prints_every_optimizer(tmp_path):
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in COMPARE_OPTIMIZERS)
    assert "fastopt-compare.png" in done.stdout or "pip install 'fastopt[plot]'" in done.stdout


def test_cli_json(tmp_path):
    done = run(tmp_path, "compare", "--json", "--epochs", "3", "--optimizers", "adam,newton",
               "--out", str(tmp_path / "plots"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [row["optimizer"] for row in report["rows"]] == ["adam", "newton"]
    assert math.isfinite(report["optimum"])


def test_cli_csv_data_and_bad_arguments(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3))
    label = np.where(X @ [1.0, -2.0, 0.5] + rng.logistic(size=200) > 0, "yes", "no")
    lines = ["a,b,c,label"] + [f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(X, label)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    done = run(tmp_path, "--data", "data.csv", "--target", "label", "--epochs", "5", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "logistic regression on data.csv" in done.stdout and "newton" in done.stdout

    for args, message in [(("--optimizers", "bogus"), "bogus"),
                          (("--data", "data.csv", "--target", "nope"), "nope"),
                          (("--data", "missing.csv", "--target", "label"), "missing.csv"),
                          (("--data", "data.csv", "--target", "a"), "label")]:
        done = run(tmp_path, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and message in done.stderr, done.stderr
