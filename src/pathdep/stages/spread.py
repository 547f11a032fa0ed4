"""Spread by source of randomness (rule ``spread``): init vs batch schedule vs hyperparameter
vs independent runs, from the runs' metrics files.

Reads one ``metrics.nc`` per source (named in the config's ``spread:`` block), writes
``spread.nc`` (source x checkpoint curves of :mod:`pathdep.analysis.spread`, the steps as a
coordinate) and ``spread.csv`` (one row per source: the final values and the share of the
independent runs' variance). With replicate baselines every measure is computed per baseline
block and reported as the mean over baselines with a 95 % t interval across them. How it was checked: ``tests/stages/test_spread.py`` on
synthetic metrics files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.replicates import interval, labels
from pathdep.analysis.spread import MEASURES, block_shares, block_spread
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.io.provenance import collect


def _read(path) -> tuple[dict, np.ndarray, str]:
    """One source's per-baseline curves ``{measure: (R, C)}``, its steps and ``experiment/run``."""
    ds = xr.load_dataset(path, engine="h5netcdf")
    curves = block_spread(ds["dist_rel"].values, ds["fs_disagree"].values, ds["test_acc"].values,
                          ds["test_loss"].values, *labels(ds))
    return curves, ds["step"].values.astype(np.int64), f"{ds.attrs.get('experiment', '')}/{ds.attrs.get('run', '')}"


def _last(a: np.ndarray) -> np.ndarray:
    """The last finite value of each row of ``(R, C)``."""
    return np.array([r[np.isfinite(r)][-1] if np.isfinite(r).any() else np.nan for r in np.atleast_2d(a)])


def _row(src: str, run: str, steps: np.ndarray, curves: dict, ref: dict | None) -> dict:
    """The csv row of one source: final measures and shares, mean and 95 % t interval across baselines."""
    row = {"source": src, "run": run, "final_step": int(steps[-1]), "baselines": int(curves["acc_sd"].shape[0])}
    finals = {m: _last(curves[m]) for m in MEASURES}
    shares = block_shares(curves, ref) if ref is not None else {k: np.full(1, np.nan)
                                                                for k in ("acc_var_share", "disagree_share")}
    for name, v in {**finals, **shares}.items():
        m, lo, hi = interval(v)
        row |= {name: float(m), f"{name}_lo": float(lo), f"{name}_hi": float(hi)}
    return row


def _dataset(curves: dict, steps: dict, runs: dict) -> xr.Dataset:
    """``spread.nc``: per source the mean over baselines of each measure and its interval."""
    srcs = list(curves)
    C = max(len(s) for s in steps.values())
    data = {}
    for m in MEASURES:
        for suffix, k in (("", 0), ("_lo", 1), ("_hi", 2)):
            arr = np.full((len(srcs), C), np.nan)
            for i, s in enumerate(srcs):
                arr[i, :len(steps[s])] = interval(curves[s][m])[k]
            data[m + suffix] = (("source", "checkpoint"), arr)
    step = np.full((len(srcs), C), -1, dtype=np.int64)
    for i, s in enumerate(srcs):
        step[i, :len(steps[s])] = steps[s]
    out = xr.Dataset(data, coords={"source": srcs, "checkpoint": np.arange(C), "step": (("source", "checkpoint"), step),
                                   "run": ("source", [runs[s] for s in srcs]),
                                   "baselines": ("source", [int(curves[s]["acc_sd"].shape[0]) for s in srcs])})
    out.attrs["interval"] = "mean over independent baselines and 95 % Student-t interval across them"
    out.attrs["provenance"] = json.dumps(collect(None, "cpu"), default=str)
    return out


def spread_table(metrics: Mapping[str, str | Path], out_nc: str | Path, out_csv: str | Path) -> pd.DataFrame:
    """Args:
        metrics: ``{source label: metrics.nc path}`` (e.g. ``init``, ``schedule``,
            ``hyperparameter``, ``global``), in display order.
        out_nc, out_csv: outputs (written atomically).

    Returns:
        The csv table: per source the final measures (:data:`pathdep.analysis.spread.MEASURES`)
        and the shares of the ``global`` source (``acc_var_share``, ``disagree_share``), each the
        mean over the R replicate baselines with ``_lo``/``_hi`` its 95 % t interval (NaN for one
        baseline), and ``baselines`` (R).
    """
    read = {src: _read(path) for src, path in metrics.items()}
    curves = {s: r[0] for s, r in read.items()}
    ref = curves.get("global")
    df = pd.DataFrame([_row(s, r[2], r[1], r[0], ref) for s, r in read.items()])
    write_netcdf(_dataset(curves, {s: r[1] for s, r in read.items()}, {s: r[2] for s, r in read.items()}), out_nc)
    write_csv(df, out_csv)
    return df
