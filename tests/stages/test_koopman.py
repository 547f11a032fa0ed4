"""pathdep.stages.koopman: the toy's files, and spectra of synthetic trajectory.h5 files."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pathdep.analysis.koopman import spectral_distance
from pathdep.analysis.koopman_toy import toy_study
from pathdep.io.layout import Layout
from pathdep.io.trajectory import TrajectoryWriter
from pathdep.stages.koopman import experiment, observations, toy


def _system(eigs, seed):
    d = len(eigs)
    v = np.random.default_rng(seed).standard_normal((d, d)) + 2 * np.eye(d)
    return v @ np.diag(eigs) @ np.linalg.inv(v)


def _write(path, eigs, seed, steps, k=4, noise=1e-3, baselines=None):
    """A trajectory.h5 whose output-layer weights (4 numbers) follow w' = A w (+ noise);
    ``baselines``: that many blocks of k // baselines members (baseline/copy columns), else none."""
    layout = Layout(("fc0.weight", "fc1.weight"), ((3, 2), (2, 2)), (0, 6))
    a = _system(eigs, 100)          # one linear map per setting, seeds vary the data
    rng = np.random.default_rng(seed)
    w = np.empty((len(steps), k, 10))
    w[0] = rng.standard_normal((k, 10))
    for t in range(1, len(steps)):
        w[t, :, :6] = w[t - 1, :, :6]
        w[t, :, 6:] = w[t - 1, :, 6:] @ a.T + noise * rng.standard_normal((k, 4))
    members = [{"role": "baseline" if i == 0 else "member", "epsilon": 0.0} for i in range(k)]
    if baselines:
        members = [{**m, "baseline": i // (k // baselines), "copy": i % (k // baselines)} for i, m in enumerate(members)]
    config = {"run": f"s{seed}", "seed": seed, "model": {"width": len(eigs)}}
    wr = TrajectoryWriter(path, layout, members, np.zeros((k, 2)), np.asarray(steps), int(steps[-1]) + 1,
                          100, np.float64, {"config": json.dumps(config), "provenance": "{}"})
    for i in range(len(steps)):
        wr.write_weights(i, w[i])
    wr.write_valid(np.ones((len(steps), k), bool))
    wr.write_losses(0, np.exp(-0.05 * np.arange(int(steps[-1]) + 1))[:, None] * np.ones(k))
    wr.finish()
    return config


def test_toy_files_hold_the_numerics(tmp_path):
    table = toy({"n_perm": 200}, tmp_path / "toy.nc", tmp_path / "toy.csv")
    ref = toy_study(n_perm=200)
    csv = pd.read_csv(tmp_path / "toy.csv")
    np.testing.assert_allclose(csv["w1"], [r["w1"] for r in ref["table"]], rtol=1e-12)
    np.testing.assert_allclose(table["p_value"], [r["p_value"] for r in ref["table"]])
    ds = xr.load_dataset(tmp_path / "toy.nc", engine="h5netcdf")
    ev = ds["eig_real"].sel(algorithm="OMD").values + 1j * ds["eig_imag"].sel(algorithm="OMD").values
    assert spectral_distance(ev, ref["eigenvalues"]["OMD"]) < 1e-12
    assert ds["iterate"].shape == (3, 25, 100, 2)
    assert "git_commit" in ds.attrs["provenance"]
    with pytest.raises(ValueError, match="koopman.toy.etaa"):
        toy({"etaa": 1}, tmp_path / "x.nc", tmp_path / "x.csv")


def test_experiment_separates_settings_and_groups_replicates(tmp_path):
    steps = np.arange(0, 40)
    eig_a, eig_b = [0.95, 0.8, 0.6, 0.3], [0.9, 0.5, -0.3, 0.1]
    runs, files = [], []
    for i, (eigs, seed) in enumerate([(eig_a, 0), (eig_a, 1), (eig_a, 2), (eig_b, 3), (eig_b, 4), (eig_b, 5)]):
        p = tmp_path / f"r{i}" / "trajectory.h5"
        cfg = _write(p, eigs, seed, steps, k=8, baselines=4)
        cfg["model"]["width"] = "A" if eigs is eig_a else "B"
        runs.append({**cfg, "run": f"r{i}"})
        files.append(p)
    spec = {"observable": "output_weights", "rank": 4, "group_by": "model.width", "n_perm": 200}
    table = experiment(runs, files, spec, "toyexp", tmp_path / "k.nc", tmp_path / "k.csv")
    row = table.iloc[0]
    assert (row["a"], row["b"], row["n_a"], row["n_b"]) == ("A", "B", 12, 12)   # 3 runs x 4 baselines
    assert row["w1_between"] > 5 * row["w1_within"]
    assert row["p_method"] == "monte_carlo" and row["p_value"] == row["p_min"] == 1 / 201   # C(24, 12) splits
    ds = xr.load_dataset(tmp_path / "k.nc", engine="h5netcdf")
    ev0 = ds["eig_real"].values[0] + 1j * ds["eig_imag"].values[0]
    assert spectral_distance(ev0, eig_a) < 0.02
    assert ds["w1_runs"].shape == (6, 6) and ds["w1_replicates"].shape == (24, 24)
    assert ds["replicate_eig_real"].shape[:2] == (6, 4) and list(ds["replicate_baseline"].values[:5]) == [0, 1, 2, 3, 0]
    csv = pd.read_csv(tmp_path / "k.csv")
    assert {"p_method", "p_min"} <= set(csv.columns)
    # without group_by each run is a group and its 4 baselines are the replicates (exact floor 1/35)
    t2 = experiment(runs[:2] + runs[3:4], files[:2] + files[3:4], {**spec, "group_by": None},
                    "toyexp", tmp_path / "k2.nc", tmp_path / "k2.csv")
    by = {(r.a, r.b): r for r in t2.itertuples()}
    assert by["r0", "r1"].p_value > 0.05
    assert by["r0", "r3"].p_value == by["r0", "r3"].p_min == pytest.approx(1 / 35)
    assert by["r0", "r3"].p_method == "exact"
    # a file without baseline columns is one baseline: its copies are no replicates, no test
    old = [_write(tmp_path / f"o{i}.h5", e, i, steps) for i, e in enumerate((eig_a, eig_b))]
    t3 = experiment([{**c, "run": f"o{i}"} for i, c in enumerate(old)], [tmp_path / "o0.h5", tmp_path / "o1.h5"],
                    {**spec, "group_by": None}, "old", tmp_path / "o.nc", tmp_path / "o.csv")
    assert np.isnan(t3.iloc[0]["p_value"]) and "one baseline: no test" in t3.iloc[0]["note"]


def test_loss_observable_and_uneven_checkpoints(tmp_path):
    p = tmp_path / "t.h5"
    _write(p, [0.9, 0.5, 0.3, 0.1], 0, np.array([0, 1, 2, 4, 8, 16, 32]))
    y, steps, info = observations(p, "loss")
    assert y.shape == (4, 33, 1) and info["spacing"] == 1
    with pytest.raises(ValueError, match="evenly spaced time points"):
        observations(p, "output_weights", need=5)
    with pytest.raises(ValueError, match="koopman.observable"):
        observations(p, "activations")


def _write_switch(path, seed, n_steps=80, switch=40, spe=20, k=3, every=1):
    """trajectory.h5 whose output weights (4 numbers) follow w' = A w until ``switch``, then B w."""
    layout = Layout(("fc0.weight", "fc0.bias", "fc1.weight", "fc1.bias"), ((3, 2), (3,), (2, 2), (2,)),
                    (0, 6, 9, 13))
    a = _system([0.99, 0.95, 0.9, 0.8], 100)
    b = _system([0.97, -0.9, 0.85, 0.6], 101)
    rng = np.random.default_rng(seed)
    w = np.empty((n_steps + 1, k, 15))
    w[0] = rng.standard_normal((k, 15))
    for t in range(1, n_steps + 1):
        w[t] = w[t - 1]
        w[t, :, 9:13] = w[t - 1, :, 9:13] @ (a if t <= switch else b).T
        w[t, :, 13:] = 5.0                                      # the output bias is not the observable
    steps = np.arange(0, n_steps + 1, every)
    members = [{"role": "baseline" if i == 0 else "member", "epsilon": 0.0} for i in range(k)]
    config = {"run": f"s{seed}", "seed": seed, "model": {"width": 2}}
    wr = TrajectoryWriter(path, layout, members, np.zeros((k, 4)), steps, n_steps, spe, np.float64,
                          {"config": json.dumps(config), "provenance": "{}"})
    for i, st in enumerate(steps):
        wr.write_weights(i, w[st])
    wr.write_valid(np.ones((len(steps), k), bool))
    wr.write_losses(0, np.exp(-0.05 * np.arange(n_steps))[:, None] * np.ones(k))
    wr.finish()
    return {**config, "run": f"r{seed}"}, a, b


def test_experiment_windows_block_structure(tmp_path):
    runs, files = [], []
    for seed in (0, 1):
        cfg, a, b = _write_switch(tmp_path / f"r{seed}.h5", seed)
        runs.append(cfg)
        files.append(tmp_path / f"r{seed}.h5")
    w1_ab = spectral_distance(np.linalg.eigvals(a), np.linalg.eigvals(b))
    for windows in ({"per_epoch": True}, {"size": 20}, {"size": 20, "stride": 20}):
        spec = {"observable": "output_weights", "rank": 4, "n_perm": 20, "windows": windows}
        experiment(runs, files, spec, "sw", tmp_path / "w.nc", tmp_path / "w.csv")
        ds = xr.load_dataset(tmp_path / "w.nc", engine="h5netcdf")
        np.testing.assert_array_equal(ds["window_start"].values, [[0, 20, 40, 60]] * 2)   # step 80 left over
        np.testing.assert_array_equal(ds["window_stop"].values, [[20, 40, 60, 80]] * 2)
        d = ds["w1_windows"].values                                  # (run, 4, 4)
        same = np.array([0, 0, 1, 1])[:, None] == np.array([0, 0, 1, 1])[None, :]
        assert np.all(d[:, same] < 1e-8)
        np.testing.assert_allclose(d[:, ~same], w1_ab, rtol=1e-6)
        ev = ds["window_eig_real"].values[0, 3] + 1j * ds["window_eig_imag"].values[0, 3]
        assert spectral_distance(ev, np.linalg.eigvals(b)) < 1e-8
    # checkpoints every 2 steps: the same windows, fewer samples each, spectra of A^2 and B^2
    cfg, *_ = _write_switch(tmp_path / "e2.h5", 0, every=2)
    experiment([cfg], [tmp_path / "e2.h5"], {"rank": 4, "windows": {"size": 20}}, "sw", tmp_path / "e.nc",
               tmp_path / "e.csv")
    d = xr.load_dataset(tmp_path / "e.nc", engine="h5netcdf")["w1_windows"].values[0]
    w1_ab2 = spectral_distance(np.linalg.eigvals(a) ** 2, np.linalg.eigvals(b) ** 2)
    assert d.shape == (4, 4) and d[0, 1] < 1e-8 and d[2, 3] < 1e-8
    np.testing.assert_allclose(d[0, 3], w1_ab2, rtol=1e-6)
    # without windows the file has none; bad settings fail with the key named
    experiment(runs, files, {"rank": 4, "n_perm": 20}, "sw", tmp_path / "n.nc", tmp_path / "n.csv")
    assert "w1_windows" not in xr.load_dataset(tmp_path / "n.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="koopman.windows.sizes"):
        experiment(runs, files, {"rank": 4, "windows": {"sizes": 20}}, "sw", tmp_path / "x.nc", tmp_path / "x.csv")
    with pytest.raises(ValueError, match="koopman.windows: 1 complete window"):
        experiment(runs, files, {"rank": 4, "windows": {"size": 50}}, "sw", tmp_path / "x.nc", tmp_path / "x.csv")


def test_calibration_files_hold_rates_and_floors(tmp_path):
    from pathdep.stages.koopman import calibration

    spec = {"replicates": [3, 4], "repeats": 20, "seed": 2}
    table = calibration(spec, tmp_path / "c.nc", tmp_path / "c.csv")
    csv = pd.read_csv(tmp_path / "c.csv")
    assert list(csv["case"]) == ["null_seeds"] * 2 + ["alternative"] * 2 + ["null_copies"] * 2
    np.testing.assert_allclose(csv["p_min"], [0.1, 1 / 35] * 3)
    ds = xr.load_dataset(tmp_path / "c.nc", engine="h5netcdf")
    assert ds["p_value"].shape == (3, 2, 20)
    want = (ds["p_value"].sel(case="null_seeds", replicates=4).values <= 0.05).mean()
    assert table.set_index(["case", "replicates"]).loc[("null_seeds", 4), "rate"] == pytest.approx(want)
    assert table.set_index(["case", "replicates"]).loc[("null_seeds", 4), "rate"] <= 0.10
    assert json.loads(ds.attrs["spec"])["repeats"] == 20
    with pytest.raises(ValueError, match="koopman.calibration.replicates"):
        calibration({"replicates": [1]}, tmp_path / "x.nc", tmp_path / "x.csv")
    with pytest.raises(ValueError, match="koopman.calibration.repeat: unknown key"):
        calibration({"repeat": 3}, tmp_path / "x.nc", tmp_path / "x.csv")


def test_windows_csv_names_the_transition(tmp_path):
    cfg, *_ = _write_switch(tmp_path / "r.h5", 0, n_steps=160, switch=80)
    spec = {"observable": "output_weights", "rank": 4, "n_perm": 200, "windows": {"size": 20}}
    experiment([cfg], [tmp_path / "r.h5"], spec, "sw", tmp_path / "w.nc", tmp_path / "w.csv", tmp_path / "t.csv")
    t = pd.read_csv(tmp_path / "t.csv")
    assert len(t) == 1 and t.loc[0, "n_windows"] == 8 and t.loc[0, "size"] == 20 and t.loc[0, "stride"] == 20
    assert t.loc[0, "split_window"] == 4 and t.loc[0, "split_step"] == 80      # A until step 80, then B
    assert t.loc[0, "contrast"] > 1e3                        # noiseless: windows on one side agree to 1e-8
    assert t.loc[0, "p_value"] <= 0.05 and t.loc[0, "p_min"] == pytest.approx(1 / 201)
    ds = xr.load_dataset(tmp_path / "w.nc", engine="h5netcdf")
    assert int(ds["window_split"].values[0]) == 4 and float(ds["window_p"].values[0]) == t.loc[0, "p_value"]
    experiment([cfg], [tmp_path / "r.h5"], {"rank": 4, "n_perm": 20}, "sw", tmp_path / "n.nc", tmp_path / "n.csv",
               tmp_path / "n_t.csv")                         # no windows: an empty table with its columns
    assert len(pd.read_csv(tmp_path / "n_t.csv")) == 0


def test_output_tensor_of_each_model_kind():
    from pathdep.stages.koopman import output_tensor

    mlp = ["fc0.weight", "fc0.bias", "fc1.weight", "fc1.bias"]
    assert output_tensor(mlp, {"model": {"kind": "mlp"}}) == "fc1.weight"
    res = ["conv0.weight", "bn0.weight", "bn0.bias", "fc.weight", "fc.bias"]
    assert output_tensor(res, {"model": {"kind": "resnet"}}) == "fc.weight"
    tr = ["embed.weight", "pos.weight", "blocks.0.mlp.w_out.weight", "ln_f.weight", "ln_f.bias"]
    assert output_tensor(tr + ["unembed.weight"], {"model": {"kind": "transformer", "tied": False}}) == "unembed.weight"
    assert output_tensor(tr, {"model": {"kind": "transformer", "tied": True}}) == "embed.weight"   # not ln_f's gain
