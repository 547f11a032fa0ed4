"""Figures of the fitted forms (PDF + PNG), read from metrics.nc, geometry.nc, fits.nc and
scaling.csv.

What it draws, per experiment (one colour per run, labelled by its swept values; helpers
in :mod:`pathdep.plots.common`):

* ``fits``: the first perturbed member's divergence curves (points) with its AIC-best
  fitted form (solid) and the power law a t^b (dotted), one panel per quantity, drawn
  from the parameters stored in fits.nc;
* ``divergence_vs``: final raw / aligned / function distances and barriers against the
  swept hyperparameter, and the distance against the learning-rate-corrected time
  ``time_lr = steps * lr_eff`` (``lr_eff = lr / (1 - momentum)`` for SGD,
  :mod:`pathdep.config.sweeps`);
* ``scaling``: fitted parameters (mean +- sem over members) against the hyperparameter with
  their power-law fits (exponent in the legend).

How it was checked: ``tests/plots/test_fits.py`` draws every figure from small synthetic
metrics / geometry / fits / scaling files and checks the files and their content (fitted
forms, the power-law line); ``tests/test_geometry_workflow.py`` checks the tiny workflow
writes every figure.
"""

from __future__ import annotations

import json
import warnings
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.fits import MODELS
from pathdep.analysis.quantities import quantity_values
from pathdep.plots.common import (band, colors, load, log_axes, members, plain_ticks, run_label, save,
                                  sparse_log_ticks, step_axis)

_QLABEL = {"dist": r"$|w_k - w_0|$", "dist_aligned": r"$|w_0 - P w_k|$ (aligned)",
           "dist_excess": r"$|w_k - w_0|(t) - |w_k - w_0|(0)$",
           "fs_l2_logits": "L2 logits", "fs_l2_probs": "L2 probs", "fs_sym_kl": "sym. KL",
           "fs_disagree": "disagreement", "dist_rel": r"$|w_k - w_0| / |w_0(0)|$", "direction": "sphere D"}


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


def plot_fits(metric_files: Sequence[str], geometry_files: Sequence[str], fits_nc: str, scaling_csv: str,
              outputs: dict, experiment: str) -> dict[str, plt.Figure]:
    """Draw the fit figures of one experiment.

    Args:
        metric_files, geometry_files: the runs' ``metrics.nc`` and ``geometry.nc`` (same order).
        fits_nc, scaling_csv: the experiment's fits and scaling table.
        outputs: ``{"<figure>_pdf": path, "<figure>_png": path}`` for the figures to draw
            (the rule's outputs: the names of :data:`pathdep.config.fits.FIGURES`).
        experiment: its name (titles).

    Returns:
        ``{figure name: the (closed) figure}``.
    """
    dms, dgs = load(metric_files), load(geometry_files)
    fits = xr.load_dataset(fits_nc, engine="h5netcdf")
    table = pd.read_csv(scaling_csv)
    cols = colors(len(dgs))
    draw = {"fits": lambda: _fig_fits(dms, dgs, fits, cols, experiment, outputs),
            "divergence_vs": lambda: _fig_divergence_vs(dms, dgs, cols, experiment, outputs),
            "scaling": lambda: _fig_scaling(table, experiment, outputs)}
    return {name: draw[name]() for name in _asked(outputs)}


def _asked(outputs: dict) -> list[str]:
    return [k[:-len("_pdf")] for k in outputs if k.endswith("_pdf")]


def _out(outputs, name):
    return outputs[f"{name}_pdf"], outputs[f"{name}_png"]


def _fig_fits(dms, dgs, fits, cols, exp, outputs):
    quantities = [q for q in dict.fromkeys(fits["quantity"].values.astype(str))]
    n = max(len(quantities), 1)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 4.6 * nrow), squeeze=False, layout="constrained")
    runs = fits["run"].values.astype(str)
    member_idx = fits["member"].values
    qs = fits["quantity"].values.astype(str)
    for ax, q in zip(axes.flat, quantities):
        for dm, dg, c in zip(dms, dgs, cols):
            run = str(dm.attrs.get("run"))
            sel = np.flatnonzero((runs == run) & (qs == q))
            if len(sel) == 0:
                continue
            i = sel[np.argmin(member_idx[sel])]
            k = int(member_idx[i])
            t = dm["step"].values.astype(float)
            d = quantity_values(dm, dg, q)[k]
            ok = (t > 0) & np.isfinite(d) & (d > 0)
            ax.plot(t[ok], d[ok], "o", ms=2.5, color=c)
            best = str(fits["best_model"].values[i])
            tt = np.geomspace(max(t[ok].min(), 1.0), t[ok].max(), 200) if ok.sum() > 1 else t[ok]
            for model, ls in ((best, "-"), ("power_law", ":")):
                if model not in fits["model"].values or not model:
                    continue
                vals = fits["value"].sel(model=model).values[i]
                pnames = list(MODELS[model].params)
                p = [vals[list(fits["param"].values).index(pn)] for pn in pnames]
                if np.all(np.isfinite(p)):
                    lab = f"{run_label(dm)}: {best}" if ls == "-" else None
                    ax.plot(tt, MODELS[model].func(tt, *p), ls=ls, color=c, label=lab)
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


def _final(ds, var):
    y = members(ds, var)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        last = y[:, -1]
        return np.nanmean(last), (np.nanstd(last, ddof=1) / np.sqrt(np.isfinite(last).sum())) if len(last) > 1 else 0.0


def _fig_divergence_vs(dms, dgs, cols, exp, outputs):
    names, vals = zip(*[_hparam_of(dg) for dg in dgs]) if dgs else ((), ())
    hname = names[0] if names else "run"
    x, labels, numeric = _hparam_axis(vals)
    order = np.argsort(x)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    panels = [("dist", "metrics", r"final $|w_k - w_0|$"), ("dist_aligned", "geometry", "final aligned distance"),
              ("fs_l2_logits", "metrics", "final L2 distance of test logits"),
              ("test_cf_acc", "metrics", "final agreement with the baseline (test)")]
    for ax, (var, src, title) in zip(axes.flat, panels):
        m, e = [], []
        for dm, dg in zip(dms, dgs):
            ds = dm if src == "metrics" else dg
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
    # raw: large open circles, aligned: small filled squares on a dashed line, so that both
    # stay visible where alignment leaves the barrier unchanged
    styles = {"raw": dict(marker="o", ms=9, mfc="none", lw=2), "aligned": dict(marker="s", ms=4, ls="--")}
    for align, style in styles.items():
        m = []
        for dg in dgs:
            b = dg["barrier"].sel(align=align, split="test").values[:, -1]
            m.append(np.nanmean(b) if np.isfinite(b).any() else np.nan)
        ax.plot(x[order], np.asarray(m)[order], label=align, **style)
    _set_hparam_x(ax, x[order], [labels[i] for i in order] if labels else [], numeric, hname)
    ax.set_title("test barrier at the last interpolation checkpoint", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[1, 2]
    for dm, dg, c in zip(dms, dgs, cols):
        lr_eff = float(dg.attrs.get("lr_eff", np.nan))
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
            for p in MODELS[m].params:
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


