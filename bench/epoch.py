"""One epoch of minibatch Adam on a linear or logistic regression, 1 thread: fastopt side by
side with a plain NumPy loop, fastopt's NumPy reference, PyTorch and scikit-learn, and the time
to read X once (the memory floor).

    python bench/epoch.py [--workload W1|W2|all] [--dtype float64|float32|all] [--repeat 5]
                          [--skip-reference] [--scale 1.0]

W1: linear regression, n=1,000,000, d=100. W2: logistic regression, n=500,000, d=100 (the first
rows of W1's X). Batch 256, Adam with lr=1e-3 (torch's other defaults), rows shuffled, an
intercept, no penalty, parameters starting at zero on every call.
"""

import os

if __name__ == "__main__":  # before NumPy (and torch) load their thread pools
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

import fastopt  # noqa: E402
from fastopt import _backends  # noqa: E402
from fastopt.engine import TrainingState, prepare  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

try:
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier, SGDRegressor
except ImportError:
    sklearn = None

LR = 1e-3
BATCH = 256
SEED = 0
BETAS = (0.9, 0.999)
EPS = 1e-8
# fastopt's NumPy reference is timed on a leading subsample of the rows, and its time scaled up
# to all rows, when one full epoch would take longer than this (seconds).
REFERENCE_BUDGET = 10.0


@dataclass(frozen=True)
class Workload:
    model: str
    n: int
    d: int


WORKLOADS = {"W1": Workload("linear", 1_000_000, 100), "W2": Workload("logistic", 500_000, 100)}

EPOCH = "fastopt epoch"
THREADS = "fastopt epoch, 2 threads"
IN_ORDER = "fastopt epoch, rows in order"
BATCHES = "fastopt epoch, shuffle='batches'"
FIT = "fastopt.fit() end to end"
ESTIMATOR = "fastopt estimator fit()"
NUMPY_LOOP = "NumPy loop"
REFERENCE = "fastopt NumPy reference"
NUMBA = "fastopt numba backend epoch"
TORCH_AUTOGRAD = "torch autograd + fused Adam"
TORCH_MANUAL = "torch manual grad + fused Adam"
SKLEARN = "sklearn SGD (plain SGD)"
CHECKS = "fit() input checks only"
STREAM = "floor: read X once"
GATHER = "floor: gather rows, random order"
SHUFFLED_READ = "floor: read rows shuffled (C++)"
# Lines of the table that are references, not contenders.
REFERENCES = (IN_ORDER, BATCHES, CHECKS, STREAM, GATHER, SHUFFLED_READ)


# ---------------------------------------------------------------------------------------------
# Data

def features(n, d, seed=SEED):
    """Standard normal X (n, d) in float64; float32 runs use a converted copy of it."""
    return np.random.default_rng(seed).standard_normal((n, d))


def targets(X, model, seed=SEED):
    """float64 targets for the first rows of X: ``X w + noise`` (linear) or 0/1 labels drawn
    from the logistic model (logistic), with ``w ~ N(0, 1/d)`` so that scores are about N(0, 1)."""
    rng = np.random.default_rng(seed + 1)
    n, d = X.shape
    scores = X @ (rng.standard_normal(d) / np.sqrt(d)).astype(X.dtype) + 0.5
    if model == "linear":
        return scores + 0.1 * rng.standard_normal(n)
    return (rng.random(n) < 1.0 / (1.0 + np.exp(-scores))).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Contenders: each returns the mean training loss of the epoch (None where it has none)

