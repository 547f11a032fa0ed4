"""pathdep.io.provenance: the keys, their values (versions, git commit), and that trajectory.h5,
init.h5 and metrics.nc carry it as parseable JSON."""

import json
import platform
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from helpers import make_dataset, tiny_run, train_tiny

import pathdep
from pathdep.config import canonical, run_seeds
from pathdep.stages.metrics import compute_metrics
from pathdep.io.provenance import collect, device_name, dumps, git_commit

KEYS = {"git_commit", "git_dirty", "torch", "cuda", "device", "config", "seeds", "numpy", "python",
        "pathdep_version", "host", "platform"}
REPO = Path(__file__).resolve().parents[2]


def test_keys_and_values():
    cfg = {"a": 1, "b": [1, 2]}
    p = collect(cfg, "cpu", {"init": 3})
    assert KEYS <= set(p)
    assert p["config"] == cfg and p["seeds"] == {"init": 3}
    assert p["torch"] == torch.__version__ and p["numpy"] == np.__version__
    assert p["python"] == platform.python_version() and p["pathdep_version"] == pathdep.__version__
    assert p["cuda"] == (torch.version.cuda or "none")
    assert p["device"].startswith("cpu (")
    assert json.loads(dumps(p)) == json.loads(json.dumps(p))
    empty = collect()
    assert empty["config"] == {} and empty["seeds"] == {} and empty["device"].startswith("cpu")


def test_git_commit_matches_checkout(tmp_path):
    sha, dirty = git_commit(REPO)
    want = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert sha == want and len(sha) == 40 and isinstance(dirty, bool)
    assert collect()["git_commit"] == sha
    # outside a git checkout
    assert git_commit(tmp_path) == ("unknown", False)


def test_device_name():
    assert device_name(None).startswith("cpu (")
    assert device_name(torch.device("cpu")).startswith("cpu (")
    if torch.cuda.is_available():
        assert torch.cuda.get_device_name(0) in device_name("cuda:0")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prov")
    data = make_dataset(tmp, "teacher")
    run = tiny_run({"training": {"max_steps": 3}}, dataset="teacher")
    traj = train_tiny(tmp, run, data)
    compute_metrics(traj, data, tmp / "metrics.nc")
    return run, tmp / "run" / "init.h5", traj, tmp / "metrics.nc"


def _check(prov: dict, run: dict):
    assert KEYS <= set(prov)
    assert prov["config"] == json.loads(json.dumps(run))
    assert prov["torch"] == torch.__version__ and prov["numpy"] == np.__version__
    assert prov["python"] == platform.python_version()
    assert len(prov["git_commit"]) == 40 or prov["git_commit"] == "unknown"


def test_stored_in_trajectory_and_init(outputs):
    run, init, traj, _ = outputs
    for path in (init, traj):
        with h5py.File(path, "r") as f:
            prov = json.loads(f.attrs["provenance"])
            _check(prov, run)
            assert prov["seeds"] == json.loads(json.dumps(run_seeds(run)))
            assert json.loads(f.attrs["config"]) == json.loads(canonical(run))
            assert json.loads(f.attrs["seeds"]) == run_seeds(run)
    with h5py.File(traj, "r") as f:
        prov = json.loads(f.attrs["provenance"])
        assert prov["threads"] == 1
        assert prov["device"].startswith("cpu")


def test_stored_in_metrics(outputs):
    run, _, traj, nc = outputs
    ds = xr.load_dataset(nc, engine="h5netcdf")
    prov = json.loads(ds.attrs["provenance"])
    _check(prov, run)
    assert json.loads(ds.attrs["config"]) == json.loads(canonical(run))
    with h5py.File(traj, "r") as f:
        assert json.loads(ds.attrs["trajectory_provenance"]) == json.loads(f.attrs["provenance"])
    # also readable with plain h5py (netCDF4/HDF5 attributes)
    with h5py.File(nc, "r") as f:
        a = f.attrs["provenance"]
        assert json.loads(a.decode() if isinstance(a, bytes) else a)["torch"] == torch.__version__
