"""Lyapunov spectra, finite-time exponents and covariant Lyapunov vectors of a discrete map.

What it computes: for a map ``F(x, t) -> x_next`` on a flat state ``x`` of shape ``(D,)``
(``t`` is the step index, so a batch schedule can enter: the caller closes over the batch
of step ``t``), the tangent dynamics ``J_t = dF/dx (x_t, t)`` along the trajectory and

* the leading ``k`` Lyapunov exponents by Benettin's method (Benettin, Galgani, Giorgilli,
  Strelcyn, Meccanica 15, 9 (1980)): push ``k`` orthonormal tangent vectors with
  ``torch.func.jvp`` (vmapped over the vectors), re-orthonormalise by a QR decomposition
  with positive diagonal every ``qr_every`` steps and accumulate ``log R_ii``
  (:func:`benettin`); the same with the full Jacobian from ``torch.func.jacfwd``
  (:func:`full_spectrum`); and for ``B`` independent small systems at once, with vmapped
  ``jacfwd`` Jacobians ``(B, D, D)`` and batched QR (:func:`benettin_batched`);
* finite-time Lyapunov exponents over windows (:func:`ftle`);
* covariant Lyapunov vectors (CLVs) by the dynamical algorithm of Ginelli et al.,
  PRL 99, 130601 (2007) (:func:`clv`, :func:`clv_batched`): the forward (Benettin) pass
  stores ``R_t`` (and ``Q_t`` at the requested times), a backward pass iterates the
  upper-triangular ``C_{t-1} = R_t^{-1} C_t`` with normalised columns from a random start
  ``warmup_backward`` steps in the future, and the CLVs are ``V_t = Q_t C_t``; their local
  growth rates are ``log |J_t v_t|`` and :func:`clv_angles` gives the angles between pairs.

For a training run the map is the optimizer update (DESIGN invariant 2) on the
*dynamical state* (weights plus optimizer buffers); :func:`state_from_training` and
:func:`split` turn ``(w, opt_state)`` into one flat vector and back.

Conventions: ``x_0 = x0`` at ``t = 0``; step ``t`` maps ``x_t -> x_{t+1} = F(x_t, t)``;
the QR after step ``t`` gives ``J_t Q_t = Q_{t+1} R_{t+1}``. Exponents are per step
(natural log). ``transient`` steps (``t = 0 .. transient-1``) align the tangent vectors
without being accumulated. A zero ``R_ii`` (an exactly singular tangent map) is clamped to
the smallest positive float so logs stay finite (about -708 in float64).

How it was checked (tests/test_lyapunov.py, float64): gradient descent on
``1/2 w^T H w`` with ``H = diag(1, 10)`` and lr 0.05 gives exactly ``(log 0.95, log 0.5)``
(1e-10), also with ``qr_every=5``; the Henon map (a=1.4, b=0.3) gives about
``(0.4193, -1.6233)`` with sum ``ln 0.3`` (1e-6); ``benettin`` with ``k = D`` equals
``full_spectrum`` and the batched variant equals the single one; the CLVs of a constant
non-normal linear map are its eigenvectors with growth rates ``log |eigenvalue|``; the
mean CLV growth rates of the Henon map equal its exponents; :func:`qr_cholesky` equals
the Householder QR (batched 9x9 with a singular system that falls back, and a float32
79510-like tall panel); on the Henon map ``qr_every=2`` with CholeskyQR2 gives the
exponents of a QR every step (1e-10); a closed-form ``jacobian_fn`` / custom ``push``
equals the jacfwd / jvp path.

Cost (bench/bench_lyapunov.py): ``push`` replaces the vmapped jvps, e.g. by the
hand-written Hessian-vector products of :func:`pathdep.core.fast.make_tangent_push` (what
the lyapunov stage uses for MLPs: ~2.5x cheaper than the jvp at k = 8); ``qr="cholesky"``
makes the QR of a tall ``(D, 32)`` panel ~2x cheaper than LAPACK's Householder;
``qr_every > 1`` divides the QR cost (exponents unchanged while the tangent vectors stay
representable); for many small systems, ``push_qr`` (a fused step + QR) and ``solve``
(the backward step) let compiled kernels replace the batched torch calls
(:mod:`pathdep.analysis.study_kernels`). Batched random starts (the initial basis and
Ginelli's backward ``C``) are independent per system, drawn in two calls (system 0 alone,
so it gets the numbers of a single run with the same seed, then all others at once).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.utils._pytree as pytree
from torch.func import jacfwd, jvp, vmap

Map = Callable[[torch.Tensor, int], torch.Tensor]

__all__ = [
    "LyapunovResult", "CLVResult", "StateSpec", "benettin", "benettin_batched",
    "full_spectrum", "ftle", "clv", "clv_batched", "clv_angles", "qr_positive",
    "jacobian", "batched_jacobian", "random_orthonormal", "state_from_training", "split",
    "qr_cholesky", "qr_auto", "QR_METHODS", "solve_normalize",
]


# --------------------------------------------------------------------------- results


@dataclass
class LyapunovResult:
    """Output of a Benettin run (shapes for one system; a batch adds a leading ``B``).

    Attributes:
        exponents: ``(k,)`` Lyapunov exponents per step, ``sum(log_r) / steps``.
        running: ``(steps, k)`` running averages after each step (None if not asked
            for); between QRs
            (``qr_every > 1``) the value of the last QR is carried, and rows before
            the first QR are NaN.
        log_r: ``(steps // qr_every, k)`` the increments ``log R_ii`` of each QR (each
            covers ``qr_every`` steps); :func:`ftle` turns them into FTLEs.
        qr_every: steps between QRs.
        steps: accumulated steps (after the transient).
        x: ``(D,)`` the final state.
        Q: ``(D, k)`` the final orthonormal tangent basis (backward Lyapunov vectors).
        trajectory: ``(steps + 1, D)`` states ``x_transient .. x_end`` if ``record``.
        observed: ``observe(x_t, t)`` for ``t = transient .. end``, stacked along a new
            leading axis, if ``observe`` was given.
    """

    exponents: torch.Tensor
    running: torch.Tensor | None
    log_r: torch.Tensor
    qr_every: int
    steps: int
    x: torch.Tensor
    Q: torch.Tensor
    trajectory: torch.Tensor | None = None
    observed: torch.Tensor | None = None


@dataclass
class CLVResult:
    """Covariant Lyapunov vectors at selected times (one system; a batch adds ``B``).

    Attributes:
        times: ``(n,)`` step indices ``t`` at which the CLVs were taken.
        V: ``(n, D, k)`` unit CLVs ``v_t^1 .. v_t^k`` as columns, ordered like the
            exponents (most expanding first); the sign of each column is arbitrary.
        growth: ``(n, k)`` local growth rates ``log |J_t v_t^j|`` of step ``t -> t+1``.
        exponents: ``(k,)`` mean of ``growth`` over the times (equals the Lyapunov
            exponents for a long run of consecutive times).
        forward: the Benettin result of the forward pass (its ``log_r`` covers steps
            ``t = transient .. transient + steps - 1``).
    """

    times: torch.Tensor
    V: torch.Tensor
    growth: torch.Tensor
    exponents: torch.Tensor
    forward: LyapunovResult


# --------------------------------------------------------------------------- primitives


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

    def chol_pass(M):
        G = (M.transpose(-1, -2) @ M).to(torch.float64)
        L, info = torch.linalg.cholesky_ex(G)
        R = L.transpose(-1, -2)
        eye = torch.eye(R.shape[-1], dtype=torch.float64, device=R.device)
        Rinv = torch.linalg.solve_triangular(R, eye.expand_as(R), upper=True)
        return M @ Rinv.to(dt), R, info

    Q1, R1, info = chol_pass(A)
    d = torch.diagonal(R1, dim1=-2, dim2=-1)
    bad = (info != 0) | ~(d.amax(-1) <= max_ratio * d.amin(-1))
    any_bad = bool(bad.any())
    if any_bad:
        if bad.dim() == 0:
            Q, R = qr_positive(A.to(torch.float64))
            return Q.to(dt), R.to(dt)
        Q1 = torch.where(bad[..., None, None], torch.zeros_like(Q1), Q1)
        Q1[bad] = torch.eye(*Q1.shape[-2:], dtype=dt, device=Q1.device)
    Q, R2, info2 = chol_pass(Q1)
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


def _qr_fn(qr: str):
    if qr not in QR_METHODS:
        raise ValueError(f"lyapunov.qr: expected one of {sorted(QR_METHODS)}, got {qr!r}")
    return QR_METHODS[qr]


def _log_diag(R: torch.Tensor) -> torch.Tensor:
    d = torch.diagonal(R, dim1=-2, dim2=-1)
    return torch.log(d.clamp_min(torch.finfo(R.dtype).tiny))


def random_orthonormal(D: int, k: int, *, seed: int = 0, batch: Sequence[int] = (),
                       dtype: torch.dtype = torch.float64,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """Random ``(*batch, D, k)`` orthonormal columns (QR of a seeded Gaussian, on CPU),
    independent between the systems of a batch; system 0 gets the basis of an unbatched
    call with the same seed."""
    if k < 1 or k > D:
        raise ValueError(f"lyapunov.k: expected 1 <= k <= D = {D}, got {k}")
    g = torch.Generator().manual_seed(int(seed))
    return qr_positive(_randn(batch, (D, k), g, dtype))[0].to(device)


def _randn(batch: Sequence[int], shape: Sequence[int], g: torch.Generator,
           dtype: torch.dtype) -> torch.Tensor:
    """Seeded Gaussians, independent for every system of ``batch``; system 0 gets the
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


