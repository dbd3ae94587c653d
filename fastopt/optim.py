"""First-order optimizers with the update rules of ``torch.optim``.

An optimizer object holds hyperparameters only; its state lives in a plain dict of arrays made
by :meth:`Optimizer.init`, so it can be saved with ``np.savez`` and loaded back::

    opt = fastopt.Adam(lr=1e-3)
    state = opt.init(params)
    opt.step(params, grad, state)          # in place, compiled kernel
    np.savez("state.npz", **state)
    state = dict(np.load("state.npz"))     # resumes the identical trajectory

The update rules, defaults and validation messages are those of ``torch.optim`` 2.x
(single-tensor path). The NumPy reference in :mod:`fastopt.reference.optim` is the
specification; each class docstring repeats its algorithm.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _backends
from ._backends.contract import step_count
from ._params import Parameters
from ._validation import is_device_array

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "NAdam",
           "RAdam", "OPTIMIZERS", "make_optimizer"]


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _learning_rate(lr):
    lr = _real("lr", lr)
    if not 0.0 <= lr < math.inf:
        raise ValueError(f"Invalid learning rate: {lr}")
    return lr


def _non_negative(name, value, label=None):
    value = _real(name, value)
    if not 0.0 <= value < math.inf:
        raise ValueError(f"Invalid {label or name} value: {value}")
    return value


def _betas(betas):
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a pair of numbers, got {betas!r}") from None
    out = []
    for index, beta in enumerate((beta1, beta2)):
        beta = _real(f"betas[{index}]", beta)
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
        out.append(beta)
    return tuple(out)


_check_step = step_count  # state['step'] is checked by the backends' one check


def check_state(optimizer, params, state):
    """Check an optimizer state against ``optimizer`` and ``params`` before it is used: every
    array the optimizer keeps is present, with the shape and dtype of ``params``, and the step
    count is a whole number. ``ValueError`` names what is wrong."""
    missing = [name for name in ("step",) + optimizer._state_names() if name not in state]
    if missing:
        raise ValueError(f"state has no {', '.join(map(repr, missing))}, which "
                         f"{type(optimizer).__name__} keeps; make the state with "
                         f"{type(optimizer).__name__}(...).init(params)")
    _check_step(state["step"])
    for name in optimizer._state_names():
        array = state[name]
        if (not isinstance(array, np.ndarray) or array.shape != np.shape(params)
                or array.dtype != np.asarray(params).dtype):
            raise ValueError(f"state[{name!r}] must be an array of the parameters' shape "
                             f"{np.shape(params)} and dtype {np.asarray(params).dtype}; got "
                             f"{getattr(array, 'dtype', type(array).__name__)} "
                             f"{np.shape(array)}")


class Optimizer(Parameters):
    """Base class: hyperparameters in the object, state in a dict of arrays.

    Subclasses set ``_kind`` (the kernel), ``_hyperparameters()`` (the keyword arguments of the
    reference update) and ``_state_names()`` (the state arrays, in kernel order).
    """

    _kind = ""
    lr: float  # every optimizer has one (set by the subclass's __init__)

    def _hyperparameters(self) -> dict:
        raise NotImplementedError

    def _state_names(self) -> tuple:
        raise NotImplementedError

    def _initial_state(self, name, params):
        return np.zeros_like(params, order="C")

    def init(self, params: np.typing.ArrayLike) -> dict:
        """A fresh state for ``params``: zero (or initial) arrays of the same shape and dtype,
        ``"step": 0`` and, for NAdam, ``"mu_product": 1.0``.

        ``params`` must be an array (NumPy, or a device array for ``backend="cuda"``):
        :meth:`step` updates it in place, which a Python number or list cannot be."""
        if not (isinstance(params, np.ndarray) or is_device_array(params)):
            raise TypeError(f"params must be a numpy.ndarray (step updates it in place); got "
                            f"{type(params).__name__}: wrap it, e.g. np.array({params!r})")
        params = np.asarray(params)
        if params.dtype not in (np.float32, np.float64):
            raise TypeError(f"params must have dtype float32 or float64, got {params.dtype}")
        state = {"step": 0}
        for name in self._state_names():
            state[name] = self._initial_state(name, params)
        return state

    def step(self, params: np.ndarray, grad: np.ndarray, state: dict, *,
             lr: float | None = None, backend: str = "auto") -> None:
        """One update of ``params`` (in place) from ``grad``, advancing ``state`` (in place).

        Parameters
        ----------
        params : ndarray of float32 or float64, C-contiguous and writeable
        grad : ndarray of the same dtype and shape
        state : dict made by :meth:`init` (or loaded from one saved with ``np.savez``)
        lr : float, optional
            Learning rate for this update only (a schedule's value); defaults to ``self.lr``.
        backend : {"auto", "cpp", "numba", "numpy", "cuda"}
            The implementation; see :func:`fastopt.backends`.
        """
        missing = [name for name in ("step",) + self._state_names() if name not in state]
        if missing:
            raise ValueError(f"state has no {', '.join(map(repr, missing))}; make the state "
                             f"with {type(self).__name__}(...).init(params)")
        implementation = _backends.resolve(backend).optimizer_step
        implementation(self, params, grad, state, self.lr if lr is None else _learning_rate(lr))

    def __sklearn_clone__(self):
        # scikit-learn's clone (of an estimator holding this optimizer, or in a grid search):
        # a fresh optimizer with the same hyperparameters. The generic path would require
        # __init__ to keep each argument object as is, which normalising `betas` does not.
        return type(self)(**self.get_params())



class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum (``torch.optim.SGD``).

    .. math::
        g_t &= \nabla f(\theta_{t-1}) + \lambda \theta_{t-1} \\
        b_t &= g_t \ (t = 1), \quad b_t = \mu b_{t-1} + (1 - \tau) g_t \ (t > 1) \\
        \theta_t &= \theta_{t-1} - \gamma\,(g_t + \mu b_t) \text{ (Nesterov)},
        \quad \theta_{t-1} - \gamma b_t \text{ (momentum)},
        \quad \theta_{t-1} - \gamma g_t \text{ (plain)}

    Parameters
    ----------
    lr : float, default 1e-3 (γ)
    momentum : float, default 0 (μ)
    dampening : float, default 0 (τ)
    weight_decay : float, default 0 (λ, added to the gradient)
    nesterov : bool, default False (needs momentum > 0 and dampening = 0)
    """

    _kind = "sgd"
    _param_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.lr = _learning_rate(lr)
        self.momentum = _non_negative("momentum", momentum)
        self.dampening = _real("dampening", dampening)
        if not math.isfinite(self.dampening):
            raise ValueError(f"Invalid dampening value: {self.dampening}")
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.nesterov = _flag("nesterov", nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _hyperparameters(self):
        return dict(lr=self.lr, momentum=self.momentum, dampening=self.dampening,
                    nesterov=self.nesterov, weight_decay=self.weight_decay)

    def _state_names(self):
        return ("momentum_buffer",) if self.momentum != 0 else ()


class Adagrad(Optimizer):
    r"""Adagrad (``torch.optim.Adagrad``).

    .. math::
        g_t &= \nabla f(\theta_{t-1}) + \lambda \theta_{t-1}, \qquad
        \tilde\gamma_t = \gamma / (1 + (t - 1)\eta) \\
        s_t &= s_{t-1} + g_t^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        \theta_t &= \theta_{t-1} - \tilde\gamma_t\, g_t / (\sqrt{s_t} + \epsilon)

    Parameters
    ----------
    lr : float, default 1e-2 (γ)
    lr_decay : float, default 0 (η)
    weight_decay : float, default 0 (λ)
    initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    """

    _kind = "adagrad"
    _param_names = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10):
        self.lr = _learning_rate(lr)
        self.lr_decay = _non_negative("lr_decay", lr_decay)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.initial_accumulator_value = _non_negative(
            "initial_accumulator_value", initial_accumulator_value)
        self.eps = _non_negative("eps", eps, label="epsilon")

    def _hyperparameters(self):
        return dict(lr=self.lr, lr_decay=self.lr_decay, weight_decay=self.weight_decay,
                    eps=self.eps)

    def _state_names(self):
        return ("sum",)

    def _initial_state(self, name, params):
        return np.full_like(params, self.initial_accumulator_value, order="C")


class RMSprop(Optimizer):
    r"""RMSprop (``torch.optim.RMSprop``), optionally centered and with momentum.

    .. math::
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2, \qquad
        \bar g_t = \mathrm{lerp}(\bar g_{t-1}, g_t, 1 - \alpha) \\
        D_t &= \sqrt{v_t - \bar g_t^2} + \epsilon \text{ (centered)}, \quad
        \sqrt{v_t} + \epsilon \text{ (otherwise)} \\
        b_t &= \mu b_{t-1} + g_t / D_t, \quad \theta_t = \theta_{t-1} - \gamma b_t
        \text{ (momentum > 0)}, \quad \theta_{t-1} - \gamma g_t / D_t \text{ (otherwise)}

    Parameters
    ----------
    lr : float, default 1e-2 (γ)
    alpha : float, default 0.99
    eps : float, default 1e-8
    weight_decay : float, default 0 (added to the gradient)
    momentum : float, default 0 (μ)
    centered : bool, default False
    """

    _kind = "rmsprop"
    _param_names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        self.lr = _learning_rate(lr)
        self.alpha = _non_negative("alpha", alpha)
        self.eps = _non_negative("eps", eps, label="epsilon")
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.momentum = _non_negative("momentum", momentum)
        self.centered = _flag("centered", centered)

    def _hyperparameters(self):
        return dict(lr=self.lr, alpha=self.alpha, eps=self.eps, weight_decay=self.weight_decay,
                    momentum=self.momentum, centered=self.centered)

    def _state_names(self):
        names = ("square_avg",)
        if self.centered:
            names += ("grad_avg",)
        if self.momentum > 0:
            names += ("momentum_buffer",)
        return names


class Adadelta(Optimizer):
    r"""Adadelta (``torch.optim.Adadelta``).

    .. math::
        v_t &= \rho v_{t-1} + (1 - \rho) g_t^2, \qquad
        \Delta_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        u_t &= \rho u_{t-1} + (1 - \rho) \Delta_t^2, \qquad
        \theta_t = \theta_{t-1} - \gamma \Delta_t

    Parameters
    ----------
    lr : float, default 1.0 (γ)
    rho : float in [0, 1], default 0.9
    eps : float, default 1e-6
    weight_decay : float, default 0 (added to the gradient)
    """

    _kind = "adadelta"
    _param_names = ("lr", "rho", "eps", "weight_decay")

    def __init__(self, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        self.lr = _learning_rate(lr)
        self.rho = _real("rho", rho)
        if not 0.0 <= self.rho <= 1.0:
            raise ValueError(f"Invalid rho value: {self.rho}")
        self.eps = _non_negative("eps", eps, label="epsilon")
        self.weight_decay = _non_negative("weight_decay", weight_decay)

    def _hyperparameters(self):
        return dict(lr=self.lr, rho=self.rho, eps=self.eps, weight_decay=self.weight_decay)

    def _state_names(self):
        return ("square_avg", "acc_delta")


class _AdamFamily(Optimizer):
    def _validate_common(self, lr, betas, eps, weight_decay, decoupled_weight_decay):
        self.lr = _learning_rate(lr)
        self.betas = _betas(betas)
        self.eps = _non_negative("eps", eps, label="epsilon")
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.decoupled_weight_decay = _flag("decoupled_weight_decay", decoupled_weight_decay)

    def _common_hyperparameters(self):
        return dict(lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], eps=self.eps,
                    weight_decay=self.weight_decay,
                    decoupled_weight_decay=self.decoupled_weight_decay)

    def _state_names(self):
        return ("exp_avg", "exp_avg_sq")


class Adam(_AdamFamily):
    r"""Adam (``torch.optim.Adam``), with AMSGrad and optional decoupled weight decay.

    .. math::
        m_t &= \mathrm{lerp}(m_{t-1}, g_t, 1 - \beta_1), \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \qquad
        \hat v_t = \max(\hat v_{t-1}, v_t) \text{ (AMSGrad) or } v_t \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
        \frac{m_t}{\sqrt{\hat v_t}/\sqrt{1 - \beta_2^t} + \epsilon}

    Weight decay λ is added to the gradient, or with ``decoupled_weight_decay=True`` applied as
    ``θ ← θ (1 - γλ)`` before the update (AdamW).

    Parameters
    ----------
    lr : float, default 1e-3 (γ)
    betas : (float, float), default (0.9, 0.999), each in [0, 1)
    eps : float, default 1e-8
    weight_decay : float, default 0
    amsgrad : bool, default False
    decoupled_weight_decay : bool, default False
    """

    _kind = "adam"
    _param_names = ("lr", "betas", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 decoupled_weight_decay=False):
        self._validate_common(lr, betas, eps, weight_decay, decoupled_weight_decay)
        self.amsgrad = _flag("amsgrad", amsgrad)

    def _hyperparameters(self):
        return dict(self._common_hyperparameters(), amsgrad=self.amsgrad)

    def _state_names(self):
        return super()._state_names() + (("max_exp_avg_sq",) if self.amsgrad else ())


class AdamW(Adam):
    r"""AdamW (``torch.optim.AdamW``): Adam with decoupled weight decay,
    ``θ ← θ (1 - γλ)`` before each Adam update; ``weight_decay`` defaults to 1e-2.

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 1e-2
    amsgrad : bool, default False
    """

    _param_names: tuple = ("lr", "betas", "eps", "weight_decay", "amsgrad")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, decoupled_weight_decay=True)


