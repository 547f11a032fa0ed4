"""pathdep.stages.metrics: a hand-built two-member trajectory with weights chosen so every distance,
cosine and norm is known in closed form (and, with constant weights, every logit equal so the
loss is exactly ln 10), masking, the baseline's own cf./function-space metrics, a trained tiny
run (loss recomputed independently) and a config mismatch."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from helpers import make_dataset, tiny_run, train_tiny

from pathdep.config import canonical
from pathdep.data import load_dataset
from pathdep.core.context import eval_subset
from pathdep.stages.metrics import compute_metrics
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.io.trajectory import TrajectoryWriter

A, B = 0.5, 0.25  # exactly representable


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), "digits")


def _run():
    # digits 64 -> 2 -> 10: fc0 has 64*2+2 = 130 parameters, fc1 2*10+10 = 30; P = 160
    return tiny_run({"model": {"hidden": [2]}, "training": {"dtype": "float64"},
                     "metrics": {"eval_train": 400, "eval_test": 450, "batch_size": 128}})


def _hand_trajectory(path, run):
    layout = Layout.from_module(build_model(run["model"], (1, 8, 8), 10))
    P = layout.n_params
    assert P == 160 and layout.layers() == ["fc0", "fc1"]
    fc1 = np.zeros(P, bool)
    fc1[layout.slice("fc1.weight")] = fc1[layout.slice("fc1.bias")] = True
    ones = np.ones(P)
    alt = np.r_[np.ones(P // 2), -np.ones(P // 2)]  # orthogonal to ones
    W = np.zeros((4, 2, P))
    W[0, 0], W[0, 1] = A * ones, A * ones + B * fc1          # differ on fc1 only
    W[1, 0], W[1, 1] = 2 * A * ones, -2 * A * ones             # antiparallel
    W[2, 0], W[2, 1] = A * ones, A * alt                       # orthogonal
    W[3, 0], W[3, 1] = A * ones, np.full(P, np.nan)            # member 1 diverged
    valid = np.ones((4, 2), bool)
    valid[3, 1] = False
    members = [{"role": r, "target": "init", "kind": "gaussian", "epsilon": e, "distance": d,
                "relative_distance": 0.0, "seed_perturb": 1, "seed_schedule": 2, "swaps": [], "hp_lr": 0.05}
               for r, e, d in (("baseline", 0.0, 0.0), ("member", 0.1, B * math.sqrt(30)))]
    w = TrajectoryWriter(path, layout, members, np.zeros((2, 4)), np.array([0, 1, 5, 9]), n_steps=9,
                         steps_per_epoch=3, dtype=np.float64,
                         attrs={"config": canonical(run), "seeds": {}, "provenance": {"who": "test"}})
    for i in range(4):
        w.write_weights(i, W[i])
    w.write_valid(valid)
    w.set_diverged(np.array([-1, 7]))
    w.finish()
    return layout, W


def test_hand_computed_metrics(tmp_path, data):
    run = _run()
    layout, W = _hand_trajectory(tmp_path / "trajectory.h5", run)
    ds = compute_metrics(tmp_path / "trajectory.h5", data, tmp_path / "metrics.nc")
    P, P1 = 160, 30
    r0 = A * math.sqrt(P)  # |w_0(0)|
    n1_0 = math.sqrt((P - P1) * A ** 2 + P1 * (A + B) ** 2)  # |w_1(0)|
    d0 = B * math.sqrt(P1)
    exp = {
        "dist": [[0, 0, 0, 0], [d0, 4 * r0, A * math.sqrt(2 * P), np.nan]],
        "cos_base": [[1, 1, 1, 1], [A * (A * P + B * P1) / (r0 * n1_0), -1, 0, np.nan]],
        "norm": [[r0, 2 * r0, r0, r0], [n1_0, 2 * r0, r0, np.nan]],
        "norm_ratio": [[1, 2, 1, 1], [1, 2 * r0 / n1_0, r0 / n1_0, np.nan]],
        # fc1 (30 entries) lies in the second half of the vector, where alt = -1
        "dist_init": [[0, r0, 0, 0], [0, math.sqrt((P - P1) * (3 * A) ** 2 + P1 * (3 * A + B) ** 2),
                                      math.sqrt((P // 2 - P1) * (2 * A) ** 2 + P1 * (2 * A + B) ** 2), np.nan]],
        "cos_init": [[1, 1, 1, 1], [1, -2 * A * (A * P + B * P1) / (2 * r0 * n1_0), -P1 * A * B / (r0 * n1_0),
                                    np.nan]],
    }
    exp["dist_rel"] = [[v / r0 for v in row] for row in exp["dist"]]
    exp["dist_over_init"] = [[np.nan] * 4, [v / d0 for v in exp["dist"][1]]]
    for name, want in exp.items():
        np.testing.assert_allclose(ds[name].values, np.array(want, dtype=float), rtol=1e-12, atol=1e-12,
                                   err_msg=name)
    # per layer: at c=0 only fc1 differs; c=1 both layers differ by 4A per entry
    dl = ds["dist_layer"].values
    assert list(ds["layer"].values) == ["fc0", "fc1"]
    np.testing.assert_allclose(dl[1, 0], [0, d0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(dl[1, 1], [4 * A * math.sqrt(P - P1), 4 * A * math.sqrt(P1)], rtol=1e-12)
    np.testing.assert_allclose(np.sqrt((dl[1, :3] ** 2).sum(-1)), ds["dist"].values[1, :3], rtol=1e-12)
    assert (dl[0, :] == 0).all() and np.isnan(dl[1, 3]).all()
    # constant weights -> every output unit identical -> all logits equal: loss ln 10, argmax class 0
    dset = load_dataset(data)
    itr = eval_subset(len(dset.x_train), 400, run["seed"])
    ite = eval_subset(len(dset.x_test), 450, run["seed"])
    frac0_tr = float((dset.y_train[itr] == 0).double().mean())
    frac0_te = float((dset.y_test[ite] == 0).double().mean())
    for k, cks in ((0, [0, 1, 2, 3]), (1, [0, 1])):
        np.testing.assert_allclose(ds["train_loss"].values[k, cks], math.log(10), rtol=1e-12)
        np.testing.assert_allclose(ds["test_loss"].values[k, cks], math.log(10), rtol=1e-12)
        np.testing.assert_allclose(ds["train_acc"].values[k, cks], frac0_tr, rtol=1e-12)
        np.testing.assert_allclose(ds["test_acc"].values[k, cks], frac0_te, rtol=1e-12)
        # uniform predictions, argmax 0 for both: agreement 1, probability distances 0
        np.testing.assert_allclose(ds["test_cf_acc"].values[k, cks], 1.0)
        np.testing.assert_allclose(ds["test_cf_loss"].values[k, cks], math.log(10), rtol=1e-12)
        for v in ("fs_l2_probs", "fs_disagree", "fs_sym_kl"):
            np.testing.assert_allclose(ds[v].values[k, cks], 0.0, atol=1e-15, err_msg=v)
    # baseline itself: cf. accuracy exactly 1, function-space distances exactly 0
    assert (ds["train_cf_acc"].values[0] == 1).all() and (ds["test_cf_acc"].values[0] == 1).all()
    for v in ("fs_l2_logits", "fs_l2_probs", "fs_disagree", "fs_sym_kl", "d_train_loss", "d_test_acc"):
        assert (ds[v].values[0] == 0).all(), v
    assert ((ds["fs_disagree"].values[1, :3] >= 0) & (ds["fs_disagree"].values[1, :3] <= 1)).all()
    # member 1 at c=2 (alternating signs) is a genuinely different function
    assert ds["fs_l2_logits"].values[1, 2] > 0 and ds["test_loss"].values[1, 2] != math.log(10)
    # masked checkpoint: NaN in every metric
    for v in ds.data_vars:
        x = ds[v].values
        assert np.isnan(x[1, 3]).all(), v
    assert ds["diverged_step"].values.tolist() == [-1, 7]
    assert ds["step"].values.tolist() == [0, 1, 5, 9]
    np.testing.assert_allclose(ds["epoch"].values, [0, 1 / 3, 5 / 3, 3])
    assert list(ds["role"].values) == ["baseline", "member"]
    assert ds.attrs["n_params"] == 160 and ds.attrs["eval_train"] == 400 and ds.attrs["eval_test"] == 450
    assert json.loads(ds.attrs["trajectory_provenance"]) == {"who": "test"}
    # the file on disk holds the same
    on_disk = xr.load_dataset(tmp_path / "metrics.nc", engine="h5netcdf")
    xr.testing.assert_identical(on_disk, ds)


def test_expected_config_mismatch(tmp_path, data):
    run = _run()
    _hand_trajectory(tmp_path / "trajectory.h5", run)
    other = dict(run, seed=run["seed"] + 1)
    with pytest.raises(ValueError) as exc:
        compute_metrics(tmp_path / "trajectory.h5", data, tmp_path / "m.nc", expected_config=other)
    msg = str(exc.value)
    assert "\n" not in msg and "different config" in msg and str(tmp_path / "trajectory.h5") in msg
    assert not (tmp_path / "m.nc").exists()
    # the matching config is accepted
    compute_metrics(tmp_path / "trajectory.h5", data, tmp_path / "m.nc", expected_config=run)
    assert (tmp_path / "m.nc").exists()


def test_trained_run_metrics(tmp_path, data):
    run = tiny_run({"training": {"max_steps": 12}, "perturbation": {"epsilon": 0.05}})
    traj = train_tiny(tmp_path, run, data)
    ds = compute_metrics(traj, data, tmp_path / "metrics.nc")
    K, C = ds.sizes["member"], ds.sizes["checkpoint"]
    assert (K, C) == (4, len(ds["step"]))
    for v in ("dist", "cos_base", "train_loss", "test_acc", "test_cf_loss", "fs_sym_kl", "fs_disagree"):
        assert np.isfinite(ds[v].values).all(), v
    assert (ds["train_cf_acc"].values[0] == 1).all() and (ds["test_cf_acc"].values[0] == 1).all()
    assert (ds["fs_l2_logits"].values[0] == 0).all() and (ds["fs_disagree"].values[0] == 0).all()
    for v in ("fs_disagree", "train_cf_acc", "test_cf_acc", "train_acc", "test_acc"):
        x = ds[v].values
        assert ((x >= 0) & (x <= 1)).all(), v
    assert (ds["fs_sym_kl"].values >= -1e-15).all()
    np.testing.assert_allclose(ds["fs_disagree"].values, 1 - ds["test_cf_acc"].values, atol=1e-15)
    assert (ds["dist"].values[1:] > 0).all() and (ds["dist"].values[0] == 0).all()
    # recompute the train loss at the last checkpoint independently (float32 model, float64 sum)
    from pathdep.io.trajectory import Trajectory

    with Trajectory(traj) as tr:
        Wl = torch.as_tensor(tr.weights(C - 1))
        layout = tr.layout
    dset = load_dataset(data)
    module = build_model(run["model"], dset.in_shape, dset.out_dim)
    apply = make_apply(module, layout)
    idx = eval_subset(len(dset.x_train), 300, run["seed"])
    assert len(idx) == 300 and ds.attrs["eval_train"] == 300
    for k in range(K):
        with torch.no_grad():
            out = apply(Wl[k], dset.x_train[idx]).double()
        np.testing.assert_allclose(ds["train_loss"].values[k, -1], float(F.cross_entropy(out, dset.y_train[idx])),
                                   rtol=1e-6)
        acc = float((out.argmax(-1) == dset.y_train[idx]).double().mean())
        assert ds["train_acc"].values[k, -1] == pytest.approx(acc, abs=1e-12)


def test_regression_metrics(tmp_path):
    data = make_dataset(tmp_path, "teacher")
    run = tiny_run({"training": {"max_steps": 4}}, dataset="teacher")
    ds = compute_metrics(train_tiny(tmp_path, run, data), data, tmp_path / "m.nc")
    assert ds.attrs["task"] == "regression"
    assert np.isnan(ds["train_acc"].values).all() and np.isnan(ds["test_cf_acc"].values).all()
    assert np.isfinite(ds["train_loss"].values).all() and np.isfinite(ds["fs_l2_logits"].values).all()
    assert (ds["fs_l2_logits"].values[0] == 0).all() and (ds["test_cf_loss"].values[0] == 0).all()
    assert (ds["fs_l2_logits"].values[1:] > 0).all()
