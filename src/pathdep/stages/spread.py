"""Spread by source of randomness (rule ``spread``): init vs batch schedule vs hyperparameter
vs independent runs, from the runs' metrics files.

Reads one ``metrics.nc`` per source (named in the config's ``spread:`` block), writes
``spread.nc`` (source x checkpoint curves of :mod:`pathdep.analysis.spread`, the steps as a
coordinate) and ``spread.csv`` (one row per source: the final values and the share of the
independent runs' variance). How it was checked: ``tests/stages/test_spread.py`` on
synthetic metrics files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.spread import MEASURES, fraction_of_global, spread_curves
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.io.provenance import collect


def spread_table(metrics: Mapping[str, str | Path], out_nc: str | Path, out_csv: str | Path) -> pd.DataFrame:
    """Args:
        metrics: ``{source label: metrics.nc path}`` (e.g. ``init``, ``schedule``,
            ``hyperparameter``, ``global``), in display order.
        out_nc, out_csv: outputs (written atomically).
    """
    curves, steps, runs = {}, {}, {}
    for src, path in metrics.items():
        ds = xr.load_dataset(path, engine="h5netcdf")
        curves[src] = spread_curves(ds["dist_rel"].values, ds["fs_disagree"].values, ds["test_acc"].values,
                                    ds["test_loss"].values)
        steps[src] = ds["step"].values.astype(np.int64)
        runs[src] = f"{ds.attrs.get('experiment', '')}/{ds.attrs.get('run', '')}"
    srcs = list(curves)
    C = max(len(s) for s in steps.values())
    data = {m: (("source", "checkpoint"), np.full((len(srcs), C), np.nan)) for m in MEASURES}
    step = np.full((len(srcs), C), -1, dtype=np.int64)
    for i, s in enumerate(srcs):
        n = len(steps[s])
        step[i, :n] = steps[s]
        for m in MEASURES:
            data[m][1][i, :n] = curves[s][m]
    out = xr.Dataset(data, coords={"source": srcs, "checkpoint": np.arange(C),
                                   "step": (("source", "checkpoint"), step),
                                   "run": ("source", [runs[s] for s in srcs])})
    out.attrs["provenance"] = json.dumps(collect(None, "cpu"), default=str)
    final = {s: {m: float(curves[s][m][np.isfinite(curves[s][m])][-1]) if np.isfinite(curves[s][m]).any() else np.nan
                 for m in MEASURES} for s in srcs}
    shares = fraction_of_global(final)
    rows = [{"source": s, "run": runs[s], "final_step": int(steps[s][-1]), **final[s], **shares[s]} for s in srcs]
    df = pd.DataFrame(rows)
    write_netcdf(out, out_nc)
    write_csv(df, out_csv)
    return df
