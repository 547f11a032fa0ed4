"""pathdep.io.results: a run directory opened as one lazy dataset, and experiment-level tables.

Files are written in the real formats by the real writers (``TrajectoryWriter``,
``save_init``, xarray netCDF); the tiny workflow run (``tiny_workflow``) is opened as a user
would, and compared with its files read directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pathdep.io.layout import Layout
from pathdep.io.results import TABLES, list_experiments, list_runs, open_run, open_table, table_path
from pathdep.io.trajectory import TrajectoryWriter, save_init


def write_run(d: Path, *, k: int = 3, c: int = 4, p: int = 7, swept: dict | None = None, seed: int = 0,
              experiment: str = "t", run: str | None = None) -> dict[str, np.ndarray]:
    """A run directory in the real formats: init.h5, trajectory.h5 (float64 weights), metrics.nc,
    geometry.nc (a ``dist`` of its own) and lyapunov.nc (a ``step`` dimension); returns the arrays."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    run = run or d.name
    layout = Layout(("a", "b"), ((p - 2,), (2,)), (0, p - 2))
    members = [{"role": "baseline" if i == 0 else "member", "epsilon": 0.0 if i == 0 else 0.1, "seed_perturb": i}
               for i in range(k)]
    dpt = rng.random((k, 2))
    steps = np.array([0, 1, 3, 9][:c] + list(range(10, 10 + max(0, c - 4))), dtype=np.int64)
    config = {"experiment": experiment, "run": run, "swept": swept or {}}
    attrs = {"config": config, "provenance": {"pathdep_version": "test"}}
    w = rng.standard_normal((c, k, p))
    save_init(d / "init.h5", w[0], layout, members, dpt, attrs)
    tw = TrajectoryWriter(d / "trajectory.h5", layout, members, dpt, steps, n_steps=12, steps_per_epoch=4,
                          dtype=np.float64, attrs=attrs)
    for i in range(c):
        tw.write_weights(i, w[i])
    loss = rng.random((12, k)).astype(np.float32)
    tw.write_losses(0, loss)
    tw.write_valid(np.ones((c, k), dtype=bool))
    tw.finish()
    dist = rng.random((k, c))
    xr.Dataset({"dist": (("member", "checkpoint"), dist), "train_loss": (("member", "checkpoint"), rng.random((k, c)))},
               coords={"member": np.arange(k), "checkpoint": np.arange(c), "step": ("checkpoint", steps),
                       "role": ("member", [m["role"] for m in members])},
               attrs={"experiment": experiment, "run": run, "config": json.dumps(config),
                      "provenance": json.dumps({"stage": "metrics"})}).to_netcdf(d / "metrics.nc")
    gdist = dist + 1.0
    xr.Dataset({"dist": (("member", "checkpoint"), gdist), "barrier": (("imember", "lam"), rng.random((k - 1, 5)))},
               coords={"member": np.arange(k), "checkpoint": np.arange(c), "imember": np.arange(1, k),
                       "lam": np.linspace(0, 1, 5)},
               attrs={"provenance": json.dumps({"stage": "geometry"}), "note": "x"}).to_netcdf(d / "geometry.nc")
    running = rng.random((2, 3))
    xr.Dataset({"running": (("step", "exponent"), running), "lambda_max": 0.5},
               coords={"step": [5, 12], "exponent": [1, 2, 3]}).to_netcdf(d / "lyapunov.nc")
    return {"weights": w, "loss": loss, "dist": dist, "gdist": gdist, "running": running, "steps": steps, "dpt": dpt}


def _reads(ds: xr.Dataset, name: str) -> int:
    """File reads so far of a lazy variable (its backend array counts them)."""
    return ds[name].variable._data.array.reads


