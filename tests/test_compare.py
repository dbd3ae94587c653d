"""``fastopt compare``: every optimizer against the Newton optimum, and its command line."""

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from fastopt.comparison import COMPARE_OPTIMIZERS, compare, lr_sweep, plot_loss_curves

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


def test_full_batch_solvers_count_passes_over_x_to_the_target():
    """L-BFGS and Newton-CG sit beside Newton; their "updates" are passes over X (the
    history's steps: objective evaluations and Hessian-vector products), not iterations."""
    result = compare(optimizers=["lbfgs", "newton-cg", "newton", "gd"], epochs=100,
                     target_gap=1e-6, progress=False)
    rows = {row["optimizer"]: row for row in result.rows}
    assert list(rows) == ["lbfgs", "newton-cg", "newton", "gd"]
    assert [rows[name]["counts"] for name in rows] == ["passes", "passes", "iterations",
                                                       "updates"]
    for name in ("lbfgs", "newton-cg"):
        row, history = rows[name], result.results[name].history
        assert row["lr"] is None and row["batch_size"] is None
        assert 0 <= row["gap"] < 1e-12 and not row["diverged"]
        hit = int(np.flatnonzero(result.curves[name]["gap"] <= 1e-6)[0])
        assert row["updates_to_target"] == history["steps"][hit]
        assert row["seconds_to_target"] == pytest.approx(sum(history["seconds"][:hit + 1]))
        # Every iteration takes at least one pass (Newton-CG: its products too), and the
        # solver stops at the optimum instead of spending all 100 epochs there.
        assert row["updates_to_target"] > hit + 1
        assert row["epochs"] < 100 and row["updates"] == history["steps"][-1]
    assert rows["newton"]["updates_to_target"] <= rows["newton"]["epochs"]  # iterations
    assert rows["gd"]["updates_to_target"] is None  # 100 full-batch steps: far from 1e-6
    text = result.to_text()
    assert "steps to gap" in text and "passes over X for lbfgs and newton-cg" in text
    from fastopt.comparison import STEP_UNITS
    assert set(STEP_UNITS) == {"lbfgs", "newton-cg", "newton", "saga"}


def test_solvers_run_on_when_newton_cannot_give_the_optimum(monkeypatch):
    # Too many parameters for Newton: the optimum is the best fit's loss, found afterwards,
    # so no solver can be stopped "at the optimum" while it runs.
    monkeypatch.setattr("fastopt.newton.MAX_PARAMS", 10)
    result = compare(optimizers=["lbfgs", "adam"], epochs=20, progress=False)
    assert result.settings["optimum_source"] == "best fit"
    row = result.rows[0]
    assert row["epochs"] == 20 and row["gap"] == 0.0 and row["updates"] > 20


def test_lr_sweep_refuses_the_solvers_without_a_learning_rate():
    for name in ("lbfgs", "newton-cg", "newton"):
        with pytest.raises(ValueError, match="first-order optimizer"):
            lr_sweep(optimizer=name, lrs=(0.1,))


def test_every_optimizer_has_a_colour_of_its_own():
    from fastopt.plot import COLORS
    assert len({COLORS[name] for name in COMPARE_OPTIMIZERS}) == len(COMPARE_OPTIMIZERS)


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
    start = time.perf_counter()
    done = run(tmp_path)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert elapsed < 60  # the bound for the default run on the 2-core CI machine
    assert all(name in done.stdout for name in COMPARE_OPTIMIZERS)
    assert done.stderr == ""  # no terminal: no progress bars
    if "pip install 'fastopt[plot]'" not in done.stdout:
        assert "fastopt-compare.png" in done.stdout
        image = pytest.importorskip("matplotlib.image")
        assert image.imread(tmp_path / "fastopt-compare.png").shape[:2] == (495, 1320)


