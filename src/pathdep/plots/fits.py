"""Figures of the fitted forms (PDF + PNG), read from metrics.nc, geometry.nc, fits.nc and
scaling.csv.

What it draws, per experiment (one colour per run, labelled by its swept values; helpers
in :mod:`pathdep.plots.common`):

* ``fits`` (every experiment): each run's divergence curve (baseline 0's copies averaged:
  the points the fits saw, from fits.nc), one panel per quantity, with the form selected out
  of sample, fitted on the steps up to ``t_cut`` (2/3 of the run; solid) and extrapolated over
  the held-out last third (dashed; shaded). The legend names the form and how far it is off
  over the last third ("within x1.12"), or says "no form describes it" (with the closest
  form and its factor) when it misses by more than the tolerance;
* ``divergence_vs`` (experiments with a sweep): final raw / aligned / function distances and
  agreement against the swept hyperparameter (mean over baselines of the copy-averaged value,
  bars: 95 % t interval across baselines from scaling.csv; none with one baseline), barriers,
  and the distance against the learning-rate-corrected time ``time_lr = steps * lr_eff``;
* ``scaling`` (experiments with a sweep): fitted parameters (mean, interval across baselines)
  against the swept value (``1 - momentum`` for momenta) with their power laws (exponent and
  its interval in the legend), or "too few points" where the sweep allows no law; the
  hypersphere D only where the diffusion form passed its goodness-of-fit test.

How it was checked: ``tests/plots/test_fits.py`` draws every figure from small synthetic
metrics / geometry / fits / scaling files and checks the files and their content (the
selected form through its points, "no form describes it" for a curve it misses, the
power-law line, "too few points"); ``tests/test_geometry_workflow.py`` checks the tiny
workflow writes every figure.
"""

from __future__ import annotations

import json
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.fits import MODELS
from pathdep.plots.common import (band_text, baseline_band, colors, load, log_axes, not_defined,
                                  plain_ticks, run_label, save, sparse_log_ticks, step_axis)

_QLABEL = {"dist": r"$|w_k - w_0|$", "dist_aligned": r"$|w_0 - P w_k|$ (aligned)",
           "dist_excess": r"$|w_k - w_0|(t) - |w_k - w_0|(0)$",
           "fs_l2_logits": "L2 logits", "fs_l2_probs": "L2 probs", "fs_sym_kl": "sym. KL",
           "fs_disagree": "disagreement", "dist_rel": r"$|w_k - w_0| / |w_0(0)|$", "direction": "sphere D",
           "test_cf_acc": "agreement with the baseline (test)"}
