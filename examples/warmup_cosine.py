"""Adam with a linear warm-up and a cosine decay, against a constant learning rate.

The warm-up keeps the first, badly scaled updates small; the cosine decay removes the noise
floor of a constant rate, so the loss keeps falling towards the optimum.
Run: python examples/warmup_cosine.py [OUT_DIR]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fastopt  # noqa: E402

EPOCHS, BATCH, LR = 60, 32, 0.1


def main(out_dir="."):
    X, y = fastopt.comparison.load_default_data()
    total = EPOCHS * -(-len(X) // BATCH)  # updates in the whole fit
    schedules = {"constant": fastopt.Constant(),
                 "warm-up + cosine": fastopt.WarmupCosine(warmup_steps=total // 10,
                                                          max_steps=total)}
    runs = {}
    for name, schedule in schedules.items():
        runs[name] = fastopt.compare(X, y, model="logistic", optimizers=["adam"], lr=LR,
                                     schedule=schedule, epochs=EPOCHS, batch_size=BATCH,
                                     progress=False)
        print(f"{name:<17} final gap {runs[name].rows[0]['gap']:.2e}")
    fig, (rates, gaps) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    t = np.arange(total)
    for name, schedule in schedules.items():
        rates.plot(t, fastopt.make_schedule(schedule, LR, total)(t), label=name)
        curve = runs[name].curves["adam"]
        gaps.plot(curve["updates"], np.maximum(curve["gap"], 1e-16), label=name)
    rates.set(xlabel="update t", ylabel="learning rate", title="Adam's learning rate")
    gaps.set(xlabel="updates", ylabel="relative loss gap", yscale="log",
             title="gap to the optimum after each epoch")
    for ax in (rates, gaps):
        ax.grid(True, alpha=0.3)
        ax.legend()
    path = Path(out_dir) / "warmup_cosine.png"
    fig.savefig(path, dpi=100)
    print(f"picture: {path}")
    return runs


if __name__ == "__main__":
    main(*sys.argv[1:])
