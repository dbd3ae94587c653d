"""``python -m bench``: the performance issue's workloads W1-W6, side by side, in one table.

    python -m bench [--quick] [--only W1,W3,CV1,...] [--repeat N] [--json PATH]

- W1, W2: one shuffled epoch of minibatch Adam (B=256) on linear (n=1e6) and logistic (n=5e5)
  regression, d=100, float64 and float32: the contenders and floors of ``bench/epoch.py``.
- W3: logistic regression, n=1e4, d=20, B=32, 100 epochs of Adam, against scikit-learn's
  SGDClassifier over the same 100 epochs, the NumPy reference, a NumPy loop and PyTorch.
- W5: one Adam step on 1e7 float32 parameters against torch's fused Adam (``optimizer_step.py``).
- W6: wall time until the training log-loss is within 1e-3 (relative) of the optimum, n=2e5,
  d=50: fastopt.fit with its default hyperparameters against tuned and untuned peers.
- T1: wall time until the objective is within 1e-6 (relative) of the optimum: fastopt's
  default estimators (only the penalty set) against scikit-learn's solvers, on the problems of
  ``optimum.py`` (logistic, softmax, ridge, sparse, ill-conditioned, l1).
- CV1: ``LogisticRegressionCV`` on make_classification n=2e5, d=50, 10 values of C, 5 folds
  (tol=1e-6): fastopt (1 thread, and folds in 2 threads) against scikit-learn's
  ``LogisticRegressionCV`` (lbfgs, 1 thread) on the same folds; the same C and fold scores
  within 1e-4 are checked first (``cv.py``).
- M1 (several configurations in one pass): an 8-rate sweep of one epoch of Adam on W1
  (linear, n=1e6, d=100, B=256, float64) by ``fastopt.fit_many`` against one fit and eight;
  and ``fastopt compare`` of the 11 first-order optimizers (3 epochs, B=32, standardize) on
  logistic n=1e6, d=100, trained together against separate fits (``together=False``).
- S1 (the scale issue): one epoch of Adam on sparse logistic regression, n=2e5, d=1e5, 50
  entries a row, B=256: lazy and exact updates against scikit-learn's SGDClassifier epoch and
  a SciPy/NumPy loop; and lazy SGD with an L2 penalty (batch 256, and batch 1 as SGDClassifier
  updates) against SGDClassifier with one.

Every timing is a median over rounds in which each contender runs once in turn (so that load
changes hit all alike), after one warm-up call, on 1 thread unless the row says otherwise. The
read floor is X.max() (a streaming pass over X), measured in the same rounds; the shuffled-read
floor reads the rows in a shuffled epoch's order, prefetched as the epoch does, with no other
work (``fastopt._core.read_rows``): the least any true shuffle can cost on the machine. ``--quick``
shrinks every workload (ratios then mean less). The table goes to stdout and, with the raw
times, to ``--json`` (default ``bench-results.json``).
"""

import glob
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy, torch and scikit-learn start thread pools

# `python -m bench` puts the checkout first on sys.path, and its fastopt/ folder holds the
# sources without the compiled module unless the install was editable: import the installed
# package instead (bench's own modules are found through the package, not sys.path).
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not glob.glob(os.path.join(_ROOT, "fastopt", "_core*.so")) + glob.glob(
        os.path.join(_ROOT, "fastopt", "_core*.pyd")):
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import fastopt  # noqa: E402
from fastopt import _backends  # noqa: E402
from fastopt.engine import prepare  # noqa: E402

from . import cv as cv_bench  # noqa: E402
from . import epoch as epoch_bench  # noqa: E402
from . import optimizer_step as step_bench  # noqa: E402
from . import optimum as optimum_bench  # noqa: E402

torch, sklearn = epoch_bench.torch, epoch_bench.sklearn
if sklearn is not None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier

ROWS = []  # one dict per contender and workload, in the order measured


