"""Optimizer paths on a two-parameter loss surface: what feature scaling does to optimization.

The problem is a linear regression with one feature and an intercept, so that the parameters
``(w, b)`` span a plane and the loss ``L(w, b) = ½·mean((w·x + b - y)²)`` can be drawn as
contours on it. The feature has a mean far from zero (``x ~ N(3, 1)``), so the raw problem is
ill-conditioned: its Hessian ``[[mean x², mean x], [mean x, 1]]`` has a condition number of
about 120, and the contours are long, thin ellipses along which gradient descent zigzags.
Standardizing the feature (``(x - mean) / std``) makes the Hessian the identity: circular
contours, and every optimizer heads straight for the optimum.

Each optimizer runs :func:`fastopt.fit` with full-batch updates (``batch_size=None``: the path
follows the exact gradient, so ``sgd`` would be the same as ``gd`` and is not offered) from
``(w, b) = (0, 0)``, one update per epoch, and the ``callback`` records the parameters after
every update.

Learning rates: ``gd``, ``momentum`` and ``nesterov`` take ``0.5 / L``, with ``L`` the largest
eigenvalue of the Hessian (half the classic safe step ``1 / L``, which on the standardized
surface would reach the optimum in one update; computed from the data, so the same rule works
on both surfaces); the adaptive methods, whose steps are about ``lr`` in parameter units
whatever the scale of the gradient, take the fixed rates of :data:`PATH_LEARNING_RATES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .comparison import COMPARE_OPTIMIZERS
from .optim import make_optimizer
from .training import DivergenceError, fit

__all__ = ["PATH_OPTIMIZERS", "PATH_LEARNING_RATES", "PathsResult", "Surface",
           "optimizer_paths", "path_problem"]

# The lecture's classic set, drawn by default.
PATH_OPTIMIZERS = ("gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")

# Adaptive methods: steps of about lr in parameter units. None: 0.5 / L from the data.
PATH_LEARNING_RATES = {"gd": None, "momentum": None, "nesterov": None, "adagrad": 1.0,
                       "rmsprop": 0.03, "adadelta": 1.0, "adam": 0.1, "adamw": 0.1,
                       "nadam": 0.1, "radam": 0.1, "newton": None}


def path_problem(n=200, seed=0):
    """``(x, y)``: the raw one-feature regression, ``y = 2·x - 5 + noise``, ``x ~ N(3, 1)``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 1.0, n)
    y = 2.0 * x - 5.0 + rng.normal(0.0, 0.5, n)
    return x, y


@dataclass
class Surface:
    """One panel: the feature ``x`` and target ``y``, the optimum ``(w*, b*)`` and its loss,
    the Hessian, and ``paths``: optimizer name -> array of shape (updates + 1, 2), the
    parameters ``(w, b)`` before the first update and after each one."""

    name: str
    x: np.ndarray
    y: np.ndarray
    optimum: np.ndarray
    optimum_loss: float
    hessian: np.ndarray
    learning_rates: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    @property
    def condition_number(self) -> float:
        eigenvalues = np.linalg.eigvalsh(self.hessian)
        return float(eigenvalues[-1] / eigenvalues[0])

    def loss(self, w, b):
        """``½·mean((w·x + b - y)²)``, elementwise over arrays ``w`` and ``b`` (a grid)."""
        w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
        x, y = self.x, self.y
        # Expanded in the data's moments, so that a whole grid costs O(grid), not O(grid·n).
        return 0.5 * (w * w * np.mean(x * x) + b * b + np.mean(y * y)
                      + 2 * w * b * np.mean(x) - 2 * w * np.mean(x * y) - 2 * b * np.mean(y))

    def gap(self, name) -> np.ndarray:
        """The loss gap ``L(w, b) - L*`` along the path of optimizer ``name`` (rounding below
        zero at the optimum shows as 0)."""
        path = self.paths[name]
        return np.maximum(self.loss(path[:, 0], path[:, 1]) - self.optimum_loss, 0.0)


