"""``fastopt.fit``: train a linear, logistic or softmax regression in one call.

A front end of :mod:`fastopt.engine`: the Python loop is over epochs only; each epoch is one
call into the backend chosen once for the fit (``fastopt._backends.resolve``), which shuffles,
computes minibatch gradients, updates the parameters and accumulates the running loss without
coming back to Python.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike

from . import _backends
from . import _validation as v
from .optim import Optimizer
from .solvers import LBFGS, NewtonCG
from .engine import (DivergenceError, FitResult, check_training_options, convergence_warning,
                     new_state, not_converged_message, optimizer_from, prepare, result, solve)

__all__ = ["fit", "FitResult", "DivergenceError", "ConvergenceWarning"]


def __getattr__(name):
    if name == "ConvergenceWarning":
        return convergence_warning()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fit(X: ArrayLike, y: ArrayLike, model: str = "linear",
        optimizer: str | Optimizer | LBFGS | NewtonCG = "adam", lr: float | None = None,
        schedule: object = None, epochs: int = 20, batch_size: int | None = 256,
        shuffle: bool | str = True, penalty: str | None = None, alpha: float = 1e-4,
        l1_ratio: float = 0.15, fit_intercept: bool = True,
        sample_weight: ArrayLike | None = None, standardize: bool = False,
        tol: float | str | None = "auto", n_iter_no_change: int = 5, early_stopping: bool = False,
        validation_fraction: float = 0.1,
        random_state: int | np.random.Generator | None = None, backend: str = "auto",
        callback=None, verbose: int = 0, n_jobs: int | None = None,
        sparse_update: str = "exact", class_weight: str | dict | None = None) -> FitResult:
    """Fit a linear, logistic or softmax regression with a first-order optimizer.

    Parameters
    ----------
    X : array-like (n_samples, n_features). A C-contiguous float32/float64 array is used as is
        (float32 trains in float32 with float64 accumulation); anything else is converted once.
        With ``backend="cuda"``, X may also be in GPU memory (a numba device array, or anything
        with ``__cuda_array_interface__``: CuPy, PyTorch); it is used there without a copy.
    y : array-like (n_samples,): targets (linear) or class labels of any type.
    model : {"linear", "logistic", "softmax"}
    optimizer : str or Optimizer. A name of ``fastopt.OPTIMIZERS`` (with ``lr``), an optimizer
        object, or a solver that reaches the optimum (``epochs`` = its iterations):
        ``"lbfgs"``, ``"newton-cg"``, ``"saga"`` (or their option objects), ``"newton"``
        (explicit Hessian), or ``"auto"`` (the estimators' default: L-BFGS, SAGA for l1 and
        elasticnet). The default stays ``"adam"`` here: ``fit`` is the call for training with
        a first-order optimizer and a schedule; the estimators are the call for the model.
    lr : float, optional. The learning rate; default: the optimizer's own.
    schedule : None, str, Schedule or callable ``f(t_array) -> lr_array``; t counts updates.
    epochs : int, passes over the data.
    batch_size : int or None (full-batch gradient descent).
    shuffle : True, False or "batches". True: visit the rows in a new uniformly random order
        each epoch (``fastopt.reference.shuffle``). "batches": cheaper, but not a shuffle of
        the rows: X is cut into blocks of ``batch_size`` consecutive rows, and only the order
        of the blocks is shuffled each epoch, so every epoch's minibatches hold the same rows
        (the last, shorter block aside). Reading X in runs of rows instead of single random
        rows made epochs on X larger than cache 1.1-1.5x faster (``bench/README.md``); use
        it when the rows are in no particular order already (shuffle X once beforehand if
        unsure).
    penalty : {None, "l2", "l1", "elasticnet"}, with ``alpha`` and ``l1_ratio``.
    fit_intercept : bool
    sample_weight : array-like (n_samples,), optional; rescaled to mean 1.
    standardize : bool. Train on ``(x - mean) / std`` computed on the fly (X is not copied);
        coefficients are reported on the original features.
    tol, n_iter_no_change : stop when the monitored loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs (``"auto"``: 1e-4); ``tol=None`` runs all epochs. For the
        solvers, a number is the gradient's max-norm and ``"auto"`` an estimated relative
        distance to the optimum of 1e-7 (see :class:`fastopt.LogisticRegression`). Not meeting
        it warns with a ``ConvergenceWarning``.
    early_stopping, validation_fraction : monitor the loss on a held-out fraction instead of
        the training loss, and return the best parameters seen.
    random_state : None, int or numpy Generator: the shuffle and the validation split.
    backend : {"auto", "cpp", "numba", "numpy", "cuda"}; "auto" never picks "cuda"
    callback : callable(entry: dict) called after each epoch with the history entry and
        ``params``, the flat parameter vector (``[W.ravel(), b]``, in the standardized space
        with ``standardize=True``; a view, copy it to keep it); returning False stops.
    verbose : int; 1 prints one line per epoch to stderr.
    n_jobs : None (1), int, or -1 for every CPU: threads per epoch. Each minibatch is split
        into ``n_jobs`` contiguous row ranges summed on their own and added in a fixed order,
        so results are reproducible for a given ``n_jobs`` and differ between values only by
        rounding (the cpp backend runs the ranges in parallel, numba one after another with
        the same bits; worth it for batches of a few hundred rows and more).

    sparse_update : "exact" (default) or "lazy", for SciPy sparse X (trained as CSR, never
        densified). "exact": every coordinate takes the full optimizer step at every update,
        as with dense X. "lazy": an update changes only the coefficients of the columns with
        entries in its minibatch (and the intercepts), parameters and optimizer state alike,
        which costs O(entries) instead of O(features) per update. Per optimizer:

        - SGD without momentum and Adagrad, with no penalty and no weight decay: the same
          result as "exact" (the other coordinates have a zero gradient and would not move).
        - SGD without momentum or weight decay, with an L2 penalty (``penalty="l2"``, or
          elasticnet with ``l1_ratio=0``): the penalty shrinks every coefficient at every
          update, as in "exact", through the scaled-weight trick (``W = scale * U``; an update
          multiplies ``scale`` by ``1 - lr * alpha`` and moves ``U`` on the active columns
          only), so the result equals "exact" up to rounding at O(entries) per update. An
          epoch where some ``lr * alpha >= 1`` runs "exact".
        - Otherwise a penalty (and its gradient) applies to the active coefficients only; for
          momentum, RMSprop, Adadelta and the Adam family the other coordinates keep their
          state and parameters frozen instead of coasting on their moments, as
          ``torch.optim.SparseAdam`` does for Adam.

        Lazy pays off when a minibatch touches a small share of the columns: its active
        coordinates are gathered and put back at random places, where "exact" streams through
        all of them in order (on 256 rows x 50 entries of 100,000 columns, lazy and exact
        Adam take about the same time; ``python -m bench --only S1``).

        Needs ``standardize=False``; ignored for dense X; runs on one thread.

    class_weight : None, "balanced" or dict, for logistic and softmax models: each row's
        weight multiplied by its class's, as in scikit-learn ("balanced": class k weighs
        ``n / (K * n_k)``; a dict maps labels to weights, absent labels weigh 1).

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        For bad input: NaN or inf in X, y or sample_weight, wrong shapes, bad options. The
        compiled backends find NaN/inf in a dense X as the first epoch (or the statistics of
        ``standardize=True``) reads it, not in a pass of its own, which cost ~0.9x an epoch:
        the error can then come after some updates, and nothing is returned.
    DivergenceError
        When the loss turns non-finite; the message names the epoch, update and learning rate.
    """
    check_training_options(epochs=epochs, batch_size=batch_size, tol=tol,
                           n_iter_no_change=n_iter_no_change,
                           validation_fraction=validation_fraction,
                           early_stopping=early_stopping, shuffle=shuffle, n_jobs=n_jobs,
                           sparse_update=sparse_update)
    record = _backends.resolve(backend)
    opt = optimizer_from(optimizer, lr)
    problem, classes = prepare(X, y, model=model, penalty=penalty, alpha=alpha,
                               l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                               sample_weight=sample_weight, standardize=standardize,
                               backend=record, trains=opt is not None,
                               class_weight=class_weight)
    params = np.zeros(problem.spec.n_params, dtype=problem.X.dtype)
    state = (new_state(opt, params, v.seed_from(random_state)) if isinstance(opt, Optimizer)
             else None)
    params, history, converged, state, interrupted, diverged, grad_max = solve(
        problem, params, backend=record, optimizer=opt, state=state, schedule=schedule,
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, tol=tol,
        n_iter_no_change=n_iter_no_change, early_stopping=early_stopping,
        validation_fraction=validation_fraction, callback=callback, verbose=verbose,
        n_jobs=n_jobs, sparse_update=sparse_update)
    fitted = result(params, problem.spec, scaling=problem.scaling, target=problem.target,
                    classes=classes, history=history, converged=converged, state=state,
                    feature_names=v.feature_names(X), grad_max=grad_max)
    if diverged:
        raise DivergenceError(diverged, result=fitted)
    if tol is not None and not converged and not interrupted:
        warnings.warn(not_converged_message(epochs, tol, n_iter_no_change, history),
                      convergence_warning(), stacklevel=2)
    return fitted
