"""The compiled Hessian-vector products (``Backend.hvp``: ``_core.HessianOperator`` and its
Numba mirror) against the NumPy reference and finite differences, and the full passes' threads:
the objective and the products are the same to the bit for any number of threads."""

import numpy as np
import pytest
import scipy.sparse as sp

from fastopt import _backends
from fastopt import engine
from fastopt.reference import hvp as reference_hvp

COMPILED = ["cpp", "numba"] if _backends._core is not None else ["numba"]
needs_core = pytest.mark.skipif(_backends._core is None, reason="no compiled module")


def problem(model, layout="dense", dtype=np.float64, standardize=False, weights=False,
            penalty="l2", n=5000, d=7, seed=0, fit_intercept=True):
    """A prepared problem of ``n`` rows (several row blocks: at least 2048 rows each)."""
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d) + 1.0).astype(dtype)
    if layout == "csr":
        X[rng.random((n, d)) < 0.6] = 0.0
        X = sp.csr_matrix(X)
    y = {"linear": rng.standard_normal(n), "logistic": rng.integers(0, 2, n),
         "softmax": rng.integers(0, 3, n)}[model]
    sample_weight = rng.random(n) + 0.5 if weights else None
    return engine.prepare(X, y, model=model, penalty=penalty, alpha=0.1, l1_ratio=0.15,
                          fit_intercept=fit_intercept, sample_weight=sample_weight,
                          backend="numpy", standardize=standardize)[0]


def point(prob, seed=1):
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(prob.spec.n_params)).astype(prob.X.dtype), \
        rng.standard_normal(prob.spec.n_params)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_compiled_products_match_the_reference(model, layout, dtype, standardize, backend):
    # Weights, the penalty and the intercept vary with the case, so that each is on and off.
    prob = problem(model, layout, dtype, standardize, weights=standardize,
                   penalty="l2" if layout == "dense" else None,
                   fit_intercept=dtype == np.float64 or standardize)
    x, v = point(prob)
    record = _backends.resolve(backend)
    got = record.hvp(prob, record.dataset(prob), x)(v)
    expected = reference_hvp.hessian_operator(prob, x.astype(np.float64))(v)
    assert got.dtype == np.float64
    # float64 sums either way; only the order of the additions differs.
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13 * np.abs(expected).max())


@needs_core
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_products_are_the_derivative_of_the_compiled_gradient(model, layout):
    prob = problem(model, layout, standardize=True, weights=True)
    x, v = point(prob)
    record = _backends.resolve("cpp")
    data = record.dataset(prob)
    step = 1e-5
    ahead = record.objective(data, x + step * v)[1]
    behind = record.objective(data, x - step * v)[1]
    central = (ahead - behind) / (2 * step)
    got = record.hvp(prob, data, x)(v)
    np.testing.assert_allclose(got, central, rtol=1e-6, atol=1e-8 * np.abs(central).max())


@needs_core
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_threads_change_no_bit_of_the_objective_or_the_products(model, layout):
    # Threads take four blocks of at least 2048 rows each: three need 24,576 rows. An odd n
    # leaves the dense softmax loops (two rows at a time) one row at the end.
    prob = problem(model, layout, standardize=True, weights=True, n=30_001)
    x, v = point(prob)
    record = _backends.resolve("cpp")
    data = record.dataset(prob)
    value, grad = record.objective(data, x, 1)
    product = record.hvp(prob, data, x, 1)(v)
    for threads in (2, 3):
        other_value, other_grad = record.objective(data, x, threads)
        assert other_value == value
        np.testing.assert_array_equal(other_grad, grad)
        np.testing.assert_array_equal(record.hvp(prob, data, x, threads)(v), product)
    # ... and still the reference's, to rounding
    ref_value, ref_grad = _backends.resolve("numpy").objective(prob, x)
    np.testing.assert_allclose(value, ref_value, rtol=1e-13)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-11, atol=1e-13 * np.abs(ref_grad).max())
    # Numba runs the same blocks on one thread: the same sums.
    numba = _backends.resolve("numba")
    numba_data = numba.dataset(prob)
    numba_value, numba_grad = numba.objective(numba_data, x)
    assert numba_value == value
    np.testing.assert_array_equal(numba_grad, grad)
    np.testing.assert_array_equal(numba.hvp(prob, numba_data, x)(v), product)


@needs_core
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("d", [9, 700])
@pytest.mark.parametrize("model", ["linear", "logistic"])
def test_rows_requested_in_order_change_no_bit_of_the_objective(monkeypatch, model, d,
                                                                standardize, dtype):
    # X larger than cache (FASTOPT_ROW_BLOCKS=0 forces it) is read row by row, in order, each
    # dot product requesting the bytes stream_ahead_bytes (2048) on: ~28 rows ahead for 9
    # float64 columns, within the next row for 700; none for the rows that near X's end. The
    # same sums as the Numba loop's, which requests nothing.
    monkeypatch.setenv("FASTOPT_ROW_BLOCKS", "0")
    prob = problem(model, dtype=dtype, standardize=standardize, weights=True, n=301, d=d)
    x, _ = point(prob)
    cpp, numba = _backends.resolve("cpp"), _backends.resolve("numba")
    value, grad = cpp.objective(cpp.dataset(prob), x)
    numba_value, numba_grad = numba.objective(numba.dataset(prob), x)
    assert value == numba_value
    np.testing.assert_array_equal(grad, numba_grad)


