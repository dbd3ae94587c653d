"""Fits on the baseline kernels, saved or compared: .ci/wheels runs it on aarch64 (under qemu)
and on x86-64, and compares the two.

    python .ci/baseline_fits.py OUT.npz              # fit, save coefficients and losses
    python .ci/baseline_fits.py --compare A.npz B.npz

The comparison passes at the tolerance tests/test_fit.py states between the compiled kernels
and the NumPy reference (rtol 1e-10, atol 1e-13), and reports how many arrays agree to the bit.
"""
import itertools
import math
import sys

import numpy as np


def fits():
    import fastopt as fo
    from fastopt import _core

    _core.set_cpu_target("baseline")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 37))
    w = rng.standard_normal(37)
    # X @ w by BLAS rounds differently on each CPU; fsum of the exact products does not.
    scores = np.array([math.fsum(row * w) for row in X])
    targets = {"linear": scores + 0.1 * rng.standard_normal(600),
               "logistic": (scores > 0).astype(float),
               "softmax": np.digitize(scores, [-1.0, 1.0]).astype(float)}
    out = {}
    for (model, y), optimizer, dtype in itertools.product(
            targets.items(), ["sgd", "adam", "rmsprop"], [np.float32, np.float64]):
        result = fo.fit(X.astype(dtype), y, model=model, optimizer=optimizer, epochs=4,
                        batch_size=32, tol=None, random_state=1, backend="cpp",
                        penalty="l2", standardize=True)
        key = f"{model}-{optimizer}-{np.dtype(dtype).name}"
        out[key + "-coef"] = np.asarray(result.coef_, dtype=float)
        out[key + "-loss"] = np.asarray(result.history["loss"], dtype=float)
    return out


def compare(a, b):
    a, b = np.load(a), np.load(b)
    assert sorted(a.files) == sorted(b.files), "different fits"
    same = sum(np.array_equal(a[k], b[k]) for k in a.files)
    worst = max(float(np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(b[k]), 1e-300)))
                for k in a.files)
    print(f"{same} of {len(a.files)} arrays equal to the bit; largest relative difference {worst:.3g}")
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-13, err_msg=k)


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        np.savez(sys.argv[1], **fits())
        import platform
        print(f"{platform.machine()}: saved {sys.argv[1]}")