class NAdam(_AdamFamily):
    r"""NAdam (``torch.optim.NAdam``): Adam with Nesterov momentum and Dozat's momentum schedule.

    .. math::
        \mu_t &= \beta_1 \left(1 - \tfrac12\, 0.96^{t\psi}\right), \qquad
        \Pi_t = \textstyle\prod_{i \le t} \mu_i, \qquad
        D_t = \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        \theta_t &= \theta_{t-1}
        - \gamma\,\frac{1 - \mu_t}{1 - \Pi_t}\,\frac{g_t}{D_t}
        - \gamma\,\frac{\mu_{t+1}}{1 - \Pi_t\,\mu_{t+1}}\,\frac{m_t}{D_t}

    with m, v as in Adam. ``state["mu_product"]`` (Π) is a float64 scalar.

    Parameters
    ----------
    lr : float, default 2e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum_decay : float, default 4e-3 (ψ)
    decoupled_weight_decay : bool, default False
    """

    _kind = "nadam"
    _param_names = ("lr", "betas", "eps", "weight_decay", "momentum_decay",
                    "decoupled_weight_decay")

    def __init__(self, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False):
        self._validate_common(lr, betas, eps, weight_decay, decoupled_weight_decay)
        self.momentum_decay = _non_negative("momentum_decay", momentum_decay)

    def _hyperparameters(self):
        return dict(self._common_hyperparameters(), momentum_decay=self.momentum_decay)

    def init(self, params):
        state = super().init(params)
        state["mu_product"] = 1.0
        return state


