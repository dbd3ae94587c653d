"""One epoch of minibatch Adam (batch 256, lr 1e-3, shuffled), 1 thread: fastopt, a plain NumPy
loop, fastopt's NumPy reference, PyTorch, scikit-learn's SGD and the read-X floor.

Run with ``pytest bench/ --benchmark-only -p no:randomly``. The workloads are those of
``bench/epoch.py`` (whose contenders this file reuses) at a tenth of the rows, so that the whole
file runs in well under a minute; each workload and dtype is one group, with the NumPy baselines
in the same table as fastopt.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")


def _load_script():
    # bench/ is not a package and pytest runs with --import-mode=importlib: load it by path.
    spec = importlib.util.spec_from_file_location("bench_epoch",
                                                  Path(__file__).with_name("epoch.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


epoch = _load_script()

ROWS_FRACTION = 0.1
CASES = [pytest.param(w, dtype, marks=pytest.mark.benchmark(group=f"epoch-{w}-{dtype.__name__}"),
                      id=f"{w}-{dtype.__name__}")
         for w in epoch.WORKLOADS for dtype in (np.float64, np.float32)]
CONTENDERS = [epoch.EPOCH, epoch.FIT, epoch.NUMPY_LOOP, epoch.REFERENCE, epoch.TORCH_AUTOGRAD,
              epoch.TORCH_MANUAL, epoch.SKLEARN, epoch.STREAM]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with threadpoolctl.threadpool_limits(limits=1):
        if epoch.torch is not None:
            threads = epoch.torch.get_num_threads()
            epoch.torch.set_num_threads(1)
            yield
            epoch.torch.set_num_threads(threads)
        else:
            yield


@pytest.fixture(scope="module")
def features():
    n = max(int(w.n * ROWS_FRACTION) for w in epoch.WORKLOADS.values())
    X = epoch.features(n, epoch.WORKLOADS["W1"].d)
    return {np.float64: X, np.float32: X.astype(np.float32)}


_calls = {}


def calls_for(features, workload, dtype):
    """The contenders of one case, built once (the data and torch views are shared)."""
    if (workload, dtype) not in _calls:
        w = epoch.WORKLOADS[workload]
        X = features[dtype][:int(w.n * ROWS_FRACTION)]
        _calls[(workload, dtype)] = epoch.contenders(X, epoch.targets(X, w.model), w.model,
                                                     verbose=False)
    return _calls[(workload, dtype)]


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("workload, dtype", CASES)
def test_epoch(benchmark, features, workload, dtype, contender):
    calls = calls_for(features, workload, dtype)
    if contender not in calls:
        pytest.skip(f"{contender}: not installed")
    call = calls[contender]
    if isinstance(call, epoch.Scaled):  # the NumPy reference on a subsample: not scaled here
        benchmark.extra_info["rows_timed"] = call.rows
    benchmark.pedantic(call, rounds=5, iterations=1, warmup_rounds=1)
