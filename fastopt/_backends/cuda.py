"""The CUDA backend (``backend="cuda"``): optimizer steps, minibatch gradients and whole epochs
as ``numba.cuda`` kernels, behind the functions of the backend record
(``fastopt._backends.Backend``).

One epoch on the device
-----------------------
The host loops over the epoch's minibatches and only launches kernels: nothing is copied back
until the epoch ends. For the minibatch of ``m`` rows at positions ``[first, first + m)``:

1. ``_residual_kernel``, one thread per row: the row index from the epoch's visiting order (the
   shuffle of :mod:`fastopt.reference.shuffle`, drawn on the host and uploaded), the scores
   ``W x~ + b`` with ``x~ = (x - mean) * inv_std`` applied on the fly, the loss and the residual
   ``dl/df`` of the row, both times its sample weight; all float64.
2. ``_gradient_kernel``, a grid of row tiles x feature blocks: each thread sums
   ``r_ic * x~_ij`` for its feature ``j`` (the intercept is feature ``d``, with ``x~ = 1``) over
   its tile's rows in row order, into ``partial[tile, c, j]``; one thread per tile sums the
   tile's losses.
3. ``_reduce_kernel``, a single block: per parameter the tiles' sums in tile order, ``/ m``,
   plus the penalty gradient; the batch objective (weighted losses + ``m`` x penalty, at the
   parameters before the update, NaN when the gradient is not finite) into
   ``objectives[step]``; then the optimizer update of every parameter from the gradient rounded
   to the parameter dtype.

There are no floating-point atomics: every sum has a fixed order for a given problem size, so
the same inputs and ``random_state`` give bit-identical results run after run. At the end of the
epoch the objectives come back, and the first non-finite one (or non-finite parameters at the
end) is reported as in the C++ epoch, which also stops there; the caller rolls back.

Optimizer updates
-----------------
One device function per ``torch.optim`` algorithm, elementwise (one thread per parameter in
``optimizer_step``), with the operation order of ``csrc/include/fastopt/optimizers.hpp``. The
per-step scalars (bias corrections, step sizes, NAdam's mu, RAdam's rectification) are computed
on the host in float64 exactly as :mod:`fastopt.reference.optim` computes them, one row of a
coefficient table per update, and cast to the parameter dtype before they reach the device, so
that float32 parameters are updated with float32 arithmetic only. NVVM contracts ``a * b + c``
into fused multiply-adds (the C++ build does not), so the backends agree to rounding, not to the
last bit.

Data residency
--------------
``X``, ``y``, the weights and the standardisation go to the device once per fit, when the
engine asks for the problem's :func:`dataset`. A device ``X`` (a numba device array, or anything
with ``__cuda_array_interface__``: CuPy, PyTorch) is used where it is. Parameters and optimizer
state stay on the device between epochs, kept in that dataset, and are mirrored into the
training state's NumPy arrays after every epoch; when those host arrays were changed in between
(a rollback, a warm start), they are uploaded again.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numba import cuda, float64
from numba.core import config as _numba_config
from numba.core.errors import NumbaPerformanceWarning

from .. import _scaling
from .._validation import is_device_array, is_sparse
from ..reference.models import l1_share
from .contract import MODEL_CODES, OPTIMIZER_CODES, STATE_SLOTS, check_step
from .numba_jit import shuffled_order

__all__ = ["optimizer_step", "epoch", "objective", "check_device_X", "column_scaling",
           "take_rows"]

_SIMULATED = bool(_numba_config.ENABLE_CUDASIM)

_THREADS = 128          # threads per block of the elementwise kernels
_REDUCE_THREADS = 256   # the most threads of _reduce_kernel's single block
_MIN_TILE_ROWS = 32     # rows per tile of _gradient_kernel, at least ...
_MAX_TILES = 1024       # ... and at most this many tiles (the reduce sums them one by one)
_CLASS_CHUNK = 8        # classes accumulated per pass over a tile's rows

# Optimizer kinds, and flags that hold for the whole fit.
_KINDS = OPTIMIZER_CODES
_SGD, _ADAGRAD, _RMSPROP, _ADADELTA, _ADAM, _NADAM, _RADAM = (
    _KINDS[name] for name in ("sgd", "adagrad", "rmsprop", "adadelta", "adam", "nadam", "radam"))
_NO_UPDATE = -1
_COUPLED, _DECOUPLED, _MOMENTUM, _NESTEROV, _CENTERED, _AMSGRAD, _LERP_LOW = (
    1, 2, 4, 8, 16, 32, 64)
_N_COEFS = 12
# State arrays in the three kernel slots, by kind (None: a dummy array).
_SLOTS = {kind: names + (None,) * (3 - len(names)) for kind, names in STATE_SLOTS.items()}

# The model description the kernels read (int64 array `spec`) ...
_MODELS = MODEL_CODES
_LINEAR, _LOGISTIC, _SOFTMAX = (_MODELS[name] for name in ("linear", "logistic", "softmax"))
_S_MODEL, _S_OUTPUTS, _S_FEATURES, _S_INTERCEPT, _S_WEIGHTED, _S_STANDARDIZED = range(6)
# ... the penalty (float64 array: on, alpha, l1 share, l2 share) ...
_PEN_ON, _PEN_ALPHA, _PEN_L1, _PEN_L2 = range(4)
# ... and the epoch's visiting order (uint32 array of n rows).

# Kernels write min/max out as comparisons: the builtins fail to compile with numba 0.68's CUDA
# target.


# ---------------------------------------------------------------------------------------------
# The shuffle (fastopt/reference/shuffle.py): drawn on the host, read here.

@cuda.jit(device=True)
def _row_at(position, order):
    """The row visited at ``position``."""
    return np.int64(order[position])


# ---------------------------------------------------------------------------------------------
# Optimizer updates of parameter q. `c` is this step's coefficient row (parameter dtype); its
# layout per kind is written next to each function and built by _coefficients.

def _sqrt_device(x):
    return math.sqrt(x)  # sqrt.rn.f32 for float32: the result stays float32


def _sqrt_simulated(x):
    return np.sqrt(x)  # math.sqrt would return a Python float (a double) in the simulator


_sqrt = cuda.jit(device=True)(_sqrt_simulated if _SIMULATED else _sqrt_device)


@cuda.jit(device=True)
def _lerp(a, b, w, w_complement, low):
    """torch.lerp: ``a + w (b - a)`` for ``|w| < 0.5``, else ``b - (b - a)(1 - w)``."""
    if low:
        return a + w * (b - a)
    return b - (b - a) * w_complement


@cuda.jit(device=True)
def _sgd(q, flags, p, g, buf, c):
    # c: weight_decay, momentum, 1 - dampening, -lr, first update (1 or 0)
    gi = g[q]
    if flags & _COUPLED:
        gi = gi + c[0] * p[q]
    if flags & _MOMENTUM:
        if c[4] != 0:
            b = gi
        else:
            b = buf[q] * c[1] + c[2] * gi
        buf[q] = b
        if flags & _NESTEROV:
            gi = gi + c[1] * b
        else:
            gi = b
    p[q] = p[q] + c[3] * gi


@cuda.jit(device=True)
def _adagrad(q, flags, p, g, total, c):
    # c: weight_decay, -lr / (1 + (step - 1) lr_decay), eps
    gi = g[q]
    if flags & _COUPLED:
        gi = gi + c[0] * p[q]
    si = total[q] + gi * gi
    total[q] = si
    std = _sqrt(si) + c[2]
    p[q] = p[q] + (c[1] * gi) / std


@cuda.jit(device=True)
def _rmsprop(q, flags, p, g, square_avg, grad_avg, buf, c):
    # c: weight_decay, alpha, 1 - alpha, eps, momentum, -lr, lerp weight (1 - alpha), 1 - it
    gi = g[q]
    if flags & _COUPLED:
        gi = gi + c[0] * p[q]
    si = square_avg[q] * c[1] + c[2] * gi * gi
    square_avg[q] = si
    if flags & _CENTERED:
        ga = _lerp(grad_avg[q], gi, c[6], c[7], flags & _LERP_LOW)
        grad_avg[q] = ga
        avg = _sqrt(si - ga * ga)  # torch: si + (-1 * ga) * ga, the same rounding
    else:
        avg = _sqrt(si)
    avg = avg + c[3]
    if flags & _MOMENTUM:
        b = buf[q] * c[4] + gi / avg
        buf[q] = b
        p[q] = p[q] + c[5] * b
    else:
        p[q] = p[q] + (c[5] * gi) / avg


@cuda.jit(device=True)
def _adadelta(q, flags, p, g, square_avg, acc_delta, c):
    # c: weight_decay, rho, 1 - rho, eps, -lr
    gi = g[q]
    if flags & _COUPLED:
        gi = gi + c[0] * p[q]
    si = square_avg[q] * c[1] + c[2] * gi * gi
    square_avg[q] = si
    std = _sqrt(si + c[3])
    delta = (_sqrt(acc_delta[q] + c[3]) / std) * gi
    acc_delta[q] = acc_delta[q] * c[1] + c[2] * delta * delta
    p[q] = p[q] + c[4] * delta


@cuda.jit(device=True)
def _adam_moments(q, flags, p, g, exp_avg, exp_avg_sq, c):
    """Weight decay and the two moments shared by Adam, NAdam and RAdam; returns
    ``(param, grad, m_t, v_t)``.
    c: weight_decay, 1 - lr weight_decay, lerp weight (1 - beta1), 1 - it, beta2, 1 - beta2,
    eps, then the kind's own coefficients from index 7."""
    pi = p[q]
    gi = g[q]
    if flags & _DECOUPLED:
        pi = pi * c[1]
    if flags & _COUPLED:
        gi = gi + c[0] * pi
    mi = _lerp(exp_avg[q], gi, c[2], c[3], flags & _LERP_LOW)
    vi = exp_avg_sq[q] * c[4] + c[5] * gi * gi
    exp_avg[q] = mi
    exp_avg_sq[q] = vi
    return pi, gi, mi, vi


