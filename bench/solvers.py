"""Solvers that reach the optimum, 1 thread: fastopt's L-BFGS and Newton-CG (fastopt.solvers on
the compiled objective) against scikit-learn's LogisticRegression (lbfgs and newton-cholesky at
their defaults), and one compiled objective pass against one BLAS read of X.

    python bench/solvers.py [--repeat 3] [--scale 1.0] [--skip-softmax]

B1: binary logistic, make_classification n=200,000, d=50, alpha=1/n (scikit-learn's C=1),
standardised. B2: softmax, 5 classes, n=300,000, d=100, same alpha rule. fastopt standardises on
the fly (``standardize=True``); scikit-learn gets the standardised copy of X, made before the
clock starts, so both minimise the same objective. The relative gap is ``(L - L*) / L*`` with
``L*`` from Newton-CG run to ``max|g| <= 1e-10``, all measured with the same compiled objective.
Newton-CG's Hessian-vector products are the NumPy reference (``fastopt.reference.hvp``): there
is no compiled one yet. Times are the minimum over ``--repeat`` rounds, wall clock and this
process's CPU time (the same on an idle machine, 1 thread; on a shared machine the CPU time
leaves out waiting for a core).
"""

import os

if __name__ == "__main__":  # before NumPy loads its thread pool
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from fastopt import _backends, solvers  # noqa: E402
from fastopt.reference.hvp import hessian_operator  # noqa: E402
from fastopt.engine import prepare  # noqa: E402

try:
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
except ImportError:  # the data need scikit-learn
    raise SystemExit("bench/solvers.py needs scikit-learn")


def cached_hvp(problem):
    cache = {}

    def hvp(x, v):
        if cache.get("x") is not x:
            cache["x"], cache["product"] = x, hessian_operator(problem, x)
        return cache["product"](v)
    return hvp


def best_of(repeat, run):
    """``(min wall seconds, min CPU seconds of this process, result of the last run)``. On 1
    thread the CPU time is the wall time of an idle machine; on a shared one it leaves out the
    time spent waiting for a core."""
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu), result


def pass_ratio(problem, objective, repeat):
    """One compiled objective pass against one BLAS read of the same bytes of X."""
    X = problem.X
    flat, ones = X.ravel(), np.ones(X.size, dtype=X.dtype)
    w = np.zeros(problem.spec.n_params, dtype=X.dtype)
    objective(problem, w)
    np.dot(flat, ones)
    # interleaved, minimum of each: a shared machine slows both alike
    t_obj = t_read = np.inf
    for _ in range(max(10, repeat)):
        t_obj = min(t_obj, best_of(1, lambda: objective(problem, w))[1])
        t_read = min(t_read, best_of(1, lambda: np.dot(flat, ones))[1])
    print(f"  one _core.objective pass      {t_obj * 1e3:8.2f} ms (CPU)")
    print(f"  one BLAS read of X (ddot)     {t_read * 1e3:8.2f} ms (CPU)   "
          f"({X.nbytes / t_read / 1e9:.1f} GB/s)")
    print(f"  ratio objective / read        {t_obj / t_read:8.2f}")


def workload(name, n, d, classes, repeat):
    X, y = make_classification(n_samples=n, n_features=d, n_informative=d // 2,
                               n_redundant=d // 10, n_classes=classes, random_state=0)
    model = "logistic" if classes == 2 else "softmax"
    alpha = 1.0 / n
    problem, _ = prepare(X, y, model=model, penalty="l2", alpha=alpha, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, standardize=True)
    Xs = (X - problem.mean) * problem.inv_std  # scikit-learn's copy, outside the clock
    backend = _backends.resolve("cpp")
    data = backend.dataset(problem)

    def objective(_, params):
        return backend.objective(data, params)
    x0 = np.zeros(problem.spec.n_params)
    print(f"{name}: {model}, n={n}, d={d}, classes={classes}, alpha=1/n, standardised, "
          f"float64, 1 thread")
    pass_ratio(problem, objective, repeat)

    def value(params):
        return objective(problem, np.ascontiguousarray(params, dtype=np.float64))[0]

    reference = solvers.newton_cg(lambda x: objective(problem, x), cached_hvp(problem), x0,
                                  max_iter=100, tol=1e-10)
    rows = []

    def fastopt_row(label, run):
        seconds, cpu, result = best_of(repeat, run)
        passes = result.n_evals + result.n_hvp
        why = result.message.split(" (")[0]
        rows.append((label, seconds, cpu, result.f, f"{result.n_iter} it, {passes} passes, "
                     f"{result.status}: {why}"))

    fastopt_row("fastopt lbfgs (defaults)", lambda: solvers.lbfgs(
        lambda x: objective(problem, x), x0, max_iter=1000))
    fastopt_row("fastopt lbfgs (tolerance_grad=1e-5)", lambda: solvers.lbfgs(
        lambda x: objective(problem, x), x0, max_iter=1000, tolerance_grad=1e-5))
    fastopt_row("fastopt newton_cg (tol=1e-5)", lambda: solvers.newton_cg(
        lambda x: objective(problem, x), cached_hvp(problem), x0, max_iter=100, tol=1e-5))
    for solver in ("lbfgs", "newton-cholesky"):
        def fit(solver=solver):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                estimator = LogisticRegression(C=1.0 / (alpha * n), solver=solver).fit(Xs, y)
            return estimator, caught
        seconds, cpu, (estimator, caught) = best_of(repeat, fit)
        params = np.r_[estimator.coef_.ravel(), np.atleast_1d(estimator.intercept_)]
        note = f"{int(np.max(estimator.n_iter_))} it" + (", ConvergenceWarning" if caught else "")
        rows.append((f"sklearn {solver} (defaults)", seconds, cpu, value(params), note))
    best = min([reference.f] + [row[3] for row in rows])
    print(f"  L* = {best:.15g} (Newton-CG to 1e-10: {reference.status})")
    print(f"  {'contender':38s} {'wall s':>8s} {'CPU s':>8s} {'rel. gap':>10s}  notes")
    for label, seconds, cpu, f, note in rows:
        print(f"  {label:38s} {seconds:8.3f} {cpu:8.3f} {(f - best) / abs(best):10.2e}  {note}")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies n")
    parser.add_argument("--skip-softmax", action="store_true")
    args = parser.parse_args()
    workload("B1", int(200_000 * args.scale), 50, 2, args.repeat)
    if not args.skip_softmax:
        workload("B2", int(300_000 * args.scale), 100, 5, args.repeat)


if __name__ == "__main__":
    main()
