"""Known answers for pathdep.analysis.lyapunov (float64), all through the code path networks use.

Maps are written as ``F(x, t)`` and differentiated by ``torch.func`` (jvp / jacfwd), the
same path as a network's update map; gradient descent is ``w - lr * grad(loss)(w)``.
"""

import math

import pytest
import torch
from torch.func import grad, jvp

from pathdep.analysis import lyapunov as ly

DT = torch.float64
H = torch.tensor([1.0, 10.0], dtype=DT)
LR = 0.05


def gd_quadratic(w, t):
    """Plain gradient descent on 1/2 w^T H w: the tangent map is diag(0.95, 0.5)."""
    return w - LR * grad(lambda v: 0.5 * (v * H * v).sum())(w)


def henon(x, t, a=1.4, b=0.3):
    return torch.stack([1 - a * x[..., 0] ** 2 + x[..., 1], b * x[..., 0]], dim=-1)


HENON = (0.4193, -1.6233)  # reference values (2e5 steps; methods-notes)


def henon_points(n, burn=300):
    """``n`` independent points on the attractor (separate orbits from nearby starts)."""
    x = torch.stack([0.1 + 0.001 * torch.arange(n, dtype=DT), torch.full((n,), 0.1, dtype=DT)],
                    dim=-1)
    for i in range(burn):
        x = henon(x, i)
    return x


def test_gd_quadratic_exact():
    r = ly.benettin(gd_quadratic, torch.tensor([1.0, -2.0], dtype=DT), 40, 2, transient=30)
    expected = torch.tensor([math.log(0.95), math.log(0.5)], dtype=DT)
    assert torch.allclose(r.exponents, expected, atol=1e-10, rtol=0)
    assert r.log_r.shape == (40, 2) and r.running.shape == (40, 2)
    assert r.trajectory.shape == (41, 2)
    assert torch.allclose(r.running[-1], r.exponents, atol=1e-14)
    # every increment is exact once the vectors are aligned
    assert torch.allclose(r.log_r, expected.expand(40, 2), atol=1e-10, rtol=0)


def test_qr_every_same_exponents():
    x0 = torch.tensor([1.0, -2.0], dtype=DT)
    r1 = ly.benettin(gd_quadratic, x0, 40, 2, transient=30)
    r5 = ly.benettin(gd_quadratic, x0, 40, 2, transient=30, qr_every=5)
    expected = torch.tensor([math.log(0.95), math.log(0.5)], dtype=DT)
    assert r5.log_r.shape == (8, 2)
    assert torch.allclose(r5.exponents, expected, atol=1e-10, rtol=0)
    # QR of a product = product of QRs: windowed FTLEs agree
    assert torch.allclose(ly.ftle(r1.log_r, 5), ly.ftle(r5.log_r, 1, qr_every=5), atol=1e-12)
    assert torch.isnan(r5.running[:4]).all()
    assert torch.equal(r5.running[5], r5.running[4])  # carried between QRs
    with pytest.raises(ValueError, match="qr_every"):
        ly.benettin(gd_quadratic, x0, 101, 2, qr_every=5)


def test_momentum_state_through_flat_vector():
    """Heavy ball (v <- beta v + g, w <- w - lr v): the state is (w, v), step counter static."""
    beta = 0.05
    x0, spec = ly.state_from_training(torch.tensor([1.0, -2.0], dtype=DT),
                                      (torch.zeros(2, dtype=DT), torch.tensor(0)))
    assert x0.shape == (4,) and spec.size == 4

    def F(x, t):
        w, (v, step) = ly.split(x, spec)
        g = grad(lambda u: 0.5 * (u * H * u).sum())(w)
        v = beta * v + g
        w = w - LR * v
        return ly.state_from_training(w, (v, step))[0]

    r = ly.benettin(F, x0, 40, 4, transient=30)
    mus = []
    for h in (1.0, 10.0):  # per Hessian eigenvalue h, the map of (w, v) is M
        M = torch.tensor([[1 - LR * h, -LR * beta], [h, beta]], dtype=DT)
        mus += torch.linalg.eigvals(M).abs().tolist()
    expected = torch.tensor(sorted([math.log(m) for m in mus], reverse=True), dtype=DT)
    assert torch.allclose(r.exponents, expected, atol=1e-10, rtol=0)


