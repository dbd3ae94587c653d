"""``fastopt`` / ``python -m fastopt``: the command line.

``fastopt compare`` (the default when no subcommand is given) trains the same model with every
optimizer on a data set (scikit-learn's breast-cancer data, or ``--data FILE --target COLUMN``)
and reports each optimizer's gap to the exact optimum, with a plot of the loss curves.
``fastopt lr-sweep`` runs one optimizer at several learning rates, ``fastopt paths`` draws
optimizer paths on a two-parameter loss surface (raw vs standardized feature), ``fastopt
schedules`` the learning-rate schedules.
``fastopt demo`` runs every optimizer step on a small ill-conditioned quadratic.
``fastopt bench`` runs the benchmark (``python -m bench``) from the root of a source checkout."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, _backends
from .optim import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, RAdam, RMSprop

# Learning rates that work on this problem (curvatures 1..100); not tuned further.
DEMO_OPTIMIZERS = {
    "gd": SGD(lr=0.01),
    "momentum": SGD(lr=0.01, momentum=0.9),
    "nesterov": SGD(lr=0.01, momentum=0.9, nesterov=True),
    "adagrad": Adagrad(lr=0.5),
    "rmsprop": RMSprop(lr=0.01),
    "adadelta": Adadelta(lr=1.0),
    "adam": Adam(lr=0.05),
    "adamw": AdamW(lr=0.05, weight_decay=0.0),
    "nadam": NAdam(lr=0.05),
    "radam": RAdam(lr=0.05),
}


def quadratic_demo(steps: int, dim: int, backend: str, out=sys.stdout) -> dict:
    """Minimise ½ Σ h_i x_i² (h log-spaced over [1, 100]) from x = 1 with each optimizer;
    print and return {name: (final loss, first step with loss < 1e-6 or None)}."""
    curvature = np.logspace(0, 2, dim)
    results = {}
    print(f"{'optimizer':<10} {'final loss':>12} {'steps to 1e-6':>14} {'us/step':>9}", file=out)
    for name, opt in DEMO_OPTIMIZERS.items():
        x = np.ones(dim)
        state = opt.init(x)
        reached = None
        start = time.perf_counter()
        for t in range(steps):
            opt.step(x, curvature * x, state, backend=backend)
            loss = 0.5 * float(np.dot(curvature * x, x))
            if reached is None and loss < 1e-6:
                reached = t + 1
        per_step = (time.perf_counter() - start) / steps * 1e6
        results[name] = (loss, reached)
        print(f"{name:<10} {loss:>12.3e} {reached if reached else '-':>14} {per_step:>9.1f}",
              file=out)
    return results



class UsageError(Exception):
    """A bad argument or input file: one line on stderr, exit code 2."""


def _read_table(path):
    """``(column names, rows as lists of strings)`` of a CSV file, or of a Parquet file when
    pandas and pyarrow are installed."""
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    if path.lower().endswith((".parquet", ".pq")):
        try:
            import pandas as pd
            frame = pd.read_parquet(path)
        except ImportError:
            raise UsageError("reading Parquet needs pandas and pyarrow: pip install pandas "
                             "pyarrow, or pass a CSV file") from None
        except Exception as exc:  # noqa: BLE001 - any reader error is a bad input file
            raise UsageError(f"cannot read {path}: {exc}") from None
        return [str(c) for c in frame.columns], frame.astype(str).values.tolist()
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = [row for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not header:
        raise UsageError(f"{path} is empty")
    header = [name.strip() for name in header]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise UsageError(f"{path}, line {number}: {len(row)} fields, the header has "
                             f"{len(header)}")
    if not rows:
        raise UsageError(f"{path} has no data rows")
    return header, rows


def _to_float(values):
    try:
        out = np.array([float(value) for value in values], dtype=np.float64)
    except ValueError:
        return None
    return out if np.all(np.isfinite(out)) else None


def load_data(path, target, model):
    """``(X, y, model, feature names)`` from a table file; ``model`` None is inferred from the
    target: a non-numeric or integer target with 2 values -> logistic, 3..20 -> softmax, else
    linear."""
    header, rows = _read_table(path)
    if target is None:
        raise UsageError("--data needs --target COLUMN (the column to predict)")
    if target not in header:
        raise UsageError(f"target column {target!r} not in {path}; its columns: "
                         f"{', '.join(header)}")
    columns = list(zip(*rows))
    j = header.index(target)
    features, names = [], []
    for i, name in enumerate(header):
        if i == j:
            continue
        values = _to_float(columns[i])
        if values is None:
            raise UsageError(f"feature column {name!r} is not numeric (or has missing or "
                             "infinite values); drop or encode it first")
        features.append(values)
        names.append(name)
    if not features:
        raise UsageError(f"{path} has no feature columns besides {target!r}")
    X = np.ascontiguousarray(np.column_stack(features))
    y_numeric = _to_float(columns[j])
    if model is None:
        distinct = len(set(columns[j]))
        categorical = y_numeric is None or np.all(y_numeric == np.round(y_numeric))
        model = ("logistic" if categorical and distinct == 2 else
                 "softmax" if categorical and 2 < distinct <= 20 else "linear")
    if model == "linear":
        if y_numeric is None:
            raise UsageError(f"target column {target!r} is not numeric; use --model logistic "
                             "or softmax for labels")
        return X, y_numeric, model, names
    y = y_numeric if y_numeric is not None else np.array(columns[j])
    return X, y, model, names


def _optimizer_list(text):
    from .comparison import COMPARE_OPTIMIZERS
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in COMPARE_OPTIMIZERS]
    if unknown or not names:
        raise UsageError(f"unknown optimizer {', '.join(map(repr, unknown)) or '(none)'}; "
                         f"choose from {','.join(COMPARE_OPTIMIZERS)}")
    return names


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


# The settings of a comparison that its --json output repeats, so that a saved report says
# how it was made.
JSON_SETTINGS = ("backend", "epochs", "batch_size", "lr", "schedule", "standardize", "penalty",
                 "alpha", "random_state", "target_gap", "n_samples", "n_features",
                 "optimum_source", "initial_loss")


def run_compare(args) -> int:
    from .comparison import compare, plot_loss_curves
    optimizers = None if args.optimizers is None else _optimizer_list(args.optimizers)
    if args.data is not None:
        X, y, model, features = load_data(args.data, args.target, args.model)
        source = args.data
    else:
        if args.target is not None:
            raise UsageError("--target needs --data FILE")
        X = y = features = None
        model = args.model
        source = "breast cancer (scikit-learn)"
    try:
        result = compare(X, y, model=model, optimizers=optimizers, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, schedule=args.schedule,
                         backend=args.backend, standardize=args.standardize,
                         penalty="l2" if args.alpha > 0 else None, alpha=args.alpha,
                         seed=args.seed, target_gap=args.target_gap,
                         progress=False if args.quiet else None)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    if args.out is not None and not os.path.isdir(args.out):
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create --out {args.out}: {exc}") from None
    path: str | None = os.path.join(args.out or os.curdir, "fastopt-compare.png")
    try:
        plot_loss_curves(result, path)
    except ImportError:
        path = None
    if args.json:
        rows = [{key: _json_value(value) for key, value in row.items()} for row in result.rows]
        settings = {key: _json_value(result.settings[key]) for key in JSON_SETTINGS}
        print(json.dumps({"data": source, "model": result.model, "features": features,
                          "optimum": _json_value(result.optimum), "settings": settings,
                          "plot": path, "rows": rows}, indent=2))
        return 0
    settings = result.settings
    print(f"fastopt {__version__}, backend {settings['backend']}: {result.model} regression on "
          f"{source}, {settings['n_samples']} rows x {settings['n_features']} features, "
          f"{args.epochs} epochs, batch {args.batch_size}; optimum {result.optimum:.10g} "
          f"({settings['optimum_source']}); gap = relative distance to it, "
          f"target {args.target_gap:g}")
    print(result.to_text())
    for row in result.rows:
        if "error" in row:
            print(f"{row['optimizer']}: {row['error']}")
    if path is None:
        print("(the loss-curve plot needs matplotlib: pip install 'fastopt[plot]')")
    else:
        print(f"loss curves: {path}")
    return 0


def run_demo(args) -> int:
    if args.steps < 1 or args.dim < 1:
        raise UsageError("--steps and --dim must be positive")
    backend = _backends.resolve(args.backend)
    target = ""
    if backend == "cpp":
        target = f" ({_backends._core.cpu_target()} kernels)"
    print(f"fastopt {__version__}, backend {backend}{target}")
    print(f"Optimizers on an ill-conditioned quadratic, d={args.dim}, {args.steps} steps:")
    quadratic_demo(args.steps, args.dim, backend)
    return 0


def _add_compare_arguments(parser):
    from .comparison import COMPARE_OPTIMIZERS
    from .schedules import SCHEDULES
    parser.add_argument("--data", metavar="PATH", help="CSV file (Parquet with pandas+pyarrow) "
                        "with a header row; default: scikit-learn's breast-cancer data")
    parser.add_argument("--target", metavar="COLUMN", help="the column to predict (with --data)")
    parser.add_argument("--model", choices=("linear", "logistic", "softmax"),
                        help="default: logistic for the default data, else inferred from the "
                        "target")
    parser.add_argument("--optimizers", metavar="LIST",
                        help=f"comma-separated, from {','.join(COMPARE_OPTIMIZERS)} (default all)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, help="one learning rate for every first-order "
                        "optimizer (default: per optimizer, see fastopt.compare)")
    parser.add_argument("--schedule", choices=tuple(SCHEDULES))
    parser.add_argument("--alpha", type=float, default=1e-3,
                        help="L2 penalty strength (0: none); default 1e-3")
    parser.add_argument("--target-gap", type=float, default=1e-2,
                        help="relative gap to the optimum that counts as reached (1e-2)")
    parser.add_argument("--backend", default="auto", choices=("auto",) + _backends.BACKENDS)
    parser.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", metavar="DIR", help="where fastopt-compare.png goes "
                        "(default: the current directory)")
    parser.add_argument("--json", action="store_true", help="print the rows and settings as "
                        "JSON instead of the table (the picture is still written)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _add_demo_arguments(parser):
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--backend", default="auto", choices=("auto",) + _backends.BACKENDS)


def run_lr_sweep(args) -> int:
    """One optimizer at several learning rates: a table and the loss curves."""
    from .comparison import lr_sweep
    try:
        lrs = [float(text) for text in args.lrs.split(",") if text.strip()]
    except ValueError:
        raise UsageError(f"--lrs must be comma-separated numbers, got {args.lrs!r}") from None
    if args.epochs < 1 or args.batch_size < 1:
        raise UsageError("--epochs and --batch-size must be positive")
    X = y = None
    model = args.model
    if args.data is not None:
        X, y, model, _ = load_data(args.data, args.target, args.model)
    elif args.target is not None:
        raise UsageError("--target needs --data FILE")
    try:
        sweep = lr_sweep(X, y, optimizer=args.optimizer, lrs=lrs, model=model,
                         epochs=args.epochs, batch_size=args.batch_size,
                         backend=args.backend, standardize=args.standardize,
                         penalty="l2" if args.alpha > 0 else None, alpha=args.alpha,
                         seed=args.seed, progress=False)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    diverged = set(sweep.diverged())
    print(f"{args.optimizer}: learning-rate sweep, {args.epochs} epochs, batch "
          f"{args.batch_size}; optimum {sweep.optimum:.10g}")
    print(f"{'lr':>10}  {'final loss':>12}  {'gap':>10}  status")
    for lr, run in sweep.runs.items():
        row = run.rows[0]
        status = "diverged" if lr in diverged else "ok"
        print(f"{lr:>10g}  {row.get('final_loss', math.nan):>12.6g}  "
              f"{row.get('gap', math.inf):>10.2e}  {status}")
    from . import plot
    return _save_picture(lambda ax: plot.lr_sweep(sweep, ax),
                         Path(args.out) / "fastopt-lr-sweep.png")


def _save_picture(draw, path, figsize=(8, 4.5)) -> int:
    """``draw(ax)`` on a new figure saved as the PNG ``path`` (a list of functions: one panel
    each, side by side); a note instead when matplotlib is missing (the tables above are the
    result, the picture is extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(the plot needs matplotlib: pip install 'fastopt[plot]')")
        return 0
    panels = draw if isinstance(draw, list) else [draw]
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, constrained_layout=True,
                             squeeze=False)
    for panel, ax in zip(panels, axes[0]):
        panel(ax)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"curves: {path}")
    return 0


