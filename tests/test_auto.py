"""``optimizer="auto"`` and ``tol="auto"``, the estimators' defaults: the optimum to 1e-6
(relative objective gap) against scikit-learn's, Adam where a stochastic optimizer is needed,
and the warning that says how far a fit got."""

import warnings

import numpy as np
import pytest
from scipy import sparse

import fastopt as fo
from fastopt import _backends
from fastopt.engine import choose_solver, from_original_space, prepare
from fastopt.solvers import AUTO_GAP, LBFGS, lbfgs, newton_cg

sklearn_linear = pytest.importorskip("sklearn.linear_model")
ConvergenceWarning = pytest.importorskip("sklearn.exceptions").ConvergenceWarning


def standardized(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


def problem(kind, seed=0):
    """``(X, y)``, X standardised (so the estimators' default ``standardize=True`` and
    scikit-learn minimise the same function)."""
    rng = np.random.default_rng(seed)
    n, d = 3000, 12
    if kind == "ill-conditioned":  # near-collinear: 3 latent factors plus noise 1e-3
        X = rng.standard_normal((n, 3)) @ rng.standard_normal((3, d))
        X += 1e-3 * rng.standard_normal((n, d))
    else:
        X = rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d)
    X = standardized(X)
    w = rng.standard_normal(d)
    if kind == "linear":
        return X, X @ w + 3.0 + rng.standard_normal(n)
    if kind == "softmax":
        return X, np.argmax(X @ rng.standard_normal((d, 4)) + rng.gumbel(size=(n, 4)), axis=1)
    return X, (X @ w + rng.logistic(size=n) > 0).astype(int)


def counted(monkeypatch, module, name):
    """A list that gets a 1 for each call of ``module.name`` from now on."""
    calls, real = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def objective(X, y, model, penalty, alpha, coef, intercept):
    """The training objective at ``coef``/``intercept`` (no standardisation), compiled."""
    spec_problem, _ = prepare(X, y, model=model, penalty=penalty, alpha=alpha, l1_ratio=0.15,
                              fit_intercept=True, sample_weight=None, standardize=False)
    backend = _backends.resolve("auto")
    params = from_original_space(spec_problem, np.atleast_2d(coef), np.atleast_1d(intercept),
                                 np.float64)
    return float(backend.objective(backend.dataset(spec_problem), params)[0])


