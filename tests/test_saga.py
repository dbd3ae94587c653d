"""SAGA (``optimizer="saga"``): the compiled epochs against the NumPy reference on the same
row order, the optimum against scikit-learn's, and the errors and warnings (Ctrl-C:
tests/test_interrupt.py)."""

import warnings

import numpy as np
import pytest
from scipy import sparse

import fastopt as fo
from fastopt import _backends
from fastopt.engine import prepare
from fastopt.reference import saga as reference

sklearn_linear = pytest.importorskip("sklearn.linear_model")
ConvergenceWarning = pytest.importorskip("sklearn.exceptions").ConvergenceWarning
needs_cpp = pytest.mark.skipif(_backends._core is None, reason="no compiled module")

MODELS = ["linear", "logistic", "softmax"]
PENALTIES = [None, "l2", "l1", "elasticnet"]


def data(model, n=200, d=6, density=1.0, seed=0):
    """Features of unit scale (SAGA's step follows the largest row), ``density`` of them
    non-zero, and targets of ``model`` that two of the six do not influence."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 1.5, d)
    X[rng.random((n, d)) >= density] = 0.0
    w = rng.standard_normal(d)
    w[1::3] = 0.0  # features that do not matter: the L1 term zeroes them
    if model == "linear":
        return X, X @ w + 2.0 + 0.3 * rng.standard_normal(n)
    if model == "logistic":
        return X, (X @ w + 0.8 * rng.standard_normal(n) > 0.3).astype(int)
    W = rng.standard_normal((d, 3)) * (w != 0)[:, None]
    return X, np.argmax(X @ W + rng.standard_normal((n, 3)), axis=1)


def fit_saga(X, y, model, penalty, alpha=0.05, **options):
    options = {"epochs": 3, "tol": None, "random_state": 5, **options}
    return fo.fit(X, y, model=model, optimizer="saga", penalty=penalty, alpha=alpha,
                  l1_ratio=0.5, **options)


@needs_cpp
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("model", MODELS)
def test_compiled_epochs_follow_the_reference(model, penalty, dtype, layout, standardize):
    """Same rows in the same order: the same iterates to rounding, epoch after epoch. Sparse X
    with few entries per column makes the lazy columns wait many rows between updates, and
    the L1 threshold (alpha large enough to zero coefficients) makes them cross zero there."""
    X, y = data(model, n=120, density=0.3 if layout == "csr" else 1.0)
    X = X.astype(dtype)
    if layout == "csr":
        X = sparse.csr_matrix(X)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    histories = {}
    for backend in ("cpp", "numpy"):
        histories[backend] = fit_saga(X, y, model, penalty, standardize=standardize,
                                      alpha=0.3 if model == "linear" else 0.1,
                                      sample_weight=weights, backend=backend, epochs=4)
    fast, slow = histories["cpp"], histories["numpy"]
    scale = np.abs(slow.coef_).max()
    rtol = 1e-12 if dtype == np.float64 else 1e-6  # float32: the final rounding of w
    np.testing.assert_allclose(fast.coef_, slow.coef_, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(fast.intercept_, slow.intercept_, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(fast.history["loss"], slow.history["loss"], rtol=1e-12)
    np.testing.assert_allclose(fast.history["change"], slow.history["change"], rtol=1e-8)
    if penalty in ("l1", "elasticnet"):
        assert (np.atleast_2d(fast.coef_) == 0).any()  # the threshold was at work


@needs_cpp
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("model", MODELS)
def test_without_intercept_and_on_one_row(model, layout):
    """No intercept (no intercept coordinates in w, sums or the update), and a single row."""
    X, y = data(model, n=90, density=0.4 if layout == "csr" else 1.0)
    X = sparse.csr_matrix(X) if layout == "csr" else X
    for rows in (slice(None), slice(0, 1)):
        if model != "linear" and rows.stop == 1:
            continue  # one row is one class
        fits = [fit_saga(X[rows], y[rows], model, "elasticnet", alpha=0.1, fit_intercept=False,
                         backend=backend, epochs=3) for backend in ("cpp", "numpy")]
        np.testing.assert_allclose(fits[0].coef_, fits[1].coef_, rtol=1e-12, atol=1e-14)
        assert np.all(fits[0].intercept_ == 0.0)


@needs_cpp
@pytest.mark.parametrize("penalty, alpha, g, start", [
    ("l1", 0.1, 0.2, 0.5),            # crosses zero and goes on to the other side
    ("l1", 0.1, -0.05, -0.3),         # reaches zero and stays: |g| <= lambda_1
    ("l1", 0.1, 0.05, 0.0),           # starts at zero and stays
    ("l1", 0.1, -0.3, 0.0),           # leaves zero
    ("elasticnet", 0.4, 0.3, 0.6),    # the same with the L2 decay (pieces on exp)
    ("elasticnet", 0.4, -0.04, 0.2),
    ("l2", 0.5, 0.1, 0.4),
    (None, 0.0, 0.1, 0.4),
])
def test_the_closed_form_catch_up_is_the_loop_of_row_updates(penalty, alpha, g, start):
    """A column with one entry waits for 49 of an epoch's 50 rows: the compiled kernel
    catches it up in closed form, the reference takes every row's update. A state chosen so
    that the waiting coefficient crosses zero, stays there, or leaves it."""
    X = np.zeros((50, 2))
    X[:, 0] = np.linspace(-1.0, 1.0, 50)
    X[7, 1] = 1.0
    y = X[:, 0].copy()
    problem, _ = prepare(sparse.csr_matrix(X), y, model="linear", penalty=penalty,
                         alpha=alpha, l1_ratio=0.5, fit_intercept=True, sample_weight=None,
                         backend="cpp")
    states = []
    for _ in range(2):
        state = reference.new_state(problem.spec, 50, np.array([0.1, start, 0.0]))
        state.sums[1] = 50 * g
        states.append(state)
    step = 0.05
    reference.saga_epoch(problem.spec, problem.X, problem.y, None, None, None, states[0],
                         step, 3, 0)
    _backends.resolve("cpp").saga_epoch(_backends.resolve("cpp").dataset(problem), states[1],
                                        step, 3, 0)
    np.testing.assert_allclose(states[1].w, states[0].w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(states[1].sums, states[0].sums, rtol=1e-12, atol=1e-15)


def test_reference_catch_up_loop_matches_the_row_rule():
    state_w = 0.8
    step, l1, l2, g = 0.1, 0.5, 0.2, 1.3
    expected = state_w
    for _ in range(25):
        expected = float(reference.soft_threshold((1 - step * l2) * expected - step * g,
                                                  step * l1))
    assert reference.catch_up(state_w, g, 25, step, l1, l2) == expected < 0


def sklearn_optimum(model, penalty, X, y, alpha, l1_ratio):
    """scikit-learn's optimum of mean loss + alpha (rho |W|_1 + (1 - rho) / 2 |W|^2), softmax
    centred (its unpenalised scores are defined up to a constant)."""
    n = X.shape[0]
    if model == "linear":
        est = {None: lambda: sklearn_linear.LinearRegression(),
               "l2": lambda: sklearn_linear.Ridge(alpha=alpha * n, tol=1e-12),
               "l1": lambda: sklearn_linear.Lasso(alpha=alpha, tol=1e-14, max_iter=100_000),
               "elasticnet": lambda: sklearn_linear.ElasticNet(
                   alpha=alpha, l1_ratio=l1_ratio, tol=1e-14, max_iter=100_000)}[penalty]()
    else:
        options = {None: {"penalty": None}, "l2": {},
                   "l1": {"penalty": "l1", "solver": "saga"},
                   "elasticnet": {"penalty": "elasticnet", "solver": "saga",
                                  "l1_ratio": l1_ratio}}[penalty]
        est = sklearn_linear.LogisticRegression(C=1.0 / (alpha * n), tol=1e-14,
                                                max_iter=100_000, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's own ConvergenceWarning at tol=1e-14
        est.fit(X, y)
    return centred(model, est.coef_, est.intercept_)


def centred(model, coef, intercept):
    coef, intercept = np.atleast_2d(coef), np.atleast_1d(intercept)
    if model == "softmax":
        coef, intercept = coef - coef.mean(axis=0), intercept - intercept.mean()
    return coef, intercept


# Every model, penalty, dtype and layout on the compiled kernel; the reference (slow) on
# dense float64, without unpenalised classifiers (thousands of epochs).
OPTIMUM_CASES = (
    [(model, penalty, dtype, layout, "cpp") for model in MODELS for penalty in PENALTIES
     for dtype in (np.float64, np.float32) for layout in ("dense", "csr")]
    + [(model, penalty, np.float64, "dense", "numpy") for model in MODELS
       for penalty in PENALTIES if model == "linear" or penalty is not None])


@pytest.mark.parametrize("model, penalty, dtype, layout, backend", OPTIMUM_CASES)
def test_saga_reaches_sklearns_optimum(model, penalty, dtype, layout, backend):
    if backend == "cpp" and _backends._core is None:
        pytest.skip("no compiled module")
    X, y = data(model, density=0.6 if layout == "csr" else 1.0)
    alpha, l1_ratio = 0.02, 0.5
    Xf = X.astype(dtype)
    fitted = fo.fit(sparse.csr_matrix(Xf) if layout == "csr" else Xf, y, model=model,
                    optimizer="saga", penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                    epochs=5000 if backend == "cpp" else 600, tol=1e-11, random_state=0,
                    backend=backend)
    assert fitted.converged and fitted.n_iter_ == len(fitted.history["change"])
    coef, intercept = centred(model, fitted.coef_, fitted.intercept_)
    expected_coef, expected_intercept = sklearn_optimum(
        model, penalty, Xf.astype(np.float64), y, alpha, l1_ratio)
    scale = np.abs(expected_coef).max()
    np.testing.assert_allclose(coef, expected_coef, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(intercept, expected_intercept, rtol=1e-6, atol=1e-6 * scale)


@needs_cpp
def test_the_estimators_take_saga():
    X, y = data("logistic")
    n = len(y)
    est = fo.LogisticRegression(optimizer="saga", penalty="l2", alpha=0.02, epochs=2000,
                                tol=1e-11, standardize=False, random_state=0).fit(X, y)
    expected, _ = sklearn_optimum("logistic", "l2", X, y, 0.02, 0.5)
    np.testing.assert_allclose(est.coef_, expected, rtol=1e-6, atol=1e-6)
    assert not hasattr(est, "partial_fit")  # a solver of the whole data set, as lbfgs
    X, y = data("linear")
    est = fo.LinearRegression(optimizer=fo.SAGA(tol=1e-12), penalty="l2", alpha=0.02,
                              epochs=2000, standardize=False, random_state=0).fit(X, y)
    ridge = sklearn_linear.Ridge(alpha=0.02 * n).fit(X, y)
    np.testing.assert_allclose(est.coef_, ridge.coef_, rtol=1e-6)


def test_the_table_must_fit_in_memory(monkeypatch):
    X, y = data("softmax", n=1000)
    monkeypatch.setattr("fastopt.solvers.available_memory", lambda: 40_000)
    with pytest.raises(ValueError, match=r"table of 24000 bytes .* 40000 bytes .*'lbfgs'"):
        fo.fit(X, y, model="softmax", optimizer="saga", epochs=2, tol=None)
    monkeypatch.setattr("fastopt.solvers.available_memory", lambda: 48_000)
    fo.fit(X, y, model="softmax", optimizer="saga", epochs=2, tol=None)  # just fits


def test_available_memory_is_a_plausible_number():
    from fastopt.solvers import available_memory
    available = available_memory()
    assert available is None or 2**20 < available < 2**50


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_running_out_of_epochs_warns_with_the_change(backend):
    if backend == "cpp" and _backends._core is None:
        pytest.skip("no compiled module")
    X, y = data("logistic")
    with pytest.warns(ConvergenceWarning, match="largest change .* tol=1e-09"):
        fitted = fo.fit(X, y, model="logistic", optimizer="saga", epochs=3, tol=1e-9,
                        backend=backend)
    assert not fitted.converged and len(fitted.history["change"]) == 3
    assert fitted.history["steps"] == [1, 2, 3]  # passes over X


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_a_step_too_long_is_a_divergence_error(backend):
    if backend == "cpp" and _backends._core is None:
        pytest.skip("no compiled module")
    X, y = data("linear")
    with pytest.raises(fo.DivergenceError, match="SAGA: .*non-finite at epoch 1, row"):
        fo.fit(X * 1e3, y, model="linear", optimizer=fo.SAGA(step_size=10.0), epochs=5,
               tol=None, backend=backend)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="step_size"):
        fo.SAGA(step_size=-1.0)
    with pytest.raises(ValueError, match="tol"):
        fo.SAGA(tol=-1.0)
    X, y = data("linear")
    with pytest.raises(ValueError, match="step_size=2 times the L2 strength 1 must be < 1"):
        fo.fit(X, y, optimizer=fo.SAGA(step_size=2.0), penalty="l2", alpha=1.0)


def test_backends_without_a_saga_kernel_say_so():
    X, y = data("linear")
    without = _backends.resolve("numpy")._replace(name="cuda", saga_epoch=None)
    with pytest.raises(ValueError, match="no kernel on backend 'cuda'"):
        fo.fit(X, y, optimizer="saga", backend=without)


@needs_cpp
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("penalty", ["l2", "elasticnet"])
@pytest.mark.parametrize("model", MODELS)
def test_the_numba_kernel_follows_the_compiled_one(model, penalty, layout):
    """Numba's copy of the kernel: the same iterates (the same operations, to rounding)."""
    if _backends._numba() is None:
        pytest.skip("Numba unavailable")
    X, y = data(model, n=150, density=0.3 if layout == "csr" else 1.0)
    if layout == "csr":
        X = sparse.csr_matrix(X.astype(np.float32))
    for standardize in (False, True):
        fits = [fit_saga(X, y, model, penalty, alpha=0.1, standardize=standardize,
                         backend=backend, epochs=3) for backend in ("cpp", "numba")]
        scale = np.abs(fits[0].coef_).max()
        np.testing.assert_allclose(fits[1].coef_, fits[0].coef_, rtol=1e-12,
                                   atol=1e-12 * scale)
        np.testing.assert_allclose(fits[1].history["loss"], fits[0].history["loss"],
                                   rtol=1e-12)


