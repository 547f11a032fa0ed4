"""Figures of the Lyapunov analyses (PDF + PNG), read from the lyapunov stage's files.

* ``lyapunov_spectrum``: one column per experiment: the running Benettin estimate of the
  leading exponent of each run's baseline over the accumulated window (after the transient),
  with the final value +- its error as a band over the last half (convergence is visible),
  and below it the k leading exponents per run (``lyapunov.nc`` per run); every series has
  its own tab10 colour and marker, and a panel whose runs differ by decades gets a symlog y
  axis;
* ``lyapunov_link``: (left) the maximal exponent +- its error against the measured growth
  rate +- se of the member-baseline distance over the same window, with y = x (filled
  markers: agreement within two combined errors; one marker shape per experiment, every
  point named; symlog axes when the values span decades around 0); (right) the epsilon sweep's measured
  rate against the relative perturbation size, with the baseline's lambda_max band: where
  the rate leaves the band the tangent regime ends (the link table, CSV);
* ``lyapunov_study_*``: the 2-2-1 study, one panel per (activation, init range): final-loss
  histograms with the failure threshold, leading-FTLE and minimum-CLV-angle distributions of
  failed vs successful runs at the earliest indicator time, and the cross-validated AUC of
  at most four indicators against the indicator time with bands of +- the standard deviation
  over the CV folds, one legend under the panels (``study.nc``, ``roc.nc``); final losses are
  drawn at max(loss, 1e-30), and that floor is labelled.

How it was checked: ``tests/plots/test_lyapunov.py`` draws them from small synthetic files
(spectra, link table, study and ROC datasets) and checks their content (one curve per run
ending at the planted exponent, error bars of the planted sizes, the y = x line spanning
the points, the lambda band of the tangent panel, one panel per combination with the planted
failure fraction, one AUC curve per indicator with a band of the planted fold std, distinct
colours); ``tests/stages/test_lyapunov.py`` draws them from a tiny run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import xarray as xr

from pathdep.plots.common import colors, load, run_label, save

#: At most this many indicators per ROC panel.
MAX_INDICATORS = 4


def _dataset(x: xr.Dataset | str | Path) -> xr.Dataset:
    return x if isinstance(x, xr.Dataset) else xr.load_dataset(x)


#: One marker per series of a panel (paired with the tab10 colour of the same index).
MARKERS = "osD^vP<>hX*"


def _linthresh(values) -> float:
    """A symlog linear threshold: the decade of the smallest non-zero |value|."""
    v = np.abs(np.asarray(values, dtype=float).ravel())
    v = v[np.isfinite(v) & (v > 0)]
    return float(10.0 ** np.floor(np.log10(v.min()))) if v.size else 1e-6


def _value_scale(ax, values, dominated: bool) -> str:
    """Symlog y (linear within +- the decade of the smallest |value|) when ``dominated``
    (series at very different scales), else linear; returns the scale."""
    if dominated:
        ax.set_yscale("symlog", linthresh=_linthresh(values), linscale=0.5)
        ax.grid(alpha=0.3, which="major", axis="y")
        return "symlog"
    return "linear"


def _spread_ratio(values, center=np.median) -> float:
    """max |value| over ``center`` |value| (finite, non-zero values; 1 if none)."""
    v = np.abs(np.asarray(values, dtype=float).ravel())
    v = v[np.isfinite(v) & (v > 0)]
    return float(v.max() / center(v)) if v.size else 1.0


def _pad_limits(ax, lo: float, hi: float, scale: str) -> None:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return
    if scale == "symlog":
        thr = ax.yaxis.get_transform().linthresh
        ax.set_ylim(lo - 0.6 * abs(lo) - thr, hi + 0.6 * abs(hi) + thr)
    else:
        pad = 0.15 * (hi - lo) + 1e-6 * max(abs(lo), abs(hi), 1e-12)
        ax.set_ylim(lo - pad, hi + pad)


def plot_spectrum(paths: Sequence[str], pdf: str, png: str) -> plt.Figure:
    """Running leading exponent (with its error band) and final spectrum of each baseline.

    One column per experiment (top: running estimate, bottom: the k leading exponents), each
    series with its own tab10 colour and marker, the column's legend under it; a symlog y
    axis where the series of a column differ by decades (one run's large exponent would
    otherwise squash the others at 0).

    Args:
        paths: the runs' ``lyapunov.nc`` (``running (step, exponent)``, ``exponents
            (exponent,)``, optionally ``lambda_max_err``; attributes ``experiment``, ``run``,
            ``swept``, optionally ``transient``).
        pdf, png: output paths.

    Returns:
        The (closed) figure; ``fig.axes`` is ``[running of each experiment..., spectrum of
        each experiment...]``.
    """
    dss = load(paths)
    groups: dict[str, list[xr.Dataset]] = {}
    for ds in dss:
        groups.setdefault(str(ds.attrs.get("experiment", "")), []).append(ds)
    ncol = len(groups)
    fig, axes = plt.subplots(2, ncol, figsize=(max(5.2 * ncol, 6.5), 8.2), squeeze=False, layout="constrained")
    tr = sorted({int(ds.attrs.get("transient", 0)) for ds in dss})
    for j, (exp, group) in enumerate(groups.items()):
        ax, axs = axes[0, j], axes[1, j]
        cols = colors(len(group), "tab10")
        tails, finals, handles = [], [], []
        for i, (ds, c) in enumerate(zip(group, cols)):
            mk = MARKERS[i % len(MARKERS)]
            step = ds["step"].values
            run1 = ds["running"].isel(exponent=0).values
            every = max(1, len(step) // 6)
            (ln,) = ax.plot(step, run1, color=c, lw=1.2, marker=mk, ms=5, markevery=(i * every // len(group), every),
                            label=run_label(ds))
            handles.append(ln)
            # the first steps of a running mean are dominated by single QRs: zoom on the converged part
            tails.append(run1[len(step) // 4:])
            if "lambda_max_err" in ds:
                lam, err = float(ds["exponents"][0]), float(ds["lambda_max_err"])
                half = step[len(step) // 2:]
                ax.fill_between(half, lam - err, lam + err, color=c, alpha=0.12, lw=0)
            axs.plot(ds["exponent"], ds["exponents"], "-", marker=mk, color=c, ms=6, mfc="none" if i % 2 else c,
                     label=run_label(ds))
            finals.append(ds["exponents"].values)
        tail = np.concatenate(tails)
        tail = tail[np.isfinite(tail)]
        lam1 = np.array([f[0] for f in finals])
        # one run's exponent decades above the others' would squash them at 0: symlog
        scale = _value_scale(ax, lam1, _spread_ratio(lam1) > 30)
        if tail.size:
            _pad_limits(ax, tail.min(), tail.max(), scale)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"{exp}: convergence" + (" (symlog y)" if scale == "symlog" else ""), fontsize=10)
        ax.set_xlabel("step (accumulated window" + (f", after a transient of {tr[0]} steps)" if len(tr) == 1 else ")"),
                      fontsize=8)
        allf = np.concatenate(finals)
        sscale = _value_scale(axs, allf, _spread_ratio(allf, np.min) > 100)
        axs.axhline(0, color="k", lw=0.5)
        axs.set_xlabel("exponent index")
        axs.set_xticks(np.asarray(group[0]["exponent"].values))
        axs.set_title(f"{exp}: the k leading exponents" + (" (symlog y)" if sscale == "symlog" else ""), fontsize=10)
        axs.legend(handles, [h.get_label() for h in handles], fontsize=7, ncol=2 if len(group) > 3 else 1,
                   loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    axes[0, 0].set_ylabel(r"running estimate of $\lambda_1$ (per step)")
    axes[1, 0].set_ylabel(r"$\lambda_i$ (per step)")
    fig.suptitle("Benettin spectra of the baselines' training maps (state: weights + optimiser buffers)\n"
                 r"bands: final $\lambda_1$ $\pm$ error over the last half; symlog axes are linear within "
                 r"$\pm$ the first labelled decade", fontsize=10)
    return save(fig, pdf, png)


def _point_names(table: pd.DataFrame) -> np.ndarray:
    """Short names of the link table's rows: their swept values (``lr=0.1``), else the run."""
    out = []
    for i in range(len(table)):
        sw = table["swept"].iloc[i] if "swept" in table else None
        try:
            sw = json.loads(sw) if isinstance(sw, str) else {}
        except ValueError:
            sw = {}
        out.append(", ".join(f"{k.split('.')[-1]}={v}" for k, v in sw.items()) or str(table["run"].iloc[i]))
    return np.array(out, dtype=object)