def fastopt_epoch_function(X, y, model, backend="cpp", shuffle=True, threads=1):
    """One epoch of fastopt's training loop on already validated data: ``prepare`` (the checks
    fit() does) runs here once, not per call. ``shuffle=False`` and ``shuffle="batches"``
    (references, not contenders: the goals are for a uniform shuffle of the rows) show what the
    random row order costs."""
    problem, _ = prepare(X, y, model=model, penalty=None, alpha=0.0, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, standardize=False)
    backend = _backends.resolve(backend)
    data = backend.dataset(problem)
    steps = -(-len(X) // BATCH)
    lrs = np.full(steps, LR)

    def epoch():
        params = np.zeros(problem.spec.n_params, dtype=X.dtype)
        opt = fastopt.Adam(lr=LR)
        state = TrainingState(params, opt, opt.init(params), seed=SEED)
        loss, _, ok, _ = backend.epoch(data, state, lrs, BATCH, shuffle, threads)
        assert ok
        return loss
    return epoch


def fastopt_fit(X, y, model):
    result = fastopt.fit(X, y, model=model, optimizer="adam", lr=LR, epochs=1,
                         batch_size=BATCH, tol=None, random_state=SEED, backend="cpp")
    return result.history["loss"][0]


def estimator_fit(X, y, model):
    """One epoch through the scikit-learn estimator with its defaults (standardize=True: the
    column statistics, then an epoch on the standardised features)."""
    estimator = (fastopt.LinearRegression if model == "linear" else fastopt.LogisticRegression)
    return estimator(optimizer="adam", lr=LR, epochs=1, batch_size=BATCH, tol=None,
                     random_state=SEED, backend="cpp").fit(X, y).loss_curve_[0]


def fit_checks(X, y, model):
    """The validation and encoding fit() does before training: y, labels (X's NaN/inf check
    comes with the epochs of the compiled backends)."""
    prepare(X, y, model=model, penalty=None, alpha=0.0, l1_ratio=0.15, fit_intercept=True,
            sample_weight=None, standardize=False, backend="cpp")


def numpy_loop(X, y, model, seed=SEED):
    """One epoch of minibatch Adam as a NumPy user would write it: a permutation drawn up front,
    a gathered copy of each batch, the gradient by matrix products, Adam as in torch.optim.

    ``y`` has X's dtype, so that the whole loop runs in that precision.
    """
    n, d = X.shape
    w = np.zeros(d + 1, dtype=X.dtype)  # coefficients, then the intercept
    grad, exp_avg, exp_avg_sq = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    beta1, beta2 = BETAS
    order = np.random.default_rng(seed).permutation(n)
    total = 0.0
    for t, start in enumerate(range(0, n, BATCH), start=1):
        rows = order[start:start + BATCH]
        Xb, yb = X[rows], y[rows]
        f = Xb @ w[:d] + w[d]
        if model == "linear":
            r = f - yb
            total += 0.5 * (r @ r)
        else:
            total += np.sum(np.logaddexp(0, f) - yb * f)
            r = 0.5 * np.tanh(0.5 * f) + 0.5 - yb  # sigmoid(f) - y, without overflow
        grad[:d] = r @ Xb
        grad[d] = r.sum()
        grad /= len(rows)
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        denom = np.sqrt(exp_avg_sq) / np.sqrt(1 - beta2**t) + EPS
        w -= LR / (1 - beta1**t) * exp_avg / denom
    return total / n


def torch_autograd(X, y, model, seed=SEED):
    """Idiomatic PyTorch: nn.Linear, a loss from torch.nn.functional, backward(), fused Adam;
    the batches are index_select gathers along a torch.randperm permutation (no DataLoader)."""
    n, d = X.shape
    torch.manual_seed(seed)
    net = torch.nn.Linear(d, 1, dtype=X.dtype)
    torch.nn.init.zeros_(net.weight)
    torch.nn.init.zeros_(net.bias)
    opt = torch.optim.Adam(net.parameters(), lr=LR, fused=True)
    order = torch.randperm(n)
    total = 0.0
    for start in range(0, n, BATCH):
        rows = order[start:start + BATCH]
        xb, yb = X.index_select(0, rows), y.index_select(0, rows)
        f = net(xb).squeeze(1)
        if model == "linear":
            loss = 0.5 * F.mse_loss(f, yb)
        else:
            loss = F.binary_cross_entropy_with_logits(f, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(rows)
    return total / n


def torch_manual(X, y, model, seed=SEED):
    """PyTorch without autograd: the gradient by hand (addmv, mv), fused Adam for the update."""
    n, d = X.shape
    torch.manual_seed(seed)
    w, b = torch.zeros(d, dtype=X.dtype), torch.zeros(1, dtype=X.dtype)
    w.grad, b.grad = torch.zeros_like(w), torch.zeros_like(b)
    opt = torch.optim.Adam([w, b], lr=LR, fused=True)
    order = torch.randperm(n)
    total = 0.0
    with torch.no_grad():
        for start in range(0, n, BATCH):
            rows = order[start:start + BATCH]
            xb, yb = X.index_select(0, rows), y.index_select(0, rows)
            f = torch.addmv(b, xb, w)
            if model == "linear":
                r = f - yb
                total += 0.5 * r.dot(r).item()
            else:
                total += (F.softplus(f) - yb * f).sum().item()
                r = torch.sigmoid(f) - yb
            torch.mv(xb.T, r, out=w.grad)
            w.grad /= len(rows)
            torch.mean(r, 0, keepdim=True, out=b.grad)
            opt.step()
    return total / n


def sklearn_sgd(X, y, model, seed=SEED):
    """scikit-learn's SGD, one epoch: per-sample updates with its default learning-rate
    schedule, not Adam on minibatches."""
    if model == "linear":
        est = SGDRegressor(penalty=None, max_iter=1, tol=None, shuffle=True, random_state=seed)
    else:
        est = SGDClassifier(loss="log_loss", penalty=None, max_iter=1, tol=None, shuffle=True,
                            random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)


def read_once(X):
    """A streaming reduction over X: max is vectorised with no pairwise-summation overhead, so it
    runs at the machine's streaming bandwidth."""
    X.reshape(-1).max()


def gather_function(X):
    """Read every row once in a random order, in blocks of BATCH rows (gathered copy, then summed);
    the permutation is drawn once, outside the timing."""
    order = np.random.default_rng(SEED).permutation(len(X))
    total = np.zeros(X.shape[1], dtype=X.dtype)

    def gather():
        for start in range(0, len(X), BATCH):
            np.add(total, X[order[start:start + BATCH]].sum(axis=0), out=total)
    return gather


def shuffled_read_function(X):
    """The memory floor of a shuffled epoch: every row read once in an epoch's shuffled order,
    requested ahead at the epoch's distances, and summed, in compiled code with no other work
    (``fastopt._core.read_rows``). The order is drawn once, outside the timing (the epoch draws
    its own, ~1% of W1's time)."""
    order = _backends._core.shuffled_order(len(X), SEED, 0)
    return lambda: _backends._core.read_rows(X, order)


def contenders(X, y, model, *, reference=True, verbose=True):
    """{name: zero-argument callable, one epoch}, all on the same X (no copies: torch tensors
    share its memory). ``y`` is float64; the NumPy and torch loops get it in X's dtype."""
    y_native = y.astype(X.dtype, copy=False)
    calls = {EPOCH: fastopt_epoch_function(X, y, model),
             THREADS: fastopt_epoch_function(X, y, model, threads=2),
             FIT: lambda: fastopt_fit(X, y, model),
             NUMPY_LOOP: lambda: numpy_loop(X, y_native, model)}
    if reference:
        calls[REFERENCE] = reference_function(X, y, model, verbose=verbose)
    if fastopt.backends()["numba"] == "available":
        calls[NUMBA] = fastopt_epoch_function(X, y, model, backend="numba")
    if torch is not None:
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y_native)
        calls[TORCH_AUTOGRAD] = lambda: torch_autograd(Xt, yt, model)
        calls[TORCH_MANUAL] = lambda: torch_manual(Xt, yt, model)
    if sklearn is not None:
        calls[SKLEARN] = lambda: sklearn_sgd(X, y_native, model)
        calls[ESTIMATOR] = lambda: estimator_fit(X, y, model)
    calls[IN_ORDER] = fastopt_epoch_function(X, y, model, shuffle=False)
    calls[BATCHES] = fastopt_epoch_function(X, y, model, shuffle="batches")
    calls[CHECKS] = lambda: fit_checks(X, y, model)
    calls[STREAM] = lambda: read_once(X)
    calls[GATHER] = gather_function(X)
    calls[SHUFFLED_READ] = shuffled_read_function(X)
    return calls


class Scaled:
    """A callable timed on ``rows`` of the ``n`` rows; ``scale = n / rows`` converts its time."""

    def __init__(self, call, rows, n):
        self.call, self.rows, self.scale = call, rows, n / rows

    def __call__(self):
        return self.call()


def reference_function(X, y, model, *, verbose=True):
    """fastopt's NumPy reference on all rows, or on a leading subsample (a view, no copy) when one
    epoch on all rows would take longer than REFERENCE_BUDGET; estimated from 1/20 of the rows."""
    n = len(X)
    probe_rows = min(n, max(BATCH, n // 20))
    start = time.perf_counter()
    fastopt_epoch_function(X[:probe_rows], y[:probe_rows], model, backend="numpy")()
    estimate = (time.perf_counter() - start) * n / probe_rows
    if estimate <= REFERENCE_BUDGET:
        return fastopt_epoch_function(X, y, model, backend="numpy")
    rows = max(BATCH, int(n * REFERENCE_BUDGET / 5 / estimate) // BATCH * BATCH)
    if verbose:
        print(f"[{REFERENCE}: one epoch would take ~{estimate:.0f} s; timed on the first "
              f"{rows:,} rows and scaled by {n / rows:.1f}]")
    return Scaled(fastopt_epoch_function(X[:rows], y[:rows], model, backend="numpy"), rows, n)


# ---------------------------------------------------------------------------------------------
# Timing and report

def time_round_robin(calls, repeat):
    """Seconds per call, shape (repeat, len(calls)), and each contender's warm-up return value
    (its epoch loss); one call of each per round, so drifts in clock speed or background load
    hit every contender alike. Subsampled contenders' times are scaled to all rows."""
    losses = {name: call() for name, call in calls.items()}  # warm-up
    times = np.empty((repeat, len(calls)))
    for r in range(repeat):
        for c, call in enumerate(calls.values()):
            start = time.perf_counter()
            call()
            times[r, c] = time.perf_counter() - start
    scale = np.array([getattr(call, "scale", 1.0) for call in calls.values()])
    return times * scale, losses


# Targets from the issues: (peer, ratio peer / fastopt epoch at least, source)
TARGETS = [
    (NUMPY_LOOP, 2.0, "training issue"),
    (NUMPY_LOOP, 6.0, "performance issue"),
    (TORCH_AUTOGRAD, 10.0, "training issue"),
    (TORCH_AUTOGRAD, 20.0, "performance issue"),
    (SKLEARN, 10.0, ""),
]
FLOOR_TARGET = 2.0  # fastopt epoch / streaming floor at most
NUMBA_TARGET = 1.5  # numba backend epoch / C++ epoch at most (backends issue)
THREADS_TARGET = 1.6  # 2-thread epoch speed-up over 1 thread, B >= 256 (performance issue)


def report(name, workload, dtype, calls, times, losses):
    median = dict(zip(calls, np.median(times, axis=0)))
    best = dict(zip(calls, times.min(axis=0)))
    floor, epoch = median[STREAM], median[EPOCH]
    itemsize = np.dtype(dtype).itemsize
    gb = workload.n * workload.d * itemsize / 1e9
    print(f"\n{name}: {workload.model} regression, n={workload.n:,}, d={workload.d}, "
          f"{np.dtype(dtype).name} (X {gb * 1e3:.0f} MB), batch {BATCH}, one epoch of Adam "
          f"lr={LR:g}, shuffled, 1 thread; median of {len(times)} interleaved rounds")
    print(f"{'':<34}{'median ms':>10}{'min ms':>9}{'x floor':>9}{'/ epoch':>9}{'epoch loss':>12}")
    for c, t in median.items():
        loss = losses[c]
        loss_text = "" if loss is None else f"{loss:.5g}"
        label = c
        if isinstance(calls[c], Scaled):
            label = f"{c} (x{calls[c].scale:.0f})"
        print(f"{label:<34}{t * 1e3:>10.1f}{best[c] * 1e3:>9.1f}{t / floor:>9.2f}"
              f"{t / epoch:>9.2f}{loss_text:>12}")
    print(f"x floor: / 'floor: read X once' ({gb / floor:.1f} GB/s); / epoch: / fastopt epoch; "
          "epoch loss: mean training loss during the epoch (the warm-up call's)")
    print("\nfastopt epoch vs peers (peer time / fastopt epoch time; medians):")
    for peer in calls:
        if peer in (EPOCH, THREADS) + REFERENCES:
            continue
        ratio = round(median[peer] / epoch, 2)  # the verdict agrees with the printed ratio
        goals = [(goal, source) for p, goal, source in TARGETS if p == peer]
        text = "; ".join(f"target >= {goal:g}x{' (' + source + ')' if source else ''}: "
                         f"{'met' if ratio >= goal else 'MISSED'}" for goal, source in goals)
        print(f"  {peer:<32}{ratio:>7.2f}x  {text}".rstrip())
    ratio = round(epoch / floor, 2)
    print(f"  {'fastopt epoch / read-X floor':<32}{ratio:>7.2f}x  target <= {FLOOR_TARGET:g}x: "
          f"{'met' if ratio <= FLOOR_TARGET else 'MISSED'}")
    print(f"  {'fastopt epoch / gather floor':<32}{epoch / median[GATHER]:>7.2f}x")
    print(f"  {'shuffle=batches / read-X floor':<32}{median[BATCHES] / floor:>7.2f}x  "
          "(an option: blocks of rows in a shuffled order, not a shuffle of the rows)")
    shuffled = median[SHUFFLED_READ]
    print(f"  {'fastopt epoch / shuffled read':<32}{epoch / shuffled:>7.2f}x  (shuffled read / "
          f"read-X floor: {shuffled / floor:.2f}x, the least a true shuffle can cost here)")
    ratio = round(epoch / median[THREADS], 2)
    print(f"  {'2 threads: speed-up over 1':<32}{ratio:>7.2f}x  target >= {THREADS_TARGET:g}x "
          f"(performance issue): {'met' if ratio >= THREADS_TARGET else 'MISSED'}")
    if NUMBA in median:
        ratio = median[NUMBA] / epoch
        print(f"  {'numba backend / C++ epoch':<32}{ratio:>7.2f}x  target <= {NUMBA_TARGET:g}x "
              f"(backends issue): {'met' if round(ratio, 2) <= NUMBA_TARGET else 'MISSED'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    parser.add_argument("--dtype", choices=["float64", "float32", "all"], default="all")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-reference", action="store_true",
                        help="leave out fastopt's (slow) NumPy reference")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the workloads' n by this (quick checks)")
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(1)
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    workloads = {k: Workload(w.model, max(BATCH, int(w.n * args.scale)), w.d)
                 for k, w in WORKLOADS.items() if k in names}
    dtypes = [np.float64, np.float32] if args.dtype == "all" else [np.dtype(args.dtype).type]

    versions = [f"fastopt {fastopt.__version__} ({_backends._core.cpu_target()} kernels)",
                f"NumPy {np.__version__}"]
    versions += [f"torch {torch.__version__}"] if torch is not None else ["torch not installed"]
    versions += [f"scikit-learn {sklearn.__version__}"] if sklearn is not None else []
    print(", ".join(versions))

    n_max, d = max(w.n for w in workloads.values()), WORKLOADS["W1"].d
    X64 = features(n_max, d)  # generated once; every workload uses its leading rows
    for dtype in dtypes:
        X_all = X64 if dtype == np.float64 else X64.astype(dtype)
        for name, workload in workloads.items():
            X = X_all[:workload.n]
            y = targets(X, workload.model)
            calls = contenders(X, y, workload.model, reference=not args.skip_reference)
            times, losses = time_round_robin(calls, args.repeat)
            report(name, workload, dtype, calls, times, losses)
        del X_all


if __name__ == "__main__":
    main()
