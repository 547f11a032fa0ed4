"""Known answers and equivalences for pathdep.analysis.ntk and the NTK parameterisation."""

import math

import numpy as np
import pytest
import torch
from torch.func import grad, jacrev

from pathdep.analysis import ntk
from pathdep.core.dynamics import make_step
from pathdep.core.init import init_params
from pathdep.core.models import MLP, Layout, make_apply
from pathdep.core.optim import optimizer_from_config

DT = torch.float64


def tiny(hidden=(5,), out=3, d=4, param="standard", act="tanh", seed=0, sw=1.0, sb=1.0):
    m = MLP(d, list(hidden), out, act, True, param, sw, sb).to(DT)
    lay = Layout.from_module(m)
    w = init_params(m, lay, "kaiming_normal", seed)
    return m, lay, make_apply(m, lay), w


def inputs(n, d, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=DT)


@pytest.mark.parametrize("param", ["standard", "ntk"])
def test_empirical_ntk_equals_per_sample_gradients(param):
    _, _, apply, w = tiny(param=param)
    x1, x2 = inputs(6, 4), inputs(3, 4, seed=2)
    th = ntk.empirical_ntk(apply, w, x1, x2)
    J1 = ntk.per_sample_gradient_loop(apply, w, x1)
    J2 = ntk.per_sample_gradient_loop(apply, w, x2)
    ref = torch.einsum("nop,mqp->nmoq", J1, J2)
    assert th.shape == (6, 3, 3, 3)
    torch.testing.assert_close(th, ref, rtol=1e-12, atol=1e-12)
    # the trace over outputs is the trace of the full kernel
    tr = ntk.empirical_ntk(apply, w, x1, x2, trace=True)
    torch.testing.assert_close(tr, th.diagonal(dim1=2, dim2=3).sum(-1), rtol=1e-12, atol=1e-12)


def test_linear_model_ntk_is_gram_plus_one():
    m = torch.nn.Linear(7, 1).to(DT)
    lay = Layout.from_module(m)
    apply = make_apply(m, lay)
    w = torch.randn(lay.n_params, dtype=DT)
    x = inputs(9, 7)
    th = ntk.empirical_ntk(apply, w, x, trace=True)
    torch.testing.assert_close(th, x @ x.T + 1.0, rtol=1e-12, atol=1e-12)
    # two outputs: Theta = (X X^T + 1) kron I_2
    m2 = torch.nn.Linear(7, 2).to(DT)
    lay2 = Layout.from_module(m2)
    full = ntk.empirical_ntk(make_apply(m2, lay2), torch.randn(lay2.n_params, dtype=DT), x)
    torch.testing.assert_close(full, (x @ x.T + 1.0)[:, :, None, None] * torch.eye(2, dtype=DT), rtol=1e-12,
                               atol=1e-12)


def test_chunked_equals_unchunked():
    _, lay, apply, w = tiny(hidden=(8, 6))
    x = inputs(11, 4)
    ref = ntk.empirical_ntk(apply, w, x)
    for cs, cp in [(1, None), (4, 7), (3, 50), (100, 1)]:
        got = ntk.empirical_ntk(apply, w, x, chunk_samples=cs, chunk_params=cp)
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    got_tr = ntk.empirical_ntk(apply, w, x, trace=True, chunk_samples=2, chunk_params=13)
    torch.testing.assert_close(got_tr, ref.diagonal(dim1=2, dim2=3).sum(-1), rtol=1e-12, atol=1e-12)
    # automatic slicing under a memory budget: same kernel, slices of the budgeted size
    x2 = inputs(5, 4)
    ref2 = ntk.empirical_ntk(apply, w, x, x2)
    budget = 16 * 3 * 8 * 30 / 2 ** 20            # (11 + 5) inputs x 3 outputs x float64 x 30 params
    torch.testing.assert_close(ntk.empirical_ntk(apply, w, x, x2, max_jacobian_mb=budget), ref2,
                               rtol=1e-12, atol=1e-12)
    assert ntk.auto_chunk_params(lay.n_params, 16 * 3, 8, budget) == 30
    assert ntk.auto_chunk_params(lay.n_params, 16 * 3, 8, 1024.0) == lay.n_params


