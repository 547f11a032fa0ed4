"""Scaling of fitted divergence-law parameters with a swept hyperparameter.

What it computes: collects the parameters fitted by :mod:`pathdep.analysis.fits` (one
curve per run and member) against a swept hyperparameter (learning rate, width, momentum,
epsilon...), summarised per hyperparameter value (mean, standard deviation, standard error
and median over members/curves), and fits power laws ``y = A x^k`` by ordinary least
squares in log-log space - the seed's "scaling laws" ("Path dependence in ML": does the
separation slope scale with the learning rate? with the width?). The seed's prediction
that learning-rate effects disappear after "correcting for the learning rate" is tested by
plotting against :func:`lr_corrected_time` ``= steps * lr``.

How it was checked: ``tests/analysis/test_scaling.py``: exact power laws are recovered
(exponent and prefactor to 1e-12, exponent standard error ~0), a noisy power law's
exponent lies within its standard error band, and ``scaling_table`` gives the right
per-value means from both a fits dataset and a data frame.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.fits import MODELS, dataset_to_frame

__all__ = ["PowerLawFit", "power_law_fit", "scaling_table", "table_power_laws", "lr_corrected_time"]


class PowerLawFit(NamedTuple):
    """``y = prefactor * x ** exponent``; ``stderr`` is the exponent's standard error."""

    exponent: float
    prefactor: float
    stderr: float


def power_law_fit(x, y) -> PowerLawFit:
    """Fit ``y = A x^k`` by OLS of ``log y`` on ``log x``.

    Args:
        x: positive abscissae ``(n,)`` (e.g. learning rates).
        y: positive values ``(n,)`` (e.g. fitted slopes); non-finite pairs are dropped.

    Returns:
        :class:`PowerLawFit` ``(exponent k, prefactor A, stderr of k)``; the standard
        error is ``sqrt(s^2 / Sxx)`` with ``s^2 = RSS / (n - 2)`` (NaN for n = 2).

    Raises:
        ValueError: if fewer than two finite pairs remain or a value is <= 0.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"power_law_fit: x and y must have equal lengths, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2:
        raise ValueError(f"power_law_fit: need at least 2 finite points, got {len(x)}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("power_law_fit: x and y must be > 0 for a log-log fit")
    lx, ly = np.log(x), np.log(y)
    mx, my = lx.mean(), ly.mean()
    sxx = np.sum((lx - mx) ** 2)
    if sxx == 0:
        raise ValueError("power_law_fit: x has a single distinct value")
    k = np.sum((lx - mx) * (ly - my)) / sxx
    loga = my - k * mx
    n = len(x)
    if n > 2:
        rss = np.sum((ly - loga - k * lx) ** 2)
        se = float(np.sqrt(rss / (n - 2) / sxx))
    else:
        se = float("nan")
    return PowerLawFit(float(k), float(np.exp(loga)), se)


def lr_corrected_time(steps, lr):
    """Learning-rate-corrected time ``steps * lr`` (the "time" of gradient flow).

    Args:
        steps: step counts (any shape).
        lr: learning rate(s), broadcastable against ``steps``.

    Returns:
        ``np.asarray(steps) * lr`` as float64.
    """
    return np.asarray(steps, dtype=np.float64) * np.asarray(lr, dtype=np.float64)


def _choose_model(df: pd.DataFrame) -> str:
    wins = df[df["best"]].groupby("model").size() if "best" in df else pd.Series(dtype=int)
    if len(wins):
        top = wins[wins == wins.max()].index
        if len(top) == 1:
            return str(top[0])
        sub = df[df["model"].isin(top)]
    else:
        sub = df
    return str(sub.groupby("model")["aic"].sum().idxmin())


def scaling_table(fit_params, hparam: str, model: str | None = None,
                  params: Sequence[str] | None = None) -> pd.DataFrame:
    """Fitted parameters of one model against a swept hyperparameter.

    Args:
        fit_params: a fits dataset (:func:`pathdep.analysis.fits.fits_to_dataset`, with
            ``hparam`` as a coordinate, possibly combined over runs with ``xr.concat``) or
            its data frame (:func:`~pathdep.analysis.fits.dataset_to_frame`, or any frame
            with columns ``hparam``, ``model`` and one column per parameter).
        hparam: the swept hyperparameter's coordinate / column name (e.g. ``"lr"``).
        model: which fitted form to tabulate; default: the one most often best by AIC
            (ties: lowest summed AIC).
        params: parameter names; default: the model's parameters (:data:`fits.MODELS`).

    Returns:
        DataFrame indexed by the sorted ``hparam`` values with columns ``model``, ``n``
        (curves per value) and, per parameter ``p``: ``p`` (mean), ``p_std``, ``p_sem``,
        ``p_median`` over the curves, and ``p_fit_stderr`` (mean of the fits' standard
        errors, when available).
    """
    df = dataset_to_frame(fit_params) if isinstance(fit_params, xr.Dataset) else pd.DataFrame(fit_params)
    if hparam not in df.columns:
        raise ValueError(f"scaling_table: hparam {hparam!r} is not a coordinate/column; have {sorted(df.columns)}")
    if "model" in df.columns:
        model = model or _choose_model(df)
        df = df[df["model"] == model]
        if df.empty:
            raise ValueError(f"scaling_table: no rows for model {model!r}")
    if params is None:
        if model in MODELS:
            params = list(MODELS[model].params)
        else:
            skip = {hparam, "model", "aic", "bic", "rss", "delta_aic", "n_points", "n_params", "success", "best"}
            params = [c for c in df.columns if c not in skip and not str(c).endswith("_stderr")
                      and pd.api.types.is_numeric_dtype(df[c])]
    g = df.groupby(hparam, sort=True)
    out = pd.DataFrame(index=pd.Index(sorted(g.groups), name=hparam))
    out["model"] = model
    out["n"] = g.size()
    for p in params:
        col = g[p]
        out[p] = col.mean()
        out[f"{p}_std"] = col.std(ddof=1)
        out[f"{p}_sem"] = out[f"{p}_std"] / np.sqrt(out["n"])
        out[f"{p}_median"] = col.median()
        if f"{p}_stderr" in df.columns:
            out[f"{p}_fit_stderr"] = g[f"{p}_stderr"].mean()
    return out


def table_power_laws(table: pd.DataFrame, params: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`power_law_fit` of each parameter column of a :func:`scaling_table` against
    its index. Returns a frame indexed by parameter with ``exponent``, ``prefactor``,
    ``stderr`` (NaN rows where the fit is impossible, e.g. non-positive values)."""
    if params is None:
        params = [c for c in table.columns if c not in ("model", "n")
                  and not any(str(c).endswith(s) for s in ("_std", "_sem", "_median", "_fit_stderr"))]
    x = np.asarray(table.index, dtype=np.float64)
    rows = {}
    for p in params:
        try:
            rows[p] = power_law_fit(x, table[p].to_numpy(dtype=np.float64))._asdict()
        except ValueError:
            rows[p] = {"exponent": np.nan, "prefactor": np.nan, "stderr": np.nan}
    return pd.DataFrame.from_dict(rows, orient="index")
