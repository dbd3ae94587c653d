"""``fastopt compare``: every optimizer on the same data, against the exact optimum.

Each optimizer trains the same model from zero parameters for the same number of epochs
(``tol=None``) with the same shuffle seed; Newton's method then finds the optimum of the
training objective, and every fit is scored by its relative gap to it::

    gap = (L(final params) - L*) / max(|L*|, tiny)

where ``L`` is the full training objective (the backend's ``objective``,
penalty included). With no data, the default problem is scikit-learn's bundled breast-cancer
data set (569 rows, 30 features; no download), logistic regression with a small L2 penalty
(the classes are linearly separable, so without one the optimum is at infinity).

Default learning rates, for standardized features (``standardize=True``); ``lr=`` overrides
them for every first-order optimizer:

============  ==========================================  ===========  =========
name          optimizer                                   default lr   batch
============  ==========================================  ===========  =========
gd            SGD, full batch (gradient descent)          1.0          all rows
sgd           SGD                                         0.1          batch_size
momentum      SGD(momentum=0.9)                           0.03         batch_size
nesterov      SGD(momentum=0.9, nesterov=True)            0.03         batch_size
adagrad       Adagrad                                     0.3          batch_size
rmsprop       RMSprop                                     0.003        batch_size
adadelta      Adadelta                                    1.0          batch_size
adam          Adam                                        0.01         batch_size
adamw         AdamW(weight_decay=0), the penalty is       0.01         batch_size
              in the objective
nadam         NAdam                                       0.01         batch_size
radam         RAdam                                       0.03         batch_size
lbfgs         L-BFGS (fastopt.LBFGS), one iteration per   (none)       all rows
              epoch
newton-cg     Newton-CG (fastopt.NewtonCG), one outer     (none)       all rows
              iteration per epoch
saga          SAGA (fastopt.SAGA), automatic step, one    (none)       one row
              pass over X per epoch
newton        Newton's method (line search), one          (none)       all rows
              iteration per epoch
============  ==========================================  ===========  =========

The solvers (``lbfgs``, ``newton-cg``, ``newton``, ``saga``) run with ``tol=None``: one
iteration (saga: one epoch) per epoch until ``epochs``, until no step decreases the objective any more, or
until the relative gap is rounding (``AT_OPTIMUM``, 1e-14), where more iterations change
nothing.

What ``updates_to_target`` (the table's "steps to gap") and the curves' ``updates`` count
depends on the kind of optimizer (:data:`STEP_UNITS`): minibatch updates for the first-order
optimizers (``gd``: one update per pass over X); passes over X for ``lbfgs`` and
``newton-cg``, i.e. objective evaluations (line-search trials included) plus Hessian-vector
products, which is what an iteration costs, and for ``saga`` (one per epoch: its n row
updates cost about one pass, not n minibatch updates); iterations for ``newton`` (each one a gradient,
a Hessian and a line search).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import _backends
from . import _validation as v
from .optim import make_optimizer
from .engine import DivergenceError, FitResult, from_original_space, prepare
from .many import fit_many
from .training import fit

__all__ = ["COMPARE_OPTIMIZERS", "STEP_UNITS", "ComparisonResult", "compare", "lr_sweep",
           "SweepResult", "plot_loss_curves", "load_default_data"]

# name -> (optimizer, hyperparameters, default lr, full batch)
COMPARE_OPTIMIZERS = {
    "gd": ("sgd", {}, 1.0, True),
    "sgd": ("sgd", {}, 0.1, False),
    "momentum": ("sgd", {"momentum": 0.9}, 0.03, False),
    "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}, 0.03, False),
    "adagrad": ("adagrad", {}, 0.3, False),
    "rmsprop": ("rmsprop", {}, 0.003, False),
    "adadelta": ("adadelta", {}, 1.0, False),
    "adam": ("adam", {}, 0.01, False),
    "adamw": ("adamw", {"weight_decay": 0.0}, 0.01, False),
    "nadam": ("nadam", {}, 0.01, False),
    "radam": ("radam", {}, 0.03, False),
    "lbfgs": ("lbfgs", {}, None, True),
    "newton-cg": ("newton-cg", {}, None, True),
    "saga": ("saga", {}, None, True),
    "newton": ("newton", {}, None, True),
}

# The optimizers without a learning rate, and what their "updates" count: the full-batch
# solvers' history["steps"] counts passes over X (L-BFGS and Newton-CG) or iterations (Newton).
SOLVERS = ("lbfgs", "newton-cg", "newton", "saga")
STEP_UNITS = {"lbfgs": "passes", "newton-cg": "passes", "newton": "iterations",
              "saga": "passes"}
STEP_NOTE = ("steps to gap: minibatch updates (gd: full-batch updates, one per pass over X);\n"
             "passes over X for lbfgs and newton-cg (objective evaluations and Hessian-vector "
             "products) and saga (one per epoch);\niterations for newton. ms/epoch: per iteration for the solvers.")

TINY = 1e-12          # floor of |L*| in the relative gap
AT_OPTIMUM = 1e-14    # a solver's relative gap that is rounding: the solver stops there
OPTIMUM_ITERATIONS = 100
PROGRESS_DELAY = 0.5  # seconds a fit runs before its progress bar appears (short fits: none)


class _Progress:
    """A tqdm bar over one fit's epochs on stderr, shown once the fit has run for
    ``PROGRESS_DELAY`` seconds and removed when it ends; without tqdm, one line per fit."""

    def __init__(self, name, epochs):
        try:
            from tqdm import tqdm
        except ImportError:
            print(f"fastopt compare: {name} ({epochs} epochs)", file=sys.stderr, flush=True)
            self.bar = None
        else:
            self.bar = tqdm(total=epochs, desc=name, unit="epoch", file=sys.stderr,
                            delay=PROGRESS_DELAY, leave=False, dynamic_ncols=True)

    def update(self):
        if self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def load_default_data():
    """``(X, y)`` of scikit-learn's bundled breast-cancer data set (no download)."""
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError as exc:
        raise ImportError("the default data set of fastopt compare comes with scikit-learn: "
                          "pip install scikit-learn, or pass your own X and y "
                          "(fastopt compare --data FILE --target COLUMN)") from exc
    return load_breast_cancer(return_X_y=True)


