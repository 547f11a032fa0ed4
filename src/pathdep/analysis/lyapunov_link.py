"""The link between a Benettin ``lambda_1`` and the measured divergence of an ensemble.

What it computes (pure numpy, arrays in and numbers out):

* :func:`window_growth`: per baseline, the growth factor and rate of the mean distance of its
  perturbed copies between the first and the last checkpoint inside a step window
  (``rate = log(d(b) / d(a)) / (b - a)``: what ``lambda_1`` over the same ``[a, b]``
  predicts in the tangent regime, ``|dZ(t)| ~ exp(lambda t) |dZ(0)|``);
* :func:`link_statistic`: ``lambda_1`` and the measured rate with their intervals across
  independent baselines, the paired difference, the smallest growth factor, and the verdict
  of the decision rule below;

* :func:`distance_growth_rate`: the exponential growth rate of the member-baseline distance
  inside a step window: the least-squares slope of ``log mean_k |w_k - w_0|`` against the
  step, with its standard error and the number of checkpoints used. For small relative
  perturbations (the tangent regime) the distance follows the tangent dynamics
  (``|dZ(t)| ~ exp(lambda t) |dZ(0)|``, path-dependence-scaling-laws.txt), so this rate is
  what ``lambda_1`` predicts; for large ones it saturates below it;
* :func:`lambda_error`: the error of one exponent (``lambda_1``): the larger of the standard error of the
  leading finite-time exponents over the windows and half the range (drift) of the running
  estimate over the last half of the accumulated window;
* :func:`agree`: the difference in combined errors and whether it is within
  :data:`AGREE_SIGMA`.

Decision rule of the link (:func:`link_statistic`, stated before any number): a comparison
needs a measured growth of at least :data:`MIN_GROWTH` inside the window in every baseline
(a perturbation that grows less does not resolve a rate). Then, with ``lambda_1`` resolved
(``|lambda_1| T >= 1`` in every baseline, :mod:`pathdep.analysis.lyapunov_resolution`):
*agree* when the 95 % t interval across baselines of the paired difference
``rate_r - lambda_1,r`` lies within ``+-`` :data:`REL_TOL` ``|lambda_1|``, *disagree* when it
excludes 0 (and is not inside that band), else *inconclusive*. With ``lambda_1`` unresolved
the measured rate can still contradict it: *disagree* when the rate's interval lies outside
``+-`` the largest bound of ``|lambda_1|`` (e.g. the perturbation grows faster than the
tangent map can grow anything), else *unresolved*. One baseline gives no interval: *inconclusive (one
baseline)*; none (no checkpoint pair inside the window): *unresolved*.

How it was checked (tests/analysis/test_lyapunov_link.py): a planted exponential inside the
window is recovered exactly and a different law outside it is not used; the error is the
larger of its two parts; agreement follows ``|rate - lambda| / hypot(errors) <= 2``; the
window growth of a map whose perturbation grows 20x is resolved and one that grows 3x is not;
the verdict is *agree* for rates equal to lambda_1 up to small noise, *disagree* for rates
twice lambda_1 and for a fast divergence against an unresolved lambda_1, *unresolved* for
slow growth and *inconclusive* for one baseline.
"""

from __future__ import annotations

import math

import numpy as np

from pathdep.analysis.lyapunov_resolution import RESOLVED_E_FOLDS
from pathdep.analysis.replicates import interval

__all__ = ["AGREE_SIGMA", "MIN_GROWTH", "REL_TOL", "distance_growth_rate", "lambda_error", "agree",
           "window_growth", "link_statistic"]

#: Agreement criterion of one baseline's values: |rate - lambda| <= AGREE_SIGMA combined errors.
AGREE_SIGMA = 2.0

#: The link regime: a perturbation grows at least this factor inside the window.
MIN_GROWTH = 10.0

#: Agreement band of the paired difference rate - lambda_1, relative to |lambda_1|.
REL_TOL = 0.5


