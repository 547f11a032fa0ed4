"""Figures of the Lyapunov analyses (PDF + PNG), read from the lyapunov stage's files.

* ``lyapunov_spectrum``: one column per experiment: the running Benettin estimate of
  ``lambda_1`` of every baseline of every run against the window length (log x), with the
  band ``|lambda| T < 1`` where nothing is resolved, and below it the k exponents in
  Benettin's column order (mean and t interval across baselines; hollow: unresolved; the
  legend names runs whose columns are not ordered); a panel whose runs differ by decades
  gets a symlog y axis;
* ``lyapunov_link``: the epsilon sweep of the tangent experiment (measured rate per
  baseline and across baselines, lambda_1's interval as a band, the verdict and growth factor
  of each point from the table), lambda_1 against the measured rate per (epsilon, baseline)
  with y = x, and the kink panel of ``lyapunov.experiments`` (measured rate, lambda_1 and
  its bound per baseline, verdict) (the link tables, CSV);
* ``lyapunov_study_*``: the 2-2-1 study, one panel per (activation, init range): final-loss
  histograms with the failure threshold, leading-FTLE and minimum-CLV-angle distributions of
  failed vs successful runs at the earliest indicator time, and the cross-validated AUC of
  at most four indicators against the indicator time with bands of +- the standard deviation
  over the CV folds, one legend under the panels (``study.nc``, ``roc.nc``); final losses are
  drawn at max(loss, 1e-30), and that floor is labelled.

How it was checked: ``tests/plots/test_lyapunov.py`` draws them from small synthetic files
(spectra, link tables, study and ROC datasets) and checks their content (one curve per
baseline ending at the planted exponent, the unresolved band 1/T, hollow unresolved
exponents, the interval bars, the y = x line spanning the points, the lambda band of the
sweep panel, the verdicts drawn from the table, one panel per combination with the planted
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


def _linthresh(values, q: float = 0.0) -> float:
    """A symlog linear threshold: the decade of the ``q`` quantile of the non-zero |values|
    (0: the smallest)."""
    v = np.abs(np.asarray(values, dtype=float).ravel())
    v = v[np.isfinite(v) & (v > 0)]
    return float(10.0 ** np.floor(np.log10(np.quantile(v, q)))) if v.size else 1e-6


def _value_scale(ax, values, dominated: bool, q: float = 0.0) -> str:
    """Symlog y (linear within +- the decade of the ``q`` quantile of |value|, 0: the
    smallest) when ``dominated`` (series at very different scales), else linear; returns
    the scale."""
    if dominated:
        ax.set_yscale("symlog", linthresh=_linthresh(values, q), linscale=0.5)
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


def _baselines(ds: xr.Dataset, name: str) -> np.ndarray:
    """``name`` with a leading baseline axis (files of one baseline without it get one)."""
    v = ds[name].values
    return v if "baseline" in ds[name].dims else v[None]


def _running_panel(ax, group: list, cols) -> list:
    """lambda_1's running estimate against the window length, every baseline, with the
    unresolved cone |lambda| T < 1; returns the legend handles."""
    handles, tails, t_max = [], [], 1
    for i, (ds, c) in enumerate(zip(group, cols)):
        T = ds["step"].values - (int(ds["step"].values[0]) - 1)
        run = _baselines(ds, "running")[..., 0]
        t_max = max(t_max, int(T[-1]))
        for r, y in enumerate(run):
            (ln,) = ax.plot(T, y, color=c, lw=1.0, alpha=0.9, marker=MARKERS[i % len(MARKERS)], ms=4,
                            markevery=(r * 3 % max(1, len(T) // 6), max(1, len(T) // 6)),
                            label=run_label(ds) if r == 0 else "_")
            if r == 0:
                handles.append(ln)
            tails.append(y[T >= T[-1] / 10])
    grid = np.geomspace(1, t_max, 200)
    ax.fill_between(grid, -1 / grid, 1 / grid, color="0.5", alpha=0.18, lw=0,
                    label=r"$|\lambda| T < 1$: unresolved")
    ax.set_xscale("log")
    tail = np.concatenate(tails)
    tail = np.r_[tail[np.isfinite(tail)], 1.0 / t_max, -1.0 / t_max]
    # a running estimate that crosses 0 passes through tiny values: the threshold from the
    # 10 % quantile keeps the axis from spending decades on them
    scale = _value_scale(ax, tail, _spread_ratio(tail) > 30, q=0.1)
    _pad_limits(ax, tail.min(), tail.max(), scale)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("window length T (steps accumulated after the transient)", fontsize=8)
    handles.append(ax.collections[-1])
    return handles


def _exponents_panel(ax, group: list, cols) -> None:
    """Each run's k exponents in Benettin's column order: mean across baselines with its t
    interval (one baseline: its own error); hollow where some baseline leaves it unresolved."""
    finals = []
    for i, (ds, c) in enumerate(zip(group, cols)):
        lam = _baselines(ds, "exponents")
        k = np.arange(1, lam.shape[1] + 1) + 0.08 * (i - (len(group) - 1) / 2)
        mean = ds["exponents_mean"].values if "exponents_mean" in ds else lam.mean(0)
        if lam.shape[0] > 1 and "exponents_hi" in ds:
            err = ds["exponents_hi"].values - mean
        else:
            err = _baselines(ds, "exponent_err")[0] if "exponent_err" in ds else np.zeros(lam.shape[1])
        res = _baselines(ds, "resolved").all(0) if "resolved" in ds else np.ones(lam.shape[1], bool)
        ordered = bool(_baselines(ds, "ordered").all()) if "ordered" in ds else True
        label = run_label(ds) + ("" if ordered else " (columns not ordered)")
        ax.errorbar(k, mean, yerr=err, fmt="-", color=c, lw=1, capsize=2, label=label)
        ax.scatter(k, mean, marker=MARKERS[i % len(MARKERS)], s=36, edgecolors=[c], zorder=3,
                   facecolors=[c if r else "white" for r in res])
        finals.append(np.r_[mean, mean + err, mean - err])
    allf = np.concatenate(finals)
    _value_scale(ax, allf, _spread_ratio(allf, np.min) > 100)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("exponent (Benettin column)")
    ax.set_xticks(np.asarray(group[0]["exponent"].values))


def plot_spectrum(paths: Sequence[str], pdf: str, png: str) -> plt.Figure:
    """Running leading exponent against the window length, and the ordered spectrum.

    One column per experiment: (top) lambda_1's running estimate of every baseline of every
    run against the window length T (log x), with the band ``|lambda| < 1/T`` where nothing is
    resolved; (bottom) the k exponents in Benettin's column order, mean across baselines with
    the t interval, hollow where a baseline leaves them unresolved, and the legend naming runs
    whose columns are not ordered within their errors. A symlog y axis where the runs of a
    column differ by decades.

    Args:
        paths: the runs' ``lyapunov.nc`` (``running ([baseline,] step, exponent)``,
            ``exponents ([baseline,] exponent)``, optionally ``exponents_mean/_hi``,
            ``exponent_err``, ``resolved``, ``ordered``; attributes ``experiment``, ``run``,
            ``swept``).
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
    fig, axes = plt.subplots(2, ncol, figsize=(max(5.2 * ncol, 6.5), 8.4), squeeze=False, layout="constrained")
    for j, (exp, group) in enumerate(groups.items()):
        cols = colors(len(group), "tab10")
        handles = _running_panel(axes[0, j], group, cols)
        axes[0, j].set_title(f"{exp}: " + r"$\lambda_1$ against the window length", fontsize=10)
        _exponents_panel(axes[1, j], group, cols)
        axes[1, j].set_title(f"{exp}: the k leading exponents", fontsize=10)
        axes[1, j].legend(fontsize=7, ncol=2 if len(group) > 3 else 1, loc="upper center",
                          bbox_to_anchor=(0.5, -0.16), frameon=False)
        axes[0, j].legend(handles=handles[-1:], fontsize=7, loc="upper right")
    axes[0, 0].set_ylabel(r"running estimate of $\lambda_1$ (per step)")
    axes[1, 0].set_ylabel(r"$\lambda_i$ (per step)")
    fig.suptitle("Benettin spectra of the baselines' training maps (state: weights + optimiser buffers)\n"
                 "one line per baseline; bars: 95 % t interval across baselines (one baseline: its error); "
                 "hollow: unresolved", fontsize=10)
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
        out.append(", ".join(f"{k.split('.')[-1]}={v:g}" if isinstance(v, (int, float)) else f"{k.split('.')[-1]}={v}"
                             for k, v in sw.items()) or str(table["run"].iloc[i]))
    return np.array(out, dtype=object)