@pytest.mark.parametrize("kind", ["logistic", "softmax", "linear", "ill-conditioned"])
def test_the_defaults_reach_the_optimum(kind):
    X, y = problem(kind)
    n = len(y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        if kind == "linear":
            ours = fo.LinearRegression().fit(X, y)
            exact = sklearn_linear.LinearRegression().fit(X, y)
            model, penalty, alpha = "linear", None, 0.0
        else:
            ours = fo.LogisticRegression().fit(X, y)
            alpha = ours.alpha  # the default, 1e-4
            exact = sklearn_linear.LogisticRegression(C=1.0 / (alpha * n), tol=1e-12,
                                                      max_iter=10_000).fit(X, y)
            model, penalty = ("softmax" if kind == "softmax" else "logistic"), "l2"
    best = objective(X, y, model, penalty, alpha, exact.coef_, exact.intercept_)
    reached = objective(X, y, model, penalty, alpha, ours.coef_, ours.intercept_)
    assert (reached - best) / abs(best) <= 1e-6
    assert ours.grad_max_ is not None and ours.grad_max_ < 1e-3
    assert "grad_max" in ours.history_ and ours.n_iter_ < 200


@pytest.mark.parametrize("sparse_X", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_linear_regression_takes_conjugate_gradients_to_ridge_optimum(monkeypatch, sparse_X,
                                                                        dtype, weighted):
    """optimizer="auto" on linear regression runs conjugate gradients (a quadratic: one pass
    an iteration), to scikit-learn's Ridge optimum, also on sparse X, float32 and weights,
    with a y of a large scale and offset (make_regression's)."""
    from fastopt import engine, solvers
    monkeypatch.setattr(engine, "CG_MIN_ENTRIES", 0)  # this X is small: see the next test
    monkeypatch.setattr(engine, "SAMPLE_START_MIN_ROWS_PER_PARAM", np.inf)  # from zero
    runs = counted(monkeypatch, solvers, "conjugate_gradient")
    rng = np.random.default_rng(5)
    n, d = 4000, 30
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 2.0, d)
    y = X @ rng.uniform(0, 100, d) + 500.0 + rng.standard_normal(n)
    if sparse_X:
        X = sparse.csr_matrix(X * (rng.random((n, d)) < 0.3))
    X = X.astype(dtype)
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    alpha = 1.0 / n
    ours = fo.LinearRegression(penalty="l2", alpha=alpha, standardize=False).fit(
        X, y, sample_weight=weights)
    assert runs and isinstance(engine.choose_solver(
        prepare(X, y, model="linear", penalty="l2", alpha=alpha, l1_ratio=0.15,
                fit_intercept=True, sample_weight=None, standardize=False)[0]),
        solvers.ConjugateGradient)
    # Ridge minimises sum s_i r_i^2 / 2 + a |w|^2 / 2: ours (mean, alpha) times sum s_i
    s = np.ones(n) if weights is None else weights
    dense = (X.toarray() if sparse_X else X).astype(np.float64)
    exact = sklearn_linear.Ridge(alpha=alpha * s.sum(), solver="cholesky", tol=1e-12).fit(
        dense, y, sample_weight=weights)

    def loss(model):
        coef = model.coef_.ravel()
        residual = dense @ coef + model.intercept_ - y
        return s @ residual**2 / 2 / s.sum() + alpha / 2 * coef @ coef
    assert (loss(ours) - loss(exact)) / loss(exact) <= (1e-6 if dtype == np.float64 else 1e-5)
    assert ours.history_["steps"][:3] == [2, 3, 4]  # one pass an iteration, after the first


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conjugate_gradients_start_from_a_samples_solution(monkeypatch, dtype):
    """A fresh fit of linear regression under optimizer="auto" starts conjugate gradients
    from the solution on every 32nd row: the optimum in fewer passes over all of X, the
    sample's passes counted in ``steps``; a continued fit (warm_start) starts where it is."""
    from fastopt import engine
    monkeypatch.setattr(engine, "CG_MIN_ENTRIES", 0)
    samples = counted(monkeypatch, engine, "conjugate_gradient")  # the sample's solve
    rng = np.random.default_rng(8)
    n, d = 20_000, 20
    X = standardized(rng.standard_normal((n, d)) * np.linspace(0.5, 2.0, d)).astype(dtype)
    y = X @ rng.uniform(-50, 50, d) + 100.0 + 0.1 * rng.standard_normal(n)
    alpha = 1.0 / n

    def fit(**options):
        return fo.LinearRegression(penalty="l2", alpha=alpha, standardize=False,
                                   **options).fit(X, y)
    ours = fit()
    assert samples == [1]
    monkeypatch.setattr(engine, "SAMPLE_START_MIN_ROWS_PER_PARAM", np.inf)
    from_zero = fit()
    assert samples == [1]
    exact = sklearn_linear.Ridge(alpha=alpha * n, solver="cholesky").fit(
        X.astype(np.float64), y)
    X64 = X.astype(np.float64)
    best = objective(X64, y, "linear", "l2", alpha, exact.coef_, exact.intercept_)
    reached = objective(X64, y, "linear", "l2", alpha, ours.coef_, ours.intercept_)
    assert (reached - best) / abs(best) <= (1e-6 if dtype == np.float64 else 1e-5)
    # the sample's solve: 1 pass (rounded up), then fewer of the full problem's
    assert ours.history_["steps"][-1] < from_zero.history_["steps"][-1]
    assert len(ours.history_["steps"]) < len(from_zero.history_["steps"])
    assert ours.history_["steps"][0] == 3  # the sample's pass, the gradient, one iteration
    monkeypatch.setattr(engine, "SAMPLE_START_MIN_ROWS_PER_PARAM", 0)
    ours.set_params(warm_start=True).fit(X, y)
    assert samples == [1]


def test_a_sample_solve_that_does_not_converge_is_not_the_start(monkeypatch):
    """Where the sample's conjugate gradients stop short of their tolerance (an
    ill-conditioned problem), the fit starts from zero: the same iterates as without the
    sample, one pass more in ``steps``."""
    from fastopt import engine
    monkeypatch.setattr(engine, "CG_MIN_ENTRIES", 0)
    monkeypatch.setattr(engine, "SAMPLE_START_MAX_ITER", 2)
    rng = np.random.default_rng(9)
    n, d = 20_000, 20
    X = standardized(rng.standard_normal((n, 4)) @ rng.standard_normal((4, d))
                     + 1e-2 * rng.standard_normal((n, d)))
    y = X @ rng.standard_normal(d) + rng.standard_normal(n)
    short = fo.LinearRegression(penalty="l2", alpha=1e-6, standardize=False).fit(X, y)
    monkeypatch.setattr(engine, "SAMPLE_START_MIN_ROWS_PER_PARAM", np.inf)
    from_zero = fo.LinearRegression(penalty="l2", alpha=1e-6, standardize=False).fit(X, y)
    np.testing.assert_array_equal(short.coef_, from_zero.coef_)
    assert short.history_["steps"] == [step + 1 for step in from_zero.history_["steps"]]


def test_linear_regression_takes_the_compiled_lbfgs_below_a_million_entries(monkeypatch):
    """Conjugate gradients run in Python: below CG_MIN_ENTRIES the compiled L-BFGS loop is
    faster (cpp backend); at or above it, and on backends without that loop, CG."""
    from fastopt import engine, solvers
    X, y = problem("linear")  # 3000 x 12
    prepared, _ = prepare(X, y, model="linear", penalty="l2", alpha=1e-3, l1_ratio=0.15,
                          fit_intercept=True, sample_weight=None)
    cpp, numpy_backend = _backends.resolve("cpp"), _backends.resolve("numpy")
    assert isinstance(engine.choose_solver(prepared, cpp), LBFGS)
    assert isinstance(engine.choose_solver(prepared, numpy_backend), solvers.ConjugateGradient)
    monkeypatch.setattr(engine, "CG_MIN_ENTRIES", X.size)
    assert isinstance(engine.choose_solver(prepared, cpp), solvers.ConjugateGradient)
    sparse_X, _ = prepare(sparse.csr_matrix(X * (X > 1)), y, model="linear", penalty="l2",
                          alpha=1e-3, l1_ratio=0.15, fit_intercept=True, sample_weight=None)
    assert isinstance(engine.choose_solver(sparse_X, cpp), LBFGS)  # nnz, not n d, count


def test_sampled_newton_hands_over_to_lbfgs_where_its_steps_are_cut(monkeypatch):
    """Well-separated classes: the sample's Hessian misses the rows near the boundary, the line
    search cuts Newton's steps, and L-BFGS takes over from where they got to; the fit still
    ends at scikit-learn's optimum, with one history of both."""
    from fastopt import engine
    handed = []
    real = engine._solve_full_batch
    monkeypatch.setattr(engine, "_solve_full_batch",
                        lambda *a, **k: handed.append(k["solver"]) or real(*a, **k))
    rng = np.random.default_rng(1)
    n, d = 40_000, 50
    X = rng.standard_normal((n, d))
    y = np.sign(X @ rng.standard_normal(d)).astype(int)
    alpha = 1.0 / n
    problem_ = prepare(X, y, model="logistic", penalty="l2", alpha=alpha, l1_ratio=0.15,
                       fit_intercept=True, sample_weight=None, standardize=False)[0]
    assert engine.hessian_sample_rows(problem_) is not None  # the sampled route is taken
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = fo.LogisticRegression(alpha=alpha, standardize=False).fit(X, y)
    assert len(handed) == 1 and isinstance(handed[0], fo.LBFGS)
    history = ours.history_
    assert history["epoch"] == list(range(1, ours.n_iter_ + 1))
    assert all(len(values) == ours.n_iter_ for values in history.values())
    assert history["steps"] == sorted(history["steps"])
    exact = sklearn_linear.LogisticRegression(C=1.0 / (alpha * n), tol=1e-12,
                                              max_iter=10_000).fit(X, y)
    best = objective(X, y, "logistic", "l2", alpha, exact.coef_, exact.intercept_)
    reached = objective(X, y, "logistic", "l2", alpha, ours.coef_, ours.intercept_)
    assert (reached - best) / abs(best) <= 1e-6


def test_sparse_input_reaches_the_optimum():
    rng = np.random.default_rng(3)
    X = sparse.random(2000, 300, density=0.05, format="csr", random_state=4)
    y = (X @ rng.standard_normal(300) + 0.2 * rng.logistic(size=2000) > 0).astype(int)
    alpha = 1e-3
    ours = fo.LogisticRegression(alpha=alpha, standardize=False).fit(X, y)
    exact = sklearn_linear.LogisticRegression(C=1.0 / (alpha * 2000), tol=1e-12,
                                              max_iter=10_000).fit(X, y)
    best = objective(X, y, "logistic", "l2", alpha, exact.coef_, exact.intercept_)
    reached = objective(X, y, "logistic", "l2", alpha, ours.coef_, ours.intercept_)
    assert (reached - best) / abs(best) <= 1e-6


def test_auto_is_lbfgs_for_smooth_objectives_and_adam_for_partial_fit():
    X, y = problem("logistic")
    auto = fo.LogisticRegression().fit(X, y)
    named = fo.LogisticRegression(optimizer=LBFGS()).fit(X, y)
    np.testing.assert_array_equal(auto.coef_, named.coef_)
    assert auto.history_["gap"][-1] <= AUTO_GAP < auto.history_["gap"][0]
    # partial_fit (and early stopping) train with Adam at the estimators' learning rate.
    stepped = fo.LogisticRegression(random_state=0).partial_fit(X, y, classes=[0, 1])
    adam = fo.LogisticRegression(optimizer="adam", random_state=0).partial_fit(
        X, y, classes=[0, 1])
    np.testing.assert_array_equal(stepped.coef_, adam.coef_)
    assert stepped.history_["lr"] == [0.01] and stepped.grad_max_ is None
    early = fo.LogisticRegression(early_stopping=True, random_state=0, epochs=3,
                                  tol=None).fit(X, y)
    assert "val_loss" in early.history_


def test_auto_chooses_by_penalty():
    X, y = problem("logistic")
    smooth, _ = prepare(X, y, model="logistic", penalty="l2", alpha=1e-3, l1_ratio=0.15,
                        fit_intercept=True, sample_weight=None)
    assert isinstance(choose_solver(smooth), LBFGS)
    sparse_penalty, _ = prepare(X, y, model="logistic", penalty="l1", alpha=1e-3,
                                l1_ratio=0.15, fit_intercept=True, sample_weight=None)
    assert isinstance(choose_solver(sparse_penalty), fo.SAGA)


@pytest.mark.parametrize("kind, penalty", [("logistic", "l1"), ("linear", "l1"),
                                           ("linear", "elasticnet")])
def test_the_defaults_reach_the_optimum_of_an_l1_penalty(kind, penalty):
    X, y = problem(kind, seed=4)
    n, alpha = len(y), 3e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        if kind == "linear":
            ours = fo.LinearRegression(penalty=penalty, alpha=alpha, standardize=False,
                                       random_state=0).fit(X, y)
            l1_ratio = 1.0 if penalty == "l1" else ours.l1_ratio
            exact = sklearn_linear.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-14,
                                              max_iter=100_000).fit(X, y)
        else:
            ours = fo.LogisticRegression(penalty=penalty, alpha=alpha, standardize=False,
                                         random_state=0).fit(X, y)
            exact = sklearn_linear.LogisticRegression(
                l1_ratio=1.0, C=1.0 / (alpha * n), solver="saga", tol=1e-12,
                max_iter=100_000).fit(X, y)
    model = "linear" if kind == "linear" else "logistic"
    best = objective(X, y, model, penalty, alpha, exact.coef_, exact.intercept_)
    reached = objective(X, y, model, penalty, alpha, ours.coef_, ours.intercept_)
    assert (reached - best) / abs(best) <= 1e-6
    assert ours.grad_max_ is None and ours.history_["change"][-1] <= 1e-5