@cuda.jit(device=True)
def _adam(q, flags, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, c):
    # c[7:9]: -lr / bias_correction1, sqrt(bias_correction2)
    pi, gi, mi, vi = _adam_moments(q, flags, p, g, exp_avg, exp_avg_sq, c)
    second = vi
    if flags & _AMSGRAD:
        vm = max_exp_avg_sq[q]
        if vm > vi or vm != vm:  # NaN-propagating maximum, as torch.maximum
            second = vm
        max_exp_avg_sq[q] = second
    denom = _sqrt(second) / c[8] + c[6]
    p[q] = pi + (c[7] * mi) / denom


@cuda.jit(device=True)
def _nadam(q, flags, p, g, exp_avg, exp_avg_sq, c):
    # c[7:10]: -lr (1 - mu_t) / (1 - mu_product), -lr mu_{t+1} / (1 - mu_product mu_{t+1}),
    # bias_correction2
    pi, gi, mi, vi = _adam_moments(q, flags, p, g, exp_avg, exp_avg_sq, c)
    denom = _sqrt(vi / c[9]) + c[6]
    pi = pi + (c[7] * gi) / denom
    p[q] = pi + (c[8] * mi) / denom


@cuda.jit(device=True)
def _radam(q, flags, p, g, exp_avg, exp_avg_sq, c):
    # c[7:12]: bias_correction1, lr, rect, sqrt(bias_correction2), rectified (1 or 0)
    pi, gi, mi, vi = _adam_moments(q, flags, p, g, exp_avg, exp_avg_sq, c)
    corrected = (mi / c[7]) * c[8]
    if c[11] != 0:
        adaptive = c[10] / (_sqrt(vi) + c[6])
        p[q] = pi - (corrected * adaptive) * c[9]
    else:
        p[q] = pi - corrected


