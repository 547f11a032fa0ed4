"""Figures of an experiment (PDF + PNG), read from the runs' metrics netCDF files.

What it draws, one curve per run of the experiment (labelled by its swept values), each
member quantity with :func:`pathdep.plots.common.baseline_band`: the copies of each replicate
baseline averaged, the mean over baselines and the 95 % t interval across them (one baseline:
the mean over its copies and their min-max band; the titles say which):

* ``divergence``: weight distance to the baseline |w_k - w_0| over training steps
  (log-log, where the seed sees a short exponential phase followed by a long linear one),
  next to the relative distance |w_k - w_0| / |w_0(0)|;
* ``loss``: train and test loss of the baseline (line) and the members (band);
* ``cf``: the "cf." metrics that take the baseline's predictions as ground truth
  (disagreement with the baseline and cross entropy against its labels) on the test subset.

Diverged members (masked checkpoints are NaN) drop out of the means and are counted in the
legend. How it was checked: ``tests/plots/test_experiment.py`` draws synthetic metrics files
(one with diverged members) and checks the files, the number of curves, that the band
spans the members and not the baseline, and the legend's diverged count.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from pathdep.plots.common import (band_text, baseline_band, baselines_mean, colors, figure_legend, load, log_axes,
                                  n_diverged, not_defined, plain_ticks, run_label, save, step_axis)

FIGURES = ("divergence", "loss", "cf")


def _divergence_figure(dss: list, cols: list, outputs: dict, experiment: str) -> plt.Figure:
    """Relative distance, growth over the initial distance, per-layer and per-weight distances."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), layout="constrained")
    axes = axes.ravel()
    styles = ["-", "--", ":", "-."]
    for i_run, (ds, col) in enumerate(zip(dss, cols)):
        x = step_axis(ds)
        nd = n_diverged(ds)
        lab = run_label(ds) + (f" ({nd} diverged)" if nd else "")
        baseline_band(axes[0], x, ds["dist_rel"].values, ds, col, lab)
        # growth beyond the perturbation itself: every eps on one scale (1 = no growth)
        baseline_band(axes[1], x, ds["dist_over_init"].values, ds, col, None)
        if "layer_norm0" in ds.coords:
            # per layer, relative to the layer's own initial norm (line style = layer)
            for li, layer in enumerate(ds["layer"].values):
                y = ds["dist_layer"].values[ds["role"].values.astype(str) != "baseline", :, li]
                y = y / float(ds["layer_norm0"].values[li])
                axes[2].plot(x, np.nanmean(y, 0), color=col, ls=styles[li % len(styles)],
                             label=str(layer) if i_run == 0 else None)
        if "dist_rms" in ds:
            baseline_band(axes[3], x, ds["dist_rms"].values, ds, col, None)
    labels = [r"$|w_k - w_0| / |w_0(0)|$", r"$|w_k - w_0|(t) \,/\, |w_k - w_0|(0)$",
              r"per layer: $|w_k^l - w_0^l| / |w_0^l(0)|$ (mean over members)",
              r"per weight: $|w_k - w_0| / \sqrt{P}$ (width-normalised)"]
    for ax, yl in zip(axes, labels):
        ys = [np.asarray(line.get_ydata(), dtype=float) for line in ax.lines]
        ax.set_xlabel("training step")
        ax.set_ylabel(yl, fontsize=9)
        if any((y[np.isfinite(y)] > 0).any() for y in ys):
            log_axes(ax)
        else:  # e.g. growth over the initial distance of a schedule perturbation (d(0) = 0)
            not_defined(ax, f"{yl}:\nnot defined for these runs\n(no initial distance, or no per-layer data)")
    # legends outside the axes: the runs (colour) and the layers (line style), never over the curves
    figure_legend(fig, axes[0], title="run", title_fontsize=7)
    if axes[2].get_legend_handles_labels()[0]:
        figure_legend(fig, axes[2], loc="outside right lower", title="layer", title_fontsize=7)
    fig.suptitle(f"{experiment}: weight distance to the own baseline\n({band_text(dss)})", fontsize=10)
    return save(fig, outputs["divergence_pdf"], outputs["divergence_png"])


def _loss_figure(dss: list, cols: list, outputs: dict, experiment: str) -> plt.Figure:
    """Train and test loss: the baseline (line) and the members (band)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
    for ds, col in zip(dss, cols):
        x = step_axis(ds)
        for ax, split in zip(axes, ["train", "test"]):
            ax.plot(x, baselines_mean(ds, f"{split}_loss"), color=col, label=run_label(ds))
            baseline_band(ax, x, ds[f"{split}_loss"].values, ds, col, None, ls=":", alpha=0.2)
    for ax, split in zip(axes, ["train", "test"]):
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.set_title(f"{split} loss (solid: baselines; dotted + band: copies)", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    plain_ticks(*axes)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{experiment}: loss curves (copies: {band_text(dss)})", fontsize=9)
    return save(fig, outputs["loss_pdf"], outputs["loss_png"])


def _cf_figure(dss: list, cols: list, outputs: dict, experiment: str) -> plt.Figure:
    """Disagreement with the baseline and the cf. loss on the test subset."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ds, col in zip(dss, cols):
        x = step_axis(ds)
        cf_acc = ds["test_cf_acc"].values
        if np.isfinite(cf_acc).any():
            baseline_band(axes[0], x, 1.0 - cf_acc, ds, col, run_label(ds))
        baseline_band(axes[1], x, ds["test_cf_loss"].values, ds, col, run_label(ds))
    axes[0].set_ylabel("disagreement with the baseline (1 - cf. accuracy)")
    axes[1].set_ylabel("cf. loss (baseline's predictions as labels)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    plain_ticks(*axes)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{experiment}: function-space divergence on the test subset\n({band_text(dss)})", fontsize=10)
    return save(fig, outputs["cf_pdf"], outputs["cf_png"])


def plot_experiment(metric_files: Sequence[str], outputs: dict, experiment: str) -> dict[str, plt.Figure]:
    """Draw the divergence, loss and cf. figures of one experiment.

    Args:
        metric_files: the runs' ``metrics.nc`` (variables ``dist``, ``dist_rel``,
            ``{train,test}_loss``, ``test_cf_acc``, ``test_cf_loss`` of dims ``member x
            checkpoint``; coordinates ``step``, ``role``, ``diverged_step``).
        outputs: ``{"<figure>_pdf": path, "<figure>_png": path}`` for every name in :data:`FIGURES`.
        experiment: its name (figure titles).

    Returns:
        ``{figure name: the (closed) figure}``.
    """
    dss = load(metric_files)
    cols = colors(len(dss))
    return {"divergence": _divergence_figure(dss, cols, outputs, experiment),
            "loss": _loss_figure(dss, cols, outputs, experiment),
            "cf": _cf_figure(dss, cols, outputs, experiment)}