def test_cli_json(tmp_path):
    done = run(tmp_path, "compare", "--json", "--epochs", "3", "--optimizers", "adam,newton",
               "--out", str(tmp_path / "plots"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [row["optimizer"] for row in report["rows"]] == ["adam", "newton"]
    assert math.isfinite(report["optimum"])
    done = run(tmp_path, "compare", "--json", "--epochs", "2", "--out", str(tmp_path / "plots"))
    assert [row["optimizer"] for row in json.loads(done.stdout)["rows"]] == list(
        COMPARE_OPTIMIZERS)


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
                          (("--data", "missing.csv", "--target", "label"), "missing.csv")]:
        done = run(tmp_path, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and message in done.stderr, done.stderr
    # The text column is a feature when another column is the target: one-hot encoded.
    done = run(tmp_path, "--data", "data.csv", "--target", "a", "--epochs", "1", "--json",
               "--optimizers", "newton")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["features"] == ["b", "c", "label=no", "label=yes"]
    assert "'label' (2 values) one-hot encoded" in done.stderr


def test_progress_bar_per_fit(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    import fastopt.comparison as comparison
    monkeypatch.setattr(comparison, "PROGRESS_DELAY", 0.0)
    compare(optimizers=["sgd", "adam"], epochs=4, progress=True)
    err = capsys.readouterr().err
    assert "sgd:" in err and "adam:" in err and "/4 " in err  # bars, removed when done
    compare(optimizers=["sgd"], epochs=4, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_without_tqdm_is_one_line_per_fit(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    compare(optimizers=["sgd", "adam"], epochs=2, progress=True)
    assert capsys.readouterr().err.splitlines() == ["fastopt compare: sgd (2 epochs)",
                                                    "fastopt compare: adam (2 epochs)"]


PROGRESS_IN_A_TERMINAL = """
import sys
import fastopt.comparison
from fastopt.__main__ import main
fastopt.comparison.PROGRESS_DELAY = 0.0
sys.exit(main(["compare", "--optimizers", "sgd", "--epochs", "7", "--out", sys.argv[1]]
              + sys.argv[2:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("quiet", [False, True])
def test_cli_shows_progress_only_in_a_terminal_and_not_with_quiet(tmp_path, quiet):
    pytest.importorskip("tqdm")
    import fcntl
    import os
    import pty
    import struct
    import termios

    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    command = [sys.executable, "-c", PROGRESS_IN_A_TERMINAL, str(tmp_path)]
    child = subprocess.Popen(command + (["--quiet"] if quiet else []), stderr=terminal,
                             stdout=subprocess.DEVNULL, cwd=tmp_path)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert child.wait(timeout=120) == 0
    assert (b"/7 " in seen) is not quiet, seen


def test_dataframes_keep_their_feature_names():
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    rng = np.random.default_rng(2)
    X = rng.standard_normal((150, 3))
    y = X @ [1.0, -1.0, 2.0] + 0.1 * rng.standard_normal(150)
    results = {}
    for kind, frame, target in (("numpy", X, y),
                                ("pandas", pd.DataFrame(X, columns=["a", "b", "c"]),
                                 pd.Series(y)),
                                ("polars", pl.DataFrame(X, schema=["a", "b", "c"]),
                                 pl.Series(y))):
        results[kind] = compare(frame, target, model="linear", optimizers=["adam", "newton"],
                                epochs=3, progress=False)
    assert results["numpy"].settings["feature_names"] is None
    for kind in ("pandas", "polars"):
        assert results[kind].settings["feature_names"] == ["a", "b", "c"]
        fitted = results[kind].results["adam"]
        assert list(fitted.feature_names_in_) == ["a", "b", "c"]
        np.testing.assert_array_equal(fitted.coef_, results["numpy"].results["adam"].coef_)


def test_cli_reads_parquet(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.standard_normal((120, 2)), columns=["u", "v"])
    frame["price"] = 3 * frame["u"] - frame["v"] + 0.1 * rng.standard_normal(120)
    frame.to_parquet(tmp_path / "data.parquet")
    done = run(tmp_path, "--data", "data.parquet", "--target", "price", "--epochs", "3",
               "--optimizers", "sgd,newton", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model"] == "linear" and report["features"] == ["u", "v"]
    assert [row["optimizer"] for row in report["rows"]] == ["sgd", "newton"]
    assert report["rows"][1]["r2"] > 0.95


def test_cli_every_option_reaches_the_fits(tmp_path):
    """Each option of ``fastopt compare`` changes what runs: the JSON report repeats the
    settings, and its numbers equal ``compare()`` called with the same arguments."""
    args = dict(model="linear", optimizers=["sgd", "adam", "newton"], epochs=3, batch_size=64,
                lr=0.02, schedule="cosine", backend="numpy", standardize=False, seed=5,
                alpha=0.0, penalty=None, target_gap=0.5)
    done = run(tmp_path, "compare", "--json", "--quiet", "--model", "linear",
               "--optimizers", "sgd,adam,newton", "--epochs", "3", "--batch-size", "64",
               "--lr", "0.02", "--schedule", "cosine", "--backend", "numpy",
               "--no-standardize", "--seed", "5", "--alpha", "0", "--target-gap", "0.5",
               "--out", "plots")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["settings"] == {
        **report["settings"], "backend": "numpy", "epochs": 3, "batch_size": 64, "lr": 0.02,
        "schedule": "cosine", "standardize": False, "penalty": None, "alpha": 0.0,
        "random_state": 5, "target_gap": 0.5}
    assert [(row["optimizer"], row["lr"], row["batch_size"]) for row in report["rows"]] == [
        ("sgd", 0.02, 64), ("adam", 0.02, 64), ("newton", None, None)]
    expected = compare(**args, progress=False)
    for got, want in zip(report["rows"], expected.rows):
        if want["diverged"]:
            assert got["diverged"]
        else:
            assert got["final_loss"] == want["final_loss"], (got, want)
    if report["plot"] is not None:
        assert report["plot"] == "plots/fastopt-compare.png"
        assert (tmp_path / "plots" / "fastopt-compare.png").read_bytes()[:4] == b"\x89PNG"
    # The seed and the scaling are not ignored.
    for change in (dict(seed=6), dict(standardize=True), dict(schedule=None),
                   dict(batch_size=32)):
        other = compare(**{**args, **change, "optimizers": ["adam"]}, progress=False)
        assert other.rows[0]["final_loss"] != expected.rows[1]["final_loss"], change


def test_cli_bad_option_values_exit_with_code_2(tmp_path):
    for args, message in [(("--epochs", "0"), "--epochs"), (("--batch-size", "-1"), "--epochs"),
                          (("--lr", "-1"), "learning rate"), (("--lr", "abc"), "--lr"),
                          (("--schedule", "bogus"), "--schedule"),
                          (("--model", "tree"), "--model"), (("--target", "x"), "--data")]:
        done = run(tmp_path, "compare", "--epochs", "1", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and message in done.stderr, (args, done.stderr)


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("sparse", [False, True])
def test_table_scores_equal_scikit_learn_metrics_over_several_row_blocks(model, sparse):
    # _scores sums over blocks of SCORE_ROWS rows: more rows than one block, an uneven last one.
    import scipy.sparse as sp
    from sklearn.metrics import accuracy_score, r2_score

    import fastopt
    from fastopt.comparison import SCORE_ROWS, _scores

    rng = np.random.default_rng(3)
    n = 2 * SCORE_ROWS + 123
    X = rng.standard_normal((n, 6))
    if model == "linear":
        y = X @ rng.standard_normal(6) + rng.standard_normal(n)
    else:
        classes = 2 if model == "logistic" else 3
        y = np.array(["a", "b", "c"])[:classes][rng.integers(0, classes, n)]
    data = sp.csr_matrix(X) if sparse else X
    results = [fastopt.fit(data, y, model=model, optimizer="adam", lr=lr, epochs=1, tol=None,
                           random_state=0) for lr in (1e-3, 1e-2)]
    values = _scores(model, results, data, y)
    for result, value in zip(results, values):
        expected = (r2_score(y, result.predict(X)) if model == "linear"
                    else accuracy_score(y, result.predict(X)))
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_curves_wait_for_at_most_the_memory_of_x():
    """The exact losses of fits trained together are taken 64 parameter vectors a pass over X,
    but the vectors waiting never take more memory than X: with 10 classes on 30 rows of 50
    features (510 parameters, more than a third of X's 1500 numbers), two at a time; the
    curves are those of separate fits all the same."""
    from fastopt import _backends
    from fastopt.comparison import _ExactLosses
    from fastopt.engine import prepare

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 50))
    y = np.arange(30) % 10
    backend = _backends.resolve("cpp")
    problem, _ = prepare(X, y, model="softmax", penalty="l2", alpha=1e-3, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, backend=backend)
    exact = _ExactLosses(backend, backend.dataset(problem), problem)
    assert exact.group == 2  # 1500 numbers of X, 510 parameters a vector
    big = rng.standard_normal((4000, 20))
    problem, _ = prepare(big, big[:, 0] > 0, model="logistic", penalty="l2", alpha=1e-3,
                         l1_ratio=0.15, fit_intercept=True, sample_weight=None, backend=backend)
    assert _ExactLosses(backend, backend.dataset(problem), problem).group == 64
    together = compare(X, y, model="softmax", optimizers=["adam", "sgd"], epochs=3,
                       progress=False, together=True)
    separate = compare(X, y, model="softmax", optimizers=["adam", "sgd"], epochs=3,
                       progress=False, together=False)
    for name in ("adam", "sgd"):
        np.testing.assert_array_equal(together.curves[name]["loss"],
                                      separate.curves[name]["loss"])
