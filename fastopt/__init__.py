"""fastopt: linear, logistic and softmax regression trained with first-order optimizers.

The optimizers follow ``torch.optim`` exactly and run as fused C++ kernels::

    import numpy as np, fastopt as fo
    params = np.zeros(10)
    opt = fo.Adam(lr=1e-2)
    state = opt.init(params)
    opt.step(params, grad, state)

``fastopt.reference`` holds the NumPy reference implementation that specifies every kernel.
"""

from . import schedules
from ._backends import backends
from .optim import (OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, Optimizer, RAdam,
                    RMSprop, make_optimizer)
from .schedules import (SCHEDULES, Constant, Cosine, Exponential, InverseSqrt, Linear, OneCycle,
                        Polynomial, StepDecay, WarmupCosine, make_schedule)
from .solvers import LBFGS, SAGA, NewtonCG
from .training import DivergenceError, FitResult, fit
from .comparison import ComparisonResult, SweepResult, compare, lr_sweep
from .paths import PathsResult, optimizer_paths
from .persistence import load, save
from .streaming import fit_stream
from ._version import __version__

_ESTIMATORS = ("LinearRegression", "LogisticRegression")
_CV_ESTIMATORS = ("LinearRegressionCV", "LogisticRegressionCV")
# Submodules loaded on first attribute access (PEP 562), so that ``fo.plot.loss_curves`` and
# ``fo.dask.fit`` work after a plain ``import fastopt`` while that import stays light: these
# import matplotlib, dask or scikit-learn when used.
_LAZY_SUBMODULES = ("plot", "dask", "estimators", "cross_validation", "reference")
# Loaded on first use too: ``from .many import fit_many`` would be the same, but keeps
# ``import fastopt`` from growing with every front end.
_LAZY_FUNCTIONS = {"fit_many": "many", "FitManyResult": "many"}


def __getattr__(name):
    if name in _LAZY_SUBMODULES or name in _LAZY_FUNCTIONS:
        import importlib
        module = importlib.import_module(f".{_LAZY_FUNCTIONS.get(name, name)}", __name__)
        return getattr(module, name) if name in _LAZY_FUNCTIONS else module
    # The scikit-learn estimators import scikit-learn; fastopt itself does not need it.
    if name == "ConvergenceWarning":
        from .training import convergence_warning
        return convergence_warning()
    if name in _ESTIMATORS or name in _CV_ESTIMATORS:
        try:
            from . import estimators, cross_validation
        except ImportError as exc:
            raise ImportError(f"fastopt.{name} needs scikit-learn: pip install scikit-learn "
                              f"({exc})") from exc
        return getattr(estimators if name in _ESTIMATORS else cross_validation, name)
    raise AttributeError(f"module 'fastopt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_LAZY_SUBMODULES))


__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "NAdam",
           "RAdam", "OPTIMIZERS", "make_optimizer", "schedules", "SCHEDULES", "Constant",
           "InverseSqrt", "StepDecay", "Exponential", "Polynomial", "Cosine", "Linear",
           "WarmupCosine", "OneCycle", "make_schedule", "fit", "fit_many", "FitManyResult",
           "FitResult", "DivergenceError",
           "ConvergenceWarning", "compare", "lr_sweep", "ComparisonResult", "SweepResult",
           "optimizer_paths", "LBFGS", "NewtonCG", "SAGA", "PathsResult", "fit_stream", "save", "load", "LinearRegression",
           "LogisticRegression", "LinearRegressionCV", "LogisticRegressionCV", "backends",
           "__version__"]
