"""Architecture comparison at matched parameter count (rule ``architecture``).

Reads the ``metrics.nc`` of each run named in the ``architecture:`` block (e.g. an MLP, LeNet-5
and a ResNet trained with the same data, optimizer, batch size, steps and relative
perturbation; :mod:`pathdep.config.architecture`) and writes

* ``architecture.csv``: per run and statistic (``early_rate``: the exponential rate per step
  of the relative distance ``d / |w_b(t)|`` over the configured step window; ``late_slope``:
  the linear slope per step of ``d / sqrt(P)`` over the last part of the run;
  :mod:`pathdep.analysis.architecture`) the mean over independent baselines and its 95 %
  Student-t interval, the parameter count and its ratio to the reference's; per non-reference
  run the difference ``<label> - <reference>`` with its interval, how it was paired, and the
  verdict (decrease / no decrease / inconclusive);
* ``architecture.nc``: per run the relative distance and the RMS distance per weight at every
  checkpoint (mean over baselines, interval across them), with the definitions, window and
  provenance as attributes (the figure reads it).

How it was checked: ``tests/stages/test_architecture.py`` on synthetic metrics files with
planted rates (the table's rates, differences and verdicts, the curves file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis import architecture as A
from pathdep.analysis.replicates import interval, labels, per_baseline
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.io.provenance import collect

__all__ = ["architecture_table", "STATISTICS"]

STATISTICS = {"early_rate": "exponential rate per step of d/|w_b(t)| over the step window (least squares of log)",
              "late_slope": "linear slope per step of d/sqrt(P) over the last late_fraction of the steps"}


def _read(path: str | Path, spec: dict) -> dict:
    """One run: steps, per-baseline statistics, per-baseline curves, its model and parameter count."""
    ds = xr.load_dataset(path, engine="h5netcdf")
    b, c = labels(ds)
    steps = ds["step"].values.astype(np.int64)
    rel = A.relative_distance(ds["dist"].values, ds["norm"].values, b, c)
    rms = ds["dist_rms"].values
    model = json.loads(ds.attrs.get("config", "{}")).get("model", {})
    return {"steps": steps, "stats": A.per_baseline_rates(steps, rel, rms, b, c, tuple(spec["window"]),
                                                         float(spec["late_fraction"])),
            "curves": {"rel": per_baseline(rel, b, c), "rms": per_baseline(rms, b, c)},
            "run": f"{ds.attrs.get('experiment', '')}/{ds.attrs.get('run', '')}",
            "model": model.get("kind", "mlp"), "n_params": int(ds.attrs.get("n_params", 0))}


def _rows(read: dict, ref: str) -> list[dict]:
    """The csv rows: one per (statistic, run), then one per (statistic, run - reference)."""
    rows = []
    for stat in STATISTICS:
        for label, r in read.items():
            m, lo, hi, n = A.summarize(r["stats"][stat])
            rows.append({"statistic": stat, "architecture": label, "run": r["run"], "model": r["model"],
                         "n_params": r["n_params"], "param_ratio": r["n_params"] / max(read[ref]["n_params"], 1),
                         "mean": m, "lo": lo, "hi": hi, "baselines": n, "reference": ref, "how": "", "verdict": ""})
        for label, r in read.items():
            if label == ref:
                continue
            m, lo, hi, how = A.difference(r["stats"][stat], read[ref]["stats"][stat])
            rows.append({"statistic": stat, "architecture": f"{label} - {ref}", "run": r["run"], "model": r["model"],
                         "n_params": r["n_params"], "param_ratio": r["n_params"] / max(read[ref]["n_params"], 1),
                         "mean": m, "lo": lo, "hi": hi, "baselines": int(np.isfinite(r["stats"][stat]).sum()),
                         "reference": ref, "how": how, "verdict": A.verdict(lo, hi)})
    return rows


def _curves(read: dict, spec: dict) -> xr.Dataset:
    """``architecture.nc``: mean and interval across baselines of both curves, per run."""
    labels_ = list(read)
    C = max(len(r["steps"]) for r in read.values())
    data = {}
    for name in ("rel", "rms"):
        for suffix, k in (("", 0), ("_lo", 1), ("_hi", 2)):
            arr = np.full((len(labels_), C), np.nan)
            for i, lab in enumerate(labels_):
                arr[i, :len(read[lab]["steps"])] = interval(read[lab]["curves"][name])[k]
            data[name + suffix] = (("architecture", "checkpoint"), arr)
    step = np.full((len(labels_), C), -1, dtype=np.int64)
    for i, lab in enumerate(labels_):
        step[i, :len(read[lab]["steps"])] = read[lab]["steps"]
    out = xr.Dataset(data, coords={"architecture": labels_, "checkpoint": np.arange(C),
                                   "step": (("architecture", "checkpoint"), step),
                                   "n_params": ("architecture", [read[x]["n_params"] for x in labels_]),
                                   "run": ("architecture", [read[x]["run"] for x in labels_])})
    out.attrs.update(rel="d / |w_b(t)| (distance to the own baseline over the baseline's norm)",
                     rms="d / sqrt(P) (RMS distance per weight)", statistics=json.dumps(STATISTICS),
                     window=json.dumps(list(spec["window"])), late_fraction=float(spec["late_fraction"]),
                     reference=spec["reference"],
                     interval="mean over independent baselines (copies averaged first), 95 % Student-t across them",
                     provenance=json.dumps(collect(spec, "cpu"), default=str))
    return out


def architecture_table(metrics: Mapping[str, str | Path], spec: dict, out_csv: str | Path,
                       out_nc: str | Path) -> pd.DataFrame:
    """Args:
        metrics: ``{label: metrics.nc}`` in display order (the block's ``runs``).
        spec: the resolved block (:func:`pathdep.config.architecture.resolve`; ``runs`` unused):
            ``reference``, ``window`` ``[t0, t1]`` steps, ``late_fraction``.
        out_csv, out_nc: outputs (written atomically).

    Returns:
        The csv table (columns ``statistic, architecture, run, model, n_params, param_ratio,
        mean, lo, hi, baselines, reference, how, verdict``).
    """
    spec = {k: v for k, v in spec.items() if k != "runs"}
    read = {label: _read(path, spec) for label, path in metrics.items()}
    df = pd.DataFrame(_rows(read, spec["reference"]))
    write_netcdf(_curves(read, spec), out_nc)
    write_csv(df, out_csv)
    return df
