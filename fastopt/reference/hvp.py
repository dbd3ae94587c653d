r"""NumPy reference of the Hessian-vector product of the full objective (see
:mod:`fastopt.reference.models` for the objective and the flat parameter layout).

With scores ``F = X~ W^T + b`` (``X~`` the standardised rows), a direction ``v = [V.ravel(),
c]`` moves the scores by ``dF = X~ V^T + c``, and

.. math::
    H v = \Big[\tfrac1n (D^T X~) + \alpha V,\ \ \tfrac1n \textstyle\sum_i D_i\Big], \qquad
    D_i = s_i\, \frac{\partial^2 \ell}{\partial f^2}(y_i, F_i)\, dF_i

where the per-row curvature of the loss is 1 (linear), ``p (1 - p)`` with ``p = sigmoid(f)``
(logistic), and ``diag(p) - p p^T`` with ``p = softmax(f)`` (softmax), so that for softmax
``D_ia = s_i p_ia (dF_ia - sum_b p_ib dF_ib)``. The ``alpha V`` term is the l2 penalty's
(never on the intercepts). Two passes over X per product (``X~ V^T``, then ``D^T X~``), one
more to build the operator (the scores). Everything is float64; standardisation is applied
through ``x~ = x * inv_std - mean * inv_std`` so that a CSR X stays sparse.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hessian_operator", "hessian_vector_product"]


def _is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "indptr")


def hessian_operator(problem, params):
    """``v -> H(params) v`` for the full objective of ``problem`` (a
    :class:`fastopt.training.Problem`: ``spec``, ``X`` dense or CSR, ``y``, ``sample_weight``,
    ``mean``, ``inv_std``). The scores and the loss curvature at ``params`` are computed once,
    here; each call of the returned function then costs two passes over X.

    Raises
    ------
    ValueError
        For an l1 or elasticnet penalty with ``alpha > 0`` (not twice differentiable).
    """
    spec = problem.spec
    if spec.penalty in ("l1", "elasticnet") and spec.alpha > 0:
        raise ValueError("the Hessian needs a smooth objective: penalty=None or 'l2', not "
                         f"{spec.penalty!r}")
    X = problem.X if _is_sparse(problem.X) else np.asarray(problem.X, dtype=np.float64)
    n = X.shape[0]
    k, d = spec.n_outputs, spec.n_features
    mean, inv_std = problem.mean, problem.inv_std
    s = (np.ones(n) if problem.sample_weight is None
         else np.asarray(problem.sample_weight, dtype=np.float64))

    def times(V):
        """``X~ V^T``, shape (n, k)."""
        scaled = V if mean is None else V * inv_std
        out = np.asarray(X @ scaled.T, dtype=np.float64)
        return out if mean is None else out - scaled @ mean

    def transposed_times(D):
        """``D^T X~``, shape (k, d)."""
        out = np.asarray(X.T @ D, dtype=np.float64).T
        return out if mean is None else out * inv_std - np.outer(D.sum(axis=0), mean * inv_std)

    coef, intercept = spec.unpack(np.asarray(params, dtype=np.float64))
    F = times(coef) + intercept
    if spec.model == "linear":
        weight = s
    elif spec.model == "logistic":
        z = F[:, 0]
        e = np.exp(-np.abs(z))
        p = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        weight = s * p * (1.0 - p)
    elif spec.model == "softmax":
        exp = np.exp(F - F.max(axis=1, keepdims=True))
        P = exp / exp.sum(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown model {spec.model!r}")
    l2 = spec.alpha if spec.penalty == "l2" else 0.0

    def product(v):
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (spec.n_params,):
            raise ValueError(f"v must have shape ({spec.n_params},), got {v.shape}")
        V, c = spec.unpack(v)
        dF = times(V) + c
        if spec.model == "softmax":
            D = s[:, None] * P * (dF - (P * dF).sum(axis=1, keepdims=True))
        else:
            D = weight[:, None] * dF
        out = np.empty(spec.n_params)
        out[: k * d] = (transposed_times(D) / n + l2 * V).ravel()
        if spec.fit_intercept:
            out[k * d:] = D.sum(axis=0) / n
        return out

    return product


def hessian_vector_product(problem, params, v):
    """``H(params) v`` for the full objective of ``problem``, float64 (see
    :func:`hessian_operator`, which amortises the scores over many products)."""
    return hessian_operator(problem, params)(v)
