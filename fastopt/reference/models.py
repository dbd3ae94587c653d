r"""NumPy reference of the three models: losses, minibatch gradients, penalties, one epoch.

Objective
---------
Parameters are one flat vector ``w = [W.ravel(), b]``: ``W`` of shape ``(K, d)`` (``K = 1`` for
linear and logistic regression, ``K`` classes for softmax) followed by the ``K`` intercepts
(absent when ``fit_intercept=False``). Scores are ``f(x) = W x~ + b`` where ``x~ = x`` or, with
standardisation, ``x~ = (x - mean) * inv_std`` computed on the fly. With sample weights
``s_i`` (normalised by the caller to mean 1 over the training rows; all ones when not given),
the objective on a set of rows ``B`` is

.. math::
    L_B(w) = \frac{1}{|B|} \sum_{i \in B} s_i\, \ell(y_i, f(x_i)) + \alpha\, P(W)

and the full objective is ``L`` over all ``n`` rows. Losses:

- linear: :math:`\ell = \tfrac12 (f - y)^2`
- logistic (``y`` in {0, 1}): :math:`\ell = \log(1 + e^{f}) - y f`, computed as
  ``max(f, 0) + log1p(exp(-|f|)) - y f`` (finite for any finite f)
- softmax (``y`` a class index): :math:`\ell = \log \sum_k e^{f_k} - f_y` (log-sum-exp shifted
  by the largest score)

Penalty (never on ``b``): l2 :math:`\tfrac12 \lVert W \rVert_2^2`; l1 :math:`\lVert W \rVert_1`;
elasticnet :math:`\rho \lVert W \rVert_1 + \tfrac{1 - \rho}{2} \lVert W \rVert_2^2` with
``rho = l1_ratio`` (scikit-learn's SGD convention); its (sub)gradient uses ``sign(0) = 0``.

Precision: everything is computed in float64; for float32 parameters the gradient is rounded to
float32 just before the optimizer update, which then runs in float32.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import optim as _optim
from .shuffle import epoch_order

__all__ = ["ModelSpec", "scores", "losses_and_residuals", "penalty", "batch_gradient",
           "objective", "run_epoch", "EpochResult"]

MODELS = ("linear", "logistic", "softmax")
PENALTIES = (None, "l2", "l1", "elasticnet")


@dataclass(frozen=True)
class ModelSpec:
    """What is being fitted: the model, its output count K, intercept and penalty."""

    model: str
    n_features: int
    n_outputs: int = 1
    fit_intercept: bool = True
    penalty: str | None = None
    alpha: float = 0.0
    l1_ratio: float = 0.15

    @property
    def n_params(self) -> int:
        return self.n_outputs * (self.n_features + int(self.fit_intercept))

    def unpack(self, w):
        """``(W, b)`` views of the flat parameter vector (``b`` is zeros without intercept)."""
        k, d = self.n_outputs, self.n_features
        coef = w[: k * d].reshape(k, d)
        intercept = w[k * d:] if self.fit_intercept else np.zeros(k, dtype=w.dtype)
        return coef, intercept


def _standardized_rows(X, rows, mean, inv_std):
    Xb = np.asarray(X[rows], dtype=np.float64)
    if mean is not None:
        Xb = (Xb - mean) * inv_std
    return Xb


def scores(spec, w, Xb):
    """``f = W x~ + b`` for the (already standardised) rows ``Xb``: shape (m, K)."""
    coef, intercept = spec.unpack(np.asarray(w, dtype=np.float64))
    return Xb @ coef.T + intercept


def losses_and_residuals(model, f, y):
    """Per-row loss ``l_i`` (m,) and residual ``dl/df`` (m, K)."""
    if model == "linear":
        r = f[:, 0] - y
        return 0.5 * r * r, r[:, None]
    if model == "logistic":
        z = f[:, 0]
        e = np.exp(-np.abs(z))
        loss = np.maximum(z, 0.0) + np.log1p(e) - y * z
        sigmoid = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return loss, (sigmoid - y)[:, None]
    if model == "softmax":
        labels = y.astype(np.int64)
        top = f.max(axis=1, keepdims=True)
        exp = np.exp(f - top)
        total = exp.sum(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(total[:, 0])
        loss = lse - f[np.arange(len(f)), labels]
        residual = exp / total
        residual[np.arange(len(f)), labels] -= 1.0
        return loss, residual
    raise ValueError(f"unknown model {model!r}")


def l1_share(spec):
    """The L1 part of the penalty: 0 for l2 (or none), 1 for l1, ``l1_ratio`` for elasticnet."""
    return {"l1": 1.0, "elasticnet": spec.l1_ratio}.get(spec.penalty, 0.0)


def penalty(spec, w):
    """``(alpha * P(W), gradient of it w.r.t. the flat w)``, both float64."""
    grad = np.zeros(spec.n_params)
    if spec.penalty is None or spec.alpha == 0:
        return 0.0, grad
    coef = np.asarray(w[: spec.n_outputs * spec.n_features], dtype=np.float64)
    l1 = l1_share(spec)
    value = spec.alpha * (l1 * np.abs(coef).sum() + 0.5 * (1 - l1) * (coef @ coef))
    grad[: coef.size] = spec.alpha * (l1 * np.sign(coef) + (1 - l1) * coef)
    return float(value), grad


def _is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "indptr")


def _sparse_scores_and_gradient(spec, X, rows, mean, inv_std, w):
    """For CSR ``X``: the scores of ``rows`` and a function mapping the weighted residuals to
    the coefficient gradient sum, both with the standardisation applied through the identity
    ``x~ = x * inv_std - mean * inv_std`` so that X stays sparse."""
    Xb = X[rows]
    coef, intercept = spec.unpack(np.asarray(w, dtype=np.float64))
    scaled = coef if mean is None else coef * inv_std
    f = np.asarray(Xb @ scaled.T, dtype=np.float64) + intercept
    if mean is not None:
        f = f - scaled @ mean

    def gradient_sum(weighted):
        g = np.asarray(Xb.T @ weighted, dtype=np.float64).T  # (K, d)
        if mean is not None:
            g = g * inv_std - np.outer(weighted.sum(axis=0), mean * inv_std)
        return g
    return f, gradient_sum


def batch_gradient(spec, X, y, sample_weight, mean, inv_std, w, rows):
    """``(sum_i s_i l_i, gradient of L_B)`` over ``rows``; the gradient is float64 and includes
    the penalty. X may be dense or SciPy CSR."""
    if _is_sparse(X):
        f, gradient_sum = _sparse_scores_and_gradient(spec, X, rows, mean, inv_std, w)
    else:
        Xb = _standardized_rows(X, rows, mean, inv_std)
        f = scores(spec, w, Xb)

        def gradient_sum(weighted):
            return weighted.T @ Xb
    loss, residual = losses_and_residuals(spec.model, f, np.asarray(y[rows], dtype=np.float64))
    s = np.ones(len(rows)) if sample_weight is None else np.asarray(sample_weight[rows],
                                                                     dtype=np.float64)
    weighted = residual * s[:, None]
    m = len(rows)
    grad = np.empty(spec.n_params)
    k, d = spec.n_outputs, spec.n_features
    grad[: k * d] = gradient_sum(weighted).ravel() / m
    if spec.fit_intercept:
        grad[k * d:] = weighted.sum(axis=0) / m
    grad += penalty(spec, w)[1]
    return float(s @ loss), grad


def objective(spec, X, y, sample_weight, mean, inv_std, w):
    """Full objective ``L(w)`` over all rows and its float64 gradient."""
    n = X.shape[0]
    loss_sum, grad = batch_gradient(spec, X, y, sample_weight, mean, inv_std, w, np.arange(n))
    return loss_sum / n + penalty(spec, w)[0], grad


@dataclass
class EpochResult:
    """``loss``: mean over the epoch's rows of the minibatch objective, each at the parameters
    before its update. ``status``: "ok", or "nonfinite" with ``failed_step`` the index (within
    the epoch) of the first update whose loss or parameters were not finite."""

    loss: float
    steps: int
    status: str = "ok"
    failed_step: int = -1


def run_epoch(spec, X, y, sample_weight, mean, inv_std, w, optimizer_kind, hyper, state,
              lrs, batch_size, shuffle, seed, epoch, lazy=False):
    """One epoch of minibatch training, updating ``w`` and the optimizer ``state`` in place.

    ``lrs[j]`` is the learning rate of the epoch's update ``j``; rows are visited in the order
    of :func:`fastopt.reference.shuffle.epoch_order` (``shuffle``: False, True or "batches").
    ``lazy`` applies to CSR ``X`` without standardisation, see ``_run_epoch``; for
    :func:`scaled_sgd` it needs every ``lrs * alpha < 1`` (else the epoch runs exact).
    """
    lazy = lazy and _is_sparse(X) and mean is None
    scaled = lazy and scaled_sgd(spec, optimizer_kind, hyper)
    if scaled and not np.all(np.asarray(lrs) * spec.alpha < 1.0):
        lazy = scaled = False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # Overflow is how divergence shows; it is reported through the result, not warnings.
        if scaled:
            return _scaled_sgd_epoch(spec, X, y, sample_weight, w, state, lrs, batch_size,
                                     shuffle, seed, epoch)
        return _run_epoch(spec, X, y, sample_weight, mean, inv_std, w, optimizer_kind, hyper,
                          state, lrs, batch_size, shuffle, seed, epoch, lazy)


def scaled_sgd(spec, optimizer_kind, hyper):
    """Whether a lazy epoch uses the scaled-weight trick: plain SGD (no momentum, no weight
    decay) with a pure L2 penalty."""
    return (optimizer_kind == "sgd" and not hyper.get("momentum", 0.0)
            and not hyper.get("weight_decay", 0.0) and spec.penalty is not None
            and spec.alpha != 0 and l1_share(spec) == 0.0)


def _scaled_sgd_epoch(spec, X, y, sample_weight, w, state, lrs, batch_size, shuffle, seed,
                      epoch):
    """A lazy epoch of plain SGD with an L2 penalty. Every update shrinks every coefficient,
    ``W <- (1 - lr alpha) W - lr G``; with ``W = scale * U`` that is ``scale *= 1 - lr alpha``
    and, for the columns in the minibatch only, ``U -= lr G / scale``: the exact epoch's
    result up to rounding at the cost of the minibatch's entries. ``w`` holds ``U`` during the
    epoch; the scale is folded back in at the end, and whenever it would drop below 1e-9."""
    n, kd = X.shape[0], spec.n_outputs * spec.n_features
    data_only = replace(spec, penalty=None)
    order = epoch_order(n, batch_size, shuffle, seed, epoch)
    scale, total = 1.0, 0.0
    steps = -(-n // batch_size)

    def unscale():
        w[:kd] = (scale * w[:kd].astype(np.float64)).astype(w.dtype)
        return 1.0

    for j in range(steps):
        rows = order[j * batch_size:(j + 1) * batch_size]
        lr = float(lrs[j])
        shrink = 1.0 - lr * spec.alpha
        if scale * shrink < 1e-9:
            scale = unscale()
        effective = w.astype(np.float64)
        effective[:kd] *= scale
        loss_sum, grad = batch_gradient(data_only, X, y, sample_weight, None, None, effective,
                                        rows)
        u = w[:kd].astype(np.float64)
        objective = loss_sum + spec.alpha * (0.5 * (scale * scale * (u @ u))) * len(rows)
        coords = active_coordinates(spec, X, rows)
        if not np.isfinite(objective) or not np.all(np.isfinite(grad[coords])):
            unscale()
            return EpochResult(total / n, j, "nonfinite", j)
        next_scale = scale * shrink
        coef, intercepts = coords[coords < kd], coords[coords >= kd]
        w[coef] = (w[coef].astype(np.float64) - lr * grad[coef] / next_scale).astype(w.dtype)
        w[intercepts] = w[intercepts] + w.dtype.type(-lr) * grad[intercepts].astype(w.dtype)
        state["step"] += 1
        if not np.all(np.isfinite(w[coords])):
            unscale()
            return EpochResult(total / n, j, "nonfinite", j)
        scale = next_scale
        total += objective
    unscale()
    return EpochResult(total / n, steps)


def active_coordinates(spec, X, rows):
    """Lazy updates: the coordinates an update of the minibatch ``rows`` of CSR ``X`` touches,
    the coefficients of every column with an entry in those rows, columns in order of first
    appearance (rows in visiting order, entries in stored order), output by output, then the
    intercepts."""
    columns = np.concatenate([X.indices[X.indptr[r]:X.indptr[r + 1]] for r in rows])
    _, first = np.unique(columns, return_index=True)
    active = columns[np.sort(first)].astype(np.int64)
    k, d = spec.n_outputs, spec.n_features
    coords = [c * d + active for c in range(k)]
    if spec.fit_intercept:
        coords.append(np.arange(k * d, k * d + k))
    return np.concatenate(coords)


def _lazy_step(optimizer_kind, hyper, w, grad, state, coords):
    """The optimizer update on the ``coords`` of ``w`` and of the state arrays only (the step
    counter and NAdam's mu_product are global); False when the result is not finite."""
    compact = {name: (value[coords].copy() if isinstance(value, np.ndarray) and value.ndim == 1
                      and value.size == w.size else value) for name, value in state.items()}
    params = w[coords].copy()
    _optim.step(optimizer_kind, hyper, params, grad[coords].astype(w.dtype), compact)
    w[coords] = params
    for name, value in compact.items():
        if isinstance(state[name], np.ndarray) and state[name].ndim == 1 and \
                state[name].size == w.size:
            state[name][coords] = value
        else:
            state[name] = value
    return bool(np.all(np.isfinite(params)))


def _run_epoch(spec, X, y, sample_weight, mean, inv_std, w, optimizer_kind, hyper, state, lrs,
               batch_size, shuffle, seed, epoch, lazy=False):
    """See run_epoch; ``lazy`` (CSR X, no standardisation): each update changes only the
    ``active_coordinates`` of its minibatch, parameters and optimizer state alike."""
    n = X.shape[0]
    order = epoch_order(n, batch_size, shuffle, seed, epoch)
    total = 0.0
    steps = -(-n // batch_size)
    for j in range(steps):
        rows = order[j * batch_size:(j + 1) * batch_size]
        loss_sum, grad = batch_gradient(spec, X, y, sample_weight, mean, inv_std, w, rows)
        batch_objective = loss_sum + penalty(spec, w)[0] * len(rows)
        if lazy:
            coords = active_coordinates(spec, X, rows)
            if not np.isfinite(batch_objective) or not np.all(np.isfinite(grad[coords])):
                return EpochResult(total / n, j, "nonfinite", j)
            if not _lazy_step(optimizer_kind, dict(hyper, lr=float(lrs[j])), w, grad, state,
                              coords):
                return EpochResult(total / n, j, "nonfinite", j)
            total += batch_objective
            continue
        if not np.isfinite(batch_objective) or not np.all(np.isfinite(grad)):
            return EpochResult(total / n, j, "nonfinite", j)
        _optim.step(optimizer_kind, dict(hyper, lr=float(lrs[j])), w,
                    grad.astype(w.dtype), state)
        total += batch_objective
    if not np.all(np.isfinite(w)):
        return EpochResult(total / n, steps, "nonfinite", steps - 1)
    return EpochResult(total / n, steps)
