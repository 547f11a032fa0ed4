"""Figures of the NTK experiments (reads the netCDF files of :mod:`pathdep.stages.ntk`).

One function per section; each reads one file and writes a PDF and a PNG
(``results/figures/ntk_<section>.{pdf,png}``): ``width_sweep`` (4a), ``linearization``
(4b), ``kernel_regression`` (4c), ``catapult`` (4d), ``path_vs_width`` (4e).

How it was checked: tests/plots/test_ntk.py draws every figure from files written by the
stage on tiny settings and checks the PDF/PNG; the default figures were looked at.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from pathdep.plots.common import save  # noqa: E402


def _load(p) -> xr.Dataset:
    return p if isinstance(p, xr.Dataset) else xr.load_dataset(p)


def plot_width(path, pdf, png):
    """4a: relative Frobenius change vs width (log-log) with fitted exponents."""
    ds = _load(path)
    w = ds["width"].values
    fig, ax = plt.subplots(figsize=(5.2, 4))
    for q, lab, mk in (("dparams", "parameters", "o"), ("dntk", "empirical NTK", "s"), ("dnngp", "empirical NNGP", "^")):
        y = ds[q].values
        a = float(ds[f"exponent_{q}"])
        se = float(ds[f"exponent_{q}_se"])
        line, = ax.loglog(w, y, mk + "-", label=f"{lab}: slope {a:+.2f} ± {se:.2f}")
        ref = y[0] * (w / w[0]) ** -0.5
        ax.loglog(w, ref, ":", color=line.get_color(), lw=1)
    ax.set_xlabel("hidden width n")
    ax.set_ylabel(r"$\|X_T - X_0\|_F / \|X_0\|_F$")
    ax.set_title("Change from init to end of training (dotted: $n^{-1/2}$)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, pdf, png)


def plot_linearization(path, pdf, png):
    """4b: RMS logit deviation network vs linearisation over training, per width and loss."""
    ds = _load(path)
    losses = list(ds["loss"].values)
    fig, axes = plt.subplots(1, len(losses), figsize=(5 * len(losses), 4), squeeze=False)
    cmap = plt.get_cmap("viridis")
    widths = ds["width"].values
    step = ds["step"].values
    for ax, loss in zip(axes[0], losses):
        for j, w in enumerate(widths):
            y = ds["logit_deviation"].sel(loss=loss, width=w).values
            ax.plot(step[1:] + 1, y[1:], "o-", ms=3, color=cmap(j / max(1, len(widths) - 1)), label=f"width {w}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step + 1")
        ax.set_ylabel("RMS logit deviation |f - f_lin|")
        ax.set_title(f"network vs linearisation ({loss}, SGD+momentum)", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, pdf, png)


def plot_kernel_regression(path, pdf, png, n_points: int = 4):
    """4c: closed-form mean/variance vs ensemble, and one wide network vs its linear model."""
    ds = _load(path)
    step = ds["step"].values
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    cols = plt.get_cmap("tab10")
    for i in range(min(n_points, ds.sizes["point"])):
        c = cols(i)
        axes[0].plot(step, ds["theory_mean"].values[:, i], "-", color=c)
        m = ds["ensemble_mean"].values[:, i]
        se = np.sqrt(ds["ensemble_var"].values[:, i] / ds.attrs.get("members", 100))
        axes[0].errorbar(step, m, yerr=2 * se, fmt="o", ms=3, color=c, capsize=2)
        axes[1].plot(step, ds["theory_var"].values[:, i], "-", color=c)
        axes[1].plot(step, ds["ensemble_var"].values[:, i], "o", ms=3, color=c)
        axes[2].plot(step, ds["single_linear"].values[:, i], "-", color=c)
        axes[2].plot(step, ds["single"].values[:, i], "o", ms=3, color=c)
    axes[0].set_title(f"mean output: NTK theory (line) vs ensemble of {ds.attrs.get('members')} (dots, ±2 SE)",
                      fontsize=8)
    axes[1].set_title("output variance: theory (line) vs ensemble (dots)", fontsize=8)
    axes[2].set_title("one wide network (dots) vs its linear model from init NTK (line)", fontsize=8)
    for ax, yl in zip(axes, ("E f_t(x)", "Var f_t(x)", "f_t(x)")):
        ax.set_xlabel("gradient-descent step")
        ax.set_ylabel(yl)
    fig.tight_layout()
    return save(fig, pdf, png)


def plot_catapult(path, pdf, png):
    """4d: loss curves across eta/eta_crit, kernel change vs eta, and the two-scalar map."""
    ds = _load(path)
    fac = ds["eta_factor"].values
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    cmap = plt.get_cmap("plasma")
    for i, f in enumerate(fac):
        y = ds["loss"].values[i]
        y = np.where(np.isfinite(y), y, np.nan)
        axes[0].plot(ds["step"].values, y, color=cmap(i / max(1, len(fac) - 1)), label=f"η = {f:g}·2/λ₀")
        fm = np.abs(ds["map_f"].values[i])
        axes[2].plot(ds["step"].values, np.where(np.isfinite(fm), fm ** 2 / 2, np.nan),
                     color=cmap(i / max(1, len(fac) - 1)), label=f"ηλ₀ = {2 * f:g}")
    for ax in (axes[0], axes[2]):
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylim(top=1e4)
        ax.legend(fontsize=7, ncol=2)
    axes[0].set_ylabel("training loss (full-batch GD, MSE)")
    axes[0].set_title(f"network, width {ds.attrs.get('width')}: λ₀ = {float(ds['lambda0']):.3g}, "
                      f"2/λ₀ = {float(ds['eta_crit']):.3g}", fontsize=9)
    ok = np.isfinite(ds["kernel_change"].values)
    axes[1].plot(fac[ok], np.abs(ds["kernel_change"].values[ok]), "o-", label="|λ_end/λ₀ - 1| (network)")
    cat = ds["catapult"].values.astype(bool)
    div = ds["diverged"].values.astype(bool)
    axes[1].scatter(fac[cat], np.abs(ds["kernel_change"].values[cat]), s=80, facecolors="none", edgecolors="r",
                    label="catapult (loss rose then fell)")
    for f in fac[div]:
        axes[1].axvline(f, color="k", alpha=0.2, lw=6)
    lam_map = ds["map_lambda"].values[:, -1]
    axes[1].plot(fac, np.abs(lam_map - 1.0), "s--", ms=4, label="|λ_T/λ₀ - 1| (two-scalar map)")
    axes[1].axvline(1.0, color="g", ls=":", label="η = 2/λ₀")
    axes[1].axvline(2.0, color="m", ls=":", label="η = 4/λ₀")
    axes[1].set_xlabel("η / (2/λ₀)")
    axes[1].set_ylabel("relative change of the top NTK eigenvalue")
    axes[1].set_yscale("symlog", linthresh=1e-3)
    axes[1].set_title("kernel change (grey: diverged)", fontsize=9)
    axes[1].legend(fontsize=7)
    axes[2].set_ylabel("f²/2 of the two-scalar map")
    axes[2].set_title("seed's (f, λ) map, n = width", fontsize=9)
    fig.tight_layout()
    return save(fig, pdf, png)


def plot_path_width(path, pdf, png):
    """4e: final divergence of perturbed members vs width."""
    ds = _load(path)
    w = ds["width"].values
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, q, lab in ((axes[0], "dist_over_init", "|w_k - w_0|_T / |w_k - w_0|_0"),
                       (axes[1], "fs_l2_logits", "function-space L2 of logits")):
        ax.errorbar(w, ds[q].values, yerr=ds[f"{q}_std"].values, fmt="o-", capsize=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("hidden width")
        ax.set_ylabel(lab)
        if f"exponent_{q}" in ds:
            ax.set_title(f"slope {float(ds[f'exponent_{q}']):+.2f} ± {float(ds[f'exponent_{q}_se']):.2f} "
                         f"(step {int(ds['final_step'].values[-1])})", fontsize=9)
    fig.suptitle("Path dependence vs width (perturbed copies of the init)", fontsize=10)
    fig.tight_layout()
    return save(fig, pdf, png)


PLOTS = {"width_sweep": plot_width, "linearization": plot_linearization,
         "kernel_regression": plot_kernel_regression, "catapult": plot_catapult, "path_vs_width": plot_path_width}


def plot_section(name: str, path: str | Path, pdf: str | Path, png: str | Path):
    return PLOTS[name](path, pdf, png)
