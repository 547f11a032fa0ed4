"""Lyapunov exponents of a discrete map by Benettin's method, and finite-time exponents.

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
* finite-time Lyapunov exponents over windows (:func:`ftle`).

For a training run the map is the optimizer update (DESIGN invariant 2) on the
*dynamical state* (weights plus optimizer buffers, :mod:`pathdep.core.flatstate`).

Conventions: ``x_0 = x0`` at ``t = 0``; step ``t`` maps ``x_t -> x_{t+1} = F(x_t, t)``;
the QR after step ``t`` gives ``J_t Q_t = Q_{t+1} R_{t+1}``. Exponents are per step
(natural log). ``transient`` steps (``t = 0 .. transient-1``) align the tangent vectors
without being accumulated. A zero ``R_ii`` (an exactly singular tangent map) is clamped to
the smallest positive float so logs stay finite (about -708 in float64).

How it was checked (tests/analysis/test_lyapunov_benettin.py, float64): gradient descent on
``1/2 w^T H w`` with ``H = diag(1, 10)`` and lr 0.05 gives exactly ``(log 0.95, log 0.5)``
(1e-10), also with ``qr_every=5`` and with a heavy-ball momentum state; the Henon map
(a=1.4, b=0.3) gives about ``(0.4193, -1.6233)`` with sum ``ln 0.3`` (1e-6); ``benettin``
with ``k = D`` equals ``full_spectrum`` and the batched variant equals the single one; on
the Henon map ``qr_every=2`` with CholeskyQR2 gives the exponents of a QR every step
(1e-10); a closed-form ``jacobian_fn`` / custom ``push`` equals the jacfwd / jvp path.

Cost (bench/bench_lyapunov.py): ``push`` replaces the vmapped jvps, e.g. by the
hand-written Hessian-vector products of :func:`pathdep.core.tangents.make_tangent_push` (what
the lyapunov stage uses for MLPs: ~2.5x cheaper than the jvp at k = 8); ``qr="cholesky"``
(:mod:`pathdep.analysis.lyapunov_qr`) makes the QR of a tall ``(D, 32)`` panel ~2x cheaper;
``qr_every > 1`` divides the QR cost (exponents unchanged while the tangent vectors stay
representable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.func import jacfwd, jvp, vmap

from pathdep.analysis.lyapunov_qr import qr_method, qr_positive, random_orthonormal

Map = Callable[[torch.Tensor, int], torch.Tensor]

__all__ = ["Map", "LyapunovResult", "benettin", "benettin_batched", "full_spectrum", "ftle",
           "jacobian", "batched_jacobian", "tangent_pusher", "batched_tangent_pusher",
           "make_advance", "forward_pass"]


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


def _log_diag(R: torch.Tensor) -> torch.Tensor:
    d = torch.diagonal(R, dim1=-2, dim2=-1)
    return torch.log(d.clamp_min(torch.finfo(R.dtype).tiny))


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


def make_advance(push: Callable, qr_fn: Callable, push_qr: Callable | None) -> Callable:
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


def forward_pass(push: Callable, x: torch.Tensor, Q: torch.Tensor, *, steps: int, transient: int,
             qr_every: int, record: bool, observe, on_qr=None,
             running: bool = True, qr_fn=qr_positive, push_qr=None) -> LyapunovResult:
    """The Benettin loop shared by every public function; leading batch axes pass through.

    ``on_qr(t, Q_t, R_t)`` is called after each accumulated QR (``t`` = time of ``Q``);
    ``push_qr`` (optional) fuses a step and its QR.
    """
    advance = make_advance(push, qr_fn, push_qr)
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
            :func:`pathdep.core.tangents.make_tangent_push`); ``F`` is then unused.

    Returns:
        :class:`LyapunovResult` with ``exponents (k,)``, ``running (steps, k)``,
        ``log_r (steps // qr_every, k)``.
    """
    Q0 = random_orthonormal(x0.shape[-1], k, seed=seed, dtype=x0.dtype, device=x0.device)
    return forward_pass(push or _push_jvp(F), x0, Q0, steps=steps, transient=transient,
                    qr_every=qr_every, record=record, observe=observe, running=running,
                    qr_fn=qr_method(qr))


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
    return forward_pass(_push_jac(F), x0, Q0, steps=steps, transient=transient,
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
    return forward_pass(batched_tangent_pusher(F, mode, jacobian_fn), X0, Q0, steps=steps,
                    transient=transient, qr_every=qr_every, record=record, observe=observe,
                    running=running, qr_fn=qr_method(qr))


def batched_tangent_pusher(F: Map, mode: str, jacobian_fn: Callable | None) -> Callable:
    """``push(X (B, D), Q (B, D, k), t) -> (F(X), J Q)`` of ``B`` systems: the vmapped
    :func:`tangent_pusher` of ``F``, or ``jacobian_fn`` times ``Q`` when it is given."""
    if jacobian_fn is None:
        return _batch(tangent_pusher(F, mode))

    def push(X, Q, t):
        J, Y = jacobian_fn(X, t)
        return Y, J @ Q
    return push


def tangent_pusher(F: Map, mode: str) -> Callable:
    """``push(x (D,), Q (D, k), t) -> (F(x, t), J_t Q)`` by vmapped jvps (``mode="jvp"``) or
    the full ``jacfwd`` Jacobian (``mode="jacobian"``).

    Raises:
        ValueError: ``lyapunov.mode: ...`` for another mode.
    """
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
