"""Covariant Lyapunov vectors of a discrete map by Ginelli's dynamical algorithm.

What it computes: for a map ``F(x, t) -> x_next`` on ``(D,)`` states (conventions of
:mod:`pathdep.analysis.lyapunov_benettin`), covariant Lyapunov vectors (CLVs) by the
method of Ginelli et al., PRL 99, 130601 (2007) (:func:`clv`, :func:`clv_batched`): the
forward (Benettin) pass stores ``R_t`` (and ``Q_t`` at the requested times), a backward
pass iterates the upper-triangular ``C_{t-1} = R_t^{-1} C_t`` with normalised columns
(:func:`solve_normalize`) from a random start ``warmup_backward`` steps in the future, and
the CLVs are ``V_t = Q_t C_t``; their local growth rates are ``log |J_t v_t|`` and
:func:`clv_angles` gives the angles between pairs. Batched random starts (the initial basis
and the backward ``C``) are independent per system (:func:`pathdep.analysis.lyapunov_qr.batched_randn`).

How it was checked (tests/analysis/test_lyapunov_clv.py, float64): the CLVs of a constant
non-normal linear map are its eigenvectors with growth rates ``log |eigenvalue|``; the mean
CLV growth rates of the Henon map equal its exponents; the angles stay accurate near
tangency; a capped buffer (``max_buffer``) gives the CLVs of one sweep at the end.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from pathdep.analysis.lyapunov_benettin import (LyapunovResult, Map, batched_tangent_pusher, forward_pass,
                                                make_advance, tangent_pusher)
from pathdep.analysis.lyapunov_qr import batched_randn, qr_method, qr_positive, random_orthonormal

__all__ = ["CLVResult", "clv", "clv_batched", "clv_angles", "solve_normalize"]


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


def _check_times(times, *, transient: int, steps: int, warmup_backward: int,
                 max_buffer: int | None) -> list[int]:
    """The sorted requested times (default: every time in the backward-covered range).

    Raises:
        ValueError: ``lyapunov.<key>: ...`` for times outside ``[transient, transient +
        steps - warmup_backward]`` or a buffer cap that cannot hold the backward warm-up.
    """
    last = transient + steps - warmup_backward
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
    return times


def _random_start(batch, k: int, g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Ginelli's backward start: a random upper-triangular ``(*batch, k, k)`` ``C`` with unit
    diagonal before normalisation (never singular), unit columns."""
    C = batched_randn(batch, (k, k), g, like.dtype).triu(1)
    C = (C + torch.eye(k, dtype=like.dtype)).to(like.device)
    return C / (C * C).sum(dim=-2, keepdim=True).sqrt()  # (a strided vector_norm was 10x slower)


@dataclass
class _Backward:
    """The buffers of Ginelli's backward pass and the CLVs recorded so far.

    ``R[s]`` is ``R_s`` (maps ``t = s - 1`` to ``s``), ``Q[t]`` is ``Q_t`` at a pending
    requested time; ``times[pending:]`` (ascending) still wait for a backward sweep.
    """

    times: list[int]
    warmup_backward: int
    max_buffer: int | None
    solve_fn: Callable
    start: Callable[[], torch.Tensor]
    pending: int = 0
    R: dict = field(default_factory=dict)
    Q: dict = field(default_factory=dict)
    V: dict = field(default_factory=dict)
    growth: dict = field(default_factory=dict)

    def __post_init__(self):
        self.requested = set(self.times)

    def first_pending(self) -> int | None:
        return self.times[self.pending] if self.pending < len(self.times) else None

    def on_qr(self, s: int, Q: torch.Tensor, R: torch.Tensor) -> None:
        """Store what a later sweep needs after the QR that gives ``Q_s`` and ``R_s``."""
        fp = self.first_pending()
        if fp is None:
            return
        if s > fp:
            self.R[s] = R
        if s in self.requested:
            self.Q[s] = Q
        if (self.max_buffer is not None and len(self.R) >= self.max_buffer
                and fp <= s - self.warmup_backward):
            self.sweep(s)

    def sweep(self, end: int) -> None:
        """Backward pass from ``end`` (random ``C``) recording pending times <= end - wb."""
        p0 = self.pending
        p1 = bisect.bisect_right(self.times, end - self.warmup_backward, lo=p0)
        if p1 == p0:
            return
        ready = set(self.times[p0:p1])
        C = self.start()
        for s in range(end, self.times[p0], -1):
            C, n = self.solve_fn(self.R[s], C)  # R_s^{-1} C with unit columns; n (..., k)
            if s - 1 in ready:
                self.V[s - 1] = self.Q.pop(s - 1) @ C
                self.growth[s - 1] = -torch.log(n)
        self.pending = p1
        lo = self.first_pending()
        lo = end if lo is None else lo
        for s in [s for s in self.R if s <= lo]:
            del self.R[s]


