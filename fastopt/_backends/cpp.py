"""The compiled backend: adapters from fastopt's objects to ``fastopt._core``."""

from __future__ import annotations

import functools

import numpy as np

from .. import _scaling
from .. import _validation as v
from .. import _core
from .contract import step_count


def dataset(problem):
    """The problem's arrays as a ``_core.Dataset``, built once per fit: its construction checks
    them (shapes, dtypes, softmax labels, CSR indices) and reads the tuning variables, so the
    epochs and the objective do not check them again."""
    X = problem.X
    return _core.Dataset(model_spec(problem.spec),
                         (X.data, X.indices, X.indptr, X.shape[1]) if v.is_sparse(X) else X,
                         problem.y, problem.sample_weight, problem.mean, problem.inv_std)


@functools.lru_cache(maxsize=64)
def model_spec(spec):
    out = _core.ModelSpec()
    out.model = getattr(_core.Model, spec.model)
    out.n_features = spec.n_features
    out.n_outputs = spec.n_outputs
    out.fit_intercept = spec.fit_intercept
    out.penalty = getattr(_core.Penalty, spec.penalty or "none")
    out.alpha = spec.alpha
    out.l1_ratio = spec.l1_ratio
    return out


@functools.lru_cache(maxsize=256)
def _optimizer_config(kind, hyper):
    config = _core.OptimConfig()
    config.kind = getattr(_core.Optim, kind)
    for key, value in hyper:
        setattr(config, key, value)
    return config


_last_setup: tuple = (None, None, None)  # (optimizer, hyperparameters, setup)


def _setup(optimizer):
    """The kernel configuration and state names of ``optimizer``, cached by its
    hyperparameter values. The last one is kept beside the cache: an epoch of a few rows
    costs a few microseconds, and hashing the hyperparameters took 1.3 of them."""
    global _last_setup
    hyper = optimizer._hyperparameters()
    last = _last_setup  # one read: other threads may replace it
    if last[0] is optimizer and last[1] == hyper:
        return last[2]
    setup = (_optimizer_config(optimizer._kind, tuple(hyper.items())),
             optimizer._state_names())
    _last_setup = (optimizer, hyper, setup)
    return setup


def optimizer_step(optimizer, params, grad, state, lr):
    config, names = _setup(optimizer)
    arrays = {name: state[name] for name in names}
    step, mu_product = _core.optimizer_step(
        config, params, grad, arrays, step_count(state),
        float(state.get("mu_product", 1.0)), lr)
    state["step"] = step
    if "mu_product" in state:
        state["mu_product"] = mu_product


def epoch(data, state, lrs, batch_size, shuffle, threads=1, lazy=False):
    config, names = _setup(state.optimizer)
    st = state.optimizer_state
    loss_sum, steps, status, failed, step, mu_product = _core.run_epoch(
        data, state.params, config, {name: st[name] for name in names}, step_count(st),
        float(st.get("mu_product", 1.0)), batch_size, bool(shuffle), state.seed, state.epochs,
        lrs, threads, lazy, shuffle == "batches")
    st["step"] = step
    if "mu_product" in st:
        st["mu_product"] = mu_product
    return loss_sum / data.n_samples, steps, status == 0, failed


def objective(data, params, threads=1):
    return _core.objective(data, params, threads)


def lbfgs(data, x0, threads=1, **settings):
    """L-BFGS on the objective of ``data`` with the loop compiled (``_core.lbfgs``): the
    dict that :func:`fastopt.solvers.compiled_lbfgs` reads."""
    return _core.lbfgs(data, np.ascontiguousarray(x0, dtype=data.dtype), threads, **settings)


def hvp(problem, data, params, threads=1):
    """``v -> H(params) v`` (float64) at ``params``: the compiled operator, which computes the
    rows' curvature once, here; each product is one pass over X."""
    operator = _core.HessianOperator(data, np.ascontiguousarray(params, dtype=data.dtype),
                                     threads)
    return lambda vector: operator(np.ascontiguousarray(vector, dtype=np.float64))


# The compiled Hessian adds rank-four updates into H, which stays in cache up to ~150 columns;
# BLAS's blocked product on NumPy's side is the faster one beyond (logistic, 1 thread, NumPy /
# compiled: 1,000 x 10 66 / 37 us, 2,000 x 50 589 / 398 us, 2,000 x 100 1.52 / 1.22 ms, 2,000 x
# 150 2.79 / 2.61, 2,000 x 200 4.04 / 4.23, 4,000 x 300 16.6 / 17.9).
COMPILED_HESSIAN_MAX_FEATURES = 150


def hessian(problem, data, params):
    """The Hessian at float64 ``params`` (``_core.hessian``) for dense X with one output and
    up to :data:`COMPILED_HESSIAN_MAX_FEATURES` columns; None otherwise."""
    spec = problem.spec
    if (spec.n_outputs != 1 or v.is_sparse(problem.X)
            or spec.n_features > COMPILED_HESSIAN_MAX_FEATURES):
        return None
    return _core.hessian(data, np.ascontiguousarray(params, dtype=np.float64))


def saga_epoch(data, state, step, seed, epoch):
    loss_sum, _, status, failed = _core.saga_epoch(data, state.w, state.table, state.sums, step,
                                                   seed, epoch)
    return loss_sum, status == 0, failed


def many_objective(data, params):
    return _core.many_objective(data, list(params))


def column_scaling(X, sample_weight=None):
    return _scaling.column_scaling(X, sample_weight, moments=_core.column_moments)


def many_epoch(data, specs, states, lrs, batch_size, shuffle):
    """One epoch of several :class:`~fastopt.engine.TrainingState` on the same minibatches
    (``_core.run_many_epoch``): ``specs[i]`` is the data's model with configuration i's
    penalty, ``lrs[i]`` its learning rates; the states share seed and epoch count. Returns one
    ``(mean loss, updates, ok, failed update or -1)`` per state, as :func:`epoch`."""
    setups = [_setup(state.optimizer) for state in states]
    first = states[0]
    outcomes = _core.run_many_epoch(
        data, [model_spec(spec) for spec in specs], [state.params for state in states],
        [config for config, _ in setups],
        [{name: state.optimizer_state[name] for name in names}
         for state, (_, names) in zip(states, setups)],
        [step_count(state.optimizer_state) for state in states],
        [float(state.optimizer_state.get("mu_product", 1.0)) for state in states],
        batch_size, bool(shuffle), first.seed, first.epochs, lrs, shuffle == "batches")
    results = []
    for state, (loss_sum, steps, status, failed, step, mu_product) in zip(states, outcomes):
        st = state.optimizer_state
        st["step"] = step
        if "mu_product" in st:
            st["mu_product"] = mu_product
        results.append((loss_sum / data.n_samples, steps, status == 0, failed))
    return results