def test_linearized_model_value_and_gradient_at_w0():
    _, lay, apply, w0 = tiny()
    x = inputs(5, 4)
    f_lin = ntk.linearize(apply, w0)
    torch.testing.assert_close(f_lin(w0, x), apply(w0, x), rtol=0, atol=1e-14)
    torch.testing.assert_close(jacrev(f_lin)(w0, x), jacrev(apply)(w0, x), rtol=1e-12, atol=1e-12)
    # affine in w: f_lin(w0 + 2v) - f_lin(w0) = 2 (f_lin(w0 + v) - f_lin(w0)); the network is not
    v = 0.3 * torch.randn(lay.n_params, dtype=DT)
    d1 = f_lin(w0 + v, x) - f_lin(w0, x)
    torch.testing.assert_close(f_lin(w0 + 2 * v, x) - f_lin(w0, x), 2 * d1, rtol=1e-12, atol=1e-12)
    assert (apply(w0 + 2 * v, x) - apply(w0, x) - 2 * (apply(w0 + v, x) - apply(w0, x))).abs().max() > 1e-4
    # it trains through the same pure update map (gradient of the linear model = J^T residual)
    opt, hp = optimizer_from_config({"name": "sgd", "lr": 0.1, "momentum": 0.9})
    step = make_step(f_lin, "mse", opt)
    y = torch.zeros(5, 3, dtype=DT)
    state = opt.init(w0)
    w1, state, loss = step(w0, state, x, y, {k: torch.tensor(v, dtype=DT) for k, v in hp.items()})
    g = grad(lambda w: 0.5 * ((apply(w, x) - y) ** 2).sum(-1).mean())(w0)
    torch.testing.assert_close(w1, w0 - 0.1 * g, rtol=1e-12, atol=1e-12)


def test_identity_network_kernels_are_linear():
    x = np.random.default_rng(1).standard_normal((4, 3))
    nngp, th = ntk.analytic_kernels(x, depth=2, sigma_w=1.0, sigma_b=0.0, activation="identity")
    np.testing.assert_allclose(nngp, x @ x.T / 3, atol=1e-14)
    np.testing.assert_allclose(th, 3 * x @ x.T / 3, atol=1e-13)   # depth + 1 equal contributions


@pytest.mark.parametrize("act", ["relu", "erf", "tanh"])
def test_analytic_vs_monte_carlo_wide_networks(act):
    """NNGP: hidden-layer covariances of width-2048 networks averaged over draws;
    NTK: the mean empirical NTK over draws; tolerance 4 standard errors (+ 1/width bias)."""
    d, n, width, draws, sw, sb = 5, 4, 2048, 24, 1.4, 0.3
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, d))
    nngp, th = ntk.analytic_kernels(x, depth=1, sigma_w=sw, sigma_b=sb, activation=act)
    if act == "erf":
        # One hidden layer by hand: z = sw x W^T / sqrt(d) + sb b, f = sw/sqrt(w) erf(z) v + sb c.
        from scipy.special import erf
        W = rng.standard_normal((draws, width, d))
        b = rng.standard_normal((draws, width, 1))
        z = sw * np.einsum("kwd,nd->kwn", W, x) / math.sqrt(d) + sb * b
        phi = erf(z)
        est = sw ** 2 * np.einsum("kwn,kwm->knm", phi, phi) / width + sb ** 2
    else:
        est, ths = [], []
        xt = torch.tensor(x, dtype=DT)
        for k in range(draws):
            m = MLP(d, [width], 1, act, True, "ntk", sw, sb).to(DT)
            lay = Layout.from_module(m)
            w = init_params(m, lay, "default", 100 + k)
            p = lay.unflatten(w)
            m.load_state_dict(p)
            with torch.no_grad():
                f = m.features(xt)
            est.append((sw ** 2 * f @ f.T / width + sb ** 2).numpy())
            ths.append(ntk.empirical_ntk(make_apply(m, lay), w, xt, trace=True).numpy())
        est = np.stack(est)
        ths = np.stack(ths)
        se = ths.std(0, ddof=1) / math.sqrt(draws)
        assert np.all(np.abs(ths.mean(0) - th) <= 4 * se + 0.01 * np.abs(th))
    se = est.std(0, ddof=1) / math.sqrt(draws)
    assert np.all(np.abs(est.mean(0) - nngp) <= 4 * se + 1e-3 * np.abs(nngp))


def test_analytic_ntk_matches_wide_empirical_ntk_depth2():
    d, n, width, sw, sb = 6, 5, 2048, 1.2, 0.1
    x = np.random.default_rng(3).standard_normal((n, d))
    _, th = ntk.analytic_kernels(x, depth=2, sigma_w=sw, sigma_b=sb, activation="relu")
    m = MLP(d, [width, width], 1, "relu", True, "ntk", sw, sb).to(torch.float32)
    lay = Layout.from_module(m)
    w = init_params(m, lay, "default", 7)
    emp = ntk.empirical_ntk(make_apply(m, lay), w, torch.tensor(x, dtype=torch.float32), trace=True,
                            chunk_samples=1, chunk_params=1 << 20).double().numpy()
    rel = np.abs(emp - th).max() / np.abs(th).max()
    assert rel < 0.05, rel


