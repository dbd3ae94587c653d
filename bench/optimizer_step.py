"""One Adam step on n float32 parameters, 1 thread: fastopt, its NumPy reference and
torch.optim.Adam, timed side by side, with the memory-bandwidth floor for comparison.

    python bench/optimizer_step.py [--n 10000000] [--repeat 30]
"""

import os

# Before NumPy (and torch) load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import fastopt  # noqa: E402
from fastopt import _backends  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

# Bytes one Adam step moves per parameter: params, exp_avg, exp_avg_sq read and written, grad read.
ADAM_BYTES = 7 * 4
# The bandwidth probe, a += b, moves 12 bytes per element: read a and b, write a. In place, as in
# Adam, so there are no write-allocate reads or non-temporal stores to miscount.
PROBE_BYTES = 3 * 4
PROBE = "bandwidth probe a += b"


def contenders(n):
    """{name: zero-argument callable doing one step}, each on its own copy of the same data."""
    rng = np.random.default_rng(0)
    params = rng.standard_normal(n, dtype=np.float32)
    grad = rng.standard_normal(n, dtype=np.float32)

    def fastopt_step(backend):
        p = params.copy()
        opt = fastopt.Adam(lr=1e-3)
        state = opt.init(p)
        return lambda: opt.step(p, grad, state, backend=backend)

    def torch_step(**variant):
        p = torch.from_numpy(params.copy())
        p.grad = torch.from_numpy(grad)
        return torch.optim.Adam([p], lr=1e-3, **variant).step

    def probe():
        # As many bytes as an Adam step: a shorter probe pays relatively more for the dirty
        # cache lines the previous contender leaves behind (here, 20% less bandwidth).
        a = rng.standard_normal(ADAM_BYTES * n // PROBE_BYTES, dtype=np.float32)
        b = a.copy()
        return lambda: np.add(a, b, out=a)

    steps = {"fastopt": fastopt_step("cpp"), "NumPy reference": fastopt_step("numpy")}
    if torch is not None:
        steps["torch fused"] = torch_step(fused=True)
        steps["torch foreach=False"] = torch_step(foreach=False)
    steps[PROBE] = probe()
    return steps


def time_round_robin(steps, repeat):
    """Seconds per call, shape (repeat, len(steps)); one call of each per round, so drifts in
    clock speed or background load hit every contender alike."""
    for step in steps.values():
        step()  # warm-up: torch allocates its state on the first step
    times = np.empty((repeat, len(steps)))
    for r in range(repeat):
        for c, step in enumerate(steps.values()):
            start = time.perf_counter()
            step()
            times[r, c] = time.perf_counter() - start
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(1)

    steps = contenders(args.n)
    times = time_round_robin(steps, args.repeat)
    median = dict(zip(steps, np.median(times, axis=0)))
    best = dict(zip(steps, times.min(axis=0)))
    floor = median.pop(PROBE)
    bandwidth = ADAM_BYTES * args.n / floor

    torch_version = torch.__version__ if torch is not None else "not installed"
    unit, scale = ("ms", 1e3) if min(median.values()) >= 1e-3 else ("us", 1e6)
    print(f"Adam step, n={args.n:,} float32, 1 thread, median of {args.repeat} interleaved "
          f"rounds; fastopt {fastopt.__version__} ({_backends._core.cpu_target()} kernels), "
          f"torch {torch_version}")
    print(f"Measured bandwidth (a += b): {bandwidth / 1e9:.1f} GB/s; memory floor for "
          f"{ADAM_BYTES} B/parameter: {floor * scale:.2f} {unit}\n")
    print(f"{'':<22}{'median ' + unit:>11}{'min ' + unit:>9}{'GB/s':>8}{'x floor':>9}")
    for name, t in median.items():
        print(f"{name:<22}{t * scale:>11.2f}{best[name] * scale:>9.2f}"
              f"{ADAM_BYTES * args.n / t / 1e9:>8.1f}{t / floor:>9.2f}")
    print()
    if torch is not None:
        print(f"torch fused / fastopt:      {median['torch fused'] / median['fastopt']:.2f}x")
    print(f"NumPy reference / fastopt:  {median['NumPy reference'] / median['fastopt']:.2f}x")
    print(f"fastopt / memory floor:     {median['fastopt'] / floor:.2f}x")


if __name__ == "__main__":
    main()
