"""Figures of the analyses (PDF + PNG), read from analysis.nc, metrics.nc, fits.nc and scaling.csv.

What it draws, per experiment (one colour per run, labelled by its swept values; bands
from the minimum to the maximum perturbed member around their mean; helpers and the one
meaning of "members" in :mod:`pathdep.plots.common`):

* ``aligned``: raw |w_k - w_0| (dashed) and permutation-aligned distance (solid) over
  training, and their ratio (how much of the distance is a relabelling of hidden units);
* ``interpolation``: test and train loss along (1 - l) w_0 + l w_k at the analysis
  checkpoints, raw (dashed) and aligned (solid), mean over the interpolated members;
* ``barriers``: the linear (Entezari) barrier over training, raw and aligned, train and test;
* ``autocorr``: <w_k(0).w_k(t)>, <w_k(t).w_0(t)> and the same for the test-set outputs
  (cosine-normalised);
* ``fits``: the first perturbed member's divergence curves (points) with its AIC-best
  fitted form (solid) and the power law a t^b (dotted), one panel per quantity;
* ``hypersphere``: the mean |u_t - u_0|^2 of the weight direction u = w/|w| with the
  Brownian-motion-on-the-sphere theory at the fitted D (dashed), and |w_t| / |w_0|
  (every member, the baseline included: each is its own walk);
* ``divergence_vs``: final raw / aligned / function distances and barriers against the
  swept hyperparameter, and the distance against the learning-rate-corrected time
  lr_eff * t (lr / (1 - momentum) for SGD);
* ``scaling``: fitted parameters (mean +- sem over members) against the hyperparameter with
  their power-law fits (exponent in the legend).

And once: ``hypersphere_theory``, the simulated Brownian motion on S^{n-1} (mean cosine and
mean squared displacement, +- 2 standard errors) against the closed forms.

How it was checked: ``tests/plots/test_analysis.py`` draws every figure from small
synthetic metrics / analysis / fits / scaling files and checks the files and their content
(curves per run, bands over the perturbed members only, fitted forms, the power-law line,
the theory curves); ``tests/test_analysis_workflow.py`` checks the tiny workflow writes
every figure.
"""

from __future__ import annotations

import json
import warnings
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis import fits as FT
from pathdep.analysis.quantities import quantity_values
from pathdep.plots.common import (band, colors, figure_legend, load, log_axes, members, min_span, not_defined, pad_x,
                                  plain_ticks, run_label, save, sparse_log_ticks, stats, step_axis)

FIGURES = ("aligned", "interpolation", "barriers", "autocorr", "fits", "hypersphere", "divergence_vs", "scaling")

_QLABEL = {"dist": r"$|w_k - w_0|$", "dist_aligned": r"$|w_0 - P w_k|$ (aligned)",
           "dist_excess": r"$|w_k - w_0|(t) - |w_k - w_0|(0)$",
           "fs_l2_logits": "L2 logits", "fs_l2_probs": "L2 probs", "fs_sym_kl": "sym. KL",
           "fs_disagree": "disagreement", "dist_rel": r"$|w_k - w_0| / |w_0(0)|$", "direction": "sphere D"}

RATIO_TOL = 1e-9  # aligned / raw within this of 1 everywhere: the alignment changed nothing


def _hparam_axis(values) -> tuple[np.ndarray, list, bool]:
    """x positions for hyperparameter values: numbers as they are, strings as 0..n-1."""
    try:
        x = np.asarray([float(v) for v in values])
        return x, [], True
    except (TypeError, ValueError):
        return np.arange(len(values), dtype=float), [str(v) for v in values], False


def _set_hparam_x(ax, x, labels, numeric, name):
    if numeric:
        if np.all(x > 0) and len(x) > 1 and x.max() / x.min() >= 10:
            ax.set_xscale("log")
            sparse_log_ticks(ax, x)  # few decades: the swept values, plainly labelled
    else:
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=20)
    ax.set_xlabel(name)


def _hparam_of(ds) -> tuple[str, object]:
    sv = json.loads(ds.attrs.get("sweep_values", "{}"))
    if not sv:
        return "run", ds.attrs.get("run", "")
    name = sorted(sv)[0]
    return name, sv[name]


