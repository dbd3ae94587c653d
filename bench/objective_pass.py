"""T2: one fused loss+gradient pass (``_core.objective``) against the fastest single-thread read
of the same bytes, and ``n_jobs=2`` against 1 for a whole L-BFGS fit (issue 18).

Problems as bench/optimum.py's T1 (float64, standardised): ``make_classification`` binary
n=200,000 d=50 and 5 classes n=300,000 d=100, and benchopt's binary n=100,000 d=400.
Contenders run interleaved, one call each per round, ``--rounds`` rounds (default 7); the
medians are reported with the load average. BLAS runs on 1 thread (threadpoolctl).

    python bench/objective_pass.py [--rounds 7] [--fits 3] [--quick] [--passes-only]
    python bench/objective_pass.py --sparse [--rounds 51] [--fits 5]

``--sparse``: T1's sparse problem instead (20,000 x 4,000 CSR, 30 entries a row, float64, not
standardised): the pass for logistic and linear regression against SciPy's two products
``X @ w`` and ``X.T @ r`` (the pass's multiply-adds), then (``--fits`` > 0) the default
``fastopt.LogisticRegression(alpha=1/n, standardize=False)`` fit against scikit-learn's
``LogisticRegression(C=1, tol=1e-6)`` (lbfgs). For before/after, run it with each build's
Python in turn: the SciPy row is the yardstick both runs share.

``--passes-only`` times the passes and the reads, no fits; it also runs on a fastopt build
whose objective has no ``threads`` (an older build on PYTHONPATH, for before/after runs
alternated in separate processes; bench/README.md).
"""

import argparse
import inspect
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import fastopt
from fastopt import _backends
from fastopt.engine import prepare


def problems(quick):
    """T1's two make_classification problems and its widest dense one, benchopt's 100,000 x 400
    (bench/optimum.py), X standardised."""
    from optimum import problems as t1_problems  # bench/ is on sys.path when run as a script
    t1 = t1_problems(quick)
    chosen = t1[:2] + [p for p in t1 if "benchopt" in p.name and p.X.shape[1] == 400]
    return [(p.name.removeprefix("T1 "), np.ascontiguousarray(p.X), p.y) for p in chosen]


def timed(fn):
    """(wall, CPU time of this thread): on a shared machine the CPU time leaves out the time
    the thread waited for a core (but not the memory bandwidth others take)."""
    start, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - start, time.thread_time() - cpu


def one_batch_epoch(backend, data, params):
    """A full-batch epoch (batch = n, SGD with lr 0: params unchanged): the epochs' row loop
    (accumulate_row for several outputs), the loop the objective ran before it had its own
    (issue 18), timed beside it in the same process."""
    from fastopt.engine import new_state
    from fastopt.optim import make_optimizer
    state = new_state(make_optimizer("sgd", lr=0.0), params.copy(), 0)
    lrs = np.zeros(1)
    return lambda: backend.epoch(data, state, lrs, data.n_samples, False)


def medians(contenders, rounds):
    """``{label: (median wall, median CPU time)}``, one call each per round, interleaved."""
    times = {key: [] for key in contenders}
    with threadpool_limits(1):
        for fn in contenders.values():
            fn()
        for _ in range(rounds):
            for key, fn in contenders.items():
                times[key].append(timed(fn))
    return {key: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
            for key, ts in times.items()}


