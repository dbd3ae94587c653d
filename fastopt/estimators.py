r"""scikit-learn estimators: :class:`LinearRegression` and :class:`LogisticRegression`.

Both are thin wrappers of the training loop of :mod:`fastopt.training` (the loop of
:func:`fastopt.fit`, with the same results for the same arguments; the defaults differ, see
the class docstrings) that add what scikit-learn expects of an estimator: parameters stored
unmodified in ``__init__`` and validated in ``fit``, ``partial_fit``, ``warm_start``,
feature-name checks, ``clone``/pickle support, and fitted attributes that are committed only
when a fit succeeds.

This module imports scikit-learn; ``fastopt`` itself does not need it.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils import assert_all_finite
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _backends
from . import _validation as v
from .engine import (DivergenceError, TrainingState, check_training_options, convergence_warning,
                     from_original_space, is_full_batch, new_state,
                     not_converged_message, optimizer_from, prepare, probabilities, solve,
                     to_original_space)
from ._scaling import Moments, target_units
from .optim import OPTIMIZERS, Optimizer
from .solvers import LBFGS

__all__ = ["LinearRegression", "LogisticRegression"]

_DTYPES = [np.float64, np.float32]  # kept as they are: no copy of C-contiguous float X


def _ready_arrays(X, y):
    """Whether ``validate_data`` would return ``X`` and ``y`` as they are: NumPy arrays (not
    subclasses, no feature names), X 2-d, C-contiguous, float64 or float32, with rows and
    columns, y 1-d finite numbers (else its message: "Input y contains NaN"), one per row.
    Then the estimators skip it: its generic checks took ~115 us a fit, 13% of a default fit
    on 1,000 x 10."""
    return (type(X) is np.ndarray and type(y) is np.ndarray and X.ndim == 2 and y.ndim == 1
            and X.dtype in _DTYPES and X.flags.c_contiguous and X.shape[0] > 0
            and X.shape[1] > 0 and len(y) == X.shape[0] and y.dtype.kind in "biuf"
            and (y.dtype.kind != "f" or bool(np.isfinite(y).all())))


# lr=None with an optimizer given by name: torch's defaults (1e-3 for SGD and Adam) are tuned
# for neural networks and take thousands of epochs on a standardised linear model, so the
# estimators use 0.01 (torch's own default for Adagrad and RMSprop); Adadelta's lr is a
# multiplier of its own adaptive step and keeps its default of 1.0.
DEFAULT_LR = {**dict.fromkeys(OPTIMIZERS, 0.01), "adadelta": 1.0}


def _partial_fit_available(estimator):
    """``partial_fit`` exists for first-order optimizers only (``available_if``): Newton's
    method is a full-batch solver, and ``hasattr(est, "partial_fit")`` says so."""
    optimizer = estimator.optimizer
    if is_full_batch(optimizer):
        what = ("Newton's method" if isinstance(optimizer, str) and optimizer.lower() == "newton"
                else "it")
        raise AttributeError(f"partial_fit is not available with optimizer={optimizer!r} "
                             f"({what} is a full-batch solver); use fit, or a first-order "
                             "optimizer such as 'adam'.")
    return True


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"The '{name}' parameter must be True or False. Got {value!r} "
                         "instead.")


def _as_dtype(array, dtype):
    return np.array(array, dtype=dtype, copy=True, order="C")


def _merge_history(old, new):
    """``old`` extended by ``new``, every list kept as long as ``loss`` (NaN where an entry
    lacks a key, e.g. ``val_loss`` of a ``partial_fit`` epoch)."""
    n_old, n_new = len(old.get("loss", [])), len(new["loss"])
    merged = {}
    for key in list(old) + [k for k in new if k not in old]:
        merged[key] = (list(old.get(key, [math.nan] * n_old))
                       + list(new.get(key, [math.nan] * n_new)))
    return merged


class _FastoptLinearModel(BaseEstimator):
    """What the two estimators share: validation, the fit/partial_fit driver, predictions."""

    _regression = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # SciPy sparse X trains as CSR, never densified
        return tags

    # -- subclass hooks -----------------------------------------------------------------------

    def _model_and_classes(self, y, classes, first_partial):
        raise NotImplementedError

    def _publish(self, coef, intercept):
        raise NotImplementedError

    # -- options ------------------------------------------------------------------------------

    def _check_options(self, stochastic=False):
        """Validate every constructor parameter (penalty, alpha and l1_ratio are checked by
        ``prepare``, the schedule when training starts); returns the optimizer object, None
        for Newton's method, or ``"auto"`` (Adam when ``stochastic``: ``partial_fit`` and early
        stopping)."""
        check_training_options(epochs=self.epochs, batch_size=self.batch_size, tol=self.tol,
                               n_iter_no_change=self.n_iter_no_change,
                               validation_fraction=self.validation_fraction,
                               early_stopping=self.early_stopping, shuffle=self.shuffle,
                               n_jobs=self.n_jobs, sparse_update=self.sparse_update)
        for name in ("fit_intercept", "standardize", "warm_start"):
            _check_flag(name, getattr(self, name))
        if not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(f"The 'verbose' parameter must be an int >= 0. Got "
                             f"{self.verbose!r} instead.")
        if self.lr is not None:
            v.check_float("lr", self.lr, 0.0)
        v.check_random_state(self.random_state)  # also when the solver draws no numbers
        return optimizer_from(self.optimizer, self.lr, DEFAULT_LR.get,
                              stochastic=stochastic or self.early_stopping)

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model on ``(X, y)``: up to ``epochs`` passes of the optimizer.

        With ``warm_start=True`` and an earlier fit, training continues from it (see the class
        docstring); otherwise it starts from zero coefficients.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A C-contiguous float32/float64 array is used as is, without a copy.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self

        Raises
        ------
        fastopt.DivergenceError
            The loss became non-finite; the estimator keeps its previous state.
        """
        if v.is_dask_collection(X):
            return self._fit_dask(X, y, sample_weight)
        return self._fit(X, y, sample_weight, partial=False)

    def _fit_dask(self, X, y, sample_weight):
        """``fit`` on dask collections through :func:`fastopt.dask.fit`: strategy "gradient"
        for full-batch fits (``batch_size=None``, Newton), else "average" (local epochs per
        block, averaged after each one); the fitted attributes, ``tol``, early stopping,
        ``warm_start`` and the ConvergenceWarning are those of ``fit``."""
        from . import dask as fdask
        import dask
        import dask.array as da

        optimizer = self._check_options()
        before = dict(self.__dict__)
        continuing = self.warm_start and hasattr(self, "coef_")
        try:
            names = v.feature_names(X)
            classes = None
            if self._regression:
                model = "linear"
            else:
                labels = da.asarray(fdask.series_to_array(y))
                classes = np.unique(dask.compute(da.unique(labels))[0])
                model = "logistic" if len(classes) == 2 else "softmax"

            def init(problem):
                """Continue from the previous fit, mapped into this fit's space (as the
                in-memory ``fit`` does) when its standardisation differs."""
                if not continuing:
                    return None
                self._check_continuation(problem, classes, False)
                params, state = self._continued_state(problem, optimizer, problem.X.dtype)
                return params if state is None else state

            if optimizer == "auto":  # fastopt.dask has L-BFGS, not SAGA
                optimizer = (LBFGS() if self.penalty in (None, "l2") or self.alpha == 0
                             else optimizer_from("adam", self.lr, DEFAULT_LR.get))
            full_batch = (optimizer is None or self.batch_size is None
                          or isinstance(optimizer, LBFGS))
            result = fdask.fit(
                X, y, model=model, optimizer="newton" if optimizer is None else optimizer,
                strategy="gradient" if full_batch else "average", schedule=self.schedule,
                epochs=self.epochs, batch_size=self.batch_size or 1, shuffle=self.shuffle,
                penalty=self.penalty, alpha=self.alpha, l1_ratio=self.l1_ratio,
                fit_intercept=self.fit_intercept, sample_weight=sample_weight,
                standardize=self.standardize, classes=classes, tol=self.tol,
                n_iter_no_change=self.n_iter_no_change, early_stopping=self.early_stopping,
                validation_fraction=self.validation_fraction, random_state=self.random_state,
                backend=self.backend, n_jobs=self.n_jobs, sparse_update=self.sparse_update,
                verbose=self.verbose, init=init)
            self._publish(np.atleast_2d(result.coef_), np.atleast_1d(result.intercept_))
            if not self._regression:
                self.classes_ = classes
            self.n_features_in_ = int(X.shape[1])
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            previous_updates = self.t_ if continuing else 0
            self.grad_max_ = result.grad_max_
            self._state = result.state
            self._scaling = result.scaling
            self._target = result.target
            self.history_ = _merge_history(self.history_ if continuing else {},
                                           result.history)
            self.loss_curve_ = list(self.history_["loss"])
            self.n_iter_ = len(self.loss_curve_)
            self.t_ = (result.state.updates if result.state is not None
                       else previous_updates + len(result.history["loss"]))
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        if self.tol is not None and not result.converged:
            warnings.warn(not_converged_message(self.epochs, self.tol, self.n_iter_no_change),
                          convergence_warning(), stacklevel=3)
        return self

    def _blockwise(self, X, method):
        """``method`` (a name) applied block by block to a dask array or DataFrame: a lazy
        dask result of the same kind."""
        import pandas as pd

        function = getattr(self, method)
        if hasattr(X, "map_partitions"):  # dask DataFrame: keep each partition's index
            sample = function(X.head(1, npartitions=-1))

            def apply(part):
                out = function(part) if len(part) else sample[:0]
                return (pd.Series(out, index=part.index) if out.ndim == 1
                        else pd.DataFrame(out, index=part.index))
            meta = (pd.Series(sample[:0]) if sample.ndim == 1 else pd.DataFrame(sample[:0]))
            return X.map_partitions(apply, meta=meta)
        sample = function(np.asarray(X[:1].compute()))
        if sample.ndim == 1:
            return X.map_blocks(function, drop_axis=1, dtype=sample.dtype)
        return X.map_blocks(function, chunks=(X.chunks[0], (sample.shape[1],)),
                            dtype=sample.dtype)

    def _reset_features(self, X, check_finite):
        """What ``validate_data(reset=True)`` does with arrays that :func:`_ready_arrays`
        accepts: records ``n_features_in_``, forgets ``feature_names_in_`` (an ndarray has
        none) and, with ``check_finite``, checks X for NaN and inf."""
        if check_finite:
            v.assert_all_finite(X)
        self.n_features_in_ = int(X.shape[1])
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _fit(self, X, y, sample_weight, *, partial, classes=None):
        """Run the fit on a scratch copy of the training state and commit the fitted
        attributes only when it succeeds: an error or a KeyboardInterrupt leaves the estimator
        as it was before the call."""
        before = dict(self.__dict__)
        try:
            warning = self._fit_unsafe(X, y, sample_weight, partial, classes)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        if warning:
            warnings.warn(warning, convergence_warning(), stacklevel=3)
        return self

    def _fit_unsafe(self, X, y, sample_weight, partial, classes):
        optimizer = self._check_options(stochastic=partial)
        backend = _backends.resolve(self.backend)
        # Newton, L-BFGS, Newton-CG: never with partial (see _partial_fit_available)
        full_batch = not isinstance(optimizer, Optimizer)
        fitted = hasattr(self, "coef_")
        first_partial = partial and not fitted
        continuing = fitted and (partial or self.warm_start)
        # partial_fit's standardisation follows the batches seen so far (running statistics,
        # as StandardScaler.partial_fit); after fit (or load) it keeps that fit's statistics.
        running = (partial and self.standardize and continuing
                   and getattr(self, "_moments", None) is not None)
        # The NaN/inf check of dense X comes free with the scaling (column_scaling) or the
        # compiled epochs (Problem.check_finite_later), as in fastopt.fit; y is checked here.
        scales = self.standardize and not (partial and fitted)
        trains_checking = optimizer is not None and backend.checks_finite  # not Newton
        check_later = not v.is_sparse(X) and (scales or trains_checking)
        if not partial and _ready_arrays(X, y):
            self._reset_features(X, check_finite=not check_later)
        else:
            X, y = validate_data(self, X, y, reset=not partial or not fitted, dtype=_DTYPES,
                                 order="C", accept_sparse="csr", y_numeric=self._regression,
                                 multi_output=False, ensure_all_finite=not check_later)
        if v.is_sparse(X):  # duplicate entries summed (on a copy), as fastopt.fit does
            X = v.canonical_csr(X)
        model, classes = self._model_and_classes(y, classes, first_partial if partial else None)
        scaling = self._scaling if continuing and partial else None
        target = getattr(self, "_target", None) if continuing and partial else None
        moments = None
        if running:
            if not v.is_sparse(X):
                v.assert_all_finite(X)  # the statistics below read every value
            moments, scaling, target = self._running_statistics(X, y, sample_weight)
        elif first_partial and self.standardize:
            moments = self._batch_moments(X, y, sample_weight)
        problem, classes = prepare(X, y, model=model, penalty=self.penalty, alpha=self.alpha,
                                   l1_ratio=self.l1_ratio, fit_intercept=self.fit_intercept,
                                   sample_weight=sample_weight, backend=backend,
                                   standardize=scales, scaling=scaling, target=target,
                                   classes=classes, X_checked=True,
                                   trains=optimizer is not None,
                                   class_weight=self._class_weight(partial))
        if not partial and not self._regression:
            self._check_weighted_classes(problem)
        if continuing:
            self._check_continuation(problem, classes, partial)
        dtype = problem.X.dtype
        seed = v.seed_from(self.random_state)  # one draw per fit: the shuffle's (or SAGA's)
        if continuing:
            params, state = self._continued_state(problem, optimizer, dtype)
        else:
            params = np.zeros(problem.spec.n_params, dtype=dtype)
            state = None if full_batch else new_state(optimizer, params, seed)
        epochs, tol = (1, None) if partial else (self.epochs, self.tol)
        total_steps = None  # the fit's own updates, as in fastopt.fit
        if partial or continuing:
            n = problem.n_samples
            steps_per_epoch = -(-n // (n if self.batch_size is None
                                       else min(self.batch_size, n)))
            # partial_fit: schedule lengths span `epochs` calls; a warm-started fit: the
            # whole run, this fit included.
            total_steps = self.epochs * steps_per_epoch
            if continuing and not partial and state is not None:
                total_steps += state.updates
        params, history, converged, state, _, diverged, grad_max = solve(
            problem, params, backend=backend, optimizer=optimizer, state=state,
            schedule=self.schedule, epochs=epochs, batch_size=self.batch_size,
            shuffle=self.shuffle, tol=tol, n_iter_no_change=self.n_iter_no_change,
            early_stopping=self.early_stopping and not partial,
            validation_fraction=self.validation_fraction, verbose=self.verbose,
            total_steps=total_steps, n_jobs=self.n_jobs, sparse_update=self.sparse_update,
            seed=seed)
        if diverged:
            raise DivergenceError(diverged)  # _fit restores the estimator as it was
        updates = (state.updates if state is not None
                   else (self.t_ if continuing else 0) + len(history["loss"]))
        warning = None
        if not partial and self.tol is not None and not converged:
            warning = not_converged_message(self.epochs, self.tol, self.n_iter_no_change,
                                            history)
        self._commit(params, problem, classes, state, history, updates, continuing)
        self._moments = moments
        self.grad_max_ = None if partial else grad_max
        return warning

    def _batch_moments(self, X, y, sample_weight, previous=(None, None)):
        """The statistics of the partial_fit batches so far, this one added: features, and the
        target of a linear model."""
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        features = (Moments() if previous[0] is None else previous[0].copy()).add(X, weights)
        targets = None
        if self._regression:
            targets = (Moments() if previous[1] is None else previous[1].copy()).add(
                np.asarray(y, dtype=np.float64)[:, None], weights)
        return features, targets

    def _running_statistics(self, X, y, sample_weight):
        """``(moments, (mean, inv_std), target)`` of every partial_fit batch so far, this one
        included. When the standardisation changes beyond rounding (a batch unlike the ones
        before: a column constant so far now varies), the parameters are re-expressed in the
        new one (``_continued_state`` maps ``coef_``: the same function of the raw features);
        the optimizer state is kept. Within rounding the current one is kept, so that batches
        drawn alike train exactly as the epochs of ``fit`` do."""
        features, targets = self._batch_moments(X, y, sample_weight, self._moments)
        scaling = features.scaling()
        if all(np.allclose(new, old, rtol=1e-9, atol=0.0)
               for new, old in zip(scaling, self._scaling)):
            scaling = self._scaling
        target = self._target
        if targets is not None:
            new = target_units(targets.mean[0], targets.m2[0] / targets.weight,
                               self.fit_intercept)
            if not np.allclose(new, target, rtol=1e-9, atol=0.0):
                target = new
        return (features, targets), scaling, target

    def _commit(self, params, problem, classes, state, history, updates, continuing):
        """Set the fitted attributes from a finished fit on ``problem``."""
        scaling = problem.scaling
        coef, intercept = to_original_space(params, problem.spec, scaling, problem.target)
        self._publish(coef, intercept)
        if not self._regression:
            self.classes_ = classes
        self._state = state
        self._scaling = scaling
        self._target = problem.target
        self.history_ = _merge_history(self.history_ if continuing else {}, history)
        self.loss_curve_ = list(self.history_["loss"])
        self.n_iter_ = len(self.loss_curve_)
        self.t_ = updates

    def _check_continuation(self, problem, classes, partial):
        spec = problem.spec
        previous = np.atleast_2d(self.coef_).shape[1]
        if previous != spec.n_features:  # warm_start only: partial_fit's validate_data checks
            raise ValueError(f"warm_start=True: X has {spec.n_features} features, but the "
                             f"previous fit had {previous}; set warm_start=False to fit from "
                             "scratch.")
        if not self._regression and not np.array_equal(classes, self.classes_):
            raise ValueError(f"warm_start=True: y has the classes {classes.tolist()}, but the "
                             f"previous fit had {self.classes_.tolist()}; set "
                             "warm_start=False to fit from scratch.")
        if partial and self.standardize != (self._scaling[0] is not None):
            raise ValueError("standardize was changed since the model was fitted; call fit "
                             "to start over with the new setting.")

    def _continued_state(self, problem, optimizer, dtype):
        """Parameters and a scratch copy of the training state to continue from."""
        previous = getattr(self, "_state", None)
        mean, inv_std = self._scaling
        same_space = (previous is not None
                      and len(previous.params) == problem.spec.n_params
                      and getattr(self, "_target", (0.0, 1.0)) == problem.target
                      and (mean is None) == (problem.mean is None)
                      and (mean is None or (np.array_equal(mean, problem.mean)
                                            and np.array_equal(inv_std, problem.inv_std))))
        if same_space:
            params = _as_dtype(previous.params, dtype)
        else:  # another standardisation, intercept setting or a Newton fit: map coef_
            coef = np.atleast_2d(self.coef_)
            params = from_original_space(problem, coef, self.intercept_, dtype)
        if not isinstance(optimizer, Optimizer):  # a full-batch solver: no optimizer state
            return params, None
        names = optimizer._state_names()
        if (previous is not None and len(previous.params) == len(params)
                and previous.optimizer._state_names() == names
                and type(previous.optimizer) is type(optimizer)):
            moments = {key: _as_dtype(value, dtype) if isinstance(value, np.ndarray) else value
                       for key, value in previous.optimizer_state.items()}
        else:
            moments = optimizer.init(params)
        if previous is None:
            return params, TrainingState(params, optimizer, moments,
                                         seed=v.seed_from(self.random_state))
        return params, TrainingState(params, optimizer, moments, updates=previous.updates,
                                     epochs=previous.epochs, seed=previous.seed)

    def _class_weight(self, partial):
        """The class weights of this fit (LogisticRegression's ``class_weight``)."""
        class_weight = getattr(self, "class_weight", None)
        if partial and isinstance(class_weight, str) and class_weight == "balanced":
            raise ValueError("class_weight='balanced' is not supported for partial_fit: the "
                             "class counts of the whole data are unknown; pass a dict of "
                             "weights computed beforehand (as scikit-learn's SGDClassifier)")
        return class_weight

    def _check_weighted_classes(self, problem):
        if problem.sample_weight is None:
            return
        present = np.unique(problem.y[problem.sample_weight > 0])
        if len(present) < 2:
            raise ValueError("This solver needs samples of at least 2 classes with non-zero "
                             "sample_weight, but only one class has any weight.")

    # -- predicting ---------------------------------------------------------------------------

    def _scores(self, X):
        check_is_fitted(self)
        # No NaN/inf pass over X before the product: see v.checked_scores.
        X = validate_data(self, X, reset=False, dtype=_DTYPES, accept_sparse="csr",
                          ensure_all_finite=False)
        return v.checked_scores(X, np.atleast_2d(self.coef_), self.intercept_, check=lambda X:
                                assert_all_finite(X, estimator_name=type(self).__name__,
                                                  input_name="X"))