class RAdam(_AdamFamily):
    r"""RAdam (``torch.optim.RAdam``): Adam with variance rectification.

    .. math::
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t}, \qquad
        r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
        {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
        \theta_t &= \theta_{t-1} - \gamma\,\frac{m_t}{1 - \beta_1^t}\,
        \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon}\, r_t \ (\rho_t > 5),
        \qquad \theta_{t-1} - \gamma\,\frac{m_t}{1 - \beta_1^t} \ (\text{otherwise})

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    decoupled_weight_decay : bool, default False
    """

    _kind = "radam"
    _param_names = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        self._validate_common(lr, betas, eps, weight_decay, decoupled_weight_decay)

    def _hyperparameters(self):
        return self._common_hyperparameters()


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adadelta": Adadelta,
              "adam": Adam, "adamw": AdamW, "nadam": NAdam, "radam": RAdam}


def make_optimizer(optimizer: str | Optimizer, **hyperparameters: object) -> Optimizer:
    """An optimizer from a name (case-insensitive, see ``OPTIMIZERS``) and hyperparameters, or
    ``optimizer`` itself when it already is one."""
    if isinstance(optimizer, Optimizer):
        if not hyperparameters:
            return optimizer
        return type(optimizer)(**{**optimizer.get_params(), **hyperparameters})
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer must be an Optimizer or one of "
                         f"{', '.join(map(repr, OPTIMIZERS))}; got {optimizer!r}")
    return OPTIMIZERS[optimizer.lower()](**hyperparameters)

