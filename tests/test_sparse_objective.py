"""The compiled full pass on CSR X with one output (linear and logistic regression), which takes
a chunk of rows at a time (row_sums.hpp ``sum_sparse_rows_one_output``): in every instruction-set
build the same bits as the Numba backend's row-by-row loop, and the NumPy reference's values to
rounding."""

import numpy as np
import pytest
import scipy.sparse as sp

from fastopt import _backends
from fastopt.engine import prepare

pytestmark = pytest.mark.skipif(_backends._core is None, reason="no compiled module")
_core = _backends._core


def ragged_csr(n, d, dtype, wide, seed):
    """CSR X whose rows hold 0, 1, a few, many (more than a chunk's worth) or all d entries,
    in random order, so that the four-row groups of the chunked loop have rows of unequal
    lengths and n leaves a partial chunk and a partial group at the end."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice([0, 1, 2, 3, 7, 30, 90, d], size=n)
    lengths[:3] = (0, 1, d)
    indptr = np.r_[0, np.cumsum(lengths)]
    indices = np.concatenate([np.sort(rng.choice(d, size=m, replace=False)) for m in lengths])
    values = rng.standard_normal(indptr[-1]) * 2.0 + 0.5
    index_type = np.int64 if wide else np.int32
    return sp.csr_matrix((values.astype(dtype), indices.astype(index_type),
                          indptr.astype(index_type)), shape=(n, d))


@pytest.mark.parametrize("target", _core.cpu_targets() if _core else [])
@pytest.mark.parametrize("wide", [False, True], ids=["int32", "int64"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("standardize, weighted, intercept",
                         [(False, False, True), (True, True, True), (False, True, False),
                          (True, False, False)])
@pytest.mark.parametrize("model", ["logistic", "linear"])
def test_chunked_sparse_pass_is_the_row_by_row_pass(model, standardize, weighted, intercept,
                                                    dtype, wide, target):
    n, d = 4301, 120  # three blocks of 2048 rows: a partial chunk and group in the last
    X = ragged_csr(n, d, dtype, wide, seed=3)
    rng = np.random.default_rng(4)
    score = X.astype(np.float64) @ rng.standard_normal(d)
    y = (score > np.median(score)).astype(int) if model == "logistic" else score
    weights = rng.uniform(0.2, 3.0, n) if weighted else None
    problem = prepare(X, y, model=model, penalty="l2", alpha=1e-2, l1_ratio=0.15,
                      fit_intercept=intercept, sample_weight=weights, backend="numpy",
                      standardize=standardize)[0]
    # Scores from about -20 to 20: both branches of the logistic loss, and exp(-|z|) small.
    params = (rng.standard_normal(problem.spec.n_params) * 0.5).astype(dtype)
    cpp, numba = _backends.resolve("cpp"), _backends.resolve("numba")
    default = _core.cpu_target()
    _core.set_cpu_target(target)  # Numba fuses its multiply-adds where this build does
    try:
        data = cpp.dataset(problem)
        value, grad = cpp.objective(data, params)
        numba_value, numba_grad = numba.objective(numba.dataset(problem), params)
        two_value, two_grad = cpp.objective(data, params, 2)
    finally:
        _core.set_cpu_target(default)
    assert value == numba_value
    np.testing.assert_array_equal(grad, numba_grad)
    assert two_value == value
    np.testing.assert_array_equal(two_grad, grad)
    ref_value, ref_grad = _backends.resolve("numpy").objective(problem, params)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12 * np.abs(ref_grad).max())


@pytest.mark.parametrize("sparse", [True, False], ids=["csr", "dense"])
@pytest.mark.parametrize("model", ["logistic", "softmax"])
def test_objective_keeps_its_scratch_between_calls_and_threads(model, sparse):
    """The dataset keeps the objective's scratch memory from call to call (bind_training.cpp
    KeptScratch): each call's value and gradient are those of a fresh dataset, whatever was
    evaluated before, and threads calling it at once (one borrows the kept memory, the others
    get their own) each get theirs."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    n, d = 3000, 120
    X = ragged_csr(n, d, np.float64, False, 5)
    y = rng.integers(0, 3 if model == "softmax" else 2, n).astype(np.float64)
    backend = _backends.resolve("cpp")

    def dataset():
        problem, _ = prepare(X if sparse else X.toarray(), y, model=model, penalty="l2",
                             alpha=1e-3, l1_ratio=0.15, fit_intercept=True, sample_weight=None,
                             standardize=True, backend=backend)
        return problem, backend.dataset(problem)

    problem, kept = dataset()
    points = [rng.standard_normal(problem.spec.n_params) for _ in range(6)]
    expected = []
    for w in points:  # each from a dataset of its own
        value, grad = backend.objective(dataset()[1], w, 2)
        expected.append((value, grad.copy()))
    for w, (value, grad) in zip(points[::-1], expected[::-1]):  # one dataset, in turn
        got_value, got_grad = backend.objective(kept, w, 2)
        assert got_value == value
        np.testing.assert_array_equal(got_grad, grad)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: backend.objective(kept, points[i % 6], 1),
                                range(60)))
    for i, (value, grad) in enumerate(results):
        assert value == expected[i % 6][0]
        np.testing.assert_array_equal(grad, expected[i % 6][1])