class LinearRegression(RegressorMixin, _FastoptLinearModel):
    r"""Linear least squares fitted to its optimum (or trained with a first-order optimizer).

    Minimises, over the coefficients :math:`w` and intercept :math:`b`,

    .. math::
        L(w, b) = \frac{1}{\sum_i s_i} \sum_i s_i\, \tfrac12 (w^\top \tilde x_i + b - y_i)^2
        + \alpha\, P(w)

    with sample weights :math:`s_i` (1 by default), the penalty :math:`P` of ``penalty``
    (never on :math:`b`), and :math:`\tilde x = (x - \mu) / \sigma` when ``standardize=True``
    (else :math:`\tilde x = x`). With the default ``optimizer="auto"`` a solver that reaches
    the optimum runs: L-BFGS for no penalty or ``"l2"`` (conjugate gradients for linear
    regression, whose objective is quadratic; Newton's method with a sampled Hessian for tall
    dense logistic problems), SAGA for ``"l1"`` and ``"elasticnet"``, each stopped
    (``tol="auto"``) when its estimate of the relative distance to the optimum is below 1e-7;
    ``batch_size``, ``lr``, ``schedule`` and ``shuffle`` then do not apply, and
    ``partial_fit`` (or ``early_stopping=True``) trains with Adam. With a first-order
    optimizer, each epoch visits the rows in minibatches of ``batch_size``
    (a new pseudo-random order per epoch with ``shuffle=True``) and takes one step of
    ``optimizer`` per minibatch, at the learning rate ``schedule(t)`` where ``t`` counts the
    updates. The whole epoch runs in one compiled call; see :func:`fastopt.fit`, which gives
    the same coefficients for the same arguments (pass ``lr``, ``standardize`` and
    ``penalty`` explicitly: their defaults differ; with ``sample_weight`` the estimators also
    weight the standardisation, ``fastopt.fit`` does not).

    ``standardize=True`` is the default, unlike :func:`fastopt.fit`: a first-order optimizer
    with one learning rate converges poorly when features have very different scales (think of
    a column of values around 100 next to one around 0.01), and a default estimator has to work
    on raw data. The standardisation is applied on the fly by the kernel (X is never copied),
    its mean and standard deviation are weighted by ``sample_weight`` (so weights act as
    repeated rows), and ``coef_``/``intercept_`` are reported for the original features.
    Note that the penalty applies to the coefficients of the standardised features.

    Parameters
    ----------
    optimizer : str, fastopt.Optimizer or solver options, default="auto"
        ``"auto"`` (see above; ``"adam"`` in fastopt 0.1), a name of
        ``fastopt.OPTIMIZERS`` (``"sgd"``, ``"adagrad"``, ``"rmsprop"``, ``"adadelta"``,
        ``"adam"``, ``"adamw"``, ``"nadam"``, ``"radam"``), an optimizer object such as
        ``fastopt.Adam(lr=0.01, betas=(0.9, 0.99))``, or a full-batch solver: ``"lbfgs"``,
        ``"newton-cg"``, ``"saga"`` (or their option objects ``fastopt.LBFGS(...)``, ...) and
        ``"newton"`` (an exact Hessian). For the solvers ``epochs`` is the iteration limit and
        ``lr``, ``schedule``, ``batch_size``, ``shuffle`` and ``early_stopping`` do not apply;
        with a solver named explicitly ``partial_fit`` is unavailable (``hasattr`` says False
        and calling it raises AttributeError).
    lr : float, default=None
        The learning rate. None: an optimizer object's own; for an optimizer given by name,
        0.01 (1.0 for ``"adadelta"``, whose lr scales its own adaptive step; see
        ``fastopt.estimators.DEFAULT_LR``). This differs from :func:`fastopt.fit`, which keeps
        torch's defaults (1e-3 for Adam and SGD): those are tuned for neural networks and need
        thousands of epochs on a linear model.
    schedule : None, str, fastopt.schedules.Schedule or callable, default=None
        Learning rate as a function of the update counter ``t``: None (constant), a name of
        ``fastopt.SCHEDULES``, a schedule object, or ``f(t_array) -> lr_array``. Lengths left
        at None (``T_max``, ``max_steps``, ...) span the fit: ``epochs`` epochs (for
        ``partial_fit`` too: plan ``epochs`` calls), or the whole run so far plus this fit for
        a warm-started fit.
    epochs : int, default=2000
        Passes over the data in ``fit``: a budget, which ``tol`` usually ends far earlier. It
        is this large for small data sets, where an epoch is a single update.
    batch_size : int or None, default=32
        Rows per update; None for full-batch gradient descent.
    shuffle : True, False or "batches", default=True
        Visit the rows in a new pseudo-random order each epoch (seeded by ``random_state``);
        "batches": shuffle only the order of blocks of ``batch_size`` consecutive rows, faster
        on large X but not a shuffle of the rows (see :func:`fastopt.fit`).
    penalty : {None, "l2", "l1", "elasticnet"}, default=None
    alpha : float, default=1e-4
        Strength of the penalty.
    l1_ratio : float, default=0.15
        The L1 share of the elastic net.
    fit_intercept : bool, default=True
    standardize : bool, default=True
        Train on standardised features (see above).
    tol : "auto", float or None, default="auto"
        When to stop. For a first-order optimizer: the training loss (the validation loss
        with ``early_stopping``) has not improved by ``tol`` for ``n_iter_no_change`` epochs;
        ``"auto"`` is 1e-4. For L-BFGS and Newton-CG: a number is a tolerance on the
        gradient's largest entry (scikit-learn's meaning); ``"auto"`` stops when the solver's
        estimate of the relative distance to the optimum, ``(L - L*) / L``, is at most 1e-7
        (``fastopt.solvers.AUTO_GAP``). For SAGA see ``fastopt.SAGA``. Newton's method always
        runs to a Newton decrement of 1e-15 (any ``tol`` but None). None runs all ``epochs``. Reaching ``epochs`` first gives a ``ConvergenceWarning`` that says how
        far the fit got.
    n_iter_no_change : int, default=5
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, monitor the loss on them and keep the
        best coefficients seen.
    validation_fraction : float, default=0.1
    warm_start : bool, default=False
        Let ``fit`` continue the previous fit: from its coefficients (mapped to the new data's
        standardisation), optimizer state, update counter ``t`` and shuffle stream;
        ``loss_curve_``/``history_``/``n_iter_`` are extended rather than restarted.
    random_state : None, int or numpy Generator/RandomState, default=None
        Seeds the shuffle and the validation split.
    backend : {"auto", "cpp", "numba", "numpy", "cuda"}, default="auto"
    verbose : int, default=0
        1 prints one line per epoch to stderr.
    n_jobs : int, default=None
        Threads per epoch (None: 1; -1: every CPU); see :func:`fastopt.fit`.
    sparse_update : {"exact", "lazy"}, default="exact"
        For SciPy sparse X: see :func:`fastopt.fit` ("lazy" needs ``standardize=False``).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X had string column names (a pandas DataFrame).
    loss_curve_ : list of float
        Mean training objective of each epoch of the run (the last ``fit`` without warm
        start, then every warm-started ``fit`` and ``partial_fit``; Newton: one per iteration).
    history_ : dict of lists
        The per-epoch history of :func:`fastopt.fit` (``epoch``, ``loss``, ``lr``,
        ``seconds``, ``steps``, and ``val_loss`` with early stopping) for the same epochs.
    n_iter_ : int
        Epochs (Newton: iterations) in the run, ``len(loss_curve_)``.
    t_ : int
        Optimizer updates in the run: the schedule's ``t`` for the next update.
    grad_max_ : float or None
        The largest entry of the objective's gradient at the fitted coefficients, in the space
        the fit trains in (standardised features and target): 0 at the optimum, so it says how
        close ``fit`` got. From the solvers only: None for a first-order optimizer (it would
        cost a pass over X), after ``partial_fit``, and for an l1 or elasticnet penalty (not
        differentiable).

    Notes
    -----
    ``partial_fit`` runs one epoch on the given rows and continues the optimizer state, the
    update counter ``t`` and the shuffle stream; the standardisation is computed on the first
    call (or taken from ``fit``) and kept. ``early_stopping`` and ``tol`` do not apply to it.

    A fit whose loss becomes non-finite raises ``fastopt.DivergenceError`` (try a smaller
    ``lr``); a fitted estimator then keeps its previous coefficients, as it does when a fit is
    interrupted with Ctrl-C.

    Threads: the compiled epochs release the GIL, so separate estimators fitted in separate
    threads run in parallel (with the results of sequential fits). One estimator must not be
    fitted from two threads at once (like scikit-learn's estimators, it is not locked);
    predicting from several threads on a fitted estimator is safe.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.estimators import LinearRegression
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> y = X @ [1.0, 2.0] + 3.0
    >>> est = LinearRegression().fit(X, y)
    >>> round(est.score(X, y), 6)
    1.0
    """

    _regression = True

    def __init__(self, optimizer="auto", lr=None, schedule=None, epochs=2000, batch_size=32,
                 shuffle=True, penalty=None, alpha=1e-4, l1_ratio=0.15, fit_intercept=True,
                 standardize=True, tol="auto", n_iter_no_change=5, early_stopping=False,
                 validation_fraction=0.1, warm_start=False, random_state=None,
                 backend="auto", verbose=0, n_jobs=None, sparse_update="exact"):
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.random_state = random_state
        self.backend = backend
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.sparse_update = sparse_update

    def _model_and_classes(self, y, classes, first_partial):
        return "linear", None

    def _publish(self, coef, intercept):
        self.coef_ = coef[0]
        self.intercept_ = float(intercept[0])

    @available_if(_partial_fit_available)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing the optimizer state, the update counter and
        the shuffle stream of the previous ``fit``/``partial_fit`` call.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, partial=True)

    def predict(self, X):
        """Predicted targets, shape (n_samples,); a dask X gives a lazy dask result."""
        if v.is_dask_collection(X):
            return self._blockwise(X, "predict")
        return self._scores(X)[:, 0]


