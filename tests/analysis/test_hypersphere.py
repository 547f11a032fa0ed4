"""Brownian motion on hyperspheres: simulation against theory, diffusion fit."""

import numpy as np
import pytest

from pathdep.analysis.hypersphere import (fit_diffusion, simulate_sphere_walk, sphere_walk_paths, theory_cos,
                                          theory_sq_disp)


@pytest.mark.parametrize("n", [3, 10, 100])
def test_simulation_matches_theory(n):
    R, D = 2.0, 0.5
    dt = 0.002 * R**2 / (D * (n - 1))  # decay 0.002 per step: discretisation bias ~0.2% of the rate
    t, c, q, cs, qs = simulate_sphere_walk(n, R, D, dt, steps=1000, walkers=600, seed=n,
                                           record_every=100, return_sem=True)
    assert t.shape == c.shape == q.shape == (11,)
    assert c[0] == pytest.approx(1.0) and q[0] == 0.0
    ct, qt = theory_cos(t, n, R, D), theory_sq_disp(t, n, R, D)
    assert np.all(np.abs(c[1:] - ct[1:]) < 3 * cs[1:]), (c, ct, cs)
    assert np.all(np.abs(q[1:] - qt[1:]) < 3 * qs[1:]), (q, qt, qs)
    assert ct[-1] < 0.2  # the decay is well covered
    # on the sphere |dx|^2 = 2 R^2 (1 - cos) exactly
    np.testing.assert_allclose(q, 2 * R**2 * (1 - c), rtol=1e-10, atol=1e-12)


def test_initial_slope():
    n, R, D = 50, 3.0, 0.2
    h = 1e-7
    assert theory_sq_disp(h, n, R, D) / h == pytest.approx(2 * (n - 1) * D, rel=1e-5)
    t, c, q = simulate_sphere_walk(n, R, D, dt=1e-4, steps=20, walkers=2000, seed=1)
    slope = np.polyfit(t, q, 1)[0]
    assert slope == pytest.approx(2 * (n - 1) * D, rel=0.03)


@pytest.mark.parametrize("R", [1.0, 3.0])
def test_fit_diffusion_recovers_D(R):
    n, D = 300, 0.4
    dt = 0.002 * R**2 / (D * (n - 1))
    t, x = sphere_walk_paths(n, R, D, dt, steps=800, walkers=48, seed=7, record_every=20)
    assert x.shape == (41, 48, n)
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), R, rtol=1e-12)
    fit = fit_diffusion(t, x)
    assert fit.D == pytest.approx(D / R**2, rel=0.05)   # unit-sphere (angular) units
    assert fit.rate == pytest.approx(fit.D * (n - 1))
    assert fit.n == n and fit.D_stderr > 0
    np.testing.assert_allclose(fit.norm_ratio, 1.0, rtol=1e-12)
    # a time-dependent radius changes the norm ratio, not the fitted direction diffusion
    grow = np.linspace(1.0, 2.5, len(t))
    fit2 = fit_diffusion(t, x[:, 0] * grow[:, None])
    np.testing.assert_allclose(fit2.norm_ratio, grow, rtol=1e-12)
    assert fit2.D == pytest.approx(fit_diffusion(t, x[:, 0]).D, rel=1e-9)


def test_bad_inputs():
    with pytest.raises(ValueError):
        simulate_sphere_walk(1, 1.0, 1.0, 0.1, 10, 5)
    with pytest.raises(ValueError):
        fit_diffusion(np.arange(3), np.ones((4, 5)))


def test_theory_curves_msd_matches_closed_form_within_mc_error():
    from pathdep.analysis.hypersphere import theory_curves

    cur = theory_curves([3, 20], R=1.5, D=0.3, rate_dt=0.005, t_max_rate=3.0, walkers=800, seed=2)
    assert cur["x"].shape == cur["sq"].shape == (2, 41) and cur["x_line"].shape == (2, 200)
    x = cur["x"][:, 1:]
    # 2 R^2 (1 - exp(-D (n-1) t / R^2)) at x = D (n-1) t / R^2
    expect = 2 * 1.5**2 * -np.expm1(-x)
    z = (cur["sq"][:, 1:] - expect) / cur["sq_sem"][:, 1:]
    assert np.abs(z).max() < 4, z
    np.testing.assert_allclose(cur["cos_line"], np.exp(-cur["x_line"]), rtol=1e-12)
    np.testing.assert_allclose(cur["x"][:, -1], 3.0, rtol=1e-12)


