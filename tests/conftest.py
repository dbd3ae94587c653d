"""Shared test tables. Tests that take an ``optimizer`` argument run once per row of
OPTIMIZER_CASES: every optimizer with a spread of hyperparameter combinations."""

import os
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # tests/backend_calls.py

# Without an NVIDIA device, the CUDA backend's tests run on Numba's CUDA simulator (slow, tiny
# sizes); numba reads this when numba.cuda is first imported, so it is set before any test runs.
if not os.path.exists("/dev/nvidiactl"):
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
import pytest

import fastopt as fo

OPTIMIZER_CASES = [
    fo.SGD(lr=0.1),
    fo.SGD(lr=0.05, momentum=0.9),
    fo.SGD(lr=0.05, momentum=0.9, dampening=0.5),
    fo.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
    fo.SGD(lr=0.1, weight_decay=0.1),
    fo.Adagrad(),
    fo.Adagrad(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1, eps=1e-8),
    fo.RMSprop(),
    fo.RMSprop(momentum=0.9),
    fo.RMSprop(centered=True),
    fo.RMSprop(lr=1e-3, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1),
    fo.Adadelta(),
    fo.Adadelta(lr=0.5, rho=0.5, eps=1e-4, weight_decay=0.1),
    fo.Adam(),
    fo.Adam(amsgrad=True),
    fo.Adam(lr=1e-2, weight_decay=0.1),
    fo.Adam(betas=(0.2, 0.5)),  # 1 - beta1 >= 0.5: the other branch of torch's lerp
    fo.Adam(weight_decay=0.1, amsgrad=True, decoupled_weight_decay=True),
    fo.AdamW(),
    fo.AdamW(lr=1e-2, weight_decay=0.5, amsgrad=True),
    fo.NAdam(),
    fo.NAdam(weight_decay=0.1),
    fo.NAdam(weight_decay=0.1, momentum_decay=1e-2, decoupled_weight_decay=True),
    fo.RAdam(),
    fo.RAdam(weight_decay=0.1),
    fo.RAdam(betas=(0.5, 0.9), weight_decay=0.1, decoupled_weight_decay=True),
]


def pytest_generate_tests(metafunc):
    if "optimizer" in metafunc.fixturenames:
        metafunc.parametrize("optimizer", OPTIMIZER_CASES, ids=[repr(o) for o in OPTIMIZER_CASES])


def gradient_sequence(rng, size, dtype, steps=60):
    """Random gradients with the awkward cases mixed in: an all-zero step, very large and very
    small gradients."""
    grads = []
    for t in range(steps):
        g = rng.standard_normal(size)
        if t == 5:
            g[:] = 0.0
        elif t == 11:
            g *= 1e6
        elif t == 17:
            g *= 1e-6
        grads.append(g.astype(dtype))
    return grads


@pytest.fixture
def rng(request):
    """A different, reproducible stream per test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def gradients(rng):
    """``gradients(size, dtype, steps=60)``: see gradient_sequence."""
    return lambda size, dtype, steps=60: gradient_sequence(rng, size, dtype, steps)


def pytest_collection_modifyitems(config, items):
    """Tests marked slow (long property runs, huge files) run only when asked for by name:
    ``pytest -m slow``."""
    expression = config.getoption("markexpr") or ""
    if "slow" in expression and "not slow" not in expression:
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