def plot_analysis(metric_files: Sequence[str], analysis_files: Sequence[str], fits_nc: str, scaling_csv: str,
                  outputs: dict, experiment: str) -> dict[str, plt.Figure]:
    """Draw the analysis figures of one experiment.

    Args:
        metric_files, analysis_files: the runs' ``metrics.nc`` and ``analysis.nc`` (same order).
        fits_nc, scaling_csv: the experiment's fits and scaling table.
        outputs: ``{"<figure>_pdf": path, "<figure>_png": path}`` for every name in :data:`FIGURES`.
        experiment: its name (titles).

    Returns:
        ``{figure name: the (closed) figure}``.
    """
    dms, das = load(metric_files), load(analysis_files)
    fits = xr.load_dataset(fits_nc, engine="h5netcdf")
    table = pd.read_csv(scaling_csv)
    cols = colors(len(das))
    return {"aligned": _fig_aligned(das, cols, experiment, outputs),
            "interpolation": _fig_interpolation(das, cols, experiment, outputs),
            "barriers": _fig_barriers(das, cols, experiment, outputs),
            "autocorr": _fig_autocorr(das, cols, experiment, outputs),
            "fits": _fig_fits(dms, das, fits, cols, experiment, outputs),
            "hypersphere": _fig_hypersphere(das, cols, experiment, outputs),
            "divergence_vs": _fig_divergence_vs(dms, das, cols, experiment, outputs),
            "scaling": _fig_scaling(table, experiment, outputs)}


def _out(outputs, name):
    return outputs[f"{name}_pdf"], outputs[f"{name}_png"]


def _fig_aligned(das, cols, exp, outputs):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    ratios = []
    for ds, c in zip(das, cols):
        x = step_axis(ds)
        raw, al = members(ds, "dist"), members(ds, "dist_aligned")
        ok = ds["aligned_checkpoint"].values
        band(axes[0], x, raw, c, None, "--")
        band(axes[0], x[ok], al[:, ok], c, run_label(ds))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = al[:, ok] / raw[:, ok]
        band(axes[1], x[ok], r, c, run_label(ds))
        ratios.append(np.ravel(r))
    log_axes(axes[0])
    axes[0].set_ylabel("distance to the baseline (dashed raw, solid aligned)")
    log_axes(axes[1], y=False)
    axes[1].set_ylabel("aligned / raw distance")
    plain_ticks(axes[1])
    r = np.concatenate(ratios) if ratios else np.empty(0)
    r = r[np.isfinite(r)]
    if len(r) and np.all(np.abs(r - 1.0) <= RATIO_TOL):  # a flat line at 1: say so, on a readable scale
        axes[1].set_ylim(0.0, 1.1)
        axes[1].text(0.5, 0.5, f"alignment changes nothing:\nratio = 1 within {RATIO_TOL:g}", ha="center",
                     va="center", transform=axes[1].transAxes, fontsize=9, color="0.3",
                     bbox=dict(boxstyle="round", fc="white", ec="0.8"))
    for ax in axes:
        ax.set_xlabel("training step")
    figure_legend(fig, axes[0])
    fig.suptitle(f"{exp}: weight distance before and after permutation alignment (weight matching)")
    return save(fig, *_out(outputs, "aligned"))


def _fig_interpolation(das, cols, exp, outputs):
    n_ck = max(int(ds.sizes["icheckpoint"]) for ds in das)
    fig, axes = plt.subplots(2, n_ck, figsize=(3.2 * n_ck, 6), squeeze=False, sharex=True, layout="constrained")
    for ds, c in zip(das, cols):
        lam = ds["lam"].values
        for ci in range(int(ds.sizes["icheckpoint"])):
            for si, split in enumerate(("test", "train")):
                ax = axes[si, ci]
                for align, ls in (("raw", "--"), ("aligned", "-")):
                    y = ds["interp_loss"].sel(align=align, split=split).values[:, ci]  # (imember, lam)
                    if np.isfinite(y).any():
                        band(ax, lam, y, c, run_label(ds) if (align == "aligned" and ci == 0 and si == 0) else None, ls)
                ax.set_title(f"{split}, step {int(ds['icheckpoint_step'].values[ci])}", fontsize=9)
                ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel(r"$\lambda$ ($w_0 \to w_k$)")
    for ax in axes[:, 0]:
        ax.set_ylabel("loss")
    for ax in axes.flat:  # float32 noise of a flat curve (step 0) stays flat, without "1e-7+2.799"
        plain_ticks(ax)
        min_span(ax, 1e-3)
    figure_legend(fig, axes[0, 0])
    fig.suptitle(f"{exp}: loss along the line from the baseline to a member (dashed raw, solid aligned)")
    return save(fig, *_out(outputs, "interpolation"))