def test_sphere_diffusion_recovers_D_of_unit_walks():
    from pathdep.analysis.hypersphere import sphere_diffusion

    n, D = 30, 0.01
    t, x = sphere_walk_paths(n, 1.0, D, dt=0.05, steps=400, walkers=1, seed=4, record_every=20)
    W = np.repeat(x * 3.0, 3, axis=1)  # (C, K=3, n): the same walk, radius 3 (the fit uses directions)
    ok = np.ones(W.shape[:2], dtype=bool)
    ok[:, 2] = False  # a member with no valid checkpoint: NaN
    steps = np.round(t / 0.05).astype(np.int64)
    vals, failed = sphere_diffusion(steps, W, ok)
    assert not failed and np.isnan(vals["sphere_D"][2]) and np.isnan(vals["sphere_sq_disp"][2]).all()
    np.testing.assert_allclose(vals["norm_ratio"][:2], 1.0, rtol=1e-12)
    u = x[:, 0] / np.linalg.norm(x[:, 0], axis=1, keepdims=True)
    np.testing.assert_allclose(vals["sphere_sq_disp"][0], np.sum((u - u[0]) ** 2, axis=1), rtol=1e-12, atol=1e-15)
    fit = fit_diffusion(steps.astype(float), W[:, 0])
    assert vals["sphere_D"][0] == fit.D and vals["sphere_rate"][0] == fit.rate
    np.testing.assert_allclose(vals["sphere_theory"][0], 2 * -np.expm1(-fit.rate * steps), rtol=1e-12)
    # per step D (n-1) ~ D_true dt (n-1): within the walk's sampling error of a single path
    assert 0.3 < vals["sphere_rate"][0] / (D * 0.05 * (n - 1)) < 3


def test_diffusion_gof_passes_walks_and_fails_a_ballistic_path():
    from pathdep.analysis.hypersphere import diffusion_gof, sphere_diffusion

    n = 2000  # one walker's |du|^2 fluctuates by ~sqrt(2/n): a few percent
    t, x = sphere_walk_paths(n, 1.0, 1e-4, dt=0.5, steps=2000, walkers=2, seed=3, record_every=100)
    steps = np.round(t / 0.5).astype(np.int64)
    # member 2: a straight (ballistic) path, |du|^2 ~ t^2 early: not a diffusion
    rng = np.random.default_rng(0)
    u0, v = rng.standard_normal(n), rng.standard_normal(n)
    line = u0[None] / np.linalg.norm(u0) + 2e-3 * steps[:, None] * v[None] / np.linalg.norm(v)
    W = np.concatenate([x, line[:, None]], axis=1)
    vals, failed = sphere_diffusion(steps, W, np.ones(W.shape[:2], dtype=bool))
    factor, passes = diffusion_gof(vals["sphere_sq_disp"], vals["sphere_theory"])
    assert list(passes) == [True, True, False], factor
    assert np.all(factor[:2] < 1.3) and factor[2] > 1.3
    f2, p2 = diffusion_gof(np.full((1, 3), np.nan), np.ones((1, 3)))
    assert np.isnan(f2[0]) and not p2[0]


def test_baseline_diffusion_keeps_only_passing_members():
    from pathdep.analysis.hypersphere import baseline_diffusion

    C = 5
    th = np.tile(np.linspace(0, 1, C), (4, 1))
    sq = th.copy()
    sq[1] *= 3.0  # member 1 (block 0) fails: off by 3x
    sq[3] *= 2.0  # member 3 (block 1, its only other member) fails too
    out = baseline_diffusion(np.array([1.0, 5.0, 2.0, 7.0]), sq, th, np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    np.testing.assert_allclose(out["D"], [1.0, 2.0])
    assert list(out["n_pass"]) == [1, 1] and list(out["n_members"]) == [2, 2]
    np.testing.assert_allclose(out["gof_factor"], [2.0, 1.5])
