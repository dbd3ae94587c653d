"""NumPy reference optimizer updates: the specification every fast path is tested against.

Each function is the single-tensor update of the matching ``torch.optim`` class (torch 2.x),
written line for line in NumPy: same order of operations, same defaults, ``eps`` outside the
square root, bias corrections computed in Python floats as torch does, first-step momentum
buffer equal to the gradient. Nothing here is optimised, on purpose.

A state is a plain dict: the per-parameter arrays under torch's names (``exp_avg``,
``momentum_buffer``, ...), ``"step"`` (the number of updates done) and, for NAdam,
``"mu_product"``. Every function updates ``param`` and ``state`` in place.

Arithmetic follows the dtype of ``param``: for float32 arrays the Python-float scalars are cast
to float32 before they meet an array (NumPy >= 2 promotion), which is also what the compiled
kernels do.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sgd", "adagrad", "rmsprop", "adadelta", "adam", "nadam", "radam", "step"]


def _lerp(start, end, weight):
    """``torch.lerp``: ``start + w (end - start)`` for ``|w| < 0.5``, else
    ``end - (end - start)(1 - w)``."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _coupled_decay(grad, param, weight_decay):
    """``grad + weight_decay * param`` (torch: ``grad.add(param, alpha=weight_decay)``)."""
    return grad + weight_decay * param


def sgd(param, grad, state, *, lr, momentum, dampening, nesterov, weight_decay):
    r"""Stochastic gradient descent with momentum (``torch.optim.SGD``).

    .. math::
        g &\leftarrow g + \lambda \theta \\
        b_t &\leftarrow g \text{ if } t = 1 \text{ else } \mu b_{t-1} + (1 - \tau) g \\
        g &\leftarrow g + \mu b_t \text{ (Nesterov) or } b_t \\
        \theta &\leftarrow \theta - \gamma g
    """
    if weight_decay != 0:
        grad = _coupled_decay(grad, param, weight_decay)
    if momentum != 0:
        buf = state["momentum_buffer"]
        if state["step"] == 0:
            buf[...] = grad
        else:
            buf *= momentum
            buf += (1 - dampening) * grad
        if nesterov:
            grad = grad + momentum * buf
        else:
            grad = buf
    param += -lr * grad
    state["step"] += 1


def adagrad(param, grad, state, *, lr, lr_decay, weight_decay, eps):
    r"""Adagrad (``torch.optim.Adagrad``).

    .. math::
        g &\leftarrow g + \lambda \theta, \qquad
        \tilde\gamma = \gamma / (1 + (t - 1) \eta) \\
        s_t &\leftarrow s_{t-1} + g^2 \\
        \theta &\leftarrow \theta - \tilde\gamma\, g / (\sqrt{s_t} + \epsilon)
    """
    state["step"] += 1
    step = state["step"]
    if weight_decay != 0:
        grad = _coupled_decay(grad, param, weight_decay)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum = state["sum"]
    state_sum += grad * grad
    std = np.sqrt(state_sum) + eps
    param += -clr * grad / std


