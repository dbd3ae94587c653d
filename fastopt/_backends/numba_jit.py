"""The Numba backend: ``@njit`` mirrors of the C++ kernels in ``csrc/include/fastopt/``.

Private; ``fastopt._backends`` imports it only when ``backend="numba"`` is chosen (importing
Numba costs ~0.5 s). It exposes the three functions of every backend::

    optimizer_step(optimizer, params, grad, state, lr)
    epoch(problem, state, lrs, batch_size, shuffle) -> (mean loss, updates, ok, failed_step)
    objective(problem, params) -> (value, float64 gradient)

Numerics. Each kernel is a line-for-line copy of its C++ counterpart (``optimizers.hpp``,
the model headers indexed by ``models.hpp``, ``epoch.hpp``, ``shuffle.hpp``),
and gives the same bits:

- optimizers: scalars (bias corrections, step sizes) in float64 then cast to the parameters'
  dtype, elementwise arithmetic in that dtype in the same order, torch's two-branch lerp,
  NaN-propagating maximum. Numba runs without ``fastmath``, so LLVM neither reassociates nor
  contracts ``a * b + c`` into an FMA (the C++ is built with ``-ffp-contract=off``). One LLVM
  rewrite needs a guard: ``pow(x, 0.5)`` with a literal 0.5 becomes ``sqrt(x)``, which rounds
  differently from the libm ``pow`` that the C++ and the reference call in ~1% of cases, so
  the exponent is read from the hyperparameter array at run time.
- models: float64 accumulation, sixteen-lane dot products summed in the same fixed order, and
  multiply-adds fused (``llvm.fma``) exactly when the C++ kernels in use fuse them (their
  AVX2 + FMA build) and separate otherwise (the baseline build); see ``fused_multiply_add``
  in ``fastopt._backends``, which decides.
- ``error_model="numpy"``: a division by zero gives inf/nan as in C++, not ZeroDivisionError.

Ctrl-C. Compiled Numba code cannot see signals, so an epoch runs as a sequence of calls of
about ``_WORK_PER_CALL`` multiply-adds each (10-60 ms), resumable at any row: the cursor
(update, row within the minibatch), the partial gradients of the lanes and the running sums
live in arrays that survive between calls. Every floating-point operation happens
in the same order however the work is cut, so the trajectory does not depend on the chunking.
A KeyboardInterrupt raised between two calls leaves the parameters as they were after the last
completed update, as with the C++ backend.

Compilation. Every kernel is compiled lazily, once per dtype (float32, float64): optimizer
hyperparameters travel as one float64 array plus one int64 array of flags, the model and its
options as one int64 and one float64 array, absent sample weights or standardisation as empty
arrays, so that no option creates a new specialization (a read-only X or gradient array does:
Numba types those apart). Without a cache, the first epoch of a process compiles for 10-15 s
per dtype (one kernel serves every model and optimizer), the first objective ~1.5 s more, and
a first ``opt.step`` alone ~4 s. Compiled code is cached on disk (``cache=True``) where Numba
finds a writable cache directory (``NUMBA_CACHE_DIR``, the package's ``__pycache__``, or the
user-wide cache): later processes load it in ~0.2 s. In a read-only installation without one,
caching is simply off (numba#4908) and each process compiles again.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ..reference.models import l1_share
from .contract import MODEL_CODES, OPTIMIZER_CODES, PENALTY_CODES, check_step

__all__ = ["optimizer_step", "epoch", "objective", "hvp", "permutation",
           "compile_cache_enabled", "saga_epoch"]


# error_model="numpy": x / 0.0 gives inf or nan as in C++, not Python's ZeroDivisionError
# (whose check in every division would also stop LLVM from vectorising the loops).
_JIT_OPTIONS = dict(nogil=True, error_model="numpy")


def _jit(func):
    """``njit`` with the options above, and the on-disk cache when Numba has somewhere to
    write it."""
    try:
        return numba.njit(cache=True, **_JIT_OPTIONS)(func)
    except RuntimeError:  # "cannot cache function ...: no locator available" (read-only install)
        return numba.njit(**_JIT_OPTIONS)(func)


# ---------------------------------------------------------------------------------------------
# Hyperparameters: one float64 array and one int64 array (the fields of OptimConfig).

_SGD, _ADAGRAD, _RMSPROP, _ADADELTA, _ADAM, _NADAM, _RADAM = (
    OPTIMIZER_CODES[name] for name in ("sgd", "adagrad", "rmsprop", "adadelta", "adam", "nadam",
                                       "radam"))

_FLOAT_FIELDS = ("weight_decay", "momentum", "dampening", "lr_decay", "alpha", "rho", "beta1",
                 "beta2", "momentum_decay", "eps")
_FLOAT_DEFAULTS = dict(weight_decay=0.0, momentum=0.0, dampening=0.0, lr_decay=0.0, alpha=0.99,
                       rho=0.9, beta1=0.9, beta2=0.999, momentum_decay=4e-3, eps=1e-8)
(H_WD, H_MOM, H_DAMP, H_LR_DECAY, H_ALPHA, H_RHO, H_BETA1, H_BETA2, H_MOM_DECAY,
 H_EPS) = range(len(_FLOAT_FIELDS))
H_HALF = len(_FLOAT_FIELDS)  # the exponent 0.5, opaque to LLVM (see the module docstring)
_FLAG_FIELDS = ("decoupled_weight_decay", "nesterov", "centered", "amsgrad")
F_KIND = 0
F_DECOUPLED, F_NESTEROV, F_CENTERED, F_AMSGRAD = range(1, 1 + len(_FLAG_FIELDS))


def optimizer_config(kind, hyper):
    """``(flags int64, hyper float64)`` arrays for the kernels from ``Optimizer._kind`` and
    ``Optimizer._hyperparameters()``."""
    values = dict(_FLOAT_DEFAULTS)
    flags = np.zeros(1 + len(_FLAG_FIELDS), dtype=np.int64)
    flags[F_KIND] = OPTIMIZER_CODES[kind]
    for key, value in hyper.items():
        if key in values:
            values[key] = float(value)
        elif key in _FLAG_FIELDS:
            flags[1 + _FLAG_FIELDS.index(key)] = int(bool(value))
        elif key != "lr":
            raise ValueError(f"unknown hyperparameter {key!r}")
    floats = np.array([values[name] for name in _FLOAT_FIELDS] + [0.5], dtype=np.float64)
    return flags, floats


# ---------------------------------------------------------------------------------------------
# Optimizers (optimizers.hpp). `T = p.dtype.type` casts a float64 scalar to the array dtype.

@_jit
def _lerp(a, b, w, w_complement, low):
    """torch's lerp: ``a + w (b - a)`` for ``|weight| < 0.5``, else ``b - (b - a)(1 - w)``."""
    return a + w * (b - a) if low else b - (b - a) * w_complement


@_jit
def _sgd(hyper, flags, first, lr, p, g, buf):
    T = p.dtype.type
    wd, mom, keep = T(hyper[H_WD]), T(hyper[H_MOM]), T(1.0 - hyper[H_DAMP])
    neg_lr = T(-lr)
    decayed = hyper[H_WD] != 0.0
    momentum = hyper[H_MOM] != 0.0
    nesterov = flags[F_NESTEROV] != 0
    for i in range(p.size):
        gi = g[i]
        if decayed:
            gi = gi + wd * p[i]
        if momentum:
            b = gi if first else buf[i] * mom + keep * gi
            buf[i] = b
            gi = gi + mom * b if nesterov else b
        p[i] = p[i] + neg_lr * gi


@_jit
def _adagrad(hyper, step, lr, p, g, acc):
    T = p.dtype.type
    clr = lr / (1 + (step - 1) * hyper[H_LR_DECAY])
    neg_clr, eps, wd = T(-clr), T(hyper[H_EPS]), T(hyper[H_WD])
    decayed = hyper[H_WD] != 0.0
    for i in range(p.size):
        gi = g[i]
        if decayed:
            gi = gi + wd * p[i]
        si = acc[i] + gi * gi
        acc[i] = si
        std = np.sqrt(si) + eps
        p[i] = p[i] + (neg_clr * gi) / std


@_jit
def _rmsprop(hyper, flags, lr, p, g, sq, gavg, buf):
    T = p.dtype.type
    alpha = hyper[H_ALPHA]
    a, one_minus_a, eps = T(alpha), T(1.0 - alpha), T(hyper[H_EPS])
    wd, mom, neg_lr = T(hyper[H_WD]), T(hyper[H_MOM]), T(-lr)
    one, minus_one = T(1.0), T(-1.0)
    decayed = hyper[H_WD] != 0.0
    centered = flags[F_CENTERED] != 0
    momentum = hyper[H_MOM] > 0.0
    weight = 1.0 - alpha
    w, w_complement, low = T(weight), T(1.0 - weight), abs(weight) < 0.5
    for i in range(p.size):
        gi = g[i]
        if decayed:
            gi = gi + wd * p[i]
        si = sq[i] * a + one_minus_a * gi * gi
        sq[i] = si
        if centered:
            ga = _lerp(gavg[i], gi, w, w_complement, low)
            gavg[i] = ga
            avg = np.sqrt(si + minus_one * ga * ga)
        else:
            avg = np.sqrt(si)
        avg = avg + eps
        if momentum:
            b = buf[i] * mom + (one * gi) / avg
            buf[i] = b
            p[i] = p[i] + neg_lr * b
        else:
            p[i] = p[i] + (neg_lr * gi) / avg


@_jit
def _adadelta(hyper, lr, p, g, sq, acc):
    T = p.dtype.type
    rho, one_minus_rho, eps = T(hyper[H_RHO]), T(1.0 - hyper[H_RHO]), T(hyper[H_EPS])
    wd, neg_lr = T(hyper[H_WD]), T(-lr)
    decayed = hyper[H_WD] != 0.0
    for i in range(p.size):
        gi = g[i]
        if decayed:
            gi = gi + wd * p[i]
        si = sq[i] * rho + one_minus_rho * gi * gi
        sq[i] = si
        std = np.sqrt(si + eps)
        delta = (np.sqrt(acc[i] + eps) / std) * gi
        acc[i] = acc[i] * rho + one_minus_rho * delta * delta
        p[i] = p[i] + neg_lr * delta


@_jit
def _decay_mode(hyper, flags):
    """0 none, 1 coupled (added to the gradient), 2 decoupled (AdamW)."""
    if hyper[H_WD] == 0.0:
        return 0
    return 2 if flags[F_DECOUPLED] != 0 else 1