def test_a_fit_short_of_the_optimum_says_how_far_it_got():
    X, y = problem("softmax")
    with pytest.warns(ConvergenceWarning, match=r"Maximum number of epochs \(3\) reached "
                      r"before the estimated relative distance to the optimum fell to 1e-07: "
                      r"it is [0-9.e-]+, the gradient's largest entry"):
        est = fo.LogisticRegression(epochs=3).fit(X, y)
    # epochs limits the iterations and (x 5/4) the objective evaluations, as torch's max_eval
    assert 1 <= est.n_iter_ <= 3 and est.history_["gap"][-1] > AUTO_GAP


def test_tol_auto_for_a_first_order_optimizer_is_the_stall_rule_of_1e_4():
    X, y = problem("linear")
    auto = fo.LinearRegression(optimizer="adam", random_state=0).fit(X, y)
    number = fo.LinearRegression(optimizer="adam", tol=1e-4, random_state=0).fit(X, y)
    assert auto.loss_curve_ == number.loss_curve_
    with pytest.raises(ValueError, match="tol"):
        fo.LinearRegression(tol="fast").fit(X, y)


def test_a_bad_random_state_is_refused_by_a_solver_too():
    X, y = problem("linear")
    with pytest.raises(ValueError, match="random_state"):
        fo.LinearRegression(random_state=-3).fit(X, y)
    with pytest.raises(ValueError, match="random_state"):
        fo.LinearRegression(random_state="seed").fit(X, y)


