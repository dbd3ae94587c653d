"""Saving and loading without pickle: ``fastopt.save(obj, path)`` and ``fastopt.load(path)``.

``obj`` is a fastopt estimator (fitted or not), a ``FitResult`` (what ``fastopt.fit``
returns) or an optimizer state dict (``opt.init(...)`` and what ``step`` made of it); ``path``
a file name (``.npz`` appended when missing, the same both ways) or a binary file object. The
file is a NumPy ``.npz`` archive: the arrays as they are, and one JSON document (``meta``)
with the format name and version, the class, the constructor parameters and the scalar
attributes. Loading reads it with ``allow_pickle=False``, so a file can run no code; a fitted
estimator comes back with its coefficients, training history, optimizer state, update counter
and shuffle stream, so ``partial_fit`` and warm-started ``fit`` continue exactly where the
saved one would have; a saved optimizer state is checked whole when loading.

What cannot be written this way is refused when saving: a schedule given as a Python
function, ``random_state`` given as a NumPy Generator, labels of mixed or object types.
Pickle works too (``pickle.dumps(estimator)``), for the same objects and more.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "fastopt"
VERSION = 1

__all__ = ["save", "load", "FORMAT", "VERSION"]


def _encode_optimizer(opt):
    from .optim import OPTIMIZERS, Optimizer
    if opt is None or isinstance(opt, str):
        return opt
    if isinstance(opt, Optimizer):
        name = next(k for k, cls in OPTIMIZERS.items() if type(opt) is cls)
        return {"optimizer": name, "params": _plain(opt.get_params())}
    raise ValueError(f"cannot save optimizer {opt!r}")


def _decode_optimizer(value):
    from .optim import make_optimizer
    if value is None or isinstance(value, str):
        return value
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in value["params"].items()}
    return make_optimizer(value["optimizer"], **params)


def _encode_schedule(schedule):
    from .schedules import SCHEDULES, FunctionSchedule, Schedule
    if schedule is None or isinstance(schedule, str):
        return schedule
    if isinstance(schedule, type) and issubclass(schedule, Schedule):
        schedule = schedule()
    if isinstance(schedule, FunctionSchedule) or not isinstance(schedule, Schedule):
        raise ValueError("cannot save a schedule defined by a Python function without pickle; "
                         "use one of fastopt.SCHEDULES, or pickle the estimator")
    name = next(k for k, cls in SCHEDULES.items() if type(schedule) is cls)
    return {"schedule": name, "params": _plain(schedule.get_params())}


def _decode_schedule(value):
    from .schedules import SCHEDULES
    if value is None or isinstance(value, str):
        return value
    return SCHEDULES[value["schedule"]](**value["params"])


def _plain(params):
    """JSON-safe copies of hyperparameters (tuples become lists, NumPy scalars numbers)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, tuple):
            value = [v.item() if isinstance(v, np.generic) else v for v in value]
        out[key] = value
    return out


def _label_array(values, what):
    array = np.asarray(values)
    if array.dtype.kind == "O":
        kinds = {type(v) for v in array.tolist()}
        if kinds <= {str}:
            return array.astype(str)
        raise ValueError(f"cannot save {what} of types {sorted(k.__name__ for k in kinds)} "
                         "without pickle; pickle the estimator instead")
    return array


def _estimator_meta(est, arrays):
    from .estimators import LinearRegression, LogisticRegression
    if not isinstance(est, (LinearRegression, LogisticRegression)):
        raise TypeError(f"fastopt.save takes a fastopt estimator or an optimizer state dict, "
                        f"got {type(est).__name__}")
    params = est.get_params(deep=False)
    if params["random_state"] is not None and not isinstance(params["random_state"], int):
        raise ValueError("cannot save random_state given as a NumPy Generator; pass an int")
    params["optimizer"] = _encode_optimizer(params["optimizer"])
    params["schedule"] = _encode_schedule(params["schedule"])
    meta = {"kind": "estimator", "class": type(est).__name__, "params": _plain(params),
            "fitted": hasattr(est, "coef_")}
    if not meta["fitted"]:
        return meta
    arrays["coef_"] = np.asarray(est.coef_)
    arrays["intercept_"] = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
    if hasattr(est, "classes_"):
        arrays["classes_"] = _label_array(est.classes_, "class labels")
    if hasattr(est, "feature_names_in_"):
        arrays["feature_names_in_"] = np.asarray(est.feature_names_in_).astype(str)
    for key, values in est.history_.items():
        arrays[f"history/{key}"] = np.asarray(values)
    mean, inv_std = est._scaling
    if mean is not None:
        arrays["scaling/mean"], arrays["scaling/inv_std"] = mean, inv_std
    meta.update(n_features_in_=int(est.n_features_in_), n_iter_=int(est.n_iter_),
                t_=int(est.t_), linear=np.ndim(est.intercept_) == 0,
                target=list(getattr(est, "_target", (0.0, 1.0))))
    _state_meta(est._state, meta, arrays)
    return meta