@_jit
def _adam(hyper, flags, step, lr, p, g, m, v, vmax):
    T = p.dtype.type
    beta1, beta2, half = hyper[H_BETA1], hyper[H_BETA2], hyper[H_HALF]
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    neg_step_size = T(-step_size)
    bc2_sqrt = T(bias_correction2 ** half)
    b2, one_minus_b2, eps = T(beta2), T(1 - beta2), T(hyper[H_EPS])
    wd, shrink = T(hyper[H_WD]), T(1 - lr * hyper[H_WD])
    weight = 1 - beta1
    w, w_complement, low = T(weight), T(1.0 - weight), abs(weight) < 0.5
    decay = _decay_mode(hyper, flags)
    amsgrad = flags[F_AMSGRAD] != 0
    for i in range(p.size):
        pi = p[i]
        gi = g[i]
        if decay == 2:
            pi = pi * shrink
        elif decay == 1:
            gi = gi + wd * pi
        mi = _lerp(m[i], gi, w, w_complement, low)
        vi = v[i] * b2 + one_minus_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        second = vi
        if amsgrad:
            vm = vmax[i]
            second = vm if (vm > vi or vm != vm) else vi  # NaN-propagating, as torch.maximum
            vmax[i] = second
        denom = np.sqrt(second) / bc2_sqrt + eps
        p[i] = pi + (neg_step_size * mi) / denom


@_jit
def _nadam(hyper, flags, step, mu_product, lr, p, g, m, v):
    T = p.dtype.type
    beta1, beta2, momentum_decay = hyper[H_BETA1], hyper[H_BETA2], hyper[H_MOM_DECAY]
    bias_correction2 = 1 - beta2 ** step
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product = mu_product * mu
    mu_product_next = mu_product * mu_next
    grad_coef = T(-lr * (1.0 - mu) / (1.0 - mu_product))
    avg_coef = T((-lr * mu_next) / (1.0 - mu_product_next))
    bc2, b2, one_minus_b2 = T(bias_correction2), T(beta2), T(1 - beta2)
    eps, wd, shrink = T(hyper[H_EPS]), T(hyper[H_WD]), T(1 - lr * hyper[H_WD])
    decay = _decay_mode(hyper, flags)
    weight = 1 - beta1
    w, w_complement, low = T(weight), T(1.0 - weight), abs(weight) < 0.5
    for i in range(p.size):
        pi = p[i]
        gi = g[i]
        if decay == 2:
            pi = pi * shrink
        elif decay == 1:
            gi = gi + wd * pi
        mi = _lerp(m[i], gi, w, w_complement, low)
        vi = v[i] * b2 + one_minus_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        denom = np.sqrt(vi / bc2) + eps
        pi = pi + (grad_coef * gi) / denom
        p[i] = pi + (avg_coef * mi) / denom
    return mu_product


@_jit
def _radam(hyper, flags, step, lr, p, g, m, v):
    T = p.dtype.type
    beta1, beta2, half = hyper[H_BETA1], hyper[H_BETA2], hyper[H_HALF]
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2 ** step / bias_correction2
    rectified = rho_t > 5.0
    rect = 0.0
    if rectified:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** half
    bc1, lr_t, rect_t = T(bias_correction1), T(lr), T(rect)
    bc2_sqrt = T(bias_correction2 ** half)
    b2, one_minus_b2, eps = T(beta2), T(1 - beta2), T(hyper[H_EPS])
    wd, shrink = T(hyper[H_WD]), T(1 - lr * hyper[H_WD])
    decay = _decay_mode(hyper, flags)
    weight = 1 - beta1
    w, w_complement, low = T(weight), T(1.0 - weight), abs(weight) < 0.5
    for i in range(p.size):
        pi = p[i]
        gi = g[i]
        if decay == 2:
            pi = pi * shrink
        elif decay == 1:
            gi = gi + wd * pi
        mi = _lerp(m[i], gi, w, w_complement, low)
        vi = v[i] * b2 + one_minus_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        corrected = (mi / bc1) * lr_t
        if rectified:
            adaptive = bc2_sqrt / (np.sqrt(vi) + eps)
            p[i] = pi - (corrected * adaptive) * rect_t
        else:
            p[i] = pi - corrected


@_jit
def _optimizer_step(flags, hyper, step, mu_product, lr, p, g, s0, s1, s2):
    """One in-place update (optimizer_step of optimizers.hpp). ``s0..s2`` are the state arrays
    in ``Optimizer._state_names()`` order (unused ones may be empty). Returns the new
    ``(step, mu_product)``."""
    kind = flags[F_KIND]
    if kind == _SGD:
        _sgd(hyper, flags, step == 0, lr, p, g, s0)
        return step + 1, mu_product
    step += 1
    t = float(step)
    if kind == _ADAGRAD:
        _adagrad(hyper, t, lr, p, g, s0)
    elif kind == _RMSPROP:
        centered = flags[F_CENTERED] != 0
        _rmsprop(hyper, flags, lr, p, g, s0, s1, s2 if centered else s1)
    elif kind == _ADADELTA:
        _adadelta(hyper, lr, p, g, s0, s1)
    elif kind == _ADAM:
        _adam(hyper, flags, t, lr, p, g, s0, s1, s2)
    elif kind == _NADAM:
        mu_product = _nadam(hyper, flags, t, mu_product, lr, p, g, s0, s1)
    else:
        _radam(hyper, flags, t, lr, p, g, s0, s1)
    return step, mu_product


# ---------------------------------------------------------------------------------------------
# The shuffle (shuffle.hpp, specified in fastopt/reference/shuffle.py). Everything is uint64:
# Numba turns int64 op uint64 into float64, and uint32 arithmetic into uint64, so the 32-bit
# hash masks after each multiplication instead.

_U0, _U1, _U2 = np.uint64(0), np.uint64(1), np.uint64(2)
_U15, _U16, _U27, _U30, _U31 = (np.uint64(s) for s in (15, 16, 27, 30, 31))
_MASK32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)
_MAX_ROWS = 2**32 - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@_jit
def _splitmix64(x):
    z = x + _GOLDEN
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


@_jit
def _shuffled_order(n, seed, epoch, order):
    """``order[:n]`` = the rows of ``epoch`` in visiting order (shuffle.hpp shuffled_order)."""
    for i in range(n):
        order[i] = np.uint32(i)
    state = _splitmix64(_splitmix64(seed) + epoch)
    i = n - 1
    while i > 0:
        bound = np.uint64(i + 1)
        while True:
            u = _splitmix64(state) >> _U32
            state += _GOLDEN
            m = u * bound
            low = m & _MASK32
            if low >= bound or low >= ((_U1 << _U32) - bound) % bound:
                break
        j = np.int64(m >> _U32)
        t = order[i]
        order[i] = order[j]
        order[j] = t
        i -= 1


@_jit
def _shuffled_batch_order(n, batch, seed, epoch, order):
    """``order[:n]`` with shuffle="batches" (shuffle.hpp shuffled_batch_order)."""
    if n == 0:
        return
    blocks = (n + batch - 1) // batch
    block_order = order[n - blocks:]
    _shuffled_order(blocks, seed, epoch, block_order)
    pos = 0
    for k in range(blocks):
        first = np.int64(block_order[k]) * batch
        last = min(first + batch, n)
        for r in range(first, last):
            order[pos] = np.uint32(r)
            pos += 1


def shuffled_order(n, seed, epoch, batch_size=0):
    """The rows of ``epoch`` in visiting order, uint32: the compiled twin of
    :func:`fastopt.reference.shuffle.permutation`, or with ``batch_size`` > 0 of
    :func:`fastopt.reference.shuffle.batch_permutation` (shuffle="batches")."""
    if not 0 <= n <= _MAX_ROWS:
        raise ValueError(f"the shuffle handles up to {_MAX_ROWS} rows, got {n}")
    order = np.empty(n, dtype=np.uint32)
    if batch_size > 0:
        _shuffled_batch_order(np.int64(n), np.int64(batch_size), np.uint64(seed),
                              np.uint64(epoch), order)
    else:
        _shuffled_order(np.int64(n), np.uint64(seed), np.uint64(epoch), order)
    return order


def permutation(n, seed, epoch, positions=None):
    """Rows visited at ``positions`` (default all of ``0..n-1``) in ``epoch``, as int64."""
    order = shuffled_order(n, seed, epoch).astype(np.int64)
    return order if positions is None else order[np.asarray(positions, dtype=np.int64)]


# ---------------------------------------------------------------------------------------------
# Models (models.hpp). A model travels as an int64 array and a float64 array:

(M_MODEL, M_FEATURES, M_OUTPUTS, M_INTERCEPT, M_PENALTY, M_WEIGHTS, M_STANDARDIZE,
 M_FUSED) = range(8)
(P_ALPHA, P_L1) = range(2)  # alpha and the L1 share of the penalty
_LOOKAHEAD = 4    # rows prefetched ahead of use (models.hpp sum_rows)
_L2_AHEAD_BYTES = 48 * 1024  # and rows of this many bytes ahead into L2 (bindings/dataset.hpp)
_NO_ORDER = np.empty(0, dtype=np.uint32)  # the visiting order of an epoch in row order