@dataclass
class ComparisonResult:
    """What :func:`compare` returns: ``results`` (name -> FitResult, absent for a fit that
    diverged), ``rows`` (one dict per optimizer, in the order run; ``diverged`` is true when
    the loss became non-finite or ended above the starting loss; ``counts`` says what its
    ``updates`` and ``updates_to_target`` count: "updates", "passes" or "iterations"),
    ``optimum`` (L*), ``curves`` (name -> dict of per-epoch ``updates``, ``seconds``
    (cumulative) and ``gap``), ``settings`` (the arguments, data sizes, ``feature_names`` of a
    DataFrame X)."""

    model: str
    optimum: float
    results: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)
    curves: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def table(self):
        """A pandas DataFrame of the rows when pandas is importable, else the list of dicts."""
        try:
            import pandas as pd
        except ImportError:
            return list(self.rows)
        return pd.DataFrame(self.rows).set_index("optimizer")

    def to_text(self) -> str:
        """The rows as an aligned text table, then a line on what "steps to gap" counts
        for each kind of optimizer."""
        score = "r2" if self.model == "linear" else "accuracy"
        columns = [("optimizer", "optimizer", "s"), ("lr", "lr", "g"),
                   ("final_loss", "final loss", ".6g"), ("gap", "gap", ".2e"),
                   ("updates_to_target", "steps to gap", "d"),
                   ("seconds_to_target", "s to gap", ".3g"),
                   ("ms_per_epoch", "ms/epoch", ".3g"), (score, score, ".4f")]
        if any(row.get("diverged") for row in self.rows):
            columns.append(("diverged", "", "s"))
        cells = [[title for _, title, _ in columns]]
        for row in self.rows:
            line = []
            for key, _, fmt in columns:
                value = row.get(key)
                if key == "diverged":
                    line.append("diverged" if value else "")
                elif value is None or (isinstance(value, float) and math.isnan(value)):
                    line.append("-")
                else:
                    line.append(format(value, fmt))
            cells.append(line)
        widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
        text = []
        for line in cells:
            parts = [line[0].ljust(widths[0])]
            parts += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])]
            text.append("  ".join(parts).rstrip())
        text.append(STEP_NOTE)
        return "\n".join(text)


# Rows scored at a time: all fits' scores of a block stay in cache. One product of the whole X
# with the fits' few columns ran slower (1e6 x 100, 11 fits: 170-385 ms against 157 ms in
# blocks): BLAS copies X into its panels and the product's 88 MB come fresh from the kernel.
SCORE_ROWS = 4096

