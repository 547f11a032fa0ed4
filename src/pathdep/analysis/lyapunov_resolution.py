"""Whether a finite-window Lyapunov spectrum is resolved: errors, ordering and bounds.

What it computes (pure numpy, arrays in and arrays out), for Benettin exponents accumulated
over a window of ``T`` steps (:func:`pathdep.analysis.lyapunov_benettin.benettin`):

* :func:`exponent_errors`: the error of each exponent: the larger of the standard error of
  its finite-time exponents over consecutive windows (``std / sqrt(n)``) and half the range
  (drift) of its running estimate over the last half of the window;
* :func:`resolution`: per exponent, ``lambda T`` (the accumulated log growth), whether it is
  resolved (``|lambda| T >= 1``: the tangent vectors grew or shrank by at least a factor e
  over the window; below that a constant of order one in the log growth, e.g. the projection
  of the random initial basis on the Lyapunov vectors, is as large as the exponent's
  contribution) and the bound that an unresolved output states: ``|lambda| < max(1/T,
  |lambda_hat| + 2 err)``; and whether the columns are ordered (``lambda_i >= lambda_{i+1}``
  within two combined errors). The criterion assumes a basis aligned by a transient: from
  a random basis the first QRs add ``log`` of its projections, O(1) to ``lambda T``.
  Benettin's QR orders the columns only once the basis has
  converged; a window too short for that is flagged, not silently sorted;
* :func:`window_exponents`: each column's exponent over a sub-window ``[a, b]`` of the
  accumulated window, from the running estimate (``sum log R_ii`` between ``a`` and ``b``,
  divided by ``b - a``), so that it can be compared with a growth measured between two
  checkpoints.

How it was checked (tests/analysis/test_lyapunov_resolution.py): gradient descent on a
quadratic with Hessian ``diag(h)`` has the exponents ``log|1 - lr h_i|``; over a long window
they are resolved and ordered, over a window shorter than ``1 / |lambda_1|`` they are flagged
unresolved with a bound that contains the true value; swapped columns are flagged unordered,
equal columns within their errors are not; the error is the larger of its two parts; the
sub-window exponent of a planted piecewise growth is exact.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["RESOLVED_E_FOLDS", "ORDER_SIGMA", "exponent_errors", "resolution", "ordered",
           "window_exponents"]

#: An exponent is resolved when its accumulated log growth ``|lambda| T`` reaches this.
RESOLVED_E_FOLDS = 1.0

#: Columns count as ordered when ``lambda_{i+1} - lambda_i <= ORDER_SIGMA`` combined errors.
ORDER_SIGMA = 2.0


def exponent_errors(running: np.ndarray, ftle: np.ndarray) -> dict:
    """Error of each Benettin exponent from its running estimate and its FTLEs.

    Args:
        running: ``(steps, k)`` running estimate of each column (NaN rows allowed).
        ftle: ``(n_windows, k)`` finite-time exponents over consecutive windows.

    Returns:
        ``{"se": (k,)`` ``std(ftle) / sqrt(n_windows)`` (NaN for one window), ``"drift": (k,)``
        half the range of ``running`` over its last half, ``"err": (k,)`` the larger of the
        two (NaN only where both are)}.
    """
    running = np.asarray(running, dtype=float)
    ftle = np.asarray(ftle, dtype=float)
    n = ftle.shape[0]
    se = (np.std(ftle, axis=0, ddof=1) / math.sqrt(n)) if n > 1 else np.full(ftle.shape[1], np.nan)
    tail = running[running.shape[0] // 2:]
    drift = np.array([0.5 * np.ptp(c[np.isfinite(c)]) if np.isfinite(c).any() else np.nan
                      for c in tail.T])
    err = np.where(np.isnan(se), drift, np.where(np.isnan(drift), se, np.maximum(se, drift)))
    return {"se": se, "drift": drift, "err": err}


def ordered(exponents: np.ndarray, errors: np.ndarray, sigma: float = ORDER_SIGMA) -> np.ndarray:
    """Whether the columns are in descending order within ``sigma`` combined errors.

    Args:
        exponents: ``(..., k)`` in Benettin's column order.
        errors: ``(..., k)`` their errors (NaN counts as 0).

    Returns:
        ``(...)`` bool: every ``lambda_{i+1} - lambda_i <= sigma hypot(err_i, err_{i+1})``.
    """
    lam = np.asarray(exponents, dtype=float)
    err = np.nan_to_num(np.asarray(errors, dtype=float))
    rise = lam[..., 1:] - lam[..., :-1]
    comb = np.hypot(err[..., 1:], err[..., :-1])
    return np.all(rise <= sigma * comb, axis=-1)


def resolution(exponents: np.ndarray, errors: np.ndarray, T: float) -> dict:
    """Which exponents a window of ``T`` steps resolves, and the bound of the others.

    Args:
        exponents: ``(..., k)`` exponents per step (Benettin's column order).
        errors: ``(..., k)`` their errors (:func:`exponent_errors`).
        T: accumulated steps.

    Returns:
        ``{"lambda_T": (..., k)`` ``lambda T``, ``"resolved": (..., k)`` ``|lambda| T >=``
        :data:`RESOLVED_E_FOLDS`, ``"bound": (..., k)`` ``max(1/T, |lambda| + 2 err)``: the
        bound ``|lambda| <`` that an unresolved exponent is reported with, ``"ordered": (...)``
        (:func:`ordered`)}.
    """
    lam = np.asarray(exponents, dtype=float)
    err = np.nan_to_num(np.asarray(errors, dtype=float))
    if not T > 0:
        raise ValueError(f"lyapunov.steps: expected a window of > 0 steps, got {T}")
    lam_t = lam * T
    return {"lambda_T": lam_t, "resolved": np.abs(lam_t) >= RESOLVED_E_FOLDS,
            "bound": np.maximum(1.0 / T, np.abs(lam) + 2.0 * err),
            "ordered": ordered(lam, err)}


def window_exponents(running: np.ndarray, step: np.ndarray, start: int, a: int, b: int) -> np.ndarray:
    """Each column's exponent over the sub-window ``[a, b]`` of an accumulated window.

    Args:
        running: ``(..., steps, k)`` running estimate after each accumulated step (a QR every
            step, or ``a`` and ``b`` at QR times).
        step: ``(steps,)`` the step of each row (``start + 1 .. start + steps``).
        start: the step where accumulation began (the end of the transient).
        a, b: ``start <= a < b <= step[-1]``.

    Returns:
        ``(..., k)``: ``(G(b) - G(a)) / (b - a)`` with ``G(t) = running(t) (t - start)`` the
        accumulated ``sum log R_ii`` (``G(start) = 0``).
    """
    step = np.asarray(step)
    running = np.asarray(running, dtype=float)
    if not (start <= a < b <= step[-1]):
        raise ValueError(f"window [{a}, {b}] outside the accumulated steps ({start}, {step[-1]}]")

    def acc(t):
        if t == start:
            return np.zeros(running.shape[:-2] + running.shape[-1:])
        i = int(np.searchsorted(step, t))
        if i >= len(step) or step[i] != t:
            raise ValueError(f"step {t} is not an accumulated step")
        return running[..., i, :] * (t - start)

    return (acc(b) - acc(a)) / (b - a)
