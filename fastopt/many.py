"""``fastopt.fit_many``: several configurations trained on the same minibatches in one pass.

A learning-rate sweep, a comparison of optimizers or a grid of penalties trains K models that
share the data, the model, the batch size and the shuffle. A shuffled epoch costs what fetching
its rows from memory costs; the arithmetic per row is small. So the compiled backend runs the K
configurations in one epoch (``_core.run_many_epoch``): each minibatch's rows are fetched once,
and the minibatch update of configuration 1, 2, ..., K runs on them while they are in cache,
each the same floating-point operations in the same order as in its own fit. Each result
equals :func:`fastopt.fit` with the same arguments to the last bit, its history's losses too.

A front end of :mod:`fastopt.engine`, beside :mod:`fastopt.training`: one :class:`Monitor` per
configuration (history, ``tol``, the divergence rule); the Python loop is over epochs only.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _backends
from . import _validation as v
from .engine import (LR_CHUNK, DivergenceError, FitResult, Monitor, check_sparse_update,
                     check_training_options, convergence_warning, new_state,
                     not_converged_message, optimizer_from, prepare, result, scaled_penalty,
                     split_validation, stall_tol, zero_loss)
from .optim import Optimizer
from .reference.models import PENALTIES
from .schedules import make_schedule
from .training import fit

__all__ = ["fit_many", "FitManyResult", "CONFIG_KEYS"]

#: The options one configuration of :func:`fit_many` may set; the rest are shared.
CONFIG_KEYS = ("optimizer", "lr", "schedule", "penalty", "alpha", "l1_ratio")


@dataclass
class FitManyResult(FitResult):
    """A :class:`~fastopt.engine.FitResult` of :func:`fit_many`, with ``error``: None, or the
    :class:`~fastopt.engine.DivergenceError` that :func:`fastopt.fit` raises for this
    configuration. The result then holds what the fit had when it stopped: for a loss that
    turned non-finite, the parameters and history of the last complete epoch (the epoch that
    failed is undone, as ``fit`` undoes it); for a loss that diverged while finite, the whole
    fit, which is also the error's ``result`` (as ``fit`` gives it)."""

    error: DivergenceError | None = None


def _config_error(index, exc):
    """``exc`` again, its message naming the configuration."""
    return type(exc)(f"configs[{index}]: {exc}")


def _configs(configs, defaults):
    """Each configuration's options (``defaults`` updated by its dict), checked; the errors
    name the configuration's index."""
    if isinstance(configs, dict) or not isinstance(configs, (list, tuple)):
        raise ValueError(f"configs must be a list of dicts, got {type(configs).__name__}")
    if not configs:
        raise ValueError("configs is empty: pass at least one configuration")
    out = []
    for index, config in enumerate(configs):
        if not isinstance(config, dict):
            raise ValueError(f"configs[{index}] must be a dict of options, got "
                             f"{type(config).__name__}")
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(f"configs[{index}] has unknown options {unknown}; a configuration "
                             f"sets {', '.join(CONFIG_KEYS)} (the other options are shared)")
        options = {**defaults, **config}
        try:
            options["optimizer"] = optimizer_from(options["optimizer"], options["lr"])
            v.check_choice("penalty", options["penalty"], PENALTIES)
            options["alpha"] = v.check_float("alpha", options["alpha"], 0.0)
            options["l1_ratio"] = v.check_float("l1_ratio", options["l1_ratio"], 0.0, 1.0)
            # The schedule's own checks (a name, a Schedule, a callable) before any training.
            make_schedule(options["schedule"], getattr(options["optimizer"], "lr", None), 1)
        except (ValueError, TypeError) as exc:
            raise _config_error(index, exc) from exc
        out.append(options)
    return out


def _spec_of(problem, options):
    """``problem.spec`` with the configuration's penalty, re-expressed as ``prepare`` does on
    a standardised target (:func:`~fastopt.engine.scaled_penalty`)."""
    alpha, l1_ratio = options["alpha"], options["l1_ratio"]
    if problem.target != (0.0, 1.0):
        alpha, l1_ratio = scaled_penalty(options["penalty"], alpha, l1_ratio, problem.target[1])
    return dataclasses.replace(problem.spec, penalty=options["penalty"], alpha=alpha,
                               l1_ratio=l1_ratio)


class Run:
    """One configuration in the group: its problem (the shared data with its penalty), state,
    schedule, monitor and, once it has stopped, why."""

    def __init__(self, index, options, problem, state):
        self.index = index
        self.options = options
        self.problem = problem
        self.state = state
        self.lr_of = None
        self.rates = None
        self.first = 0
        self.monitor = None
        self.data = None  # its own dataset, when the backend trains configurations one by one
        self.validation = None
        self.best = None
        self.error = None


