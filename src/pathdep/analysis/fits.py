"""Functional forms ("scaling laws") fitted to divergence curves d(t).

What it computes: least-squares fits (``scipy.optimize.curve_fit``, trust-region
reflective with bounds, several starting points per model) of candidate growth laws to a
divergence curve ``d(t) >= 0`` (``t`` in steps or epochs; e.g. the weight distance of a
perturbed member to the baseline), parameter standard errors from the covariance
(``sqrt(diag(pcov))``, scaled by the residual variance), AIC and BIC for Gaussian
residuals, and model selection by AIC. The forms follow the seed ("Path dependence in
ML": a short exponential phase then a long linear phase; the expected alternatives
being exponential (chaos) and square-root (Brownian) growth) and the hypersphere
random-walk picture (dominoes / hypersphere-walks seed; methods-notes):

================  =====================================================  ==============
name              d(t)                                                   parameters
================  =====================================================  ==============
power_law         ``a t^b``                                              a > 0, b
power_law_offset  ``a t^b + c``                                          a > 0, b, c >= 0
exp_linear        ``d0 e^{r m} (1 + r (t - m))``, ``m = min(t, t_c)``    d0, r > 0, t_c
sqrt              ``sqrt(d0^2 + a^2 t)``  (flat Brownian, ``a^2 = 2nD``) d0, a >= 0
sqrt_offset       ``a sqrt(t) + c``                                      a >= 0, c
sphere            ``sqrt(2 R^2 - (2 R^2 - d0^2) e^{-k t})``              R, d0, k > 0
linear            ``d0 + v t``                                           d0, v
constant          ``c``  (the null model: no growth)                     c > 0
================  =====================================================  ==============

* ``exp_linear``: exponential onset ``d0 e^{r t}`` for ``t < t_c`` continued, for
  ``t >= t_c``, by the tangent line at ``t_c`` (value and slope matched: the curve is
  C^1, and its slope after ``t_c`` is ``r d0 e^{r t_c}``). ``t_c`` is bounded to the
  fitted time range.
* ``sqrt``: independent diffusions add in squares, so a curve starting at ``d0``
  grows as ``d^2 = d0^2 + 2 n D t`` in n flat dimensions; only ``a^2 = 2 n D`` is
  identifiable.
* ``sphere``: Brownian motion with generator ``D * Laplacian`` on the sphere S^{n-1} of
  radius R has ``<|x_t - x_0|^2> = 2 R^2 (1 - exp(-D (n-1) t / R^2))``; for two
  independent walkers started a chord ``d0`` apart ``<x_t . y_t>`` decays with twice the
  rate, giving ``d^2 = 2R^2 - (2R^2 - d0^2) e^{-k t}``. The fit is on ``d`` (the square
  root of this mean-square form); ``k = D (n-1) / R^2`` for one walker against its start
  (``d0 = 0``), ``k = 2 D (n-1) / R^2`` for two walkers.
* ``linear``, ``power_law_offset`` and ``sqrt_offset`` are available but not in
  :data:`DEFAULT_MODELS` (``constant``, ``power_law``, ``exp_linear``, ``sqrt``, ``sphere``).
* ``constant`` is the null model every growth law must beat: without it, a form that can
  flatten (``sphere``, ``sqrt`` with a large ``d0``) "wins" on curves that do not grow.

Fits are done in ``space="log"`` by default (residuals ``log d - log f``: multiplicative
noise, and curves that grow by decades, whose early exponential phase would be invisible
in linear space) or ``space="linear"``. All models see the same points: by default
points with ``t <= 0`` are dropped (``t_min=0``; a pure power law vanishes there and the
``t = 0`` checkpoint is the perturbation itself), and in log space non-positive ``d``.
AIC = ``n ln(RSS/n) + 2(k+1)``, BIC = ``n ln(RSS/n) + (k+1) ln n`` with k fitted
parameters plus the residual variance.

How it was checked: ``tests/analysis/test_fits.py`` generates each of the four default
forms with known parameters and 1% multiplicative noise (fixed seed), recovers the
parameters within a few percent and checks that AIC selects the generating model; plus
linear-space fits with additive noise, exact-data standard errors ~0, and the
dataset / CSV round trip.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import OptimizeWarning, curve_fit

__all__ = [
    "FitModel", "FitResult", "MODELS", "DEFAULT_MODELS", "fit_model", "fit_all", "best_fit",
    "fits_to_dataset", "dataset_to_frame", "fits_to_dataframe", "write_fits_csv",
]

_TINY = 1e-300


# --------------------------------------------------------------------------- models
def _power_law(t, a, b):
    return a * np.power(t, b)


def _power_law_offset(t, a, b, c):
    return a * np.power(t, b) + c


def _exp_linear(t, d0, r, t_c):
    m = np.minimum(t, t_c)
    return d0 * np.exp(r * m) * (1.0 + r * (t - m))


def _exp_linear_internal(t, q0, r, t_c):
    """``exp_linear`` with ``q0 = ln d0``: a vanishing onset amplitude is a finite step in
    ``q0``, where in ``d0`` the optimiser crawls toward the bound (measured: one curve took
    94 s and 200k evaluations in ``d0``, 0.2 s in ``ln d0``, same optimum)."""
    m = np.minimum(t, t_c)
    return np.exp(q0 + r * m) * (1.0 + r * (t - m))


def _exp_linear_to_public(q):
    d0 = float(np.exp(q[0]))
    return np.array([d0, q[1], q[2]]), np.diag([d0, 1.0, 1.0])


def _sqrt(t, d0, a):
    return np.sqrt(np.maximum(d0 * d0 + a * a * t, 0.0))


def _sqrt_offset(t, a, c):
    return a * np.sqrt(np.maximum(t, 0.0)) + c


def _sphere(t, R, d0, k):
    two_r2 = 2.0 * R * R
    return np.sqrt(np.maximum(two_r2 - (two_r2 - d0 * d0) * np.exp(-k * t), 0.0))


def _phi(x):
    """``(1 - exp(-x)) / x``, 1 at x = 0."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 1e-8
    xs = np.where(small, 1.0, x)
    return np.where(small, 1.0 - 0.5 * x, -np.expm1(-xs) / xs)


