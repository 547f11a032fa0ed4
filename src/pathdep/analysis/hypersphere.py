"""Brownian motion on hyperspheres: simulation, theory, and a diffusion fit for weights.

What it computes: Brownian motion on the sphere S^{n-1} of radius R in R^n with generator
``D * Laplace-Beltrami`` (the dominoes / hypersphere-walks seed and methods-notes), for
which

    <cos theta(t)>   = exp(-D (n-1) t / R^2)
    <|x_t - x_0|^2>  = 2 R^2 (1 - exp(-D (n-1) t / R^2))

(the initial slope of the second is the flat-space ``2 (n-1) D``; with the probabilists'
``(1/2) Laplacian`` the exponent halves). :func:`simulate_sphere_walk` checks this by small
tangent Gaussian steps (variance ``2 D dt`` in each tangent direction) followed by
re-projection onto the sphere, vectorised over walkers. The scheme is exact in law for the
mean cosine up to a per-step factor ``E[(1 + |xi|^2 / R^2)^{-1/2}]``: the decay rate has a
relative bias of about ``D (n+2) dt / R^2``, so keep ``D (n-1) dt / R^2`` small (e.g.
< 0.005).

:func:`fit_diffusion` applies the model to a weight trajectory: since SGD also changes
``|w|`` (and its noise is anisotropic), the fit is done on the direction ``u = w / |w|``
(R = 1), with ``<|u_t - u_0|^2> = 2 (1 - exp(-D (P-1) t))``; it returns ``D`` in units of
the unit sphere (angular diffusion: a walk of radius R and diffusion D gives ``D / R^2``)
and the norm ratio ``|w_t| / |w_0|``.

:func:`diffusion_gof` is the goodness-of-fit test a fitted ``D`` must pass before it is used
(e.g. in a scaling law): the diffusion form at the fitted ``D`` must match the measured squared
displacement within a factor ``1 + tolerance`` (default 1.3) at every checkpoint after the
first. A ``D`` fitted to a walk the form does not describe is a number without a meaning.

How it was checked: ``tests/analysis/test_hypersphere.py``: simulated ``<cos>`` and
``<|dx|^2>`` match the theory within 3 standard errors for n in {3, 10, 100}; the fitted
D on simulated walks recovers the true D (``/ R^2``) within 5%; the initial slope of the
theory is ``2 (n-1) D``; ``diffusion_gof`` passes simulated unit-sphere walks fitted by
``sphere_diffusion`` and fails a ballistic (``|dx|^2 ~ t^2``) walk.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import curve_fit

__all__ = ["simulate_sphere_walk", "sphere_walk_paths", "theory_cos", "theory_sq_disp",
           "fit_diffusion", "DiffusionFit", "sphere_diffusion", "theory_curves", "diffusion_gof", "baseline_diffusion"]


def theory_cos(t, n: int, R: float, D: float) -> np.ndarray:
    """``<cos theta(t)> = exp(-D (n-1) t / R^2)`` for Brownian motion on S^{n-1}(R)."""
    return np.exp(-D * (n - 1) * np.asarray(t, dtype=np.float64) / R**2)


def theory_sq_disp(t, n: int, R: float, D: float) -> np.ndarray:
    """``<|x_t - x_0|^2> = 2 R^2 (1 - exp(-D (n-1) t / R^2))``."""
    return 2.0 * R**2 * -np.expm1(-D * (n - 1) * np.asarray(t, dtype=np.float64) / R**2)


def _check(n, R, D, dt, steps, walkers):
    if n < 2:
        raise ValueError(f"n: expected a sphere S^(n-1) with n >= 2, got {n}")
    if R <= 0 or D < 0 or dt <= 0 or steps < 0 or walkers < 1:
        raise ValueError(f"sphere walk: expected R > 0, D >= 0, dt > 0, steps >= 0, walkers >= 1; "
                         f"got R={R}, D={D}, dt={dt}, steps={steps}, walkers={walkers}")


def _walk(n, R, D, dt, steps, walkers, seed, record_every, on_record):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((walkers, n))
    x *= R / np.linalg.norm(x, axis=1, keepdims=True)  # uniform random starts
    x0 = x.copy()
    scale = np.sqrt(2.0 * D * dt)
    on_record(0, x, x0)
    for s in range(1, steps + 1):
        xi = rng.standard_normal((walkers, n)) * scale
        xi -= (np.sum(xi * x, axis=1, keepdims=True) / R**2) * x  # tangent projection
        x = x + xi
        x *= R / np.linalg.norm(x, axis=1, keepdims=True)  # back onto the sphere
        if s % record_every == 0:
            on_record(s, x, x0)


def sphere_walk_paths(n: int, R: float, D: float, dt: float, steps: int, walkers: int,
                      seed: int = 0, record_every: int = 1):
    """Positions of ``walkers`` independent Brownian walkers on S^{n-1}(R).

    Args:
        n: ambient dimension (sphere S^{n-1}).
        R: radius.
        D: diffusion constant (generator ``D * Laplace-Beltrami``).
        dt: time step.
        steps: number of steps.
        walkers: number of walkers (uniformly random starting points).
        seed: ``numpy.random.default_rng`` seed.
        record_every: keep every this many steps.

    Returns:
        ``(times (C,), x (C, walkers, n))`` with ``C = steps // record_every + 1``.
    """
    _check(n, R, D, dt, steps, walkers)
    rec_t, rec_x = [], []

    def on_record(s, x, x0):
        rec_t.append(s * dt)
        rec_x.append(x.copy())

    _walk(n, R, D, dt, steps, walkers, seed, record_every, on_record)
    return np.asarray(rec_t), np.stack(rec_x)


def simulate_sphere_walk(n: int, R: float, D: float, dt: float, steps: int, walkers: int,
                         seed: int = 0, record_every: int = 1, return_sem: bool = False):
    """Mean cosine and mean squared displacement of Brownian walkers on S^{n-1}(R).

    Args:
        n, R, D, dt, steps, walkers, seed, record_every: as in :func:`sphere_walk_paths`.
        return_sem: also return the standard errors of both means.

    Returns:
        ``(times (C,), cos_theta_mean (C,), sq_disp_mean (C,))``, plus
        ``(cos_sem (C,), sq_disp_sem (C,))`` if ``return_sem``; ``cos theta`` is
        ``x_t . x_0 / R^2`` and the squared displacement ``|x_t - x_0|^2``.
    """
    _check(n, R, D, dt, steps, walkers)
    rec = {k: [] for k in ("t", "c", "cs", "q", "qs")}

    def on_record(s, x, x0):
        c = np.sum(x * x0, axis=1) / R**2
        q = np.sum((x - x0) ** 2, axis=1)
        rec["t"].append(s * dt)
        rec["c"].append(c.mean())
        rec["q"].append(q.mean())
        rec["cs"].append(c.std(ddof=1) / np.sqrt(walkers) if walkers > 1 else np.nan)
        rec["qs"].append(q.std(ddof=1) / np.sqrt(walkers) if walkers > 1 else np.nan)

    _walk(n, R, D, dt, steps, walkers, seed, record_every, on_record)
    out = (np.asarray(rec["t"]), np.asarray(rec["c"]), np.asarray(rec["q"]))
    if return_sem:
        out = out + (np.asarray(rec["cs"]), np.asarray(rec["qs"]))
    return out


class DiffusionFit(NamedTuple):
    """Result of :func:`fit_diffusion`.

    Attributes:
        D: angular diffusion constant (unit sphere), per unit of ``t``.
        norm_ratio: ``|w_t| / |w_0|``, shape ``(C,)`` or ``(C, K)``.
        D_stderr: standard error of ``D`` from the fit covariance.
        rate: ``D (n - 1)``, the decay rate of ``<cos theta>``.
        n: the dimension used (``P``).
    """

    D: float
    norm_ratio: np.ndarray
    D_stderr: float
    rate: float
    n: int


def fit_diffusion(t, w) -> DiffusionFit:
    """Fit hypersphere diffusion to the direction of a weight trajectory.

    The squared displacement of ``u_t = w_t / |w_t|`` from ``u_0``, averaged over members,
    is fitted (least squares, ``scipy.optimize.curve_fit``) with
    ``2 (1 - exp(-D (P-1) (t - t_0)))``.

    Args:
        t: checkpoint times ``(C,)`` (steps, epochs, or ``steps * lr``).
        w: weights ``(C, P)`` or ``(C, K, P)`` (numpy or torch).

    Returns:
        :class:`DiffusionFit` with ``D`` (unit-sphere units), ``norm_ratio``,
        ``D_stderr``, ``rate`` and ``n = P``.
    """
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    w = w.detach().cpu().to(torch.float64).numpy() if isinstance(w, torch.Tensor) else np.asarray(w, np.float64)
    if w.ndim not in (2, 3) or w.shape[0] != t.shape[0]:
        raise ValueError(f"w: expected (C, P) or (C, K, P) with C = len(t) = {t.shape[0]}, got {w.shape}")
    n = w.shape[-1]
    norms = np.linalg.norm(w, axis=-1)
    u = w / norms[..., None]
    sq = np.sum((u - u[:1]) ** 2, axis=-1)
    sq_mean = sq.reshape(sq.shape[0], -1).mean(axis=1)
    tau = t - t[0]
    ok = tau > 0
    # initial guess from the inverted form, where it is defined
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = -np.log1p(-sq_mean[ok] / 2.0) / tau[ok]
    inv = inv[np.isfinite(inv) & (inv > 0)]
    rate0 = float(np.median(inv)) if inv.size else 1.0 / max(np.ptp(t), 1e-12)

    def model(tt, rate):
        return -2.0 * np.expm1(-rate * tt)

    popt, pcov = curve_fit(model, tau, sq_mean, p0=[rate0], bounds=([0.0], [np.inf]),
                           method="trf", x_scale=[max(rate0, 1e-300)])
    rate = float(popt[0])
    se = float(np.sqrt(pcov[0, 0])) if np.isfinite(pcov[0, 0]) else float("nan")
    return DiffusionFit(D=rate / (n - 1), norm_ratio=norms / norms[:1], D_stderr=se / (n - 1), rate=rate, n=n)


def sphere_diffusion(steps, W, ok) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    """Angular diffusion of each member's weight direction ``u = w / |w|`` on the unit sphere.

    Per member (its own walk, over its valid checkpoints, at least 3):
    ``sphere_sq_disp = |u_t - u_0|^2``, :func:`fit_diffusion` (time in steps) for ``D``,
    and the theory ``2 (1 - exp(-D (P-1) t))`` (:func:`theory_sq_disp`, R = 1) at its D.

    Args:
        steps: checkpoint steps ``(C,)``.
        W: weights ``(C, K, P)``; ``ok`` ``(C, K)`` bool.

    Returns:
        ``(values, failures)``: ``values`` holds ``sphere_sq_disp``, ``norm_ratio``,
        ``sphere_theory`` ``(K, C)`` and ``sphere_D``, ``sphere_D_stderr``, ``sphere_rate``
        ``(K,)`` (NaN where no fit); ``failures`` ``{member: reason}`` for flat curves
        the fit refused.
    """
    C, K, P = W.shape
    steps = np.asarray(steps)
    sq, nr = np.full((K, C), np.nan), np.full((K, C), np.nan)
    sD, sDse, srate = np.full(K, np.nan), np.full(K, np.nan), np.full(K, np.nan)
    failures: dict[int, str] = {}
    for k in range(K):
        good = ok[:, k]
        if good.sum() < 3:
            continue
        wk = W[good, k].astype(np.float64)
        u = wk / np.linalg.norm(wk, axis=1, keepdims=True)
        sq[k, good] = np.sum((u - u[:1]) ** 2, axis=1)
        try:
            fit = fit_diffusion(steps[good].astype(np.float64), wk)
        except (RuntimeError, ValueError) as exc:  # a flat curve: no diffusion to fit
            failures[k] = str(exc).splitlines()[0]
            continue
        nr[k, good] = fit.norm_ratio
        sD[k], sDse[k], srate[k] = fit.D, fit.D_stderr, fit.rate
    tau = (steps - steps[0]).astype(np.float64)
    theory = theory_sq_disp(tau[None, :], P, 1.0, sD[:, None])
    return ({"sphere_sq_disp": sq, "norm_ratio": nr, "sphere_theory": theory,
             "sphere_D": sD, "sphere_D_stderr": sDse, "sphere_rate": srate}, failures)


def theory_curves(dims, R: float = 1.0, D: float = 1.0, rate_dt: float = 0.002, t_max_rate: float = 4.0,
                  walkers: int = 1000, seed: int = 0, points: int = 40, line_points: int = 200) -> dict:
    """Simulated Brownian motion on S^{n-1}(R) for several n, with the closed forms.

    Each sphere is simulated (:func:`simulate_sphere_walk`) with ``dt = rate_dt R^2 / (D (n-1))``
    until ``D (n-1) t / R^2 = t_max_rate``, recorded at about ``points`` times; the closed
    forms :func:`theory_cos` and :func:`theory_sq_disp` on ``line_points`` times.

    Args:
        dims: the ambient dimensions n.
        R, D: radius and diffusion constant.
        rate_dt: ``D (n-1) dt / R^2`` per step; the scheme's relative bias is about
            ``D (n+2) dt / R^2``, so keep it small.
        t_max_rate: the last ``D (n-1) t / R^2``.
        walkers, seed: as in :func:`simulate_sphere_walk`.

    Returns:
        ``{"x": (n_dims, T), "cos", "cos_sem", "sq", "sq_sem": (n_dims, T),
        "x_line": (n_dims, Tl), "cos_line", "sq_line": (n_dims, Tl)}`` with the time axis
        in units of ``D (n-1) t / R^2``.
    """
    R, D = float(R), float(D)
    steps = int(round(float(t_max_rate) / float(rate_dt)))
    every = max(1, steps // points)
    out = {k: [] for k in ("x", "cos", "cos_sem", "sq", "sq_sem", "x_line", "cos_line", "sq_line")}
    for n in dims:
        n = int(n)
        dt = float(rate_dt) * R**2 / (D * (n - 1))
        t, cos, sq, cs, qs = simulate_sphere_walk(n, R, D, dt, steps, int(walkers), seed=int(seed),
                                                  record_every=every, return_sem=True)
        tt = np.linspace(0, t.max(), line_points)
        for key, v in (("x", D * (n - 1) * t / R**2), ("cos", cos), ("cos_sem", cs), ("sq", sq), ("sq_sem", qs),
                       ("x_line", D * (n - 1) * tt / R**2), ("cos_line", theory_cos(tt, n, R, D)),
                       ("sq_line", theory_sq_disp(tt, n, R, D))):
            out[key].append(v)
    return {k: np.stack(v) for k, v in out.items()}


def diffusion_gof(sq_disp, theory, tolerance: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Does the diffusion form describe each member's walk? (goodness of fit of ``D``)

    Args:
        sq_disp: measured ``|u_t - u_0|^2`` ``(K, C)`` (checkpoint 0 is the start; NaN where
            not measured).
        theory: the form at each member's fitted ``D``, ``(K, C)`` (``sphere_theory``).
        tolerance: the form passes if ``max(theory / data, data / theory) <= 1 + tolerance``
            at every checkpoint after the first with data > 0.

    Returns:
        ``(factor (K,), passes (K,))``: the worst factor (NaN without usable checkpoints, inf
        where the theory is <= 0 against data > 0) and the verdict (False where NaN).
    """
    sq = np.atleast_2d(np.asarray(sq_disp, dtype=np.float64))[:, 1:]
    th = np.atleast_2d(np.asarray(theory, dtype=np.float64))[:, 1:]
    ok = np.isfinite(sq) & (sq > 0) & np.isfinite(th)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = th / np.where(ok, sq, 1.0)
        f = np.where(r > 0, np.maximum(r, 1.0 / r), np.inf)
    f = np.where(ok, f, -1.0).max(axis=1)
    factor = np.where(ok.any(axis=1), f, np.nan)
    return factor, np.isfinite(factor) & (factor <= 1.0 + tolerance)


