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


def comparison_of_every_optimizer():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((80, 3))
    y = (X @ [1.0, -1.0, 0.5] + rng.logistic(size=80) > 0).astype(int)
    return compare(X, y, model="logistic", epochs=3, progress=False)


def test_loss_curves_give_each_of_the_fifteen_fits_its_own_colour_and_a_legend(ax):
    from matplotlib.colors import to_rgba

    result = comparison_of_every_optimizer()
    assert len(result.curves) == 15
    plot.loss_curves(result, ax)
    fits = [line for line in ax.get_lines() if line.get_label() != "target gap"]
    assert [line.get_label() for line in fits] == list(result.curves)
    assert len({to_rgba(line.get_color()) for line in fits}) == 15
    # Dashes mean the target gap only; every (converged) fit is solid.
    assert all(line.get_linestyle() == "-" for line in fits)
    target = next(line for line in ax.get_lines() if line.get_label() == "target gap")
    assert target.get_linestyle() == "--"
    legend = ax.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == list(result.curves) + [
        "target gap"]
    bare = plot.loss_curves(result, legend=False)
    assert bare.get_legend() is None
    plt.close(bare.figure)


def test_a_fit_at_the_optimum_stays_in_the_picture(ax):
    """A gap of exactly 0 (or below the view) is drawn on the floor of the view, marked."""
    from fastopt.comparison import ComparisonResult

    updates = np.arange(1, 6)
    curves = {"sgd": {"updates": updates, "seconds": 0.1 * updates,
                      "gap": np.array([1.0, 0.3, 0.1, 0.05, 0.03])},
              "newton": {"updates": updates, "seconds": 0.2 * updates,
                         "gap": np.array([0.5, 0.0, 0.0, 0.0, 0.0])}}
    rows = [{"optimizer": name, "diverged": False} for name in curves]
    result = ComparisonResult("linear", 1.0, rows=rows, curves=curves,
                              settings={"target_gap": 1e-2, "initial_loss": 3.0})
    plot.loss_curves(result, ax)
    bottom, top = ax.get_ylim()
    lines = {line.get_label(): line for line in ax.get_lines()}
    newton = lines["newton"].get_ydata()
    assert np.all((bottom < newton) & (newton < top))
    assert newton[0] == 0.5 and np.all(newton[1:] == newton[1]) and newton[1] < 1e-2
    assert lines["newton"].get_marker() == "v" and lines["newton"].get_markevery() == [1]
    np.testing.assert_array_equal(lines["sgd"].get_ydata(), curves["sgd"]["gap"])
    assert lines["sgd"].get_marker() in (None, "None", "")


def test_cli_schedules_shows_the_linear_warm_up(tmp_path, monkeypatch):
    """`linear` rises over 5 of 1000 updates and then equals `constant`: one panel of the
    picture zooms in so that its rise takes a visible part of the width."""
    from matplotlib.figure import Figure

    from fastopt.__main__ import main

    saved = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig",
                        lambda fig, *args, **kwargs: (saved.append(fig),
                                                      savefig(fig, *args, **kwargs))[1])
    assert main(["schedules", "--out", str(tmp_path)]) == 0
    [fig] = saved
    visible = []
    for panel in fig.axes:
        lines = {line.get_label(): line for line in panel.get_lines()}
        rises = lines["linear"].get_ydata() != lines["constant"].get_ydata()
        visible.append(rises.mean())
        assert len({line.get_color() for line in lines.values()}) == len(lines)
    assert max(visible) >= 0.04, visible
    assert sum(panel.get_legend() is not None for panel in fig.axes) == 1