@cuda.jit(device=True)
def _update(q, kind, flags, p, g, s0, s1, s2, c):
    """Optimizer ``kind`` on parameter ``q``; s0, s1, s2 hold the state in the order of
    _SLOTS."""
    if kind == _SGD:
        _sgd(q, flags, p, g, s0, c)
    elif kind == _ADAGRAD:
        _adagrad(q, flags, p, g, s0, c)
    elif kind == _RMSPROP:
        _rmsprop(q, flags, p, g, s0, s1, s2, c)
    elif kind == _ADADELTA:
        _adadelta(q, flags, p, g, s0, s1, c)
    elif kind == _ADAM:
        _adam(q, flags, p, g, s0, s1, s2, c)
    elif kind == _NADAM:
        _nadam(q, flags, p, g, s0, s1, c)
    elif kind == _RADAM:
        _radam(q, flags, p, g, s0, s1, c)


@cuda.jit
def _step_kernel(kind, flags, params, grad, s0, s1, s2, coefs):
    """One update, one thread per parameter."""
    q = cuda.grid(1)
    if q < params.size:
        _update(q, kind, flags, params, grad, s0, s1, s2, coefs[0])


# ---------------------------------------------------------------------------------------------
# Models (fastopt/reference/models.py, csrc/include/fastopt/models.hpp)

@cuda.jit
def _residual_kernel(X, y, weight, mean, inv_std, params, spec, perm, first, m, rows, resid,
                     loss):
    """Row i of the minibatch: rows[i], resid[i, :] = s_i dl/df and loss[i] = s_i l_i."""
    i = cuda.grid(1)
    if i >= m:
        return
    k = spec[_S_OUTPUTS]
    d = spec[_S_FEATURES]
    row = _row_at(first + i, perm)
    rows[i] = row
    for c in range(k):
        score = 0.0
        for j in range(d):
            x = float(X[row, j])
            if spec[_S_STANDARDIZED]:
                x = (x - mean[j]) * inv_std[j]
            score += float(params[c * d + j]) * x
        if spec[_S_INTERCEPT]:
            score = score + float(params[k * d + c])
        resid[i, c] = score
    target = y[row]
    model = spec[_S_MODEL]
    if model == _LINEAR:
        r = resid[i, 0] - target
        value = 0.5 * r * r
        resid[i, 0] = r
    elif model == _LOGISTIC:
        z = resid[i, 0]
        e = math.exp(-abs(z))
        positive = 0.0 if z < 0.0 else z  # std::max(z, 0.0)
        value = positive + math.log1p(e) - target * z
        if z >= 0:
            sigmoid = 1.0 / (1.0 + e)
        else:
            sigmoid = e / (1.0 + e)
        resid[i, 0] = sigmoid - target
    else:
        label = int(target)
        top = resid[i, 0]
        for c in range(1, k):
            if top < resid[i, c]:
                top = resid[i, c]
        f_label = resid[i, label]
        total = 0.0
        for c in range(k):
            e = math.exp(resid[i, c] - top)
            resid[i, c] = e
            total += e
        lse = top + math.log(total)
        for c in range(k):
            resid[i, c] = resid[i, c] / total
        resid[i, label] -= 1.0
        value = lse - f_label
    s = 1.0
    if spec[_S_WEIGHTED]:
        s = weight[row]
    loss[i] = s * value
    for c in range(k):
        resid[i, c] = resid[i, c] * s


