"""Analytic NNGP / NTK kernels: accuracy at every variance and the bias conventions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from pathdep.analysis import ntk
from pathdep.analysis import ntk_analytic as A


def _pdf(x, m, sd):
    return np.exp(-0.5 * ((x - m) / sd) ** 2) / (np.sqrt(2 * np.pi) * sd)


def _adaptive(f, g, k11, k12, k22):
    """``E[f(u) g(v)]`` by scipy's adaptive ``quad``, nested over ``u`` and ``v | u``."""
    a, rho = np.sqrt(k11), k12 / k11
    s = np.sqrt(max(k22 - rho * k12, 0.0))
    kinks = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)   # the activations' unit scale

    def inner(u):
        m = rho * u
        if s < 1e-14:
            return g(m)
        lo, hi = m - 12 * s, m + 12 * s
        pts = [p for p in kinks if lo < p < hi] or None
        return quad(lambda v: g(v) * _pdf(v, m, s), lo, hi, points=pts, epsabs=0, epsrel=1e-12, limit=400)[0]

    pts = [p for p in kinks if -12 * a < p < 12 * a]
    return quad(lambda u: f(u) * inner(u) * _pdf(u, 0, a), -12 * a, 12 * a, points=pts, epsabs=0,
                epsrel=1e-12, limit=400)[0]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "gelu"])
@pytest.mark.parametrize("var", [1.0, 37.0, 400.0])
def test_expectations_equal_adaptive_quadrature_at_any_variance(act, var):
    """Relative error <= 1e-8 for E[phi phi] and E[phi' phi'] at correlations 1 and 0.3
    (a fixed Gauss-Hermite rule was 30 % off for tanh's E[sech^4] at variance 37)."""
    phi, dphi = A._PHI[act]
    methods = ("quadrature", "closed") if act == "gelu" else ("quadrature",)
    for c in (1.0, 0.3):
        k11 = k22 = np.array(var)
        k12 = np.array(c * var)
        want = (_adaptive(phi, phi, var, c * var, var), _adaptive(dphi, dphi, var, c * var, var))
        for method in methods:
            got = A.gaussian_expectations(k11, k12, k22, act, method)
            for g, w in zip(got, want):
                assert abs(float(g) / w - 1.0) <= 1e-8, (act, var, c, method, float(g), w)


@pytest.mark.parametrize("act", ["relu", "erf", "gelu", "identity"])
def test_closed_forms_equal_quadrature(act):
    rng = np.random.default_rng(0)
    k11 = rng.uniform(0.3, 2.0, 20)
    k22 = rng.uniform(0.3, 2.0, 20)
    k12 = rng.uniform(-0.95, 0.95, 20) * np.sqrt(k11 * k22)
    closed = A.gaussian_expectations(k11, k12, k22, act, "closed")
    quad_ = A.gaussian_expectations(k11, k12, k22, act, "quadrature")
    for c, q in zip(closed, quad_):   # ReLU's kink sits on a panel breakpoint
        np.testing.assert_allclose(q, c, rtol=1e-9, atol=1e-12)
    x = rng.standard_normal((5, 6))   # and the full recursion
    a = A.analytic_kernels(x, depth=2, sigma_w=1.3, sigma_b=0.2, activation=act, method="closed")
    b = A.analytic_kernels(x, depth=2, sigma_w=1.3, sigma_b=0.2, activation=act, method="quadrature")
    np.testing.assert_allclose(b[0], a[0], rtol=1e-9, atol=0)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-9, atol=0)


def test_symmetric_kernel_equals_cross_kernel():
    x = np.random.default_rng(2).standard_normal((5, 4))
    a = A.analytic_kernels(x, depth=2, sigma_w=1.5, sigma_b=0.1, activation="tanh")
    b = A.analytic_kernels(x, x, depth=2, sigma_w=1.5, sigma_b=0.1, activation="tanh")
    np.testing.assert_allclose(a[0], b[0], rtol=1e-10)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-10)
    np.testing.assert_array_equal(a[1], a[1].T)


def _relu(k11, k12, k22):
    """ReLU arc-cosine kernels written out: (E[phi phi], E[phi' phi'])."""
    n = np.sqrt(np.outer(k11, k22))
    th = np.arccos(np.clip(k12 / n, -1, 1))
    return n * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi), (np.pi - th) / (2 * np.pi)


