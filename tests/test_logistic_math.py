"""The logistic loss's own exp and log1p (csrc/include/fastopt/models.hpp, mirrored in the
Numba backend): within an ulp of NumPy's, and the same bits in C++ (scalar and four-lane) and
Numba."""

import numpy as np
import pytest

from fastopt import _backends
from fastopt._backends import numba_jit as nb
from fastopt.engine import prepare
import backend_calls  # noqa: E402


def ulps(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a.view(np.int64) - b.view(np.int64))


EXP_EDGES = [0.0, -0.0, -5e-324, -1e-300, -1e-17, -0.34657359, -0.34657360, -1.0, -708.39,
             -708.4, -709.0, -740.0, -745.13, -745.14, -746.0, -750.0, -800.0, -np.inf]


def test_exp_is_within_an_ulp_of_numpy():
    rng = np.random.default_rng(0)
    x = np.concatenate([-rng.exponential(5.0, 20_000), -rng.uniform(0.0, 760.0, 20_000),
                        EXP_EDGES])
    got = np.array([nb._exp_nonpositive(v) for v in x])
    assert ulps(got, np.exp(x)).max() <= 1
    assert np.isnan(nb._exp_nonpositive(np.nan))


def test_log1p_is_within_an_ulp_of_numpy():
    rng = np.random.default_rng(1)
    e = np.concatenate([rng.uniform(0.0, 1.0, 20_000), np.exp(-rng.exponential(30.0, 20_000)),
                        [0.0, 5e-324, 1e-300, 2.0**-60, 2.0**-53, 1e-16, np.sqrt(2) - 1,
                         np.nextafter(np.sqrt(2) - 1, 0), np.nextafter(np.sqrt(2) - 1, 1), 1.0]])
    got = np.array([nb._log1p_unit(v) for v in e])
    assert ulps(got, np.log1p(e)).max() <= 1
    assert np.isnan(nb._log1p_unit(np.nan))


@pytest.mark.parametrize("target", _backends._core.cpu_targets() if _backends._core else [])
@pytest.mark.parametrize("rows", [4, 7, 4096, 4099])  # blocks of four, and rows left over
def test_cpp_and_numba_losses_agree_to_the_bit(rows, target):
    """Scores from -800 to 800 (exp underflows to subnormals and to zero) through the C++
    objective of every instruction-set build (four rows at a time, X being small) and the
    Numba one."""
    rng = np.random.default_rng(rows)
    z = np.concatenate([rng.standard_normal(rows - rows // 2) * 30,
                        rng.uniform(-800, 800, rows // 2)])
    X = z[:, None].copy()
    y = (rng.random(rows) < 0.5).astype(np.float64)
    problem, _ = prepare(X, y, model="logistic", penalty=None, alpha=0.0, l1_ratio=0.15,
                         fit_intercept=False, sample_weight=None, standardize=False)
    params = np.ones(problem.spec.n_params)
    cpp_equals_numba(problem, params, target, rtol=(1e-14, 1e-13))


def cpp_equals_numba(problem, params, target, rtol, atol=0.0):
    """The objective and gradient of build ``target`` equal Numba's to the bit (Numba fuses
    multiply-adds exactly when the C++ build in use does), and the reference's to ``rtol``
    (objective, gradient)."""
    default = _backends._core.cpu_target()
    _backends._core.set_cpu_target(target)
    try:
        cpp = backend_calls.objective("cpp", problem, params)
        numba = backend_calls.objective("numba", problem, params)
    finally:
        _backends._core.set_cpu_target(default)
    reference = backend_calls.objective("numpy", problem, params)
    assert cpp[0] == numba[0]
    np.testing.assert_array_equal(cpp[1], numba[1])
    np.testing.assert_allclose(cpp[0], reference[0], rtol=rtol[0])
    np.testing.assert_allclose(cpp[1], reference[1], rtol=rtol[1], atol=atol)


@pytest.mark.parametrize("target", _backends._core.cpu_targets() if _backends._core else [])
@pytest.mark.parametrize("rows", [4, 7, 9, 4099])  # pairs of rows, and one left over
@pytest.mark.parametrize("d", [37, 8])  # lanes left over after the vectors, and none
@pytest.mark.parametrize("standardize, weighted, intercept",
                         [(False, False, True), (True, True, True), (False, True, False)])
def test_softmax_objective_agrees_with_numba_to_the_bit(target, rows, d, standardize,
                                                        weighted, intercept):
    """The softmax pass of every instruction-set build (rows two at a time, classes in groups
    of five) against Numba's: the same sums in the same order, so the same bits; scores large
    enough that exp underflows."""
    rng = np.random.default_rng(rows * d)
    X = rng.standard_normal((rows, d)) * 3
    y = rng.integers(0, 6, rows).astype(np.float64)
    weights = rng.uniform(0.5, 2.0, rows) if weighted else None
    problem, _ = prepare(X, y, model="softmax", penalty="l2", alpha=1e-3, l1_ratio=0.15,
                         fit_intercept=intercept, sample_weight=weights,
                         standardize=standardize)
    params = rng.standard_normal(problem.spec.n_params) * 4
    cpp_equals_numba(problem, params, target, rtol=(1e-13, 1e-11), atol=1e-14)
