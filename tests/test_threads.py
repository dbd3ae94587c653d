"""Threads per epoch (``n_jobs``): every minibatch is split into contiguous lanes summed on
their own and added in lane order. The C++ backend runs the lanes in parallel, Numba one after
another: the same sums, so the same bits; the result is reproducible for a given n_jobs and
within rounding of one lane and of the NumPy reference."""

import os

import numpy as np
import pytest

import fastopt as fo
from fastopt import _validation as v


def problem(model, dtype, n=700, d=9, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + 1).astype(dtype)
    score = X.astype(np.float64) @ rng.standard_normal(d)
    if model == "linear":
        y = score + 0.1 * rng.standard_normal(n)
    elif model == "logistic":
        y = (score + rng.logistic(size=n) > score.mean()).astype(int)
    else:
        y = np.digitize(score, np.quantile(score, [0.3, 0.7]))
    return X, y, rng.uniform(0.5, 2.0, n)


def params_of(result):
    return np.r_[np.ravel(result.coef_), np.ravel(result.intercept_)]


CASES = [("linear", "adam", {}), ("logistic", "sgd", {"penalty": "l2", "alpha": 1e-3}),
         ("softmax", "rmsprop", {"penalty": "elasticnet", "alpha": 1e-3}),
         ("linear", "nadam", {"standardize": True})]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("model, optim, options", CASES)
@pytest.mark.parametrize("n_jobs", [2, 3])
def test_numba_runs_the_same_lanes_bit_for_bit(model, optim, options, dtype, n_jobs):
    X, y, weights = problem(model, dtype)
    common = dict(model=model, optimizer=optim, lr=0.01, epochs=3, batch_size=64,
                  tol=None, random_state=3, sample_weight=weights, n_jobs=n_jobs, **options)
    cpp = fo.fit(X, y, backend="cpp", **common)
    numba = fo.fit(X, y, backend="numba", **common)
    np.testing.assert_array_equal(params_of(cpp), params_of(numba))
    assert cpp.history["loss"] == numba.history["loss"]


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-4), (np.float64, 1e-10)])
@pytest.mark.parametrize("model, optim, options", CASES)
def test_lanes_agree_with_one_lane_and_the_reference_to_rounding(model, optim, options,
                                                                  dtype, rtol):
    X, y, weights = problem(model, dtype, seed=1)
    common = dict(model=model, optimizer=optim, lr=0.01, epochs=3, batch_size=100,
                  tol=None, random_state=4, sample_weight=weights, **options)
    two = fo.fit(X, y, backend="cpp", n_jobs=2, **common)
    again = fo.fit(X, y, backend="cpp", n_jobs=2, **common)
    np.testing.assert_array_equal(params_of(two), params_of(again))  # reproducible
    one = fo.fit(X, y, backend="cpp", n_jobs=1, **common)
    reference = fo.fit(X, y, backend="numpy", n_jobs=2, **common)
    scale = np.abs(params_of(one)).max()
    for other in (one, reference):
        np.testing.assert_allclose(params_of(two), params_of(other), rtol=rtol,
                                   atol=rtol * scale)


def test_more_lanes_than_rows_in_a_batch():
    X, y, _ = problem("linear", np.float64, n=11)
    for backend in ("cpp", "numba"):
        result = fo.fit(X, y, epochs=2, batch_size=4, n_jobs=8, tol=None, random_state=0,
                        backend=backend)
        single = fo.fit(X, y, epochs=2, batch_size=4, n_jobs=1, tol=None, random_state=0,
                        backend=backend)
        np.testing.assert_allclose(params_of(result), params_of(single), rtol=1e-12)


def test_divergence_with_threads_rolls_back():
    X, y, _ = problem("linear", np.float64)
    with pytest.raises(fo.DivergenceError, match="non-finite"):
        fo.fit(X * 1e3, y, optimizer="sgd", lr=10.0, epochs=5, batch_size=128, n_jobs=2,
               backend="cpp", tol=None)


def test_n_jobs_values():
    assert v.check_n_jobs(None) == 1 and v.check_n_jobs(3) == 3
    assert v.check_n_jobs(-1) == (os.cpu_count() or 1)
    assert v.check_n_jobs(-10_000) == 1 and v.check_n_jobs(10_000) == 256
    for bad in (0, 1.5, "2", True):
        with pytest.raises(ValueError, match="n_jobs"):
            v.check_n_jobs(bad)
    X, y, _ = problem("linear", np.float64, n=50)
    with pytest.raises(ValueError, match="n_jobs"):
        fo.fit(X, y, n_jobs=0)
    with pytest.raises(ValueError, match="n_jobs"):
        fo.LinearRegression(n_jobs="all").fit(X, y)