def record(workload, name, seconds, *, base=None, goal=None, kind="time", note=""):
    """A table row: ``seconds`` (a list of timings); ``base``: the fastopt row it is compared
    with, ``ratio`` = this row's median / base's; ``goal``: (">=" or "<=", bound on ratio,
    what it means in words)."""
    seconds = [float(s) for s in seconds]
    row = {"workload": workload, "contender": name, "kind": kind,
           "median_ms": 1e3 * float(np.median(seconds)) if seconds else None,
           "min_ms": 1e3 * min(seconds) if seconds else None,
           "max_ms": 1e3 * max(seconds) if seconds else None, "seconds": seconds, "note": note}
    if base is not None and row["median_ms"] and base["median_ms"]:
        row["ratio"] = row["median_ms"] / base["median_ms"]
    if goal is not None and "ratio" in row:
        sense, value, words = goal
        ratio = round(row["ratio"], 2)
        row["goal"] = words
        row["met"] = ratio >= round(value, 2) if sense == ">=" else ratio <= round(value, 2)
    ROWS.append(row)
    return row


def round_robin(calls, repeat):
    """{name: [seconds]}: one warm-up call each, then ``repeat`` rounds of one call each."""
    for call in calls.values():
        call()
    times = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


# ---------------------------------------------------------------------------------------------
# W1, W2: one shuffled epoch

def run_epochs(quick, repeat):
    scale = 0.05 if quick else 1.0
    X64 = epoch_bench.features(int(1_000_000 * scale), 100)
    for dtype in (np.float64, np.float32):
        X_all = X64 if dtype == np.float64 else X64.astype(dtype)
        for key, n in (("W1", 1_000_000), ("W2", 500_000)):
            model = epoch_bench.WORKLOADS[key].model
            X = X_all[:int(n * scale)]
            y = epoch_bench.targets(X, model)
            calls = epoch_bench.contenders(X, y, model, reference=False, verbose=False)
            calls.pop(epoch_bench.GATHER)  # slow, and a reference the report does not need
            times = round_robin(calls, repeat)
            name = f"{key} {np.dtype(dtype).name}"
            base = record(name, epoch_bench.EPOCH, times[epoch_bench.EPOCH])
            floor = record(name, "floor: read X once", times[epoch_bench.STREAM], base=base,
                           kind="floor")
            base["floor_ratio"] = base["median_ms"] / floor["median_ms"]
            base["goal"] = f"<= {epoch_bench.FLOOR_TARGET:g}x the read floor"
            base["met"] = round(base["floor_ratio"], 2) <= epoch_bench.FLOOR_TARGET
            # What a true shuffle costs at least on this machine: the rows read in shuffled
            # order with nothing else done, as a multiple of the read floor.
            read = times.pop(epoch_bench.SHUFFLED_READ)
            record(name, epoch_bench.SHUFFLED_READ, read, base=base, kind="floor",
                   note=f"{np.median(read) / np.median(times[epoch_bench.STREAM]):.2f}xF")
            goals = {epoch_bench.NUMPY_LOOP: (">=", 6.0, ">= 6x"),
                     epoch_bench.TORCH_AUTOGRAD: (">=", 20.0, ">= 20x"),
                     epoch_bench.SKLEARN: (">=", 10.0, ">= 10x"),
                     epoch_bench.THREADS: ("<=", 1 / 1.6, "speed-up >= 1.6x")}
            for peer, seconds in times.items():
                if peer in (epoch_bench.EPOCH, epoch_bench.STREAM):
                    continue
                kind = "reference" if peer in epoch_bench.REFERENCES else "time"
                note = ""
                if peer == epoch_bench.BATCHES:  # an option, measured against the floor too
                    note = f"{np.median(seconds) / np.median(times[epoch_bench.STREAM]):.2f}xF"
                record(name, peer, seconds, base=base, goal=goals.get(peer), kind=kind,
                       note=note)


# ---------------------------------------------------------------------------------------------
# W3: 100 epochs on a small problem

def logistic_data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    scores = X @ (rng.standard_normal(d) / np.sqrt(d)) + 0.5
    return X, (rng.random(n) < 1 / (1 + np.exp(-scores))).astype(np.float64)


def numpy_adam_epochs(X, y, epochs, batch, lr, seed=0):
    """Minibatch Adam on logistic regression in plain NumPy, as a user would write it."""
    n, d = X.shape
    w = np.zeros(d + 1)
    m, v = np.zeros(d + 1), np.zeros(d + 1)
    rng = np.random.default_rng(seed)
    t = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            Xb, yb = X[rows], y[rows]
            r = 0.5 * np.tanh(0.5 * (Xb @ w[:d] + w[d])) + 0.5 - yb
            grad = np.append(r @ Xb, r.sum()) / len(rows)
            t += 1
            m += 0.1 * (grad - m)
            v = 0.999 * v + 0.001 * grad * grad
            w -= lr / (1 - 0.9**t) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**t) + 1e-8)
    return w


