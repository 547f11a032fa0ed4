"""Figures of the Lyapunov analyses (PDF + PNG), read from the lyapunov stage's files.

* ``lyapunov_spectrum``: the running Benettin estimate of the leading exponent of each run's
  baseline over the accumulated window (after the transient), with the final value +- its
  error as a band over the last half (convergence is visible), and the k leading exponents
  per run (``lyapunov.nc`` per run);
* ``lyapunov_link``: (left) the maximal exponent +- its error against the measured growth
  rate +- se of the member-baseline distance over the same window, with y = x (filled
  markers: agreement within two combined errors); (right) the epsilon sweep's measured
  rate against the relative perturbation size, with the baseline's lambda_max band: where
  the rate leaves the band the tangent regime ends (the link table, CSV);
* ``lyapunov_study_*``: the 2-2-1 study, one panel per (activation, init range): final-loss
  histograms with the failure threshold, leading-FTLE and minimum-CLV-angle distributions of
  failed vs successful runs at the earliest indicator time, and the cross-validated AUC of
  at most four indicators against the indicator time with bands of +- the standard deviation
  over the CV folds (``study.nc``, ``roc.nc``).

How it was checked: ``tests/plots/test_lyapunov.py`` draws them from small synthetic files
(spectra, link table, study and ROC datasets) and checks their content (one curve per run
ending at the planted exponent, error bars of the planted sizes, the y = x line spanning
the points, the lambda band of the tangent panel, one panel per combination with the planted
failure fraction, one AUC curve per indicator with a band of the planted fold std, distinct
colours); ``tests/stages/test_lyapunov.py`` draws them from a tiny run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from pathdep.plots.common import colors, load, run_label, save

#: At most this many indicators per ROC panel.
MAX_INDICATORS = 4


def _dataset(x: xr.Dataset | str | Path) -> xr.Dataset:
    return x if isinstance(x, xr.Dataset) else xr.load_dataset(x)


def plot_spectrum(paths: Sequence[str], pdf: str, png: str) -> plt.Figure:
    """Running leading exponent (with its error band) and final spectrum of each baseline.

    Args:
        paths: the runs' ``lyapunov.nc`` (``running (step, exponent)``, ``exponents
            (exponent,)``, optionally ``lambda_max_err``; attributes ``experiment``, ``run``,
            ``swept``, optionally ``transient``).
        pdf, png: output paths.

    Returns:
        The (closed) figure.
    """
    dss = load(paths)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    for ds, c in zip(dss, colors(len(dss), "tab10" if len(dss) <= 10 else "viridis")):
        step = ds["step"].values
        run1 = ds["running"].isel(exponent=0).values
        axes[0].plot(step, run1, color=c, lw=1.2, label=run_label(ds, experiment=True))
        if "lambda_max_err" in ds:
            lam, err = float(ds["exponents"][0]), float(ds["lambda_max_err"])
            half = step[len(step) // 2:]
            axes[0].fill_between(half, lam - err, lam + err, color=c, alpha=0.2, lw=0)
        axes[1].plot(ds["exponent"], ds["exponents"], "o-", color=c, ms=3)
    tr = sorted({int(ds.attrs.get("transient", 0)) for ds in dss})
    axes[0].set_xlabel("step (accumulated window" + (f", after a transient of {tr[0]} steps)" if len(tr) == 1 else ")"))
    axes[0].set_ylabel(r"running estimate of $\lambda_1$ (per step)")
    axes[0].axhline(0, color="k", lw=0.5)
    # the first steps of a running mean are dominated by single QRs: zoom on the converged part
    tails = np.concatenate([ds["running"].isel(exponent=0).values[len(ds["step"]) // 4:] for ds in dss])
    tails = tails[np.isfinite(tails)]
    if len(tails):
        lo, hi = tails.min(), tails.max()
        pad = 0.15 * (hi - lo) + 1e-6
        axes[0].set_ylim(lo - pad, hi + pad)
    axes[0].legend(fontsize=6, ncol=2)
    axes[0].set_title(r"convergence (band: final $\lambda_1$ $\pm$ error over the last half)", fontsize=9)
    axes[1].set_xlabel("exponent index")
    axes[1].set_ylabel(r"$\lambda_i$ (per step)")
    axes[1].axhline(0, color="k", lw=0.5)
    fig.suptitle("Benettin spectra of the baselines' training maps (state: weights + optimiser buffers)")
    return save(fig, pdf, png)


def plot_link(table: pd.DataFrame | str | Path, pdf: str, png: str) -> plt.Figure:
    """Benettin lambda_max against the measured divergence rate, and the tangent regime.

    Args:
        table: the link table (``pathdep.stages.lyapunov.link_table``) or its CSV: columns
            ``experiment``, ``lambda_max``, ``measured_rate``, ``measured_rate_se`` and
            optionally ``lambda_max_err``, ``agree``, ``tangent``, ``epsilon``.
        pdf, png: output paths.

    Returns:
        The (closed) figure.
    """
    if not isinstance(table, pd.DataFrame):
        table = pd.read_csv(table)
    n = len(table)
    tangent = table["tangent"].astype(bool).values if "tangent" in table else np.zeros(n, bool)
    fig, axes = plt.subplots(1, 2 if tangent.any() else 1, figsize=(11.5 if tangent.any() else 5.8, 5),
                             squeeze=False, layout="constrained")
    ax = axes[0, 0]
    x, y = table["lambda_max"].values, table["measured_rate"].values
    xe = table["lambda_max_err"].values if "lambda_max_err" in table else np.zeros(n)
    ye = table["measured_rate_se"].values
    agree = table["agree"].astype(bool).values if "agree" in table else np.zeros(n, bool)
    exps = list(dict.fromkeys(table["experiment"]))
    for exp, c in zip(exps, colors(len(exps), "tab10")):
        m = table["experiment"].values == exp
        ax.errorbar(x[m], y[m], xerr=xe[m], yerr=ye[m], fmt="none", ecolor=c, capsize=2, lw=0.8)
        ax.scatter(x[m], y[m], s=28, edgecolors=[c], facecolors=[c if a else "white" for a in agree[m]],
                   zorder=3, label=exp)
    fin = np.isfinite(x) & np.isfinite(y)
    if fin.any():
        lo, hi = min(x[fin].min(), y[fin].min()), max(x[fin].max(), y[fin].max())
        pad = 0.1 * (hi - lo + 1e-12)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8, label="y = x")
    ax.set_xlabel(r"Benettin $\lambda_{max}$ of the baseline (per step)")
    ax.set_ylabel(r"measured growth rate of $\langle|w_k - w_0|\rangle$ (per step)")
    ax.legend(fontsize=7, title="filled: agree within 2 errors", title_fontsize=7)
    ax.set_title("same step window, small perturbations", fontsize=10)
    if tangent.any():
        ax = axes[0, 1]
        t = table[tangent].sort_values("epsilon")
        lam, err = float(t["lambda_max"].iloc[0]), float(t.get("lambda_max_err", pd.Series([0])).iloc[0])
        eps = t["epsilon"].values
        ax.axhspan(lam - err, lam + err, color="C1", alpha=0.25, lw=0, label=r"$\lambda_{max}$ $\pm$ error")
        ax.axhline(lam, color="C1", lw=1)
        ax.errorbar(eps, t["measured_rate"].values.astype(float), yerr=t["measured_rate_se"].values.astype(float), fmt="o-", color="C0", capsize=2,
                    label="measured rate")
        ax.set_xscale("log")
        ax.set_xlabel(r"relative perturbation size $\epsilon = |\delta| / |w_0|$")
        ax.set_ylabel("growth rate over the window (per step)")
        ax.set_title(f"tangent regime ({t['experiment'].iloc[0]}: one baseline, one Benettin run)", fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Maximal Lyapunov exponent vs measured divergence of perturbed members")
    return save(fig, pdf, png)


def _grid(study: xr.Dataset):
    acts, ranges = list(study["activation"].values), list(study["init_range"].values)
    combos = [(a, r) for a in acts for r in ranges]
    ncol = len(ranges)
    fig, axes = plt.subplots(len(acts), ncol, figsize=(4.6 * ncol, 3.5 * len(acts)), squeeze=False,
                             layout="constrained")
    return combos, [axes[i // ncol, i % ncol] for i in range(len(combos))], fig


def _title(study, a, r):
    frac = float(study["failed"].sel(activation=a, init_range=r).values.mean())
    return f"{a}, U(-{r:g},{r:g}): {100 * frac:.1f}% failed"


def _two_hists(ax, v, failed, **kw):
    ax.hist(v[~failed], alpha=0.5, density=True, color="C0", label=f"low final loss ({(~failed).sum()})", **kw)
    ax.hist(v[failed], alpha=0.5, density=True, color="C3", label=f"high final loss ({failed.sum()})", **kw)


def plot_study(study: xr.Dataset | str | Path, roc: xr.Dataset | str | Path, out: dict,
               caveat: str | None = None) -> dict[str, plt.Figure]:
    """Figures of the 2-2-1 study, one panel per (activation, init range).

    Args:
        study: ``pathdep.analysis.lyapunov_study.run_study``'s dataset or its netCDF file.
        roc: ``roc_by_time``'s dataset (optionally with ``auc_std``, ``auc_se``) or its file.
        out: ``{"loss" | "ftle" | "clv" | "roc": (pdf, png)}``.
        caveat: optional line added under the ROC figure's title.

    Returns:
        ``{figure name: the (closed) figure}``.
    """
    study, roc = _dataset(study), _dataset(roc)
    figs = {}
    thr = float(study.attrs.get("threshold", 1e-3))
    t0 = study["time"].values[0]

    combos, axes, fig = _grid(study)
    for ax, (a, r) in zip(axes, combos):
        fl = study["final_loss"].sel(activation=a, init_range=r).values
        ax.hist(np.log10(np.maximum(fl, 1e-30)), bins=60, color="C0")
        ax.axvline(np.log10(thr), color="k", ls="--", lw=0.8)
        ax.set_xlabel("log10 final loss")
        ax.set_ylabel("networks")
        ax.set_title(_title(study, a, r), fontsize=9)
    fig.suptitle("2-2-1 networks on XOR: final loss (dashed: failure threshold)")
    figs["loss"] = save(fig, *out["loss"])

    combos, axes, fig = _grid(study)
    for ax, (a, r) in zip(axes, combos):
        s = study.sel(activation=a, init_range=r)
        _two_hists(ax, s["ftle"].sel(time=t0).isel(exponent=0).values, s["failed"].values.astype(bool), bins=50)
        ax.set_xlabel(f"leading FTLE at t = {t0}")
        ax.set_title(_title(study, a, r), fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Early finite-time Lyapunov exponents of failed and successful runs")
    figs["ftle"] = save(fig, *out["ftle"])

    combos, axes, fig = _grid(study)
    for ax, (a, r) in zip(axes, combos):
        s = study.sel(activation=a, init_range=r)
        _two_hists(ax, np.degrees(s["min_clv_angle"].sel(time=t0).values), s["failed"].values.astype(bool),
                   bins=45, range=(0, 90))
        ax.set_xlabel(f"smallest CLV angle at t = {t0} (degrees)")
        ax.set_title(_title(study, a, r), fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("CLV tangencies (small angles) at early times")
    figs["clv"] = save(fig, *out["clv"])

    inds = list(roc["indicator"].values)[:MAX_INDICATORS]
    cols = colors(len(inds), "tab10")
    combos, axes, fig = _grid(study)
    times = roc["time"].values
    for ax, (a, r) in zip(axes, combos):
        sel = dict(activation=a, init_range=r)
        for ind, c in zip(inds, cols):
            auc = roc["auc"].sel(**sel, indicator=ind).values
            ax.plot(times, auc, marker="o", ms=3, color=c, label=ind)
            if "auc_std" in roc:
                sd = roc["auc_std"].sel(**sel, indicator=ind).values
                ax.fill_between(times, auc - sd, auc + sd, color=c, alpha=0.2, lw=0)
        ax.axhline(0.5, color="k", ls=":", lw=0.8)
        ax.set_ylim(0.4, 1.02)
        ax.set_xlabel("indicator time t (steps)")
        ax.set_ylabel("cross-validated AUC")
        title = _title(study, a, r)
        if "auc_se" in roc:
            title += f"\nHanley-McNeil SE <= {float(roc['auc_se'].sel(**sel).max()):.3f}"
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    sup = "Predicting a high final loss from early indicators (naive Bayes; bands: +-1 std over CV folds)"
    fig.suptitle(sup + (f"\n{caveat}" if caveat else ""), fontsize=10)
    figs["roc"] = save(fig, *out["roc"])
    return figs
