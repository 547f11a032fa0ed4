"""Figures of the Lyapunov analyses (PDF + PNG), read from the lyapunov stage's files.

* ``lyapunov_spectrum``: running Benettin exponents of each run's baseline over the steps,
  and the final k leading exponents per run (``lyapunov.nc`` per run);
* ``lyapunov_link``: the maximal exponent from Benettin against the measured early growth
  rate of the member-baseline distance (with its standard error), and the line y = x
  (the link table, CSV);
* ``lyapunov_study_*``: the 2-2-1 study: final-loss histograms with the failure threshold,
  FTLE distributions of failed vs successful runs at the earliest indicator time, CLV angle
  distributions, ROC curves and AUC against the indicator time (``study.nc``, ``roc.nc``).

How it was checked: ``tests/plots/test_lyapunov.py`` draws them from small synthetic files
(spectra, link table, study and ROC datasets) and checks the files and their content (one
curve per run, the y = x line spanning the points, one histogram per init range, one AUC
curve per indicator and range); ``tests/stages/test_lyapunov.py`` draws them from a tiny run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from pathdep.plots.common import colors, load, run_label, save


def _dataset(x: xr.Dataset | str | Path) -> xr.Dataset:
    return x if isinstance(x, xr.Dataset) else xr.load_dataset(x)


def plot_spectrum(paths: Sequence[str], pdf: str, png: str) -> plt.Figure:
    """Running leading exponent and final spectrum of each run's baseline.

    Args:
        paths: the runs' ``lyapunov.nc`` (``running (step, exponent)``, ``exponents
            (exponent,)``; attributes ``experiment``, ``run``, ``swept``).
        pdf, png: output paths.

    Returns:
        The (closed) figure.
    """
    dss = load(paths)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for ds, c in zip(dss, colors(len(dss), "tab10")):
        axes[0].plot(ds["step"], ds["running"].isel(exponent=0), color=c, label=run_label(ds, experiment=True))
        axes[1].plot(ds["exponent"], ds["exponents"], "o-", color=c, ms=3)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel(r"running $\lambda_1$ (per step)")
    axes[0].axhline(0, color="k", lw=0.5)
    axes[0].legend(fontsize=6)
    axes[1].set_xlabel("exponent index")
    axes[1].set_ylabel(r"$\lambda_i$ (per step)")
    axes[1].axhline(0, color="k", lw=0.5)
    fig.suptitle("Benettin spectra of the baselines' training maps (state: weights + optimiser buffers)")
    return save(fig, pdf, png)


def plot_link(table: pd.DataFrame | str | Path, pdf: str, png: str) -> plt.Figure:
    """Benettin lambda_max against the measured early divergence rate, one point per run.

    Args:
        table: the link table (``pathdep.stages.lyapunov.link_table``) or its CSV: columns
            ``experiment``, ``lambda_max``, ``measured_rate``, ``measured_rate_se``.
        pdf, png: output paths.

    Returns:
        The (closed) figure.
    """
    if not isinstance(table, pd.DataFrame):
        table = pd.read_csv(table)
    fig, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
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
    return save(fig, pdf, png)


def plot_study(study: xr.Dataset | str | Path, roc: xr.Dataset | str | Path, out: dict) -> dict[str, plt.Figure]:
    """Figures of the 2-2-1 study.

    Args:
        study: ``pathdep.analysis.lyapunov_study.run_study``'s dataset or its netCDF file.
        roc: ``roc_by_time``'s dataset or its netCDF file.
        out: ``{"loss" | "ftle" | "clv" | "roc": (pdf, png)}``.

    Returns:
        ``{figure name: the (closed) figure}``.
    """
    study, roc = _dataset(study), _dataset(roc)
    figs = {}
    acts, ranges = list(study["activation"].values), list(study["init_range"].values)
    thr = float(study.attrs.get("threshold", 1e-3))
    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), squeeze=False, layout="constrained")
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
    figs["loss"] = save(fig, *out["loss"])

    t0 = study["time"].values[0]
    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), squeeze=False, layout="constrained")
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
    figs["ftle"] = save(fig, *out["ftle"])

    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), squeeze=False, layout="constrained")
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
    figs["clv"] = save(fig, *out["clv"])

    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), squeeze=False, layout="constrained")
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
    figs["roc"] = save(fig, *out["roc"])
    return figs
