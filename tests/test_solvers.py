"""fastopt.solvers (L-BFGS, Newton-CG, strong-Wolfe line search) and the reference
Hessian-vector product: on smooth test functions, against SciPy and scikit-learn optima, across
backends, and on the ways they stop."""

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp

from fastopt import engine as training, solvers

import backend_calls  # noqa: E402
from fastopt.newton import hessian
from fastopt.reference.hvp import hessian_operator, hessian_vector_product

sklearn_linear = pytest.importorskip("sklearn.linear_model")


# ---------------------------------------------------------------- smooth test functions

def rosenbrock(x):
    x = np.asarray(x, dtype=np.float64)
    f = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return f, g


def rosenbrock_hvp(x, v):
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    H = np.zeros((n, n))
    i = np.arange(n - 1)
    H[i, i] = 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
    H[i + 1, i + 1] += 200.0
    H[i, i + 1] = H[i + 1, i] = -400.0 * x[:-1]
    return H @ v


def quadratic(seed, n=30):
    """A random convex quadratic ``1/2 x'Ax - b'x`` (condition number ~1e3) and its
    minimiser."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = Q @ np.diag(np.logspace(0, 3, n)) @ Q.T
    b = rng.normal(size=n)
    return (lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)), (lambda x, v: A @ v), \
        np.linalg.solve(A, b)


@pytest.mark.parametrize("n", [2, 10])
def test_lbfgs_minimises_rosenbrock_like_scipy(n):
    x0 = np.full(n, -1.2)
    x0[1::2] = 1.0
    result = solvers.lbfgs(rosenbrock, x0, max_iter=500, tolerance_grad=1e-9,
                           tolerance_change=0.0)
    assert result.converged, result.message
    assert result.status == "converged"
    np.testing.assert_allclose(result.x, np.ones(n), rtol=0, atol=1e-8)
    scipy_result = scipy.optimize.minimize(rosenbrock, x0, jac=True, method="L-BFGS-B",
                                           options={"gtol": 1e-9, "ftol": 0, "maxiter": 500})
    np.testing.assert_allclose(result.x, scipy_result.x, rtol=0, atol=1e-6)
    assert result.n_evals == 1 + sum(result.history["evals"])
    assert len(result.history["loss"]) == result.n_iter
    assert result.history["loss"][-1] == result.f


@pytest.mark.parametrize("n", [2, 10])
def test_newton_cg_minimises_rosenbrock(n):
    x0 = np.full(n, -1.2)
    x0[1::2] = 1.0
    result = solvers.newton_cg(rosenbrock, rosenbrock_hvp, x0, max_iter=200, tol=1e-9)
    assert result.converged, result.message
    np.testing.assert_allclose(result.x, np.ones(n), rtol=0, atol=1e-8)
    assert result.n_hvp == sum(result.history["hvps"]) > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_solvers_find_the_minimiser_of_a_convex_quadratic(seed):
    objective, hvp, minimiser = quadratic(seed)
    x0 = np.zeros_like(minimiser)
    result = solvers.lbfgs(objective, x0, max_iter=1000, tolerance_grad=1e-10,
                           tolerance_change=0.0)
    assert result.converged, result.message
    np.testing.assert_allclose(result.x, minimiser, rtol=1e-8, atol=1e-10)
    scipy_result = scipy.optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                                           options={"gtol": 1e-10, "ftol": 0, "maxiter": 1000})
    # SciPy stops a little earlier (its ftol/line search); both sit at the same minimum
    assert np.linalg.norm(result.x - minimiser) <= np.linalg.norm(scipy_result.x - minimiser)
    np.testing.assert_allclose(result.x, scipy_result.x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.f, scipy_result.fun, rtol=1e-12)
    result = solvers.newton_cg(objective, hvp, x0, max_iter=100, tol=1e-10)
    assert result.converged, result.message
    np.testing.assert_allclose(result.x, minimiser, rtol=1e-8, atol=1e-10)
    result = solvers.conjugate_gradient(objective, x0, max_iter=1000, tol=1e-10)
    assert result.converged, result.message
    np.testing.assert_allclose(result.x, minimiser, rtol=1e-8, atol=1e-10)
    assert result.n_evals == result.n_iter + 1  # one pass an iteration, no line search
    # the objective by recurrence is the objective
    np.testing.assert_allclose(result.f, objective(result.x)[0], rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conjugate_gradient_estimates_the_gap_it_stops_at(seed):
    """The Ritz-value estimate of the relative gap is never optimistic by more than 2x (the
    stop it makes is safe) and pessimistic by at most 1000x (measured 1.3x to 220x) at every
    iteration after the first few, on quadratics with condition numbers of 1e1 to 1e3 whose
    optimum is not 0; and the true gap where it stops is below the tolerance."""
    rng = np.random.default_rng(seed)
    n = 40
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = Q @ np.diag(np.logspace(0, 1 + seed, n)) @ Q.T
    b = rng.normal(size=n)
    minimiser = np.linalg.solve(A, b)
    offset = 1.0 + 0.5 * b @ minimiser
    objective = lambda x: (0.5 * x @ A @ x - b @ x + offset, A @ x - b)  # noqa: E731
    best = objective(minimiser)[0]
    seen = []

    def record(info):
        seen.append(((info["f"] - best) / best, info["gap"]))
    result = solvers.conjugate_gradient(objective, np.zeros(n), max_iter=200,
                                        tolerance_gap=1e-12, callback=record)
    assert result.converged and "gap" in result.message, result.message
    true_gaps, estimates = np.array(seen[3:]).T
    keep = true_gaps > 1e-14  # below, rounding
    assert keep.sum() >= 3
    ratio = estimates[keep] / true_gaps[keep]
    assert np.all((ratio > 0.5) & (ratio < 1000)), ratio
    assert (result.f - best) / best <= 1e-12


def test_float32_iterate_stays_float32_and_the_objective_sees_it():
    objective, hvp, minimiser = quadratic(2, n=8)
    seen = []

    def recording(x):
        seen.append(x.dtype)
        return objective(x.astype(np.float64))

    for result in (solvers.lbfgs(recording, np.zeros(8, np.float32), max_iter=100),
                   solvers.newton_cg(recording, hvp, np.zeros(8, np.float32), max_iter=50),
                   solvers.conjugate_gradient(recording, np.zeros(8, np.float32),
                                              max_iter=50, tol=1e-5)):
        assert result.x.dtype == np.float32 and result.grad.dtype == np.float64
        np.testing.assert_allclose(result.x, minimiser, rtol=1e-3, atol=1e-4)
    assert set(seen) == {np.dtype(np.float32)}


# ---------------------------------------------------------------- fastopt problems

N, D = 300, 5


def make_problem(model, penalty, sparse, dtype, standardize, weighted, alpha=0.02,
                 fit_intercept=True, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)) * [1.0, 2.0, 3.0, 0.5, 1.0] + 1.0
    if sparse:
        X = np.where(rng.random(X.shape) < 0.4, X, 0.0)
    signal = X[:, 0] - X[:, 1] + rng.normal(size=N)  # noisy: no perfect separation
    y = {"linear": X @ rng.normal(size=D) + rng.normal(size=N),
         "logistic": (signal > np.median(signal)).astype(np.float64),
         "softmax": np.digitize(signal, np.quantile(signal, [0.33, 0.66]))}[model]
    X = X.astype(dtype)
    if sparse:
        X = sp.csr_matrix(X)
    weights = rng.random(N) + 0.5 if weighted else None
    problem, _ = training.prepare(X, y, model=model, penalty=penalty, alpha=alpha,
                                  l1_ratio=0.15, fit_intercept=fit_intercept,
                                  sample_weight=weights, standardize=standardize)
    return problem


def design_matrix(problem):
    """The features the model sees, dense float64 (standardised if the problem is)."""
    X = problem.X.toarray() if sp.issparse(problem.X) else problem.X
    X = np.asarray(X, dtype=np.float64)
    return X if problem.mean is None else (X - problem.mean) * problem.inv_std


def sklearn_optimum(problem):
    """scikit-learn's solution of the same objective, flat ``[W.ravel(), b]``. sklearn
    minimises ``sum_i s_i l_i + 1/(2C) |w|^2`` (logistic) and ``sum_i s_i r_i^2 + a |w|^2``
    (Ridge); fastopt ``1/n sum_i s_i l_i + alpha/2 |w|^2``: ``C = 1/(alpha n)``,
    ``a = alpha n``."""
    spec = problem.spec
    X, y, s = design_matrix(problem), problem.y, problem.sample_weight
    n = X.shape[0]
    alpha = spec.alpha if spec.penalty == "l2" else 0.0
    if spec.model == "linear":
        # A standardised linear problem trains no intercept (0 at its optimum).
        estimator = (sklearn_linear.Ridge(alpha=alpha * n, solver="cholesky",
                                          fit_intercept=spec.fit_intercept) if alpha
                     else sklearn_linear.LinearRegression(fit_intercept=spec.fit_intercept))
    else:
        estimator = sklearn_linear.LogisticRegression(
            C=1.0 / (alpha * n) if alpha else np.inf, solver="newton-cholesky", tol=1e-12,
            max_iter=1000)
    estimator.fit(X, y, sample_weight=s)
    intercept = np.atleast_1d(estimator.intercept_) if spec.fit_intercept else []
    return np.r_[np.ravel(estimator.coef_), intercept]


def centred(problem, w):
    """Softmax is unchanged by adding the same vector to every class: compare the
    representatives with zero mean over the classes (fastopt's iterates from 0 keep it)."""
    spec = problem.spec
    w = np.asarray(w, dtype=np.float64)
    if spec.model != "softmax":
        return w
    coef, intercept = spec.unpack(w)
    return np.r_[(coef - coef.mean(axis=0)).ravel(), intercept - intercept.mean()]


def cached_hvp(problem):
    """``hvp(x, v)`` for newton_cg, building the operator once per iterate."""
    cache = {}

    def hvp(x, v):
        if cache.get("x") is not x:
            cache["x"], cache["product"] = x, hessian_operator(problem, x)
        return cache["product"](v)
    return hvp


PROBLEM_CASES = list(itertools.product(["linear", "logistic", "softmax"], [None, "l2"],
                                       [False, True], [np.float64, np.float32]))


def case_id(case):
    model, penalty, sparse, dtype = case
    return f"{model}-{penalty}-{'csr' if sparse else 'dense'}-{np.dtype(dtype).name}"


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("case", PROBLEM_CASES, ids=case_id)
def test_solvers_reach_the_sklearn_optimum(case, backend):
    """Relative error in norm. float64: 1e-8 (measured <= 8e-10). float32: 5e-7 (measured
    <= 5e-8): the iterate itself is float32, so it can only be as close as the float32 grid
    around the optimum (6e-8 relative per coordinate) allows, and the solvers stop with
    "precision" when no representable step lowers the objective any more."""
    model, penalty, sparse, dtype = case
    problem = make_problem(model, penalty, sparse, dtype, standardize=not sparse or
                           penalty is None, weighted=penalty == "l2")
    objective = backend_calls.Objective(backend)
    x0 = np.zeros(problem.spec.n_params, dtype=dtype)
    expected = centred(problem, sklearn_optimum(problem))
    rtol = 1e-8 if dtype == np.float64 else 5e-7
    good = {"converged"} if dtype == np.float64 else {"converged", "precision"}
    runs = [solvers.lbfgs(lambda x: objective(problem, x), x0, max_iter=500,
                          tolerance_grad=1e-10, tolerance_change=0.0),
            solvers.newton_cg(lambda x: objective(problem, x), cached_hvp(problem), x0,
                              max_iter=100, tol=1e-10)]
    if model == "linear":  # a quadratic
        runs.append(solvers.conjugate_gradient(lambda x: objective(problem, x), x0,
                                               max_iter=500, tol=1e-10))
    for result in runs:
        assert result.status in good, result.message
        assert result.x.dtype == dtype
        got = centred(problem, result.x)
        assert np.linalg.norm(got - expected) <= rtol * np.linalg.norm(expected), \
            (got, expected)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_lbfgs_iterates_agree_across_backends(model, sparse):
    """The compiled objective and the NumPy reference give the same L-BFGS iterates to
    rounding: the solver is the same code, only the sums' order differs."""
    problem = make_problem(model, "l2", sparse, np.float64, standardize=True, weighted=True)
    trajectories = {}
    for backend in ("cpp", "numpy"):
        objective = backend_calls.Objective(backend)
        iterates = []
        result = solvers.lbfgs(lambda x: objective(problem, x),
                               np.zeros(problem.spec.n_params), max_iter=12,
                               tolerance_grad=0.0, tolerance_change=0.0,
                               callback=lambda info: iterates.append(info["x"].copy()))
        trajectories[backend] = (result, np.array(iterates))
    (cpp, cpp_x), (ref, ref_x) = trajectories["cpp"], trajectories["numpy"]
    assert cpp.n_iter == ref.n_iter == 12
    assert cpp.history["evals"] == ref.history["evals"]
    np.testing.assert_allclose(cpp_x, ref_x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cpp.history["loss"], ref.history["loss"], rtol=1e-13)


@pytest.mark.parametrize("model", ["logistic", "softmax"])
def test_lbfgs_reaches_scipy_lbfgsb_optimum_on_a_fastopt_problem(model):
    problem = make_problem(model, "l2", False, np.float64, standardize=True, weighted=True)
    objective = backend_calls.Objective("cpp")
    x0 = np.zeros(problem.spec.n_params)
    result = solvers.lbfgs(lambda x: objective(problem, x), x0, max_iter=500,
                           tolerance_grad=1e-10, tolerance_change=0.0)
    scipy_result = scipy.optimize.minimize(lambda x: objective(problem, x), x0, jac=True,
                                           method="L-BFGS-B",
                                           options={"gtol": 1e-10, "ftol": 0, "maxiter": 500})
    assert result.converged, result.message
    np.testing.assert_allclose(result.x, scipy_result.x, rtol=1e-6, atol=1e-7)
    assert result.f <= scipy_result.fun + 1e-15


HVP_CASES = list(itertools.product(["linear", "logistic", "softmax"], [None, "l2"],
                                   [False, True], [False, True], [False, True],
                                   [np.float64, np.float32]))


@pytest.mark.parametrize("model, penalty, sparse, standardize, weighted, dtype", HVP_CASES)
def test_hessian_vector_product_matches_the_explicit_hessian(model, penalty, sparse,
                                                             standardize, weighted, dtype):
    for fit_intercept in (True, False):
        problem = make_problem(model, penalty, sparse, dtype, standardize, weighted,
                               alpha=0.3, fit_intercept=fit_intercept)
        rng = np.random.default_rng(1)
        params = rng.normal(size=problem.spec.n_params).astype(dtype)
        v = rng.normal(size=problem.spec.n_params)
        expected = hessian(problem, params) @ v
        got = hessian_vector_product(problem, params, v)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-12,
                                   atol=1e-13 * np.abs(expected).max())


