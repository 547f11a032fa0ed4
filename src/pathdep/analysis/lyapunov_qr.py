"""QR decompositions with a positive diagonal and seeded orthonormal bases, for Lyapunov spectra.

What it computes:

* :func:`qr_positive`: LAPACK's (Householder) reduced QR with the signs flipped so that
  ``R_ii >= 0`` (the convention under which ``log R_ii`` are the Benettin increments);
* :func:`qr_cholesky`: the same factorisation by CholeskyQR2 (Yamamoto et al., ETNA 44,
  306 (2015)), with a Householder fallback for ill-conditioned systems; :func:`qr_auto`
  picks the cheaper of the two by shape; :data:`QR_METHODS` / :func:`qr_method` name them;
* :func:`random_orthonormal` / :func:`batched_randn`: seeded random bases (and Gaussian
  starts), independent per system of a batch, system 0 equal to an unbatched draw.

How it was checked (tests/analysis/test_lyapunov_qr.py, float64): :func:`qr_cholesky` equals
the Householder QR (a batch of 9x9 systems with a singular one that falls back, and a
float32 79510-like tall panel); batched random bases are independent per system and
system 0 equals a single draw. Cost (bench/bench_lyapunov.py): CholeskyQR2 makes the QR of
a tall ``(D, 32)`` panel ~2x cheaper than LAPACK's Householder.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

__all__ = ["qr_positive", "qr_cholesky", "qr_auto", "QR_METHODS", "qr_method",
           "random_orthonormal", "batched_randn"]


def qr_positive(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduced QR decomposition with a positive diagonal of ``R``.

    Args:
        A: ``(..., D, k)`` with ``k <= D``.

    Returns:
        ``Q (..., D, k)`` with orthonormal columns and upper-triangular ``R (..., k, k)``
        with ``R_ii >= 0`` and ``Q R = A``: signs of ``Q`` columns and ``R`` rows are
        flipped where ``torch.linalg.qr`` returned a negative diagonal.
    """
    Q, R = torch.linalg.qr(A, mode="reduced")
    d = torch.diagonal(R, dim1=-2, dim2=-1)
    s = torch.where(d < 0, -torch.ones_like(d), torch.ones_like(d))
    return Q * s.unsqueeze(-2), R * s.unsqueeze(-1)


