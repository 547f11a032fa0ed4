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
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from pathdep.plots.common import save  # noqa: E402


def _load(p) -> xr.Dataset:
    return p if isinstance(p, xr.Dataset) else xr.load_dataset(p)


def plot_width(path, pdf, png):
    """4a: relative Frobenius change vs width (log-log) with fitted exponents.

    Legend: the slope over all widths and over the wide tail (``widths >= tail_min_width``).
    Reference lines through the widest point: ``n^-1/2`` (parameters) and ``n^-1`` (kernels,
    the leading finite-width order of the kernel change; Dyer & Gur-Ari 2020).
    """
    ds = _load(path)
    w = ds["width"].values.astype(float)
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for q, lab, mk, ref in (("dparams", "parameters", "o", -0.5), ("dntk", "emp. NTK", "s", -1.0),
                            ("dnngp", "emp. NNGP", "^", -1.0)):
        y = ds[q].values
        a, se = float(ds[f"exponent_{q}"]), float(ds[f"exponent_{q}_se"])
        txt = f"{lab}: slope {a:+.2f}±{se:.2f}"
        if f"exponent_{q}_tail" in ds:
            txt += f", tail {float(ds[f'exponent_{q}_tail']):+.2f}±{float(ds[f'exponent_{q}_tail_se']):.2f}"
        line, = ax.loglog(w, y, mk + "-", label=txt)
        ax.loglog(w, y[-1] * (w / w[-1]) ** ref, ":", color=line.get_color(), lw=1.2)
    ax.set_xlabel("hidden width n")
    ax.set_ylabel(r"$\|X_T - X_0\|_F / \|X_0\|_F$")
    tmin = ds.attrs.get("tail_min_width")
    ax.set_title("Change from init to end of training\n(dotted: $n^{-1/2}$ params, $n^{-1}$ kernels; "
                 + (f"tail: n ≥ {tmin:g})" if tmin is not None else ")"), fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
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
        lr = f", lr {float(ds['lr'].sel(loss=loss)):g}" if "lr" in ds.coords else ""
        mom = ds.attrs.get("momentum")
        ax.set_title(f"network vs linearisation ({loss}, SGD{f' momentum {mom:g}' if mom else '+momentum'}{lr})",
                     fontsize=9)
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
    """4d: loss curves across eta/eta_crit, the top NTK eigenvalue at the end against
    ``2/eta``, and the seed's two-scalar map on the same ``eta lambda_0`` grid."""
    ds = _load(path)
    fac = ds["eta_factor"].values
    steps = ds["step"].values
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    cmap = plt.get_cmap("plasma")
    col = [cmap(0.9 * i / max(1, len(fac) - 1)) for i in range(len(fac))]
    lo = []
    for i, f in enumerate(fac):
        y = ds["loss"].values[i]
        y = np.where(np.isfinite(y) & (y < 1e30), y, np.nan)
        lo.append(np.nanmin(y) if np.isfinite(y).any() else np.nan)
        axes[0].plot(steps + 1, y, color=col[i], label=f"{f:g}")
        fm = np.abs(ds["map_f"].values[i])
        fm = np.where(np.isfinite(fm) & (fm < 1e15), fm, np.nan)
        axes[2].plot(steps + 1, fm ** 2 / 2, color=col[i],
                     label=f"{2 * f:g}")
    axes[0].set_ylim(0.5 * np.nanmin(lo), 1e4)
    axes[2].set_ylim(1e-8, 1e4)
    for ax in (axes[0], axes[2]):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step + 1")
    axes[0].legend(fontsize=7, ncol=2, title="η / (2/λ₀)", title_fontsize=7, loc="upper right")
    axes[2].legend(fontsize=7, ncol=1, title="η λ₀", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[0].set_ylabel("training loss (full-batch GD, MSE)")
    axes[0].set_title(f"network, width {ds.attrs.get('width')}: λ₀ = {float(ds['lambda0']):.3g}, "
                      f"2/λ₀ = {float(ds['eta_crit']):.3g}", fontsize=9)
    lam_rel = ds["lambda_end"].values / float(ds["lambda0"])
    ok = np.isfinite(lam_rel) & (lam_rel > 0)
    cat = ds["catapult"].values.astype(bool)
    div = ds["diverged"].values.astype(bool)
    axes[1].plot(fac[ok], lam_rel[ok], "o-", label="network: λ_end / λ₀")
    axes[1].scatter(fac[cat & ok], lam_rel[cat & ok], s=90, facecolors="none", edgecolors="r",
                    label="catapult (loss rose, then fell)")
    lam_map = ds["map_lambda"].values[:, -1]
    okm = np.isfinite(lam_map) & (lam_map > 0)
    axes[1].plot(fac[okm], lam_map[okm], "s--", ms=4, label="two-scalar map: λ_T / λ₀")
    fg = np.linspace(fac.min(), fac.max(), 200)
    axes[1].plot(fg, np.minimum(1.0, 1.0 / fg), "k:", lw=1, label="min(1, 2/(η λ₀))")
    for f in fac[div]:
        axes[1].axvspan(f * 0.97, f * 1.03, color="k", alpha=0.15, lw=0)
    axes[1].axvline(1.0, color="g", ls=":", lw=1)
    axes[1].axvline(2.0, color="m", ls=":", lw=1)
    axes[1].text(1.0, 1.02, " 2/λ₀", color="g", fontsize=7, transform=axes[1].get_xaxis_transform())
    axes[1].text(2.0, 1.02, " 4/λ₀", color="m", fontsize=7, transform=axes[1].get_xaxis_transform())
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    ticks = [t for t in (0.25, 0.5, 1, 2, 4, 8, 16, 32) if fac.min() * 0.9 <= t <= fac.max() * 1.1]
    axes[1].set_xticks(ticks, [f"{t:g}" for t in ticks])
    axes[1].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[1].set_xlabel("η / (2/λ₀)")
    axes[1].set_ylabel("top NTK eigenvalue at the end / λ₀")
    axes[1].set_title("kernel change (grey bands: diverged)", fontsize=9, pad=12)
    # under the panel: inside it the legend hid the minimum of the two-scalar curve
    axes[1].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    axes[2].set_ylabel("f²/2 of the two-scalar map")
    axes[2].set_title(f"seed's (f, λ) map, n = {ds.attrs.get('width')}, λ₀ = 1", fontsize=9)
    fig.tight_layout()
    return save(fig, pdf, png)


def _lower_bars_positive(y, err) -> bool:
    ok = np.isfinite(y)
    return bool(ok.any()) and bool((y[ok] > 0).all()) and bool((y[ok] - np.nan_to_num(err[ok]) > 0).all())


def plot_path_width(path, pdf, png):
    """4e: path dependence of the perturbed members vs width: raw and aligned weight
    distance, function-space distance, and (when the analysis files were read) the raw and
    aligned interpolation barriers; each panel titled with its fitted slope.

    A panel has a log y axis only when every value and every lower error bar is positive;
    otherwise (barriers: zero or negative values, bars below 0) it is symlog, linear within
    +- the decade of its smallest non-zero |value|, so no point is dropped and no bar runs
    off the axis. Missing values are marked by an ``x`` on the axis' bottom edge. Two series
    of a panel are drawn with their own markers, slightly offset in width, so one cannot hide
    the other (raw and aligned coincide when the alignment is the identity)."""
    ds = _load(path)
    w = ds["width"].values
    panels = [(("dist_over_init", "dist growth |w_k - w_0|_T / |w_k - w_0|_0"),),
              (("dist", "raw |w_k - w_0|"), ("dist_aligned", "aligned |w_0 - P w_k|")),
              (("fs_l2_logits", "function-space L2 of logits"),)]
    if "barrier_raw" in ds:
        panels.append((("barrier_raw", "raw"), ("barrier_aligned", "aligned")))
    styles = ({"fmt": "o-", "ms": 6}, {"fmt": "s--", "ms": 7, "mfc": "none", "mew": 1.5})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.3), squeeze=False)
    for ax, group in zip(axes[0], panels):
        titles, values, lows, highs, log_ok, missing = [], [], [], [], True, []
        for k, (q, lab) in enumerate(group):
            y, err = ds[q].values.astype(float), ds[f"{q}_std"].values.astype(float)
            values.append(y)
            lows.append(y - np.nan_to_num(err))
            highs.append(y + np.nan_to_num(err))
            log_ok &= _lower_bars_positive(y, err)
            ok = np.isfinite(y)
            shift = np.exp(0.05 * (k - (len(group) - 1) / 2)) if len(group) > 1 else 1.0
            ax.errorbar(w[ok] * shift, y[ok], yerr=err[ok], capsize=3, label=lab, **styles[k % 2])
            missing += list(w[~ok] * shift)
            if f"exponent_{q}" in ds:
                titles.append(f"{q}: slope {float(ds[f'exponent_{q}']):+.2f}±{float(ds[f'exponent_{q}_se']):.2f}")
        ax.set_xscale("log")
        if log_ok:
            ax.set_yscale("log")
        else:
            v = np.abs(np.concatenate(values))
            v = v[np.isfinite(v) & (v > 0)]
            thr = float(10.0 ** np.floor(np.log10(v.min()))) if v.size else 1.0
            ax.set_yscale("symlog", linthresh=thr, linscale=0.6)
            ax.axhline(0, color="k", lw=0.6)
            ax.grid(alpha=0.3, which="major", axis="y")
            titles.append(f"(symlog y: linear within ±{thr:.0e})")
            lo, hi = np.nanmin(np.concatenate(lows)), np.nanmax(np.concatenate(highs))
            if np.isfinite(lo) and np.isfinite(hi):  # every bar end inside the axes
                ax.set_ylim(lo - 0.5 * abs(lo) - thr, hi + 0.5 * abs(hi) + thr)
        if missing:
            ax.plot(missing, np.zeros(len(missing)), "x", color="r", ms=8, clip_on=False,
                    transform=ax.get_xaxis_transform(), label="no value")
        ax.set_xticks(w, [str(int(v)) for v in w])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("hidden width")
        ax.set_ylabel(group[0][1] if len(group) == 1 else
                      ("distance to the baseline" if group[0][0] == "dist" else "test loss barrier (last checkpoint)"))
        if len(group) > 1 or missing:  # under the panel, where it hides no point
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
        ax.set_title("\n".join(titles), fontsize=8)
    fig.suptitle(f"Path dependence vs width (perturbed copies; step {int(ds['final_step'].values[-1])}; "
                 "two series of a panel are offset slightly in width)", fontsize=10)
    fig.tight_layout()
    return save(fig, pdf, png)


