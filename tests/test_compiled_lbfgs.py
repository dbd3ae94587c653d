"""The compiled L-BFGS loop (``fastopt._core.lbfgs``, read by ``solvers.compiled_lbfgs``) against
its reference, :func:`fastopt.solvers.lbfgs` on the same compiled objective: the same steps to
the rounding of the dot products, the same statuses and messages, and the estimators' default
path on it."""

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
from scipy import sparse

import fastopt as fo
from fastopt import _backends
from fastopt.engine import prepare
from fastopt.solvers import compiled_lbfgs, lbfgs

pytestmark = pytest.mark.skipif(_backends._core is None, reason="no compiled module")


def make_problem(model, dtype=np.float64, layout="dense", standardize=False, weighted=False,
                 seed=0, n=2000, d=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d) + 1.0
    if model == "linear":
        y = X @ rng.standard_normal(d) + rng.standard_normal(n)
    elif model == "logistic":
        y = (X @ rng.standard_normal(d) + rng.logistic(size=n) > 0).astype(float)
    else:
        y = np.argmax(X @ rng.standard_normal((d, 3)) + rng.gumbel(size=(n, 3)), axis=1)
    X = X.astype(dtype)
    if layout == "csr":
        X[np.abs(X) < 1.0] = 0.0
        X = sparse.csr_matrix(X)
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    problem, _ = prepare(X, y, model=model, penalty="l2", alpha=1e-3, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=weights, standardize=standardize)
    return problem


def both(problem, x0=None, **settings):
    """(reference, compiled) runs from x0 (zeros) with the same settings."""
    backend = _backends.resolve("cpp")
    data = backend.dataset(problem)
    x0 = np.zeros(problem.spec.n_params, data.dtype) if x0 is None else x0
    reference = lbfgs(lambda x: backend.objective(data, x), x0, **settings)
    compiled = compiled_lbfgs(lambda start, **kw: backend.lbfgs(data, start, 1, **kw), x0,
                              **settings)
    return reference, compiled


TO_THE_OPTIMUM = dict(max_iter=300, tolerance_grad=0.0, tolerance_change=0.0,
                      tolerance_gap=1e-9, curvature_floor=1e-3)


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout, standardize, weighted",
                         [("dense", False, False), ("dense", True, True), ("csr", True, False),
                          ("csr", False, True)])
