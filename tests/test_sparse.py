"""SciPy sparse X: trained as CSR without densifying, with the same results as dense X."""

import tracemalloc

import numpy as np
import pytest

import fastopt as fo

sp = pytest.importorskip("scipy.sparse")

MODELS = ["linear", "logistic", "softmax"]
OPTIMIZERS = ["sgd", "momentum", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "nadam",
              "radam"]


def sparse_problem(model, dtype=np.float64, n=240, d=15, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + rng.uniform(-1, 2, d)
    X[rng.random((n, d)) > density] = 0.0
    X[3] = 0.0  # a row without entries
    X = X.astype(dtype)
    score = X.astype(np.float64) @ rng.standard_normal(d)
    if model == "linear":
        y = score + 0.1 * rng.standard_normal(n)
    elif model == "logistic":
        y = (score > np.median(score)).astype(int)
    else:
        y = np.digitize(score, np.quantile(score, [0.3, 0.7]))
    return X, y


def optimizer_named(name):
    if name == "momentum":
        return fo.SGD(lr=0.01, momentum=0.9)
    return fo.make_optimizer(name, lr=0.01 if name != "adadelta" else 1.0)


def params_of(result):
    return np.r_[np.ravel(result.coef_), np.ravel(result.intercept_)]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_sparse_equals_dense_for_every_optimizer_and_model(model, name):
    X, y = sparse_problem(model)
    common = dict(model=model, epochs=3, batch_size=32, tol=None, random_state=1,
                  standardize=True, penalty="elasticnet", alpha=1e-3)
    dense = fo.fit(X, y, optimizer=optimizer_named(name), backend="cpp", **common)
    sparse = fo.fit(sp.csr_matrix(X), y, optimizer=optimizer_named(name), backend="cpp",
                    **common)
    np.testing.assert_allclose(params_of(sparse), params_of(dense), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse.history["loss"], dense.history["loss"], rtol=1e-12)


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-4), (np.float64, 1e-10)])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("model", MODELS)
def test_backends_agree_on_sparse_input(model, standardize, dtype, rtol):
    X, y = sparse_problem(model, dtype, seed=2)
    weights = np.random.default_rng(3).uniform(0.5, 2.0, len(X))
    common = dict(model=model, optimizer="adam", lr=0.01, epochs=2, batch_size=40, tol=None,
                  random_state=2, standardize=standardize, sample_weight=weights)
    S = sp.csr_matrix(X)
    cpp = fo.fit(S, y, backend="cpp", **common)
    numba = fo.fit(S, y, backend="numba", **common)
    np.testing.assert_array_equal(params_of(cpp), params_of(numba))  # same sums, same bits
    reference = fo.fit(S, y, backend="numpy", **common)
    dense = fo.fit(X, y, backend="cpp", **common)
    scale = np.abs(params_of(dense)).max()
    for other in (reference, dense):
        np.testing.assert_allclose(params_of(cpp), params_of(other), rtol=rtol,
                                   atol=rtol * scale)


def test_threads_and_index_widths_and_formats():
    X, y = sparse_problem("logistic", seed=4)
    S = sp.csr_matrix(X)
    wide = sp.csr_matrix((S.data, S.indices.astype(np.int64), S.indptr.astype(np.int64)),
                         shape=S.shape)
    common = dict(model="logistic", epochs=2, batch_size=50, tol=None, random_state=0,
                  standardize=True)
    base = params_of(fo.fit(S, y, **common))
    for other in (wide, S.tocsc(), S.tocoo(), sp.csr_array(S)):
        np.testing.assert_array_equal(params_of(fo.fit(other, y, **common)), base)
    two = fo.fit(S, y, n_jobs=2, backend="cpp", **common)
    two_numba = fo.fit(S, y, n_jobs=2, backend="numba", **common)
    np.testing.assert_array_equal(params_of(two), params_of(two_numba))
    np.testing.assert_allclose(params_of(two), base, rtol=1e-12, atol=1e-14)


def test_newton_and_predict_on_sparse():
    X, y = sparse_problem("softmax", seed=5)
    S = sp.csr_matrix(X)
    dense = fo.fit(X, y, model="softmax", optimizer="newton", standardize=True, alpha=1e-2,
                   penalty="l2")
    sparse = fo.fit(S, y, model="softmax", optimizer="newton", standardize=True, alpha=1e-2,
                    penalty="l2")
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(sparse.predict(S), dense.predict(X))
    np.testing.assert_allclose(sparse.predict_proba(S), dense.predict_proba(X), rtol=1e-9)