def baseline_diffusion(D, sq_disp, theory, baseline, copy, tolerance: float = 0.3) -> dict[str, np.ndarray]:
    """Per-baseline diffusion constant from the members whose walk the form describes.

    Args:
        D: fitted ``sphere_D`` per member ``(K,)``; sq_disp, theory: ``(K, C)`` as in
            :func:`diffusion_gof`; baseline, copy: ``(K,)`` labels
            (:func:`pathdep.analysis.replicates.labels`).
        tolerance: as in :func:`diffusion_gof`.

    Returns:
        ``{"D": (R,), "n_pass": (R,), "n_members": (R,), "gof_factor": (R,)}``: the mean ``D``
        over the members of block r (the baseline included: it walks too) that pass the test
        (NaN if none passes), how many pass and were tested, and the median worst factor.
    """
    factor, passes = diffusion_gof(sq_disp, theory, tolerance)
    D = np.asarray(D, dtype=np.float64)
    baseline = np.asarray(baseline)
    R = int(baseline.max()) + 1 if len(baseline) else 0
    out = {k: np.full(R, np.nan) for k in ("D", "n_pass", "n_members", "gof_factor")}
    for r in range(R):
        blk = baseline == r
        good = blk & passes & np.isfinite(D)
        out["n_pass"][r], out["n_members"][r] = good.sum(), blk.sum()
        out["D"][r] = D[good].mean() if good.any() else np.nan
        f = factor[blk & np.isfinite(factor)]
        out["gof_factor"][r] = np.median(f) if len(f) else np.nan
    return out
