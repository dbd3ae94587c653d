"""Training on Dask collections: ``fastopt.dask.fit`` (``pip install 'fastopt[dask]'``).

X is a ``dask.array`` (or a dask DataFrame) split into blocks of rows; each block stays on the
worker that holds it, and fastopt's compiled kernels run there. Two strategies:

``strategy="gradient"`` (exact full-batch methods)
    Every update needs the gradient of the full objective: each block returns its loss sum and
    gradient sum at the current parameters (the C++ or Numba objective over its rows), the
    driver adds them up in block order and takes the optimizer step. One update per epoch,
    the same trajectory as ``fastopt.fit(X, y, batch_size=None)`` on one machine up to the
    rounding of the partial sums. ``optimizer="newton"`` sums the blocks' Hessians as well
    (and needs one more pass per line-search trial).

``strategy="average"`` (minibatch optimizers, local SGD)
    Each round, every block runs ``sync_every`` epochs of minibatch training on its own rows
    (shuffled with the fit's seed and the block's index), starting from the current
    parameters and optimizer state; the driver then averages the blocks' parameters and
    optimizer-state arrays, weighted by their rows (the step counter: the largest). With one
    block this is exactly ``fastopt.fit`` on that block. Cheap in communication (one exchange
    per round), not the same trajectory as a single machine: it converges to the same optimum
    for a decaying learning rate.

Both run on whatever scheduler Dask uses: the local threads by default (no set-up), or a
``dask.distributed`` cluster once a ``Client`` exists. Persist X (``X = X.persist()``) before
fitting: every epoch reads it again. If a worker dies mid-fit, Dask recomputes the blocks it
held and the fit completes with the same result (the sums keep their order).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from . import _backends
from . import _validation as v
from .newton import MAX_PARAMS, hessian, newton_fit
from .optim import make_optimizer
from .reference.models import penalty as penalty_of
from .schedules import make_schedule
from .training import (DivergenceError, FitResult, ModelSpec, Problem, TrainingState,
                       check_sparse_update, inverse_std, to_original_space, train)

__all__ = ["fit", "STRATEGIES"]

STRATEGIES = ("gradient", "average")


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError("fastopt.dask needs dask: pip install 'fastopt[dask]'") from None
    return dask, da


def is_dask_collection(obj):
    """Whether ``obj`` is a dask collection (array, DataFrame, Series), without importing
    dask when it was not imported already."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(obj)


def series_to_array(y):
    """A dask Series (or 1-column DataFrame) as a dask array; labels of pandas' extension
    dtypes (strings, categories) as objects, which dask converts without a warning."""
    if hasattr(y, "to_dask_array"):
        if getattr(y.dtype, "kind", "O") not in "biuf":
            y = y.astype(object)
        y = y.to_dask_array(lengths=True)
    return y


