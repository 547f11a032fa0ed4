"""Known answers for pathdep.analysis.lyapunov_clv (float64): the CLVs of a constant
non-normal linear map are its eigenvectors, the Henon map's mean CLV growth rates are its
exponents, angles near tangency, a closed-form Jacobian equals the jacfwd path."""

import math

import pytest
import torch
from lyapunov_maps import DT, HENON, henon, henon_jacobian, henon_points

from pathdep.analysis.lyapunov_clv import clv, clv_angles, clv_batched


def _linear_map():
    P = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]], dtype=DT)
    P = P / P.norm(dim=0)
    lam = torch.tensor([2.0, -0.9, 0.3], dtype=DT)
    A = P @ torch.diag(lam) @ torch.linalg.inv(P)
    return A, P, lam


def test_clv_linear_map_eigenvectors():
    A, P, lam = _linear_map()
    F = lambda x, t: A @ x  # noqa: E731
    c = clv(F, torch.zeros(3, dtype=DT), 120, transient=60, warmup_backward=60)
    assert c.V.shape == (61, 3, 3) and c.growth.shape == (61, 3)
    cos = (c.V * P.unsqueeze(0)).sum(-2).abs()  # |cos| between CLV j and eigenvector j
    assert (cos > 1 - 1e-8).all()
    assert torch.allclose(c.growth, lam.abs().log().expand(61, 3), atol=1e-10)
    assert torch.allclose(c.exponents, lam.abs().log(), atol=1e-10)
    # CLV angles equal the angles between the eigenvectors
    ang = clv_angles(c.V)
    assert ang.shape == (61, 3, 3)
    ref = torch.arccos((P.T @ P).abs().clamp(max=1))
    assert torch.allclose(ang, ref.expand(61, 3, 3), atol=1e-7)
    # a bounded buffer (several backward sweeps) gives the same vectors
    c2 = clv(F, torch.zeros(3, dtype=DT), 120, transient=60, warmup_backward=60,
                max_buffer=70, mode="jacobian")
    assert torch.allclose((c2.V * c.V).sum(-2).abs(), torch.ones(61, 3, dtype=DT), atol=1e-10)
    # the first k CLVs need only k vectors
    c1 = clv(F, torch.zeros(3, dtype=DT), 120, k=2, transient=60, warmup_backward=60,
                times=[70, 80])
    assert c1.V.shape == (2, 3, 2)
    assert ((c1.V * P[:, :2]).sum(-2).abs() > 1 - 1e-8).all()
    with pytest.raises(ValueError, match="lyapunov.times"):
        clv(F, torch.zeros(3, dtype=DT), 120, warmup_backward=60, times=[100])


def test_clv_henon_growth_matches_exponents():
    X0 = henon_points(4)
    c = clv_batched(henon, X0, 500, transient=50, warmup_backward=100)
    assert c.V.shape == (4, 401, 2, 2) and c.growth.shape == (4, 401, 2)
    # CLV 1 is the first Benettin vector: identical increments
    assert torch.allclose(c.growth[..., 0], c.forward.log_r[:, :401, 0], atol=1e-10)
    # CLV growth rates and exponents over the same window differ only by the boundary
    # term log(sin angle_end / sin angle_start) / T
    fwd = c.forward.log_r[:, :401].mean(1)
    ang = clv_angles(c.V)[..., 0, 1]  # (4, 401)
    boundary = (torch.sin(ang[:, -1]).log() - torch.sin(ang[:, 0]).log()) / 401
    # growth_t = log|J v_t|; sum over t telescopes to log|det| + log(sin end'/sin start)
    assert (c.exponents - fwd).abs().max() < 0.02
    assert (c.exponents.sum(-1) - fwd.sum(-1)).abs().max() < boundary.abs().max() + 0.01
    mean = c.exponents.mean(0)
    assert abs(mean[0].item() - HENON[0]) < 0.05 and abs(mean[1].item() - HENON[1]) < 0.05
    assert (ang > 0).all()
    # batched (jacobian) == single (jvp) for the first system
    cs = clv(henon, X0[0], 500, transient=50, warmup_backward=100, times=range(50, 80))
    assert torch.allclose(cs.V, c.V[0, :30], atol=1e-8)


def test_clv_angles_near_tangency():
    e = 1e-9
    V = torch.tensor([[1.0, math.cos(e), 0.0], [0.0, math.sin(e), 1.0]], dtype=DT)
    ang = clv_angles(V)
    assert abs(ang[0, 1].item() - e) < 1e-15 and abs(ang[0, 2].item() - math.pi / 2) < 1e-15
    assert torch.equal(ang, ang.T) and (ang.diagonal() == 0).all()


def test_closed_form_jacobian_equals_jacfwd():
    X0 = henon_points(3)
    ca = clv_batched(henon, X0, 60, 2, warmup_backward=20, seed=1)
    cb = clv_batched(None, X0, 60, 2, warmup_backward=20, seed=1, jacobian_fn=henon_jacobian, qr="cholesky")
    assert torch.allclose(ca.growth, cb.growth, atol=1e-9)
