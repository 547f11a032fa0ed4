"""Fitted forms of an experiment's divergence curves and their scaling with the swept
hyperparameters: metrics.nc / geometry.nc in, netCDF and CSV tables out.

What it computes (the rules of ``rules/fits.smk`` call these functions; each reads files,
calls :mod:`pathdep.analysis.fit_holdout` / :mod:`pathdep.analysis.scaling` and writes files):

* :func:`fit_experiment` (rule ``fit_experiment``, one per experiment) ->
  ``results/<exp>/fits.nc`` + ``fits.csv`` and ``results/<exp>/scaling.nc`` + ``scaling.csv``.

  Curves: one per run, quantity (raw and aligned weight distance, function-space distances)
  and **baseline**: the mean over that baseline's perturbed copies
  (:func:`pathdep.analysis.quantities.baseline_curves`). Why the copy-averaged curve rather
  than each copy: copies of one baseline are pseudo-replicates, so any interval must come from
  the baselines (one value each); the mean over copies is the expected divergence the forms
  model, is less noisy than one copy (function-space curves jump), and costs one fit per
  baseline instead of one per copy (the default run's fits stay within today's time).

  ``fits.csv`` (one row per curve and form; ``fits.nc`` holds the same plus the points fitted,
  ``curve_t``/``curve_d``, and the held-out fits' parameters ``value_oos``):

  ====================  =======================================================================
  ``quantity, run,      the curve: quantity, run, baseline index r, how many copies it averages,
  baseline, copies``    learning rates, one column per swept hyperparameter
  ``model``             the form (:mod:`pathdep.analysis.fit_forms`)
  ``aic ... success``   whole-curve fit (residuals weighted by ``fits.weights``)
  ``best``              the form with the lowest AIC for this curve
  ``ratio_last``        whole-curve fit / data at the last checkpoint
  ``oos_factor``        the form fitted on the steps up to ``fit_fraction`` of the run (2/3),
                        worst ``max(f/d, d/f)`` over the held-out checkpoints (the last third)
  ``oos_ratio_last``    that held-out fit / data at the last checkpoint
  ``oos_selected``      the form with the smallest ``oos_factor`` for this curve
  ``oos_model``         (per curve) the out-of-sample selected form
  ``oos_factor_selected``  (per curve) its factor
  ``oos_err_last``      (per curve) its relative error at the last checkpoint, ``|f/d - 1|``
  ``described``         (per curve) ``oos_factor_selected <= 1 + tolerance`` (1.3)
  ``verdict``           (per curve) ``oos_model`` if described, else "no form describes it"
  ``t_cut``             (per curve) the last step the held-out fits saw
  parameters            ``<p>``, ``<p>_stderr`` of the whole-curve fit
  ====================  =======================================================================

  ``scaling.csv`` (:func:`pathdep.analysis.scaling.scaling_frame`): per swept hyperparameter
  the fitted parameters per value (mean and 95 % interval across baselines; NaN interval with
  one baseline), how often each form was AIC-best / selected / described, and power laws of
  each parameter against the swept value (``1 - momentum`` for momenta; none through fewer
  than 4 values or less than a decade: ``pl_note = too few points``); the hypersphere ``D``
  (quantity ``direction``, form ``sphere_walk``) from the members whose walk passes the
  diffusion goodness-of-fit test (:func:`pathdep.analysis.hypersphere.diffusion_gof`) only;
  the final values of ``dist``, ``dist_aligned``, ``fs_l2_logits``, ``test_cf_acc`` (form
  ``final``, param ``value``) for the divergence-vs figure.
* :func:`summarize_fits` (rule ``summarize_fits``) -> ``results/fits_summary.csv``
  (:func:`pathdep.analysis.scaling.summary_table`: preferred forms, the share of curves a
  form describes out of sample, ``frac_described``, per experiment and quantity and over all
  experiments, rows ``experiment = all``).

Configuration: the top-level ``fits:`` block (:mod:`pathdep.config.fits`; per experiment
``fits.experiments.<exp>``).

How it was checked: ``tests/stages/test_fits.py`` (power laws planted in synthetic metrics
with two baselines are recovered by ``fit_experiment``, described out of sample, given
intervals across baselines, and reported by ``summarize_fits``; a collapsing curve is "no
form describes it") and ``tests/test_geometry_workflow.py`` (the rules on the tiny config).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis import fit_holdout as FH
from pathdep.analysis import fits as FT
from pathdep.analysis import scaling as SC
from pathdep.analysis.hypersphere import baseline_diffusion
from pathdep.analysis.quantities import baseline_curves, final_values
from pathdep.analysis.replicates import labels
from pathdep.config.fits import resolve
from pathdep.config.sweeps import learning_rates, sweep_values
from pathdep.io.atomic import write_csv, write_netcdf

__all__ = ["fit_experiment", "summarize_fits"]


def _curves(metrics_files: Sequence, geometry_files: Sequence, quantities: Sequence[str]):
    """Yield (metrics dataset, quantity, baseline r, copies, steps, values): every quantity of
    every run averaged over the perturbed copies of each baseline (one curve per baseline)."""
    for mf, gf in zip(metrics_files, geometry_files):
        dm = xr.load_dataset(mf, engine="h5netcdf")
        dg = xr.load_dataset(gf, engine="h5netcdf")
        steps = dm["step"].values.astype(np.float64)
        for q in quantities:
            got = baseline_curves(dm, dg, q)
            if got is None:
                continue
            curves, copies = got
            for r in range(curves.shape[0]):
                yield dm, q, r, int(copies[r]), steps, curves[r]


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
    """Every form fitted to every curve, whole and out of sample:
    ``(curve fits, coords, swept names, {run: attrs})``."""
    results, co = [], {k: [] for k in ("quantity", "run", "baseline", "copies", "lr", "lr_eff")}
    sweep_rows, run_info = [], {}
    for dm, q, r, copies, steps, vals in _curves(metrics_files, geometry_files, fs["quantities"]):
        info = run_info.setdefault(str(dm.attrs.get("run")), _run_attrs(dm))
        results.append(FH.evaluate_curve(steps, vals, fs["models"], space=fs["space"], weights=fs["weights"],
                                         fit_fraction=fs["fit_fraction"], tolerance=fs["tolerance"],
                                         max_starts=fs["max_starts"]))
        for name, v in (("quantity", q), ("run", info["run"]), ("baseline", r), ("copies", copies),
                        ("lr", info["lr"]), ("lr_eff", info["lr_eff"])):
            co[name].append(v)
        sweep_rows.append(info["sweep"])
    hp_names = sorted({h for r in sweep_rows for h in r})
    for h in hp_names:
        co[h] = _column([r.get(h) for r in sweep_rows])
    return results, co, hp_names, run_info


#: final values drawn against the swept value (figure divergence_vs): variable -> file
FINAL = {"dist": "metrics", "dist_aligned": "geometry", "fs_l2_logits": "metrics", "test_cf_acc": "metrics"}


def _extra_rows(metrics_files: Sequence, geometry_files: Sequence, run_info: dict, tolerance: float) -> pd.DataFrame:
    """Rows of the scaling table that are not fitted forms, one per run and baseline: the
    hypersphere ``D`` (members passing the diffusion goodness-of-fit test only; form
    ``sphere_walk``) and the final values of :data:`FINAL` (form ``final``)."""
    rows = []
    for mf, gf in zip(metrics_files, geometry_files):
        dm = xr.load_dataset(mf, engine="h5netcdf")
        dg = xr.load_dataset(gf, engine="h5netcdf")
        info = run_info.get(str(dm.attrs.get("run"))) or _run_attrs(dm)
        head = {"run": info["run"], "lr": info["lr"], "lr_eff": info["lr_eff"], **info["sweep"]}
        if "sphere_D" in dg and "sphere_sq_disp" in dg:
            base, copy = labels(dg)
            sd = baseline_diffusion(dg["sphere_D"].values, dg["sphere_sq_disp"].values, dg["sphere_theory"].values,
                                    base, copy, tolerance)
            rows += [{**head, "baseline": r, "quantity": "direction", "model": "sphere_walk", "best": True,
                      "D": sd["D"][r], "n_pass": sd["n_pass"][r], "gof_factor": sd["gof_factor"][r]}
                     for r in range(len(sd["D"]))]
        for var, src in FINAL.items():
            vals = final_values(dm if src == "metrics" else dg, var)
            rows += [] if vals is None else [{**head, "baseline": r, "quantity": var, "model": "final", "best": False,
                                              "value": vals[r]} for r in range(len(vals))]
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
        out_fits_nc, out_fits_csv: per-curve fits (all forms, whole and out of sample; dims
            ``curve x model x param`` with coordinates ``quantity``, ``run``, ``baseline``,
            ``copies`` and one per swept hyperparameter; columns in the module docstring).
        out_scaling_nc, out_scaling_csv: the scaling table
            (:func:`pathdep.analysis.scaling.scaling_frame`).
        spec: the ``fits`` settings (:data:`pathdep.config.fits.DEFAULTS`).
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
    ds = FH.curves_to_dataset(results, co, dim="curve")
    ds.attrs.update({"experiment": experiment, "hparams": json.dumps(hp_names), "time": "training step",
                     "fit_space": fs["space"], "models": json.dumps(fs["models"]), "weights": fs["weights"],
                     "fit_fraction": fs["fit_fraction"], "tolerance": fs["tolerance"],
                     "curves": "one per run, quantity and baseline: the mean over the baseline's perturbed copies",
                     "note": "t = 0 (the perturbation itself) is left out of every fit"})
    log(f"fitted {len(results)} curves x {len(fs['models'])} forms (whole and first {fs['fit_fraction']:.0%}) "
        f"in {time.perf_counter() - t0:.1f} s; described out of sample: {int(ds['described'].sum())}/{len(results)}")
    write_netcdf(ds, out_fits_nc)
    df = FT.dataset_to_frame(ds)
    df.insert(0, "experiment", experiment)
    write_csv(df, out_fits_csv)
    table = SC.scaling_frame(df, _extra_rows(metrics_files, geometry_files, run_info, fs["tolerance"]), hp_names,
                             experiment, lr_sweep=("lr" in hp_names or "momentum" in hp_names))
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
