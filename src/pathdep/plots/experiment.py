"""Figures of an experiment (PDF + PNG), read from the runs' metrics netCDF files.

What it draws, one curve per run of the experiment (labelled by its swept values), the
mean over perturbed members with a band from the minimum to the maximum member:

* ``divergence``: weight distance to the baseline |w_k - w_0| over training steps
  (log-log, where the seed sees a short exponential phase followed by a long linear one),
  next to the relative distance |w_k - w_0| / |w_0(0)|;
* ``loss``: train and test loss of the baseline (solid) and members (band);
* ``cf``: the "cf." metrics that take the baseline's predictions as ground truth
  (agreement with the baseline and cross entropy against its labels) on the test subset.

Diverged members (masked checkpoints are NaN) are left out of means and marked in the
legend. How it was checked: ``tests/test_plots.py`` renders figures from synthetic metrics
files and checks the files exist and are non-empty PDFs/PNGs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402


def run_label(ds: xr.Dataset) -> str:
    swept = json.loads(ds.attrs.get("swept", "{}"))
    if not swept:
        return ds.attrs.get("run", "")
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in swept.items())


def _band(ax, x, y, label, color, logy=False):
    """Mean over members (rows of y) with min-max band; NaN-aware."""
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(y, axis=0)
            lo, hi = np.nanmin(y, axis=0), np.nanmax(y, axis=0)
    ax.plot(x, mean, color=color, label=label)
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)


def _xaxis(ds):
    step = ds["step"].values.astype(float)
    return np.where(step > 0, step, np.nan)


def _members(ds, var):
    y = ds[var].values
    return y[1:] if y.shape[0] > 1 else y


def _n_diverged(ds) -> int:
    return int((ds["diverged_step"].values >= 0).sum())


def _save(fig, pdf: str, png: str) -> None:
    Path(pdf).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(pdf, bbox_inches="tight")
    fig.savefig(png, bbox_inches="tight", dpi=120)
    plt.close(fig)


def plot_experiment(metric_files: Sequence[str], outputs: dict, experiment: str) -> None:
    """Draw the divergence, loss and cf. figures of one experiment.

    Args:
        metric_files: the runs' ``metrics.nc``.
        outputs: ``{"divergence_pdf": ..., "divergence_png": ..., "loss_pdf": ...,
            "loss_png": ..., "cf_pdf": ..., "cf_png": ...}``.
        experiment: its name (figure titles).
    """
    dss = [xr.load_dataset(f, engine="h5netcdf") for f in metric_files]
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(dss), 1)))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ds, col in zip(dss, colors):
        x = _xaxis(ds)
        lab = run_label(ds) + (f" ({_n_diverged(ds)} diverged)" if _n_diverged(ds) else "")
        _band(axes[0], x, _members(ds, "dist"), lab, col)
        _band(axes[1], x, _members(ds, "dist_rel"), lab, col)
    for ax, yl in zip(axes, [r"$|w_k - w_0|$", r"$|w_k - w_0| / |w_0(0)|$"]):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{experiment}: weight distance to the baseline (mean and min-max over members)")
    _save(fig, outputs["divergence_pdf"], outputs["divergence_png"])

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ds, col in zip(dss, colors):
        x = _xaxis(ds)
        for ax, split in zip(axes, ["train", "test"]):
            ax.plot(x, ds[f"{split}_loss"].values[0], color=col, label=run_label(ds))
            _band(ax, x, _members(ds, f"{split}_loss"), None, col)
    for ax, split in zip(axes, ["train", "test"]):
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.set_title(f"{split} loss (line: baseline; band: members)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{experiment}: loss curves")
    _save(fig, outputs["loss_pdf"], outputs["loss_png"])

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ds, col in zip(dss, colors):
        x = _xaxis(ds)
        cf_acc = _members(ds, "test_cf_acc")
        if np.isfinite(cf_acc).any():
            _band(axes[0], x, 1.0 - cf_acc, run_label(ds), col)
        _band(axes[1], x, _members(ds, "test_cf_loss"), run_label(ds), col)
    axes[0].set_ylabel("disagreement with the baseline (1 - cf. accuracy)")
    axes[1].set_ylabel("cf. loss (baseline's predictions as labels)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{experiment}: function-space divergence on the test subset")
    _save(fig, outputs["cf_pdf"], outputs["cf_png"])