@dataclass
class PathsResult:
    """What :func:`optimizer_paths` returns: ``surfaces``, the ``raw`` and ``standardized``
    panels (:class:`Surface`), and the settings used."""

    surfaces: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def rows(self):
        """One dict per optimizer and surface: final gap, and updates until the gap is below
        1e-6 of the starting gap (None when never)."""
        out = []
        for surface in self.surfaces.values():
            for name in surface.paths:
                gap = surface.gap(name)
                hit = np.flatnonzero(gap <= 1e-6 * gap[0])
                out.append({"surface": surface.name, "optimizer": name,
                            "lr": surface.learning_rates[name], "final_gap": float(gap[-1]),
                            "updates_to_1e-6": int(hit[0]) if len(hit) else None})
            for name, error in surface.errors.items():
                out.append({"surface": surface.name, "optimizer": name,
                            "lr": surface.learning_rates[name], "final_gap": math.inf,
                            "updates_to_1e-6": None, "error": error})
        return out


def _surface(name, x, y):
    design = np.column_stack([x, np.ones_like(x)])
    hessian = design.T @ design / len(x)
    optimum = np.linalg.solve(hessian, design.T @ y / len(x))
    surface = Surface(name, x, y, optimum, 0.0, hessian)
    surface.optimum_loss = float(surface.loss(*optimum))
    return surface


def optimizer_paths(optimizers=PATH_OPTIMIZERS, *, updates: int = 100, lrs: dict | None = None,
                    n: int = 200, seed: int = 0, backend: str = "auto") -> PathsResult:
    """The path of each optimizer on the raw and on the standardized two-parameter problem.

    Parameters
    ----------
    optimizers : names from :data:`fastopt.comparison.COMPARE_OPTIMIZERS` but ``sgd``.
    updates : full-batch updates per optimizer.
    lrs : dict name -> learning rate overriding :data:`PATH_LEARNING_RATES` (a value of
        None there means ``0.5 / L``).
    n, seed : size and seed of the data (:func:`path_problem`).
    backend : as in :func:`fastopt.fit`.
    """
    names = list(optimizers)
    allowed = [name for name in COMPARE_OPTIMIZERS if name != "sgd"]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise ValueError(f"unknown optimizer {', '.join(map(repr, unknown)) or '(none)'} for "
                         f"paths; choose from {', '.join(allowed)}")
    if not isinstance(updates, (int, np.integer)) or updates < 1:
        raise ValueError(f"updates must be a positive integer, got {updates!r}")
    rates = dict(PATH_LEARNING_RATES, **(lrs or {}))
    x, y = path_problem(n, seed)
    result = PathsResult(settings=dict(optimizers=names, updates=updates, n=n, seed=seed,
                                       backend=backend))
    standardized = (x - x.mean()) / x.std()
    for surface in (_surface("raw", x, y), _surface("standardized", standardized, y)):
        largest = float(np.linalg.eigvalsh(surface.hessian)[-1])
        X = surface.x[:, None]
        for name in names:
            kind, hyper, _, _ = COMPARE_OPTIMIZERS[name]
            rate = rates.get(name)
            rate = 0.5 / largest if rate is None and kind != "newton" else rate
            surface.learning_rates[name] = rate
            points = [np.zeros(2)]

            def record(entry, points=points):
                points.append(np.array(entry["params"], dtype=np.float64))

            optimizer = "newton" if kind == "newton" else make_optimizer(kind, lr=rate, **hyper)
            try:
                fit(X, surface.y, model="linear", optimizer=optimizer, epochs=updates,
                    batch_size=None, standardize=False, tol=None, backend=backend,
                    callback=record)
            except DivergenceError as exc:  # a learning rate too large for this surface
                surface.errors[name] = str(exc)
                continue
            surface.paths[name] = np.array(points)
        result.surfaces[surface.name] = surface
    return result
