"""Pattern-learning curves: sigmoid fits and a two-feature toy model (dominoes).

What it computes.

* :func:`fit_sigmoid` -- least-squares fit of a learning curve (accuracy or any metric that
  rises once a pattern is learned) to ``y(t) = y0 + (y_inf - y0) / (1 + exp(-k (t - t0)))``:
  onset ``t0`` (the midpoint), rate ``k``, final level ``y_inf`` and start level ``y0``
  (optionally fixed, e.g. to chance 1/K), with standard errors from the Gauss-Newton
  covariance ``s^2 (J^T J)^-1`` (``scipy.optimize.curve_fit``). Time is the step (or log
  step with ``log_time``).
* :func:`toy_moments` / :func:`toy_curves` -- the toy model of the seed (compare
  pattern-learning curves with "the toy model of [2]"): a binary label ``y = +-1`` and two
  features, one per domino side, ``x_i = s_i m_i z_i`` with presence ``m_i ~
  Bernoulli(p_i)`` (prevalence; P(both) = p_1 + p_2 - 1 as in the dominoes), agreement
  ``z_i = y`` with probability ``r_i`` (reliability) else ``-y``, and scale ``s_i``
  (simplicity). The squared loss ``L(w) = E[(y - f(x))^2] / 2`` has moments
  ``b_i = E[x_i y] = s_i p_i (2 r_i - 1)``, ``S_ii = s_i^2 p_i``,
  ``S_12 = s_1 s_2 (p_1 + p_2 - 1)(2 r_1 - 1)(2 r_2 - 1)``. Gradient flow is integrated for

  - ``linear``: ``f = w . x``, ``dw/dt = b - S w`` (closed form ``w* + e^{-S t}(w0 - w*)``);
  - ``two_layer``: a diagonal two-layer linear net ``f = sum_i a_i c_i x_i`` from a small
    balanced initialisation ``a_i = c_i``, for which ``dw_i/dt = 2 |w_i| (b - S w)_i``
    (Saxe et al. 2014): sigmoidal, with onset ``ln(w*/w0 - 1) / (2 b_i)`` for
    uncoupled features.

  The predicted per-pattern output ("margin") on a one-sided input is ``w_i s_i``; its
  sigmoid fit gives the toy model's onset and rate for each (p, r, s).

How it was checked: ``tests/analysis/test_patterns.py`` (the fit recovers known onset,
rate and levels within 3 standard errors on noisy synthetic curves, and its standard
errors match the scatter over repeats; the linear toy model equals its closed form; the
two-layer toy model with uncoupled features (p_1 + p_2 = 1) equals the logistic closed
form; more prevalent / reliable / simpler features are learned earlier).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import curve_fit

__all__ = ["sigmoid", "fit_sigmoid", "toy_moments", "toy_curves", "toy_onsets"]

PARAMS = ("t0", "rate", "y_inf", "y0")


def sigmoid(t: np.ndarray, t0: float, rate: float, y_inf: float, y0: float) -> np.ndarray:
    """``y0 + (y_inf - y0) / (1 + exp(-rate (t - t0)))`` (overflow-safe)."""
    z = np.clip(-rate * (np.asarray(t, dtype=np.float64) - t0), -700, 700)
    return y0 + (y_inf - y0) / (1.0 + np.exp(z))


def fit_sigmoid(t: np.ndarray, y: np.ndarray, y0: float | None = None, log_time: bool = False) -> dict:
    """Fit one learning curve with :func:`sigmoid`.

    Args:
        t: ``(T,)`` times (steps); with ``log_time`` the fit uses ``log10(1 + t)`` and the
            returned ``t0``/``rate`` are in that unit.
        y: ``(T,)`` values; NaNs are dropped.
        y0: Fix the start level (e.g. chance accuracy); ``None`` fits it.
        log_time: Fit against ``log10(1 + t)``.

    Returns:
        ``{"t0", "rate", "y_inf", "y0", "t0_se", "rate_se", "y_inf_se", "y0_se", "rmse", "ok"}``
        (``ok`` False and NaNs when fewer than 5 points or the fit failed; ``y0_se`` 0
        when fixed).
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if log_time:
        t = np.log10(1.0 + t)
    m = np.isfinite(t) & np.isfinite(y)
    t, y = t[m], y[m]
    nan = {k: np.nan for k in PARAMS} | {f"{k}_se": np.nan for k in PARAMS} | {"rmse": np.nan, "ok": False}
    npar = 3 if y0 is not None else 4
    if len(t) < npar + 1 or np.ptp(t) == 0:
        return nan
    lo_y, hi_y = float(y.min()), float(y.max())
    span = max(hi_y - lo_y, 1e-12)
    trange = np.ptp(t)
    # initial guess: midpoint where y crosses half-way between its first and last values
    y_first, y_last = y[: max(1, len(y) // 10)].mean(), y[-max(1, len(y) // 10):].mean()
    half = 0.5 * (y_first + y_last)
    cross = np.flatnonzero((y - half) * np.sign(y_last - y_first + 1e-300) >= 0)
    t0_guess = t[cross[0]] if len(cross) else t.mean()
    best = None
    for rate_guess in (4.0 / trange, 20.0 / trange, 1.0 / trange):
        p0 = [t0_guess, rate_guess, y_last] + ([] if y0 is not None else [y_first])
        f = (lambda tt, a, b, c: sigmoid(tt, a, b, c, y0)) if y0 is not None else sigmoid
        lo = [t.min() - trange, 0.0, lo_y - span] + ([] if y0 is not None else [lo_y - span])
        hi = [t.max() + trange, 1e3 / trange, hi_y + span] + ([] if y0 is not None else [hi_y + span])
        try:
            popt, pcov = curve_fit(f, t, y, p0=p0, bounds=(lo, hi), maxfev=20000)
        except (RuntimeError, ValueError):
            continue
        rmse = float(np.sqrt(np.mean((f(t, *popt) - y) ** 2)))
        if best is None or rmse < best[2] - 1e-15:
            best = (popt, pcov, rmse)
    if best is None:
        return nan
    popt, pcov, rmse = best
    se = np.sqrt(np.clip(np.diag(pcov), 0, np.inf)) if np.all(np.isfinite(pcov)) else np.full(npar, np.nan)
    out = {"t0": popt[0], "rate": popt[1], "y_inf": popt[2], "y0": popt[3] if y0 is None else float(y0),
           "t0_se": se[0], "rate_se": se[1], "y_inf_se": se[2], "y0_se": se[3] if y0 is None else 0.0,
           "rmse": rmse, "ok": True}
    return {k: (float(v) if k != "ok" else v) for k, v in out.items()}


# ----------------------------------------------------------------------------- toy model


def toy_moments(prevalence, reliability, simplicity) -> tuple[np.ndarray, np.ndarray]:
    """``b = E[x y]`` (2,) and ``S = E[x x^T]`` (2, 2) of the two-feature toy model.

    Args:
        prevalence: ``(p_1, p_2)`` with ``p_1 + p_2 >= 1`` (every sample shows a feature).
        reliability: ``(r_1, r_2)`` in [0, 1].
        simplicity: ``(s_1, s_2)`` feature scales > 0.
    """
    p, r, s = (np.asarray(v, dtype=np.float64) for v in (prevalence, reliability, simplicity))
    if p.sum() < 1 - 1e-12:
        raise ValueError(f"prevalence: {p[0]:g} + {p[1]:g} < 1 leaves samples with no feature")
    a = 2 * r - 1
    b = s * p * a
    S = np.diag(s ** 2 * p)
    S[0, 1] = S[1, 0] = s[0] * s[1] * (p.sum() - 1) * a[0] * a[1]
    return b, S


def toy_curves(t: np.ndarray, prevalence, reliability, simplicity, model: str = "two_layer",
               w0: float = 1e-3) -> np.ndarray:
    """Per-pattern margins ``w_i(t) s_i`` under gradient flow of the toy model.

    Args:
        t: ``(T,)`` times (gradient-flow time = learning rate x steps), increasing, >= 0.
        prevalence, reliability, simplicity: per feature, see :func:`toy_moments`.
        model: ``"linear"`` or ``"two_layer"`` (diagonal two-layer linear network).
        w0: Initial effective weight of each feature (``a_i = c_i = sqrt(w0)``).

    Returns:
        ``(T, 2)`` margins; on a one-sided input of feature i the model outputs
        ``margin_i y`` (1 = perfect, 0 = chance).
    """
    b, S = toy_moments(prevalence, reliability, simplicity)
    s = np.asarray(simplicity, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    w_init = np.full(2, float(w0))
    if model == "linear":
        lam, V = np.linalg.eigh(S)
        w_star = np.linalg.lstsq(S, b, rcond=None)[0]
        c = V.T @ (w_init - w_star)
        w = w_star[None, :] + (np.exp(-np.outer(t, lam)) * c[None, :]) @ V.T
    elif model == "two_layer":
        sol = solve_ivp(lambda _, w: 2 * np.abs(w) * (b - S @ w), (0.0, float(t.max())), w_init, t_eval=t,
                        method="LSODA", rtol=1e-9, atol=1e-12)
        if not sol.success:  # pragma: no cover - LSODA handles these smooth systems
            raise RuntimeError(f"toy model integration failed: {sol.message}")
        w = sol.y.T
    else:
        raise ValueError(f"model: expected linear or two_layer, got {model!r}")
    return w * s[None, :]


def toy_onsets(prevalence, reliability, simplicity, model: str = "two_layer", w0: float = 1e-3,
               t_max: float | None = None, n: int = 400) -> dict:
    """Sigmoid fits (:func:`fit_sigmoid`, y0 = 0) of the toy model's two margin curves.

    Returns:
        ``{"t": (n,), "margin": (n, 2), "fits": [fit of feature 1, fit of feature 2]}``.
    """
    b, S = toy_moments(prevalence, reliability, simplicity)
    if t_max is None:
        rate = max(float(np.min(np.abs(b[b != 0]))) if np.any(b != 0) else 1.0, 1e-6)
        t_max = 4.0 * (np.log(1.0 / w0) + 4.0) / rate if model == "two_layer" else 8.0 / max(np.linalg.eigvalsh(S).min(), 1e-6)
    t = np.linspace(0.0, t_max, n)
    m = toy_curves(t, prevalence, reliability, simplicity, model=model, w0=w0)
    fits = [fit_sigmoid(t, m[:, i], y0=0.0) for i in range(2)]
    for i in range(2):  # a feature with no net correlation to the label (b_i <= 0) is never learned
        if b[i] <= 1e-12:
            fits[i] = {k: (np.nan if k != "ok" else False) for k in fits[i]}
    return {"t": t, "margin": m, "fits": fits}
