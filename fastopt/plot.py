"""Pictures of optimization, drawn on matplotlib Axes (``pip install 'fastopt[plot]'``).

Each function draws on the Axes it is given (a new figure's when ``ax`` is None) and returns
it, so the pictures compose into a user's own figures.
"""

from __future__ import annotations

import numpy as np

from .schedules import SCHEDULES, make_schedule

__all__ = ["loss_curves", "lr_sweep", "schedules"]

GAP_FLOOR = 1e-16  # a log scale cannot show an exact zero


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("fastopt.plot needs matplotlib: pip install 'fastopt[plot]'") from exc
    return plt.figure().add_subplot()


def loss_curves(comparison, ax=None, *, x="updates"):
    """The relative gap to the optimum of every fit of a :func:`fastopt.compare.compare`
    result, after each epoch, against ``x`` ("updates" or "seconds"), on a log scale."""
    if x not in ("updates", "seconds"):
        raise ValueError(f"x must be 'updates' or 'seconds', got {x!r}")
    ax = _axes(ax)
    for index, (name, curve) in enumerate(comparison.curves.items()):
        if "gap" not in curve or not len(curve["gap"]):
            continue
        ax.plot(curve[x], np.maximum(curve["gap"], GAP_FLOOR), label=name,
                linestyle="-" if index < 10 else "--")  # the default cycle has 10 colours
    ax.set_yscale("log")
    if x == "updates" and comparison.curves:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel("relative loss gap")
    ax.grid(True, which="both", alpha=0.3)
    return ax


def schedules(ax=None, *, lr=0.1, total_steps=1000, names=None):
    """The learning rate of each schedule in ``names`` (default: every one of
    ``fastopt.SCHEDULES`` with its defaults) against the update counter t, for a fit of
    ``total_steps`` updates at base rate ``lr``."""
    ax = _axes(ax)
    t = np.arange(total_steps)
    for name in names or SCHEDULES:
        ax.plot(t, make_schedule(name, lr, total_steps)(t), label=name)
    ax.set_xlabel("update t")
    ax.set_ylabel("learning rate")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def lr_sweep(sweep, ax=None):
    """The gap to the optimum after each epoch against updates, one line per learning rate of
    a :func:`fastopt.compare.lr_sweep` result; diverged rates are listed in the legend."""
    ax = _axes(ax)
    diverged = set(sweep.diverged())
    for lr, run in sweep.runs.items():
        curve = run.curves.get(sweep.optimizer)
        label = f"lr={lr:g}" + (" (diverged)" if lr in diverged else "")
        if curve is None or "gap" not in curve:
            ax.plot([], [], linestyle="none", marker="x", label=label)
            continue
        ax.plot(curve["updates"], np.maximum(curve["gap"], GAP_FLOOR), label=label,
                linestyle=":" if lr in diverged else "-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("updates")
    ax.set_ylabel("relative loss gap")
    ax.set_title(f"{sweep.optimizer}: learning-rate sweep")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return ax
