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

import math
import time

import numpy as np

from . import _backends
from . import _validation as v
from ._scaling import inverse_std, target_units
from .engine import (DivergenceError, FitResult, Monitor, Problem, TrainingState, check_training_options,
                     optimizer_from, result, scaled_penalty, stall_tol, train)
from .newton import MAX_PARAMS, hessian, newton_fit
from .optim import Optimizer
from .solvers import LBFGS, SAGA, NewtonCG
from .reference.models import ModelSpec
from .reference.models import penalty as penalty_of
from .schedules import make_schedule

__all__ = ["fit", "STRATEGIES"]

STRATEGIES = ("gradient", "average")


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError("fastopt.dask needs dask: pip install 'fastopt[dask]'") from None
    return dask, da


is_dask_collection = v.is_dask_collection


def series_to_array(y):
    """A dask Series (or 1-column DataFrame) as a dask array; labels of pandas' extension
    dtypes (strings, categories) as objects, which dask converts without a warning."""
    if hasattr(y, "to_dask_array"):
        if getattr(y.dtype, "kind", "O") not in "biuf":
            y = y.astype(object)
        y = y.to_dask_array(lengths=True)
    return y


def _check_known_chunks(array, name):
    """Refuse a dask array whose block lengths are unknown (NaN), as ``df.to_dask_array()`` and
    ``df.values`` give: the blocks of X, y and the weights must be matched row for row."""
    if any(np.isnan(size) for sizes in array.chunks for size in sizes):
        raise ValueError(f"{name} is a dask array with unknown chunk sizes (shape "
                         f"{array.shape}), as df.to_dask_array() and df.values give: use "
                         f"df.to_dask_array(lengths=True), or call "
                         f"{name}.compute_chunk_sizes() first")


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
    _check_known_chunks(X, "X")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    y = series_to_array(y)
    for name, array in (("y", y), ("sample_weight", sample_weight)):
        if isinstance(array, da.Array):
            _check_known_chunks(array, name)
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


def _block_problem(spec, Xb, yb, wb, mean, inv_std, classes, target=(0.0, 1.0)):
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
        targets = (np.asarray(yb, dtype=np.float64) - target[0]) / target[1]
    else:
        targets = np.searchsorted(classes, yb).astype(np.float64)
    weights = None if wb is None else np.ascontiguousarray(wb, dtype=np.float64)
    return Problem(spec, Xb, targets, weights, mean, inv_std, target=tuple(target))


def _block_sums(spec, Xb, yb, wb, mean, inv_std, classes, target, params, backend,
                with_hessian):
    """Loss sum, gradient sum (no penalty) and, for Newton, the Hessian sum of one block."""
    data_spec = ModelSpec(spec.model, spec.n_features, spec.n_outputs, spec.fit_intercept,
                          None, 0.0, spec.l1_ratio)
    problem = _block_problem(data_spec, Xb, yb, wb, mean, inv_std, classes, target)
    n = problem.n_samples
    backend = _backends.resolve(backend)
    value, grad = backend.objective(backend.dataset(problem), params)
    H = hessian(problem, np.asarray(params, dtype=np.float64)) * n if with_hessian else None
    return value * n, grad * n, n, H


def _block_epochs(spec, Xb, yb, wb, mean, inv_std, classes, target, params, optimizer, opt_state,
                  updates, epochs_done, seed, block, lrs_schedule, epochs, batch_size, shuffle,
                  backend, n_jobs, sparse_update):
    """``epochs`` epochs of minibatch training on one block from the given parameters and
    optimizer state; returns them, with the block's rows and last epoch's mean loss."""
    problem = _block_problem(spec, Xb, yb, wb, mean, inv_std, classes, target)
    state = TrainingState(np.array(params), optimizer,
                          {k: np.array(a) if isinstance(a, np.ndarray) else a
                           for k, a in opt_state.items()},
                          updates=updates, epochs=epochs_done, seed=(seed + block) % 2**64)
    monitor, _ = train(problem, state, backend=_backends.resolve(backend),
                       schedule=lrs_schedule, epochs=epochs, batch_size=batch_size,
                       shuffle=shuffle, tol=None, n_iter_no_change=1, n_jobs=n_jobs,
                       sparse_update=sparse_update)
    return (state.params, state.optimizer_state, problem.n_samples, monitor.history["loss"][-1],
            state.updates)


