"""The one place where fastopt chooses between its implementations.

:func:`resolve` turns a backend name into a :class:`Backend`, the record of the functions a fit
needs from it; everything below the front ends receives that record and never compares names.

- ``"cpp"``: the compiled module ``fastopt._core`` (:mod:`fastopt._backends.cpp`);
- ``"numba"``: Numba-JIT mirrors of the C++ kernels (:mod:`fastopt._backends.numba_jit`),
  imported on first use;
- ``"cuda"``: ``numba.cuda`` kernels (:mod:`fastopt._backends.cuda`), only when named;
- ``"numpy"``: the reference in ``fastopt.reference`` (:mod:`fastopt._backends.reference`).

``"auto"`` means the environment variable ``FASTOPT_BACKEND`` when it is set, else cpp when the
compiled module imports, else numba when Numba imports, else numpy; a fallback says so once with
a ``RuntimeWarning``. :func:`backends` tells which ones run here.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Callable, NamedTuple

from .. import _scaling

try:
    from .. import _core
except ImportError as exc:  # a source checkout without a build, or a broken install
    _core = None  # type: ignore[assignment]
    _CORE_ERROR = str(exc)
    _package = Path(__file__).parent.parent
    if not any(p.name.startswith("_core.") for p in _package.iterdir()):
        _CORE_ERROR = (f"no compiled module next to {_package}: an unbuilt source checkout is "
                       "on sys.path (run from another directory), or fastopt was installed "
                       "without its build")
else:
    _CORE_ERROR = ""

BACKENDS = ("cpp", "numba", "numpy", "cuda")


class Backend(NamedTuple):
    """The functions of one implementation. A fit resolves its backend once and passes this
    record down; ``data`` below is what ``dataset(problem)`` returned for the fit's
    :class:`~fastopt.engine.Problem` (its arrays checked once, in the form the kernels take)."""

    name: str
    #: ``(optimizer, params, grad, state, lr)``: one in-place optimizer update.
    optimizer_step: Callable
    #: ``(problem) -> data``, built once per problem; epochs and objectives do not re-check it.
    dataset: Callable
    #: ``(data, state, lrs, batch_size, shuffle, threads, lazy) -> (mean loss, updates, ok,
    #: failed update or -1)``: one epoch, updating ``state.params`` and its optimizer state.
    epoch: Callable
    #: ``(data, params, threads=1) -> (L(params), float64 gradient)`` over all rows; the
    #: compiled ones sum rows in blocks of a fixed size on ``threads`` threads, adding the
    #: blocks in order (the same bits for any ``threads``).
    objective: Callable
    #: ``(problem, data, params, threads=1) -> (v -> H(params) v)``: Hessian-vector products
    #: of the full objective (penalty none or l2), the rows' curvature at ``params`` computed
    #: once per operator, each product one pass over X (float64 ``v`` and result).
    hvp: Callable
    #: ``(X, sample_weight) -> (mean, inv_std)``: the standardisation of ``standardize=True``;
    #: raises the ValueError for NaN/inf in a dense host X.
    column_scaling: Callable
    #: ``(X, rows) -> X[rows]`` as the epochs take it.
    take_rows: Callable
    #: Epochs stop at the first non-finite minibatch gradient without warnings, so a complete
    #: epoch proves X finite (``Problem.check_finite_later``).
    checks_finite: bool
    #: ``(X, name) -> X`` for X in GPU memory, or None: this backend trains on host memory only.
    check_device_X: Callable | None = None
    #: ``(data, state, step, seed, epoch) -> (loss sum, ok, failed row position or -1)``: one
    #: SAGA epoch on a :class:`fastopt.reference.saga.SagaState`, in place; None: no SAGA here.
    saga_epoch: Callable | None = None
    #: ``(data, specs, states, lrs, batch_size, shuffle) -> [epoch's outcome per state]``: one
    #: epoch of several states on the same minibatches of ``data`` (``specs[i]``: the data's
    #: model with state i's penalty, ``lrs[i]``: its rates), each as ``epoch`` would run it;
    #: ``fastopt.fit_many``. None: the configurations are fitted one by one.
    many_epoch: Callable | None = None
    #: ``(data, x0, threads, **settings) -> dict``: :func:`fastopt.solvers.lbfgs` with the
    #: loop compiled (:func:`fastopt.solvers.compiled_lbfgs` reads the dict); None: the loop
    #: runs in Python on ``objective``.
    lbfgs: Callable | None = None
    #: ``(data, [params]) -> [L(params)]``: ``objective``'s values for several parameter
    #: vectors, in one pass over X where the backend can (``fastopt compare``'s curves).
    many_objective: Callable | None = None
    #: ``(problem, data, params) -> H``: the objective's Hessian (float64, ``n_params`` square)
    #: at float64 ``params``, or None where the backend has no kernel for ``problem`` (then
    #: :func:`fastopt.newton.hessian` computes it).
    hessian: Callable | None = None


_warned_fallback = False
_numba_module = None
_NUMBA_ERROR = None


def _numba():
    """``fastopt._backends.numba_jit``, imported on first use (importing Numba takes ~0.5 s), or
    None when Numba cannot be imported (the reason is kept in ``_NUMBA_ERROR``)."""
    global _numba_module, _NUMBA_ERROR
    if _numba_module is None and _NUMBA_ERROR is None:
        try:
            from . import numba_jit
        except (ImportError, OSError) as exc:  # OSError: llvmlite cannot load its library
            _NUMBA_ERROR = str(exc) or type(exc).__name__
        else:
            _numba_module = numba_jit
    return _numba_module


def backends() -> dict:
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


def resolve_name(backend: str | Backend = "auto") -> str:
    """Name of the implementation that ``backend`` stands for; ``ValueError`` if unknown,
    ``ImportError`` if it is named explicitly but cannot run here."""
    if isinstance(backend, Backend):
        return backend.name
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


def resolve(backend: str | Backend = "auto") -> Backend:
    """The :class:`Backend` that ``backend`` (a name, ``"auto"``, or a record already) stands
    for; ``ValueError`` if unknown, ``ImportError`` if named explicitly but unable to run."""
    if isinstance(backend, Backend):
        return backend
    return _record(resolve_name(backend))


def _column_scaling():
    """The standardisation of host X for every backend: the compiled module's one-pass
    moments when it imports (~3x faster than NumPy's passes; the same statistics whichever
    backend trains, so that backends stay equal to the bit), else NumPy's passes."""
    if _core is None:
        return _scaling.column_scaling
    from . import cpp
    return cpp.column_scaling


