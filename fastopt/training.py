"""``fastopt.fit``: train a linear, logistic or softmax regression in one call.

The Python loop here is over epochs only; each epoch is one call into the chosen backend
(``fastopt._backends``), which shuffles, computes minibatch gradients, updates the parameters
and accumulates the running loss without coming back to Python.
"""

from __future__ import annotations

import functools
import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _backends
from . import _validation as v
from .newton import newton_fit
from .optim import Optimizer, make_optimizer
from .reference.models import MODELS, PENALTIES, ModelSpec
from .schedules import make_schedule

__all__ = ["fit", "FitResult", "DivergenceError", "ConvergenceWarning"]

class _OwnConvergenceWarning(UserWarning):
    """The fit reached its epoch budget before meeting ``tol``."""


@functools.cache
def convergence_warning():
    """The ``ConvergenceWarning`` class: scikit-learn's, the one its users already filter, when
    scikit-learn is installed. Looked up on first use: importing scikit-learn takes a second,
    which ``import fastopt`` should not pay."""
    try:
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:  # pragma: no cover - scikit-learn is optional
        return _OwnConvergenceWarning
    return ConvergenceWarning


def __getattr__(name):
    if name == "ConvergenceWarning":
        return convergence_warning()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DivergenceError(FloatingPointError):
    """The training loss or the parameters became NaN or infinite."""


@dataclass
class Problem:
    """Validated training data: X as given (C-contiguous float32/float64, never copied again;
    a numba device array when it came in GPU memory for backend="cuda"), y as float64 (targets,
    0/1 labels or class indices), weights with mean 1 or None, and the standardisation
    ``(x - mean) * inv_std`` or None.

    ``check_finite_later``: X has not been checked for NaN/inf yet. The compiled epochs check
    every minibatch gradient, and a NaN or inf anywhere in a row makes the gradient of its
    minibatch non-finite (x_j * r is NaN or inf for any finite r, and a floating-point sum never
    turns finite again), so the first complete epoch proves X finite at no cost; ``train``
    checks X only when an epoch fails, to raise the ValueError for bad input instead of the
    DivergenceError. The separate pass cost ~0.9x a shuffled epoch (W1, ``bench``)."""

    spec: ModelSpec
    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    mean: np.ndarray | None = None
    inv_std: np.ndarray | None = None
    check_finite_later: bool = False

    @property
    def n_samples(self):
        return v.n_rows(self.X)

    def subset(self, rows):
        weights = None if self.sample_weight is None else self.sample_weight[rows]
        if v.is_device_array(self.X):
            from ._cuda_backend import take_rows
            X = take_rows(self.X, rows)
        elif v.is_sparse(self.X):
            X = self.X[rows]
        else:
            X = np.ascontiguousarray(self.X[rows])
        return Problem(self.spec, X, self.y[rows], weights, self.mean, self.inv_std,
                       self.check_finite_later)

    def check_finite_now(self):
        """The NaN/inf check of X that ``check_finite_later`` put off, if it is still due."""
        if self.check_finite_later:
            v.assert_all_finite(self.X)
            self.check_finite_later = False