def _interval(table: pd.DataFrame, name: str) -> np.ndarray:
    """``(2, n)`` lower and upper error bars of ``name`` (0 where there is no interval)."""
    m = table[name].values.astype(float)
    lo = np.nan_to_num(m - table[f"{name}_lo"].values.astype(float))
    hi = np.nan_to_num(table[f"{name}_hi"].values.astype(float) - m)
    return np.vstack([lo, hi])


def _verdict_text(row) -> str:
    return f"{row['verdict']}\nmin growth x{float(row['growth_min']):.3g}"


def _sweep_panel(ax, t: pd.DataFrame, per: pd.DataFrame) -> None:
    """The epsilon sweep: measured rate per baseline and across baselines, lambda_1's band."""
    t = t.sort_values("epsilon")
    ref = t.iloc[0]
    ax.axhspan(ref["lambda_1_lo"] if np.isfinite(ref["lambda_1_lo"]) else ref["lambda_1"],
               ref["lambda_1_hi"] if np.isfinite(ref["lambda_1_hi"]) else ref["lambda_1"],
               color="C1", alpha=0.25, lw=0, label=r"$\lambda_1$: 95 % interval across baselines")
    ax.axhline(ref["lambda_1"], color="C1", lw=1)
    for _, row in t.iterrows():
        pb = per[(per["run"] == row["run"]) & (per["experiment"] == row["experiment"])]
        ax.scatter(np.full(len(pb), row["epsilon"]), pb["measured_rate"], s=12, color="C0", alpha=0.6)
        ax.annotate(_verdict_text(row), (row["epsilon"], row["measured_rate"]), xytext=(6, -14),
                    textcoords="offset points", fontsize=6.5)
    ax.errorbar(t["epsilon"], t["measured_rate"], yerr=_interval(t, "measured_rate"), fmt="o-", color="C0",
                capsize=3, label="measured rate (dots: baselines)")
    ax.set_xscale("log")
    ax.set_xlabel(r"relative perturbation size $\epsilon = |\delta| / |w_0|$")
    ax.set_ylabel(r"growth rate over $[a, b]$ (per step)")
    ax.set_title(f"{ref['experiment']}: the epsilon sweep (window {int(ref['rate_start'])}-{int(ref['rate_stop'])})",
                 fontsize=10)
    ax.legend(fontsize=7, loc="lower left")