# The parameter vectors one pass of the compiled many_objective serves (max_objective_group,
# csrc/include/fastopt/many_config.hpp).
OBJECTIVE_GROUP = 64


def _scores(model, results, X, y):
    """The accuracy (classifiers) or R² (linear) of each of ``results`` on ``(X, y)``, from
    the products of X with all their coefficients (one pass over X, in blocks of rows)."""
    coefs = [np.atleast_2d(result.coef_) for result in results]
    columns = np.vstack(coefs).T
    intercepts = np.concatenate([np.broadcast_to(result.intercept_, (len(coef),))
                                 for result, coef in zip(results, coefs)])
    bounds = np.cumsum([0] + [len(coef) for coef in coefs])
    y = np.asarray(y)
    if model == "linear":
        y_float = y.astype(np.float64)
        total = float(np.sum((y_float - y_float.mean()) ** 2))
    hits = np.zeros(len(results))  # right predictions, or residual sums of squares
    for lo in range(0, v.n_rows(X), SCORE_ROWS):
        block = np.asarray(X[lo:lo + SCORE_ROWS] @ columns) + intercepts
        for i, result in enumerate(results):
            scores = block[:, bounds[i]:bounds[i + 1]]
            if model == "linear":
                hits[i] += float(np.sum((y_float[lo:lo + SCORE_ROWS] - scores[:, 0]) ** 2))
                continue
            if model == "logistic":
                predictions = result.classes_[(scores[:, 0] > 0).astype(np.intp)]
            else:
                predictions = result.classes_[np.argmax(scores, axis=1)]
            hits[i] += np.count_nonzero(predictions == y[lo:lo + SCORE_ROWS])
    if model == "linear":
        return [1.0 - rss / total if total > 0 else float("nan") for rss in hits]
    return [float(count) / len(y) for count in hits]


def _data(X, y, model):
    """``(X, y, model)``: the default data set when both are None."""
    if X is None and y is None:
        X, y = load_default_data()
        return X, y, model or "logistic"
    if X is None or y is None:
        raise ValueError("pass both X and y, or neither for the default data set")
    return X, y, model or "linear"


def compare(X=None, y=None, *,
            model: str | None = None, optimizers=None, epochs: int = 100,
            batch_size: int | None = 32,
            lr: float | None = None, schedule: object = None, backend: str = "auto",
            standardize: bool = True, penalty: str | None = "l2", alpha: float = 1e-3,
            seed: int = 0, target_gap: float = 1e-2, progress: bool | None = None,
            optimum=None, together: bool = True) -> ComparisonResult:
    """Fit the same model with every optimizer and measure each against the optimum.

    Parameters
    ----------
    X, y : training data; both None: the breast-cancer data set (needs scikit-learn).
    model : "linear", "logistic" or "softmax"; None: "logistic" for the default data, else
        "linear".
    optimizers : list of names from :data:`COMPARE_OPTIMIZERS` (default: all).
    epochs, batch_size, schedule, backend, standardize, penalty, alpha : as in
        :func:`fastopt.fit`, for every fit (``gd`` and ``newton`` use the full batch).
    lr : one learning rate for every first-order optimizer; None: the defaults in the table
        of the module docstring.
    seed : the shuffle seed (``random_state``), the same for every fit.
    target_gap : the relative gap whose first crossing by the exact training objective,
        evaluated after every epoch, gives ``updates_to_target`` and ``seconds_to_target``
        (training time only).
    progress : True: a progress bar per fit on stderr (tqdm, when installed: it appears once
        a fit has run for half a second; else one line per fit); None: when stderr is a
        terminal; False: quiet.
    optimum : the optimal training loss when already known (e.g. from an earlier call on the
        same data and settings); None: found with Newton's method.
    together : True (default): the first-order optimizers that share a batch size (all but
        ``gd``) train together in one :func:`fastopt.fit_many`, which reads each minibatch
        once for all of them, and the exact objectives of their epochs are taken up to 64
        parameter vectors (of any fits and epochs) a pass over X; the results are the same
        to the bit as separate fits, but their timings are shared: ``ms_per_epoch``, the
        curves' ``seconds`` and ``seconds_to_target`` are those of the shared epochs,
        ``seconds`` the wall time of the whole group and of the exact objectives' passes.
        False: one fit per optimizer, each with its own timings.
    """
    X, y, model = _data(X, y, model)
    names = list(COMPARE_OPTIMIZERS) if optimizers is None else list(optimizers)
    unknown = [name for name in names if name not in COMPARE_OPTIMIZERS]
    if unknown or not names:
        raise ValueError(f"unknown optimizer {', '.join(map(repr, unknown)) or '(none)'}; "
                         f"choose from {', '.join(COMPARE_OPTIMIZERS)}")
    rates = {name: None if name in SOLVERS else
             (COMPARE_OPTIMIZERS[name][2] if lr is None else lr) for name in names}
    session = _Session(X, y, model=model, epochs=epochs, batch_size=batch_size,
                       schedule=schedule, backend=backend, standardize=standardize,
                       penalty=penalty, alpha=alpha, seed=seed, progress=progress,
                       optimum=optimum)
    fits = session.run([(name, name, rates[name]) for name in names], together)
    out = session.result(target_gap, lr)
    for name in names:
        session.add_row(out, name, *fits[name])
    session.finish(out, target_gap)
    return out