def test_state_roundtrip_and_jvp():
    w = torch.arange(5, dtype=DT)
    st = {"m": torch.ones(2, 3, dtype=DT), "v": (torch.full((4,), 2.0, dtype=DT), None),
          "step": torch.tensor(7)}
    x, spec = ly.state_from_training(w, st)
    assert x.shape == (5 + 6 + 4,)
    w2, st2 = ly.split(x, spec)
    assert torch.equal(w2, w) and torch.equal(st2["m"], st["m"]) and st2["v"][1] is None
    assert st2["step"] is st["step"]
    # split is differentiable: jvp of a function of the parts
    f = lambda z: (lambda p: p[0].sum() + p[1]["m"].sum())(ly.split(z, spec))  # noqa: E731
    _, dot = jvp(f, (x,), (torch.ones_like(x),))
    assert dot.item() == 11.0
    with pytest.raises(ValueError, match="lyapunov.state"):
        ly.split(x[:-1], spec)


def test_henon_spectrum_and_sum():
    X0 = henon_points(16)
    r = ly.benettin_batched(henon, X0, 1000, 2, transient=100, mode="jvp")
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
    rb = ly.benettin_batched(henon, X0, 60, 2, seed=3)  # jacobian mode
    rs = ly.benettin(henon, X0[0], 60, 2, seed=3)  # jvp mode
    rf = ly.full_spectrum(henon, X0[0], 60, seed=3)  # jacfwd
    assert torch.allclose(rs.log_r, rf.log_r, atol=1e-10)
    assert torch.allclose(rs.log_r, rb.log_r[0], atol=1e-10)
    assert torch.allclose(rs.exponents, rf.exponents, atol=1e-12)
    assert torch.allclose(rs.x, rb.x[0], atol=1e-12)


def test_batched_jacobian_and_ftle():
    X = henon_points(4)
    J, Y = ly.batched_jacobian(henon, X, 0)
    assert J.shape == (4, 2, 2)
    Jx = torch.stack([torch.stack([-2.8 * x[0], torch.ones((), dtype=DT)]) for x in X])
    assert torch.allclose(J[:, 0], Jx) and torch.allclose(J[:, 1, 0], torch.full((4,), 0.3,
                                                                                 dtype=DT))
    assert torch.allclose(Y, torch.stack([henon(x, 0) for x in X]))
    L = torch.arange(24, dtype=DT).reshape(2, 6, 2)
    f = ly.ftle(L, 4)
    assert f.shape == (2, 1, 2) and f[0, 0, 0].item() == (0 + 2 + 4 + 6) / 4


def _linear_map():
    P = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]], dtype=DT)
    P = P / P.norm(dim=0)
    lam = torch.tensor([2.0, -0.9, 0.3], dtype=DT)
    A = P @ torch.diag(lam) @ torch.linalg.inv(P)
    return A, P, lam


