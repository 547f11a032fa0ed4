"""Fits judged on data they did not see: out-of-sample selection of a divergence curve's form.

What it computes, per curve ``d(t)`` (issue 18, part 2):

* every candidate form (:mod:`pathdep.analysis.fits`) fitted to the whole curve (AIC, BIC as
  before) and, separately, to the checkpoints with ``t <= fit_fraction * t_last`` only
  (default: the first 2/3 of the run, in steps);
* each held-out fit's prediction on the remaining checkpoints (the last third): the
  **extrapolation factor** ``max_i max(f_i / d_i, d_i / f_i)`` over those checkpoints (1 is
  a perfect prediction; 1.3 means off by 30 % at worst) and ``ratio_last = f / d`` at the
  last checkpoint (>1: overshoot); also ``ratio_last`` of the whole-curve fit;
* the **out-of-sample selection**: the form with the smallest extrapolation factor; the curve
  is **described** when that factor is at most ``1 + tolerance`` (default 1.3: every
  held-out checkpoint, the last included, within 30 %), otherwise its verdict is
  :data:`NO_FORM` ("no form describes it") instead of a winner.

The factor is symmetric in over- and undershoot (a form predicting 0 is off by an infinite
factor, not by 100 %), so selection does not favour forms that undershoot.

How it was checked: ``tests/analysis/test_fit_holdout.py``: a planted exponential-then-linear
curve (log-spaced checkpoints, 2 % noise) is recovered out of sample (selected form
``exp_linear``, last checkpoint within 30 %, described); a curve that grows as a power law and
then collapses in the last third (no candidate can foresee it) gets "no form describes it";
the factor and ratio of a known prediction; the dataset / frame columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from pathdep.analysis.fits import DEFAULT_MODELS, FitResult, _prepare, fit_all, fits_to_dataset

__all__ = ["NO_FORM", "Holdout", "CurveFits", "extrapolation", "holdout_fits", "select", "evaluate_curve",
           "curves_to_dataset"]

#: verdict of a curve whose out-of-sample best form misses its last third by more than the tolerance
NO_FORM = "no form describes it"


@dataclass
class Holdout:
    """One form fitted on the early part of a curve and scored on the rest.

    Attributes:
        model: form name.
        fit: the :class:`~pathdep.analysis.fits.FitResult` on ``t <= t_cut``.
        factor: worst ``max(f/d, d/f)`` over the held-out checkpoints (NaN: no fit or no
            held-out point; inf: a prediction <= 0).
        ratio_last: prediction / observation at the last checkpoint.
        t_cut: last time the fit saw; n_heldout: checkpoints scored.
    """

    model: str
    fit: FitResult
    factor: float
    ratio_last: float
    t_cut: float
    n_heldout: int


@dataclass
class CurveFits:
    """Everything fitted to one curve: whole-curve fits (best AIC first), held-out fits, and
    the out-of-sample verdict.

    Attributes:
        results: :func:`~pathdep.analysis.fits.fit_all` on the whole curve.
        holdout: ``{model: Holdout}``.
        ratio_last: ``{model: f / d}`` of the whole-curve fit at the last checkpoint.
        oos_model: the form with the smallest extrapolation factor ("" if none could be scored).
        oos_factor: its factor; oos_err_last: ``|ratio_last - 1|`` of its held-out fit.
        described: ``oos_factor <= 1 + tolerance``; verdict: ``oos_model`` or :data:`NO_FORM`.
        t, d: the points the fits saw (after dropping ``t <= t_min`` and, in log space, d <= 0).
    """

    results: list
    holdout: dict
    ratio_last: dict
    oos_model: str
    oos_factor: float
    oos_err_last: float
    described: bool
    verdict: str
    t_cut: float
    t: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    d: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def extrapolation(pred, obs) -> tuple[float, float]:
    """Worst factor and last ratio of a prediction.

    Args:
        pred, obs: predicted and observed values ``(m,)`` at the held-out checkpoints, in time
            order; points with a non-finite or non-positive observation are skipped.

    Returns:
        ``(factor, ratio_last)``: ``max max(p/o, o/p)`` (inf where a prediction is <= 0 or not
        finite; NaN without points) and ``p/o`` at the last usable checkpoint.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    obs = np.asarray(obs, dtype=np.float64).reshape(-1)
    ok = np.isfinite(obs) & (obs > 0)
    if not ok.any():
        return float("nan"), float("nan")
    p, o = pred[ok], obs[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = p / o
        f = np.where(np.isfinite(r) & (r > 0), np.maximum(r, 1.0 / r), np.inf)
    return float(np.max(f)), float(r[-1]) if np.isfinite(r[-1]) else float("nan")


def holdout_fits(t, d, models: Sequence[str] | None = None, space: str = "log", t_min: float | None = 0.0,
                 weights: str = "points", fit_fraction: float = 2 / 3,
                 max_starts: int | None = None) -> dict[str, Holdout]:
    """Fit each form on ``t <= fit_fraction * t_last`` and score it on the later checkpoints.

    Args:
        t, d: the curve ``(n,)`` (as for :func:`~pathdep.analysis.fits.fit_all`).
        models, space, t_min, weights, max_starts: as in :func:`~pathdep.analysis.fits.fit_all`.
        fit_fraction: the fits see the steps up to this fraction of the last usable step.

    Returns:
        ``{model: Holdout}``.
    """
    if not 0 < fit_fraction < 1:
        raise ValueError(f"fit_fraction: expected a number in (0, 1), got {fit_fraction!r}")
    tt, dd, ok = _prepare(t, d, space, t_min)
    tt, dd = tt[ok], dd[ok]
    names = list(DEFAULT_MODELS if models is None else models)
    t_cut = fit_fraction * float(tt.max()) if len(tt) else float("nan")
    early, late = tt <= t_cut, tt > t_cut
    out = {}
    for r in fit_all(tt[early], dd[early], names, space=space, t_min=None, weights=weights, max_starts=max_starts):
        pred = r.predict(tt[late]) if r.success else np.full(late.sum(), np.nan)
        factor, last = extrapolation(pred, dd[late]) if r.success else (float("nan"), float("nan"))
        out[r.model] = Holdout(r.model, r, factor, last, t_cut, int(late.sum()))
    return out


def select(holdout: Mapping[str, Holdout], tolerance: float = 0.3, order: Sequence[str] = ()) -> tuple:
    """The out-of-sample choice among held-out fits.

    Args:
        holdout: ``{model: Holdout}``.
        tolerance: a form describes the curve if its factor is at most ``1 + tolerance``.
        order: tie-break order of the model names (e.g. by AIC); default: as given.

    Returns:
        ``(model, factor, err_last, described, verdict)``; model "" and factor NaN when no
        form could be scored.
    """
    names = list(order) + [m for m in holdout if m not in order]
    scored = [m for m in names if m in holdout and np.isfinite(holdout[m].factor)]
    if not scored:
        infinite = [m for m in names if m in holdout and holdout[m].factor == np.inf]
        m = infinite[0] if infinite else ""
        return m, (float("inf") if m else float("nan")), float("nan"), False, NO_FORM
    m = min(scored, key=lambda k: holdout[k].factor)
    h = holdout[m]
    described = bool(h.factor <= 1.0 + tolerance)
    return m, h.factor, abs(h.ratio_last - 1.0), described, (m if described else NO_FORM)


def evaluate_curve(t, d, models: Sequence[str] | None = None, space: str = "log", t_min: float | None = 0.0,
                   weights: str = "points", fit_fraction: float = 2 / 3, tolerance: float = 0.3,
                   max_starts: int | None = None) -> CurveFits:
    """Whole-curve fits (AIC) and out-of-sample fits (held-out last part) of one curve.

    Args:
        t, d, models, space, t_min, weights, max_starts: as in :func:`~pathdep.analysis.fits.fit_all`
            (both the whole-curve and the held-out fits).
        fit_fraction, tolerance: as in :func:`holdout_fits` and :func:`select`.

    Returns:
        :class:`CurveFits`.
    """
    tt, dd, ok = _prepare(t, d, space, t_min)
    tt, dd = tt[ok], dd[ok]
    results = fit_all(tt, dd, models, space=space, t_min=None, weights=weights, max_starts=max_starts)
    held = holdout_fits(tt, dd, models, space=space, t_min=None, weights=weights, fit_fraction=fit_fraction,
                        max_starts=max_starts)
    ratio = {}
    for r in results:
        ratio[r.model] = (float(r.predict(tt[-1:])[0] / dd[-1]) if r.success and len(tt) and dd[-1] != 0
                          else float("nan"))
    m, factor, err, described, verdict = select(held, tolerance, [r.model for r in results])
    t_cut = next(iter(held.values())).t_cut if held else float("nan")
    return CurveFits(results, held, ratio, m, factor, err, described, verdict, t_cut, tt, dd)


def curves_to_dataset(curves: Sequence[CurveFits], coords: Mapping | None = None, dim: str = "curve") -> xr.Dataset:
    """:func:`~pathdep.analysis.fits.fits_to_dataset` of the whole-curve fits plus the
    out-of-sample variables and the points each curve's fits saw.

    Returns:
        The fits dataset with, per ``dim x model``: ``ratio_last`` (whole-curve fit),
        ``oos_factor``, ``oos_ratio_last``, ``oos_selected``; per ``dim x model x param``:
        ``value_oos`` (held-out fit parameters); per ``dim``: ``oos_model``, ``oos_factor_selected``,
        ``oos_err_last``, ``described``, ``verdict``, ``t_cut``; per ``dim x point``:
        ``curve_t``, ``curve_d`` (NaN-padded).
    """
    ds = fits_to_dataset([c.results for c in curves], coords, dim=dim)
    models, params = [str(m) for m in ds["model"].values], [str(p) for p in ds["param"].values]
    n, nm = len(curves), len(models)
    per = {k: np.full((n, nm), np.nan) for k in ("ratio_last", "oos_factor", "oos_ratio_last")}
    sel = np.zeros((n, nm), dtype=bool)
    val = np.full((n, nm, len(params)), np.nan)
    npts = max([len(c.t) for c in curves] + [1])
    ct, cd = np.full((n, npts), np.nan), np.full((n, npts), np.nan)
    for i, c in enumerate(curves):
        for j, m in enumerate(models):
            per["ratio_last"][i, j] = c.ratio_last.get(m, np.nan)
            h = c.holdout.get(m)
            if h is not None:
                per["oos_factor"][i, j], per["oos_ratio_last"][i, j] = h.factor, h.ratio_last
                for p, v in h.fit.params.items():
                    val[i, j, params.index(p)] = v
            sel[i, j] = m == c.oos_model
        ct[i, :len(c.t)], cd[i, :len(c.d)] = c.t, c.d
    for k, v in per.items():
        ds[k] = ((dim, "model"), v)
    ds["oos_selected"] = ((dim, "model"), sel)
    ds["value_oos"] = ((dim, "model", "param"), val)
    ds["oos_model"] = ((dim,), np.array([c.oos_model for c in curves], dtype=object).astype(str))
    ds["oos_factor_selected"] = ((dim,), np.array([c.oos_factor for c in curves], dtype=float))
    ds["oos_err_last"] = ((dim,), np.array([c.oos_err_last for c in curves], dtype=float))
    ds["described"] = ((dim,), np.array([c.described for c in curves], dtype=bool))
    ds["verdict"] = ((dim,), np.array([c.verdict for c in curves], dtype=object).astype(str))
    ds["t_cut"] = ((dim,), np.array([c.t_cut for c in curves], dtype=float))
    ds["curve_t"] = ((dim, "point"), ct)
    ds["curve_d"] = ((dim, "point"), cd)
    return ds
