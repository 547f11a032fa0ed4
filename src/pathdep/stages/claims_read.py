"""Readers of the claims ledger: one function per claim id, from a results directory to an
:class:`pathdep.analysis.claims.Outcome` (rule ``claims``; :mod:`pathdep.stages.claims`).

Each reader opens only the files its claim needs (``results/<exp>/*/metrics.nc``,
``results/<exp>/fits.csv``, ``results/spread/spread.csv``, ``results/lyapunov/study*``,
``results/koopman/*``, ``results/ntk/*.nc``, ``results/<exp>/patterns_summary.csv``) and
calls a statistic of :mod:`pathdep.analysis.claims_stats`. A missing file raises
:class:`Missing` (the ledger says "not run" and names the config that runs it); a file
without a column the statistic needs raises :class:`Unusable` (the ledger says
"inconclusive" with the reason). Curves of replicate baselines are averaged over the copies
of each baseline first (:func:`pathdep.analysis.replicates.per_baseline`); files written
before replicate baselines are one baseline.
How it was checked: ``tests/stages/test_claims.py`` on a synthetic results tree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis import claims_stats as S
from pathdep.analysis.claims import (decide_below, final_value, late_exponent, late_slope, nearest, region,
                                     steps_per_epoch)
from pathdep.analysis.replicates import labels, per_baseline


class Missing(Exception):
    """A result file the claim needs does not exist (the experiment was not run)."""


class Unusable(Exception):
    """A result file exists but lacks what the statistic needs (the message says what)."""


def _need(path: Path) -> Path:
    if not path.exists():
        raise Missing(str(path))
    return path


def _csv(path: Path, cols: tuple[str, ...]) -> pd.DataFrame:
    df = pd.read_csv(_need(path))
    lack = [c for c in cols if c not in df.columns]
    if lack:
        raise Unusable(f"{path.name} lacks {', '.join(lack)}")
    return df


def _order(x) -> tuple:
    try:
        return (0, float(x), "")
    except (TypeError, ValueError):
        return (1, 0.0, "" if str(x) in ("mlp", "sgd") else str(x))


def sweep(results: Path, exp: str, var: str = "dist") -> tuple[list, list, list]:
    """``(swept values, steps per run, per-baseline curves (R, C) per run)`` of an
    experiment's runs, in sweep order (numbers ascending, else mlp/sgd first)."""
    files = sorted((results / exp).glob("*/metrics.nc"))
    if not files:
        raise Missing(str(results / exp / "<run>" / "metrics.nc"))
    runs = []
    for f in files:
        with xr.open_dataset(f, engine="h5netcdf") as ds:
            if var not in ds:
                raise Unusable(f"{f.parent.name}/metrics.nc lacks {var}")
            swept = json.loads(ds.attrs.get("swept", "{}") or "{}")
            b, c = labels(ds)
            runs.append((next(iter(swept.values()), f.parent.name), ds["step"].values,
                         per_baseline(ds[var].values, b, c)))
    runs.sort(key=lambda r: _order(r[0]))
    r_min = min(r[2].shape[0] for r in runs)
    return [r[0] for r in runs], [r[1] for r in runs], [r[2][:r_min] for r in runs]


def _per_run(stat, steps: list, curves: list) -> np.ndarray:
    """``(R, n)``: ``stat(steps, curve)`` of each baseline's curve in each run."""
    return np.array([[stat(s, row) for row in c] for s, c in zip(steps, curves)]).T


def _fits(results: Path, exp: str, quantity: str = "dist") -> pd.DataFrame:
    """The rows of one quantity of ``results/<exp>/fits.csv`` with ``selected_form`` (the form
    that describes the row's curve: out of sample, ``none`` where no form does, when the file
    has ``oos_model``/``described``; else the in-sample AIC-``best`` form) and ``baseline``."""
    df = _csv(results / exp / "fits.csv", ("model",))
    if "quantity" in df:
        df = df[df["quantity"] == quantity]
    keys = [k for k in ("run", "baseline", "member", "curve") if k in df]
    if "oos_model" in df:
        desc = df["described"].astype(str).str.lower() == "true" if "described" in df else True
        form = df["oos_model"].astype(str).where(desc, "none")
    elif "best" in df:
        form = df["model"].where(df["best"].astype(str).str.lower() == "true")
        form = form.groupby([df[k] for k in keys]).transform("first") if keys else form
    else:
        raise Unusable("fits.csv has neither oos_model nor best")
    return df.assign(selected_form=form.fillna("none").astype(str),
                     baseline=df["baseline"].astype(int) if "baseline" in df else 0), keys


