"""Lyapunov spectra of a workflow run's training map (pathdep.stages.lyapunov): known exponents
of a linear model, a float64 finite-difference check of the leading Lyapunov vector against
Benettin's accumulated log R_11, the measured rate of a metrics file inside the window, one
spectrum per replicate baseline, the link tables and their figures, the 2-2-1 study's files (the map itself: tests/core/test_flatstate.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from helpers import make_dataset, tiny_run, train_tiny

from pathdep.analysis.lyapunov_benettin import benettin
from pathdep.stages.lyapunov import link_tables, lyapunov_for_run, lyapunov_study, measured_rate, network_map
from pathdep.stages.metrics import compute_metrics
from pathdep.stages.train import init_ensemble


def test_linear_regression_exponents_are_log_one_minus_lr_h(tmp_path):
    """Full-batch GD on a linear model with MSE: the tangent map is I - lr H with the
    constant data Hessian H, so the exponents are exactly log|1 - lr h_i| (sorted)."""
    data = make_dataset(tmp_path, "teacher")
    lr = 1.0  # spreads log|1 - lr h| widely, so Benettin's basis aligns within a few steps
    run = tiny_run({"model": {"hidden": []}, "optimizer": {"lr": lr},
                    "training": {"dtype": "float64", "batch_size": 256, "epochs": 400,
                                 "checkpoints": {"mode": "every", "every": 10}},
                    "perturbation": {"members": 1}}, dataset="teacher")
    traj = train_tiny(tmp_path, run, data)
    with h5py.File(data) as f:
        x = torch.as_tensor(f["train/x"][()], dtype=torch.float64)
    # loss 0.5 mean_n ||W x_n + b - y_n||^2 (d_out = 2): per output the Hessian of (w, b)
    # is (1/N) sum [x;1][x;1]^T, so each eigenvalue appears d_out times.
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
    h = torch.linalg.eigvalsh(xa.T @ xa / len(x))
    expected = np.sort(np.repeat(np.log(np.abs(1 - lr * h.numpy())), 2))[::-1]
    out = tmp_path / "ly.nc"
    ds = lyapunov_for_run(run, traj.parent / "init.h5", data, None, out, {"k": 14, "steps": 400, "transient": 0})
    # the sum of all exponents is log|det(I - lr H)| at every step count: exact
    assert ds["exponents"].values[0].sum() == pytest.approx(expected.sum(), abs=1e-10)
    # each exponent converges like O(1/steps) (the random initial basis)
    np.testing.assert_allclose(ds["exponents"].values[0], expected, rtol=1e-2)
    assert bool(ds["ordered"].values[0])
    back = xr.load_dataset(out, engine="h5netcdf")
    assert "provenance" in back.attrs and back.attrs["k"] == 14


def test_measured_rate_uses_only_the_window(tmp_path):
    """A planted exponential of rate 0.02 inside [10, 50] and a different (saturating) law
    outside it: the rate of the window is recovered, with the number of checkpoints used."""
    steps = np.array([0, 1, 2, 5, 10, 20, 30, 50, 100, 200])
    grow = np.where(steps <= 50, 0.02 * steps, 0.02 * 50 + 0.001 * (steps - 50))
    grow = np.where(steps < 10, 0.2 + 0.0 * steps, grow)
    dist = np.vstack([np.zeros(len(steps)), 1e-3 * np.exp(grow), 2e-3 * np.exp(grow)])
    ds = xr.Dataset({"dist": (("member", "checkpoint"), dist)}, coords={"step": ("checkpoint", steps)})
    ds.to_netcdf(tmp_path / "m.nc", engine="h5netcdf")
    rate, se, n = measured_rate(tmp_path / "m.nc", 10, 50)
    assert rate == pytest.approx(0.02, rel=1e-9) and se < 1e-9 and n == 4
    wide, _, n_wide = measured_rate(tmp_path / "m.nc", 0, 200)
    assert n_wide == 10 and abs(wide - 0.02) > 0.005  # outside the window the law differs
    assert np.isnan(measured_rate(tmp_path / "m.nc", 60, 99)[0])  # no checkpoint inside


def test_finite_difference_along_leading_vector_matches_benettin(tmp_path):
    """float64: the leading Lyapunov vector v_T after a transient of T steps (Benettin, k = 1),
    a perturbation of relative size 1e-8 along it, and both states iterated with the true
    training map (momentum SGD, state = weights + buffer): log(|delta_t| / |delta_0|) equals
    Benettin's accumulated log R_11 over the window to 1e-4. A random direction does not."""
    data = make_dataset(tmp_path)
    run = tiny_run({"model": {"activation": "tanh"}, "optimizer": {"momentum": 0.9, "lr": 0.1},
                    "training": {"dtype": "float64", "epochs": 2}})
    init_ensemble(run, data, tmp_path / "init.h5")
    F, x0, info = network_map(run, tmp_path / "init.h5", data)
    assert info["state"] == ["weights", "momentum_buffer"]
    T, n = 20, 25
    assert T + n <= info["n_steps"]
    head = benettin(F, x0, T, 1, seed=3, record=False)  # v_T = head.Q, x_T = head.x
    res = benettin(F, x0, n, 1, transient=T, seed=3, record=False)
    longer = benettin(F, x0, T + n, 1, seed=3, record=False)
    # the transient is exactly "drop the first T QRs of a longer run"
    np.testing.assert_allclose(res.log_r.numpy(), longer.log_r[T:].numpy(), rtol=0, atol=1e-12)
    acc = torch.cumsum(res.log_r[:, 0], 0).numpy()
    assert np.ptp(acc) > 0.05  # the window sees real growth or decay, not a flat line

    def fd_growth(v):
        d0 = 1e-8 * torch.linalg.norm(head.x)
        x, xp = head.x.clone(), head.x + d0 * v / torch.linalg.norm(v)
        out = []
        for i in range(n):
            x, xp = F(x, T + i), F(xp, T + i)
            out.append(float(torch.log(torch.linalg.norm(xp - x) / d0)))
        return np.array(out)

    fd = fd_growth(head.Q[:, 0])
    np.testing.assert_allclose(fd, acc, rtol=0, atol=1e-4)
    other = fd_growth(torch.randn(x0.shape, generator=torch.Generator().manual_seed(9), dtype=x0.dtype))
    assert np.abs(other - acc).max() > 1e-2


