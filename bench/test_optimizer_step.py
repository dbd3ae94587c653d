"""One Adam step on float32 parameters, 1 thread: fastopt, its NumPy reference, torch.optim.

Run with ``pytest bench/ --benchmark-only -p no:randomly``. Each size is one group, so the
NumPy baseline and torch sit in the same table as fastopt.
"""

import numpy as np
import pytest

import fastopt

BIG = 10_000_000
SIZES = [
    pytest.param(BIG, marks=pytest.mark.benchmark(group="adam-step-1e7-f32"), id="1e7"),
    # Small enough to fit in L1: what is left is per-call overhead.
    pytest.param(1_000, marks=pytest.mark.benchmark(group="adam-step-1e3-f32"), id="1e3"),
]


def arrays(n):
    rng = np.random.default_rng(0)
    return rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)


def run(benchmark, step, n):
    step()  # warm-up: torch allocates its state on the first step
    if n >= BIG:
        benchmark.pedantic(step, rounds=20, iterations=1)
    else:
        benchmark(step)  # calibrates iterations per round: one call is near the timer resolution


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_fastopt(benchmark, n, backend):
    params, grad = arrays(n)
    opt = fastopt.Adam(lr=1e-3)
    state = opt.init(params)
    run(benchmark, lambda: opt.step(params, grad, state, backend=backend), n)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("variant", [{"fused": True}, {"foreach": False}],
                         ids=["fused", "single-tensor"])
def test_torch(benchmark, n, variant):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    params, grad = arrays(n)
    p = torch.from_numpy(params)
    p.grad = torch.from_numpy(grad)
    opt = torch.optim.Adam([p], lr=1e-3, **variant)
    run(benchmark, opt.step, n)
