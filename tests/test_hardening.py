"""Hardening: threads, leaks, extreme scales. Nothing fails silently, nothing is lost."""

import concurrent.futures
import gc
import os
import sys

import numpy as np
import pytest

import fastopt as fo


def problem(seed, n=400, d=8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, (X @ rng.standard_normal(d) + rng.logistic(size=n) > 0).astype(int)


def fit_one(seed):
    X, y = problem(seed)
    result = fo.fit(X, y, model="logistic", optimizer="adam", lr=0.01, epochs=30,
                    batch_size=16, tol=None, random_state=seed, backend="cpp")
    return np.r_[result.coef_.ravel(), result.intercept_]


def test_eight_threads_give_the_sequential_results():
    sequential = [fit_one(seed) for seed in range(8)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(fit_one, range(8)))
    for a, b in zip(sequential, threaded):
        np.testing.assert_array_equal(a, b)


def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_a_thousand_fits_do_not_leak():
    X, y = problem(0, n=200)
    before_refs = sys.getrefcount(X), sys.getrefcount(y)

    def cycle():
        est = fo.fit(X, y, model="logistic", epochs=1, tol=None, random_state=0)
        est.predict(X)
    for _ in range(100):  # warm-up: caches, allocator pools
        cycle()
    gc.collect()
    start = rss_bytes()
    for _ in range(1000):
        cycle()
    gc.collect()
    growth = rss_bytes() - start
    assert growth < 5 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 1000 fits"
    assert (sys.getrefcount(X), sys.getrefcount(y)) == before_refs


@pytest.mark.parametrize("scale", [1e10, 1e100, 1e300])
@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_extreme_scales_never_give_silent_garbage(scale, backend):
    X1, y = problem(1)
    X = X1 * scale
    # Standardised, the fit does not see the scale: the same model in the raw units ...
    options = dict(model="logistic", epochs=20, tol=None, standardize=True, backend=backend,
                   random_state=0)
    good, plain = fo.fit(X, y, **options), fo.fit(X1, y, **options)
    assert np.all(np.isfinite(good.coef_)) and np.isfinite(good.intercept_).all()
    np.testing.assert_allclose(good.coef_ * scale, plain.coef_, rtol=1e-6)
    np.testing.assert_array_equal(good.predict(X), plain.predict(X1))
    # ... raw, it either stays finite or says it diverged: never non-finite coefficients.
    try:
        raw = fo.fit(X, y, model="linear", optimizer="sgd", lr=0.1, epochs=5, tol=None,
                     backend=backend, random_state=0)
    except fo.DivergenceError as exc:
        assert "non-finite" in str(exc)
    else:
        assert np.all(np.isfinite(raw.coef_)) and np.isfinite(raw.intercept_)


@pytest.mark.slow
def test_more_than_2_to_the_31_elements_train_without_overflow(tmp_path):
    """A float32 X of 2^31 + 2^22 elements in a sparse file, its last 2^20 rows (all past
    element 2^31) the only ones with a signal: offsets must be 64-bit everywhere (the checks,
    the epoch)."""
    import shutil

    d = 4
    signal = 2**20
    n = 2**31 // d + signal
    needed = n * d * 4
    if shutil.disk_usage(tmp_path).free < 2 * needed:
        pytest.skip("not enough free disk for the sparse file's pages")
    if os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") < 1.5 * needed:
        pytest.skip("not enough memory to page the file in")
    X = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="w+", shape=(n, d))
    tail = slice(n - signal, n)  # rows whose elements all lie beyond 2^31
    rng = np.random.default_rng(0)
    X[tail] = rng.standard_normal((signal, d)).astype(np.float32)
    X.flush()
    y = np.zeros(n)
    y[tail] = X[tail].astype(np.float64) @ [1.0, -2.0, 3.0, 0.5]
    result = fo.fit(X, y, optimizer="sgd", lr=0.1, epochs=1, batch_size=4096, shuffle=False,
                    tol=None, fit_intercept=False)
    # Only the last rows carry a signal: the fit must have read them at their true offsets.
    np.testing.assert_allclose(result.coef_, [1.0, -2.0, 3.0, 0.5], rtol=1e-3, atol=1e-3)