def _fig_barriers(das, cols, exp, outputs):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
    for ds, c in zip(das, cols):
        x = ds["icheckpoint_step"].values.astype(float)
        for ax, split in zip(axes, ("test", "train")):
            for align, ls, mk in (("raw", "--", "o"), ("aligned", "-", "s")):
                y = ds["barrier"].sel(align=align, split=split).values  # (imember, icheckpoint)
                m, lo, hi = stats(y)
                ax.plot(x, m, color=c, ls=ls, marker=mk, ms=3, label=run_label(ds) if align == "aligned" else None)
                ax.fill_between(x, lo, hi, color=c, alpha=0.12, linewidth=0)
    steps = np.concatenate([ds["icheckpoint_step"].values.astype(float) for ds in das]) if das else np.empty(0)
    for ax, split in zip(axes, ("test", "train")):
        ax.set_xscale("symlog", linthresh=1.0)  # step 0 (the perturbation itself) stays on the axis
        pad_x(ax, steps)  # the markers at step 0 and at the last step are not cut by the axes
        plain_ticks(ax)
        ax.set_xlabel("training step")
        ax.set_title(f"{split} loss barrier", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("linear barrier (Entezari): max over l of L(l) - chord")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{exp}: loss barrier between baseline and members over training (dashed raw, solid aligned)")
    return save(fig, *_out(outputs, "barriers"))


def _fig_autocorr(das, cols, exp, outputs):
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True, layout="constrained")
    spec = [("ac_w_init", r"weights: $\langle w_k(0) \cdot w_k(t)\rangle$"),
            ("ac_w_base", r"weights: $\langle w_k(t) \cdot w_0(t)\rangle$"),
            ("ac_out_init", r"test outputs: $\langle f_k(0) \cdot f_k(t)\rangle$"),
            ("ac_out_base", r"test outputs: $\langle f_k(t) \cdot f_0(t)\rangle$")]
    for ax, (var, title) in zip(axes.flat, spec):
        for ds, c in zip(das, cols):
            band(ax, step_axis(ds), members(ds, var), c, run_label(ds))
        ax.set_xscale("log")
        plain_ticks(ax)  # values near 1: "0.99992", not "1e-5+9.999e-1"
        ax.set_title(title + " (normalised)", fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{exp}: autocorrelations of the trajectories")
    return save(fig, *_out(outputs, "autocorr"))


def _fig_fits(dms, das, fits, cols, exp, outputs):
    quantities = [q for q in dict.fromkeys(fits["quantity"].values.astype(str))]
    n = max(len(quantities), 1)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 4.6 * nrow), squeeze=False, layout="constrained")
    runs = fits["run"].values.astype(str)
    member_idx = fits["member"].values
    qs = fits["quantity"].values.astype(str)
    for ax, q in zip(axes.flat, quantities):
        for dm, da, c in zip(dms, das, cols):
            run = str(dm.attrs.get("run"))
            sel = np.flatnonzero((runs == run) & (qs == q))
            if len(sel) == 0:
                continue
            i = sel[np.argmin(member_idx[sel])]
            k = int(member_idx[i])
            t = dm["step"].values.astype(float)
            d = quantity_values(dm, da, q)[k]
            ok = (t > 0) & np.isfinite(d) & (d > 0)
            ax.plot(t[ok], d[ok], "o", ms=2.5, color=c)
            best = str(fits["best_model"].values[i])
            tt = np.geomspace(max(t[ok].min(), 1.0), t[ok].max(), 200) if ok.sum() > 1 else t[ok]
            for model, ls in ((best, "-"), ("power_law", ":")):
                if model not in fits["model"].values or not model:
                    continue
                vals = fits["value"].sel(model=model).values[i]
                pnames = list(FT.MODELS[model].params)
                p = [vals[list(fits["param"].values).index(pn)] for pn in pnames]
                if np.all(np.isfinite(p)):
                    lab = f"{run_label(dm)}: {best}" if ls == "-" else None
                    ax.plot(tt, FT.MODELS[model].func(tt, *p), ls=ls, color=c, label=lab)
        log_axes(ax)
        ax.set_title(_QLABEL.get(q, q), fontsize=10)
        ax.set_xlabel("training step")
        # below the panel (each panel names its own best forms): never over the points
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, borderaxespad=0)
    for ax in list(axes.flat)[len(quantities):]:
        ax.set_visible(False)
    fig.suptitle(f"{exp}: divergence curves of the first member (points), AIC-best form (solid), "
                 r"power law $a t^b$ (dotted)", fontsize=10)
    return save(fig, *_out(outputs, "fits"))