def test_hessian_vector_product_rejects_a_nonsmooth_penalty_and_a_wrong_shape():
    problem = make_problem("logistic", "l1", False, np.float64, False, False)
    with pytest.raises(ValueError, match="smooth objective"):
        hessian_vector_product(problem, np.zeros(problem.spec.n_params),
                               np.ones(problem.spec.n_params))
    problem = make_problem("logistic", "l2", False, np.float64, False, False)
    with pytest.raises(ValueError, match="v must have shape"):
        hessian_vector_product(problem, np.zeros(problem.spec.n_params), np.ones(3))


# ---------------------------------------------------------------- how they stop

def square(x):
    return float(x @ x), 2.0 * np.asarray(x, dtype=np.float64)


def identity_hvp(x, v):
    return 2.0 * v


@pytest.mark.parametrize("solve", [
    lambda objective, x0: solvers.lbfgs(objective, x0, max_iter=50),
    lambda objective, x0: solvers.newton_cg(objective, identity_hvp, x0, max_iter=50),
], ids=["lbfgs", "newton_cg"])
def test_nonfinite_objective_gives_the_nonfinite_status(solve):
    def nan_at_start(x):
        return np.nan, np.zeros_like(x, dtype=np.float64)
    result = solve(nan_at_start, np.ones(3))
    assert (result.status, result.converged, result.n_iter) == ("nonfinite", False, 0)
    assert "starting point" in result.message

    x0 = np.ones(3)

    def finite_only_at_start(x):
        if np.array_equal(x, x0):
            return square(x)
        return np.inf, np.full(x.shape, np.nan)
    result = solve(finite_only_at_start, x0)
    assert result.status == "nonfinite" and not result.converged
    assert "not finite at every step" in result.message
    np.testing.assert_array_equal(result.x, x0)  # the last finite iterate, not NaN
    assert np.isfinite(result.f)