@cuda.jit
def _gradient_kernel(X, mean, inv_std, spec, rows, resid, loss, m, tile_rows, partial,
                     loss_partial):
    """partial[tile, c, j] = sum over the tile's rows, in order, of resid[i, c] * x~[i, j]
    (x~ = 1 for j = d, the intercept); loss_partial[tile] = the tile's loss sum."""
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    tile = cuda.blockIdx.y
    k = spec[_S_OUTPUTS]
    d = spec[_S_FEATURES]
    start = tile * tile_rows
    stop = start + tile_rows
    if stop > m:
        stop = m
    if j < d + spec[_S_INTERCEPT]:
        acc = cuda.local.array(_CLASS_CHUNK, float64)
        for c0 in range(0, k, _CLASS_CHUNK):
            classes = k - c0
            if classes > _CLASS_CHUNK:
                classes = _CLASS_CHUNK
            for c in range(classes):
                acc[c] = 0.0
            for i in range(start, stop):
                x = 1.0
                if j < d:
                    x = float(X[rows[i], j])
                    if spec[_S_STANDARDIZED]:
                        x = (x - mean[j]) * inv_std[j]
                for c in range(classes):
                    acc[c] += resid[i, c0 + c] * x
            for c in range(classes):
                partial[tile, c0 + c, j] = acc[c]
    if j == 0:
        total = 0.0
        for i in range(start, stop):
            total += loss[i]
        loss_partial[tile] = total


@cuda.jit
def _reduce_kernel(params, spec, penalty, partial, loss_partial, n_tiles, m, out, index, grad,
                   kind, flags, s0, s1, s2, coefs):
    """A single block. grad = tile sums / m + penalty gradient (cast to grad's dtype); then

    - ``kind == _NO_UPDATE`` (the full objective): out[0] = loss sum, out[1] = penalty;
    - else (a training step): out[index] = loss sum + m * penalty, or NaN when the gradient is
      not finite, and the optimizer update with coefficient row ``coefs[index]``.

    The penalty is evaluated at the parameters before the update: all reads of ``params``
    happen before the first barrier of the tree reduction, all writes after the last."""
    t = cuda.threadIdx.x
    threads = cuda.blockDim.x
    k = spec[_S_OUTPUTS]
    d = spec[_S_FEATURES]
    coefficients = k * d
    n_params = params.size
    loss_sum = 0.0
    abs_sum = 0.0
    sq_sum = 0.0
    bad = 0.0
    for q in range(t, n_params, threads):
        if q < coefficients:
            c = q // d
            j = q - c * d
        else:
            c = q - coefficients
            j = d
        g = 0.0
        for tile in range(n_tiles):
            g += partial[tile, c, j]
        g = g / m
        if q < coefficients and penalty[_PEN_ON] != 0.0:
            w = float(params[q])
            sign = 0.0
            if w > 0:
                sign = 1.0
            elif w < 0:
                sign = -1.0
            g = g + penalty[_PEN_ALPHA] * (penalty[_PEN_L1] * sign + penalty[_PEN_L2] * w)
            abs_sum += abs(w)
            sq_sum += w * w
        if not math.isfinite(g):
            bad += 1.0
        grad[q] = g
    for tile in range(t, n_tiles, threads):
        loss_sum += loss_partial[tile]

    sums = cuda.shared.array((4, _REDUCE_THREADS), float64)
    sums[0, t] = loss_sum
    sums[1, t] = abs_sum
    sums[2, t] = sq_sum
    sums[3, t] = bad
    cuda.syncthreads()
    stride = 1
    while stride < threads:  # a fixed pairwise tree
        if t % (2 * stride) == 0 and t + stride < threads:
            for r in range(4):
                sums[r, t] += sums[r, t + stride]
        cuda.syncthreads()
        stride *= 2

    if t == 0:
        value = 0.0
        if penalty[_PEN_ON] != 0.0:
            value = penalty[_PEN_ALPHA] * (penalty[_PEN_L1] * sums[1, 0]
                                           + 0.5 * penalty[_PEN_L2] * sums[2, 0])
        if kind == _NO_UPDATE:
            out[0] = sums[0, 0]
            out[1] = value
        elif sums[3, 0] == 0.0:
            out[index] = sums[0, 0] + value * m
        else:
            out[index] = math.nan
    if kind != _NO_UPDATE:
        row = coefs[index]
        for q in range(t, n_params, threads):  # the same q as above: grad[q] is this thread's
            _update(q, kind, flags, params, grad, s0, s1, s2, row)


# ---------------------------------------------------------------------------------------------
# Device input: checks, standardisation, row subsets