def model_config(spec, has_weights, has_standardization, fused):
    ints = np.array([MODEL_CODES[spec.model], spec.n_features, spec.n_outputs,
                     int(spec.fit_intercept), PENALTY_CODES[spec.penalty], int(has_weights),
                     int(has_standardization), int(fused)], dtype=np.int64)
    l1 = float(l1_share(spec))
    return ints, np.array([float(spec.alpha), l1], dtype=np.float64)


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma``, ``std::fma``)."""
    if not all(t == types.float64 for t in (a, b, c)):
        return None

    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(double, [double, double, double]), "llvm.fma.f64")
        return builder.call(fma, args)

    return types.float64(types.float64, types.float64, types.float64), codegen


def _prefetch_intrinsic(locality, doc):
    """An intrinsic ``f(array, index)`` that asks the CPU to bring ``array[index]`` (1-d,
    C-contiguous) towards the core (``llvm.prefetch``, read, with the given locality), as
    ``__builtin_prefetch`` in models.hpp."""
    def prefetch(typingctx, array, index):
        if not (isinstance(array, types.Array) and array.ndim == 1
                and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            array_type = signature.args[0]
            data = context.make_array(array_type)(context, builder, args[0])
            pointer = cgutils.get_item_pointer(context, builder, array_type, data, [args[1]],
                                               wraparound=False)
            i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                "llvm.prefetch.p0")
            builder.call(function, [builder.bitcast(pointer, i8p), i32(0), i32(locality),
                                    i32(1)])
            return context.get_dummy_value()

        return types.void(array, index), codegen

    prefetch.__doc__ = doc
    return intrinsic(prefetch)


_prefetch = _prefetch_intrinsic(3, "Into L1 (prefetcht0).")
_prefetch_l2 = _prefetch_intrinsic(2, "Into L2 (prefetcht1).")


@_jit
def _prefetch_row(flat, r, d):
    """Every cache line of row ``r`` of X (given as the flat array ``flat``), into L1."""
    step = 64 // flat.itemsize
    start = r * d
    for offset in range(0, d, step):
        _prefetch(flat, start + offset)


@_jit
def _prefetch_row_l2(flat, r, d):
    """Every cache line of row ``r`` of X, into L2 only."""
    step = 64 // flat.itemsize
    start = r * d
    for offset in range(0, d, step):
        _prefetch_l2(flat, start + offset)


@_jit
def _madd(a, b, c, fused):
    """models.hpp ``madd``: fused in the C++ build for AVX2 + FMA, separate in the baseline."""
    return _fma(a, b, c) if fused else a * b + c


# Indices below are cast to unsigned where they are offsets: Numba then skips its check for
# negative indices, which would otherwise stop LLVM from vectorising the gradient loop.

@_jit
def _dot(w, wo, x, xo, d, fused):
    """sum_j w[wo + j] * x[xo + j] in float64 (models.hpp ``dot``): sixteen lanes (lane l takes
    j = l mod 16), the tail, then lanes l and l + 8 added and the eight sums combined in a fixed
    order."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = 0.0
    j = 0
    while j + 16 <= d:
        a = wo + j
        b = xo + j
        a0 = _madd(w[np.uint64(a)], np.float64(x[np.uint64(b)]), a0, fused)
        a1 = _madd(w[np.uint64(a + 1)], np.float64(x[np.uint64(b + 1)]), a1, fused)
        a2 = _madd(w[np.uint64(a + 2)], np.float64(x[np.uint64(b + 2)]), a2, fused)
        a3 = _madd(w[np.uint64(a + 3)], np.float64(x[np.uint64(b + 3)]), a3, fused)
        a4 = _madd(w[np.uint64(a + 4)], np.float64(x[np.uint64(b + 4)]), a4, fused)
        a5 = _madd(w[np.uint64(a + 5)], np.float64(x[np.uint64(b + 5)]), a5, fused)
        a6 = _madd(w[np.uint64(a + 6)], np.float64(x[np.uint64(b + 6)]), a6, fused)
        a7 = _madd(w[np.uint64(a + 7)], np.float64(x[np.uint64(b + 7)]), a7, fused)
        a8 = _madd(w[np.uint64(a + 8)], np.float64(x[np.uint64(b + 8)]), a8, fused)
        a9 = _madd(w[np.uint64(a + 9)], np.float64(x[np.uint64(b + 9)]), a9, fused)
        a10 = _madd(w[np.uint64(a + 10)], np.float64(x[np.uint64(b + 10)]), a10, fused)
        a11 = _madd(w[np.uint64(a + 11)], np.float64(x[np.uint64(b + 11)]), a11, fused)
        a12 = _madd(w[np.uint64(a + 12)], np.float64(x[np.uint64(b + 12)]), a12, fused)
        a13 = _madd(w[np.uint64(a + 13)], np.float64(x[np.uint64(b + 13)]), a13, fused)
        a14 = _madd(w[np.uint64(a + 14)], np.float64(x[np.uint64(b + 14)]), a14, fused)
        a15 = _madd(w[np.uint64(a + 15)], np.float64(x[np.uint64(b + 15)]), a15, fused)
        j += 16
    tail = 0.0
    while j < d:
        tail = _madd(w[np.uint64(wo + j)], np.float64(x[np.uint64(xo + j)]), tail, fused)
        j += 1
    a0 += a8
    a1 += a9
    a2 += a10
    a3 += a11
    a4 += a12
    a5 += a13
    a6 += a14
    a7 += a15
    return (((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))) + tail


@_jit
def _axpy(a, x, xo, g, go, d, fused):
    """g[go + j] += a * x[xo + j] (models.hpp ``axpy``)."""
    for j in range(d):
        gj = np.uint64(go + j)
        g[gj] = _madd(a, np.float64(x[np.uint64(xo + j)]), g[gj], fused)


# The logistic loss's exp and log1p, written as csrc/include/fastopt/models.hpp writes them
# (exp_nonpositive, log1p_unit): the same operations in the same order, so the bits agree.
_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SHIFTER = 6755399441055744.0
_EXP_LOWEST = -750.0
_SQRT2 = 1.4142135623730951
_TWO_POW_MINUS_1000 = 9.332636185032189e-302
# Lowest power first, evaluated by Estrin's scheme in the order models.hpp uses.
_EXP_C = tuple(1.0 / math.factorial(i) for i in range(14))
_LOG_C = tuple(2.0 / (2 * i + 1) for i in range(1, 11))


@_jit
def _exp_nonpositive(x):
    """exp(x) for x <= 0."""
    x = _EXP_LOWEST if x < _EXP_LOWEST else x
    if x != x:  # NaN: int(k) below would be undefined (models.hpp works on k's bits instead)
        return x
    t = x * _INV_LN2 + _SHIFTER
    k = t - _SHIFTER
    r = (x - k * _LN2_HI) - k * _LN2_LO
    c = _EXP_C
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    s0 = r + (c[2] + c[3] * r) * r2
    s1 = (c[4] + c[5] * r) + (c[6] + c[7] * r) * r2
    s2 = (c[8] + c[9] * r) + (c[10] + c[11] * r) * r2
    s3 = c[12] + c[13] * r
    p = c[0] + ((s0 + s1 * r4) + (s2 + s3 * r4) * r8)
    return p * math.ldexp(1.0, int(k) + 1000) * _TWO_POW_MINUS_1000


@_jit
def _log1p_unit(e):
    """log1p(e) for e in [0, 1]."""
    u = 1.0 + e
    big = u > _SQRT2
    m = u * 0.5 if big else u
    k = 1.0 if big else 0.0
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    c = _LOG_C
    z2 = z * z
    z4 = z2 * z2
    z8 = z4 * z4
    b0 = (c[0] + c[1] * z) + (c[2] + c[3] * z) * z2
    b1 = (c[4] + c[5] * z) + (c[6] + c[7] * z) * z2
    b2 = c[8] + c[9] * z
    R = ((b0 + b1 * z4) + b2 * z8) * z
    hfsq = 0.5 * f * f
    rounding = (e - (u - 1.0)) / u
    return k * _LN2_HI + ((f - (hfsq - s * (hfsq + R))) + (k * _LN2_LO + rounding))


@_jit
def _loss_and_residual(model, f, k, y):
    """Loss of one row; its residual dl/df replaces the scores in ``f``."""
    if model == 0:
        r = f[0] - y
        f[0] = r
        return 0.5 * r * r
    if model == 1:
        z = f[0]
        e = _exp_nonpositive(-abs(z))
        top = 0.0 if z < 0.0 else z  # std::max(z, 0.0)
        loss = top + _log1p_unit(e) - y * z
        sigmoid = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
        f[0] = sigmoid - y
        return loss
    label = np.int64(y)
    top = f[0]
    for c in range(1, k):
        top = f[c] if top < f[c] else top  # std::max(top, f[c])
    f_label = f[label]
    total = 0.0
    for c in range(k):
        f[c] = np.exp(f[c] - top)
        total += f[c]
    lse = top + np.log(total)
    for c in range(k):
        f[c] = f[c] / total
    f[label] -= 1.0
    return lse - f_label


@_jit
def _penalty_value(mi, mf, w):
    """alpha * P(W) for the coefficient block of ``w`` (float64)."""
    alpha = mf[P_ALPHA]
    if mi[M_PENALTY] == 0 or alpha == 0.0:
        return 0.0
    size = mi[M_OUTPUTS] * mi[M_FEATURES]
    l1 = mf[P_L1]
    abs_sum = 0.0
    sq_sum = 0.0
    for j in range(size):
        abs_sum += abs(w[j])
        sq_sum += w[j] * w[j]
    return alpha * (l1 * abs_sum + 0.5 * (1 - l1) * sq_sum)


@_jit
def _add_penalty_gradient(mi, mf, w, grad):
    alpha = mf[P_ALPHA]
    if mi[M_PENALTY] == 0 or alpha == 0.0:
        return
    size = mi[M_OUTPUTS] * mi[M_FEATURES]
    l1 = mf[P_L1]
    l2 = 1 - l1
    for j in range(size):
        sign = 1.0 if w[j] > 0 else (-1.0 if w[j] < 0 else 0.0)
        grad[j] = grad[j] + alpha * (l1 * sign + l2 * w[j])


@_jit
def _sparse_centering(mi, mean, inv_std, w, center):
    """center_c = sum_j w_cj * mean_j * inv_std_j (models.hpp sparse_centering)."""
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    fused = mi[M_FUSED] != 0
    for c in range(k):
        total = 0.0
        for j in range(d):
            total = _madd(w[c * d + j], mean[j] * inv_std[j], total, fused)
        center[c] = total


@_jit
def _sparse_correction(mi, mean, inv_std, grad, rsum):
    """grad_cj -= mean_j * inv_std_j * sum_i r_ic (models.hpp finish_gradient)."""
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    for c in range(k):
        for j in range(d):
            grad[c * d + j] = grad[c * d + j] - mean[j] * inv_std[j] * rsum[c]


@_jit
def _sparse_row_scores(r, inv_std, mi, w, f, csr):
    """x~_r . W_c (+ b_c) of CSR row ``r`` into ``f`` (the scores of models.hpp
    accumulate_sparse_row and of objective.hpp row_scores)."""
    values, indptr, indices, center = csr
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    intercept = mi[M_INTERCEPT] != 0
    standardize = mi[M_STANDARDIZE] != 0
    fused = mi[M_FUSED] != 0
    begin, end = np.int64(indptr[r]), np.int64(indptr[r + 1])
    for c in range(k):
        score = 0.0
        for e in range(begin, end):
            j = np.int64(indices[e])
            x = np.float64(values[e]) * inv_std[j] if standardize else np.float64(values[e])
            score = _madd(w[c * d + j], x, score, fused)
        if standardize:
            score = score - center[c]
        f[c] = score + w[k * d + c] if intercept else score


@_jit
def _accumulate_sparse_row(r, y, sw, mean, inv_std, mi, w, grad, f, csr, rsum):
    """models.hpp accumulate_sparse_row; returns s_r * l_r."""
    values, indptr, indices, _ = csr
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    intercept = mi[M_INTERCEPT] != 0
    standardize = mi[M_STANDARDIZE] != 0
    fused = mi[M_FUSED] != 0
    begin, end = np.int64(indptr[r]), np.int64(indptr[r + 1])
    _sparse_row_scores(r, inv_std, mi, w, f, csr)
    loss = _loss_and_residual(mi[M_MODEL], f, k, y[r])
    weight = sw[r] if mi[M_WEIGHTS] != 0 else 1.0
    for c in range(k):
        rc = f[c] * weight
        for e in range(begin, end):
            j = np.int64(indices[e])
            x = np.float64(values[e]) * inv_std[j] if standardize else np.float64(values[e])
            grad[c * d + j] = _madd(rc, x, grad[c * d + j], fused)
        if intercept:
            grad[k * d + c] += rc
        if standardize:
            rsum[c] += rc
    return weight * loss


