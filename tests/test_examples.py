"""The scripts in examples/ run, write their picture and show what they say they show."""

import runpy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(path.stem for path in EXAMPLES.glob("*.py"))


def run_example(name, out_dir):
    namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"))  # not as __main__: no run yet
    try:
        returned = namespace["main"](out_dir)
    finally:
        plt.close("all")
    picture = Path(out_dir) / f"{name}.png"
    assert matplotlib.image.imread(picture).ndim == 3
    return returned


def test_every_example_is_tested():
    assert set(SCRIPTS) == set(CHECKS), "add a check for the new example below"


def check_gd_vs_sgd(result):
    gd, sgd = result.curves["gd"], result.curves["sgd"]
    assert sgd["gap"][-1] < gd["gap"][-1]  # per pass over the data, SGD is ahead
    first = np.flatnonzero(sgd["updates"] >= gd["updates"][-1])[0]
    assert gd["gap"][-1] < sgd["gap"][first]  # per update, gradient descent is


def check_classic_optimizers(result):
    rows = {row["optimizer"]: row for row in result.rows}
    assert list(rows) == ["sgd", "momentum", "rmsprop", "adam"]
    assert rows["adam"]["gap"] < rows["sgd"]["gap"] and rows["momentum"]["gap"] < rows["sgd"]["gap"]


def check_learning_rates(returned):
    sweep, largest = returned
    small, right, large = sorted(sweep.runs)
    assert sweep.diverged() == [large] and large * largest > 2  # beyond 2 / L
    assert sweep.runs[right].rows[0]["gap"] < sweep.runs[small].rows[0]["gap"]


def check_feature_scaling_paths(result):
    raw, scaled = result.surfaces["raw"], result.surfaces["standardized"]
    for name in ("gd", "rmsprop", "adam"):
        assert scaled.gap(name)[-1] < raw.gap(name)[-1]


def check_warmup_cosine(runs):
    assert runs["warm-up + cosine"].rows[0]["gap"] < 0.5 * runs["constant"].rows[0]["gap"]


CHECKS = {"gd_vs_sgd": check_gd_vs_sgd, "classic_optimizers": check_classic_optimizers,
          "learning_rates": check_learning_rates,
          "feature_scaling_paths": check_feature_scaling_paths,
          "warmup_cosine": check_warmup_cosine}


@pytest.mark.parametrize("name", SCRIPTS)
def test_example(name, tmp_path):
    CHECKS[name](run_example(name, tmp_path))