class LogisticRegression(ClassifierMixin, _FastoptLinearModel):
    r"""Logistic (two classes) or softmax (more) regression fitted to its optimum (or trained
    with a first-order optimizer).

    With :math:`K` classes, scores :math:`f(x) = W \tilde x + b`; for two classes :math:`W` has
    one row and the model is :math:`P(y = c_1 \mid x) = \sigma(f(x))` (``model="logistic"`` of
    :func:`fastopt.fit`), otherwise :math:`P(y = c_k \mid x) = \mathrm{softmax}(f(x))_k`
    (``model="softmax"``). The objective is the weighted mean log-loss plus the penalty,

    .. math::
        L(W, b) = \frac{1}{\sum_i s_i} \sum_i s_i\, \bigl(-\log P(y_i \mid x_i)\bigr)
        + \alpha\, P(W),

    with :math:`\tilde x = (x - \mu) / \sigma` when ``standardize=True``. The solver chosen by
    the default ``optimizer="auto"``, the minibatches, the optimizer, the schedule and the
    stopping rule are those of :class:`LinearRegression`, with one more route: for an l2
    penalty, dense X and many more rows than parameters (a sample of ``m = max(2000, 20 p)``
    rows for two classes, ``max(2000, 8 p)`` for more, at most a tenth of them, whose Hessian
    costs at most twice a pass), ``tol="auto"`` runs Newton's method with the exact gradient
    and the Hessian of that sample (drawn once, seed 0), until its Newton decrement is below
    1e-7 of the loss (``engine.hessian_sample_rows``). See :func:`fastopt.fit`, which gives the
    same coefficients for the same arguments.

    ``standardize=True`` is the default, unlike :func:`fastopt.fit`, so that the defaults work
    on raw features of any scale: the kernel standardises on the fly (X is never copied), with
    a mean and standard deviation weighted by ``sample_weight``, and ``coef_``/``intercept_``
    are reported for the original features. The penalty applies to the coefficients of the
    standardised features. Unlike :class:`LinearRegression`, the default ``penalty`` is
    ``"l2"`` (``alpha=1e-4``): it keeps the coefficients finite when the classes are separable.

    Parameters
    ----------
    optimizer : str, fastopt.Optimizer or solver options, default="auto"
        As in :class:`LinearRegression` (``"adam"`` in fastopt 0.1).
    lr : float, default=None
        As in :class:`LinearRegression` (None: 0.01 for ``"adam"``).
    schedule : None, str, fastopt.schedules.Schedule or callable, default=None
    epochs : int, default=2000
    batch_size : int or None, default=32
    shuffle : True, False or "batches", default=True
    penalty : {None, "l2", "l1", "elasticnet"}, default="l2"
    alpha : float, default=1e-4
    l1_ratio : float, default=0.15
    fit_intercept : bool, default=True
    standardize : bool, default=True
    tol : "auto", float or None, default="auto"
    n_iter_no_change : int, default=5
    early_stopping : bool, default=False
    validation_fraction : float, default=0.1
    warm_start : bool, default=False
    random_state : None, int or numpy Generator/RandomState, default=None
    backend : {"auto", "cpp", "numba", "numpy", "cuda"}, default="auto"
    verbose : int, default=0
    n_jobs : int, default=None
    sparse_update : {"exact", "lazy"}, default="exact"
        See :class:`LinearRegression` for the meaning of each.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes, multiplying ``sample_weight``, as in scikit-learn:
        ``"balanced"`` weighs class k by ``n_samples / (n_classes * n_k)``; a dict maps labels
        to weights (absent labels weigh 1). ``partial_fit`` takes a dict only.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted class labels (any type: numbers, strings, ...).
    coef_ : ndarray of shape (1, n_features) for two classes, (n_classes, n_features) else
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_features_in_, feature_names_in_, loss_curve_, history_, n_iter_, t_, grad_max_
        As in :class:`LinearRegression`.

    Notes
    -----
    ``partial_fit`` needs ``classes`` on its first call (every class that will ever occur);
    it then runs one epoch per call as :class:`LinearRegression`'s does.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.estimators import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> clf = LogisticRegression(random_state=0).fit(X, ["no", "no", "yes", "yes"])
    >>> clf.predict([[0.5], [2.5]]).tolist()
    ['no', 'yes']
    """

    _regression = False

    def __init__(self, optimizer="auto", lr=None, schedule=None, epochs=2000, batch_size=32,
                 shuffle=True, penalty="l2", alpha=1e-4, l1_ratio=0.15, fit_intercept=True,
                 standardize=True, tol="auto", n_iter_no_change=5, early_stopping=False,
                 validation_fraction=0.1, warm_start=False, random_state=None,
                 backend="auto", verbose=0, n_jobs=None, sparse_update="exact",
                 class_weight=None):
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.random_state = random_state
        self.backend = backend
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.sparse_update = sparse_update
        self.class_weight = class_weight

    def _model_and_classes(self, y, classes, first_partial):
        v.check_class_labels(y)
        if first_partial is None:  # fit: the classes of y
            classes, _ = v.encode_labels(y)
        elif first_partial:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(all the labels that y may contain).")
            classes, _ = v.encode_labels(np.asarray(classes).ravel())
        else:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes={np.unique(classes).tolist()!r} is not the same as "
                                 f"on the first call to partial_fit, was: "
                                 f"{self.classes_.tolist()!r}")
            classes = self.classes_
        return ("logistic" if len(classes) == 2 else "softmax"), classes

    def _publish(self, coef, intercept):
        self.coef_ = coef
        self.intercept_ = intercept

    @available_if(_partial_fit_available)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)``, continuing the optimizer state, the update counter and
        the shuffle stream of the previous ``fit``/``partial_fit`` call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like, default=None
            All the class labels; required on the first call, optional (and checked) after.
            (Before ``sample_weight``, as in scikit-learn's ``SGDClassifier.partial_fit``.)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    def decision_function(self, X):
        """Scores: shape (n_samples,) for two classes (positive means ``classes_[1]``),
        (n_samples, n_classes) otherwise. A dask X gives a lazy dask result."""
        if v.is_dask_collection(X):
            return self._blockwise(X, "decision_function")
        scores = self._scores(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        if v.is_dask_collection(X):
            return self._blockwise(X, "predict_proba")
        scores = self.decision_function(X)
        return probabilities("logistic" if scores.ndim == 1 else "softmax", scores)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        if v.is_dask_collection(X):
            return self._blockwise(X, "predict_log_proba")
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row, shape (n_samples,)."""
        if v.is_dask_collection(X):
            return self._blockwise(X, "predict")
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(np.intp)]
        return self.classes_[np.argmax(scores, axis=1)]