def selected_forms(results: Path, exp: str, quantity: str = "dist") -> tuple[np.ndarray, np.ndarray]:
    """``(selected form, baseline)`` of each fitted curve of ``results/<exp>/fits.csv``."""
    df, keys = _fits(results, exp, quantity)
    df = df.drop_duplicates(keys) if keys else df
    return df["selected_form"].to_numpy(), df["baseline"].to_numpy(int)


def dw_exp_linear(results: Path) -> S.Outcome:
    return S.form_share(*selected_forms(results, "epsilon"), ("exp_linear",), 0.5, "above")


def dw_exp_short(results: Path) -> S.Outcome:
    df, _ = _fits(results, "epsilon")
    if "t_c" not in df:
        raise Unusable("fits.csv lacks t_c")
    rows = df[(df["model"] == "exp_linear") & (df["selected_form"] == "exp_linear")]
    files = sorted((results / "epsilon").glob("*/metrics.nc"))
    with xr.open_dataset(_need(files[0] if files else results / "epsilon" / "<run>" / "metrics.nc"),
                         engine="h5netcdf") as ds:
        spe = steps_per_epoch(ds["step"].values, ds["epoch"].values if "epoch" in ds.coords else [])
    return S.onset_epochs(rows["t_c"].to_numpy(float), spe, rows["baseline"].to_numpy(int))


def init_function_equivalence(results: Path) -> S.Outcome:
    _, _, pert = sweep(results, "epsilon", "fs_disagree")
    _, _, glob = sweep(results, "global", "fs_disagree")
    last = pert[-1][:, -1] if pert[-1].size else np.array([math.nan])
    return S.disagreement_ratio(last, glob[0][: len(last), -1])


def lyapunov_rate(results: Path) -> S.Outcome:
    df = _csv(results / "lyapunov" / "link.csv", ("epsilon", "measured_rate"))
    tangent = df["tangent"].astype(str).str.lower() == "true" if "tangent" in df else pd.Series(False, df.index)
    r = (df[tangent] if tangent.any() else df).sort_values("epsilon").iloc[0]    # the smallest perturbation
    if "diff_lo" in df:                                    # replicate baselines: interval across them
        return S.relative_agreement(r["diff"], r["diff_lo"], r["diff_hi"], r["lambda_1"],
                                    resolved=str(r.get("resolved", True)).lower() == "true")
    lam = r["lambda_max"] if "lambda_max" in r else r["lambda_1"]
    return S.relative_agreement(r["measured_rate"] - lam, math.nan, math.nan, lam)


def hypersphere_not_linear(results: Path) -> S.Outcome:
    return S.form_share(*selected_forms(results, "epsilon"), ("sphere", "sqrt"), 0.5, "below")


def momentum_bend(results: Path) -> S.Outcome:
    _, steps, curves = sweep(results, "momentum")
    return S.endpoint_change(_per_run(late_exponent, steps, curves), "below")


def momentum_divergence(results: Path) -> S.Outcome:
    _, steps, curves = sweep(results, "momentum")
    return S.endpoint_change(_per_run(final_value, steps, curves), "above", log=True)


def lr_collapse(results: Path) -> S.Outcome:
    x, steps, curves = sweep(results, "lr")
    return S.sweep_exponent(np.asarray(x, float), _per_run(late_slope, steps, curves), 1.0, 0.2)


def width_linear(results: Path) -> S.Outcome:
    x, steps, curves = sweep(results, "width")
    return S.sweep_exponent(np.asarray(x, float), _per_run(late_slope, steps, curves), 1.0, 0.2)


def weight_decay_shrinks(results: Path) -> S.Outcome:
    _, steps, curves = sweep(results, "weight_decay")
    return S.endpoint_change(_per_run(final_value, steps, curves), "below", log=True)


