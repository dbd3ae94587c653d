"""The four classic optimizers side by side: SGD, SGD with momentum, RMSprop and Adam.

Each trains the same logistic regression from zero with the same shuffle and its usual
learning rate (the defaults of fastopt.compare); the curves show the relative gap of the exact
training loss to the optimum that Newton's method finds.
Run: python examples/classic_optimizers.py [OUT_DIR]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import fastopt  # noqa: E402
from fastopt import plot  # noqa: E402

OPTIMIZERS = ["sgd", "momentum", "rmsprop", "adam"]


def main(out_dir="."):
    result = fastopt.compare(optimizers=OPTIMIZERS, epochs=100, progress=False)
    print(result.to_text())
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    plot.loss_curves(result, ax, x="updates")
    ax.set_title("Four classic optimizers, logistic regression on breast cancer")
    ax.legend()
    path = Path(out_dir) / "classic_optimizers.png"
    fig.savefig(path, dpi=100)
    print(f"picture: {path}")
    return result


if __name__ == "__main__":
    main(*sys.argv[1:])