NO_FORM = "no form describes it"


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
            (the rule's outputs: names of :data:`pathdep.config.fits.FIGURES`; rule
            ``plot_fits`` asks for ``fits``, rule ``plot_scaling`` for the sweep figures).
        experiment: its name (titles).

    Returns:
        ``{figure name: the (closed) figure}``.
    """
    dms, dgs = load(metric_files), load(geometry_files)
    fits = xr.load_dataset(fits_nc, engine="h5netcdf")
    table = pd.read_csv(scaling_csv)
    cols = colors(len(dgs))
    draw = {"fits": lambda: _fig_fits(dms, fits, cols, experiment, outputs),
            "divergence_vs": lambda: _fig_divergence_vs(dms, dgs, table, cols, experiment, outputs),
            "scaling": lambda: _fig_scaling(table, experiment, outputs)}
    return {name: draw[name]() for name in _asked(outputs)}


def _asked(outputs: dict) -> list[str]:
    return [k[:-len("_pdf")] for k in outputs if k.endswith("_pdf")]


def _out(outputs, name):
    return outputs[f"{name}_pdf"], outputs[f"{name}_png"]


def _form_label(fits, i: int, who: str) -> str:
    """Legend text of curve i: the selected form and its worst factor over the last third, or
    that no form describes it."""
    m, f = str(fits["oos_model"].values[i]), float(fits["oos_factor_selected"].values[i])
    if bool(fits["described"].values[i]):
        return f"{who}: {m} (last third within x{f:.2f})"
    closest = f"; closest {m}, off x{f:.2f}" if m and np.isfinite(f) and f < 10 else (
        f"; closest {m}, off x{f:.3g}" if m and np.isfinite(f) else "")
    return f"{who}: {NO_FORM}{closest}"


def _draw_curve(ax, fits, i: int, c, who: str) -> None:
    """Points of curve i and its out-of-sample form (solid where fitted, dashed beyond t_cut)."""
    t, d = fits["curve_t"].values[i], fits["curve_d"].values[i]
    ok = np.isfinite(t) & np.isfinite(d) & (d > 0)
    t, d = t[ok], d[ok]
    cut = float(fits["t_cut"].values[i])
    ax.plot(t[t <= cut], d[t <= cut], "o", ms=2.5, color=c)
    ax.plot(t[t > cut], d[t > cut], "o", ms=3.5, mfc="none", color=c)  # held out: open
    m = str(fits["oos_model"].values[i])
    label = _form_label(fits, i, who)
    if m not in MODELS or len(t) < 2:
        ax.plot([], [], color=c, label=label)
        return
    names = list(fits["param"].values.astype(str))
    p = [fits["value_oos"].sel(model=m).values[i][names.index(pn)] for pn in MODELS[m].params]
    if not np.all(np.isfinite(p)):
        ax.plot([], [], color=c, label=label)
        return
    t_in, t_out = np.geomspace(t.min(), cut, 120), np.geomspace(cut, t.max(), 60)
    lw = 1.5 if bool(fits["described"].values[i]) else 0.8
    ax.plot(t_in, MODELS[m].func(t_in, *p), "-", color=c, lw=lw, label=label)
    ax.plot(t_out, MODELS[m].func(t_out, *p), "--", color=c, lw=lw)


def _fig_fits(dms, fits, cols, exp, outputs):
    quantities = list(dict.fromkeys(fits["quantity"].values.astype(str)))
    n = max(len(quantities), 1)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 5.0 * nrow), squeeze=False, layout="constrained")
    runs, qs = fits["run"].values.astype(str), fits["quantity"].values.astype(str)
    base = fits["baseline"].values if "baseline" in fits else np.zeros(len(runs), dtype=int)
    for ax, q in zip(axes.flat, quantities):
        cuts = []
        for dm, c in zip(dms, cols):
            sel = np.flatnonzero((runs == str(dm.attrs.get("run"))) & (qs == q) & (base == 0))
            if len(sel):
                _draw_curve(ax, fits, int(sel[0]), c, run_label(dm))
                cuts.append(float(fits["t_cut"].values[sel[0]]))
        if cuts:
            ax.axvspan(min(cuts), ax.get_xlim()[1] if ax.has_data() else min(cuts), color="0.5", alpha=0.12, lw=0)
        log_axes(ax)
        ax.set_title(_QLABEL.get(q, q), fontsize=10)
        ax.set_xlabel("training step")
        # below the panel (each panel names its own forms): never over the points
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, borderaxespad=0)
    for ax in list(axes.flat)[len(quantities):]:
        ax.set_visible(False)
    nb = int(np.max(base)) + 1 if len(base) else 1
    fig.suptitle(f"{exp}: divergence of baseline 0's copies (mean; of {nb} baseline{'s' if nb > 1 else ''}); "
                 f"form chosen out of sample, fitted on the first {float(fits.attrs.get('fit_fraction', 2 / 3)):.0%} "
                 f"of the run (solid) and predicting the shaded rest (dashed; open points held out)", fontsize=9)
    return save(fig, *_out(outputs, "fits"))


def _log_y_if_spread(ax, y) -> None:
    """A log y axis for positive values spanning at least a factor 3 (a nearly constant
    parameter on a log axis shows only its rounding)."""
    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    if len(y) and np.all(y > 0) and y.max() / y.min() >= 3:
        ax.set_yscale("log")


def _errorbar(ax, x, m, lo, hi, **kw):
    """Points with bars from lo to hi where they are finite (no bars with one baseline)."""
    err = np.vstack([m - lo, hi - m])
    err = np.where(np.isfinite(err), err, 0.0)
    ax.errorbar(x, m, yerr=err if np.any(err > 0) else None, capsize=3, **kw)


def _final_panel(ax, t: pd.DataFrame, h: str, title: str, log_y: bool):
    x, labels, numeric = _hparam_axis(t["value"].tolist())
    order = np.argsort(x)
    m, lo, hi = (t[c].to_numpy(float)[order] for c in ("mean", "lo", "hi"))
    _errorbar(ax, x[order], m, lo, hi, marker="o")
    _set_hparam_x(ax, x[order], [labels[i] for i in order] if labels else [], numeric, h)
    if log_y:
        _log_y_if_spread(ax, m)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")


def _fig_divergence_vs(dms, dgs, table, cols, exp, outputs):
    hps = [h for h in dict.fromkeys(table["hparam"].astype(str)) if h != "lr_eff"] if len(table) else []
    h = hps[0] if hps else "run"
    fin = table[(table["model"] == "final") & (table["hparam"].astype(str) == h)]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    panels = [("dist", r"final $|w_k - w_0|$", True), ("dist_aligned", "final aligned distance", True),
              ("fs_l2_logits", "final L2 distance of test logits", True),
              ("test_cf_acc", "final agreement with the baseline (test)", False)]
    for ax, (var, title, log_y) in zip(axes.flat, panels):
        t = fin[fin["quantity"] == var]
        if len(t):
            _final_panel(ax, t, h, title, log_y)
        else:
            not_defined(ax, f"{var}: not in the scaling table")
    _barrier_panel(axes[1, 1], dgs, h)
    ax = axes[1, 2]
    for dm, dg, c in zip(dms, dgs, cols):
        lr_eff = float(dg.attrs.get("lr_eff", np.nan))
        baseline_band(ax, step_axis(dm) * lr_eff, dm["dist"].values, dm, c, run_label(dm))
    log_axes(ax)
    ax.set_xlabel(r"learning-rate-corrected time $lr_{eff} \cdot t$")
    ax.set_title(r"$|w_k - w_0|$ against $lr_{eff} \cdot t$", fontsize=10)
    ax.legend(fontsize=6)
    plain_ticks(*axes.flat)
    nb = int(fin["n"].max()) if len(fin) else 1
    how = (f"mean and 95 % t interval across {nb} baselines, copies averaged per baseline" if nb > 1
           else "one baseline, no interval: the mean over its copies")
    fig.suptitle(f"{exp}: divergence at the end of training against {h} ({how}); bottom right: {band_text(dms)}",
                 fontsize=9)
    return save(fig, *_out(outputs, "divergence_vs"))


def _barrier_panel(ax, dgs, h):
    names, vals = zip(*[_hparam_of(dg) for dg in dgs]) if dgs else ((), ())
    x, labels, numeric = _hparam_axis(vals)
    order = np.argsort(x)
    # raw: large open circles, aligned: small filled squares on a dashed line, so that both
    # stay visible where alignment leaves the barrier unchanged
    styles = {"raw": dict(marker="o", ms=9, mfc="none", lw=2), "aligned": dict(marker="s", ms=4, ls="--")}
    for align, style in styles.items():
        m = []
        for dg in dgs:
            b = dg["barrier"].sel(align=align, split="test").values[..., -1] if "barrier" in dg else np.array([np.nan])
            m.append(np.nanmean(b) if np.isfinite(b).any() else np.nan)
        ax.plot(x[order], np.asarray(m)[order], label=align, **style)
    _set_hparam_x(ax, x[order], [labels[i] for i in order] if labels else [], numeric, h)
    ax.set_title("test barrier at the last interpolation checkpoint", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _scaling_panels(sub: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(quantity, form, param) panels: the power law and the form most often selected out of
    sample and described (else the AIC-best) per quantity, and the hypersphere D."""
    panels = []
    for q in ("dist", "dist_excess", "fs_l2_logits"):
        tq = sub[(sub["quantity"] == q) & sub["model"].isin(list(MODELS))]
        if not len(tq):
            continue
        by = tq.groupby("model")[["n_described", "n_best"]].sum()
        best = by["n_described"].idxmax() if by["n_described"].max() > 0 else by["n_best"].idxmax()
        for m in dict.fromkeys(["power_law", best]):
            panels += [(q, m, p) for p in MODELS[m].params]
    if len(sub[sub["quantity"] == "direction"]):
        panels.append(("direction", "sphere_walk", "D"))
    return panels


