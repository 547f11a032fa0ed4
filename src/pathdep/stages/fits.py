"""Fitted forms of an experiment's divergence curves and their scaling with the swept
hyperparameters: metrics.nc / geometry.nc in, netCDF and CSV tables out.

What it computes (the rules of ``rules/fits.smk`` call these functions; each reads files,
calls :mod:`pathdep.analysis.fits` / :mod:`pathdep.analysis.scaling` and writes files):

* :func:`fit_experiment` (rule ``fit_experiment``, one per experiment) ->
  ``results/<exp>/fits.nc`` + ``fits.csv`` (every divergence curve of every perturbed
  member: raw and aligned weight distance, function-space distances; every form of
  :mod:`pathdep.analysis.fits` with standard errors, AIC, BIC, the AIC-best form) and
  ``results/<exp>/scaling.nc`` + ``scaling.csv`` (:func:`pathdep.analysis.scaling.scaling_frame`:
  per swept hyperparameter the fitted parameters per value, mean / std / sem / median over
  curves, how often each form was AIC-best, and power laws of each parameter against the
  hyperparameter; the hypersphere ``D`` of geometry.nc is tabulated as quantity
  ``direction``, form ``sphere_walk``).
* :func:`summarize_fits` (rule ``summarize_fits``) -> ``results/fits_summary.csv``
  (:func:`pathdep.analysis.scaling.summary_table`).

Configuration: the top-level ``fits:`` block (:mod:`pathdep.config.fits`; per experiment
``fits.experiments.<exp>``).

How it was checked: ``tests/stages/test_fits.py`` (power laws planted in synthetic metrics
are recovered by ``fit_experiment`` and reported by ``summarize_fits``) and
``tests/test_geometry_workflow.py`` (the rules on the tiny config).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis import fits as FT
from pathdep.analysis import scaling as SC
from pathdep.analysis.quantities import quantity_values
from pathdep.config.fits import resolve
from pathdep.config.sweeps import learning_rates, sweep_values
from pathdep.io.atomic import write_csv, write_netcdf

__all__ = ["fit_experiment", "summarize_fits"]


def _curves(metrics_files: Sequence, geometry_files: Sequence, quantities: Sequence[str]):
    """Yield (metrics dataset, quantity, member, steps, values) for every perturbed member."""
    for mf, gf in zip(metrics_files, geometry_files):
        dm = xr.load_dataset(mf, engine="h5netcdf")
        dg = xr.load_dataset(gf, engine="h5netcdf")
        roles = dm["role"].values.astype(str)
        steps = dm["step"].values.astype(np.float64)
        for q in quantities:
            vals = quantity_values(dm, dg, q)
            if vals is None:
                continue
            for k in np.flatnonzero(roles != "baseline"):
                yield dm, q, int(k), steps, vals[k]


def _run_attrs(dm: xr.Dataset) -> dict:
    run = json.loads(dm.attrs["config"])
    lr, lr_eff = learning_rates(run)
    return {"run": str(dm.attrs.get("run", run.get("run", ""))), "lr": lr, "lr_eff": lr_eff,
            "sweep": sweep_values(run), "optimizer": str(run.get("optimizer", {}).get("name", "sgd"))}


def _column(vals: list):
    """A coordinate column: floats when every value is numeric, else strings."""
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in vals):
        return np.asarray(vals, dtype=np.float64)
    return np.asarray([str(v) for v in vals])


def _fit_curves(metrics_files: Sequence, geometry_files: Sequence, fs: dict):
    """Every form fitted to every curve: ``(results, coords, swept names, {run: attrs})``."""
    results, co = [], {"quantity": [], "run": [], "member": [], "lr": [], "lr_eff": []}
    sweep_rows, run_info = [], {}
    for dm, q, k, steps, vals in _curves(metrics_files, geometry_files, fs["quantities"]):
        info = run_info.setdefault(str(dm.attrs.get("run")), _run_attrs(dm))
        results.append(FT.fit_all(steps, vals, fs["models"], space=fs["space"]))
        for name, v in (("quantity", q), ("run", info["run"]), ("member", k), ("lr", info["lr"]),
                        ("lr_eff", info["lr_eff"])):
            co[name].append(v)
        sweep_rows.append(info["sweep"])
    hp_names = sorted({h for r in sweep_rows for h in r})
    for h in hp_names:
        co[h] = _column([r.get(h) for r in sweep_rows])
    return results, co, hp_names, run_info


def _sphere_rows(geometry_files: Sequence, run_info: dict) -> pd.DataFrame:
    """The hypersphere ``D`` of every perturbed member, as rows of the fits table."""
    rows = []
    for gf in geometry_files:
        dg = xr.load_dataset(gf, engine="h5netcdf")
        info = run_info.get(str(dg.attrs.get("run"))) or {"sweep": json.loads(dg.attrs.get("sweep_values", "{}")),
                                                          "run": str(dg.attrs.get("run")),
                                                          "lr": dg.attrs.get("lr"), "lr_eff": dg.attrs.get("lr_eff")}
        for k in np.flatnonzero(dg["role"].values.astype(str) != "baseline"):
            rows.append({"run": info["run"], "member": int(k), "lr": info["lr"], "lr_eff": info["lr_eff"],
                         **info["sweep"], "quantity": "direction", "model": "sphere_walk", "best": True,
                         "D": float(dg["sphere_D"].values[k]), "D_stderr": float(dg["sphere_D_stderr"].values[k])})
    return pd.DataFrame(rows)


def _scaling_dataset(table: pd.DataFrame, experiment: str, hp_names: list) -> xr.Dataset:
    tds = xr.Dataset.from_dataframe(table.reset_index(drop=True).rename_axis("row"))
    for c in tds.data_vars:
        if tds[c].dtype == object:
            tds[c] = tds[c].astype(str)
    tds.attrs.update({"experiment": experiment, "hparams": json.dumps(hp_names),
                      "description": "fitted parameters of each form against each swept hyperparameter; "
                                     "pl_*: power law param = pl_prefactor * value ** pl_exponent (positive values)"})
    return tds


def fit_experiment(metrics_files: Sequence, geometry_files: Sequence, out_fits_nc, out_fits_csv,
                   out_scaling_nc, out_scaling_csv, spec: dict | None = None, experiment: str = "",
                   log=print) -> tuple[xr.Dataset, pd.DataFrame]:
    """Fit every divergence curve of an experiment and tabulate the fits against its sweeps.

    Args:
        metrics_files, geometry_files: the runs' ``metrics.nc`` and ``geometry.nc``, in
            the same order.
        out_fits_nc, out_fits_csv: per-curve fits (all forms; dims ``curve x model x param``
            with coordinates ``quantity``, ``run``, ``member`` and one per swept
            hyperparameter).
        out_scaling_nc, out_scaling_csv: the scaling table
            (:func:`pathdep.analysis.scaling.scaling_frame`).
        spec: the ``fits`` settings (``models``, ``space``, ``quantities``).
        experiment: its name (table column and attributes).

    Returns:
        ``(fits dataset, scaling table)``.
    """
    if len(metrics_files) != len(geometry_files):
        raise ValueError(f"fit_experiment: {len(metrics_files)} metrics files but {len(geometry_files)} geometry files")
    fs, t0 = resolve(spec), time.perf_counter()
    results, co, hp_names, run_info = _fit_curves(metrics_files, geometry_files, fs)
    if not results:
        raise ValueError(f"fit_experiment {experiment}: no divergence curves found in the metrics/geometry files")
    ds = FT.fits_to_dataset(results, co, dim="curve")
    ds.attrs.update({"experiment": experiment, "hparams": json.dumps(hp_names), "time": "training step",
                     "fit_space": fs["space"], "models": json.dumps(fs["models"]),
                     "note": "t = 0 (the perturbation itself) is left out of every fit"})
    log(f"fitted {len(results)} curves x {len(fs['models'])} forms in {time.perf_counter() - t0:.1f} s")
    write_netcdf(ds, out_fits_nc)
    df = FT.dataset_to_frame(ds)
    df.insert(0, "experiment", experiment)
    write_csv(df, out_fits_csv)
    table = SC.scaling_frame(df, _sphere_rows(geometry_files, run_info), hp_names, experiment,
                             lr_sweep=("lr" in hp_names or "momentum" in hp_names))
    write_csv(table, out_scaling_csv)
    write_netcdf(_scaling_dataset(table, experiment, hp_names), out_scaling_nc)
    return ds, table


def summarize_fits(scaling_csvs: Sequence, fits_csvs: Sequence, out_csv, log=print) -> pd.DataFrame:
    """One summary table over experiments (:func:`pathdep.analysis.scaling.summary_table`):
    preferred forms, time exponents and scaling exponents -> ``fits_summary.csv``."""
    tables = []
    for sc, fc in zip(scaling_csvs, fits_csvs):
        tab = pd.read_csv(sc)
        exp = str(tab["experiment"].iloc[0]) if "experiment" in tab and len(tab) else Path(sc).parent.name
        tables.append((exp, tab, pd.read_csv(fc)))
    out = SC.summary_table(tables)
    write_csv(out, out_csv)
    log(f"summary: {len(out)} rows over {len(scaling_csvs)} experiments")
    return out
