"""The training engine that every front end (``fit``, the estimators, ``fit_stream``,
``fastopt.dask``) runs on.

- :func:`prepare` checks and encodes the data once per fit into a :class:`Problem`, with the
  backend record resolved once (``fastopt._backends.resolve``);
- :class:`Monitor` is the one epoch loop's bookkeeping: history, progress lines, ``tol`` and
  ``n_iter_no_change``, callbacks;
- :func:`train` runs first-order epochs on a :class:`TrainingState`, one compiled call per
  epoch;
- :func:`solve` is a whole fit (Newton's method, or first-order epochs with early stopping);
- :func:`result` puts the parameters back on the original features as a :class:`FitResult`.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import _backends
from . import _validation as v
from . import _scaling
from ._scaling import target_units
from .newton import MAX_PARAMS as NEWTON_MAX_PARAMS, SampledHessian, newton_fit
from .newton import hessian as newton_hessian
from .optim import Optimizer, make_optimizer
from .reference.models import MODELS, PENALTIES, ModelSpec
from .schedules import make_schedule
from .reference import saga as _saga
from .reference.models import penalty as _penalty
from .solvers import (AUTO_GAP, SAGA_AUTO_TOL, SOLVERS, LBFGS, ConjugateGradient, NewtonCG,
                      SAGA, compiled_lbfgs, conjugate_gradient)

__all__ = ["Problem", "TrainingState", "FitResult", "DivergenceError", "prepare", "train",
           "solve", "result", "Monitor"]


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


def not_converged_message(epochs, tol, n_iter_no_change, history=None):
    """The ConvergenceWarning's text when ``epochs`` ran without meeting ``tol``, with how far
    the fit got when its ``history`` is given."""
    history = history or {}
    losses = history.get("loss", [])
    if history.get("change"):  # SAGA: tol is the relative change of the parameters
        return (f"Maximum number of epochs ({epochs}) reached before the parameters' largest "
                f"change in an epoch, relative to the largest parameter, fell to "
                f"tol={SAGA_AUTO_TOL if tol == 'auto' else tol}: it is "
                f"{history['change'][-1]:.3g}, the loss {losses[-1]:.6g}; consider "
                "increasing epochs.")
    if tol == "auto" and history.get("gap"):
        return (f"Maximum number of epochs ({epochs}) reached before the estimated relative "
                f"distance to the optimum fell to {AUTO_GAP:g}: it is "
                f"{history['gap'][-1]:.3g}, the gradient's largest entry "
                f"{history['grad_max'][-1]:.3g}, the loss {losses[-1]:.6g}; consider "
                "increasing epochs.")
    tol = stall_tol(tol)
    if history.get("grad_max"):  # a full-batch solver: tol is the gradient's
        return (f"Maximum number of epochs ({epochs}) reached before the gradient's largest "
                f"entry fell to tol={tol}: it is {history['grad_max'][-1]:.3g}, the loss "
                f"{losses[-1]:.6g}; consider increasing epochs.")
    where = ""
    if len(losses) > n_iter_no_change:
        where = (f"; over the last {n_iter_no_change} epochs it went from "
                 f"{losses[-1 - n_iter_no_change]:.6g} to {losses[-1]:.6g}")
    return (f"Maximum number of epochs ({epochs}) reached while the loss was still improving "
            f"by more than tol={tol} within {n_iter_no_change} epochs{where}; consider "
            "increasing epochs.")


class DivergenceError(FloatingPointError):
    """The training loss or the parameters became NaN or infinite, or the loss diverged while
    finite (:class:`Monitor`). ``result``: for a finite divergence, the :class:`FitResult` the
    fit ended with (its history shows how the loss went), else None."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


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
    target: tuple = (0.0, 1.0)  # the linear target as trained: (y - center) / scale

    @property
    def n_samples(self):
        return v.n_rows(self.X)

    @property
    def scaling(self):
        """``(mean, inv_std)`` of the features, ``(None, None)`` without standardisation."""
        return self.mean, self.inv_std

    @property
    def loss_scale(self):
        """The factor from the trained objective to the objective in the target's units."""
        return self.target[1] ** 2

    def subset(self, rows, backend):
        weights = None if self.sample_weight is None else self.sample_weight[rows]
        return Problem(self.spec, backend.take_rows(self.X, rows), self.y[rows], weights,
                       self.mean, self.inv_std, self.check_finite_later, self.target)

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
    """What :func:`fastopt.fit` returns.

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
    grad_max_ : float or None, the largest entry of the objective's gradient at the returned
        parameters, in the space the fit trains in (standardised features, and target for a
        linear model): 0 at the optimum, so it says how far from it a fit stopped. From the
        solvers (``"auto"``, ``"lbfgs"``, ``"newton-cg"``, ``"newton"``) only: a first-order
        fit would pay a pass over X for it (None), as would an l1 or elasticnet penalty, which
        is not differentiable.
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
    grad_max_: float | None = None

    def decision_function(self, X):
        X = v.check_X(X, check_finite=False)
        if X.shape[1] != self.coef_.shape[-1]:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with "
                             f"{self.coef_.shape[-1]} features.")
        return v.checked_scores(X, np.atleast_2d(self.coef_), self.intercept_,
                                ravel=self.model != "softmax")

    def predict_proba(self, X):
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

def prepare(X, y, *, model, penalty, alpha, l1_ratio, fit_intercept, sample_weight,
            backend="auto", standardize=False, scaling=None, target=None, classes=None,
            X_checked=False, trains=False, weight_mean=None, class_weight=None):
    """Validate and encode; returns ``(Problem, classes)``.

    ``backend``: the fit's :class:`~fastopt._backends.Backend` (or its name). It takes X in GPU memory when
    it has a device check (CUDA), and with ``trains`` (the problem goes to ``train`` or to a
    solver, not Newton's method) and epochs that check minibatch gradients, the NaN/inf check
    of a dense host X is left to the epochs or the solver's first objective
    (``Problem.check_finite_later``). ``standardize``: compute the standardisation
    (the backend's ``column_scaling``, which checks X as it scans it); ``scaling``: use this
    ``(mean, inv_std)`` instead (a ``partial_fit`` continuing a fit). A linear model with
    ``standardize`` trains on its target standardised too (:func:`target_scaling`, or
    ``target=(center, scale)`` given), with the penalty re-expressed so that the optimum is
    that of the original problem (:func:`scaled_penalty`). ``X_checked``: X was
    validated by the caller (scikit-learn's ``validate_data``), possibly without the NaN/inf
    check, which is then due as above. ``weight_mean``: the mean sample weight of the whole
    data set these rows are a part of (a chunk of a stream); the weights are divided by it
    instead of being rescaled to mean 1 over these rows. ``class_weight`` (classifiers):
    :func:`class_weights`, multiplying ``sample_weight``."""
    backend = _backends.resolve(backend)
    v.check_choice("model", model, MODELS)
    v.check_choice("penalty", penalty, PENALTIES)
    alpha = v.check_float("alpha", alpha, 0.0)
    l1_ratio = v.check_float("l1_ratio", l1_ratio, 0.0, 1.0)
    # The NaN/inf check of a dense host X comes free with the scaling (column_scaling, below)
    # or else with the training epochs (Problem.check_finite_later).
    scales = standardize and scaling is None
    epochs_check = trains and backend.checks_finite
    if not X_checked:
        X = v.check_X(X, check_device=backend.check_device_X,
                      check_finite=not (scales or epochs_check))
    later = isinstance(X, np.ndarray) and not scales and epochs_check
    n = v.n_rows(X)
    y = v.check_target(y, n, regression=model == "linear")
    if model == "linear":
        targets, n_outputs, classes = y, 1, None
    else:
        if classes is None:
            classes, targets = v.encode_labels(y)
        else:
            targets = v.class_indices(y, classes)
        if model == "logistic" and len(classes) != 2:
            raise ValueError(f"model='logistic' needs exactly 2 classes, got {len(classes)}; "
                             "use model='softmax' for more")
        n_outputs = 1 if model == "logistic" else len(classes)
    if class_weight is not None:
        if model == "linear":
            raise ValueError("class_weight applies to classification models (logistic, "
                             "softmax), not to model='linear'")
        per_row = class_weights(class_weight, classes, targets)
        sample_weight = (per_row if sample_weight is None
                         else v.check_sample_weight(sample_weight, n) * per_row)
    weights = v.check_sample_weight(sample_weight, n, weight_mean)
    standardized = scales or (scaling is not None and scaling[0] is not None)
    if target is None:
        target = (target_scaling(targets, weights, bool(fit_intercept),
                                 backend.column_scaling)
                  if model == "linear" and standardized else (0.0, 1.0))
    center, scale = target
    if (center, scale) != (0.0, 1.0):
        targets = (targets - center) / scale
        alpha, l1_ratio = scaled_penalty(penalty, alpha, l1_ratio, scale)
    # Centred features and a centred target put the optimal intercept at exactly 0 (its
    # gradient is the mean residual, which is the intercept itself), so it is not trained: it
    # would only move with the rounding of the means, which Adam's normalised steps magnify
    # (weights vs. repeated rows differed by 2e-5). The reported intercept comes from the
    # centring, as in glmnet.
    trains_intercept = bool(fit_intercept) and not (model == "linear" and standardized)
    spec = ModelSpec(model, X.shape[1], n_outputs, trains_intercept, penalty, alpha, l1_ratio)
    mean, inv_std = (None, None) if scaling is None else scaling
    if scales:
        mean, inv_std = backend.column_scaling(X, weights)
    return Problem(spec, X, np.ascontiguousarray(targets, dtype=np.float64), weights, mean,
                   inv_std, later, (float(center), float(scale))), classes


def class_weights(class_weight, classes, targets):
    """The weight of each row from its class, as scikit-learn defines ``class_weight``:
    ``"balanced"`` gives class k the weight ``n / (K * n_k)`` (every class then weighs as
    much in the loss), a dict maps labels to weights (absent labels weigh 1)."""
    indices = targets.astype(np.intp)
    if isinstance(class_weight, str) and class_weight == "balanced":
        counts = np.bincount(indices, minlength=len(classes)).astype(np.float64)
        per_class = np.divide(len(indices), len(classes) * counts, out=np.zeros_like(counts),
                              where=counts > 0)
    elif isinstance(class_weight, dict):
        unknown = [label for label in class_weight if label not in set(classes.tolist())]
        if unknown:
            raise ValueError(f"class_weight has labels that are not classes of y: {unknown}; "
                             f"the classes are {classes.tolist()}")
        per_class = np.ones(len(classes))
        for position, label in enumerate(classes.tolist()):
            per_class[position] = class_weight.get(label, 1.0)
        if not np.all(np.isfinite(per_class)) or (per_class < 0).any():
            raise ValueError(f"class_weight values must be finite and >= 0, got {class_weight}")
    else:
        raise ValueError(f"class_weight must be None, 'balanced' or a dict of label: weight, "
                         f"got {class_weight!r}")
    return per_class[indices]


def target_scaling(y, weights=None, center=True, column_scaling=None):
    """``(center, scale)`` of a linear model's target (:func:`fastopt._scaling.target_units`
    of its weighted mean and variance), from the backend's ``column_scaling`` of y as one
    column: the features' statistics, whose compiled pass sums in a fixed order, where a BLAS
    dot product picks its kernel by CPU. (It does not make aarch64 equal x86-64 to the bit:
    ``.ci/wheels aarch64`` finds the linear fits an ulp apart, 1.1e-13 at most.) Adaptive
    optimizers move each parameter by about ``lr`` per update, so a target in the thousands
    (prices, counts) took thousands of epochs on the raw scale."""
    scaling = column_scaling or _scaling.column_scaling
    mean, inv_std = scaling(np.ascontiguousarray(y, dtype=np.float64).reshape(-1, 1), weights)
    # inv_std is 1 for a target that does not vary; target_units then keeps the scale at 1.
    return target_units(float(mean[0]), float(1.0 / inv_std[0]) ** 2, center)


def scaled_penalty(penalty, alpha, l1_ratio, scale):
    """``(alpha, l1_ratio)`` on a target divided by ``scale`` whose optimum, scaled back, is
    the original problem's: the squared loss shrinks by ``scale**2``, the coefficients by
    ``scale``, so the L2 part keeps its strength and the L1 part is divided by ``scale``."""
    if penalty is None or alpha == 0:
        return alpha, l1_ratio
    l1 = {"l1": 1.0, "l2": 0.0, "elasticnet": l1_ratio}[penalty]
    l1_part, l2_part = alpha * l1 / scale, alpha * (1.0 - l1)
    total = l1_part + l2_part
    if penalty == "elasticnet":
        return total, (l1_part / total if total > 0 else l1_ratio)
    return total, l1_ratio


def to_original_space(params, spec, scaling=(None, None), target=(0.0, 1.0)):
    """``(coef (K, d), intercept (K,))`` of the model on raw features and target."""
    mean, inv_std = scaling
    coef, intercept = spec.unpack(np.asarray(params, dtype=np.float64))
    coef, intercept = coef.copy(), intercept.copy()
    if mean is not None:
        coef = coef * inv_std
        intercept = intercept - coef @ mean
    center, scale = target
    return coef * scale, intercept * scale + center


def from_original_space(problem, coef, intercept, dtype):
    """The flat parameter vector for ``problem`` from original-space coefficients."""
    center, scale = problem.target
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64)) / scale
    intercept = (np.atleast_1d(np.asarray(intercept, dtype=np.float64)) - center) / scale
    if problem.mean is not None:
        intercept = intercept + coef @ problem.mean
        coef = coef / problem.inv_std
    parts = [coef.ravel()] + ([intercept] if problem.spec.fit_intercept else [])
    return np.ascontiguousarray(np.concatenate(parts), dtype=dtype)


def result(params, spec, *, scaling=(None, None), target=(0.0, 1.0), classes=None, history,
           converged, state=None, feature_names=None, grad_max=None):
    """The :class:`FitResult` of ``params``, on the original features and target."""
    coef, intercept = to_original_space(params, spec, scaling, target)
    if spec.model == "linear":
        coef, intercept = coef[0], float(intercept[0])
    return FitResult(spec.model, coef, intercept, classes, len(history["loss"]), converged,
                     history, state, feature_names, grad_max)


def _gradient_max(problem, data, params, backend):
    """The largest entry of the objective's gradient at ``params`` (what ``grad_max_``
    reports), one pass over X; None for a penalty that is not differentiable."""
    spec = problem.spec
    if spec.penalty in ("l1", "elasticnet") and spec.alpha > 0:
        return None
    _, grad = backend.objective(data, params)
    return float(np.max(np.abs(grad), initial=0.0))


# ---------------------------------------------------------------------------------------------
# The epoch loop

def new_history(validation=False):
    history = {"epoch": [], "loss": [], "lr": [], "seconds": [], "steps": []}
    if validation:
        history["val_loss"] = []
    return history


# A fit whose training loss rose above this many times its value at the start, or ended
# above DIVERGENCE_END times it, has diverged. The epoch losses are running means over the
# minibatches, so a fit near an optimum close to the start (random labels: log 2) can end a
# few percent above it by noise alone; a diverging one ends far above (breast cancer at
# lr=100: 45 against 0.69) or grows by orders of magnitude.
DIVERGENCE_GROWTH = 1e3
DIVERGENCE_END = 2.0


def zero_loss(problem):
    """The training objective with every coefficient and intercept zero, in the target's
    units, without a pass over X: the scores are all zero."""
    spec = problem.spec
    if spec.model == "logistic":
        return math.log(2.0)
    if spec.model == "softmax":
        return math.log(spec.n_outputs)
    w, y = problem.sample_weight, problem.y
    # A dot product: np.square(y).mean() allocated n floats (0.14 ms of a 22 ms W1 fit).
    squares = float(y @ y if w is None else (w * y) @ y) / len(y)
    return 0.5 * squares * problem.loss_scale


class Monitor:
    """What happens after every epoch of every front end: the entry goes into ``history``, a
    line to stderr with ``verbose``, the ``tol`` test (the monitored loss, ``val_loss`` when
    present, has not improved by ``tol`` for ``n_iter_no_change`` epochs: ``converged``), and
    the callback (returning False: ``interrupted``). :meth:`record` says whether to stop.

    The divergence rule, ``fastopt compare``'s with a margin for the noise of running losses:
    with ``start_loss`` (the objective where training started), a fit whose training loss rose
    above ``DIVERGENCE_GROWTH`` times it, or ended above ``DIVERGENCE_END`` times it, has
    diverged (:meth:`check_divergence`): the loss is finite, but the steps made the model
    worse. Non-finite losses are caught by the epochs themselves."""

    def __init__(self, *, tol=None, n_iter_no_change=5, callback=None, verbose=0,
                 validation=False, start_loss=None):
        self.start_loss = start_loss
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.callback = callback
        self.verbose = verbose
        self.history = new_history(validation)
        self.best = math.inf
        self.stall = 0
        self.converged = False
        self.interrupted = False
        self.improved = False  # the last entry was the best monitored loss so far

    def record(self, entry, params):
        for key, value in entry.items():
            self.history[key].append(value)
        if self.verbose:
            extra = f", val_loss {entry['val_loss']:.6g}" if "val_loss" in entry else ""
            print(f"-- Epoch {entry['epoch']}: loss {entry['loss']:.6g}{extra}, lr "
                  f"{entry['lr']:.3g}, {entry['seconds'] * 1e3:.1f} ms, {entry['steps']} "
                  "updates", file=sys.stderr)
        monitored = entry.get("val_loss", entry["loss"])
        validation = "val_loss" in entry
        if self.tol is not None or validation:
            threshold = self.best - (self.tol or 0.0)
            self.improved = monitored < self.best
            if monitored > threshold:
                self.stall += 1
            else:
                self.stall = 0
            self.best = min(self.best, monitored)
            if self.stall >= self.n_iter_no_change:
                self.converged = True
        if self.callback is not None and self.callback(dict(entry, params=params)) is False:
            self.interrupted = True
        return self.interrupted or self.converged

    def divergence(self, advice="Try a smaller learning rate, or standardize=True if the "
                   "features have very different scales."):
        """The DivergenceError's message when the fit diverged by the rule above, else None."""
        losses = self.history["loss"]
        start = self.start_loss
        if start is None or not losses or self.interrupted:
            return None
        peak = int(np.argmax(losses))
        if losses[peak] > DIVERGENCE_GROWTH * max(start, 1e-300):
            reason = (f"The training loss grew from {start:.4g} at the start to "
                      f"{losses[peak]:.4g} at epoch {self.history['epoch'][peak]}")
        elif losses[-1] > DIVERGENCE_END * start:
            reason = (f"The training loss ended at {losses[-1]:.4g}, more than "
                      f"{DIVERGENCE_END:g} times its value at the start ({start:.4g}), after "
                      f"{self.history['epoch'][-1]} epochs")
        else:
            return None
        return f"{reason}: the fit diverged (its loss stayed finite). {advice}"


LR_CHUNK = 1 << 16  # learning rates computed at a time (updates)


def train(problem, state, *, backend, schedule, epochs, batch_size, shuffle, tol,
          n_iter_no_change, validation=None, callback=None, verbose=0, total_steps=None,
          n_jobs=None, sparse_update="exact", monitor=None, start_loss=None):
    """Run up to ``epochs`` epochs on ``state`` (updated in place). Returns
    ``(monitor, best_params)``: the :class:`Monitor` holds the history and why training
    stopped; ``best_params`` is set with validation. ``start_loss``: the objective at the
    starting parameters, for the divergence rule (:class:`Monitor`).

    Raises DivergenceError when the loss or parameters turn non-finite; ``state`` is then left
    as it was after the last good epoch, as it is when an epoch is interrupted (Ctrl-C). A
    ``problem`` whose X is still to be checked (``check_finite_later``) gets the ValueError for
    NaN/inf in X instead where that was the cause.
    """
    n = problem.n_samples
    batch = n if batch_size is None else min(batch_size, n)
    steps_per_epoch = -(-n // batch)
    data = backend.dataset(problem)
    threads = v.check_n_jobs(n_jobs)
    lazy = check_sparse_update(sparse_update, problem) == "lazy"
    lr_of = make_schedule(schedule, state.optimizer.lr,
                          total_steps or epochs * steps_per_epoch)
    if monitor is None:
        monitor = Monitor(tol=tol, n_iter_no_change=n_iter_no_change, callback=callback,
                          verbose=verbose, validation=validation is not None,
                          start_loss=start_loss)
    validation_data = None
    if validation is not None:  # its rows are never trained on
        validation.check_finite_now()
        validation_data = backend.dataset(validation)
    best_params = None
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
            loss, steps, ok, failed = backend.epoch(data, state, lrs, batch,
                                                    shuffle if batch < n else False, threads,
                                                    lazy)
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
        entry = {"epoch": state.epochs, "loss": loss * problem.loss_scale,
                 "lr": float(lrs[steps - 1]), "seconds": seconds, "steps": state.updates}
        if validation_data is not None:
            entry["val_loss"] = float(backend.objective(validation_data, state.params)[0]
                                      * problem.loss_scale)
        stop = monitor.record(entry, state.params)
        if validation_data is not None and monitor.improved:
            best_params = state.params.copy()
        if stop:
            break
    return monitor, best_params


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


STALL_TOL = 1e-4
"""What ``tol="auto"`` means for a first-order optimizer: the loss improved by less than this
for ``n_iter_no_change`` epochs."""


def stall_tol(tol):
    """The first-order optimizers' ``tol`` of a fit's ``tol`` (``"auto"``: :data:`STALL_TOL`)."""
    return STALL_TOL if isinstance(tol, str) and tol == "auto" else tol


def check_training_options(*, epochs, batch_size, tol, n_iter_no_change, validation_fraction=0.1,
                           early_stopping=False, shuffle=True, n_jobs=None,
                           sparse_update="exact"):
    """The option checks every front end shares (``fit``, the estimators, ``fit_stream``,
    ``fastopt.dask``)."""
    v.check_int("epochs", epochs, 1)
    v.check_int("batch_size", batch_size, 1, allow_none=True)
    if not (isinstance(tol, str) and tol == "auto"):
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
    v.check_n_jobs(n_jobs)
    check_sparse_update(sparse_update)


def split_validation(problem, fraction, seed, backend):
    """Hold out ``fraction`` of the rows (at least one), chosen by the seed."""
    n = problem.n_samples
    n_val = max(1, int(round(fraction * n)))
    if n - n_val < 1:
        raise ValueError(f"validation_fraction={fraction} leaves no training rows (n={n})")
    order = np.random.default_rng(seed).permutation(n)
    return (problem.subset(np.sort(order[n_val:]), backend),
            problem.subset(np.sort(order[:n_val]), backend))


def is_newton(optimizer):
    return isinstance(optimizer, str) and optimizer.lower() == "newton"


def is_auto(optimizer):
    return isinstance(optimizer, str) and optimizer.lower() == "auto"


def choose_solver(problem, backend=None):
    """What ``optimizer="auto"`` runs on ``problem``: L-BFGS for the smooth objectives (no
    penalty or l2), conjugate gradients where that objective is a quadratic (linear
    regression) and X has :data:`CG_MIN_ENTRIES` stored entries or ``backend`` (the fit's
    :class:`~fastopt._backends.Backend`) has no compiled L-BFGS loop, SAGA for l1 and
    elasticnet (proximal: the only solver here that reaches their optimum). The README's
    "Solvers that reach the optimum" gives the measurements. Under ``tol="auto"``
    :func:`hessian_sample_rows` may pick Newton's method with a subsampled Hessian first."""
    spec = problem.spec
    if spec.penalty in ("l1", "elasticnet") and spec.alpha > 0:
        return SOLVERS["saga"]()
    if spec.model == "linear" and (backend is None or backend.lbfgs is None
                                   or _stored_entries(problem.X) >= CG_MIN_ENTRIES):
        return ConjugateGradient()  # a quadratic: exact steps, one pass each
    return LBFGS()


# Conjugate gradients run in Python (~40 us an iteration); the compiled L-BFGS loop makes a
# pass or two more on linear regression (exact steps against its line search) but ~10 us an
# iteration. Measured (standardised make_regression-like X, alpha = 1/n, 1 thread), CG against
# compiled L-BFGS: 50 x 100 1.27 / 0.33 ms, 1,000 x 100 1.24 / 0.97, 10,000 x 50 2.87 / 2.62,
# 100,000 x 20 10.6 / 11.8, 100,000 x 100 50.5 / 53.9, T1's ridge 500,000 x 100 (unscaled y,
# where L-BFGS's first line search took 3 passes) 150-164 / 236-278.
CG_MIN_ENTRIES = 1_000_000


# Conjugate gradients from the solution on every SAMPLE_START_STRIDE-th row, where that sample
# has SAMPLE_START_MIN_ROWS_PER_PARAM rows a parameter (optimizer="auto", tol="auto", a fresh
# fit of linear regression). The sample's solve costs a 32nd of a pass an iteration and, on a
# well-conditioned problem, gets the first orders of the gap that plain conjugate gradients
# pay a pass each for. Measured (standardised make_regression X, noise 10, alpha = 1/n, 1
# thread; passes of the full problem, plain / from the sample): 500,000 x 100 4 / 3 (134 ->
# 111 ms), 100,000 x 100 5 / 3 (29.8 -> 21.7), 1,000,000 x 20 3 / 2 (58.7 -> 45.8), 50,000 x
# 400 7 / 5 (105 -> 81); T1's ridge (noise-free targets: the sample's solution is 1.3e-8 from
# the optimum) 5 / 2 (168 -> 79). Where the sample's solve does not converge in
# SAMPLE_START_MAX_ITER iterations (ill-conditioned: effective rank 20 of 100 took 11 passes,
# and 13 from the sample's solution) the fit starts from zero as before, the sample's ~0.4
# pass lost.
SAMPLE_START_STRIDE = 32
SAMPLE_START_MIN_ROWS_PER_PARAM = 2
SAMPLE_START_MAX_ITER = 10


def _sample_start(problem, params, backend, threads):
    """``(params, passes)``: where conjugate gradients on ``problem`` start, the solution on
    every :data:`SAMPLE_START_STRIDE`-th row when that converged, and the passes over X that
    cost (rounded up)."""
    n = problem.n_samples
    rows = np.arange(0, n, SAMPLE_START_STRIDE)
    if len(rows) < SAMPLE_START_MIN_ROWS_PER_PARAM * problem.spec.n_params:
        return params, 0
    sample = problem.subset(rows, backend)
    data = backend.dataset(sample)
    run = conjugate_gradient(lambda x: backend.objective(data, x, threads), params,
                             max_iter=SAMPLE_START_MAX_ITER, tolerance_gap=AUTO_GAP / 100)
    passes = math.ceil(run.n_evals * len(rows) / n)
    if run.status != "converged":  # also a non-finite X: the full problem's start says so
        return params, passes
    return np.asarray(run.x, dtype=params.dtype), passes


def _stored_entries(X):
    return X.nnz if v.is_sparse(X) else int(np.prod(X.shape))


# Newton's method with the Hessian of a fixed sample of rows (and the gradient of all of them)
# for dense logistic and softmax regression with many more rows than parameters: the sample's
# Hessian costs m p^2 multiply-adds in BLAS (m p^2 / 2 for softmax: one symmetric product),
# against 2 n p in a pass over X, and the steps contract the distance to the optimum by
# ~sqrt(p / m) each. Measured on the benchmark's three such problems (T1, 1 thread): 200,000 x
# 50 in 6 steps (7 passes) where L-BFGS takes 12 iterations (66-80 against 94-103 ms);
# near-collinear 100,000 x 100 in 11 steps where L-BFGS takes 40 (112-125 against 202-293 ms);
# 5 classes, 300,000 x 100 (505 parameters) in 7 steps where L-BFGS takes 15. Softmax needs
# more rows per parameter than two classes: with 2,000 / 3,000 / 4,000 / 6,000 / 8,000 rows
# that problem took 18 / 10 / 7 / 6 / 6 steps; two classes took the same 6 steps from 2,000
# rows as from more. The cost limit keeps the Hessian's multiply-adds under twice a pass's,
# which BLAS runs ~4x faster a multiply-add: 0.9 ms a step for m = 2,000, p = 51 (7.4 ms a
# pass), ~20 ms for m = 4,040, 505 parameters (40 ms a pass).
HESSIAN_SAMPLE_MIN_ROWS = 2000
HESSIAN_SAMPLE_ROWS_PER_PARAM = {"logistic": 20, "softmax": 8}
HESSIAN_SAMPLE_MAX_COST = 2  # the Hessian's multiply-adds at most this many times a pass's
HESSIAN_SAMPLE_MAX_SHARE = 0.1  # m at most this share of n: below, L-BFGS's passes are cheap


def hessian_sample_rows(problem):
    """The rows of the subsampled Hessian that ``optimizer="auto"`` (with ``tol="auto"``) uses
    on ``problem``, or None where it keeps to :func:`choose_solver`'s pick: sparse X, GPU
    arrays, linear regression (a constant Hessian: conjugate gradients need ~5 passes), no
    penalty (separable classes have no optimum: Newton's steps would grow for all of
    ``epochs``), l1 and elasticnet, more parameters than Newton's method takes
    (``newton.MAX_PARAMS``), and X
    with too few rows for the sample's Hessian to cost at most
    :data:`HESSIAN_SAMPLE_MAX_COST` passes' multiply-adds, or for the sample to be a tenth of
    them."""
    spec = problem.spec
    if (spec.model not in HESSIAN_SAMPLE_ROWS_PER_PARAM or v.is_sparse(problem.X)
            or v.is_device_array(problem.X) or spec.penalty != "l2" or spec.alpha <= 0
            or spec.n_params > NEWTON_MAX_PARAMS):
        return None
    n = problem.n_samples
    rows = max(HESSIAN_SAMPLE_MIN_ROWS, HESSIAN_SAMPLE_ROWS_PER_PARAM[spec.model] * spec.n_params)
    if (_sample_hessian_cost(spec, rows, n) > HESSIAN_SAMPLE_MAX_COST
            or rows > HESSIAN_SAMPLE_MAX_SHARE * n):
        return None
    return rows


def _sample_hessian_cost(spec, rows, n):
    """The multiply-adds of a ``rows``-row sample's Hessian over those of a pass over ``n``
    rows: ``rows p^2`` (``rows p^2 / 2`` for softmax, one symmetric product) against
    ``2 n p``."""
    p = spec.n_params
    return rows * p * p / (2 if spec.model == "softmax" else 1) / (2 * n * p)


def is_full_batch(optimizer):
    """Whether ``optimizer`` (as given to a fit) is a solver of the whole data set: Newton's
    method, L-BFGS, Newton-CG or SAGA (no minibatches, no ``partial_fit``)."""
    return (is_newton(optimizer) or isinstance(optimizer, (LBFGS, NewtonCG, SAGA))
            or isinstance(optimizer, str) and optimizer.lower() in SOLVERS)


def new_state(optimizer, params, seed):
    """A fresh :class:`TrainingState` from ``params`` (used in place)."""
    return TrainingState(params, optimizer, optimizer.init(params), seed=seed)


class Solved(NamedTuple):
    """What :func:`solve` returns."""

    params: np.ndarray
    history: dict
    converged: bool
    state: TrainingState | None
    interrupted: bool
    #: The divergence rule's message (:class:`Monitor`) when the fit diverged with a finite
    #: loss, which the caller raises with the result; else None.
    diverged: str | None
    #: The largest entry of the gradient at ``params`` from a solver's last iterate; None for
    #: l1 and elasticnet (not differentiable) and for first-order epochs.
    grad_max: float | None


def solve(problem, params, *, backend, optimizer, state=None, schedule=None, epochs,
          batch_size, shuffle=True, tol, n_iter_no_change=5, early_stopping=False,
          validation_fraction=0.1, callback=None, verbose=0, total_steps=None, n_jobs=None,
          sparse_update="exact", seed=0):
    """A whole fit from ``params``: Newton's method (``optimizer`` is None), a solver of
    :mod:`fastopt.solvers` (SAGA shuffles with ``seed``), or first-order
    epochs on ``state`` (made from ``params`` when None), on a held-out split with
    ``early_stopping`` (then the best parameters are kept, in ``state`` too), or
    ``optimizer="auto"`` (:func:`choose_solver`; a fresh fit's conjugate gradients start at
    :func:`_sample_start`'s point, its passes counted in ``steps``). Returns a
    :class:`Solved`; its ``grad_max`` is over the rows trained on."""
    auto = is_auto(optimizer)
    if auto:
        rows = hessian_sample_rows(problem) if tol == "auto" else None
        if rows is not None:
            return _solve_newton(problem, params, backend=backend, max_iter=epochs, tol=tol,
                                 callback=callback, verbose=verbose,
                                 threads=v.check_n_jobs(n_jobs), sample_rows=rows)
        optimizer = choose_solver(problem, backend)
    sample_passes = 0
    if (auto and isinstance(optimizer, ConjugateGradient) and tol == "auto"
            and not params.any()):
        params, sample_passes = _sample_start(problem, params, backend, v.check_n_jobs(n_jobs))
    if optimizer is None:
        return _solve_newton(problem, params, backend=backend, max_iter=epochs, tol=tol,
                             callback=callback, verbose=verbose, threads=v.check_n_jobs(n_jobs))
    if isinstance(optimizer, SAGA):
        return _solve_saga(problem, params, backend=backend, solver=optimizer, max_iter=epochs,
                           tol=tol, callback=callback, verbose=verbose, seed=seed)
    if isinstance(optimizer, (LBFGS, NewtonCG, ConjugateGradient)):
        solved = _solve_full_batch(problem, params, backend=backend, solver=optimizer,
                                   max_iter=epochs, tol=tol, callback=callback, verbose=verbose,
                                   finish=auto and tol == "auto",
                                   threads=v.check_n_jobs(n_jobs))
        solved.history["steps"] = [step + sample_passes for step in solved.history["steps"]]
        return solved
    if state is None:
        state = new_state(optimizer, params, 0)
    tol = stall_tol(tol)
    start_loss = None if state.params.any() else zero_loss(problem)
    training, validation = problem, None
    if early_stopping:
        training, validation = split_validation(problem, validation_fraction, state.seed,
                                                backend)
    monitor, best = train(
        training, state, backend=backend, schedule=schedule, epochs=epochs,
        batch_size=batch_size, shuffle=shuffle, tol=tol, n_iter_no_change=n_iter_no_change,
        validation=validation, callback=callback, verbose=verbose, total_steps=total_steps,
        n_jobs=n_jobs, sparse_update=sparse_update, start_loss=start_loss)
    if best is not None:  # early stopping: keep (and continue from) the best parameters
        state.params[...] = best
    # No grad_max: it would cost a pass over X (an epoch's worth: +50% on a one-epoch fit).
    return Solved(state.params, monitor.history, monitor.converged, state,
                  monitor.interrupted, monitor.divergence(), None)


def _solve_newton(problem, params, *, backend, max_iter, tol, callback, verbose, threads=1,
                  sample_rows=None):
    """Newton's method from ``params``, the objective one compiled pass on ``threads``. With
    ``sample_rows`` (``optimizer="auto"``): the Hessian of that many rows drawn once (seed 0,
    so the fit is repeatable), until the decrement ``g^T H_s^-1 g / 2`` is at most
    :data:`AUTO_GAP` relative to the loss (it tracked the true gap within 1.2x on the
    benchmark's problems), or until :data:`SAMPLED_NEWTON_SHORT_STEPS` shortened steps hand
    the fit over to L-BFGS (one history for both), X scanned for NaN and inf only when the
    first objective is not finite. Without: the exact Hessian, over all of X, which is
    checked first."""
    data = backend.dataset(problem)
    direction_of, gap = None, 0.0
    if sample_rows is None:
        problem.check_finite_now()
    else:
        picked = np.sort(np.random.default_rng(0).choice(problem.n_samples, sample_rows,
                                                         replace=False))
        sample = problem.subset(picked, backend)
        sample.check_finite_now()
        keep = _sample_hessian_cost(problem.spec, sample_rows, problem.n_samples) > 0.5
        direction_of = SampledHessian(sample, keep=keep,
                                      hessian_of=_hessian_of(backend, backend.dataset(sample)))
        gap, tol = AUTO_GAP, 0.0

    def objective(_, x):
        value, grad = backend.objective(data, x, threads)
        if not np.isfinite(value):
            problem.check_finite_now()  # the ValueError that names NaN or inf in X, once
        return value, grad

    shortened, handed_over = 0, False

    def watch(entry):
        """The caller's callback, and the hand-over to L-BFGS (see below)."""
        nonlocal shortened, handed_over
        if callback is not None and callback(entry) is False:
            return False
        shortened = shortened + 1 if entry["lr"] < 1 else 0
        handed_over = shortened >= SAMPLED_NEWTON_SHORT_STEPS
        return False if handed_over else None

    params, history, converged = newton_fit(
        problem, params, max_iter=max_iter, tol=tol, gap=gap,
        callback=callback if sample_rows is None else watch, verbose=verbose,
        objective=objective, direction_of=direction_of, hessian_of=_hessian_of(backend, data))
    history["loss"] = [loss * problem.loss_scale for loss in history["loss"]]
    if handed_over:
        rest = _solve_full_batch(problem, params, backend=backend, solver=LBFGS(),
                                 max_iter=max(0, max_iter - len(history["loss"])), tol="auto",
                                 callback=callback, verbose=verbose, finish=True,
                                 threads=threads)
        return rest._replace(history=_joined_history(history, rest.history))
    grad_max = (history["grad_max"][-1] if history["grad_max"]
                else _gradient_max(problem, data, params, backend))
    return Solved(params, history, converged, None, False, None, grad_max)


# Consecutive sampled-Newton steps the line search had to shorten before L-BFGS takes over
# from the current point: then the sample's Hessian does not model the objective. On T1's two-
# and five-class and near-collinear problems every step is taken whole (the decrease 0.6-1.7
# times the model's). On well-separated classes (y = sign(X b)) the curvature sits in the few
# rows near the boundary, which a sample of 2,000 barely has: on 200,000 x 50 nearly every step
# from the tenth on was cut (the decrease 0.01-0.1 times the model's), 46 steps in 0.80 s where
# L-BFGS alone took 22 passes, 0.15 s; with the hand-over 12 steps and 13 iterations, 0.21 s.
# (A stall rule, a step that does not halve a gap estimate below 1e-3, helped on 30,000 x 20,
# 59 -> 25 ms, but cost 100,000 x 20 30 -> 80 ms: L-BFGS restarts without curvature pairs.)
SAMPLED_NEWTON_SHORT_STEPS = 2


def _joined_history(first, second):
    """The history of one solver's iterations followed by another's: ``epoch`` and ``steps``
    continued from the first's, keys that only one has filled with NaN."""
    n_first, n_second = len(first.get("epoch", [])), len(second.get("epoch", []))
    joined = {}
    for key in dict.fromkeys([*first, *second]):
        tail = list(second.get(key, [float("nan")] * n_second))
        if key in ("epoch", "steps") and first.get(key):
            tail = [first[key][-1] + value for value in tail]
        joined[key] = list(first.get(key, [float("nan")] * n_first)) + tail
    return joined


def _solve_full_batch(problem, params, *, backend, solver, max_iter, tol, callback, verbose,
                      finish=False, threads=1):
    """L-BFGS or Newton-CG from ``params``: one history entry per iteration (``steps`` counts
    the passes over X, ``grad_max`` the gradient's largest entry), the solver's stopping
    reason in ``message``; a line search that finds no decrease or a non-finite objective is a
    DivergenceError with the solver's words. NaN or inf in X make the first objective
    non-finite, so X is scanned for them only then (for the ValueError that names them), not
    in a pass of its own before the fit. With ``finish``, :func:`_newton_finish` checks where
    the solver stopped. ``threads``: the objective's and the Hessian-vector products' threads
    (the same result for any number)."""
    data = backend.dataset(problem)
    monitor = Monitor(callback=callback, verbose=verbose)
    monitor.history["grad_max"] = []
    started = [time.perf_counter()]

    def objective(x):
        return backend.objective(data, x, threads)

    def hvp(x, vector):
        if hvp.at is not x:  # one operator per outer iteration (the solver keeps x)
            hvp.at, hvp.apply = x, backend.hvp(problem, data, x, threads)
        return hvp.apply(vector)
    hvp.at = None

    def entry(iteration, f, step, seconds, passes, grad_max, gap=None):
        """One iteration's history entry; the gap estimate when the solver made one."""
        made = {"epoch": iteration, "loss": float(f) * problem.loss_scale, "lr": float(step),
                "seconds": seconds, "steps": int(passes), "grad_max": float(grad_max)}
        if gap is not None:
            made["gap"] = float(gap)
            monitor.history.setdefault("gap", [])
        return made

    def record(info):
        now = time.perf_counter()
        record.products += int(info.get("cg_iter", 0))  # Newton-CG: each one a pass too
        made = entry(info["iteration"], info["f"], info["step"], now - started[0],
                     info["n_evals"] + record.products, info["grad_max"], info.get("gap"))
        started[0] = now
        return not monitor.record(made, info["x"])
    record.products = 0

    spec = problem.spec
    floor = spec.alpha if spec.penalty == "l2" else 0.0
    if (isinstance(solver, LBFGS) and backend.lbfgs is not None and callback is None
            and not verbose):
        # The compiled loop, without a Python call per iteration: on small problems those
        # were most of the fit (benchopt's 1000 x 10: ~90 us an iteration, a pass ~16 us).
        run = compiled_lbfgs(
            lambda x0, **settings: backend.lbfgs(data, x0, threads, **settings),
            np.array(params), **solver.settings(max_iter=max_iter, tol=tol,
                                                curvature_floor=floor))
        # The history as monitor.record would write it, filled a column at a time: with no
        # callback and no verbose there is nothing else to do per iteration (~2 us each).
        history, n = monitor.history, run.n_iter
        history["epoch"] += range(1, n + 1)
        history["loss"] += [loss * problem.loss_scale for loss in run.history["loss"][:n]]
        history["lr"] += run.history["step"][:n]
        history["seconds"] += run.history["seconds"][:n]
        history["steps"] += (1 + np.cumsum(run.history["evals"][:n], dtype=int)).tolist()
        history["grad_max"] += run.history["grad_max"][:n]
        if "gap" in run.history:
            history["gap"] = list(run.history["gap"][:n])
    else:
        run = solver.run(objective, hvp, np.array(params), max_iter=max_iter, tol=tol,
                         callback=record, curvature_floor=floor)
    if run.status == "nonfinite":
        problem.check_finite_now()
    if run.status in ("nonfinite", "line_search"):
        raise DivergenceError(f"{type(solver).__name__} stopped after {run.n_iter} iterations: "
                              f"{run.message}. Try standardize=True, or a penalty "
                              "(penalty='l2') if the classes are separable.")
    converged = run.status in ("converged", "precision")
    x, grad_max = np.asarray(run.x, dtype=params.dtype), float(np.max(np.abs(run.grad),
                                                                       initial=0.0))
    if finish and converged and spec.n_params <= FINISH_PARAMS_PER_PASS * run.n_evals:
        x, grad_max, converged = _newton_finish(problem, data, backend, x, (run.f, run.grad),
                                                monitor, run.n_evals)
    smooth = spec.penalty not in ("l1", "elasticnet") or spec.alpha == 0
    return Solved(x, monitor.history, converged, None, run.status == "stopped", None,
                  grad_max if smooth else None)


# The explicit Hessian of p parameters costs about p / 6 passes over X (BLAS on row blocks,
# measured at p=51: 64 ms against 7.9 ms a pass); _newton_finish runs when that is at most
# half the passes the solver made.
FINISH_PARAMS_PER_PASS = 3
FINISH_STEPS = 20


def _newton_finish(problem, data, backend, x, start, monitor, passes):
    """Newton steps from where L-BFGS stopped under ``tol="auto"``, until the exact Newton
    decrement says the relative gap is at most :data:`AUTO_GAP`. L-BFGS's estimate of the gap
    can be optimistic on a plateau along directions of low curvature (near-collinear features:
    estimate 4e-8 where the gap was 1.5e-6); the exact decrement is not, and with a Hessian of
    few parameters it is cheap. Usually the first decrement confirms the estimate and no step
    is taken. ``start``: the solver's ``(value, gradient)`` at ``x``. The directions are LU
    solves with the whole data's Hessian (:class:`~fastopt.newton.SampledHessian` of all the
    rows: 5 us against least squares' 21 at 11 parameters). Returns ``(x, grad_max,
    converged)``; the steps go to ``monitor``'s history."""
    first = monitor.history["epoch"][-1] if monitor.history["epoch"] else 0
    params, history, converged = newton_fit(
        problem, x, max_iter=FINISH_STEPS, tol=0.0, gap=AUTO_GAP, start=start,
        objective=lambda _, w: backend.objective(data, w),
        direction_of=SampledHessian(problem, hessian_of=_hessian_of(backend, data)))
    for i, loss in enumerate(history["loss"]):
        # The Hessian (a read of X) and one or more objectives for the step: two passes.
        monitor.history["epoch"].append(first + 1 + i)
        monitor.history["loss"].append(loss * problem.loss_scale)
        monitor.history["lr"].append(history["lr"][i])
        monitor.history["seconds"].append(history["seconds"][i])
        monitor.history["steps"].append(passes + 2 * (i + 1))
        monitor.history["grad_max"].append(history["grad_max"][i])
        monitor.history.setdefault("gap", []).append(float("nan"))  # known before a step only
    grad_max = (history["grad_max"][-1] if history["grad_max"]
                else monitor.history["grad_max"][-1])
    # A step that finds no decrease left (precision) ends early, at the optimum.
    return params, grad_max, converged or len(history["loss"]) < FINISH_STEPS


def _hessian_of(backend, data):
    """``(problem, params) -> H`` on ``data`` (the problem's dataset): the backend's compiled
    Hessian where it has one for the problem, else :func:`fastopt.newton.hessian`."""
    def hessian_of(problem, params):
        H = backend.hessian(problem, data, params) if backend.hessian else None
        return newton_hessian(problem, params) if H is None else H
    return hessian_of


def _solve_saga(problem, params, *, backend, solver, max_iter, tol, callback, verbose, seed):
    """SAGA epochs (:mod:`fastopt.reference.saga`) from ``params`` until the relative change
    of the parameters in an epoch is at most the tolerance (:class:`~fastopt.solvers.SAGA`):
    one history entry per epoch, ``loss`` the mean row loss during the epoch plus the penalty
    at its end, ``steps`` the passes over X, ``change`` the relative change. A non-finite loss
    or parameter is a DivergenceError; Ctrl-C propagates as KeyboardInterrupt."""
    if backend.saga_epoch is None:
        raise ValueError(f"optimizer='saga' has no kernel on backend {backend.name!r}; use "
                         "backend='cpp', 'numba' or 'numpy', or optimizer='lbfgs'")
    problem.check_finite_now()
    spec, n = problem.spec, problem.n_samples
    solver.check_memory(n, spec.n_outputs)
    step = solver.step_size or _saga.auto_step_size(spec, problem.X, problem.sample_weight,
                                                    problem.mean, problem.inv_std)
    if step * _saga.penalties(spec)[1] >= 1.0:
        raise ValueError(f"SAGA's step_size={step:g} times the L2 strength "
                         f"{_saga.penalties(spec)[1]:g} must be < 1; use a smaller step_size "
                         "(None picks one)")
    data = backend.dataset(problem)
    state = _saga.new_state(spec, n, params)
    tol = (solver.tol if solver.tol is not None else SAGA_AUTO_TOL if tol == "auto"
           else (tol or 0.0))
    monitor = Monitor(callback=callback, verbose=verbose)
    monitor.history["change"] = []
    converged = False
    for epoch in range(max_iter):
        before = state.w.copy()
        start = time.perf_counter()
        loss_sum, ok, failed = backend.saga_epoch(data, state, step, seed, epoch)
        seconds = time.perf_counter() - start
        if not ok:
            raise DivergenceError(
                f"SAGA: the loss or the parameters became non-finite at epoch {epoch + 1}, row "
                f"{failed + 1} of {n} (step size {step:.3g}). Try standardize=True, or a "
                "smaller step_size.")
        largest = float(np.max(np.abs(state.w), initial=0.0))
        change = float(np.max(np.abs(state.w - before), initial=0.0)) / max(largest, 1e-300)
        loss = loss_sum / n + _penalty(spec, state.w)[0]
        entry = {"epoch": epoch + 1, "loss": loss * problem.loss_scale, "lr": step,
                 "seconds": seconds, "steps": epoch + 1, "change": change}
        stop = monitor.record(entry, state.w)
        if change <= tol:
            converged = True
            break
        if stop:
            break
    return Solved(state.w.astype(params.dtype), monitor.history, converged, None,
                  monitor.interrupted, None, None)


def optimizer_from(optimizer, lr, default_lr=None, stochastic=False):
    """The optimizer object of ``optimizer`` (a name or an object) with ``lr`` (or, for a
    name, ``default_lr(name)`` when given), a solver's options (``"lbfgs"``, ``"newton-cg"``,
    ``"saga"`` or their objects), None for Newton's method, or ``"auto"`` (resolved by
    :func:`solve` once the problem is known; with ``stochastic``, for ``partial_fit`` and early
    stopping, it is Adam)."""
    if is_auto(optimizer):
        if not stochastic:
            return "auto"
        optimizer = "adam"
    if is_newton(optimizer):
        return None
    if isinstance(optimizer, (LBFGS, NewtonCG, SAGA)):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in SOLVERS:
        return SOLVERS[optimizer.lower()]()
    if lr is None and isinstance(optimizer, str) and default_lr is not None:
        lr = default_lr(optimizer.lower())
    return make_optimizer(optimizer, **({} if lr is None else {"lr": lr}))
