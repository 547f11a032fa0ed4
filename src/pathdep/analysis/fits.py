"""Functional forms ("scaling laws") fitted to divergence curves d(t).

What it computes: least-squares fits (``scipy.optimize.curve_fit``, trust-region
reflective with bounds, several starting points per model) of candidate growth laws to a
divergence curve ``d(t) >= 0`` (``t`` in steps or epochs; e.g. the weight distance of a
perturbed member to the baseline), parameter standard errors from the covariance
(``sqrt(diag(pcov))``, scaled by the residual variance), AIC and BIC for Gaussian
residuals, and model selection by AIC. The forms (the seed's exponential onset then
linear growth, power laws, flat and spherical Brownian growth, the constant null model)
are defined in :mod:`pathdep.analysis.fit_forms` (registry :data:`MODELS`: ``power_law``,
``power_law_offset``, ``exp_linear``, ``sqrt``, ``sqrt_offset``, ``sphere``, ``linear``,
``constant``).

Fits are done in ``space="log"`` by default (residuals ``log d - log f``: multiplicative
noise, and curves that grow by decades, whose early exponential phase would be invisible
in linear space) or ``space="linear"``. All models see the same points: by default
points with ``t <= 0`` are dropped (``t_min=0``; a pure power law vanishes there and the
``t = 0`` checkpoint is the perturbation itself), and in log space non-positive ``d``.
AIC = ``n ln(RSS/n) + 2(k+1)``, BIC = ``n ln(RSS/n) + (k+1) ln n`` with k fitted
parameters plus the residual variance. Residuals can be weighted (:func:`point_weights`:
``"points"`` equal per checkpoint, ``"time"`` uniform in time, ``"mixed"`` half each), so
that on log-spaced checkpoints the late phase is not outvoted by the onset; the RSS and AIC
are then weighted alike for every form. Out-of-sample judgement (fit on the first part of
the run, predict the rest) is in :mod:`pathdep.analysis.fit_holdout`.

How it was checked: ``tests/analysis/test_fits.py`` generates each of the four default
forms with known parameters and 1% multiplicative noise (fixed seed), recovers the
parameters within a few percent and checks that AIC selects the generating model; plus
linear-space fits with additive noise, exact-data standard errors ~0, and the
dataset / data-frame conversion.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import OptimizeWarning, curve_fit

from pathdep.analysis.fit_forms import DEFAULT_MODELS, MODELS, TINY, FitModel

__all__ = [
    "FitModel", "FitResult", "MODELS", "DEFAULT_MODELS", "WEIGHTS", "point_weights", "fit_model", "fit_all",
    "best_fit", "fits_to_dataset", "dataset_to_frame",
]

#: residual weighting schemes of :func:`point_weights`
WEIGHTS = ("points", "time", "mixed")

_TINY = TINY


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


def point_weights(t, scheme: str = "points") -> np.ndarray:
    """Least-squares weights of the points of a curve, normalised to mean 1.

    Checkpoints are often log-spaced: equal weights per point (``"points"``) are then uniform
    in log time, and the early onset (many points) decides a fit while the long late phase
    (few points) barely counts. ``"time"`` weights each point by the time it stands for
    (its trapezoid cell ``(t_{i+1} - t_{i-1}) / 2``, half cells at the ends): uniform in
    time. ``"mixed"`` gives half the total weight uniformly per point and half uniformly in
    time, so that both the onset and the late phase count.

    Args:
        t: times ``(n,)``, increasing.
        scheme: one of :data:`WEIGHTS`.

    Returns:
        Weights ``(n,)``, positive, mean 1 (all ones for fewer than 2 points or zero span).
    """
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if scheme not in WEIGHTS:
        raise ValueError(f"weights: expected one of {WEIGHTS}, got {scheme!r}")
    n = len(t)
    if scheme == "points" or n < 2 or np.ptp(t) <= 0:
        return np.ones(n)
    edges = np.concatenate([[t[0]], 0.5 * (t[1:] + t[:-1]), [t[-1]]])
    cell = np.diff(edges)
    cell = np.maximum(cell, 1e-12 * np.ptp(t))
    w = cell / cell.mean()
    if scheme == "mixed":
        w = 0.5 * (w + 1.0)
    return w


def _sigma(t, sigma, weights: str, ok):
    """Per-point uncertainties for curve_fit: given ``sigma``, else ``1 / sqrt(weight)``."""
    if sigma is not None:
        return np.asarray(sigma, dtype=np.float64).reshape(-1)[ok]
    if weights == "points":
        return None
    return 1.0 / np.sqrt(point_weights(t[ok], weights))


def fit_model(t, d, model: str | FitModel, space: str = "log", t_min: float | None = 0.0,
              sigma=None, max_nfev: int = 20000, weights: str = "points") -> FitResult:
    """Fit one functional form to a curve.

    Args:
        t: times ``(n,)``.
        d: curve values ``(n,)``, ``>= 0``.
        model: a :data:`MODELS` name or a :class:`FitModel`.
        space: ``"log"`` (residuals of ``log d``) or ``"linear"``.
        t_min: drop points with ``t <= t_min`` (None keeps all).
        sigma: optional per-point uncertainties ``(n,)`` (passed to ``curve_fit``; in the
            fit space); overrides ``weights``.
        max_nfev: function evaluations per start.
        weights: residual weighting (:func:`point_weights`): ``sigma = 1 / sqrt(w)``.

    Returns:
        The :class:`FitResult` of the best start (lowest RSS).
    """
    m = MODELS[model] if isinstance(model, str) else model
    t, d, ok = _prepare(t, d, space, t_min)
    return _fit_prepared(t[ok], d[ok], m, space, _sigma(t, sigma, weights, ok), max_nfev)


def _starts(m: FitModel, t, d, g, y, sigma, lo, hi, max_starts: int | None) -> list:
    """The model's starting points, inside the bounds; with ``max_starts``, only the ones with
    the lowest initial residual sum of squares (most starts of a curve reach the same optimum)."""
    out = []
    for p0 in m.guesses(t, d):
        p0 = np.asarray(p0, dtype=np.float64)
        width = np.where(np.isfinite(hi - lo), hi - lo, np.abs(p0) + 1.0)
        p0 = np.clip(p0, lo + 1e-9 * width + np.where(np.isfinite(lo), 1e-12 * np.abs(lo), 0),
                     hi - 1e-9 * width - np.where(np.isfinite(hi), 1e-12 * np.abs(hi), 0))
        out.append(np.where(np.isfinite(p0), p0, 1.0))
    if max_starts is None or len(out) <= max_starts:
        return out
    w = 1.0 if sigma is None else 1.0 / np.asarray(sigma) ** 2
    with np.errstate(all="ignore"):
        cost = [float(np.sum(w * (y - g(t, *p0)) ** 2)) for p0 in out]
    order = np.argsort(np.where(np.isfinite(cost), cost, np.inf), kind="stable")
    return [out[i] for i in order[:max_starts]]


def _fit_prepared(t, d, m: FitModel, space: str, sigma, max_nfev: int, max_starts: int | None = None) -> FitResult:
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
    for p0 in _starts(m, t, d, g, y, sigma, lo, hi, max_starts):
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
            sigma=None, weights: str = "points", max_starts: int | None = None) -> list[FitResult]:
    """Fit several forms to the same points and rank them by AIC.

    Args:
        t: times ``(n,)`` (steps or epochs).
        d: divergence ``(n,)``, ``>= 0``.
        models: names from :data:`MODELS`; default :data:`DEFAULT_MODELS`.
        space, t_min, sigma, weights: as in :func:`fit_model` (applied identically to all
            models, so their AIC values are comparable).
        max_starts: per form, start only from the this many starting points with the lowest
            initial cost (None: all; ``exp_linear`` has up to 10, most reaching one optimum).

    Returns:
        List of :class:`FitResult`, best (lowest AIC) first, each with ``delta_aic``.
    """
    names = list(DEFAULT_MODELS if models is None else models)
    for nm in names:
        if nm not in MODELS:
            raise ValueError(f"fits.models: expected names from {sorted(MODELS)}, got {nm!r}")
    tt, dd, ok = _prepare(t, d, space, t_min)
    sig = _sigma(tt, sigma, weights, ok)
    results = [_fit_prepared(tt[ok], dd[ok], MODELS[nm], space, sig, 20000, max_starts) for nm in names]
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
    """Flatten a fits dataset (any extra dims, e.g. ``run x baseline``) to one row per
    (curve, model): coordinate columns, ``model``, ``aic``, ``bic``, ``rss``,
    ``delta_aic``, ``n_points``, ``n_params``, ``success``, ``best``, every other per-model
    variable (e.g. the out-of-sample columns of :mod:`pathdep.analysis.fit_holdout`), every
    per-curve variable, and, per parameter ``p``, columns ``p`` and ``p_stderr`` (NaN where
    the model lacks ``p``)."""
    other = [d for d in ds["aic"].dims if d != "model"]
    st = ds.stack(_curve=other) if other else ds.expand_dims(_curve=[0])
    coord_names = [c for c in st.coords if c not in ("model", "param", "_curve")
                   and set(st.coords[c].dims) <= {"_curve"}]
    params = [str(p) for p in st["param"].values]
    models = [str(m) for m in st["model"].values]
    first = ("aic", "bic", "rss", "delta_aic", "n_points", "n_params", "success")
    per_model = list(first) + [v for v in st.data_vars if v not in first and set(st[v].dims) == {"_curve", "model"}]
    per_curve = [v for v in st.data_vars if v != "best_model" and set(st[v].dims) == {"_curve"}]
    cols = {v: st[v].values for v in per_model + per_curve + ["value", "stderr"]}
    best_all = st["best_model"].values.astype(str) if "best_model" in st else None
    rows = []
    for ci in range(st.sizes["_curve"]):
        base = {}
        for c in coord_names:
            v = st.coords[c].values[ci] if st.coords[c].dims else st.coords[c].values
            base[c] = v.item() if np.ndim(v) == 0 and hasattr(v, "item") else v
        best = str(best_all[ci]) if best_all is not None else ""
        for mi, mname in enumerate(models):
            row = dict(base)
            row["model"] = mname
            for k in per_model:
                row[k] = _scalar(cols[k][ci, mi] if st[k].dims[0] == "_curve" else cols[k][mi, ci])
            row["best"] = mname == best
            for k in per_curve:
                row[k] = _scalar(cols[k][ci])
            val = cols["value"][ci] if st["value"].dims[0] == "_curve" else np.moveaxis(cols["value"], -1, 0)[ci]
            se = cols["stderr"][ci] if st["stderr"].dims[0] == "_curve" else np.moveaxis(cols["stderr"], -1, 0)[ci]
            for pi, p in enumerate(params):
                row[p] = val[mi, pi]
                row[f"{p}_stderr"] = se[mi, pi]
            rows.append(row)
    return pd.DataFrame(rows)


def _scalar(v):
    return v.item() if hasattr(v, "item") else v
