"""Helpers shared by every figure module (layer ``plots``): save, bands, members, labels, axes.

One implementation each, with one meaning:

* :func:`save` writes a figure as PDF and PNG, each atomically (``pathdep.io.atomic``:
  written to ``<path>.partial`` and renamed), and closes it;
* :func:`members` is the **perturbed members** of an ensemble: the rows of a
  ``(member, ...)`` variable whose ``role`` is not ``"baseline"`` (the baseline, member 0
  in every file the workflow writes, is the reference the others are measured against);
  :func:`baseline` is the baseline's row;
* :func:`band` draws the NaN-aware mean over rows with a band from their minimum to their
  maximum (diverged members' masked checkpoints are NaN and drop out of the statistics);
  :func:`baseline_band` draws a member quantity the way a referee reads it: the copies of each
  replicate baseline averaged first, the line the mean over baselines and the band the 95 %
  t interval across them (:mod:`pathdep.analysis.replicates`); a run with one baseline falls
  back to :func:`band` over its copies (min-max: no interval from one baseline);
* :func:`run_label` names a run by its swept values; :func:`colors`, :func:`log_axes`,
  :func:`step_axis` keep the axes alike across figures;
* layout: :func:`figure_legend` (one legend outside every axes), :func:`plain_ticks`
  (no offset notation such as "1e-7+2.799" on linear axes), :func:`min_span` (flat curves
  look flat), :func:`sparse_log_ticks` (log axes of few decades: no colliding minor labels),
  :func:`not_defined` (a panel with nothing to show: its text, no axes), :func:`pad_x`
  (markers at the ends of the data are not cut by the axes).

How it was checked: ``tests/plots/test_common.py`` (the band's mean/min/max against NumPy
with NaNs, the baseline excluded from :func:`members` wherever it sits, PDF/PNG headers and
no ``.partial`` left behind, labels of swept and unswept runs, the layout helpers).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from pathdep.analysis.replicates import interval, labels, per_baseline  # noqa: E402
from pathdep.io.atomic import atomic_write  # noqa: E402

BASELINE = "baseline"
PNG_DPI = 120


def load(paths: Sequence[str | Path]) -> list[xr.Dataset]:
    """Read netCDF files (h5netcdf engine, as the workflow writes them) into memory."""
    return [xr.load_dataset(p, engine="h5netcdf") for p in paths]


def save(fig: plt.Figure, pdf: str | Path, png: str | Path, dpi: int = PNG_DPI) -> plt.Figure:
    """Write ``fig`` to ``pdf`` and ``png`` (each atomically) and close it.

    Args:
        fig: the figure.
        pdf, png: output paths; their folders are created.
        dpi: PNG resolution.

    Returns:
        The (closed) figure, still inspectable (axes, lines, legend), for tests.
    """
    for path, fmt, kw in ((pdf, "pdf", {}), (png, "png", {"dpi": dpi})):
        with atomic_write(path) as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", **kw)
    plt.close(fig)
    return fig


def roles(ds: xr.Dataset) -> np.ndarray:
    """The ``role`` of each member, shape ``(member,)``, as strings."""
    if "role" not in ds.variables:
        raise KeyError(f"{ds.attrs.get('run', 'dataset')}: no 'role' (member roles) in the file")
    return ds["role"].values.astype(str)


def members(ds: xr.Dataset, var: str) -> np.ndarray:
    """The perturbed members' rows of ``ds[var]``: shape ``(n_perturbed, ...)`` (role != baseline)."""
    return ds[var].values[roles(ds) != BASELINE]


def baseline(ds: xr.Dataset, var: str) -> np.ndarray:
    """The baseline's row of ``ds[var]``: shape ``(...)`` (the first member whose role is baseline)."""
    idx = np.flatnonzero(roles(ds) == BASELINE)
    if len(idx) == 0:
        raise KeyError(f"{ds.attrs.get('run', 'dataset')}: no member with role 'baseline'")
    return ds[var].values[idx[0]]


def n_diverged(ds: xr.Dataset) -> int:
    """How many members diverged (``diverged_step >= 0``; -1 means never)."""
    return int((ds["diverged_step"].values >= 0).sum()) if "diverged_step" in ds.variables else 0