def sparse(backend, rounds, fits):
    """T1's sparse problem: the CSR pass against SciPy's two products, and whole fits."""
    from optimum import problems as t1_problems
    from sklearn.linear_model import LogisticRegression
    problem = next(p for p in t1_problems(False) if p.sparse)
    X, y = problem.X, problem.y
    n, d = X.shape
    w = np.random.default_rng(1).standard_normal(d) * 0.1
    contenders = {}
    for model in ("logistic", "linear"):
        prepared = prepare(X, y, model=model, penalty="l2", alpha=1.0 / n, l1_ratio=0.15,
                           fit_intercept=True, sample_weight=None, backend=backend)[0]
        data, params = backend.dataset(prepared), np.append(w, 0.1)
        contenders[f"objective pass, {model}"] = (
            lambda data=data, params=params: backend.objective(data, params))
    r = np.random.default_rng(2).standard_normal(n)
    contenders["SciPy X @ w + X.T @ r"] = lambda: (X @ w, X.T @ r)
    contenders["SciPy X @ w"] = lambda: X @ w
    contenders["SciPy X.T @ r"] = lambda: X.T @ r
    print(f"{problem.name}: {X.nnz:,} entries, load average {os.getloadavg()}; medians of "
          f"{rounds} rounds, wall and CPU time of the calling thread (x SciPy's two products)")
    result = medians(contenders, rounds)
    floor = result["SciPy X @ w + X.T @ r"]
    for key, (wall, cpu) in result.items():
        print(f"  {key:28s} {wall * 1e3:7.3f} ms ({wall / floor[0]:4.2f}x)"
              f"  cpu {cpu * 1e3:7.3f} ms ({cpu / floor[1]:4.2f}x)")
    if fits <= 0:
        return
    makers = {"fastopt default": lambda: fastopt.LogisticRegression(alpha=1.0 / n,
                                                                    standardize=False),
              "sklearn lbfgs C=1 tol=1e-6": lambda: LogisticRegression(C=1.0, tol=1e-6)}
    seconds = {key: [] for key in makers}
    with threadpool_limits(1):
        for _ in range(fits):
            for key, make in makers.items():
                seconds[key].append(timed(lambda make=make: make().fit(X, y))[1])
    print(f"  whole fits, medians of {fits} (CPU time), load average {os.getloadavg()}:")
    for key, values in seconds.items():
        print(f"  {key:28s} {statistics.median(values) * 1e3:7.1f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--fits", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--passes-only", action="store_true")
    parser.add_argument("--sparse", action="store_true")
    args = parser.parse_args()
    backend = _backends.resolve("cpp")
    print(f"fastopt from {os.path.dirname(fastopt.__file__)}, backend "
          f"{_backends.describe('cpp')}, load average {os.getloadavg()}")
    if args.sparse:
        return sparse(backend, args.rounds or 51, 5 if args.fits is None else args.fits)
    args.rounds = args.rounds or 7
    args.fits = 3 if args.fits is None else args.fits
    for name, X, y in problems(args.quick):
        n = X.shape[0]
        est = fastopt.LogisticRegression(optimizer="lbfgs", penalty="l2", alpha=1.0 / n,
                                         standardize=False)
        problem = prepare(X, y, model="logistic" if len(np.unique(y)) == 2 else "softmax",
                          penalty="l2", alpha=1.0 / n, l1_ratio=0.15, fit_intercept=True,
                          sample_weight=None, backend=backend)[0]
        data = backend.dataset(problem)
        params = np.zeros(problem.spec.n_params)
        flat, ones = X.ravel(), np.ones(X.size)
        v = np.ones(X.shape[1])
        contenders = {"objective pass, 1 thread": lambda: backend.objective(data, params),
                      "full-batch epoch (row loop)": one_batch_epoch(backend, data, params)}
        if "threads" in inspect.signature(backend.objective).parameters:
            contenders["objective pass, 2 threads"] = lambda: backend.objective(data, params, 2)
        if hasattr(backend, "hvp"):
            product, direction = backend.hvp(problem, data, params), np.ones(params.size)
            contenders["Hessian-vector product"] = lambda: product(direction)
        contenders["read: np.dot(X.ravel(), ones)"] = lambda: np.dot(flat, ones)
        contenders["read: X @ v"] = lambda: X @ v
        # X's bytes read once (BLAS ddot of X with itself): the fastest read found here.
        contenders["read: np.dot(X.ravel(), X.ravel())"] = lambda: np.dot(flat, flat)
        k = problem.spec.n_outputs
        if k > 1:  # the pass's multiply-adds (2 k d a row) as two BLAS products
            W, R = np.ones((k, X.shape[1])), np.ones((n, k))
            contenders["BLAS: X @ W.T and R.T @ X"] = lambda: (X @ W.T, R.T @ X)
        times = {key: [] for key in contenders}
        with threadpool_limits(1):
            for fn in contenders.values():
                fn()
            for _ in range(args.rounds):
                for key, fn in contenders.items():
                    times[key].append(timed(fn))
        wall = {key: statistics.median(t[0] for t in ts) for key, ts in times.items()}
        cpu = {key: statistics.median(t[1] for t in ts) for key, ts in times.items()}
        floor_key = min(("read: np.dot(X.ravel(), ones)", "read: X @ v",
                         "read: np.dot(X.ravel(), X.ravel())"), key=wall.get)
        print(f"{name}: {X.nbytes / 1e6:.0f} MB, load average {os.getloadavg()}; medians of "
              f"{args.rounds} rounds: wall (x the read), CPU time of the calling thread (x)")
        for key in times:
            print(f"  {key:34s} {wall[key] * 1e3:8.2f} ms ({wall[key] / wall[floor_key]:4.2f}x)"
                  f"  cpu {cpu[key] * 1e3:8.2f} ms ({cpu[key] / cpu[floor_key]:4.2f}x)")
        if args.passes_only:
            continue
        fits = {1: [], 2: []}
        with threadpool_limits(1):
            for _ in range(args.fits):
                for jobs in fits:
                    est.set_params(n_jobs=jobs)
                    fits[jobs].append(timed(lambda: est.fit(X, y))[0])
        one, two = statistics.median(fits[1]), statistics.median(fits[2])
        print(f"  L-BFGS fit: n_jobs=1 {one * 1e3:.0f} ms, n_jobs=2 {two * 1e3:.0f} ms, "
              f"speed-up {one / two:.2f}x ({est.n_iter_} iterations), "
              f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
