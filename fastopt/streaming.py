"""Training on data that does not fit in memory: ``fastopt.fit_stream``.

The data comes in chunks of rows, read one at a time and dropped after use:

- ``(X, y)`` (or ``(X, y, sample_weight)``) arrays, typically a ``np.memmap`` larger than
  memory, cut into ``chunk_rows`` rows (slices of a memmap are views: only the chunk in use is
  read from disk);
- a list of ``(X, y)`` / ``(X, y, sample_weight)`` chunks, or a function returning a fresh
  iterator of them (the data is read once per epoch, plus once before training);
- an iterator of such chunks (a generator), which can be read only once: it serves a fit of
  one epoch that needs no statistics pass (below), and is refused before anything is read
  otherwise;
- a Parquet file or a CSV file with a header row (``str`` or ``Path``; needs pyarrow, or pandas
  for CSV), read in batches of ``chunk_rows`` rows, with ``target=`` naming the column to
  predict and the other columns, all numeric, as features.

One pass over the chunks first collects what the whole data set decides: the number of rows,
the classes, the mean sample weight and, with ``standardize=True``, each feature's mean and
standard deviation (merged chunk by chunk with Chan's pairwise update). A one-shot iterator
skips it, so that fit must not need it: ``classes=`` given (classifiers), no
``standardize``, no sample weights, and a schedule whose step counts do not default to the
length of the fit (the number of rows is not known in advance). Then each epoch runs the
compiled epoch loop over the chunks in order, the optimizer state, the update counter (and so
the learning-rate schedule) and the shuffle stream carrying over from chunk to chunk; with
``shuffle=True`` rows are shuffled within each chunk. With ``shuffle=False`` and ``chunk_rows``
a multiple of ``batch_size`` the updates are exactly those of ``fastopt.fit`` on the data in
memory.
"""

from __future__ import annotations

import collections.abc
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import _backends
from . import _validation as v
from ._scaling import Moments, target_units
from .engine import (DivergenceError, FitResult, Monitor, check_training_options, new_state,
                     optimizer_from, prepare, result, train)
from .optim import Optimizer
from .schedules import make_schedule

__all__ = ["fit_stream"]


def _chunk_source(data, chunk_rows, target):
    """A function returning an iterator of ``(X, y, weights or None)`` chunks (a fresh one on
    each call unless the data is a one-shot iterator), the number of chunks per pass when known
    (for the progress bar), and whether the data can be read only once."""
    if isinstance(data, (str, Path)):
        return (*_file_source(Path(data), chunk_rows, target), False)
    if target is not None:
        raise ValueError("target= names the label column of a Parquet or CSV file; with "
                         "arrays pass (X, y)")
    if callable(data):
        return lambda: ((*chunk, None)[:3] for chunk in data()), None, False
    if isinstance(data, collections.abc.Iterator):
        chunks = ((*chunk, None)[:3] for chunk in data)
        return lambda: chunks, None, True
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
        return chunks, len(starts), False
    if isinstance(data, (list, tuple)):
        chunks = [(*chunk, None)[:3] for chunk in data]
        return (lambda: iter(chunks)), len(chunks), False
    raise TypeError("data must be (X, y) arrays, a list of (X, y) chunks, a function returning "
                    "an iterator of them, an iterator (generator) of them, or a Parquet or CSV "
                    f"file path; got {type(data).__name__}")


CSV_SUFFIXES = (".csv", ".tsv")


def _file_source(path, chunk_rows, target):
    """A Parquet file (recognised by its magic bytes, whatever its name) or a CSV file."""
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    with open(path, "rb") as handle:
        parquet = handle.read(4) == b"PAR1"
    compressed = path.suffixes[-2:-1] if path.suffix in (".gz", ".bz2", ".xz", ".zst") else []
    if not parquet and (compressed or [path.suffix])[0].lower() not in CSV_SUFFIXES:
        raise ValueError(f"{path} is neither a Parquet file nor a CSV file (.csv or .tsv, "
                         "optionally compressed): fit_stream reads those, or arrays and "
                         "chunks of them")
    if target is None:
        raise ValueError(f"a {'Parquet' if parquet else 'CSV'} source needs target= (the "
                         "column to predict)")
    return (_parquet_source if parquet else _csv_source)(path, chunk_rows, target)


