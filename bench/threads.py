"""Two fits in two Python threads against the same two fits one after the other: the compiled
epochs release the GIL, so on a machine with 2 free cores the threaded pair should take about
half the time of the sequential pair (the hardening issue), with bit-identical results.

    python bench/threads.py [--quick] [--rows 200000] [--features 100] [--epochs 5]
                            [--repeat 7] [--json PATH]

Two independent float64 data sets A and B (standard normal X, n=200,000, d=100, 160 MB each;
a linear and a logistic target each). Three cases, each fitting A and B:

- ``fit linear``: ``fastopt.fit(X, y, optimizer="adam", batch_size=256, epochs=5, tol=None,
  random_state=...)``, ``n_jobs`` left at its default (1 thread per fit);
- ``fit logistic``: the same with ``model="logistic"``;
- ``LinearRegression``: ``fastopt.LinearRegression(batch_size=256, epochs=5, tol=None,
  random_state=...)`` (needs scikit-learn; left out without it).

Each case is timed sequentially (fit A, then fit B) and threaded (two ``threading.Thread``s
started at once, joined; the clock runs from the first start to the last join). After one
warm-up of each, the rounds run every case and mode once in turn, so that load changes hit all
alike. Prints the median (min-max) of both, the speed-up sequential / threaded per case and
the cores the process kept busy (CPU time / wall time: ~1 sequential, ~2 threaded when the GIL
is released and nothing else runs; the header gives the load average, since on a 2-core
machine any other process takes the second core away). Checks that every fit gives
bit-identical ``coef_`` and ``intercept_`` to the warm-up's sequential fit
(``np.array_equal``): exit code 1 if not. ``--quick`` shrinks the data (n=50,000, d=50, 3
epochs, 3 rounds: a smoke test, ~3 s; the fits then take milliseconds, and the Python work
of each fit, which holds the GIL, weighs more, so the speed-up means less).
"""

import os

if __name__ == "__main__":  # before NumPy loads its thread pool
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import fastopt  # noqa: E402
from fastopt import _backends  # noqa: E402

try:
    import sklearn
except ImportError:
    sklearn = None

BATCH = 256
SEEDS = (1, 2)  # data set A, data set B (data and random_state)
TARGET = 2.0


