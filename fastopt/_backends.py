"""The one place where fastopt chooses between its implementations.

``"cpp"`` is the compiled module ``fastopt._core``; ``"numba"`` is ``fastopt._numba_backend``
(Numba-JIT mirrors of the C++ kernels, imported on first use); ``"numpy"`` is the reference in
``fastopt.reference``. ``"auto"`` means the environment variable ``FASTOPT_BACKEND`` when it is
set, else cpp when the compiled module imports, else numba when Numba imports, else numpy; a
fallback says so once with a ``RuntimeWarning``. :func:`backends` tells which ones run here.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np

from . import _validation
from .reference import models as _reference_models
from .reference import optim as _reference_optim

try:
    from . import _core
except ImportError as exc:  # a source checkout without a build, or a broken install
    _core = None  # type: ignore[assignment]
    _CORE_ERROR = str(exc)
    if not any(p.name.startswith("_core.") for p in Path(__file__).parent.iterdir()):
        _CORE_ERROR = (f"no compiled module next to {Path(__file__).parent}: an unbuilt source "
                       "checkout is on sys.path (run from another directory), or fastopt was "
                       "installed without its build")
else:
    _CORE_ERROR = ""

BACKENDS = ("cpp", "numba", "numpy", "cuda")
_warned_fallback = False
_numba_module = None
_NUMBA_ERROR = None


def _numba():
    """``fastopt._numba_backend``, imported on first use (importing Numba takes ~0.5 s), or
    None when Numba cannot be imported (the reason is kept in ``_NUMBA_ERROR``)."""
    global _numba_module, _NUMBA_ERROR
    if _numba_module is None and _NUMBA_ERROR is None:
        try:
            from . import _numba_backend
        except (ImportError, OSError) as exc:  # OSError: llvmlite cannot load its library
            _NUMBA_ERROR = str(exc) or type(exc).__name__
        else:
            _numba_module = _numba_backend
    return _numba_module


def backends() -> dict[str, str]:
    """Every backend fastopt knows, mapped to ``"available"`` or to why it cannot run here::

        >>> fastopt.backends()  # doctest: +SKIP
        {'cpp': 'available', 'numba': 'available', 'cuda': 'unavailable: no CUDA device found',
         'numpy': 'available'}

    Asking imports Numba (once) to find out whether it works.
    """
    def status(error):
        return "available" if not error else f"unavailable: {error}"

    _numba()
    return {"cpp": status(_CORE_ERROR), "numba": status(_NUMBA_ERROR),
            "cuda": status("" if cuda_status() == "available" else cuda_status()),
            "numpy": "available"}


def _warn_fallback(chosen, consequence):
    global _warned_fallback
    if not _warned_fallback:
        _warned_fallback = True
        warnings.warn(f"fastopt's compiled module is unavailable ({_CORE_ERROR}); using "
                      f"{chosen}. {consequence}", RuntimeWarning, stacklevel=4)


def resolve(backend: str = "auto") -> str:
    """Name of the implementation that ``backend`` stands for; ``ValueError`` if unknown,
    ``ImportError`` if it is named explicitly but cannot run here."""
    if backend == "auto":
        backend = os.environ.get("FASTOPT_BACKEND", "auto").strip().lower() or "auto"
        if backend == "auto":
            if _core is not None:
                return "cpp"
            if _numba() is not None:
                _warn_fallback("the Numba backend", "Its first call in a process compiles "
                               "the kernels (seconds, cached on disk where possible). "
                               "Reinstall fastopt to get the compiled kernels.")
                return "numba"
            _warn_fallback(f"the slow NumPy reference (Numba is unavailable too: "
                           f"{_NUMBA_ERROR})", "Reinstall fastopt to get the compiled kernels.")
            return "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {', '.join(map(repr, BACKENDS))}; "
                         f"got {backend!r}")
    if backend == "cpp" and _core is None:
        raise ImportError(f"backend 'cpp' is unavailable: {_CORE_ERROR}")
    if backend == "numba" and _numba() is None:
        raise ImportError(f"backend 'numba' is unavailable: Numba cannot be imported "
                          f"({_NUMBA_ERROR}); pip install numba")
    if backend == "cuda":
        _cuda()  # ImportError("cuda: <reason>") when it cannot run here
    return backend


# -- CUDA -------------------------------------------------------------------------------------
# fastopt._cuda_backend (numba.cuda kernels). Only an explicit choice picks it (backend="cuda",
# or FASTOPT_BACKEND=cuda); "auto" never does.
_cuda_status = None


def cuda_status() -> str:
    """``"available"``, or why backend ``"cuda"`` cannot run here (checked once per process)."""
    global _cuda_status
    if _cuda_status is None:
        try:
            from numba import cuda
        except ImportError as exc:
            _cuda_status = (f"numba.cuda cannot be imported ({exc}); "
                            "pip install 'fastopt[cuda]'")
        else:
            _cuda_status = "available" if cuda.is_available() else "no CUDA device found"
    return _cuda_status


def _cuda():
    """``fastopt._cuda_backend``; ``ImportError`` with the reason when it cannot run here."""
    status = cuda_status()
    if status != "available":
        raise ImportError(f"cuda: {status}")
    from . import _cuda_backend
    return _cuda_backend
# -- end of CUDA ------------------------------------------------------------------------------


def _cpp_optimizer_step(optimizer, params, grad, state, lr):
    config, names = _cpp_optimizer_setup(optimizer)
    arrays = {name: state[name] for name in names}
    step, mu_product = _core.optimizer_step(
        config, params, grad, arrays, int(state["step"]),
        float(state.get("mu_product", 1.0)), lr)
    state["step"] = step
    if "mu_product" in state:
        state["mu_product"] = mu_product


def _numpy_optimizer_step(optimizer, params, grad, state, lr):
    names = optimizer._state_names()
    _check_reference_arguments(params, grad, state, names)
    hyper = dict(optimizer._hyperparameters(), lr=lr)
    _reference_optim.step(optimizer._kind, hyper, params, grad, state)


def _check_reference_arguments(params, grad, state, names):
    """The checks the compiled binding makes, for the NumPy backend."""
    if not isinstance(params, np.ndarray):
        raise TypeError(f"params must be a numpy.ndarray, got {type(params).__name__}")
    if params.dtype not in (np.float32, np.float64):
        raise TypeError(f"params must have dtype float32 or float64, got {params.dtype}")
    if not params.flags.writeable:
        raise ValueError("params is read-only; the update is done in place")
    for what, array in [("grad", grad)] + [(f"state[{n!r}]", state[n]) for n in names]:
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{what} must be a numpy.ndarray, got {type(array).__name__}")
        if array.dtype != params.dtype:
            raise TypeError(f"{what} has dtype {array.dtype} but params has dtype "
                            f"{params.dtype}; they must match")
        if array.shape != params.shape:
            raise ValueError(f"{what} has shape {array.shape} but params has shape "
                             f"{params.shape}; they must match")


def _cpp_optimizer_setup(optimizer):
    """The kernel configuration and state names of ``optimizer``, built once per optimizer
    (``Optimizer.__setattr__`` forgets them when a hyperparameter changes)."""
    cached = optimizer.__dict__.get("_cpp_setup")
    if cached is None:
        cached = (_cpp_optimizer_config(optimizer._kind, optimizer._hyperparameters()),
                  optimizer._state_names())
        optimizer.__dict__["_cpp_setup"] = cached
    return cached


def optimizer_step(backend: str = "auto"):
    """``f(optimizer, params, grad, state, lr)``: one in-place optimizer update."""
    name = resolve(backend)
    if name == "cpp":
        return _cpp_optimizer_step
    if name == "numba":
        return _numba().optimizer_step
    if name == "cuda":
        return _cuda().optimizer_step
    return _numpy_optimizer_step


@functools.lru_cache(maxsize=64)
def _cpp_model_spec(spec):
    # Cached: a fit passes the same (frozen, hashable) spec once per epoch.
    out = _core.ModelSpec()
    out.model = getattr(_core.Model, spec.model)
    out.n_features = spec.n_features
    out.n_outputs = spec.n_outputs
    out.fit_intercept = spec.fit_intercept
    out.penalty = getattr(_core.Penalty, spec.penalty or "none")
    out.alpha = spec.alpha
    out.l1_ratio = spec.l1_ratio
    return out


def _cpp_optimizer_config(kind, hyper):
    config = _core.OptimConfig()
    config.kind = getattr(_core.Optim, kind)
    for key, value in hyper.items():
        setattr(config, key, value)
    return config


def _cpp_X(X):
    """X as the compiled module takes it: the array, or CSR as (values, indices, indptr, d)."""
    if _validation.is_sparse(X):
        return (X.data, X.indices, X.indptr, X.shape[1])
    return X


def _cpp_epoch(problem, state, lrs, batch_size, shuffle, threads=1, lazy=False):
    config, names = _cpp_optimizer_setup(state.optimizer)
    st = state.optimizer_state
    loss_sum, steps, status, failed, step, mu_product = _core.run_epoch(
        _cpp_model_spec(problem.spec), _cpp_X(problem.X), problem.y, problem.sample_weight,
        problem.mean, problem.inv_std, state.params, config,
        {name: st[name] for name in names}, int(st["step"]),
        float(st.get("mu_product", 1.0)), batch_size, bool(shuffle), state.seed, state.epochs,
        lrs, threads, lazy, shuffle == "batches")
    st["step"] = step
    if "mu_product" in st:
        st["mu_product"] = mu_product
    return loss_sum / problem.n_samples, steps, status == 0, failed


def _numpy_epoch(problem, state, lrs, batch_size, shuffle, threads=1, lazy=False):
    # The reference sums each minibatch with matrix products in one piece: ``threads`` changes
    # the compiled backends' sums only by rounding.
    opt = state.optimizer
    result = _reference_models.run_epoch(
        problem.spec, problem.X, problem.y, problem.sample_weight, problem.mean,
        problem.inv_std, state.params, opt._kind, opt._hyperparameters(),
        state.optimizer_state, lrs, batch_size, shuffle, state.seed, state.epochs, lazy=lazy)
    return result.loss, result.steps, result.status == "ok", result.failed_step


def epoch_function(backend: str = "auto"):
    """``f(problem, state, lrs, batch_size, shuffle, threads=1, lazy=False) -> (mean loss,
    updates, ok, failed_step)``: one epoch (``shuffle``: False, True or "batches"), updating
    ``state.params`` and ``state.optimizer_state`` in place. ``threads`` > 1 splits every
    minibatch into that many lanes (cpp: one thread each; numba: the same sums one after
    another; numpy and cuda: ignored). ``lazy``: sparse unstandardised X only, update only the minibatch's coordinates
    (one lane)."""
    name = resolve(backend)
    if name == "cpp":
        return _cpp_epoch
    if name == "numba":
        return _numba().epoch
    if name == "cuda":
        return _cuda().epoch
    return _numpy_epoch


def _cpp_objective(problem, params):
    return _core.objective(_cpp_model_spec(problem.spec), _cpp_X(problem.X), problem.y,
                           problem.sample_weight, problem.mean, problem.inv_std, params)


def _numpy_objective(problem, params):
    return _reference_models.objective(problem.spec, problem.X, problem.y,
                                       problem.sample_weight, problem.mean, problem.inv_std,
                                       params)


def objective_function(backend: str = "auto"):
    """``f(problem, params) -> (L(params), float64 gradient)`` over all rows."""
    name = resolve(backend)
    if name == "cpp":
        return _cpp_objective
    if name == "numba":
        return _numba().objective
    if name == "cuda":
        return _cuda().objective
    return _numpy_objective