def _name_points(ax, x, y, fin, names, exps, cols) -> None:
    """Name each point of the link panel next to it (call after the scales and limits are set).

    Points that coincide (3 significant digits in both coordinates) share one label (their
    names joined; black when they come from several experiments). Each label takes the one of
    eight places around its point that covers the fewest other points and placed labels."""
    groups: dict[tuple, list[int]] = {}
    for i in np.flatnonzero(fin):
        groups.setdefault((float(f"{x[i]:.3g}"), float(f"{y[i]:.3g}")), []).append(i)
    ax.figure.canvas.draw()  # fixes the layout, hence the data -> display transform
    to_px = ax.transData.transform
    pts = to_px(np.c_[x[fin], y[fin]])
    px_per_pt = ax.figure.dpi / 72.0
    placed: list[tuple[float, float, float, float]] = []
    fs = 6.5
    for xy, idx in sorted(groups.items()):
        txt, last = [], None
        for i in idx:
            nm = str(names[i])
            if last is not None and exps[i] == exps[last] and "=" in nm and nm.split("=")[0] == str(names[last]).split("=")[0]:
                txt[-1] += ", " + nm.split("=", 1)[1]
            else:
                txt.append(nm)
            last = i
        same = len({exps[i] for i in idx}) == 1
        label = "; ".join(txt) if same else " = ".join(txt)
        w, h = 0.6 * fs * len(label) * px_per_pt, 1.3 * fs * px_per_pt
        px, py = to_px([[x[idx[0]], y[idx[0]]]])[0]
        best = None
        for dx, dy in ((7, 7), (7, -9), (-7, 7), (-7, -9), (7, 0), (-7, 0), (0, 11), (0, -13)):
            ha = "left" if dx > 0 else ("right" if dx < 0 else "center")
            x0 = px + dx * px_per_pt - (w if ha == "right" else w / 2 if ha == "center" else 0)
            y0 = py + dy * px_per_pt - h / 2
            box = (x0, y0, x0 + w, y0 + h)
            hits = int(((pts[:, 0] > box[0] - 4) & (pts[:, 0] < box[2] + 4) & (pts[:, 1] > box[1] - 4)
                        & (pts[:, 1] < box[3] + 4)).sum())
            hits += sum(1 for b in placed if not (box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1]))
            if best is None or hits < best[0]:
                best = (hits, dx, dy, ha, box)
        _, dx, dy, ha, box = best
        placed.append(box)
        ax.annotate(label, (x[idx[0]], y[idx[0]]), xytext=(dx, dy), textcoords="offset points", fontsize=fs,
                    va="center", ha=ha, color=cols[exps[idx[0]]] if same else "k")


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
    fig, axes = plt.subplots(1, 2 if tangent.any() else 1, figsize=(13 if tangent.any() else 7, 6),
                             squeeze=False, layout="constrained", width_ratios=[1.35, 1] if tangent.any() else None)
    ax = axes[0, 0]
    x, y = table["lambda_max"].values, table["measured_rate"].values
    xe = table["lambda_max_err"].values if "lambda_max_err" in table else np.zeros(n)
    ye = table["measured_rate_se"].values
    agree = table["agree"].astype(bool).values if "agree" in table else np.zeros(n, bool)
    exps = list(dict.fromkeys(table["experiment"]))
    fin = np.isfinite(x) & np.isfinite(y)
    # exponents near 0 and rates decades apart: one symlog scale on both axes (y = x stays diagonal)
    symlog = bool(fin.any()) and _spread_ratio(np.r_[x[fin], y[fin]], np.min) > 100
    if symlog:
        big = np.abs(np.r_[x[fin], y[fin]]).max()
        thr = max(_linthresh(np.r_[x[fin], y[fin]]), float(10.0 ** (np.floor(np.log10(big)) - 3)))
    for j, (exp, c) in enumerate(zip(exps, colors(len(exps), "tab10"))):
        m = table["experiment"].values == exp
        mk = MARKERS[j % len(MARKERS)]
        ax.errorbar(x[m], y[m], xerr=xe[m], yerr=ye[m], fmt="none", ecolor=c, capsize=2, lw=0.8, alpha=0.8)
        ax.scatter(x[m], y[m], s=70 * 0.65 ** j, marker=mk, edgecolors=[c], linewidths=1.3,
                   facecolors=[c if a else "white" for a in agree[m]], zorder=3 + 0.1 * j, label=exp)
    if fin.any():
        lo, hi = min(x[fin].min(), y[fin].min()), max(x[fin].max(), y[fin].max())
        if symlog:
            lo, hi = lo - 0.5 * abs(lo) - thr, hi + 0.5 * abs(hi) + thr
        else:
            pad = 0.1 * (hi - lo + 1e-12)
            lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
        if symlog:
            ax.set_xscale("symlog", linthresh=thr, linscale=0.7)
            ax.set_yscale("symlog", linthresh=thr, linscale=0.7)
            ylo, yhi = np.nanmin((y - ye)[fin]), np.nanmax((y + ye)[fin])
            ax.set_ylim(ylo - 0.5 * abs(ylo) - (thr if ylo <= thr else 0), yhi + 0.8 * abs(yhi))
            ax.grid(alpha=0.3, which="major")
            ax.axvline(0, color="k", lw=0.5)
            ax.tick_params(axis="x", labelrotation=45)
            ax.text(0.01, 0.99, f"symlog axes: linear within $\\pm${thr:.0e}", transform=ax.transAxes,
                    fontsize=7, va="top")
    ax.set_xlabel(r"Benettin $\lambda_{max}$ of the baseline (per step)")
    ax.set_ylabel(r"measured growth rate of $\langle|w_k - w_0|\rangle$ (per step)")
    # under the panels, where it hides no point
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="outside lower left", ncol=len(exps) + 1,
               title="left panel (filled: agree within 2 errors)", title_fontsize=8, frameon=False)
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
    _name_points(axes[0, 0], x, y, np.isfinite(x) & np.isfinite(y), _point_names(table), table["experiment"].values,
                 dict(zip(exps, colors(len(exps), "tab10"))))
    return save(fig, pdf, png)