def quadratic(H, b):
    def f(x):
        return 0.5 * x @ H @ x - b @ x + 10.0, H @ x - b
    return f


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_the_gap_tolerance_stops_near_the_optimum(solver):
    rng = np.random.default_rng(5)
    A = rng.standard_normal((30, 30))
    H = A @ A.T / 30 + np.eye(30)
    b = rng.standard_normal(30)
    f = quadratic(H, b)
    best = f(np.linalg.solve(H, b))[0]
    for gap in (1e-4, 1e-8):
        if solver == "lbfgs":
            run = lbfgs(f, np.zeros(30), max_iter=500, tolerance_grad=0.0,
                        tolerance_change=0.0, tolerance_gap=gap)
        else:
            run = newton_cg(f, lambda x, v: H @ v, np.zeros(30), max_iter=500, tol=0.0,
                            tolerance_gap=gap)
        assert run.status == "converged" and "tolerance_gap" in run.message
        assert (run.f - best) / abs(best) <= 10 * gap
        assert run.n_iter < 500
    loose = lbfgs(f, np.zeros(30), max_iter=500, tolerance_grad=0.0, tolerance_change=0.0,
                  tolerance_gap=1e-2)
    assert (loose.f - best) / abs(best) > 1e-8  # the tolerance decides where it stops


