"""The NumPy backend: the reference of ``fastopt.reference`` behind the backend functions."""

from __future__ import annotations

import numpy as np

from ..reference import hvp as _hvp
from ..reference import models as _models
from ..reference import optim as _optim
from ..reference import saga as _saga
from .contract import check_step


def optimizer_step(optimizer, params, grad, state, lr):
    check_step(params, grad, state, optimizer._state_names())
    hyper = dict(optimizer._hyperparameters(), lr=lr)
    _optim.step(optimizer._kind, hyper, params, grad, state)


def dataset(problem):
    # The reference takes the problem's arrays as they are.
    return problem


def epoch(problem, state, lrs, batch_size, shuffle, threads=1, lazy=False):
    # The reference sums each minibatch with matrix products in one piece: ``threads`` changes
    # the compiled backends' sums only by rounding.
    opt = state.optimizer
    result = _models.run_epoch(
        problem.spec, problem.X, problem.y, problem.sample_weight, problem.mean,
        problem.inv_std, state.params, opt._kind, opt._hyperparameters(),
        state.optimizer_state, lrs, batch_size, shuffle, state.seed, state.epochs, lazy=lazy)
    return result.loss, result.steps, result.status == "ok", result.failed_step


def objective(problem, params, threads=1):
    # One matrix product per pass: ``threads`` changes nothing here.
    return _models.objective(problem.spec, problem.X, problem.y, problem.sample_weight,
                             problem.mean, problem.inv_std, params)


def saga_epoch(problem, state, step, seed, epoch):
    return _saga.saga_epoch(problem.spec, problem.X, problem.y, problem.sample_weight,
                            problem.mean, problem.inv_std, state, step, seed, epoch)

def hvp(problem, data, params, threads=1):
    """``v -> H(params) v``: the NumPy reference (also the CUDA backend's)."""
    return _hvp.hessian_operator(problem, np.asarray(params, dtype=np.float64))