def test_estimator_with_threads_matches_numba():
    pytest.importorskip("sklearn")
    X, y, _ = problem("logistic", np.float64)
    # Minibatch epochs (the default, optimizer="auto", is L-BFGS: the cpp backend runs its loop
    # compiled, whose dot products round as NumPy's do not; tests/test_compiled_lbfgs.py).
    options = dict(optimizer="adam", epochs=5, batch_size=128, n_jobs=2, random_state=0,
                   tol=None)
    cpp = fo.LogisticRegression(backend="cpp", **options).fit(X, y)
    numba = fo.LogisticRegression(backend="numba", **options).fit(X, y)
    np.testing.assert_array_equal(cpp.coef_, numba.coef_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("near, far", [("0", "0"), ("1", "1"), ("4", "100000"),
                                       ("64", "72")])
@pytest.mark.parametrize("model, blocks", [("softmax", "0"), ("linear", "0"), ("linear", "1")])
@pytest.mark.parametrize("shuffle", [True, False, "batches"])
def test_prefetch_distances_change_no_bits(monkeypatch, model, blocks, near, far, dtype,
                                           n_jobs, shuffle):
    # The tuning knobs of bench/README.md only move requests for rows around (including past
    # the end of a minibatch and of a lane); what is computed stays the same. Softmax runs the
    # general row loop, linear the lean one, one row or four rows at a time; rows are
    # requested ahead in every visiting order.
    X, y, weights = problem(model, dtype, n=300)
    common = dict(model=model, optimizer="adam", lr=0.01, epochs=2, batch_size=37,
                  tol=None, random_state=5, sample_weight=weights, n_jobs=n_jobs,
                  shuffle=shuffle)
    monkeypatch.setenv("FASTOPT_ROW_BLOCKS", blocks)
    default = fo.fit(X, y, backend="cpp", **common)
    monkeypatch.setenv("FASTOPT_PREFETCH_ROWS", near)
    monkeypatch.setenv("FASTOPT_PREFETCH_L2_BYTES", far)
    moved = fo.fit(X, y, backend="cpp", **common)
    np.testing.assert_array_equal(params_of(default), params_of(moved))
    assert default.history["loss"] == moved.history["loss"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("model, fit_intercept, weighted",
                         [("linear", True, True), ("logistic", True, False),
                          ("logistic", False, True), ("linear", False, False)])
@pytest.mark.parametrize("standardize, d", [(False, 9), (True, 9), (True, 700)])
def test_row_blocks_change_no_bits(monkeypatch, model, fit_intercept, weighted, dtype, n_jobs,
                                   standardize, d):
    # Dense single-output epochs take rows four at a time when X fits in cache, one at a time
    # otherwise (FASTOPT_ROW_BLOCKS forces either), and one at a time with their updates
    # deferred in chunks (FASTOPT_ROW_CHUNK, 0 = not deferred): the sums run in the same order
    # every way. Batches of 37 leave a remainder of rows after the blocks and chunks in every
    # minibatch and lane. Standardised rows go one at a time, their copies kept for the
    # deferred updates: at most standardized_rows(d) of them, 5 for d=700.
    X, y, weights = problem(model, dtype, n=301, d=d)
    common = dict(model=model, optimizer="adam", lr=0.01, epochs=2, batch_size=37, tol=None,
                  random_state=6, fit_intercept=fit_intercept, n_jobs=n_jobs,
                  sample_weight=weights if weighted else None, standardize=standardize)
    results = []
    for blocks, chunk in (("0", "0"), ("1", "0"), ("0", "1"), ("0", "5"), ("0", "16"),
                          ("0", "64"), ("0", "1000")):
        monkeypatch.setenv("FASTOPT_ROW_BLOCKS", blocks)
        monkeypatch.setenv("FASTOPT_ROW_CHUNK", chunk)
        results.append(fo.fit(X, y, backend="cpp", **common))
    for other in results[1:]:
        np.testing.assert_array_equal(params_of(results[0]), params_of(other))
        assert results[0].history["loss"] == other.history["loss"]
    numba = fo.fit(X, y, backend="numba", **common)
    np.testing.assert_array_equal(params_of(results[0]), params_of(numba))