@cuda.jit
def _nonfinite_kernel(X, found):
    """found[0] = 1 if X holds a NaN, found[1] = 1 if it holds an infinity (every writer writes
    the same value: no atomics needed)."""
    n, d = X.shape
    for e in range(cuda.grid(1), n * d, cuda.gridsize(1)):
        i = e // d
        x = X[i, e - i * d]
        if math.isnan(x):
            found[0] = 1
        elif math.isinf(x):
            found[1] = 1


@cuda.jit
def _column_sums_kernel(X, weight, weighted, mean, squares, tile_rows, partial):
    """partial[tile, j] = sum over the tile's rows of s_i x_ij, or of s_i (x_ij - mean_j)^2
    (s_i = 1 unless ``weighted``)."""
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    tile = cuda.blockIdx.y
    n, d = X.shape
    if j < d:
        total = 0.0
        stop = (tile + 1) * tile_rows
        if stop > n:
            stop = n
        for i in range(tile * tile_rows, stop):
            x = float(X[i, j])
            if squares:
                x = x - mean[j]
                x = x * x
            if weighted:
                x = weight[i] * x
            total += x
        partial[tile, j] = total


@cuda.jit
def _take_rows_kernel(X, rows, out):
    e = cuda.grid(1)
    m, d = out.shape
    if e < m * d:
        i = e // d
        out[i, e - i * d] = X[rows[i], e - i * d]


# ---------------------------------------------------------------------------------------------
# Host side: launches, device copies, caches

_LAUNCHERS: dict = {}


def _launch(kernel, grid, block, *args):
    """``kernel[grid, block](*args)``. numba warns (NumbaPerformanceWarning) each time it
    configures a grid of fewer than 128 blocks, which this backend does by design (the reduce is
    one block); configurations are therefore built once, with that warning silenced."""
    if _SIMULATED:  # the simulator configures the kernel object itself: nothing to keep
        kernel[grid, block](*args)
        return
    key = (kernel, grid, block)
    launcher = _LAUNCHERS.get(key)
    if launcher is None:
        if len(_LAUNCHERS) > 4096:  # many problem sizes in one process
            _LAUNCHERS.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            launcher = _LAUNCHERS[key] = kernel[grid, block]
    launcher(*args)