def _sphere_internal(t, d0, s, u):
    """The sphere form in the fitted coordinates ``s = 2 R^2 k`` (initial slope of d^2) and
    ``u = 1 / R^2`` >= 0: ``d^2 = d0^2 e^{-x} + s t (1 - e^{-x}) / x``, ``x = s u t / 2``.
    ``u -> 0`` is the flat ``sqrt`` form; there the optimiser stops at a bound instead of
    drifting along a flat valley to R = infinity."""
    x = 0.5 * s * u * t
    return np.sqrt(np.maximum(d0 * d0 * np.exp(-x) + s * t * _phi(x), 0.0))


def _sphere_to_public(p):
    d0, s, u = p
    with np.errstate(divide="ignore", invalid="ignore"):
        R = 1.0 / np.sqrt(u) if u > 0 else np.inf
        dR = -0.5 * u ** -1.5 if u > 0 else np.nan
    k = 0.5 * s * u
    J = np.array([[0.0, 0.0, dR], [1.0, 0.0, 0.0], [0.0, 0.5 * u, 0.5 * s]])  # rows R, d0, k
    return np.array([R, d0, k]), J


def _linear(t, d0, v):
    return d0 + v * t


def _loglog(t, d):
    ok = (t > 0) & (d > 0)
    if ok.sum() < 2:
        return 1.0, float(np.mean(d[d > 0])) if np.any(d > 0) else 1.0
    b, loga = np.polyfit(np.log(t[ok]), np.log(d[ok]), 1)
    return float(b), float(np.exp(loga))


def _g_power_law(t, d):
    b, a = _loglog(t, d)
    return [[a, b]]