def test_clv_linear_map_eigenvectors():
    A, P, lam = _linear_map()
    F = lambda x, t: A @ x  # noqa: E731
    c = ly.clv(F, torch.zeros(3, dtype=DT), 120, transient=60, warmup_backward=60)
    assert c.V.shape == (61, 3, 3) and c.growth.shape == (61, 3)
    cos = (c.V * P.unsqueeze(0)).sum(-2).abs()  # |cos| between CLV j and eigenvector j
    assert (cos > 1 - 1e-8).all()
    assert torch.allclose(c.growth, lam.abs().log().expand(61, 3), atol=1e-10)
    assert torch.allclose(c.exponents, lam.abs().log(), atol=1e-10)
    # CLV angles equal the angles between the eigenvectors
    ang = ly.clv_angles(c.V)
    assert ang.shape == (61, 3, 3)
    ref = torch.arccos((P.T @ P).abs().clamp(max=1))
    assert torch.allclose(ang, ref.expand(61, 3, 3), atol=1e-7)
    # a bounded buffer (several backward sweeps) gives the same vectors
    c2 = ly.clv(F, torch.zeros(3, dtype=DT), 120, transient=60, warmup_backward=60,
                max_buffer=70, mode="jacobian")
    assert torch.allclose((c2.V * c.V).sum(-2).abs(), torch.ones(61, 3, dtype=DT), atol=1e-10)
    # the first k CLVs need only k vectors
    c1 = ly.clv(F, torch.zeros(3, dtype=DT), 120, k=2, transient=60, warmup_backward=60,
                times=[70, 80])
    assert c1.V.shape == (2, 3, 2)
    assert ((c1.V * P[:, :2]).sum(-2).abs() > 1 - 1e-8).all()
    with pytest.raises(ValueError, match="lyapunov.times"):
        ly.clv(F, torch.zeros(3, dtype=DT), 120, warmup_backward=60, times=[100])


def test_clv_henon_growth_matches_exponents():
    X0 = henon_points(4)
    c = ly.clv_batched(henon, X0, 500, transient=50, warmup_backward=100)
    assert c.V.shape == (4, 401, 2, 2) and c.growth.shape == (4, 401, 2)
    # CLV 1 is the first Benettin vector: identical increments
    assert torch.allclose(c.growth[..., 0], c.forward.log_r[:, :401, 0], atol=1e-10)
    # CLV growth rates and exponents over the same window differ only by the boundary
    # term log(sin angle_end / sin angle_start) / T
    fwd = c.forward.log_r[:, :401].mean(1)
    ang = ly.clv_angles(c.V)[..., 0, 1]  # (4, 401)
    boundary = (torch.sin(ang[:, -1]).log() - torch.sin(ang[:, 0]).log()) / 401
    # growth_t = log|J v_t|; sum over t telescopes to log|det| + log(sin end'/sin start)
    assert (c.exponents - fwd).abs().max() < 0.02
    assert (c.exponents.sum(-1) - fwd.sum(-1)).abs().max() < boundary.abs().max() + 0.01
    mean = c.exponents.mean(0)
    assert abs(mean[0].item() - HENON[0]) < 0.05 and abs(mean[1].item() - HENON[1]) < 0.05
    assert (ang > 0).all()
    # batched (jacobian) == single (jvp) for the first system
    cs = ly.clv(henon, X0[0], 500, transient=50, warmup_backward=100, times=range(50, 80))
    assert torch.allclose(cs.V, c.V[0, :30], atol=1e-8)


def test_clv_angles_near_tangency():
    e = 1e-9
    V = torch.tensor([[1.0, math.cos(e), 0.0], [0.0, math.sin(e), 1.0]], dtype=DT)
    ang = ly.clv_angles(V)
    assert abs(ang[0, 1].item() - e) < 1e-15 and abs(ang[0, 2].item() - math.pi / 2) < 1e-15
    assert torch.equal(ang, ang.T) and (ang.diagonal() == 0).all()


