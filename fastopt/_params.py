"""Constructor arguments as the object's identity: what optimizers and schedules share."""

from __future__ import annotations


class Parameters:
    """scikit-learn style ``get_params``/``set_params``, and ``repr``, ``==`` and ``hash`` from
    the constructor arguments named in ``_param_names`` (stored as attributes of those names)."""

    _param_names: tuple = ()

    def get_params(self, deep=True) -> dict:
        """Constructor arguments, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in self._param_names}

    def set_params(self, **params):
        """Rebuild with changed constructor arguments (validated as in ``__init__``)."""
        merged = self.get_params()
        unknown = set(params) - set(merged)
        if unknown:
            raise ValueError(f"Invalid parameter {sorted(unknown)[0]!r} for "
                             f"{type(self).__name__}; valid ones are {sorted(merged)}")
        merged.update(params)
        self.__init__(**merged)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(other) is type(self) and other.get_params() == self.get_params()

    def __hash__(self):
        return hash((type(self).__name__, tuple(self.get_params().items())))
