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
