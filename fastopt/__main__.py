"""``fastopt`` / ``python -m fastopt``: the command line.

``fastopt compare`` (the default when no subcommand is given) trains the same model with every
optimizer on a data set (scikit-learn's breast-cancer data, or ``--data FILE --target COLUMN``)
and reports each optimizer's gap to the exact optimum, with a plot of the loss curves.
``fastopt lr-sweep`` runs one optimizer at several learning rates, ``fastopt paths`` draws
optimizer paths on a two-parameter loss surface (raw vs standardized feature), ``fastopt
schedules`` the learning-rate schedules.
``fastopt demo`` runs every optimizer step on a small ill-conditioned quadratic.
The benchmark is not a command of the installed package: it lives in the source repository
(``python -m bench`` from the root of a checkout)."""

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


# The --help text: plain words, no reStructuredText (the module docstring is for Sphinx).
DESCRIPTION = """\
Compare optimizers on a data set, and draw what they do. Without a command, fastopt runs
compare: every optimizer against the exact optimum, on scikit-learn's breast-cancer data or
on --data FILE --target COLUMN, with a table and the loss curves in fastopt-compare.png.
fastopt COMMAND --help lists the options of a command."""


class UsageError(Exception):
    """A bad argument or input file: one line on stderr, exit code 2."""


# Cells that mean "no value", as pandas reads them by default (read_csv's na_values).
MISSING = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "-NaN", "null", "NULL",
                     "None", "<NA>", "#N/A", "#NA", "NaT"})
DELIMITERS = ",;\t|"
MAX_CATEGORIES = 50  # a text feature column with more values is not one-hot encoded


def _sniff_delimiter(lines):
    """The delimiter among ``DELIMITERS`` that splits the first lines of a CSV file into the
    most fields, the same number on every line; "," when none splits them."""
    best, best_fields = ",", 1
    for delimiter in DELIMITERS:
        counts = {len(row) for row in csv.reader(lines, delimiter=delimiter) if row}
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = delimiter, fields
    return best


def _read_table(path):
    """``(column names, rows)`` of a CSV file (its delimiter sniffed), or of a Parquet file when
    pandas and pyarrow are installed; each row is a list of strings, None for a missing cell."""
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
        if frame.empty:
            raise UsageError(f"{path} has no data rows")
        # astype(str) would turn a missing value into the label "None" or "nan".
        cells = frame.astype(str).astype(object).mask(frame.isna(), None)
        return [str(c) for c in frame.columns], cells.values.tolist()
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            head = [line for _, line in zip(range(20), handle)]
            handle.seek(0)
            reader = csv.reader(handle, delimiter=_sniff_delimiter(head))
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
    rows = [[None if cell.strip() in MISSING else cell.strip() for cell in row] for row in rows]
    return header, rows


def _parse_floats(values):
    """``(floats, first non-number)``: the values as float64, or None and the first value
    that is not a number."""
    out = np.empty(len(values))
    for i, value in enumerate(values):
        try:
            out[i] = float(value)
        except ValueError:
            return None, value
    return out, None


def _line(path, row):
    """Where data row ``row`` is, for a message: a CSV line number, or a Parquet row."""
    return (f"row index {row}" if path.lower().endswith((".parquet", ".pq"))
            else f"line {row + 2}")