def weight_decay_bend(results: Path) -> S.Outcome:
    _, steps, curves = sweep(results, "weight_decay", "dist_rel")
    return S.endpoint_change(_per_run(late_exponent, steps, curves), "below")


def depth_exponential(results: Path) -> S.Outcome:
    _, steps, curves = sweep(results, "depth")
    return S.endpoint_change(_per_run(late_exponent, steps, curves), "above")


def architecture_conv(results: Path) -> S.Outcome:
    """The ``early_rate`` differences (<cnn> - mlp) of rule architecture; the one whose interval
    reaches highest decides (supported only if every convolutional network's rate is lower)."""
    df = _csv(results / "architecture" / "architecture.csv", ("statistic", "architecture", "how", "mean", "lo", "hi"))
    d = df[(df["statistic"] == "early_rate") & df["how"].notna() & (df["how"].astype(str) != "")]
    if d.empty:
        raise Unusable("architecture.csv has no early_rate difference")
    r = d.loc[d["hi"].fillna(math.inf).idxmax()]
    rule = ("early rate difference <cnn> - mlp per step: supported if the 95 % interval of every convolutional "
            "network lies below 0, contradicted if one lies above 0")
    return S.Outcome(float(r["mean"]), float(r["lo"]), float(r["hi"]), rule,
                     decide_below(float(r["lo"]), float(r["hi"]), 0.0, "one baseline: no interval"),
                     note=f"{r['architecture']} ({len(d)} convolutional)", predicted=region("below", 0.0))


def adaptive_exponential(results: Path) -> S.Outcome:
    x, steps, curves = sweep(results, "optimizer")
    cols = [i for i, v in enumerate(x) if str(v).lower() in ("adam", "adamw", "rmsprop")]
    if not cols:
        raise Unusable("no adam or rmsprop run")
    return S.level(_per_run(late_exponent, steps, curves)[:, cols], 1.0, "above")


def _source_disagreement(results: Path, run: str) -> np.ndarray:
    """``(R,)`` final test disagreement of the copies with their own baseline, per baseline,
    of ``results/<experiment>/<run>/metrics.nc``."""
    with xr.open_dataset(_need(results / run / "metrics.nc"), engine="h5netcdf") as ds:
        if "fs_disagree" not in ds:
            raise Unusable(f"{run}/metrics.nc lacks fs_disagree")
        curves = per_baseline(ds["fs_disagree"].values, *labels(ds))
    return np.array([final_value(None, c) for c in curves])


def schedule_variance(results: Path) -> S.Outcome:
    """Per baseline, from the metrics files the spread table was made from (spread.nc's ``run``
    per source): the table itself holds means over baselines, not the paired values."""
    with xr.open_dataset(_need(results / "spread" / "spread.nc"), engine="h5netcdf") as ds:
        runs = dict(zip(ds["source"].values.astype(str), ds["run"].values.astype(str)))
    if not {"schedule", "init"} <= set(runs):
        raise Unusable("spread.nc lacks the schedule or init source")
    s, i = (_source_disagreement(results, runs[k]) for k in ("schedule", "init"))
    n = min(len(s), len(i))
    return S.source_share(s[:n], i[:n], 0.9)


def _study(results: Path) -> tuple[pd.DataFrame, int, int]:
    df = _csv(results / "lyapunov" / "study_auc.csv",
              ("activation", "init_range", "indicator", "time", "auc", "auc_se", "failure_fraction"))
    steps, n = 0, 0
    nc = results / "lyapunov" / "study.nc"
    if nc.exists():
        with xr.open_dataset(nc, engine="h5netcdf") as ds:
            steps, n = int(ds.attrs.get("steps", 0)), int(ds.sizes.get("network", 0))
    return df, steps, n


def early_failure_prediction(results: Path) -> S.Outcome:
    df, steps, _ = _study(results)
    t = nearest(df["time"].to_numpy(float), 0.015 * steps)       # steps 0 (unknown): the earliest time
    sub = df[(df["time"] == t) & df["indicator"].isin(["ftle", "clv_min_angle"])]
    labels_ = [f"{r.indicator} {r.activation} U(-{r.init_range:g},{r.init_range:g}) at t={t:g}" for r in sub.itertuples()]
    return S.weakest_auc(sub["auc"].to_numpy(), sub["auc_se"].to_numpy(), labels_)


