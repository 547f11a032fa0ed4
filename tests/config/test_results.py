"""pathdep.config.results.open_experiment: an experiment's runs along ``run`` with their swept
values as coordinates; runs of different shapes padded with NaN, each equal to its own files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pathdep.config.results import open_experiment
from pathdep.io.results import open_run

_spec = importlib.util.spec_from_file_location("io_results_helpers", Path(__file__).parents[1] / "io" / "test_results.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
write_run = _mod.write_run


def test_runs_of_different_shapes_stack_with_sweep_coordinates(tmp_path):
    a = write_run(tmp_path / "w" / "w8", k=2, c=4, p=5, swept={"model.hidden": [8], "optimizer.lr": 0.1}, seed=1)
    b = write_run(tmp_path / "w" / "w16", k=3, c=5, p=9, swept={"model.hidden": [16], "optimizer.lr": 0.1}, seed=2)
    ds = open_experiment(tmp_path, "w")
    assert list(ds.run.values) == ["w16", "w8"]          # sorted run names
    assert list(ds.width.values) == [16, 8] and list(ds.lr.values) == [0.1, 0.1]
    assert json.loads(ds.attrs["swept"]) == ["width", "lr"] and list(ds.n_params.values) == [9, 5]
    assert ds.weights.dims == ("run", "member", "checkpoint", "param") and ds.weights.shape == (2, 3, 5, 9)
    assert ds.weights.variable._data.array.reads == 0
    w8 = ds.weights.sel(run="w8").values
    assert ds.weights.variable._data.array.reads == 1   # one file read for one run
    np.testing.assert_array_equal(w8[:2, :4, :5], a["weights"].transpose(1, 0, 2))
    assert np.isnan(w8[2]).all() and np.isnan(w8[:, 4]).all() and np.isnan(w8[:, :, 5:]).all()
    np.testing.assert_array_equal(ds.weights.sel(run="w16").values, b["weights"].transpose(1, 0, 2))
    np.testing.assert_array_equal(ds.init_weights.sel(run="w16").values, b["weights"][0])
    np.testing.assert_array_equal(ds.dist.sel(run="w8").values[:2, :4], a["dist"])
    assert np.isnan(ds.dist.sel(run="w8").values[2]).all()
    np.testing.assert_array_equal(ds.running.sel(run="w16").values, b["running"])
    np.testing.assert_array_equal(ds.epsilon.sel(run="w16").values, [0.0, 0.1, 0.1])  # not swept: the member table's
    assert "member_epsilon" not in ds
    assert json.loads(str(ds.config.sel(run="w8").values))["swept"] == {"model.hidden": [8], "optimizer.lr": 0.1}


def test_missing_experiment_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="experiment 'nope' has no run directory"):
        open_experiment(tmp_path, "nope")


@pytest.mark.xdist_group("tiny_workflow")
def test_open_experiment_on_the_tiny_workflow(tiny_workflow):
    res = tiny_workflow.results
    ds = open_experiment(res, "eps")
    assert list(ds.run.values) == ["eps0.01", "eps0.1"] and list(ds.epsilon.values) == [0.01, 0.1]
    for run in ds.run.values:
        one = open_run(res / "eps" / str(run))
        xr.testing.assert_equal(ds.dist.sel(run=run).reset_coords(drop=True), one.dist.reset_coords(drop=True))
        np.testing.assert_array_equal(ds.weights.sel(run=run).isel(checkpoint=-1).values,
                                      one.weights.isel(checkpoint=-1).values)
    # the member table's own epsilon is kept beside the swept one: the perturbed members' size
    np.testing.assert_array_equal(ds.member_epsilon.isel(member=1).values, ds.epsilon.values)
    np.testing.assert_array_equal(ds.member_epsilon.isel(member=0).values, [0.0, 0.0])
    sched = open_experiment(res, "sched")
    assert list(sched.run.values) == ["base"] and sched.sizes["run"] == 1
