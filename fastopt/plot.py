"""Pictures of optimization, drawn on matplotlib Axes (``pip install 'fastopt[plot]'``).

Each function draws on the Axes it is given (a new figure's when ``ax`` is None) and returns
it, so the pictures compose into a user's own figures.
"""

from __future__ import annotations

import numpy as np

from .schedules import SCHEDULES, make_schedule

__all__ = ["loss_curves", "lr_sweep", "paths", "schedules"]

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
    """The relative gap to the optimum of every fit of a :func:`fastopt.compare`
    result, after each epoch, against ``x`` ("updates" or "seconds"), on a log scale, with the
    target gap as a dashed line.

    The y axis spans the first-order fits and the target: Newton's quadratic convergence
    (down to 1e-16) runs off the bottom instead of squashing the other curves, and a diverged
    fit (dotted, named in the legend) runs off the top (3x the starting gap)."""
    if x not in ("updates", "seconds"):
        raise ValueError(f"x must be 'updates' or 'seconds', got {x!r}")
    ax = _axes(ax)
    diverged = {row["optimizer"] for row in comparison.rows if row.get("diverged")}
    lowest = []
    for index, (name, curve) in enumerate(comparison.curves.items()):
        if "gap" not in curve or not len(curve["gap"]):
            continue
        style = ":" if name in diverged else "-" if index < 10 else "--"  # 10 default colours
        ax.plot(curve[x], np.maximum(curve["gap"], GAP_FLOOR), linestyle=style,
                label=name + (" (diverged)" if name in diverged else ""))
        if name != "newton" and name not in diverged:
            lowest.append(float(np.min(curve["gap"])))
    target = comparison.settings.get("target_gap")
    if target is not None and target > 0:
        ax.axhline(target, color="0.3", linestyle="--", linewidth=0.8, label="target gap")
        lowest.append(target)
    ax.set_yscale("log")
    positive = [gap for gap in lowest if gap > 0]
    if positive:
        ax.set_ylim(bottom=max(min(positive) / 10, GAP_FLOOR))
    optimum, initial = comparison.optimum, comparison.settings.get("initial_loss")
    if initial is not None and np.isfinite(optimum):
        start = (initial - optimum) / max(abs(optimum), 1e-12)
        if np.isfinite(start) and start > 0:
            ax.set_ylim(top=3 * start)
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
    for index, name in enumerate(names or SCHEDULES):
        # Several schedules coincide for long stretches (constant and the end of a linear
        # warm-up): line styles keep each visible.
        ax.plot(t, make_schedule(name, lr, total_steps)(t), label=name,
                linestyle=("-", "--", "-.", ":")[index % 4])
    ax.set_xlabel("update t")
    ax.set_ylabel("learning rate")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def lr_sweep(sweep, ax=None):
    """The gap to the optimum after each epoch against updates, one line per learning rate of
    a :func:`fastopt.lr_sweep` result; diverged rates are dotted and named in the legend. The
    y axis stops at 10x the starting gap, so a blown-up run leaves the picture rather than
    squashing the others."""
    ax = _axes(ax)
    diverged = set(sweep.diverged())
    start = None
    for lr, run in sweep.runs.items():
        curve = run.curves.get(sweep.optimizer)
        label = f"lr={lr:.3g}" + (" (diverged)" if lr in diverged else "")
        initial = (run.settings["initial_loss"] - sweep.optimum) / max(abs(sweep.optimum), 1e-12)
        start = initial if start is None else max(start, initial)
        if curve is None or "gap" not in curve:
            ax.plot([], [], linestyle="none", marker="x", label=label)
            continue
        ax.plot(curve["updates"], np.maximum(curve["gap"], GAP_FLOOR), label=label,
                linestyle=":" if lr in diverged else "-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if start is not None and np.isfinite(start) and start > 0:
        ax.set_ylim(top=10 * start)
    ax.set_xlabel("updates")
    ax.set_ylabel("relative loss gap")
    ax.set_title(f"{sweep.optimizer}: learning-rate sweep")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def paths(result, ax=None, *, surface="raw", levels=12, margin=0.15):
    """Loss contours of one surface of a :func:`fastopt.optimizer_paths` result ("raw" or
    "standardized") with the path of every optimizer on it, its start and the optimum.

    The view covers the optimum, the start and the paths up to a few times the distance from
    the start to the optimum (a diverging path leaves the picture instead of flattening it);
    the contour levels are spaced geometrically in the loss gap ``L - L*``."""
    ax = _axes(ax)
    data = result.surfaces[surface]
    start = np.zeros(2)
    reach = 3.0 * float(np.linalg.norm(data.optimum - start))
    points = [start[None, :], data.optimum[None, :]]
    for path in data.paths.values():
        near = np.linalg.norm(path - data.optimum, axis=1) <= reach
        points.append(path[near & np.all(np.isfinite(path), axis=1)])
    points = np.concatenate(points)
    low, high = points.min(axis=0), points.max(axis=0)
    # A square view with equal scales: only then is the gradient drawn perpendicular to the
    # contours, and a round surface looks round.
    half = (0.5 + margin) * max(float(np.max(high - low)), 1e-3)
    center = 0.5 * (low + high)
    low, high = center - half, center + half
    w, b = np.meshgrid(np.linspace(low[0], high[0], 200), np.linspace(low[1], high[1], 200))
    gap = np.maximum(data.loss(w, b) - data.optimum_loss, 0.0)
    top = float(gap.max())
    contour_levels = top * np.geomspace(1e-4, 1.0, levels) if top > 0 else levels
    ax.contour(w, b, gap, levels=contour_levels, colors="0.6", linewidths=0.7)
    for name, path in data.paths.items():
        ax.plot(path[:, 0], path[:, 1], marker=".", markersize=3, linewidth=1.2,
                label=f"{name} (lr={data.learning_rates[name]:.3g})"
                if data.learning_rates[name] is not None else name)
    ax.plot(*start, marker="o", color="black", linestyle="none", label="start")
    ax.plot(*data.optimum, marker="*", markersize=12, color="black", linestyle="none",
            label="optimum")
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("weight w")
    ax.set_ylabel("bias b")
    ax.set_title(f"{surface} feature (condition number {data.condition_number:.3g}), "
                 f"{result.settings.get('updates')} updates")
    ax.legend(fontsize="small", loc="best", framealpha=0.8)  # where it hides the least path
    return ax