def failure_fraction_activation(results: Path) -> S.Outcome:
    df, _, n = _study(results)
    r0 = df["init_range"].min()
    p = df[df["init_range"] == r0].groupby("activation")["failure_fraction"].first()
    if not {"tanh", "relu"} <= set(p.index) or n == 0:
        raise Unusable("study lacks tanh, relu or the number of networks")
    return S.fraction_difference(float(p["tanh"]), n, float(p["relu"]), n)


def omd_ogd_conjugate(results: Path) -> S.Outcome:
    df = _csv(results / "koopman" / "toy.csv", ("a", "b", "p_value"))
    pair = df[df.apply(lambda r: {r["a"], r["b"]} == {"OMD", "OGD"}, axis=1)]
    other = df[df.apply(lambda r: "BM" in (r["a"], r["b"]), axis=1)]
    p_same = float(pair["p_value"].iloc[0]) if len(pair) else math.nan
    return S.conjugate_pair(p_same, other["p_value"].to_numpy(float))


def _koopman_nc(results: Path, test) -> Path:
    for nc in sorted((results / "koopman").glob("*.nc")):
        with xr.open_dataset(nc, engine="h5netcdf") as ds:
            if test(ds):
                return nc
    raise Missing(str(results / "koopman" / "<experiment>.nc"))


def narrow_wide_fcn(results: Path) -> S.Outcome:
    nc = _koopman_nc(results, lambda ds: "width" in str(ds.attrs.get("group_by", "")))
    df = _csv(nc.with_suffix(".csv"), ("a", "b", "p_value", "w1_between", "w1_within"))
    groups = sorted({float(g) for g in pd.concat([df["a"], df["b"]])})
    row = df[df.apply(lambda r: {float(r["a"]), float(r["b"])} == {groups[0], groups[-1]}, axis=1)]
    if row.empty:
        raise Unusable("no narrowest-widest pair")
    r = row.iloc[0]
    floor = float(r["p_min"]) if "p_min" in r and pd.notna(r["p_min"]) else 0.0
    return S.nonconjugate_pair(float(r["p_value"]), float(r["w1_between"]), float(r["w1_within"]), p_floor=floor)


def grokking_nonconjugate(results: Path) -> S.Outcome:
    """Rule grokking_koopman's test on the ``weights`` observable (one spectrum per independent
    baseline of each group; the first experiment listed in ``grokking.koopman``)."""
    files = sorted(results.glob("*/grokking_koopman.csv"))
    if not files:
        raise Missing(str(results / "<experiment>" / "grokking_koopman.csv"))
    df = _csv(files[0], ("observable", "p_value", "w1_between", "w1_within", "p_min"))
    row = df[df["observable"] == "weights"]
    if row.empty:
        raise Unusable(f"{files[0].name} has no 'weights' observable")
    r = row.iloc[0]
    out = S.nonconjugate_pair(float(r["p_value"]), float(r["w1_between"]), float(r["w1_within"]),
                              p_floor=float(r["p_min"]) if pd.notna(r["p_min"]) else 0.0)
    out.note = f"{out.note}; {files[0].parent.name}, {int(r['n_a'])} vs {int(r['n_b'])}" if "n_a" in r else out.note
    return out


def early_transitions(results: Path) -> S.Outcome:
    nc = _koopman_nc(results, lambda ds: "w1_windows" in ds)
    with xr.open_dataset(nc, engine="h5netcdf") as ds:
        return S.window_transition(ds["w1_windows"].values)


def _ntk(results: Path, section: str, var: str) -> xr.Dataset:
    ds = xr.load_dataset(_need(results / "ntk" / f"{section}.nc"), engine="h5netcdf")
    if var not in ds:
        raise Unusable(f"{section}.nc lacks {var}")
    return ds


def ntk_param_change(results: Path) -> S.Outcome:
    ds = _ntk(results, "width_sweep", "exponent_dparams")
    return S.exponent_near(float(ds["exponent_dparams"]), float(ds.get("exponent_dparams_se", np.nan)), -0.5, 0.15)