def torch_adam_epochs(X, y, epochs, batch, lr, seed=0):
    n, d = X.shape
    torch.manual_seed(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    net = torch.nn.Linear(d, 1, dtype=Xt.dtype)
    torch.nn.init.zeros_(net.weight)
    torch.nn.init.zeros_(net.bias)
    opt = torch.optim.Adam(net.parameters(), lr=lr, fused=True)
    for _ in range(epochs):
        order = torch.randperm(n)
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(Xt.index_select(0, rows)).squeeze(1), yt.index_select(0, rows))
            opt.zero_grad()
            loss.backward()
            opt.step()


def sklearn_sgd(X, y, epochs, **options):
    options = {"penalty": None, **options}
    est = SGDClassifier(loss="log_loss", max_iter=epochs, tol=None, shuffle=True,
                        random_state=0, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def run_w3(quick, repeat):
    epochs = 20 if quick else 100
    X, y = logistic_data(10_000, 20)
    batch, lr = 32, 1e-3

    def fit(backend):
        return lambda: fastopt.fit(X, y, model="logistic", optimizer="adam", lr=lr,
                                   epochs=epochs, batch_size=batch, tol=None, random_state=0,
                                   backend=backend)
    calls = {"fastopt.fit": fit("cpp")}
    if fastopt.backends()["numba"] == "available":
        calls["fastopt numba backend"] = fit("numba")
    calls["fastopt NumPy reference"] = fit("numpy")
    calls["NumPy loop"] = lambda: numpy_adam_epochs(X, y, epochs, batch, lr)
    if sklearn is not None:
        calls["sklearn SGDClassifier (plain SGD)"] = lambda: sklearn_sgd(X, y, epochs)
    if torch is not None:
        calls["torch autograd + fused Adam"] = lambda: torch_adam_epochs(X, y, epochs, batch,
                                                                         lr)
    times = round_robin(calls, max(1, repeat // 2))
    name = f"W3 ({epochs} epochs)"
    base = record(name, "fastopt.fit", times.pop("fastopt.fit"))
    goals = {"fastopt NumPy reference": (">=", 30.0, ">= 30x"),
             "sklearn SGDClassifier (plain SGD)": (">=", 5.0, ">= 5x")}
    for peer, seconds in times.items():
        record(name, peer, seconds, base=base, goal=goals.get(peer))


# ---------------------------------------------------------------------------------------------
# W5: one Adam step

def run_w5(quick, repeat):
    n = 1_000_000 if quick else 10_000_000
    steps = step_bench.contenders(n)
    times = step_bench.time_round_robin(steps, 4 * repeat)
    columns = dict(zip(steps, times.T))
    name = f"W5 ({n:.0e} float32)"
    base = record(name, "fastopt Adam step", columns.pop("fastopt"))
    # The probe moves as many bytes as an Adam step (28 per parameter): its time is the floor.
    floor_row = record(name, "floor: a += b, same bytes", columns.pop(step_bench.PROBE),
                       base=base, kind="floor")
    base["floor_ratio"] = base["median_ms"] / floor_row["median_ms"]
    goals = {"torch fused": (">=", 1 / 1.05, "fastopt <= 1.05x torch fused")}
    for peer, seconds in columns.items():
        record(name, peer, seconds, base=base, goal=goals.get(peer))


# ---------------------------------------------------------------------------------------------
# W6: time to a target loss

def run_w6(quick, repeat):
    n, d = (40_000 if quick else 200_000), 50
    X, y = logistic_data(n, d, seed=1)
    problem, _ = prepare(X, y, model="logistic", penalty=None, alpha=0.0, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, standardize=False)
    backend = _backends.resolve("cpp")
    data = backend.dataset(problem)

    def loss_of(coef, intercept):
        return float(backend.objective(data, np.append(np.ravel(coef), intercept))[0])

    exact = fastopt.fit(X, y, model="logistic", optimizer="newton", epochs=50, tol=1e-14)
    optimum = loss_of(exact.coef_, exact.intercept_)
    target, max_epochs = 1e-3, 50

    def reached(coef, intercept):
        return (loss_of(coef, intercept) - optimum) / optimum <= target

    def fastopt_defaults():
        # fit's defaults (Adam, lr=1e-3, batch 256); tol=None only so that it runs until the
        # target is checked. History seconds exclude the callback's loss evaluations.
        hit = []

        def check(entry):
            hit.append(reached(entry["params"][:d], entry["params"][d]))
            return not hit[-1]
        result = fastopt.fit(X, y, model="logistic", epochs=max_epochs, tol=None,
                             callback=check, random_state=0)
        return sum(result.history["seconds"]) if hit and hit[-1] else None

    def epochwise(make, step):
        # A peer trained one epoch per call; the clock stops while the loss is checked.
        def run():
            state, elapsed = make(), 0.0
            for _ in range(max_epochs):
                start = time.perf_counter()
                coef, intercept = step(state)
                elapsed += time.perf_counter() - start
                if reached(coef, intercept):
                    return elapsed
            return None
        return run

    def sklearn_peer(**options):
        def make():
            return SGDClassifier(loss="log_loss", penalty=None, random_state=0, **options)

        def step(est):
            est.partial_fit(X, y, classes=[0.0, 1.0])
            return est.coef_, est.intercept_[0]
        return epochwise(make, step)

    def numpy_peer(lr):
        def make():
            return {"w": np.zeros(d + 1), "m": np.zeros(d + 1), "v": np.zeros(d + 1),
                    "t": 0, "rng": np.random.default_rng(0)}

        def step(s):
            order = s["rng"].permutation(n)
            for start in range(0, n, 256):
                rows = order[start:start + 256]
                Xb = X[rows]
                r = 0.5 * np.tanh(0.5 * (Xb @ s["w"][:d] + s["w"][d])) + 0.5 - y[rows]
                grad = np.append(r @ Xb, r.sum()) / len(rows)
                s["t"] += 1
                s["m"] += 0.1 * (grad - s["m"])
                s["v"] = 0.999 * s["v"] + 0.001 * grad * grad
                s["w"] -= lr / (1 - 0.9 ** s["t"]) * s["m"] / (
                    np.sqrt(s["v"]) / np.sqrt(1 - 0.999 ** s["t"]) + 1e-8)
            return s["w"][:d], s["w"][d]
        return epochwise(make, step)

    calls = {"fastopt.fit, default hyperparameters": fastopt_defaults,
             "NumPy loop, Adam lr=1e-3, B=256": numpy_peer(1e-3)}
    if sklearn is not None:
        calls["sklearn SGD, defaults (penalty=None)"] = sklearn_peer()
        for eta0 in (1e-3, 1e-2, 1e-1):  # the tuning: the best of these is the tuned peer
            calls[f"sklearn ASGD, constant eta0={eta0:g}"] = sklearn_peer(
                average=True, learning_rate="constant", eta0=eta0)
    runs = max(1, repeat // 2)
    times = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            times[name].append(call())
    name = f"W6 (n={n:,}, to 1e-3)"
    seconds = times.pop("fastopt.fit, default hyperparameters")
    base = record(name, "fastopt.fit, default hyperparameters",
                  [s for s in seconds if s is not None],
                  note="" if None not in seconds else f"target not reached in {max_epochs} epochs")
    tuned = {peer: s for peer, s in times.items() if None not in s}
    best = min(tuned, key=lambda peer: np.median(tuned[peer])) if tuned else None
    for peer, s in times.items():
        note = "" if None not in s else f"target not reached in {max_epochs} epochs"
        goal = (">=", 1.0, "the best peer: fastopt as fast") if peer == best else None
        record(name, peer, [x for x in s if x is not None], base=base, goal=goal, note=note)


# ---------------------------------------------------------------------------------------------
# T1: time to the optimum, full-batch solvers

def run_t1(quick, repeat):
    if sklearn is None:
        print("  T1 needs scikit-learn (its problems and peers): skipped")
        return
    for problem in optimum_bench.problems(quick):
        name = problem.name
        print(f"  {name}", flush=True)
        rows, exact = optimum_bench.measure(problem, repeat, budget=3.0 if quick else 30.0,
                                            log=lambda line: print(line, flush=True))
        peers = {label: float(np.median(row["seconds"])) for label, row in rows.items()
                 if row["seconds"] and not label.startswith("fastopt")}
        fastest = min(peers, key=peers.get) if peers else None
        target = optimum_bench.goal(problem)
        base = base_cpu = None
        for label, row in rows.items():
            # The CPU time (1 thread: the wall time less the waits for a core of a shared
            # machine) and its ratio, beside the wall-clock columns.
            cpu = float(np.median(row["cpu"])) if row["cpu"] else None
            note = row["note"]
            if cpu is not None:
                note += f"; CPU {1e3 * cpu:.4g} ms"
                if base_cpu:
                    note += f" ({cpu / base_cpu:.2f}x)"
            made = record(name, label, row["seconds"], base=base, note=note, goal=(
                (">=", target, f"the fastest peer at the optimum: fastopt {target:g}x as fast")
                if label == fastest else None))
            made["gap"], made["cpu_seconds"] = row["gap"], row["cpu"]
            if base is None:  # the optimum's two solves, with the first (fastopt's) row
                base, base_cpu = made, cpu
                made["optimum"] = exact


# ---------------------------------------------------------------------------------------------
# CV1: cross-validated logistic regression against scikit-learn's LogisticRegressionCV

def run_cv1(quick, repeat):
    if sklearn is None:
        print("  CV1 needs scikit-learn (its folds, data and peer): skipped")
        return
    name, X, y, folds = cv_bench.problem(quick)
    print(f"  {name}", flush=True)
    rows = cv_bench.measure(X, y, folds, repeat, budget=5.0 if quick else 300.0,
                            log=lambda line: print(line, flush=True))
    base = base_cpu = None
    for label, row in rows.items():
        cpu = float(np.median(row["cpu"]))
        note = row["note"] + f"; CPU {1e3 * cpu:.4g} ms"
        if base_cpu:
            note += f" ({cpu / base_cpu:.2f}x)"
        if not row["same"]:
            note += "; NOT the same C and scores as scikit-learn's"
        goal = ((">=", 3.0, "the issue's >= 3x") if label.startswith("sklearn") else None)
        made = record(name, label, row["seconds"], base=base, goal=goal, note=note)
        made.update(C=row["C"], score_gap=row["score_gap"], same=row["same"],
                    cpu_seconds=row["cpu"])
        if base is None:
            base, base_cpu = made, cpu


# ---------------------------------------------------------------------------------------------
# S1: one epoch on sparse X (the scale issue)

def sparse_data(n, d, per_row, seed=0):
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    columns = rng.integers(0, d, n * per_row)
    X = sp.csr_matrix((rng.random(n * per_row), columns,
                       np.arange(0, n * per_row + 1, per_row)), shape=(n, d))
    X.sum_duplicates()
    y = (X @ (rng.standard_normal(d) * 0.3) + rng.logistic(size=n) > 0).astype(np.float64)
    return X, y


def scipy_adam_epoch(X, y, batch=256, lr=1e-3, seed=0):
    """One epoch of minibatch Adam on logistic regression with SciPy sparse products and dense
    NumPy updates, as a user would write it."""
    n, d = X.shape
    w, m, v = np.zeros(d + 1), np.zeros(d + 1), np.zeros(d + 1)
    order = np.random.default_rng(seed).permutation(n)
    for t, start in enumerate(range(0, n, batch), start=1):
        rows = order[start:start + batch]
        Xb = X[rows]
        r = 0.5 * np.tanh(0.5 * (Xb @ w[:d] + w[d])) + 0.5 - y[rows]
        grad = np.append(Xb.T @ r, r.sum()) / len(rows)
        m += 0.1 * (grad - m)
        v = 0.999 * v + 0.001 * grad * grad
        w -= lr / (1 - 0.9**t) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**t) + 1e-8)


def run_s1(quick, repeat):
    n, d = (20_000, 10_000) if quick else (200_000, 100_000)
    X, y = sparse_data(n, d, 50)

    def fit(mode):
        return lambda: fastopt.fit(X, y, model="logistic", optimizer="adam", lr=1e-3, epochs=1,
                                   batch_size=256, tol=None, random_state=0,
                                   sparse_update=mode)
    def fit_sgd_l2():  # the scaled-weight trick: every coefficient decays, O(entries)
        return fastopt.fit(X, y, model="logistic", optimizer="sgd", lr=0.1, penalty="l2",
                           alpha=1e-4, epochs=1, batch_size=256, tol=None, random_state=0,
                           sparse_update="lazy")
    def fit_sgd_l2_rows():  # one row per update, as SGDClassifier: the fixed cost of one
        return fastopt.fit(X, y, model="logistic", optimizer="sgd", lr=0.01, penalty="l2",
                           alpha=1e-4, epochs=1, batch_size=1, tol=None, random_state=0,
                           sparse_update="lazy")
    calls = {"fastopt.fit, lazy Adam": fit("lazy"), "fastopt.fit, exact Adam": fit("exact"),
             "SciPy/NumPy loop, exact Adam": lambda: scipy_adam_epoch(X, y),
             "fastopt.fit, lazy SGD + L2": fit_sgd_l2,
             "fastopt.fit, lazy SGD + L2, batch 1": fit_sgd_l2_rows}
    if sklearn is not None:
        calls["sklearn SGDClassifier (plain SGD)"] = lambda: sklearn_sgd(X, y, 1)
        calls["sklearn SGDClassifier, SGD + L2"] = lambda: sklearn_sgd(X, y, 1, penalty="l2",
                                                                       alpha=1e-4)
    times = round_robin(calls, max(1, repeat // 2))
    name = f"S1 sparse ({n:,}x{d:,})"
    lazy = record(name, "fastopt.fit, lazy Adam", times["fastopt.fit, lazy Adam"])
    exact = record(name, "fastopt.fit, exact Adam", times["fastopt.fit, exact Adam"], base=lazy)
    record(name, "SciPy/NumPy loop, exact Adam", times["SciPy/NumPy loop, exact Adam"],
           base=lazy)
    ROWS[-1]["exact_ratio"] = ROWS[-1]["median_ms"] / exact["median_ms"]
    ROWS[-1]["goal"] = f"exact Adam >= 2x faster ({ROWS[-1]['exact_ratio']:.2f}x)"
    ROWS[-1]["met"] = round(ROWS[-1]["exact_ratio"], 2) >= 2.0
    if "sklearn SGDClassifier (plain SGD)" in times:
        record(name, "sklearn SGDClassifier (plain SGD)",
               times["sklearn SGDClassifier (plain SGD)"], base=lazy,
               goal=(">=", 1.0, "lazy Adam as fast"))
    sgd = record(name, "fastopt.fit, lazy SGD + L2", times["fastopt.fit, lazy SGD + L2"])
    if "sklearn SGDClassifier, SGD + L2" in times:
        record(name, "sklearn SGDClassifier, SGD + L2",
               times["sklearn SGDClassifier, SGD + L2"], base=sgd)
    rows = record(name, "fastopt.fit, lazy SGD + L2, batch 1",
                  times["fastopt.fit, lazy SGD + L2, batch 1"])
    if "sklearn SGDClassifier, SGD + L2" in times:
        record(name, "sklearn SGDClassifier, SGD + L2",
               times["sklearn SGDClassifier, SGD + L2"], base=rows,
               goal=(">=", 1.0, "batch 1 as fast"))


# ---------------------------------------------------------------------------------------------
# M1: several configurations in one pass over the data

M1_RATES = tuple(1e-4 * 2.0 ** i for i in range(8))


def run_m1(quick, repeat):
    from fastopt.comparison import COMPARE_OPTIMIZERS, SOLVERS, compare

    n = 50_000 if quick else 1_000_000
    X = epoch_bench.features(n, 100)
    y = epoch_bench.targets(X, "linear")
    shared = dict(optimizer="adam", epochs=1, batch_size=256, tol=None, random_state=0)

    def one():
        fastopt.fit(X, y, lr=1e-3, **shared)

    def many():
        fastopt.fit_many(X, y, [{"lr": lr} for lr in M1_RATES], **shared)

    def separate():
        for lr in M1_RATES:
            fastopt.fit(X, y, lr=lr, **shared)
    times = round_robin({"one": one, "many": many, "separate": separate}, repeat)
    name = "M1 8-rate sweep"
    base = record(name, "fastopt.fit, one rate", times["one"])
    record(name, "fastopt.fit_many, 8 rates", times["many"], base=base,
           goal=("<=", 2.0, "<= 2x one fit"))
    record(name, "fastopt.fit, 8 separate fits", times["separate"], base=base)

    # fastopt compare: the first-order table, with the optimum (Newton's, the same for both)
    # found once beforehand.
    y = epoch_bench.targets(X, "logistic")
    names = [name for name in COMPARE_OPTIMIZERS if name not in SOLVERS]
    options = dict(model="logistic", optimizers=names, epochs=3, progress=False)
    optimum = compare(X, y, **{**options, "optimizers": ["newton"]}).optimum
    times = round_robin({together: (lambda together=together: compare(
        X, y, optimum=optimum, together=together, **options)) for together in (True, False)},
        max(1, repeat // 2))
    name = "M1 compare"
    base = record(name, "compare, together (fit_many)", times[True])
    record(name, "compare, separate fits", times[False], base=base,
           goal=(">=", 4.0, ">= 4x"))


# ---------------------------------------------------------------------------------------------

WORKLOADS = {"W1": run_epochs, "W2": run_epochs, "W3": run_w3, "W5": run_w5, "W6": run_w6,
             "T1": run_t1, "CV1": run_cv1, "S1": run_s1, "M1": run_m1}


def print_table():
    print(f"\n{'workload':<22}{'contender':<40}{'median ms':>11}  {'(min-max)':<19}"
          f"{'ratio':>8}  goal")
    last = None
    for row in ROWS:
        if row["workload"] != last and last is not None:
            print()
        last = row["workload"]
        if row["median_ms"] is None:
            print(f"{row['workload']:<22}{row['contender']:<40}{'-':>11}  {row['note']}")
            continue
        spread = f"({row['min_ms']:.3g}-{row['max_ms']:.3g})"
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else (
            f"{row['floor_ratio']:.2f}xF" if "floor_ratio" in row else "")
        goal = ""
        if "goal" in row:
            goal = f"{row['goal']}: {'met' if row['met'] else 'MISSED'}"
        if row["note"]:
            goal = f"{goal}; {row['note']}" if goal else row["note"]
        print(f"{row['workload']:<22}{row['contender']:<40}{row['median_ms']:>11.4g}  "
              f"{spread:<19}{ratio:>8}  {goal}")
    print("\nratio: contender median / the workload's first row (fastopt); xF: fastopt / the "
          "floor. Goals from the performance issue, on the ratio; 1 thread unless the name says "
          "otherwise.")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down workloads (~1 min)")
    parser.add_argument("--only", help="comma-separated workloads (default "
                        "W1,W2,W3,W5,W6,T1,CV1,S1,M1)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed rounds (default 5, 3 with --quick)")
    parser.add_argument("--json", default="bench-results.json", help="where the results go")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 5)
    chosen = list(WORKLOADS) if args.only is None else [w.strip().upper()
                                                         for w in args.only.split(",")]
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    if torch is not None:
        torch.set_num_threads(1)
    machine = {"python": platform.python_version(), "machine": platform.machine(),
               "cpus": os.cpu_count(), "fastopt": fastopt.__version__,
               "kernels": _backends._core.cpu_target(), "numpy": np.__version__,
               "torch": getattr(torch, "__version__", None),
               "scikit-learn": getattr(sklearn, "__version__", None)}
    print("python -m bench" + (" --quick" if args.quick else "") + ": " +
          ", ".join(f"{k} {v}" for k, v in machine.items() if v is not None))
    done = set()
    for key in chosen:
        runner = WORKLOADS[key]
        if runner in done:
            continue
        done.add(runner)
        start = time.perf_counter()
        print(f"[{key if runner is not run_epochs else 'W1+W2'}...]", flush=True)
        runner(args.quick, repeat)
        print(f"[done in {time.perf_counter() - start:.0f} s]", flush=True)
    print_table()
    with open(args.json, "w") as out:
        json.dump({"machine": machine, "quick": args.quick, "repeat": repeat, "rows": ROWS},
                  out, indent=1)
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
