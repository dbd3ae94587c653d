"""fastopt: linear, logistic and softmax regression trained with first-order optimizers.

The optimizers follow ``torch.optim`` exactly and run as fused C++ kernels::

    import numpy as np, fastopt as fo
    params = np.zeros(10)
    opt = fo.Adam(lr=1e-2)
    state = opt.init(params)
    opt.step(params, grad, state)

``fastopt.reference`` holds the NumPy reference implementation that specifies every kernel.
"""

from .optim import (OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, Optimizer, RAdam,
                    RMSprop, make_optimizer)

__version__ = "0.1.0"

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "NAdam",
           "RAdam", "OPTIMIZERS", "make_optimizer", "__version__"]