def _blocks(count, threads):
    return max(1, -(-count // threads))


def _threads(count, limit=_THREADS):
    return max(1, min(limit, count))


def _upload(array):
    """A device copy of a host array (every host-to-device copy of this module goes here)."""
    return cuda.to_device(np.ascontiguousarray(array))


def _as_device(array):
    """A device array over ``array``'s memory, without a copy."""
    if getattr(array, "__cuda_ndarray__", False):  # numba's own (or the simulator's)
        return array
    return cuda.as_cuda_array(array)  # CuPy, PyTorch, ...: a view


_DUMMIES: dict = {}


def _dummy(dtype, ndim=1):
    """A one-element device array standing in for an absent one."""
    key = (np.dtype(dtype).str, ndim)
    if key not in _DUMMIES:
        _DUMMIES[key] = cuda.device_array((1,) * ndim, dtype=dtype)
    return _DUMMIES[key]


class Data:
    """The device copies of a problem's arrays (attributes named as its fields), uploaded once
    per fit by :func:`dataset`; scratch space per batch size; and the device copies of the
    training state (``training``), kept between epochs."""

    def __init__(self, problem):
        if is_sparse(problem.X):
            raise TypeError("backend='cuda' trains on dense X only; pass X.toarray(), or use "
                            "backend='cpp' or 'numba' for sparse X")
        for name in ("X", "y", "sample_weight", "mean", "inv_std"):
            host = getattr(problem, name)
            if host is None:
                device = _dummy(np.float64)
            elif is_device_array(host):
                device = _as_device(host)
            else:
                device = _upload(host if name == "X" else np.asarray(host, dtype=np.float64))
            setattr(self, name, device)
        spec = self.model = problem.spec
        self.n_samples = problem.n_samples
        l1 = float(l1_share(spec))
        self.spec = _upload(np.array(
            (_MODELS[spec.model], spec.n_outputs, spec.n_features, int(spec.fit_intercept),
             int(problem.sample_weight is not None), int(problem.mean is not None)),
            dtype=np.int64))
        self.penalty = _upload(np.array(
            (float(spec.penalty is not None and spec.alpha != 0), spec.alpha, l1, 1 - l1),
            dtype=np.float64))
        self.workspaces = {}
        self.in_order = None
        self.training = None


def dataset(problem):
    return Data(problem)


def _tiling(m):
    """``(rows per tile, tiles)`` of a minibatch of m rows."""
    tile_rows = max(_MIN_TILE_ROWS, -(-m // _MAX_TILES))
    return tile_rows, -(-m // tile_rows)


class _Workspace:
    """Scratch arrays for minibatches of up to ``batch`` rows."""

    def __init__(self, spec, batch):
        k = spec.n_outputs
        tiles = _tiling(batch)[1]
        self.rows = cuda.device_array(batch, dtype=np.int64)
        self.resid = cuda.device_array((batch, k), dtype=np.float64)
        self.loss = cuda.device_array(batch, dtype=np.float64)
        self.partial = cuda.device_array(
            (tiles, k, spec.n_features + int(spec.fit_intercept)), dtype=np.float64)
        self.loss_partial = cuda.device_array(tiles, dtype=np.float64)
        self.out = cuda.device_array(2, dtype=np.float64)
        self.grads = {}

    def grad(self, n_params, dtype):
        key = np.dtype(dtype).str
        if key not in self.grads:
            self.grads[key] = cuda.device_array(n_params, dtype=dtype)
        return self.grads[key]


def _workspace(data, spec, batch):
    if batch not in data.workspaces:
        data.workspaces[batch] = _Workspace(spec, batch)
    return data.workspaces[batch]


def _permutation(n, seed, epoch_index, shuffle, batch_size=0):
    """The epoch's rows in visiting order (uint32, see _row_at): the shuffle compiled for the
    CPU by the Numba backend (shuffle="batches": blocks of batch_size rows), or 0..n-1."""
    if not shuffle:
        return np.arange(n, dtype=np.uint32)
    return shuffled_order(n, seed, epoch_index, batch_size if shuffle == "batches" else 0)


def _batch_gradient(data, workspace, spec, params, perm, first, m):
    """Launch the residual and gradient kernels for rows [first, first + m) of the order
    ``perm``; returns the number of tiles to reduce."""
    threads = _threads(m)
    _launch(_residual_kernel, _blocks(m, threads), threads, data.X, data.y, data.sample_weight,
            data.mean, data.inv_std, params, data.spec, perm, first, m, workspace.rows,
            workspace.resid, workspace.loss)
    width = spec.n_features + int(spec.fit_intercept)
    tile_rows, tiles = _tiling(m)
    threads = _threads(width)
    _launch(_gradient_kernel, (_blocks(width, threads), tiles), threads, data.X, data.mean,
            data.inv_std, data.spec, workspace.rows, workspace.resid, workspace.loss, m,
            tile_rows, workspace.partial, workspace.loss_partial)
    return tiles


def _reduce_threads(n_params, tiles):
    return _threads(max(n_params, tiles), _REDUCE_THREADS)


# ---------------------------------------------------------------------------------------------
# Optimizer coefficients, computed on the host as fastopt/reference/optim.py does

def _coefficients(optimizer, lrs, step, mu_product):
    """``(table, flags, step, mu_product)``: one float64 row of kernel coefficients per learning
    rate in ``lrs`` (one per update; the layouts are written next to the device functions), the
    flags of the optimizer, and the step counter and NAdam product after these updates."""
    kind = optimizer._kind
    h = optimizer._hyperparameters()
    wd = h["weight_decay"]
    decoupled = h.get("decoupled_weight_decay", False)
    if kind == "rmsprop":
        lerp_weight = 1.0 - h["alpha"]
    else:  # the Adam family (unused by the others)
        lerp_weight = 1 - h.get("beta1", 0.0)
    flags = ((_COUPLED if wd != 0 and not decoupled else 0)
             | (_DECOUPLED if wd != 0 and decoupled else 0)
             | (_LERP_LOW if abs(lerp_weight) < 0.5 else 0)
             | (_MOMENTUM if kind in ("sgd", "rmsprop") and h["momentum"] > 0 else 0)
             | (_NESTEROV if h.get("nesterov") else 0)
             | (_CENTERED if h.get("centered") else 0)
             | (_AMSGRAD if h.get("amsgrad") else 0))
    table = np.zeros((len(lrs), _N_COEFS))
    for row, lr in zip(table, lrs):
        lr = float(lr)
        if kind == "sgd":
            row[:5] = wd, h["momentum"], 1.0 - h["dampening"], -lr, float(step == 0)
            step += 1
            continue
        step += 1
        if kind == "adagrad":
            clr = lr / (1 + (step - 1) * h["lr_decay"])
            row[:3] = wd, -clr, h["eps"]
        elif kind == "rmsprop":
            row[:8] = (wd, h["alpha"], 1.0 - h["alpha"], h["eps"], h["momentum"], -lr,
                       lerp_weight, 1.0 - lerp_weight)
        elif kind == "adadelta":
            row[:5] = wd, h["rho"], 1.0 - h["rho"], h["eps"], -lr
        else:
            beta1, beta2 = h["beta1"], h["beta2"]
            row[:7] = (wd, 1 - lr * wd, lerp_weight, 1.0 - lerp_weight, beta2, 1 - beta2,
                       h["eps"])
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            if kind == "adam":
                row[7:9] = -(lr / bias_correction1), bias_correction2**0.5
            elif kind == "nadam":
                decay = h["momentum_decay"]
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * decay)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * decay)))
                mu_product *= mu
                mu_product_next = mu_product * mu_next
                row[7:10] = (-lr * (1.0 - mu) / (1.0 - mu_product),
                             (-lr * mu_next) / (1.0 - mu_product_next), bias_correction2)
            else:  # radam
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
                rectified = rho_t > 5.0
                rect = 0.0
                if rectified:
                    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                            / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                row[7:12] = (bias_correction1, lr, rect, bias_correction2**0.5,
                             float(rectified))
    return table, flags, step, mu_product


def _slots(kind, arrays, dtype):
    """The state arrays (by name) in the kernel's three slots, dummies where absent."""
    return [arrays[name] if name is not None and name in arrays else _dummy(dtype)
            for name in _SLOTS[kind]]


# ---------------------------------------------------------------------------------------------
# The backend functions

def optimizer_step(optimizer, params, grad, state, lr):
    """One in-place update. NumPy arrays are copied to the device and back; device arrays
    (numba, or with ``__cuda_array_interface__``) are updated where they are."""
    names = optimizer._state_names()
    named = [("params", params), ("grad", grad)] + [(f"state[{n!r}]", state[n]) for n in names]
    step = check_step(params, grad, state, names, is_device=is_device_array)
    for what, array in named:
        if is_device_array(array) and not _as_device(array).is_c_contiguous():
            raise ValueError(f"{what} must be C-contiguous: the update is done in place")
    table, flags, step, mu_product = _coefficients(
        optimizer, [lr], step, float(state.get("mu_product", 1.0)))
    size = int(np.prod(params.shape))
    if size:
        flat = {}
        for what, array in named:
            flat[what] = (_as_device(array).reshape(size) if is_device_array(array)
                          else _upload(array.reshape(size)))
        arrays = {name: flat[f"state[{name!r}]"] for name in names}
        threads = _threads(size)
        _launch(_step_kernel, _blocks(size, threads), threads, _KINDS[optimizer._kind], flags,
                flat["params"], flat["grad"], *_slots(optimizer._kind, arrays, params.dtype),
                _upload(table.astype(params.dtype)))
        for what, array in named:
            if what != "grad" and not is_device_array(array):
                flat[what].copy_to_host(array.reshape(size))
    state["step"] = step
    if "mu_product" in state:
        state["mu_product"] = mu_product


class _Training:
    """Device copies of a TrainingState's parameters and optimizer state, with the host arrays
    they were last synchronised with (the objects and their bytes)."""

    def __init__(self, names, host):
        self.names = names
        self.host = host
        self.device = [_upload(array) for array in host]
        self.remember()

    def remember(self):
        self.snapshot = [array.tobytes() for array in self.host]

    def matches(self, names, host):
        return (names == self.names
                and all(a is b for a, b in zip(host, self.host))
                and all(a.tobytes() == s for a, s in zip(host, self.snapshot)))


def _training_arrays(data, state):
    """The device copies of ``state``'s parameters and optimizer state, uploaded unless the ones
    kept from the last epoch still match the host arrays."""
    names = tuple(state.optimizer._state_names())
    host = [state.params] + [state.optimizer_state[name] for name in names]
    if any(is_device_array(array) for array in host):
        raise TypeError("TrainingState arrays must be NumPy arrays; the CUDA backend keeps its "
                        "own device copies")
    check_step(host[0], host[0], state.optimizer_state, names)
    training = data.training
    if training is None or not training.matches(names, host):
        training = data.training = _Training(names, host)
    return training


def _forget(data):
    """Drop the device copies of the training state (they no longer match its host arrays)."""
    data.training = None


def epoch(data, state, lrs, batch_size, shuffle, threads=1, lazy=False):  # noqa: ARG001
    """One epoch of minibatch training on the device; ``(mean loss, updates, ok, failed_step)``
    as the C++ epoch. On success the parameters and optimizer state are mirrored into
    ``state``'s arrays; on failure those are left as they were (the caller rolls back)."""
    n = data.n_samples
    spec = data.model
    steps = -(-n // batch_size)
    opt = state.optimizer
    st = state.optimizer_state
    dtype = state.params.dtype
    training = _training_arrays(data, state)
    params = training.device[0]
    slots = _slots(opt._kind, dict(zip(training.names, training.device[1:])), dtype)
    table, flags, step, mu_product = _coefficients(
        opt, np.asarray(lrs[:steps], dtype=np.float64), int(st["step"]),
        float(st.get("mu_product", 1.0)))
    coefs = _upload(table.astype(dtype))
    perm = _upload(_permutation(n, state.seed, state.epochs, shuffle, batch_size))
    workspace = _workspace(data, spec, batch_size)
    grad = workspace.grad(spec.n_params, dtype)
    objectives = cuda.device_array(steps, dtype=np.float64)
    kind = _KINDS[opt._kind]
    try:
        for j in range(steps):
            first = j * batch_size
            m = min(batch_size, n - first)
            tiles = _batch_gradient(data, workspace, spec, params, perm, first, m)
            _launch(_reduce_kernel, 1, _reduce_threads(spec.n_params, tiles), params,
                    data.spec, data.penalty, workspace.partial, workspace.loss_partial, tiles,
                    m, objectives, j, grad, kind, flags, *slots, coefs)
        values = objectives.copy_to_host()
        new_params = params.copy_to_host()
    except BaseException:  # KeyboardInterrupt included: the device copies are half updated
        _forget(data)
        raise
    total = 0.0
    for j, value in enumerate(values):
        if not math.isfinite(value):
            _forget(data)
            return total / n, j, False, j
        total += float(value)
    if not np.isfinite(new_params).all():
        _forget(data)
        return total / n, steps, False, steps - 1
    state.params[...] = new_params
    for name, device in zip(training.names, training.device[1:]):
        device.copy_to_host(st[name])
    training.remember()
    st["step"] = step
    if "mu_product" in st:
        st["mu_product"] = mu_product
    return total / n, steps, True, -1


def objective(data, params, threads=1):
    """``(L(params), float64 gradient)`` over all rows, in order (``threads``: host threads,
    which the device does not use)."""
    n, spec = data.n_samples, data.model
    workspace = _workspace(data, spec, n)
    grad = workspace.grad(spec.n_params, np.float64)
    if data.in_order is None:
        data.in_order = _upload(_permutation(n, 0, 0, False))
    device_params = (_as_device(params) if is_device_array(params)
                     else _upload(np.asarray(params)))
    tiles = _batch_gradient(data, workspace, spec, device_params, data.in_order, 0, n)
    _launch(_reduce_kernel, 1, _reduce_threads(spec.n_params, tiles), device_params,
            data.spec, data.penalty, workspace.partial, workspace.loss_partial, tiles, n,
            workspace.out, 0, grad, _NO_UPDATE, 0, *_slots("sgd", {}, np.float64),
            _dummy(np.float64, 2))
    loss_sum, penalty_value = workspace.out.copy_to_host()
    return float(loss_sum) / n + float(penalty_value), grad.copy_to_host()


# ---------------------------------------------------------------------------------------------
# Device input (the engine calls these through the backend record)

def check_device_X(X, name="X"):
    """``X`` in GPU memory as a numba device array over the same memory (no copy): 2-D,
    float32/float64, C-contiguous, non-empty, finite; ``ValueError`` otherwise."""
    X = _as_device(X)
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead (a device array of "
                         f"shape {tuple(X.shape)}).")
    if X.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} in GPU memory must have dtype float32 or float64 (it is not "
                         f"converted on the device); got {X.dtype}")
    if not X.is_c_contiguous():
        raise ValueError(f"{name} in GPU memory must be C-contiguous (it is not copied on the "
                         "device)")
    for axis, what in ((0, "sample"), (1, "feature")):
        if X.shape[axis] < 1:
            raise ValueError(f"Found array with 0 {what}(s) (shape={tuple(X.shape)}) while a "
                             "minimum of 1 is required.")
    found = cuda.to_device(np.zeros(2, dtype=np.int32))
    threads = _threads(X.size)
    _launch(_nonfinite_kernel, min(_blocks(X.size, threads), 1024), threads, X, found)
    nan, inf = found.copy_to_host()
    if nan:
        raise ValueError(f"Input {name} contains NaN.")
    if inf:
        raise ValueError(f"Input {name} contains infinity or a value too large for "
                         f"dtype('{X.dtype}').")
    return X


def column_scaling(X, sample_weight=None, host=_scaling.column_scaling):
    """Per-feature mean and 1/std (float64 NumPy arrays) of X under the host ``sample_weight``
    (or None), as ``fastopt._scaling.column_scaling`` computes them: on the device for a device
    X, else by ``host``."""
    if not is_device_array(X):
        return host(X, sample_weight)
    n, d = X.shape
    weight = _dummy(np.float64) if sample_weight is None else _upload(
        np.asarray(sample_weight, dtype=np.float64))
    weighted = int(sample_weight is not None)
    tile_rows, tiles = _tiling(n)
    threads = _threads(d)
    grid = (_blocks(d, threads), tiles)
    partial = cuda.device_array((tiles, d), dtype=np.float64)
    _launch(_column_sums_kernel, grid, threads, X, weight, weighted, _dummy(np.float64), 0,
            tile_rows, partial)
    mean = partial.copy_to_host().sum(axis=0) / n
    _launch(_column_sums_kernel, grid, threads, X, weight, weighted, _upload(mean), 1,
            tile_rows, partial)
    std = np.sqrt(partial.copy_to_host().sum(axis=0) / n)
    return mean, _scaling.inverse_std(mean, std)


def take_rows(X, rows):
    """``X[rows]``: for a device X a new device array holding the rows ``rows`` (host
    integers)."""
    if not is_device_array(X):
        return _scaling.take_rows(X, rows)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = cuda.device_array((len(rows), X.shape[1]), dtype=X.dtype)
    size = len(rows) * X.shape[1]
    if size:
        threads = _threads(size)
        _launch(_take_rows_kernel, _blocks(size, threads), threads, X, _upload(rows), out)
    return out