def _grid(study: xr.Dataset):
    acts, ranges = list(study["activation"].values), list(study["init_range"].values)
    combos = [(a, r) for a in acts for r in ranges]
    ncol = len(ranges)
    fig, axes = plt.subplots(len(acts), ncol, figsize=(4.6 * ncol, 3.5 * len(acts)), squeeze=False,
                             layout="constrained")
    return combos, [axes[i // ncol, i % ncol] for i in range(len(combos))], fig


def _title(study, a, r):
    frac = float(study["failure_fraction"].sel(activation=a, init_range=r))
    return f"{a}, U(-{r:g},{r:g}): {100 * frac:.1f}% failed"


#: Final losses are drawn at max(loss, LOSS_FLOOR) on the log10 axis (exact zeros included).
LOSS_FLOOR = 1e-30


def _label_floor(ax, fl) -> None:
    """Name the clip floor of the final-loss histogram: the tick at log10(LOSS_FLOOR) reads
    "<= -30" and the pile there is annotated with its count ("n at loss <= 1e-30")."""
    fl = np.asarray(fl, dtype=float)
    n = int((fl[np.isfinite(fl)] <= LOSS_FLOOR).sum())
    floor = np.log10(LOSS_FLOOR)
    fmt = lambda v, _: ("\u2264 " if np.isclose(v, floor) else "") + f"{v:g}".replace("-", "\u2212")  # noqa: E731
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(fmt))
    if n:
        counts = [p.get_height() for p in ax.patches if p.get_x() <= floor <= p.get_x() + p.get_width()]
        top = max(counts) if counts else 0
        ax.annotate(f"{n} at loss \u2264 {LOSS_FLOOR:.0e}\n(clip floor)", (floor, top), xytext=(8, -2),
                    textcoords="offset points", ha="left", va="top", fontsize=7)


def _two_hists(ax, v, failed, **kw):
    ax.hist(v[~failed], alpha=0.5, density=True, color="C0", label=f"low final loss ({(~failed).sum()})", **kw)
    ax.hist(v[failed], alpha=0.5, density=True, color="C3", label=f"high final loss ({failed.sum()})", **kw)


def plot_study(study: xr.Dataset | str | Path, roc: xr.Dataset | str | Path, out: dict,
               caveat: str | None = None) -> dict[str, plt.Figure]:
    """Figures of the 2-2-1 study, one panel per (activation, init range).

    Args:
        study: ``pathdep.analysis.lyapunov_study.run_study``'s dataset or its netCDF file.
        roc: ``pathdep.analysis.study_roc.roc_with_errors``'s dataset (``auc``, ``auc_std``,
            ``auc_se``, ``tpr``; ``roc_by_time``'s without the errors works too) or its file.
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
        ax.hist(np.log10(np.maximum(fl, LOSS_FLOOR)), bins=60, color="C0")
        ax.axvline(np.log10(thr), color="k", ls="--", lw=0.8)
        _label_floor(ax, fl)
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
    # one legend for all panels, under them, where it hides no curve
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(inds), fontsize=8,
               title="indicator", title_fontsize=8, frameon=False)
    sup = "Predicting a high final loss from early indicators (naive Bayes; bands: +-1 std over CV folds)"
    fig.suptitle(sup + (f"\n{caveat}" if caveat else ""), fontsize=10)
    figs["roc"] = save(fig, *out["roc"])
    return figs
