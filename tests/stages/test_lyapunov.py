"""Lyapunov spectra of a workflow run's training map (pathdep.stages.lyapunov): the rebuilt map
replays the baseline, known exponents of a linear model, a float64 finite-difference check of
the leading Lyapunov vector against Benettin's accumulated log R_11, the measured rate inside
the window, the link table, and the Hanley-McNeil AUC error of the 2-2-1 study."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from helpers import make_dataset, tiny_run, train_tiny

import pathdep.analysis.lyapunov as ly
from pathdep.stages.lyapunov import (hanley_mcneil_se, link_table, lyapunov_for_run, measured_rate,
                                     network_map, resolve_spec, study_roc)
from pathdep.stages.metrics import compute_metrics
from pathdep.stages.train import init_ensemble


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


@pytest.mark.parametrize("opt", [{}, {"momentum": 0.9}, {"momentum": 0.9, "weight_decay": 1e-3}])
def test_hand_written_tangent_push_equals_jvp_of_the_map(tmp_path, opt):
    """With training.fast the stage pushes tangents through hand-written Hessian-vector
    products (info['push']); on the flat state (weights + live buffers) they equal the
    vmapped jvp of the map F to 1e-12 (float64), for plain SGD, momentum and weight decay
    (Adam: tests/core/test_fast.py)."""
    from torch.func import jvp, vmap
    data = make_dataset(tmp_path)
    run = tiny_run({"training": {"dtype": "float64", "fast": True}, "optimizer": opt})
    traj = train_tiny(tmp_path, run, data)
    F, x0, info = network_map(run, traj.parent / "init.h5", data)
    assert info["push"] is not None and "Hessian-vector" in info["tangents"]
    x = x0
    for t in range(3):
        x = F(x, t)
    Q = ly.random_orthonormal(info["D"], 5, seed=1)
    y_ref, JQ_ref = vmap(lambda v: jvp(lambda z: F(z, 3), (x,), (v,)), in_dims=1,
                         out_dims=(0, 1))(Q)
    y, JQ = info["push"](x, Q, 3)
    torch.testing.assert_close(y, y_ref[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(JQ, JQ_ref, rtol=0, atol=1e-12)
    assert (JQ - Q).abs().max() > 1e-6  # the Hessian part is not zero


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
    assert ds["exponents"].values.sum() == pytest.approx(expected.sum(), abs=1e-10)
    # each exponent converges like O(1/steps) (the random initial basis)
    np.testing.assert_allclose(ds["exponents"].values, expected, rtol=1e-2)
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
    head = ly.benettin(F, x0, T, 1, seed=3, record=False)  # v_T = head.Q, x_T = head.x
    res = ly.benettin(F, x0, n, 1, transient=T, seed=3, record=False)
    longer = ly.benettin(F, x0, T + n, 1, seed=3, record=False)
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


def test_spec_checks_name_the_key():
    assert resolve_spec({"experiments": ["lr"], "steps": 300})["steps"] == 300
    with pytest.raises(ValueError, match="lyapunov.transient"):
        resolve_spec({"transient": -1})
    with pytest.raises(ValueError, match="lyapunov.window"):
        resolve_spec({"steps": 10, "window": 20})
    with pytest.raises(ValueError, match="lyapunov.qr_every"):
        resolve_spec({"steps": 10, "window": 5, "transient": 3, "qr_every": 2})


def test_link_table_and_figures(tmp_path):
    from pathdep.plots.lyapunov import plot_link, plot_spectrum

    data = make_dataset(tmp_path)
    run = tiny_run({"training": {"epochs": 2, "checkpoints": {"mode": "log", "count": 20}}})
    traj = train_tiny(tmp_path, run, data)
    compute_metrics(traj, data, tmp_path / "metrics.nc")
    p = tmp_path / "ly.nc"
    ds = lyapunov_for_run(run, traj.parent / "init.h5", data, tmp_path / "metrics.nc", p,
                          {"k": 3, "transient": 10, "steps": 40, "window": 10})
    assert int(ds["step"][0]) == 11 and int(ds["step"][-1]) == 50  # the accumulated window
    assert ds.attrs["window_start"] == 10 and ds.attrs["window_stop"] == 50
    assert ds.sizes["window"] == 4 and float(ds["lambda_max_err"]) >= float(ds["lambda_max_se"])
    steps = xr.load_dataset(tmp_path / "metrics.nc")["step"].values
    assert int(ds["measured_points"]) == int(((steps >= 10) & (steps <= 50)).sum())
    tangent = {"spectrum": p, "metrics": {"eps_a": tmp_path / "metrics.nc", "eps_b": tmp_path / "metrics.nc"},
               "epsilon": {"eps_a": 1e-6, "eps_b": 1e-2}}
    table = link_table([p], tangent=tangent)
    assert list(table["run"]) == ["eps_a", "eps_b"]  # the spectrum's own experiment row is the tangent block
    plain = link_table([p])
    assert list(plain["run"]) == [run["run"]] and np.isfinite(plain["lambda_max"]).all()
    row = plain.iloc[0]
    assert np.isfinite(row["measured_rate"]) and row["measured_points"] >= 3
    comb = np.hypot(row["lambda_max_err"], row["measured_rate_se"])
    assert row["z"] == pytest.approx(abs(row["measured_rate"] - row["lambda_max"]) / comb)
    assert bool(row["agree"]) == (row["z"] <= 2)
    plot_link(table, tmp_path / "l.pdf", tmp_path / "l.png")
    plot_spectrum([p], tmp_path / "s.pdf", tmp_path / "s.png")
    assert (tmp_path / "l.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_hanley_mcneil_matches_closed_form_and_resampling():
    """At AUC 0.5 the formula is (1/4 + (p-1)/12 + (n-1)/12) / (p n); for exponential scores
    (where its Q1, Q2 are exact) its value at the true AUC matches the spread of AUCs over
    resampled data (5 %)."""
    p, n = 40, 160
    assert hanley_mcneil_se(0.5, p, n) == pytest.approx(np.sqrt((0.25 + (p - 1) / 12 + (n - 1) / 12) / (p * n)))
    assert np.isnan(hanley_mcneil_se(0.7, 0, 10))
    rng = np.random.default_rng(0)
    aucs = []
    for _ in range(2000):
        a, b = rng.exponential(3.0, p), rng.exponential(1.0, n)
        aucs.append((a[:, None] > b[None, :]).mean())
    true = 0.75  # P(Exp(rate 1/3) > Exp(rate 1)) = 1 / (1 + 1/3)
    assert np.mean(aucs) == pytest.approx(true, abs=0.005)
    assert np.std(aucs) == pytest.approx(float(hanley_mcneil_se(true, p, n)), rel=0.05)


def test_study_roc_adds_standard_errors():
    """Per (activation, init range) the SE uses that combination's failure count (two
    activations: a (2, 1) count broadcast against (2, 1, indicator, time) AUCs)."""
    from pathdep.analysis.lyapunov_study import run_study

    study = run_study({"activations": ["tanh", "relu"], "init_ranges": [3.0], "n_networks": 80, "steps": 300,
                       "lyap_steps": 60, "times": [5, 10], "late_window": 20, "warmup_backward": 20,
                       "max_buffer": 32})
    roc = study_roc(study, indicators=("loss", "ftle"))
    for a in range(2):
        n_pos = int(roc["n_failed"].values[a, 0])
        assert 0 < n_pos < 80
        expected = hanley_mcneil_se(roc["auc"].values[a, 0], n_pos, 80 - n_pos)
        np.testing.assert_allclose(roc["auc_se"].values[a, 0], expected)
    assert roc.attrs["max_auc_se"] == pytest.approx(np.nanmax(roc["auc_se"].values))
    assert np.isfinite(roc["auc_std"].values).all()


def test_different_config_is_refused(tmp_path):
    data = make_dataset(tmp_path)
    run = tiny_run()
    traj = train_tiny(tmp_path, run, data)
    other = tiny_run({"optimizer": {"lr": 0.07}})
    with pytest.raises(ValueError, match="different config"):
        lyapunov_for_run(other, traj.parent / "init.h5", data, None, tmp_path / "x.nc")
