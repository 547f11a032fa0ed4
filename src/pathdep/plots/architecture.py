"""Figure ``architecture``: the rate of separation per architecture at matched parameter count.

Left: the relative distance ``d / |w_b(t)|`` of the copies to their own baseline against the
step (log y: an exponential phase is a straight line), one line per architecture (mean over
independent baselines, band: 95 % t interval across them), the early-rate window shaded.
Middle: the early separation rate per architecture (its least-squares log slope over the
window, per step) with its 95 % interval across baselines, each labelled with its parameter
count. Right: the differences ``<architecture> - <reference>`` with their intervals, a zero
line and the verdict. Reads ``architecture.nc`` / ``architecture.csv`` written by
:mod:`pathdep.stages.architecture`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.plots.common import colors, plt, save

__all__ = ["plot_architecture"]


def _curves(ax, ds: xr.Dataset, cols) -> None:
    """Mean curves and bands; a band's lower end below the axis (a t interval of a positive
    quantity can reach below 0) is cut at the axis, a tenth of the smallest mean."""
    rel = ds["rel"].values
    floor = 0.1 * np.nanmin(np.where(rel > 0, rel, np.nan))
    for i, arch in enumerate(ds["architecture"].values):
        sel = ds.sel(architecture=arch)
        x = sel["step"].values
        ok = (x >= 0) & np.isfinite(sel["rel"].values) & (sel["rel"].values > 0)
        ax.plot(x[ok], sel["rel"].values[ok], color=cols[i], label=f"{arch} (P = {int(sel['n_params']):,})")
        lo, hi = sel["rel_lo"].values[ok], sel["rel_hi"].values[ok]
        if np.isfinite(lo).any():
            ax.fill_between(x[ok], np.clip(lo, floor, None), hi, color=cols[i], alpha=0.2, lw=0)
    t0, t1 = json.loads(ds.attrs.get("window", "[0, 0]"))
    ax.axvspan(t0, t1, color="0.85", zorder=0, label=f"rate window [{t0:g}, {t1:g}]")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    ax.set_xlabel("step")
    ax.set_ylabel("relative distance d / |w_b(t)|")
    ax.set_title("distance to the own baseline")
    ax.legend(fontsize=8, loc="lower right")


def _errorbars(ax, rows: pd.DataFrame, cols, labels) -> None:
    y = rows["mean"].to_numpy(float)
    err = np.vstack([y - rows["lo"].to_numpy(float), rows["hi"].to_numpy(float) - y])
    err = np.where(np.isfinite(err), err, 0.0)
    x = np.arange(len(rows))
    for i in range(len(rows)):
        ax.errorbar(x[i], y[i], yerr=err[:, i:i + 1], fmt="o", color=cols[i], capsize=5, ms=7)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)


def plot_architecture(nc: str, csv: str, pdf: str, png: str, statistic: str = "early_rate"):
    """Draw the figure; returns the three axes (for tests)."""
    ds = xr.load_dataset(nc, engine="h5netcdf")
    df = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    df = df[df["statistic"] == statistic]
    rates, diffs = df[df["how"].isna()], df[df["how"].notna()]
    cols = colors(max(len(rates), 2), "tab10")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), width_ratios=[1.4, 1, 1], layout="constrained")
    _curves(axes[0], ds, cols)
    _errorbars(axes[1], rates, cols, [f"{a}\nP = {p:,}" for a, p in zip(rates["architecture"], rates["n_params"])])
    axes[1].set_ylabel("early rate of log(d / |w_b|) per step")
    axes[1].set_title(f"separation rate (95 % t, {int(rates['baselines'].max())} baselines)")
    idx = [list(rates["architecture"]).index(a.split(" - ")[0]) for a in diffs["architecture"]]
    _errorbars(axes[2], diffs, [cols[i] for i in idx],
               [f"{a}\n{v}" for a, v in zip(diffs["architecture"], diffs["verdict"])])
    axes[2].axhline(0.0, color="0.3", lw=0.8, ls="--")
    axes[2].set_ylabel("difference of early rates per step")
    axes[2].set_title("convolutional - reference (paired over baselines)")
    fig.suptitle("Rate of separation by architecture at matched parameter count", fontsize=11)
    save(fig, pdf, png)
    return axes
