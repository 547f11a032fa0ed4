"""Replicate baselines: members addressed as (baseline, copy), intervals across baselines.

What it computes. A run with ``perturbation.baselines: R`` trains R independent baselines
(their own initial weights and batch order), each with its own ``members`` perturbed copies,
in one ensemble of K = R (members + 1) networks laid out in blocks: block r is
``[baseline r, copy 1 of r, ..., copy M of r]``. The member table of every file (``init.h5``,
``trajectory.h5``, ``metrics.nc`` ...) carries ``baseline`` (r) and ``copy`` (0 for the
baseline) per network; files written before replicate baselines have neither and are one
block (:func:`labels` fills them in).

A referee's rule (DESIGN.md invariant 6): copies of one baseline are near-identical
pseudo-replicates, so a statistic is first averaged over the copies of each baseline
(:func:`per_baseline`) and its uncertainty is taken across the R independent baselines
(:func:`interval`: Student t over R, or a percentile bootstrap).

* :func:`labels` - ``(baseline, copy)`` arrays from a member table or an xarray dataset;
* :func:`own_baseline` - the row of each network's own baseline, ``(K,)``;
* :func:`per_baseline` - mean over the copies of each baseline, ``(K, ...) -> (R, ...)``;
* :func:`interval` - mean and a two-sided interval across axis 0 (R replicates);
* :func:`bootstrap_interval` - the same by a seeded percentile bootstrap.

How it was checked: ``tests/analysis/test_replicates.py`` (hand-made blocks, the t interval
against scipy's ``t.interval``, the coverage of the 95 % t interval on Gaussian replicates is
0.95 +- 0.02 over 4000 draws, NaN handling, one replicate gives no interval).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

__all__ = ["labels", "own_baseline", "per_baseline", "interval", "bootstrap_interval", "n_baselines"]


def labels(table) -> tuple[np.ndarray, np.ndarray]:
    """``(baseline, copy)`` integer arrays ``(K,)`` of a member table.

    Args:
        table: a pandas member table (``Trajectory.members``) or an xarray dataset with
            ``member`` coordinates; needs ``role`` when ``baseline``/``copy`` are absent.

    Returns:
        ``baseline`` (block index r of each network) and ``copy`` (0 for a baseline, 1..M
        for its perturbed copies). Files without the columns are one block: baseline 0,
        copy 0 for the row whose role is "baseline", 1, 2, ... for the others in order.
    """
    cols = table.columns if hasattr(table, "columns") else table.variables
    if "baseline" in cols and "copy" in cols:
        return np.asarray(table["baseline"]).astype(int), np.asarray(table["copy"]).astype(int)
    if "role" not in cols:  # a bare table: row 0 the baseline of one block
        n = int(table.sizes["member"]) if hasattr(table, "sizes") else len(table)
        return np.zeros(n, dtype=int), np.arange(n)
    role = np.asarray(table["role"]).astype(str)
    copy = np.zeros(len(role), dtype=int)
    copy[role != "baseline"] = np.arange(1, int((role != "baseline").sum()) + 1)
    return np.zeros(len(role), dtype=int), copy


def n_baselines(baseline: np.ndarray) -> int:
    """Number of blocks R (``max(baseline) + 1``)."""
    return int(np.max(baseline)) + 1 if len(baseline) else 0


def own_baseline(baseline: np.ndarray, copy: np.ndarray) -> np.ndarray:
    """Row index of each network's own baseline, ``(K,)``.

    Raises:
        ValueError: a block without exactly one baseline (copy 0).
    """
    baseline, copy = np.asarray(baseline), np.asarray(copy)
    rows = np.empty(len(baseline), dtype=int)
    for r in range(n_baselines(baseline)):
        base = np.flatnonzero((baseline == r) & (copy == 0))
        if len(base) != 1:
            raise ValueError(f"baseline {r}: {len(base)} networks with copy 0 (expected exactly one)")
        rows[baseline == r] = base[0]
    return rows


def per_baseline(values: np.ndarray, baseline: np.ndarray, copy: np.ndarray, *,
                 include_baseline: bool = False) -> np.ndarray:
    """Mean over the perturbed copies of each baseline (NaN-aware).

    Args:
        values: ``(K, ...)``, one row per network.
        baseline, copy: ``(K,)`` labels (:func:`labels`).
        include_baseline: average the baseline's own row too (e.g. for a loss curve).

    Returns:
        ``(R, ...)``: row r the mean over block r's copies (NaN where all are NaN).
    """
    values = np.asarray(values, dtype=float)
    baseline, copy = np.asarray(baseline), np.asarray(copy)
    out = np.full((n_baselines(baseline),) + values.shape[1:], np.nan)
    for r in range(out.shape[0]):
        sel = (baseline == r) & ((copy >= 0) if include_baseline else (copy > 0))
        if sel.any():
            block = values[sel]
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[r] = np.nanmean(block, axis=0)
    return out


def interval(x: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t interval across replicates (axis 0), NaN-aware.

    Args:
        x: ``(R, ...)`` one value per independent baseline.
        level: two-sided coverage.

    Returns:
        ``(mean, lo, hi)`` each ``x.shape[1:]``; lo/hi are NaN where fewer than 2 finite
        replicates exist (no interval from one replicate).
    """
    x = np.asarray(x, dtype=float)
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=0)
        sd = np.nanstd(x, axis=0, ddof=1)
    q = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
    half = np.where(n >= 2, q * sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, mean - half, mean + half


def bootstrap_interval(x: np.ndarray, level: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and percentile-bootstrap interval of the mean across replicates (axis 0).

    Resamples whole replicates (rows) with replacement; NaN rows are dropped per column.
    With R < 2 finite replicates lo/hi are NaN.
    """
    x = np.asarray(x, dtype=float)
    flat = x.reshape(x.shape[0], -1)
    rng = np.random.default_rng(seed)
    mean = np.full(flat.shape[1], np.nan)
    lo, hi = mean.copy(), mean.copy()
    for j in range(flat.shape[1]):
        v = flat[np.isfinite(flat[:, j]), j]
        if len(v) == 0:
            continue
        mean[j] = v.mean()
        if len(v) < 2:
            continue
        boots = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
        lo[j], hi[j] = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    shape = x.shape[1:]
    return mean.reshape(shape), lo.reshape(shape), hi.reshape(shape)
