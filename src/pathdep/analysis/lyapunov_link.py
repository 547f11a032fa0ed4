"""The link between a Benettin ``lambda_max`` and the measured divergence of an ensemble.

What it computes (pure numpy, arrays in and numbers out):

* :func:`distance_growth_rate`: the exponential growth rate of the member-baseline distance
  inside a step window: the least-squares slope of ``log mean_k |w_k - w_0|`` against the
  step, with its standard error and the number of checkpoints used. For small relative
  perturbations (the tangent regime) the distance follows the tangent dynamics
  (``|dZ(t)| ~ exp(lambda t) |dZ(0)|``, path-dependence-scaling-laws.txt), so this rate is
  what ``lambda_max`` predicts; for large ones it saturates below it;
* :func:`lambda_error`: the error of ``lambda_max``: the larger of the standard error of the
  leading finite-time exponents over the windows and half the range (drift) of the running
  estimate over the last half of the accumulated window;
* :func:`agree`: the difference in combined errors and whether it is within
  :data:`AGREE_SIGMA`.

How it was checked (tests/analysis/test_lyapunov_link.py): a planted exponential inside the
window is recovered exactly and a different law outside it is not used; the error is the
larger of its two parts; agreement follows ``|rate - lambda| / hypot(errors) <= 2``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["AGREE_SIGMA", "distance_growth_rate", "lambda_error", "agree"]

#: Agreement criterion of the link table: |rate - lambda_max| <= AGREE_SIGMA combined errors.
AGREE_SIGMA = 2.0


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
    """Error of a Benettin ``lambda_max`` from its running estimate and its FTLEs.

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
