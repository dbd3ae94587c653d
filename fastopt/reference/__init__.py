"""The NumPy reference: slow, plain, and the specification of every compiled kernel."""

from . import optim

__all__ = ["optim"]