def fit_many(X: ArrayLike, y: ArrayLike, configs: list[dict], *, model: str = "linear",
             optimizer="adam", lr: float | None = None, schedule: object = None,
             penalty: str | None = None, alpha: float = 1e-4, l1_ratio: float = 0.15,
             epochs: int = 20, batch_size: int | None = 256, shuffle: bool | str = True,
             fit_intercept: bool = True, sample_weight: ArrayLike | None = None,
             standardize: bool = False, tol: float | str | None = "auto",
             n_iter_no_change: int = 5,
             early_stopping: bool = False, validation_fraction: float = 0.1,
             random_state: int | np.random.Generator | None = None, backend: str = "auto",
             callback=None, verbose: int = 0, n_jobs: int | None = None,
             sparse_update: str = "exact",
             class_weight: str | dict | None = None,
             _prepared: tuple | None = None) -> list[FitManyResult]:
    """Fit several configurations of one model on the same data, shuffle and minibatches.

    ``fit_many(X, y, configs, **shared)[i]`` equals ``fastopt.fit(X, y, **shared,
    **configs[i])`` to the last bit (coefficients, intercepts and history losses), with
    ``random_state`` the same integer (or None: one seed drawn for all), but the rows of X are
    read once per epoch for all configurations instead of once per fit::

        results = fastopt.fit_many(X, y, [{"lr": lr} for lr in (1e-3, 1e-2, 1e-1)],
                                   model="logistic", optimizer="adam", epochs=5,
                                   random_state=0)

    Parameters
    ----------
    X, y : as in :func:`fastopt.fit`.
    configs : list of dicts, one per configuration, each setting any of :data:`CONFIG_KEYS`:
        ``optimizer`` (a name or an :class:`~fastopt.Optimizer`, with its hyperparameters),
        ``lr``, ``schedule``, ``penalty``, ``alpha``, ``l1_ratio``. What a dict leaves out comes
        from the keyword arguments of the same names.
    model, epochs, batch_size, shuffle, fit_intercept, sample_weight, standardize, tol,
    n_iter_no_change, early_stopping, validation_fraction, random_state, backend, verbose,
    n_jobs, sparse_update, class_weight : shared by every configuration, as in
        :func:`fastopt.fit`. ``tol`` applies to each configuration on its own: one that meets
        it (or diverges) stops and leaves the group, the others go on.
    callback : callable(entry: dict), as in :func:`fastopt.fit`, called after each epoch of
        each configuration with ``entry["config"]`` its index; returning False stops that
        configuration.

    Returns
    -------
    list of FitManyResult, one per configuration, in order. A configuration whose fit would
    raise :class:`~fastopt.DivergenceError` does not raise: its result's ``error`` holds the
    error and the result what the fit had (see :class:`FitManyResult`).

    Notes
    -----
    How the configurations are trained:

    - backend "cpp" (n_jobs=1, exact updates): one compiled epoch for all of them
      (``_core.run_many_epoch``), each minibatch's rows fetched from memory once: on dense
      linear and logistic data four rows at a time serve every configuration while in L1;
      otherwise configuration 1's update brings the minibatch into cache and the others
      read it there. Each history's ``seconds`` is the time of that shared epoch.
    - backend "numba": each minibatch's update of configuration 1, 2, ..., K in turn (its
      single-configuration epoch kernel, one update per call), the later ones finding the
      rows in cache.
    - backend "cpp" with n_jobs > 1 or ``sparse_update="lazy"`` on sparse X: the
      configurations go through the epochs together, each epoch one call of the backend's
      single-configuration epoch per configuration (the same results; no shared reads).
    - other backends ("numpy", "cuda"), and full-batch solvers (``"lbfgs"``,
      ``"newton-cg"``, ``"newton"``) as a configuration's optimizer: separate fits.

    Raises
    ------
    ValueError
        For bad input or options, as :func:`fastopt.fit`; for a bad configuration, with its
        index (``configs[2]: ...``).
    """
    check_training_options(epochs=epochs, batch_size=batch_size, tol=tol,
                           n_iter_no_change=n_iter_no_change,
                           validation_fraction=validation_fraction,
                           early_stopping=early_stopping, shuffle=shuffle, n_jobs=n_jobs,
                           sparse_update=sparse_update)
    v.check_choice("model", model, ("linear", "logistic", "softmax"))
    options = _configs(configs, dict(optimizer=optimizer, lr=lr, schedule=schedule,
                                     penalty=penalty, alpha=alpha, l1_ratio=l1_ratio))
    record = _backends.resolve(backend)
    seed = v.seed_from(random_state)
    shared = dict(model=model, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                  fit_intercept=fit_intercept, sample_weight=sample_weight,
                  standardize=standardize, tol=tol, n_iter_no_change=n_iter_no_change,
                  early_stopping=early_stopping, validation_fraction=validation_fraction,
                  random_state=seed, backend=record, callback=callback, verbose=verbose,
                  n_jobs=n_jobs, sparse_update=sparse_update, class_weight=class_weight)
    grouped = [i for i, o in enumerate(options) if isinstance(o["optimizer"], Optimizer)]
    results: list = [None] * len(options)
    if record.many_epoch is not None and grouped:
        first = options[grouped[0]]
        # _prepared: the (Problem, classes) these arguments give, made once by the caller
        # (compare's session, whose groups would each standardise X again: 0.18 s of its
        # 2.9 s on 1e6 x 100). The configurations' penalties replace the problem's below.
        problem, classes = _prepared or prepare(
            X, y, model=model, penalty=first["penalty"], alpha=first["alpha"],
            l1_ratio=first["l1_ratio"], fit_intercept=fit_intercept, sample_weight=sample_weight,
            standardize=standardize, backend=record, trains=True, class_weight=class_weight)
        runs = []
        for i in grouped:
            spec = _spec_of(problem, options[i])
            params = np.zeros(spec.n_params, dtype=problem.X.dtype)
            runs.append(Run(i, options[i], dataclasses.replace(problem, spec=spec),
                             new_state(options[i]["optimizer"], params, seed)))
        train_together(problem, runs, backend=record, **{
            k: shared[k] for k in ("epochs", "batch_size", "shuffle", "tol", "n_iter_no_change",
                                   "early_stopping", "validation_fraction", "callback",
                                   "verbose", "n_jobs", "sparse_update")})
        names = v.feature_names(X)
        for run in runs:
            results[run.index] = _result_of(run, problem, classes, names, shared)
    for i, config in enumerate(options):
        if results[i] is None:
            results[i] = _separate_fit(X, y, i, config, dict(shared))
    return results


