"""Replicate baselines (``perturbation.baselines: R``): the init blocks, their seeds, the
grouped fast step against the generic per-member step (float64), baseline 0 equal to a run
without replicates, and metrics against each network's own baseline."""

import numpy as np
import pytest
from helpers import h5_datasets, make_dataset, tiny_run, train_tiny

from pathdep.analysis.replicates import labels, own_baseline
from pathdep.core.context import run_seeds
from pathdep.io.trajectory import Trajectory, load_init
from pathdep.stages.metrics import compute_metrics


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), "digits")


def _run(R, fast=True, dtype="float64", steps=12, **pert):
    return tiny_run({"perturbation": {"baselines": R, "members": 2, "kind": "norm", "relative": True,
                                      "granularity": "global", "epsilon": 1e-3, **pert},
                     "training": {"max_steps": steps, "dtype": dtype, "fast": fast}})


def test_init_blocks_have_own_seeds_and_copies_at_eps_from_their_baseline(tmp_path, data):
    run = _run(3)
    train_tiny(tmp_path, run, data)
    init = load_init(tmp_path / "run" / "init.h5")
    m = init.members
    assert list(m["baseline"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2] and list(m["copy"]) == [0, 1, 2] * 3
    assert list(m["role"]) == ["baseline", "member", "member"] * 3
    seeds = [run_seeds(run, r) for r in range(3)]
    assert len({s["init"] for s in seeds}) == 3 and len({s["schedule"] for s in seeds}) == 3
    assert list(m["seed_init"]) == [s["init"] for s in seeds for _ in range(3)]
    assert list(m["seed_schedule"]) == [s["schedule"] for s in seeds for _ in range(3)]
    W = init.weights.astype(np.float64)
    base = own_baseline(*labels(m))
    rel = np.linalg.norm(W - W[base], axis=1) / np.linalg.norm(W[base], axis=1)
    assert rel[m["copy"] == 0].tolist() == [0.0] * 3
    np.testing.assert_allclose(rel[m["copy"] > 0], 1e-3, rtol=1e-9)
    # independent baselines: their distance is O(1) relative, not eps
    assert np.linalg.norm(W[3] - W[0]) / np.linalg.norm(W[0]) > 0.5


def test_grouped_fast_step_equals_generic_per_member_step(tmp_path, data):
    a = h5_datasets(train_tiny(tmp_path, _run(3, fast=True), data, "fast"))
    b = h5_datasets(train_tiny(tmp_path, _run(3, fast=False), data, "generic"))
    np.testing.assert_allclose(a["weights"], b["weights"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=0, atol=1e-10)


def test_baseline_zero_block_equals_a_run_without_replicates(tmp_path, data):
    one = h5_datasets(train_tiny(tmp_path, _run(1, dtype="float32"), data, "one"))
    three = h5_datasets(train_tiny(tmp_path, _run(3, dtype="float32"), data, "three"))
    assert np.array_equal(one["weights"], three["weights"][:, :3])
    assert not np.array_equal(three["weights"][:, 3], three["weights"][:, 0])


def test_metrics_measure_each_copy_against_its_own_baseline(tmp_path, data):
    p = train_tiny(tmp_path, _run(2, steps=6), data)
    ds = compute_metrics(p, data, tmp_path / "metrics.nc", spec={"eval_train": 50, "eval_test": 50})
    assert ds["baseline"].values.tolist() == [0, 0, 0, 1, 1, 1] and ds["copy"].values.tolist() == [0, 1, 2] * 2
    d0 = ds["dist_rel"].isel(checkpoint=0).values
    np.testing.assert_allclose(d0[[1, 2, 4, 5]], 1e-3, rtol=1e-6)
    assert d0[0] == 0 and d0[3] == 0
    with Trajectory(p) as tr:
        W = tr.weights(tr.n_checkpoints - 1).astype(np.float64)
    np.testing.assert_allclose(ds["dist"].isel(checkpoint=-1).values[5], np.linalg.norm(W[5] - W[3]), rtol=1e-9)
    assert (ds["fs_disagree"].isel(checkpoint=-1).values[[0, 3]] == 0).all()


def test_geometry_aligns_and_interpolates_each_copy_against_its_own_baseline(tmp_path, data):
    from pathdep.stages.geometry import compute_geometry

    p = train_tiny(tmp_path, _run(2, steps=6), data)
    spec = {"checkpoints": [0.0, 1.0], "lambdas": 3, "interp_members": 1, "eval_train": 40, "eval_test": 40}
    ds = compute_geometry(p, data, tmp_path / "geometry.nc", spec=spec, log=lambda *_: None)
    assert ds["imember"].values.tolist() == [1, 4]            # copy 1 of each baseline
    dm = compute_metrics(p, data, tmp_path / "metrics.nc", spec={"eval_train": 40, "eval_test": 40})
    np.testing.assert_allclose(ds["dist"].values, dm["dist"].values, rtol=1e-9)
    al = ds["dist_aligned"].isel(checkpoint=-1).values
    assert al[0] == 0 and al[3] == 0 and (al[[1, 2, 4, 5]] <= ds["dist"].isel(checkpoint=-1).values[[1, 2, 4, 5]] + 1e-9).all()
    # lambda = 0 is each copy's own baseline: two independent baselines, two different losses
    raw = ds["interp_loss"].sel(align="raw", split="test").isel(icheckpoint=-1).values   # (imember, lam)
    assert raw[0, 0] != raw[1, 0]                             # two different baselines