def test_estimators_take_sparse_input():
    pytest.importorskip("sklearn")
    X, y = sparse_problem("logistic", seed=6)
    S = sp.csr_matrix(X)
    clf = fo.LogisticRegression(epochs=5, random_state=0, tol=None).fit(S, y)
    dense = fo.LogisticRegression(epochs=5, random_state=0, tol=None).fit(X, y)
    np.testing.assert_allclose(clf.coef_, dense.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(S), dense.predict(X))
    reg = fo.LinearRegression(epochs=3, random_state=0, tol=None)
    for start in range(0, 240, 60):
        reg.partial_fit(S[start:start + 60], X[start:start + 60, 0])
    assert reg.coef_.shape == (15,)


def test_sparse_input_is_not_modified_or_densified():
    rng = np.random.default_rng(7)
    n, d = 20_000, 2_000
    S = sp.random(n, d, density=0.002, format="csr", random_state=7, dtype=np.float64)
    y = (rng.random(n) < 0.5).astype(int)
    before = (S.data.copy(), S.indices.copy(), S.indptr.copy())
    fo.fit(S, y, model="logistic", epochs=1, tol=None)  # warm-up: imports, compiled code
    tracemalloc.start()
    fo.fit(S, y, model="logistic", epochs=1, tol=None, standardize=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.05 * n * d * 8  # the dense X would be 320 MB
    for now, then in zip((S.data, S.indices, S.indptr), before):
        np.testing.assert_array_equal(now, then)


def test_bad_sparse_input():
    X, y = sparse_problem("linear")
    S = sp.csr_matrix(X)
    bad = S.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fo.fit(bad, y)
    with pytest.raises(ValueError, match="0 sample"):
        fo.fit(sp.csr_matrix((0, 3)), [])
    with pytest.raises(TypeError, match="dense X"):
        fo.fit(S, y, backend="cuda", epochs=1)
    from fastopt import _core
    spec = _core.ModelSpec()
    spec.n_features = S.shape[1]
    wrong = S.indices.copy()
    wrong[0] = S.shape[1]  # out of range: must be refused before any memory is read
    with pytest.raises(ValueError, match="out of range"):
        _core.Dataset(spec, (S.data, wrong, S.indptr, S.shape[1]), y.astype(float))


# ---------------------------------------------------------------------------------------------
# Lazy updates

def lazy_problem(model, dtype=np.float64, seed=8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, 60)).astype(dtype)
    X[rng.random(X.shape) > 0.08] = 0.0  # ~5 entries a row: most columns idle in a batch
    score = X.astype(np.float64) @ rng.standard_normal(60)
    y = {"linear": score, "logistic": (score > 0).astype(int),
         "softmax": np.digitize(score, [-0.5, 0.5])}[model]
    return sp.csr_matrix(X), y


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_lazy_updates_are_the_same_in_every_backend(model, name):
    S, y = lazy_problem(model)
    common = dict(model=model, epochs=2, batch_size=16, tol=None, random_state=3,
                  penalty="l2", alpha=1e-3, sparse_update="lazy")
    cpp = fo.fit(S, y, optimizer=optimizer_named(name), backend="cpp", **common)
    numba = fo.fit(S, y, optimizer=optimizer_named(name), backend="numba", **common)
    np.testing.assert_array_equal(params_of(cpp), params_of(numba))
    assert cpp.history["loss"] == numba.history["loss"]
    reference = fo.fit(S, y, optimizer=optimizer_named(name), backend="numpy", **common)
    np.testing.assert_allclose(params_of(cpp), params_of(reference), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cpp.history["loss"], reference.history["loss"], rtol=1e-10)


