"""A learning rate too small, about right, and too large, for gradient descent.

Linear regression on scikit-learn's bundled diabetes data (standardized features). With the
largest curvature L of the loss, gradient descent converges for lr < 2 / L and diverges above:
too small crawls, about right converges fast, too large blows up (fastopt stops the fit and
reports it). Run: python examples/learning_rates.py [OUT_DIR]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402

import fastopt  # noqa: E402
from fastopt import plot  # noqa: E402


def main(out_dir="."):
    X, y = load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()
    # L: the largest eigenvalue of the Hessian of ½·mean((Xw + b - y)²) on standardized X.
    Z = np.column_stack([(X - X.mean(axis=0)) / X.std(axis=0), np.ones(len(X))])
    largest = np.linalg.eigvalsh(Z.T @ Z / len(Z))[-1]
    rates = [0.02 / largest, 1.0 / largest, 2.5 / largest]
    sweep = fastopt.lr_sweep(X, y, optimizer="gd", lrs=rates, model="linear", epochs=100,
                             penalty=None, alpha=0.0, progress=False)
    for lr, run in sweep.runs.items():
        row = run.rows[0]
        status = "diverged" if lr in sweep.diverged() else f"gap {row['gap']:.2e}"
        print(f"lr = {lr:.4g} ({lr * largest:.2f} / L): {status}")
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    plot.lr_sweep(sweep, ax)
    ax.set_title(f"Gradient descent, diabetes data: lr = 0.02/L, 1/L, 2.5/L (L = {largest:.3g})")
    path = Path(out_dir) / "learning_rates.png"
    fig.savefig(path, dpi=100)
    print(f"picture: {path}")
    return sweep, largest


if __name__ == "__main__":
    main(*sys.argv[1:])