def _as_rows(X, y, sample_weight):
    """X (n, d), y (n,) and the weights as dask arrays with the same row blocks, X whole in
    its columns."""
    dask, da = _dask()
    names = None
    if hasattr(X, "to_dask_array"):  # dask DataFrame
        names = [str(c) for c in X.columns]
        X = X.to_dask_array(lengths=True)
    elif not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X), chunks=(max(1, len(X) // 4), -1))
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    y = series_to_array(y)
    y = y.rechunk((X.chunks[0],)) if isinstance(y, da.Array) else da.from_array(
        np.asarray(y), chunks=(X.chunks[0],))
    if sample_weight is not None:
        sample_weight = (sample_weight.rechunk((X.chunks[0],))
                         if isinstance(sample_weight, da.Array)
                         else da.from_array(np.asarray(sample_weight, dtype=np.float64),
                                            chunks=(X.chunks[0],)))
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{X.shape[0]}, {y.shape[0]}]")
    return X, y, sample_weight, names


def _block_problem(spec, Xb, yb, wb, mean, inv_std, classes):
    """The Problem of one block, labels encoded with the fit's classes, weights already
    relative to the whole data set's mean weight; runs on the worker. X was checked for
    NaN/inf once, in the statistics pass: here only its layout and dtype."""
    if v.is_sparse(Xb):
        Xb = v.check_X(Xb)
    else:
        dtype = Xb.dtype if Xb.dtype in (np.float32, np.float64) else np.float64
        Xb = np.ascontiguousarray(Xb, dtype=dtype)
    yb = np.asarray(yb)
    if spec.model == "linear":
        targets = np.ascontiguousarray(yb, dtype=np.float64)
    else:
        targets = np.searchsorted(classes, yb).astype(np.float64)
    weights = None if wb is None else np.ascontiguousarray(wb, dtype=np.float64)
    return Problem(spec, Xb, targets, weights, mean, inv_std)


def _block_sums(spec, Xb, yb, wb, mean, inv_std, classes, params, backend, with_hessian):
    """Loss sum, gradient sum (no penalty) and, for Newton, the Hessian sum of one block."""
    data_spec = ModelSpec(spec.model, spec.n_features, spec.n_outputs, spec.fit_intercept,
                          None, 0.0, spec.l1_ratio)
    problem = _block_problem(data_spec, Xb, yb, wb, mean, inv_std, classes)
    n = problem.n_samples
    value, grad = _backends.objective_function(backend)(problem, params)
    H = hessian(problem, np.asarray(params, dtype=np.float64)) * n if with_hessian else None
    return value * n, grad * n, n, H


def _block_epochs(spec, Xb, yb, wb, mean, inv_std, classes, params, optimizer, opt_state,
                  updates, epochs_done, seed, block, lrs_schedule, epochs, batch_size, shuffle,
                  backend, n_jobs, sparse_update):
    """``epochs`` epochs of minibatch training on one block from the given parameters and
    optimizer state; returns them, with the block's rows and last epoch's mean loss."""
    problem = _block_problem(spec, Xb, yb, wb, mean, inv_std, classes)
    state = TrainingState(np.array(params), optimizer,
                          {k: np.array(a) if isinstance(a, np.ndarray) else a
                           for k, a in opt_state.items()},
                          updates=updates, epochs=epochs_done, seed=(seed + block) % 2**64)
    history, _, _, _ = train(problem, state, schedule=lrs_schedule, epochs=epochs,
                             batch_size=batch_size, shuffle=shuffle, tol=None,
                             n_iter_no_change=1, backend=backend, n_jobs=n_jobs,
                             sparse_update=sparse_update)
    return state.params, state.optimizer_state, problem.n_samples, history["loss"][-1], \
        state.updates


def _blocks(X, y, w):
    xs = X.to_delayed().ravel()
    ys = y.to_delayed().ravel()
    ws = w.to_delayed().ravel() if w is not None else [None] * len(xs)
    return list(zip(xs, ys, ws))


def _statistics(X, y, w, model, classes, standardize):
    """Rows, classes, mean weight and (standardize) feature mean and 1/std, in one pass."""
    dask, da = _dask()
    n = X.shape[0]
    if X.dtype.kind not in "fiub":
        raise ValueError(f"X must be numeric; got dtype {X.dtype}")
    tasks = {"rows": n, "finite": da.isfinite(X).all()}
    if w is not None:
        tasks["finite_weights"] = da.isfinite(w).all() & (w >= 0).all()
    if model != "linear" and classes is None:
        tasks["classes"] = da.unique(y)
    if w is not None:
        tasks["weight_sum"] = w.sum()
    if standardize:
        Xf = X.astype(np.float64)
        if w is None:
            tasks["mean"] = Xf.mean(axis=0)
            tasks["var"] = Xf.var(axis=0)
        else:
            total = w.sum()
            mean = (Xf * w[:, None]).sum(axis=0) / total
            tasks["mean"] = mean
            tasks["var"] = (((Xf - mean) ** 2) * w[:, None]).sum(axis=0) / total
    keys = [k for k, t in tasks.items() if hasattr(t, "dask")]
    computed = dict(zip(keys, dask.compute(*[tasks[k] for k in keys])))
    tasks.update(computed)
    if not tasks["finite"]:
        raise ValueError("Input X contains NaN or infinity.")
    if not tasks.get("finite_weights", True):
        raise ValueError("sample_weight must be finite and non-negative")
    if model != "linear":
        classes = np.unique(tasks["classes"]) if classes is None else np.unique(classes)
        if len(classes) < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, but "
                             f"the data contains only one class: {classes.tolist()[0]!r}")
    mean_weight = float(tasks["weight_sum"]) / n if w is not None else 1.0
    mean = inv_std = None
    if standardize:
        mean = np.asarray(tasks["mean"], dtype=np.float64)
        inv_std = inverse_std(mean, np.sqrt(np.asarray(tasks["var"], dtype=np.float64)))
    return n, classes, mean_weight, mean, inv_std


