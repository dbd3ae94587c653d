r"""Deterministic solvers that reach the optimum of a smooth objective: L-BFGS and truncated
Newton (Newton-CG), both with a strong-Wolfe line search, and conjugate gradients for a convex
quadratic (exact steps, no line search).

They know nothing of fastopt's models or backends: the caller hands in
``objective(x) -> (f, g)`` (one pass over the data, ``g`` a float64 array of ``x``'s shape) and,
for Newton-CG, ``hvp(x, v) -> H v``. All return a :class:`SolverResult`.

Precision
---------
The iterate is kept in ``x0``'s dtype (float32 or float64; anything else is taken as float64),
so the objective always sees exactly the point whose value and gradient it returns and the
curvature pairs ``s = x_{k+1} - x_k`` are those of the points evaluated. All algebra (two-loop
recursion, conjugate gradients, line search) runs in float64; a trial point is rounded to the
iterate's dtype before it is evaluated. With float32 parameters the gradient cannot fall much
below ``eps_float32 * |H| |x|``, so a tight ``tolerance_grad`` typically ends in
``status="precision"`` (no decrease left to find), not ``"converged"``.

Statuses
--------
``SolverResult.status`` says why the solver stopped:

- ``"converged"``: the gradient's max-norm reached the tolerance, or (L-BFGS) the step, the
  line-search interval or the change of the objective fell below ``tolerance_change``;
- ``"max_iter"`` / ``"max_eval"``: the budget ran out first;
- ``"stopped"``: ``callback`` returned False or ``should_stop()`` returned True;
- ``"precision"``: no step along the search direction decreases the objective by more than
  its rounding, or changes ``x`` by more than the rounding of ``x``'s dtype: the iterate is as
  good as this precision allows (typical of float32 with a tight tolerance); the iterate is the
  last one accepted;
- ``"line_search"``: no step satisfied the sufficient-decrease condition although the interval
  was still wide (an objective whose gradient does not match its values, or ``max_evals``
  trials used up); the iterate is the last one accepted;
- ``"nonfinite"``: the objective or its gradient was NaN or inf at the starting point, or at
  every point the line search tried; the iterate is the last finite one.

``converged`` is True for ``"converged"`` only. ``message`` says the same in words, with
numbers. A ``KeyboardInterrupt`` raised inside ``objective`` or ``hvp`` propagates unchanged.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

__all__ = ["SolverResult", "lbfgs", "newton_cg", "conjugate_gradient", "strong_wolfe",
           "LineSearchResult", "Trial"]

STATUSES = ("converged", "max_iter", "max_eval", "stopped", "precision", "line_search",
            "nonfinite")


@dataclass
class SolverResult:
    """What a solver returns.

    Attributes
    ----------
    x : ndarray
        The last accepted iterate, in ``x0``'s dtype (float32 or float64).
    f : float
        The objective at ``x``.
    grad : ndarray
        Its float64 gradient.
    n_iter : int
        Iterations completed (accepted steps).
    n_evals : int
        Calls of ``objective`` (each one pass over the data), the first included.
    converged : bool
        ``status == "converged"``.
    status : str
        Why the solver stopped, one of :data:`STATUSES` (see the module docstring).
    message : str
        The same in words.
    history : dict of lists
        Per iteration: ``"loss"`` (objective after the iteration), ``"grad_max"`` (max-norm of
        the gradient), ``"evals"`` (objective calls it took), ``"hvps"`` (Hessian-vector
        products it took; 0 for L-BFGS), ``"step"`` (line-search step length) and
        ``"seconds"`` (wall time); L-BFGS with ``tolerance_gap`` adds ``"gap"``, the estimated
        relative distance to the optimum.
    n_hvp : int
        Calls of ``hvp`` (Newton-CG; each one pass over the data). Passes over the data in all:
        ``n_evals + n_hvp``.
    pairs : list of (s, y)
        L-BFGS: the correction pairs it ended with, oldest first (``initial_pairs`` of a warm
        start on a neighbouring problem).
    curvatures : (float, float)
        L-BFGS: the lowest and highest curvature ``s^T y / s^T s`` seen along its steps
        (``(inf, 0)`` before the first pair); their ratio says how ill-conditioned the
        problem looked.
    """

    x: np.ndarray
    f: float
    grad: np.ndarray
    n_iter: int
    n_evals: int
    converged: bool
    status: str
    message: str
    history: dict = field(default_factory=dict)
    n_hvp: int = 0
    pairs: list = field(default_factory=list)
    curvatures: tuple = (np.inf, 0.0)


class _Counter:
    """Evaluates ``objective`` at float64 points rounded to the iterate's dtype, counts the
    calls, and reports non-finite results as such (never as a value to compare)."""

    def __init__(self, objective, dtype, shape):
        self.objective = objective
        self.dtype = dtype
        self.shape = shape
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        f, g = self.objective(x)
        f = float(f)
        g = np.asarray(g, dtype=np.float64)
        if g.shape != self.shape:
            raise ValueError(f"objective returned a gradient of shape {g.shape} for "
                             f"parameters of shape {self.shape}")
        finite = bool(np.isfinite(f) and np.all(np.isfinite(g)))
        return f, g, finite


def _iterate_dtype(x0):
    dtype = np.asarray(x0).dtype
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _start(objective, x0):
    """``(x, count, f, g, failed)``: ``x0`` as a 1-d array of its dtype (float32 or float64),
    ``objective`` counted (:class:`_Counter`), its value and gradient at ``x0``, and the result
    to return at once where they are not finite (else None)."""
    dtype = _iterate_dtype(x0)
    x = np.array(x0, dtype=dtype).ravel()
    count = _Counter(objective, dtype, x.shape)
    f, g, finite = count(x)
    return x, count, f, g, None if finite else _nonfinite_start(x, count)


def _cubic_minimizer(a, fa, ga, b, fb, gb):
    """Minimiser of the cubic through ``(a, fa)``, ``(b, fb)`` with slopes ``ga``, ``gb``, or
    None when it has none (Nocedal & Wright, eq. 3.59)."""
    if a == b:
        return None
    d1 = ga + gb - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - ga * gb
    if not np.isfinite(disc) or disc < 0:
        return None
    d2 = np.copysign(np.sqrt(disc), b - a)
    denom = gb - ga + 2.0 * d2
    if denom == 0 or not np.isfinite(denom):
        return None
    t = b - (b - a) * (gb + d2 - d1) / denom
    return float(t) if np.isfinite(t) else None


@dataclass
class Trial:
    """One point of a line search: step ``t``, value ``f``, slope ``grad . direction``, the
    point ``x`` (in the iterate's dtype) and its gradient; ``finite``: value and gradient are
    finite (else ``f`` is inf); ``moved``: ``x`` differs from the start after rounding."""

    t: float
    f: float
    slope: float
    x: np.ndarray | None = None
    grad: np.ndarray | None = None
    finite: bool = True
    moved: bool = True


@dataclass
class LineSearchResult:
    """``point`` is the accepted trial (None when ``status`` is not "ok"); ``wolfe``: whether
    it also meets the curvature condition (else only sufficient decrease)."""

    status: str
    point: Trial | None
    evals: int
    message: str = ""
    wolfe: bool = False


def strong_wolfe(evaluate, x, f0, g0, direction, t, *, c1=1e-4, c2=0.9, max_evals=25,
                 tolerance_change=1e-9):
    r"""Find a step ``t`` along ``direction`` that meets the strong Wolfe conditions

    .. math::
        f(x + t d) \le f(x) + c_1 t\, g^\top d, \qquad |\nabla f(x + t d)^\top d| \le c_2
        |g^\top d|

    (Nocedal & Wright, Algorithms 3.5 and 3.6): grow the trial step, extrapolating with the
    cubic through the last two trials, until an interval is bracketed that must contain such a
    step, then shrink it with safeguarded cubic interpolation. A trial whose value or gradient
    is not finite counts as too long a step (the interval is cut to a tenth of it).

    ``evaluate(x) -> (f, g, finite)``. When ``max_evals`` run out, or the interval shrinks below
    ``tolerance_change`` or the rounding of ``x`` (in the max-norm of the step), the best trial
    that meets sufficient decrease is returned with ``wolfe=False``; if there is none, status is
    "line_search", "precision" (the interval fell below the rounding of ``x``), "small_step"
    (below ``tolerance_change``) or "nonfinite" (no trial was finite).
    """
    dphi0 = float(g0 @ direction)
    if not dphi0 < 0:
        return LineSearchResult("line_search", None, 0, _not_descent_message(dphi0))
    dtype = x.dtype
    x64 = x.astype(np.float64)
    d_max = float(np.max(np.abs(direction)))
    # below this a trial point rounds to (nearly) the same x: no further progress possible
    resolution = 2 * np.finfo(dtype).eps * max(1.0, float(np.max(np.abs(x64), initial=0.0)))
    evals = 0
    any_finite = False

    def trial(t):
        nonlocal evals, any_finite
        evals += 1
        xt = (x64 + t * direction).astype(dtype)
        f, g, finite = evaluate(xt)
        if not finite:
            return Trial(t, np.inf, np.nan, xt, g, False)
        any_finite = True
        return Trial(t, f, float(g @ direction), xt, g, moved=not np.array_equal(xt, x))

    def sufficient(p):
        # A trial that rounds back to x is no progress, even where f0 + c1 t g.d rounds to f0.
        return p.finite and p.moved and p.f <= f0 + c1 * p.t * dphi0

    def curvature(p):
        return abs(p.slope) <= -c2 * dphi0

    # Near the optimum f(x + t d) - f(x) is below the rounding of f, and sufficient decrease
    # cannot be seen in the values; the slopes still can: accept a trial whose value is within
    # rounding of f0 and whose slope meets the curvature condition (Hager & Zhang's
    # "approximate Wolfe" conditions, here with the strong curvature test).
    noise = 1e-12 * max(1.0, abs(f0))

    def approximate_wolfe(p):
        return p.finite and p.f <= f0 + noise and curvature(p)

    def give_up(best, why, status="line_search"):
        if best is not None and best.t > 0:
            return LineSearchResult("ok", best, evals, why, wolfe=False)
        status = status if any_finite or evals == 0 else "nonfinite"
        if status == "nonfinite":
            why = _nonfinite_message(last_t)
        return LineSearchResult(status, None, evals, why)

    def zoom(lo, hi):
        # Invariants: lo meets sufficient decrease and has the lowest value seen so far among
        # such trials; the slope at lo points towards hi; [lo, hi] contains a Wolfe step.
        nonlocal last_t
        while evals < max_evals:
            width = abs(hi.t - lo.t)
            if width * d_max <= tolerance_change:
                return give_up(lo, _small_step_message(width * d_max, tolerance_change),
                               "small_step")
            if width * d_max <= resolution:
                return give_up(lo, _precision_message(dtype, width * d_max), "precision")
            left, right = min(lo.t, hi.t), max(lo.t, hi.t)
            if hi.finite:
                t = _cubic_minimizer(lo.t, lo.f, lo.slope, hi.t, hi.f, hi.slope)
                # keep the new trial well inside the interval, else bisect
                if t is None or not (left + 0.1 * width <= t <= right - 0.1 * width):
                    t = 0.5 * (lo.t + hi.t)
            else:
                t = lo.t + 0.1 * (hi.t - lo.t)
            last_t = t
            p = trial(t)
            if approximate_wolfe(p):
                return LineSearchResult("ok", p, evals, wolfe=True)
            if not sufficient(p) or p.f >= lo.f:
                hi = p
                continue
            if curvature(p):
                return LineSearchResult("ok", p, evals, wolfe=True)
            if p.slope * (hi.t - lo.t) >= 0:
                hi = lo
            lo = p
        return give_up(lo, _no_wolfe_message(max_evals))

    start = Trial(0.0, f0, dphi0)
    prev = start
    last_t = t
    while evals < max_evals:
        last_t = t
        p = trial(t)
        if approximate_wolfe(p):
            return LineSearchResult("ok", p, evals, wolfe=True)
        if not sufficient(p) or (prev.t > 0 and p.f >= prev.f):
            return zoom(prev, p)
        if curvature(p):
            return LineSearchResult("ok", p, evals, wolfe=True)
        if p.slope >= 0:
            return zoom(p, prev)
        # Still descending: extrapolate, at least doubling and at most ten-folding the step.
        low, high = t + (t - prev.t), t + 9.0 * (t - prev.t)
        guess = _cubic_minimizer(prev.t, prev.f, prev.slope, p.t, p.f, p.slope)
        prev = p
        t = high if guess is None else min(max(guess, low), high)
    return give_up(prev if prev.t > 0 else None, _no_wolfe_message(max_evals))


def _new_history():
    return {"loss": [], "grad_max": [], "evals": [], "hvps": [], "step": [], "seconds": []}


def _check_common(max_iter, max_eval):
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    if max_eval is not None and (not isinstance(max_eval, (int, np.integer)) or max_eval < 1):
        raise ValueError(f"max_eval must be a positive integer or None, got {max_eval!r}")


def _lbfgs_budget(max_iter, history_size, max_eval):
    """L-BFGS's settings checked; returns ``max_eval``, by default ``max_iter * 5 // 4``
    (torch's)."""
    _check_common(max_iter, max_eval)
    if not isinstance(history_size, (int, np.integer)) or history_size < 1:
        raise ValueError(f"history_size must be a positive integer, got {history_size!r}")
    return max(1, max_iter * 5 // 4) if max_eval is None else max_eval


def _check_line_search(line_search):
    if line_search != "strong_wolfe":
        raise ValueError(f"line_search must be 'strong_wolfe', got {line_search!r}")


def _nonfinite_start(x, count):
    return SolverResult(x, float("nan"), np.full(x.shape, np.nan), 0, count.calls, False,
                        "nonfinite", "the objective or its gradient is not finite at the "
                        "starting point", _new_history())


def lbfgs(objective, x0, *, max_iter, history_size=10, tolerance_grad=1e-7,
          tolerance_change=1e-9, tolerance_gap=0.0, max_eval=None, line_search="strong_wolfe",
          callback=None, should_stop=None, initial_pairs=(), curvature_floor=0.0):
    r"""Minimise ``objective`` with L-BFGS and a strong-Wolfe line search.

    Each iteration takes the direction ``d = -H_k g`` of the two-loop recursion (Nocedal &
    Wright, Algorithm 7.4) over the last ``history_size`` pairs
    ``s = x_{k+1} - x_k``, ``y = g_{k+1} - g_k`` with the initial scaling
    ``H_0 = (s^T y / y^T y) I``, then a strong-Wolfe line search (``c1 = 1e-4``, ``c2 = 0.9``)
    from step 1 (the first iteration, along ``-g``, from ``1 / |g|_2`` as L-BFGS-B does: torch's
    ``min(1, 1 / |g|_1)`` stopped short on 4000 sparse features, and the short first pair made
    every later step short too: 49 iterations to a gap of 1e-7 against 24). Pairs with
    ``s^T y <= 1e-10 |s| |y|`` are not stored (they would make ``H`` indefinite).

    Parameters
    ----------
    objective : callable
        ``objective(x) -> (f, g)``, ``g`` the gradient (converted to float64).
    x0 : array_like
        Starting point, 1-D. float32 stays float32 (see "Precision" in the module docstring).
    max_iter : int
        Most iterations (accepted steps).
    history_size : int
        Correction pairs kept (torch.optim.LBFGS's name).
    tolerance_grad : float
        Converged when ``max|g| <= tolerance_grad``.
    tolerance_change : float
        Converged when the step's max-norm or the change of the objective is below it.
    tolerance_gap : float
        Converged when the estimated relative distance to the optimum (``_gap_estimate``:
        the quasi-Newton model's ``g^T H g / 2`` with the flattest curvature seen, or
        ``curvature_floor`` when the curvatures seen span :data:`WIDE_SPECTRUM`, or the last
        decrease of ``f`` if larger, over ``|f|``) is at most this (0: never). It is an
        estimate, not a bound: along directions of low curvature that no step has explored
        it can still be optimistic (near-collinear features, n=3000, d=12: estimate 4.6e-8,
        true gap 1.5e-6; fastopt's ``optimizer="auto"`` checks small problems with Newton's
        decrement for that reason).
    max_eval : int, optional
        Most objective calls, default ``max_iter * 5 // 4`` (torch's). Checked after each
        iteration, so one line search may run past it.
    line_search : {"strong_wolfe"}
    callback : callable, optional
        ``callback(info)`` after every iteration with a dict ``iteration, x, f, grad, grad_max,
        step, n_evals`` (and ``gap``, the estimate, with ``tolerance_gap``); returning False
        stops the solver (status "stopped").
    should_stop : callable, optional
        Polled before every iteration; True stops the solver (status "stopped").
    curvature_floor : float
        A lower bound of the objective's curvature (an l2 penalty's strength), 0 if none; see
        ``tolerance_gap``.
    initial_pairs : iterable of (s, y), optional
        Correction pairs to start from instead of none (then the first step is 1, not
        ``1 / |g|_2``): a warm start's curvature, e.g. the ``pairs`` of a solve of a nearby
        objective; those that fail the ``s^T y`` test above are left out.

    Returns
    -------
    SolverResult
    """
    _check_line_search(line_search)
    max_eval = _lbfgs_budget(max_iter, history_size, max_eval)
    x, count, f, g, failed = _start(objective, x0)
    if failed:
        return failed
    history = dict(_new_history(), gap=[]) if tolerance_gap > 0 else _new_history()
    progress = _Progress(x)
    pairs = deque(maxlen=history_size)  # (s, y, 1 / s.y)
    flattest, steepest = np.inf, 0.0  # the curvatures s^T y / s^T s seen along steps
    for s, y in initial_pairs:
        curvature = _add_pair(pairs, np.asarray(s, dtype=np.float64),
                              np.asarray(y, dtype=np.float64))
        flattest, steepest = min(flattest, curvature), max(steepest, _finite(curvature))
    status, message = "max_iter", _max_iter_message(max_iter)
    iteration = 0
    if np.max(np.abs(g), initial=0.0) <= tolerance_grad:
        status, message = "converged", _grad_message(g, tolerance_grad)
        max_iter = 0
    direction = -_two_loop(g, pairs)[0]
    if not float(g @ direction) < 0:
        pairs.clear()  # rounding made H_k indefinite: restart from steepest descent
        direction = -g
    while iteration < max_iter:
        if should_stop is not None and should_stop():
            status, message = "stopped", "should_stop() returned True"
            break
        started, evals_before = time.perf_counter(), count.calls
        t0 = 1.0 if iteration > 0 or pairs else 1.0 / float(np.linalg.norm(g))
        search = strong_wolfe(count, x, f, g, direction, t0, tolerance_change=tolerance_change)
        if search.status == "small_step":  # as torch.optim.LBFGS: a converged step size
            status, message = "converged", search.message
            break
        if search.status != "ok":
            status, message = search.status, _search_failed(search, g)
            break
        new = search.point
        s = new.x.astype(np.float64) - x
        curvature = _add_pair(pairs, s, new.grad - g)
        flattest, steepest = min(flattest, curvature), max(steepest, _finite(curvature))
        f_change = abs(new.f - f)
        x, f, g = new.x, new.f, new.grad
        iteration += 1
        estimating = tolerance_gap > 0 and pairs and np.isfinite(flattest)
        wide = curvature_floor > 0 and steepest >= WIDE_SPECTRUM * flattest
        lowest = min(flattest, curvature_floor) if wide else flattest
        products = _two_loop(g, pairs, (None, 1.0 / lowest) if estimating else (None,))
        direction = -products[0]
        gap = _gap_estimate(g, products[1], f, f_change) if estimating else np.inf
        if not float(g @ direction) < 0:
            pairs.clear()  # rounding made H_k indefinite: restart from steepest descent
            direction = -g
        grad_max = float(np.max(np.abs(g), initial=0.0))
        _record(history, f, grad_max, count.calls - evals_before, 0, new.t, started)
        info = {"iteration": iteration, "x": x, "f": f, "grad": g, "grad_max": grad_max,
                "step": new.t, "n_evals": count.calls}
        if tolerance_gap > 0:
            history["gap"].append(gap)
            info["gap"] = gap
        if callback is not None and callback(info) is False:
            status, message = "stopped", "callback returned False"
            break
        step_max = float(np.max(np.abs(s), initial=0.0))
        if grad_max <= tolerance_grad:
            status, message = "converged", _grad_message(g, tolerance_grad)
            break
        if gap <= tolerance_gap:
            status, message = "converged", _gap_message(gap, tolerance_gap)
            break
        if progress.revisited(x):
            status, message = "precision", progress.MESSAGE
            break
        if step_max <= tolerance_change:
            status, message = "converged", _step_message(step_max, tolerance_change)
            break
        if f_change < tolerance_change:
            status, message = "converged", _change_message(f_change, tolerance_change)
            break
        if count.calls >= max_eval:
            status, message = "max_eval", _max_eval_message(max_eval)
            break
    return SolverResult(x, f, g, iteration, count.calls, status == "converged", status,
                        message, history, pairs=[(s, y) for s, y, _ in pairs],
                        curvatures=(flattest, steepest))


def compiled_lbfgs(run, x0, *, max_iter, history_size=10, tolerance_grad=1e-7,
                   tolerance_change=1e-9, tolerance_gap=0.0, max_eval=None, curvature_floor=0.0):
    """:func:`lbfgs` with its loop compiled: ``run(x0, **settings) -> dict`` is a backend's
    loop (``fastopt._core.lbfgs`` on a Dataset: the same steps as :func:`lbfgs`, whose
    reference it is, to the rounding of its dot products), called with :func:`lbfgs`'s
    settings; its reason (``LbfgsReason`` in ``csrc/include/fastopt/lbfgs.hpp``, the keys of
    ``statuses`` below) and number become :func:`lbfgs`'s status and message here. Returns
    the :class:`SolverResult` :func:`lbfgs` would (no callback: the history comes at the
    end)."""
    max_eval = _lbfgs_budget(max_iter, history_size, max_eval)
    out = run(x0, max_iter=max_iter, history_size=history_size, max_eval=max_eval,
              tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
              tolerance_gap=tolerance_gap, curvature_floor=curvature_floor)
    x, g, detail = out["x"], out["g"], out["detail"]
    statuses = {
        0: ("max_iter", lambda: _max_iter_message(max_iter)),
        1: ("converged", lambda: _grad_message(g, tolerance_grad)),
        2: ("converged", lambda: _small_step_message(detail, tolerance_change)),
        3: ("converged", lambda: _gap_message(detail, tolerance_gap)),
        4: ("precision", lambda: _Progress.MESSAGE),
        5: ("converged", lambda: _step_message(detail, tolerance_change)),
        6: ("converged", lambda: _change_message(detail, tolerance_change)),
        7: ("max_eval", lambda: _max_eval_message(max_eval)),
        8: ("line_search", lambda: _not_descent_message(detail)),
        9: ("precision", lambda: _precision_message(x.dtype, detail)),
        10: ("line_search", lambda: _no_wolfe_message(25)),
        11: ("nonfinite", lambda: _nonfinite_message(detail)),
    }
    if out["reason"] == 12:
        return _nonfinite_start(x, SimpleNamespace(calls=out["n_evals"]))
    status, words = statuses[out["reason"]]
    message = words()
    if out["reason"] in (8, 9, 10, 11):  # a line search that found no step: _search_failed's
        message = _search_failed(SimpleNamespace(status=status, message=message), g)
    history = _new_history()
    history["loss"] = [float(v) for v in out["loss"]]
    history["grad_max"] = [float(v) for v in out["grad_max"]]
    history["evals"] = [int(v) for v in out["evals"]]
    history["hvps"] = [0] * len(out["loss"])
    history["step"] = [float(v) for v in out["step"]]
    history["seconds"] = [float(v) for v in out["seconds"]]
    if tolerance_gap > 0:
        history["gap"] = [float(v) for v in out["gap"]]
    return SolverResult(x, float(out["f"]), g, int(out["n_iter"]), int(out["n_evals"]),
                        status == "converged", status, message, history,
                        pairs=list(out["pairs"]), curvatures=tuple(out["curvatures"]))


WIDE_SPECTRUM = 30.0
"""When L-BFGS's steps have met curvatures this far apart, its gap estimate takes the
``curvature_floor`` (the l2 penalty's strength: no direction is flatter) for the directions no
pair spans. On near-collinear features (n=1e5, d=100; curvatures 370 apart) the flattest
curvature seen was 300 times the floor, and the fit stopped at a true gap of 2.1e-6 (40
iterations and 9e-12 with the floor); the benchmark's other problems met curvatures 1.1 to 90
apart, and the floor cost them nothing below 30 and up to 3 iterations above (taking it always
cost 5 more of 12 on the binary 200,000 x 50)."""


def _finite(value):
    return value if np.isfinite(value) else 0.0


def _add_pair(pairs, s, y):
    """Keep the pair unless ``s^T y`` is too small for a positive definite ``H``, or ``y^T y``
    underflows to 0 (the gradient's change is below 1e-154: separable classes without a
    penalty, where the loss fades to 0; the newest pair's scaling would divide by it);
    returns its curvature ``s^T y / s^T s`` (inf when left out)."""
    sy, yy = float(s @ y), float(y @ y)
    if yy > 0 and sy > 1e-10 * np.linalg.norm(s) * math.sqrt(yy):
        pairs.append((s, y, 1.0 / sy))
        return sy / float(s @ s)
    return np.inf


def _gap_estimate(g, flat_product, f, f_change):
    """The relative distance to the optimum that ``tolerance_gap`` tests: the quasi-Newton
    model's ``g^T H g / 2`` (half the squared Newton decrement), with ``H_0`` the inverse of
    the lowest curvature seen along any step instead of the newest pair's (``flat_product`` is
    that ``H g``), and at least the last decrease of ``f``. The newest pair's scaling (the
    direction's) takes the curvature of the directions it has explored, typically the steep
    ones: on near-collinear features the gradient left in the flat directions then looked 40
    times smaller than the gap it stood for, and the fit stopped at a gap of 1.4e-6 on a
    plateau. The pairs themselves still correct ``H`` in the directions they span."""
    model = 0.5 * float(g @ flat_product)
    return max(model, f_change) / max(abs(f), np.finfo(float).tiny)


def _two_loop(g, pairs, scales=(None,)):
    """``H_k g`` for the L-BFGS inverse-Hessian estimate built from ``pairs``, one row per
    ``H_0 = scale I`` of ``scales`` (None: ``s^T y / y^T y`` of the newest pair). The first loop
    does not depend on ``H_0``; the second runs each row in place, one dot product and one
    update of the parameters' length a pair (the gap estimate's row doubles only that loop).
    Rows, not columns of a (p, 2) array: NumPy's loops over an inner axis of 2 made the
    two-loop 0.33 ms of a 1.9 ms iteration at p = 4,001."""
    q = g.copy()
    work = np.empty_like(q)
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * float(s @ q)
        np.multiply(y, a, out=work)
        q -= work
        alphas.append(a)
    newest = float(pairs[-1][0] @ pairs[-1][1]) / float(pairs[-1][1] @ pairs[-1][1]) if pairs \
        else 1.0
    rows = np.empty((len(scales), len(q)))
    for row, scale in zip(rows, scales):
        np.multiply(q, newest if scale is None else scale, out=row)
        for (s, y, rho), a in zip(pairs, reversed(alphas)):
            b = rho * float(y @ row)
            np.multiply(s, a - b, out=work)
            row += work
    return rows


class _Progress:
    """Below the rounding of f the line search accepts steps on slopes alone; at the precision
    limit (float32 parameters especially) that can cycle between a few points of the grid of
    representable parameters. ``revisited`` says when an iterate repeats one of the last
    ``WINDOW``: no progress is left to make."""

    WINDOW = 20
    MESSAGE = ("no progress left at this precision: the iterate returned to one visited "
               "before (the steps are below the rounding of the objective)")

    def __init__(self, x):
        self.seen = deque([x.tobytes()], maxlen=self.WINDOW)

    def revisited(self, x):
        key = x.tobytes()
        if key in self.seen:
            return True
        self.seen.append(key)
        return False


def _grad_message(g, tol):
    return (f"the gradient's max-norm {np.max(np.abs(g), initial=0.0):.3g} reached the "
            f"tolerance {tol:g}")


# The solvers' other messages, one function each: the compiled L-BFGS (compiled_lbfgs) says
# why it stopped with a number, and these give it the words of the Python loop.
def _not_descent_message(dphi0):
    return f"not a descent direction (g.d = {dphi0:.3g})"


def _nonfinite_message(last_t):
    return (f"the objective or its gradient was not finite at every step tried "
            f"(down to {last_t:.3g})")


def _small_step_message(width, tolerance_change):
    return (f"the line-search interval shrank to {width:.3g} in x, below "
            f"tolerance_change={tolerance_change:g}")


def _precision_message(dtype, width):
    return (f"no step along the search direction decreases the objective at the precision "
            f"of {np.dtype(dtype)} parameters (interval {width:.3g} in x)")


def _no_wolfe_message(max_evals):
    return f"no step met the strong Wolfe conditions in {max_evals} evaluations"


def _gap_message(gap, tolerance_gap):
    return (f"the estimated relative distance to the optimum {gap:.3g} reached "
            f"tolerance_gap={tolerance_gap:g}")


def _step_message(step_max, tolerance_change):
    return f"the step's max-norm {step_max:.3g} fell below tolerance_change={tolerance_change:g}"


def _change_message(f_change, tolerance_change):
    return f"the objective changed by {f_change:.3g} < tolerance_change={tolerance_change:g}"


def _max_iter_message(max_iter):
    return f"reached max_iter={max_iter}"


def _max_eval_message(max_eval):
    return f"reached max_eval={max_eval} objective calls"


def _search_failed(search, g):
    prefix = "" if search.status == "precision" else "line search failed: "
    return (f"{prefix}{search.message} (gradient max-norm "
            f"{np.max(np.abs(g), initial=0.0):.3g} at the last accepted iterate)")


def _record(history, f, grad_max, evals, hvps, step, started):
    history["loss"].append(f)
    history["grad_max"].append(grad_max)
    history["evals"].append(evals)
    history["hvps"].append(hvps)
    history["step"].append(step)
    history["seconds"].append(time.perf_counter() - started)


def newton_cg(objective, hvp, x0, *, max_iter, tol=1e-5, tolerance_gap=0.0, max_cg_iter=None,
              max_eval=None, line_search="strong_wolfe", callback=None, should_stop=None):
    r"""Minimise ``objective`` with truncated Newton: conjugate gradients on ``H p = -g``,
    stopped early, then a strong-Wolfe line search along ``p`` from step 1.

    CG (Nocedal & Wright, Algorithm 7.1) stops when the residual falls to
    ``min(0.5, sqrt(|g|)) |g|`` (the forcing term that makes the outer iteration superlinear),
    after ``max_cg_iter`` products, or on a direction of non-positive curvature ``z^T H z <= 0``:
    then it returns the step built so far, or ``-g`` if that is still zero.

    Parameters
    ----------
    objective : callable
        ``objective(x) -> (f, g)``.
    hvp : callable
        ``hvp(x, v) -> H(x) v``, ``v`` float64; ``x`` is the same array object throughout one
        outer iteration, so an implementation may cache what depends on ``x`` alone.
    x0 : array_like
        Starting point, 1-D; float32 stays float32.
    max_iter : int
        Most outer (Newton) iterations.
    tol : float
        Converged when ``max|g| <= tol``.
    tolerance_gap : float
        Converged when the estimated relative distance to the optimum, ``max(-g^T p / 2,
        f_{k-1} - f_k) / |f|`` with ``p`` the CG step (``-g^T p`` approaches the squared Newton
        decrement ``g^T H^{-1} g`` from below), is at most this (0: never); checked after CG,
        before the line search.
    max_cg_iter : int, optional
        Most Hessian-vector products per outer iteration; default ``max(10, min(len(x0),
        200))``.
    max_eval : int, optional
        Most objective calls, default ``10 * max_iter``; checked after each iteration.
    line_search : {"strong_wolfe"}
    callback, should_stop
        As for :func:`lbfgs` (``info`` also has ``"cg_iter"``).

    Returns
    -------
    SolverResult
        ``n_hvp`` counts the Hessian-vector products.
    """
    _check_common(max_iter, max_eval)
    _check_line_search(line_search)
    if max_cg_iter is None:
        max_cg_iter = max(10, min(np.size(x0), 200))
    if not isinstance(max_cg_iter, (int, np.integer)) or max_cg_iter < 1:
        raise ValueError(f"max_cg_iter must be a positive integer, got {max_cg_iter!r}")
    if max_eval is None:
        max_eval = max(1, 10 * max_iter)
    x, count, f, g, failed = _start(objective, x0)
    if failed:
        return failed
    history = _new_history()
    progress = _Progress(x)
    n_hvp = 0
    status, message = "max_iter", _max_iter_message(max_iter)
    iteration = 0
    f_change = np.inf
    if np.max(np.abs(g), initial=0.0) <= tol:
        status, message = "converged", _grad_message(g, tol)
        max_iter = 0
    while iteration < max_iter:
        if should_stop is not None and should_stop():
            status, message = "stopped", "should_stop() returned True"
            break
        started, evals_before = time.perf_counter(), count.calls
        direction, products, cg_status = _truncated_cg(hvp, x, g, max_cg_iter)
        n_hvp += products
        if cg_status == "nonfinite":
            status, message = "nonfinite", "a Hessian-vector product was not finite"
            break
        gap = (max(-0.5 * float(g @ direction), f_change)
               / max(abs(f), np.finfo(float).tiny))
        if gap <= tolerance_gap:
            status, message = "converged", _gap_message(gap, tolerance_gap)
            break
        search = strong_wolfe(count, x, f, g, direction, 1.0, tolerance_change=0.0)
        if search.status != "ok" and cg_status != "steepest":
            # The Newton direction may be poor far from the optimum: try steepest descent.
            direction = -g
            search = strong_wolfe(count, x, f, g, direction,
                                  min(1.0, 1.0 / float(np.sum(np.abs(g)))),
                                  tolerance_change=0.0)
        if search.status != "ok":
            status, message = search.status, _search_failed(search, g)
            break
        new = search.point
        f_change = abs(new.f - f)
        x, f, g = new.x, new.f, new.grad
        iteration += 1
        grad_max = float(np.max(np.abs(g), initial=0.0))
        _record(history, f, grad_max, count.calls - evals_before, products, new.t, started)
        if callback is not None and callback(
                {"iteration": iteration, "x": x, "f": f, "grad": g, "grad_max": grad_max,
                 "step": new.t, "n_evals": count.calls, "cg_iter": products}) is False:
            status, message = "stopped", "callback returned False"
            break
        if grad_max <= tol:
            status, message = "converged", _grad_message(g, tol)
            break
        if progress.revisited(x):
            status, message = "precision", progress.MESSAGE
            break
        if count.calls >= max_eval:
            status, message = "max_eval", _max_eval_message(max_eval)
            break
    return SolverResult(x, f, g, iteration, count.calls, status == "converged", status,
                        message, history, n_hvp)


def conjugate_gradient(objective, x0, *, max_iter, tol=0.0, tolerance_gap=0.0, callback=None,
                       should_stop=None):
    r"""Minimise a convex quadratic ``objective`` (linear regression, penalty None or l2) by
    conjugate gradients, one call of ``objective`` an iteration and no line search: the
    gradient of a quadratic is affine, so a direction's Hessian product is ``g(x0 + q) -
    g(x0)``, exactly, and the step along it is the exact minimiser ``r^T q / q^T H q`` (``r =
    -g``). On a quadratic L-BFGS makes the same iterates with exact line searches; its line
    search spent extra passes finding them (T1's ridge problem: 8 passes where this takes 5).

    The residual (``-g``) and the objective follow by the recurrences ``r -= alpha H q`` and
    ``f -= alpha r^T q / 2``, not by another pass. A direction is rounded to ``x0``'s dtype
    about ``x0`` before it is evaluated and used as rounded, so float32 parameters give exact
    products too; its successor is ``r + beta q`` with Polak-Ribiere's ``beta`` (clipped at
    0), which keeps the directions conjugate where rounding perturbs them.

    Converged when ``max|g| <= tol`` or when the estimated relative gap ``|r|^2 / (2
    theta) / |f|`` is at most ``tolerance_gap``, with ``theta`` the smallest Ritz value of the
    Lanczos matrix of the iterations so far (an upper estimate of the smallest eigenvalue of
    H, exact when the iterations have explored H's lowest directions). ``"precision"`` when a
    direction shows no positive curvature (rounding: for a positive semidefinite H the
    residual has none along the null space). Other arguments and the result as for
    :func:`lbfgs` (``step`` is ``alpha``; every iteration is one evaluation).
    """
    _check_common(max_iter, None)
    base, count, f, g0, failed = _start(objective, x0)
    if failed:
        return failed
    dtype, start = base.dtype, base.astype(np.float64)
    x, r = start.copy(), -g0
    p, rr = r.copy(), float(r @ r)
    diagonal, off_diagonal = [], []  # the Lanczos matrix, from the alphas and betas
    history = _new_history()
    if tolerance_gap > 0:
        history["gap"] = []

    def estimated_gap():
        between = off_diagonal[:-1]  # the last one joins the next iteration's row
        theta = float(np.linalg.eigvalsh(
            np.diag(diagonal) + np.diag(between, 1) + np.diag(between, -1))[0])
        return rr / (2 * theta) / max(abs(f), np.finfo(float).tiny) if theta > 0 else np.inf

    status, message = "max_iter", _max_iter_message(max_iter)
    iteration, alpha_before, beta, gap = 0, None, 0.0, np.inf
    grad_max = float(np.max(np.abs(r), initial=0.0))
    while True:
        if grad_max <= tol:
            status, message = "converged", _grad_message(r, tol)
            break
        if gap <= tolerance_gap:
            status, message = "converged", _gap_message(gap, tolerance_gap)
            break
        if iteration >= max_iter:
            break
        if should_stop is not None and should_stop():
            status, message = "stopped", "should_stop() returned True"
            break
        started = time.perf_counter()
        q = (start + p).astype(dtype).astype(np.float64) - start
        _, g_q, finite = count((start + q).astype(dtype))
        if not finite:
            status, message = "nonfinite", ("the objective or its gradient was not finite "
                                            "at the next direction's trial point")
            break
        h_q = g_q - g0
        curvature = float(q @ h_q)
        if not curvature > 0:
            status, message = "precision", _Progress.MESSAGE
            break
        along = float(r @ q)
        alpha = along / curvature
        x += alpha * q
        r_before = r
        r = r - alpha * h_q
        f -= 0.5 * alpha * along
        rr_before, rr = rr, float(r @ r)
        diagonal.append(1.0 / alpha + (beta / alpha_before if alpha_before else 0.0))
        beta = max(0.0, float(r @ (r - r_before)) / rr_before)
        off_diagonal.append(math.sqrt(beta) / alpha)
        alpha_before = alpha
        p = r + beta * q
        iteration += 1
        grad_max = float(np.max(np.abs(r), initial=0.0))
        _record(history, f, grad_max, 1, 0, alpha, started)
        info = {"iteration": iteration, "x": x.astype(dtype), "f": f, "grad": -r,
                "grad_max": grad_max, "step": alpha, "n_evals": count.calls}
        if tolerance_gap > 0:
            gap = info["gap"] = estimated_gap()
            history["gap"].append(gap)
        if callback is not None and callback(info) is False:
            status, message = "stopped", "callback returned False"
            break
    return SolverResult(x.astype(dtype), f, -r, iteration, count.calls, status == "converged",
                        status, message, history)


def _truncated_cg(hvp, x, g, max_iter):
    """Approximately solve ``H p = -g``; returns ``(p, products, status)`` with status "ok",
    "steepest" (``p = -g`` at once: curvature not positive) or "nonfinite"."""
    g_norm = float(np.linalg.norm(g))
    target = min(0.5, np.sqrt(g_norm)) * g_norm
    p = np.zeros_like(g)
    r = -g.copy()  # residual of H p = -g
    z = r.copy()
    rr = float(r @ r)
    products = 0
    while products < max_iter and np.sqrt(rr) > target:
        Hz = np.asarray(hvp(x, z), dtype=np.float64)
        products += 1
        if not np.all(np.isfinite(Hz)):
            return p, products, "nonfinite"
        curvature = float(z @ Hz)
        if curvature <= 0.0:
            if products == 1:
                return -g, products, "steepest"
            break
        step = rr / curvature
        p += step * z
        r -= step * Hz
        rr, rr_old = float(r @ r), rr
        z = r + (rr / rr_old) * z
    if not np.any(p):
        return -g, products, "steepest"
    return p, products, "ok"


# ---------------------------------------------------------------------------------------------
# The solvers as fit options: ``fastopt.fit(optimizer=fastopt.LBFGS(...))`` (or "lbfgs")

@dataclass(frozen=True)
class LBFGS:
    """L-BFGS as a fit option (``optimizer="lbfgs"`` with the defaults): full batch, every
    objective evaluation one compiled pass over X (loss and gradient together). The names are
    ``torch.optim.LBFGS``'s; ``epochs`` is the iteration limit.

    Parameters
    ----------
    history_size : int, default=10
    tolerance_grad : float or None, default=None
        Stop when the gradient's largest entry is at most this; None: the fit's ``tol`` when
        that is a number, else 0.
    tolerance_change : float, default=0.0
        Stop when a step or the change of the objective is below this. torch's default, 1e-9
        (absolute), stopped logistic fits at a relative distance of 5e-5 from the optimum with
        the gradient still at 1e-5; with 0 the fit ends at ``tolerance_grad`` or when no step
        lowers the objective any more (status "precision").
    tolerance_gap : float or None, default=None
        Stop when the estimated relative distance to the optimum (see :func:`lbfgs`) is at
        most this; None: :data:`AUTO_GAP` when the fit's ``tol`` is ``"auto"``, else 0.
    max_eval : int or None
        Most objective evaluations (passes over X); default ``epochs * 5 // 4``.
    """

    history_size: int = 10
    tolerance_grad: float | None = None
    tolerance_change: float = 0.0
    tolerance_gap: float | None = None
    max_eval: int | None = None

    def settings(self, *, max_iter, tol, curvature_floor=0.0):
        """The keyword arguments of :func:`lbfgs` (less ``callback``) for a fit's ``epochs``
        (``max_iter``) and ``tol``."""
        grad, gap = _tolerances(self.tolerance_grad, self.tolerance_gap, tol)
        return dict(max_iter=max_iter, history_size=self.history_size, tolerance_grad=grad,
                    tolerance_change=self.tolerance_change, tolerance_gap=gap,
                    max_eval=self.max_eval, curvature_floor=curvature_floor)

    def run(self, objective, hvp, x0, *, max_iter, tol, callback, curvature_floor=0.0):
        return lbfgs(objective, x0, callback=callback, **self.settings(
            max_iter=max_iter, tol=tol, curvature_floor=curvature_floor))


@dataclass(frozen=True)
class NewtonCG:
    """Truncated Newton (Newton-CG) as a fit option (``optimizer="newton-cg"``): conjugate
    gradients on Hessian-vector products, for problems whose explicit Hessian (``"newton"``)
    is too large. ``tolerance_grad`` and ``tolerance_gap`` as for :class:`LBFGS` (the estimate
    is :func:`newton_cg`'s); ``epochs`` is the limit of outer iterations."""

    tolerance_grad: float | None = None
    tolerance_gap: float | None = None
    max_cg_iter: int | None = None
    max_eval: int | None = None

    def run(self, objective, hvp, x0, *, max_iter, tol, callback, curvature_floor=0.0):
        grad, gap = _tolerances(self.tolerance_grad, self.tolerance_gap, tol)
        return newton_cg(objective, hvp, x0, max_iter=max_iter, tol=grad, tolerance_gap=gap,
                         max_cg_iter=self.max_cg_iter, max_eval=self.max_eval,
                         callback=callback)


@dataclass(frozen=True)
class ConjugateGradient:
    """Conjugate gradients (:func:`conjugate_gradient`) as the solver that
    ``optimizer="auto"`` runs for linear regression on large X (a quadratic objective; see
    ``fastopt.engine.choose_solver``); ``tolerance_grad`` and ``tolerance_gap`` as for
    :class:`LBFGS`."""

    tolerance_grad: float | None = None
    tolerance_gap: float | None = None

    def run(self, objective, hvp, x0, *, max_iter, tol, callback, curvature_floor=0.0):
        grad, gap = _tolerances(self.tolerance_grad, self.tolerance_gap, tol)
        return conjugate_gradient(objective, x0, max_iter=max_iter, tol=grad,
                                  tolerance_gap=gap, callback=callback)


def available_memory():
    """Bytes of memory available to a new allocation now (psutil's "available", else the free
    physical pages), or None when neither can tell."""
    try:  # optional, and without type stubs: imported by name
        psutil = importlib.import_module("psutil")
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return None


@dataclass(frozen=True)
class SAGA:
    r"""SAGA as a fit option (``optimizer="saga"`` with the defaults): a variance-reduced
    incremental solver, proximal for the L1 term, for every model, penalty (l1 and elasticnet
    included), dense or CSR X, float32 or float64 (the iterate and SAGA's memory are float64).

    One epoch visits every row once in a shuffled order, the same as fastopt's other epochs
    (:mod:`fastopt.reference.shuffle`, seeded by ``random_state``); at row ``i``, with
    ``r_i = s_i dl/df`` its gradient scalars and ``T`` the table of each row's ``r`` at its
    last visit (zeros at the start),

    .. math::
        W \leftarrow \operatorname{soft}\Big(W - \eta \big((r_i - T_i)\, \tilde x_i^T
        + \tfrac1n \textstyle\sum_j T_j \tilde x_j^T + \lambda_2 W\big),\
        \eta \lambda_1\Big), \qquad T_i \leftarrow r_i

    (intercepts alike, unpenalised and without the threshold): the table costs
    ``8 * n_samples * K`` bytes (K = 1, or the number of classes for softmax), and a fit that
    would need more than half of the memory available is refused. On CSR X a row updates only
    its own columns; the others catch up in closed form when a row needs them (the same
    iterates as updating every column at every row, up to rounding). ``standardize=True``
    with CSR X makes every column non-zero: its rows then cost O(n_features) each.
    Specification: :mod:`fastopt.reference.saga`. ``epochs`` is the limit of epochs; one
    epoch is one pass over X (history ``steps``). Runs on the ``cpp``, ``numba`` and ``numpy``
    backends (not ``cuda``), on one thread (``n_jobs`` does not apply); ``batch_size``, ``lr``
    and ``schedule`` do not apply either.

    Parameters
    ----------
    step_size : float or None, default=None
        The step ``eta``; None: scikit-learn's rule for SAGA, ``1 / (2 L + min(2 n lambda_2,
        L))`` with ``L`` the largest Lipschitz constant of a row's gradient
        (:func:`fastopt.reference.saga.auto_step_size`). Must keep ``eta * lambda_2 < 1``.
    tol : float or None, default=None
        Stop after the first epoch whose largest change of a parameter, relative to the
        largest parameter, ``max|w_new - w_old| / max|w_new|``, is at most ``tol``
        (scikit-learn's test); None: the fit's ``tol`` (:data:`SAGA_AUTO_TOL` for ``"auto"``;
        0, every epoch, for None).
        The result's history has this ratio per epoch as ``change``.
    """

    step_size: float | None = None
    tol: float | None = None

    def __post_init__(self):
        if self.step_size is not None and not (isinstance(self.step_size, (int, float))
                                               and math.isfinite(self.step_size)
                                               and self.step_size > 0):
            raise ValueError(f"step_size must be None or a positive number, got "
                             f"{self.step_size!r}")
        if self.tol is not None and not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ValueError(f"tol must be None or a number >= 0, got {self.tol!r}")

    @staticmethod
    def check_memory(n_samples, n_outputs, available=None):
        """ValueError when SAGA's table (``8 * n_samples * n_outputs`` bytes) would take more
        than half of the available memory (:func:`available_memory` when not given)."""
        need = 8 * int(n_samples) * int(n_outputs)
        available = available_memory() if available is None else available
        if available is not None and need > available // 2:
            raise ValueError(
                f"optimizer='saga' needs a table of {need} bytes ({need / 2**30:.2f} GiB: one "
                f"float64 per row{' and class' if n_outputs > 1 else ''}), more than half of "
                f"the {available} bytes of memory available; use optimizer='lbfgs', which "
                "keeps no per-row state")



AUTO_GAP = 1e-7
"""The stop of ``tol="auto"``: an estimated relative distance to the optimum 10 times below
the 1e-6 that the defaults promise (the estimate can be optimistic, see ``lbfgs``)."""


def _tolerances(grad, gap, tol):
    """``(tolerance_grad, tolerance_gap)`` from a solver's own settings (None: not set) and
    the fit's ``tol``: a number is the gradient's max-norm, ``"auto"`` the estimated relative
    distance to the optimum :data:`AUTO_GAP`, None neither (the solver runs until its other
    tests or its budget stop it)."""
    if tol == "auto":
        return (0.0 if grad is None else grad), (AUTO_GAP if gap is None else gap)
    return (grad if grad is not None else (0.0 if tol is None else tol)), (gap or 0.0)


SAGA_AUTO_TOL = 1e-5
"""SAGA's ``tol`` under the fit's ``tol="auto"``: the relative change of the parameters in an
epoch (SAGA has no estimate of the gap). On eight l1 and elasticnet problems (logistic,
softmax, linear; n=5000, alpha = 1/n and 10/n) it ended at relative gaps of 2e-10 to 7e-8,
where 1e-4 ended at up to 9e-6; 1e-6 cost up to 30% more epochs for gaps below 1e-9."""


SOLVERS = {"lbfgs": LBFGS, "newton-cg": NewtonCG, "saga": SAGA}
