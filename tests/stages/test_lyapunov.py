"""Lyapunov spectra of a workflow run's training map (pathdep.stages.lyapunov)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from helpers import make_dataset, tiny_run, train_tiny

from pathdep.stages.lyapunov import link_table, lyapunov_for_run, measured_rate, network_map
from pathdep.stages.metrics import compute_metrics


def test_rebuilt_map_reproduces_the_recorded_baseline(tmp_path):
    """The map used for Lyapunov spectra is the training map: replaying it from the
    baseline's initial weights on the baseline's schedule gives the recorded trajectory
    (float64: the vmapped ensemble and the single map agree to rounding)."""
    data = make_dataset(tmp_path)
    run = tiny_run({"training": {"dtype": "float64"}, "optimizer": {"momentum": 0.9}})
    traj = train_tiny(tmp_path, run, data)
    F, x0, info = network_map(run, traj.parent / "init.h5", data)
    assert info["state"] == ["weights", "momentum_buffer"]  # momentum is part of the state
    with h5py.File(traj) as f:
        steps, W = f["steps"][()], f["weights"][:, 0]
    x, c = x0, 1
    for t in range(int(steps[-1])):
        x = F(x, t)
        if t + 1 == steps[c]:
            np.testing.assert_allclose(x[: info["P"]].numpy(), W[c], rtol=0, atol=1e-12)
            c += 1
    assert c == len(steps)


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
    ds = lyapunov_for_run(run, traj.parent / "init.h5", data, None, out, {"k": 14, "steps": 400})
    # the sum of all exponents is log|det(I - lr H)| at every step count: exact
    assert ds["exponents"].values.sum() == pytest.approx(expected.sum(), abs=1e-10)
    # each exponent converges like O(1/steps) (the random initial basis)
    np.testing.assert_allclose(ds["exponents"].values, expected, rtol=1e-2)
    back = xr.load_dataset(out, engine="h5netcdf")
    assert "provenance" in back.attrs and back.attrs["k"] == 14


def test_measured_rate_recovers_planted_exponential(tmp_path):
    steps = np.array([0, 1, 2, 5, 10, 20, 50, 100])
    dist = np.vstack([np.zeros(len(steps)), 1e-3 * np.exp(0.02 * steps), 2e-3 * np.exp(0.02 * steps)])
    ds = xr.Dataset({"dist": (("member", "checkpoint"), dist)}, coords={"step": ("checkpoint", steps)})
    ds.to_netcdf(tmp_path / "m.nc", engine="h5netcdf")
    rate, se = measured_rate(tmp_path / "m.nc", 50)
    assert rate == pytest.approx(0.02, rel=1e-9) and se < 1e-9


def test_link_table_and_figures(tmp_path):
    from pathdep.plots.lyapunov import plot_link, plot_spectrum

    data = make_dataset(tmp_path)
    run = tiny_run()
    traj = train_tiny(tmp_path, run, data)
    compute_metrics(traj, data, tmp_path / "metrics.nc")
    p = tmp_path / "ly.nc"
    lyapunov_for_run(run, traj.parent / "init.h5", data, tmp_path / "metrics.nc", p, {"k": 3, "steps": 10, "window": 5})
    table = link_table([p])
    assert list(table["run"]) == [run["run"]] and np.isfinite(table["lambda_max"]).all()
    assert np.isfinite(table["measured_rate"]).all()
    plot_link(table, tmp_path / "l.pdf", tmp_path / "l.png")
    plot_spectrum([p], tmp_path / "s.pdf", tmp_path / "s.png")
    assert (tmp_path / "l.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_different_config_is_refused(tmp_path):
    data = make_dataset(tmp_path)
    run = tiny_run()
    traj = train_tiny(tmp_path, run, data)
    other = tiny_run({"optimizer": {"lr": 0.07}})
    with pytest.raises(ValueError, match="different config"):
        lyapunov_for_run(other, traj.parent / "init.h5", data, None, tmp_path / "x.nc")
