"""Rate of separation per architecture at matched parameter count (the seed's prediction
"convolutional architectures decrease the rate of separation, after correcting for the
number of parameters", path-dependence-scaling-laws.txt, "Architecture").

What it computes. For each architecture (an MLP, LeNet-5, a ResNet; runs with the same
dataset, optimizer, batch size, step count and relative perturbation ``eps``), from the
distance curves ``d_k(t) = |w_k(t) - w_b(t)|`` of the perturbed copies k to their own
baseline b:

* the **relative distance** ``r_k(t) = d_k(t) / |w_b(t)|`` (:func:`relative_distance`). This
  is the parameter-count correction: with P weights of a per-weight scale sigma,
  ``|w| ~ sigma sqrt(P)``, so a network with more weights is not farther from its copy just by
  having more coordinates, and a network whose weights grow is not farther just by growing.
  With a relative perturbation ``r_k(0) = eps`` for every architecture.
* the **early separation rate** ``lambda`` (per step): the least-squares slope of
  ``log r_k(t)`` against the step t over the checkpoints with ``t0 <= t <= t1`` (the same
  step window for every architecture; :func:`log_rate`). ``r(t) = r(0) exp(lambda t)`` gives
  exactly ``lambda``. A constant normalisation (``sqrt(P)``, ``|w_b(0)|``) shifts
  ``log r`` by a constant and leaves ``lambda`` unchanged, so ``lambda`` is
  parameter-corrected by construction; dividing by ``|w_b(t)|`` removes the weights' own
  growth too.
* the **late linear slope** (secondary, the seed's "long linear period"): the least-squares
  slope of ``d_k(t) / sqrt(P)`` (the RMS distance per weight) against t over the last
  ``late_fraction`` of the steps (:func:`lin_slope`).

Replicates (DESIGN.md invariant 6, :mod:`pathdep.analysis.replicates`): each statistic is
computed per copy, averaged over the copies of each baseline (``(R,)`` one value per
independent baseline), and given a Student-t interval across the R baselines
(:func:`per_baseline_rates`, :func:`summarize`). The comparison with the reference (MLP) is
the difference ``CNN - MLP`` of the per-baseline values, paired by baseline index when both
have the same R (independent across r), else Welch's unpaired interval
(:func:`difference`). Verdict (:func:`verdict`): **decrease** when the 95 % interval of the
difference lies below 0, **no decrease** when it lies above 0, else **inconclusive**.

How it was checked: ``tests/analysis/test_architecture.py``: planted exponential curves
``eps exp(lambda t)`` give lambda back to 1e-12 whatever the constant normalisation; the late
slope of planted lines; per-baseline averaging on hand-made blocks; a null case (two
architectures with the same planted rate and noise) is never declared a decrease, a planted
lower rate is; one baseline gives no interval (inconclusive).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from pathdep.analysis.replicates import interval, own_baseline, per_baseline

__all__ = ["relative_distance", "log_rate", "lin_slope", "per_baseline_rates", "summarize", "difference",
           "verdict", "DECREASE", "NO_DECREASE", "INCONCLUSIVE"]

DECREASE, NO_DECREASE, INCONCLUSIVE = "decrease", "no decrease", "inconclusive"


def relative_distance(dist: np.ndarray, norm: np.ndarray, baseline: np.ndarray, copy: np.ndarray) -> np.ndarray:
    """``d_k(t) / |w_b(t)|`` of every network k against its own baseline b.

    Args:
        dist: ``(K, C)`` distance to the own baseline (0 on a baseline's row).
        norm: ``(K, C)`` weight norm ``|w_k(t)|`` of every network.
        baseline, copy: ``(K,)`` labels (:func:`pathdep.analysis.replicates.labels`).

    Returns:
        ``(K, C)``; NaN where the baseline's norm is not positive.
    """
    dist, norm = np.asarray(dist, float), np.asarray(norm, float)
    base = norm[own_baseline(baseline, copy)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base > 0, dist / base, np.nan)


def _window(steps: np.ndarray, y: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(steps, float)
    sel = (t >= t0) & (t <= t1) & np.isfinite(y)
    return t[sel], y[sel]


def _slope(t: np.ndarray, y: np.ndarray) -> float:
    if len(t) < 2 or np.ptp(t) == 0:
        return math.nan
    tc = t - t.mean()
    return float(np.sum(tc * (y - y.mean())) / np.sum(tc * tc))


def log_rate(steps: np.ndarray, curve: np.ndarray, t0: float, t1: float) -> float:
    """Exponential rate of one positive curve: the least-squares slope of ``log curve`` on t.

    Args:
        steps: ``(C,)`` checkpoint steps.
        curve: ``(C,)`` e.g. the relative distance ``r(t)``; values <= 0 or NaN are left out.
        t0, t1: the step window (both ends included).

    Returns:
        lambda per step (NaN with fewer than 2 usable checkpoints in the window).
    """
    c = np.asarray(curve, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(c > 0, np.log(c), np.nan)
    return _slope(*_window(steps, y, t0, t1))


def lin_slope(steps: np.ndarray, curve: np.ndarray, late_fraction: float) -> float:
    """Linear slope of ``curve`` on t over the last ``late_fraction`` of the steps.

    Args:
        steps: ``(C,)``; curve: ``(C,)`` e.g. ``d(t) / sqrt(P)``; late_fraction: in (0, 1].
    """
    t = np.asarray(steps, float)
    t_end = float(t[-1])
    return _slope(*_window(t, np.asarray(curve, float), t_end * (1.0 - late_fraction), t_end))


def per_baseline_rates(steps: np.ndarray, rel: np.ndarray, rms: np.ndarray, baseline: np.ndarray,
                       copy: np.ndarray, window: tuple[float, float], late_fraction: float) -> dict[str, np.ndarray]:
    """Both statistics of every copy, averaged over the copies of each baseline.

    Args:
        steps: ``(C,)``; rel: ``(K, C)`` relative distance (:func:`relative_distance`);
        rms: ``(K, C)`` ``d / sqrt(P)``; baseline, copy: ``(K,)``.
        window: ``(t0, t1)`` of the early rate; late_fraction: of the late slope.

    Returns:
        ``{"early_rate": (R,), "late_slope": (R,)}``.
    """
    K = len(baseline)
    early = np.array([log_rate(steps, rel[k], *window) for k in range(K)])
    late = np.array([lin_slope(steps, rms[k], late_fraction) for k in range(K)])
    return {"early_rate": per_baseline(early, baseline, copy), "late_slope": per_baseline(late, baseline, copy)}


def summarize(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, int]:
    """``(mean, lo, hi, n)`` of ``(R,)`` per-baseline values: Student-t across the finite ones."""
    v = np.asarray(values, float)
    m, lo, hi = interval(v, level)
    return float(m), float(lo), float(hi), int(np.isfinite(v).sum())


def difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float, str]:
    """Mean of ``a - b`` and its two-sided interval, from per-baseline values.

    Args:
        a, b: ``(R_a,)`` and ``(R_b,)`` one value per independent baseline.

    Returns:
        ``(mean, lo, hi, how)``: paired Student-t over r when ``R_a == R_b`` (baseline r of
        both runs has the same seed; the pairs are independent across r), else Welch's
        interval; lo/hi NaN with fewer than 2 values on a side.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == len(b):
        d = a - b
        m, lo, hi, _ = summarize(d[np.isfinite(d)], level)
        return m, lo, hi, "paired t"
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    m = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2:
        return m, math.nan, math.nan, "welch t"
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else 1.0
    q = float(stats.t.ppf(0.5 + level / 2, dof))
    return m, m - q * se, m + q * se, "welch t"


def verdict(lo: float, hi: float) -> str:
    """``decrease`` if the interval lies below 0, ``no decrease`` if above, else ``inconclusive``
    (also without an interval)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if hi < 0:
        return DECREASE
    if lo > 0:
        return NO_DECREASE
    return INCONCLUSIVE
