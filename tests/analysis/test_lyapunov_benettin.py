"""Known answers for pathdep.analysis.lyapunov_benettin (float64): Benettin spectra of
gradient descent on a quadratic (exact), heavy-ball momentum on a flat state, the Henon map;
single, batched and full-Jacobian variants agree; custom tangent pushes; FTLEs."""

import math

import pytest
import torch
from lyapunov_maps import DT, H, HENON, LR, gd_quadratic, henon, henon_jacobian, henon_points
from torch.func import grad

from pathdep.analysis.lyapunov_benettin import batched_jacobian, benettin, benettin_batched, ftle, full_spectrum


def test_gd_quadratic_exact():
    r = benettin(gd_quadratic, torch.tensor([1.0, -2.0], dtype=DT), 40, 2, transient=30)
    expected = torch.tensor([math.log(0.95), math.log(0.5)], dtype=DT)
    assert torch.allclose(r.exponents, expected, atol=1e-10, rtol=0)
    assert r.log_r.shape == (40, 2) and r.running.shape == (40, 2)
    assert r.trajectory.shape == (41, 2)
    assert torch.allclose(r.running[-1], r.exponents, atol=1e-14)
    # every increment is exact once the vectors are aligned
    assert torch.allclose(r.log_r, expected.expand(40, 2), atol=1e-10, rtol=0)


def test_qr_every_same_exponents():
    x0 = torch.tensor([1.0, -2.0], dtype=DT)
    r1 = benettin(gd_quadratic, x0, 40, 2, transient=30)
    r5 = benettin(gd_quadratic, x0, 40, 2, transient=30, qr_every=5)
    expected = torch.tensor([math.log(0.95), math.log(0.5)], dtype=DT)
    assert r5.log_r.shape == (8, 2)
    assert torch.allclose(r5.exponents, expected, atol=1e-10, rtol=0)
    # QR of a product = product of QRs: windowed FTLEs agree
    assert torch.allclose(ftle(r1.log_r, 5), ftle(r5.log_r, 1, qr_every=5), atol=1e-12)
    assert torch.isnan(r5.running[:4]).all()
    assert torch.equal(r5.running[5], r5.running[4])  # carried between QRs
    with pytest.raises(ValueError, match="qr_every"):
        benettin(gd_quadratic, x0, 101, 2, qr_every=5)


def test_momentum_state_through_flat_vector():
    """Heavy ball (v <- beta v + g, w <- w - lr v) on the flat state x = (w, v): the exponents
    are the logs of the moduli of the eigenvalues of the 2x2 map of (w, v) per Hessian eigenvalue."""
    beta = 0.05
    x0 = torch.tensor([1.0, -2.0, 0.0, 0.0], dtype=DT)

    def F(x, t):
        w, v = x[:2], x[2:]
        g = grad(lambda u: 0.5 * (u * H * u).sum())(w)
        v = beta * v + g
        w = w - LR * v
        return torch.cat([w, v])

    r = benettin(F, x0, 40, 4, transient=30)
    mus = []
    for h in (1.0, 10.0):  # per Hessian eigenvalue h, the map of (w, v) is M
        M = torch.tensor([[1 - LR * h, -LR * beta], [h, beta]], dtype=DT)
        mus += torch.linalg.eigvals(M).abs().tolist()
    expected = torch.tensor(sorted([math.log(m) for m in mus], reverse=True), dtype=DT)
    assert torch.allclose(r.exponents, expected, atol=1e-10, rtol=0)


def test_henon_spectrum_and_sum():
    X0 = henon_points(16)
    r = benettin_batched(henon, X0, 1000, 2, transient=100, mode="jvp")
    assert r.exponents.shape == (16, 2) and r.log_r.shape == (16, 1000, 2)
    mean = r.exponents.mean(0)
    assert abs(mean[0].item() - HENON[0]) < 0.01
    assert abs(mean[1].item() - HENON[1]) < 0.01
    # the sum is log|det J| = ln 0.3 at every step, exactly
    assert torch.allclose(r.log_r.sum(-1), torch.full((16, 1000), math.log(0.3), dtype=DT),
                          atol=1e-10)
    assert torch.allclose(r.exponents.sum(-1), torch.full((16,), math.log(0.3), dtype=DT),
                          atol=1e-6)


def test_single_batched_full_agree():
    X0 = henon_points(3)
    rb = benettin_batched(henon, X0, 60, 2, seed=3)  # jacobian mode
    rs = benettin(henon, X0[0], 60, 2, seed=3)  # jvp mode
    rf = full_spectrum(henon, X0[0], 60, seed=3)  # jacfwd
    assert torch.allclose(rs.log_r, rf.log_r, atol=1e-10)
    assert torch.allclose(rs.log_r, rb.log_r[0], atol=1e-10)
    assert torch.allclose(rs.exponents, rf.exponents, atol=1e-12)
    assert torch.allclose(rs.x, rb.x[0], atol=1e-12)


def test_batched_jacobian_and_ftle():
    X = henon_points(4)
    J, Y = batched_jacobian(henon, X, 0)
    assert J.shape == (4, 2, 2)
    Jx = torch.stack([torch.stack([-2.8 * x[0], torch.ones((), dtype=DT)]) for x in X])
    assert torch.allclose(J[:, 0], Jx) and torch.allclose(J[:, 1, 0], torch.full((4,), 0.3,
                                                                                 dtype=DT))
    assert torch.allclose(Y, torch.stack([henon(x, 0) for x in X]))
    L = torch.arange(24, dtype=DT).reshape(2, 6, 2)
    f = ftle(L, 4)
    assert f.shape == (2, 1, 2) and f[0, 0, 0].item() == (0 + 2 + 4 + 6) / 4


def test_cholesky_qr_and_qr_every_same_exponents_henon():
    """Known system (Henon): qr_every = 2 and CholeskyQR2 give the exponents of a QR every
    step (QR of a product = product of QRs), and the sum ln 0.3 per step stays exact."""
    x0 = henon_points(1)[0]
    r1 = benettin(henon, x0, 2000, 2, transient=100)
    r2 = benettin(henon, x0, 2000, 2, transient=100, qr_every=2, qr="cholesky")
    assert torch.allclose(r1.exponents, r2.exponents, atol=1e-10, rtol=0)
    assert abs(r2.exponents[0].item() - HENON[0]) < 0.02
    assert torch.allclose(r2.log_r.sum(-1), torch.full((1000,), 2 * math.log(0.3), dtype=DT), atol=1e-9)
    rb = benettin_batched(henon, henon_points(3), 200, 2, qr="cholesky")
    rh = benettin_batched(henon, henon_points(3), 200, 2)
    assert torch.allclose(rb.log_r, rh.log_r, atol=1e-10)


def test_custom_push_and_jacobian_fn():
    X0 = henon_points(3)
    ra = benettin_batched(henon, X0, 50, 2, seed=1)
    rb = benettin_batched(None, X0, 50, 2, seed=1, jacobian_fn=henon_jacobian)
    assert torch.allclose(ra.log_r, rb.log_r, atol=1e-12)
    rs = benettin(None, X0[0], 50, 2, seed=1,
                  push=lambda x, Q, t: (henon(x, t), henon_jacobian(x[None], t)[0][0] @ Q))
    assert torch.allclose(rs.log_r, ra.log_r[0], atol=1e-12)
