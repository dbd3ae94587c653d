"""Optimizer paths on the two-parameter surface (fastopt.optimizer_paths, plot.paths,
`fastopt paths`): the paths are the optimizers' own updates on the exact gradient."""

import json
import subprocess
import sys

import numpy as np
import pytest

import fastopt as fo
from fastopt.paths import PATH_OPTIMIZERS, optimizer_paths, path_problem


@pytest.fixture(scope="module")
def result():
    return optimizer_paths(updates=60)


def reference_path(x, y, optimizer, updates):
    """The same path by hand: the gradient of ½·mean((w·x + b - y)²) in NumPy and the
    NumPy-reference optimizer step."""
    params = np.zeros(2)
    state = optimizer.init(params)
    points = [params.copy()]
    for _ in range(updates):
        residual = params[0] * x + params[1] - y
        grad = np.array([np.mean(residual * x), np.mean(residual)])
        optimizer.step(params, grad, state, backend="numpy")
        points.append(params.copy())
    return np.array(points)


@pytest.mark.parametrize("name", ["gd", "momentum", "adam", "rmsprop"])
def test_paths_equal_the_reference_optimizer_on_the_exact_gradient(result, name):
    from fastopt.comparison import COMPARE_OPTIMIZERS
    kind, hyper, _, _ = COMPARE_OPTIMIZERS[name]
    for surface in result.surfaces.values():
        optimizer = fo.make_optimizer(kind, lr=surface.learning_rates[name], **hyper)
        expected = reference_path(surface.x, surface.y, optimizer, 60)
        np.testing.assert_allclose(surface.paths[name], expected, rtol=1e-9, atol=1e-12)


def test_scaling_turns_a_narrow_valley_into_a_round_bowl(result):
    raw, standardized = result.surfaces["raw"], result.surfaces["standardized"]
    assert raw.condition_number > 50
    assert standardized.condition_number == pytest.approx(1.0)
    x, _ = path_problem()
    np.testing.assert_allclose(standardized.x, (x - x.mean()) / x.std())
    # The lesson of the picture: the same rule (lr = 0.5 / L) crawls on the raw surface and
    # converges on the standardized one.
    assert raw.gap("gd")[-1] > 1e-2 * raw.gap("gd")[0]
    assert standardized.gap("gd")[-1] < 1e-12 * standardized.gap("gd")[0]
    for surface in (raw, standardized):
        assert set(surface.paths) == set(PATH_OPTIMIZERS)
        for path in surface.paths.values():
            assert path.shape == (61, 2) and np.all(path[0] == 0)
        # The optimum is the least-squares solution and has the smallest loss.
        design = np.column_stack([surface.x, np.ones_like(surface.x)])
        np.testing.assert_allclose(surface.optimum,
                                   np.linalg.lstsq(design, surface.y, rcond=None)[0])
        assert all(np.all(surface.gap(name) >= 0) for name in surface.paths)


def test_newton_reaches_the_optimum_in_one_update():
    result = optimizer_paths(["newton"], updates=3)
    for surface in result.surfaces.values():
        np.testing.assert_allclose(surface.paths["newton"][1], surface.optimum, rtol=1e-10)


def test_a_diverging_rate_is_reported_not_raised():
    result = optimizer_paths(["gd", "adam"], updates=200, lrs={"gd": 10.0})
    raw = result.surfaces["raw"]
    assert "gd" in raw.errors and "gd" not in raw.paths and "adam" in raw.paths
    rows = [row for row in result.rows() if row["optimizer"] == "gd"]
    assert any("error" in row for row in rows)


def test_bad_arguments():
    with pytest.raises(ValueError, match="'sgd'"):
        optimizer_paths(["sgd"])
    with pytest.raises(ValueError, match="updates"):
        optimizer_paths(updates=0)


def test_plot_draws_every_path_on_the_contours(result):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from fastopt import plot

    fig, ax = plt.subplots()
    try:
        plot.paths(result, ax, surface="standardized")
        lines = {line.get_label(): line for line in ax.get_lines()}
        surface = result.surfaces["standardized"]
        for name in PATH_OPTIMIZERS:
            label = next(key for key in lines if key.startswith(name + " "))
            np.testing.assert_array_equal(lines[label].get_xdata(), surface.paths[name][:, 0])
            np.testing.assert_array_equal(lines[label].get_ydata(), surface.paths[name][:, 1])
        assert {"start", "optimum"} <= set(lines)
        assert len(ax.collections) > 0  # the contours
        assert ax.get_xlabel() == "weight w" and ax.get_ylabel() == "bias b"
        low, high = ax.get_xlim()
        assert low < surface.optimum[0] < high
    finally:
        plt.close(fig)


def test_cli_paths(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fastopt", "paths", "--updates", "30",
                           "--out", str(tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "condition number" in done.stdout
    assert all(name in done.stdout for name in PATH_OPTIMIZERS)
    image = pytest.importorskip("matplotlib.image")
    assert image.imread(tmp_path / "fastopt-paths.png").shape[:2] == (770, 1430)

    done = subprocess.run([sys.executable, "-m", "fastopt", "paths", "--json", "--optimizers",
                           "gd,newton", "--updates", "5"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    rows = json.loads(done.stdout)
    assert sorted((row["surface"], row["optimizer"]) for row in rows) == [
        ("raw", "gd"), ("raw", "newton"), ("standardized", "gd"), ("standardized", "newton")]

    for args in (["--optimizers", "sgd"], ["--optimizers", "bogus"], ["--updates", "0"]):
        bad = subprocess.run([sys.executable, "-m", "fastopt", "paths", *args],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr


def test_the_view_holds_every_path_and_the_legend_hides_none(result):
    """Momentum overshoots far past the optimum on the standardized surface: the whole of its
    path is in the frame, and the legend sits outside the panel."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from fastopt import plot

    for name, surface in result.surfaces.items():
        fig, ax = plt.subplots(figsize=(6, 6.5), constrained_layout=True)
        try:
            plot.paths(result, ax, surface=name)
            fig.canvas.draw()
            (x_low, x_high), (y_low, y_high) = ax.get_xlim(), ax.get_ylim()
            for path in surface.paths.values():
                assert np.all((x_low <= path[:, 0]) & (path[:, 0] <= x_high)), name
                assert np.all((y_low <= path[:, 1]) & (path[:, 1] <= y_high)), name
            assert not ax.get_legend().get_window_extent().overlaps(ax.get_window_extent())
            colors = [line.get_color() for line in ax.get_lines()[:len(surface.paths)]]
            assert len(set(colors)) == len(surface.paths)
        finally:
            plt.close(fig)
