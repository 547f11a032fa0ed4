"""Scaling of fitted divergence-law parameters with a swept hyperparameter.

What it computes: collects the parameters fitted by :mod:`pathdep.analysis.fits` (one
curve per run and member) against a swept hyperparameter (learning rate, width, momentum,
epsilon...), summarised per hyperparameter value (mean, standard deviation, standard error
and median over members/curves), and fits power laws ``y = A x^k`` by ordinary least
squares in log-log space - the seed's "scaling laws" ("Path dependence in ML": does the
separation slope scale with the learning rate? with the width?). :func:`scaling_frame` is
the long-format table of one experiment (``scaling.csv``; with an ``lr_eff`` view, the
learning rate corrected for momentum, :mod:`pathdep.config.sweeps`), :func:`summary_table`
the one-table summary over experiments (``fits_summary.csv``).

How it was checked: ``tests/analysis/test_scaling.py``: exact power laws are recovered
(exponent and prefactor to 1e-12, exponent standard error ~0), a noisy power law's
exponent lies within its standard error band, and ``scaling_table`` gives the right
per-value means from both a fits dataset and a data frame; ``scaling_frame`` recovers a
planted power law of a fitted parameter (and of the hypersphere D) and counts the AIC-best
forms; ``summary_table`` reports the preferred form, its share and the exponents
(``tests/stages/test_fits.py`` end to end on synthetic files).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.fits import MODELS, dataset_to_frame

__all__ = ["PowerLawFit", "power_law_fit", "scaling_table", "table_power_laws", "scaling_frame", "summary_table"]


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


SCALING_COLUMNS = ["experiment", "hparam", "value", "quantity", "model", "param", "n", "n_best", "mean", "std", "sem",
                   "median", "fit_stderr", "pl_exponent", "pl_exponent_stderr", "pl_prefactor", "pl_points"]


def _with_best(sub: pd.DataFrame, h: str, params: list) -> pd.DataFrame:
    """:func:`scaling_table` for one form, plus ``n_best`` (how many curves chose it by AIC)."""
    tab = scaling_table(sub, h, model=str(sub["model"].iloc[0]), params=params)
    best = sub.groupby(h, sort=True)["best"].sum() if "best" in sub else 0
    tab["n_best"] = best.reindex(tab.index).fillna(0).astype(int) if isinstance(best, pd.Series) else 0
    return tab


def _form_rows(tab: pd.DataFrame, params: list, head: dict) -> list[dict]:
    """Rows of :func:`scaling_frame` for one (hparam, quantity, model) table."""
    numeric = pd.api.types.is_numeric_dtype(tab.index)
    pos = tab[np.asarray(tab.index, dtype=np.float64) > 0] if numeric else tab.iloc[:0]
    pl = table_power_laws(pos, params) if len(pos) >= 2 else None
    rows = []
    for val, r in tab.iterrows():
        for p in params:
            pv = pos[p].to_numpy(float) if len(pos) else np.empty(0)
            row = {**head, "value": val, "param": p, "n": int(r["n"]), "n_best": int(r["n_best"]), "mean": r[p],
                   "std": r[f"{p}_std"], "sem": r[f"{p}_sem"], "median": r[f"{p}_median"],
                   "fit_stderr": r.get(f"{p}_fit_stderr", np.nan),
                   "pl_exponent": np.nan, "pl_exponent_stderr": np.nan, "pl_prefactor": np.nan,
                   "pl_points": int(np.sum(np.isfinite(pv) & (pv > 0)))}
            if pl is not None:
                row.update(pl_exponent=pl.loc[p, "exponent"], pl_exponent_stderr=pl.loc[p, "stderr"],
                           pl_prefactor=pl.loc[p, "prefactor"])
            rows.append(row)
    return rows


def scaling_frame(fits_df: pd.DataFrame, sphere_df: pd.DataFrame | None, hparams: Sequence[str], experiment: str = "",
                  lr_sweep: bool = False) -> pd.DataFrame:
    """The scaling table of one experiment (long format).

    One row per (hparam, value, quantity, model, param) with ``n`` curves, ``n_best`` (how
    many of them chose this form by AIC), ``mean``, ``std``, ``sem``, ``median`` and
    ``fit_stderr`` (mean standard error of the individual fits) over the perturbed members,
    and the power law of the per-value means against the hyperparameter (``pl_exponent``,
    ``pl_exponent_stderr``, ``pl_prefactor``, ``pl_points``; over the positive values of a
    numeric hyperparameter, NaN otherwise). ``hparam`` is ``none`` for an experiment that
    sweeps nothing (value: the run name). With ``lr_sweep`` the table also has
    ``hparam = lr_eff`` (lr / (1 - momentum) for SGD), the learning-rate-corrected view.

    Args:
        fits_df: per-curve fits (:func:`pathdep.analysis.fits.dataset_to_frame`, with
            columns ``run``, ``quantity``, ``model``, ``best``, one per hyperparameter and
            ``lr_eff``).
        sphere_df: extra rows in the same columns (the hypersphere ``D``, form
            ``sphere_walk``), or None.
        hparams: the swept hyperparameters' column names.
    """
    frames = [fits_df] + ([sphere_df] if sphere_df is not None and len(sphere_df) else [])
    df = pd.concat(frames, ignore_index=True, sort=False)
    hps = list(hparams) or ["none"]
    if not hparams:
        df["none"] = df["run"]
    if lr_sweep and "lr_eff" not in hps:
        hps.append("lr_eff")
    rows = []
    for h in hps:
        for (q, m), sub in df.groupby(["quantity", "model"], sort=False):
            params = [p for p in (list(MODELS[m].params) if m in MODELS else ["D"]) if p in sub.columns]
            if sub[h].isna().all():
                continue
            head = {"experiment": experiment, "hparam": h, "quantity": q, "model": m}
            rows += _form_rows(_with_best(sub, h, params), params, head)
    out = pd.DataFrame(rows, columns=SCALING_COLUMNS)
    if len(out) and not pd.api.types.is_numeric_dtype(out["value"]):
        out["value"] = out["value"].astype(str)
    return out


def _quantity_rows(exp: str, q: str, fq: pd.DataFrame, tab: pd.DataFrame) -> list[dict]:
    """:func:`summary_table` rows of one experiment and quantity."""
    best_counts = fq[fq["best"]].groupby("model").size().sort_values(ascending=False)
    n_curves = int(fq[["run", "member"]].drop_duplicates().shape[0])
    best = str(best_counts.index[0]) if len(best_counts) else ""
    share = float(best_counts.iloc[0] / n_curves) if len(best_counts) else np.nan
    b = fq.loc[(fq["model"] == "power_law") & fq["success"], "b"] if "b" in fq else pd.Series(dtype=float)
    rows = []
    for h, th in tab[tab["quantity"] == q].groupby("hparam", sort=False):
        for m in dict.fromkeys([best, "power_law"]):
            for p, tp in th[th["model"] == m].groupby("param", sort=False):
                rows.append({"experiment": exp, "hparam": h, "quantity": q, "best_model": best,
                             "best_share": share, "n_curves": n_curves,
                             "b_median": b.median(), "b_q25": b.quantile(0.25), "b_q75": b.quantile(0.75),
                             "model": m, "param": p, "values": int(tp["value"].nunique()),
                             "param_mean": float(tp["mean"].mean()),
                             "pl_exponent": tp["pl_exponent"].iloc[0],
                             "pl_exponent_stderr": tp["pl_exponent_stderr"].iloc[0]})
    return rows


def summary_table(experiments: Sequence[tuple[str, pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """One summary table over experiments: preferred forms and exponents.

    Args:
        experiments: ``(name, scaling table, per-curve fits table)`` per experiment
            (``scaling.csv`` and ``fits.csv`` as frames; an empty scaling table is skipped).

    Returns:
        Rows ``experiment, hparam, quantity, best_model`` (the form most often AIC-best over
        the curves of that quantity), ``best_share``, ``b_median``/``b_q25``/``b_q75`` (time
        exponent of the ``power_law`` fits ``d = a t^b`` over all curves), then ``param`` and
        its scaling exponent against the hyperparameter (``pl_exponent`` +-
        ``pl_exponent_stderr``) for the parameters of the preferred form and of
        ``power_law``; and the hypersphere ``D`` rows (quantity ``direction``).
    """
    rows = []
    for exp, tab, fits in experiments:
        if tab.empty:
            continue
        for q, fq in fits.groupby("quantity", sort=False):
            rows += _quantity_rows(exp, q, fq, tab)
        sph = tab[tab["quantity"] == "direction"]
        for h, th in sph.groupby("hparam", sort=False):
            rows.append({"experiment": exp, "hparam": h, "quantity": "direction", "best_model": "sphere_walk",
                         "best_share": np.nan, "n_curves": int(th["n"].sum()), "model": "sphere_walk", "param": "D",
                         "values": int(th["value"].nunique()), "param_mean": float(th["mean"].mean()),
                         "pl_exponent": th["pl_exponent"].iloc[0], "pl_exponent_stderr": th["pl_exponent_stderr"].iloc[0]})
    return pd.DataFrame(rows)
