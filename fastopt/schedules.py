r"""Learning-rate schedules: pure functions of the update counter ``t``.

``t`` counts optimizer updates over the whole fit (0, 1, 2, ..., continuing across
``partial_fit``). A schedule is evaluated for a whole epoch at once and the array is handed to the
compiled loop, so every schedule is vectorised::

    sched = fastopt.Cosine(lr=0.1, T_max=1000)
    sched(np.arange(0, 250))        # float64 array of shape (250,)
    sched(7)                        # float

Step, exponential, polynomial, cosine, linear and one-cycle equal ``torch.optim.lr_scheduler``'s
``StepLR``, ``ExponentialLR``, ``PolynomialLR``, ``CosineAnnealingLR``, ``LinearLR`` and
``OneCycleLR`` stepped once per update: the value at ``t`` is ``get_last_lr()`` after ``t`` calls
to ``scheduler.step()``. Parameter names are torch's.

``lr=None`` means "the optimizer's learning rate", and ``None`` for a length (``T_max``,
``total_iters``, ``max_steps``, ``total_steps``, ...) means "the whole fit": the fit calls
:meth:`Schedule.resolve` with both, which returns a fully specified copy. :func:`make_schedule`
turns a name, a schedule, or any callable ``f(t_array) -> lr_array`` into a schedule.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._params import Parameters

from .optim import _learning_rate, _real

__all__ = ["Schedule", "Constant", "InverseSqrt", "StepDecay", "Exponential", "Polynomial",
           "Cosine", "Linear", "WarmupCosine", "OneCycle", "FunctionSchedule", "SCHEDULES",
           "make_schedule"]


def _int(name, value, minimum, optional=True):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bounded(name, value, low=0.0, high=math.inf, low_open=False, optional=False):
    if value is None and optional:
        return None
    value = _real(name, value)
    if not (low < value if low_open else low <= value) or not value <= high or math.isinf(value):
        bounds = f"{'(' if low_open else '['}{low}, {high}{')' if math.isinf(high) else ']'}"
        raise ValueError(f"{name} must be in {bounds}, got {value}")
    return value


def _optional_lr(lr):
    return None if lr is None else _learning_rate(lr)


def _steps(t):
    """``t`` as an array, checked: integer update counts, none negative."""
    t = np.asarray(t)
    if t.dtype.kind not in "iu" and t.size:  # [] comes as float64
        raise TypeError(f"t must be integer update counts, got dtype {t.dtype}")
    if t.size and t.min() < 0:
        raise ValueError(f"t must be >= 0, got {t.min()}")
    return t


class Schedule(Parameters):
    """Base class: constructor arguments as attributes, ``schedule(t) -> lr``.

    Subclasses list their arguments in ``_param_names``, evaluate in ``_lr(t)`` (``t`` an
    integer array, at least 1-d; every argument set) and may fill step-count arguments in
    ``_fill(total_steps)``.
    """

    _param_names: tuple = ()

    def _lr(self, t):
        raise NotImplementedError

    def _fill(self, total_steps) -> dict:
        return {}

    def __call__(self, t):
        """Learning rate at update ``t`` (int, or integer array: a float64 array of its shape).

        Raises ``ValueError`` naming the first ``t`` whose rate is not finite and >= 0 (a
        growing schedule that overflows, a bad user function): the compiled loop never sees one.
        """
        missing = [name for name, value in self.get_params().items() if value is None]
        if missing:
            raise ValueError(f"{self!r} has {', '.join(missing)} unset: pass them to "
                             f"{type(self).__name__}(...) or call .resolve(lr, total_steps) first")
        t = _steps(t)
        steps = np.atleast_1d(t)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, with the t
            out = np.asarray(self._lr(steps), dtype=np.float64)
        if out.shape != steps.shape:
            raise ValueError(f"{self!r} returned shape {out.shape} for t of shape "
                             f"{steps.shape}; it must return one learning rate per t")
        bad = ~(np.isfinite(out) & (out >= 0))
        if bad.any():
            i = np.flatnonzero(bad)[0]
            raise ValueError(f"{self!r} gives learning rate {float(out.flat[i])!r} at "
                             f"t={steps.flat[i]}; it must be finite and >= 0")
        return float(out[0]) if t.ndim == 0 else out

    def resolve(self, lr=None, total_steps=None) -> Schedule:
        """A new schedule with the ``None`` arguments filled in: ``lr`` from the optimizer's
        learning rate, step counts from ``total_steps``, the number of updates of the fit.
        Arguments already set are kept; ``self`` is not modified."""
        params = self.get_params()
        if "lr" in params and params["lr"] is None:
            params["lr"] = lr
        if total_steps is not None:
            total_steps = _int("total_steps", total_steps, 1, optional=False)
            params.update({k: v for k, v in self._fill(total_steps).items() if params[k] is None})
        return type(self)(**params)



class Constant(Schedule):
    r"""Constant learning rate, :math:`\eta_t = \eta`.

    Parameters
    ----------
    lr : float or None, default None (η; None: the optimizer's)
    """

    _param_names = ("lr",)

    def __init__(self, lr=None):
        self.lr = _optional_lr(lr)

    def _lr(self, t):
        return np.full(t.shape, self.lr)


class InverseSqrt(Schedule):
    r"""Inverse square-root ("1/t") decay, :math:`\eta_t = \eta / \sqrt{t + 1}`.

    Parameters
    ----------
    lr : float or None, default None (η, the rate at t = 0; None: the optimizer's)
    """

    _param_names = ("lr",)

    def __init__(self, lr=None):
        self.lr = _optional_lr(lr)

    def _lr(self, t):
        return self.lr / np.sqrt(t + 1.0)


class StepDecay(Schedule):
    r"""Step decay (``torch.optim.lr_scheduler.StepLR``),
    :math:`\eta_t = \eta\,\gamma^{\lfloor t / s \rfloor}`.

    Parameters
    ----------
    lr : float or None, default None (η; None: the optimizer's)
    step_size : int >= 1 or None, default None
        s; None: a third of the fit, ``max(1, total_steps // 3)``.
    gamma : float > 0, default 0.1 (γ)
    """

    _param_names = ("lr", "step_size", "gamma")

    def __init__(self, lr=None, step_size=None, gamma=0.1):
        self.lr = _optional_lr(lr)
        self.step_size = _int("step_size", step_size, 1)
        self.gamma = _bounded("gamma", gamma, low_open=True)

    def _fill(self, total_steps):
        return {"step_size": max(1, total_steps // 3)}

    def _lr(self, t):
        return self.lr * self.gamma ** (t // self.step_size)


class Exponential(Schedule):
    r"""Exponential decay (``torch.optim.lr_scheduler.ExponentialLR``),
    :math:`\eta_t = \eta\,\gamma^t`.

    Parameters
    ----------
    lr : float or None, default None (η; None: the optimizer's)
    gamma : float > 0 or None, default None
        γ; None: ``0.01 ** (1 / total_steps)``, so that the rate falls to η/100 over the fit.
    """

    _param_names = ("lr", "gamma")

    def __init__(self, lr=None, gamma=None):
        self.lr = _optional_lr(lr)
        self.gamma = _bounded("gamma", gamma, low_open=True, optional=True)

    def _fill(self, total_steps):
        return {"gamma": 0.01 ** (1.0 / total_steps)}

    def _lr(self, t):
        return self.lr * self.gamma ** t


class Polynomial(Schedule):
    r"""Polynomial decay to zero (``torch.optim.lr_scheduler.PolynomialLR``),
    :math:`\eta_t = \eta\,(1 - \min(t, T) / T)^p`, zero from :math:`t = T` on (for p > 0).

    Parameters
    ----------
    lr : float or None, default None (η; None: the optimizer's)
    total_iters : int >= 1 or None, default None
        T; None: the whole fit. (torch's default, 5, is rarely what a fit wants.)
    power : float >= 0, default 1.0 (p)
    """

    _param_names = ("lr", "total_iters", "power")

    def __init__(self, lr=None, total_iters=None, power=1.0):
        self.lr = _optional_lr(lr)
        self.total_iters = _int("total_iters", total_iters, 1)
        self.power = _bounded("power", power)

    def _fill(self, total_steps):
        return {"total_iters": total_steps}

    def _lr(self, t):
        return self.lr * (1.0 - np.minimum(t, self.total_iters) / self.total_iters) ** self.power


class Cosine(Schedule):
    r"""Cosine annealing (``torch.optim.lr_scheduler.CosineAnnealingLR``),

    .. math::
        \eta_t = \eta_{\min} + \tfrac12 (\eta - \eta_{\min})
        \left(1 + \cos\left(\pi\, \min(t, T) / T\right)\right)

    Equal to torch for :math:`t \le T`; after that the rate stays at :math:`\eta_{\min}`, where
    torch's cosine keeps going and climbs back to η at 2T (a fit run past ``T_max``, e.g. by
    ``partial_fit``, should not see its learning rate rise again).

    Parameters
    ----------
    lr : float or None, default None (η; None: the optimizer's)
    T_max : int >= 1 or None, default None (T; None: the whole fit)
    eta_min : float >= 0, default 0.0
    """

    _param_names = ("lr", "T_max", "eta_min")

    def __init__(self, lr=None, T_max=None, eta_min=0.0):
        self.lr = _optional_lr(lr)
        self.T_max = _int("T_max", T_max, 1)
        self.eta_min = _bounded("eta_min", eta_min)

    def _fill(self, total_steps):
        return {"T_max": total_steps}

    def _lr(self, t):
        cosine = 1.0 + np.cos(math.pi * np.minimum(t, self.T_max) / self.T_max)
        return self.eta_min + (self.lr - self.eta_min) * cosine / 2.0


class Linear(Schedule):
    r"""Linear change of a factor (``torch.optim.lr_scheduler.LinearLR``),
    :math:`\eta_t = \eta\,\big(s + (e - s) \min(t, T) / T\big)`.

    The defaults are torch's, a short warm-up; ``Linear(start_factor=1.0, end_factor=0.0)``
    decays linearly to zero over the fit.

    Parameters
    ----------
    lr : float or None, default None (η; None: the optimizer's)
    start_factor : float >= 0, default 1/3 (s)
    end_factor : float >= 0, default 1.0 (e)
    total_iters : int >= 1 or None, default 5 (T; None: the whole fit)
    """

    _param_names = ("lr", "start_factor", "end_factor", "total_iters")

    def __init__(self, lr=None, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        self.lr = _optional_lr(lr)
        self.start_factor = _bounded("start_factor", start_factor)
        self.end_factor = _bounded("end_factor", end_factor)
        self.total_iters = _int("total_iters", total_iters, 1)

    def _fill(self, total_steps):
        return {"total_iters": total_steps}

    def _lr(self, t):
        T = self.total_iters
        return self.lr * (self.start_factor
                          + (self.end_factor - self.start_factor) * np.minimum(t, T) / T)


class WarmupCosine(Schedule):
    r"""Linear warm-up, then cosine decay (as ``optax.warmup_cosine_decay_schedule``).

    .. math::
        \eta_t = \begin{cases}
        \eta_0 + (\eta - \eta_0)\, t / W & t < W \\
        \eta_T + \tfrac12 (\eta - \eta_T)\left(1 + \cos\left(\pi \frac{t - W}{T - W}\right)\right)
        & W \le t < T \\
        \eta_T & t \ge T
        \end{cases}

    with :math:`\eta_0` = ``warmup_begin_lr``, :math:`\eta_T` = ``final_lr``, W =
    ``warmup_steps`` and T = ``max_steps`` (counted from t = 0, warm-up included). So t = 0 gives
    :math:`\eta_0`, t = W gives η and t = T gives :math:`\eta_T` (when W = T there is no cosine
    phase: the rate drops from the end of the warm-up straight to :math:`\eta_T`).

    Parameters
    ----------
    lr : float or None, default None (η, the peak; None: the optimizer's)
    warmup_steps : int >= 0 or None, default None (W; None: 5 % of T, ``max_steps // 20``)
    max_steps : int >= 1 or None, default None (T; None: the whole fit)
    warmup_begin_lr : float >= 0, default 0.0
    final_lr : float >= 0, default 0.0
    """

    _param_names = ("lr", "warmup_steps", "max_steps", "warmup_begin_lr", "final_lr")

    def __init__(self, lr=None, warmup_steps=None, max_steps=None, warmup_begin_lr=0.0,
                 final_lr=0.0):
        self.lr = _optional_lr(lr)
        self.warmup_steps = _int("warmup_steps", warmup_steps, 0)
        self.max_steps = _int("max_steps", max_steps, 1)
        self.warmup_begin_lr = _bounded("warmup_begin_lr", warmup_begin_lr)
        self.final_lr = _bounded("final_lr", final_lr)
        if None not in (self.warmup_steps, self.max_steps) and self.warmup_steps > self.max_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be <= max_steps "
                             f"({self.max_steps})")

    def _fill(self, total_steps):
        max_steps = total_steps if self.max_steps is None else self.max_steps
        return {"max_steps": max_steps, "warmup_steps": max_steps // 20}

    def resolve(self, lr=None, total_steps=None):
        # warmup_steps derives from max_steps, which may be set while total_steps is unknown
        if total_steps is None and self.max_steps is not None:
            total_steps = self.max_steps
        return super().resolve(lr, total_steps)

    def _lr(self, t):
        w, T = self.warmup_steps, self.max_steps
        warmup = self.warmup_begin_lr + (self.lr - self.warmup_begin_lr) * t / max(w, 1)
        progress = np.minimum(t - w, T - w) / max(T - w, 1)
        cosine = self.final_lr + (self.lr - self.final_lr) * (1.0 + np.cos(math.pi * progress)) / 2
        return np.where(t < w, warmup, np.where(t < T, cosine, self.final_lr))


class OneCycle(Schedule):
    r"""One-cycle policy (``torch.optim.lr_scheduler.OneCycleLR`` with ``cycle_momentum=False``).

    With peak η, :math:`\eta_{\rm init} = \eta / d` and
    :math:`\eta_{\min} = \eta_{\rm init} / f`, the rate anneals from :math:`\eta_{\rm init}` to η
    over the first :math:`p N - 1` updates, then down to :math:`\eta_{\min}` at update N - 1;
    with ``three_phase=True`` it goes η → :math:`\eta_{\rm init}` until :math:`2pN - 2` and
    then to :math:`\eta_{\min}`. Within a phase from step a to b, between rates u and v,

    .. math::
        \eta_t = v + \tfrac12 (u - v)\left(1 + \cos\left(\pi \tfrac{t - a}{b - a}\right)\right)
        \ \text{(cos)}, \qquad u + (v - u) \tfrac{t - a}{b - a} \ \text{(linear)}.

    Equal to torch for t < N; from t = N - 1 on, the rate stays at :math:`\eta_{\min}` (torch
    refuses to step past N). A phase of zero length ends at once (torch divides by zero).

    Parameters
    ----------
    lr : float or None, default None (η, torch's ``max_lr``; None: the optimizer's)
    total_steps : int >= 1 or None, default None (N; None: the whole fit)
    pct_start : float in [0, 1], default 0.3 (p)
    anneal_strategy : {"cos", "linear"}, default "cos"
    div_factor : float > 0, default 25.0 (d)
    final_div_factor : float > 0, default 1e4 (f)
    three_phase : bool, default False
    """

    _param_names = ("lr", "total_steps", "pct_start", "anneal_strategy", "div_factor",
                    "final_div_factor", "three_phase")

    def __init__(self, lr=None, total_steps=None, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25.0, final_div_factor=1e4, three_phase=False):
        self.lr = _optional_lr(lr)
        self.total_steps = _int("total_steps", total_steps, 1)
        self.pct_start = _bounded("pct_start", pct_start, high=1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.div_factor = _bounded("div_factor", div_factor, low_open=True)
        self.final_div_factor = _bounded("final_div_factor", final_div_factor, low_open=True)
        if not isinstance(three_phase, (bool, np.bool_)):
            raise TypeError(f"three_phase must be True or False, got {three_phase!r}")
        self.three_phase = bool(three_phase)

    def _fill(self, total_steps):
        return {"total_steps": total_steps}

    def _phases(self):
        """(end step, start lr, end lr) per phase, as torch's ``_schedule_phases``."""
        n, p = self.total_steps, self.pct_start
        initial = self.lr / self.div_factor
        low = initial / self.final_div_factor
        if self.three_phase:
            return [(p * n - 1, initial, self.lr), (2 * p * n - 2, self.lr, initial),
                    (n - 1, initial, low)]
        return [(p * n - 1, initial, self.lr), (n - 1, self.lr, low)]

    def _lr(self, t):
        phases = self._phases()
        # torch takes the first phase whose end is >= t, and the last phase otherwise
        index = np.full(t.shape, len(phases) - 1)
        for i in reversed(range(len(phases) - 1)):
            index = np.where(t <= phases[i][0], i, index)
        end, start_lr, end_lr = (np.array(column)[index] for column in zip(*phases))
        start = np.array([0.0] + [phase[0] for phase in phases[:-1]])[index]
        length = end - start
        pct = np.where(length > 0, (t - start) / np.where(length > 0, length, 1.0), 1.0)
        pct = np.minimum(pct, 1.0)
        if self.anneal_strategy == "cos":
            return end_lr + (start_lr - end_lr) / 2.0 * (np.cos(math.pi * pct) + 1.0)
        return (end_lr - start_lr) * pct + start_lr


class FunctionSchedule(Schedule):
    """A user function ``fn(t_array) -> lr_array`` as a schedule, its output checked.

    ``fn`` receives an integer array (at least 1-d) of update counts and must return the
    learning rates, an array of the same shape, finite and >= 0; otherwise the call raises a
    ``ValueError`` that names the first offending ``t``.

    Parameters
    ----------
    fn : callable
    """

    _param_names = ("fn",)

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        self.fn = fn

    def _lr(self, t):
        return self.fn(t)


SCHEDULES = {"constant": Constant, "invsqrt": InverseSqrt, "step": StepDecay,
             "exponential": Exponential, "polynomial": Polynomial, "cosine": Cosine,
             "linear": Linear, "warmup_cosine": WarmupCosine, "onecycle": OneCycle}


def make_schedule(spec: str | Schedule | object = None, lr: float | None = None,
                  total_steps: int | None = None) -> Schedule:
    """The schedule that ``spec`` names, resolved with ``lr`` and ``total_steps``.

    Parameters
    ----------
    spec : None, str, Schedule, Schedule subclass or callable
        None: constant ``lr``. A name from :data:`SCHEDULES` or a class: that schedule with its
        defaults. A callable ``f(t_array) -> lr_array``: wrapped in :class:`FunctionSchedule`
        (used as is, ``lr`` and ``total_steps`` do not apply).
    lr : float, optional
        The optimizer's learning rate, for schedules made with ``lr=None``.
    total_steps : int, optional
        The number of updates of the fit, for step counts left at None.
    """
    if spec is None:
        spec = Constant()
    elif isinstance(spec, str):
        if spec not in SCHEDULES:
            raise ValueError(f"Unknown schedule {spec!r}; valid names are {sorted(SCHEDULES)}")
        spec = SCHEDULES[spec]()
    elif isinstance(spec, type) and issubclass(spec, Schedule):
        spec = spec()
    elif not isinstance(spec, Schedule):
        if not callable(spec):
            raise TypeError(f"schedule must be None, a name, a Schedule or a callable, got "
                            f"{spec!r}")
        return FunctionSchedule(spec)
    return spec.resolve(lr, total_steps)