def _g_power_law_offset(t, d):
    out = []
    for frac in (0.0, 0.5, 0.9):
        c = frac * float(np.min(d))
        b, a = _loglog(t, d - c)
        out.append([a, b, c])
    return out


def _g_exp_linear(t, d):
    out = []
    t0, t1 = float(t.min()), float(t.max())
    dpos = np.maximum(d, _TINY)
    for q in (0.05, 0.15, 0.3, 0.5, 0.7):
        tc = t0 + q * (t1 - t0)
        early, late = t <= tc, t >= tc
        if early.sum() >= 2 and np.ptp(t[early]) > 0:
            r, logd0 = np.polyfit(t[early], np.log(dpos[early]), 1)
            if r > 0:
                out.append([float(np.exp(logd0)), float(r), tc])
        if late.sum() >= 2 and np.ptp(t[late]) > 0:
            s, i = np.polyfit(t[late], d[late], 1)
            v = s * tc + i
            if s > 0 and v > 0:
                r = s / v
                out.append([float(v * np.exp(-r * tc)), float(r), tc])
    if not out:
        out.append([float(dpos.min()), 1.0 / max(t1 - t0, 1e-12), 0.5 * (t0 + t1)])
    return [[float(np.log(max(g[0], _TINY))), g[1], g[2]] for g in out]  # internal (ln d0, r, t_c)


def _g_sqrt(t, d):
    s, i = np.polyfit(t, d * d, 1)
    return [[float(np.sqrt(max(i, 1e-12 * np.max(d * d)))), float(np.sqrt(max(s, 1e-12)))]]


def _g_sqrt_offset(t, d):
    a, c = np.polyfit(np.sqrt(np.maximum(t, 0)), d, 1)
    return [[max(float(a), 1e-12), float(c)]]