def _per_baseline_panel(ax, t: pd.DataFrame, per: pd.DataFrame) -> None:
    """lambda_1 against the measured rate, one point per (epsilon, baseline), with y = x."""
    t = t.sort_values("epsilon")
    cols = colors(len(t), "viridis")
    vals = []
    for (_, row), c in zip(t.iterrows(), cols):
        pb = per[(per["run"] == row["run"]) & (per["experiment"] == row["experiment"])]
        ax.scatter(pb["lambda_1"], pb["measured_rate"], color=c, s=30, edgecolors="k", linewidths=0.4,
                   label=f"epsilon={row['epsilon']:g}: {row['verdict']}")
        vals.append(np.r_[pb["lambda_1"], pb["measured_rate"]])
    v = np.concatenate(vals) if vals else np.array([])
    v = v[np.isfinite(v)]
    if v.size:
        lo, hi = v.min(), v.max()
        pad = 0.1 * (hi - lo + 1e-12)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8, label="y = x")
    ax.set_xlabel(r"Benettin $\lambda_1$ over $[a, b]$ (per step)")
    ax.set_ylabel("measured growth rate (per step)")
    ax.set_title("each baseline: tangent map against the perturbation", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")


def _kink_panel(ax, t: pd.DataFrame, per: pd.DataFrame) -> None:
    """Runs of ``lyapunov.experiments``: the measured rate against lambda_1 and its bound."""
    names = _point_names(t)
    x = np.arange(len(t))
    for i, (_, row) in enumerate(t.iterrows()):
        pb = per[(per["run"] == row["run"]) & (per["experiment"] == row["experiment"])]
        b = float(row["lambda_1_bound"])
        if np.isfinite(b) and not bool(row["lambda_1_resolved"]):
            ax.bar(i, 2 * b, bottom=-b, width=0.5, color="0.6", alpha=0.35, lw=0,
                   label=r"$|\lambda_1| <$ bound (unresolved)" if i == 0 else "_")
        ax.scatter(np.full(len(pb), i - 0.12), pb["lambda_1"], marker="x", color="C1", s=22,
                   label=r"$\lambda_1$ (baselines)" if i == 0 else "_")
        ax.scatter(np.full(len(pb), i + 0.12), pb["measured_rate"], color="C0", s=12, alpha=0.6,
                   label="measured rate (baselines)" if i == 0 else "_")
        ax.annotate(row["verdict"], (i, 0), xytext=(0, -20), textcoords="offset points", ha="center", fontsize=6.5)
    ax.errorbar(x + 0.12, t["measured_rate"], yerr=_interval(t, "measured_rate"), fmt="o", color="C0", capsize=3)
    v = np.r_[per["measured_rate"], per["lambda_1"], t["lambda_1_bound"]].astype(float)
    _value_scale(ax, v, _spread_ratio(v, np.min) > 100)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(x, [f"{e}\n{n}" for e, n in zip(t["experiment"], names)], fontsize=7)
    ax.set_ylabel("rate over the window (per step)")
    ax.set_title(r"kinks: the perturbation against $\lambda_1$ of the tangent map", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)


def plot_link(table: pd.DataFrame | str | Path, baselines: pd.DataFrame | str | Path, pdf: str,
              png: str) -> plt.Figure:
    """Benettin lambda_1 against the measured divergence: the resolved link and the kinks.

    Panels (each only when its rows exist): the epsilon sweep of ``lyapunov.tangent_experiment``
    (measured rate per baseline and its t interval across baselines against epsilon, with
    lambda_1's interval as a band; each point names its verdict and smallest growth factor);
    lambda_1 against the measured rate per (epsilon, baseline) with y = x; the runs of
    ``lyapunov.experiments`` (e.g. ReLU nets, where pre-activations that change sign kick the
    perturbation past the tangent map): measured rate and lambda_1 per baseline, the bound
    of an unresolved lambda_1, the verdict.

    Args:
        table, baselines: the link tables (:func:`pathdep.stages.lyapunov.link_tables`) or
            their CSVs.
        pdf, png: output paths.

    Returns:
        The (closed) figure.
    """
    table = table if isinstance(table, pd.DataFrame) else pd.read_csv(table)
    per = baselines if isinstance(baselines, pd.DataFrame) else pd.read_csv(baselines)
    tangent = table["tangent"].astype(bool).values
    panels = (["sweep", "per"] if tangent.any() else []) + (["kink"] if (~tangent).any() else [])
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.6 * max(len(panels), 1), 5.4), squeeze=False,
                             layout="constrained")
    draw = {"sweep": lambda ax: _sweep_panel(ax, table[tangent], per),
            "per": lambda ax: _per_baseline_panel(ax, table[tangent], per),
            "kink": lambda ax: _kink_panel(ax, table[~tangent], per)}
    for ax, name in zip(axes[0], panels):
        draw[name](ax)
    fig.suptitle(r"Leading Lyapunov exponent $\lambda_1$ against the measured divergence of perturbed copies "
                 "(same window, intervals across baselines)", fontsize=10)
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
