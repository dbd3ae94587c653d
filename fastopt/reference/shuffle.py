"""The epoch shuffle: a uniform random permutation of the rows, the same in every backend.

Every backend implements exactly this algorithm, so that they visit rows in the same order and
can be compared update by update. It is the Fisher-Yates shuffle, so every one of the ``n!``
orders is equally likely (up to the quality of the random stream).

Algorithm
---------
1. The random stream. ``splitmix64(x)`` is the SplitMix64 output function applied to
   ``x + 0x9E3779B97F4A7C15`` (mod 2**64). For a fit seeded with ``seed`` (an int in
   ``[0, 2**64)``), epoch ``e`` has the key ``key = splitmix64(splitmix64(seed) + e)`` and draws
   the 32-bit numbers ``u_k = splitmix64(key + k * 0x9E3779B97F4A7C15) >> 32``, ``k = 0, 1, ...``
   (the SplitMix64 generator seeded with ``key``, high halves).
2. Bounded integers (Lemire's multiply-shift with rejection): a uniform ``j`` in ``[0, b)``
   takes the next ``u``, ``m = u * b`` (64-bit); if ``m mod 2**32 < (2**32 mod b)`` the draw is
   rejected and the next ``u`` is taken; else ``j = m >> 32``.
3. Fisher-Yates (Durstenfeld): ``order = [0, 1, ..., n-1]``; for ``i = n-1`` down to 1, draw
   ``j`` in ``[0, i + 1)`` and swap ``order[i]`` and ``order[j]``.

Epoch ``e`` visits rows ``order[0], order[1], ...``; minibatch ``j`` is positions
``[j B, min((j + 1) B, n))``. The shuffle needs ``n < 2**32`` rows.

``shuffle="batches"`` (:func:`batch_permutation`) shuffles blocks instead of rows: block ``k``
is rows ``[k B, min((k + 1) B, n))``, the ``ceil(n / B)`` blocks are visited in the order the
algorithm above gives to that many items (same key), and each block's rows in order. The
minibatches are positions ``[j B, min((j + 1) B, n))`` of that order as always, so a minibatch
is one block, or (after the short last block, wherever it falls) parts of two neighbouring
ones. It reads X in runs of ``B`` consecutive rows, which is cheaper than random rows, but
every epoch's minibatches are made of the same rows: not a uniform shuffle of the rows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["splitmix64", "epoch_key", "random_stream", "permutation", "batch_permutation",
           "epoch_order", "MAX_ROWS"]

MASK64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15
MAX_ROWS = 2**32 - 1  # the bounded draws are 32-bit


def splitmix64(x):
    """SplitMix64 of ``x + GOLDEN`` on a Python int, or elementwise on a uint64 array
    (arithmetic mod 2**64)."""
    if isinstance(x, np.ndarray):
        with np.errstate(over="ignore"):
            z = x + np.uint64(GOLDEN)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return z ^ (z >> np.uint64(31))
    z = (x + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def epoch_key(seed: int, epoch: int) -> int:
    """The key of ``epoch``'s random stream for a fit seeded with ``seed``."""
    return splitmix64((splitmix64(seed & MASK64) + epoch) & MASK64)


def random_stream(key: int, start: int, count: int) -> np.ndarray:
    """``u_start, ..., u_{start+count-1}`` of the stream with ``key``, as uint64."""
    k = np.arange(start, start + count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return splitmix64(np.uint64(key) + k * np.uint64(GOLDEN)) >> np.uint64(32)


def _swap_targets(n: int, key: int) -> np.ndarray:
    """``j_i`` for ``i = n-1, n-2, ..., 1``: the bounded draws in order, rejections skipped.
    Vectorised between rejections, which are rare (about n**2 / 2**33 of them)."""
    bounds = np.arange(n, 1, -1, dtype=np.uint64)  # i + 1 for i = n-1 .. 1
    out = np.empty(len(bounds), dtype=np.int64)
    done, drawn = 0, 0
    while done < len(bounds):
        b = bounds[done:]
        u = random_stream(key, drawn, len(b))
        m = u * b  # < 2**64: both factors < 2**32
        threshold = (np.uint64(2**32) - b) % b  # 2**32 mod b
        rejected = np.flatnonzero((m & np.uint64(0xFFFFFFFF)) < threshold)
        good = len(b) if len(rejected) == 0 else int(rejected[0])
        out[done:done + good] = (m[:good] >> np.uint64(32)).astype(np.int64)
        done += good
        drawn += good + (1 if good < len(b) else 0)  # a rejected draw is consumed
    return out


def permutation(n: int, seed: int, epoch: int, positions=None) -> np.ndarray:
    """Rows visited at ``positions`` (default: all of ``0..n-1``) in ``epoch``, as int64."""
    if not 0 <= n <= MAX_ROWS:
        raise ValueError(f"the shuffle handles up to {MAX_ROWS} rows, got {n}")
    order = np.arange(n, dtype=np.int64)
    if n > 1:
        targets = _swap_targets(n, epoch_key(seed, epoch)).tolist()
        values = order.tolist()  # Python lists: the sequential swaps run ~10x faster
        for i, j in zip(range(n - 1, 0, -1), targets):
            values[i], values[j] = values[j], values[i]
        order = np.array(values, dtype=np.int64)
    if positions is None:
        return order
    return order[np.asarray(positions, dtype=np.int64)]


def batch_permutation(n: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """Rows visited in ``epoch`` with ``shuffle="batches"``: blocks of ``batch_size``
    consecutive rows in a shuffled order (module docstring), as int64."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    blocks = -(-n // batch_size)
    starts = permutation(blocks, seed, epoch) * batch_size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    sizes = np.minimum(starts + batch_size, n) - starts
    offsets = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.repeat(starts, sizes) + offsets


def epoch_order(n: int, batch_size: int, shuffle, seed: int, epoch: int) -> np.ndarray:
    """The rows of an epoch in visiting order: ``shuffle`` False (in order), True (shuffled
    rows) or "batches" (shuffled blocks of ``batch_size`` rows)."""
    if shuffle == "batches":
        return batch_permutation(n, batch_size, seed, epoch)
    return permutation(n, seed, epoch) if shuffle else np.arange(n, dtype=np.int64)