def _dense_rows_one_output(fused):
    """_accumulate_rows for dense, unstandardised X and one output (models.hpp
    sum_dense_rows_one_output): the same operations, with fewer instructions per row. ``fused``
    is fixed when the function is compiled (a closure constant), so that the multiply-adds of
    the dot product and the gradient update carry no branch."""
    @_jit
    def madd(a, b, c):
        return _fma(a, b, c) if fused else a * b + c

    @_jit
    def accumulate(flat, y, sw, mi, w, grad, f, order, shuffled, begin, end, loss_sum, far):
        n = y.size
        d = mi[M_FEATURES]
        model = mi[M_MODEL]
        intercept = mi[M_INTERCEPT] != 0
        weighted = mi[M_WEIGHTS] != 0
        for pos in range(begin, end):
            if shuffled:
                if pos + far < n:
                    _prefetch_row_l2(flat, np.int64(order[pos + far]), d)
                if pos + _LOOKAHEAD < n:
                    ahead = np.int64(order[pos + _LOOKAHEAD])
                    _prefetch_row(flat, ahead, d)
                    _prefetch(y, ahead)
                    if weighted:
                        _prefetch(sw, ahead)
                r = np.int64(order[pos])
            else:
                r = pos
            xo = r * d
            # _dot, unrolled the same way (sixteen lanes, the tail, a fixed sum order)
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
            a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = 0.0
            j = 0
            while j + 16 <= d:
                b = xo + j
                a0 = madd(w[j], np.float64(flat[np.uint64(b)]), a0)
                a1 = madd(w[j + 1], np.float64(flat[np.uint64(b + 1)]), a1)
                a2 = madd(w[j + 2], np.float64(flat[np.uint64(b + 2)]), a2)
                a3 = madd(w[j + 3], np.float64(flat[np.uint64(b + 3)]), a3)
                a4 = madd(w[j + 4], np.float64(flat[np.uint64(b + 4)]), a4)
                a5 = madd(w[j + 5], np.float64(flat[np.uint64(b + 5)]), a5)
                a6 = madd(w[j + 6], np.float64(flat[np.uint64(b + 6)]), a6)
                a7 = madd(w[j + 7], np.float64(flat[np.uint64(b + 7)]), a7)
                a8 = madd(w[j + 8], np.float64(flat[np.uint64(b + 8)]), a8)
                a9 = madd(w[j + 9], np.float64(flat[np.uint64(b + 9)]), a9)
                a10 = madd(w[j + 10], np.float64(flat[np.uint64(b + 10)]), a10)
                a11 = madd(w[j + 11], np.float64(flat[np.uint64(b + 11)]), a11)
                a12 = madd(w[j + 12], np.float64(flat[np.uint64(b + 12)]), a12)
                a13 = madd(w[j + 13], np.float64(flat[np.uint64(b + 13)]), a13)
                a14 = madd(w[j + 14], np.float64(flat[np.uint64(b + 14)]), a14)
                a15 = madd(w[j + 15], np.float64(flat[np.uint64(b + 15)]), a15)
                j += 16
            tail = 0.0
            while j < d:
                tail = madd(w[j], np.float64(flat[np.uint64(xo + j)]), tail)
                j += 1
            score = ((((a0 + a8) + (a4 + a12)) + ((a1 + a9) + (a5 + a13)))
                     + (((a2 + a10) + (a6 + a14)) + ((a3 + a11) + (a7 + a15)))) + tail
            f[0] = score + w[d] if intercept else score
            loss = _loss_and_residual(model, f, 1, y[r])
            weight = sw[r] if weighted else 1.0
            loss_sum += weight * loss
            rc = f[0] * weight
            for j in range(d):
                grad[j] = madd(rc, np.float64(flat[np.uint64(xo + j)]), grad[j])
            if intercept:
                grad[d] += rc
        return loss_sum

    return accumulate


_dense_rows_one_output_fused = _dense_rows_one_output(True)
_dense_rows_one_output_plain = _dense_rows_one_output(False)


