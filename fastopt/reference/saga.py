r"""NumPy reference of SAGA (Defazio, Bach & Lacoste-Julien, 2014), proximal for l1 and
elasticnet: the specification of the compiled ``saga_epoch``.

Objective
---------
The objective of :mod:`fastopt.reference.models`, split into a smooth part and the L1 term:

.. math::
    L(w) = \underbrace{\frac1n \sum_i s_i\, \ell(y_i, W \tilde x_i + b)
           + \frac{\lambda_2}{2} \lVert W \rVert^2}_{F(w)} + \lambda_1 \lVert W \rVert_1,
    \qquad \lambda_1 = \alpha \rho,\ \lambda_2 = \alpha (1 - \rho)

with ``rho`` the L1 share of the penalty (1 for l1, ``l1_ratio`` for elasticnet, 0 for l2 or
none). The intercepts ``b`` are never penalised.

State
-----
Everything is float64, whatever X's dtype (:class:`SagaState`):

- ``w``: the iterate ``[W.ravel(), b]``;
- ``table`` (n, K): for each row, the scalars ``r_i = s_i dl/df`` (K of them for softmax, one
  otherwise) at its last visit; zeros before the first, so the gradient of row i is
  ``r_i x~_i`` without storing it;
- ``sums``: ``sum_i r_i x~_i`` (coefficients) and ``sum_i r_i`` (intercepts), n times the
  average of the stored gradients.

One epoch
---------
Epoch ``e`` visits the rows in the shuffled order ``permutation(n, seed, e)`` of
:mod:`fastopt.reference.shuffle` (each row once per epoch: sampling without replacement, the
order every fastopt backend draws). At row ``i``, with step size ``eta``:

1. ``f = W x~_i + b`` at the current ``w``; the loss ``l_i`` and ``r = s_i dl/df``;
   ``delta = r - table_i``;
2. the SAGA direction of F, ``G_W = delta x~_i^T + sums_W / n + lambda_2 W`` and
   ``G_b = delta + sums_b / n`` (``sums`` before this row's change);
3. ``W <- soft(W - eta G_W, eta lambda_1)``, ``b <- b - eta G_b`` with
   ``soft(v, t) = sign(v) max(|v| - t, 0)``, the proximal map of the L1 term;
4. ``sums += (delta x~_i^T, delta)``, ``table_i = r``.

The epoch's loss is ``sum_i s_i l_i`` over its rows, each at the parameters before its update.
The compiled kernel applies step 3 to the columns of a sparse row only and defers every other
column's updates until a row needs it (or the epoch ends), in closed form: the same iterates
up to rounding (:func:`catch_up` states the rule).

Step size
---------
:func:`auto_step_size` follows scikit-learn's ``get_auto_step_size`` for SAGA: with ``L`` the
largest Lipschitz constant of a row's gradient, ``eta = 1 / (2 L + min(2 n lambda_2, L))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .models import l1_share, losses_and_residuals
from .shuffle import permutation

__all__ = ["SagaState", "new_state", "table_bytes", "auto_step_size", "lipschitz_bound",
           "saga_epoch", "catch_up", "soft_threshold"]

# The largest second derivative of each loss in the score: 1 for squared error, 1/4 for the
# logistic loss, and 1/2 for the softmax cross-entropy (diag(p) - p p^T has norm <= 1/2;
# scikit-learn uses 1/4 for it too, a step that can be too long).
CURVATURE = {"linear": 1.0, "logistic": 0.25, "softmax": 0.5}


@dataclass
class SagaState:
    """The iterate and SAGA's memory, all float64 (module docstring)."""

    w: np.ndarray
    table: np.ndarray
    sums: np.ndarray


def table_bytes(n_samples, n_outputs):
    """Bytes of the table of per-row gradient scalars: one float64 per row and output."""
    return 8 * int(n_samples) * int(n_outputs)


def new_state(spec, n_samples, params):
    """A :class:`SagaState` starting at ``params`` with an empty (zero) table."""
    return SagaState(np.array(params, dtype=np.float64),
                     np.zeros((n_samples, spec.n_outputs)), np.zeros(spec.n_params))


def _squared_norms(X, mean, inv_std, start, stop):
    """``|x~_i|^2`` of rows ``start:stop`` of X (dense or CSR) in float64. CSR rows stay
    sparse: with ``u = x * inv_std`` and ``c = mean * inv_std``,
    ``|x~|^2 = |u|^2 - 2 u.c + |c|^2``."""
    block = X[start:stop]
    if hasattr(block, "toarray"):
        if mean is not None:
            block = block.multiply(inv_std[None, :]).tocsr()
        norms = np.asarray(block.multiply(block).sum(axis=1), dtype=np.float64).ravel()
        if mean is not None:
            shift = mean * inv_std
            norms = np.maximum(norms - 2.0 * np.asarray(block @ shift).ravel()
                               + shift @ shift, 0.0)
        return norms
    rows = np.asarray(block, dtype=np.float64)
    if mean is not None:
        rows = (rows - mean) * inv_std
    return np.einsum("ij,ij->i", rows, rows)


