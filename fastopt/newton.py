"""Newton's method, the reference second-order solver (full batch, exact Hessian).

Each iteration solves ``H d = g`` for the full objective (least squares, so the singular
Hessians of softmax and of separable data are handled) and takes the largest step
``w - 2^-k d`` that satisfies the Armijo condition. It stops when the Newton decrement
``g.d / 2`` (the quadratic model's ``L - L*``) falls below ``1e-15 * max(1, |L|)``, or
``gap * |L|`` when that is larger, or after ``max_iter`` iterations. Gradient and
objective come from the chosen backend; the Hessian is accumulated in NumPy over row blocks, so X
is never copied whole.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from . import _backends
from ._validation import is_device_array, is_sparse

MAX_PARAMS = 3000  # the Hessian is MAX_PARAMS^2 doubles (72 MB) and costs n * p^2 per iteration
HESSIAN_BLOCK_BYTES = 32 << 20


def hessian(problem, params):
    """Exact Hessian of the objective at ``params``, in the flat parameter layout.

    With ``z`` a row (and 1 for the intercept), ``s`` its weight and ``c`` the curvature of the
    loss in the scores, the data term for the class pair ``(a, b)`` is
    ``sum_n s_n c_n[a, b] z_n z_n^T``. For softmax ``c[a, b] = p_a (delta_ab - p_b)``: the
    pairs ``a != b`` are the blocks of one product ``-V^T V`` with ``V[n, (a, i)] =
    sqrt(s_n) p_na z_ni`` (one matrix product per block of rows, not K^2 of them), and as
    ``p_a (1 - p_a) = sum_{b != a} p_a p_b`` each block ``(a, a)`` is minus the sum of the other
    blocks of its row. Every block row then sums to zero to rounding, as it does exactly: the
    directions that leave the scores' differences unchanged stay the null space that
    ``newton_fit``'s least-squares solve leaves out.
    """
    spec = problem.spec
    k, d = spec.n_outputs, spec.n_features
    width = d + int(spec.fit_intercept)
    coef, intercept = spec.unpack(np.asarray(params, dtype=np.float64))
    if k == 1:
        return _one_output_hessian(problem, coef[0], intercept[0])
    # At zero parameters every row has the same curvature in the scores, C = diag(1/k) -
    # 1/k^2: the data term is C (x) Z^T S Z, one product of Z's width instead of k times it (a
    # fit's first Newton step from zero; 20 -> 1 ms on 4,040 rows of 5 classes x 101 columns).
    at_zero = not np.any(coef) and not np.any(intercept)
    H = np.zeros((k, width, k, width))
    gram = np.zeros((width, width))
    for X, s in _row_blocks(problem, k * width):
        Z = np.hstack([X, np.ones((len(X), 1))]) if spec.fit_intercept else X
        if at_zero:
            Zs = np.sqrt(s)[:, None] * Z
            gram += Zs.T @ Zs
            continue
        scores = X @ coef.T + intercept
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True) * np.sqrt(s)[:, None]
        V = (p[:, :, None] * Z[:, None, :]).reshape(len(Z), k * width)
        # V^T V of one array is a symmetric product (BLAS syrk): half the multiply-adds of
        # V^T (s V), 41 -> 20 ms on 4,000 rows of 5 classes x 101 columns.
        H -= (V.T @ V).reshape(k, width, k, width)
    if at_zero:
        H = np.einsum("ab,ij->aibj", np.eye(k) / k - 1.0 / k**2, gram)
    else:
        classes = np.arange(k)
        H[classes, :, classes, :] = 0.0
        H[classes, :, classes, :] = -H.sum(axis=2)
    H /= problem.n_samples
    if spec.penalty == "l2" and spec.alpha > 0:
        for a in range(k):
            H[a, np.arange(d), a, np.arange(d)] += spec.alpha
    H = H.reshape(k * width, k * width)
    # order[flat index] = class-major index (c, j), flat layout [W (k x d), intercepts (k)]
    order = np.empty(k * width, dtype=np.intp)
    for c in range(k):
        order[c * d:(c + 1) * d] = c * width + np.arange(d)
        if spec.fit_intercept:
            order[k * d + c] = c * width + d
    return H[np.ix_(order, order)]


def _row_blocks(problem, columns):
    """``(X, s)`` for blocks of rows whose ``columns``-wide products take about
    HESSIAN_BLOCK_BYTES (one product over 4,040 rows of 505 columns took 15 ms, four over the
    1 MiB blocks of X's scans 24): X dense float64, standardised as the problem is; s the
    rows' weights."""
    step = max(1, HESSIAN_BLOCK_BYTES // (8 * columns))
    for start in range(0, problem.n_samples, step):
        rows = slice(start, start + step)
        X = problem.X[rows]
        X = X.toarray() if is_sparse(X) else X  # a block of rows at a time: bounded memory
        X = X.astype(np.float64, copy=False)
        if problem.mean is not None:
            X = (X - problem.mean) * problem.inv_std
        yield X, (np.ones(len(X)) if problem.sample_weight is None
                  else problem.sample_weight[rows])


def _one_output_hessian(problem, coef, intercept):
    """:func:`hessian` of linear and logistic regression, ``Z^T diag(s c) Z / n`` with ``Z =
    [X, 1]`` and ``c`` the loss's curvature (1, or ``p (1 - p)``), by blocks of X without
    building Z: 57 -> 44 us on 1,000 x 10 (the Newton check after L-BFGS there)."""
    spec = problem.spec
    d, intercept_column = spec.n_features, spec.fit_intercept
    H = np.zeros((d + int(intercept_column),) * 2)
    for X, s in _row_blocks(problem, d + 1):
        if spec.model == "logistic":
            p = 1.0 / (1.0 + np.exp(-np.clip(X @ coef + intercept, -700, 700)))
            s = s * p * (1 - p)
        H[:d, :d] += X.T @ (X * s[:, None])
        if intercept_column:
            column = X.T @ s  # a product: Xs.sum(axis=0) took 18 us on 1,000 x 10
            H[:d, d] += column
            H[d, :d] += column
            H[d, d] += s.sum()
    H /= problem.n_samples
    if spec.penalty == "l2" and spec.alpha > 0:
        H[np.arange(d), np.arange(d)] += spec.alpha
    return H


def newton_fit(problem, params, *, max_iter, tol, backend="auto", callback=None, verbose=0,
               objective=None, hessian_of=None, direction_of=None, gap=0.0, start=None):
    """Minimise the objective from ``params``. Returns ``(params, history, converged)``; the
    history has one entry per step, ``grad_max`` the gradient's largest entry after it.
    ``objective(problem, params) -> (value, gradient)`` and ``hessian_of(problem, params)``
    replace the backend's objective and :func:`hessian` (fastopt.dask sums them over the
    partitions of a distributed X); ``direction_of(problem, params, gradient)`` replaces the
    least-squares solve of the Hessian with the gradient (``optimizer="auto"`` passes a
    :class:`SampledHessian`). With ``gap`` the history also has ``gap``: the decrement's
    estimate of the relative gap before each step. ``start``: ``(value, gradient)`` at
    ``params`` when the caller has them (L-BFGS's last evaluation): one pass fewer."""
    spec = problem.spec
    if problem.X is not None and is_device_array(problem.X):
        raise ValueError("optimizer='newton' builds its Hessian on the host: pass X in host "
                         "memory, or use a first-order optimizer such as 'adam' for X in GPU "
                         "memory")
    if spec.penalty in ("l1", "elasticnet") and spec.alpha > 0:
        raise ValueError("optimizer='newton' needs a smooth objective: use penalty=None or "
                         f"'l2', not {spec.penalty!r}")
    if spec.n_params > MAX_PARAMS:
        raise ValueError(f"optimizer='newton' builds a {spec.n_params} x {spec.n_params} "
                         f"Hessian; it supports up to {MAX_PARAMS} parameters. Use a "
                         "first-order optimizer such as 'adam' for this problem.")
    if objective is None:
        backend = _backends.resolve(backend)
        data = backend.dataset(problem)

        def objective(_, params):
            return backend.objective(data, params)
    hessian_of = hessian_of or hessian
    if direction_of is None:
        def direction_of(problem, w, grad):
            return np.linalg.lstsq(hessian_of(problem, w), grad, rcond=None)[0]
    dtype = np.asarray(params).dtype
    w = np.asarray(params, dtype=np.float64).copy()
    history = {"epoch": [], "loss": [], "lr": [], "seconds": [], "steps": [], "grad_max": []}
    if gap > 0:  # the decrement's estimate of the relative gap, before each step
        history["gap"] = []
    converged = False
    value, grad = start if start is not None else objective(problem, w.astype(dtype))
    for iteration in range(1, max_iter + 1):
        start = time.perf_counter()
        direction = direction_of(problem, w, grad)
        decrement = float(grad @ direction)
        if decrement <= 2 * max(1e-15 * max(1.0, abs(value)), gap * abs(value)):
            converged = True
            break
        step = 1.0
        for _ in range(60):
            candidate = w - step * direction
            new_value, new_grad = objective(problem, candidate.astype(dtype))
            if np.isfinite(new_value) and new_value <= value - 1e-4 * step * decrement:
                break
            step *= 0.5
        else:
            break  # no decrease possible in floating point: at the optimum
        estimate = decrement / 2 / max(abs(value), np.finfo(np.float64).tiny)
        w, value, grad = candidate, new_value, new_grad
        entry = {"epoch": iteration, "loss": value, "lr": step,
                 "seconds": time.perf_counter() - start, "steps": iteration,
                 "grad_max": float(np.max(np.abs(grad), initial=0.0))}
        if gap > 0:
            entry["gap"] = estimate
        for key, item in entry.items():
            history[key].append(item)
        if verbose:
            print(f"-- Newton iteration {iteration}: loss {value:.10g}, step {step:g}",
                  file=sys.stderr)
        if callback is not None and callback(dict(entry, params=w)) is False:
            break
    else:
        converged = tol is None
    return w.astype(dtype), history, converged or tol is None


class SampledHessian:
    """Newton directions ``H_s^-1 g`` from the Hessian ``H_s`` of a fixed sample of rows, for
    ``optimizer="auto"`` (:func:`fastopt.engine.hessian_sample_rows`): a ``direction_of`` of
    :func:`newton_fit`.

    With ``keep`` (a Hessian that costs more than half a pass), ``H_s`` is computed at the
    first two iterates and then at every third one (iterations 0, 1, 3, 6, ...), the last
    kept in between: near the optimum it changes little, and less than the sample's own
    error. On 300,000 x 100, 5 classes (4,040 rows, 505 parameters, 1 thread) the fit keeps
    its 7 steps: 547 ms with a Hessian at every iterate (8 of ~25 ms), 440 at every second
    (5); every third (4) against every second, side by side: 377 against 404 ms. On other
    softmax problems that keep it, ms (steps): 200,000 x 100, 3 classes 314 (14) against 321
    (13); 300,000 x 100, 4 classes 325 against 347 (8); 150,000 x 50, 5 classes 126 against
    133 (7); 250,000 x 60, 7 classes 270 against 289 (6). The first two only: 472 ms (11). On two
    classes, where the Hessian costs a tenth to a quarter of a pass, keeping it cost steps
    (near-collinear 100,000 x 100: 11 to 14), so there it is computed at every iterate.

    The solve is LU (``np.linalg.solve``: 3 ms at 505 parameters, least squares took 31). For
    softmax with intercepts the Hessian is singular along the shift of every intercept by the
    same amount, which leaves the scores' differences and so the objective unchanged, and
    where the gradient has no component: that direction gets curvature (the intercepts'
    mean curvature) added, which makes ``H_s`` invertible and changes no solution orthogonal
    to it. A solve that fails or gives no descent direction falls back to least squares.
    """

    def __init__(self, sample, keep=False, hessian_of=None):
        self.sample = sample
        self.keep = keep
        self.hessian_of = hessian_of or hessian
        self.iterations = 0
        self.H = None

    def __call__(self, problem, params, grad):
        if (self.H is None or not self.keep or self.iterations < 2
                or self.iterations % 3 == 0):
            self.H = self._invertible(self.hessian_of(self.sample, params))
        self.iterations += 1
        try:
            direction = np.linalg.solve(self.H, grad)
        except np.linalg.LinAlgError:
            direction = None
        if direction is None or not (np.all(np.isfinite(direction)) and grad @ direction > 0):
            direction = np.linalg.lstsq(self.H, grad, rcond=None)[0]
        return direction

    def _invertible(self, H):
        spec = self.sample.spec
        if spec.model == "softmax" and spec.fit_intercept:
            first = spec.n_outputs * spec.n_features
            shift = np.ix_(np.arange(first, first + spec.n_outputs),
                           np.arange(first, first + spec.n_outputs))
            curvature = float(np.trace(H[shift])) / spec.n_outputs
            H[shift] += (curvature if curvature > 0 else 1.0) / spec.n_outputs
        return H
