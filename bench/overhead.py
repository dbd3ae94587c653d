"""Per-epoch overhead on small data: what an epoch costs beyond its arithmetic.

    python bench/overhead.py [--repeat 7]

W3 (linear and logistic, n=1e4, d=20, batch 32, 100 epochs of Adam) and a 10-class softmax
(n=2,000, d=20, batch 32, 100 epochs), each through ``fastopt.fit`` (tol=None) and through the
estimator (``fastopt.LogisticRegression`` / ``LinearRegression``, 100 epochs): the median
time per epoch over ``--repeat`` runs, and the fit's own epoch seconds (the compiled calls,
from ``history["seconds"]``), whose difference is the Python side's share.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastopt


def workloads():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10_000, 20))
    w = rng.standard_normal(20)
    yield "W3 linear", "linear", X, X @ w + 0.1 * rng.standard_normal(len(X))
    yield "W3 logistic", "logistic", X, (X @ w > 0).astype(np.int64)
    Xs = rng.standard_normal((2_000, 20))
    yield "softmax K=10", "softmax", Xs, np.argmax(Xs @ rng.standard_normal((20, 10)), axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args(argv)
    print(f"fastopt {fastopt.__version__} from {fastopt.__file__}")
    for name, model, X, y in workloads():
        options = dict(model=model, optimizer="adam", lr=0.01, epochs=args.epochs,
                       batch_size=32, tol=None, random_state=0)
        fastopt.fit(X, y, **options)  # warm-up
        walls, inner = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = fastopt.fit(X, y, **options)
            walls.append(time.perf_counter() - start)
            inner.append(sum(result.history["seconds"]))
        cls = fastopt.LinearRegression if model == "linear" else fastopt.LogisticRegression
        est = cls(optimizer="adam", lr=0.01, epochs=args.epochs, batch_size=32, tol=None,
                  random_state=0, standardize=False)
        est.fit(X, y)
        est_walls = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            est.fit(X, y)
            est_walls.append(time.perf_counter() - start)
        wall, kernel = statistics.median(walls), statistics.median(inner)
        print(f"{name:14s} fit {wall / args.epochs * 1e6:8.1f} us/epoch  "
              f"(compiled epoch calls {kernel / args.epochs * 1e6:8.1f}, rest "
              f"{(wall - kernel) / args.epochs * 1e6:6.1f})  estimator "
              f"{statistics.median(est_walls) / args.epochs * 1e6:8.1f} us/epoch")


if __name__ == "__main__":
    main()