def lipschitz_bound(spec, X, sample_weight, mean, inv_std):
    """``max_i s_i c (|x~_i|^2 + fit_intercept) + lambda_2``: the largest Lipschitz constant of
    a row's gradient of F, with ``c`` the loss's :data:`CURVATURE`. Dense X is read in blocks
    of about 2**22 values."""
    n = X.shape[0]
    chunk = max(1, (1 << 22) // max(X.shape[1], 1))
    largest = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        norms = _squared_norms(X, mean, inv_std, start, stop) + float(spec.fit_intercept)
        if sample_weight is not None:
            norms = norms * sample_weight[start:stop]
        largest = max(largest, float(norms.max()))
    return CURVATURE[spec.model] * largest + penalties(spec)[1]


def auto_step_size(spec, X, sample_weight, mean, inv_std):
    """scikit-learn's SAGA step, ``1 / (2 L + min(2 n lambda_2, L))`` (module docstring); 1
    when ``L`` is 0."""
    L = lipschitz_bound(spec, X, sample_weight, mean, inv_std)
    if L == 0.0:  # every row zero, no intercept, no L2: the smooth part is flat, any step goes
        return 1.0
    return 1.0 / (2.0 * L + min(2.0 * X.shape[0] * penalties(spec)[1], L))


def soft_threshold(v, t):
    """``sign(v) max(|v| - t, 0)``."""
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


def _row(X, i, mean, inv_std):
    if hasattr(X, "indptr"):
        x = np.zeros(X.shape[1])
        lo, hi = X.indptr[i], X.indptr[i + 1]
        x[X.indices[lo:hi]] = X.data[lo:hi]
    else:
        x = np.asarray(X[i], dtype=np.float64)
    return x if mean is None else (x - mean) * inv_std


def penalties(spec):
    """``(lambda_1, lambda_2)``."""
    if spec.penalty is None:
        return 0.0, 0.0
    l1 = l1_share(spec)
    return spec.alpha * l1, spec.alpha * (1.0 - l1)


def saga_epoch(spec, X, y, sample_weight, mean, inv_std, state, step, seed, epoch):
    """One epoch of SAGA on ``state`` (in place), rows in ``permutation(n, seed, epoch)``.

    Returns ``(loss_sum, ok, failed)``: the sum of the weighted row losses, whether every loss
    and parameter stayed finite, and the position in the epoch of the first row where one did
    not (-1 when ok); the epoch stops there."""
    n, k, d = X.shape[0], spec.n_outputs, spec.n_features
    lambda1, lambda2 = penalties(spec)
    W = state.w[: k * d].reshape(k, d)
    b = state.w[k * d:]
    sums_W = state.sums[: k * d].reshape(k, d)
    sums_b = state.sums[k * d:]
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for position, i in enumerate(permutation(n, seed, epoch)):
            x = _row(X, i, mean, inv_std)
            f = W @ x + (b if spec.fit_intercept else 0.0)
            loss, residual = losses_and_residuals(spec.model, f[None, :], y[i:i + 1])
            s = 1.0 if sample_weight is None else float(sample_weight[i])
            r = residual[0] * s
            delta = r - state.table[i]
            G_W = np.outer(delta, x) + sums_W / n + lambda2 * W
            W[...] = soft_threshold(W - step * G_W, step * lambda1)
            if spec.fit_intercept:
                b -= step * (delta + sums_b / n)
                sums_b += delta
            sums_W += np.outer(delta, x)
            state.table[i] = r
            total += s * float(loss[0])
            if not (math.isfinite(total) and np.all(np.isfinite(state.w))):
                return total, False, position
    return total, True, -1


def catch_up(w, g, m, step, lambda1, lambda2):
    """``m`` steps 3 of a column no row touched, in closed form: the coordinate ``w`` of a
    column whose ``delta`` is zero follows ``w <- soft((1 - step lambda_2) w - step g,
    step lambda_1)`` with ``g = sums / n`` fixed, until a row with that column comes (or the
    epoch ends). It is what the compiled kernel computes for sparse rows; here as the plain
    loop it stands for."""
    for _ in range(m):
        w = float(soft_threshold((1.0 - step * lambda2) * w - step * g, step * lambda1))
    return w