def stats(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NaN-aware mean, minimum and maximum over rows of ``y`` (shape ``(n, T)`` or ``(T,)``).

    Columns with no finite value give NaN (no warning).
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if y.shape[0] == 0:
            nan = np.full(y.shape[1:], np.nan)
            return nan, nan.copy(), nan.copy()
        return np.nanmean(y, 0), np.nanmin(y, 0), np.nanmax(y, 0)


def band(ax: plt.Axes, x: np.ndarray, y: np.ndarray, color, label: str | None = None, ls: str = "-",
         alpha: float = 0.15, **line_kw):
    """Draw the mean over rows of ``y`` and a min-max band around it; NaN-aware.

    Args:
        ax: the axes.
        x: shape ``(T,)``.
        y: shape ``(n, T)`` (one row per member) or ``(T,)``.
        color, label, ls: of the mean line.
        alpha: of the band (drawn only for more than one row).

    Returns:
        ``(line, band)``: the mean's ``Line2D`` and the ``PolyCollection`` (None for one row).
    """
    y2 = np.atleast_2d(np.asarray(y, dtype=float))
    m, lo, hi = stats(y2)
    (line,) = ax.plot(x, m, color=color, ls=ls, label=label, **line_kw)
    fill = ax.fill_between(x, lo, hi, color=color, alpha=alpha, linewidth=0) if y2.shape[0] > 1 else None
    return line, fill


def n_baselines(ds: xr.Dataset) -> int:
    """Number of replicate baselines of a run's file (1 for files without a ``baseline`` coordinate)."""
    return int(np.max(labels(ds)[0])) + 1 if "role" in ds.variables else 1


def baseline_band(ax: plt.Axes, x: np.ndarray, values: np.ndarray, ds: xr.Dataset, color, label: str | None = None,
                  ls: str = "-", alpha: float = 0.15, rows: np.ndarray | None = None, **line_kw):
    """Draw a member quantity across replicate baselines.

    Args:
        ax, x: the axes and ``(T,)`` abscissa.
        values: ``(K, T)``, one row per network of ``ds`` (baselines and copies).
        ds: the run's dataset (its ``role``/``baseline``/``copy`` coordinates).
        color, label, ls, alpha, line_kw: as in :func:`band`.
        rows: the member indices of ``values``' rows when they are a subset (e.g. the
            interpolated members, ``imember``); default every member.

    Returns:
        ``(line, band)``. With R >= 2 baselines: line = mean over baselines of each baseline's
        copy mean, band = the 95 % Student-t interval across the R baselines. With one baseline:
        :func:`band` over the copies (min to max).
    """
    bl, cp = labels(ds)
    if rows is not None:
        bl, cp = bl[np.asarray(rows, dtype=int)], cp[np.asarray(rows, dtype=int)]
    if bl.max() < 1:
        return band(ax, x, np.asarray(values)[cp > 0], color, label, ls, alpha, **line_kw)
    m, lo, hi = interval(per_baseline(values, bl, cp))
    (line,) = ax.plot(x, m, color=color, ls=ls, label=label, **line_kw)
    return line, ax.fill_between(x, lo, hi, color=color, alpha=alpha, linewidth=0)


def band_text(dss) -> str:
    """What :func:`baseline_band` drew for these runs' files, for titles."""
    rs = sorted({n_baselines(ds) for ds in (dss if isinstance(dss, (list, tuple)) else [dss])})
    if rs and rs[0] >= 2:
        n = f"{rs[0]}" if len(rs) == 1 else f"{rs[0]}-{rs[-1]}"
        return f"mean and 95 % t interval across {n} independent baselines (copies averaged per baseline)"
    return "mean and min-max over the perturbed copies of one baseline (no interval across baselines)"


def baselines_mean(ds: xr.Dataset, var: str) -> np.ndarray:
    """Mean over the replicate baselines' own rows of ``ds[var]`` (the baseline's row for one baseline)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(ds[var].values[roles(ds) == BASELINE], axis=0)


def run_label(ds: xr.Dataset, experiment: bool = False) -> str:
    """A run's label: its swept values (``"epsilon=0.01, lr=0.1"``), else its name.

    Args:
        ds: a dataset with attributes ``swept`` (JSON ``{"dotted.key": value}``), ``run``
            and, for ``experiment=True``, ``experiment``.
        experiment: prefix ``"<experiment>: "``.
    """
    swept = json.loads(ds.attrs.get("swept", "{}") or "{}")
    s = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in swept.items()) or str(ds.attrs.get("run", ""))
    return f"{ds.attrs.get('experiment', '')}: {s}" if experiment else s


def colors(n: int, cmap: str = "viridis") -> np.ndarray:
    """``n`` distinct colours (RGBA rows); viridis stops at 0.9 so the last one stays visible."""
    if cmap == "tab10":
        return plt.cm.tab10(np.arange(max(n, 1)) % 10)
    return plt.get_cmap(cmap)(np.linspace(0, 0.9, max(n, 1)))


def log_axes(ax: plt.Axes, x: bool = True, y: bool = True) -> None:
    """Log scale on the chosen axes and a light grid (major and minor ticks)."""
    if x:
        ax.set_xscale("log")
    if y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")


def step_axis(ds: xr.Dataset) -> np.ndarray:
    """Checkpoint steps as floats, shape ``(checkpoint,)``, with step 0 as NaN (for log x axes)."""
    s = ds["step"].values.astype(float)
    return np.where(s > 0, s, np.nan)


def figure_legend(fig: plt.Figure, ax: plt.Axes | None = None, loc: str = "outside right upper",
                  fontsize: float = 7, **kw):
    """One legend for the whole figure, outside every axes (constrained layout makes room).

    Args:
        fig: the figure (``layout="constrained"`` for the ``"outside ..."`` locations).
        ax: take the handles from this axes; None: from every axes, each label once.
        loc: a ``Figure.legend`` location.
        fontsize, kw: passed to ``Figure.legend``.

    Returns:
        The ``Legend``, or None when there is nothing labelled.
    """
    handles, labels = {}, []
    for a in [ax] if ax is not None else fig.axes:
        for h, lab in zip(*a.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    if not labels:
        return None
    return fig.legend([handles[lab] for lab in labels], labels, loc=loc, fontsize=fontsize, **kw)


def plain_ticks(*axes: plt.Axes, axis: str = "y") -> None:
    """No offset notation (``"1e-12+1"``) on the linear ``axis`` of each axes; log axes are left alone."""
    for ax in axes:
        for a in ([ax.xaxis, ax.yaxis] if axis == "both" else [getattr(ax, f"{axis}axis")]):
            fmt = a.get_major_formatter()
            if isinstance(fmt, mticker.ScalarFormatter):
                fmt.set_useOffset(False)


def min_span(ax: plt.Axes, rel: float = 1e-3) -> None:
    """Widen the y limits of a linear axes to at least ``rel`` times the data's magnitude.

    Float32 noise (~1e-7) of a flat curve is otherwise autoscaled into a sawtooth; a curve
    that varies by more than ``rel`` keeps its limits.
    """
    lo, hi = ax.get_ylim()
    c = 0.5 * (lo + hi)
    span = rel * max(abs(lo), abs(hi))
    if np.isfinite(c) and span > 0 and hi - lo < span:
        ax.set_ylim(c - 0.5 * span, c + 0.5 * span)


def sparse_log_ticks(ax: plt.Axes, values: Sequence[float] | None = None, axis: str = "x",
                     max_decades: float = 2.5) -> None:
    """Readable tick labels on a log axis that spans few decades.

    Matplotlib labels the minor ticks (3x10^1, 4x10^1, ...) of such an axis, and they run
    into each other. Here: ticks at ``values`` (e.g. the swept values, at most 8 of them)
    with plain labels ("25", "0.003"), else the decades only; minor ticks unlabelled. An
    axis of more decades, or a linear one, is left alone.
    """
    a = getattr(ax, f"{axis}axis")
    if a.get_scale() != "log":
        return
    lo, hi = sorted(getattr(ax, f"get_{axis}lim")())
    if not (lo > 0 and np.log10(hi / lo) <= max_decades):
        return
    v = np.unique(np.asarray(values, dtype=float)) if values is not None else np.empty(0)
    v = v[np.isfinite(v) & (v > 0)]
    if 0 < len(v) <= 8:
        a.set_major_locator(mticker.FixedLocator(v))
    a.set_major_formatter(mticker.FuncFormatter(lambda x, _: f"{x:g}"))
    a.set_minor_formatter(mticker.NullFormatter())


def not_defined(ax: plt.Axes, text: str) -> None:
    """A panel with nothing to show: ``text`` in its middle and no axes (ticks, spines, labels)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.4")
    ax.set_axis_off()


def pad_x(ax: plt.Axes, x: np.ndarray, frac: float = 0.04, left: bool = True) -> None:
    """Set the x limits to the data ``x`` plus ``frac`` of their span on each side, measured in
    the axis' scale (log, symlog: in decades), so the markers at the ends are not cut off.

    Args:
        left: pad the left end too (False: it stays at the smallest x).
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return
    tr = ax.xaxis.get_transform()
    lo, hi = tr.transform(np.array([x.min(), x.max()]))
    d = frac * (hi - lo) if hi > lo else 0.5
    new = tr.inverted().transform(np.array([lo - d if left else lo, hi + d]))
    ax.set_xlim(float(new[0]), float(new[1]))