def run_paths(args) -> int:
    """Optimizer paths on the two-parameter surface, raw and standardized, side by side."""
    from .paths import PATH_OPTIMIZERS, optimizer_paths

    names = PATH_OPTIMIZERS if args.optimizers is None else _optimizer_list(args.optimizers)
    if args.updates < 1:
        raise UsageError("--updates must be positive")
    result = optimizer_paths(names, updates=args.updates, seed=args.seed, backend=args.backend)
    rows = result.rows()
    if args.json:
        print(json.dumps([{key: _json_value(value) for key, value in row.items()}
                          for row in rows], indent=2))
        return 0
    for surface in result.surfaces.values():
        print(f"{surface.name} feature: condition number {surface.condition_number:.3g}, "
              f"optimum w={surface.optimum[0]:.4g}, b={surface.optimum[1]:.4g}")
    print(f"{'surface':<13} {'optimizer':<10} {'lr':>9} {'final gap':>11} "
          f"{'updates to 1e-6':>16}")
    for row in rows:
        lr = "-" if row["lr"] is None else format(row["lr"], ".3g")
        reached = row["updates_to_1e-6"]
        print(f"{row['surface']:<13} {row['optimizer']:<10} {lr:>9} {row['final_gap']:>11.3e} "
              f"{'-' if reached is None else reached:>16}")
        if "error" in row:
            print(f"  {row['error']}")
    from . import plot
    return _save_picture([lambda ax: plot.paths(result, ax, surface="raw"),
                          lambda ax: plot.paths(result, ax, surface="standardized")],
                         Path(args.out) / "fastopt-paths.png", figsize=(13, 6))


