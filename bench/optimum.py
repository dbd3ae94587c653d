"""T1: wall time to the optimum of L2-penalised logistic regression, 1 thread.

fastopt's ``LogisticRegression(optimizer="lbfgs", penalty="l2", alpha=1/n,
standardize=False)`` (and the same with ``optimizer="saga"``) against scikit-learn's
``LogisticRegression`` (C=1, which is the same objective: mean log-loss + 1/(2n) ||W||^2,
intercept not penalised) with the solvers lbfgs,
newton-cholesky, sag and saga, on features standardised once before any clock starts, so that
every contender minimises the same function of the same data. Problems:

- ``make_classification`` binary, n=200,000, d=50 (``--quick``: n=10,000);
- ``make_classification`` 5 classes, n=300,000, d=100 (softmax / multinomial; ``--quick``:
  n=15,000);
- benchopt's simulated logistic-regression shapes, (n, p) = (1000, 10) and (200, 500):
  X standard normal, y = sign(X beta) with beta standard normal (separable; the penalty keeps
  the optimum finite).

The optimum L* comes first, outside the clock: fastopt's L-BFGS to a gradient max-norm of
1e-10 and an independent solver (scikit-learn's newton-cholesky at tol=1e-12 for two classes,
fastopt's Newton-CG to 1e-10 for five), L* the lower of the two, every objective evaluated by
the same compiled function. A fit reaches the target when its relative gap
``(L - L*) / L*`` is at most ``TARGET`` (1e-6).

Every contender starts at its default ``tol`` (1e-4 for all five: on the gradient's max-norm
for fastopt, lbfgs and newton-cholesky, on the relative change of the weights for sag and
saga) and other
defaults (scikit-learn: max_iter=100; fastopt: epochs=2000); when the fit ends short of the
target, its tol is divided by 100, at most twice (``TOL_FACTORS``). The time reported is that
of the loosest tol that reaches the target, as a user who tightens tol until the answer is
right would pay it; a contender that never does is "not reached" with the gap of its tightest
try. Those tries are the warm-up; the fits at the chosen tol are then timed round-robin
(median of wall and of CPU time), fewer rounds when a round is long.
"""

import time
import warnings

import numpy as np

import fastopt
from fastopt import _backends
from fastopt.engine import from_original_space, prepare

TARGET = 1e-6
DEFAULT_TOL = 1e-4        # fastopt's and scikit-learn's default tol
TOL_FACTORS = (1.0, 1e-2, 1e-4)
ROUND_BUDGET = 30.0       # seconds of timed rounds per problem (--quick: 3), at least one
FASTOPT = "fastopt lbfgs"
SKLEARN_SOLVERS = ("lbfgs", "newton-cholesky", "sag", "saga")