def test_ntk_parameterization_init_and_forward():
    m = MLP(4, [3000], 2, "relu", True, "ntk", 2.0, 0.5).to(DT)
    lay = Layout.from_module(m)
    w = init_params(m, lay, "kaiming_normal", 0)
    assert abs(float(w.std()) - 1.0) < 0.01 and abs(float(w.mean())) < 0.01
    p = lay.unflatten(w)
    x = inputs(3, 4)
    ref = torch.relu(2.0 / 2.0 * x @ p["fc0.weight"].T + 0.5 * p["fc0.bias"])
    ref = 2.0 / math.sqrt(3000) * ref @ p["fc1.weight"].T + 0.5 * p["fc1.bias"]
    torch.testing.assert_close(make_apply(m, lay)(w, x), ref, rtol=1e-12, atol=1e-12)
    # standard parameterisation: still nn.Linear exactly
    s = MLP(4, [3], 2, "relu", True).to(DT)
    ref_mod = torch.nn.Sequential(s.fc0, torch.nn.ReLU(), s.fc1)
    torch.testing.assert_close(s(x), ref_mod(x), rtol=0, atol=0)


def test_mse_dynamics_equals_gradient_descent_on_the_linear_model():
    rng = np.random.default_rng(4)
    D, M, P = 8, 3, 20
    J = rng.standard_normal((D, P))
    Jx = rng.standard_normal((M, P))
    y = rng.standard_normal(D)
    f0X, f0x = rng.standard_normal(D), rng.standard_normal(M)
    theta, theta_x = J @ J.T, Jx @ J.T
    lr = 0.5 * ntk.eta_crit(ntk.lambda_max(torch.tensor(theta)))
    w = np.zeros(P)
    steps = [0, 1, 5, 40]
    res = ntk.mse_dynamics(theta, theta_x, y, steps, lr, f0_X=f0X, f0_x=f0x)
    for t in range(max(steps) + 1):
        if t in steps:
            i = steps.index(t)
            np.testing.assert_allclose(res["f"][i], f0x + Jx @ w, atol=1e-10)
        w = w - lr * J.T @ (f0X + J @ w - y) / D
    # gradient flow: at large t the training outputs reach the targets
    flow = ntk.mse_dynamics(theta, theta_x, y, [1e6], 1.0, discrete=False)
    np.testing.assert_allclose(flow["train_mean"][0], y, atol=1e-8)


def test_mse_covariance_is_that_of_gamma():
    rng = np.random.default_rng(6)
    D, M = 6, 2
    A = rng.standard_normal((D + M, D + M))
    K = A @ A.T
    B = rng.standard_normal((D + M, D + M))
    Th = B @ B.T
    res = ntk.mse_dynamics(Th[:D, :D], Th[D:, :D], np.zeros(D), [3], 0.1, k_XX=K[:D, :D], k_xX=K[D:, :D],
                           k_xx=K[D:, D:])
    # Monte Carlo of gamma = f0(x) - A f0(X) with f0 ~ N(0, K)
    f0 = rng.multivariate_normal(np.zeros(D + M), K, size=200000)
    ev, U = np.linalg.eigh(Th[:D, :D])
    g = 1 - (1 - 0.1 * ev / D) ** 3
    Amat = Th[D:, :D] @ U @ np.diag(g / ev) @ U.T
    gam = f0[:, D:] - f0[:, :D] @ Amat.T
    np.testing.assert_allclose(res["cov"][0], np.cov(gam.T), atol=0.03 * np.abs(res["cov"][0]).max())


def test_catapult_map_phases():
    n, lam0, f0 = 1000.0, 1.0, 1.0
    f_lazy, l_lazy = ntk.catapult_map(f0, lam0, 1.5, n, 300)
    assert abs(f_lazy[-1]) < 1e-6 and abs(l_lazy[-1] - lam0) < 0.01
    f_cat, l_cat = ntk.catapult_map(f0, lam0, 3.0, n, 300)
    assert np.abs(f_cat).max() > 5 * f0 and abs(f_cat[-1]) < 1e-6
    assert l_cat[-1] < 2 / 3.0 and l_cat[-1] < 0.7 * lam0            # kernel changed by O(1)
    f_div, _ = ntk.catapult_map(f0, lam0, 4.5, n, 300)
    assert not np.isfinite(f_div[-1]) or abs(f_div[-1]) > 1e6


def test_fit_exponent_recovers_power_law():
    w = 2.0 ** np.arange(4, 11)
    slope, se = ntk.fit_exponent(w, 3.0 * w ** -0.5)
    assert abs(slope + 0.5) < 1e-12
