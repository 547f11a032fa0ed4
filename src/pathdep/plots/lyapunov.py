"""Figures of the Lyapunov analyses (PDF + PNG).

* ``lyapunov_spectrum``: running Benettin exponents of each run's baseline over the steps,
  and the final k leading exponents per run;
* ``lyapunov_link``: the maximal exponent from Benettin against the measured early growth
  rate of the member-baseline distance (with its standard error), and the line y = x;
* ``lyapunov_study_*``: the 2-2-1 study: final-loss histograms with the failure threshold,
  FTLE distributions of failed vs successful runs at the earliest indicator time, CLV angle
  distributions, ROC curves and AUC against the indicator time.

How it was checked: tests/test_lyapunov_run.py renders them from small synthetic inputs and
checks the files are PDFs/PNGs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402


def _save(fig, pdf, png):
    Path(pdf).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(pdf, bbox_inches="tight")
    fig.savefig(png, bbox_inches="tight", dpi=120)
    plt.close(fig)


def _label(ds):
    swept = json.loads(ds.attrs.get("swept", "{}"))
    s = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in swept.items()) or ds.attrs.get("run", "")
    return f"{ds.attrs.get('experiment', '')}: {s}"


def plot_spectrum(paths: Sequence[str], pdf: str, png: str) -> None:
    dss = [xr.load_dataset(p, engine="h5netcdf") for p in paths]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.cm.tab10(np.arange(len(dss)) % 10)
    for ds, c in zip(dss, colors):
        axes[0].plot(ds["step"], ds["running"].isel(exponent=0), color=c, label=_label(ds))
        axes[1].plot(ds["exponent"], ds["exponents"], "o-", color=c, ms=3)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel(r"running $\lambda_1$ (per step)")
    axes[0].axhline(0, color="k", lw=0.5)
    axes[0].legend(fontsize=6)
    axes[1].set_xlabel("exponent index")
    axes[1].set_ylabel(r"$\lambda_i$ (per step)")
    axes[1].axhline(0, color="k", lw=0.5)
    fig.suptitle("Benettin spectra of the baselines' training maps (state: weights + optimiser buffers)")
    _save(fig, pdf, png)


def plot_link(table, pdf: str, png: str) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    x, y, e = table["lambda_max"].values, table["measured_rate"].values, table["measured_rate_se"].values
    for exp in table["experiment"].unique():
        m = table["experiment"].values == exp
        ax.errorbar(x[m], y[m], yerr=e[m], fmt="o", label=exp, capsize=2)
    fin = np.isfinite(x) & np.isfinite(y)
    if fin.any():
        lo, hi = min(x[fin].min(), y[fin].min()), max(x[fin].max(), y[fin].max())
        pad = 0.1 * (hi - lo + 1e-12)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8, label="y = x")
    ax.set_xlabel(r"Benettin $\lambda_{max}$ of the baseline (per step)")
    ax.set_ylabel("measured growth rate of |w_k - w_0| (per step)")
    ax.legend(fontsize=7)
    ax.set_title("Maximal Lyapunov exponent vs measured early divergence")
    _save(fig, pdf, png)


def plot_study(study: xr.Dataset, roc: xr.Dataset, out: dict) -> None:
    """Figures of the 2-2-1 study: ``out`` maps loss/ftle/clv/roc to (pdf, png)."""
    acts, ranges = list(study["activation"].values), list(study["init_range"].values)
    thr = float(study.attrs.get("threshold", 1e-3))
    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), squeeze=False)
    for ax, a in zip(axes[0], acts):
        for r in ranges:
            fl = study["final_loss"].sel(activation=a, init_range=r).values
            frac = float(np.mean(fl > thr))
            ax.hist(np.log10(np.maximum(fl, 1e-30)), bins=60, alpha=0.5, label=f"U(-{r:g},{r:g}): {100 * frac:.1f}% failed")
        ax.axvline(np.log10(thr), color="k", ls="--", lw=0.8)
        ax.set_xlabel("log10 final loss")
        ax.set_title(a)
        ax.legend(fontsize=7)
    fig.suptitle("2-2-1 networks: final loss (dashed: failure threshold)")
    _save(fig, *out["loss"])

    t0 = study["time"].values[0]
    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), squeeze=False)
    for ax, a in zip(axes[0], acts):
        r = ranges[-1]
        s = study.sel(activation=a, init_range=r)
        f1 = s["ftle"].sel(time=t0).isel(exponent=0).values
        failed = s["failed"].values.astype(bool)
        ax.hist(f1[~failed], bins=50, alpha=0.5, density=True, label="low final loss")
        ax.hist(f1[failed], bins=50, alpha=0.5, density=True, label="high final loss")
        ax.set_xlabel(f"leading FTLE at t = {t0}")
        ax.set_title(f"{a}, U(-{r:g},{r:g})")
        ax.legend(fontsize=7)
    fig.suptitle("Early finite-time Lyapunov exponents separate failed runs")
    _save(fig, *out["ftle"])

    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), squeeze=False)
    for ax, a in zip(axes[0], acts):
        r = ranges[-1]
        s = study.sel(activation=a, init_range=r)
        ang = np.degrees(s["min_clv_angle"].sel(time=t0).values)
        failed = s["failed"].values.astype(bool)
        ax.hist(ang[~failed], bins=45, range=(0, 90), alpha=0.5, density=True, label="low final loss")
        ax.hist(ang[failed], bins=45, range=(0, 90), alpha=0.5, density=True, label="high final loss")
        ax.set_xlabel(f"smallest angle between CLV pairs at t = {t0} (degrees)")
        ax.set_title(f"{a}, U(-{r:g},{r:g})")
        ax.legend(fontsize=7)
    fig.suptitle("CLV tangencies (small angles) at early times")
    _save(fig, *out["clv"])

    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), squeeze=False)
    for ax, a in zip(axes[0], acts):
        for r in ranges:
            for ind in roc["indicator"].values:
                auc = roc["auc"].sel(activation=a, init_range=r, indicator=ind)
                ax.plot(roc["time"], auc, marker="o", ms=3, label=f"{ind}, U(-{r:g},{r:g})")
        ax.axhline(0.9, color="k", ls=":", lw=0.8)
        ax.set_ylim(0.4, 1.02)
        ax.set_xlabel("indicator time t (steps)")
        ax.set_ylabel("AUC (naive Bayes, cross-validated)")
        ax.set_title(a)
        ax.legend(fontsize=6)
    fig.suptitle("Predicting a high final loss from early indicators")
    _save(fig, *out["roc"])