def test_compiled_lbfgs_takes_the_reference_steps(model, dtype, layout, standardize, weighted):
    problem = make_problem(model, dtype, layout, standardize, weighted)
    reference, compiled = both(problem, **TO_THE_OPTIMUM)
    assert compiled.x.dtype == reference.x.dtype == dtype
    assert (compiled.status, compiled.n_iter, compiled.n_evals) == (
        reference.status, reference.n_iter, reference.n_evals)
    assert compiled.status == "converged" and "tolerance_gap" in compiled.message
    # The dot products round differently, and over tens of steps the line search's cubic
    # interpolation carries that into the step lengths (1e-5 relative after 38 steps on
    # unscaled linear regression); the objective and the point stay within rounding of it.
    close = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(compiled.history["loss"], reference.history["loss"], **close)
    np.testing.assert_allclose(compiled.history["step"], reference.history["step"], rtol=1e-3)
    assert compiled.history["evals"] == reference.history["evals"]
    np.testing.assert_allclose(compiled.x, reference.x,
                               **(dict(rtol=1e-4, atol=1e-5) if dtype == np.float32
                                  else dict(rtol=1e-7, atol=1e-9)))
    np.testing.assert_allclose(compiled.grad, reference.grad, rtol=1e-3, atol=1e-6)
    assert len(compiled.pairs) == len(reference.pairs) > 0
    for (s, y), (s_ref, y_ref) in zip(compiled.pairs, reference.pairs):
        np.testing.assert_allclose(s, s_ref, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(compiled.curvatures, reference.curvatures, rtol=1e-4)


@pytest.mark.parametrize("settings, status, words", [
    (dict(max_iter=3, max_eval=100), "max_iter", "reached max_iter=3"),
    (dict(max_iter=3), "max_eval", "reached max_eval=3 objective calls"),
    (dict(max_iter=0), "max_iter", "reached max_iter=0"),
    (dict(max_iter=50, tolerance_grad=1e6), "converged", "the gradient's max-norm"),
    (dict(max_iter=50, max_eval=4), "max_eval", "reached max_eval=4 objective calls"),
    (dict(max_iter=50, tolerance_change=1e-1), "converged", "tolerance_change=0.1"),
    (dict(max_iter=50, tolerance_grad=0.0, tolerance_change=0.0, tolerance_gap=1e-4),
     "converged", "reached tolerance_gap=0.0001"),
])
def test_compiled_lbfgs_stops_where_the_reference_stops(settings, status, words):
    reference, compiled = both(make_problem("logistic"), **settings)
    assert compiled.status == reference.status == status
    assert compiled.message == reference.message and words in compiled.message
    assert compiled.n_iter == reference.n_iter and compiled.n_evals == reference.n_evals
    assert compiled.history.keys() == reference.history.keys()


def test_compiled_lbfgs_at_the_precision_limit_of_float32():
    # No gap or change tolerance: float32 parameters run out of precision, and both loops say
    # so (a line search whose interval fell below the rounding of x, or an iterate revisited).
    reference, compiled = both(make_problem("logistic", np.float32), max_iter=2000,
                               tolerance_grad=0.0, tolerance_change=0.0)
    assert compiled.status == reference.status == "precision"
    assert "precision" in compiled.message
    np.testing.assert_allclose(compiled.x, reference.x, rtol=1e-4, atol=1e-5)


def test_compiled_lbfgs_reports_a_non_finite_start():
    problem = make_problem("linear")
    x0 = np.full(problem.spec.n_params, 1e300)  # scores overflow: the loss is inf
    reference, compiled = both(problem, x0=x0, max_iter=10)
    assert compiled.status == reference.status == "nonfinite"
    assert compiled.message == reference.message
    assert compiled.n_iter == 0 and np.isnan(compiled.f)


def test_fits_take_the_compiled_loop_and_with_a_callback_the_reference():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3000, 8))
    y = (X @ rng.standard_normal(8) + rng.logistic(size=3000) > 0).astype(int)
    record = _backends.resolve("cpp")
    calls = []

    def lbfgs_spy(data, x0, threads=1, **settings):
        calls.append(threads)
        return record.lbfgs(data, x0, threads, **settings)

    options = dict(model="logistic", penalty="l2", alpha=1e-3, optimizer="lbfgs", tol="auto")
    compiled = fo.fit(X, y, n_jobs=2, backend=record._replace(lbfgs=lbfgs_spy), **options)
    assert calls == [2]
    seen = []
    stepwise = fo.fit(X, y, backend="cpp", callback=lambda entry: seen.append(entry["epoch"]),
                      **options)
    assert calls == [2] and seen == stepwise.history["epoch"]  # the reference loop
    assert compiled.history["epoch"] == stepwise.history["epoch"]
    assert compiled.history.keys() == stepwise.history.keys()
    assert all(len(values) == len(stepwise.history["epoch"])
               for values in compiled.history.values())
    np.testing.assert_allclose(compiled.coef_, stepwise.coef_, rtol=1e-9)
    for key in ("loss", "steps", "grad_max", "gap", "lr"):
        np.testing.assert_allclose(compiled.history[key], stepwise.history[key], rtol=1e-8)
    assert compiled.converged and stepwise.converged
    # The estimators' default takes it too.
    calls.clear()
    fo.LogisticRegression(alpha=1e-3, standardize=False,
                          backend=record._replace(lbfgs=lbfgs_spy)).fit(X[:500], y[:500])
    assert calls == [1]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_stops_the_compiled_loop_on_few_rows():
    # 500 rows: the kernels poll for signals every 512 rows, never within these passes; the
    # loop counts the passes' work itself. Uninterrupted this fit takes ~0.8 s.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 20_000)) * np.logspace(-3, 3, 20_000)
    y = rng.standard_normal(500)
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        fo.fit(X, y, model="linear", optimizer=fo.LBFGS(tolerance_change=0.0), penalty="l2",
               alpha=1e-12, tol=0.0, epochs=10**9, backend="cpp")
    elapsed = time.perf_counter() - started
    timer.join()
    assert elapsed < 0.6, f"the fit ran {elapsed * 1e3:.0f} ms"