def _shifted(fn: Callable | None, by: int) -> Callable | None:
    """``fn(x, Q, t + by)`` (the forward window starts after the transient)."""
    return None if fn is None else (lambda x, Q, t: fn(x, Q, t + by))


def _clv(push, x0, Q0, steps, *, times, transient, warmup_backward, seed, max_buffer,
         observe, running, qr_fn=qr_positive, solve_fn=solve_normalize,
         push_qr=None) -> CLVResult:
    """Ginelli's method from the basis ``Q0`` (leading batch axes pass through)."""
    times = _check_times(times, transient=transient, steps=steps,
                         warmup_backward=warmup_backward, max_buffer=max_buffer)
    g = torch.Generator().manual_seed(int(seed) + 1)
    back = _Backward(times, warmup_backward, max_buffer, solve_fn,
                     start=lambda: _random_start(Q0.shape[:-2], Q0.shape[-1], g, Q0))
    # Q at the window start is Q after the transient: run the transient separately
    x, Q = x0, Q0
    advance = make_advance(push, qr_fn, push_qr)
    for t in range(transient):
        x, Q, _ = advance(x, Q, t, True)
    if times[0] == transient:
        back.Q[transient] = Q
    obs = None if observe is None else (lambda xx, tt: observe(xx, tt + transient))
    fwd = forward_pass(_shifted(push, transient), x, Q, steps=steps, transient=0, qr_every=1,
                       record=False, observe=obs,
                       on_qr=lambda s, QQ, RR: back.on_qr(s + transient, QQ, RR),
                       running=running, qr_fn=qr_fn, push_qr=_shifted(push_qr, transient))
    back.sweep(transient + steps)
    V = torch.stack([back.V[t] for t in times], dim=-3)  # (..., n, D, k)
    growth = torch.stack([back.growth[t] for t in times], dim=-2)  # (..., n, k)
    return CLVResult(times=torch.tensor(times, dtype=torch.long), V=V, growth=growth,
                     exponents=growth.mean(dim=-2), forward=fwd)


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
    return _clv(tangent_pusher(F, mode), x0, Q0, steps, times=times, transient=transient,
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
        qr: ``"householder"`` or ``"cholesky"`` (see :func:`pathdep.analysis.lyapunov_benettin.benettin`), or a batched
            callable ``A (B, D, k) -> (Q, R)`` with a positive diagonal (e.g. the compiled
            :func:`pathdep.analysis.study_kernels.qr`).
        jacobian_fn: optional batched ``jacobian_fn(X (B, D), t) -> (J (B, D, D),
            F(X) (B, D))`` (a closed form) replacing vmapped ``jacfwd``.
        push: optional batched ``push(X (B, D), Q (B, D, k), t) -> (F(X), J Q)``
            replacing ``jacobian_fn`` (no Jacobian is stored).
        solve: optional batched backward step ``solve(R, C) -> (C', n)`` replacing
            :func:`solve_normalize`.
        push_qr: optional fused step ``push_qr(X, Q, t) -> (F(X), Q', R)`` with
            ``Q' R = J Q`` (e.g. :meth:`pathdep.analysis.study_model.ClosedForm.push_qr`),
            used instead of ``push`` and ``qr`` (then only needed for checks).
        Others: as in :func:`clv` (``mode`` defaults to ``"jacobian"``).

    Returns:
        :class:`CLVResult` with a leading ``B``: ``V (B, n, D, k)``, ``growth (B, n, k)``,
        ``exponents (B, k)``, and the batched forward :class:`LyapunovResult`.
    """
    B, D = X0.shape
    k = D if k is None else k
    Q0 = random_orthonormal(D, k, seed=seed, batch=(B,), dtype=X0.dtype, device=X0.device)
    return _clv(push or batched_tangent_pusher(F, mode, jacobian_fn), X0, Q0, steps, times=times,
                transient=transient, warmup_backward=warmup_backward, seed=seed,
                max_buffer=max_buffer, observe=observe, running=running,
                qr_fn=qr if callable(qr) else qr_method(qr), solve_fn=solve or solve_normalize,
                push_qr=push_qr)