def test_conjugate_gradient_ends_on_a_nonfinite_value_and_on_no_curvature():
    result = solvers.conjugate_gradient(lambda x: (np.nan, np.zeros_like(x, np.float64)),
                                        np.ones(3), max_iter=10)
    assert (result.status, result.n_iter) == ("nonfinite", 0)
    x0 = np.ones(3)
    only_at_start = lambda x: square(x) if np.array_equal(x, x0) else (  # noqa: E731
        np.inf, np.full(x.shape, np.nan))
    result = solvers.conjugate_gradient(only_at_start, x0, max_iter=10)
    assert result.status == "nonfinite" and "trial point" in result.message
    np.testing.assert_array_equal(result.x, x0)
    # a concave "quadratic": no positive curvature along the first direction
    result = solvers.conjugate_gradient(lambda x: (-float(x @ x), -2.0 * x), x0, max_iter=10)
    assert (result.status, result.n_iter) == ("precision", 0)


@pytest.mark.parametrize("stop_with", ["callback", "should_stop", "interrupt"])
def test_conjugate_gradient_stops_when_asked(stop_with):
    objective, _, _ = quadratic(3)
    calls = []

    def counted(x):
        calls.append(1)
        if stop_with == "interrupt" and len(calls) == 3:
            raise KeyboardInterrupt
        return objective(x)
    kwargs = {"callback": lambda info: False if stop_with == "callback" and
              info["iteration"] == 2 else None,
              "should_stop": lambda: stop_with == "should_stop" and len(calls) > 3}
    if stop_with == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            solvers.conjugate_gradient(counted, np.zeros(30), max_iter=100, **kwargs)
        return
    result = solvers.conjugate_gradient(counted, np.zeros(30), max_iter=100, **kwargs)
    assert (result.status, result.n_iter) == ("stopped", 2 if stop_with == "callback" else 3)
    result = solvers.conjugate_gradient(objective, np.zeros(30), max_iter=4)
    assert (result.status, result.n_iter, result.n_evals) == ("max_iter", 4, 5)


