"""pathdep.analysis.lyapunov_qr: CholeskyQR2 equals the Householder QR (with a fallback for
a singular system), unknown QR names are refused, batched random bases are independent."""

import pytest
import torch
from lyapunov_maps import DT, henon, henon_points

from pathdep.analysis.lyapunov_benettin import benettin
from pathdep.analysis.lyapunov_qr import qr_cholesky, qr_positive, random_orthonormal


def test_qr_cholesky_equals_householder():
    g = torch.Generator().manual_seed(0)
    # a batch of small systems, one of them singular (falls back to Householder)
    A = torch.randn(50, 9, 9, generator=g, dtype=DT)
    A[7, :, 3] = A[7, :, 1]
    Qh, Rh = qr_positive(A)
    Qc, Rc = qr_cholesky(A)
    assert torch.allclose(Qc @ Rc, A, atol=1e-12)
    assert torch.allclose(Rc, Rh, atol=1e-10) and torch.allclose(Qc[:7], Qh[:7], atol=1e-10)
    assert (torch.diagonal(Rc, dim1=-2, dim2=-1) >= 0).all()
    # a tall float32 panel: orthonormal to float32 rounding, R as Householder's
    P = torch.randn(20000, 32, generator=g) * torch.logspace(0, 2, 32)
    Q, R = qr_cholesky(P)
    assert Q.dtype == torch.float32
    assert (Q.T @ Q - torch.eye(32)).abs().max() < 1e-5
    assert torch.allclose(R, qr_positive(P.double())[1].float(), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="lyapunov.qr"):
        benettin(henon, henon_points(1)[0], 4, 2, qr="gram")


def test_batched_random_bases_are_independent_and_system_0_matches_a_single_run():
    """Each system of a batch gets its own random basis (a shared one makes basis-dependent
    early FTLEs / CLV angles identical across similar systems); system 0's is the unbatched
    call's, so a batch of one equals a single run."""
    Q = random_orthonormal(9, 9, seed=3, batch=(50,))
    single = random_orthonormal(9, 9, seed=3)
    assert torch.equal(Q[0], single)
    eye = torch.eye(9, dtype=torch.float64)
    assert (Q.mT @ Q - eye).abs().max() < 1e-12
    # pairwise different: no two systems share a basis
    flat = Q.reshape(50, -1)
    d = torch.cdist(flat, flat) + torch.eye(50, dtype=torch.float64) * 10
    assert d.min() > 0.1
