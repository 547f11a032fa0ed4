"""Grokking (rule ``grokking``): the key steps of every network of a grokking experiment.

Reads the ``metrics.nc`` of each run of the experiment (e.g. the unconstrained and the
norm-constrained run of ``optimizer.constrain_norm: [false, true]``) and writes
``grokking.csv``: one row per network (run, baseline, copy) with the first checkpoint steps
at train accuracy 100 %, test accuracy 50 % and 90 % and their ratio (the delay;
:func:`pathdep.analysis.grokking.key_steps`), the final accuracies and losses, and whether
the run held its weight norm fixed. The accuracies are those of the metrics' evaluation
subsets (``metrics.eval_train`` / ``eval_test``; the whole split when they cover it).

How it was checked: ``tests/stages/test_grokking.py`` (synthetic metrics files with known
curves: the rows and key steps).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.grokking import key_steps
from pathdep.analysis.replicates import labels
from pathdep.io.atomic import write_csv

__all__ = ["grokking_table"]


def _rows(path: str | Path) -> list[dict]:
    """The rows of one run's metrics file."""
    ds = xr.load_dataset(path, engine="h5netcdf")
    steps = ds["step"].values.astype(np.int64)
    keys = key_steps(ds["train_acc"].values, ds["test_acc"].values, steps)
    base, copy = labels(ds)
    cfg = json.loads(ds.attrs.get("config", "{}"))
    constrained = bool(cfg.get("optimizer", {}).get("constrain_norm", False))
    return [{"experiment": ds.attrs.get("experiment", ""), "run": ds.attrs.get("run", ""),
             "constrain_norm": constrained, "member": k, "baseline": int(base[k]), "copy": int(copy[k]),
             **{name: float(v[k]) for name, v in keys.items()},
             "final_step": int(steps[-1]),
             "final_train_acc": float(ds["train_acc"].values[k, -1]),
             "final_test_acc": float(ds["test_acc"].values[k, -1]),
             "final_test_loss": float(ds["test_loss"].values[k, -1])}
            for k in range(ds.sizes["member"])]


def grokking_table(metrics: Sequence[str | Path], out_csv: str | Path) -> pd.DataFrame:
    """Args:
        metrics: the ``metrics.nc`` files of the experiment's runs.
        out_csv: ``grokking.csv`` (written atomically).

    Returns:
        The table: per network ``train_1.0``, ``test_0.5``, ``test_0.9`` (first checkpoint
        steps; NaN: never reached), ``delay`` (test_0.9 / train_1.0), the final accuracies.
    """
    df = pd.DataFrame([row for path in metrics for row in _rows(path)])
    write_csv(df, out_csv)
    return df