def test_every_baseline_gets_its_spectrum_and_the_link_tables(tmp_path):
    """Two replicate baselines: one spectrum each (baseline 1's equals Benettin on its own map,
    row 3 of the member table), resolution fields per (baseline, exponent), the growth of each
    baseline's copies between the window's outer checkpoints, lambda_1 over exactly those
    checkpoints; the link tables (one row per run, one per run and baseline) and figures."""
    from pathdep.plots.lyapunov import plot_link, plot_spectrum

    data = make_dataset(tmp_path)
    run = tiny_run({"model": {"activation": "tanh"}, "perturbation": {"baselines": 2, "members": 2},
                    "training": {"dtype": "float64", "epochs": 2, "checkpoints": {"mode": "log", "count": 20}}})
    traj = train_tiny(tmp_path, run, data)
    compute_metrics(traj, data, tmp_path / "metrics.nc")
    p = tmp_path / "ly.nc"
    spec = {"k": 3, "transient": 10, "steps": 40, "window": 10}
    ds = lyapunov_for_run(run, traj.parent / "init.h5", data, tmp_path / "metrics.nc", p, spec)
    assert ds.sizes["baseline"] == 2 and list(ds["baseline_row"].values) == [0, 3]
    assert int(ds["step"][0]) == 11 and int(ds["step"][-1]) == 50  # the accumulated window
    assert ds.attrs["window_start"] == 10 and ds.attrs["window_stop"] == 50
    F, x0, info = network_map(run, traj.parent / "init.h5", data, row=3)
    own = benettin(F, x0, 40, 3, transient=10, seed=0, record=False, push=info["push"])
    np.testing.assert_allclose(ds["exponents"].values[1], own.exponents.numpy(), rtol=1e-12)
    assert np.abs(ds["exponents"].values[0] - ds["exponents"].values[1]).max() > 1e-6  # another map
    assert (ds["exponent_err"] >= ds["exponent_se"]).all() and ds["bound"].min() >= 1 / 40
    np.testing.assert_array_equal(ds["resolved"].values, np.abs(ds["exponents"].values) * 40 >= 1)
    m = xr.load_dataset(tmp_path / "metrics.nc")
    steps = m["step"].values
    inside = steps[(steps >= 10) & (steps <= 50)]
    a, b = ds.attrs["rate_start"], ds.attrs["rate_stop"]
    assert (a, b) == (inside[0], inside[-1])
    d1 = m["dist"].values[4:6].mean(0)  # the copies of baseline 1 (rows 4, 5)
    ia, ib = np.flatnonzero(steps == a)[0], np.flatnonzero(steps == b)[0]
    assert ds["growth"].values[1] == pytest.approx(d1[ib] / d1[ia], rel=1e-12)
    tangent = {"spectrum": p, "metrics": {"eps_a": tmp_path / "metrics.nc", "eps_b": tmp_path / "metrics.nc"},
               "epsilon": {"eps_a": 1e-6, "eps_b": 1e-2}}
    first = lyapunov_for_run(run, traj.parent / "init.h5", data, tmp_path / "metrics.nc", tmp_path / "one.nc",
                             {**spec, "baselines": 1})  # lyapunov.baselines: the first n only
    assert first.sizes["baseline"] == 1
    np.testing.assert_array_equal(first["exponents"].values[0], ds["exponents"].values[0])
    table, per = link_tables([p], tangent=tangent)
    assert list(table["run"]) == ["eps_a", "eps_b"]  # the spectrum's own experiment row is the tangent block
    table, per = link_tables([p])
    row = table.iloc[0]
    assert list(table["run"]) == [run["run"]] and row["n_baselines"] == 2 and len(per) == 2
    lam_ab = ds["lambda_1_window"].values
    np.testing.assert_allclose(per["lambda_1"], lam_ab, rtol=1e-12)
    assert row["lambda_1"] == pytest.approx(lam_ab.mean()) and row["lambda_1_lo"] < row["lambda_1"]
    assert row["growth_min"] == pytest.approx(ds["growth"].values.min())
    assert row["verdict"] in ("agree", "disagree", "inconclusive", "unresolved")
    plot_link(table, per, tmp_path / "l.pdf", tmp_path / "l.png")
    plot_spectrum([p], tmp_path / "s.pdf", tmp_path / "s.png")
    assert (tmp_path / "l.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_different_config_is_refused(tmp_path):
    data = make_dataset(tmp_path)
    run = tiny_run()
    traj = train_tiny(tmp_path, run, data)
    other = tiny_run({"optimizer": {"lr": 0.07}})
    with pytest.raises(ValueError, match="different config"):
        lyapunov_for_run(other, traj.parent / "init.h5", data, None, tmp_path / "x.nc")


def test_study_files(tmp_path):
    """The study stage writes study.nc, roc.nc (an AUC error per AUC) and the AUC table."""
    spec = {"activations": ["tanh"], "init_ranges": [3.0], "n_networks": 40, "steps": 200, "lyap_steps": 60,
            "times": [5, 10], "late_window": 20, "warmup_backward": 20, "max_buffer": 32}
    study, roc = lyapunov_study(spec, tmp_path / "s.nc", tmp_path / "r.nc", tmp_path / "auc.csv")
    back = xr.load_dataset(tmp_path / "r.nc", engine="h5netcdf")
    assert back["auc_se"].dims == back["auc"].dims and "provenance" in back.attrs
    assert xr.load_dataset(tmp_path / "s.nc", engine="h5netcdf").sizes["network"] == 40
    table = (tmp_path / "auc.csv").read_text().splitlines()
    assert table[0].startswith("activation,init_range,indicator,time,auc,auc_std,auc_se")