def distance_growth_rate(step: np.ndarray, dist: np.ndarray, start: float,
                         stop: float) -> tuple[float, float, int]:
    """Exponential growth rate of the member-baseline distance inside a step window.

    Least squares of ``log mean_k dist_k(t)`` on ``t`` over the checkpoints with
    ``start <= t <= stop``.

    Args:
        step: ``(checkpoint,)`` step of each checkpoint.
        dist: ``(member, checkpoint)`` distances of the perturbed members to the baseline
            (the baseline's own row excluded); NaN entries are skipped in the mean.
        start, stop: the step window (inclusive).

    Returns:
        ``(rate per step, its standard error, number of checkpoints used)``; rate and error
        are NaN with fewer than 3 usable checkpoints.
    """
    step = np.asarray(step, dtype=float)
    with np.errstate(all="ignore"):
        mean = np.nanmean(dist, axis=0)
    ok = (step >= start) & (step <= stop) & np.isfinite(mean) & (mean > 0)
    n = int(ok.sum())
    if n < 3:
        return float("nan"), float("nan"), n
    t, y = step[ok], np.log(mean[ok])
    A = np.vstack([t, np.ones_like(t)]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    s2 = float(((y - A @ coef) ** 2).sum()) / (n - 2)
    se = float(np.sqrt(s2 / ((t - t.mean()) ** 2).sum())) if n > 2 else float("nan")
    return float(coef[0]), se, n


def lambda_error(running: np.ndarray, ftle_1: np.ndarray) -> dict:
    """Error of one Benettin exponent from its running estimate and its FTLEs (the vectorised
    form over all columns: :func:`pathdep.analysis.lyapunov_resolution.exponent_errors`).

    Args:
        running: ``(steps,)`` running estimate of the leading exponent.
        ftle_1: ``(n_windows,)`` leading finite-time exponents over consecutive windows.

    Returns:
        ``{"se": std(ftle_1) / sqrt(n_windows)`` (NaN for one window), ``"drift"``: half the
        range of ``running`` over its last half, ``"err"``: the larger of the two}.
    """
    n = len(ftle_1)
    se = float(np.std(ftle_1, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    tail = running[len(running) // 2:]
    tail = tail[np.isfinite(tail)]
    drift = float(0.5 * (tail.max() - tail.min())) if len(tail) else float("nan")
    return {"se": se, "drift": drift, "err": float(np.nanmax([se, drift]))}


def agree(lam: float, lam_err: float, rate: float, rate_se: float) -> tuple[float, bool]:
    """``(|rate - lam| / combined error, agreement within AGREE_SIGMA)``; ``(NaN, False)``
    when either value is not finite or both errors are zero (missing errors count as 0)."""
    comb = math.sqrt(np.nan_to_num(lam_err) ** 2 + np.nan_to_num(rate_se) ** 2)
    if not (np.isfinite(lam) and np.isfinite(rate)) or comb == 0:
        return float("nan"), False
    z = abs(rate - lam) / comb
    return z, bool(z <= AGREE_SIGMA)


def window_growth(step: np.ndarray, dist: np.ndarray, start: float, stop: float) -> dict:
    """Growth of each baseline's mean copy distance between the window's outer checkpoints.

    Args:
        step: ``(checkpoint,)`` step of each checkpoint.
        dist: ``(R, checkpoint)`` mean distance of each baseline's perturbed copies to it
            (:func:`pathdep.analysis.replicates.per_baseline` of ``metrics.nc``'s ``dist``).
        start, stop: the step window (inclusive).

    Returns:
        ``{"a", "b"}``: the first and last checkpoint steps inside ``[start, stop]`` where
        every baseline's distance is positive (NaN when fewer than 2), ``"growth": (R,)``
        ``d(b) / d(a)``, ``"rate": (R,)`` ``log(growth) / (b - a)``.
    """
    step = np.asarray(step, dtype=float)
    dist = np.atleast_2d(np.asarray(dist, dtype=float))
    with np.errstate(invalid="ignore"):
        ok = (step >= start) & (step <= stop) & np.all(np.isfinite(dist) & (dist > 0), axis=0)
    idx = np.flatnonzero(ok)
    R = dist.shape[0]
    if len(idx) < 2:
        return {"a": float("nan"), "b": float("nan"), "growth": np.full(R, np.nan), "rate": np.full(R, np.nan)}
    i, j = idx[0], idx[-1]
    growth = dist[:, j] / dist[:, i]
    return {"a": float(step[i]), "b": float(step[j]), "growth": growth,
            "rate": np.log(growth) / (step[j] - step[i])}


def _verdict(lam: dict, rate: dict, diff: dict, growth_min: float, lam_resolved: bool,
             bound: float, n: int) -> str:
    """The decision rule of the module docstring, on intervals already computed."""
    if n == 0:
        return "unresolved"
    if n < 2:
        return "inconclusive (one baseline)"
    if lam_resolved and growth_min >= MIN_GROWTH:
        band = REL_TOL * abs(lam["mean"])
        if -band <= diff["lo"] and diff["hi"] <= band:
            return "agree"
        return "disagree" if (diff["lo"] > 0 or diff["hi"] < 0) else "inconclusive"
    if not lam_resolved and (rate["lo"] > bound or rate["hi"] < -bound):
        return "disagree"
    return "unresolved"


def link_statistic(lam1: np.ndarray, lam1_bound: np.ndarray, rate: np.ndarray, growth: np.ndarray,
                   T: float, level: float = 0.95) -> dict:
    """``lambda_1`` against the measured divergence rate, across independent baselines.

    Args:
        lam1: ``(R,)`` leading exponent of each baseline over the window ``[a, b]``.
        lam1_bound: ``(R,)`` bound of ``|lambda_1|`` per baseline
            (:func:`pathdep.analysis.lyapunov_resolution.resolution`).
        rate: ``(R,)`` measured rate of each baseline's copies over ``[a, b]``.
        growth: ``(R,)`` their growth factor ``d(b) / d(a)``.
        T: ``b - a`` (steps).
        level: coverage of the t intervals across baselines.

    Returns:
        dict with ``n_baselines``, ``lambda_1``, ``lambda_1_lo``, ``lambda_1_hi``,
        ``measured_rate``, ``measured_rate_lo``, ``measured_rate_hi``, ``diff``, ``diff_lo``,
        ``diff_hi`` (``rate - lambda_1``, paired by baseline), ``ratio`` (mean rate / mean
        lambda_1), ``growth_min``, ``growth_geomean``, ``lambda_1_T_min`` (smallest
        ``|lambda_1| T``), ``lambda_1_resolved``, ``lambda_1_bound`` (largest bound),
        ``resolved`` (lambda_1 resolved and ``growth_min >= MIN_GROWTH``) and ``verdict``
        (module docstring). Intervals are NaN for one baseline.
    """
    lam1, rate, growth = (np.asarray(v, dtype=float) for v in (lam1, rate, growth))
    ok = np.isfinite(lam1) & np.isfinite(rate) & np.isfinite(growth)
    lam1, rate, growth = lam1[ok], rate[ok], growth[ok]
    bound = np.asarray(lam1_bound, dtype=float)[ok]
    n = int(ok.sum())
    stats = {}
    for name, x in (("lambda_1", lam1), ("measured_rate", rate), ("diff", rate - lam1)):
        m, lo, hi = interval(x[:, None], level) if n else (np.full(1, np.nan),) * 3
        stats[name] = {"mean": float(m[0]), "lo": float(lo[0]), "hi": float(hi[0])}
    lam_t = float(np.min(np.abs(lam1)) * T) if n else float("nan")
    resolved_lam = bool(n and lam_t >= RESOLVED_E_FOLDS)
    g_min = float(np.min(growth)) if n else float("nan")
    b_max = float(np.max(bound)) if n else float("nan")
    out = {"n_baselines": n}
    for name, s in stats.items():
        out.update({name: s["mean"], f"{name}_lo": s["lo"], f"{name}_hi": s["hi"]})
    lam_m = stats["lambda_1"]["mean"]
    out.update({"ratio": stats["measured_rate"]["mean"] / lam_m if lam_m else float("nan"),
                "growth_min": g_min,
                "growth_geomean": float(np.exp(np.mean(np.log(growth)))) if n else float("nan"),
                "lambda_1_T_min": lam_t, "lambda_1_resolved": resolved_lam, "lambda_1_bound": b_max,
                "resolved": bool(resolved_lam and g_min >= MIN_GROWTH),
                "verdict": _verdict(stats["lambda_1"], stats["measured_rate"], stats["diff"], g_min,
                                    resolved_lam, b_max, n)})
    return out
