"""Scaling of fitted divergence-law parameters with a swept hyperparameter.

What it computes: collects the parameters fitted by :mod:`pathdep.analysis.fits` (one
curve per run and baseline: the copies of each baseline are averaged before fitting, so the
curves of one value are independent replicates) against a swept hyperparameter (learning
rate, width, momentum, epsilon...), summarised per hyperparameter value (mean, 95 % t
interval across baselines by :func:`pathdep.analysis.replicates.interval`, standard
deviation, standard error and median over the curves), and fits power laws ``y = A x^k`` by
ordinary least squares in log-log space - the seed's "scaling laws" ("Path dependence in ML":
does the separation slope scale with the learning rate? with the width?). A law needs at
least :data:`MIN_VALUES` swept values spanning :data:`MIN_DECADES` decade (otherwise ``pl_note``
says "too few points"); momentum laws are in ``1 - m``; the exponent's interval is taken
across baselines (one exponent per baseline; NaN with one baseline). :func:`scaling_frame`
is the long-format table of one experiment (``scaling.csv``; with an ``lr_eff`` view, the
learning rate corrected for momentum, :mod:`pathdep.config.sweeps`), :func:`summary_table`
the one-table summary over experiments (``fits_summary.csv``), with the share of curves a
form describes out of sample (:func:`described_share`, :mod:`pathdep.analysis.fit_holdout`).

How it was checked: ``tests/analysis/test_scaling.py``: exact power laws are recovered
(exponent and prefactor to 1e-12, exponent standard error ~0), a noisy power law's
exponent lies within its standard error band, and ``scaling_table`` gives the right
per-value means from both a fits dataset and a data frame; ``scaling_frame`` recovers a
planted power law of a fitted parameter (and of the hypersphere D) over 4 values and two
decades, refuses 3 values or less than a decade ("too few points"), fits momentum laws in
``1 - m``, gives the exponent interval across two baselines and none for one, and counts the
AIC-best forms; ``summary_table`` reports the preferred form, its share, the described share
and the exponents (``tests/stages/test_fits.py`` end to end on synthetic files).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.fits import MODELS, dataset_to_frame
from pathdep.analysis.replicates import interval

__all__ = ["PowerLawFit", "power_law_fit", "scaling_table", "table_power_laws", "scaling_frame", "summary_table",
           "law_abscissa", "law_allowed", "described_share", "MIN_VALUES", "MIN_DECADES", "TOO_FEW"]


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


SCALING_COLUMNS = ["experiment", "hparam", "value", "quantity", "model", "param", "n", "n_best", "n_selected",
                   "n_described", "mean", "lo", "hi", "std", "sem", "median", "fit_stderr", "pl_x", "pl_exponent",
                   "pl_exponent_lo", "pl_exponent_hi", "pl_exponent_stderr", "pl_prefactor", "pl_points", "pl_note"]

#: the least a power law of a parameter against a swept value is fitted through
MIN_VALUES, MIN_DECADES = 4, 1.0
#: ``pl_note`` of a sweep too short for a power law
TOO_FEW = "too few points"
#: parameters of the rows that are not fitted forms: the hypersphere D and the final observed value
EXTRA_PARAMS = {"sphere_walk": ["D"], "final": ["value"]}


def law_abscissa(hparam: str, values) -> tuple[np.ndarray, str]:
    """The variable a scaling law is a power of: ``1 - m`` for a momentum ``m`` (momenta
    0.5-0.95 are less than a decade, ``1 - m`` spans 0.05-0.5 and is the time scale
    ``1 / (1 - m)`` of the velocity), the value itself otherwise.

    Returns:
        ``(x (n,), its name)``.
    """
    x = np.asarray(values, dtype=np.float64)
    return (1.0 - x, "1 - momentum") if hparam == "momentum" else (x, hparam)


def law_allowed(x) -> bool:
    """At least :data:`MIN_VALUES` distinct positive values spanning :data:`MIN_DECADES` decades."""
    x = np.unique(np.asarray(x, dtype=np.float64))
    x = x[np.isfinite(x) & (x > 0)]
    return len(x) >= MIN_VALUES and float(np.log10(x.max() / x.min())) >= MIN_DECADES - 1e-12


def _with_best(sub: pd.DataFrame, h: str, params: list) -> pd.DataFrame:
    """:func:`scaling_table` for one form, plus how many curves chose it by AIC (``n_best``),
    out of sample (``n_selected``), and were described by it (``n_described``), and the 95 %
    interval of each parameter across the curves (one per baseline: ``p_lo``, ``p_hi``)."""
    tab = scaling_table(sub, h, model=str(sub["model"].iloc[0]), params=params)
    g = sub.groupby(h, sort=True)
    for col, src in (("n_best", "best"), ("n_selected", "oos_selected")):
        tab[col] = g[src].sum().reindex(tab.index).fillna(0).astype(int) if src in sub else 0
    if "oos_selected" in sub and "described" in sub:
        both = (sub["oos_selected"].astype(bool) & sub["described"].astype(bool)).groupby(sub[h], sort=True).sum()
        tab["n_described"] = both.reindex(tab.index).fillna(0).astype(int)
    else:
        tab["n_described"] = 0
    for p in params:
        lo, hi = [], []
        for val in tab.index:
            _, a, b = interval(sub.loc[sub[h] == val, p].to_numpy(dtype=float))
            lo.append(float(a))
            hi.append(float(b))
        tab[f"{p}_lo"], tab[f"{p}_hi"] = lo, hi
    return tab


def _baseline_exponents(sub: pd.DataFrame, h: str, p: str, xname: str) -> np.ndarray:
    """The power-law exponent of parameter ``p`` against the swept value, per baseline (NaN
    where a baseline's points do not allow a law)."""
    key = "baseline" if "baseline" in sub else None
    groups = sub.groupby(key, sort=True) if key else [(0, sub)]
    out = []
    for _, g in groups:
        m = g.groupby(h, sort=True)[p].mean()
        x, _ = law_abscissa(h, np.asarray(m.index, dtype=float))
        y = m.to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        out.append(power_law_fit(x[ok], y[ok]).exponent if law_allowed(x[ok]) else np.nan)
    return np.asarray(out, dtype=float)


def _law(tab: pd.DataFrame, sub: pd.DataFrame, h: str, p: str) -> dict:
    """The power law of parameter ``p`` against the swept value (per-value means), its exponent
    interval across baselines, or ``pl_note = too few points``."""
    out = {"pl_x": h, "pl_exponent": np.nan, "pl_exponent_lo": np.nan, "pl_exponent_hi": np.nan,
           "pl_exponent_stderr": np.nan, "pl_prefactor": np.nan, "pl_points": 0, "pl_note": ""}
    if not pd.api.types.is_numeric_dtype(tab.index):
        out["pl_note"] = "not numeric"
        return out
    x, out["pl_x"] = law_abscissa(h, np.asarray(tab.index, dtype=float))
    y = tab[p].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    out["pl_points"] = int(ok.sum())
    if not law_allowed(x[ok]):
        out["pl_note"] = TOO_FEW
        return out
    fit = power_law_fit(x[ok], y[ok])
    mean, lo, hi = interval(_baseline_exponents(sub, h, p, out["pl_x"]))
    out.update(pl_exponent=float(mean) if np.isfinite(mean) else fit.exponent, pl_exponent_lo=float(lo),
               pl_exponent_hi=float(hi), pl_exponent_stderr=fit.stderr, pl_prefactor=fit.prefactor)
    return out


def _form_rows(tab: pd.DataFrame, sub: pd.DataFrame, h: str, params: list, head: dict) -> list[dict]:
    """Rows of :func:`scaling_frame` for one (hparam, quantity, model) table."""
    rows = []
    for p in params:
        law = _law(tab, sub, h, p)
        for val, r in tab.iterrows():
            rows.append({**head, "value": val, "param": p, "n": int(r["n"]), "n_best": int(r["n_best"]),
                         "n_selected": int(r["n_selected"]), "n_described": int(r["n_described"]), "mean": r[p],
                         "lo": r[f"{p}_lo"], "hi": r[f"{p}_hi"], "std": r[f"{p}_std"], "sem": r[f"{p}_sem"],
                         "median": r[f"{p}_median"], "fit_stderr": r.get(f"{p}_fit_stderr", np.nan), **law})
    return rows


def scaling_frame(fits_df: pd.DataFrame, extra_df: pd.DataFrame | None, hparams: Sequence[str], experiment: str = "",
                  lr_sweep: bool = False) -> pd.DataFrame:
    """The scaling table of one experiment (long format).

    One row per (hparam, value, quantity, model, param) over the curves of that value (one
    curve per baseline: the copies of a baseline are averaged before fitting): ``n`` curves,
    ``n_best`` (how many chose this form by AIC), ``n_selected`` (out of sample),
    ``n_described`` (selected and within the tolerance), ``mean``, the 95 % t interval across
    baselines ``lo``/``hi`` (NaN with one baseline), ``std``, ``sem``, ``median``, ``fit_stderr``
    (mean standard error of the individual fits); and the power law of the per-value means
    against the swept value ``x`` (``pl_x``: the hyperparameter, ``1 - momentum`` for a momentum):
    ``pl_exponent`` (mean of the per-baseline exponents), its interval across baselines
    ``pl_exponent_lo``/``_hi``, the OLS standard error of the fit to the means
    ``pl_exponent_stderr``, ``pl_prefactor``, ``pl_points``; a sweep of fewer than
    :data:`MIN_VALUES` positive values or less than :data:`MIN_DECADES` decade gets no law
    (``pl_note = "too few points"``). ``hparam`` is ``none`` for an experiment that sweeps
    nothing (value: the run name). With ``lr_sweep`` the table also has ``hparam = lr_eff``
    (lr / (1 - momentum) for SGD), the learning-rate-corrected view.

    Args:
        fits_df: per-curve fits (:func:`pathdep.analysis.fits.dataset_to_frame`, with
            columns ``run``, ``baseline``, ``quantity``, ``model``, ``best``, one per
            hyperparameter and ``lr_eff``).
        extra_df: extra rows in the same columns (the hypersphere ``D``, form ``sphere_walk``;
            the final observed values, form ``final``, param ``value``), or None.
        hparams: the swept hyperparameters' column names.
    """
    frames = [fits_df] + ([extra_df] if extra_df is not None and len(extra_df) else [])
    df = pd.concat(frames, ignore_index=True, sort=False)
    hps = list(hparams) or ["none"]
    if not hparams:
        df["none"] = df["run"]
    if lr_sweep and "lr_eff" not in hps:
        hps.append("lr_eff")
    rows = []
    for h in hps:
        for (q, m), sub in df.groupby(["quantity", "model"], sort=False):
            params = [p for p in (list(MODELS[m].params) if m in MODELS else EXTRA_PARAMS.get(m, []))
                      if p in sub.columns]
            sub = sub[sub[h].notna()]
            if sub.empty or not params:
                continue
            head = {"experiment": experiment, "hparam": h, "quantity": q, "model": m}
            rows += _form_rows(_with_best(sub, h, params), sub, h, params, head)
    out = pd.DataFrame(rows, columns=SCALING_COLUMNS)
    if len(out) and not pd.api.types.is_numeric_dtype(out["value"]):
        out["value"] = out["value"].astype(str)
    return out


def _curve_keys(df: pd.DataFrame) -> list[str]:
    return [c for c in ("run", "baseline" if "baseline" in df else "member") if c in df]


def described_share(fits: pd.DataFrame) -> dict:
    """How many curves a selected form describes out of sample.

    Args:
        fits: per (curve, model) rows with ``quantity``, ``run``, ``baseline`` (or ``member``),
            ``described``, ``oos_selected``, ``model``.

    Returns:
        ``{"n_curves", "n_described", "frac_described", "oos_model"}``: ``oos_model`` the form
        most often selected among the described curves, or ``no form describes it``.
    """
    keys = ["quantity"] + _curve_keys(fits)
    if "described" not in fits:
        return {"n_curves": int(fits[keys].drop_duplicates().shape[0]), "n_described": 0,
                "frac_described": np.nan, "oos_model": ""}
    cur = fits.drop_duplicates(keys)
    n, k = len(cur), int(cur["described"].astype(bool).sum())
    sel = fits[fits["oos_selected"].astype(bool) & fits["described"].astype(bool)] if k else fits.iloc[:0]
    top = sel.groupby("model").size().sort_values(ascending=False)
    return {"n_curves": n, "n_described": k, "frac_described": k / n if n else np.nan,
            "oos_model": str(top.index[0]) if len(top) else "no form describes it"}


def _quantity_rows(exp: str, q: str, fq: pd.DataFrame, tab: pd.DataFrame) -> list[dict]:
    """:func:`summary_table` rows of one experiment and quantity."""
    best_counts = fq[fq["best"]].groupby("model").size().sort_values(ascending=False)
    n_curves = int(fq[_curve_keys(fq)].drop_duplicates().shape[0])
    best = str(best_counts.index[0]) if len(best_counts) else ""
    share = float(best_counts.iloc[0] / n_curves) if len(best_counts) else np.nan
    b = fq.loc[(fq["model"] == "power_law") & fq["success"], "b"] if "b" in fq else pd.Series(dtype=float)
    oos = described_share(fq)
    rows = []
    for h, th in tab[tab["quantity"] == q].groupby("hparam", sort=False):
        for m in dict.fromkeys([best, oos["oos_model"], "power_law"]):
            for p, tp in th[th["model"] == m].groupby("param", sort=False):
                rows.append({"experiment": exp, "hparam": h, "quantity": q, "best_model": best,
                             "best_share": share, **oos,
                             "b_median": b.median(), "b_q25": b.quantile(0.25), "b_q75": b.quantile(0.75),
                             "model": m, "param": p, "values": int(tp["value"].nunique()),
                             "param_mean": float(tp["mean"].mean()),
                             **{c: tp[c].iloc[0] for c in ("pl_x", "pl_exponent", "pl_exponent_lo", "pl_exponent_hi",
                                                           "pl_exponent_stderr", "pl_note")}})
    if not rows:  # no scaling rows (e.g. no form table for this quantity): the share alone
        rows.append({"experiment": exp, "hparam": "", "quantity": q, "best_model": best, "best_share": share, **oos})
    return rows


def summary_table(experiments: Sequence[tuple[str, pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """One summary table over experiments: preferred forms, how many curves they describe
    out of sample, and exponents.

    Args:
        experiments: ``(name, scaling table, per-curve fits table)`` per experiment
            (``scaling.csv`` and ``fits.csv`` as frames; an empty scaling table is skipped).

    Returns:
        Rows ``experiment, hparam, quantity, best_model`` (the form most often AIC-best over
        the curves of that quantity), ``best_share``, ``n_curves``, ``n_described``,
        ``frac_described`` (the share of curves whose out-of-sample form predicts the last
        third within the tolerance), ``oos_model`` (the form most often selected out of sample
        among the described curves, or "no form describes it"), ``b_median``/``b_q25``/``b_q75``
        (time exponent of the ``power_law`` fits), then ``param`` and its scaling exponent
        against the swept value (``pl_x``, ``pl_exponent`` in ``[pl_exponent_lo,
        pl_exponent_hi]`` across baselines, ``pl_exponent_stderr``, ``pl_note``) for the
        parameters of the AIC-preferred form, the out-of-sample form and ``power_law``; the
        hypersphere ``D`` rows (quantity ``direction``); and rows ``experiment = all`` (per
        quantity and ``quantity = all``) with the described shares over every experiment.
    """
    rows, every = [], []
    for exp, tab, fits in experiments:
        if tab.empty:
            continue
        every.append(fits.assign(run=exp + "/" + fits["run"].astype(str)))
        for q, fq in fits.groupby("quantity", sort=False):
            rows += _quantity_rows(exp, q, fq, tab)
        sph = tab[(tab["quantity"] == "direction") & (tab["model"] == "sphere_walk")]
        for h, th in sph.groupby("hparam", sort=False):
            rows.append({"experiment": exp, "hparam": h, "quantity": "direction", "best_model": "sphere_walk",
                         "best_share": np.nan, "n_curves": int(th["n"].sum()), "model": "sphere_walk", "param": "D",
                         "values": int(th["value"].nunique()), "param_mean": float(th["mean"].mean()),
                         **{c: th[c].iloc[0] for c in ("pl_x", "pl_exponent", "pl_exponent_lo", "pl_exponent_hi",
                                                       "pl_exponent_stderr", "pl_note")}})
    if every:
        allf = pd.concat(every, ignore_index=True, sort=False)
        for q, fq in list(allf.groupby("quantity", sort=False)) + [("all", allf)]:
            rows.append({"experiment": "all", "hparam": "", "quantity": q, **described_share(fq)})
    return pd.DataFrame(rows)