def _cholesky_pass(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One CholeskyQR pass: ``(M R^{-1}, R, info)`` with ``R^T R = M^T M`` (Cholesky in float64,
    the product in ``M``'s dtype; ``info != 0`` where the factorisation failed)."""
    G = (M.transpose(-1, -2) @ M).to(torch.float64)
    L, info = torch.linalg.cholesky_ex(G)
    R = L.transpose(-1, -2)
    eye = torch.eye(R.shape[-1], dtype=torch.float64, device=R.device)
    Rinv = torch.linalg.solve_triangular(R, eye.expand_as(R), upper=True)
    return M @ Rinv.to(M.dtype), R, info


def qr_cholesky(A: torch.Tensor, *, max_ratio: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`qr_positive` by CholeskyQR2, with Householder only where it is needed.

    Two passes of ``G = A^T A = R^T R``, ``Q = A R^{-1}``, ``R = R_2 R_1`` (Yamamoto et al.,
    ETNA 44, 306 (2015)): the big products (``A^T A`` and ``A R^{-1}``, ``~8 D k^2`` flops
    in all) are GEMMs in ``A``'s dtype; only the ``k x k`` Cholesky factorisations and
    triangular inverses are done in float64. On a tall ``(D, k)`` panel this replaces
    LAPACK's level-2-heavy Householder QR; on a batch of small systems it is a few batched
    calls. CholeskyQR2 is orthogonal to rounding while ``cond(A)^2 eps`` stays well below
    1; systems whose first Cholesky fails or whose ``max R_ii / min R_ii`` (a lower bound
    of ``cond(A)``) exceeds ``max_ratio`` (default ``0.1 / sqrt(eps)``: 290 in float32,
    6.7e6 in float64) are redone by :func:`qr_positive` (Householder, in float64 for a
    float32 input).

    Args:
        A: ``(..., D, k)`` with ``k <= D``.
        max_ratio: diagonal ratio above which a system falls back to Householder.

    Returns:
        ``(Q, R)`` as :func:`qr_positive` (positive diagonal, equal to it to rounding).
    """
    dt = A.dtype
    if max_ratio is None:
        max_ratio = 0.1 / math.sqrt(torch.finfo(dt).eps)
    Q1, R1, info = _cholesky_pass(A)
    d = torch.diagonal(R1, dim1=-2, dim2=-1)
    bad = (info != 0) | ~(d.amax(-1) <= max_ratio * d.amin(-1))
    any_bad = bool(bad.any())
    if any_bad:
        if bad.dim() == 0:
            Q, R = qr_positive(A.to(torch.float64))
            return Q.to(dt), R.to(dt)
        Q1 = torch.where(bad[..., None, None], torch.zeros_like(Q1), Q1)
        Q1[bad] = torch.eye(*Q1.shape[-2:], dtype=dt, device=Q1.device)
    Q, R2, info2 = _cholesky_pass(Q1)
    R = R2 @ R1
    bad = bad | (info2 != 0)
    if bool(bad.any()):
        if bad.dim() == 0:
            Q, R = qr_positive(A.to(torch.float64))
            return Q.to(dt), R.to(dt)
        Qh, Rh = qr_positive(A[bad].to(torch.float64))
        Q, R = Q.clone(), R.clone()
        Q[bad], R[bad] = Qh.to(dt), Rh
    return Q, R.to(dt)


def qr_auto(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`qr_cholesky` for tall panels with ``k >= 16`` columns (where it measured
    ~1.5x cheaper than LAPACK at k = 32), :func:`qr_positive` otherwise (LAPACK was ~3x
    cheaper at k = 8 and for batches of 9x9; bench/bench_lyapunov.py)."""
    if A.shape[-1] >= 16 and A.shape[-2] >= 1024:
        return qr_cholesky(A)
    return qr_positive(A)


QR_METHODS = {"householder": qr_positive, "cholesky": qr_cholesky, "auto": qr_auto}


def qr_method(qr: str) -> Callable:
    """The QR function named ``qr`` (a key of :data:`QR_METHODS`).

    Raises:
        ValueError: ``lyapunov.qr: ...`` for an unknown name.
    """
    if qr not in QR_METHODS:
        raise ValueError(f"lyapunov.qr: expected one of {sorted(QR_METHODS)}, got {qr!r}")
    return QR_METHODS[qr]


def random_orthonormal(D: int, k: int, *, seed: int = 0, batch: Sequence[int] = (),
                       dtype: torch.dtype = torch.float64,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """Random ``(*batch, D, k)`` orthonormal columns (QR of a seeded Gaussian, on CPU),
    independent between the systems of a batch; system 0 gets the basis of an unbatched
    call with the same seed."""
    if k < 1 or k > D:
        raise ValueError(f"lyapunov.k: expected 1 <= k <= D = {D}, got {k}")
    g = torch.Generator().manual_seed(int(seed))
    return qr_positive(batched_randn(batch, (D, k), g, dtype))[0].to(device)


def batched_randn(batch: Sequence[int], shape: Sequence[int], g: torch.Generator,
           dtype: torch.dtype) -> torch.Tensor:
    """Seeded Gaussians of shape ``(*batch, *shape)``, independent for every system of ``batch``; system 0 gets the
    numbers of a single run (drawn first, alone: torch draws large tensors by a different
    algorithm), the others come from ONE further draw (a draw per system cost ~10 us a
    system, ~1 us per network-step of the 2-2-1 study).

    Independent draws matter: with one basis shared by all systems, the early FTLEs and
    CLV angles of structurally similar networks (e.g. dead ReLU units) take the same
    basis-dependent values, which a classifier then reads as a signal."""
    first = torch.randn(*shape, generator=g, dtype=dtype)
    n = 1
    for b in batch:
        n *= int(b)
    if not batch:
        return first
    rest = torch.randn(n - 1, *shape, generator=g, dtype=dtype)
    return torch.cat([first.unsqueeze(0), rest]).reshape(*batch, *shape)
