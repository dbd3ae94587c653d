"""Full-batch gradient descent against minibatch SGD on the breast-cancer data.

Per update, gradient descent makes more progress: each of its updates sees every row. Per pass
over the data (an epoch, the cost that matters), SGD is ahead: it makes 18 updates in the time
gradient descent makes one. Run: python examples/gd_vs_sgd.py [OUT_DIR]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import numpy as np  # noqa: E402

import fastopt  # noqa: E402
from fastopt import plot  # noqa: E402


def main(out_dir="."):
    result = fastopt.compare(optimizers=["gd", "sgd"], epochs=60, batch_size=32,
                             progress=False)
    print(result.to_text())
    fig, (by_updates, by_epochs) = plt.subplots(1, 2, figsize=(11, 4.2),
                                                constrained_layout=True)
    plot.loss_curves(result, by_updates, x="updates")
    by_updates.set_title("per update: gradient descent takes exact steps")
    for name, curve in result.curves.items():
        by_epochs.plot(np.arange(1, len(curve["gap"]) + 1), curve["gap"], label=name)
    by_epochs.set(xlabel="epochs (passes over the data)", ylabel="relative loss gap",
                  yscale="log", title="per pass over the data: SGD is ahead")
    by_epochs.grid(True, which="both", alpha=0.3)
    by_epochs.legend()
    fig.suptitle("Gradient descent vs SGD (batch 32), logistic regression, breast cancer")
    path = Path(out_dir) / "gd_vs_sgd.png"
    fig.savefig(path, dpi=100)
    print(f"picture: {path}")
    return result


if __name__ == "__main__":
    main(*sys.argv[1:])
