"""Property tests (hypothesis): random shapes, dtypes, memory layouts (SciPy CSR too, with
exact and lazy updates), optimizers, hyperparameters and schedules; every backend against the
NumPy reference.

The normal suite runs a quick profile. The long run, at least 10,000 examples:

    FASTOPT_PROPERTY_EXAMPLES=10000 pytest tests/test_properties.py -m slow -p no:randomly
"""

import os

import numpy as np
import pytest

import fastopt as fo

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sparse = pytest.importorskip("scipy.sparse")

LONG = int(os.environ.get("FASTOPT_PROPERTY_EXAMPLES", "10000"))
OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw",
              "nadam", "radam"]
SCHEDULES = [None, "cosine", "invsqrt", "warmup_cosine", "onecycle", "exponential"]


def make_optimizer(name, lr):
    if name == "momentum":
        return fo.SGD(lr=lr, momentum=0.9)
    if name == "nesterov":
        return fo.SGD(lr=lr, momentum=0.9, nesterov=True)
    return fo.make_optimizer(name, lr=lr * 100 if name == "adadelta" else lr)


@st.composite
def problems(draw, max_rows, max_features):
    n = draw(st.integers(1, max_rows))
    d = draw(st.integers(1, max_features))
    model = draw(st.sampled_from(["linear", "logistic", "softmax"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * rng.uniform(0.1, 10, d)).astype(dtype)
    if model == "linear":
        y = X.astype(np.float64) @ rng.standard_normal(d)
    else:
        classes = 2 if model == "logistic" else draw(st.integers(2, 10))
        y = np.arange(n) % classes  # every class present
        rng.shuffle(y)
        if n < classes:
            model, y = "linear", X.astype(np.float64) @ rng.standard_normal(d)
        elif model == "softmax" and classes == 2:
            model = "logistic"
    layout = draw(st.sampled_from(["C", "F", "strided", "readonly", "csr"]))
    if layout == "csr":
        X[rng.random((n, d)) < 0.7] = 0.0
        X = np.asfortranarray(X)
    elif layout == "strided":
        wide = np.zeros((n, 2 * d), dtype=dtype)
        wide[:, ::2] = X
        X = wide[:, ::2]
    elif layout == "readonly":
        X.setflags(write=False)
    name, lr = draw(st.sampled_from(OPTIMIZERS)), draw(st.sampled_from([1e-3, 1e-2]))
    standardize = draw(st.booleans())
    if name in ("sgd", "momentum", "nesterov") and not standardize:
        # Plain gradient steps scale with the squared row norm: keep them contractive, or
        # rounding differences between correct implementations grow without bound and the
        # comparison says nothing.
        lr = lr / max(1.0, float(np.mean(np.sum(X.astype(np.float64) ** 2, axis=1))))
    if layout == "csr":
        X = sparse.csr_matrix(X)
    options = dict(
        sparse_update=draw(st.sampled_from(["exact", "lazy"])) if layout == "csr" and
        not standardize else "exact",
        model=model,
        optimizer=make_optimizer(name, lr),
        schedule=draw(st.sampled_from(SCHEDULES)),
        epochs=draw(st.integers(1, 3)),
        batch_size=draw(st.sampled_from([1, 7, 32, None])),
        penalty=draw(st.sampled_from([None, "l2", "l1", "elasticnet"])),
        alpha=draw(st.sampled_from([1e-4, 1e-2])),
        fit_intercept=draw(st.booleans()),
        standardize=standardize,
        shuffle=draw(st.booleans()),
        random_state=seed,
        tol=None,
    )
    return X, y, options


def params_of(result):
    return np.r_[np.ravel(result.coef_), np.ravel(result.intercept_)]


def dense(X):
    return X.toarray() if sparse.issparse(X) else np.array(X, copy=True)


def nudged(X, rng):
    """X with every value moved by about one unit in the last place."""
    eps = np.finfo(X.dtype).eps
    if sparse.issparse(X):
        X = X.copy()
        X.data = X.data * (1 + eps * rng.standard_normal(X.data.size)).astype(X.dtype)
        return X
    return np.asarray(X) * (1 + eps * rng.standard_normal(X.shape)).astype(X.dtype)


def agree_to_rounding(actual, reference, X, y, options):
    """``actual`` equals the reference fit to rounding: within rtol, or, where the training
    dynamics amplify rounding (adaptive steps of batch size 1 on unscaled features can be
    chaotic: an ulp at the start becomes 1e-9 after a few thousand updates), within 10 times
    the largest spread the reference itself shows in three runs with X moved by an ulp (the
    spread of one such run varies by 10x from nudge to nudge)."""
    rtol = 1e-4 if X.dtype == np.float32 else 1e-9
    scale = max(1.0, float(np.abs(reference).max()))
    try:
        np.testing.assert_allclose(actual, reference, rtol=rtol, atol=rtol * scale)
    except AssertionError:
        spread = max(float(np.abs(params_of(fo.fit(nudged(X, np.random.default_rng(seed)), y,
                                                   backend="numpy", **options))
                                    - reference).max()) for seed in range(3))
        if spread <= rtol * scale:  # well conditioned: the difference is not rounding
            raise
        assert float(np.abs(actual - reference).max()) <= 10 * spread


def check_backends(X, y, options):
    X_before = dense(X)
    try:
        reference = fo.fit(X, y, backend="numpy", **options)
    except fo.DivergenceError:
        with pytest.raises(fo.DivergenceError):
            fo.fit(X, y, backend="cpp", **options)
        return
    cpp = fo.fit(X, y, backend="cpp", **options)
    agree_to_rounding(params_of(cpp), params_of(reference), X, y, options)
    numba = fo.fit(X, y, backend="numba", **options)
    np.testing.assert_array_equal(params_of(numba), params_of(cpp))  # same sums, same bits
    np.testing.assert_array_equal(dense(X), X_before)  # inputs are never modified


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(problems(max_rows=300, max_features=24))
def test_backends_agree_quick(case):
    check_backends(*case)


@pytest.mark.slow
@settings(max_examples=LONG, deadline=None, suppress_health_check=list(HealthCheck))
@given(problems(max_rows=4096, max_features=512))
def test_backends_agree_long(case):
    check_backends(*case)