def test_open_run_holds_every_file_with_consistent_names(tmp_path):
    ref = write_run(tmp_path / "t" / "r0", k=3, c=4, p=7)
    ds = open_run(tmp_path / "t" / "r0")
    assert ds.weights.dims == ("member", "checkpoint", "param") and ds.weights.shape == (3, 4, 7)
    np.testing.assert_array_equal(ds.weights.values, ref["weights"].transpose(1, 0, 2))
    np.testing.assert_array_equal(ds.init_weights.values, ref["weights"][0])
    np.testing.assert_array_equal(ds.batch_loss.values, ref["loss"].T)
    np.testing.assert_array_equal(ds.step.values, ref["steps"])
    np.testing.assert_array_equal(ds.distance_per_tensor.values, ref["dpt"])
    assert list(ds.tensor.values) == ["a", "b"] and list(ds.role.values) == ["baseline", "member", "member"]
    # metrics keep their names; geometry's clashing `dist` is prefixed; its equal coordinates merged
    np.testing.assert_array_equal(ds.dist.values, ref["dist"])
    np.testing.assert_array_equal(ds.geometry_dist.values, ref["gdist"])
    assert ds.dist.attrs["source"] == "metrics.nc" and ds.geometry_dist.attrs["source"] == "geometry.nc"
    assert "geometry_role" not in ds and "geometry_step" not in ds
    # lyapunov's `step` dimension would clash with the checkpoint coordinate `step`
    assert ds.running.dims == ("lyapunov_step", "exponent")
    np.testing.assert_array_equal(ds.lyapunov_step.values, [5, 12])
    np.testing.assert_array_equal(ds.running.values, ref["running"])
    assert json.loads(ds.attrs["config"])["run"] == "r0" and ds.attrs["experiment"] == "t"
    assert json.loads(ds.attrs["provenance"]) == {"pathdep_version": "test"}
    assert json.loads(ds.attrs["geometry_provenance"]) == {"stage": "geometry"}
    assert json.loads(ds.attrs["geometry_attrs"]) == {"note": "x"}
    assert set(json.loads(ds.attrs["files"])) == {"trajectory", "init", "metrics", "geometry", "lyapunov"}


def test_open_run_reads_weights_only_when_indexed(tmp_path):
    ref = write_run(tmp_path / "r", k=2, c=5, p=6, seed=1)
    ds = open_run(tmp_path / "r")
    assert not ds.weights.variable._in_memory and _reads(ds, "weights") == 0
    _ = ds.weights.shape, ds.weights.dtype, ds.sel(member=1).weights.dims
    assert _reads(ds, "weights") == 0
    one = ds.weights.isel(checkpoint=2, member=1).values
    assert _reads(ds, "weights") == 1
    np.testing.assert_array_equal(one, ref["weights"][2, 1])
    np.testing.assert_array_equal(ds.weights[:, ::-2, 1:5].values, ref["weights"].transpose(1, 0, 2)[:, ::-2, 1:5])


def test_open_run_decodes_weights_stored_as_deltas(tmp_path):
    """A trajectory written with ``training.checkpoints: {store: deltas}`` has no /weights
    dataset; open_run reads its weights lazily through Trajectory.weights, bit for bit."""
    from pathdep.core.models import MLP
    layout = Layout.from_module(MLP(4, [5], 2))
    rng = np.random.default_rng(3)
    base = rng.standard_normal((3, layout.n_params)).astype(np.float32)
    W = np.stack([base, base + 1e-6 * rng.standard_normal(base.shape).astype(np.float32)], axis=1)  # (C, K, P)
    members = [{"role": "baseline", "baseline": 0, "copy": 0, "epsilon": 0.0},
               {"role": "member", "baseline": 0, "copy": 1, "epsilon": 1e-6}]
    d = tmp_path / "r"
    d.mkdir()
    w = TrajectoryWriter(d / "trajectory.h5", layout, members, np.zeros((2, len(layout.names))), np.arange(3), n_steps=3,
                         steps_per_epoch=1, dtype=np.float32,
                         attrs={"config": json.dumps({"training": {"checkpoints": {"store": "deltas"}}})})
    for i in range(3):
        w.write_weights(i, W[i])
    w.write_valid(np.ones((3, 2), dtype=bool))
    w.finish()
    with h5py.File(d / "trajectory.h5", "r") as f:
        assert "weights" not in f
    ds = open_run(d)
    assert ds.weights.shape == (2, 3, layout.n_params)
    got = ds.weights.values
    assert np.array_equal(got.view(np.uint32), W.transpose(1, 0, 2).view(np.uint32))
    np.testing.assert_array_equal(ds.weights.isel(checkpoint=1, member=1).values, W[1, 1])