@_jit
def _accumulate_rows(X, y, sw, mean, inv_std, mi, w, grad, f, xs, order, shuffled, begin, end,
                     loss_sum, csr, rsum):
    """Rows at positions ``begin..end-1`` of the epoch into the gradient sum ``grad`` and the
    weighted loss sum: the row loop of models.hpp ``batch_gradient``, resumable at any row
    with the same order of operations; ``order``: the epoch's rows when ``shuffled``. A sparse X
    comes as ``csr`` (values, indptr, indices, centring terms; ``X`` is then an empty
    (n, 0) array) and adds its residual sums to ``rsum``. Returns the loss sum."""
    n = X.shape[0]
    sparse = csr[1].size > 0
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    model = mi[M_MODEL]
    intercept = mi[M_INTERCEPT] != 0
    weighted = mi[M_WEIGHTS] != 0
    standardize = mi[M_STANDARDIZE] != 0
    fused = mi[M_FUSED] != 0
    flat = X.reshape(X.size)
    far = min(max(_L2_AHEAD_BYTES // max(d * flat.itemsize, 1), 1), 4096)
    if not sparse and k == 1 and not standardize:
        if fused:
            return _dense_rows_one_output_fused(flat, y, sw, mi, w, grad, f, order, shuffled,
                                                begin, end, loss_sum, far)
        return _dense_rows_one_output_plain(flat, y, sw, mi, w, grad, f, order, shuffled, begin,
                                            end, loss_sum, far)
    for pos in range(begin, end):
        if shuffled:
            if not sparse and pos + far < n:
                _prefetch_row_l2(flat, np.int64(order[pos + far]), d)
            if pos + _LOOKAHEAD < n:
                ahead = np.int64(order[pos + _LOOKAHEAD])
                if not sparse:
                    _prefetch_row(flat, ahead, d)
                _prefetch(y, ahead)
                if weighted:
                    _prefetch(sw, ahead)
            r = np.int64(order[pos])
        else:
            r = pos
        if sparse:
            loss_sum += _accumulate_sparse_row(r, y, sw, mean, inv_std, mi, w, grad, f, csr,
                                               rsum)
            continue
        xo = r * d
        zero = np.int64(0)  # not the literal 0: one compiled _dot and _axpy serve both calls
        if standardize:
            for j in range(d):
                xs[j] = (np.float64(flat[np.uint64(xo + j)]) - mean[j]) * inv_std[j]
        for c in range(k):
            if standardize:
                score = _dot(w, c * d, xs, zero, d, fused)
            else:
                score = _dot(w, c * d, flat, xo, d, fused)
            f[c] = score + w[k * d + c] if intercept else score
        loss = _loss_and_residual(model, f, k, y[r])
        weight = sw[r] if weighted else 1.0
        loss_sum += weight * loss
        for c in range(k):
            rc = f[c] * weight
            if standardize:
                _axpy(rc, xs, zero, grad, c * d, d, fused)
            else:
                _axpy(rc, flat, xo, grad, c * d, d, fused)
            if intercept:
                grad[k * d + c] += rc
    return loss_sum


@_jit
def _load_params(w, out):
    for j in range(w.size):
        out[j] = np.float64(w[j])


@_jit
def _all_finite(v):
    ok = True
    for j in range(v.size):
        ok &= np.isfinite(v[j])
    return ok


# ---------------------------------------------------------------------------------------------
# The epoch (epoch.hpp run_epoch), resumable. `cursor` (int64): update, row within it, status
# (0 ok, 1 non-finite), failed update, updates done, optimizer step. `sums` (float64):
# epoch objective sum, the current minibatch's loss sum, NAdam's mu_product. `order` (uint32):
# the epoch's rows in visiting order when shuffled.

C_STEP, C_ROW, C_STATUS, C_FAILED, C_DONE, C_OPT_STEP, C_STAMP = range(7)
S_EPOCH, S_BATCH, S_MU, S_ABS, S_SQ, S_SCALE = range(6)


@_jit
def _epoch_kernel(X, y, sw, mean, inv_std, mi, mf, w, s0, s1, s2, flags, hyper, lrs,
                  batch, shuffled, order, wsp, grad, grad_t, f, xs, cursor, sums, budget,
                  lane_grad, lane_loss, csr, lane_rsum, rsum):
    """Continue the epoch described by ``cursor`` for about ``budget`` multiply-adds. Returns
    True when the epoch is over (completed, or stopped at a non-finite update).

    Every minibatch is summed in ``lanes = lane_grad.shape[0]`` contiguous row ranges, each on
    its own, then added in lane order: epoch.hpp ``run_epoch_lanes`` with its threads run one
    after another (the same sums, so the same bits)."""
    n = X.shape[0]
    p = w.size
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    lanes = lane_grad.shape[0]
    sparse_standardized = csr[1].size > 0 and mi[M_STANDARDIZE] != 0
    steps = (n + batch - 1) // batch
    per_row = d * (2 * k + 1) + 1
    work = 0
    step, row = cursor[C_STEP], cursor[C_ROW]
    _load_params(w, wsp)
    while step < steps:
        first = step * batch
        m = min(batch, n - first)
        if row == 0:
            lane_grad[:, :] = 0.0
            lane_loss[:] = 0.0
            lane_rsum[:, :] = 0.0
            if sparse_standardized:
                _sparse_centering(mi, mean, inv_std, wsp, csr[3])
        while row < m:
            lane = 0
            while m * (lane + 1) // lanes <= row:  # the lane holding this row
                lane += 1
            lane_end = m * (lane + 1) // lanes
            count = min(lane_end - row, max(1, (budget - work) // per_row))
            lane_loss[lane] = _accumulate_rows(
                X, y, sw, mean, inv_std, mi, wsp, lane_grad[lane], f, xs, order, shuffled,
                first + row, first + row + count, lane_loss[lane], csr, lane_rsum[lane])
            row += count
            work += count * per_row
            if row < m and work >= budget:  # out of budget inside the minibatch: come back
                cursor[C_STEP], cursor[C_ROW] = step, row
                return False
        loss = lane_loss[0]
        for j in range(p):
            grad[j] = lane_grad[0, j]
        for c in range(k):
            rsum[c] = lane_rsum[0, c]
        for lane in range(1, lanes):
            loss += lane_loss[lane]
            for j in range(p):
                grad[j] += lane_grad[lane, j]
            for c in range(k):
                rsum[c] += lane_rsum[lane, c]
        if sparse_standardized:
            _sparse_correction(mi, mean, inv_std, grad, rsum)
        for j in range(p):
            grad[j] = grad[j] / np.float64(m)
        _add_penalty_gradient(mi, mf, wsp, grad)
        value = loss + _penalty_value(mi, mf, wsp) * np.float64(m)
        if not np.isfinite(value) or not _all_finite(grad):
            cursor[C_STATUS], cursor[C_FAILED] = 1, step
            return True
        for j in range(p):
            grad_t[j] = grad[j]
        opt_step, mu_product = _optimizer_step(flags, hyper, cursor[C_OPT_STEP], sums[S_MU],
                                               lrs[step], w, grad_t, s0, s1, s2)
        cursor[C_OPT_STEP], sums[S_MU] = opt_step, mu_product
        _load_params(w, wsp)
        sums[S_EPOCH] += value
        step += 1
        row = 0
        cursor[C_STEP], cursor[C_ROW], cursor[C_DONE] = step, 0, step
        work += 10 * p
        if work >= budget and step < steps:
            return False
    if not _all_finite(w):
        cursor[C_STATUS], cursor[C_FAILED] = 1, steps - 1
    return True


@_jit
def _gather(source, coords, out, count):
    for i in range(count):
        out[i] = source[coords[i]]


@_jit
def _scaled_sgd(flags, hyper, mi, mf):
    """epoch.hpp ``scaled_sgd``: plain SGD with an L2 penalty, trained lazily as w = scale * u."""
    return (flags[F_KIND] == _SGD and hyper[H_MOM] == 0.0 and hyper[H_WD] == 0.0
            and mi[M_PENALTY] != 0 and mf[P_ALPHA] != 0.0 and mf[P_L1] == 0.0)


@_jit
def _unscale(w, wsp, count, sums):
    """Scaled SGD: fold the scale into the first ``count`` parameters (epoch.hpp ``unscale``)."""
    scale = sums[S_SCALE]
    if scale == 1.0:
        return
    T = w.dtype.type
    sq = 0.0
    for j in range(count):
        w[j] = T(scale * np.float64(w[j]))
        wsp[j] = np.float64(w[j])
        sq += wsp[j] * wsp[j]
    sums[S_SQ] = sq
    sums[S_SCALE] = 1.0


def needs_exact_epoch(flags, hyper, mi, mf, lrs):
    """epoch.hpp ``needs_exact_epoch``: scaled SGD with some lr * alpha >= 1 runs exact."""
    return bool(_scaled_sgd(flags, hyper, mi, mf)) and not np.all(lrs * mf[P_ALPHA] < 1.0)


@_jit
def _lazy_epoch_kernel(y, sw, mean, inv_std, mi, mf, w, s0, s1, s2, states, flags, hyper, lrs,
                       batch, shuffled, order, wsp, grad, f, cursor, sums, budget, csr, mark,
                       active, coords, pc, gc, c0, c1, c2):
    """epoch.hpp ``run_epoch_lazy``, resumable between updates: continue for about
    ``budget`` multiply-adds; True when the epoch is over."""
    values, indptr, indices, center = csr
    n = indptr.size - 1
    p = w.size
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    l1 = mf[P_L1]
    l2 = 1.0 - l1
    alpha = mf[P_ALPHA]
    penalized = mi[M_PENALTY] != 0 and alpha != 0.0
    scaled = _scaled_sgd(flags, hyper, mi, mf)
    T = w.dtype.type
    intercept = mi[M_INTERCEPT] != 0
    steps = (n + batch - 1) // batch
    step = cursor[C_STEP]
    _load_params(w, wsp)
    if step == 0:
        grad[:] = 0.0
        sums[S_ABS] = 0.0
        sums[S_SQ] = 0.0
        for j in range(k * d):
            sums[S_ABS] += abs(wsp[j])
            sums[S_SQ] += wsp[j] * wsp[j]
    rsum = np.zeros(k)
    work = 0
    while step < steps:
        first = step * batch
        m = min(batch, n - first)
        shrink = 1.0 - lrs[step] * alpha
        if scaled and sums[S_SCALE] * shrink < 1e-9:
            _unscale(w, wsp, k * d, sums)
        scale = sums[S_SCALE]
        stamp = cursor[C_STAMP] + 1
        if stamp > 0xFFFFFFFF:
            mark[:] = 0
            stamp = 1
        cursor[C_STAMP] = stamp
        count = 0
        for pos in range(first, first + m):
            r = np.int64(order[pos]) if shuffled else pos
            for e in range(indptr[r], indptr[r + 1]):
                j = indices[e]
                if mark[j] != stamp:
                    mark[j] = stamp
                    active[count] = j
                    count += 1
        a = 0
        for c in range(k):
            for i in range(count):
                coords[a] = c * d + active[i]
                a += 1
        if intercept:
            for c in range(k):
                coords[a] = k * d + c
                a += 1
        if scaled:  # the scores see w = scale * u
            for i in range(k * count):
                wsp[coords[i]] = scale * np.float64(w[coords[i]])
        loss_sum = 0.0
        for pos in range(first, first + m):
            r = np.int64(order[pos]) if shuffled else pos
            loss_sum += _accumulate_sparse_row(r, y, sw, mean, inv_std, mi, wsp, grad, f, csr,
                                               rsum)
        if scaled:
            penalty = alpha * (0.5 * (scale * scale * sums[S_SQ]))
        else:
            penalty = alpha * (l1 * sums[S_ABS] + 0.5 * l2 * sums[S_SQ]) if penalized else 0.0
        objective = loss_sum + penalty * np.float64(m)
        finite = np.isfinite(objective)
        for i in range(a):
            q = coords[i]
            g = grad[q] / np.float64(m)
            if penalized and not scaled and q < k * d:
                v = wsp[q]
                sign = 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)
                g = g + alpha * (l1 * sign + l2 * v)
            finite = finite and np.isfinite(g)
            gc[i] = g
            pc[i] = w[q]
            grad[q] = g if scaled else 0.0  # scaled SGD reads g at full precision below
        if states > 0:
            _gather(s0, coords, c0, a)
        if states > 1:
            _gather(s1, coords, c1, a)
        if states > 2:
            _gather(s2, coords, c2, a)
        if not finite:
            if scaled:
                _clear(grad, coords, a)
            _unscale(w, wsp, k * d, sums)
            cursor[C_STATUS], cursor[C_FAILED] = 1, step
            return True
        next_scale = scale * shrink
        if scaled:  # epoch.hpp: u <- u - lr g / scale' on the active coefficients
            lr = lrs[step]
            neg_lr = T(-lr)
            for i in range(a):
                if i < k * count:
                    pc[i] = T(np.float64(pc[i]) - lr * grad[coords[i]] / next_scale)
                else:
                    pc[i] = pc[i] + neg_lr * gc[i]
            cursor[C_OPT_STEP] += 1
            _clear(grad, coords, a)
        else:
            opt_step, mu_product = _optimizer_step(flags, hyper, cursor[C_OPT_STEP],
                                                   sums[S_MU], lrs[step], pc[:a], gc[:a],
                                                   c0[:a], c1[:a], c2[:a])
            cursor[C_OPT_STEP], sums[S_MU] = opt_step, mu_product
        if not _all_finite(pc[:a]):
            _unscale(w, wsp, k * d, sums)
            cursor[C_STATUS], cursor[C_FAILED] = 1, step
            return True
        for i in range(a):
            q = coords[i]
            before = np.float64(w[q]) if scaled else wsp[q]
            after = np.float64(pc[i])
            if q < k * d:
                sums[S_ABS] += abs(after) - abs(before)
                sums[S_SQ] += after * after - before * before
            w[q] = pc[i]
            wsp[q] = after
            if states > 0:
                s0[q] = c0[i]
            if states > 1:
                s1[q] = c1[i]
            if states > 2:
                s2[q] = c2[i]
        if scaled:
            sums[S_SCALE] = next_scale
        sums[S_EPOCH] += objective
        step += 1
        cursor[C_STEP], cursor[C_DONE] = step, step
        work += m * (count + 1) * (2 * k + 1) + 10 * a
        if work >= budget and step < steps:
            return False
    _unscale(w, wsp, k * d, sums)
    return True


@_jit
def _clear(grad, coords, count):
    for i in range(count):
        grad[coords[i]] = 0.0


def _block_rows(n, p, k, entries):
    """Rows per block of the full passes (objective.hpp ``objective_block_rows``)."""
    per_row = max(1, -(-entries // max(n, 1)))
    return max(2048, -(-(64 * p) // (k * per_row)))


@_jit
def _dots4(w, wo, x, xo, d, fused):
    """objective.hpp ``output_dots`` for one row and output: four lanes (j mod 4) summed as
    (l0 + l2) + (l1 + l3), then the tail in order."""
    a0 = a1 = a2 = a3 = 0.0
    j = 0
    while j + 4 <= d:
        a = wo + j
        b = xo + j
        a0 = _madd(w[np.uint64(a)], np.float64(x[np.uint64(b)]), a0, fused)
        a1 = _madd(w[np.uint64(a + 1)], np.float64(x[np.uint64(b + 1)]), a1, fused)
        a2 = _madd(w[np.uint64(a + 2)], np.float64(x[np.uint64(b + 2)]), a2, fused)
        a3 = _madd(w[np.uint64(a + 3)], np.float64(x[np.uint64(b + 3)]), a3, fused)
        j += 4
    tail = 0.0
    while j < d:
        tail = _madd(w[np.uint64(wo + j)], np.float64(x[np.uint64(xo + j)]), tail, fused)
        j += 1
    return ((a0 + a2) + (a1 + a3)) + tail


@_jit
def _dense_rows_outputs(X, y, sw, mean, inv_std, mi, w, grad, f, xs, begin, end, loss_sum):
    """objective.hpp ``sum_dense_rows_outputs`` (dense X, several outputs), row by row: the
    C++ takes two rows at a time, but every sum runs in the same order."""
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    intercept = mi[M_INTERCEPT] != 0
    standardize = mi[M_STANDARDIZE] != 0
    fused = mi[M_FUSED] != 0
    flat = X.reshape(X.size)
    zero = np.int64(0)
    for r in range(begin, end):
        xo = r * d
        if standardize:
            for j in range(d):
                xs[j] = (np.float64(flat[np.uint64(xo + j)]) - mean[j]) * inv_std[j]
        for c in range(k):
            if standardize:
                score = _dots4(w, c * d, xs, zero, d, fused)
            else:
                score = _dots4(w, c * d, flat, xo, d, fused)
            f[c] = score + w[k * d + c] if intercept else score
        # objective.hpp softmax_losses: loss_and_residual with _exp_nonpositive
        label = np.int64(y[r])
        top = f[0]
        for c in range(1, k):
            top = f[c] if top < f[c] else top
        f_label = f[label]
        total = 0.0
        for c in range(k):
            f[c] = _exp_nonpositive(f[c] - top)
            total += f[c]
        loss = (top + np.log(total)) - f_label
        for c in range(k):
            f[c] = f[c] / total
        f[label] -= 1.0
        weight = sw[r] if mi[M_WEIGHTS] != 0 else 1.0
        for c in range(k):
            f[c] = f[c] * weight
        loss_sum += weight * loss
        for c in range(k):
            if standardize:
                _axpy(f[c], xs, zero, grad, c * d, d, fused)
            else:
                _axpy(f[c], flat, xo, grad, c * d, d, fused)
        if intercept:
            for c in range(k):
                grad[k * d + c] += f[c]
    return loss_sum


@_jit
def _objective_kernel(X, y, sw, mean, inv_std, mi, mf, w, wsp, grad, f, xs, order, cursor,
                      sums, budget, csr, rsum, block, block_grad, block_rsum):
    """Continue the full pass of objective.hpp ``full_objective`` from row ``cursor[C_ROW]``
    (a block's first): the rows in blocks of ``block``, each summed from zero into
    ``block_grad``, ``block_rsum`` and its loss, then added to ``grad``, ``rsum`` and
    ``sums[S_BATCH]`` in block order (the C++ threads' sums, bit for bit). True when done, with
    L(w) in ``sums[S_EPOCH]`` and its gradient in ``grad``."""
    n = X.shape[0]
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    row = cursor[C_ROW]
    _load_params(w, wsp)
    sparse_standardized = csr[1].size > 0 and mi[M_STANDARDIZE] != 0
    if row == 0:
        grad[:] = 0.0
        sums[S_BATCH] = 0.0
        rsum[:] = 0.0
        if sparse_standardized:
            _sparse_centering(mi, mean, inv_std, wsp, csr[3])
    per_row = d * (2 * k + 1) + 1
    work = 0
    while row < n and work < budget:
        end = min(n, row + block)
        block_grad[:] = 0.0
        block_rsum[:] = 0.0
        if csr[1].size == 0 and k > 1:
            loss = _dense_rows_outputs(X, y, sw, mean, inv_std, mi, wsp, block_grad, f, xs,
                                       row, end, 0.0)
        else:
            loss = _accumulate_rows(X, y, sw, mean, inv_std, mi, wsp, block_grad, f, xs,
                                    order, False, row, end, 0.0, csr, block_rsum)
        sums[S_BATCH] += loss
        for j in range(grad.size):
            grad[j] += block_grad[j]
        for c in range(k):
            rsum[c] += block_rsum[c]
        work += (end - row) * per_row
        row = end
    cursor[C_ROW] = row
    if row < n:
        return False
    if sparse_standardized:
        _sparse_correction(mi, mean, inv_std, grad, rsum)
    for j in range(grad.size):
        grad[j] = grad[j] / np.float64(n)
    _add_penalty_gradient(mi, mf, wsp, grad)
    sums[S_EPOCH] = sums[S_BATCH] / np.float64(n) + _penalty_value(mi, mf, wsp)
    return True


@_jit
def _row_scores(r, flat, mean, inv_std, mi, w, f, xs, csr):
    """objective.hpp ``row_scores``: x~_r . W_c (+ b_c) into ``f``; for dense X the row the
    sums read is ``xs`` when standardising, else ``flat`` from ``r * d``."""
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    intercept = mi[M_INTERCEPT] != 0
    standardize = mi[M_STANDARDIZE] != 0
    fused = mi[M_FUSED] != 0
    if csr[1].size > 0:
        _sparse_row_scores(r, inv_std, mi, w, f, csr)
        return
    xo = r * d
    zero = np.int64(0)
    if standardize:
        for j in range(d):
            xs[j] = (np.float64(flat[np.uint64(xo + j)]) - mean[j]) * inv_std[j]
    for c in range(k):  # several outputs: objective.hpp output_dots' order (_dots4)
        if standardize:
            score = (_dots4(w, c * d, xs, zero, d, fused) if k > 1
                     else _dot(w, c * d, xs, zero, d, fused))
        else:
            score = (_dots4(w, c * d, flat, xo, d, fused) if k > 1
                     else _dot(w, c * d, flat, xo, d, fused))
        f[c] = score + w[k * d + c] if intercept else score


@_jit
def _hessian_curvature(X, sw, mean, inv_std, mi, w, f, xs, csr, out):
    """objective.hpp ``hessian_curvature``: per row, s_i p_i (1 - p_i) (logistic) or the
    class probabilities (softmax) at ``w`` (float64) into ``out``."""
    n = X.shape[0]
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    width = 1 if mi[M_MODEL] == 1 else k
    flat = X.reshape(X.size)
    if csr[1].size > 0 and mi[M_STANDARDIZE] != 0:
        _sparse_centering(mi, mean, inv_std, w, csr[3])
    for r in range(n):
        _row_scores(r, flat, mean, inv_std, mi, w, f, xs, csr)
        weight = sw[r] if mi[M_WEIGHTS] != 0 else 1.0
        o = r * width
        if mi[M_MODEL] == 1:
            e = np.exp(-abs(f[0]))
            prob = 1.0 / (1.0 + e) if f[0] >= 0 else e / (1.0 + e)
            out[o] = weight * (prob * (1.0 - prob))
        else:
            top = f[0]
            for c in range(1, k):
                top = f[c] if top < f[c] else top
            total = 0.0
            for c in range(k):
                out[o + c] = np.exp(f[c] - top)
                total += out[o + c]
            for c in range(k):
                out[o + c] = out[o + c] / total


@_jit
def _hessian_product(X, sw, mean, inv_std, mi, mf, curvature, v, out, f, xs, csr, block,
                     lane, total):
    """objective.hpp ``hessian_product``: H v into ``out``, the rows in blocks of ``block``
    summed into ``lane`` (p + k) and added to ``total`` in block order."""
    n = X.shape[0]
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    p = out.size
    model = mi[M_MODEL]
    intercept = mi[M_INTERCEPT] != 0
    standardize = mi[M_STANDARDIZE] != 0
    fused = mi[M_FUSED] != 0
    sparse = csr[1].size > 0
    values, indptr, indices, center = csr
    flat = X.reshape(X.size)
    zero = np.int64(0)
    if sparse and standardize:
        _sparse_centering(mi, mean, inv_std, v, center)
    total[:] = 0.0
    for lo in range(0, n, block):
        lane[:] = 0.0
        for r in range(lo, min(n, lo + block)):
            _row_scores(r, flat, mean, inv_std, mi, v, f, xs, csr)
            weight = sw[r] if mi[M_WEIGHTS] != 0 else 1.0
            if model == 0:
                f[0] = weight * f[0]
            elif model == 1:
                f[0] = curvature[r] * f[0]
            else:
                mixed = 0.0
                for c in range(k):
                    mixed += curvature[r * k + c] * f[c]
                for c in range(k):
                    f[c] = weight * (curvature[r * k + c] * (f[c] - mixed))
            if sparse:
                begin, end = np.int64(indptr[r]), np.int64(indptr[r + 1])
                for c in range(k):
                    for e in range(begin, end):
                        j = np.int64(indices[e])
                        x = (np.float64(values[e]) * inv_std[j] if standardize
                             else np.float64(values[e]))
                        lane[c * d + j] = _madd(f[c], x, lane[c * d + j], fused)
            else:
                for c in range(k):
                    if standardize:
                        _axpy(f[c], xs, zero, lane, c * d, d, fused)
                    else:
                        _axpy(f[c], flat, r * d, lane, c * d, d, fused)
            for c in range(k):
                if intercept:
                    lane[k * d + c] += f[c]
                lane[p + c] += f[c]
        for j in range(p + k):
            total[j] += lane[j]
    for j in range(p):
        out[j] = total[j]
    if sparse and standardize:
        for c in range(k):
            for j in range(d):
                out[c * d + j] = out[c * d + j] - mean[j] * inv_std[j] * total[p + c]
    alpha = mf[P_ALPHA] if mi[M_PENALTY] == 1 else 0.0
    for j in range(p):
        out[j] = out[j] / np.float64(n)
    if alpha != 0.0:
        for j in range(k * d):
            out[j] = _madd(alpha, v[j], out[j], fused)


# ---------------------------------------------------------------------------------------------
# Python side: the checks of the C++ bindings, then the kernels.

# Multiply-adds per compiled call (~30-60 ms on one core): Ctrl-C lands between two calls.
_WORK_PER_CALL = 1 << 25

_EMPTY = {np.dtype(np.float32): np.empty(0, np.float32),
          np.dtype(np.float64): np.empty(0, np.float64)}


def host_has_fma():
    """Whether this CPU has fused multiply-adds (LLVM's view of the host)."""
    from llvmlite import binding
    return bool(binding.get_host_cpu_features().get("fma", False))


def compile_cache_enabled():
    """Whether compiled kernels are cached on disk (a writable cache directory was found)."""
    return _epoch_kernel._cache.__class__.__name__ != "NullCache"


class Data:
    """A problem's arrays as the kernels take them, checked once per fit: ``X`` (an empty
    (n, 0) array when X is sparse), ``csr`` = (values, indptr, indices, centring scratch) with
    int64 indices (empty arrays for dense X), the model configuration ``mi``/``mf``."""

    __slots__ = ("X", "y", "sw", "mean", "inv_std", "mi", "mf", "csr", "spec", "n_samples",
                 "standardized", "entries")

    def __init__(self, problem, fused):
        spec = problem.spec
        X = problem.X
        if hasattr(X, "indptr"):  # CSR, checked by fastopt._validation.check_sparse_X
            values = np.ascontiguousarray(X.data)
            self.X = np.empty((X.shape[0], 0), dtype=values.dtype)
            self.csr = (values, np.ascontiguousarray(X.indptr, dtype=np.int64),
                        np.ascontiguousarray(X.indices, dtype=np.int64),
                        np.zeros(spec.n_outputs))
        else:
            self.X = X
            self.csr = (np.empty(0, dtype=X.dtype), _NO_INDEX, _NO_INDEX,
                        np.zeros(spec.n_outputs))
        self.spec = spec
        self.n_samples = X.shape[0]
        self.entries = self.csr[0].size if hasattr(X, "indptr") else X.shape[0] * X.shape[1]
        self.y = problem.y
        self.sw = _or_empty(problem.sample_weight)
        self.mean = _or_empty(problem.mean)
        self.inv_std = _or_empty(problem.inv_std)
        self.standardized = problem.mean is not None
        self.mi, self.mf = model_config(spec, problem.sample_weight is not None,
                                        self.standardized, fused)


_NO_INDEX = np.empty(0, dtype=np.int64)


def _or_empty(a):
    return _EMPTY[np.dtype(np.float64)] if a is None else a


def dataset(problem, fused):
    """``Data`` of ``problem``; ``fused``: whether multiply-adds are fused (see the module
    docstring)."""
    return Data(problem, fused)


_SETUPS: dict = {}


def _optimizer_setup(optimizer):
    """``(flags, hyper, state names)`` of ``optimizer``, cached by hyperparameter values."""
    hyper = optimizer._hyperparameters()
    key = (type(optimizer), optimizer._kind, tuple(hyper.items()))
    setup = _SETUPS.get(key)
    if setup is None:
        if len(_SETUPS) > 256:
            _SETUPS.clear()
        flags, floats = optimizer_config(optimizer._kind, hyper)
        setup = _SETUPS[key] = (flags, floats, optimizer._state_names())
    return setup


def _state_arrays(names, state, dtype):
    """The state arrays in kernel order, padded with empty arrays to three."""
    arrays = [state[name] for name in names]
    return arrays + [_EMPTY[dtype]] * (3 - len(arrays))


def _require_disjoint(named):
    for i, (what_a, a) in enumerate(named):
        for what_b, b in named[i + 1:]:
            # Two distinct arrays that own their memory cannot overlap (the common case, and
            # 10x cheaper than asking NumPy).
            if a.base is None and b.base is None and a is not b:
                continue
            if a.size and b.size and np.may_share_memory(a, b):
                raise ValueError(f"{what_a} and {what_b} share memory; pass separate arrays")


def optimizer_step(optimizer, params, grad, state, lr):
    """One in-place update of ``params`` and ``state`` (``Optimizer.step`` with
    ``backend="numba"``), with the argument checks of the C++ binding."""
    flags, hyper, names = _optimizer_setup(optimizer)
    step = check_step(params, grad, state, names)
    s0, s1, s2 = _state_arrays(names, state, params.dtype)
    _require_disjoint([("params", params), ("grad", grad)]
                      + [(f"state['{name}']", state[name]) for name in names])
    step, mu_product = _optimizer_step(flags, hyper, step, float(state.get("mu_product", 1.0)),
                                       float(lr), params.reshape(-1), grad.reshape(-1),
                                       s0.reshape(-1), s1.reshape(-1), s2.reshape(-1))
    state["step"] = step
    if "mu_product" in state:
        state["mu_product"] = mu_product


def _check_params(data, params):
    """What changes between calls on one dataset: the parameters."""
    if not isinstance(params, np.ndarray) or params.dtype != data.X.dtype:
        raise TypeError(f"params must be a numpy.ndarray of dtype {data.X.dtype}")
    if params.shape != (data.spec.n_params,) or not params.flags.c_contiguous:
        raise ValueError(f"params must be C-contiguous of shape ({data.spec.n_params},)")
    return params


def epoch(data, state, lrs, batch_size, shuffle, threads=1, lazy=False):
    """One epoch on ``state`` (params and optimizer state updated in place). Returns ``(mean
    loss, updates done, ok, failed update or -1)``, as the C++ backend; ``threads`` lanes per
    minibatch, summed one after another (the C++ backend's threaded sums, bit for bit)."""
    w = _check_params(data, state.params)
    flags, hyper, names = _optimizer_setup(state.optimizer)
    st = state.optimizer_state
    check_step(w, w, st, names)
    n, p, spec = data.n_samples, w.size, data.spec
    if shuffle and n > _MAX_ROWS:
        raise ValueError("the shuffle handles up to 2**32 - 1 rows; pass shuffle=False or "
                         "train on chunks with partial_fit")
    steps = -(-n // batch_size)
    lrs = np.ascontiguousarray(lrs[:steps], dtype=np.float64)
    if lrs.size != steps:
        raise ValueError(f"lrs must hold {steps} learning rates, got {lrs.size}")
    s0, s1, s2 = _state_arrays(names, st, w.dtype)
    _require_disjoint([("params", w), ("X", data.X)]
                      + [(f"state['{name}']", st[name]) for name in names])
    X, y, sw, mean, inv_std, mi, mf, csr = (data.X, data.y, data.sw, data.mean, data.inv_std,
                                            data.mi, data.mf, data.csr)
    cursor = np.zeros(7, dtype=np.int64)
    cursor[C_OPT_STEP] = int(st["step"])
    sums = np.array([0.0, 0.0, float(st.get("mu_product", 1.0)), 0.0, 0.0, 1.0])
    order = _NO_ORDER
    if shuffle:
        order = shuffled_order(n, state.seed, state.epochs,
                               batch_size if shuffle == "batches" else 0)
    wsp, grad = np.empty(p), np.empty(p)
    grad_t = np.empty(p, dtype=w.dtype)
    f, xs = np.empty(spec.n_outputs), np.empty(spec.n_features)
    lane_grad, lane_loss = np.zeros((int(threads), p)), np.zeros(int(threads))
    k = spec.n_outputs
    lane_rsum, rsum = np.zeros((int(threads), k)), np.zeros(k)
    budget = max(1, int(_WORK_PER_CALL))
    lazy = (lazy and csr[1].size > 0 and not data.standardized
            and not needs_exact_epoch(flags, hyper, mi, mf, lrs))
    if lazy:
        mark = np.zeros(spec.n_features, dtype=np.int64)
        active = np.empty(spec.n_features, dtype=np.int64)
        coords = np.empty(p, dtype=np.int64)
        pc, gc = np.empty(p, dtype=w.dtype), np.empty(p, dtype=w.dtype)
        c0, c1, c2 = (np.empty(p if len(names) > i else 0, dtype=w.dtype) for i in range(3))
    try:
        while lazy and not _lazy_epoch_kernel(
                y, sw, mean, inv_std, mi, mf, w, s0, s1, s2, len(names), flags, hyper, lrs,
                int(batch_size), bool(shuffle), order, wsp, grad, f, cursor, sums, budget, csr,
                mark, active, coords, pc, gc, c0, c1, c2):
            pass
        while not lazy and not _epoch_kernel(X, y, sw, mean, inv_std, mi, mf, w, s0, s1, s2,
                                             flags, hyper, lrs, int(batch_size), bool(shuffle),
                                             order, wsp, grad, grad_t, f, xs, cursor, sums,
                                             budget, lane_grad, lane_loss, csr, lane_rsum,
                                             rsum):
            pass  # back in the interpreter between calls: a pending Ctrl-C is raised here
    finally:  # also when interrupted: the optimizer state matches the parameters
        if lazy:  # scaled SGD interrupted between calls: w = scale * u again
            _unscale(w, wsp, k * spec.n_features, sums)
        st["step"] = int(cursor[C_OPT_STEP])
        if "mu_product" in st:
            st["mu_product"] = float(sums[S_MU])
    return (float(sums[S_EPOCH]) / n, int(cursor[C_DONE]), bool(cursor[C_STATUS] == 0),
            int(cursor[C_FAILED]) if cursor[C_STATUS] else -1)


def _with_spec(data, spec):
    """``data`` with ``spec``'s penalty: the same arrays, another model configuration."""
    out = Data.__new__(Data)
    for name in Data.__slots__:
        setattr(out, name, getattr(data, name))
    mi = data.mi
    out.spec = spec
    out.mi, out.mf = model_config(spec, bool(mi[M_WEIGHTS]), bool(mi[M_STANDARDIZE]),
                                  bool(mi[M_FUSED]))
    return out


def many_epoch(data, specs, states, lrs, batch_size, shuffle):
    """One epoch of several states on the same minibatches (``fastopt.fit_many``), each with
    its own penalty (``specs``) and rates: every minibatch's update for state 1, 2, ..., K in
    turn (the resumable epoch kernel, called for one update at a time), so that the later
    states find the minibatch's rows in cache. The same results as :func:`epoch` for each
    state, as the C++ backend's shared epoch gives them."""
    n = data.n_samples
    steps = -(-n // batch_size)
    if shuffle and n > _MAX_ROWS:
        raise ValueError("the shuffle handles up to 2**32 - 1 rows; pass shuffle=False or "
                         "train on chunks with partial_fit")
    order = _NO_ORDER
    if shuffle:
        order = shuffled_order(n, states[0].seed, states[0].epochs,
                               batch_size if shuffle == "batches" else 0)
    spec = data.spec
    d, k = spec.n_features, spec.n_outputs
    p = spec.n_params
    # One update per call: a minibatch's rows and then the update (epoch kernel's budget).
    budget = max(1, min(int(batch_size) * (d * (2 * k + 1) + 1) + 10 * p,
                        int(_WORK_PER_CALL)))
    runs = []
    for spec_i, state, rates in zip(specs, states, lrs):
        run_data = data if spec_i == spec else _with_spec(data, spec_i)
        w = _check_params(run_data, state.params)
        flags, hyper, names = _optimizer_setup(state.optimizer)
        st = state.optimizer_state
        check_step(w, w, st, names)
        rates = np.ascontiguousarray(rates[:steps], dtype=np.float64)
        if rates.size != steps:
            raise ValueError(f"lrs must hold {steps} learning rates, got {rates.size}")
        s0, s1, s2 = _state_arrays(names, st, w.dtype)
        _require_disjoint([("params", w), ("X", data.X)]
                          + [(f"state['{name}']", st[name]) for name in names])
        cursor = np.zeros(7, dtype=np.int64)
        cursor[C_OPT_STEP] = int(st["step"])
        sums = np.array([0.0, 0.0, float(st.get("mu_product", 1.0)), 0.0, 0.0, 1.0])
        # Each its own scratch, the centring terms of sparse standardised X too: a kernel
        # call can stop inside a minibatch, and the next state's call would overwrite them.
        args = (run_data.X, run_data.y, run_data.sw, run_data.mean, run_data.inv_std,
                run_data.mi, run_data.mf, w, s0, s1, s2, flags, hyper, rates, int(batch_size),
                bool(shuffle), order, np.empty(p), np.empty(p), np.empty(p, dtype=w.dtype),
                np.empty(k), np.empty(d), cursor, sums, budget, np.zeros((1, p)), np.zeros(1),
                run_data.csr[:3] + (np.zeros(k),), np.zeros((1, k)), np.zeros(k))
        runs.append((args, st, cursor, sums))
    going = list(range(len(runs)))
    try:
        while going:  # one minibatch of every state still training, then the next
            going = [i for i in going if not _epoch_kernel(*runs[i][0])]
    finally:  # also when interrupted: the optimizer states match the parameters
        for _, st, cursor, sums in runs:
            st["step"] = int(cursor[C_OPT_STEP])
            if "mu_product" in st:
                st["mu_product"] = float(sums[S_MU])
    return [(float(sums[S_EPOCH]) / n, int(cursor[C_DONE]), bool(cursor[C_STATUS] == 0),
             int(cursor[C_FAILED]) if cursor[C_STATUS] else -1) for _, _, cursor, sums in runs]


def objective(data, params, threads=1):
    """``(L(params), float64 gradient)`` over all rows, as the C++ backend (its blocks, summed
    in the same order: the C++ result for any ``threads``; here one thread does them all)."""
    w = _check_params(data, params)
    p = w.size
    k = data.spec.n_outputs
    wsp, grad = np.empty(p), np.empty(p)
    f, xs = np.empty(k), np.empty(data.spec.n_features)
    cursor = np.zeros(7, dtype=np.int64)
    sums = np.zeros(6)
    budget = max(1, int(_WORK_PER_CALL))
    rsum = np.zeros(k)
    block = _block_rows(data.n_samples, p, k, data.entries)
    block_grad, block_rsum = np.empty(p), np.empty(k)
    while not _objective_kernel(data.X, data.y, data.sw, data.mean, data.inv_std, data.mi,
                                data.mf, w, wsp, grad, f, xs, _NO_ORDER, cursor, sums, budget,
                                data.csr, rsum, block, block_grad, block_rsum):
        pass
    return float(sums[S_EPOCH]), grad


# ---------------------------------------------------------------------------------------------
# SAGA (saga.hpp; the algorithm: fastopt/reference/saga.py). The iterate and SAGA's memory are
# float64; a call runs rows until its budget is spent, so that Ctrl-C lands between calls.

# cursor: the next position in the epoch, status (0 ok, 1 non-finite), failed position
G_POS, G_STATUS, G_FAILED = range(3)


@_jit
def _soft_threshold(v, t):
    return v - min(max(v, -t), t)


@_jit
def _affine_steps(a, drift, k, step, l2, log_q, decay):
    if l2 == 0.0:
        return a + np.float64(k) * drift
    fixed = drift / (step * l2)
    factor = decay[k] if decay.size else math.expm1(np.float64(k) * log_q)
    return a + factor * (a - fixed)


@_jit
def _catch_up(w, g, m, step, l1, l2, log_q, decay):
    """saga.hpp ``catch_up``: m updates of a coordinate whose row term is zero."""
    if m <= 0:
        return w
    if l1 == 0.0:
        return _affine_steps(w, -step * g, m, step, l2, log_q, decay)
    for _ in range(4):
        if m <= 0:
            break
        if w == 0.0:
            if abs(g) <= l1:
                return 0.0
            w = _soft_threshold(-step * g, step * l1)
            m -= 1
            continue
        side = 1.0 if w > 0 else -1.0
        drift = -step * (g + side * l1)
        end = _affine_steps(w, drift, m, step, l2, log_q, decay)
        if side * end > 0:
            return end
        low, high = 0, m
        while high - low > 1:
            mid = low + (high - low) // 2
            if side * _affine_steps(w, drift, mid, step, l2, log_q, decay) > 0:
                low = mid
            else:
                high = mid
        before = _affine_steps(w, drift, low, step, l2, log_q, decay)
        w = _soft_threshold((1.0 - step * l2) * before - step * g, step * l1)
        m -= high
    while m > 0:
        w = _soft_threshold((1.0 - step * l2) * w - step * g, step * l1)
        m -= 1
    return w


@_jit
def _catch_up_column(w, sums, last, j, t, d, k, inv_n, step, l1, l2, log_q, decay):
    """Column j of every output brought up to step t (saga.hpp ``catch_up_column``)."""
    m = t - last[j]
    if m <= 0:
        return
    for c in range(k):
        idx = c * d + j
        w[idx] = _catch_up(w[idx], sums[idx] * inv_n, m, step, l1, l2, log_q, decay)
    last[j] = t


@_jit
def _saga_kernel(X, y, sw, mean, inv_std, mi, w, table, sums, order, xs, last, f, decay,
                 step, l1, l2, cursor, loss, budget, csr):
    """Rows of a SAGA epoch from position ``cursor[G_POS]`` until about ``budget``
    multiply-adds are done; True when the epoch is over (the waiting columns caught up)."""
    n = y.size
    d, k = mi[M_FEATURES], mi[M_OUTPUTS]
    fused = mi[M_FUSED] != 0
    intercept = mi[M_INTERCEPT] != 0
    standardize = mi[M_STANDARDIZE] != 0
    values, indptr, indices = csr[0], csr[1], csr[2]
    sparse = indptr.size > 0
    lazy = sparse and not standardize
    inv_n = 1.0 / np.float64(n)
    log_q = math.log1p(-step * l2)
    t = cursor[G_POS]
    done = 0
    while t < n and done < budget:
        r = np.int64(order[t])
        if lazy:
            begin, end = indptr[r], indptr[r + 1]
            for e in range(begin, end):
                _catch_up_column(w, sums, last, indices[e], t, d, k, inv_n, step, l1, l2, log_q,
                                 decay)
            for c in range(k):
                score = 0.0
                for e in range(begin, end):
                    score = _madd(w[c * d + indices[e]], np.float64(values[e]), score, fused)
                f[c] = score + w[k * d + c] if intercept else score
            done += 4 * k * max(end - begin, 1)
        else:
            if sparse:
                for j in range(d):
                    xs[j] = -mean[j] * inv_std[j]
                for e in range(indptr[r], indptr[r + 1]):
                    j = indices[e]
                    xs[j] = (np.float64(values[e]) - mean[j]) * inv_std[j]
            elif standardize:
                for j in range(d):
                    xs[j] = (np.float64(X[r, j]) - mean[j]) * inv_std[j]
            else:
                for j in range(d):
                    xs[j] = np.float64(X[r, j])
            for c in range(k):
                score = _dot(w, c * d, xs, 0, d, fused)
                f[c] = score + w[k * d + c] if intercept else score
            done += 4 * k * d
        row_loss = _loss_and_residual(mi[M_MODEL], f, k, y[r])
        weight = sw[r] if sw.size else 1.0
        for c in range(k):
            value = f[c] * weight
            f[c] = value - table[r * k + c]
            table[r * k + c] = value
        bad = False
        if lazy:
            for e in range(indptr[r], indptr[r + 1]):
                j = indices[e]
                x = np.float64(values[e])
                for c in range(k):
                    idx = c * d + j
                    delta_x = f[c] * x
                    g = delta_x + sums[idx] * inv_n + l2 * w[idx]
                    sums[idx] += delta_x
                    w[idx] = _soft_threshold(w[idx] - step * g, step * l1)
                    bad |= not math.isfinite(w[idx])
                last[j] = t + 1
        else:
            for c in range(k):
                for j in range(d):
                    idx = c * d + j
                    delta_x = f[c] * xs[j]
                    g = delta_x + sums[idx] * inv_n + l2 * w[idx]
                    sums[idx] += delta_x
                    w[idx] = _soft_threshold(w[idx] - step * g, step * l1)
                    bad |= not math.isfinite(w[idx])
        if intercept:
            for c in range(k):
                w[k * d + c] -= step * (f[c] + sums[k * d + c] * inv_n)
                sums[k * d + c] += f[c]
        loss[0] += weight * row_loss
        t += 1
        if bad or not math.isfinite(loss[0]):
            cursor[G_STATUS] = 1
            cursor[G_FAILED] = t - 1
            break
    cursor[G_POS] = t
    if t < n and cursor[G_STATUS] == 0:
        return False
    if lazy:  # every waiting column up to the last row done
        for j in range(d):
            _catch_up_column(w, sums, last, j, t, d, k, inv_n, step, l1, l2, log_q, decay)
        if cursor[G_STATUS] == 0 and not _all_finite(w):
            cursor[G_STATUS] = 1
            cursor[G_FAILED] = n - 1
    return True


def saga_epoch(data, state, step, seed, epoch):
    """One SAGA epoch on a ``fastopt.reference.saga.SagaState`` (in place), rows in the
    shuffled order of ``(seed, epoch)``. Returns ``(loss sum, ok, failed position or -1)``, as
    the C++ backend."""
    spec, n = data.spec, data.n_samples
    if n > _MAX_ROWS:
        raise ValueError("SAGA's shuffle handles up to 2**32 - 1 rows")
    for name, a, size in (("w", state.w, spec.n_params), ("table", state.table,
                                                           n * spec.n_outputs),
                          ("sums", state.sums, spec.n_params)):
        if a.dtype != np.float64 or a.size != size or not a.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous float64 array of {size} elements")
    lam = 0.0 if spec.penalty is None else spec.alpha
    l1, l2 = lam * l1_share(spec), lam * (1.0 - l1_share(spec))
    lazy = data.csr[1].size > 0 and not data.standardized
    decay = _EMPTY[np.dtype(np.float64)]
    if lazy and l2 != 0.0:  # the decay over each possible wait, once an epoch
        decay = np.expm1(np.arange(n + 1) * math.log1p(-step * l2))
    order = shuffled_order(n, seed, epoch)
    xs, f = np.empty(spec.n_features), np.empty(spec.n_outputs)
    last = np.zeros(spec.n_features, dtype=np.int64)
    cursor, loss = np.zeros(3, dtype=np.int64), np.zeros(1)
    budget = max(1, int(_WORK_PER_CALL))
    while not _saga_kernel(data.X, data.y, data.sw, data.mean, data.inv_std, data.mi,
                           state.w, state.table.reshape(-1), state.sums, order, xs, last, f,
                           decay, float(step), l1, l2, cursor, loss, budget, data.csr):
        pass  # Ctrl-C is raised here, between calls
    ok = cursor[G_STATUS] == 0
    return float(loss[0]), bool(ok), -1 if ok else int(cursor[G_FAILED])


def hvp(problem, data, params, threads=1):
    """``v -> H(params) v`` (float64), as the C++ operator: the rows' curvature at ``params``
    computed once, here, then one pass per product (one thread: the same sums)."""
    spec = data.spec
    if spec.penalty in ("l1", "elasticnet") and spec.alpha > 0:
        raise ValueError("the Hessian needs a smooth objective: penalty none or l2, not l1 or "
                         "elasticnet")
    w = _check_params(data, np.ascontiguousarray(params, dtype=data.X.dtype))
    p, k, d = spec.n_params, spec.n_outputs, spec.n_features
    wsp = np.empty(p)
    _load_params(w, wsp)
    f, xs = np.empty(k), np.empty(d)
    width = {"linear": 0, "logistic": 1, "softmax": k}[spec.model]
    curvature = np.empty(data.n_samples * width)
    if width:
        _hessian_curvature(data.X, data.sw, data.mean, data.inv_std, data.mi, wsp, f, xs,
                           data.csr, curvature)
    block = _block_rows(data.n_samples, p, k, data.entries)
    lane, total = np.empty(p + k), np.empty(p + k)

    def product(vector):
        v = np.ascontiguousarray(vector, dtype=np.float64)
        if v.shape != (p,):
            raise ValueError(f"v must have shape ({p},), got {v.shape}")
        out = np.empty(p)
        _hessian_product(data.X, data.sw, data.mean, data.inv_std, data.mi, data.mf,
                         curvature, v, out, f, xs, data.csr, block, lane, total)
        return out

    return product
