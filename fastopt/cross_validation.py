r"""Cross-validated estimators: :class:`LogisticRegressionCV` and :class:`LinearRegressionCV`.

Each one chooses the strength of the penalty by K-fold cross-validation, with scikit-learn's
conventions (``Cs`` or ``alphas``, ``cv``, ``scoring``, ``refit``, ``n_jobs``; fitted
``scores_``, ``C_`` / ``alpha_``, ``coefs_paths_``), then refits on all rows.

How the grid is trained
-----------------------
- The exact solvers (``optimizer="auto"``: L-BFGS for ``"l2"``, SAGA for ``"l1"`` and
  ``"elasticnet"``; or ``"lbfgs"``, ``"saga"``, ``"newton-cg"``, ``"newton"``) follow a
  *regularisation path* in each fold: the fold's data are checked, encoded and standardised
  once (one :class:`~fastopt.engine.Problem` per fold), and the penalties are solved from the
  strongest to the weakest, each solve starting from the previous solution, and L-BFGS from
  the previous solve's correction pairs too (a warm start: neighbouring optima are close and
  the curvature changes little).
- The first-order optimizers (``"adam"``, ...) train the whole grid of a fold together
  (:func:`fastopt.fit_many`'s multi-configuration epoch, one pass over the fold per epoch),
  each (fold, penalty) from zero coefficients, as separate estimators would.
- ``n_jobs`` runs the folds in threads: every objective evaluation and epoch is a compiled
  call that releases the GIL.

The objective of one fit is that of :class:`fastopt.LogisticRegression` /
:class:`fastopt.LinearRegression`: weighted mean loss + ``alpha`` times the penalty, with
:math:`\tfrac12\|W\|^2` for ``"l2"`` (intercept not penalised).

This module imports scikit-learn; ``fastopt`` itself does not need it.
"""

from __future__ import annotations

import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _backends
from . import _validation as v
from .engine import (DivergenceError, class_weights, convergence_warning, from_original_space,
                     new_state, optimizer_from, prepare, probabilities, scaled_penalty, solve,
                     to_original_space)
from . import many
from .estimators import DEFAULT_LR
from .optim import Optimizer
from .solvers import LBFGS, SAGA, lbfgs

__all__ = ["LogisticRegressionCV", "LinearRegressionCV"]

_DTYPES = [np.float64, np.float32]
_SMOOTH_PENALTIES = ("l2",)
# L-BFGS's correction pairs on the path (its own default is 10). On CV1's folds (160,000 x 50,
# C from 1e-4 to 1e4, tol=1e-6) a fold's path took 245 passes over X with 10 pairs, 186 with
# 20 and 156 with 30 (50 and 100: the same 156); a pair costs two dot products of the
# parameters' length per iteration.
PATH_HISTORY = 30
_PENALTIES = ("l2", "l1", "elasticnet")


@dataclass
class _Grid:
    """The penalties of one search. ``values``: the grid as given (C or alpha), held constant
    across folds and the refit; ``kind``: ``"C"`` (scikit-learn's inverse strength: the alpha
    of rows whose weights sum to S is ``1 / (C S)``) or ``"alpha"`` (fastopt's own)."""

    kind: str
    values: np.ndarray

    def alphas(self, weight_sum):
        """fastopt's alphas for rows whose (class- and sample-) weights sum to
        ``weight_sum``."""
        if self.kind == "alpha":
            return self.values.copy()
        return 1.0 / (self.values * weight_sum)

    def path_order(self, weight_sum):
        """Indices of the grid from the strongest penalty to the weakest (stable on ties)."""
        return np.argsort(-self.alphas(weight_sum), kind="stable")