def jacobian(F: Map, x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobian of ``F(., t)`` at ``x`` by forward mode.

    Args:
        F: the map ``F(x, t) -> x_next`` on ``(D,)`` states.
        x: ``(D,)``.
        t: step index.

    Returns:
        ``(J, y)``: ``J (D, D)`` with ``J[i, j] = d y_i / d x_j`` and ``y = F(x, t) (D,)``.
    """
    def f(z):
        y = F(z, t)
        return y, y

    return jacfwd(f, has_aux=True)(x)


def batched_jacobian(F: Map, X: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`jacobian` of ``B`` independent systems at once (``vmap`` of ``jacfwd``).

    Args:
        F: the map of ONE system, ``F(x (D,), t) -> (D,)``.
        X: ``(B, D)`` states.
        t: step index (shared).

    Returns:
        ``(J (B, D, D), Y (B, D))``.
    """
    return vmap(lambda z: jacobian(F, z, t))(X)


def _push_jvp(F: Map):
    """``push(x (D,), Q (D, k), t) -> (F(x, t), J_t Q)`` by ``k`` vmapped jvps."""
    def push(x, Q, t):
        f = lambda z: F(z, t)  # noqa: E731
        # out_dims=0 for the primal (not None): nested in an outer vmap some maps return
        # it batched over the tangents; it is the same in every slice (an expand)
        y, JQ = vmap(lambda v: jvp(f, (x,), (v,)), in_dims=1, out_dims=(0, 1))(Q)
        return y[0], JQ
    return push


def _push_jac(F: Map):
    """``push(x (D,), Q (D, k), t) -> (F(x, t), J_t Q)`` through the full Jacobian."""
    def push(x, Q, t):
        J, y = jacobian(F, x, t)
        return y, J @ Q
    return push


def _batch(push):
    return vmap(push, in_dims=(0, 0, None))


# --------------------------------------------------------------------------- forward pass


def _advance(push, qr_fn, push_qr):
    """``advance(x, Q, t, do_qr) -> (x', Q', R or None)``: one step, then a QR if asked,
    through the fused ``push_qr(x, Q, t) -> (x', Q', R)`` when there is one."""
    def advance(x, Q, t, do_qr):
        if do_qr and push_qr is not None:
            return push_qr(x, Q, t)
        x, Q = push(x, Q, t)
        if do_qr:
            Q, R = qr_fn(Q)
            return x, Q, R
        return x, Q, None
    return advance


def _forward(push, x: torch.Tensor, Q: torch.Tensor, *, steps: int, transient: int,
             qr_every: int, record: bool, observe, on_qr=None,
             running: bool = True, qr_fn=qr_positive, push_qr=None) -> LyapunovResult:
    """The Benettin loop shared by every public function; leading batch axes pass through.

    ``on_qr(t, Q_t, R_t)`` is called after each accumulated QR (``t`` = time of ``Q``);
    ``push_qr`` (optional) fuses a step and its QR.
    """
    advance = _advance(push, qr_fn, push_qr)
    if steps < 1:
        raise ValueError(f"lyapunov.steps: expected >= 1, got {steps}")
    if qr_every < 1 or steps % qr_every or transient % qr_every:
        raise ValueError(f"lyapunov.qr_every: expected a positive divisor of steps ({steps}) "
                         f"and transient ({transient}), got {qr_every}")
    t = 0
    for _ in range(transient):
        x, Q, _ = advance(x, Q, t, (t + 1) % qr_every == 0)
        t += 1
    traj = [x] if record else None
    obs = [observe(x, t)] if observe is not None else None
    n_qr = steps // qr_every
    L = None  # (..., n_qr, k), allocated at the first QR (no list + stack copy)
    for i in range(steps):
        x, Q, R = advance(x, Q, t, (i + 1) % qr_every == 0)
        t += 1
        if R is not None:
            lr_ = _log_diag(R)
            if L is None:
                L = lr_.new_empty(*lr_.shape[:-1], n_qr, lr_.shape[-1])
            L[..., (i + 1) // qr_every - 1, :] = lr_
            if on_qr is not None:
                on_qr(t, Q, R)
        if record:
            traj.append(x)
        if obs is not None:
            obs.append(observe(x, t))
    exponents = L.sum(dim=-2) / (n_qr * qr_every)
    run = None
    if running:
        csum = torch.cumsum(L, dim=-2)
        elapsed = torch.arange(1, n_qr + 1, dtype=L.dtype, device=L.device) * qr_every
        at_qr = csum / elapsed.unsqueeze(-1)
        # running[..., s, :] = value at the last QR at or before step s (0-based)
        j = (torch.arange(steps, device=L.device) + 1) // qr_every - 1
        run = at_qr.index_select(-2, j.clamp_min(0))
        run = torch.where((j >= 0).unsqueeze(-1), run, torch.full_like(run, float("nan")))
    return LyapunovResult(
        exponents=exponents, running=run, log_r=L,
        qr_every=qr_every, steps=steps, x=x, Q=Q,
        trajectory=torch.stack(traj, dim=-2) if record else None,
        observed=torch.stack(obs, dim=0) if obs is not None else None)


def benettin(F: Map, x0: torch.Tensor, steps: int, k: int, *, qr_every: int = 1,
             transient: int = 0, seed: int = 0, record: bool = True,
             observe: Callable[[torch.Tensor, int], Any] | None = None,
             running: bool = True, qr: str = "householder",
             push: Callable | None = None) -> LyapunovResult:
    """Leading ``k`` Lyapunov exponents of ``F`` by Benettin's method with jvp tangents.

    Each step pushes the ``k`` tangent vectors through ``torch.func.jvp`` (vmapped over
    the vectors, one primal evaluation); every ``qr_every`` steps they are
    re-orthonormalised by :func:`qr_positive` and ``log R_ii`` is accumulated.

    Args:
        F: ``F(x (D,), t) -> (D,)``, pure and differentiable (jvp-safe).
        x0: ``(D,)`` initial state at ``t = 0``.
        steps: accumulated steps after the transient (a multiple of ``qr_every``).
        k: number of exponents, ``1 <= k <= D``.
        qr_every: steps between QRs (the vectors are not normalised in between).
        transient: steps run first (``t = 0 .. transient-1``) to align the vectors.
        seed: seed of the random initial orthonormal basis.
        record: keep the trajectory ``(steps + 1, D)``.
        observe: optional ``observe(x, t)`` evaluated at every accumulated time.
        running: compute the running averages (``(steps, k)`` memory; else None).
        qr: ``"householder"`` (:func:`qr_positive`, LAPACK), ``"cholesky"``
            (:func:`qr_cholesky`: CholeskyQR2, cheaper on tall ``(D, k)`` panels with many
            columns) or ``"auto"`` (:func:`qr_auto`: the cheaper of the two by shape).
        push: optional ``push(x (D,), Q (D, k), t) -> (F(x, t), J_t Q)`` replacing the
            vmapped jvps (e.g. explicit batched Hessian-vector products,
            :func:`pathdep.core.fast.make_tangent_push`); ``F`` is then unused.

    Returns:
        :class:`LyapunovResult` with ``exponents (k,)``, ``running (steps, k)``,
        ``log_r (steps // qr_every, k)``.
    """
    Q0 = random_orthonormal(x0.shape[-1], k, seed=seed, dtype=x0.dtype, device=x0.device)
    return _forward(push or _push_jvp(F), x0, Q0, steps=steps, transient=transient,
                    qr_every=qr_every, record=record, observe=observe, running=running,
                    qr_fn=_qr_fn(qr))


def full_spectrum(F: Map, x0: torch.Tensor, steps: int, *, qr_every: int = 1,
                  transient: int = 0, seed: int = 0, record: bool = True,
                  observe: Callable[[torch.Tensor, int], Any] | None = None,
                  running: bool = True) -> LyapunovResult:
    """All ``D`` exponents from the full Jacobian (``torch.func.jacfwd``) of every step.

    Same accumulation as :func:`benettin` (and the same random initial basis for the same
    ``seed``, so ``benettin(..., k=D)`` agrees to rounding); meant for tiny networks.

    Args:
        F, x0, steps, qr_every, transient, seed, record, observe, running: as in
            :func:`benettin`.

    Returns:
        :class:`LyapunovResult` with ``k = D``.
    """
    D = x0.shape[-1]
    Q0 = random_orthonormal(D, D, seed=seed, dtype=x0.dtype, device=x0.device)
    return _forward(_push_jac(F), x0, Q0, steps=steps, transient=transient,
                    qr_every=qr_every, record=record, observe=observe, running=running)


def benettin_batched(F: Map, X0: torch.Tensor, steps: int, k: int | None = None, *,
                     qr_every: int = 1, transient: int = 0, seed: int = 0,
                     record: bool = False, mode: str = "jacobian",
                     observe: Callable[[torch.Tensor, int], Any] | None = None,
                     running: bool = True, qr: str = "householder",
                     jacobian_fn: Callable | None = None) -> LyapunovResult:
    """Benettin for ``B`` independent systems sharing the map ``F`` (vmapped over ``B``).

    With ``mode="jacobian"`` every step forms the ``(B, D, D)`` Jacobians by vmapped
    ``jacfwd`` and multiplies the ``(B, D, k)`` tangent bases; ``mode="jvp"`` pushes
    vmapped jvps instead (cheaper when ``k << D``). QRs are batched.

    Args:
        F: the map of ONE system, ``F(x (D,), t) -> (D,)``.
        X0: ``(B, D)`` initial states.
        steps, qr_every, transient, seed, record, running: as in :func:`benettin`.
        k: exponents per system (default ``D``).
        mode: ``"jacobian"`` or ``"jvp"``.
        observe: optional ``observe(X (B, D), t)`` (batched) at every accumulated time.
        qr: ``"householder"`` or ``"cholesky"`` (see :func:`benettin`).
        jacobian_fn: optional batched ``jacobian_fn(X (B, D), t) -> (J (B, D, D),
            F(X) (B, D))`` (e.g. a closed form) replacing vmapped ``jacfwd``.

    Returns:
        :class:`LyapunovResult` with a leading ``B``: ``exponents (B, k)``,
        ``running (B, steps, k)``, ``log_r (B, steps // qr_every, k)``, ``x (B, D)``,
        ``trajectory (B, steps + 1, D)``; ``observed`` is stacked time-first.
    """
    B, D = X0.shape
    k = D if k is None else k
    Q0 = random_orthonormal(D, k, seed=seed, batch=(B,), dtype=X0.dtype, device=X0.device)
    return _forward(_batched_pusher(F, mode, jacobian_fn), X0, Q0, steps=steps,
                    transient=transient, qr_every=qr_every, record=record, observe=observe,
                    running=running, qr_fn=_qr_fn(qr))


def _batched_pusher(F, mode, jacobian_fn):
    if jacobian_fn is None:
        return _batch(_pusher(F, mode))

    def push(X, Q, t):
        J, Y = jacobian_fn(X, t)
        return Y, J @ Q
    return push


def _pusher(F, mode):
    if mode == "jacobian":
        return _push_jac(F)
    if mode == "jvp":
        return _push_jvp(F)
    raise ValueError(f"lyapunov.mode: expected 'jacobian' or 'jvp', got {mode!r}")


def ftle(log_r: torch.Tensor, window: int, *, qr_every: int = 1) -> torch.Tensor:
    """Finite-time Lyapunov exponents over consecutive non-overlapping windows.

    Args:
        log_r: ``(..., n, k)`` QR increments (``LyapunovResult.log_r``).
        window: window length in QR intervals (``window * qr_every`` steps).
        qr_every: steps per QR interval.

    Returns:
        ``(..., n // window, k)`` exponents per step in each window; a trailing partial
        window is dropped.
    """
    n = log_r.shape[-2]
    if window < 1 or window > n:
        raise ValueError(f"lyapunov.window: expected 1 <= window <= {n}, got {window}")
    m = n // window
    L = log_r[..., : m * window, :]
    L = L.reshape(*L.shape[:-2], m, window, L.shape[-1])
    return L.sum(dim=-2) / (window * qr_every)


# --------------------------------------------------------------------------- CLVs


def clv_angles(V: torch.Tensor) -> torch.Tensor:
    """Principal angles between every pair of CLVs, in ``[0, pi/2]``.

    Uses ``atan2(|v_i - (v_i.v_j) v_j|, |v_i.v_j|)``, which stays accurate near
    tangency (where ``arccos |cos|`` loses half the digits).

    Args:
        V: ``(..., D, k)`` unit vectors as columns (e.g. ``(T, D, k)``).

    Returns:
        ``(..., k, k)`` symmetric angles with a zero diagonal.
    """
    Vn = V / V.norm(dim=-2, keepdim=True)
    c = Vn.transpose(-1, -2) @ Vn  # (..., k, k)
    resid = Vn.unsqueeze(-1) - Vn.unsqueeze(-2) * c.unsqueeze(-3)  # (..., D, k_i, k_j)
    s = resid.norm(dim=-3)
    return torch.atan2(s, c.abs())


def solve_normalize(R: torch.Tensor, C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One backward step of Ginelli's method: ``R^{-1} C`` with unit columns.

    Args:
        R: ``(..., k, k)`` upper triangular with a nonzero diagonal.
        C: ``(..., k, k)``.

    Returns:
        ``(C' (..., k, k), n (..., k))``: the normalised columns and the norms of the
        columns of ``R^{-1} C``.
    """
    C = torch.linalg.solve_triangular(R, C, upper=True)
    n = C.norm(dim=-2, keepdim=True)  # (..., 1, k)
    return C / n, n.squeeze(-2)


def _clv(push, x0, Q0, steps, *, times, transient, warmup_backward, seed, max_buffer,
         observe, running, qr_fn=qr_positive, solve_fn=solve_normalize,
         push_qr=None) -> CLVResult:
    T_end = transient + steps
    last = T_end - warmup_backward
    if warmup_backward < 1:
        raise ValueError(f"lyapunov.warmup_backward: expected >= 1, got {warmup_backward}")
    if last < transient:
        raise ValueError(f"lyapunov.steps: expected steps ({steps}) >= warmup_backward "
                         f"({warmup_backward})")
    if times is None:
        times = list(range(transient, last + 1))
    times = sorted({int(t) for t in times})
    if not times or times[0] < transient or times[-1] > last:
        raise ValueError(f"lyapunov.times: expected step indices in [{transient}, {last}] "
                         f"(transient .. transient + steps - warmup_backward), got "
                         f"{times[:3]}...{times[-3:]}")
    if max_buffer is not None and max_buffer <= warmup_backward:
        raise ValueError(f"lyapunov.max_buffer: expected > warmup_backward "
                         f"({warmup_backward}), got {max_buffer}")
    k = Q0.shape[-1]
    batch = Q0.shape[:-2]
    g = torch.Generator().manual_seed(int(seed) + 1)
    times_set = set(times)
    state = {"p0": 0}  # times[p0:] are still pending (ascending)
    Rbuf: dict[int, torch.Tensor] = {}  # s -> R_s (maps t = s-1 to s)
    Qbuf: dict[int, torch.Tensor] = {}  # pending time -> Q_t
    out_V: dict[int, torch.Tensor] = {}
    out_g: dict[int, torch.Tensor] = {}

    def first_pending():
        return times[state["p0"]] if state["p0"] < len(times) else None

    def sweep(end: int):
        """Backward pass from ``end`` (random C) recording pending times <= end - wb."""
        p0 = state["p0"]
        p1 = bisect.bisect_right(times, end - warmup_backward, lo=p0)
        if p1 == p0:
            return
        ready = set(times[p0:p1])
        # random upper-triangular start with unit diagonal (never singular)
        C = _randn(batch, (k, k), g, Q0.dtype).triu(1)
        C = (C + torch.eye(k, dtype=Q0.dtype)).to(Q0.device)
        C = C / (C * C).sum(dim=-2, keepdim=True).sqrt()  # (a strided vector_norm was 10x slower)
        for s in range(end, times[p0], -1):
            C, n = solve_fn(Rbuf[s], C)  # R_s^{-1} C with unit columns; n (..., k)
            if s - 1 in ready:
                out_V[s - 1] = Qbuf.pop(s - 1) @ C
                out_g[s - 1] = -torch.log(n)
        state["p0"] = p1
        lo = first_pending()
        lo = end if lo is None else lo
        for s in [s for s in Rbuf if s <= lo]:
            del Rbuf[s]

    def on_qr(s, Q, R):
        fp = first_pending()
        if fp is None:
            return
        if s > fp:
            Rbuf[s] = R
        if s in times_set:
            Qbuf[s] = Q
        if max_buffer is not None and len(Rbuf) >= max_buffer and fp <= s - warmup_backward:
            sweep(s)

    # Q at the window start is Q after the transient: run the transient separately
    x, Q = x0, Q0
    t = 0
    advance = _advance(push, qr_fn, push_qr)
    for _ in range(transient):
        x, Q, _ = advance(x, Q, t, True)
        t += 1
    if times[0] == transient:
        Qbuf[transient] = Q

    def push_t(xx, QQ, tt):  # the transient is done: shift time
        return push(xx, QQ, tt + transient)

    push_qr_t = None if push_qr is None else (lambda xx, QQ, tt: push_qr(xx, QQ, tt + transient))

    obs = None if observe is None else (lambda xx, tt: observe(xx, tt + transient))
    fwd = _forward(push_t, x, Q, steps=steps, transient=0, qr_every=1, record=False,
                   observe=obs, on_qr=lambda s, QQ, RR: on_qr(s + transient, QQ, RR),
                   running=running, qr_fn=qr_fn, push_qr=push_qr_t)
    sweep(T_end)
    ts = torch.tensor(times, dtype=torch.long)
    V = torch.stack([out_V[t] for t in times], dim=-3)  # (..., n, D, k)
    growth = torch.stack([out_g[t] for t in times], dim=-2)  # (..., n, k)
    return CLVResult(times=ts, V=V, growth=growth, exponents=growth.mean(dim=-2), forward=fwd)


def clv(F: Map, x0: torch.Tensor, steps: int, k: int | None = None, *,
        times: Sequence[int] | None = None, transient: int = 0, warmup_backward: int = 100,
        seed: int = 0, mode: str = "jvp", max_buffer: int | None = None,
        observe: Callable[[torch.Tensor, int], Any] | None = None,
        running: bool = True) -> CLVResult:
    """Covariant Lyapunov vectors by Ginelli et al., PRL 99, 130601 (2007).

    The forward pass runs ``transient`` warm-up steps (aligning ``Q`` with the backward
    Lyapunov vectors) and then ``steps`` Benettin steps with a QR every step, keeping
    ``R_s`` from the earliest pending time on and ``Q_t`` at the requested times. A
    backward pass starts from a random upper-triangular ``C`` at the end of the buffer,
    iterates ``C_{s-1} = R_s^{-1} C_s`` with normalised columns, and records
    ``V_t = Q_t C_t`` and the growth rates ``-log |R_s^{-1} C_s|_j = log |J_t v_t^j|``
    at every requested time at least ``warmup_backward`` steps before the buffer end.
    With ``max_buffer`` the buffer is swept whenever it holds that many ``R`` (memory
    ``max_buffer * k^2`` per system); otherwise once at the end.

    Args:
        F: ``F(x (D,), t) -> (D,)``.
        x0: ``(D,)`` state at ``t = 0``.
        steps: forward steps after the transient (``t = transient .. transient+steps-1``).
        k: number of CLVs (default ``D``); the first ``k`` need only ``k`` tangent vectors.
        times: step indices in ``[transient, transient + steps - warmup_backward]``
            (default: all of them).
        transient: forward warm-up steps.
        warmup_backward: backward warm-up steps after the last requested time.
        seed: seed of the initial basis (the backward start uses ``seed + 1``).
        mode: ``"jvp"`` (vmapped jvps) or ``"jacobian"`` (full ``jacfwd``).
        max_buffer: optional cap on stored ``R`` matrices (> ``warmup_backward``).
        observe: optional ``observe(x, t)`` at every forward time after the transient.
        running: compute the forward pass's running averages.

    Returns:
        :class:`CLVResult` with ``V (n, D, k)``, ``growth (n, k)``, ``exponents (k,)``.
    """
    D = x0.shape[-1]
    k = D if k is None else k
    Q0 = random_orthonormal(D, k, seed=seed, dtype=x0.dtype, device=x0.device)
    return _clv(_pusher(F, mode), x0, Q0, steps, times=times, transient=transient,
                warmup_backward=warmup_backward, seed=seed, max_buffer=max_buffer,
                observe=observe, running=running)


def clv_batched(F: Map, X0: torch.Tensor, steps: int, k: int | None = None, *,
                times: Sequence[int] | None = None, transient: int = 0,
                warmup_backward: int = 100, seed: int = 0, mode: str = "jacobian",
                max_buffer: int | None = None,
                observe: Callable[[torch.Tensor, int], Any] | None = None,
                running: bool = True, qr: str | Callable = "householder",
                jacobian_fn: Callable | None = None, push: Callable | None = None,
                solve: Callable | None = None, push_qr: Callable | None = None) -> CLVResult:
    """:func:`clv` for ``B`` independent systems sharing the map ``F`` (vmapped).

    Args:
        F: the map of ONE system, ``F(x (D,), t) -> (D,)``.
        X0: ``(B, D)`` initial states.
        observe: optional batched ``observe(X (B, D), t)``.
        qr: ``"householder"`` or ``"cholesky"`` (see :func:`benettin`), or a batched
            callable ``A (B, D, k) -> (Q, R)`` with a positive diagonal (e.g. the compiled
            :func:`pathdep.analysis.study_kernels.qr`).
        jacobian_fn: optional batched ``jacobian_fn(X (B, D), t) -> (J (B, D, D),
            F(X) (B, D))`` (a closed form) replacing vmapped ``jacfwd``.
        push: optional batched ``push(X (B, D), Q (B, D, k), t) -> (F(X), J Q)``
            replacing ``jacobian_fn`` (no Jacobian is stored).
        solve: optional batched backward step ``solve(R, C) -> (C', n)`` replacing
            :func:`solve_normalize`.
        push_qr: optional fused step ``push_qr(X, Q, t) -> (F(X), Q', R)`` with
            ``Q' R = J Q`` (e.g. :meth:`pathdep.analysis.lyapunov_study.ClosedForm.push_qr`),
            used instead of ``push`` and ``qr`` (then only needed for checks).
        Others: as in :func:`clv` (``mode`` defaults to ``"jacobian"``).

    Returns:
        :class:`CLVResult` with a leading ``B``: ``V (B, n, D, k)``, ``growth (B, n, k)``,
        ``exponents (B, k)``, and the batched forward :class:`LyapunovResult`.
    """
    B, D = X0.shape
    k = D if k is None else k
    Q0 = random_orthonormal(D, k, seed=seed, batch=(B,), dtype=X0.dtype, device=X0.device)
    return _clv(push or _batched_pusher(F, mode, jacobian_fn), X0, Q0, steps, times=times,
                transient=transient, warmup_backward=warmup_backward, seed=seed,
                max_buffer=max_buffer, observe=observe, running=running,
                qr_fn=qr if callable(qr) else _qr_fn(qr), solve_fn=solve or solve_normalize,
                push_qr=push_qr)


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class StateSpec:
    """How a ``(w, opt_state)`` pytree maps to a flat dynamical state.

    Attributes:
        treespec: the pytree structure of ``(w, opt_state)``.
        dynamic: for each leaf, whether it is part of the flat vector (floating tensors
            with at least one dimension); other leaves (the scalar step counter, None,
            Python numbers, integer tensors) are static.
        shapes: shape of each dynamic leaf (``()`` for static ones).
        static: the static leaves' values, returned unchanged by :func:`split`.
    """

    treespec: Any
    dynamic: tuple[bool, ...]
    shapes: tuple[tuple[int, ...], ...]
    static: tuple[Any, ...]

    @property
    def size(self) -> int:
        n = 0
        for d, s in zip(self.dynamic, self.shapes):
            if d:
                m = 1
                for v in s:
                    m *= v
                n += m
        return n


def _is_dynamic(leaf) -> bool:
    return (torch.is_tensor(leaf) and leaf.dim() >= 1
            and (leaf.is_floating_point() or leaf.is_complex()))


def state_from_training(w: torch.Tensor, opt_state: Any = ()) -> tuple[torch.Tensor, StateSpec]:
    """Flatten a network's dynamical state: weights plus optimizer buffers.

    DESIGN invariant 2: with momentum or Adam the state of the update map includes the
    optimizer buffers. Tensors with at least one dimension are concatenated in pytree
    order; the scalar step counter (0-dim or integer) and None are kept in the spec.

    Args:
        w: ``(P,)`` flat weights (any shape works).
        opt_state: a tuple (or any pytree) of optimizer buffers.

    Returns:
        ``(x (D,), spec)`` with ``D = P + sum of buffer sizes``.
    """
    leaves, treespec = pytree.tree_flatten((w, opt_state))
    dynamic = tuple(_is_dynamic(l) for l in leaves)
    shapes = tuple(tuple(l.shape) if d else () for l, d in zip(leaves, dynamic))
    static = tuple(None if d else l for l, d in zip(leaves, dynamic))
    parts = [l.reshape(-1) for l, d in zip(leaves, dynamic) if d]
    if not parts:
        raise ValueError("lyapunov.state: expected at least one tensor in (w, opt_state)")
    return torch.cat(parts), StateSpec(treespec, dynamic, shapes, static)


def split(x: torch.Tensor, spec: StateSpec) -> tuple[torch.Tensor, Any]:
    """Inverse of :func:`state_from_training` (views of ``x``; vmap- and jvp-safe).

    Args:
        x: ``(D,)`` flat state.
        spec: the :class:`StateSpec` from :func:`state_from_training`.

    Returns:
        ``(w, opt_state)`` with the original structure; static leaves come from ``spec``.
    """
    if x.shape[-1] != spec.size:
        raise ValueError(f"lyapunov.state: expected a flat state of size {spec.size}, "
                         f"got {tuple(x.shape)}")
    leaves, off = [], 0
    for d, shape, st in zip(spec.dynamic, spec.shapes, spec.static):
        if d:
            n = 1
            for v in shape:
                n *= v
            leaves.append(x[off:off + n].reshape(shape))
            off += n
        else:
            leaves.append(st)
    return pytree.tree_unflatten(leaves, spec.treespec)