@functools.cache
def _record(name):
    if name == "cpp":
        from . import cpp
        return Backend("cpp", cpp.optimizer_step, cpp.dataset, cpp.epoch, cpp.objective,
                       cpp.hvp, cpp.column_scaling, _scaling.take_rows, checks_finite=True,
                       saga_epoch=cpp.saga_epoch, many_epoch=cpp.many_epoch,
                       lbfgs=cpp.lbfgs, many_objective=cpp.many_objective,
                       hessian=cpp.hessian)
    if name == "numba":
        jit = _numba()
        return Backend("numba", jit.optimizer_step,
                       lambda problem: jit.dataset(problem, fused_multiply_add()),
                       jit.epoch, jit.objective, jit.hvp, _column_scaling(), _scaling.take_rows,
                       checks_finite=True, saga_epoch=jit.saga_epoch, many_epoch=jit.many_epoch,
                       many_objective=_one_by_one(jit.objective))
    if name == "cuda":
        gpu = _cuda()
        from . import reference
        return Backend("cuda", gpu.optimizer_step, gpu.dataset, gpu.epoch, gpu.objective,
                       reference.hvp, functools.partial(gpu.column_scaling, host=_column_scaling()),
                       gpu.take_rows, checks_finite=False,
                       check_device_X=gpu.check_device_X,
                       many_objective=_one_by_one(gpu.objective))
    from . import reference
    return Backend("numpy", reference.optimizer_step, reference.dataset, reference.epoch,
                   reference.objective, reference.hvp, _column_scaling(), _scaling.take_rows,
                   checks_finite=False, saga_epoch=reference.saga_epoch,
                   many_objective=_one_by_one(reference.objective))


def _one_by_one(objective):
    """``many_objective`` from ``objective``: one pass over X per parameter vector."""
    def many_objective(data, params):
        return [float(objective(data, p)[0]) for p in params]
    return many_objective


_host_fma = None


def fused_multiply_add() -> bool:
    """Whether the Numba kernels fuse multiply and add: exactly when the C++ kernels in use do
    (their AVX2 build, chosen on CPUs with AVX2 and FMA, fuses; the baseline does not), which
    keeps the two backends equal to the last bit; without the compiled module, when the CPU
    can. Asked per dataset: ``_core.set_cpu_target`` changes the answer."""
    global _host_fma
    if _core is not None:
        return _core.cpu_target() != "baseline"
    if _host_fma is None:
        _host_fma = _numba().host_has_fma()
    return _host_fma


def describe(backend: str | Backend = "auto") -> str:
    """The backend's name, and for the compiled one the instruction set its kernels use."""
    name = resolve_name(backend)
    return f"cpp ({_core.cpu_target()} kernels)" if name == "cpp" else name


# -- CUDA -------------------------------------------------------------------------------------
# Only an explicit choice picks it (backend="cuda", or FASTOPT_BACKEND=cuda); "auto" never does.
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
    """``fastopt._backends.cuda``; ``ImportError`` with the reason when it cannot run here."""
    status = cuda_status()
    if status != "available":
        raise ImportError(f"cuda: {status}")
    from . import cuda
    return cuda