def _check_grid(name, values, *, positive):
    """A 1-D float64 array of finite values (> 0 with ``positive``, else >= 0)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"The '{name}' parameter must be an int >= 1 or a list of floats. "
                         f"Got {values!r} instead.") from None
    bound = "> 0" if positive else ">= 0"
    if (array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array))
            or np.any(array <= 0 if positive else array < 0)):
        raise ValueError(f"The '{name}' parameter must be an int >= 1 or a non-empty list of "
                         f"finite floats {bound}. Got {values!r} instead.")
    return array


def _grid_size(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"The '{name}' parameter must be an int >= 1 or a list of floats. "
                         f"Got {value!r} instead.")
    return int(value)


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"The '{name}' parameter must be True or False. Got {value!r} "
                         "instead.")


def _with_alpha(problem, alpha):
    """``problem`` with the penalty strength ``alpha`` (fastopt's units, original target),
    re-expressed for a standardised linear target as :func:`fastopt.engine.prepare` does.
    ``problem`` comes from ``prepare`` with ``alpha=0``, which leaves ``l1_ratio`` as given
    (with a penalty, ``prepare`` would have re-expressed it already)."""
    spec = problem.spec
    l1_ratio = spec.l1_ratio
    if problem.target != (0.0, 1.0):
        alpha, l1_ratio = scaled_penalty(spec.penalty, alpha, l1_ratio, problem.target[1])
    return replace(problem, spec=replace(spec, alpha=float(alpha), l1_ratio=float(l1_ratio)))


@dataclass
class _FoldResult:
    """One fold's path, in the grid's order: coefficients on the original features
    ``coef`` (n_values, K, d), ``intercept`` (n_values, K), ``n_iter`` (n_values,),
    ``scores`` (n_values,) and how many fits did not meet ``tol``."""

    coef: np.ndarray
    intercept: np.ndarray
    n_iter: np.ndarray
    scores: np.ndarray
    not_converged: int


class _CrossValidatedModel(BaseEstimator):
    """What the two estimators share: options, the folds, the grid, the refit, predictions."""

    _regression = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- subclass hooks -----------------------------------------------------------------------

    def _grid(self):
        raise NotImplementedError

    def _publish(self, coef, intercept):
        raise NotImplementedError

    # -- options ------------------------------------------------------------------------------

    def _check_options(self):
        """Validate the constructor parameters; returns ``(grid, optimizer object or None for
        Newton's method, exact, threads for the folds)``."""
        grid = self._grid()
        v.check_choice("penalty", self.penalty, _PENALTIES)
        v.check_float("l1_ratio", self.l1_ratio, 0.0, 1.0)
        v.check_int("epochs", self.epochs, 1)
        v.check_float("tol", self.tol, 0.0, allow_none=True)
        v.check_int("batch_size", self.batch_size, 1, allow_none=True)
        v.check_int("n_iter_no_change", self.n_iter_no_change, 1)
        for name in ("fit_intercept", "standardize", "refit"):
            _check_flag(name, getattr(self, name))
        if self.lr is not None:
            v.check_float("lr", self.lr, 0.0)
        folds_threads = v.check_n_jobs(self.n_jobs)
        name = self.optimizer.lower() if isinstance(self.optimizer, str) else None
        smooth = self.penalty in _SMOOTH_PENALTIES
        if name == "lbfgs" or name == "auto" and smooth:  # "auto": the estimators' choice
            optimizer = LBFGS(history_size=PATH_HISTORY)
        elif name == "auto":
            optimizer = SAGA()
        else:
            optimizer = optimizer_from(self.optimizer, self.lr, DEFAULT_LR.get)
        exact = not isinstance(optimizer, Optimizer)
        if exact and not smooth and not isinstance(optimizer, SAGA):
            raise ValueError(f"penalty={self.penalty!r} needs optimizer='saga' (or 'auto') or "
                             f"a first-order optimizer: optimizer={self.optimizer!r} solves "
                             "smooth objectives only; use penalty='l2'.")
        return grid, optimizer, exact, folds_threads

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Score every penalty of the grid by cross-validation, choose the best mean score
        and (with ``refit``) fit it on all rows.

        Parameters
        ----------
        X : array-like or SciPy sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the training rows, and of the test rows in the scores.

        Returns
        -------
        self

        Raises
        ------
        fastopt.DivergenceError
            A fit diverged (the message names the fold and the penalty); the estimator keeps
            its previous state, as on any error.
        """
        before = dict(self.__dict__)
        try:
            message = self._fit(X, y, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        if message:
            warnings.warn(message, convergence_warning(), stacklevel=2)
        return self

    def _fit(self, X, y, sample_weight):
        grid, optimizer, exact, folds_threads = self._check_options()
        backend = _backends.resolve(self.backend)
        X, y = validate_data(self, X, y, dtype=_DTYPES, order="C", accept_sparse="csr",
                             y_numeric=self._regression, multi_output=False)
        if v.is_sparse(X):
            X = v.canonical_csr(X)
        n = X.shape[0]
        if sample_weight is not None:
            sample_weight = v.check_sample_weight(sample_weight, n, 1.0)
        classes, targets = None, None
        if not self._regression:
            v.check_class_labels(y)
            classes, targets = v.encode_labels(y)
            if len(classes) < 2:
                raise ValueError("This solver needs samples of at least 2 classes in the "
                                 f"data, but the data contains only one class: {classes[0]!r}.")
        model = ("linear" if self._regression
                 else "logistic" if len(classes) == 2 else "softmax")
        class_weight = self._class_weight_dict(classes, targets, sample_weight)
        row_weight = self._row_weight(classes, targets, sample_weight, class_weight)
        splitter = check_cv(self.cv, y, classifier=not self._regression)
        folds = list(splitter.split(X, y))
        scorer = self._scorer()
        seed = v.seed_from(self.random_state)

        def fold_path(number):
            train, test = folds[number]
            problem, _ = prepare(
                backend.take_rows(X, train), y[train], model=model, penalty=self.penalty,
                alpha=0.0, l1_ratio=self.l1_ratio, fit_intercept=self.fit_intercept,
                sample_weight=None if sample_weight is None else sample_weight[train],
                backend=backend, standardize=self.standardize, classes=classes,
                X_checked=True, class_weight=class_weight)
            weight_sum = self._weight_sum(row_weight, train)
            alphas, order = grid.alphas(weight_sum), grid.path_order(weight_sum)
            where = f"fold {number + 1} of {len(folds)}"
            if exact:
                coef, intercept, n_iter, missed = _exact_path(
                    problem, alphas, order, optimizer, backend, self.epochs, self.tol, where,
                    seed=seed)
            else:
                coef, intercept, n_iter, missed = _stochastic_grid(
                    problem, alphas, optimizer, backend, seed, self._training_options(), where)
            scores = self._scores_on(scorer, coef, intercept, classes, X[test], y[test],
                                     None if sample_weight is None else sample_weight[test])
            return _FoldResult(coef, intercept, n_iter, scores, missed)

        if folds_threads > 1 and len(folds) > 1:
            pool = ThreadPoolExecutor(min(folds_threads, len(folds)))
            try:
                results = list(pool.map(fold_path, range(len(folds))))
            finally:  # an error (or Ctrl-C) in one fold: the folds not started never start
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            results = [fold_path(number) for number in range(len(folds))]

        scores = np.array([r.scores for r in results])                 # (folds, values)
        paths = np.array([r.coef for r in results])                    # (folds, values, K, d)
        intercepts = np.array([r.intercept for r in results])          # (folds, values, K)
        n_iter = np.array([r.n_iter for r in results])
        missed = sum(r.not_converged for r in results)
        all_weight = self._weight_sum(row_weight, np.arange(n))
        full_alphas = grid.alphas(all_weight)
        if self.refit:
            best = int(np.argmax(scores.mean(axis=0)))  # the first of equal scores, as sklearn
            chosen_value = grid.values[best]
            init = (paths[:, best].mean(axis=0), intercepts[:, best].mean(axis=0))
            coef, intercept, refit_iter, refit_missed = self._refit(
                X, y, sample_weight, model, classes, class_weight, full_alphas[best],
                optimizer, exact, backend, seed, init)
            missed += refit_missed
            best_score = float(scores.mean(axis=0)[best])
        else:
            # scikit-learn's refit=False: each fold's best coefficients, averaged, and the
            # mean of the chosen values.
            per_fold = np.argmax(scores, axis=1)
            rows = np.arange(len(folds))
            coef = paths[rows, per_fold].mean(axis=0)
            intercept = intercepts[rows, per_fold].mean(axis=0)
            chosen_value = float(np.mean(grid.values[per_fold]))
            refit_iter = None
            best_score = float(scores[rows, per_fold].mean())

        self._publish(coef, intercept)
        if not self._regression:
            self.classes_ = classes
        self._publish_grid(grid, chosen_value, all_weight)
        self.scores_ = scores
        self.best_score_ = best_score
        if self.fit_intercept:
            paths = np.concatenate([paths, intercepts[..., None]], axis=-1)
        self.coefs_paths_ = paths[:, :, 0, :] if self._regression else paths
        self.n_iter_ = n_iter
        self.refit_n_iter_ = refit_iter
        if missed and self.tol is not None:
            return (f"{missed} of the {scores.size + bool(self.refit)} fits reached "
                    f"epochs={self.epochs} before meeting tol={self.tol}; consider increasing "
                    "epochs (or tol).")
        return None

    def _training_options(self):
        """The first-order fits' options (``engine.solve``'s keywords)."""
        return dict(schedule=self.schedule, epochs=self.epochs, batch_size=self.batch_size,
                    tol=self.tol, n_iter_no_change=self.n_iter_no_change)

    def _class_weight_dict(self, classes, targets, sample_weight):
        """``class_weight`` as a dict over the whole data set, the same in every fold and the
        refit ("balanced" counts the classes of all rows, weighted, as scikit-learn's
        LogisticRegressionCV does)."""
        class_weight = getattr(self, "class_weight", None)
        if class_weight is None:
            return None
        if isinstance(class_weight, str) and class_weight == "balanced":
            indices = targets.astype(np.intp)
            weights = np.ones(len(indices)) if sample_weight is None else sample_weight
            totals = np.bincount(indices, weights=weights, minlength=len(classes))
            per_class = np.divide(weights.sum(), len(classes) * totals,
                                  out=np.zeros_like(totals), where=totals > 0)
            return dict(zip(classes.tolist(), per_class.tolist()))
        # A dict is checked by engine.class_weights, which names bad labels or values.
        class_weights(class_weight, classes, targets)
        return class_weight

    @staticmethod
    def _row_weight(classes, targets, sample_weight, class_weight):
        """Each row's weight in the objective (sample times class weight), or None for
        equal weights."""
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if class_weight is not None:
            per_row = class_weights(class_weight, classes, targets)
            weight = per_row if weight is None else weight * per_row
        return weight

    @staticmethod
    def _weight_sum(row_weight, rows):
        """The total weight of ``rows`` (an index array): what scikit-learn's C multiplies."""
        return float(len(rows) if row_weight is None else row_weight[rows].sum())

    def _scores_on(self, scorer, coef, intercept, classes, X_test, y_test, weight):
        """The scorer's value of every grid point on the held-out rows."""
        probe = self._fitted_copy(X_test.shape[1], classes)
        out = np.empty(len(coef))
        extra = {} if weight is None else {"sample_weight": weight}
        for i in range(len(coef)):
            probe._publish(coef[i], intercept[i])
            out[i] = scorer(probe, X_test, y_test, **extra)
        return out

    def _fitted_copy(self, n_features, classes):
        """A fitted-looking estimator of this class for the scorer (which calls ``predict``,
        ``predict_proba`` or ``decision_function``), its coefficients set per grid point."""
        probe = type(self).__new__(type(self))
        probe.__dict__.update(self.get_params(deep=False))
        probe.n_features_in_ = n_features
        if classes is not None:
            probe.classes_ = classes
        return probe

    def _refit(self, X, y, sample_weight, model, classes, class_weight, alpha, optimizer,
               exact, backend, seed, init):
        """Coefficients on all rows at ``alpha``, from the folds' mean solution (exact
        solvers) or from zero (first-order optimizers)."""
        # alpha=0 here: _with_alpha sets the penalty, re-expressed once for a scaled target.
        problem, _ = prepare(X, y, model=model, penalty=self.penalty, alpha=0.0,
                             l1_ratio=self.l1_ratio, fit_intercept=self.fit_intercept,
                             sample_weight=sample_weight, backend=backend,
                             standardize=self.standardize, classes=classes, X_checked=True,
                             class_weight=class_weight)
        where = "the refit on all rows"
        if exact:
            coef, intercept, n_iter, missed = _exact_path(
                problem, np.array([alpha]), np.array([0]), optimizer, backend, self.epochs,
                self.tol, where, init=init, seed=seed)
        else:
            coef, intercept, n_iter, missed = _stochastic_grid(
                problem, np.array([alpha]), optimizer, backend, seed,
                self._training_options(), where)
        return coef[0], intercept[0], int(n_iter[0]), missed

    # -- predicting ---------------------------------------------------------------------------

    def _scorer(self):
        """The ``scoring`` scorer; None means accuracy (classifier) or R^2 (regressor), named
        explicitly: scikit-learn's default scorer would call ``score``, which is this one."""
        if isinstance(self.scoring, (list, tuple, set, dict)):
            raise ValueError(f"The 'scoring' parameter must be None, a scorer name or a "
                             f"callable: one score chooses the penalty. Got {self.scoring!r}.")
        return check_scoring(self, scoring=self.scoring if self.scoring is not None
                             else self._default_scoring)

    def score(self, X, y, sample_weight=None):
        """The ``scoring`` of the predictions on ``(X, y)``, as in the cross-validation
        (accuracy or R^2 when ``scoring`` is None).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        extra = {} if sample_weight is None else {"sample_weight": sample_weight}
        return float(self._scorer()(self, X, y, **extra))

    def _scores(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=_DTYPES, accept_sparse="csr",
                          ensure_all_finite=False)
        return v.checked_scores(X, np.atleast_2d(self.coef_), self.intercept_)


def _exact_path(problem, alphas, order, solver, backend, epochs, tol, where, init=None,
                seed=0):
    """The regularisation path of one Problem with an exact solver: ``alphas[order]`` solved
    in turn, each from the previous solution (the first from ``init``, original-space
    ``(coef, intercept)``, or zero); L-BFGS also keeps its correction pairs from one alpha to
    the next (:func:`_shifted_pairs`); SAGA shuffles with ``seed``. Returns ``(coef (m, K,
    d), intercept (m, K), n_iter (m,), fits that missed tol)`` in the order of ``alphas``."""
    spec = problem.spec
    dtype = problem.X.dtype
    if init is None:
        params = np.zeros(spec.n_params, dtype=dtype)
    else:
        params = from_original_space(problem, init[0], init[1], dtype)
    coef = np.empty((len(alphas), spec.n_outputs, spec.n_features))
    intercept = np.empty((len(alphas), spec.n_outputs))
    n_iter = np.zeros(len(alphas), dtype=np.int64)
    missed = 0
    pairs, previous = [], None
    for index in order:
        fold_problem = _with_alpha(problem, alphas[index])
        try:
            if isinstance(solver, LBFGS):
                pairs = _shifted_pairs(pairs, previous, fold_problem.spec)
                params, n_iter[index], converged, pairs = _lbfgs(
                    fold_problem, params, solver, backend, epochs, tol, pairs)
            else:
                params, history, converged, *_ = solve(
                    fold_problem, params.copy(), backend=backend, optimizer=solver,
                    epochs=epochs, batch_size=None, tol=tol, seed=seed)
                n_iter[index] = len(history["loss"])
        except DivergenceError as exc:
            raise DivergenceError(f"{where}, alpha={alphas[index]:.6g}: {exc}",
                                  exc.result) from exc
        previous = fold_problem.spec
        missed += tol is not None and not converged
        coef[index], intercept[index] = to_original_space(params, spec, problem.scaling,
                                                          problem.target)
    return coef, intercept, n_iter, missed


def _shifted_pairs(pairs, previous, spec):
    """L-BFGS's pairs ``(s, y)`` of the previous alpha's solve, as pairs of this one's
    objective: the penalty adds ``alpha s`` to ``y`` on the coefficients, so ``y`` moves by
    the change of alpha times ``s`` there, exactly; the loss's part is the curvature along
    ``s`` near the previous optimum, a close estimate near this one. (``lbfgs`` leaves out
    pairs whose ``s^T y`` is no longer positive.) On CV1's folds this took a path from 156
    passes over X to 111 (3 classes: 268 to 193)."""
    if not pairs or previous is None:
        return []
    change = spec.alpha - previous.alpha
    n_coef = spec.n_outputs * spec.n_features
    shifted = []
    for s, y in pairs:
        y = y.copy()
        y[:n_coef] += change * s[:n_coef]
        shifted.append((s, y))
    return shifted


def _lbfgs(problem, params, solver, backend, epochs, tol, pairs):
    """``fastopt.engine.solve`` for an :class:`~fastopt.LBFGS` solver, starting from
    ``pairs`` too: ``(params, iterations, converged, the pairs it ended with)``."""
    problem.check_finite_now()
    data = backend.dataset(problem)
    grad_tol = solver.tolerance_grad if solver.tolerance_grad is not None else (tol or 0.0)
    run = lbfgs(lambda x: backend.objective(data, x), params, max_iter=epochs,
                history_size=solver.history_size, tolerance_grad=grad_tol,
                tolerance_change=solver.tolerance_change, max_eval=solver.max_eval,
                initial_pairs=pairs)
    if run.status in ("nonfinite", "line_search"):  # as engine.solve says it
        raise DivergenceError(f"LBFGS stopped after {run.n_iter} iterations: {run.message}. "
                              "Try standardize=True, or a smaller range of alphas (Cs) if "
                              "the classes are separable.")
    converged = run.status in ("converged", "precision")
    return np.asarray(run.x, dtype=params.dtype), run.n_iter, converged, run.pairs


def _stochastic_grid(problem, alphas, optimizer, backend, seed, options, where):
    """The first-order fits of every alpha from zero coefficients with the same shuffle seed,
    trained together by :func:`fastopt.many` (one compiled epoch reads each minibatch once for
    all of them); each equals the separate estimator's fit with that ``random_state``, to the
    bit. Returns as :func:`_exact_path`."""
    spec = problem.spec
    runs = []
    for index, alpha in enumerate(alphas):
        params = np.zeros(spec.n_params, dtype=problem.X.dtype)
        runs.append(many.Run(index, {"schedule": options["schedule"]},
                             _with_alpha(problem, alpha), new_state(optimizer, params, seed)))
    many.train_together(problem, runs, backend=backend, epochs=options["epochs"],
                        batch_size=options["batch_size"], shuffle=True, tol=options["tol"],
                        n_iter_no_change=options["n_iter_no_change"], early_stopping=False,
                        validation_fraction=0.1, callback=None, verbose=0, n_jobs=None,
                        sparse_update="exact")
    coef = np.empty((len(alphas), spec.n_outputs, spec.n_features))
    intercept = np.empty((len(alphas), spec.n_outputs))
    n_iter = np.zeros(len(alphas), dtype=np.int64)
    missed = 0
    for run, alpha in zip(runs, alphas):
        if run.error is not None:
            raise DivergenceError(f"{where}, alpha={alpha:.6g}: {run.error}")
        diverged = run.monitor.divergence()
        if diverged:
            raise DivergenceError(f"{where}, alpha={alpha:.6g}: {diverged}")
        missed += options["tol"] is not None and not run.monitor.converged
        coef[run.index], intercept[run.index] = to_original_space(
            run.state.params, spec, problem.scaling, problem.target)
        n_iter[run.index] = len(run.monitor.history["loss"])
    return coef, intercept, n_iter, missed


_COMMON_PARAMETERS = """
    cv : int, cross-validation splitter or iterable, default=None
        scikit-learn's ``check_cv``: None is 5 folds, an int that many; {splitter}.
    scoring : None, str or callable, default=None
        What the folds are scored by (:func:`sklearn.metrics.check_scoring`): None is
        {default}, a scorer name such as ``{example}``, or ``scorer(estimator, X, y)``.
        ``score`` uses it too.
    refit : bool, default=True
        True: choose the value with the best mean score over the folds (the first of equal
        ones, in the grid's order) and fit it on all rows. False: average each fold's best
        coefficients, and the chosen values (scikit-learn's ``refit=False``).
    penalty : {"l2", "l1", "elasticnet"}, default="l2"
        "l1" and "elasticnet" are solved by SAGA (``optimizer="auto"`` or ``"saga"``) or a
        first-order ``optimizer``.
    l1_ratio : float, default=0.15
        The L1 share of the elastic net.
    fit_intercept : bool, default=True
    standardize : bool, default=True
        Fit on standardised features, as the fastopt estimators do: each fold computes its
        own statistics (once for the whole path) and the penalty applies to the standardised
        coefficients. Pass False for scikit-learn's objective.
    optimizer : str, fastopt.LBFGS, fastopt.SAGA, fastopt.NewtonCG or fastopt.Optimizer, \
default="auto"
        ``"auto"``: L-BFGS with 30 correction pairs (``"lbfgs"``) for ``"l2"``, SAGA
        (``"saga"``) for ``"l1"`` and ``"elasticnet"``, as the fastopt estimators choose.
        These, ``"newton-cg"`` and ``"newton"`` (or solver objects) follow the warm-started
        path; a first-order optimizer (``"adam"``, ``fastopt.SGD(...)``, ...) fits every
        (fold, value) from zero, with ``lr``, ``schedule``, ``batch_size`` and
        ``n_iter_no_change`` as in the fastopt estimators.
    lr : float, default=None
    schedule : None, str, fastopt.schedules.Schedule or callable, default=None
    epochs : int, default=2000
        The exact solvers' iteration limit per fit, or the first-order optimizers' epochs.
    batch_size : int or None, default=32
    tol : float or None, default=1e-4
        L-BFGS, Newton-CG and Newton stop when the gradient's largest entry is at most
        ``tol``; SAGA when an epoch changes the coefficients by at most ``tol`` relative to
        their largest (scikit-learn's saga rule); the first-order optimizers as in the
        fastopt estimators. Fits that reach ``epochs`` first give
        one ``ConvergenceWarning`` that counts them.
    n_iter_no_change : int, default=5
    random_state : None, int or numpy Generator/RandomState, default=None
        Seeds the first-order optimizers' shuffle (one seed for every fit); the folds come
        from ``cv`` (pass a splitter with its own random_state to shuffle them).
    backend : {"auto", "cpp", "numba", "numpy"}, default="auto"
    n_jobs : int, default=None
        Folds trained at once, in threads (None: 1; -1: every CPU). The compiled passes
        release the GIL; the results are those of ``n_jobs=None``."""


class LogisticRegressionCV(ClassifierMixin, _CrossValidatedModel):
    r"""Logistic (two classes) or softmax (more) regression with the strength of its penalty
    chosen by cross-validation.

    Each candidate is fitted on every training fold as :class:`fastopt.LogisticRegression`
    would fit it, minimising the weighted mean log-loss + :math:`\alpha P(W)`, and scored on
    the held-out rows. The grid is scikit-learn's ``Cs``, its inverse strength: a C on rows
    whose weights (sample and class weights; 1 each by default) sum to :math:`S` is

    .. math::
        \alpha = \frac{1}{C\, S},

    so C is held constant across folds and the refit (the training folds have fewer rows,
    hence a larger alpha), as in scikit-learn's ``LogisticRegressionCV``, which gives the
    same fits with ``standardize=False``. ``alphas`` instead gives fastopt's alpha directly,
    held constant.

    Parameters
    ----------
    Cs : int or array-like of float > 0, default=10
        An int is that many values ``np.logspace(-4, 4, Cs)`` (scikit-learn's grid).
    alphas : None or array-like of float >= 0, default=None
        fastopt's penalty strengths (``LogisticRegression``'s ``alpha``); when given, ``Cs``
        is not used.
    {common}
    class_weight : None, "balanced" or dict, default=None
        As in :class:`fastopt.LogisticRegression`; "balanced" counts the classes of all rows
        (weighted by ``sample_weight``) once, and every fold uses those weights, as
        scikit-learn does.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    Cs_, alphas_ : ndarray of shape (n_values,)
        The grid in both units (alpha for all rows: that of the refit), in the order given.
    C_, alpha_ : float
        The chosen value, in both units (``refit=False``: the mean of the folds' choices).
    scores_ : ndarray of shape (n_folds, n_values)
        The score of every fold and value.
    best_score_ : float
        The mean score over the folds of the chosen value (``refit=False``: of each fold's
        best).
    coefs_paths_ : ndarray of shape (n_folds, n_values, n_rows, n_features + fit_intercept)
        Each fold's coefficients (the intercept last) on the original features, ``n_rows`` 1
        for two classes.
    n_iter_ : ndarray of shape (n_folds, n_values)
        Iterations (exact solvers) or epochs of each fit.
    refit_n_iter_ : int or None
        Those of the refit (None without).
    n_features_in_, feature_names_in_

    Notes
    -----
    The shapes of ``C_``, ``scores_``, ``coefs_paths_`` and ``n_iter_`` are those of
    scikit-learn's ``use_legacy_attributes=False`` (its coming default), without its
    ``l1_ratios`` axis: ``l1_ratio`` is not searched.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from fastopt import LogisticRegressionCV
    >>> X, y = make_classification(n_samples=500, random_state=0)
    >>> clf = LogisticRegressionCV(Cs=5, standardize=False).fit(X, y)
    >>> clf.scores_.shape, clf.C_ in clf.Cs_
    ((5, 5), True)
    """

    _regression = False
    _default_scoring = "accuracy"
    score = _CrossValidatedModel.score  # the scoring's, not ClassifierMixin's accuracy

    def __init__(self, Cs=10, alphas=None, cv=None, scoring=None, refit=True, penalty="l2",
                 l1_ratio=0.15, fit_intercept=True, standardize=True, optimizer="auto",
                 lr=None, schedule=None, epochs=2000, batch_size=32, tol=1e-4,
                 n_iter_no_change=5, class_weight=None, random_state=None, backend="auto",
                 n_jobs=None):
        self.Cs = Cs
        self.alphas = alphas
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.random_state = random_state
        self.backend = backend
        self.n_jobs = n_jobs

    def _grid(self):
        if self.alphas is not None:
            return _Grid("alpha", _check_grid("alphas", self.alphas, positive=False))
        if isinstance(self.Cs, numbers.Number):
            return _Grid("C", np.logspace(-4, 4, _grid_size("Cs", self.Cs)))
        return _Grid("C", _check_grid("Cs", self.Cs, positive=True))

    def _publish(self, coef, intercept):
        self.coef_ = np.atleast_2d(coef)
        self.intercept_ = np.atleast_1d(intercept)

    def _publish_grid(self, grid, chosen, weight_sum):
        with np.errstate(divide="ignore"):  # alpha = 0 is C = inf
            other = 1.0 / (grid.values * weight_sum)
            chosen_other = float(np.divide(1.0, chosen * weight_sum))
        if grid.kind == "C":
            self.Cs_, self.alphas_, self.C_, self.alpha_ = grid.values, other, chosen, chosen_other
        else:
            self.alphas_, self.Cs_, self.alpha_, self.C_ = grid.values, other, chosen, chosen_other
        self.C_, self.alpha_ = float(self.C_), float(self.alpha_)

    def decision_function(self, X):
        """Scores: shape (n_samples,) for two classes (positive means ``classes_[1]``),
        (n_samples, n_classes) otherwise."""
        scores = self._scores(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        scores = self.decision_function(X)
        return probabilities("logistic" if scores.ndim == 1 else "softmax", scores)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row, shape (n_samples,)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(np.intp)]
        return self.classes_[np.argmax(scores, axis=1)]


class LinearRegressionCV(RegressorMixin, _CrossValidatedModel):
    r"""Ridge regression (or a penalised linear model) with the strength of its penalty
    chosen by cross-validation.

    Each candidate is fitted on every training fold as :class:`fastopt.LinearRegression`
    would fit it, minimising :math:`\frac{1}{2 S}\sum_i s_i (w^\top x_i + b - y_i)^2 + \alpha
    P(w)` with :math:`P(w) = \tfrac12\|w\|^2` for ``"l2"``, and scored on the held-out rows.

    ``alphas`` are fastopt's (``LinearRegression``'s ``alpha``), held constant across the folds
    and the refit. scikit-learn's ``Ridge`` minimises :math:`\sum_i s_i (\dots)^2 + a
    \|w\|^2` instead: the same fit on rows whose weights sum to :math:`S` (the number of rows
    without weights) has

    .. math::
        a = \alpha\, S \qquad (\alpha = a / S),

    so ``RidgeCV(alphas=a, cv=5)`` on n rows (5 training folds of 4n/5 rows) corresponds to
    ``alphas = a / (0.8 n)`` here with ``standardize=False``, and its refit to ``Ridge(alpha=
    alpha_ * n)``.

    Parameters
    ----------
    alphas : int or array-like of float >= 0, default=10
        An int is that many values ``np.logspace(-6, 2, alphas)``: on standardised features
        (the default), from no visible penalty to coefficients shrunk about a hundredfold.
    {common}

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    alphas_ : ndarray of shape (n_values,)
        The grid, in the order given.
    alpha_ : float
        The chosen value (``refit=False``: the mean of the folds' choices).
    scores_ : ndarray of shape (n_folds, n_values)
    best_score_ : float
    coefs_paths_ : ndarray of shape (n_folds, n_values, n_features + fit_intercept)
    n_iter_ : ndarray of shape (n_folds, n_values)
    refit_n_iter_ : int or None
    n_features_in_, feature_names_in_
        As in :class:`LogisticRegressionCV`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import LinearRegressionCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3))
    >>> y = X @ [1.0, 2.0, 3.0] + rng.standard_normal(200)
    >>> reg = LinearRegressionCV(alphas=[1e-3, 1e-1, 10.0]).fit(X, y)
    >>> reg.alpha_, reg.scores_.shape
    (0.001, (5, 3))
    """

    _regression = True
    _default_scoring = "r2"
    score = _CrossValidatedModel.score  # the scoring's, not RegressorMixin's R^2

    def __init__(self, alphas=10, cv=None, scoring=None, refit=True, penalty="l2",
                 l1_ratio=0.15, fit_intercept=True, standardize=True, optimizer="auto",
                 lr=None, schedule=None, epochs=2000, batch_size=32, tol=1e-4,
                 n_iter_no_change=5, random_state=None, backend="auto", n_jobs=None):
        self.alphas = alphas
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.epochs = epochs
        self.batch_size = batch_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.backend = backend
        self.n_jobs = n_jobs

    def _grid(self):
        if isinstance(self.alphas, numbers.Number):
            return _Grid("alpha", np.logspace(-6, 2, _grid_size("alphas", self.alphas)))
        return _Grid("alpha", _check_grid("alphas", self.alphas, positive=False))

    def _publish(self, coef, intercept):
        self.coef_ = np.atleast_2d(coef)[0]
        self.intercept_ = float(np.atleast_1d(intercept)[0])

    def _publish_grid(self, grid, chosen, weight_sum):
        self.alphas_ = grid.values
        self.alpha_ = float(chosen)

    def predict(self, X):
        """Predicted targets, shape (n_samples,)."""
        return self._scores(X)[:, 0]


def _fill_docstring(cls, **fields):
    """The shared parameters put into ``cls``'s docstring (absent under ``python -OO``)."""
    if cls.__doc__ is None:
        return
    common = _COMMON_PARAMETERS.strip()
    for key, value in fields.items():
        common = common.replace("{" + key + "}", value)
    cls.__doc__ = cls.__doc__.replace("{common}", common)


_fill_docstring(LogisticRegressionCV, splitter="StratifiedKFold for the classes",
                default="accuracy", example="'neg_log_loss'")
_fill_docstring(LinearRegressionCV, splitter="KFold, unshuffled", default="R^2",
                example="'neg_mean_squared_error'")