@pytest.mark.parametrize("backend", COMPILED)
def test_products_refuse_a_nonsmooth_penalty_and_a_wrong_vector(backend):
    record = _backends.resolve(backend)
    nonsmooth = problem("logistic", penalty="l1")
    x, v = point(nonsmooth)
    with pytest.raises(ValueError, match="smooth objective"):
        record.hvp(nonsmooth, record.dataset(nonsmooth), x)
    prob = problem("logistic")
    product = record.hvp(prob, record.dataset(prob), x)
    with pytest.raises(ValueError, match="shape"):
        product(v[:-1])


@needs_core
def test_threads_out_of_range_are_refused():
    prob = problem("logistic", n=100)
    data = _backends.resolve("cpp").dataset(prob)
    x, _ = point(prob)
    for threads in (0, 257):
        with pytest.raises(ValueError, match="threads"):
            _backends._core.objective(data, x, threads)
        with pytest.raises(ValueError, match="threads"):
            _backends._core.HessianOperator(data, x, threads)


@needs_core
def test_newton_cg_fits_use_the_backends_products(monkeypatch):
    def refuse(*args):
        raise AssertionError("the NumPy reference was called")
    monkeypatch.setattr(reference_hvp, "hessian_operator", refuse)
    import fastopt
    prob = problem("softmax")
    fitted = fastopt.fit(prob.X, prob.y, model="softmax", optimizer="newton-cg", penalty="l2",
                         alpha=0.1, tol=1e-8, backend="cpp")
    assert fitted.converged


@needs_core
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", ["linear", "logistic"])
def test_compiled_hessian_matches_the_reference(model, dtype, standardize, fit_intercept):
    """``Backend.hessian`` of the compiled backend (``_core.hessian``, rows four at a time, the
    upper triangle mirrored) against NumPy's ``fastopt.newton.hessian``; 5,003 rows: the last
    block has three."""
    from fastopt.newton import hessian
    prob = problem(model, "dense", dtype, standardize, weights=not standardize,
                   penalty="l2" if fit_intercept else None, n=5003, d=9,
                   fit_intercept=fit_intercept)
    x = 0.3 * np.random.default_rng(2).standard_normal(prob.spec.n_params)
    cpp = _backends.resolve("cpp")
    got = cpp.hessian(prob, cpp.dataset(prob), x)
    expected = hessian(prob, x)
    assert got.shape == expected.shape == (prob.spec.n_params,) * 2
    np.testing.assert_array_equal(got, got.T)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13 * np.abs(expected).max())


@needs_core
def test_compiled_hessian_leaves_what_it_has_no_kernel_for_to_numpy():
    """None (``fastopt.newton.hessian`` then) for sparse X, softmax and more columns than
    ``COMPILED_HESSIAN_MAX_FEATURES``; ``_core.hessian`` itself refuses sparse X and l1."""
    from fastopt import _core
    from fastopt._backends import cpp as cpp_module
    cpp = _backends.resolve("cpp")
    for prob in [problem("logistic", "csr"), problem("softmax"),
                 problem("linear", d=cpp_module.COMPILED_HESSIAN_MAX_FEATURES + 1, n=300)]:
        assert cpp.hessian(prob, cpp.dataset(prob), np.zeros(prob.spec.n_params)) is None
    sparse_prob = problem("logistic", "csr")
    with pytest.raises(ValueError, match="dense X"):
        _core.hessian(cpp.dataset(sparse_prob), np.zeros(sparse_prob.spec.n_params))
    l1 = problem("logistic", penalty="l1")
    with pytest.raises(ValueError, match="smooth"):
        _core.hessian(cpp.dataset(l1), np.zeros(l1.spec.n_params))


@needs_core
def test_newton_checks_use_the_compiled_hessian(monkeypatch):
    """optimizer="newton" and the Newton check after L-BFGS take the backend's Hessian."""
    import fastopt as fo
    from fastopt._backends import cpp as cpp_module
    calls = []
    real = cpp_module.hessian
    monkeypatch.setattr(cpp_module, "hessian",
                        lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(_backends, "_record", _backends._record.__wrapped__)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 6))
    y = (X @ rng.standard_normal(6) + rng.logistic(size=500) > 0).astype(int)
    fo.LogisticRegression(optimizer="newton", backend="cpp").fit(X, y)
    assert calls
    calls.clear()
    fo.LogisticRegression(backend="cpp").fit(X, y)
    assert calls
