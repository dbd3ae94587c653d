"""L-BFGS and Newton-CG as fit options: the optimum of scikit-learn, on every backend."""

import numpy as np
import pytest
from scipy import sparse

import fastopt as fo
from fastopt import _backends

sklearn_linear = pytest.importorskip("sklearn.linear_model")

BACKENDS = ["cpp", "numba", "numpy"] if _backends._core is not None else ["numba", "numpy"]


def data(model, n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d) + 1.0
    w = rng.standard_normal(d)
    if model == "linear":
        return X, X @ w + 5.0 + 0.3 * rng.standard_normal(n)
    if model == "logistic":
        return X, (X @ w + 0.5 * rng.standard_normal(n) > w.sum()).astype(int)
    scores = X @ rng.standard_normal((d, 3)) + rng.standard_normal((n, 3))
    return X, np.argmax(scores, axis=1)


def sklearn_optimum(model, X, y, alpha):
    """scikit-learn's optimum of the objective with an l2 penalty of ``alpha`` (0: none)."""
    n = X.shape[0]
    if model == "linear":
        est = (sklearn_linear.Ridge(alpha=alpha * n, tol=1e-12) if alpha > 0
               else sklearn_linear.LinearRegression()).fit(X, y)
        return est.coef_.ravel(), np.atleast_1d(est.intercept_)
    C = 1.0 / (alpha * n) if alpha > 0 else np.inf  # scikit-learn 1.8: C=inf, no penalty
    est = sklearn_linear.LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    coef, intercept = est.coef_, est.intercept_
    if model == "softmax":  # softmax is defined up to a constant per feature
        coef, intercept = coef - coef.mean(axis=0), intercept - intercept.mean()
    return coef.ravel(), intercept


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
@pytest.mark.parametrize("penalty", ["l2", None])
def test_the_solvers_reach_sklearns_optimum(penalty, solver, model, dtype, layout, backend):
    X, y = data(model)
    X = X.astype(dtype)
    alpha = 1e-2 if penalty else 0.0  # the data are not separable: an optimum without one
    fitted = fo.fit(sparse.csr_matrix(X) if layout == "csr" else X, y, model=model,
                    optimizer=solver, penalty=penalty, alpha=alpha, epochs=200, tol=1e-9,
                    backend=backend)
    coef, intercept = np.atleast_2d(fitted.coef_), np.atleast_1d(fitted.intercept_)
    if model == "softmax":
        coef, intercept = coef - coef.mean(axis=0), intercept - intercept.mean()
    expected_coef, expected_intercept = sklearn_optimum(model, X.astype(np.float64), y, alpha)
    rtol = 1e-6 if dtype == np.float64 else 2e-4  # float32 iterates: ~6e-8 each, conditioned
    scale = np.abs(expected_coef).max()
    np.testing.assert_allclose(coef.ravel(), expected_coef, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(intercept, expected_intercept, rtol=rtol, atol=rtol * scale)
    assert fitted.converged and len(fitted.history["grad_max"]) == fitted.n_iter_
    assert fitted.history["steps"] == sorted(fitted.history["steps"])  # passes over X


def test_standardized_estimators_and_options():
    X, y = data("logistic")
    est = fo.LogisticRegression(optimizer="lbfgs", penalty="l2", alpha=1e-3, tol=1e-10,
                                epochs=500, standardize=False).fit(X, y)
    expected, _ = sklearn_optimum("logistic", X, y, 1e-3)
    np.testing.assert_allclose(est.coef_.ravel(), expected, rtol=1e-6, atol=1e-8)
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit"):
        est.partial_fit(X, y)
    stopped = fo.fit(X, y, model="logistic", optimizer=fo.LBFGS(history_size=3), epochs=50,
                     tol=None, callback=lambda entry: entry["epoch"] < 4)
    assert stopped.n_iter_ == 4


def test_a_solver_that_meets_no_finite_objective_raises_divergence():
    X, y = data("linear")
    X[0, 0] = 1e308  # squares overflow: the objective at the start is inf
    with pytest.raises(fo.DivergenceError, match="LBFGS stopped"):
        fo.fit(X, y, optimizer="lbfgs", epochs=10)


def test_budget_without_convergence_warns():
    X, y = data("softmax")
    with pytest.warns(fo.ConvergenceWarning, match="Maximum number of epochs"):
        fo.fit(X, y, model="softmax", optimizer="lbfgs", epochs=2, tol=1e-12)


@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_n_jobs_gives_the_same_fit_to_the_bit(solver, layout):
    # Rows in blocks of a fixed size, added in a fixed order: threads change no bit of any
    # pass, so the whole run of the solver is the same (three threads take four blocks of at
    # least 2048 rows each).
    X, y = data("softmax", n=30_000)
    X = sparse.csr_matrix(X) if layout == "csr" else X
    fits = [fo.fit(X, y, model="softmax", optimizer=solver, penalty="l2", alpha=1e-3,
                   standardize=True, epochs=100, tol=1e-8, n_jobs=n_jobs)
            for n_jobs in (1, 2, 3)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.coef_, fits[0].coef_)
        np.testing.assert_array_equal(other.intercept_, fits[0].intercept_)
        assert other.history["loss"] == fits[0].history["loss"]
    assert fits[0].converged


@pytest.mark.skipif(_backends._core is None, reason="no compiled module")
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_n_jobs_reaches_the_passes_of_the_solvers(solver):
    record = _backends.resolve("cpp")
    seen = []

    def objective(data, params, threads=1):
        seen.append(("objective", threads))
        return record.objective(data, params, threads)

    def hvp(problem, data, params, threads=1):
        seen.append(("hvp", threads))
        return record.hvp(problem, data, params, threads)

    def lbfgs(data, x0, threads=1, **settings):  # the compiled loop: its passes on `threads`
        seen.append(("objective", threads))
        return record.lbfgs(data, x0, threads, **settings)

    X, y = data("logistic")
    fo.fit(X, y, model="logistic", optimizer=solver, penalty="l2", alpha=1e-2, n_jobs=2,
           backend=record._replace(objective=objective, hvp=hvp, lbfgs=lbfgs))
    assert seen and set(seen) == ({("objective", 2), ("hvp", 2)} if solver == "newton-cg"
                                  else {("objective", 2)})