def test_qr_cholesky_equals_householder():
    g = torch.Generator().manual_seed(0)
    # a batch of small systems, one of them singular (falls back to Householder)
    A = torch.randn(50, 9, 9, generator=g, dtype=DT)
    A[7, :, 3] = A[7, :, 1]
    Qh, Rh = ly.qr_positive(A)
    Qc, Rc = ly.qr_cholesky(A)
    assert torch.allclose(Qc @ Rc, A, atol=1e-12)
    assert torch.allclose(Rc, Rh, atol=1e-10) and torch.allclose(Qc[:7], Qh[:7], atol=1e-10)
    assert (torch.diagonal(Rc, dim1=-2, dim2=-1) >= 0).all()
    # a tall float32 panel: orthonormal to float32 rounding, R as Householder's
    P = torch.randn(20000, 32, generator=g) * torch.logspace(0, 2, 32)
    Q, R = ly.qr_cholesky(P)
    assert Q.dtype == torch.float32
    assert (Q.T @ Q - torch.eye(32)).abs().max() < 1e-5
    assert torch.allclose(R, ly.qr_positive(P.double())[1].float(), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="lyapunov.qr"):
        ly.benettin(henon, henon_points(1)[0], 4, 2, qr="gram")


def test_cholesky_qr_and_qr_every_same_exponents_henon():
    """Known system (Henon): qr_every = 2 and CholeskyQR2 give the exponents of a QR every
    step (QR of a product = product of QRs), and the sum ln 0.3 per step stays exact."""
    x0 = henon_points(1)[0]
    r1 = ly.benettin(henon, x0, 2000, 2, transient=100)
    r2 = ly.benettin(henon, x0, 2000, 2, transient=100, qr_every=2, qr="cholesky")
    assert torch.allclose(r1.exponents, r2.exponents, atol=1e-10, rtol=0)
    assert abs(r2.exponents[0].item() - HENON[0]) < 0.02
    assert torch.allclose(r2.log_r.sum(-1), torch.full((1000,), 2 * math.log(0.3), dtype=DT), atol=1e-9)
    rb = ly.benettin_batched(henon, henon_points(3), 200, 2, qr="cholesky")
    rh = ly.benettin_batched(henon, henon_points(3), 200, 2)
    assert torch.allclose(rb.log_r, rh.log_r, atol=1e-10)


def test_custom_push_and_jacobian_fn():
    X0 = henon_points(3)

    def jac(X, t):
        J = torch.zeros(X.shape[0], 2, 2, dtype=DT)
        J[:, 0, 0], J[:, 0, 1], J[:, 1, 0] = -2 * 1.4 * X[:, 0], 1.0, 0.3
        return J, henon(X, t)

    ra = ly.benettin_batched(henon, X0, 50, 2, seed=1)
    rb = ly.benettin_batched(None, X0, 50, 2, seed=1, jacobian_fn=jac)
    assert torch.allclose(ra.log_r, rb.log_r, atol=1e-12)
    ca = ly.clv_batched(henon, X0, 60, 2, warmup_backward=20, seed=1)
    cb = ly.clv_batched(None, X0, 60, 2, warmup_backward=20, seed=1, jacobian_fn=jac, qr="cholesky")
    assert torch.allclose(ca.growth, cb.growth, atol=1e-9)
    rs = ly.benettin(None, X0[0], 50, 2, seed=1, push=lambda x, Q, t: (henon(x, t), jac(x[None], t)[0][0] @ Q))
    assert torch.allclose(rs.log_r, ra.log_r[0], atol=1e-12)


def test_batched_random_bases_are_independent_and_system_0_matches_a_single_run():
    """Each system of a batch gets its own random basis (a shared one makes basis-dependent
    early FTLEs / CLV angles identical across similar systems); system 0's is the unbatched
    call's, so a batch of one equals a single run."""
    Q = ly.random_orthonormal(9, 9, seed=3, batch=(50,))
    single = ly.random_orthonormal(9, 9, seed=3)
    assert torch.equal(Q[0], single)
    eye = torch.eye(9, dtype=torch.float64)
    assert (Q.mT @ Q - eye).abs().max() < 1e-12
    # pairwise different: no two systems share a basis
    flat = Q.reshape(50, -1)
    d = torch.cdist(flat, flat) + torch.eye(50, dtype=torch.float64) * 10
    assert d.min() > 0.1