def _fig_hypersphere(das, cols, exp, outputs):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ds, c in zip(das, cols):
        x = step_axis(ds)
        D = np.nanmean(ds["sphere_D"].values)
        band(axes[0], x, ds["sphere_sq_disp"].values, c, f"{run_label(ds)} (D = {D:.2e}/step)")
        m, _, _ = stats(ds["sphere_theory"].values)
        axes[0].plot(x, m, color=c, ls="--", lw=1)
        band(axes[1], x, ds["norm_ratio"].values, c, run_label(ds))
    log_axes(axes[0])
    axes[0].set_ylabel(r"$|u_t - u_0|^2$, $u = w/|w|$ (dashed: sphere theory, fitted D)")
    axes[1].axhline(1.0, color="k", lw=0.8, ls=":")
    axes[1].set_xscale("log")
    axes[1].grid(alpha=0.3)
    axes[1].set_ylabel(r"$|w_t| / |w_0|$ (1: the sphere picture)")
    plain_ticks(axes[1])
    for ax in axes:
        ax.set_xlabel("training step")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{exp}: weight direction as Brownian motion on the unit sphere (all members incl. baseline)")
    return save(fig, *_out(outputs, "hypersphere"))


def _final(ds, var):
    y = members(ds, var)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        last = y[:, -1]
        return np.nanmean(last), (np.nanstd(last, ddof=1) / np.sqrt(np.isfinite(last).sum())) if len(last) > 1 else 0.0


def _fig_divergence_vs(dms, das, cols, exp, outputs):
    names, vals = zip(*[_hparam_of(da) for da in das]) if das else ((), ())
    hname = names[0] if names else "run"
    x, labels, numeric = _hparam_axis(vals)
    order = np.argsort(x)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    panels = [("dist", "metrics", r"final $|w_k - w_0|$"), ("dist_aligned", "analysis", "final aligned distance"),
              ("fs_l2_logits", "metrics", "final L2 distance of test logits"),
              ("test_cf_acc", "metrics", "final agreement with the baseline (test)")]
    for ax, (var, src, title) in zip(axes.flat, panels):
        m, e = [], []
        for dm, da in zip(dms, das):
            ds = dm if src == "metrics" else da
            mm, ee = _final(ds, var)
            m.append(mm)
            e.append(ee)
        m, e = np.asarray(m)[order], np.asarray(e)[order]
        ax.errorbar(x[order], m, yerr=e, marker="o", capsize=3)
        _set_hparam_x(ax, x[order], [labels[i] for i in order] if labels else [], numeric, hname)
        if var != "test_cf_acc" and np.all(m[np.isfinite(m)] > 0):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    ax = axes[1, 1]
    for align, mk in (("raw", "o"), ("aligned", "s")):
        m = []
        for da in das:
            b = da["barrier"].sel(align=align, split="test").values[:, -1]
            m.append(np.nanmean(b) if np.isfinite(b).any() else np.nan)
        ax.plot(x[order], np.asarray(m)[order], marker=mk, label=align)
    _set_hparam_x(ax, x[order], [labels[i] for i in order] if labels else [], numeric, hname)
    ax.set_title("test barrier at the last analysis checkpoint", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[1, 2]
    for dm, da, c in zip(dms, das, cols):
        lr_eff = float(da.attrs.get("lr_eff", np.nan))
        band(ax, step_axis(dm) * lr_eff, members(dm, "dist"), c, run_label(dm))
    log_axes(ax)
    ax.set_xlabel(r"learning-rate-corrected time $lr_{eff} \cdot t$")
    ax.set_title(r"$|w_k - w_0|$ against $lr_{eff} \cdot t$", fontsize=10)
    ax.legend(fontsize=6)
    plain_ticks(*axes.flat)
    fig.suptitle(f"{exp}: divergence against {hname} (mean +- sem over the perturbed members)")
    return save(fig, *_out(outputs, "divergence_vs"))


def _fig_scaling(table: pd.DataFrame, exp, outputs):
    hps = [h for h in dict.fromkeys(table["hparam"].astype(str)) if h != "lr_eff"] if len(table) else []
    h = hps[0] if hps else None
    quantities = [q for q in ("dist", "dist_excess", "fs_l2_logits") if len(table) and q in set(table["quantity"])]
    sub = table[table["hparam"].astype(str) == h] if h is not None else table.iloc[:0]
    panels = []
    for q in quantities:
        tq = sub[sub["quantity"] == q]
        best = tq.groupby("model")["n_best"].sum().idxmax() if len(tq) else "power_law"
        for m in dict.fromkeys(["power_law", best]):
            for p in FT.MODELS[m].params:
                panels.append((q, m, p))
    if len(sub[sub["quantity"] == "direction"]):
        panels.append(("direction", "sphere_walk", "D"))
    n = max(len(panels), 1)
    ncol = min(4, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.2 * nrow), squeeze=False, layout="constrained")
    for ax, (q, m, p) in zip(axes.flat, panels):
        t = sub[(sub["quantity"] == q) & (sub["model"] == m) & (sub["param"] == p)]
        x, labels, numeric = _hparam_axis(t["value"].tolist())
        order = np.argsort(x)
        y, e = t["mean"].to_numpy(float)[order], t["sem"].to_numpy(float)[order]
        ax.errorbar(x[order], y, yerr=np.nan_to_num(e), marker="o", capsize=3, ls="none")
        k = t["pl_exponent"].to_numpy(float)
        if numeric and len(k) and np.isfinite(k[0]):
            xx = np.geomspace(x[x > 0].min(), x.max(), 50)
            se = t["pl_exponent_stderr"].to_numpy(float)[0]
            ax.plot(xx, t["pl_prefactor"].to_numpy(float)[0] * xx ** k[0], "--",
                    label=f"power law: exponent {k[0]:.2f}" + (f" +- {se:.2f}" if np.isfinite(se) else ""))
            ax.legend(fontsize=6)
            if np.all(y[np.isfinite(y)] > 0):
                ax.set_yscale("log")
        _set_hparam_x(ax, x[order], [labels[i] for i in order] if labels else [], numeric, h or "")
        ax.set_title(f"{_QLABEL.get(q, q)}: {m}.{p}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no fitted parameters", ha="center", va="center")
    fig.suptitle(f"{exp}: fitted parameters against {h} (mean +- sem over members; dashed: power-law fit)",
                 fontsize=10)
    return save(fig, *_out(outputs, "scaling"))