@pytest.mark.parametrize("name", ["sgd", "adagrad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lazy_equals_exact_where_idle_coordinates_would_not_move(name, dtype):
    S, y = lazy_problem("logistic", dtype)
    common = dict(model="logistic", optimizer=name, lr=0.1, epochs=3, batch_size=8,
                  tol=None, random_state=0)
    exact = fo.fit(S, y, **common)
    lazy = fo.fit(S, y, sparse_update="lazy", **common)
    np.testing.assert_array_equal(params_of(lazy), params_of(exact))


def test_lazy_freezes_idle_coordinates_where_exact_moves_them():
    X = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    common = dict(optimizer="adam", lr=0.1, batch_size=1, shuffle=False, tol=None,
                  fit_intercept=False)
    after_first = fo.fit(sp.csr_matrix(X[:1]), y[:1], epochs=1, **common).coef_
    lazy = fo.fit(sp.csr_matrix(X), y, epochs=1, sparse_update="lazy", **common).coef_
    exact = fo.fit(sp.csr_matrix(X), y, epochs=1, **common).coef_
    assert lazy[2] == after_first[2]  # column 2 only in row 0: frozen after it
    assert exact[2] != after_first[2]  # exact Adam keeps moving it on its first moment


def test_lazy_options():
    S, y = lazy_problem("logistic")
    with pytest.raises(ValueError, match="standardize=False"):
        fo.fit(S, y, model="logistic", standardize=True, sparse_update="lazy")
    with pytest.raises(ValueError, match="sparse_update"):
        fo.fit(S, y, model="logistic", sparse_update="sometimes")
    X = S.toarray()  # dense X: lazy has nothing to skip, the result is the exact one
    np.testing.assert_array_equal(
        fo.fit(X, y, model="logistic", sparse_update="lazy", tol=None, random_state=0).coef_,
        fo.fit(X, y, model="logistic", tol=None, random_state=0).coef_)
    pytest.importorskip("sklearn")
    clf = fo.LogisticRegression(optimizer="adam", sparse_update="lazy", standardize=False,
                                epochs=5, random_state=0, tol=None).fit(S, y)
    assert clf.score(S, y) > 0.7
    with pytest.raises(ValueError, match="standardize=False"):
        fo.LogisticRegression(optimizer="adam", sparse_update="lazy").fit(S, y)


# Plain SGD with an L2 penalty: the scaled-weight trick decays every coefficient lazily.

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_lazy_sgd_with_l2_equals_exact(model, dtype, backend):
    S, y = lazy_problem(model, dtype)
    common = dict(model=model, optimizer="sgd", lr=0.3, penalty="l2", alpha=0.05, epochs=3,
                  batch_size=8, tol=None, random_state=1, backend=backend)
    exact = fo.fit(S, y, **common)
    lazy = fo.fit(S, y, sparse_update="lazy", **common)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(params_of(lazy), params_of(exact), rtol=rtol,
                               atol=rtol * np.abs(params_of(exact)).max())
    np.testing.assert_allclose(lazy.history["loss"], exact.history["loss"], rtol=rtol)


def test_lazy_sgd_with_l2_shrinks_idle_coefficients():
    # Column 2 has an entry in row 0 only: every later update still shrinks it, by (1 - lr alpha).
    X = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    common = dict(optimizer="sgd", lr=0.1, penalty="l2", alpha=0.5, batch_size=1,
                  shuffle=False, tol=None, fit_intercept=False)
    after_first = fo.fit(sp.csr_matrix(X[:1]), y[:1], epochs=1, **common).coef_
    lazy = fo.fit(sp.csr_matrix(X), y, epochs=1, sparse_update="lazy", **common).coef_
    np.testing.assert_allclose(lazy[2], after_first[2] * (1 - 0.1 * 0.5) ** 3, rtol=1e-14)
    other = fo.fit(sp.csr_matrix(X), y, epochs=1, sparse_update="lazy",
                   **dict(common, penalty="elasticnet", l1_ratio=0.5)).coef_
    first = fo.fit(sp.csr_matrix(X[:1]), y[:1], epochs=1,
                   **dict(common, penalty="elasticnet", l1_ratio=0.5)).coef_
    assert other[2] == first[2]  # not a pure L2 penalty: frozen, as for other optimizers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lazy_sgd_scale_folds_back_when_small(dtype):
    # lr * alpha = 0.5 halves the scale at every update: it passes 1e-9 after 30 updates.
    S, y = lazy_problem("linear", dtype)
    common = dict(model="linear", optimizer="sgd", lr=1.0, penalty="l2", alpha=0.5, epochs=2,
                  batch_size=4, tol=None, random_state=2)

    def fit(**options):  # lr=1 makes the loss end above its start: a finite divergence
        with pytest.raises(fo.DivergenceError, match="diverged") as info:
            fo.fit(S, y, **options, **common)
        return info.value.result

    cpp = fit(sparse_update="lazy", backend="cpp")
    numba = fit(sparse_update="lazy", backend="numba")
    np.testing.assert_array_equal(params_of(cpp), params_of(numba))
    assert cpp.history["loss"] == numba.history["loss"]
    exact = fit(backend="cpp")
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(params_of(cpp), params_of(exact), rtol=rtol,
                               atol=rtol * np.abs(params_of(exact)).max())


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_lazy_sgd_with_lr_alpha_of_one_or_more_runs_exact(backend):
    S, y = lazy_problem("logistic")
    common = dict(model="logistic", optimizer="sgd", penalty="l2", alpha=0.5, epochs=1,
                  batch_size=16, tol=None, random_state=0, backend=backend,
                  lr=1.0, schedule=lambda t: np.where(t < 5, 2.5, 0.25))
    lazy = fo.fit(S, y, sparse_update="lazy", **common)
    exact = fo.fit(S, y, **common)
    np.testing.assert_array_equal(params_of(lazy), params_of(exact))