def _blocks(X, y, w):
    xs = X.to_delayed().ravel()
    ys = y.to_delayed().ravel()
    ws = w.to_delayed().ravel() if w is not None else [None] * len(xs)
    return list(zip(xs, ys, ws))


def _statistics(X, y, w, model, classes, standardize, fit_intercept=True):
    """Rows, classes, mean weight, (standardize) feature mean and 1/std, the target's
    standardisation ``(center, scale)`` and the objective with every trained coefficient zero
    (for the divergence rule), in one pass."""
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
    if model == "linear":  # the target's moments, for its standardisation and the start loss
        yf = y.astype(np.float64)
        weight = da.ones_like(yf) if w is None else w
        tasks["y_mean"] = (yf * weight).sum() / weight.sum()
        tasks["y_square"] = (yf * yf * weight).sum() / weight.sum()
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
    target, start_loss = (0.0, 1.0), None
    if model == "linear":
        y_mean = float(tasks["y_mean"])
        variance = max(float(tasks["y_square"]) - y_mean * y_mean, 0.0)
        if standardize:
            target = target_units(y_mean, variance, fit_intercept)
        start_loss = 0.5 * (variance + (y_mean - target[0]) ** 2)
    else:
        start_loss = math.log(2.0) if model == "logistic" else math.log(len(classes))
    return n, classes, mean_weight, mean, inv_std, target, start_loss


def _validation_blocks(rows, fraction, seed):
    """Indices of the row blocks held out for early stopping: blocks in an order drawn from
    the seed, as many as bring the held-out rows closest to ``fraction`` of them, at least one
    and never all."""
    if len(rows) < 2:
        raise ValueError("early_stopping=True holds out whole row blocks of X for validation, "
                         "and X has a single block: split its rows into more chunks, e.g. "
                         "X.rechunk({0: len(X) // 10}), or df.repartition(npartitions=10) "
                         "for a DataFrame")
    order = np.random.default_rng(seed).permutation(len(rows))
    held = np.cumsum(np.asarray(rows, dtype=np.float64)[order])[:-1]
    count = 1 + int(np.argmin(np.abs(held - fraction * sum(rows))))
    return sorted(int(i) for i in order[:count])


def _starting_state(init, describe, opt, dtype, seed):
    """``(params, state)`` where the fit starts: zeros and a fresh optimizer state, or
    ``init`` (see :func:`fit`), copied so that the caller's arrays are not trained on."""
    n_params = describe.spec.n_params
    if callable(init):
        init = init(describe)
    if init is None:
        params = np.zeros(n_params, dtype=dtype)
        return params, (TrainingState(params, opt, opt.init(params), seed=seed)
                        if isinstance(opt, Optimizer) else None)
    given = init.params if isinstance(init, TrainingState) else init
    params = np.array(given, dtype=dtype, copy=True, order="C")
    if params.shape != (n_params,):
        raise ValueError(f"init has {params.size} parameters, but this fit trains "
                         f"{n_params} ({describe.spec.n_outputs} x "
                         f"{describe.spec.n_features} coefficients"
                         f"{' and intercepts' if describe.spec.fit_intercept else ''})")
    if not isinstance(opt, Optimizer):  # Newton, L-BFGS: no optimizer state
        return params, None
    if not isinstance(init, TrainingState):
        return params, TrainingState(params, opt, opt.init(params), seed=seed)
    if type(init.optimizer) is type(opt):
        moments = {key: np.array(value, dtype=dtype) if isinstance(value, np.ndarray) else value
                   for key, value in init.optimizer_state.items()}
    else:  # another optimizer's state means nothing to this one
        moments = opt.init(params)
    return params, TrainingState(params, opt, moments, updates=init.updates,
                                 epochs=init.epochs, seed=init.seed)