def _g_sphere(t, d):
    out = []
    d0 = float(max(d[np.argmin(t)], 0.0))
    n_early = max(3, len(t) // 10)
    order = np.argsort(t)
    te, de = t[order[:n_early]], d[order[:n_early]]
    slope = np.polyfit(te, de * de, 1)[0] if np.ptp(te) > 0 else 0.0
    for f in (1.02, 1.5, 3.0, 10.0):
        R = f * float(np.max(d)) / np.sqrt(2.0)
        span = 2 * R * R - d0 * d0
        k = slope / span if slope > 0 and span > 0 else 1.0 / max(np.ptp(t), 1e-12)
        out.append([d0, 2 * R * R * float(k), 1.0 / (R * R)])  # internal (d0, s, u)
    return out


def _b_power_law(t, d):
    return [0.0, -10.0], [np.inf, 10.0]


def _b_power_law_offset(t, d):
    return [0.0, -10.0, 0.0], [np.inf, 10.0, np.inf]


def _b_exp_linear(t, d):  # internal (ln d0, r, t_c)
    return [-np.inf, 0.0, float(t.min())], [np.inf, np.inf, float(t.max())]


def _b_sqrt(t, d):
    return [0.0, 0.0], [np.inf, np.inf]


def _b_sqrt_offset(t, d):
    return [0.0, -np.inf], [np.inf, np.inf]


def _b_sphere(t, d):  # internal (d0, s, u)
    return [0.0, 0.0, 0.0], [np.inf, np.inf, np.inf]


def _constant(t, c):
    return np.full_like(np.asarray(t, dtype=np.float64), c)


def _g_constant(t, d):
    return [[float(np.median(d))]]


def _b_constant(t, d):
    return [0.0], [np.inf]


def _b_linear(t, d):
    return [-np.inf, -np.inf], [np.inf, np.inf]


def _g_linear(t, d):
    v, d0 = np.polyfit(t, d, 1)
    return [[float(d0), float(v)]]


@dataclass(frozen=True)
class FitModel:
    """A candidate functional form.

    Attributes:
        name: registry key.
        params: parameter names, in the order of ``func``'s arguments after ``t``.
        func: ``func(t (n,), *params) -> d (n,)``.
        guesses: ``guesses(t, d) -> list of p0`` starting points (the best fit is kept).
        bounds: ``bounds(t, d) -> (lower, upper)``.
        formula: human-readable form.
        internal_func: optional ``f(t, *q)`` in other coordinates ``q`` used for the fit
            (``guesses`` and ``bounds`` are then in ``q``).
        to_public: with ``internal_func``: ``q -> (params, d params / d q)``; standard
            errors are propagated with this Jacobian (delta method).
    """

    name: str
    params: tuple
    func: Callable
    guesses: Callable
    bounds: Callable
    formula: str
    internal_func: Callable | None = None
    to_public: Callable | None = None


MODELS: dict[str, FitModel] = {m.name: m for m in [
    FitModel("power_law", ("a", "b"), _power_law, _g_power_law, _b_power_law, "a t^b"),
    FitModel("power_law_offset", ("a", "b", "c"), _power_law_offset, _g_power_law_offset,
             _b_power_law_offset, "a t^b + c"),
    FitModel("exp_linear", ("d0", "r", "t_c"), _exp_linear, _g_exp_linear, _b_exp_linear,
             "d0 exp(r m) (1 + r (t - m)), m = min(t, t_c)", _exp_linear_internal, _exp_linear_to_public),
    FitModel("sqrt", ("d0", "a"), _sqrt, _g_sqrt, _b_sqrt, "sqrt(d0^2 + a^2 t)"),
    FitModel("sqrt_offset", ("a", "c"), _sqrt_offset, _g_sqrt_offset, _b_sqrt_offset, "a sqrt(t) + c"),
    FitModel("sphere", ("R", "d0", "k"), _sphere, _g_sphere, _b_sphere,
             "sqrt(2 R^2 - (2 R^2 - d0^2) exp(-k t))", _sphere_internal, _sphere_to_public),
    FitModel("linear", ("d0", "v"), _linear, _g_linear, _b_linear, "d0 + v t"),
    FitModel("constant", ("c",), _constant, _g_constant, _b_constant, "c"),
]}

# `constant` is the null model: a curve that does not grow is won by it (one parameter), so
# no growth law is credited for fitting a flat line (AIC charges each extra parameter).
DEFAULT_MODELS: tuple[str, ...] = ("constant", "power_law", "exp_linear", "sqrt", "sphere")


# --------------------------------------------------------------------------- results
@dataclass
class FitResult:
    """One model fitted to one curve.

    Attributes:
        model: registry name (see :data:`MODELS`).
        params, stderr: ``{name: value}`` and their standard errors (NaN if unavailable).
        rss: residual sum of squares (in the fit ``space``, weighted by ``sigma`` if given).
        n_points: points used; n_params: fitted parameters.
        aic, bic: Gaussian-residual information criteria (lower is better).
        delta_aic: ``aic - min(aic)`` over the models of the same :func:`fit_all` call.
        success: whether the optimiser converged; message: why not.
        space: ``"log"`` or ``"linear"``.
    """

    model: str
    params: dict
    stderr: dict
    rss: float
    n_points: int
    n_params: int
    aic: float
    bic: float
    success: bool = True
    message: str = ""
    space: str = "log"
    delta_aic: float = float("nan")
    extra: dict = field(default_factory=dict)

    def predict(self, t) -> np.ndarray:
        """Evaluate the fitted curve at times ``t``."""
        m = MODELS[self.model]
        return m.func(np.asarray(t, dtype=np.float64), *[self.params[p] for p in m.params])


def _prepare(t, d, space: str, t_min: float | None):
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    if t.shape != d.shape:
        raise ValueError(f"t, d: expected equal lengths, got {t.shape} and {d.shape}")
    if space not in ("log", "linear"):
        raise ValueError(f"space: expected 'log' or 'linear', got {space!r}")
    ok = np.isfinite(t) & np.isfinite(d)
    if t_min is not None:
        ok &= t > t_min
    if space == "log":
        ok &= d > 0
    return t, d, ok


def fit_model(t, d, model: str | FitModel, space: str = "log", t_min: float | None = 0.0,
              sigma=None, max_nfev: int = 20000) -> FitResult:
    """Fit one functional form to a curve.

    Args:
        t: times ``(n,)``.
        d: curve values ``(n,)``, ``>= 0``.
        model: a :data:`MODELS` name or a :class:`FitModel`.
        space: ``"log"`` (residuals of ``log d``) or ``"linear"``.
        t_min: drop points with ``t <= t_min`` (None keeps all).
        sigma: optional per-point uncertainties ``(n,)`` (passed to ``curve_fit``; in the
            fit space).
        max_nfev: function evaluations per start.

    Returns:
        The :class:`FitResult` of the best start (lowest RSS).
    """
    m = MODELS[model] if isinstance(model, str) else model
    t, d, ok = _prepare(t, d, space, t_min)
    sig = None if sigma is None else np.asarray(sigma, dtype=np.float64).reshape(-1)[ok]
    return _fit_prepared(t[ok], d[ok], m, space, sig, max_nfev)


def _fit_prepared(t, d, m: FitModel, space: str, sigma, max_nfev: int) -> FitResult:
    k = len(m.params)
    n = len(t)
    nan = {p: float("nan") for p in m.params}
    if n < k + 2:
        return FitResult(m.name, dict(nan), dict(nan), float("nan"), n, k, float("inf"), float("inf"),
                         False, f"need at least {k + 2} points, got {n}", space)
    func = m.internal_func or m.func
    if space == "log":
        y = np.log(d)

        def g(tt, *p):
            return np.log(np.maximum(func(tt, *p), _TINY))
    else:
        y = d
        g = func
    lo, hi = (np.asarray(b, dtype=np.float64) for b in m.bounds(t, d))
    best = None
    msg = "no start converged"
    for p0 in m.guesses(t, d):
        p0 = np.asarray(p0, dtype=np.float64)
        width = np.where(np.isfinite(hi - lo), hi - lo, np.abs(p0) + 1.0)
        p0 = np.clip(p0, lo + 1e-9 * width + np.where(np.isfinite(lo), 1e-12 * np.abs(lo), 0),
                     hi - 1e-9 * width - np.where(np.isfinite(hi), 1e-12 * np.abs(hi), 0))
        p0 = np.where(np.isfinite(p0), p0, 1.0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                popt, pcov = curve_fit(g, t, y, p0=p0, bounds=(lo, hi), sigma=sigma,
                                       method="trf", max_nfev=max_nfev, x_scale="jac")
        except (RuntimeError, ValueError) as e:
            msg = str(e).splitlines()[0]
            continue
        res = (y - g(t, *popt)) if sigma is None else (y - g(t, *popt)) / sigma
        rss = float(np.sum(res ** 2))
        if np.isfinite(rss) and (best is None or rss < best[0]):
            best = (rss, popt, pcov)
    if best is None:
        return FitResult(m.name, dict(nan), dict(nan), float("nan"), n, k, float("inf"), float("inf"),
                         False, msg, space)
    rss, popt, pcov = best
    if m.to_public is not None:
        popt, J = m.to_public(popt)
        with np.errstate(invalid="ignore"):
            pcov = J @ pcov @ J.T
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(pcov)) if np.all(np.isfinite(pcov)) else np.full(k, np.nan)
    ll = n * np.log(max(rss, _TINY) / n)
    return FitResult(
        model=m.name,
        params={p: float(v) for p, v in zip(m.params, popt)},
        stderr={p: float(v) for p, v in zip(m.params, se)},
        rss=rss, n_points=n, n_params=k,
        aic=float(ll + 2 * (k + 1)), bic=float(ll + (k + 1) * np.log(n)),
        success=True, message="", space=space,
    )


def fit_all(t, d, models: Sequence[str] | None = None, space: str = "log", t_min: float | None = 0.0,
            sigma=None) -> list[FitResult]:
    """Fit several forms to the same points and rank them by AIC.

    Args:
        t: times ``(n,)`` (steps or epochs).
        d: divergence ``(n,)``, ``>= 0``.
        models: names from :data:`MODELS`; default :data:`DEFAULT_MODELS`.
        space, t_min, sigma: as in :func:`fit_model` (applied identically to all models,
            so their AIC values are comparable).

    Returns:
        List of :class:`FitResult`, best (lowest AIC) first, each with ``delta_aic``.
    """
    names = list(DEFAULT_MODELS if models is None else models)
    for nm in names:
        if nm not in MODELS:
            raise ValueError(f"fits.models: expected names from {sorted(MODELS)}, got {nm!r}")
    tt, dd, ok = _prepare(t, d, space, t_min)
    sig = None if sigma is None else np.asarray(sigma, dtype=np.float64).reshape(-1)[ok]
    results = [_fit_prepared(tt[ok], dd[ok], MODELS[nm], space, sig, 20000) for nm in names]
    amin = min(r.aic for r in results)
    for r in results:
        r.delta_aic = float(r.aic - amin) if np.isfinite(amin) else float("nan")
    return sorted(results, key=lambda r: (r.aic, names.index(r.model)))


def best_fit(results: Sequence[FitResult]) -> FitResult:
    """The result with the lowest AIC."""
    return min(results, key=lambda r: r.aic)


# --------------------------------------------------------------------------- tables
def _one_curve(results: Sequence[FitResult], models: list, params: list) -> dict:
    by = {r.model: r for r in results}
    shape2 = (len(models), len(params))
    val, se = np.full(shape2, np.nan), np.full(shape2, np.nan)
    scal = {k: np.full(len(models), np.nan) for k in ("aic", "bic", "rss", "delta_aic")}
    n_points = np.zeros(len(models), dtype=np.int64)
    n_params = np.zeros(len(models), dtype=np.int64)
    success = np.zeros(len(models), dtype=bool)
    for i, mname in enumerate(models):
        r = by.get(mname)
        if r is None:
            continue
        for p, v in r.params.items():
            val[i, params.index(p)] = v
            se[i, params.index(p)] = r.stderr.get(p, np.nan)
        for k in scal:
            scal[k][i] = getattr(r, k)
        n_points[i], n_params[i], success[i] = r.n_points, r.n_params, r.success
    best = best_fit(results).model if results else ""
    return dict(value=val, stderr=se, n_points=n_points, n_params=n_params, success=success,
                best_model=best, **scal)


def fits_to_dataset(results, coords: Mapping | None = None, dim: str = "curve") -> xr.Dataset:
    """Collect fit results in an ``xarray.Dataset``.

    Args:
        results: ``list[FitResult]`` for one curve, or a list of such lists (one per curve).
        coords: extra coordinates. For one curve, scalars (e.g. ``{"run": "lr0.01",
            "member": 3}``) become scalar coordinates. For several curves, entries whose
            value is a sequence of ``len(results)`` become coordinates along ``dim`` (an entry
            named ``dim`` indexes it; otherwise it is indexed 0..n-1), scalars stay scalar.
        dim: name of the curve dimension for several curves.

    Returns:
        Dataset with ``value``, ``stderr`` (``[dim,] model, param``), ``aic``, ``bic``,
        ``rss``, ``delta_aic``, ``n_points``, ``n_params``, ``success`` (``[dim,] model``)
        and ``best_model`` (``[dim]``); attribute ``formula_<model>`` per model.
    """
    coords = dict(coords or {})
    nested = len(results) > 0 and not isinstance(results[0], FitResult)
    curves = list(results) if nested else [list(results)]
    models = [m for m in MODELS if any(r.model == m for c in curves for r in c)]
    params: list[str] = []
    for mname in models:
        for p in MODELS[mname].params:
            if p not in params:
                params.append(p)
    per = [_one_curve(c, models, params) for c in curves]
    keys = ("value", "stderr")
    keys1 = ("aic", "bic", "rss", "delta_aic", "n_points", "n_params", "success")
    if nested:
        lead = (dim,)
        data = {k: (lead + ("model", "param"), np.stack([p[k] for p in per])) for k in keys}
        data.update({k: (lead + ("model",), np.stack([p[k] for p in per])) for k in keys1})
        data["best_model"] = (lead, np.array([p["best_model"] for p in per], dtype=object).astype(str))
    else:
        data = {k: (("model", "param"), per[0][k]) for k in keys}
        data.update({k: (("model",), per[0][k]) for k in keys1})
        data["best_model"] = ((), per[0]["best_model"])
    ds = xr.Dataset(data, coords={"model": models, "param": params})
    for name, v in coords.items():
        if nested and not np.isscalar(v) and not isinstance(v, str) and len(v) == len(curves):
            ds = ds.assign_coords({name: (dim, list(v))})
        else:
            ds = ds.assign_coords({name: v})
    if nested and dim not in ds.coords:
        ds = ds.assign_coords({dim: np.arange(len(curves))})
    for mname in models:
        ds.attrs[f"formula_{mname}"] = MODELS[mname].formula
    ds.attrs["space"] = curves[0][0].space if curves and curves[0] else ""
    return ds


def dataset_to_frame(ds: xr.Dataset) -> pd.DataFrame:
    """Flatten a fits dataset (any extra dims, e.g. ``run x member``) to one row per
    (curve, model): coordinate columns, ``model``, ``aic``, ``bic``, ``rss``,
    ``delta_aic``, ``n_points``, ``n_params``, ``success``, ``best`` and, per parameter
    ``p``, columns ``p`` and ``p_stderr`` (NaN where the model lacks ``p``)."""
    other = [d for d in ds["aic"].dims if d != "model"]
    st = ds.stack(_curve=other) if other else ds.expand_dims(_curve=[0])
    coord_names = [c for c in st.coords if c not in ("model", "param", "_curve")
                   and set(st.coords[c].dims) <= {"_curve"}]
    params = [str(p) for p in st["param"].values]
    models = [str(m) for m in st["model"].values]
    rows = []
    for ci in range(st.sizes["_curve"]):
        cur = st.isel(_curve=ci)
        base = {}
        for c in coord_names:
            v = cur.coords[c].values
            base[c] = v.item() if np.ndim(v) == 0 else v
        best = str(cur["best_model"].values) if "best_model" in cur else ""
        val, se = cur["value"].values, cur["stderr"].values
        for mi, mname in enumerate(models):
            row = dict(base)
            row["model"] = mname
            for k in ("aic", "bic", "rss", "delta_aic", "n_points", "n_params", "success"):
                row[k] = cur[k].values[mi].item()
            row["best"] = mname == best
            for pi, p in enumerate(params):
                row[p] = val[mi, pi]
                row[f"{p}_stderr"] = se[mi, pi]
            rows.append(row)
    return pd.DataFrame(rows)


def fits_to_dataframe(results, coords: Mapping | None = None, dim: str = "curve") -> pd.DataFrame:
    """:func:`fits_to_dataset` then :func:`dataset_to_frame`."""
    return dataset_to_frame(fits_to_dataset(results, coords, dim))


def write_fits_csv(path, results, coords: Mapping | None = None, dim: str = "curve") -> pd.DataFrame:
    """Write fit results (list(s) of :class:`FitResult` or a fits dataset) as CSV, one row
    per (curve, model); returns the written frame."""
    df = dataset_to_frame(results) if isinstance(results, xr.Dataset) else fits_to_dataframe(results, coords, dim)
    df.to_csv(path, index=False)
    return df