def _law_line(ax, t: pd.DataFrame, x: np.ndarray) -> None:
    """The power law of one panel (or why there is none) in its legend."""
    k = t["pl_exponent"].to_numpy(float)
    note = str(t["pl_note"].fillna("").iloc[0]) if "pl_note" in t else ""
    if len(k) and np.isfinite(k[0]):
        lo, hi = t["pl_exponent_lo"].to_numpy(float)[0], t["pl_exponent_hi"].to_numpy(float)[0]
        ci = f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else " (one baseline: no interval)"
        xx = np.geomspace(x[x > 0].min(), x.max(), 50)
        ax.plot(xx, t["pl_prefactor"].to_numpy(float)[0] * xx ** k[0], "--", label=f"exponent {k[0]:.2f}{ci}")
        ax.legend(fontsize=6)
    elif note:
        ax.text(0.5, 0.04, f"no power law: {note}", transform=ax.transAxes, ha="center", fontsize=7, color="0.3")


def _fig_scaling(table: pd.DataFrame, exp, outputs):
    hps = [h for h in dict.fromkeys(table["hparam"].astype(str)) if h != "lr_eff"] if len(table) else []
    h = hps[0] if hps else None
    sub = table[table["hparam"].astype(str) == h] if h is not None else table.iloc[:0]
    panels = _scaling_panels(sub)
    n = max(len(panels), 1)
    ncol = min(4, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.8 * ncol, 3.3 * nrow), squeeze=False, layout="constrained")
    xname = h or ""
    for ax, (q, m, p) in zip(axes.flat, panels):
        t = sub[(sub["quantity"] == q) & (sub["model"] == m) & (sub["param"] == p)]
        x, labels, numeric = _hparam_axis(t["value"].tolist())
        if numeric and "pl_x" in t and str(t["pl_x"].iloc[0]) == "1 - momentum":
            x, xname = 1.0 - x, "1 - momentum"
        order = np.argsort(x)
        y, lo, hi = (t[c].to_numpy(float)[order] for c in ("mean", "lo", "hi"))
        ax.set_title(f"{_QLABEL.get(q, q)}: {m}.{p}", fontsize=9)
        if not np.isfinite(y).any():
            not_defined(ax, "diffusion form fails its\ngoodness-of-fit test:\nD not used" if q == "direction"
                        else "no fitted values")
            continue
        _errorbar(ax, x[order], y, lo, hi, marker="o", ls="none")
        if numeric:
            _law_line(ax, t, x)
            _log_y_if_spread(ax, y)
        _set_hparam_x(ax, x[order], [labels[i] for i in order] if labels else [], numeric, xname)
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if not panels:
        not_defined(axes[0, 0], "no fitted parameters")
    nb = int(sub["n"].max()) if len(sub) else 1
    how = f"mean, 95 % t interval across {nb} baselines" if nb > 1 else "one baseline: no interval"
    fig.suptitle(f"{exp}: fitted parameters against {xname} ({how}; dashed: power law, exponent [interval "
                 "across baselines]; none through < 4 values or < 1 decade)", fontsize=9)
    return save(fig, *_out(outputs, "scaling"))