def fit(X, y, *, model="linear", optimizer="adam", strategy="gradient", lr=None, schedule=None,
        epochs=20, batch_size=256, sync_every=1, shuffle=True, penalty=None, alpha=1e-4,
        l1_ratio=0.15, fit_intercept=True, sample_weight=None, standardize=False,
        classes=None, tol=None, n_iter_no_change=5, early_stopping=False,
        validation_fraction=0.1, random_state=None, backend="auto", n_jobs=None,
        sparse_update="exact", callback=None, verbose=0, init=None) -> FitResult:
    """Fit on a dask array or DataFrame; see the module docstring for the two strategies.

    The options are those of :func:`fastopt.fit`; ``batch_size`` applies to
    ``strategy="average"`` only (``"gradient"`` is full batch), ``sync_every`` is the number
    of local epochs between two averages. The history, the progress lines (``verbose``), the
    ``tol`` test and ``callback`` see one entry per full-gradient step ("gradient") or per
    round of ``sync_every`` epochs ("average"): ``tol`` and ``n_iter_no_change`` count those.
    ``tol=None`` (the default here) runs all ``epochs``.

    ``early_stopping``: whole row blocks of X, chosen by ``random_state`` and together about
    ``validation_fraction`` of the rows (at least one block, and one left to train on), are
    held out; their objective (``val_loss``, in the target's units) is what ``tol`` watches,
    and the fit returns the parameters of its best ``val_loss``. X needs two blocks or more.

    ``init``: where training starts, instead of zero parameters and a fresh optimizer state.
    A :class:`~fastopt.engine.TrainingState` (``result.state`` of an earlier fit on the same
    data with the same ``standardize``) continues its parameters, optimizer state (when the
    optimizer is of the same kind), update count (the schedule's t) and epoch count; the
    schedule then spans those updates and this fit's. An array gives the parameters only.
    Both are in the space the fit trains in (standardised features and, for a linear model
    with ``standardize``, target). A callable is called with a :class:`~fastopt.engine.Problem`
    that describes the fit (``spec``, ``mean``, ``inv_std``, ``target``; ``X`` an empty array
    of the training dtype) and returns one of those (or None); it can map coefficients on the
    original features in, with :func:`fastopt.engine.from_original_space`.

    Returns
    -------
    FitResult
        ``converged``: ``tol`` was met (always True for Newton's method with ``tol=None``, as
        in :func:`fastopt.fit`); ``history`` with ``val_loss`` under early stopping.
    """
    dask, da = _dask()
    v.check_choice("strategy", strategy, STRATEGIES)
    v.check_choice("model", model, ("linear", "logistic", "softmax"))
    check_training_options(epochs=epochs, batch_size=batch_size, tol=tol,
                           n_iter_no_change=n_iter_no_change,
                           validation_fraction=validation_fraction,
                           early_stopping=early_stopping, shuffle=shuffle, n_jobs=n_jobs,
                           sparse_update=sparse_update)
    v.check_int("sync_every", sync_every, 1)
    if not isinstance(verbose, (bool, np.bool_, int, np.integer)) or verbose < 0:
        raise ValueError(f"verbose must be an int >= 0, got {verbose!r}")
    opt = optimizer_from(optimizer, lr)
    newton = opt is None
    quasi = isinstance(opt, LBFGS)  # a distributed L-BFGS on the summed objective
    if isinstance(opt, SAGA):
        raise ValueError("optimizer='saga' is not available on dask collections (its table "
                         "of per-row gradients is not distributed); use 'lbfgs'")
    if isinstance(opt, NewtonCG):
        raise ValueError("optimizer='newton-cg' is not available on dask collections (its "
                         "Hessian-vector products are not distributed); use 'lbfgs'")
    if (newton or quasi) and strategy != "gradient":
        raise ValueError(f"optimizer={optimizer!r} needs strategy='gradient' (it is full "
                         "batch)")
    newton_like = newton or quasi
    early_stopping = bool(early_stopping) and not newton_like  # as fastopt.fit
    # Tasks carry the name: the record is resolved again where they run.
    backend = _backends.resolve_name(backend)
    X, y, w, names = _as_rows(X, y, sample_weight)
    seed = v.seed_from(random_state)
    rows = [int(r) for r in X.chunks[0]]
    held_out = _validation_blocks(rows, validation_fraction, seed) if early_stopping else []
    n, classes, mean_weight, mean, inv_std, target, start_loss = _statistics(
        X, y, w, model, classes, standardize, fit_intercept)
    if w is not None:
        w = w / mean_weight
    d = X.shape[1]
    k = 1 if model != "softmax" else len(classes)
    if model == "logistic" and len(classes) != 2:
        raise ValueError(f"model='logistic' needs exactly 2 classes, got {len(classes)}; use "
                         "model='softmax' for more")
    # As engine.prepare: a standardised linear model trains on the standardised target, with
    # the penalty re-expressed and no intercept (its optimum is 0 there).
    alpha, l1_ratio = scaled_penalty(penalty, float(alpha), float(l1_ratio), target[1])
    trains_intercept = bool(fit_intercept) and not (model == "linear" and standardize)
    spec = ModelSpec(model, d, k, trains_intercept, penalty, alpha, l1_ratio)
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    describe = Problem(spec, np.empty((0, d), dtype=dtype), np.empty(0), None, mean, inv_std,
                       target=target)
    params, state = _starting_state(init, describe, opt, dtype, seed)
    first_updates = 0 if state is None else state.updates
    if state is not None and params.any():
        start_loss = None  # the divergence rule measures from zero parameters
    all_blocks = _blocks(X, y, w)
    blocks = [b for i, b in enumerate(all_blocks) if i not in held_out]
    validation = [all_blocks[i] for i in held_out]
    n_train = sum(r for i, r in enumerate(rows) if i not in held_out)
    n_val = n - n_train
    delayed = dask.delayed

    def distributed_sums(params, with_hessian=False, over=blocks):
        tasks = [delayed(_block_sums)(spec, xb, yb, wb, mean, inv_std, classes, target, params,
                                      backend, with_hessian) for xb, yb, wb in over]
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
        return loss / n_train + value, grad / n_train + penalty_grad

    loss_scale = target[1] ** 2  # the trained objective in the target's units

    def validation_loss(params):
        """The held-out blocks' objective (as the engine's ``val_loss``: penalty included)."""
        loss = distributed_sums(params, over=validation)[0]
        return float(loss / n_val + penalty_of(spec, params)[0]) * loss_scale

    monitor = Monitor(tol=stall_tol(tol), n_iter_no_change=n_iter_no_change, callback=callback,
                      verbose=verbose, validation=early_stopping, start_loss=start_loss)
    best = None

    def record(entry, params):
        """The epoch's entry to the monitor (``val_loss`` added); True: stop."""
        nonlocal best
        if early_stopping:
            entry["val_loss"] = validation_loss(params)
        stop = monitor.record(entry, params)
        if early_stopping and monitor.improved:
            best = params.copy()
        return stop

    if newton:
        if spec.n_params > MAX_PARAMS:
            raise ValueError(f"optimizer='newton' supports up to {MAX_PARAMS} parameters")

        def hessian_of(_, params):
            H = distributed_sums(params, with_hessian=True)[2] / n_train
            if spec.penalty == "l2" and spec.alpha > 0:
                H[np.arange(k * d), np.arange(k * d)] += spec.alpha
            return H
        params, history, converged = newton_fit(
            # A Problem without data: newton_fit reads only its spec here.
            Problem(spec, None, None, None), params, max_iter=epochs, tol=tol,  # type: ignore[arg-type]
            callback=callback, verbose=verbose, objective=objective, hessian_of=hessian_of)
        monitor.history = dict(history, loss=[loss * loss_scale for loss in history["loss"]])
        monitor.converged = converged
    elif quasi:
        monitor.tol = None  # L-BFGS's tol is its gradient tolerance, not a loss stall
        started = [time.perf_counter()]

        def step_entry(info):
            now = time.perf_counter()
            entry = {"epoch": info["iteration"], "loss": float(info["f"]) * loss_scale,
                     "lr": float(info["step"]), "seconds": now - started[0],
                     "steps": int(info["n_evals"]), "grad_max": float(info["grad_max"])}
            if "gap" in info:
                entry["gap"] = float(info["gap"])
            for key in ("grad_max", "gap") if "gap" in info else ("grad_max",):
                monitor.history.setdefault(key, [])
            started[0] = now
            return not monitor.record(entry, info["x"])

        run = opt.run(lambda x: objective(None, x), None, params, max_iter=epochs, tol=tol,
                      callback=step_entry,
                      curvature_floor=spec.alpha if spec.penalty == "l2" else 0.0)
        if run.status in ("nonfinite", "line_search"):
            raise DivergenceError(f"LBFGS stopped after {run.n_iter} iterations: "
                                  f"{run.message}.")
        params = np.asarray(run.x, dtype=dtype)
        monitor.converged = run.status in ("converged", "precision")
    elif strategy == "gradient":
        lr_of = make_schedule(schedule, opt.lr, first_updates + epochs)
        for _ in range(epochs):
            start = time.perf_counter()
            value, grad = objective(None, params)
            if not np.isfinite(value) or not np.all(np.isfinite(grad)):
                raise DivergenceError(f"The training loss became non-finite at epoch "
                                      f"{state.epochs + 1}; try a smaller learning rate.")
            rate = float(lr_of(state.updates))
            opt.step(params, grad.astype(dtype), state.optimizer_state, lr=rate,
                     backend=backend)
            state.updates += 1
            state.epochs += 1
            if record({"epoch": state.epochs, "loss": float(value) * loss_scale, "lr": rate,
                       "seconds": time.perf_counter() - start, "steps": state.updates},
                      params):
                break
    else:
        rounds = -(-epochs // sync_every)
        largest = max(rows[i] for i in range(len(rows)) if i not in held_out)
        steps_per_epoch = -(-largest // (batch_size or largest))
        lrs_schedule = make_schedule(schedule, opt.lr,
                                     first_updates + epochs * steps_per_epoch)
        done = 0
        for _ in range(rounds):
            start = time.perf_counter()
            local = min(sync_every, epochs - done)
            tasks = [delayed(_block_epochs)(spec, xb, yb, wb, mean, inv_std, classes, target,
                                            params, opt, state.optimizer_state, state.updates,
                                            state.epochs, state.seed, i, lrs_schedule, local,
                                            batch_size, shuffle, backend, n_jobs,
                                            sparse_update)
                     for i, (xb, yb, wb) in enumerate(blocks)]
            parts = dask.compute(*tasks)
            block_rows = np.array([p[2] for p in parts], dtype=np.float64)
            share = block_rows / block_rows.sum()
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
            state.params, state.optimizer_state = params, averaged
            state.updates = max(p[4] for p in parts)
            state.epochs += local
            done += local
            loss = float(share @ np.array([p[3] for p in parts]))
            if record({"epoch": state.epochs, "loss": loss,
                       "lr": float(lrs_schedule(max(state.updates - 1, 0))),
                       "seconds": time.perf_counter() - start, "steps": state.updates},
                      params):
                break
    if best is not None:  # early stopping: keep (and continue from) the best parameters
        params[...] = best
    if state is not None:
        state.params = params
    fitted = result(params, spec, scaling=(mean, inv_std), target=target,
                    classes=classes if model != "linear" else None, history=monitor.history,
                    converged=monitor.converged, state=state,
                    feature_names=None if names is None else np.asarray(names, dtype=object),
                    grad_max=(monitor.history["grad_max"][-1]
                              if monitor.history.get("grad_max") else None))
    # What the estimators keep to continue from the result.
    fitted.scaling, fitted.target = (mean, inv_std), target
    diverged = None if newton else monitor.divergence()
    if diverged:
        raise DivergenceError(diverged, result=fitted)
    return fitted