_AT_ZERO = object()  # the key of the objective at zero in _ExactLosses


class _ExactLosses:
    """The exact training objectives of the parameters the fits trained together report
    after each epoch, for the curves: ``many_objective`` takes OBJECTIVE_GROUP of them (of
    any fits and epochs) per pass over X: 11 fits of 3 epochs cost one pass, not 33. The
    vectors waiting never take more memory than X (many parameters: softmax on wide X)."""

    def __init__(self, backend, data, problem):
        self.backend, self.data = backend, data
        x_bytes = problem.X.data.nbytes if v.is_sparse(problem.X) else problem.X.nbytes
        vector_bytes = problem.spec.n_params * problem.X.dtype.itemsize
        self.group = int(min(OBJECTIVE_GROUP, max(1, x_bytes // vector_bytes)))
        self.losses: dict = {}  # key -> exact losses of its epochs, in order
        self.pending: list = []  # (key, params) not evaluated yet
        self.seconds = 0.0

    def add(self, key, params):
        self.losses.setdefault(key, [])
        self.pending.append((key, params))
        if len(self.pending) >= self.group:
            self.flush()

    def flush(self):
        if self.pending:
            start = time.perf_counter()
            values = self.backend.many_objective(self.data, [p for _, p in self.pending])
            for (key, _), value in zip(self.pending, values):
                self.losses[key].append(float(value))  # a fit's epochs arrive in order
            self.pending = []
            self.seconds += time.perf_counter() - start

    def finish(self):
        """Evaluates what is pending; returns the seconds all the passes took."""
        self.flush()
        return self.seconds


class _Session:
    """What the fits of :func:`compare` and :func:`lr_sweep` share: the data, the settings,
    the exact objective (the backend's, on the problem as the fits train it) and the
    optimum."""

    def __init__(self, X, y, *, model, epochs, batch_size, schedule, backend, standardize,
                 penalty, alpha, seed, progress, optimum):
        self.X, self.y, self.model, self.epochs = X, y, model, epochs
        self.batch_size = batch_size
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.backend = _backends.resolve(backend)
        self.common = dict(model=model, schedule=schedule, epochs=epochs,
                           standardize=standardize, penalty=penalty, alpha=alpha, tol=None,
                           random_state=seed, backend=self.backend.name)
        self.problem, self.classes = prepare(
            X, y, model=model, penalty=penalty, alpha=alpha, l1_ratio=0.15, fit_intercept=True,
            sample_weight=None, standardize=standardize, backend=self.backend, trains=False)
        self.data = self.backend.dataset(self.problem)
        self.X_scored = v.check_X(X, check_finite=False)  # X as predict() takes it
        # The optimum: Newton to convergence where it applies, else the best final loss.
        self.optimum_source = "newton"
        if optimum is not None:
            self.optimum_source = "given"
        else:
            try:
                exact = fit(X, y, optimizer="newton",
                            **{**self.common, "epochs": OPTIMUM_ITERATIONS})
                optimum = self.full_loss(exact)
            except ValueError:
                optimum, self.optimum_source = math.inf, "best fit"
        self.optimum = optimum
        self.initial_loss = None  # the objective at zero: run() takes it with the curves'

    def objective(self, params):
        return float(self.backend.objective(self.data, params)[0])

    def full_loss(self, result: FitResult) -> float:
        if result.state is not None:
            params = result.state.params
        else:
            params = from_original_space(self.problem, result.coef_, result.intercept_,
                                         self.problem.X.dtype)
        return self.objective(params)

    def result(self, target_gap, lr):
        names_in = v.feature_names(self.X)
        return ComparisonResult(self.model, self.optimum, settings=dict(
            self.common, batch_size=self.batch_size, lr=lr, target_gap=target_gap,
            n_samples=len(self.X), n_features=self.problem.spec.n_features,
            optimum_source=self.optimum_source,
            feature_names=None if names_in is None else list(names_in),
            initial_loss=self.initial_loss))

    def run(self, runs, together):
        """Fit each ``(key, optimizer name, lr)`` of ``runs``: ``{key: (result or None,
        exact losses per epoch, wall seconds, rate, error or None[, score])}``. The
        first-order ones that share a batch size train in one fit_many call, and all are
        scored in one pass over X, when ``together``."""
        fits = {}
        groups: dict = {}
        for key, name, rate in runs:
            if name in SOLVERS or not together:
                fits[key] = self.fit_one(key, name, rate)
            else:
                full_batch = COMPARE_OPTIMIZERS[name][3]
                groups.setdefault(None if full_batch else self.batch_size, []).append(
                    (key, name, rate))
        exact = _ExactLosses(self.backend, self.data, self.problem)
        zero = np.zeros(self.problem.spec.n_params, dtype=self.problem.X.dtype)
        if groups:
            exact.add(_AT_ZERO, zero)
        for batch, group in groups.items():
            fits.update(self.fit_group(group, batch, exact))
        if groups:
            # The groups' walls take in the exact objectives' passes, shared by all of them.
            seconds = exact.finish()
            for key, fitted in fits.items():
                if key in exact.losses and fitted[0] is not None:
                    fits[key] = (fitted[0], exact.losses[key], fitted[2] + seconds,
                                 *fitted[3:])
            self.initial_loss = exact.losses[_AT_ZERO][0]
        if self.initial_loss is None:
            self.initial_loss = float(self.backend.many_objective(self.data, [zero])[0])
        if together:
            self.score(fits)
        else:
            for key in fits:
                one = {key: fits[key]}
                self.score(one)
                fits[key] = one[key]
        return fits

    def fit_one(self, key, name, rate):
        kind, hyper, _, full_batch = COMPARE_OPTIMIZERS[name]
        bar = _Progress(key, self.epochs) if self.progress else None
        exact_losses = []
        optimum = self.optimum

        def record(entry):
            # The exact training objective after each epoch (one pass over X), not the
            # running mean of the minibatch losses: the curves and "to target" use it.
            # many_objective, as the fits trained together use: the same bits either way.
            exact_losses.append(float(self.backend.many_objective(
                self.data, [entry["params"].astype(self.problem.X.dtype)])[0]))
            if bar is not None:
                bar.update()
            # A solver at the optimum (to rounding) would go on spending passes that change
            # nothing, and stretch the pictures' axes: it stops there.
            if (name in SOLVERS and math.isfinite(optimum) and exact_losses[-1] - optimum
                    <= AT_OPTIMUM * max(abs(optimum), TINY)):
                return False
            return True

        start = time.perf_counter()
        try:
            if name in SOLVERS:
                result = fit(self.X, self.y, optimizer=kind, callback=record, **self.common)
            else:
                result = fit(self.X, self.y, optimizer=make_optimizer(kind, lr=rate, **hyper),
                             batch_size=None if full_batch else self.batch_size,
                             callback=record, **self.common)
        except DivergenceError as exc:
            if exc.result is None:  # non-finite: nothing to show
                return None, [], 0.0, rate, exc
            result = exc.result  # diverged with a finite loss: its row and curve are kept
        except ValueError as exc:  # Newton on too many parameters
            if kind != "newton":
                raise
            return None, [], 0.0, rate, exc
        finally:
            if bar is not None:
                bar.close()
        return result, exact_losses, time.perf_counter() - start, rate, None

    def fit_group(self, group, batch, exact):
        """The first-order fits of ``group`` in one :func:`fastopt.fit_many`; their epochs'
        parameters go to ``exact`` (:class:`_ExactLosses`) for the curves' losses. Returns
        ``{key: (result or None, [], wall seconds of the group, rate, error or None)}``."""
        configs = []
        for _, name, rate in group:
            kind, hyper, _, _ = COMPARE_OPTIMIZERS[name]
            configs.append({"optimizer": make_optimizer(kind, lr=rate, **hyper)})
        bars = [_Progress(str(key), self.epochs) for key, _, _ in group] if self.progress \
            else []

        def record(entry):
            if bars:
                bars[entry["config"]].update()
            exact.add(group[entry["config"]][0], entry["params"].astype(self.problem.X.dtype))
            return True

        start = time.perf_counter()
        try:
            results = fit_many(self.X, self.y, configs, batch_size=batch, callback=record,
                               _prepared=(self.problem, self.classes), **self.common)
        finally:
            for bar in bars:
                bar.close()
        wall = time.perf_counter() - start
        fits = {}
        for (key, _, rate), result in zip(group, results):
            error = result.error
            if error is not None and error.result is None:  # non-finite: nothing to show
                fits[key] = (None, [], 0.0, rate, error)
            else:
                fits[key] = (result, [], wall, rate, None)
        return fits

    def score(self, fits):
        """Each fit's accuracy or R² into its entry of ``fits`` (one pass over X for all)."""
        keys = [key for key, fitted in fits.items() if fitted[0] is not None]
        values = _scores(self.model, [fits[key][0] for key in keys], self.X_scored, self.y)
        for key, value in zip(keys, values):
            fits[key] = fits[key] + (value,)

    def add_row(self, out, name, result, exact_losses, wall, rate, error, score=None,
                key=None):
        key = name if key is None else key
        full_batch = COMPARE_OPTIMIZERS[name][3]
        if result is None:
            out.rows.append({"optimizer": name, "lr": rate, "error": str(error)})
            return
        out.results[key] = result
        history = result.history
        out.curves[key] = {"updates": np.asarray(history["steps"], dtype=np.int64),
                           "seconds": np.cumsum(history["seconds"]),
                           "loss": np.asarray(exact_losses, dtype=np.float64)}
        row = {"optimizer": name, "lr": rate,
               "batch_size": None if full_batch else self.batch_size,
               "epochs": result.n_iter_, "updates": int(history["steps"][-1]) if
               history["steps"] else 0, "counts": STEP_UNITS.get(name, "updates"),
               "final_loss": self.final_loss(name, result, exact_losses)}
        row["ms_per_epoch"] = (1e3 * float(np.mean(history["seconds"]))
                               if history["seconds"] else float("nan"))
        row["seconds"] = wall  # includes the per-epoch exact objective passes
        row["accuracy" if self.model != "linear" else "r2"] = score
        out.rows.append(row)

    def final_loss(self, name, result, exact_losses):
        """L(final parameters): a first-order fit's exact loss after its last epoch is it
        (``many_objective``'s value: ``objective``'s within rounding); a solver's last iterate
        may not be
        the point it returns."""
        if name not in SOLVERS and result.n_iter_ and len(exact_losses) == result.n_iter_:
            return float(exact_losses[-1])
        return self.full_loss(result)

    def finish(self, out, target_gap):
        """The gaps, the "to target" columns and the divergence flags of ``out``'s rows."""
        losses = {row["optimizer"]: row["final_loss"] for row in out.rows
                  if "final_loss" in row}
        optimum = out.optimum
        if out.settings["optimum_source"] == "best fit":
            optimum = out.optimum = min(losses.values(), default=math.nan)
        elif out.settings["optimum_source"] == "newton" and losses:
            # L-BFGS and Newton-CG can end a rounding below Newton's optimum: a negative gap
            # would say they beat the optimum.
            optimum = out.optimum = min(optimum, min(losses.values()))
        scale = max(abs(optimum), TINY)
        for row in out.rows:
            name = row["optimizer"]
            if name not in losses:
                row.update(final_loss=math.nan, gap=math.inf, updates_to_target=None,
                           seconds_to_target=None, diverged=True)
                continue
            # Ending above the starting point (all parameters zero) is divergence too: the
            # loss is finite, but the steps made it worse.
            row["diverged"] = not losses[name] <= self.initial_loss
            row["gap"] = (losses[name] - optimum) / scale
            curve = out.curves[name]
            curve["gap"] = (curve["loss"] - optimum) / scale
            hit = np.flatnonzero(curve["gap"] <= target_gap)
            if len(hit):
                row["updates_to_target"] = int(curve["updates"][hit[0]])
                row["seconds_to_target"] = float(curve["seconds"][hit[0]])
            else:
                row["updates_to_target"] = row["seconds_to_target"] = None


def plot_loss_curves(result: ComparisonResult, path) -> str:
    """Write a PNG with the per-epoch loss gap of every fit against updates (left) and
    seconds (right), log y. Needs matplotlib (``pip install 'fastopt[plot]'``); raises
    ImportError without it. Returns the path."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("the plot needs matplotlib: pip install 'fastopt[plot]'") from exc
    from .plot import loss_curves

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    loss_curves(result, left, x="updates", legend=False)
    loss_curves(result, right, x="seconds", legend=False)
    if any(name in STEP_UNITS for name in result.curves):
        left.set_xlabel("updates (lbfgs, newton-cg, saga: passes over X; newton: iterations)")
    handles, labels = right.get_legend_handles_labels()
    if handles:  # beside the panels, where it hides no curve
        right.legend(handles, labels, fontsize="small", loc="center left",
                     bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"fastopt compare: {result.model} regression, "
                 f"{result.settings.get('n_samples')} rows x "
                 f"{result.settings.get('n_features')} features")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


@dataclass
class SweepResult:
    """What :func:`lr_sweep` returns: ``runs`` maps each learning rate to its
    :class:`ComparisonResult` (one fit; its row has ``"error"`` when the fit diverged)."""

    optimizer: str
    optimum: float
    runs: dict = field(default_factory=dict)

    def diverged(self):
        """The learning rates whose fit diverged: its loss became non-finite, or ended above
        the loss of the starting point (all parameters zero)."""
        return [lr for lr, run in self.runs.items() if run.rows[0]["diverged"]]


def lr_sweep(X: np.typing.ArrayLike | None = None, y: np.typing.ArrayLike | None = None, *,
             optimizer: str = "sgd",
             lrs: tuple[float, ...] | list[float] = (1e-3, 1e-2, 1e-1, 1.0, 10.0),
             together: bool = True, **options):
    """One optimizer of :data:`COMPARE_OPTIMIZERS` at each learning rate of ``lrs``, on the same
    data, epochs and shuffle (``options`` as for :func:`compare`); the optimum is found once.

    ``together`` (default): every rate trains in one :func:`fastopt.fit_many` (each minibatch
    read once for all of them; the same results as separate fits), so each run's timings
    (``ms_per_epoch``, the curves' ``seconds``, ``seconds_to_target``, ``seconds``) are those
    of the shared epochs; False: one fit per rate."""
    if optimizer in SOLVERS or optimizer not in COMPARE_OPTIMIZERS:
        raise ValueError(f"lr_sweep needs a first-order optimizer from "
                         f"{', '.join(n for n in COMPARE_OPTIMIZERS if n not in SOLVERS)}; got "
                         f"{optimizer!r}")
    lrs = [float(lr) for lr in lrs]
    if not lrs or any(not lr > 0 or not math.isfinite(lr) for lr in lrs):
        raise ValueError(f"lrs must be positive finite numbers, got {lrs}")
    X, y, model = _data(X, y, options.pop("model", None))
    target_gap = options.pop("target_gap", 1e-2)
    options.pop("optimizers", None)
    unknown = set(options) - {"epochs", "batch_size", "schedule", "backend", "standardize",
                              "penalty", "alpha", "seed", "progress", "optimum"}
    if unknown:
        raise TypeError(f"lr_sweep() got unexpected keyword arguments {sorted(unknown)}")
    defaults = dict(epochs=100, batch_size=32, schedule=None, backend="auto",
                    standardize=True, penalty="l2", alpha=1e-3, seed=0, progress=None,
                    optimum=None)
    session = _Session(X, y, model=model, **{**defaults, **options})
    rates = list(dict.fromkeys(lrs))  # a rate given twice is one run
    fits = session.run([(rate, optimizer, rate) for rate in rates], together)
    sweep = None
    for rate in rates:
        out = session.result(target_gap, rate)
        if sweep is not None:  # the first run's optimum, as given to the others
            out.optimum = sweep.optimum
            out.settings["optimum_source"] = "given"
        session.add_row(out, optimizer, *fits[rate])
        session.finish(out, target_gap)
        if sweep is None:
            sweep = SweepResult(optimizer, out.optimum)
        sweep.runs[rate] = out
    return sweep
