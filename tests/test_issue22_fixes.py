"""Issue 22 ("right answers and no surprises"): duplicate sparse entries, lazy submodules,
optimizer-state checks, the softmax Hessian, Dask arrays of unknown chunk sizes."""

import subprocess
import sys

import numpy as np
import pytest

import fastopt as fo

sp = pytest.importorskip("scipy.sparse")


# -- 2. CSR with duplicate entries --------------------------------------------------------------

def csr_with_duplicates(X, seed=0):
    """X as a CSR whose every non-zero is stored as two parts (a + b = x), in shuffled column
    order within each row: a matrix SciPy accepts and reads as the sum of the parts."""
    rng = np.random.default_rng(seed)
    data, indices, indptr = [], [], [0]
    for row in X:
        columns = np.flatnonzero(row)
        parts = rng.uniform(0.2, 0.8, len(columns)) * row[columns]
        entries = list(zip(columns, parts)) + list(zip(columns, row[columns] - parts))
        order = rng.permutation(len(entries))
        data += [entries[i][1] for i in order]
        indices += [entries[i][0] for i in order]
        indptr.append(len(data))
    S = sp.csr_matrix((np.array(data, dtype=X.dtype), np.array(indices, dtype=np.int32),
                       np.array(indptr, dtype=np.int32)), shape=X.shape)
    assert not S.has_canonical_format and S.nnz == 2 * np.count_nonzero(X)
    np.testing.assert_allclose(S.toarray(), X)
    return S


def test_duplicate_entries_small_example_statistics():
    # The 3 x 2 example: column 0 holds 1 + 2 = 3 in its first row.
    S = sp.csr_matrix((np.array([1.0, 2.0, 1.0, 4.0, 5.0]), np.array([0, 0, 1, 0, 1]),
                       np.array([0, 3, 4, 5])), shape=(3, 2))
    X = S.toarray()
    y = np.array([1.0, 2.0, 3.0])
    common = dict(optimizer="sgd", lr=0.05, epochs=3, batch_size=2, standardize=True,
                  random_state=0, tol=None)
    sparse, dense = fo.fit(S, y, **common), fo.fit(X, y, **common)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-12)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, rtol=1e-12)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("standardize,sparse_update", [(False, "exact"), (True, "exact"),
                                                      (False, "lazy")])
def test_duplicate_entries_fit_as_dense(backend, model, standardize, sparse_update):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 5)) * [1, 2, 3, 4, 5] + 1.0
    X[rng.random(X.shape) > 0.5] = 0.0
    score = X @ rng.standard_normal(5)
    y = {"linear": score, "logistic": (score > np.median(score)).astype(int),
         "softmax": np.digitize(score, np.quantile(score, [0.3, 0.7]))}[model]
    S = csr_with_duplicates(X)
    before = (S.data.copy(), S.indices.copy(), S.indptr.copy())
    common = dict(model=model, optimizer="adam", lr=0.05, epochs=3, batch_size=8,
                  standardize=standardize, penalty="l2", alpha=1e-3, random_state=0,
                  backend=backend, sparse_update=sparse_update, tol=None)
    sparse = fo.fit(S, y, **common)
    dense = fo.fit(sp.csr_matrix(X), y, **common)  # canonical CSR of the same values
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, rtol=1e-10, atol=1e-12)
    if sparse_update == "exact":
        on_dense = fo.fit(X, y, **common)
        np.testing.assert_allclose(sparse.coef_, on_dense.coef_, rtol=1e-8, atol=1e-10)
    for saved, now in zip(before, (S.data, S.indices, S.indptr)):  # the user's matrix as it was
        np.testing.assert_array_equal(saved, now)
    assert not S.has_canonical_format


