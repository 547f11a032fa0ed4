"""Figure ``<experiment>_grokking``: train and test accuracy and loss of a grokking experiment.

Left: accuracy against the training step (log x), train solid and test dashed, one colour
per run (e.g. ``constrain_norm=False`` and ``=True``); the baseline of each run is the line
and the other networks of the run are thin lines of the same colour; the first recorded
steps at train 100 % (circle) and test 90 % (square) of each run's first baseline are marked
(from ``grokking.csv``). Middle: the losses the same way (log y). Right: the test loss over
the first 100 steps on a linear axis (where the two runs' early dynamics look alike).
Reads the runs' ``metrics.nc`` and ``grokking.csv`` (:mod:`pathdep.stages.grokking`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pathdep.plots.common import colors, figure_legend, load, log_axes, plt, run_label, save, step_axis

__all__ = ["plot_grokking"]


def _curves(ax, ds, var_train: str, var_test: str, color, label: str) -> None:
    x = step_axis(ds)
    base = np.asarray(ds["role"].values) == "baseline"
    for k in range(ds.sizes["member"]):
        lw, alpha = (1.6, 1.0) if base[k] else (0.6, 0.5)
        first = k == int(np.argmax(base))
        ax.plot(x, ds[var_train].values[k], color=color, lw=lw, alpha=alpha,
                label=f"{label}: train" if first else None)
        ax.plot(x, ds[var_test].values[k], color=color, lw=lw, alpha=alpha, ls="--",
                label=f"{label}: test" if first else None)


def _marks(ax, df: pd.DataFrame, run: str, color) -> None:
    rows = df[(df["run"] == run) & (df["copy"] == 0)]
    if rows.empty:
        return
    r = rows.iloc[0]
    if np.isfinite(r["train_1.0"]) and r["train_1.0"] > 0:
        ax.plot(r["train_1.0"], 1.0, "o", color=color, ms=6, mfc="none")
    if np.isfinite(r["test_0.9"]) and r["test_0.9"] > 0:
        ax.plot(r["test_0.9"], 0.9, "s", color=color, ms=6, mfc="none")


def plot_grokking(metrics: Sequence[str], csv: str, pdf: str, png: str):
    """Draw the grokking figure of one experiment; returns the (closed) figure."""
    dss = load(metrics)
    df = pd.read_csv(csv)
    cols = colors(len(dss), "tab10")
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    for ds, col in zip(dss, cols):
        lab = run_label(ds)
        _curves(a, ds, "train_acc", "test_acc", col, lab)
        _marks(a, df, str(ds.attrs.get("run", "")), col)
        _curves(b, ds, "train_loss", "test_loss", col, lab)
        s = ds["step"].values.astype(float)
        early = s <= 100
        for k in range(ds.sizes["member"]):
            c.plot(s[early], ds["test_loss"].values[k][early], color=col, lw=1.0, alpha=0.8)
    log_axes(a, x=True, y=False)
    a.set_ylim(-0.02, 1.02)
    a.set_xlabel("step")
    a.set_ylabel("accuracy")
    a.set_title("accuracy (o: train 100 %, s: test 90 %)", fontsize=9)
    log_axes(b)
    b.set_xlabel("step")
    b.set_ylabel("cross-entropy loss")
    b.set_title("loss", fontsize=9)
    c.grid(alpha=0.3)
    c.set_xlabel("step")
    c.set_ylabel("test loss")
    c.set_title("test loss, first 100 steps", fontsize=9)
    exp = str(dss[0].attrs.get("experiment", "")) if dss else ""
    fig.suptitle(f"{exp}: grokking (solid: train, dashed: test; thick: baselines)", fontsize=10)
    figure_legend(fig, a)
    return save(fig, pdf, png)
