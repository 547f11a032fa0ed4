"""Pattern-learning figures of a domino experiment (rule ``plot_dominoes``); draws only.

Figures (PDF + PNG each):

* ``<exp>_patterns``: one panel per run, accuracy against step on the evaluation sets
  (both-sided, top-only, bottom-only, top-/bottom-randomized; line = member mean, band =
  min-max over all members incl. the baseline), with the baseline's sigmoid fits of the
  one-sided sets (dashed; the curves ``fit_acc`` the stage evaluated), their half-gain onsets (vertical lines) and the chance level.
* ``<exp>_onsets``: left, the half-gain onset (member-mean curve, error bar = standard
  error over members) of the top and bottom patterns against the swept dataset parameter
  (log scale), with the toy model's predicted onsets (hollow markers, dotted) converted to
  steps by the experiment's one scale factor; right, the final accuracies on the one-sided
  and randomized sets (``patterns_summary.csv``).

Reads ``patterns.nc`` files and ``patterns_summary.csv`` (both written by
:mod:`pathdep.stages.dominoes`); computes nothing.

How it was checked: ``tests/plots/test_dominoes.py`` (files written, one panel per run,
the drawn curves equal the stored accuracies) and by looking at the PNGs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from pathdep.plots.common import band, load, plt, save

SET_STYLE = {"both": ("k", "-", "both sides"), "top_only": ("tab:blue", "-", "top only"),
             "bottom_only": ("tab:orange", "-", "bottom only"),
             "top_randomized": ("tab:purple", ":", "top randomized"),
             "bottom_randomized": ("tab:green", ":", "bottom randomized")}


def _label(ds) -> str:
    sw = json.loads(ds.attrs.get("swept", "{}"))
    if not sw:
        return str(ds.attrs.get("run", ""))
    return ", ".join(f"{k.removeprefix('data.')}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                     for k, v in sw.items())


def _sweep_key(df: pd.DataFrame) -> str | None:
    cols = [c for c in df.columns if c.startswith("swept:")]
    num = [c for c in cols if pd.api.types.is_numeric_dtype(df[c])]
    return num[0] if num else None


def _patterns_panel(ax, ds) -> None:
    """One run: accuracy bands per set, the baseline's fitted sigmoids and half-gain onsets."""
    x = ds["step"].values.astype(float)
    sets = list(ds["set"].values)
    for s, (color, ls, lab) in SET_STYLE.items():
        if s not in sets:
            continue
        i = sets.index(s)
        band(ax, x, ds["acc"].values[i], color, label=lab, ls=ls)
        if s in ("top_only", "bottom_only") and "fit_acc" in ds and np.isfinite(ds["onset"].values[i, 0]):
            ax.plot(ds["fit_step"].values, ds["fit_acc"].values[i], color=color, ls="--", lw=0.9)
        if s in ("top_only", "bottom_only") and "onset_half_mean" in ds and np.isfinite(ds["onset_half_mean"].values[i]):
            ax.axvline(ds["onset_half_mean"].values[i], color=color, lw=0.8, alpha=0.7)
    ax.axhline(1.0 / int(ds.attrs["n_classes"]), color="0.6", lw=0.7, ls="-.")
    ax.set_title(_label(ds), fontsize=9)
    ax.set_xlabel("step")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, x.max() * 1.05)
    ax.set_ylim(0, 1.02)


def _patterns_figure(dss: list, outputs: dict):
    n = len(dss)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, sharey=True)
    for ax, ds in zip(axes.flat, dss):
        _patterns_panel(ax, ds)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.02))
    exp = dss[0].attrs.get("experiment", "")
    fig.suptitle(f"{exp}: pattern-learning curves (dashed: sigmoid fits, vertical: half-gain onsets)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    return save(fig, outputs["patterns_pdf"], outputs["patterns_png"])


def _onsets_figure(df: pd.DataFrame, exp: str, n_classes: int, outputs: dict):
    sk = _sweep_key(df)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for side, color, mk in (("top", "tab:blue", "o"), ("bottom", "tab:orange", "s")):
        d = df[df["pattern"] == side]
        if sk is not None:
            d = d.sort_values(sk)
            xv, xlabel = d[sk].values.astype(float), sk.removeprefix("swept:").removeprefix("data.")
        else:
            xv, xlabel = np.arange(len(d), dtype=float), "run"
        a1.errorbar(xv, d["onset"], yerr=d["onset_se"].fillna(0.0), color=color, marker=mk, capsize=3,
                    label=f"{side} (network)")
        a1.plot(xv, d["toy_onset_steps"], color=color, ls=":", marker=mk, mfc="none", label=f"{side} (toy model)")
        a2.plot(xv, d[f"acc_{side}_only"], color=color, marker=mk, label=f"{side} only")
        a2.plot(xv, d[f"acc_{side}_randomized"], color=color, marker=mk, ls=":", mfc="none",
                label=f"{side} randomized")
    for ax in (a1, a2):
        ax.set_xlabel(xlabel)
    a1.set_yscale("log")
    a1.set_ylabel("onset: step to half the final gain")
    a2.set_ylabel("final accuracy (member mean)")
    a2.axhline(1.0 / n_classes, color="0.6", lw=0.7, ls="-.")
    a2.set_ylim(0, 1.02)
    a1.legend(fontsize=7)
    a2.legend(fontsize=7, ncol=2, loc="lower right")
    scale = float(df["toy_scale"].iloc[0]) if "toy_scale" in df else float("nan")
    fig.suptitle(f"{exp}: onset per pattern (toy: 1 time unit = {scale:.3g} steps) and final accuracies", fontsize=10)
    fig.tight_layout()
    return save(fig, outputs["onsets_pdf"], outputs["onsets_png"])


def plot_dominoes(pattern_files: Sequence[str | Path], summary_csv: str | Path, outputs: dict) -> list:
    """Draw ``<exp>_patterns`` and ``<exp>_onsets``.

    Args:
        pattern_files: ``patterns.nc`` of every run of the experiment.
        summary_csv: ``patterns_summary.csv`` (:func:`pathdep.stages.dominoes.summarize_patterns`).
        outputs: ``{"patterns_pdf", "patterns_png", "onsets_pdf", "onsets_png"}`` paths.

    Returns:
        The two (closed) figures.
    """
    dss = load(pattern_files)
    key = lambda d: [v for v in json.loads(d.attrs.get("swept", "{}")).values()]  # noqa: E731
    try:
        dss = sorted(dss, key=key)
    except TypeError:
        pass
    f1 = _patterns_figure(dss, outputs)
    f2 = _onsets_figure(pd.read_csv(summary_csv), dss[0].attrs.get("experiment", ""),
                        int(dss[0].attrs["n_classes"]), outputs)
    return [f1, f2]