def fit(X, y, *, model="linear", optimizer="adam", strategy="gradient", lr=None, schedule=None,
        epochs=20, batch_size=256, sync_every=1, shuffle=True, penalty=None, alpha=1e-4,
        l1_ratio=0.15, fit_intercept=True, sample_weight=None, standardize=False,
        classes=None, random_state=None, backend="auto", n_jobs=None,
        sparse_update="exact", callback=None) -> FitResult:
    """Fit on a dask array or DataFrame; see the module docstring for the two strategies.

    The options are those of :func:`fastopt.fit`; ``batch_size`` applies to
    ``strategy="average"`` only (``"gradient"`` is full batch), ``sync_every`` is the number
    of local epochs between two averages, ``callback`` gets each epoch's (gradient) or
    round's (average) history entry with ``params``. All ``epochs`` run (no ``tol``).
    """
    dask, da = _dask()
    v.check_choice("strategy", strategy, STRATEGIES)
    v.check_choice("model", model, ("linear", "logistic", "softmax"))
    v.check_int("epochs", epochs, 1)
    v.check_int("batch_size", batch_size, 1)
    v.check_int("sync_every", sync_every, 1)
    v.check_n_jobs(n_jobs)
    check_sparse_update(sparse_update)
    newton = isinstance(optimizer, str) and optimizer.lower() == "newton"
    if newton and strategy != "gradient":
        raise ValueError("optimizer='newton' needs strategy='gradient' (it is full batch)")
    backend = _backends.resolve(backend)
    X, y, w, names = _as_rows(X, y, sample_weight)
    n, classes, mean_weight, mean, inv_std = _statistics(X, y, w, model, classes, standardize)
    if w is not None:
        w = w / mean_weight
    d = X.shape[1]
    k = 1 if model != "softmax" else len(classes)
    if model == "logistic" and len(classes) != 2:
        raise ValueError(f"model='logistic' needs exactly 2 classes, got {len(classes)}; use "
                         "model='softmax' for more")
    spec = ModelSpec(model, d, k, bool(fit_intercept), penalty, float(alpha), float(l1_ratio))
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    blocks = _blocks(X, y, w)
    delayed = dask.delayed

    def distributed_sums(params, with_hessian=False):
        tasks = [delayed(_block_sums)(spec, xb, yb, wb, mean, inv_std, classes, params,
                                      backend, with_hessian) for xb, yb, wb in blocks]
        parts = dask.compute(*tasks)
        loss = sum(p[0] for p in parts)  # block order: the same sums on every scheduler
        grad = parts[0][1].copy()
        for p in parts[1:]:
            grad = grad + p[1]
        H = None
        if with_hessian:
            H = parts[0][3].copy()
            for p in parts[1:]:
                H = H + p[3]
        return loss, grad, H

    def objective(_, params):
        loss, grad, _ = distributed_sums(params)
        value, penalty_grad = penalty_of(spec, params)
        return loss / n + value, grad / n + penalty_grad

    history: dict[str, list] = {"epoch": [], "loss": [], "lr": [], "seconds": [], "steps": []}
    if newton:
        if spec.n_params > MAX_PARAMS:
            raise ValueError(f"optimizer='newton' supports up to {MAX_PARAMS} parameters")

        def hessian_of(_, params):
            H = distributed_sums(params, with_hessian=True)[2] / n
            if spec.penalty == "l2" and spec.alpha > 0:
                H[np.arange(k * d), np.arange(k * d)] += spec.alpha
            return H
        # A Problem without data: newton_fit reads only its spec here.
        params, history, _ = newton_fit(Problem(spec, None, None, None), np.zeros(  # type: ignore[arg-type]
            spec.n_params, dtype=dtype), max_iter=epochs, tol=1e-15, callback=callback,
            objective=objective, hessian_of=hessian_of)
        state = None
    elif strategy == "gradient":
        opt = make_optimizer(optimizer, **({} if lr is None else {"lr": lr}))
        params = np.zeros(spec.n_params, dtype=dtype)
        state = TrainingState(params, opt, opt.init(params))
        lr_of = make_schedule(schedule, opt.lr, epochs)
        for epoch in range(epochs):
            start = time.perf_counter()
            value, grad = objective(None, params)
            if not np.isfinite(value) or not np.all(np.isfinite(grad)):
                raise DivergenceError(f"The training loss became non-finite at epoch "
                                      f"{epoch + 1}; try a smaller learning rate.")
            rate = float(lr_of(epoch))
            opt.step(params, grad.astype(dtype), state.optimizer_state, lr=rate,
                     backend="numpy" if backend == "cuda" else backend)
            state.updates += 1
            entry = {"epoch": epoch + 1, "loss": float(value), "lr": rate,
                     "seconds": time.perf_counter() - start, "steps": state.updates}
            for key, item in entry.items():
                history[key].append(item)
            if callback is not None and callback(dict(entry, params=params)) is False:
                break
    else:
        opt = make_optimizer(optimizer, **({} if lr is None else {"lr": lr}))
        params = np.zeros(spec.n_params, dtype=dtype)
        opt_state = opt.init(params)
        seed = v.seed_from(random_state)
        updates, epochs_done = 0, 0
        rounds = -(-epochs // sync_every)
        steps_per_epoch = -(-max(X.chunks[0]) // batch_size)
        lrs_schedule = make_schedule(schedule, opt.lr, epochs * steps_per_epoch)
        for round_ in range(rounds):
            start = time.perf_counter()
            local = min(sync_every, epochs - round_ * sync_every)
            tasks = [delayed(_block_epochs)(spec, xb, yb, wb, mean, inv_std, classes, params,
                                            opt, opt_state, updates, epochs_done, seed, i,
                                            lrs_schedule, local, batch_size, shuffle, backend,
                                            n_jobs, sparse_update)
                     for i, (xb, yb, wb) in enumerate(blocks)]
            parts = dask.compute(*tasks)
            rows = np.array([p[2] for p in parts], dtype=np.float64)
            share = rows / rows.sum()
            params = sum(share[i] * parts[i][0].astype(np.float64)
                         for i in range(len(parts))).astype(dtype)
            averaged = {}
            for key, value in parts[0][1].items():
                if isinstance(value, np.ndarray) and value.shape == params.shape:
                    averaged[key] = sum(share[i] * parts[i][1][key].astype(np.float64)
                                        for i in range(len(parts))).astype(dtype)
                elif key == "step":
                    averaged[key] = max(int(p[1][key]) for p in parts)
                else:
                    averaged[key] = parts[0][1][key]
            opt_state = averaged
            updates = max(p[4] for p in parts)
            epochs_done += local
            loss = float(share @ np.array([p[3] for p in parts]))
            entry = {"epoch": epochs_done, "loss": loss,
                     "lr": float(lrs_schedule(max(updates - 1, 0))),
                     "seconds": time.perf_counter() - start, "steps": updates}
            for key, item in entry.items():
                history[key].append(item)
            if callback is not None and callback(dict(entry, params=params)) is False:
                break
        state = TrainingState(params, opt, opt_state, updates=updates, epochs=epochs_done,
                              seed=seed)
    # A Problem without data: to_original_space reads only the spec and the scaling.
    coef, intercept = to_original_space(Problem(spec, None, None, None, mean, inv_std), params)  # type: ignore[arg-type]
    if model == "linear":
        coef, intercept = coef[0], float(intercept[0])
    result = FitResult(model, coef, intercept, classes if model != "linear" else None,
                       len(history["loss"]), False, history, state)
    if names is not None:
        result.feature_names_in_ = np.asarray(names, dtype=object)
    # What the estimators keep to continue from the result (not a field of FitResult).
    result.scaling = (mean, inv_std)  # type: ignore[attr-defined]
    return result
