"""Training on data that does not fit in memory: ``fastopt.fit_stream``.

The data comes in chunks of rows, read one at a time and dropped after use:

- ``(X, y)`` (or ``(X, y, sample_weight)``) arrays, typically a ``np.memmap`` larger than
  memory, cut into ``chunk_rows`` rows (slices of a memmap are views: only the chunk in use is
  read from disk);
- a list of ``(X, y)`` / ``(X, y, sample_weight)`` chunks, or a function returning a fresh
  iterator of them (the data is read once per epoch, plus once before training);
- a Parquet file (``str`` or ``Path``; needs pyarrow), read in batches of ``chunk_rows`` rows,
  with ``target=`` naming the column to predict and the other columns as features.

One pass over the chunks first collects what the whole data set decides: the number of rows,
the classes, the mean sample weight and, with ``standardize=True``, each feature's mean and
standard deviation (merged chunk by chunk with Chan's pairwise update). Then each epoch runs the
compiled epoch loop over the chunks in order, the optimizer state, the update counter (and so
the learning-rate schedule) and the shuffle stream carrying over from chunk to chunk; with
``shuffle=True`` rows are shuffled within each chunk. With ``shuffle=False`` and ``chunk_rows``
a multiple of ``batch_size`` the updates are exactly those of ``fastopt.fit`` on the data in
memory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import _validation as v
from .optim import Optimizer, make_optimizer
from .training import (FitResult, Problem, TrainingState, check_sparse_update, inverse_std,
                       prepare, to_original_space, train)

__all__ = ["fit_stream"]


def _chunk_source(data, chunk_rows, target):
    """A function returning a fresh iterator of ``(X, y, weights or None)`` chunks, and the
    number of chunks per pass when known (for the progress bar)."""
    if isinstance(data, (str, Path)):
        return _parquet_source(Path(data), chunk_rows, target)
    if target is not None:
        raise ValueError("target= names the label column of a Parquet file; with arrays pass "
                         "(X, y)")
    if callable(data):
        return lambda: ((*chunk, None)[:3] for chunk in data()), None
    if isinstance(data, tuple) and len(data) in (2, 3) and hasattr(data[0], "shape"):
        X, y = data[0], np.asarray(data[1])
        weights = None if len(data) == 2 else np.asarray(data[2], dtype=np.float64)
        n = X.shape[0]
        if len(y) != n or (weights is not None and len(weights) != n):
            raise ValueError(f"X has {n} rows but y (or sample_weight) has another length")
        starts = range(0, n, chunk_rows)

        def chunks():
            for start in starts:
                stop = min(start + chunk_rows, n)
                yield (X[start:stop], y[start:stop],
                       None if weights is None else weights[start:stop])
        return chunks, len(starts)
    if isinstance(data, (list, tuple)):
        chunks = [(*chunk, None)[:3] for chunk in data]
        return (lambda: iter(chunks)), len(chunks)
    raise TypeError("data must be (X, y) arrays, a list of (X, y) chunks, a function returning "
                    f"an iterator of them, or a Parquet file path; got {type(data).__name__}")


def _parquet_source(path, chunk_rows, target):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from None
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if target is None:
        raise ValueError("a Parquet source needs target= (the column to predict)")
    handle = pq.ParquetFile(path)
    names = handle.schema_arrow.names
    if target not in names:
        raise ValueError(f"target column {target!r} not in {path}; its columns: "
                         f"{', '.join(names)}")
    features = [name for name in names if name != target]

    def chunks():
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            columns = batch.to_pydict()
            X = np.column_stack([np.asarray(columns[name], dtype=np.float64)
                                 for name in features])
            yield np.ascontiguousarray(X), np.asarray(columns[target]), None
    return chunks, -(-handle.metadata.num_rows // chunk_rows)


class _Moments:
    """Weighted count, mean and sum of squared deviations per feature, merged chunk by chunk
    (Chan et al.'s pairwise update: stable, and independent of how the rows are cut up to
    rounding)."""

    def __init__(self):
        self.weight, self.mean, self.m2 = 0.0, None, None

    def add(self, X, weights):
        X = X.toarray() if v.is_sparse(X) else X
        w = np.ones(X.shape[0]) if weights is None else weights
        total = float(w.sum())
        if total == 0:
            return
        mean = (w @ np.asarray(X, dtype=np.float64)) / total
        centered = np.asarray(X, dtype=np.float64) - mean
        m2 = w @ (centered * centered)
        if self.mean is None:
            self.weight, self.mean, self.m2 = total, mean, m2
            return
        delta = mean - self.mean
        merged = self.weight + total
        self.mean = self.mean + delta * (total / merged)
        self.m2 = self.m2 + m2 + delta * delta * (self.weight * total / merged)
        self.weight = merged

    def scaling(self):
        return self.mean, inverse_std(self.mean, np.sqrt(self.m2 / self.weight))


def _progress(total, description, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="chunk", file=sys.stderr, leave=False,
                delay=0.5)


def fit_stream(data, *, model: str = "linear", optimizer: str | Optimizer = "adam",
               lr: float | None = None, schedule: object = None, epochs: int = 5,
               batch_size: int = 256, chunk_rows: int = 65_536, shuffle: bool = True,
               penalty: str | None = None, alpha: float = 1e-4, l1_ratio: float = 0.15,
               fit_intercept: bool = True, standardize: bool = False,
               classes=None, target: str | None = None,
               random_state: int | np.random.Generator | None = None, backend: str = "auto",
               n_jobs: int | None = None, sparse_update: str = "exact",
               progress: bool | None = None) -> FitResult:
    """Train on data read chunk by chunk (see the module docstring for the sources).

    The options are those of :func:`fastopt.fit`, plus ``chunk_rows`` (rows per chunk for
    arrays and Parquet files), ``classes`` (the labels, when known: saves nothing but checks
    them) and ``target`` (the label column of a Parquet file). All ``epochs`` run (there is
    no ``tol``); Newton's method is not available. ``progress``: a tqdm bar over the chunks of
    each pass on stderr; None: when stderr is a terminal.
    """
    v.check_int("epochs", epochs, 1)
    v.check_int("batch_size", batch_size, 1)
    v.check_int("chunk_rows", chunk_rows, 1)
    if isinstance(optimizer, str) and optimizer.lower() == "newton":
        raise ValueError("fit_stream trains with first-order optimizers; Newton's method "
                         "needs the whole data set (fastopt.fit)")
    v.check_n_jobs(n_jobs)
    check_sparse_update(sparse_update)
    source, count = _chunk_source(data, chunk_rows, target)
    progress = sys.stderr.isatty() if progress is None else bool(progress)

    # Pass 1: rows, classes, weights, feature statistics.
    rows, features, weight_sum, labels = 0, None, 0.0, []
    moments = _Moments() if standardize else None
    bar = _progress(count, "fit_stream: statistics", progress)
    for X, y, weights in source():
        X = v.check_X(X)
        y = v.check_target(y, X.shape[0], regression=model == "linear")
        if features is None:
            features = X.shape[1]
        elif X.shape[1] != features:
            raise ValueError(f"a chunk has {X.shape[1]} features, the first had {features}")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            weight_sum += float(weights.sum())
        else:
            weight_sum += X.shape[0]
        if model != "linear" and classes is None:
            labels.append(np.unique(y))
        if moments is not None:
            moments.add(X, weights)
        rows += X.shape[0]
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    if rows == 0:
        raise ValueError("the data has no rows")
    if model != "linear":
        classes = np.unique(np.concatenate(labels)) if classes is None else np.unique(classes)
        if len(classes) < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, but "
                             f"the data contains only one class: {classes.tolist()[0]!r}")
    mean_weight = weight_sum / rows
    mean, inv_std = moments.scaling() if moments is not None else (None, None)

    seed = v.seed_from(random_state)
    opt = make_optimizer(optimizer, **({} if lr is None else {"lr": lr}))
    state = None
    total_steps = epochs * -(-rows // batch_size)  # exact when chunks are whole batches
    history: dict[str, list] = {"epoch": [], "loss": [], "lr": [], "seconds": [], "steps": []}
    spec = None
    for epoch in range(epochs):
        loss_sum, seconds, seen = 0.0, 0.0, 0
        bar = _progress(count, f"fit_stream: epoch {epoch + 1}/{epochs}", progress)
        for X, y, weights in source():
            # backend: the compiled epochs check the chunk for NaN/inf as they read it, not a
            # pass of its own in every epoch (the statistics pass checked it once already).
            problem, _ = prepare(X, y, model=model, penalty=penalty, alpha=alpha,
                                 l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                                 sample_weight=None, standardize=False,
                                 classes=None if model == "linear" else classes, backend=backend)
            if weights is not None:  # relative to the whole data set's mean weight
                problem.sample_weight = np.asarray(weights, dtype=np.float64) / mean_weight
            problem.mean, problem.inv_std = mean, inv_std
            if state is None:
                spec = problem.spec
                params = np.zeros(spec.n_params, dtype=problem.X.dtype)
                state = TrainingState(params, opt, opt.init(params), seed=seed)
            elif problem.X.dtype != state.params.dtype:
                raise ValueError("every chunk must have the dtype of the first one")
            chunk_history, _, _, _ = train(
                problem, state, schedule=schedule, epochs=1, batch_size=batch_size,
                shuffle=shuffle, tol=None, n_iter_no_change=1, backend=backend,
                total_steps=total_steps, n_jobs=n_jobs, sparse_update=sparse_update)
            loss_sum += chunk_history["loss"][0] * problem.n_samples
            seconds += chunk_history["seconds"][0]
            seen += problem.n_samples
            last_lr = chunk_history["lr"][0]
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
        assert state is not None and spec is not None  # set by the epoch's first chunk
        for key, value in (("epoch", epoch + 1), ("loss", loss_sum / seen), ("lr", last_lr),
                           ("seconds", seconds), ("steps", state.updates)):
            history[key].append(value)
    assert state is not None  # epochs >= 1
    # A Problem without data: to_original_space reads only the spec and the scaling.
    coef, intercept = to_original_space(Problem(spec, None, None, None, mean, inv_std),  # type: ignore[arg-type]
                                        state.params)
    if model == "linear":
        coef, intercept = coef[0], float(intercept[0])
    return FitResult(model, coef, intercept, classes if model != "linear" else None, epochs,
                     False, history, state)