def _features(columns, names, path):
    """The feature columns (a mapping of name to values) as a C-ordered float64 matrix; a
    value that is not a number is a ValueError naming its column."""
    out = []
    for name in names:
        try:
            out.append(np.asarray(columns[name], dtype=np.float64))
        except (TypeError, ValueError):
            bad = next((value for value in np.asarray(columns[name], dtype=object)
                        if not _is_number(value)), None)
            raise ValueError(f"column {name!r} of {path} holds {bad!r}, not a number: the "
                             "features must be numeric (encode or drop the column)") from None
    return np.ascontiguousarray(np.column_stack(out))


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _check_target_column(target, names, path):
    if target not in names:
        raise ValueError(f"target column {target!r} not in {path}; its columns: "
                         f"{', '.join(map(str, names))}")
    return [name for name in names if name != target]


def _parquet_source(path, chunk_rows, target):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from None
    handle = pq.ParquetFile(path)
    features = _check_target_column(target, handle.schema_arrow.names, path)

    def chunks():
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            columns = batch.to_pydict()
            yield _features(columns, features, path), np.asarray(columns[target]), None
    return chunks, -(-handle.metadata.num_rows // chunk_rows)


def _csv_source(path, chunk_rows, target):
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("reading CSV needs pandas: pip install pandas") from None
    separator = "\t" if path.suffix == ".tsv" or path.suffixes[-2:-1] == [".tsv"] else ","
    names = list(pd.read_csv(path, sep=separator, nrows=0).columns)
    features = _check_target_column(target, names, path)

    def chunks():
        with pd.read_csv(path, sep=separator, chunksize=chunk_rows) as reader:
            for frame in reader:
                yield _features(frame, features, path), frame[target].to_numpy(), None
    return chunks, None


def _check_one_pass(*, model, epochs, standardize, classes, schedule):
    """Refuse, before reading anything, a fit that would read a one-shot iterator twice."""
    needs = []
    if epochs > 1:
        needs.append(f"one pass per epoch (epochs={epochs})")
    if standardize:
        needs.append("a statistics pass for standardize=True")
    if model != "linear" and classes is None:
        needs.append("a statistics pass to find the classes (classes= not given)")
    resolved = make_schedule(schedule)
    unset = [name for name in resolved._fill(1) if resolved.get_params().get(name) is None]
    if unset:
        needs.append(f"a statistics pass to count the updates for the schedule's "
                     f"{', '.join(unset)}")
    if needs:
        raise ValueError("data is an iterator, which can be read only once, but this fit needs "
                         f"{'; '.join(needs)}. Pass a function returning a fresh iterator "
                         "(e.g. lambda: make_chunks()) or a list of chunks")


def _target(model, targets, standardize, fit_intercept, classes):
    """The target's ``(center, scale)`` over the whole data set (a linear model with
    ``standardize``; as ``engine.target_scaling`` computes it in memory) and the objective with
    every trained coefficient zero (for the divergence rule), or None without a first pass."""
    if model != "linear":
        return (0.0, 1.0), math.log(2.0) if model == "logistic" else math.log(len(classes))
    if targets is None or targets.mean is None:
        return (0.0, 1.0), None
    mean, variance = float(targets.mean[0]), float(targets.m2[0]) / targets.weight
    center, scale = (0.0, 1.0)
    if standardize:
        center, scale = target_units(mean, variance, fit_intercept)
    # 1/2 the weighted mean of (y - center)^2: the moments give it without a second pass.
    return (center, scale), 0.5 * (variance + (mean - center) ** 2)


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
               batch_size: int = 256, chunk_rows: int = 65_536, shuffle: bool | str = True,
               penalty: str | None = None, alpha: float = 1e-4, l1_ratio: float = 0.15,
               fit_intercept: bool = True, standardize: bool = False, classes=None,
               target: str | None = None,
               random_state: int | np.random.Generator | None = None, backend: str = "auto",
               n_jobs: int | None = None, sparse_update: str = "exact",
               progress: bool | None = None, tol: float | None = None) -> FitResult:
    """Train on data read chunk by chunk (see the module docstring for the sources).

    The options are those of :func:`fastopt.fit`, plus ``chunk_rows`` (rows per chunk for
    arrays and Parquet/CSV files), ``classes`` (the labels, when known: needed for a one-shot
    iterator, else saves nothing but checks them) and ``target`` (the label column of a
    Parquet or CSV file). All ``epochs`` run: ``tol`` must be None (it is taken, as
    :func:`fastopt.fit` takes it, so that the same options serve both). Newton's method is not
    available. ``progress``: a tqdm bar over the chunks of each pass on stderr; None: when
    stderr is a terminal.
    """
    check_training_options(epochs=epochs, batch_size=batch_size, tol=None, n_iter_no_change=1,
                           shuffle=shuffle, n_jobs=n_jobs, sparse_update=sparse_update)
    v.check_int("batch_size", batch_size, 1)
    v.check_int("chunk_rows", chunk_rows, 1)
    if tol is not None:
        raise ValueError(f"fit_stream runs all epochs and has no stopping rule: pass tol=None, "
                         f"not tol={tol!r}")
    opt = optimizer_from(optimizer, lr)
    if not isinstance(opt, Optimizer):  # Newton, L-BFGS, Newton-CG, SAGA
        what = "Newton's method" if opt is None else f"optimizer={optimizer!r}"
        raise ValueError(f"fit_stream trains with first-order optimizers; {what} needs the "
                         "whole data set (fastopt.fit)")
    record = _backends.resolve(backend)
    source, count, one_shot = _chunk_source(data, chunk_rows, target)
    if one_shot:
        _check_one_pass(model=model, epochs=epochs, standardize=standardize, classes=classes,
                        schedule=schedule)
    progress = sys.stderr.isatty() if progress is None else bool(progress)

    # Pass 1: rows, classes, weights, feature statistics.
    rows, features, weight_sum, labels = 0, None, 0.0, []
    moments = Moments() if standardize else None
    targets = Moments() if model == "linear" and not one_shot else None
    bar = _progress(count, "fit_stream: statistics", progress) if not one_shot else None
    for X, y, weights in () if one_shot else source():
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
        if targets is not None:
            targets.add(np.asarray(y, dtype=np.float64)[:, None], weights)
        rows += X.shape[0]
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    if rows == 0 and not one_shot:
        raise ValueError("the data has no rows")
    if model != "linear":
        classes = np.unique(np.concatenate(labels)) if classes is None else np.unique(classes)
        if len(classes) < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, but "
                             f"the data contains only one class: {classes.tolist()[0]!r}")
    mean_weight = weight_sum / rows if rows else 1.0
    mean, inv_std = moments.scaling() if moments is not None else (None, None)
    target_units, start_loss = _target(model, targets, standardize, fit_intercept, classes)

    seed = v.seed_from(random_state)
    state: Any = None  # made at the first chunk
    # exact when chunks are whole batches; unknown (and not needed: _check_one_pass) one-shot
    total_steps = epochs * -(-rows // batch_size) if rows else None
    monitor = Monitor(start_loss=start_loss)
    spec: Any = None  # the first chunk's
    for epoch in range(epochs):
        loss_sum, seconds, seen = 0.0, 0.0, 0
        bar = _progress(count, f"fit_stream: epoch {epoch + 1}/{epochs}", progress)
        for X, y, weights in source():
            # The compiled epochs check the chunk for NaN/inf as they read it, not a pass of
            # its own in every epoch (the statistics pass checked it once already). Weights
            # are relative to the whole data set's mean weight.
            problem, _ = prepare(X, y, model=model, penalty=penalty, alpha=alpha,
                                 l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                                 sample_weight=weights, weight_mean=mean_weight,
                                 backend=record, scaling=(mean, inv_std), target=target_units,
                                 trains=True, classes=None if model == "linear" else classes)
            if weights is not None and one_shot:
                raise ValueError("sample weights from a one-shot iterator: their mean over the "
                                 "whole data set (which scales them) needs a pass of its own; "
                                 "pass a function returning a fresh iterator instead")
            if state is None:
                spec = problem.spec
                params = np.zeros(spec.n_params, dtype=problem.X.dtype)
                state = new_state(opt, params, seed)
            elif problem.X.dtype != state.params.dtype:
                raise ValueError("every chunk must have the dtype of the first one")
            elif problem.spec.n_features != spec.n_features:
                raise ValueError(f"a chunk has {problem.spec.n_features} features, the first "
                                 f"had {spec.n_features}")
            chunk, _ = train(
                problem, state, backend=record, schedule=schedule, epochs=1,
                batch_size=batch_size, shuffle=shuffle, tol=None, n_iter_no_change=1,
                total_steps=total_steps, n_jobs=n_jobs, sparse_update=sparse_update)
            loss_sum += chunk.history["loss"][0] * problem.n_samples
            seconds += chunk.history["seconds"][0]
            seen += problem.n_samples
            last_lr = chunk.history["lr"][0]
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
        if seen == 0:
            raise ValueError("the data has no rows" if one_shot else
                             f"the data source gave no chunks in epoch {epoch + 1} after "
                             "giving some before: an iterator that can be read only once? "
                             "Pass a list of chunks or a function returning a fresh iterator")
        monitor.record({"epoch": epoch + 1, "loss": loss_sum / seen, "lr": last_lr,
                        "seconds": seconds, "steps": state.updates}, state.params)
    fitted = result(state.params, spec, scaling=(mean, inv_std), target=target_units,
                    classes=classes if model != "linear" else None, history=monitor.history,
                    converged=False, state=state)
    diverged = monitor.divergence()
    if diverged:
        raise DivergenceError(diverged, result=fitted)
    return fitted