def ntk_kernel_change(results: Path) -> S.Outcome:
    ds = _ntk(results, "width_sweep", "exponent_dntk")
    return S.exponent_near(float(ds["exponent_dntk"]), float(ds.get("exponent_dntk_se", np.nan)), -0.5, 0.15)


def linearised_tracks(results: Path) -> S.Outcome:
    ds = _ntk(results, "linearization", "relative_deviation")
    dev = ds["relative_deviation"].transpose(..., "width", "checkpoint").values
    final = np.array([[final_value(None, c) for c in g] for g in dev.reshape(-1, *dev.shape[-2:])])
    return S.decreasing(ds["width"].values, final)


def catapult_lower(results: Path) -> S.Outcome:
    ds = _ntk(results, "catapult", "eta_crit_measured_lo_factor")
    return S.bracket_contains(float(ds["eta_crit_measured_lo_factor"]), float(ds["eta_crit_measured_hi_factor"]),
                              1.0, "2/lambda_0")


def catapult_upper(results: Path) -> S.Outcome:
    ds = _ntk(results, "catapult", "diverged")
    return S.bracket_contains(*S.transition_bracket(ds["eta_factor"].values, ds["diverged"].values), 2.0, "2/lambda_0")


def catapult_c_above_2(results: Path) -> S.Outcome:
    ds = _ntk(results, "catapult", "diverged")
    return S.bracket_above(*S.transition_bracket(ds["eta_factor"].values, ds["diverged"].values), 1.0, "2/lambda_0")


def _pattern_runs(results: Path, exp: str) -> list[dict]:
    """Per run of a dominoes experiment (``patterns.nc``): achieved prevalence and reliability
    and probe accuracy per side, and per baseline (all its networks averaged) the half-gain
    onset and the final accuracy on one-sided dominoes, ``(R, 2)`` as (top, bottom)."""
    files = sorted((results / exp).glob("*/patterns.nc"))
    if not files:
        raise Missing(str(results / exp / "<run>" / "patterns.nc"))
    out = []
    for f in files:
        with xr.open_dataset(f, engine="h5netcdf") as ds:
            if "onset_half" not in ds or "acc" not in ds:
                raise Unusable(f"{f.parent.name}/patterns.nc lacks onset_half or acc")
            b, c = labels(ds)
            sides = [list(ds["set"].values).index(f"{side}_only") for side in ("top", "bottom")]
            half = per_baseline(ds["onset_half"].values[sides].T, b, c, include_baseline=True)
            acc = per_baseline(ds["acc"].values[sides, :, -1].T, b, c, include_baseline=True)
            a = ds.attrs
            out.append({k: tuple(float(a.get(f"{k}_{side}", a.get(f"achieved_{k}_{side}", math.nan)))
                                 for side in ("top", "bottom")) for k in ("prevalence", "reliability", "probe_acc")}
                       | {"run": f.parent.name, "onset": half, "acc": acc})
    return out


def simple_pattern_first(results: Path) -> S.Outcome:
    runs = _pattern_runs(results, "dominoes_prevalence")
    run = min(runs, key=lambda r: abs(r["prevalence"][0] - r["prevalence"][1]))   # most equal prevalences
    simple = 0 if run["probe_acc"][0] >= run["probe_acc"][1] else 1
    out = S.onset_difference(run["onset"][:, simple], run["onset"][:, 1 - simple])
    out.note = f"run {run['run']}: simpler = {('top', 'bottom')[simple]}"
    return out


def _reliance(results: Path, exp: str, prop: str) -> S.Outcome:
    runs = sorted(_pattern_runs(results, exp), key=lambda r: r[prop][0])
    r_min = min(r["acc"].shape[0] for r in runs)
    rel = np.stack([r["acc"][:r_min, 0] - r["acc"][:r_min, 1] for r in runs], axis=1)   # (R, runs)
    return S.reliance_slope(np.array([r[prop][0] for r in runs]), rel)


def reliance_prevalence(results: Path) -> S.Outcome:
    return _reliance(results, "dominoes_prevalence", "prevalence")


def reliance_reliability(results: Path) -> S.Outcome:
    return _reliance(results, "dominoes_reliability", "reliability")

