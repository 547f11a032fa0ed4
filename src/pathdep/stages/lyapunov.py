"""Lyapunov spectra of a run's training map, their link to the measured divergence, and
the 2-2-1 study's ROC table.

What it computes, for the baseline of one workflow run (rule ``lyapunov``):

* the training map ``x_t -> x_{t+1}`` rebuilt from the recorded config and initial weights
  (DESIGN invariant 8): :func:`pathdep.core.flatstate.flat_training_map` on the baseline's
  batch schedule, with state ``x = (w, live optimiser buffers)`` (DESIGN invariant 2);
* the ``k`` leading Lyapunov exponents by Benettin's algorithm
  (:func:`pathdep.analysis.lyapunov_benettin.benettin`: ``torch.func.jvp`` tangents vmapped over the
  ``k`` vectors, QR with positive diagonal every ``qr_every`` steps). The first
  ``transient`` steps only align the random initial basis with the leading directions
  (Benettin et al., Meccanica 15, 9 (1980)); exponents are accumulated over the window
  ``[transient, transient + steps]``. Without the transient the first QRs add the log of a
  random vector's projection on the expanding subspace (about ``-log sqrt(D)/steps``), not
  a property of training. The running estimate over the window is stored so convergence
  can be judged; the error of ``lambda_max`` is the larger of the standard error of the
  leading finite-time exponents over ``steps // window`` windows (``std / sqrt(n)``) and
  half the range of the running estimate over the last half of the window (its drift;
  :func:`pathdep.analysis.lyapunov_link.lambda_error`);
* the measured growth rate of the distance between the perturbed members and the baseline
  (``metrics.nc``): the least-squares slope of ``log mean_k |w_k - w_0|`` against the step
  for the (log-spaced) checkpoints inside the SAME window ``[transient, transient + steps]``,
  with its standard error and the number of checkpoints used
  (:func:`pathdep.analysis.lyapunov_link.distance_growth_rate`). For small relative
  perturbations (the tangent regime, ``eps |w_0|`` with ``eps <~ 1e-4``) the distance
  follows the tangent dynamics, so this rate is what ``lambda_max`` predicts
  (``|dZ(t)| ~ exp(lambda t) |dZ(0)|``, path-dependence-scaling-laws.txt); for large ones
  it saturates and falls below it. :func:`link_table` lists both, their errors and whether
  they agree within two combined standard errors; the ``tangent_experiment`` (an epsilon
  sweep on one baseline) adds one row per epsilon against a single Benettin run of that
  baseline, showing where the tangent regime ends.

For the 2-2-1 study (rule ``lyapunov_study``), :func:`lyapunov_study` runs
:func:`pathdep.analysis.lyapunov_study.run_study` on the resolved ``lyapunov.study`` block
and writes it with its ROC table (:func:`pathdep.analysis.study_roc.roc_with_errors`: AUCs,
their fold spread and Hanley-McNeil standard errors). Settings: :mod:`pathdep.config.lyapunov`.

How it was checked (tests/stages/test_lyapunov.py, float64): for a linear model with MSE loss
the exponents equal ``log|1 - lr h_i|`` of the data Hessian; a finite-difference
perturbation of relative size 1e-8 along the leading Lyapunov vector (Benettin, k = 1,
after a transient) grows like the accumulated ``log R_11`` (1e-4 over the window); the
transient option equals dropping the first QRs of a longer run; the measured rate of a
file recovers a planted exponential only inside the window; the link table and its figures;
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
from pathdep.analysis.lyapunov_link import agree, distance_growth_rate, lambda_error
from pathdep.analysis.lyapunov_study import run_study
from pathdep.analysis.study_roc import roc_with_errors
from pathdep.config.lyapunov import resolve, resolve_study
from pathdep.core.context import RunContext, canonical
from pathdep.core.flatstate import flat_training_map
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import load_init


def network_map(run: dict, init_path: str | Path, data_path: str | Path, device: str = "cpu",
                dtype: str | None = None):
    """The baseline's training map as a flat-state map ``F(x, t)``
    (:func:`pathdep.core.flatstate.flat_training_map`), from ``init.h5`` and the dataset.

    Returns:
        ``(F, x0, info)`` where ``x0 (D,)`` is the baseline's initial state and ``info`` has
        ``P`` (weights), ``D`` (state size), ``n_steps``, ``state``, ``push``, ``tangents``.
    """
    ctx = RunContext.build(run, data_path, device, dtype, load=True)
    init = load_init(init_path)
    sched = ctx.schedule([int(init.members["seed_schedule"].iloc[0])])
    w0 = torch.as_tensor(init.weights[0], dtype=ctx.dtype, device=ctx.device)
    return flat_training_map(ctx, w0, sched, member=0, fast=bool(run["training"]["fast"]))


def measured_rate(metrics_path: str | Path, start: float, stop: float) -> tuple[float, float, int]:
    """Growth rate of the member-baseline distance of ``metrics.nc`` (``dist (member,
    checkpoint)``, members ``k >= 1``) inside the step window ``[start, stop]``
    (:func:`pathdep.analysis.lyapunov_link.distance_growth_rate`).

    Returns:
        ``(rate per step, its standard error, number of checkpoints used)``.
    """
    ds = xr.load_dataset(metrics_path, engine="h5netcdf")
    return distance_growth_rate(ds["step"].values, ds["dist"].values[1:], start, stop)


def _window(cfg: dict, n_steps: int, run: dict) -> tuple[int, int, int]:
    """``(transient, steps, qr_every)`` of the settings, shortened to fit a run of ``n_steps``."""
    qr = int(cfg["qr_every"])
    transient = min(int(cfg["transient"]), max(n_steps - qr, 0))
    transient -= transient % qr
    steps = min(int(cfg["steps"]), n_steps - transient)
    steps -= steps % qr
    if steps < qr:
        raise ValueError(f"lyapunov.steps: run {run.get('experiment')}/{run.get('run')} has only "
                         f"{n_steps} steps, fewer than transient + qr_every")
    return transient, steps, qr


def _spectrum(F, x0, info: dict, cfg: dict, transient: int, steps: int, qr: int) -> dict:
    """Benettin's spectrum over the window, its FTLEs, running estimate and lambda_max error."""
    k = min(int(cfg["k"]), int(info["D"]))
    t0 = time.perf_counter()
    res = benettin(F, x0, steps, k, qr_every=qr, transient=transient, seed=int(cfg["seed"]),
                   record=False, push=info["push"])
    secs = time.perf_counter() - t0
    window = max(1, min(int(cfg["window"]) // qr, res.log_r.shape[0]))
    ft = ftle(res.log_r, window, qr_every=qr).cpu().numpy()
    running = res.running.cpu().numpy()
    # lambda_max: the largest of the k exponents. Over a finite window with near-degenerate
    # leading exponents the QR order can lag (column 1's exponent is not yet the largest)
    exps = res.exponents.cpu().numpy()
    i_max = int(np.nanargmax(exps))
    return {"k": k, "secs": secs, "window": window, "ftle": ft, "running": running,
            "exponents": exps, "i_max": i_max, "err": lambda_error(running[:, i_max], ft[:, i_max])}


def _spectrum_dataset(sp: dict, rate: tuple, start: int, stop: int, qr: int) -> xr.Dataset:
    err = sp["err"]
    ds = xr.Dataset(
        {
            "exponents": (("exponent",), sp["exponents"]),
            "running": (("step", "exponent"), sp["running"]),
            "ftle": (("window", "exponent"), sp["ftle"]),
            "lambda_max": ((), float(sp["exponents"][sp["i_max"]])),
            "lambda_max_se": ((), err["se"]),
            "lambda_max_drift": ((), err["drift"]),
            "lambda_max_err": ((), err["err"]),
            "measured_rate": ((), rate[0]),
            "measured_rate_se": ((), rate[1]),
            "measured_points": ((), rate[2]),
        },
        coords={"exponent": np.arange(1, sp["k"] + 1), "step": np.arange(start + 1, stop + 1),
                "window_end": ("window", start + (np.arange(sp["ftle"].shape[0]) + 1) * sp["window"] * qr)},
    )
    ds["running"].attrs["description"] = "running Benettin estimate after each accumulated step"
    return ds


def lyapunov_for_run(run: dict, init_path: str | Path, data_path: str | Path,
                     metrics_path: str | Path | None, out_path: str | Path, spec: dict | None = None,
                     device: str = "cpu", threads: int | None = None) -> xr.Dataset:
    """Benettin spectrum of a run's baseline and the measured divergence rate, as netCDF.

    Args:
        run: the resolved run config (checked against the one recorded in ``init.h5``).
        init_path, data_path: ``init.h5`` and the prepared dataset.
        metrics_path: the run's ``metrics.nc`` (for the measured rate), or None.
        out_path: the netCDF to write (atomically).
        spec: ``lyapunov`` config block (:func:`pathdep.config.lyapunov.resolve`).

    Returns:
        Dataset with ``exponents (exponent)``, ``running (step, exponent)`` (running
        estimate at steps ``transient + 1 .. transient + steps``), ``ftle (window,
        exponent)``, scalars ``lambda_max``, ``lambda_max_se``, ``lambda_max_drift``,
        ``lambda_max_err``, ``measured_rate``, ``measured_rate_se``, ``measured_points``
        and attributes (window, epsilon, config, provenance, timing).
    """
    if threads:
        torch.set_num_threads(int(threads))
    cfg = resolve(spec)
    if canonical(load_init(init_path).config) != canonical(run):
        raise ValueError(f"{init_path}: init file was made from a different config than run "
                         f"{run.get('experiment')}/{run.get('run')}")
    F, x0, info = network_map(run, init_path, data_path, device)
    transient, steps, qr = _window(cfg, int(info["n_steps"]), run)
    sp = _spectrum(F, x0, info, cfg, transient, steps, qr)
    start, stop = transient, transient + steps
    rate = measured_rate(metrics_path, start, stop) if metrics_path else (float("nan"), float("nan"), 0)
    ds = _spectrum_dataset(sp, rate, start, stop, qr)
    pert = run.get("perturbation") or {}
    ds.attrs.update({"experiment": run.get("experiment", ""), "run": run.get("run", ""),
                     "swept": json.dumps(run.get("swept", {})), "k": sp["k"], "steps": steps,
                     "transient": transient, "window_start": start, "window_stop": stop,
                     "lambda_max_index": sp["i_max"] + 1, "qr_every": qr, "ftle_window": sp["window"] * qr,
                     "epsilon": float(pert.get("epsilon", float("nan"))),
                     "perturbation": json.dumps(pert, sort_keys=True),
                     "state": json.dumps(info["state"]), "state_size": int(info["D"]), "n_params": int(info["P"]),
                     "benettin_seconds": sp["secs"], "seconds_per_step": sp["secs"] / max(steps + transient, 1),
                     "tangents": info["tangents"],
                     "config": canonical(run), "lyapunov_config": json.dumps(cfg),
                     "provenance": json.dumps(collect(run, info["device"]), default=str)})
    write_netcdf(ds, out_path)
    return ds


def _row(ds: xr.Dataset, experiment: str, run: str, swept: str, epsilon: float,
         rate: float, se: float, npts: int) -> dict:
    lam, lam_err = float(ds["lambda_max"]), float(ds["lambda_max_err"])
    z, ok = agree(lam, lam_err, rate, se)
    return {"experiment": experiment, "run": run, "swept": swept, "epsilon": epsilon,
            "window_start": int(ds.attrs["window_start"]), "window_stop": int(ds.attrs["window_stop"]),
            "k": int(ds.attrs["k"]), "lambda_max": lam, "lambda_max_err": lam_err,
            "lambda_max_se": float(ds["lambda_max_se"]), "lambda_max_drift": float(ds["lambda_max_drift"]),
            "lambda_2": float(ds["exponents"][1]) if ds.sizes["exponent"] > 1 else np.nan,
            "measured_rate": rate, "measured_rate_se": se, "measured_points": int(npts),
            "z": z, "agree": ok,
            "ratio": rate / lam if lam != 0 else np.nan,
            "seconds_per_step": float(ds.attrs["seconds_per_step"])}


def _tangent_rows(tangent: dict) -> tuple[list[dict], str]:
    """The epsilon sweep's rows (rates over the one spectrum's window) and its experiment."""
    ref = xr.load_dataset(tangent["spectrum"], engine="h5netcdf")
    exp = ref.attrs["experiment"]
    start, stop = int(ref.attrs["window_start"]), int(ref.attrs["window_stop"])
    rows = []
    for name, mpath in tangent["metrics"].items():
        rate, se, npts = measured_rate(mpath, start, stop)
        eps = float(tangent.get("epsilon", {}).get(name, float("nan")))
        rows.append(_row(ref, exp, name, json.dumps({"epsilon": eps}), eps, rate, se, npts)
                    | {"tangent": True})
    return rows, exp


def link_table(paths: list[str | Path], tangent: dict | None = None) -> "pandas.DataFrame":  # noqa: F821
    """The link table: Benettin ``lambda_max`` +- error against the measured rate +- se.

    Args:
        paths: ``lyapunov.nc`` of runs (one row each, with that run's own measured rate).
        tangent: optional epsilon sweep on ONE baseline: ``{"spectrum": lyapunov.nc of one
            of its runs, "metrics": {run name: metrics.nc}, "epsilon": {run name: eps}}``;
            one row per run with the rate measured over the spectrum's window against that
            single ``lambda_max`` (rows of ``paths`` from the same experiment are dropped).

    Returns:
        ``pandas.DataFrame`` with columns ``experiment, run, swept, epsilon, window_start,
        window_stop, k, lambda_max, lambda_max_err, lambda_max_se, lambda_max_drift,
        lambda_2, measured_rate, measured_rate_se, measured_points, z`` (difference in
        combined errors), ``agree`` (``z <= AGREE_SIGMA`` of
        :mod:`pathdep.analysis.lyapunov_link`), ``ratio``, ``seconds_per_step``,
        ``tangent`` (row of the epsilon sweep).
    """
    import pandas as pd

    rows, skip = _tangent_rows(tangent) if tangent else ([], None)
    for p in paths:
        ds = xr.load_dataset(p, engine="h5netcdf")
        if ds.attrs["experiment"] == skip:
            continue
        rows.append(_row(ds, ds.attrs["experiment"], ds.attrs["run"], ds.attrs["swept"],
                         float(ds.attrs.get("epsilon", np.nan)), float(ds["measured_rate"]),
                         float(ds["measured_rate_se"]), int(ds["measured_points"])) | {"tangent": False})
    return pd.DataFrame(rows)


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