@pytest.mark.parametrize("sigma_b", [None, 0.0, 0.4])
def test_standard_parameterisation_bias_convention_by_hand(sigma_b):
    """stax.Dense: a zero-initialised trainable bias adds 1 per layer (b_std=0.0), no bias
    adds nothing (b_std=None); depth 1 and depth 2 written out by hand."""
    x = np.random.default_rng(4).standard_normal((4, 3))
    sw, n1, n2 = 1.3, 50, 70
    sb2, one = (0.0, 0.0) if sigma_b is None else (sigma_b ** 2, 1.0)
    k0 = x @ x.T / 3
    d0 = np.diag(k0)
    # layer 0 (Dense): K1 = sw^2 K0 + sb^2, Theta1 = d K0 + 1
    k1, th1 = sw ** 2 * k0 + sb2, 3 * k0 + one
    e1, de1 = _relu(np.diag(k1), k1, np.diag(k1))
    # depth 1: read-out Dense: K2 = sw^2 E + sb^2, Theta2 = sw^2 Theta1 E' + n1 E + 1
    k2, th2 = sw ** 2 * e1 + sb2, sw ** 2 * th1 * de1 + n1 * e1 + one
    got = A.analytic_kernels(x, depth=1, sigma_w=sw, sigma_b=sigma_b, parameterization="standard",
                             widths=[n1])
    np.testing.assert_allclose(got[0], k2, rtol=1e-13)
    np.testing.assert_allclose(got[1], th2, rtol=1e-13)
    # depth 2: one more hidden layer of width n2
    e2, de2 = _relu(np.diag(k2), k2, np.diag(k2))
    k3, th3 = sw ** 2 * e2 + sb2, sw ** 2 * th2 * de2 + n2 * e2 + one
    got = A.analytic_kernels(x, depth=2, sigma_w=sw, sigma_b=sigma_b, parameterization="standard",
                             widths=[n1, n2])
    np.testing.assert_allclose(got[0], k3, rtol=1e-13)
    np.testing.assert_allclose(got[1], th3, rtol=1e-13)
    # NTK parameterisation: the bias gradient is sigma_b^2 (zero for both 0 and None)
    k1n = sw ** 2 * k0 + sb2
    th1n = k1n
    e, de = _relu(np.diag(k1n), k1n, np.diag(k1n))
    kn = sw ** 2 * e + sb2
    got = A.analytic_kernels(x, depth=1, sigma_w=sw, sigma_b=sigma_b)
    np.testing.assert_allclose(got[1], sw ** 2 * th1n * de + kn, rtol=1e-13)
    assert np.all(d0 > 0)


def test_zero_initialised_bias_gradient_matches_a_wide_network():
    """The difference Theta(sigma_b=0) - Theta(None) equals the bias-gradient part of a wide
    standard-parameterised network's empirical NTK (zero biases; 3 % Monte Carlo)."""
    rng = np.random.default_rng(6)
    d, width, sw = 5, 20000, 1.4
    x = rng.standard_normal((4, d))
    w1 = rng.standard_normal((width, d)) * sw / np.sqrt(d)
    w2 = rng.standard_normal(width) * sw / np.sqrt(width)
    act = (x @ w1.T > 0) * w2          # d f / d b1 = w2 relu'(z); d f / d b2 = 1
    emp = act @ act.T + 1.0
    with_b = A.analytic_kernels(x, depth=1, sigma_w=sw, sigma_b=0.0, parameterization="standard", widths=[width])
    no_b = A.analytic_kernels(x, depth=1, sigma_w=sw, sigma_b=None, parameterization="standard", widths=[width])
    np.testing.assert_allclose(with_b[0], no_b[0], rtol=0, atol=0)   # the NNGP does not see it
    np.testing.assert_allclose(with_b[1] - no_b[1], emp, rtol=0.03)


def test_reexported_and_bad_input():
    assert ntk.analytic_kernels is A.analytic_kernels and ntk.gaussian_expectations is A.gaussian_expectations
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="sigma_b"):
        A.analytic_kernels(x, sigma_b=-0.1)
    with pytest.raises(ValueError, match="n_quad"):
        A.gaussian_expectations(1.0, 0.5, 1.0, "tanh", n_quad=100)
    with pytest.raises(ValueError, match="activation"):
        A.gaussian_expectations(1.0, 0.5, 1.0, "swish")
    with pytest.raises(ValueError, match="method"):
        A.gaussian_expectations(1.0, 0.5, 1.0, "tanh", method="hermite")
