"""The candidate functional forms ("scaling laws") of divergence curves d(t), with their
starting points and bounds for :mod:`pathdep.analysis.fits`.

The forms follow the seed ("Path dependence in ML": a short exponential phase then a long
linear phase; the expected alternatives being exponential (chaos) and square-root
(Brownian) growth) and the hypersphere random-walk picture (dominoes / hypersphere-walks
seed; methods-notes):

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

How it was checked: ``tests/analysis/test_fits.py`` generates each default form with known
parameters and noise and recovers them through :func:`pathdep.analysis.fits.fit_all`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["FitModel", "MODELS", "DEFAULT_MODELS", "TINY"]

#: floor of logarithms and divisions
TINY = 1e-300


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
    """``d^2 = d0^2 e^{-kt} + 2 R^2 (1 - e^{-kt})``, with ``expm1``: a fit far from the sphere's
    curvature (R large, k small) otherwise cancels to 0 in ``2R^2 - (2R^2 - d0^2) e^{-kt}``."""
    with np.errstate(invalid="ignore", over="ignore"):
        d2 = d0 * d0 * np.exp(-k * t) - 2.0 * R * R * np.expm1(-k * t)
    return np.sqrt(np.maximum(d2, 0.0))


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
    dpos = np.maximum(d, TINY)
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
    return [[float(np.log(max(g[0], TINY))), g[1], g[2]] for g in out]  # internal (ln d0, r, t_c)


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
