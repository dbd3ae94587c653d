"""Saving and loading without pickle: ``fastopt.save(obj, path)`` and ``fastopt.load(path)``.

``obj`` is a fastopt estimator (fitted or not) or an optimizer state dict (``opt.init(...)``
and what ``step`` made of it). The file is a NumPy ``.npz`` archive: the arrays as they are,
and one JSON document (``meta``) with the format name and version, the class, the
constructor parameters and the scalar attributes. Loading reads it with
``allow_pickle=False``, so a file can run no code; a fitted estimator comes back with its
coefficients, training history, optimizer state, update counter and shuffle stream, so
``partial_fit`` and warm-started ``fit`` continue exactly where the saved one would have.

What cannot be written this way is refused when saving: a schedule given as a Python
function, ``random_state`` given as a NumPy Generator, labels of mixed or object types.
Pickle works too (``pickle.dumps(estimator)``), for the same objects and more.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

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
    state = est._state
    meta.update(n_features_in_=int(est.n_features_in_), n_iter_=int(est.n_iter_),
                t_=int(est.t_), linear=np.ndim(est.intercept_) == 0,
                has_state=state is not None)
    if state is not None:
        arrays["state/params"] = state.params
        scalars = {}
        for key, value in state.optimizer_state.items():
            if isinstance(value, np.ndarray) and value.ndim > 0:
                arrays[f"optimizer/{key}"] = value
            else:
                scalars[key] = float(value) if key == "mu_product" else int(value)
        meta["state"] = {"optimizer": _encode_optimizer(state.optimizer),
                         "scalars": scalars, "updates": int(state.updates),
                         "epochs": int(state.epochs), "seed": int(state.seed)}
    return meta


def save(obj: object, path: str | Path) -> Path:
    """Write ``obj`` (a fastopt estimator, or an optimizer state dict) to ``path`` (``.npz``
    is appended when missing, as ``np.savez`` does). Returns the path written."""
    arrays: dict = {}
    if isinstance(obj, dict):
        meta: dict = {"kind": "optimizer-state", "scalars": {}}
        for key, value in obj.items():
            if isinstance(value, np.ndarray) and value.ndim > 0:
                arrays[f"optimizer/{key}"] = value
            else:
                meta["scalars"][key] = float(value) if key == "mu_product" else int(value)
    else:
        meta = _estimator_meta(obj, arrays)
    meta.update(format=FORMAT, version=VERSION)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def _read(path):
    try:
        with open(path, "rb") as handle:  # ours to close, also when NumPy gives up midway
            archive = np.load(handle, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with archive:
                contents = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable fastopt file (damaged or truncated?): "
                         f"{exc}") from None
    if "meta" not in contents:
        raise ValueError(f"{path} is not a fastopt file: it has no 'meta' entry")
    try:
        meta = json.loads(str(contents.pop("meta")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: damaged metadata ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastopt file (format {meta.get('format')!r})")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise ValueError(f"{path} has format version {meta.get('version')!r}; this fastopt "
                         f"reads up to version {VERSION}: upgrade fastopt")
    return meta, contents


def load(path: str | Path) -> object:
    """Read what :func:`save` wrote: an estimator or an optimizer state dict. A file that is
    not one, is truncated or damaged raises ``ValueError``; one from a newer format version
    says so."""
    meta, arrays = _read(path)
    try:
        if meta["kind"] == "optimizer-state":
            state = dict(meta["scalars"])
            state.update({k[len("optimizer/"):]: v for k, v in arrays.items()
                          if k.startswith("optimizer/")})
            return state
        return _load_estimator(meta, arrays)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{path}: inconsistent fastopt file ({type(exc).__name__}: {exc})") \
            from None


def _load_estimator(meta, arrays):
    from . import estimators
    from .training import TrainingState
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
    est._state = None
    if meta["has_state"]:
        saved = meta["state"]
        optimizer_state = dict(saved["scalars"])
        optimizer_state.update({k[len("optimizer/"):]: v.copy() for k, v in arrays.items()
                                if k.startswith("optimizer/")})
        est._state = TrainingState(arrays["state/params"].copy(),
                                   _decode_optimizer(saved["optimizer"]), optimizer_state,
                                   updates=saved["updates"], epochs=saved["epochs"],
                                   seed=saved["seed"])
    return est