def _separate_fit(X, y, index, config, shared):
    """Configuration ``index`` by :func:`fastopt.fit`, its DivergenceError kept in the
    result. Where ``fit`` keeps nothing (a loss that turned non-finite, a solver's failed line
    search), the result has the history of the epochs before and no coefficients (None)."""
    history = []
    user = _for_config(shared.pop("callback", None), index)

    def keep(entry):
        history.append({k: val for k, val in entry.items() if k != "params"})
        return None if user is None else user(entry)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitted = fit(X, y, **shared, **config, callback=keep)
            error = None
        except DivergenceError as exc:
            error = exc
            fitted = exc.result
            if fitted is None:
                fitted = FitResult(shared["model"], None, None, None, len(history), False,
                                   {key: [entry[key] for entry in history]
                                    for key in (history[0] if history else
                                                ("epoch", "loss", "lr", "seconds", "steps"))})
    for warning in caught:  # fit's ConvergenceWarning, naming the configuration
        warnings.warn(f"configs[{index}]: {warning.message}", warning.category, stacklevel=3)
    out = FitManyResult(**{f.name: getattr(fitted, f.name)
                           for f in dataclasses.fields(FitResult)}, error=error)
    if error is not None and error.result is not None:
        error.result = out
    return out


def _for_config(callback, index):
    """``callback`` for configuration ``index``'s Monitor: its entries carry the index."""
    if callback is None:
        return None
    return lambda entry: callback(dict(entry, config=index))