def _column(path, name, values, kind):
    """The values of one column as float64; a UsageError names the missing, infinite or
    non-numeric cells. ``kind`` is "feature" or "target"; a non-numeric column of text (no cell
    a number) is returned as None for the caller to treat as categories."""
    missing = [i for i, value in enumerate(values) if value is None]
    if missing:
        raise UsageError(f"{kind} column {name!r} has {len(missing)} missing value"
                         f"{'s' if len(missing) > 1 else ''} in {len(values)} rows (the first "
                         f"on {_line(path, missing[0])}): fill them in or drop those rows first")
    numbers, bad = _parse_floats(values)
    if numbers is None:
        decimal_commas, _ = _parse_floats([value.replace(",", ".") for value in values])
        if decimal_commas is not None:
            raise UsageError(f"{kind} column {name!r} holds numbers written with a decimal "
                             f"comma (e.g. {bad!r}); write them with a decimal point first")
        if any(_parse_floats([value])[0] is not None for value in values):
            row = values.index(bad)
            raise UsageError(f"{kind} column {name!r} holds numbers and text: {bad!r} on "
                             f"{_line(path, row)} is not a number; fix or drop it first")
        return None
    infinite = np.flatnonzero(~np.isfinite(numbers))
    if len(infinite):
        raise UsageError(f"{kind} column {name!r} has {len(infinite)} infinite value"
                         f"{'s' if len(infinite) > 1 else ''} (the first on "
                         f"{_line(path, int(infinite[0]))}); drop or clip them first")
    return numbers


def _one_hot(name, values):
    """``(columns, names)``: a text feature column as one 0/1 column per value (sorted), as
    scikit-learn's OneHotEncoder writes it; a UsageError when it has too many values to be a
    category."""
    categories = sorted(set(values))
    if len(categories) > min(MAX_CATEGORIES, len(values) / 2):
        raise UsageError(f"feature column {name!r} is text with {len(categories)} different "
                         f"values in {len(values)} rows (e.g. {values[0]!r}): too many to "
                         "one-hot encode as categories; drop it or encode it yourself first")
    codes = np.searchsorted(np.array(categories), np.array(values))
    encoded = np.zeros((len(values), len(categories)))
    encoded[np.arange(len(values)), codes] = 1.0
    return list(encoded.T), [f"{name}={category}" for category in categories]


def _note(text):
    print(f"fastopt: note: {text}", file=sys.stderr)


def load_data(path, target, model):
    """``(X, y, model, feature names)`` from a table file.

    A text feature column (no cell a number) with at most ``MAX_CATEGORIES`` values, and
    fewer than half the rows, is one-hot encoded; missing or infinite cells are an error.
    ``model`` None is inferred from the target: a text target, or integers with at most 20
    values, are class labels (2: logistic, more: softmax), other numbers linear. Labels with
    more distinct values than half the rows look continuous (or like an identifier), and need
    ``--model softmax`` explicitly."""
    header, rows = _read_table(path)
    if target is None:
        raise UsageError("--data needs --target COLUMN (the column to predict)")
    if target not in header:
        raise UsageError(f"target column {target!r} not in {path}; its columns: "
                         f"{', '.join(header)}")
    columns = [list(column) for column in zip(*rows)]
    j = header.index(target)
    features, names, encoded = [], [], []
    for i, name in enumerate(header):
        if i == j:
            continue
        values = _column(path, name, columns[i], "feature")
        if values is None:
            dummies, dummy_names = _one_hot(name, columns[i])
            features += dummies
            names += dummy_names
            encoded.append(f"{name!r} ({len(dummies)} values)")
        else:
            features.append(values)
            names.append(name)
    if not features:
        raise UsageError(f"{path} has no feature columns besides {target!r}")
    if encoded:
        _note(f"text feature column{'s' if len(encoded) > 1 else ''} {', '.join(encoded)} "
              "one-hot encoded: one 0/1 column per value")
    X = np.ascontiguousarray(np.column_stack(features))
    y_numeric = _column(path, target, columns[j], "target")
    n = len(rows)
    if y_numeric is None:
        distinct = len(set(columns[j]))
        integers = False
    else:
        distinct = len(np.unique(y_numeric))
        integers = bool(np.all(y_numeric == np.round(y_numeric)))
    looks_continuous = distinct > max(n / 2, 2)
    if model is None:
        if y_numeric is not None and (not integers or distinct > 20):
            model = "linear"
        elif distinct <= 2:
            model = "logistic"  # one class: fit says so
        elif looks_continuous:
            alternative = " or --model linear" if y_numeric is not None else ""
            raise UsageError(f"target column {target!r} has {distinct} different values in "
                             f"{n} rows: that looks continuous (or like an identifier), not like "
                             f"class labels; pass --model softmax to train {distinct} classes "
                             f"anyway{alternative}")
        else:
            model = "softmax"
    elif model == "softmax" and looks_continuous:
        _note(f"softmax with {distinct} classes for {n} rows: target column {target!r} looks "
              "continuous")
    if model == "linear":
        if y_numeric is None:
            raise UsageError(f"target column {target!r} is text (e.g. {columns[j][0]!r}), "
                             "not numbers; for class labels use --model logistic (2 classes) "
                             "or --model softmax")
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
    backend = _backends.resolve_name(args.backend)
    print(f"fastopt {__version__}, backend {_backends.describe(backend)}")
    print(f"Optimizers on an ill-conditioned quadratic, d={args.dim}, {args.steps} steps:")
    quadratic_demo(args.steps, args.dim, backend)
    return 0


