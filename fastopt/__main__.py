"""``python -m fastopt``: what is installed, and every optimizer side by side on a small
ill-conditioned quadratic (the full ``fastopt compare`` on real data comes with the training
API)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import __version__, _backends
from .optim import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, RAdam, RMSprop

# Learning rates that work on this problem (curvatures 1..100); not tuned further.
DEMO_OPTIMIZERS = {
    "gd": SGD(lr=0.01),
    "momentum": SGD(lr=0.01, momentum=0.9),
    "nesterov": SGD(lr=0.01, momentum=0.9, nesterov=True),
    "adagrad": Adagrad(lr=0.5),
    "rmsprop": RMSprop(lr=0.01),
    "adadelta": Adadelta(lr=1.0),
    "adam": Adam(lr=0.05),
    "adamw": AdamW(lr=0.05, weight_decay=0.0),
    "nadam": NAdam(lr=0.05),
    "radam": RAdam(lr=0.05),
}


def quadratic_demo(steps: int, dim: int, backend: str, out=sys.stdout) -> dict:
    """Minimise ½ Σ h_i x_i² (h log-spaced over [1, 100]) from x = 1 with each optimizer;
    print and return {name: (final loss, first step with loss < 1e-6 or None)}."""
    curvature = np.logspace(0, 2, dim)
    results = {}
    print(f"{'optimizer':<10} {'final loss':>12} {'steps to 1e-6':>14} {'us/step':>9}", file=out)
    for name, opt in DEMO_OPTIMIZERS.items():
        x = np.ones(dim)
        state = opt.init(x)
        reached = None
        start = time.perf_counter()
        for t in range(steps):
            opt.step(x, curvature * x, state, backend=backend)
            loss = 0.5 * float(np.dot(curvature * x, x))
            if reached is None and loss < 1e-6:
                reached = t + 1
        per_step = (time.perf_counter() - start) / steps * 1e6
        results[name] = (loss, reached)
        print(f"{name:<10} {loss:>12.3e} {reached if reached else '-':>14} {per_step:>9.1f}",
              file=out)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastopt", description=__doc__)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--backend", default="auto", choices=("auto",) + _backends.BACKENDS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.dim < 1:
        parser.error("--steps and --dim must be positive")
    backend = _backends.resolve(args.backend)
    target = ""
    if backend == "cpp":
        target = f" ({_backends._core.cpu_target()} kernels)"
    print(f"fastopt {__version__}, backend {backend}{target}")
    print(f"Optimizers on an ill-conditioned quadratic, d={args.dim}, {args.steps} steps:")
    quadratic_demo(args.steps, args.dim, backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