def rmsprop(param, grad, state, *, lr, alpha, eps, weight_decay, momentum, centered):
    r"""RMSprop (``torch.optim.RMSprop``).

    .. math::
        v_t &\leftarrow \alpha v_{t-1} + (1 - \alpha) g^2 \\
        \bar g_t &\leftarrow \mathrm{lerp}(\bar g_{t-1}, g, 1 - \alpha), \quad
        \tilde v_t = v_t - \bar g_t^2 \text{ (centered) else } v_t \\
        b_t &\leftarrow \mu b_{t-1} + g / (\sqrt{\tilde v_t} + \epsilon), \quad
        \theta \leftarrow \theta - \gamma b_t \text{ (momentum) else }
        \theta - \gamma g / (\sqrt{\tilde v_t} + \epsilon)
    """
    state["step"] += 1
    if weight_decay != 0:
        grad = _coupled_decay(grad, param, weight_decay)
    square_avg = state["square_avg"]
    square_avg *= alpha
    square_avg += (1 - alpha) * grad * grad
    if centered:
        grad_avg = state["grad_avg"]
        grad_avg[...] = _lerp(grad_avg, grad, 1 - alpha)
        avg = np.sqrt(square_avg + -1 * grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg = avg + eps
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf *= momentum
        buf += 1 * grad / avg
        param += -lr * buf
    else:
        param += -lr * grad / avg


def adadelta(param, grad, state, *, lr, rho, eps, weight_decay):
    r"""Adadelta (``torch.optim.Adadelta``).

    .. math::
        v_t &\leftarrow \rho v_{t-1} + (1 - \rho) g^2 \\
        \Delta_t &= \sqrt{u_{t-1} + \epsilon} / \sqrt{v_t + \epsilon} \cdot g \\
        u_t &\leftarrow \rho u_{t-1} + (1 - \rho) \Delta_t^2, \qquad
        \theta \leftarrow \theta - \gamma \Delta_t
    """
    state["step"] += 1
    if weight_decay != 0:
        grad = _coupled_decay(grad, param, weight_decay)
    square_avg, acc_delta = state["square_avg"], state["acc_delta"]
    square_avg *= rho
    square_avg += (1 - rho) * grad * grad
    std = np.sqrt(square_avg + eps)
    delta = np.sqrt(acc_delta + eps) / std * grad
    acc_delta *= rho
    acc_delta += (1 - rho) * delta * delta
    param += -lr * delta


def _apply_weight_decay(param, grad, lr, weight_decay, decoupled):
    """Adam-family weight decay: shrink ``param`` (decoupled, AdamW) or add to ``grad``."""
    if weight_decay != 0:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            grad = _coupled_decay(grad, param, weight_decay)
    return grad


def _update_moments(grad, state, beta1, beta2):
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg[...] = _lerp(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    return exp_avg, exp_avg_sq


def adam(param, grad, state, *, lr, beta1, beta2, eps, weight_decay, amsgrad,
         decoupled_weight_decay):
    r"""Adam, AMSGrad and AdamW (``torch.optim.Adam`` / ``AdamW``).

    .. math::
        m_t &\leftarrow \mathrm{lerp}(m_{t-1}, g, 1 - \beta_1), \qquad
        v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ (AMSGrad) else } v_t \\
        \theta &\leftarrow \theta - \frac{\gamma}{1 - \beta_1^t}\,
        \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    with ``g + λθ`` (Adam) or ``θ ← θ(1 - γλ)`` first (AdamW, ``decoupled_weight_decay``).
    """
    state["step"] += 1
    grad = _apply_weight_decay(param, grad, lr, weight_decay, decoupled_weight_decay)
    exp_avg, exp_avg_sq = _update_moments(grad, state, beta1, beta2)
    step = state["step"]
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if amsgrad:
        max_exp_avg_sq = state["max_exp_avg_sq"]
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = np.sqrt(max_exp_avg_sq) / bias_correction2_sqrt + eps
    else:
        denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
    param += -step_size * exp_avg / denom


def nadam(param, grad, state, *, lr, beta1, beta2, eps, weight_decay, momentum_decay,
          decoupled_weight_decay):
    r"""NAdam (``torch.optim.NAdam``), Nesterov momentum with the Dozat schedule.

    .. math::
        \mu_t &= \beta_1 (1 - \tfrac12\, 0.96^{t\psi}), \qquad
        \Pi_t = \textstyle\prod_{i \le t} \mu_i \\
        \theta &\leftarrow \theta
        - \gamma \frac{1 - \mu_t}{1 - \Pi_t} \frac{g}{D}
        - \gamma \frac{\mu_{t+1}}{1 - \Pi_t \mu_{t+1}} \frac{m_t}{D}, \qquad
        D = \sqrt{v_t / (1 - \beta_2^t)} + \epsilon

    ``mu_product`` is kept as a Python float (double), whatever the dtype of ``param``.
    """
    state["step"] += 1
    step = state["step"]
    bias_correction2 = 1 - beta2**step
    grad = _apply_weight_decay(param, grad, lr, weight_decay, decoupled_weight_decay)
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    state["mu_product"] *= mu
    mu_product = state["mu_product"]
    exp_avg, exp_avg_sq = _update_moments(grad, state, beta1, beta2)
    denom = np.sqrt(exp_avg_sq / bias_correction2)
    mu_product_next = mu_product * mu_next
    denom = denom + eps
    param += (-lr * (1.0 - mu) / (1.0 - mu_product)) * grad / denom
    param += ((-lr * mu_next) / (1.0 - mu_product_next)) * exp_avg / denom


def radam(param, grad, state, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay):
    r"""RAdam (``torch.optim.RAdam``), Adam with the variance rectification of Liu et al.

    .. math::
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        \theta &\leftarrow \theta - \gamma \frac{m_t}{1 - \beta_1^t}
        \cdot \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} \cdot r_t
        \text{ if } \rho_t > 5 \text{ else } \theta - \gamma \frac{m_t}{1 - \beta_1^t} \\
        r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
        {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}
    """
    state["step"] += 1
    step = state["step"]
    grad = _apply_weight_decay(param, grad, lr, weight_decay, decoupled_weight_decay)
    exp_avg, exp_avg_sq = _update_moments(grad, state, beta1, beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    bias_corrected_exp_avg = exp_avg / bias_correction1
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        adaptive_lr = bias_correction2**0.5 / (np.sqrt(exp_avg_sq) + eps)
        param -= bias_corrected_exp_avg * lr * adaptive_lr * rect
    else:
        param -= bias_corrected_exp_avg * lr


_UPDATES = {"sgd": sgd, "adagrad": adagrad, "rmsprop": rmsprop, "adadelta": adadelta,
            "adam": adam, "nadam": nadam, "radam": radam}


def step(kind, hyper, param, grad, state):
    """Apply the update named ``kind`` with hyperparameters ``hyper`` (a dict holding exactly the
    keyword arguments of that update) to ``param`` and ``state``, in place."""
    # Loaded states (np.load) hold the counters as 0-d arrays; the update wants Python numbers.
    state["step"] = int(state["step"])
    if "mu_product" in state:
        state["mu_product"] = float(state["mu_product"])
    _UPDATES[kind](param, grad, state, **hyper)