def standardized(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


def problems(quick):
    """``[(name, X, y)]`` with X standardised."""
    from sklearn.datasets import make_classification
    out = []
    for n, d, classes in ((200_000, 50, 2), (300_000, 100, 5)):
        n = n // 20 if quick else n
        X, y = make_classification(n_samples=n, n_features=d, n_informative=d // 2,
                                   n_redundant=d // 10, n_classes=classes, random_state=0)
        out.append((f"T1 K={classes} {n:,}x{d}", standardized(X), y))
    rng = np.random.default_rng(0)
    for n, p in ((1000, 10), (200, 500)):
        X = rng.standard_normal((n, p))
        y = np.sign(X @ rng.standard_normal(p))
        out.append((f"T1 benchopt {n}x{p}", standardized(X), y))
    return out


def contenders(n):
    """``{label: make(tol) -> unfitted estimator}``."""
    from sklearn.linear_model import LogisticRegression

    def ours(tol):
        return fastopt.LogisticRegression(optimizer="lbfgs", penalty="l2", alpha=1.0 / n,
                                          standardize=False, tol=tol)

    def our_saga(tol):  # tol: the relative change of the parameters, as scikit-learn's saga
        return fastopt.LogisticRegression(optimizer="saga", penalty="l2", alpha=1.0 / n,
                                          standardize=False, tol=tol, random_state=0)
    makers = {FASTOPT: ours, "fastopt saga": our_saga}
    for solver in SKLEARN_SOLVERS:
        # random_state only fixes sag's and saga's row order, for repeatable rounds.
        makers[f"sklearn {solver}"] = (
            lambda tol, solver=solver: LogisticRegression(solver=solver, tol=tol,
                                                          random_state=0))
    return makers


class Objective:
    """The training objective of the problem, fastopt's compiled one, at fitted
    ``coef_`` / ``intercept_`` (scikit-learn's and fastopt's: the same layout)."""

    def __init__(self, X, y):
        classes = len(np.unique(y))
        self.problem, _ = prepare(X, y, model="logistic" if classes == 2 else "softmax",
                                  penalty="l2", alpha=1.0 / len(X), l1_ratio=0.15,
                                  fit_intercept=True, sample_weight=None, standardize=False)
        self.backend = _backends.resolve("cpp")
        self.data = self.backend.dataset(self.problem)

    def __call__(self, estimator):
        params = from_original_space(self.problem, estimator.coef_, estimator.intercept_,
                                     np.float64)
        return float(self.backend.objective(self.data, params)[0])


def fit(make, tol, X, y):
    """``(wall seconds, CPU seconds of this process, fitted estimator, whether it warned that
    it did not converge)``. On 1 thread the CPU time is the wall time of an idle machine; on a
    shared one it leaves out the waits for a core."""
    estimator = make(tol)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, start_cpu = time.perf_counter(), time.process_time()
        estimator.fit(X, y)
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    warned = any("Convergence" in type(w.message).__name__ for w in caught)
    return seconds, cpu, estimator, warned


def optimum(X, y, objective):
    """``(L*, {solver: its objective})`` from two high-precision solves."""
    n = len(X)
    exact = {}
    _, _, est, _ = fit(lambda tol: fastopt.LogisticRegression(
        optimizer="lbfgs", penalty="l2", alpha=1.0 / n, standardize=False, tol=tol,
        epochs=10_000), 1e-10, X, y)
    exact["fastopt lbfgs tol=1e-10"] = objective(est)
    if objective.problem.spec.n_outputs == 1:
        from sklearn.linear_model import LogisticRegression
        _, _, est, _ = fit(lambda tol: LogisticRegression(solver="newton-cholesky", tol=tol,
                                                       max_iter=1000), 1e-12, X, y)
        exact["sklearn newton-cholesky tol=1e-12"] = objective(est)
    else:  # newton-cholesky's multinomial Hessian is (K (d+1))^2 per row: slow here
        _, _, est, _ = fit(lambda tol: fastopt.LogisticRegression(
            optimizer="newton-cg", penalty="l2", alpha=1.0 / n, standardize=False, tol=tol,
            epochs=1000), 1e-10, X, y)
        exact["fastopt newton-cg tol=1e-10"] = objective(est)
    return min(exact.values()), exact


def n_iter(estimator):
    return int(np.max(np.atleast_1d(estimator.n_iter_)))


def measure(X, y, repeat, budget=ROUND_BUDGET, log=print):
    """Run T1 on one problem: ``({label: dict(seconds=[...] or [], cpu=[...] or [], note=str,
    gap=float)}, {high-precision solver: its objective})``, fastopt's row first; ``seconds``
    (wall) and ``cpu`` are empty when the target was not reached."""
    objective = Objective(X, y)
    best, exact = optimum(X, y, objective)
    log("  L* = " + ", ".join(f"{value:.15g} ({name})" for name, value in exact.items()))
    chosen, rows = {}, {}
    for label, make in contenders(len(X)).items():
        for factor in TOL_FACTORS:
            tol = DEFAULT_TOL * factor
            seconds, _, estimator, warned = fit(make, tol, X, y)
            gap = (objective(estimator) - best) / abs(best)
            detail = (f"tol={tol:g}, {n_iter(estimator)} it"
                      + (", ConvergenceWarning" if warned else ""))
            if gap <= TARGET:
                chosen[label] = (make, tol, seconds)
                rows[label] = dict(seconds=[], cpu=[], gap=gap,
                                   note=f"gap {gap:.1e} at {detail}")
                break
        else:
            rows[label] = dict(seconds=[], cpu=[], gap=gap, note=(
                f"target not reached: gap {gap:.1e} at {detail}, {seconds:.3g} s"))
    if chosen:
        round_seconds = sum(seconds for _, _, seconds in chosen.values())
        rounds = max(1, min(repeat, int(budget / max(round_seconds, 1e-9))))
        for _ in range(rounds):
            for label, (make, tol, _) in chosen.items():
                seconds, cpu, _, _ = fit(make, tol, X, y)
                rows[label]["seconds"].append(seconds)
                rows[label]["cpu"].append(cpu)
    return rows, exact
