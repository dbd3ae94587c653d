"""One full-batch gradient epoch on a dask array, 1 worker against 2 (fastopt.dask, strategy
"gradient"): n = 4,000,000 rows, d = 100, float64 (3.2 GB), blocks of 250,000 rows persisted
on the workers, linear regression, each worker one thread.

    python bench/dask_workers.py [--rows 4000000] [--epochs 5]

Prints the median epoch time of each cluster and the speed-up.
"""

import argparse
import time

import numpy as np


def epoch_times(workers, rows, epochs):
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import fastopt.dask as fdask

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        X = da.random.RandomState(0).standard_normal((rows, 100), chunks=(250_000, 100))
        y = X[:, 0] * 2.0 + 1.0
        X, y = client.persist([X, y])
        wait([X, y])  # the data exists before the clock starts
        start = time.perf_counter()
        result = fdask.fit(X, y, optimizer="sgd", lr=0.1, epochs=epochs, backend="cpp")
        total = time.perf_counter() - start
        return np.array(result.history["seconds"]), total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    medians = {}
    for workers in (1, 2):
        seconds, total = epoch_times(workers, args.rows, args.epochs)
        medians[workers] = float(np.median(seconds))
        print(f"{workers} worker(s): epoch median {medians[workers] * 1e3:.0f} ms "
              f"(min {seconds.min() * 1e3:.0f}, max {seconds.max() * 1e3:.0f}); fit with the "
              f"statistics pass {total:.1f} s")
    print(f"speed-up 2 workers / 1: {medians[1] / medians[2]:.2f}x")


if __name__ == "__main__":
    main()
