"""Verdicts of the claims ledger: decision rules and the statistics of the seeds' claims.

What it computes. Every claim or prediction of the five seeds (shared/seeds/) is decided by
a pure function here: arrays in, an :class:`Outcome` out (``value``, a 95 % interval
``lo``..``hi``, the ``rule`` it was decided by, the ``verdict``). The rule is a sentence
built from the thresholds *before* the number is computed (DESIGN.md invariant 7), so the
ledger states what would have counted as support or contradiction.

* decision helpers: :func:`decide_above`, :func:`decide_below`, :func:`decide_within`
  (supported / contradicted / inconclusive from an interval; a NaN interval is
  "inconclusive (one baseline: no interval)" or the reason given);
* curve statistics: :func:`final_value` (last finite point), :func:`nearest` (the recorded
  time nearest a target), :func:`late_exponent` (log-log slope of a curve over its last part),
  :func:`late_slope` (linear slope over its last part), :func:`loglog_slope` (least-squares
  exponent of y ~ x^p);
* interval helpers: :func:`across_baselines` (mean and t interval of one value per
  independent baseline, :mod:`pathdep.analysis.replicates`), :func:`normal_interval`.

The claim-specific statistics live in :mod:`pathdep.analysis.claims_stats` (weight-space
growth, spread, Lyapunov study, Koopman, NTK, dominoes).

Replicates: a statistic is computed per independent baseline (copies averaged first), then
the interval is taken across baselines; one baseline gives no interval, and a rule that
needs one says "inconclusive (one baseline: no interval)" rather than inventing one.

How it was checked: ``tests/analysis/test_claims.py`` (each helper on synthetic data with
a known answer, every decision helper both ways and with NaN intervals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pathdep.analysis.replicates import interval

__all__ = ["Outcome", "SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "NOT_RUN", "ONE_BASELINE",
           "region", "decide_above", "decide_below", "decide_within", "across_baselines", "normal_interval",
           "late_exponent", "late_slope", "loglog_slope", "final_value", "nearest", "steps_per_epoch", "fmt"]

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "supported", "contradicted", "inconclusive", "not run"
ONE_BASELINE = "one baseline: no interval"


@dataclass
class Outcome:
    """One decided claim: the statistic's value, its 95 % interval, the rule, the verdict.

    ``verdict`` is one of supported, contradicted, inconclusive (with its reason in
    parentheses when the interval is missing), not run (with the config that runs it).
    ``predicted``: the range the claim predicts for the statistic (``-inf``/``inf`` for an
    open side; a point for a predicted value; NaN where the rule is not a range), drawn by
    the claims figure.
    """

    value: float
    lo: float
    hi: float
    rule: str
    verdict: str
    note: str = field(default="")
    predicted: tuple[float, float] = field(default=(math.nan, math.nan))


def region(direction: str, t: float) -> tuple[float, float]:
    """The predicted range of a one-sided rule: ``(t, inf)`` for ``above``, ``(-inf, t)`` for ``below``."""
    return (float(t), math.inf) if direction == "above" else (-math.inf, float(t))


def fmt(x: float) -> str:
    """A threshold or value as the ledger prints it (4 significant digits)."""
    return "nan" if x is None or not math.isfinite(float(x)) else f"{float(x):.4g}"


def _nan_verdict(lo: float, hi: float, why: str) -> str | None:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{INCONCLUSIVE} ({why})"
    return None


def decide_above(lo: float, hi: float, t: float, why: str = ONE_BASELINE) -> str:
    """Supported if the interval lies above ``t``, contradicted if below, else inconclusive."""
    return _nan_verdict(lo, hi, why) or (SUPPORTED if lo > t else CONTRADICTED if hi < t else INCONCLUSIVE)


def decide_below(lo: float, hi: float, t: float, why: str = ONE_BASELINE) -> str:
    """Supported if the interval lies below ``t``, contradicted if above, else inconclusive."""
    return _nan_verdict(lo, hi, why) or (SUPPORTED if hi < t else CONTRADICTED if lo > t else INCONCLUSIVE)


def decide_within(lo: float, hi: float, a: float, b: float, why: str = ONE_BASELINE) -> str:
    """Supported if the interval lies inside ``[a, b]``, contradicted if it misses ``[a, b]``
    entirely, else inconclusive."""
    return _nan_verdict(lo, hi, why) or (SUPPORTED if a <= lo and hi <= b
                                         else CONTRADICTED if hi < a or lo > b else INCONCLUSIVE)


def across_baselines(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % Student-t interval of one value per independent baseline.

    Args:
        x: ``(R,)`` one value per baseline (NaN ignored).

    Returns:
        ``(mean, lo, hi)``; lo and hi are NaN with fewer than 2 finite baselines.
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    if not np.isfinite(x).any():
        return math.nan, math.nan, math.nan
    m, lo, hi = interval(x[:, None])
    return float(m[0]), float(lo[0]), float(hi[0])


def normal_interval(value: float, se: float, z: float = 1.959964) -> tuple[float, float, float]:
    """``(value, value - z se, value + z se)`` (NaN bounds when ``se`` is not finite)."""
    value, se = float(value), float(se)
    if not math.isfinite(se):
        return value, math.nan, math.nan
    return value, value - z * se, value + z * se


def _tail(steps: np.ndarray, y: np.ndarray, frac: float, positive: bool) -> tuple[np.ndarray, np.ndarray]:
    steps, y = np.asarray(steps, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(steps) & np.isfinite(y) & (steps > 0)
    if positive:
        ok &= y > 0
    s, v = steps[ok], y[ok]
    if len(s) == 0:
        return s, v
    keep = s >= s.max() * (1.0 - frac) if frac < 1 else np.ones(len(s), bool)
    if keep.sum() < 3:                    # sparse (log-spaced) checkpoints: the last 3 points
        keep = np.arange(len(s)) >= len(s) - 3
    return s[keep], v[keep]


def late_exponent(steps: np.ndarray, d: np.ndarray, frac: float = 0.5) -> float:
    """Local growth exponent of a curve over its last part: the least-squares slope of
    log d against log step for the checkpoints with step >= (1 - frac) max step.

    1 is linear growth, < 1 bends down (concave), > 1 bends up (exponential-like). With fewer
    than 3 checkpoints in that window (sparse log-spaced checkpoints) the last 3 are used.

    Args:
        steps: ``(C,)`` training steps; d: ``(C,)`` the curve (e.g. d_w).

    Returns:
        The exponent, NaN with fewer than 3 usable points.
    """
    s, v = _tail(steps, d, frac, positive=True)
    if len(s) < 3 or np.ptp(np.log(s)) == 0:
        return math.nan
    return float(np.polyfit(np.log(s), np.log(v), 1)[0])


def late_slope(steps: np.ndarray, d: np.ndarray, frac: float = 0.5) -> float:
    """Linear growth rate of a curve (units of d per step) over its last part (see
    :func:`late_exponent`); NaN with fewer than 3 usable points."""
    s, v = _tail(steps, d, frac, positive=False)
    if len(s) < 3 or np.ptp(s) == 0:
        return math.nan
    return float(np.polyfit(s, v, 1)[0])


def loglog_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares exponent ``p`` of ``y ~ x^p`` and its standard error.

    Args:
        x, y: ``(n,)``; non-positive or non-finite pairs are dropped.

    Returns:
        ``(p, se)``: NaN with fewer than 2 points; se NaN with fewer than 3.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    if len(lx) < 2 or np.ptp(lx) == 0:
        return math.nan, math.nan
    p, c = np.polyfit(lx, ly, 1)
    if len(lx) < 3:
        return float(p), math.nan
    resid = ly - (p * lx + c)
    se = math.sqrt(float(resid @ resid) / (len(lx) - 2) / float(((lx - lx.mean()) ** 2).sum()))
    return float(p), se


def final_value(steps, curve: np.ndarray) -> float:
    """The last finite value of a curve ``(C,)`` (NaN if none); ``steps`` is unused (the
    signature of the other curve statistics)."""
    c = np.asarray(curve, dtype=float)
    ok = np.isfinite(c)
    return float(c[ok][-1]) if ok.any() else math.nan


def nearest(times: np.ndarray, target: float) -> float:
    """The value of ``times`` nearest ``target`` (the smallest on a tie)."""
    t = np.unique(np.asarray(times, dtype=float))
    return float(t[np.argmin(np.abs(t - target))])


def steps_per_epoch(step: np.ndarray, epoch: np.ndarray) -> float:
    """Training steps per epoch from a metrics file's ``step`` and ``epoch`` coordinates
    (their ratio at the last checkpoint with epoch > 0; NaN if none)."""
    s, e = np.asarray(step, dtype=float), np.asarray(epoch, dtype=float)
    ok = np.isfinite(s) & np.isfinite(e) & (e > 0)
    return float(s[ok][-1] / e[ok][-1]) if ok.any() else math.nan
