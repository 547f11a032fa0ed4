"""Normalised autocorrelations: constant, orthogonal and rotating trajectories."""

import numpy as np
import pytest
import torch

from pathdep.analysis.autocorr import autocorrelation, decorrelation_time, output_autocorrelation


def _plane(D, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(D, 2)))
    return q[:, 0], q[:, 1]


def test_constant_is_one():
    x = np.tile(np.random.default_rng(1).normal(size=(1, 3, 20)), (6, 1, 1))  # (C, K, P)
    np.testing.assert_allclose(autocorrelation(x), 1.0, rtol=1e-12)
    same = np.tile(x[:, :1], (1, 3, 1))  # all members equal to the baseline
    np.testing.assert_allclose(autocorrelation(same, "baseline"), 1.0, rtol=1e-12)
    np.testing.assert_allclose(autocorrelation(x, "lagged", lag=2), 1.0, rtol=1e-12)
    assert autocorrelation(x, "lagged", lag=2).shape == (4, 3)


def test_orthogonal_is_zero_and_zero_vector_nan():
    e = np.eye(4)
    x = np.stack([e[0], e[1], e[2], np.zeros(4)])  # (C=4, P)
    c = autocorrelation(x)
    np.testing.assert_allclose(c[:3], [1.0, 0.0, 0.0], atol=1e-15)
    assert np.isnan(c[3])


def test_rotation_initial_baseline_lagged():
    D, C = 50, 30
    u, v = _plane(D)
    theta = np.linspace(0, 3.0, C)
    scale = np.linspace(1.0, 4.0, C)[:, None]  # norms change; correlations must not
    x = scale * (np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * v)
    np.testing.assert_allclose(autocorrelation(torch.tensor(x)), np.cos(theta), atol=1e-12)
    # baseline wanders on its own path phi_t; member = baseline rotated by theta_t
    phi = np.sin(np.arange(C))
    base = (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v) * 2.0
    mem = np.cos(phi + theta)[:, None] * u + np.sin(phi + theta)[:, None] * v
    traj = np.stack([base, mem], axis=1)  # (C, K=2, D)
    c = autocorrelation(traj, "baseline")
    np.testing.assert_allclose(c[:, 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(c[:, 1], np.cos(theta), atol=1e-12)
    np.testing.assert_allclose(autocorrelation(traj[:, 1], base), np.cos(theta), atol=1e-12)
    # uniform rotation: lag-tau correlation is cos(omega tau)
    w = 0.2
    xs = np.cos(w * np.arange(C))[:, None] * u + np.sin(w * np.arange(C))[:, None] * v
    np.testing.assert_allclose(autocorrelation(xs, "lagged", lag=3), np.cos(3 * w), atol=1e-12)


def test_outputs_flatten_and_center():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 2, 7, 3))  # (C, K, N, classes)
    c = output_autocorrelation(logits)
    assert c.shape == (5, 2)
    flat = logits.reshape(5, 2, 21)
    np.testing.assert_allclose(c, autocorrelation(flat), rtol=1e-12)
    # a constant shift of the outputs is invisible to the centred (Pearson) version
    cc = autocorrelation(np.stack([flat[0, 0], flat[0, 0] + 5.0]), center=True)
    np.testing.assert_allclose(cc, 1.0, rtol=1e-12)
    with pytest.raises(ValueError):
        autocorrelation(logits[0, 0, 0], "baseline")


def test_decorrelation_time():
    t = np.linspace(0, 10, 101)
    tau = np.array([1.0, 2.5, 50.0])
    corr = np.exp(-t[:, None] / tau)
    got = decorrelation_time(t, corr)
    np.testing.assert_allclose(got[:2], tau[:2], rtol=1e-2)
    assert np.isnan(got[2])


def test_trajectory_autocorrelations_known_cosines():
    from pathdep.analysis.autocorr import trajectory_autocorrelations

    theta = np.array([0.0, 0.3, 0.9, 1.6])
    e1, e2 = np.eye(4)[0], np.eye(4)[1]
    base = np.stack([np.cos(th) * e1 + np.sin(th) * e2 for th in theta])  # rotates away from its start
    W = np.stack([base, base, 2.0 * base[:1].repeat(4, 0)], axis=1)  # (C, K=3, P): baseline, copy, frozen
    ok = np.ones((4, 3), dtype=bool)
    ok[3, 1] = False
    outs = {c: W[c][:, None, :2] for c in range(4)}  # outputs (K, N=1, 2)
    calls = []

    def outputs(c):
        calls.append(c)
        return outs[c]

    ac, tau = trajectory_autocorrelations(W, ok, np.arange(4) * 10, outputs)
    assert calls == [0, 1, 2, 3]
    np.testing.assert_allclose(ac["ac_w_init"][0], np.cos(theta), rtol=1e-12)
    np.testing.assert_allclose(ac["ac_w_init"][2], 1.0, rtol=1e-12)
    np.testing.assert_allclose(ac["ac_w_base"][2], np.cos(theta), rtol=1e-12)
    np.testing.assert_allclose(ac["ac_out_base"][1, :3], 1.0, rtol=1e-12)
    assert np.isnan(ac["ac_w_init"][1, 3]) and np.isnan(ac["ac_out_init"][1, 3])
    assert 20 < tau["tau_w_init"][0] < 30 and np.isnan(tau["tau_w_init"][2])