def test_open_run_rejects_files_of_another_run(tmp_path):
    write_run(tmp_path / "r", k=3, c=4)
    xr.Dataset({"x": ("member", [1.0, 2.0, 3.0])}, coords={"member": [0, 1, 5]}).to_netcdf(tmp_path / "r" / "other.nc")
    with pytest.raises(ValueError, match=r"other\.nc: does not fit the run's other files") as exc:
        open_run(tmp_path / "r")
    assert "\n" not in str(exc.value)


def test_open_run_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        open_run(tmp_path)
    write_run(tmp_path / "r")
    with h5py.File(tmp_path / "r" / "trajectory.h5", "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(ValueError, match="trajectory is incomplete"):
        open_run(tmp_path / "r")


def test_lists_and_tables(tmp_path):
    write_run(tmp_path / "b" / "r1")
    write_run(tmp_path / "a" / "r0")
    (tmp_path / "figures").mkdir()
    (tmp_path / "a" / "r0.partial").mkdir()
    assert list_experiments(tmp_path) == ["a", "b"] and list_runs(tmp_path, "a") == ["r0"]
    df = pd.DataFrame({"quantity": ["dist"], "value": [1.5]})
    df.to_csv(tmp_path / "a" / "fits.csv", index=False)
    pd.testing.assert_frame_equal(open_table(tmp_path, "fits", "a"), df)
    (tmp_path / "ntk").mkdir()
    xr.Dataset({"k": ("t", [1.0, 2.0])}).to_netcdf(tmp_path / "ntk" / "drift.nc")
    np.testing.assert_array_equal(open_table(tmp_path, "ntk", "drift")["k"].values, [1.0, 2.0])
    with pytest.raises(FileNotFoundError, match=r"spread\.csv: no spread table"):
        open_table(tmp_path, "spread")
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        open_table(tmp_path, "nope")
    with pytest.raises(ValueError, match="table 'fits' needs exp="):
        open_table(tmp_path, "fits")
    with pytest.raises(FileNotFoundError, match="results folder not found"):
        list_experiments(tmp_path / "missing")
    # every table lives under the results folder at a pattern the workflow writes (docs/files.md)
    for name, (csv, nc) in TABLES.items():
        for pattern, netcdf in ((csv, False), (nc, True)):
            if pattern:
                assert table_path("R", name, "e", netcdf=netcdf) == Path("R") / pattern.format(exp="e")


@pytest.mark.xdist_group("tiny_workflow")
def test_open_run_on_the_tiny_workflow(tiny_workflow):
    from pathdep.io.trajectory import Trajectory

    res = tiny_workflow.results
    assert list_experiments(res) == ["eps", "sched"] and list_runs(res, "eps") == ["eps0.01", "eps0.1"]
    for exp in ("eps", "sched"):
        for run in list_runs(res, exp):
            ds = open_run(res / exp / run)
            assert ds.attrs["experiment"] == exp and ds.attrs["run"] == run
            with Trajectory(res / exp / run / "trajectory.h5") as t:
                assert ds.weights.shape == (t.n_members, t.n_checkpoints, t.layout.n_params)
                np.testing.assert_array_equal(ds.weights.isel(checkpoint=-1).values, t.weights(t.n_checkpoints - 1))
                np.testing.assert_array_equal(ds.step.values, t.steps)
            with xr.open_dataset(res / exp / run / "metrics.nc") as m:
                for name in m.data_vars:
                    xr.testing.assert_equal(ds[name].reset_coords(drop=True), m[name].reset_coords(drop=True))
            with xr.open_dataset(res / exp / run / "geometry.nc") as g:
                np.testing.assert_array_equal(ds.geometry_dist.values, g["dist"].values)
                np.testing.assert_array_equal(ds.barrier.values, g["barrier"].values)
            if (res / exp / run / "lyapunov.nc").exists():
                assert "lyapunov_step" in ds.dims and "exponents" in ds
