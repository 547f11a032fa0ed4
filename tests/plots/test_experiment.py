"""pathdep.plots.experiment: plot_experiment on the metrics files of tiny runs (two runs of a sweep, and a
copy with diverged members) writes non-empty PDF and PNG files."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from helpers import make_dataset, tiny_config, train_tiny

from pathdep.config import validate
from pathdep.stages.metrics import compute_metrics
from pathdep.plots.experiment import plot_experiment, run_label

FIGS = ("divergence", "loss", "cf")


def _outputs(d):
    return {f"{f}_{ext}": str(d / "figures" / f"{f}.{ext}") for f in FIGS for ext in ("pdf", "png")}


def _check_files(out):
    for key, path in out.items():
        with open(path, "rb") as fh:
            head = fh.read(8)
            fh.seek(0, 2)
            size = fh.tell()
        assert size > 1000, key
        if key.endswith("pdf"):
            assert head.startswith(b"%PDF-"), key
        else:
            assert head == b"\x89PNG\r\n\x1a\n", key


@pytest.fixture(scope="module")
def metric_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plots")
    data = make_dataset(tmp, "digits")
    cfg = tiny_config({"training": {"max_steps": 10}})
    cfg["experiments"] = {"t": {"perturbation": {"epsilon": [0.01, 0.1]}}}
    files = []
    for run in validate(cfg)["t"]:
        traj = train_tiny(tmp, run, data, run["run"])
        nc = tmp / run["run"] / "metrics.nc"
        compute_metrics(traj, data, nc)
        files.append(str(nc))
    return tmp, files


def _diverged_copy(src, dst):
    """A copy of one run's metrics with member 2 diverged after checkpoint 2 (NaN from there on)
    and member 3 NaN everywhere, as compute_metrics writes masked checkpoints."""
    ds = xr.load_dataset(src, engine="h5netcdf")
    for v in ds.data_vars:
        if "member" in ds[v].dims:
            x = ds[v].values.copy()
            x[2, 3:] = np.nan
            x[3] = np.nan
            ds[v].values = x
    ds = ds.assign_coords(diverged_step=("member", np.array([-1, -1, 4, 0])))
    ds.attrs["swept"] = json.dumps({})
    ds.attrs["run"] = "base"
    ds.to_netcdf(dst, engine="h5netcdf")
    return str(dst)


def test_plot_experiment_writes_pdf_and_png(metric_files, tmp_path):
    _, files = metric_files
    files = [*files, _diverged_copy(files[0], tmp_path / "diverged.nc")]
    out = _outputs(tmp_path)
    assert not any((tmp_path / "figures").glob("*"))
    plot_experiment(files, out, "t")
    _check_files(out)
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(
        f"{f}.{e}" for f in FIGS for e in ("pdf", "png"))
    assert plt.get_fignums() == []  # figures closed
    labels = [run_label(xr.load_dataset(f, engine="h5netcdf")) for f in files]
    assert labels == ["epsilon=0.01", "epsilon=0.1", "base"]