def plot_hypersphere_theory(pdf: str, png: str, spec: dict | None = None) -> plt.Figure:
    """Simulated Brownian motion on S^{n-1} against the closed forms (one figure).

    Args:
        pdf, png: output paths.
        spec: ``analysis.hypersphere`` settings: ``dims`` (list of n), ``R``, ``D``,
            ``rate_dt`` (``D (n-1) dt / R^2`` per step, small: the scheme's bias is about
            ``D (n+2) dt / R^2``), ``t_max_rate`` (simulate until ``D (n-1) t / R^2``
            reaches it), ``walkers``, ``seed``.

    Returns:
        The (closed) figure.
    """
    from pathdep.analysis import hypersphere as HS
    from pathdep.config.analysis import DEFAULTS

    s = {**DEFAULTS["hypersphere"], **(spec or {})}
    R, D = float(s["R"]), float(s["D"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    cols = colors(len(s["dims"]))
    for n, c in zip(s["dims"], cols):
        n = int(n)
        dt = float(s["rate_dt"]) * R**2 / (D * (n - 1))
        steps = int(round(float(s["t_max_rate"]) / float(s["rate_dt"])))
        every = max(1, steps // 40)
        t, cos, sq, cs, qs = HS.simulate_sphere_walk(n, R, D, dt, steps, int(s["walkers"]), seed=int(s["seed"]),
                                                     record_every=every, return_sem=True)
        x = D * (n - 1) * t / R**2
        axes[0].errorbar(x, cos, yerr=2 * cs, fmt="o", ms=3, color=c, label=f"simulated, n = {n}")
        axes[1].errorbar(x, sq, yerr=2 * qs, fmt="o", ms=3, color=c, label=f"simulated, n = {n}")
        tt = np.linspace(0, t.max(), 200)
        axes[0].plot(D * (n - 1) * tt / R**2, HS.theory_cos(tt, n, R, D), color=c)
        axes[1].plot(D * (n - 1) * tt / R**2, HS.theory_sq_disp(tt, n, R, D), color=c)
    axes[0].set_ylabel(r"$\langle \cos\theta(t) \rangle$ (line: $e^{-D(n-1)t/R^2}$)")
    axes[1].set_ylabel(r"$\langle |x_t - x_0|^2 \rangle$ (line: $2R^2(1 - e^{-D(n-1)t/R^2})$)")
    for ax in axes:
        ax.set_xlabel(r"$D (n-1) t / R^2$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Brownian motion on the sphere $S^{{n-1}}$ (R = {R:g}, D = {D:g}, {s['walkers']} walkers): "
                 "simulation (+- 2 s.e.) vs theory", fontsize=10)
    return save(fig, pdf, png)