@dataclass
class TrainingState:
    """Everything that continues across epochs, ``partial_fit`` calls and warm starts."""

    params: np.ndarray
    optimizer: Optimizer
    optimizer_state: dict
    updates: int = 0  # the schedule's t
    epochs: int = 0   # shuffles drawn so far (the key of the next epoch's permutation)
    seed: int = 0


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    coef_ : ndarray, (n_features,) for linear, (1, n_features) for logistic, (K, n_features)
        for softmax — in the original feature space, also with ``standardize=True``.
    intercept_ : float (linear) or ndarray (1,) / (K,)
    classes_ : ndarray or None
    n_iter_ : int, epochs run
    converged : bool, whether ``tol`` was met (always False with ``tol=None``)
    history : dict of lists, one entry per epoch: ``epoch``, ``loss`` (mean training objective
        during the epoch), ``lr`` (learning rate of the epoch's last update), ``seconds`` (wall
        time of the epoch), ``steps`` (updates so far); ``val_loss`` with early stopping.
    feature_names_in_ : ndarray of str or None, the column names when X was a pandas or polars
        DataFrame.
    """

    model: str
    coef_: np.ndarray
    intercept_: object
    classes_: np.ndarray | None
    n_iter_: int
    converged: bool
    history: dict = field(default_factory=dict)
    state: TrainingState | None = field(default=None, repr=False)
    feature_names_in_: np.ndarray | None = None

    def decision_function(self, X) -> np.ndarray:
        X = v.check_X(X, check_finite=False)
        if X.shape[1] != self.coef_.shape[-1]:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with "
                             f"{self.coef_.shape[-1]} features.")
        with np.errstate(invalid="ignore"):  # inf * 0 in a bad row: the error comes below
            scores = np.asarray(X @ np.atleast_2d(self.coef_).T + self.intercept_)
        # NaN/inf in a row of X makes its scores non-finite (finite coefficients; inf * 0 is
        # NaN), so X needs its own pass only then: the pass cost ~2.7x the product.
        if not np.isfinite(scores).all():
            v.assert_all_finite(X)
        return scores.ravel() if self.model != "softmax" else scores

    def predict_proba(self, X) -> np.ndarray:
        if self.model == "linear":
            raise AttributeError("predict_proba is only available for classification models")
        scores = self.decision_function(X)
        return probabilities(self.model, scores)

    def predict(self, X):
        scores = self.decision_function(X)
        if self.model == "linear":
            return scores
        if self.model == "logistic":
            return self.classes_[(scores > 0).astype(np.intp)]
        return self.classes_[np.argmax(scores, axis=1)]


def probabilities(model, scores):
    if model == "logistic":
        p = np.empty_like(scores, dtype=np.float64)
        positive = scores >= 0
        e = np.exp(-np.abs(scores))
        p[positive] = 1.0 / (1.0 + e[positive])
        p[~positive] = e[~positive] / (1.0 + e[~positive])
        return np.column_stack([1.0 - p, p])
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Preparing the data

def inverse_std(mean, std):
    """1/std per feature, and 1 for a feature that does not vary (relative to its mean): such a
    feature is then only centred. Every way of computing the statistics ends here."""
    inv_std = np.ones_like(std)
    np.divide(1.0, std, out=inv_std, where=std > 1e-12 * np.maximum(np.abs(mean), 1.0))
    return inv_std


def column_scaling(X, sample_weight=None):
    """Per-feature mean and 1/std in float64, computed in row blocks (no copy of X); features
    with zero variance get 1/std = 1. With ``sample_weight`` (mean 1, as ``prepare`` makes it)
    a row of weight k counts as k copies of the row, and a zero weight as a removed row. A device
    X (backend="cuda") is scanned on the device.

    Raises the ValueError for NaN/inf in a dense host X: callers may skip that check of X
    (``check_X(check_finite=False)``) when they scale it."""
    if v.is_device_array(X):
        from ._cuda_backend import column_scaling as device_column_scaling
        return device_column_scaling(X, sample_weight)
    if v.is_sparse(X):
        return _sparse_column_scaling(X, sample_weight)
    n = len(X)
    if _backends._core is not None:
        # One pass over X in the compiled module (~3x faster than the NumPy passes below);
        # its results are non-finite wherever X is.
        mean, m2 = _backends._core.column_moments(X, sample_weight)
        std = np.sqrt(m2 / n)
        if np.all(np.isfinite(mean)) and np.all(np.isfinite(std)):
            return mean, inverse_std(mean, std)

    def weighted_sum(rows, values):
        return (values.sum(axis=0) if sample_weight is None
                else sample_weight[rows] @ values)

    def moments(unit=None):
        total = np.zeros(X.shape[1])
        for rows in v.row_blocks(X):
            block = np.asarray(X[rows], dtype=np.float64)
            total += weighted_sum(rows, block if unit is None else block / unit)
        mean = total / n if unit is None else total / n * unit
        squares = np.zeros(X.shape[1])
        for rows in v.row_blocks(X):
            centered = np.subtract(X[rows], mean, dtype=np.float64)
            if unit is not None:
                centered /= unit
            squares += weighted_sum(rows, centered * centered)
        std = np.sqrt(squares / n)
        return mean, std if unit is None else std * unit

    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = moments()
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        v.assert_all_finite(X)
        # Features too large to square (beyond ~1e150): summed divided by their largest
        # magnitude, then scaled back. Only then: it costs one more pass over X.
        peak = np.zeros(X.shape[1])
        for rows in v.row_blocks(X):
            np.maximum(peak, np.abs(np.asarray(X[rows], dtype=np.float64)).max(axis=0),
                       out=peak)
        mean, std = moments(np.where(peak > 1.0, peak, 1.0))
    return mean, inverse_std(mean, std)


def _sparse_column_scaling(X, sample_weight):
    """column_scaling of a CSR X from weighted first and second moments over the stored
    entries (the zeros contribute nothing to either sum)."""
    n = X.shape[0]
    s = np.ones(n) if sample_weight is None else sample_weight
    mean = np.asarray(X.T @ s, dtype=np.float64).ravel() / n
    squares = X.copy()
    squares.data = np.square(squares.data, dtype=np.float64)
    second = np.asarray(squares.T @ s, dtype=np.float64).ravel() / n
    std = np.sqrt(np.maximum(second - mean * mean, 0.0))
    return mean, inverse_std(mean, std)


def epochs_check_finite(backend):
    """Whether ``backend``'s epochs stop at the first non-finite minibatch gradient without
    warnings, so that they can stand in for the NaN/inf check of X (the NumPy reference gets
    there too, but through NumPy's RuntimeWarnings)."""
    return _backends.resolve(backend) in ("cpp", "numba")


def prepare(X, y, *, model, penalty, alpha, l1_ratio, fit_intercept, sample_weight, standardize,
            classes=None, X_checked=False, allow_device=False, backend=None):
    """Validate and encode; returns ``(Problem, classes)``. ``allow_device``: accept X in GPU
    memory (for backend="cuda"), kept there. ``backend``: the fit's backend, given where the
    caller trains with ``train``: then the NaN/inf check of a dense host X is left to the
    training epochs of the compiled backends (``Problem.check_finite_later``). With
    ``standardize``, ``column_scaling`` checks X as it scans it."""
    v.check_choice("model", model, MODELS)
    v.check_choice("penalty", penalty, PENALTIES)
    alpha = v.check_float("alpha", alpha, 0.0)
    l1_ratio = v.check_float("l1_ratio", l1_ratio, 0.0, 1.0)
    # The NaN/inf check of a dense host X comes free with the scaling (column_scaling, below)
    # or else with the training epochs (Problem.check_finite_later).
    free_check = standardize or (backend is not None and epochs_check_finite(backend))
    X = X if X_checked else v.check_X(X, allow_device=allow_device, check_finite=not free_check)
    later = free_check and not X_checked and not standardize and isinstance(X, np.ndarray)
    n = v.n_rows(X)
    y = v.check_target(y, n, regression=model == "linear")
    if model == "linear":
        targets, n_outputs, classes = y, 1, None
    else:
        if classes is None:
            classes, targets = v.encode_labels(y)
        else:
            unknown = np.setdiff1d(np.unique(y), classes)
            if len(unknown):
                raise ValueError(f"y contains labels not in classes: {unknown.tolist()}")
            targets = np.searchsorted(classes, y).astype(np.float64)
        if model == "logistic" and len(classes) != 2:
            raise ValueError(f"model='logistic' needs exactly 2 classes, got {len(classes)}; "
                             "use model='softmax' for more")
        n_outputs = 1 if model == "logistic" else len(classes)
    weights = v.check_sample_weight(sample_weight, n)
    spec = ModelSpec(model, X.shape[1], n_outputs, bool(fit_intercept), penalty, alpha, l1_ratio)
    mean = inv_std = None
    if standardize:
        mean, inv_std = column_scaling(X, weights)
    return Problem(spec, X, np.ascontiguousarray(targets, dtype=np.float64), weights, mean,
                   inv_std, later), classes


def to_original_space(problem, params):
    """``(coef (K, d), intercept (K,))`` of the model on raw features."""
    coef, intercept = problem.spec.unpack(np.asarray(params, dtype=np.float64))
    coef, intercept = coef.copy(), intercept.copy()
    if problem.mean is not None:
        coef = coef * problem.inv_std
        intercept = intercept - coef @ problem.mean
    return coef, intercept


def from_original_space(problem, coef, intercept, dtype):
    """The flat parameter vector for ``problem`` from original-space coefficients."""
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(intercept, dtype=np.float64))
    if problem.mean is not None:
        intercept = intercept + coef @ problem.mean
        coef = coef / problem.inv_std
    parts = [coef.ravel()] + ([intercept] if problem.spec.fit_intercept else [])
    return np.ascontiguousarray(np.concatenate(parts), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# The epoch loop

class _Progress:
    """One line per epoch with verbose=1; quiet otherwise."""

    def __init__(self, verbose):
        self.verbose = verbose

    def epoch(self, entry):
        if self.verbose:
            extra = f", val_loss {entry['val_loss']:.6g}" if "val_loss" in entry else ""
            print(f"-- Epoch {entry['epoch']}: loss {entry['loss']:.6g}{extra}, lr "
                  f"{entry['lr']:.3g}, {entry['seconds'] * 1e3:.1f} ms, {entry['steps']} "
                  "updates", file=sys.stderr)


LR_CHUNK = 1 << 16  # learning rates computed at a time (updates)


def train(problem, state, *, schedule, epochs, batch_size, shuffle, tol, n_iter_no_change,
          validation=None, backend="auto", callback=None, verbose=0, total_steps=None,
          n_jobs=None, sparse_update="exact"):
    """Run up to ``epochs`` epochs on ``state`` (updated in place). Returns
    ``(history, converged, best_params, interrupted)``: ``best_params`` is set with validation,
    ``interrupted`` when the callback stopped the fit.

    Raises DivergenceError when the loss or parameters turn non-finite; ``state`` is then left
    as it was after the last good epoch, as it is when an epoch is interrupted (Ctrl-C). A
    ``problem`` whose X is still to be checked (``check_finite_later``) gets the ValueError for
    NaN/inf in X instead where that was the cause.
    """
    n = problem.n_samples
    batch = n if batch_size is None else min(batch_size, n)
    steps_per_epoch = -(-n // batch)
    run_epoch = _backends.epoch_function(backend)
    objective = _backends.objective_function(backend)
    threads = v.check_n_jobs(n_jobs)
    lazy = check_sparse_update(sparse_update, problem) == "lazy"
    lr_of = make_schedule(schedule, state.optimizer.lr,
                          total_steps or epochs * steps_per_epoch)
    history = {"epoch": [], "loss": [], "lr": [], "seconds": [], "steps": []}
    if validation is not None:
        history["val_loss"] = []
    progress = _Progress(verbose)
    if validation is not None:  # its rows are never trained on
        validation.check_finite_now()
    best, stall, converged, best_params, interrupted = math.inf, 0, False, None, False
    # The learning rates of several epochs at once: a schedule call costs more than a short
    # epoch (e.g. 10,000 rows in batches of 32).
    chunk = max(1, LR_CHUNK // steps_per_epoch)
    rates, first = None, None
    for done in range(epochs):
        if done % chunk == 0:
            first = state.updates
            count = min(chunk, epochs - done) * steps_per_epoch
            rates = np.ascontiguousarray(lr_of(np.arange(first, first + count)),
                                         dtype=np.float64)
        offset = state.updates - first
        lrs = rates[offset:offset + steps_per_epoch]
        saved = (state.params.copy(), {k: np.copy(a) for k, a in state.optimizer_state.items()})

        def roll_back():
            state.params[...] = saved[0]
            state.optimizer_state.clear()
            state.optimizer_state.update(saved[1])

        start = time.perf_counter()
        try:
            loss, steps, ok, failed = run_epoch(problem, state, lrs, batch,
                                                shuffle if batch < n else False, threads, lazy)
        except BaseException:  # Ctrl-C (or any error) mid-epoch: as before the epoch
            roll_back()
            raise
        seconds = time.perf_counter() - start
        if not ok:
            roll_back()
            problem.check_finite_now()  # bad input is a ValueError, not a divergence
            raise DivergenceError(
                f"The training loss became non-finite at epoch {state.epochs + 1}, update "
                f"{failed + 1} of {steps_per_epoch} (learning rate {lrs[failed]:.3g}). Try a "
                "smaller learning rate, or standardize=True if the features have very "
                "different scales.")
        problem.check_finite_later = False  # every row's gradient was finite
        state.epochs += 1
        state.updates += steps
        entry = {"epoch": state.epochs, "loss": loss, "lr": float(lrs[steps - 1]),
                 "seconds": seconds, "steps": state.updates}
        monitored = loss
        if validation is not None:
            entry["val_loss"] = float(objective(validation, state.params)[0])
            monitored = entry["val_loss"]
        for key, value in entry.items():
            history[key].append(value)
        progress.epoch(entry)
        if tol is not None or validation is not None:
            threshold = best - (tol or 0.0)
            if monitored < best and validation is not None:
                best_params = state.params.copy()
            if monitored > threshold:
                stall += 1
            else:
                stall = 0
            best = min(best, monitored)
            if stall >= n_iter_no_change:
                converged = True
        if callback is not None and callback(dict(entry, params=state.params)) is False:
            interrupted = True
            break
        if converged:
            break
    return history, converged, best_params, interrupted


SPARSE_UPDATES = ("exact", "lazy")


def check_sparse_update(sparse_update, problem=None):
    """``sparse_update`` checked; "lazy" applies to sparse X without standardisation (dense
    X always gets exact updates: every coordinate of its gradient is non-zero anyway)."""
    v.check_choice("sparse_update", sparse_update, SPARSE_UPDATES)
    if sparse_update == "lazy" and problem is not None:
        if problem.mean is not None and v.is_sparse(problem.X):
            raise ValueError("sparse_update='lazy' needs standardize=False: centring the "
                             "features makes every coordinate of the gradient non-zero")
        if not v.is_sparse(problem.X):
            return "exact"
    return sparse_update


def check_training_options(*, epochs, batch_size, tol, n_iter_no_change, validation_fraction,
                           early_stopping, shuffle=True):
    v.check_int("epochs", epochs, 1)
    v.check_int("batch_size", batch_size, 1, allow_none=True)
    v.check_float("tol", tol, 0.0, allow_none=True)
    v.check_int("n_iter_no_change", n_iter_no_change, 1)
    v.check_float("validation_fraction", validation_fraction, 0.0, 1.0, low_open=True)
    if validation_fraction >= 1.0:
        raise ValueError("validation_fraction must be < 1")
    if not isinstance(early_stopping, (bool, np.bool_)):
        raise ValueError(f"early_stopping must be True or False, got {early_stopping!r}")
    if not (isinstance(shuffle, (bool, np.bool_)) or (isinstance(shuffle, str)
                                                     and shuffle == "batches")):
        raise ValueError(f"shuffle must be True, False or 'batches', got {shuffle!r}")


def split_validation(problem, fraction, seed):
    """Hold out ``fraction`` of the rows (at least one), chosen by the seed."""
    n = problem.n_samples
    n_val = max(1, int(round(fraction * n)))
    if n - n_val < 1:
        raise ValueError(f"validation_fraction={fraction} leaves no training rows (n={n})")
    order = np.random.default_rng(seed).permutation(n)
    return problem.subset(np.sort(order[n_val:])), problem.subset(np.sort(order[:n_val]))


def fit(X: np.typing.ArrayLike, y: np.typing.ArrayLike, model: str = "linear",
        optimizer: str | Optimizer = "adam", lr: float | None = None, schedule: object = None,
        epochs: int = 20, batch_size: int | None = 256, shuffle: bool = True,
        penalty: str | None = None, alpha: float = 1e-4, l1_ratio: float = 0.15,
        fit_intercept: bool = True, sample_weight: np.typing.ArrayLike | None = None,
        standardize: bool = False, tol: float | None = 1e-4, n_iter_no_change: int = 5,
        early_stopping: bool = False, validation_fraction: float = 0.1,
        random_state: int | np.random.Generator | None = None, backend: str = "auto",
        callback=None, verbose: int = 0, n_jobs: int | None = None,
        sparse_update: str = "exact") -> FitResult:
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
        object, or ``"newton"`` (full-batch Newton's method; ``epochs`` = iterations).
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
        ``n_iter_no_change`` epochs; ``tol=None`` runs all epochs. Not meeting it warns with a
        ``ConvergenceWarning``.
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
                           early_stopping=early_stopping, shuffle=shuffle)
    v.check_n_jobs(n_jobs)
    check_sparse_update(sparse_update)
    problem, classes = prepare(X, y, model=model, penalty=penalty, alpha=alpha,
                               l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                               sample_weight=sample_weight, standardize=standardize,
                               allow_device=(v.is_device_array(X)
                                             and _backends.resolve(backend) == "cuda"),
                               backend=backend)
    seed = v.seed_from(random_state)
    dtype = problem.X.dtype
    params = np.zeros(problem.spec.n_params, dtype=dtype)
    if isinstance(optimizer, str) and optimizer.lower() == "newton":
        problem.check_finite_now()
        params, history, converged = newton_fit(problem, params, max_iter=epochs, tol=tol,
                                                backend=backend, callback=callback,
                                                verbose=verbose)
        state, interrupted = None, False
    else:
        opt = make_optimizer(optimizer, **({} if lr is None else {"lr": lr}))
        state = TrainingState(params, opt, opt.init(params), seed=seed)
        validation = None
        training = problem
        if early_stopping:
            training, validation = split_validation(problem, validation_fraction, seed)
        history, converged, best, interrupted = train(
            training, state, schedule=schedule, epochs=epochs, batch_size=batch_size,
            shuffle=shuffle, tol=tol, n_iter_no_change=n_iter_no_change,
            validation=validation, backend=backend, callback=callback, verbose=verbose,
            n_jobs=n_jobs, sparse_update=sparse_update)
        params = best if best is not None else state.params
    if tol is not None and not converged and not interrupted:
        warnings.warn(f"Maximum number of epochs ({epochs}) reached and the loss did not "
                      f"improve by less than tol={tol} for {n_iter_no_change} epochs; "
                      "consider increasing epochs.", convergence_warning(), stacklevel=2)
    coef, intercept = to_original_space(problem, params)
    if model == "linear":
        coef, intercept = coef[0], float(intercept[0])
    return FitResult(model, coef, intercept, classes, len(history["loss"]), converged,
                     history, state, v.feature_names(X))
