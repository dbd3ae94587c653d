"""What every implementation of the kernels agrees on: the integer codes of optimizers, models
and penalties, the order of the optimizer-state arrays, and the argument checks of one
optimizer step.

The compiled module declares the same codes as C++ enums (``csrc/include/fastopt/config.hpp``:
``Optim``, ``Model``, ``Penalty``); ``tests/test_backends.py`` checks that they agree with the
tables here. The Numba and CUDA kernels and the adapters take their codes from this module.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

# A name's code is its position.
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adadelta", "adam", "nadam", "radam")
MODELS = ("linear", "logistic", "softmax")
PENALTIES = ("none", "l2", "l1", "elasticnet")

OPTIMIZER_CODES = {name: code for code, name in enumerate(OPTIMIZERS)}
MODEL_CODES = {name: code for code, name in enumerate(MODELS)}
PENALTY_CODES = {name: code for code, name in enumerate(PENALTIES)} | {None: 0}

# The optimizer state of each kind, in kernel order. An optimizer keeps the arrays its
# hyperparameters need (``Optimizer._state_names()``: e.g. SGD's momentum buffer only with
# momentum), in this order; the kernels that take three fixed slots (CUDA) put each name in its
# slot here.
STATE_SLOTS = {
    "sgd": ("momentum_buffer",),
    "adagrad": ("sum",),
    "rmsprop": ("square_avg", "grad_avg", "momentum_buffer"),
    "adadelta": ("square_avg", "acc_delta"),
    "adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "nadam": ("exp_avg", "exp_avg_sq"),
    "radam": ("exp_avg", "exp_avg_sq"),
}


def check_step(params, grad, state, names, *, is_device=None):
    """The argument checks of one optimizer step, as the compiled binding makes them: arrays of
    one float dtype and shape, C-contiguous, params and state writeable, a step count that is a
    non-negative integer. ``is_device(array)``: arrays in GPU memory pass the type check (the
    CUDA backend). Returns the step count as an int."""
    def is_array(array):
        return isinstance(array, np.ndarray) or (is_device is not None and is_device(array))

    named = [("params", params), ("grad", grad)] + [(f"state[{n!r}]", state[n]) for n in names]
    for what, array in named:
        if not is_array(array):
            kinds = "a numpy.ndarray" + (" or a CUDA device array" if is_device else "")
            raise TypeError(f"{what} must be {kinds}, got {type(array).__name__}")
    if params.dtype not in (np.float32, np.float64):
        raise TypeError(f"params must have dtype float32 or float64, got {params.dtype}")
    for what, array in named[1:]:
        if array.dtype != params.dtype:
            raise TypeError(f"{what} has dtype {array.dtype} but params has dtype "
                            f"{params.dtype}; they must match")
        if tuple(array.shape) != tuple(params.shape):
            raise ValueError(f"{what} has shape {_shape(array.shape)} but params has shape "
                             f"{_shape(params.shape)}; they must match")
    for what, array in named:
        if isinstance(array, np.ndarray) and not array.flags.c_contiguous:
            raise ValueError(f"{what} must be C-contiguous (use numpy.ascontiguousarray and "
                             "keep the result): the update is done in place")
        if what != "grad" and isinstance(array, np.ndarray) and not array.flags.writeable:
            raise ValueError(f"{what} is read-only; the update is done in place")
    return step_count(state)


def step_count(state):
    """``state["step"]`` (or a step count given directly), the number of updates done, as an
    int: a whole number >= 0. A float is taken when it is whole (torch keeps its step as a
    float tensor), never truncated: 2.5 is refused."""
    step = state["step"] if isinstance(state, dict) else state
    if type(step) is int and step >= 0:  # the common case, checked per epoch and step
        return step
    value = step.item() if isinstance(step, np.ndarray) and step.ndim == 0 else step
    whole = (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
             or isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
             and math.isfinite(value) and float(value).is_integer())
    if not whole or value < 0:
        raise ValueError(f"state['step'] must be the number of updates done, a whole number "
                         f">= 0; got {step!r}")
    return int(value)


def _shape(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