def test_the_auto_step_follows_sklearns_rule():
    """scikit-learn's get_auto_step_size for SAGA, on rows scaled by their weights."""
    X, y = data("logistic")
    problem, _ = prepare(X, y, model="logistic", penalty="l2", alpha=0.01, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, backend="numpy")
    L = 0.25 * (np.max(np.sum(X * X, axis=1)) + 1.0) + 0.01
    expected = 1.0 / (2 * L + min(2 * len(y) * 0.01, L))
    step = reference.auto_step_size(problem.spec, problem.X, None, None, None)
    assert step == pytest.approx(expected, rel=1e-12)



def test_one_standardised_row_has_a_flat_objective_and_a_step():
    """One row, standardised: every feature is 0 and a linear model trains no intercept, so
    the Lipschitz bound is 0 (scikit-learn's check_fit2d_1sample found the division by it)."""
    X, y = data("linear", n=1)
    fitted = fo.fit(X, y, model="linear", optimizer="saga", standardize=True, epochs=2,
                    tol=None)
    assert np.all(fitted.coef_ == 0.0) and fitted.intercept_ == pytest.approx(y[0])


def test_the_auto_step_is_the_same_for_dense_and_sparse_rows():
    """CSR rows' norms are taken without densifying them, standardised ones included."""
    X, y = data("softmax", density=0.4)
    weights = np.linspace(0.5, 2.0, len(y))
    steps = []
    for layout in (X, sparse.csr_matrix(X)):
        problem, _ = prepare(layout, y, model="softmax", penalty="elasticnet", alpha=0.01,
                             l1_ratio=0.5, fit_intercept=True, sample_weight=weights,
                             backend="numpy", standardize=True)
        steps.append(reference.auto_step_size(problem.spec, problem.X, problem.sample_weight,
                                              problem.mean, problem.inv_std))
    dense = (X - problem.mean) * problem.inv_std
    L = 0.5 * np.max(problem.sample_weight * (np.sum(dense * dense, axis=1) + 1.0)) + 0.005
    assert steps[0] == pytest.approx(1.0 / (2 * L + min(2 * len(y) * 0.005, L)), rel=1e-12)
    assert steps[1] == pytest.approx(steps[0], rel=1e-12)


@needs_cpp
def test_compare_counts_saga_in_passes():
    # The default problem (breast cancer, alpha=1e-3) is ill-conditioned for SAGA: a few
    # hundred epochs to 1e-2 (scikit-learn's saga alike).
    result = fo.compare(optimizers=["saga"], epochs=300, target_gap=1e-2, progress=False)
    row = result.rows[0]
    history = result.results["saga"].history
    assert row["counts"] == "passes" and row["lr"] is None
    hit = int(np.flatnonzero(result.curves["saga"]["gap"] <= 1e-2)[0])
    assert row["updates_to_target"] == history["steps"][hit] == hit + 1


def test_streaming_and_dask_refuse_saga():
    X, y = data("linear")
    for optimizer in ("saga", fo.SAGA(), "lbfgs"):
        with pytest.raises(ValueError, match="first-order optimizers; optimizer=.* whole data"):
            fo.fit_stream((X, y), optimizer=optimizer, tol=None)
    dask_array = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="'saga' is not available on dask collections"):
        fo.dask.fit(dask_array.from_array(X, chunks=100), dask_array.from_array(y, chunks=100),
                    optimizer="saga")