def _fit_result_meta(result, arrays):
    meta = {"kind": "fit-result", "model": result.model, "n_iter_": int(result.n_iter_),
            "converged": bool(result.converged), "linear": np.ndim(result.intercept_) == 0}
    arrays["coef_"] = np.asarray(result.coef_)
    arrays["intercept_"] = np.atleast_1d(np.asarray(result.intercept_, dtype=np.float64))
    if result.classes_ is not None:
        arrays["classes_"] = _label_array(result.classes_, "class labels")
    if result.feature_names_in_ is not None:
        arrays["feature_names_in_"] = np.asarray(result.feature_names_in_).astype(str)
    for key, values in result.history.items():
        arrays[f"history/{key}"] = np.asarray(values)
    from .optim import Optimizer
    # Newton's method keeps no state to continue from; a first-order fit's state is saved.
    state = result.state
    _state_meta(state if state is not None and isinstance(state.optimizer, Optimizer)
                else None, meta, arrays)
    return meta


def _scalar(key, value):
    """A scalar of an optimizer state as JSON writes it: the step count whole (refused, not
    truncated, when it is not), NAdam's ``mu_product`` a float."""
    from .optim import _check_step
    if key == "step":
        return _check_step(value)
    return float(value) if key == "mu_product" else int(value)


def _state_meta(state, meta, arrays):
    """Record a TrainingState (or its absence) in ``meta`` and ``arrays``."""
    meta["has_state"] = state is not None
    if state is None:
        return
    arrays["state/params"] = state.params
    scalars = {}
    for key, value in state.optimizer_state.items():
        if isinstance(value, np.ndarray) and value.ndim > 0:
            arrays[f"optimizer/{key}"] = value
        else:
            scalars[key] = _scalar(key, value)
    meta["state"] = {"optimizer": _encode_optimizer(state.optimizer),
                     "scalars": scalars, "updates": int(state.updates),
                     "epochs": int(state.epochs), "seed": int(state.seed)}


