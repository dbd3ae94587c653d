"""Column statistics for ``standardize=True`` and row selection, on host arrays.

The backends build their ``column_scaling`` and ``take_rows`` from these (the compiled one
passes its one-pass moments; the CUDA one handles arrays in GPU memory itself).
"""

from __future__ import annotations

import numpy as np

from . import _validation as v


def inverse_std(mean, std):
    """1/std per feature, and 1 for a feature that does not vary (relative to its mean): such a
    feature is then only centred. Every way of computing the statistics ends here."""
    inv_std = np.ones_like(std)
    np.divide(1.0, std, out=inv_std, where=std > 1e-12 * np.maximum(np.abs(mean), 1.0))
    return inv_std


def column_scaling(X, sample_weight=None, moments=None):
    """Per-feature mean and 1/std in float64, computed in row blocks (no copy of X); features
    with zero variance get 1/std = 1. With ``sample_weight`` (mean 1, as ``prepare`` makes it)
    a row of weight k counts as k copies of the row, and a zero weight as a removed row.
    ``moments(X, sample_weight) -> (mean, sum of squared deviations)``: a one-pass compiled
    implementation for dense X, whose results are non-finite wherever X is.

    Raises the ValueError for NaN/inf in a dense X: callers may skip that check of X
    (``check_X(check_finite=False)``) when they scale it."""
    if v.is_sparse(X):
        return _sparse_column_scaling(X, sample_weight)
    n = len(X)
    if moments is not None:
        # One pass over X in the compiled module (~3x faster than the NumPy passes below).
        mean, m2 = moments(X, sample_weight)
        std = np.sqrt(m2 / n)
        if np.all(np.isfinite(mean)) and np.all(np.isfinite(std)):
            return mean, inverse_std(mean, std)

    def weighted_sum(rows, values):
        return (values.sum(axis=0) if sample_weight is None
                else sample_weight[rows] @ values)

    def two_passes(unit=None):
        total = np.zeros(X.shape[1])
        for rows in v.row_blocks(X):
            block = np.asarray(X[rows], dtype=np.float64)
            total += weighted_sum(rows, block if unit is None else block / unit)
        mean = total / n if unit is None else total / n * unit
        squares = np.zeros(X.shape[1])
        for rows in v.row_blocks(X):
            centered = np.subtract(X[rows], mean, dtype=np.float64)
            if unit is not None:
                centered /= unit
            squares += weighted_sum(rows, centered * centered)
        std = np.sqrt(squares / n)
        return mean, std if unit is None else std * unit

    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = two_passes()
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        v.assert_all_finite(X)
        # Features too large to square (beyond ~1e150): summed divided by their largest
        # magnitude, then scaled back. Only then: it costs one more pass over X.
        peak = np.zeros(X.shape[1])
        for rows in v.row_blocks(X):
            np.maximum(peak, np.abs(np.asarray(X[rows], dtype=np.float64)).max(axis=0),
                       out=peak)
        mean, std = two_passes(np.where(peak > 1.0, peak, 1.0))
    return mean, inverse_std(mean, std)


def _sparse_column_scaling(X, sample_weight):
    """column_scaling of a CSR X from weighted first and second moments over the stored
    entries (the zeros contribute nothing to either sum)."""
    n = X.shape[0]
    s = np.ones(n) if sample_weight is None else sample_weight
    mean = np.asarray(X.T @ s, dtype=np.float64).ravel() / n
    squares = X.copy()
    squares.data = np.square(squares.data, dtype=np.float64)
    second = np.asarray(squares.T @ s, dtype=np.float64).ravel() / n
    std = np.sqrt(np.maximum(second - mean * mean, 0.0))
    return mean, inverse_std(mean, std)


def take_rows(X, rows):
    """``X[rows]`` for a host X: C-contiguous for a dense X, CSR for a sparse one."""
    if v.is_sparse(X):
        return X[rows]
    return np.ascontiguousarray(X[rows])
