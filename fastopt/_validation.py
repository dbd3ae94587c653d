"""Input checks shared by ``fastopt.fit`` and the estimators. Messages follow scikit-learn's
wording where it has one."""

from __future__ import annotations

import numbers
import os
import secrets
import sys

import numpy as np

BLOCK_BYTES = 1 << 20  # a full scan of X works on blocks this large, never a copy of X


def is_dask_collection(obj):
    """Whether ``obj`` is a dask collection (array, DataFrame, Series), without importing
    dask when it was not imported already."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(obj)


def row_blocks(X):
    """Slices of about BLOCK_BYTES (in float64) that cover the rows of X."""
    width = 8 * max(1, int(np.prod(X.shape[1:])))
    step = max(1, BLOCK_BYTES // width)
    return [slice(start, start + step) for start in range(0, X.shape[0], step)]


def is_sparse(X):
    """Whether ``X`` is a SciPy sparse matrix or array (SciPy is not imported to find out: a
    sparse X means it already was)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def n_rows(X):
    """Rows of a dense, sparse or device X (``len`` is ambiguous for SciPy's matrices)."""
    return X.shape[0]


def _check_not_empty(X):
    for axis, what in enumerate(("sample", "feature")):
        if X.shape[axis] < 1:
            raise ValueError(f"Found array with 0 {what}(s) ({_describe(X)}) while a minimum "
                             "of 1 is required.")


def check_sparse_X(X, name="X", allow_float32=True):
    """A sparse ``X`` as canonical CSR (CSC, COO and the other formats converted once; CSR
    itself is not copied) with float32/float64 values, every value finite, at least one row
    and column.

    A CSR with duplicate entries (allowed by SciPy, and meaning their sum) or unsorted
    indices is canonicalised on a copy, never in the user's matrix: every backend, the feature
    statistics and the lazy sparse updates then see one entry per (row, column)."""
    X = canonical_csr(X)
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D sparse array instead.")
    if np.iscomplexobj(X.data):
        raise ValueError("Complex data not supported")
    _check_not_empty(X)
    keep = (np.float32, np.float64) if allow_float32 else (np.float64,)
    if X.dtype.type not in keep:
        if X.dtype.kind not in "fiub":
            raise ValueError(f"{name} has unsupported dtype {X.dtype}")
        X = X.astype(np.float64)
    if X.indices.dtype != X.indptr.dtype:  # rare (SciPy keeps them alike): new index arrays
        X = type(X)((X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)),
                    shape=X.shape)
    assert_all_finite(X.data, name)
    return X


def canonical_csr(X):
    """``X`` as CSR with one entry per (row, column), sorted: ``X`` itself when it already is,
    else a converted or copied matrix (the user's is never modified)."""
    original, X = X, X.tocsr()
    if not X.has_canonical_format:
        X = X.copy() if X is original else X
        X.sum_duplicates()
    return X


def is_device_array(X):
    """Whether ``X`` lives in GPU memory: a numba device array, or anything exposing
    ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors)."""
    return hasattr(X, "__cuda_array_interface__") or bool(getattr(X, "__cuda_ndarray__", False))


def _describe(array):
    return f"shape={array.shape}"