def _file_name(path):
    """The file that ``save`` writes and ``load`` reads for ``path``: ``.npz`` appended when
    missing, as ``np.savez`` does."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _is_file_object(target):
    return hasattr(target, "read") or hasattr(target, "write")


def _label(path):
    """``path`` as error messages name it."""
    return getattr(path, "name", "the file object") if _is_file_object(path) else path


def save(obj: object, path) -> object:
    """Write ``obj`` to ``path``.

    Parameters
    ----------
    obj : fastopt estimator, FitResult (what :func:`fastopt.fit` returns), or optimizer state
        dict (``opt.init(...)``)
    path : str, Path or binary file object (``io.BytesIO``, an open file)
        ``.npz`` is appended to a name without it, as ``np.savez`` does; :func:`load` takes
        the same name.

    Returns
    -------
    Path or file object
        The path written (``.npz`` included), or the file object given.
    """
    from .training import FitResult
    arrays: dict[str, Any] = {}
    if isinstance(obj, FitResult):
        meta = _fit_result_meta(obj, arrays)
    elif isinstance(obj, dict):
        meta = {"kind": "optimizer-state", "scalars": {}}
        for key, value in obj.items():
            if isinstance(value, np.ndarray) and value.ndim > 0:
                arrays[f"optimizer/{key}"] = value
            else:
                meta["scalars"][key] = _scalar(key, value)
    else:
        meta = _estimator_meta(obj, arrays)
    meta.update(format=FORMAT, version=VERSION)
    if not _is_file_object(path):
        path = _file_name(path)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


def _read_archive(handle):
    archive = np.load(handle, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError("not an .npz archive")
    with archive:
        return {name: archive[name] for name in archive.files}


def _read(path):
    name = _label(path)
    try:
        if _is_file_object(path):
            contents = _read_archive(path)
        else:
            with open(path, "rb") as handle:  # ours to close, also when NumPy gives up midway
                contents = _read_archive(handle)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ValueError(f"{name} is not a readable fastopt file (damaged or truncated?): "
                         f"{exc}") from None
    if "meta" not in contents:
        raise ValueError(f"{name} is not a fastopt file: it has no 'meta' entry")
    try:
        meta = json.loads(str(contents.pop("meta")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: damaged metadata ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{name} is not a fastopt file (format {meta.get('format')!r})")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise ValueError(f"{name} has format version {meta.get('version')!r}; this fastopt "
                         f"reads up to version {VERSION}: upgrade fastopt")
    return meta, contents


def load(path) -> object:
    """Read what :func:`save` wrote: an estimator, a FitResult or an optimizer state dict.

    ``path`` is the name given to :func:`save` (``.npz`` appended when missing and a file of
    the name as given does not exist) or a binary file object. A file that is not one, is
    truncated or damaged, or lacks part of a saved optimizer state, raises ``ValueError``; one
    from a newer format version says so."""
    if not _is_file_object(path):
        given = Path(path)
        path = _file_name(given)
        if not path.exists() and given.is_file():
            path = given
    meta, arrays = _read(path)
    name = _label(path)
    try:
        if meta["kind"] == "optimizer-state":
            state = dict(meta["scalars"])
            state.update({k[len("optimizer/"):]: v for k, v in arrays.items()
                          if k.startswith("optimizer/")})
            return state
        if meta["kind"] == "fit-result":
            return _load_fit_result(meta, arrays)
        return _load_estimator(meta, arrays)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{name}: inconsistent fastopt file ({type(exc).__name__}: {exc})") \
            from None


def _load_estimator(meta, arrays):
    from . import estimators
    cls = {"LinearRegression": estimators.LinearRegression,
           "LogisticRegression": estimators.LogisticRegression}[meta["class"]]
    params = dict(meta["params"])
    params["optimizer"] = _decode_optimizer(params["optimizer"])
    params["schedule"] = _decode_schedule(params["schedule"])
    est = cls(**params)
    if not meta["fitted"]:
        return est
    coef, intercept = arrays["coef_"], arrays["intercept_"]
    est.coef_ = coef
    est.intercept_ = float(intercept[0]) if meta["linear"] else intercept
    if "classes_" in arrays:
        est.classes_ = arrays["classes_"]
    if "feature_names_in_" in arrays:
        est.feature_names_in_ = arrays["feature_names_in_"].astype(object)
    est.n_features_in_ = meta["n_features_in_"]
    est.history_ = {k[len("history/"):]: v.tolist() for k, v in arrays.items()
                    if k.startswith("history/")}
    est.loss_curve_ = list(est.history_.get("loss", []))
    est.n_iter_, est.t_ = meta["n_iter_"], meta["t_"]
    est._scaling = ((arrays["scaling/mean"], arrays["scaling/inv_std"])
                    if "scaling/mean" in arrays else (None, None))
    # The linear target's standardisation (files written before it existed: none).
    est._target = tuple(float(x) for x in meta.get("target", (0.0, 1.0)))
    est._state = _load_state(meta, arrays)
    return est


def _load_fit_result(meta, arrays):
    from .training import FitResult
    intercept = arrays["intercept_"]
    names = arrays.get("feature_names_in_")
    return FitResult(meta["model"], arrays["coef_"],
                     float(intercept[0]) if meta["linear"] else intercept,
                     arrays.get("classes_"), meta["n_iter_"], meta["converged"],
                     {k[len("history/"):]: v.tolist() for k, v in arrays.items()
                      if k.startswith("history/")},
                     _load_state(meta, arrays),
                     None if names is None else names.astype(object))


def _load_state(meta, arrays):
    """The saved TrainingState, or None; checked whole here (every array the optimizer needs,
    of the parameters' shape and dtype), so that a damaged file fails at ``load`` and not
    at the next ``partial_fit``."""
    from .optim import check_state
    from .engine import TrainingState
    if not meta["has_state"]:
        return None
    saved = meta["state"]
    params = arrays["state/params"].copy()
    optimizer = _decode_optimizer(saved["optimizer"])
    optimizer_state = dict(saved["scalars"])
    optimizer_state.update({k[len("optimizer/"):]: v.copy() for k, v in arrays.items()
                            if k.startswith("optimizer/")})
    check_state(optimizer, params, optimizer_state)
    return TrainingState(params, optimizer, optimizer_state, updates=saved["updates"],
                         epochs=saved["epochs"], seed=saved["seed"])