def run_schedules(args) -> int:
    """The learning rate of every schedule at a few points of a fit, and their curves."""
    from .schedules import SCHEDULES, make_schedule

    if args.steps < 2 or not args.lr > 0:
        raise UsageError("--steps must be >= 2 and --lr positive")
    points = np.unique(np.linspace(0, args.steps - 1, 5).astype(np.int64))
    header = "schedule".ljust(14) + "".join(f"{f't={p}':>12}" for p in points)
    print(f"Learning rate of each schedule (defaults, base lr {args.lr:g}, {args.steps} updates)")
    print(header)
    for name in SCHEDULES:
        rates = make_schedule(name, args.lr, args.steps)(points)
        print(name.ljust(14) + "".join(f"{rate:>12.4g}" for rate in rates))
    from . import plot
    return _save_picture(lambda ax: plot.schedules(ax, lr=args.lr, total_steps=args.steps),
                         Path(args.out) / "fastopt-schedules.png")


def run_bench(argv) -> int:
    """``fastopt bench [options]``: the benchmark command, ``python -m bench``. It lives in the
    source repository (``bench/``, with PyTorch and scikit-learn as optional peers), not in the
    installed package, so it runs from the root of a checkout."""
    root = Path.cwd()
    if not ((root / "bench" / "__main__.py").is_file() and (root / "csrc").is_dir()):
        print("fastopt: error: the benchmark ships with fastopt's source repository, not with the "
              "package: run `fastopt bench` (or `python -m bench`) from the root of a checkout",
              file=sys.stderr)
        return 2
    if _backends._core is None:  # e.g. `python -m fastopt` in a checkout built elsewhere
        print(f"fastopt: error: the benchmark needs fastopt's compiled module, which this fastopt "
              f"({Path(__file__).parent}) does not have: build it (pip install -e .) or run the "
              f"installed `fastopt` command", file=sys.stderr)
        return 2
    sys.path.insert(0, str(root))
    from bench.__main__ import main as bench_main
    return bench_main(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "bench":
        return run_bench(argv[1:])
    parser = argparse.ArgumentParser(prog="fastopt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fastopt {__version__}")
    commands = parser.add_subparsers(dest="command",
                                     metavar="{compare,lr-sweep,paths,schedules,demo}")
    _add_compare_arguments(commands.add_parser(
        "compare", help="every optimizer against the optimum on a data set (the default)"))
    _add_demo_arguments(commands.add_parser(
        "demo", help="every optimizer step on an ill-conditioned quadratic"))
    sweep = commands.add_parser("lr-sweep", help="one optimizer at several learning rates")
    sweep.add_argument("--optimizer", default="sgd")
    sweep.add_argument("--lrs", default="0.001,0.01,0.1,1,10,100",
                       help="comma-separated learning rates")
    for flag, kwargs in (("--data", {}), ("--target", {}),
                         ("--model", {"choices": ("linear", "logistic", "softmax")}),
                         ("--epochs", {"type": int, "default": 50}),
                         ("--batch-size", {"type": int, "default": 32}),
                         ("--alpha", {"type": float, "default": 1e-3}),
                         ("--backend", {"default": "auto",
                                        "choices": ("auto",) + _backends.BACKENDS}),
                         ("--seed", {"type": int, "default": 0}),
                         ("--out", {"default": ".", "help": "folder for fastopt-lr-sweep.png"})):
        sweep.add_argument(flag, **kwargs)
    sweep.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True)
    paths = commands.add_parser("paths", help="optimizer paths on a 2-parameter loss surface, "
                                "raw vs standardized feature")
    paths.add_argument("--optimizers", metavar="LIST",
                       help="comma-separated (default gd,momentum,nesterov,adagrad,rmsprop,adam)")
    paths.add_argument("--updates", type=int, default=100)
    paths.add_argument("--seed", type=int, default=0)
    paths.add_argument("--backend", default="auto", choices=("auto",) + _backends.BACKENDS)
    paths.add_argument("--json", action="store_true", help="print the rows as JSON instead")
    paths.add_argument("--out", default=".", help="folder for fastopt-paths.png")
    shapes = commands.add_parser("schedules", help="the learning rate of every schedule")
    shapes.add_argument("--lr", type=float, default=0.1)
    shapes.add_argument("--steps", type=int, default=1000)
    shapes.add_argument("--out", default=".", help="folder for fastopt-schedules.png")
    if not argv or argv[0] not in ("compare", "demo", "schedules", "lr-sweep", "paths", "-h",
                                   "--help", "--version"):
        argv = ["compare"] + argv  # plain `fastopt [options]` runs the comparison
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(args)
        if args.command == "schedules":
            return run_schedules(args)
        if args.command == "lr-sweep":
            return run_lr_sweep(args)
        if args.command == "paths":
            return run_paths(args)
        if args.epochs < 1 or args.batch_size < 1:
            raise UsageError("--epochs and --batch-size must be positive")
        return run_compare(args)
    except UsageError as exc:
        print(f"fastopt: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a check of fastopt.fit (e.g. labels for the model)
        print(f"fastopt: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