def feature_names(X):
    """The column names of a pandas or polars DataFrame (any table with a ``columns`` list of
    strings) as an object array, else None: what scikit-learn keeps as ``feature_names_in_``."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = list(columns)
    if not names or not all(isinstance(name, str) for name in names):
        return None
    return np.asarray(names, dtype=object)


def _first_non_numeric(array, X):
    """Where the first value that is not a number is, for the error message: its column
    (by name for a DataFrame) and the value."""
    names = feature_names(X)
    for j in range(array.shape[1]):
        for value in array[:, j]:
            try:
                float(value)
            except (TypeError, ValueError):
                column = repr(names[j]) if names is not None else j
                return f": column {column} holds {value!r}"
    return ""


def check_X(X, *, name="X", allow_float32=True, check_device=None, accept_sparse=True,
            check_finite=True):
    """``X`` as a 2-D C-contiguous float32/float64 array: the input itself when it already is one
    (no copy), else a float64 (or float32) C-ordered copy. Refuses NaN/inf, complex, strings,
    objects, empty input. A SciPy sparse X comes back as CSR (see ``check_sparse_X``) unless
    ``accept_sparse`` is False.

    ``check_device(X, name)``: the check of an ``X`` in GPU memory by the backend that trains
    there (CUDA's returns a numba device array over the same memory); without it such an X is
    refused.
    ``check_finite=False`` skips the NaN/inf check of a dense host X (the caller's duty then:
    see ``Problem.check_finite_later``)."""
    if is_sparse(X):
        if not accept_sparse:
            raise TypeError(f"{name} is a sparse matrix; this needs dense data: pass "
                            f"{name}.toarray()")
        return check_sparse_X(X, name, allow_float32)
    if is_device_array(X):
        if check_device is None:
            raise ValueError(f"{name} is in GPU memory (it exposes __cuda_array_interface__); "
                             "only backend='cuda' trains on device arrays. Pass "
                             f"backend='cuda', or copy {name} to host memory first.")
        return check_device(X, name)
    if hasattr(X, "__array__") or isinstance(X, (list, tuple)):
        try:
            array = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from None
    else:
        raise TypeError(f"{name} must be an array-like, got {type(X).__name__}")
    if np.iscomplexobj(array):
        raise ValueError("Complex data not supported")
    if array.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {array.ndim}D array instead:\narray={array!r}.\n"
            "Reshape your data either using array.reshape(-1, 1) if your data has a single "
            "feature or array.reshape(1, -1) if it contains a single sample.")
    if array.dtype.kind not in "fiub":
        if array.dtype.kind in "OUS":
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be numeric; got dtype {array.dtype} with "
                                 f"non-numeric values{_first_non_numeric(array, X)} (encode "
                                 "strings/categories first)") from None
        else:
            raise ValueError(f"{name} has unsupported dtype {array.dtype}")
    _check_not_empty(array)
    keep = (np.float32, np.float64) if allow_float32 else (np.float64,)
    dtype = array.dtype.type if array.dtype.type in keep else np.float64
    array = np.ascontiguousarray(array, dtype=dtype)
    if check_finite:
        assert_all_finite(array, name)
    return array


def assert_all_finite(array, name="X"):
    """NaN/inf check without allocating a boolean array the size of the input: a sum in the
    array's own dtype (one pass at memory speed) is finite unless something is not, or the sum
    overflowed; only then are the blocks checked one by one."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(array)):
            return
    for rows in row_blocks(array):
        block = array[rows]
        if np.isnan(block).any():
            raise ValueError(f"Input {name} contains NaN.")
        if not np.isfinite(block).all():
            raise ValueError(f"Input {name} contains infinity or a value too large for "
                             f"dtype('{array.dtype}').")


def checked_scores(X, coef, intercept, *, ravel=False, check=assert_all_finite):
    """``X @ coef.T + intercept``, and the NaN/inf check of X only when a score is not finite:
    a NaN or inf in a row makes its scores non-finite (finite coefficients; inf * 0 is NaN),
    so a bad row always shows, and finite X is not scanned (the pass cost ~2.7x the product,
    W1-sized X: 92 of 146 ms)."""
    with np.errstate(invalid="ignore"):  # inf * 0 in a bad row: the error comes below
        scores = np.asarray(X @ coef.T) + intercept
    if not np.isfinite(scores).all():
        check(X)
    return scores.ravel() if ravel else scores


def check_consistent_length(*arrays):
    lengths = [len(a) for a in arrays if a is not None]
    if len(set(lengths)) > 1:
        raise ValueError("Found input variables with inconsistent numbers of samples: "
                         f"{lengths}")


def check_target(y, n_samples, *, regression):
    """1-D target; float64 and finite for regression, any labels for classification."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
    check_consistent_length(np.empty(n_samples), y)
    if regression:
        if np.iscomplexobj(y):
            raise ValueError("Complex data not supported")
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("y must be numeric for regression") from None
        assert_all_finite(y, "y")
    else:
        if y.dtype.kind == "f":
            assert_all_finite(y, "y")
        if y.dtype.kind == "c":
            raise ValueError("Complex data not supported")
    return y


def class_indices(y, classes):
    """Each label's index into the sorted ``classes`` (as float64); a ValueError names the
    labels that are not among them. Two numeric classes take two comparisons: np.unique of y
    and np.searchsorted cost ~2.6 ms of a 200,000-row fit's ~80 ms (bench T1)."""
    if len(classes) == 2 and y.ndim == 1 and y.dtype.kind in "biuf":
        high = y == classes[1]
        known = high | (y == classes[0])
        targets = high.astype(np.float64)
    else:
        found = np.searchsorted(classes, y)
        known = found < len(classes)
        known[known] = classes[found[known]] == y[known]
        targets = found.astype(np.float64)
    if not known.all():
        raise ValueError(f"y contains labels not in classes: {np.unique(y[~known]).tolist()}")
    return targets


def check_class_labels(y):
    """A ValueError where ``y`` are not class labels (continuous or multi-output targets), as
    scikit-learn's ``check_classification_targets`` says it. A 1-d array of integers, bools or
    floats that are whole numbers within int64 (scikit-learn's test) is answered here:
    ``type_of_target``'s generic checks took ~180 us a fit, 15% of a fit on 1,000 x 10."""
    if isinstance(y, np.ndarray) and y.ndim == 1:
        if y.dtype.kind in "biu":
            return
        # NaN and inf fail the first test; they go on to scikit-learn's message.
        if y.dtype.kind == "f" and (np.abs(y) < 2.0**63).all() and (y == np.floor(y)).all():
            return
    from sklearn.utils.multiclass import check_classification_targets
    check_classification_targets(y)


def encode_labels(y):
    """``(classes, indices)``: the sorted distinct labels and each row's index into them."""
    if y.ndim == 1 and y.dtype.kind in "biuf" and len(y):
        # Two numeric classes, the common case: min, max and two comparisons, ~7x faster than
        # np.unique's sort (~6 ms for 5e5 labels, most of fit()'s checks on W2).
        low, high = y.min(), y.max()
        is_high = y == high
        if low != high and np.logical_or(is_high, y == low).all():
            return np.array([low, high], dtype=y.dtype), is_high.astype(np.float64)
    try:
        classes, indices = np.unique(y, return_inverse=True)
    except TypeError:
        raise ValueError("y mixes label types that cannot be ordered (e.g. str and int)") from None
    if len(classes) < 2:
        raise ValueError("This solver needs samples of at least 2 classes in the data, but the "
                         f"data contains only one class: {classes.tolist()[0]!r}")
    return classes, indices.astype(np.float64).ravel()


def check_sample_weight(sample_weight, n_samples, mean=None):
    """float64 weights rescaled to mean 1 (``None`` when not given), or divided by ``mean``
    when given: the mean weight of the whole data set that these rows are a part of."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, float(sample_weight))
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim != 1 or len(weights) != n_samples:
        raise ValueError(f"sample_weight.shape == {weights.shape}, expected ({n_samples},)!")
    assert_all_finite(weights, "sample_weight")
    if (weights < 0).any():
        raise ValueError("Negative values in data passed to `sample_weight`")
    if mean is not None:
        return weights / mean
    total = weights.sum()
    if total <= 0:
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return weights * (n_samples / total)


def check_choice(name, value, options):
    if value not in options:
        valid = ", ".join(repr(o) for o in options)
        raise ValueError(f"The '{name}' parameter must be one of {valid}. Got {value!r} instead.")
    return value


def check_int(name, value, minimum, *, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"The '{name}' parameter must be an int >= {minimum}. "
                         f"Got {value!r} instead.")
    if value < minimum:
        raise ValueError(f"The '{name}' parameter must be an int >= {minimum}. "
                         f"Got {value!r} instead.")
    return int(value)


def check_n_jobs(n_jobs):
    """Threads for an epoch from scikit-learn's ``n_jobs``: None -> 1, -1 -> every CPU,
    -2 -> all but one, ...; at most 256."""
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"The 'n_jobs' parameter must be None or a non-zero int. Got "
                         f"{n_jobs!r} instead.")
    if n_jobs < 0:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + int(n_jobs))
    return min(int(n_jobs), 256)


def check_float(name, value, low, high=np.inf, *, allow_none=False, low_open=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"The '{name}' parameter must be a finite float. Got {value!r} instead.")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"The '{name}' parameter must be a float in {bracket}{low}, {high}]. "
                         f"Got {value!r} instead.")
    return float(value)


def check_random_state(random_state):
    """The ValueError of :func:`seed_from` for a bad ``random_state``, without drawing from a
    generator that is passed, or fresh entropy for None (~10 us a fit)."""
    if random_state is not None and not isinstance(
            random_state, (np.random.RandomState, np.random.Generator)):
        seed_from(random_state)


def seed_from(random_state):
    """A 64-bit shuffle seed from ``None`` (fresh entropy: the operating system's, as NumPy's
    SeedSequence draws it, whose hashing took 10-30 us a fit), an int, or a NumPy
    generator."""
    if random_state is None:
        return secrets.randbits(64)
    if isinstance(random_state, bool):
        raise ValueError(f"random_state must be None, an int or a numpy Generator; got "
                         f"{random_state!r}")
    if isinstance(random_state, numbers.Integral):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}")
        return int(random_state) & 0xFFFFFFFFFFFFFFFF
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy Generator; got "
                     f"{random_state!r}")
