"""The epoch shuffle: a keyed pseudo-random bijection of ``[0, n)``, evaluated per position.

Every backend implements exactly this algorithm, so that they visit rows in the same order and
can be compared update by update. Evaluating it per position needs no O(n) shuffle pass and tells
the compiled loops which rows come next (they prefetch them).

Algorithm
---------
1. Round keys. ``splitmix64`` is the SplitMix64 output function. For a fit seeded with
   ``seed`` (an int in ``[0, 2**64)``), epoch ``e`` uses the four 32-bit keys
   ``k_r = splitmix64(splitmix64(seed) + 4 e + r) mod 2**32`` for ``r = 0..3``.
2. Domain. With ``k = bit_length(n - 1)``, positions live in ``[0, 2**k)``, at most ``2n``
   values, split into a left part of ``a = k // 2`` bits and a right part of ``b = k - a``.
3. Feistel network, 4 rounds: ``(L, R) -> (R, L xor (h(R xor k_r) mod 2**width(L)))``; the
   widths of the two parts swap every round, so after 4 rounds they are back to ``(a, b)`` and
   the result is ``L * 2**b + R``. ``h`` is the 32-bit integer hash "lowbias32"
   (xorshift-multiply: shifts 16, 15, 16, multipliers 0x7feb352d, 0x846ca68b). Each round is
   invertible, so this is a bijection of ``[0, 2**k)``.
4. Cycle walking: position ``i`` goes to ``x = F(i)``, then ``x = F(x)`` while ``x >= n``. This
   restricts the bijection to ``[0, n)`` (at most 2 evaluations on average).

Epoch ``e`` visits rows ``permutation(n, seed, e)[0], [1], ...``; minibatch ``j`` is positions
``[j B, min((j + 1) B, n))``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["splitmix64", "round_keys", "feistel", "permutation"]

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
ROUNDS = 4


def splitmix64(x: int) -> int:
    """SplitMix64 output function on a Python int (arithmetic mod 2**64)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def round_keys(seed: int, epoch: int) -> list[int]:
    """The four 32-bit round keys of ``epoch`` for a fit seeded with ``seed``."""
    base = splitmix64(seed & MASK64)
    return [splitmix64((base + ROUNDS * epoch + r) & MASK64) & MASK32 for r in range(ROUNDS)]


def _hash32(x):
    """lowbias32 on a uint32 array (NumPy array arithmetic wraps mod 2**32)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def feistel(x, bits: int, keys) -> np.ndarray:
    """The bijection of ``[0, 2**bits)`` defined above, on a uint64 array."""
    x = np.asarray(x, dtype=np.uint64)
    right_bits = bits - bits // 2
    width_left, width_right = bits // 2, right_bits
    left = x >> np.uint64(width_right)
    right = x & np.uint64((1 << width_right) - 1)
    for key in keys:
        mixed = _hash32((right & np.uint64(MASK32)).astype(np.uint32) ^ np.uint32(key))
        f = mixed.astype(np.uint64) & np.uint64((1 << width_left) - 1)
        left, right = right, left ^ f
        width_left, width_right = width_right, width_left
    return (left << np.uint64(right_bits)) | right


def permutation(n: int, seed: int, epoch: int, positions=None) -> np.ndarray:
    """Rows visited at ``positions`` (default: all of ``0..n-1``) in ``epoch``, as int64."""
    if positions is None:
        positions = np.arange(n, dtype=np.uint64)
    positions = np.asarray(positions, dtype=np.uint64)
    if n <= 1:
        return positions.astype(np.int64)
    bits = int(n - 1).bit_length()
    keys = round_keys(seed, epoch)
    x = feistel(positions, bits, keys)
    outside = x >= np.uint64(n)
    while outside.any():
        x[outside] = feistel(x[outside], bits, keys)
        outside = x >= np.uint64(n)
    return x.astype(np.int64)