def test_line_search_backs_off_from_a_nonfinite_region():
    """A trial beyond the region where the objective is finite counts as too long a step."""
    def guarded(x):
        if np.max(np.abs(x)) > 1.5:
            return np.nan, np.full(x.shape, np.nan)
        return float(np.sum((x - 1.0) ** 2)), 2.0 * (x - 1.0)
    # an Hessian estimate 100 times too small: the first Newton step lands at x = 100
    result = solvers.newton_cg(guarded, lambda x, v: 0.02 * v, np.zeros(2), max_iter=50,
                               tol=1e-10)
    assert result.converged, result.message
    np.testing.assert_allclose(result.x, 1.0)


@pytest.mark.parametrize("solve", [
    lambda objective, x0: solvers.lbfgs(objective, x0, max_iter=50),
    lambda objective, x0: solvers.newton_cg(objective, identity_hvp, x0, max_iter=50),
], ids=["lbfgs", "newton_cg"])
def test_a_gradient_that_does_not_match_the_values_fails_the_line_search(solve):
    def wrong_sign(x):
        f, g = square(x)
        return f, -g
    result = solve(wrong_sign, np.ones(3))
    assert result.status == "line_search" and not result.converged
    assert result.message.startswith("line search failed")
    np.testing.assert_array_equal(result.x, np.ones(3))