def dataset(n, d, seed):
    """Standard normal X (n, d) and a linear and a 0/1 logistic target, ``w ~ N(0, 1/d)``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    scores = X @ (rng.standard_normal(d) / np.sqrt(d)) + 0.5
    linear = scores + 0.1 * rng.standard_normal(n)
    logistic = (rng.random(n) < 1.0 / (1.0 + np.exp(-scores))).astype(np.float64)
    return X, {"linear": linear, "logistic": logistic}


def fit_job(X, y, model, epochs, seed):
    def job():
        result = fastopt.fit(X, y, model=model, optimizer="adam", batch_size=BATCH,
                             epochs=epochs, tol=None, random_state=seed)
        return result.coef_, result.intercept_
    return job


def estimator_job(X, y, epochs, seed):
    def job():
        est = fastopt.LinearRegression(optimizer="adam", batch_size=BATCH, epochs=epochs,
                                       tol=None, random_state=seed).fit(X, y)
        return est.coef_, est.intercept_
    return job


def cases(data, epochs):
    """{case name: (job A, job B)}; each job is a zero-argument fit returning
    (coef_, intercept_)."""
    out = {}
    for model in ("linear", "logistic"):
        out[f"fit {model}"] = tuple(fit_job(X, ys[model], model, epochs, seed)
                                    for (X, ys), seed in zip(data, SEEDS))
    if sklearn is not None:
        out["LinearRegression"] = tuple(estimator_job(X, ys["linear"], epochs, seed)
                                        for (X, ys), seed in zip(data, SEEDS))
    return out


def sequential(jobs):
    start = time.perf_counter()
    results = [job() for job in jobs]
    return time.perf_counter() - start, results


def cpu_seconds():
    """CPU time of the whole process, all threads (user + system)."""
    return time.process_time()


def threaded(jobs):
    results, errors = [None] * len(jobs), []

    def run(i, job):
        try:
            results[i] = job()
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return seconds, results


MODES = {"sequential": sequential, "2 threads": threaded}


def same(results, reference):
    return all(np.array_equal(np.asarray(c), np.asarray(rc))
               and np.array_equal(np.asarray(b), np.asarray(rb))
               for (c, b), (rc, rb) in zip(results, reference))


def time_round_robin(calls, repeat):
    """After one sequential and one threaded warm-up of each case, ``repeat`` rounds; returns
    {(case, mode): seconds per round}, {(case, mode): median of process CPU seconds / wall
    seconds} (the cores kept busy: about 1 sequential, about 2 threaded when the GIL is
    released and no other process holds a core) and the (case, mode, round)s whose results
    differ from the warm-up's sequential fits. Even rounds run sequential first, odd rounds
    threaded first."""
    reference, mismatches = {}, []
    for case, jobs in calls.items():
        _, reference[case] = sequential(jobs)
        _, results = threaded(jobs)
        if not same(results, reference[case]):
            mismatches.append(f"{case}, 2 threads, warm-up")
    times = {(case, mode): [] for case in calls for mode in MODES}
    busy = {key: [] for key in times}
    for r in range(repeat):
        order = list(MODES) if r % 2 == 0 else list(MODES)[::-1]
        for case, jobs in calls.items():
            for mode in order:
                cpu = cpu_seconds()
                seconds, results = MODES[mode](jobs)
                busy[case, mode].append((cpu_seconds() - cpu) / seconds)
                times[case, mode].append(seconds)
                if not same(results, reference[case]):
                    mismatches.append(f"{case}, {mode}, round {r + 1}")
    return ({k: np.array(v) for k, v in times.items()},
            {k: float(np.median(v)) for k, v in busy.items()}, mismatches)


def ms(t):
    return f"{np.median(t) * 1e3:.0f} ({t.min() * 1e3:.0f}-{t.max() * 1e3:.0f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="n=50,000, d=50, 3 epochs, 3 rounds (a smoke test)")
    parser.add_argument("--rows", type=int, default=None, help="n (default 200,000)")
    parser.add_argument("--features", type=int, default=None, help="d (default 100)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fit (default 5)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds (default 7)")
    parser.add_argument("--json", default=None, help="also write the raw times here")
    args = parser.parse_args()
    quick = args.quick
    n = args.rows or (50_000 if quick else 200_000)
    d = args.features or (50 if quick else 100)
    epochs = args.epochs or (3 if quick else 5)
    repeat = args.repeat or (3 if quick else 7)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = {"python": platform.python_version(), "cpus": cpus,
               "fastopt": fastopt.__version__, "kernels": _backends._core.cpu_target(),
               "numpy": np.__version__, "scikit-learn": getattr(sklearn, "__version__", None)}
    print(", ".join(f"{k} {v}" for k, v in machine.items() if v is not None)
          + (f"; load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""))
    data = [dataset(n, d, seed) for seed in SEEDS]
    print(f"2 data sets, n={n:,}, d={d}, float64 (X {n * d * 8 / 1e6:.0f} MB each); Adam, "
          f"batch {BATCH}, {epochs} epochs, tol=None, 1 thread per fit; median (min-max) ms "
          f"of {repeat} interleaved rounds after a warm-up")
    calls = cases(data, epochs)
    times, busy, mismatches = time_round_robin(calls, repeat)

    print(f"{'':<18}{'sequential (A, B)':>22}{'2 threads (A | B)':>22}{'speed-up':>10}"
          f"{'CPU/wall':>10}")
    speedups = {}
    for case in calls:
        seq, thr = times[case, "sequential"], times[case, "2 threads"]
        speedups[case] = float(np.median(seq) / np.median(thr))
        print(f"{case:<18}{ms(seq):>22}{ms(thr):>22}{speedups[case]:>9.2f}x"
              f"{busy[case, 'sequential']:>5.2f}/{busy[case, '2 threads']:.2f}")
    print("CPU/wall: median process CPU time / wall time, sequential/threaded (cores kept busy)")
    for case, ratio in speedups.items():
        print(f"speed-up 2 threads / sequential, {case}: {ratio:.2f}x (target ~{TARGET:g}x)")
    if cpus < 2:
        print(f"(only {cpus} CPU available to this process: no speed-up is possible)")
    if mismatches:
        print("results NOT bit-identical to the warm-up's sequential fits: "
              + "; ".join(mismatches))
    else:
        print("results: threaded fits bit-identical to the sequential fits "
              "(coef_, intercept_, every round)")
    if args.json:
        rows = [{"case": case, "mode": mode, "seconds": t.tolist(),
                 "median_ms": float(np.median(t) * 1e3), "cpu_per_wall": busy[case, mode]}
                for (case, mode), t in times.items()]
        with open(args.json, "w") as out:
            json.dump({"machine": machine, "quick": quick, "n": n, "d": d, "epochs": epochs,
                       "repeat": repeat, "rows": rows, "speedup": speedups,
                       "identical": not mismatches, "mismatches": mismatches}, out, indent=1)
        print(f"json: {args.json}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
