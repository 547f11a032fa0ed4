"""Lyapunov spectra of a run's baselines' training maps, their resolution, their link to the
measured divergence, and the 2-2-1 study's ROC table.

What it computes, for every independent baseline of one workflow run (rule ``lyapunov``;
the baselines of ``perturbation.baselines``, :mod:`pathdep.analysis.replicates`):

* the training map ``x_t -> x_{t+1}`` rebuilt from the recorded config and the baseline's
  initial weights (DESIGN invariant 8): :func:`pathdep.core.flatstate.flat_training_map` on
  that baseline's batch schedule, with state ``x = (w, live optimiser buffers)`` (DESIGN
  invariant 2);
* the ``k`` leading Lyapunov exponents by Benettin's algorithm
  (:func:`pathdep.analysis.lyapunov_benettin.benettin`: tangents pushed every step, QR with
  positive diagonal every ``qr_every`` steps). The first ``transient`` steps only align the
  random initial basis (Benettin et al., Meccanica 15, 9 (1980)); exponents are accumulated
  over the window ``[transient, transient + steps]``. They are stored in Benettin's column
  order (column 1 is the growth rate of a generic perturbation, ``lambda_1``) with each
  column's error (:func:`pathdep.analysis.lyapunov_resolution.exponent_errors`), whether it
  is resolved (``|lambda| T >= 1``) with the bound an unresolved one is reported with, and
  whether the columns are ordered within their errors
  (:func:`pathdep.analysis.lyapunov_resolution.resolution`); the running estimate over the
  window is stored so convergence can be judged; intervals across baselines per column;
* the measured growth of each baseline's perturbed copies (``metrics.nc``: the mean over
  its copies of ``dist``, then the growth between the first and the last checkpoint ``[a,
  b]`` inside the window, :func:`pathdep.analysis.lyapunov_link.window_growth`) and
  ``lambda_1`` over exactly ``[a, b]``
  (:func:`pathdep.analysis.lyapunov_resolution.window_exponents`).

:func:`link_tables` compares them across baselines
(:func:`pathdep.analysis.lyapunov_link.link_statistic`: intervals, growth factor, resolved,
verdict); the ``tangent_experiment`` (an epsilon sweep on the same baselines) adds one row
per epsilon against the Benettin spectra of its first run.

For the 2-2-1 study (rule ``lyapunov_study``), :func:`lyapunov_study` runs
:func:`pathdep.analysis.lyapunov_study.run_study` on the resolved ``lyapunov.study`` block
and writes it with its ROC table (:func:`pathdep.analysis.study_roc.roc_with_errors`: AUCs,
their fold spread and Hanley-McNeil standard errors). Settings: :mod:`pathdep.config.lyapunov`.

How it was checked (tests/stages/test_lyapunov.py, float64): for a linear model with MSE loss
the exponents equal ``log|1 - lr h_i|`` of the data Hessian; a finite-difference
perturbation of relative size 1e-8 along the leading Lyapunov vector (Benettin, k = 1,
after a transient) grows like the accumulated ``log R_11``; the transient option equals
dropping the first QRs of a longer run; the measured rate of a file recovers a planted
exponential only inside the window; every baseline of a replicated run gets its own
spectrum (baseline 1's equals a spectrum of its own map); the link table and its figures;
the study's ROC table carries a Hanley-McNeil error per AUC. The map itself:
tests/core/test_flatstate.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from pathdep.analysis.lyapunov_benettin import benettin, ftle
from pathdep.analysis.lyapunov_link import distance_growth_rate, link_statistic, window_growth
from pathdep.analysis.lyapunov_resolution import exponent_errors, resolution, window_exponents
from pathdep.analysis.lyapunov_study import run_study
from pathdep.analysis.replicates import interval, labels, per_baseline
from pathdep.analysis.study_roc import roc_with_errors
from pathdep.config.lyapunov import resolve, resolve_study
from pathdep.core.context import RunContext, canonical
from pathdep.core.flatstate import flat_training_map
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import load_init


def baseline_rows(members) -> np.ndarray:
    """Row of each independent baseline (copy 0) in a member table, in baseline order."""
    base, copy = labels(members)
    return np.array([int(np.flatnonzero((base == r) & (copy == 0))[0]) for r in range(int(base.max()) + 1)])


def network_map(run: dict, init_path: str | Path, data_path: str | Path, device: str = "cpu",
                dtype: str | None = None, row: int = 0):
    """One baseline's training map as a flat-state map ``F(x, t)``
    (:func:`pathdep.core.flatstate.flat_training_map`), from ``init.h5`` and the dataset.

    Args:
        row: the baseline's row in the member table (:func:`baseline_rows`): its initial
            weights, batch schedule and hyperparameters.

    Returns:
        ``(F, x0, info)`` where ``x0 (D,)`` is the baseline's initial state and ``info`` has
        ``P`` (weights), ``D`` (state size), ``n_steps``, ``state``, ``push``, ``tangents``.
    """
    # for BatchNorm models ctx.apply is already the weights-only train-mode forward: the running
    # statistics never feed back in train mode (docs/resnet.md), so they stay out of the state
    ctx = RunContext.build(run, data_path, device, dtype, load=True)
    init = load_init(init_path)
    sched = ctx.schedule([int(init.members["seed_schedule"].iloc[row])])
    w0 = torch.as_tensor(init.weights[row], dtype=ctx.dtype, device=ctx.device)
    return flat_training_map(ctx, w0, sched, member=row, fast=bool(run["training"]["fast"]))


def measured_rate(metrics_path: str | Path, start: float, stop: float) -> tuple[float, float, int]:
    """Least-squares growth rate of the mean member-baseline distance of ``metrics.nc``
    inside ``[start, stop]`` (perturbed copies of every baseline;
    :func:`pathdep.analysis.lyapunov_link.distance_growth_rate`).

    Returns:
        ``(rate per step, its standard error, number of checkpoints used)``.
    """
    ds = xr.load_dataset(metrics_path, engine="h5netcdf")
    _, copy = labels(ds)
    return distance_growth_rate(ds["step"].values, ds["dist"].values[copy > 0], start, stop)


def measured_growth(metrics_path: str | Path, start: float, stop: float) -> dict:
    """Per baseline, the growth of the mean distance of its copies over the outer checkpoints
    of ``[start, stop]`` (:func:`pathdep.analysis.lyapunov_link.window_growth`)."""
    ds = xr.load_dataset(metrics_path, engine="h5netcdf")
    base, copy = labels(ds)
    return window_growth(ds["step"].values, per_baseline(ds["dist"].values, base, copy), start, stop)


def _window(cfg: dict, n_steps: int, run: dict) -> tuple[int, int, int]:
    """``(transient, steps, qr_every)`` of the settings, shortened to fit a run of ``n_steps``:
    the transient shrinks first (the accumulated window decides what is resolved)."""
    qr = int(cfg["qr_every"])
    steps = min(int(cfg["steps"]), n_steps - qr) if n_steps > qr else n_steps
    steps -= steps % qr
    transient = min(int(cfg["transient"]), n_steps - steps)
    transient -= transient % qr
    if steps < qr:
        raise ValueError(f"lyapunov.steps: run {run.get('experiment')}/{run.get('run')} has only "
                         f"{n_steps} steps, fewer than transient + qr_every")
    return transient, steps, qr


def _spectrum(F, x0, info: dict, cfg: dict, transient: int, steps: int, qr: int) -> dict:
    """One baseline's Benettin spectrum over the window, its FTLEs, running estimate, errors."""
    k = min(int(cfg["k"]), int(info["D"]))
    t0 = time.perf_counter()
    res = benettin(F, x0, steps, k, qr_every=qr, transient=transient, seed=int(cfg["seed"]),
                   record=False, push=info["push"])
    secs = time.perf_counter() - t0
    window = max(1, min(int(cfg["window"]) // qr, res.log_r.shape[0]))
    ft = ftle(res.log_r, window, qr_every=qr).cpu().numpy()
    running = res.running.cpu().numpy()
    return {"k": k, "secs": secs, "window": window, "ftle": ft, "running": running,
            "exponents": res.exponents.cpu().numpy(), "err": exponent_errors(running, ft)}


def _spectra(run: dict, init_path, data_path, device: str, cfg: dict) -> tuple[list, dict, tuple, np.ndarray]:
    """Benettin spectra of the run's baselines (the first ``lyapunov.baselines``, 0: all):
    ``(spectra, info, window, rows)``."""
    rows = baseline_rows(load_init(init_path).members)
    rows = rows[:int(cfg["baselines"])] if int(cfg["baselines"]) else rows
    out, info, win = [], None, None
    for row in rows:
        F, x0, info = network_map(run, init_path, data_path, device, row=int(row))
        win = win or _window(cfg, int(info["n_steps"]), run)
        out.append(_spectrum(F, x0, info, cfg, *win))
    return out, info, win, rows


def _spectrum_dataset(sps: list[dict], rows: np.ndarray, growth: dict, start: int, stop: int,
                      qr: int) -> xr.Dataset:
    """The spectra of all baselines, their resolution and intervals, and the measured growth."""
    stack = {n: np.stack([sp[n] for sp in sps]) for n in ("exponents", "running", "ftle")}
    err = {n: np.stack([sp["err"][n] for sp in sps]) for n in ("se", "drift", "err")}
    res = resolution(stack["exponents"], err["err"], stop - start)
    mean, lo, hi = interval(stack["exponents"])
    be = ("baseline", "exponent")
    steps = np.arange(start + 1, stop + 1)
    lam_ab = np.full(len(sps), np.nan)
    if np.isfinite(growth["a"]):
        lam_ab = window_exponents(stack["running"], steps, start, int(growth["a"]), int(growth["b"]))[:, 0]
    ds = xr.Dataset(
        {"exponents": (be, stack["exponents"]), "exponent_err": (be, err["err"]),
         "exponent_se": (be, err["se"]), "exponent_drift": (be, err["drift"]),
         "lambda_T": (be, res["lambda_T"]), "resolved": (be, res["resolved"].astype("int8")),
         "bound": (be, res["bound"]), "ordered": (("baseline",), res["ordered"].astype("int8")),
         "exponents_mean": (("exponent",), mean), "exponents_lo": (("exponent",), lo),
         "exponents_hi": (("exponent",), hi),
         "running": (("baseline", "step", "exponent"), stack["running"]),
         "ftle": (("baseline", "window", "exponent"), stack["ftle"]),
         "growth": (("baseline",), growth["growth"]), "measured_rate": (("baseline",), growth["rate"]),
         "lambda_1_window": (("baseline",), lam_ab)},
        coords={"baseline": np.arange(len(sps)), "baseline_row": ("baseline", rows),
                "exponent": np.arange(1, stack["exponents"].shape[1] + 1), "step": steps,
                "window_end": ("window", start + (np.arange(stack["ftle"].shape[1]) + 1) * sps[0]["window"] * qr)})
    ds["running"].attrs["description"] = "running Benettin estimate after each accumulated step"
    ds["lambda_1_window"].attrs["description"] = "lambda_1 over [rate_start, rate_stop] (the growth's checkpoints)"
    ds.attrs.update({"rate_start": growth["a"], "rate_stop": growth["b"]})
    return ds


def lyapunov_for_run(run: dict, init_path: str | Path, data_path: str | Path,
                     metrics_path: str | Path | None, out_path: str | Path, spec: dict | None = None,
                     device: str = "cpu", threads: int | None = None) -> xr.Dataset:
    """Benettin spectra of a run's baselines and their copies' measured growth, as netCDF.

    Args:
        run: the resolved run config (checked against the one recorded in ``init.h5``).
        init_path, data_path: ``init.h5`` and the prepared dataset.
        metrics_path: the run's ``metrics.nc`` (for the measured growth), or None.
        out_path: the netCDF to write (atomically).
        spec: ``lyapunov`` config block (:func:`pathdep.config.lyapunov.resolve`).

    Returns:
        Dataset over ``baseline`` (independent baselines; ``baseline_row`` their member rows)
        and ``exponent`` (Benettin's column order): ``exponents``, ``exponent_err`` (``_se``,
        ``_drift``), ``lambda_T``, ``resolved``, ``bound``, ``ordered (baseline)``,
        ``exponents_mean/_lo/_hi (exponent)`` (t interval across baselines), ``running
        (baseline, step, exponent)`` at steps ``transient + 1 .. transient + steps``, ``ftle
        (baseline, window, exponent)``, ``growth``, ``measured_rate`` and ``lambda_1_window``
        per baseline over ``[rate_start, rate_stop]``, and attributes (window, epsilon,
        config, provenance, timing).
    """
    if threads:
        torch.set_num_threads(int(threads))
    cfg = resolve(spec)
    if canonical(load_init(init_path).config) != canonical(run):
        raise ValueError(f"{init_path}: init file was made from a different config than run "
                         f"{run.get('experiment')}/{run.get('run')}")
    sps, info, (transient, steps, qr), rows = _spectra(run, init_path, data_path, device, cfg)
    start, stop = transient, transient + steps
    none = {"a": float("nan"), "b": float("nan"), "growth": np.full(len(sps), np.nan),
            "rate": np.full(len(sps), np.nan)}
    growth = measured_growth(metrics_path, start, stop) if metrics_path else none
    growth = {**growth, "growth": growth["growth"][:len(sps)], "rate": growth["rate"][:len(sps)]}
    ds = _spectrum_dataset(sps, rows, growth, start, stop, qr)
    pert = run.get("perturbation") or {}
    secs = sum(sp["secs"] for sp in sps)
    ds.attrs.update({"experiment": run.get("experiment", ""), "run": run.get("run", ""),
                     "swept": json.dumps(run.get("swept", {})), "k": sps[0]["k"], "steps": steps,
                     "transient": transient, "window_start": start, "window_stop": stop,
                     "qr_every": qr, "ftle_window": sps[0]["window"] * qr,
                     "epsilon": float(pert.get("epsilon", float("nan"))),
                     "perturbation": json.dumps(pert, sort_keys=True),
                     "state": json.dumps(info["state"]), "state_size": int(info["D"]), "n_params": int(info["P"]),
                     "benettin_seconds": secs, "seconds_per_step": secs / max(len(sps) * (steps + transient), 1),
                     "tangents": info["tangents"],
                     "config": canonical(run), "lyapunov_config": json.dumps(cfg),
                     "provenance": json.dumps(collect(run, info["device"]), default=str)})
    write_netcdf(ds, out_path)
    return ds


def _row(ds: xr.Dataset, growth: dict, names: dict) -> tuple[dict, list[dict]]:
    """One link row (the spectra's lambda_1 over the growth's checkpoints against that growth)
    and its per-baseline values."""
    R = min(ds.sizes["baseline"], len(growth["growth"]))
    a, b = growth["a"], growth["b"]
    lam, bound = np.full(R, np.nan), np.full(R, np.nan)
    if np.isfinite(a) and a >= int(ds.attrs["window_start"]) and b <= int(ds.attrs["window_stop"]):
        lam = window_exponents(ds["running"].values[:R], ds["step"].values,
                               int(ds.attrs["window_start"]), int(a), int(b))[:, 0]
        bound = resolution(lam, ds["exponent_err"].values[:R, 0], b - a)["bound"]
    stat = link_statistic(lam, bound, growth["rate"][:R], growth["growth"][:R], b - a)
    row = {**names, "rate_start": a, "rate_stop": b, "window_start": int(ds.attrs["window_start"]),
           "window_stop": int(ds.attrs["window_stop"]), "k": int(ds.attrs["k"]), **stat,
           "ordered_all": bool(ds["ordered"].values.all()),
           "seconds_per_step": float(ds.attrs["seconds_per_step"])}
    per = [{**names, "baseline": r, "rate_start": a, "rate_stop": b, "lambda_1": lam[r],
            "lambda_1_bound": bound[r], "measured_rate": growth["rate"][r], "growth": growth["growth"][r]}
           for r in range(R)]
    return row, per


def _tangent_rows(tangent: dict) -> tuple[list[tuple], str]:
    """The epsilon sweep's rows (growth over the spectra's window) and its experiment."""
    ref = xr.load_dataset(tangent["spectrum"], engine="h5netcdf")
    exp = ref.attrs["experiment"]
    start, stop = int(ref.attrs["window_start"]), int(ref.attrs["window_stop"])
    rows = []
    for name, mpath in tangent["metrics"].items():
        eps = float(tangent.get("epsilon", {}).get(name, float("nan")))
        names = {"experiment": exp, "run": name, "swept": json.dumps({"epsilon": eps}), "epsilon": eps,
                 "tangent": True}
        rows.append(_row(ref, measured_growth(mpath, start, stop), names))
    return rows, exp


def link_tables(paths: list[str | Path], tangent: dict | None = None) -> tuple:
    """The link tables: ``lambda_1`` against the measured divergence, across baselines.

    Args:
        paths: ``lyapunov.nc`` of runs (one row each, with that run's own measured growth).
        tangent: optional epsilon sweep on the same baselines: ``{"spectrum": lyapunov.nc of
            one of its runs, "metrics": {run name: metrics.nc}, "epsilon": {run name: eps}}``;
            one row per run with the growth measured over the spectra's window against those
            spectra (rows of ``paths`` from the same experiment are dropped).

    Returns:
        ``(table, baselines)``, two ``pandas.DataFrame``: ``table`` has one row per run:
        ``experiment, run, swept, epsilon, tangent``
        (row of the epsilon sweep), ``rate_start, rate_stop`` (the checkpoints ``[a, b]``),
        ``window_start, window_stop, k`` and the columns of
        :func:`pathdep.analysis.lyapunov_link.link_statistic` (``lambda_1`` and the measured
        rate with t intervals across baselines, their paired difference, growth factors,
        ``resolved``, ``verdict``), ``ordered_all`` (every baseline's columns ordered within
        errors), ``seconds_per_step``. ``baselines``: one row per (run, baseline):
        ``experiment, run, swept, epsilon, tangent, baseline, rate_start, rate_stop,
        lambda_1, lambda_1_bound, measured_rate, growth``.
    """
    import pandas as pd

    rows, skip = _tangent_rows(tangent) if tangent else ([], None)
    for p in paths:
        ds = xr.load_dataset(p, engine="h5netcdf")
        if ds.attrs["experiment"] == skip:
            continue
        growth = {"a": float(ds.attrs["rate_start"]), "b": float(ds.attrs["rate_stop"]),
                  "growth": ds["growth"].values, "rate": ds["measured_rate"].values}
        names = {"experiment": ds.attrs["experiment"], "run": ds.attrs["run"], "swept": ds.attrs["swept"],
                 "epsilon": float(ds.attrs.get("epsilon", np.nan)), "tangent": False}
        rows.append(_row(ds, growth, names))
    return pd.DataFrame([r for r, _ in rows]), pd.DataFrame([b for _, per in rows for b in per])


def _plain_attrs(ds: xr.Dataset) -> xr.Dataset:
    """str subclasses in attributes (torch's TorchVersion, np.str_) as plain str (h5netcdf)."""
    ds.attrs = {k: str(v) if isinstance(v, str) else v for k, v in ds.attrs.items()}
    return ds


def lyapunov_study(spec: dict, study_path: str | Path, roc_path: str | Path,
                   table_path: str | Path | None = None, threads: int | None = None):
    """Run the 2-2-1 study and write ``study.nc``, ``roc.nc`` (with Hanley-McNeil errors) and
    an AUC table (the figures are drawn by :func:`pathdep.plots.lyapunov.plot_study`).

    Args:
        spec: the ``lyapunov.study`` block (:func:`pathdep.config.lyapunov.resolve_study`).
        study_path, roc_path: netCDF outputs.
        table_path: optional CSV: AUC, fold std and Hanley-McNeil SE per (activation,
            init range, indicator, time).
        threads: torch threads.

    Returns:
        ``(study, roc)`` datasets.
    """
    if threads:
        torch.set_num_threads(int(threads))
    study = _plain_attrs(run_study(resolve_study(dict(spec))))
    study.attrs["provenance"] = json.dumps(collect(dict(spec), "cpu"), default=str)
    write_netcdf(study, study_path)
    roc = _plain_attrs(roc_with_errors(study))
    roc.attrs["provenance"] = study.attrs["provenance"]
    write_netcdf(roc, roc_path)
    if table_path:
        df = roc[["auc", "auc_std", "auc_se"]].to_dataframe().reset_index()
        frac = study["failure_fraction"].to_dataframe().reset_index()
        write_csv(df.merge(frac, on=["activation", "init_range"]), table_path)
    return study, roc