@pytest.mark.parametrize("stop_with", ["callback", "should_stop"])
@pytest.mark.parametrize("solver", ["lbfgs", "newton_cg"])
def test_callback_false_or_should_stop_ends_the_solver(solver, stop_with):
    seen = []

    def callback(info):
        seen.append(info["iteration"])
        return False if stop_with == "callback" and info["iteration"] == 2 else None

    polls = []

    def should_stop():
        polls.append(1)
        return stop_with == "should_stop" and len(polls) > 3

    x0 = np.array([-1.2, 1.0, -1.2, 1.0])
    kwargs = {"max_iter": 100, "callback": callback, "should_stop": should_stop}
    result = (solvers.lbfgs(rosenbrock, x0, **kwargs) if solver == "lbfgs" else
              solvers.newton_cg(rosenbrock, rosenbrock_hvp, x0, **kwargs))
    expected = 2 if stop_with == "callback" else 3
    assert (result.status, result.converged, result.n_iter) == ("stopped", False, expected)
    assert seen == list(range(1, expected + 1))
    assert len(result.history["loss"]) == expected
    assert stop_with.replace("_", "") in result.message.replace("_", "").replace("()", "")


@pytest.mark.parametrize("solver", ["lbfgs", "newton_cg"])
def test_keyboard_interrupt_in_the_objective_propagates(solver):
    calls = []

    def interrupted(x):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return rosenbrock(x)
    x0 = np.array([-1.2, 1.0])
    with pytest.raises(KeyboardInterrupt):
        if solver == "lbfgs":
            solvers.lbfgs(interrupted, x0, max_iter=100)
        else:
            solvers.newton_cg(interrupted, rosenbrock_hvp, x0, max_iter=100)