@pytest.mark.parametrize("classifier", [False, True])
def test_duplicate_entries_in_the_estimators(classifier):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(2)
    X = rng.standard_normal((80, 4)) * [1, 3, 5, 7] + 2.0
    X[rng.random(X.shape) > 0.5] = 0.0
    score = X @ rng.standard_normal(4)
    y = np.digitize(score, np.quantile(score, [0.5])) if classifier else score
    S = csr_with_duplicates(X, seed=2)
    make = fo.LogisticRegression if classifier else fo.LinearRegression
    options = dict(optimizer="adam", standardize=True, epochs=3, batch_size=16, tol=None,
                   random_state=0)
    sparse, dense = make(**options).fit(S, y), make(**options).fit(X, y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sparse.predict(S), dense.predict(X), rtol=1e-8, atol=1e-10)
    assert not S.has_canonical_format  # the user's matrix as it was


# -- 8. submodules on attribute access ---------------------------------------------------------

def test_submodules_load_on_attribute_access_and_import_stays_light():
    code = """
import sys
import fastopt as fo
heavy = [m for m in ("matplotlib", "dask", "sklearn") if m in sys.modules]
assert not heavy, heavy
assert callable(fo.plot.loss_curves) and callable(fo.dask.fit)
assert callable(fo.reference.optim.step)
assert fo.plot is sys.modules["fastopt.plot"] and fo.dask is sys.modules["fastopt.dask"]
assert {"plot", "dask", "reference"} <= set(dir(fo))
try:
    fo.no_such_thing
except AttributeError as exc:
    assert "no_such_thing" in str(exc)
else:
    raise AssertionError("fo.no_such_thing did not raise")
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- 15. the step count and params that cannot be updated in place -----------------------------

@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
@pytest.mark.parametrize("step", [2.5, -1, np.float64(1.5), np.array(0.5), float("nan"), "3"])
def test_a_step_count_that_is_not_a_whole_number_is_refused(backend, step):
    opt = fo.Adam(lr=0.1)
    params = np.arange(4.0)
    state = opt.init(params)
    state["step"] = step
    before = (params.copy(), state["exp_avg"].copy())
    with pytest.raises(ValueError, match=r"state\['step'\].*whole number"):
        opt.step(params, np.ones(4), state, backend=backend)
    np.testing.assert_array_equal(params, before[0])  # nothing changed
    np.testing.assert_array_equal(state["exp_avg"], before[1])


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_a_whole_float_step_count_is_the_integer(backend):
    # torch keeps its step as a float tensor; np.load gives 0-d arrays: both are whole numbers.
    opt = fo.Adam(lr=0.1)
    results = []
    for step in (3, 3.0, np.array(3), np.array(3.0)):
        params = np.arange(4.0)
        state = opt.init(params)
        state["step"] = step
        opt.step(params, np.ones(4), state, backend=backend)
        assert state["step"] == 4
        results.append(params)
    for params in results[1:]:
        np.testing.assert_array_equal(params, results[0])


@pytest.mark.parametrize("params", [0.0, 1, [0.0, 1.0], (0.0,)])
def test_init_refuses_what_cannot_be_updated_in_place(params):
    with pytest.raises(TypeError, match="numpy.ndarray.*in place"):
        fo.SGD(momentum=0.9).init(params)


# -- 13. the softmax Hessian, vectorised ---------------------------------------------------------

def loop_hessian(problem, params):
    """The Hessian as its definition reads: one product per class pair (a, b) of
    sum_n s_n c_n[a, b] z_n z_n^T, over all rows at once, dense; then the L2 term and the flat
    layout [W (k x d) row by row, intercepts (k)]."""
    spec = problem.spec
    k, d = spec.n_outputs, spec.n_features
    X = problem.X.toarray() if sp.issparse(problem.X) else np.asarray(problem.X)
    X = X.astype(np.float64)
    if problem.mean is not None:
        X = (X - problem.mean) * problem.inv_std
    n = len(X)
    Z = np.hstack([X, np.ones((n, 1))]) if spec.fit_intercept else X
    width = Z.shape[1]
    s = np.ones(n) if problem.sample_weight is None else problem.sample_weight
    params = np.asarray(params, dtype=np.float64)
    W = params[:k * d].reshape(k, d)
    b = params[k * d:] if spec.fit_intercept else np.zeros(k)
    scores = X @ W.T + b
    if spec.model == "linear":
        c = np.ones((n, 1, 1))
    elif spec.model == "logistic":
        p = 1 / (1 + np.exp(-scores[:, 0]))
        c = (p * (1 - p))[:, None, None]
    else:
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        c = p[:, :, None] * (np.eye(k)[None] - p[:, None, :])
    blocks = np.zeros((k, width, k, width))
    for a in range(k):
        for b_ in range(k):
            blocks[a, :, b_, :] = Z.T @ ((s * c[:, a, b_])[:, None] * Z) / problem.n_samples
    if spec.penalty == "l2":
        for a in range(k):
            blocks[a, np.arange(d), a, np.arange(d)] += spec.alpha
    flat = np.zeros((k * (d + spec.fit_intercept),) * 2)
    index = [(a, j) for a in range(k) for j in range(d)]
    if spec.fit_intercept:
        index += [(a, d) for a in range(k)]
    for row, (a, i) in enumerate(index):
        for column, (b_, j) in enumerate(index):
            flat[row, column] = blocks[a, i, b_, j]
    return flat


@pytest.mark.parametrize("model", ["softmax", "logistic", "linear"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("standardize,weighted,intercept", [
    (False, False, True), (True, True, True), (True, False, False), (False, True, False)])
def test_hessian_equals_the_class_pair_loop(monkeypatch, model, dtype, sparse, standardize,
                                            weighted, intercept):
    from fastopt import _validation
    from fastopt.newton import hessian
    from fastopt.training import prepare
    from fastopt import newton
    monkeypatch.setattr(_validation, "BLOCK_BYTES", 8 * 7 * 37)  # several blocks of rows
    monkeypatch.setattr(newton, "HESSIAN_BLOCK_BYTES", 8 * 7 * 37)
    rng = np.random.default_rng(3)
    n, d = 150, 6
    X = (rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + 1).astype(dtype)
    X[rng.random(X.shape) > 0.6] = 0
    score = X @ rng.standard_normal(d)
    y = {"linear": score, "logistic": score > 0,
         "softmax": np.digitize(score, np.quantile(score, [0.25, 0.5, 0.75]))}[model]
    weights = rng.uniform(0.1, 3, n) if weighted else None
    problem, _ = prepare(sp.csr_matrix(X) if sparse else X, y, model=model, penalty="l2",
                         alpha=0.01, l1_ratio=0.15, fit_intercept=intercept,
                         sample_weight=weights, standardize=standardize)
    params = rng.standard_normal(problem.spec.n_params)
    fast, reference = hessian(problem, params), loop_hessian(problem, params)
    assert fast.shape == reference.shape == (problem.spec.n_params,) * 2
    np.testing.assert_allclose(fast, reference, rtol=1e-10, atol=1e-13 * abs(reference).max())
    np.testing.assert_allclose(fast, fast.T, rtol=1e-12, atol=1e-14 * abs(reference).max())


@pytest.mark.parametrize("scale", [0.0, 1.0, 5.0])
def test_softmax_hessian_keeps_its_null_directions(scale):
    # Adding one vector to every class's coefficients (and one number to every intercept)
    # leaves softmax unchanged: H u = 0 for those u. Rounding above that shows up as a tiny
    # singular value that lstsq may keep, and Newton then drifts along the null space.
    from fastopt.newton import hessian
    from fastopt.training import prepare
    rng = np.random.default_rng(1)
    n, d, k = 2400, 6, 3
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.uniform(-1, 1, d)
    score = X @ rng.standard_normal(d)
    y = np.digitize(score, np.quantile(score, [0.3, 0.7]))
    problem, _ = prepare(X, y, model="softmax", penalty=None, alpha=0.0, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=rng.uniform(0.1, 3, n),
                         standardize=True)
    H = hessian(problem, rng.standard_normal(problem.spec.n_params) * scale)
    for j in range(d + 1):
        u = np.zeros(len(H))
        u[[c * d + j for c in range(k)] if j < d else [k * d + c for c in range(k)]] = 1.0
        assert np.abs(H @ u).max() <= 4 * np.finfo(float).eps * np.abs(H).max()