def tall_problem(n=24_000, d=10, seed=5, dtype=np.float64, classes=2):
    """Dense logistic regression with many more rows than parameters, where
    ``optimizer="auto"`` takes Newton's method with a sampled Hessian; near-collinear
    features (L-BFGS needs many passes there)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) @ rng.standard_normal((3, d)) + 0.01 * rng.standard_normal(
        (n, d))
    X = standardized(X)
    if classes > 2:
        y = np.argmax(X @ rng.standard_normal((d, classes)) + rng.gumbel(size=(n, classes)),
                      axis=1)
    else:
        y = (X @ rng.standard_normal(d) + rng.logistic(size=n) > 0).astype(int)
    return X.astype(dtype), y


def test_tall_dense_logistic_problems_take_newton_with_a_sampled_hessian(monkeypatch):
    from fastopt.engine import hessian_sample_rows
    X, y = tall_problem()
    kw = dict(l1_ratio=0.15, fit_intercept=True, sample_weight=None)
    tall, _ = prepare(X, y, model="logistic", penalty="l2", alpha=1e-3, **kw)
    assert hessian_sample_rows(tall) == 2000  # max(2000, 20 p), p = 11
    three = y % 2 + (X[:, 0] > 1)
    softmax, _ = prepare(X, three, model="softmax", penalty="l2", alpha=1e-3, **kw)
    assert hessian_sample_rows(softmax) == 2000  # max(2000, 8 p), p = 33
    # Not where the sample would be over a tenth of the rows, or its Hessian costly (p large
    # for n), nor for sparse X, linear regression or an l1 penalty.
    short, _ = prepare(X[:19_000], y[:19_000], model="logistic", penalty="l2", alpha=1e-3, **kw)
    assert hessian_sample_rows(short) is None
    wide, _ = prepare(np.hstack([X] * 12), y, model="logistic", penalty="l2", alpha=1e-3, **kw)
    assert hessian_sample_rows(wide) is None  # p = 121: 2420 p^2 over 6 times 2 n p
    wide_softmax, _ = prepare(np.hstack([X] * 6), three, model="softmax", penalty="l2",
                              alpha=1e-3, **kw)
    assert hessian_sample_rows(wide_softmax) is None  # p = 183: 2000 p^2 / 2 over 2 x 2 n p
    # Nor with more parameters than Newton's method takes (newton_fit would refuse them),
    # however many rows there are.
    from fastopt import engine
    monkeypatch.setattr(engine, "NEWTON_MAX_PARAMS", 32)
    assert hessian_sample_rows(softmax) is None  # p = 33
    monkeypatch.undo()
    others = [prepare(sparse.csr_matrix(X), y, model="logistic", penalty="l2", alpha=1e-3, **kw),
              prepare(X, X @ np.ones(10), model="linear", penalty="l2", alpha=1e-3, **kw),
              prepare(X, y, model="logistic", penalty="l1", alpha=1e-3, **kw)]
    assert all(hessian_sample_rows(p) is None for p, _ in others)
    # The estimator's default takes it (Newton's history: a decrement per step, few steps);
    # a number as tol keeps L-BFGS.
    auto = fo.LogisticRegression(alpha=1e-3).fit(X, y)
    assert "gap" in auto.history_ and auto.n_iter_ <= 15
    assert auto.history_["steps"] == list(range(1, auto.n_iter_ + 1))
    numbered = fo.LogisticRegression(alpha=1e-3, tol=1e-6).fit(X, y)
    assert numbered.n_iter_ > auto.n_iter_ and numbered.history_["steps"][-1] > auto.n_iter_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted, standardize", [(False, False), (True, True)])
@pytest.mark.parametrize("classes", [2, 3])
def test_newton_with_a_sampled_hessian_reaches_the_optimum(dtype, weighted, standardize,
                                                           classes):
    X, y = tall_problem(dtype=dtype, classes=classes)
    n, alpha = len(y), 1e-4
    weights = np.random.default_rng(1).uniform(0.2, 3.0, n) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = fo.LogisticRegression(alpha=alpha, standardize=standardize).fit(
            X, y, sample_weight=weights)
    assert "gap" in ours.history_ and ours.history_["gap"][-1] > AUTO_GAP  # Newton's history
    exact = sklearn_linear.LogisticRegression(C=1.0 / (alpha * n), tol=1e-12, max_iter=10_000,
                                              solver="newton-cholesky")
    exact.fit(X.astype(np.float64), y, sample_weight=weights)
    spec_problem, _ = prepare(X.astype(np.float64), y,
                              model="logistic" if classes == 2 else "softmax", penalty="l2",
                              alpha=alpha, l1_ratio=0.15, fit_intercept=True,
                              sample_weight=weights, standardize=False)
    backend = _backends.resolve("auto")
    data = backend.dataset(spec_problem)

    def value(est):
        params = from_original_space(spec_problem, est.coef_, est.intercept_, np.float64)
        return float(backend.objective(data, params)[0])
    best = value(exact)
    assert (value(ours) - best) / abs(best) <= 1e-6
    assert ours.grad_max_ < 1e-3
    # The same fit on two threads (the passes add their row blocks in a fixed order).
    twice = fo.LogisticRegression(alpha=alpha, standardize=standardize, n_jobs=2).fit(
        X, y, sample_weight=weights)
    np.testing.assert_array_equal(twice.coef_, ours.coef_)


@pytest.mark.parametrize("rows", [slice(7, 8), slice(None, None, 10)])
def test_newton_with_a_sampled_hessian_names_nan_in_x(rows):
    # One bad row (likely outside the sample: found by the first pass) or many (in it).
    X, y = tall_problem()
    X[rows, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fo.LogisticRegression(alpha=1e-3, standardize=False).fit(X, y)


def test_newton_with_a_sampled_hessian_says_how_far_it_got():
    X, y = tall_problem()
    with pytest.warns(ConvergenceWarning, match=r"Maximum number of epochs \(2\) reached "
                      r"before the estimated relative distance to the optimum fell to 1e-07: "
                      r"it is [0-9.e-]+, the gradient's largest entry"):
        est = fo.LogisticRegression(alpha=1e-4, epochs=2).fit(X, y)
    assert est.n_iter_ == 2 and est.history_["gap"][-1] > AUTO_GAP


def test_separable_classes_without_a_penalty_end_at_a_vanishing_loss():
    # No optimum exists: the loss fades towards 0 as the coefficients grow. L-BFGS's newest
    # pair then had y^T y underflow to 0 and the fit died with ZeroDivisionError; the
    # sampled-Hessian route is not taken without a penalty (its steps would grow for all of
    # epochs).
    from fastopt.engine import hessian_sample_rows
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30_000, 5))
    y = (X @ rng.standard_normal(5) > 0).astype(int)
    unpenalised, _ = prepare(X, y, model="logistic", penalty=None, alpha=0.0, l1_ratio=0.15,
                             fit_intercept=True, sample_weight=None)
    assert hessian_sample_rows(unpenalised) is None
    est = fo.LogisticRegression(penalty=None).fit(X, y)
    assert est.history_["loss"][-1] < 1e-100 and est.score(X, y) == 1.0


def test_sampled_hessian_solves_the_singular_softmax_hessian_as_least_squares_does():
    # Softmax with intercepts: the Hessian is singular along the shift of every intercept by
    # one amount, where the gradient has no component. The curvature SampledHessian adds
    # there makes an LU solve possible and must give least squares' (minimum-norm) answer.
    from fastopt.newton import SampledHessian, hessian
    X, y = tall_problem(n=3000, classes=3)
    problem_, _ = prepare(X, y, model="softmax", penalty="l2", alpha=1e-3, l1_ratio=0.15,
                          fit_intercept=True, sample_weight=None)
    rng = np.random.default_rng(2)
    params = rng.standard_normal(problem_.spec.n_params)
    grad = _backends.resolve("numpy").objective(
        _backends.resolve("numpy").dataset(problem_), params)[1]
    H = hessian(problem_, params)
    assert np.linalg.matrix_rank(H) == len(H) - 1
    least_squares = np.linalg.lstsq(H, grad, rcond=None)[0]
    direction = SampledHessian(problem_)(problem_, params, grad)
    np.testing.assert_allclose(direction, least_squares, rtol=1e-8, atol=1e-10)
    # It is a solve, not least squares again: the Hessian it solves is invertible.
    solver = SampledHessian(problem_)
    solver(problem_, params, grad)
    assert np.linalg.matrix_rank(solver.H) == len(H)


def test_sampled_hessian_keeps_a_costly_hessian_for_later_steps(monkeypatch):
    from fastopt import newton
    X, y = tall_problem(n=3000, classes=3)
    problem_, _ = prepare(X, y, model="softmax", penalty="l2", alpha=1e-3, l1_ratio=0.15,
                          fit_intercept=True, sample_weight=None)
    at = []
    monkeypatch.setattr(newton, "hessian", lambda sample, w: (at.append(len(at)), np.eye(33))[1])
    for keep, expected in ((True, [0, 1, 3, 6]), (False, list(range(7)))):
        at.clear()
        solver = newton.SampledHessian(problem_, keep=keep)
        calls = []
        for step in range(7):
            before = len(at)
            solver(problem_, np.zeros(33), np.ones(33))
            if len(at) > before:
                calls.append(step)
        assert calls == expected


@pytest.mark.parametrize("model, classes", [("logistic", 2), ("softmax", 4)])
@pytest.mark.parametrize("standardize", [False, True])
def test_hessian_at_zero_is_the_hessian(model, classes, standardize):
    # At zero parameters hessian() takes one product of the rows (every row's probabilities
    # are the same there); it must be the Hessian the general path gives next to zero.
    from fastopt.newton import hessian
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3000, 7)) * 3.0 + 1.0
    y = rng.integers(0, classes, 3000)
    problem_, _ = prepare(X, y, model=model, penalty="l2", alpha=1e-3, l1_ratio=0.15,
                          fit_intercept=True, sample_weight=rng.uniform(0.5, 2.0, 3000),
                          standardize=standardize)
    p = problem_.spec.n_params
    at_zero, next_to_zero = hessian(problem_, np.zeros(p)), hessian(problem_, np.full(p, 1e-300))
    np.testing.assert_allclose(at_zero, next_to_zero, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(at_zero, at_zero.T, rtol=1e-12, atol=1e-14)
