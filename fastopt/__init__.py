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
from .optim import (OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, Optimizer, RAdam,
                    RMSprop, make_optimizer)
from .schedules import (SCHEDULES, Constant, Cosine, Exponential, InverseSqrt, Linear, OneCycle,
                        Polynomial, StepDecay, WarmupCosine, make_schedule)
from .training import ConvergenceWarning, DivergenceError, FitResult, fit

__version__ = "0.1.0"

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "NAdam",
           "RAdam", "OPTIMIZERS", "make_optimizer", "schedules", "SCHEDULES", "Constant",
           "InverseSqrt", "StepDecay", "Exponential", "Polynomial", "Cosine", "Linear",
           "WarmupCosine", "OneCycle", "make_schedule", "fit", "FitResult", "DivergenceError",
           "ConvergenceWarning", "__version__"]