PLOTS = {"width_sweep": plot_width, "linearization": plot_linearization,
         "kernel_regression": plot_kernel_regression, "catapult": plot_catapult, "path_vs_width": plot_path_width}


def plot_kernel_change(path, pdf, png):
    """4e: relative Frobenius distance of the perturbed members' empirical NTKs from the
    baseline's over training, one line per width (median over members, band: min to max),
    log axes (the distances span decades; step 0 is drawn at step 1)."""
    ds = _load(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, ds.sizes["width"]))
    for i, w in enumerate(ds["width"].values):
        d = ds["kernel_change"].isel(width=i).values
        steps = ds["step"].isel(width=i).values
        ok = (steps >= 0) & np.isfinite(d).any(1)
        x = np.maximum(steps[ok], 1)
        with np.errstate(all="ignore"):
            lo, med, hi = np.nanmin(d[ok], 1), np.nanmedian(d[ok], 1), np.nanmax(d[ok], 1)
        ax.plot(x, med, "o-", ms=3, color=colors[i], label=f"width {int(w)}")
        ax.fill_between(x, lo, hi, color=colors[i], alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(r"$\|\Theta_k - \Theta_0\|_F \,/\, \|\Theta_0\|_F$")
    ax.set_title(f"empirical NTK: perturbed members vs baseline ({int(ds.attrs['n_inputs'])} test inputs)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(alpha=0.3, which="major")
    save(fig, pdf, png)


def plot_section(name: str, path: str | Path, pdf: str | Path, png: str | Path):
    return PLOTS[name](path, pdf, png)
