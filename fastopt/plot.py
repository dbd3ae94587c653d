"""Pictures of optimization, drawn on matplotlib Axes (``pip install 'fastopt[plot]'``).

Each function draws on the Axes it is given (a new figure's when ``ax`` is None) and returns
it, so the pictures compose into a user's own figures.
"""

from __future__ import annotations

import numpy as np

from .schedules import SCHEDULES, make_schedule

__all__ = ["loss_curves", "lr_sweep", "paths", "schedules"]

GAP_FLOOR = 1e-16  # a log scale cannot show an exact zero

# One colour per optimizer of fastopt.compare, the same in every picture: matplotlib's cycle
# has 10, so the 11th to 15th curves would repeat the first five.
COLORS = {"gd": "tab:blue", "sgd": "tab:orange", "momentum": "tab:green",
          "nesterov": "tab:red", "adagrad": "tab:purple", "rmsprop": "tab:brown",
          "adadelta": "tab:pink", "adam": "tab:olive", "adamw": "tab:cyan", "nadam": "navy",
          "radam": "magenta", "lbfgs": "darkgoldenrod", "newton-cg": "lime",
          "newton": "black", "saga": "teal"}
# The full-batch solvers, whose fast convergence would stretch the y axis of a loss-curve
# picture down to rounding: their curves go below the view onto its floor.
SOLVERS = ("lbfgs", "newton-cg", "newton", "saga")


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("fastopt.plot needs matplotlib: pip install 'fastopt[plot]'") from exc
    return plt.figure().add_subplot()


def _color(name, index):
    return COLORS.get(name, f"C{index % 10}")