def test_budgets_and_tolerances_end_with_their_status():
    x0 = np.array([-1.2, 1.0])
    result = solvers.lbfgs(rosenbrock, x0, max_iter=3, max_eval=100)
    assert (result.status, result.n_iter, result.converged) == ("max_iter", 3, False)
    result = solvers.lbfgs(rosenbrock, x0, max_iter=100, max_eval=5)
    assert result.status == "max_eval" and result.n_evals >= 5 and result.n_iter < 100
    result = solvers.lbfgs(rosenbrock, x0, max_iter=100, tolerance_change=1e-3,
                           tolerance_grad=0.0)
    assert result.converged and "tolerance_change" in result.message
    result = solvers.newton_cg(rosenbrock, rosenbrock_hvp, x0, max_iter=2)
    assert (result.status, result.n_iter) == ("max_iter", 2)
    at_optimum = solvers.lbfgs(rosenbrock, np.ones(2), max_iter=10)
    assert (at_optimum.status, at_optimum.n_iter, at_optimum.n_evals) == ("converged", 0, 1)


def test_bad_arguments_raise_value_errors():
    x0 = np.zeros(2)
    with pytest.raises(ValueError, match="max_iter"):
        solvers.lbfgs(square, x0, max_iter=-1)
    with pytest.raises(ValueError, match="history_size"):
        solvers.lbfgs(square, x0, max_iter=5, history_size=0)
    with pytest.raises(ValueError, match="line_search"):
        solvers.lbfgs(square, x0, max_iter=5, line_search="armijo")
    with pytest.raises(ValueError, match="max_cg_iter"):
        solvers.newton_cg(square, identity_hvp, x0, max_iter=5, max_cg_iter=0)
    with pytest.raises(ValueError, match="gradient of shape"):
        solvers.lbfgs(lambda x: (0.0, np.zeros(3)), x0, max_iter=5)


def test_strong_wolfe_step_meets_both_conditions():
    objective, _, _ = quadratic(3, n=6)
    x = np.ones(6)
    f0, g0 = objective(x)
    direction = -g0

    def evaluate(point):
        f, g = objective(point)
        return f, g, True
    for first_step in (1e-6, 1.0, 1e3):
        search = solvers.strong_wolfe(evaluate, x, f0, g0, direction, first_step)
        assert search.status == "ok" and search.wolfe
        p = search.point
        assert p.f <= f0 + 1e-4 * p.t * (g0 @ direction)
        assert abs(p.grad @ direction) <= 0.9 * abs(g0 @ direction)


def test_solvers_bench_runs():
    """``python bench/solvers.py`` at a small size (a smoke test: the numbers are not
    checked)."""
    done = subprocess.run([sys.executable, "bench/solvers.py", "--scale", "0.01", "--repeat",
                           "1"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for label in ("ratio objective / read", "fastopt lbfgs (defaults)",
                  "fastopt newton_cg", "sklearn newton-cholesky (defaults)"):
        assert done.stdout.count(label) == 2, done.stdout


def test_two_loop_is_the_l_bfgs_matrix_for_every_scale():
    """``_two_loop`` against the explicit inverse-Hessian estimate: H_0 = gamma I, then for
    each pair, oldest first, H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T; one row per
    scale (None: the newest pair's s^T y / y^T y)."""
    from fastopt.solvers import _two_loop

    rng = np.random.default_rng(4)
    p = 7
    A = rng.standard_normal((p, p))
    A = A @ A.T + p * np.eye(p)  # curvatures s^T y > 0
    pairs = []
    for _ in range(4):
        s = rng.standard_normal(p)
        y = A @ s
        pairs.append((s, y, 1.0 / float(s @ y)))
    g = rng.standard_normal(p)
    rows = _two_loop(g, pairs, (None, 0.25))
    newest = float(pairs[-1][0] @ pairs[-1][1]) / float(pairs[-1][1] @ pairs[-1][1])
    for row, gamma in zip(rows, (newest, 0.25)):
        H = gamma * np.eye(p)
        for s, y, rho in pairs:
            V = np.eye(p) - rho * np.outer(y, s)
            H = V.T @ H @ V + rho * np.outer(s, s)
        np.testing.assert_allclose(row, H @ g, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(_two_loop(g, pairs)[0], rows[0])