def _add_compare_arguments(parser):
    from .comparison import COMPARE_OPTIMIZERS
    from .schedules import SCHEDULES
    parser.add_argument("--data", metavar="PATH", help="CSV file (delimiter , ; tab or |) or "
                        "Parquet file (with pandas+pyarrow) with a header row; text feature "
                        "columns are one-hot encoded, missing cells are an error; default: "
                        "scikit-learn's breast-cancer data")
    parser.add_argument("--target", metavar="COLUMN", help="the column to predict (with --data)")
    parser.add_argument("--model", choices=("linear", "logistic", "softmax"),
                        help="default: logistic for the default data; else logistic or softmax "
                        "for text labels or up to 20 integer classes, linear for other numbers")
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
                         Path(args.out) / "fastopt-paths.png", figsize=(13, 7))


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

    def whole(ax):
        plot.schedules(ax, lr=args.lr, total_steps=args.steps, legend=False)

    def start(ax):
        # The warm-ups (5 updates for linear, 5 % for warmup_cosine) are a sliver of the
        # whole fit: this panel shows its first tenth, and the legend beside it hides nothing.
        plot.schedules(ax, lr=args.lr, total_steps=args.steps, until=max(args.steps // 10, 2),
                       legend=False)
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))

    return _save_picture([whole, start], Path(args.out) / "fastopt-schedules.png",
                         figsize=(13, 4.5))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="fastopt", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fastopt {__version__}")
    subparsers = parser.add_subparsers(dest="command", title="commands")

    def command(name, text, **options):
        return subparsers.add_parser(name, help=text, description=text[0].upper() + text[1:],
                                     **options)

    _add_compare_arguments(command(
        "compare", "every optimizer against the optimum on a data set (the default)"))
    _add_demo_arguments(command(
        "demo", "every optimizer step on an ill-conditioned quadratic"))
    sweep = command("lr-sweep", "one optimizer at several learning rates")
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
    paths = command("paths", "optimizer paths on a 2-parameter loss surface, raw vs "
                    "standardized feature")
    paths.add_argument("--optimizers", metavar="LIST",
                       help="comma-separated (default gd,momentum,nesterov,adagrad,rmsprop,adam)")
    paths.add_argument("--updates", type=int, default=100)
    paths.add_argument("--seed", type=int, default=0)
    paths.add_argument("--backend", default="auto", choices=("auto",) + _backends.BACKENDS)
    paths.add_argument("--json", action="store_true", help="print the rows as JSON instead")
    paths.add_argument("--out", default=".", help="folder for fastopt-paths.png")
    shapes = command("schedules", "the learning rate of every schedule")
    shapes.add_argument("--lr", type=float, default=0.1)
    shapes.add_argument("--steps", type=int, default=1000)
    shapes.add_argument("--out", default=".", help="folder for fastopt-schedules.png")
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
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
