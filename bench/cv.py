"""CV1: cross-validated L2 logistic regression, 10 values of C, 5 folds, on one thread.

fastopt's ``LogisticRegressionCV`` (its default L-BFGS along a warm-started path in each fold,
``standardize=False``: scikit-learn's objective) against scikit-learn's
``LogisticRegressionCV`` (lbfgs, ``n_jobs=1``, BLAS on 1 thread), on the same
``StratifiedKFold(5)`` folds of ``make_classification`` with n=200,000, d=50 (``--quick``:
n=10,000), ``Cs=10`` (``np.logspace(-4, 4, 10)``), accuracy scores. fastopt also runs with
``n_jobs=2`` (two folds at a time in threads).

Both run at ``tol=1e-6`` (the gradient's max-norm, in the same units for both). At their
default 1e-4 both stop short where the penalty is weak (C >= 2.8 takes no iteration at all: the
warm start's gradient is already below 1e-4) and both chose C=0.046 where the fits run to
convergence choose C=0.36, and their fold scores differed by 1e-4 (4 of 40,000 test rows).

The check, before any clock: the same ``C_`` and fold scores within ``SCORE_TOL``; the
first (warm-up) fits make it. Then rounds of one fit of each contender, in turn, as long as
``budget`` allows (at least one), median wall and CPU time.
"""

import time
import warnings

import numpy as np

import fastopt

TOL = 1e-6
SCORE_TOL = 1e-4
N_CS = 10
N_FOLDS = 5


def problem(quick):
    """``(name, X, y, folds)``."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedKFold
    n, d = (10_000 if quick else 200_000), 50
    X, y = make_classification(n_samples=n, n_features=d, n_informative=d // 2,
                               n_redundant=d // 10, random_state=0)
    folds = list(StratifiedKFold(N_FOLDS).split(X, y))
    return f"CV1 {n:,}x{d}", X, y, folds


def contenders(folds):
    """``{label: make() -> unfitted estimator}``, fastopt's 1-thread row first."""
    from sklearn.linear_model import LogisticRegressionCV

    def ours(n_jobs):
        return lambda: fastopt.LogisticRegressionCV(Cs=N_CS, cv=folds, standardize=False,
                                                    tol=TOL, n_jobs=n_jobs)

    def theirs():
        return LogisticRegressionCV(Cs=N_CS, cv=folds, l1_ratios=(0.0,), scoring="accuracy",
                                    use_legacy_attributes=False, tol=TOL, n_jobs=1)
    return {"fastopt LogisticRegressionCV": ours(None),
            "fastopt LogisticRegressionCV, 2 threads": ours(2),
            "sklearn LogisticRegressionCV lbfgs": theirs}


def fit(make, X, y):
    """``(wall seconds, CPU seconds, fitted estimator, ConvergenceWarnings)``."""
    estimator = make()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, start_cpu = time.perf_counter(), time.process_time()
        estimator.fit(X, y)
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    warned = sum("Convergence" in type(w.message).__name__ for w in caught)
    return seconds, cpu, estimator, warned


def scores_of(estimator):
    """(n_folds, n_Cs) fold scores: fastopt's ``scores_``, scikit-learn's new-style
    ``scores_`` without its l1_ratios axis."""
    scores = np.asarray(estimator.scores_)
    return scores[:, 0, :] if scores.ndim == 3 else scores


def measure(X, y, folds, repeat, budget, log=print):
    """``{label: dict(seconds, cpu, note, C, score_gap)}``; ``score_gap``: the largest
    difference of a fold score from scikit-learn's."""
    makers = contenders(folds)
    first = {label: fit(make, X, y) for label, make in makers.items()}
    reference = first["sklearn LogisticRegressionCV lbfgs"][2]
    rows = {}
    for label, (seconds, cpu, estimator, warned) in first.items():
        gap = float(np.max(np.abs(scores_of(estimator) - scores_of(reference))))
        iterations = int(np.sum(estimator.n_iter_))
        note = (f"C_={float(estimator.C_):.4g}, score gap {gap:.1e}, {iterations} iterations"
                + (f", {warned} ConvergenceWarning" if warned else ""))
        rows[label] = dict(seconds=[], cpu=[], C=float(estimator.C_), score_gap=gap,
                           note=note, same=(float(estimator.C_) == float(reference.C_)
                                            and gap <= SCORE_TOL))
        log(f"  {label}: {note} (warm-up {seconds:.3g} s)")
    round_seconds = sum(seconds for seconds, _, _, _ in first.values())
    rounds = max(1, min(repeat, int(budget / max(round_seconds, 1e-9))))
    for _ in range(rounds):
        for label, make in makers.items():
            seconds, cpu, _, _ = fit(make, X, y)
            rows[label]["seconds"].append(seconds)
            rows[label]["cpu"].append(cpu)
    return rows
