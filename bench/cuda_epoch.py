"""Training epochs on the GPU (backend="cuda"), float32 linear regression, n=10,000,000, d=100:
a full-batch gradient epoch against the device's memory-bandwidth floor (measured with a copy
kernel), and minibatch Adam epochs (batch 4096, shuffled) against the C++ CPU backend and
PyTorch on the same GPU.

    python bench/cuda_epoch.py [--n 10000000] [--d 100] [--batch 4096] [--repeat 3]

X is generated on the host, then copied to the device once; the CUDA and torch contenders read
that device copy (torch through ``__cuda_array_interface__``, no copy), the C++ backend the host
one. Times are medians over ``--repeat`` epochs after one warm-up epoch (compilation); an epoch
ends when its results are back on the host. Exits with a message when there is no GPU.
"""

import argparse
import sys
import time

import numpy as np
from numba import cuda
from numba.core import config

import fastopt
from fastopt import _backends
from fastopt.engine import TrainingState, prepare

try:
    import torch
except ImportError:
    torch = None


def median_seconds(run, repeat):
    run()  # warm-up: compiles the kernels, allocates scratch space
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@cuda.jit
def copy_kernel(src, dst):
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[i] = src[i]


def copy_bandwidth(X_device, repeat):
    """Bytes per second of a grid-stride copy kernel (read + write) over X's size."""
    src = X_device.reshape(X_device.size)
    dst = cuda.device_array_like(src)
    blocks = 32 * cuda.get_current_device().MULTIPROCESSOR_COUNT

    def run():
        copy_kernel[blocks, 256](src, dst)
        cuda.synchronize()

    return 2 * src.nbytes / median_seconds(run, repeat)


def fastopt_epoch(X, y, optimizer, batch, backend):
    """An epoch of fastopt's backend on (X, y), continuing from the previous one."""
    problem, _ = prepare(X, y, model="linear", penalty=None, alpha=0.0, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, standardize=False,
                         backend=backend)
    params = np.zeros(problem.spec.n_params, dtype=np.float32)
    state = TrainingState(params, optimizer, optimizer.init(params), seed=0)
    record = _backends.resolve(backend)
    data = record.dataset(problem)

    def epoch(problem, state, lrs, batch, shuffle):
        return record.epoch(data, state, lrs, batch, shuffle)
    steps = -(-len(y) // batch)

    def run():
        ok = epoch(problem, state, np.full(steps, optimizer.lr), batch, batch < len(y))[2]
        assert ok, "the benchmark diverged"
        state.epochs += 1

    return run


def torch_epoch(X_device, y, batch, adam):
    """The same epoch written in PyTorch (float32 throughout, torch's own shuffle)."""
    X = torch.as_tensor(X_device, device="cuda")
    target = torch.as_tensor(y, dtype=torch.float32, device="cuda")
    n, d = X.shape
    w = torch.zeros(d, device="cuda", requires_grad=True)
    b = torch.zeros(1, device="cuda", requires_grad=True)
    opt = (torch.optim.Adam([w, b], lr=1e-3, fused=True) if adam
           else torch.optim.SGD([w, b], lr=1e-3))

    def run():
        order = torch.randperm(n, device="cuda") if batch < n else None
        for start in range(0, n, batch):
            rows = order[start:start + batch] if order is not None else slice(None)
            residual = X[rows] @ w + b - target[rows]
            loss = 0.5 * (residual * residual).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        torch.cuda.synchronize()

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    status = _backends.cuda_status()
    if status != "available":
        print(f"bench/cuda_epoch.py: nothing to measure, backend 'cuda' is unavailable "
              f"({status})")
        return 0
    if config.ENABLE_CUDASIM:
        print("bench/cuda_epoch.py: nothing to measure in numba's CUDA simulator "
              "(unset NUMBA_ENABLE_CUDASIM)")
        return 0
    torch_cuda = torch is not None and torch.cuda.is_available()

    n, d, batch = args.n, args.d, args.batch
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = (X @ rng.standard_normal(d, dtype=np.float32) + 0.1).astype(np.float64)
    X_device = cuda.to_device(X)

    bandwidth = copy_bandwidth(X_device, args.repeat)
    floor = X.nbytes / bandwidth
    name = cuda.get_current_device().name
    name = name.decode() if isinstance(name, bytes) else name
    print(f"fastopt {fastopt.__version__}, {name}; linear regression, n={n:,}, d={d}, float32, "
          f"median of {args.repeat} epochs")
    print(f"Copy-kernel bandwidth {bandwidth / 1e9:.0f} GB/s: reading X ({X.nbytes / 1e9:.1f} GB) "
          f"once takes at least {floor * 1e3:.2f} ms\n")

    steps = -(-n // batch)
    rows = [("full batch, SGD", 1, [
        ("fastopt cuda", fastopt_epoch(X_device, y, fastopt.SGD(lr=1e-3), n, "cuda")),
        ("torch cuda", torch_epoch(X_device, y, n, adam=False) if torch_cuda else None),
        ("fastopt cpp", fastopt_epoch(X, y, fastopt.SGD(lr=1e-3), n, "cpp"))]),
        (f"batch {batch}, Adam", steps, [
        ("fastopt cuda", fastopt_epoch(X_device, y, fastopt.Adam(lr=1e-3), batch, "cuda")),
        ("torch cuda (fused)", torch_epoch(X_device, y, batch, adam=True) if torch_cuda
         else None),
        ("fastopt cpp", fastopt_epoch(X, y, fastopt.Adam(lr=1e-3), batch, "cpp"))])]
    print(f"{'':<20}{'':<20}{'ms/epoch':>10}{'us/update':>11}{'x floor':>9}")
    for workload, updates, contenders in rows:
        for contender, run in contenders:
            if run is None:
                print(f"{workload:<20}{contender:<20}{'n/a (no torch.cuda)':>30}")
            else:
                t = median_seconds(run, args.repeat)
                print(f"{workload:<20}{contender:<20}{t * 1e3:>10.1f}"
                      f"{t / updates * 1e6:>11.1f}{t / floor:>9.2f}")
            workload = ""
    return 0


if __name__ == "__main__":
    sys.exit(main())
