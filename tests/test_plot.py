"""fastopt.plot and `fastopt schedules`: what is drawn is what the library computes."""

import subprocess
import sys

import numpy as np
import pytest

import fastopt as fo
from fastopt.comparison import compare

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fastopt import plot  # noqa: E402


@pytest.fixture
def ax():
    fig, axes = plt.subplots()
    yield axes
    plt.close(fig)


def test_schedules_draws_each_schedule_as_computed(ax):
    plot.schedules(ax, lr=0.2, total_steps=300, names=["cosine", "warmup_cosine"])
    assert [line.get_label() for line in ax.get_lines()] == ["cosine", "warmup_cosine"]
    for line in ax.get_lines():
        expected = fo.make_schedule(line.get_label(), 0.2, 300)(np.arange(300))
        np.testing.assert_array_equal(line.get_ydata(), expected)


def test_loss_curves_draws_the_gap_of_every_fit(ax):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    y = X @ rng.standard_normal(4) + 0.1 * rng.standard_normal(120)
    result = compare(X, y, model="linear", optimizers=["adam", "newton"], epochs=5, progress=False)
    plot.loss_curves(result, ax, x="seconds")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"adam", "newton", "target gap"}
    np.testing.assert_allclose(lines["adam"].get_ydata(),
                               np.maximum(result.curves["adam"]["gap"], plot.GAP_FLOOR))
    np.testing.assert_array_equal(lines["target gap"].get_ydata(), [1e-2, 1e-2])
    # The view spans adam's curve and the target; Newton's 1e-16 runs off the bottom.
    bottom, top = ax.get_ylim()
    assert bottom <= min(result.curves["adam"]["gap"].min(), 1e-2) / 10 * (1 + 1e-12)
    assert bottom > 1e-12 and top > result.curves["adam"]["gap"].max()
    with pytest.raises(ValueError, match="'updates' or 'seconds'"):
        plot.loss_curves(result, ax, x="epochs")


def test_loss_curves_mark_a_diverged_fit(ax):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 3)) * [1.0, 1.0, 50.0]
    y = X @ [1.0, 2.0, 0.1]
    result = compare(X, y, model="linear", optimizers=["adam", "sgd"], lr=50.0, epochs=3,
                     standardize=False, progress=False)
    rows = {row["optimizer"]: row for row in result.rows}
    assert rows["adam"]["diverged"] and rows["sgd"]["diverged"], rows
    assert "diverged" in result.to_text()
    plot.loss_curves(result, ax)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "adam (diverged)" in labels
    assert all(line.get_linestyle() == ":" for line in ax.get_lines()
               if "diverged" in line.get_label())


def test_cli_schedules_prints_a_table_and_writes_the_picture(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fastopt", "schedules", "--steps", "100",
                           "--out", str(tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in fo.SCHEDULES)
    assert (tmp_path / "fastopt-schedules.png").read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run([sys.executable, "-m", "fastopt", "schedules", "--steps", "1"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_lr_sweep_marks_the_rates_that_diverge(ax):
    from fastopt.comparison import lr_sweep

    rng = np.random.default_rng(1)
    X = rng.standard_normal((150, 3))
    y = X @ np.ones(3) + 0.1 * rng.standard_normal(150)
    sweep = lr_sweep(X, y, model="linear", optimizer="sgd", lrs=(0.01, 0.1, 50.0), epochs=5,
                     progress=False, standardize=False)
    assert sweep.diverged() == [50.0]
    gaps = [run.rows[0]["gap"] for run in sweep.runs.values()]
    assert gaps[1] < gaps[0]  # a larger, stable rate gets closer in the same epochs
    plot.lr_sweep(sweep, ax)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["lr=0.01", "lr=0.1", "lr=50 (diverged)"]
    with pytest.raises(ValueError, match="first-order optimizer"):
        lr_sweep(X, y, model="linear", optimizer="newton")


def test_cli_lr_sweep(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fastopt", "lr-sweep", "--epochs", "3",
                           "--lrs", "0.01,1,1000", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "diverged" in done.stdout and (tmp_path / "fastopt-lr-sweep.png").exists()
    bad = subprocess.run([sys.executable, "-m", "fastopt", "lr-sweep", "--lrs", "x"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
