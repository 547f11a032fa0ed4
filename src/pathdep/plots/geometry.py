"""Figures of the trajectories' geometry (PDF + PNG), read from geometry.nc and theory.nc.

What it draws, per experiment (one colour per run, labelled by its swept values; bands
from the minimum to the maximum perturbed member around their mean; helpers and the one
meaning of "members" in :mod:`pathdep.plots.common`):

* ``aligned``: raw |w_k - w_0| (dashed) and permutation-aligned distance (solid) over
  training, and their ratio (how much of the distance is a relabelling of hidden units);
* ``interpolation``: test and train loss along (1 - l) w_0 + l w_k at the interpolation
  checkpoints, raw (dashed) and aligned (solid), mean over the interpolated members;
* ``barriers``: the linear (Entezari) barrier over training, raw and aligned, train and test;
* ``autocorr``: <w_k(0).w_k(t)>, <w_k(t).w_0(t)> and the same for the test-set outputs
  (cosine-normalised);
* ``hypersphere``: the mean |u_t - u_0|^2 of the weight direction u = w/|w| with the
  Brownian-motion-on-the-sphere theory at the fitted D (dashed), and |w_t| / |w_0|
  (every member, the baseline included: each is its own walk).

And once: ``hypersphere_theory``, the simulated Brownian motion on S^{n-1} (mean cosine and
mean squared displacement, +- 2 standard errors) against the closed forms, both from
``results/hypersphere/theory.nc`` (:func:`pathdep.stages.geometry.hypersphere_theory`).

How it was checked: ``tests/plots/test_geometry.py`` draws every figure from small
synthetic geometry / theory files and checks the files and their content (curves per run,
bands over the perturbed members only, the theory curves); ``tests/test_geometry_workflow.py``
checks the tiny workflow writes every figure.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from pathdep.plots.common import (band, band_text, baseline_band, colors, figure_legend, load, log_axes, members,
                                  min_span, pad_x, plain_ticks, run_label, save, stats, step_axis)

RATIO_TOL = 1e-9  # aligned / raw within this of 1 everywhere: the alignment changed nothing


def plot_geometry(geometry_files: Sequence[str], outputs: dict, experiment: str) -> dict[str, plt.Figure]:
    """Draw the geometry figures of one experiment.

    Args:
        geometry_files: the runs' ``geometry.nc``.
        outputs: ``{"<figure>_pdf": path, "<figure>_png": path}`` for the figures to draw
            (the rule's outputs: the names of :data:`pathdep.config.geometry.FIGURES`).
        experiment: its name (titles).

    Returns:
        ``{figure name: the (closed) figure}``.
    """
    dgs = load(geometry_files)
    cols = colors(len(dgs))
    draw = {"aligned": _fig_aligned, "interpolation": _fig_interpolation, "barriers": _fig_barriers,
            "autocorr": _fig_autocorr, "hypersphere": _fig_hypersphere}
    return {name: draw[name](dgs, cols, experiment, outputs) for name in _asked(outputs)}


def _asked(outputs: dict) -> list[str]:
    return [k[:-len("_pdf")] for k in outputs if k.endswith("_pdf")]


def _out(outputs, name):
    return outputs[f"{name}_pdf"], outputs[f"{name}_png"]


def _fig_aligned(dgs, cols, exp, outputs):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    ratios = []
    for ds, c in zip(dgs, cols):
        x = step_axis(ds)
        raw, al = ds["dist"].values, ds["dist_aligned"].values
        ok = ds["aligned_checkpoint"].values
        baseline_band(axes[0], x, raw, ds, c, None, "--")
        baseline_band(axes[0], x[ok], al[:, ok], ds, c, run_label(ds))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = al[:, ok] / raw[:, ok]
        baseline_band(axes[1], x[ok], r, ds, c, run_label(ds))
        ratios.append(np.ravel(members(ds, "dist_aligned")[:, ok] / members(ds, "dist")[:, ok]))
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
    fig.suptitle(f"{exp}: weight distance before and after permutation alignment (weight matching)\n"
                 f"({band_text(dgs)})", fontsize=10)
    return save(fig, *_out(outputs, "aligned"))


def _fig_interpolation(dgs, cols, exp, outputs):
    n_ck = max(int(ds.sizes["icheckpoint"]) for ds in dgs)
    # + room for the legend outside the axes; one checkpoint (e.g. the end only) must still fit the title
    fig, axes = plt.subplots(2, n_ck, figsize=(max(3.2 * n_ck + 2.0, 8.0), 6), squeeze=False, sharex=True,
                             layout="constrained")
    for ds, c in zip(dgs, cols):
        lam = ds["lam"].values
        for ci in range(int(ds.sizes["icheckpoint"])):
            for si, split in enumerate(("test", "train")):
                ax = axes[si, ci]
                for align, ls in (("raw", "--"), ("aligned", "-")):
                    y = ds["interp_loss"].sel(align=align, split=split).values[:, ci]  # (imember, lam)
                    # above the chord between the end points: independent baselines' loss levels differ
                    # far more than any barrier, so absolute curves would hide the shape in their band
                    y = y - ((1 - lam) * y[:, :1] + lam * y[:, -1:])
                    if np.isfinite(y).any():
                        baseline_band(ax, lam, y, ds, c, run_label(ds) if (align == "aligned" and ci == 0 and si == 0)
                                      else None, ls, rows=ds["imember"].values)
                ax.set_title(f"{split}, step {int(ds['icheckpoint_step'].values[ci])}", fontsize=9)
                ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel(r"$\lambda$ ($w_0 \to w_k$)")
    for ax in axes[:, 0]:
        ax.set_ylabel(r"$L(\lambda)$ - chord $(1-\lambda) L(0) + \lambda L(1)$")
    level = max(float(np.nanmax(np.abs(ds["interp_loss"].values))) for ds in dgs)
    for ax in axes.flat:  # float32 noise of a flat curve (step 0) stays flat: at least 1e-3 of the loss level
        plain_ticks(ax)
        lo, hi = ax.get_ylim()
        if np.isfinite(level) and hi - lo < 1e-3 * level:
            ax.set_ylim(-5e-4 * level, 5e-4 * level)
    figure_legend(fig, axes[0, 0], loc="outside right center")   # not under the two-line title
    fig.suptitle(f"{exp}: loss above the chord, own baseline to a copy (dashed raw, solid aligned)\n"
                 f"({band_text(dgs)})", fontsize=10)
    return save(fig, *_out(outputs, "interpolation"))


def _fig_barriers(dgs, cols, exp, outputs):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
    for ds, c in zip(dgs, cols):
        x = ds["icheckpoint_step"].values.astype(float)
        for ax, split in zip(axes, ("test", "train")):
            for align, ls, mk in (("raw", "--", "o"), ("aligned", "-", "s")):
                y = ds["barrier"].sel(align=align, split=split).values  # (imember, icheckpoint)
                baseline_band(ax, x, y, ds, c, run_label(ds) if align == "aligned" else None, ls, 0.12,
                              rows=ds["imember"].values, marker=mk, ms=3)
    steps = np.concatenate([ds["icheckpoint_step"].values.astype(float) for ds in dgs]) if dgs else np.empty(0)
    for ax, split in zip(axes, ("test", "train")):
        ax.set_xscale("symlog", linthresh=1.0)  # step 0 (the perturbation itself) stays on the axis
        pad_x(ax, steps)  # the markers at step 0 and at the last step are not cut by the axes
        plain_ticks(ax)
        ax.set_xlabel("training step")
        ax.set_title(f"{split} loss barrier", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("linear barrier (Entezari): max over l of L(l) - chord")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{exp}: loss barrier between baseline and members over training (dashed raw, solid aligned)\n"
                 f"({band_text(dgs)})", fontsize=10)
    return save(fig, *_out(outputs, "barriers"))


def _fig_autocorr(dgs, cols, exp, outputs):
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True, layout="constrained")
    spec = [("ac_w_init", r"weights: $\langle w_k(0) \cdot w_k(t)\rangle$"),
            ("ac_w_base", r"weights: $\langle w_k(t) \cdot w_0(t)\rangle$"),
            ("ac_out_init", r"test outputs: $\langle f_k(0) \cdot f_k(t)\rangle$"),
            ("ac_out_base", r"test outputs: $\langle f_k(t) \cdot f_0(t)\rangle$")]
    for ax, (var, title) in zip(axes.flat, spec):
        for ds, c in zip(dgs, cols):
            baseline_band(ax, step_axis(ds), ds[var].values, ds, c, run_label(ds))
        ax.set_xscale("log")
        plain_ticks(ax)  # values near 1: "0.99992", not "1e-5+9.999e-1"
        ax.set_title(title + " (normalised)", fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{exp}: autocorrelations of the trajectories ({band_text(dgs)})", fontsize=9)
    return save(fig, *_out(outputs, "autocorr"))


def _fig_hypersphere(dgs, cols, exp, outputs):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ds, c in zip(dgs, cols):
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


def plot_hypersphere_theory(theory_nc: str, pdf: str, png: str) -> plt.Figure:
    """Simulated Brownian motion on S^{n-1} against the closed forms (one figure).

    Args:
        theory_nc: ``results/hypersphere/theory.nc`` (:func:`pathdep.stages.geometry.hypersphere_theory`).
        pdf, png: output paths.

    Returns:
        The (closed) figure.
    """
    ds = xr.load_dataset(theory_nc, engine="h5netcdf")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    cols = colors(ds.sizes["n"])
    for i, (n, c) in enumerate(zip(ds["n"].values, cols)):
        x = ds["x"].values[i]
        axes[0].errorbar(x, ds["cos"].values[i], yerr=2 * ds["cos_sem"].values[i], fmt="o", ms=3, color=c,
                         label=f"simulated, n = {int(n)}")
        axes[1].errorbar(x, ds["sq"].values[i], yerr=2 * ds["sq_sem"].values[i], fmt="o", ms=3, color=c,
                         label=f"simulated, n = {int(n)}")
        axes[0].plot(ds["x_line"].values[i], ds["cos_line"].values[i], color=c)
        axes[1].plot(ds["x_line"].values[i], ds["sq_line"].values[i], color=c)
    axes[0].set_ylabel(r"$\langle \cos\theta(t) \rangle$ (line: $e^{-D(n-1)t/R^2}$)")
    axes[1].set_ylabel(r"$\langle |x_t - x_0|^2 \rangle$ (line: $2R^2(1 - e^{-D(n-1)t/R^2})$)")
    for ax in axes:
        ax.set_xlabel(r"$D (n-1) t / R^2$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    R, D, walkers = float(ds.attrs["R"]), float(ds.attrs["D"]), int(ds.attrs["walkers"])
    fig.suptitle(f"Brownian motion on the sphere $S^{{n-1}}$ (R = {R:g}, D = {D:g}, {walkers} walkers): "
                 "simulation (+- 2 s.e.) vs theory", fontsize=10)
    return save(fig, pdf, png)
