"""An experiment's runs as one lazy :class:`xarray.Dataset`, with the swept values as coordinates.

It lives in the ``config`` layer because what makes a run's place in its experiment is
config semantics: the swept keys and their short names (:func:`pathdep.config.sweeps.sweep_values`,
the names of the tables and figure axes: ``epsilon``, ``lr``, ``width``, ...). Reading the
files is :func:`pathdep.io.results.open_run` (layer ``io``) on each run.

How it was checked: ``tests/config/test_results.py`` (two synthetic runs of different shapes
stacked with NaN padding and equal to each run's own data; the tiny workflow's sweep).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from pathdep.config.sweeps import sweep_values
from pathdep.io.results import list_runs, lazy_h5, open_run

# lazy trajectory variables: (file, HDF5 dataset, axis order, dims without run)
_LAZY = {
    "weights": ("trajectory.h5", "weights", (1, 0, 2), ("member", "checkpoint", "param")),
    "buffers": ("trajectory.h5", "buffers", (1, 0, 2), ("member", "checkpoint", "buffer")),
    "batch_loss": ("trajectory.h5", "loss", (1, 0), ("member", "train_step")),
    "init_weights": ("init.h5", "weights", (0, 1), ("member", "param")),
}


def open_experiment(results_dir: str | Path, exp: str) -> xr.Dataset:
    """Open every run of experiment ``exp`` and concatenate them along ``run``.

    Args:
        results_dir: the results folder (``results/``).
        exp: the experiment (a directory ``results/<exp>/`` with run directories).

    Returns:
        The runs' :func:`~pathdep.io.results.open_run` datasets on a new leading ``run``
        dimension (coordinate: the run names), outer-joined: runs with fewer members,
        checkpoints or parameters are padded with NaN (``n_params`` per run says how many
        are real). Coordinates on ``run``: every swept value under its short name
        (``epsilon``, ``lr``, ``width``, ...; :func:`~pathdep.config.sweeps.sweep_values`;
        a variable of the files already so named becomes ``member_<name>``, e.g. the
        member table's ``member_epsilon``, or ``file_<name>``),
        and ``config`` and ``provenance`` (JSON strings). The trajectory's weights, buffers,
        batch losses and initial weights stay lazy: one read per requested run.

    Raises:
        FileNotFoundError: no run directory under ``results/<exp>/`` (one line, naming it).
    """
    names = list_runs(results_dir, exp)
    if not names:
        raise FileNotFoundError(f"{Path(results_dir) / exp}: experiment {exp!r} has no run directory")
    dirs = [Path(results_dir) / exp / n for n in names]
    runs = [open_run(d) for d in dirs]
    lazy = {v: spec for v, spec in _LAZY.items() if all(v in r for r in runs)}
    small = [_indexed(r.drop_vars([v for v in _LAZY if v in r])) for r in runs]
    ds = xr.concat(small, dim="run", join="outer", coords="different", compat="equals",
                   combine_attrs="drop", data_vars="all")
    for v, (fname, dset, order, dims) in lazy.items():
        var = lazy_h5([d / fname for d in dirs], dset, order, ("run",) + dims, stacked=True)
        ds[v] = _fit(var, ds)
        ds[v].attrs["source"] = fname
    configs = [json.loads(r.attrs.get("config", "{}")) for r in runs]
    swept = [sweep_values(c) for c in configs]
    keys = list(dict.fromkeys(k for s in swept for k in s))
    ds = ds.rename({k: ("member_" if "member" in ds[k].dims else "file_") + k for k in keys if k in ds.variables})
    ds = ds.assign_coords(run=names, **{k: ("run", [s.get(k, np.nan) for s in swept]) for k in keys})
    ds = ds.assign_coords(config=("run", [r.attrs.get("config", "{}") for r in runs]),
                          provenance=("run", [r.attrs.get("provenance", "{}") for r in runs]),
                          n_params=("run", [r.sizes.get("param", 0) for r in runs]))
    ds.attrs = {"experiment": exp, "results_dir": str(results_dir), "swept": json.dumps(keys)}
    return ds


def _indexed(ds: xr.Dataset) -> xr.Dataset:
    """Give every dimension without an index a 0..n-1 one, so runs of different sizes align."""
    return ds.assign_coords({d: np.arange(n) for d, n in ds.sizes.items() if d not in ds.indexes})


def _fit(var: xr.Variable, ds: xr.Dataset) -> xr.Variable:
    """``var`` (stacked over runs, sized by the largest run) cut to ``ds``'s joined sizes."""
    cut = {d: slice(0, ds.sizes[d]) for d in var.dims if d in ds.sizes and d != "run" and ds.sizes[d] < var.sizes[d]}
    return var.isel(cut) if cut else var