def train_together(problem, runs, *, backend, epochs, batch_size, shuffle, tol,
                    n_iter_no_change, early_stopping, validation_fraction, callback, verbose,
                    n_jobs, sparse_update):
    """The epochs of ``runs`` together: ``engine.train`` for each of them, step for step
    (the same learning-rate arrays, roll-backs and history entries), with their epochs run by
    the backend's ``many_epoch`` in one call where it can."""
    start_loss = zero_loss(problem)  # every run starts from zero parameters
    training, validation = problem, None
    if early_stopping:
        training, validation = split_validation(problem, validation_fraction,
                                                runs[0].state.seed, backend)
        validation.check_finite_now()
    n = training.n_samples
    batch = n if batch_size is None else min(batch_size, n)
    steps_per_epoch = -(-n // batch)
    threads = v.check_n_jobs(n_jobs)
    lazy = check_sparse_update(sparse_update, training) == "lazy"
    # what the compiled many_epoch does; otherwise each run's epochs, in turn
    together = threads == 1 and not lazy and backend.many_epoch is not None
    data = backend.dataset(training) if together else None
    for run in runs:
        run.problem = dataclasses.replace(training, spec=run.problem.spec)
        if not together:
            run.data = backend.dataset(run.problem)
        if validation is not None:
            run.validation = backend.dataset(dataclasses.replace(validation,
                                                                 spec=run.problem.spec))
        run.lr_of = make_schedule(run.options["schedule"], run.state.optimizer.lr,
                                  epochs * steps_per_epoch)
        run.monitor = Monitor(tol=stall_tol(tol), n_iter_no_change=n_iter_no_change,
                              callback=_for_config(callback, run.index), verbose=verbose,
                              validation=validation is not None, start_loss=start_loss)
    chunk = max(1, LR_CHUNK // steps_per_epoch)  # as engine.train computes the rates
    epoch_shuffle = shuffle if batch < n else False
    active = list(runs)
    for done in range(epochs):
        if not active:
            break
        lrs = []
        for run in active:
            state = run.state
            if done % chunk == 0:
                run.first = state.updates
                count = min(chunk, epochs - done) * steps_per_epoch
                run.rates = np.ascontiguousarray(
                    run.lr_of(np.arange(run.first, run.first + count)), dtype=np.float64)
            offset = state.updates - run.first
            lrs.append(run.rates[offset:offset + steps_per_epoch])
        saved = [(run.state.params.copy(),
                  {k: np.copy(a) for k, a in run.state.optimizer_state.items()})
                 for run in active]
        start = time.perf_counter()
        try:
            if together:
                outcomes = backend.many_epoch(data, [run.problem.spec for run in active],
                                              [run.state for run in active], np.stack(lrs),
                                              batch, epoch_shuffle)
            else:
                outcomes = [backend.epoch(run.data, run.state, rates, batch, epoch_shuffle,
                                          threads, lazy) for run, rates in zip(active, lrs)]
        except BaseException:  # Ctrl-C mid-epoch: every run as before the epoch
            for run, kept in zip(active, saved):
                _roll_back(run.state, kept)
            raise
        seconds = time.perf_counter() - start
        if not all(ok for _, _, ok, _ in outcomes):
            training.check_finite_now()  # bad input is a ValueError, not a divergence
        else:
            training.check_finite_later = False
        still = []
        for run, kept, rates, (loss, steps, ok, failed) in zip(active, saved, lrs, outcomes):
            state = run.state
            if not ok:
                _roll_back(state, kept)
                run.error = DivergenceError(
                    f"The training loss became non-finite at epoch {state.epochs + 1}, update "
                    f"{failed + 1} of {steps_per_epoch} (learning rate {rates[failed]:.3g}). "
                    "Try a smaller learning rate, or standardize=True if the features have "
                    "very different scales.")
                continue
            state.epochs += 1
            state.updates += steps
            entry = {"epoch": state.epochs, "loss": loss * training.loss_scale,
                     "lr": float(rates[steps - 1]), "seconds": seconds,
                     "steps": state.updates}
            if run.validation is not None:
                entry["val_loss"] = float(backend.objective(run.validation, state.params)[0]
                                          * training.loss_scale)
            stop = run.monitor.record(entry, state.params)
            if run.validation is not None and run.monitor.improved:
                run.best = state.params.copy()
            if not stop:
                still.append(run)
        active = still
    for run in runs:
        if run.best is not None:  # early stopping: the best parameters, as engine.solve
            run.state.params[...] = run.best


def _roll_back(state, kept):
    state.params[...] = kept[0]
    state.optimizer_state.clear()
    state.optimizer_state.update(kept[1])


def _result_of(run, problem, classes, feature_names, shared):
    """The run's :class:`FitManyResult`, its error, and ``fit``'s ConvergenceWarning."""
    monitor = run.monitor
    fitted = result(run.state.params, run.problem.spec, scaling=problem.scaling,
                    target=problem.target, classes=classes, history=monitor.history,
                    converged=monitor.converged, state=run.state, feature_names=feature_names)
    out = FitManyResult(**{f.name: getattr(fitted, f.name)
                           for f in dataclasses.fields(FitResult)}, error=run.error)
    diverged = None if run.error is not None else monitor.divergence()
    if diverged:
        out.error = DivergenceError(diverged, result=out)
    tol = shared["tol"]
    if (out.error is None and tol is not None and not monitor.converged
            and not monitor.interrupted):
        warnings.warn(f"configs[{run.index}]: "
                      + not_converged_message(shared["epochs"], tol, shared["n_iter_no_change"],
                                              monitor.history),
                      convergence_warning(), stacklevel=3)
    return out