def loss_curves(comparison, ax=None, *, x="updates", legend=True):
    """The relative gap to the optimum of every fit of a :func:`fastopt.compare`
    result, after each epoch, against ``x`` ("updates" or "seconds"), on a log scale, with the
    target gap as a dashed line and, when ``legend``, a legend.

    The y axis spans the first-order fits and the target. A gap below that (the full-batch
    solvers' fast convergence, or exactly 0 at the optimum) is drawn on a floor at the bottom
    of the view, and a triangle marks where the curve first reaches it; a diverged fit
    (dotted, named in the legend) runs off the top (3x the starting gap). Every optimizer
    keeps its colour of :data:`COLORS`, and every fit is a solid line (dotted when
    diverged)."""
    if x not in ("updates", "seconds"):
        raise ValueError(f"x must be 'updates' or 'seconds', got {x!r}")
    ax = _axes(ax)
    diverged = {row["optimizer"] for row in comparison.rows if row.get("diverged")}
    curves = {name: curve for name, curve in comparison.curves.items()
              if "gap" in curve and len(curve["gap"])}
    lowest = [float(np.min(curve["gap"])) for name, curve in curves.items()
              if name not in SOLVERS and name not in diverged]
    target = comparison.settings.get("target_gap")
    if target is not None and target > 0:
        lowest.append(target)
    positive = [gap for gap in lowest if gap > 0]
    floor = max(min(positive) / 10, GAP_FLOOR) if positive else GAP_FLOOR
    below = False
    for index, (name, curve) in enumerate(curves.items()):
        gap = np.asarray(curve["gap"], dtype=np.float64)
        first = np.flatnonzero(gap < floor)[:1].tolist()
        below = below or bool(first)
        ax.plot(curve[x], np.maximum(gap, floor), color=_color(name, index),
                linestyle=":" if name in diverged else "-", marker="v" if first else None,
                markevery=first or None,
                label=name + (" (diverged)" if name in diverged else ""))
    if target is not None and target > 0:
        ax.axhline(target, color="0.4", linestyle="--", linewidth=0.8, label="target gap")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor / 2)  # the floor inside the frame, not on it
    if below:
        ax.text(0.01, 0.01, f"\u25bc gap below {floor:.0e} (0: at the optimum), drawn at it",
                transform=ax.transAxes, fontsize="x-small", color="0.3", va="bottom")
    optimum, initial = comparison.optimum, comparison.settings.get("initial_loss")
    if initial is not None and np.isfinite(optimum):
        start = (initial - optimum) / max(abs(optimum), 1e-12)
        if np.isfinite(start) and start > 0:
            ax.set_ylim(top=3 * start)
    if x == "updates" and curves:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel("relative loss gap")
    ax.grid(True, which="both", alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", ncol=2)
    return ax


def schedules(ax=None, *, lr=0.1, total_steps=1000, names=None, until=None, legend=True):
    """The learning rate of each schedule in ``names`` (default: every one of
    ``fastopt.SCHEDULES`` with its defaults) against the update counter t, for a fit of
    ``total_steps`` updates at base rate ``lr``; ``until`` draws only t < until, to see a
    short warm-up (``linear`` rises over 5 updates, then equals ``constant``). ``legend``:
    draw the legend."""
    ax = _axes(ax)
    t = np.arange(total_steps if until is None else min(until, total_steps))
    for index, name in enumerate(names or SCHEDULES):
        # Several schedules coincide for long stretches (constant and the end of a linear
        # warm-up): each later one is dashed over the earlier ones, so both colours show.
        ax.plot(t, make_schedule(name, lr, total_steps)(t), label=name,
                linestyle=("-", "--", "-.", ":")[index % 4], color=f"C{index % 10}")
    ax.set_xlabel("update t")
    ax.set_ylabel("learning rate")
    ax.set_title(f"all {total_steps} updates" if len(t) == total_steps else
                 f"the first {len(t)} of {total_steps} updates")
    ax.grid(True, alpha=0.3)
    if legend:
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

    The view covers the optimum, the start and the whole of every path that ends nearer the
    optimum than it started; of a path that does not, the points up to a few times the
    distance from the start to the optimum (a diverging path leaves the picture instead of
    flattening it). The contour levels are spaced geometrically in the loss gap ``L - L*``.
    The legend goes below the panel, where it hides no path."""
    ax = _axes(ax)
    data = result.surfaces[surface]
    start = np.zeros(2)
    distance = float(np.linalg.norm(data.optimum - start))
    points = [start[None, :], data.optimum[None, :]]
    for path in data.paths.values():
        path = path[np.all(np.isfinite(path), axis=1)]
        away = np.linalg.norm(path - data.optimum, axis=1)
        converging = len(path) and away[-1] < distance
        points.append(path if converging else path[away <= 3.0 * distance])
    points = np.concatenate(points)
    low, high = points.min(axis=0), points.max(axis=0)
    # A square view with equal scales: only then is the gradient drawn perpendicular to the
    # contours, and a round surface looks round.
    half = (0.5 + margin) * max(float(np.max(high - low)), 1e-3)
    center = 0.5 * (low + high)
    low, high = center - half, center + half
    # The contours reach past the square: an Axes box that is not square widens the view.
    w, b = np.meshgrid(np.linspace(center[0] - 3 * half, center[0] + 3 * half, 400),
                       np.linspace(center[1] - 3 * half, center[1] + 3 * half, 400))
    gap = np.maximum(data.loss(w, b) - data.optimum_loss, 0.0)
    top = float(gap[(np.abs(w - center[0]) <= half) & (np.abs(b - center[1]) <= half)].max())
    contour_levels = top * np.geomspace(1e-4, 1.0, levels) if top > 0 else levels
    ax.contour(w, b, gap, levels=contour_levels, colors="0.6", linewidths=0.7)
    for index, (name, path) in enumerate(data.paths.items()):
        ax.plot(path[:, 0], path[:, 1], marker=".", markersize=3, linewidth=1.2,
                color=_color(name, index),
                label=f"{name} (lr={data.learning_rates[name]:.3g})"
                if data.learning_rates[name] is not None else name)
    ax.plot(*start, marker="o", color="black", linestyle="none", label="start")
    ax.plot(*data.optimum, marker="*", markersize=12, color="black", linestyle="none",
            label="optimum")
    # "datalim": equal scales by widening the view where the Axes box is not square, not by
    # shrinking the box, which pushes a legend outside the Axes off a constrained layout.
    # auto=None leaves the limits free for that widening.
    ax.set_xlim(low[0], high[0], auto=None)
    ax.set_ylim(low[1], high[1], auto=None)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("weight w")
    ax.set_ylabel("bias b")
    ax.set_title(f"{surface} feature (condition number {data.condition_number:.3g}), "
                 f"{result.settings.get('updates')} updates")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4)
    return ax
