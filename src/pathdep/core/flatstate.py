"""A run's training map on its flat dynamical state (weights + live optimiser buffers).

What it computes: the pure update map of :mod:`pathdep.core.dynamics` (DESIGN invariant 2)
as a map ``F(x, t) -> x_{t+1}`` on one flat vector ``x = (w, b_1, ..., b_m)`` of shape
``(D,)``, with the batch of step ``t`` from a schedule, so that the tangent map
``dF/dx`` can be pushed (Lyapunov spectra, :mod:`pathdep.analysis.lyapunov_benettin`) or
linearised (NTK-style analyses):

* :func:`inert_buffers`: the optimiser buffers that never change for an optimiser's
  specialised hyperparameters (SGD's momentum buffer at momentum 0, RMSprop's without
  momentum / centering); they are left out of ``x`` so they do not add spurious zero
  exponents, and held at their initial values;
* :class:`FlatState`: the layout of ``x`` (split into weights and buffers, pack, the
  optimiser state of step ``t``);
* :func:`flat_training_map`: ``(F, x0, info)`` for one network from a
  :class:`pathdep.core.context.RunContext`, its initial weights and a batch schedule, with
  ``info["push"]`` the hand-written tangent push of :func:`pathdep.core.tangents.make_tangent_push`
  where it applies (``fast`` set, an MLP with hand-written Hessian-vector products), else
  None (the caller pushes tangents by the generic jvp of ``F``).

How it was checked (tests/core/test_flatstate.py, float64): replaying ``F`` from the
baseline's initial weights on its schedule reproduces the recorded trajectory (1e-12, SGD
with momentum: the buffer is part of the state), the hand-written push equals the vmapped
jvp of ``F`` to 1e-12 (SGD, momentum, weight decay), and split / pack round-trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from pathdep.core.context import RunContext
from pathdep.core.fast import make_fast_step, supports
from pathdep.core.models import MLP
from pathdep.core.optim import Optimizer
from pathdep.core.schedule import Schedule
from pathdep.core.tangents import make_tangent_push, supports_hvp

__all__ = ["inert_buffers", "FlatState", "flat_training_map"]


def inert_buffers(opt: Optimizer) -> set[int]:
    """Indices (into the optimiser state tuple) of buffers that never change for ``opt``."""
    names = opt.state_names
    out = set()
    if opt.name == "sgd" and "momentum" in opt.zero:
        out.add(names.index("momentum_buffer"))
    if opt.name == "rmsprop":
        if "momentum" in opt.zero:
            out.add(names.index("momentum_buffer"))
        if not opt.centered:
            out.add(names.index("grad_avg"))
    return out


@dataclass(frozen=True)
class FlatState:
    """The layout of a flat state ``x = (w, state0[i] for i in active)``.

    Attributes:
        P: number of weights.
        state0: the optimiser state at initialisation (``opt.init(w0)``); its inert
            buffers are used as they are at every step.
        active: indices into ``state0`` (``>= 1``; 0 is the step counter) of the live
            buffers, in their order in ``x``.
    """

    P: int
    state0: tuple
    active: tuple[int, ...]

    @classmethod
    def for_optimizer(cls, opt: Optimizer, w0: torch.Tensor) -> "FlatState":
        state0 = opt.init(w0)
        inert = inert_buffers(opt)
        return cls(w0.numel(), state0, tuple(i for i in range(1, len(state0)) if i not in inert))

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """``(w, [buffer or None, ...])``: the weights and live buffers of a flat state (rows
        ``0 .. D-1`` of ``x``: also a ``(D, k)`` tangent basis); ``None`` for inert buffers."""
        P, parts, off = self.P, [], self.P
        for i in range(1, len(self.state0)):
            if i in self.active:
                parts.append(x[off:off + P])
                off += P
            else:
                parts.append(None)
        return x[:P], parts

    def pack(self, w: torch.Tensor, bufs, dim: int = 0) -> torch.Tensor:
        """The flat state of ``w`` and the live buffers ``bufs[i - 1]``, ``i`` in ``active``
        (``dim=1``: of ``(k, P)`` tangents, giving ``(k, D)``)."""
        return torch.cat([w, *[bufs[i - 1] for i in self.active]], dim=dim)

    def optimizer_state(self, bufs: list, t: int, dtype: torch.dtype, device) -> tuple:
        """The optimiser state at step ``t`` (inert buffers from ``state0``)."""
        return (torch.tensor(float(t), dtype=dtype, device=device),
                *[self.state0[i + 1] if b is None else b for i, b in enumerate(bufs)])

    def initial(self, w0: torch.Tensor) -> torch.Tensor:
        """The flat state ``(w0, live buffers of state0)``."""
        return torch.cat([w0, *[self.state0[i] for i in self.active]])


def _tangent_push(ctx: RunContext, flat: FlatState, batch: Callable, hp: dict) -> Callable:
    """``push(x (D,), Q (D, k), t) -> (F(x, t), J_t Q (D, k))`` by hand-written
    Hessian-vector products (:func:`pathdep.core.tangents.make_tangent_push`)."""
    tpush = make_tangent_push(ctx.module, ctx.layout, ctx.loss, ctx.opt)

    def push(x: torch.Tensor, Q: torch.Tensor, t: int):
        w, bufs = flat.split(x)
        V, Vs = flat.split(Q)  # (P, k) row blocks of the basis -> (k, P) tangents
        state = flat.optimizer_state(bufs, t, ctx.dtype, ctx.device)
        xb, yb = batch(t)
        w2, s2, Vw, Vb = tpush(w, state, xb, yb, hp, V.t().contiguous(),
                               [None if v is None else v.t().contiguous() for v in Vs])
        # (k, D) transposed: column-major (D, k), the layout LAPACK's QR reads in place
        return flat.pack(w2, s2[1:]), flat.pack(Vw, Vb, dim=1).t()

    return push


def flat_training_map(ctx: RunContext, w0: torch.Tensor, schedule: Schedule, member: int = 0,
                      fast: bool = False):
    """One network's training map as a flat-state map ``F(x, t)``.

    Args:
        ctx: the run (model, loss, optimiser, data; the data are loaded here).
        w0: ``(P,)`` initial weights on ``ctx.device`` in ``ctx.dtype``.
        schedule: the batch schedule of this network (its first member's batches).
        member: whose hyperparameters (:meth:`RunContext.hparams`).
        fast: use the hand-written step of :mod:`pathdep.core.fast` (MLPs it supports) and,
            where it has Hessian-vector products, the hand-written tangent push.

    Returns:
        ``(F, x0, info)`` where ``x0 (D,)`` is the initial state and ``info`` has ``P``
        (weights), ``D`` (state size), ``n_steps``, ``device``, ``state`` (names of the
        parts of ``x``), ``dtype``, ``push`` (or None) and ``tangents`` (how they are pushed).
    """
    fast = fast and supports(ctx.module) and type(ctx.module) is MLP
    # with fast, the tangent map is the jvp of the hand-written step: the first layer's
    # tangents of all k vectors as one GEMM (pathdep.core.fast; equal to the generic to 1e-12)
    step = make_fast_step(ctx.module, ctx.layout, ctx.loss, ctx.opt) if fast else ctx.step()
    x_all, y_all = ctx.train_tensors()
    hp = ctx.hparams(member)
    flat = FlatState.for_optimizer(ctx.opt, w0)

    def batch(t: int):
        idx = torch.as_tensor(schedule.batch(t), device=ctx.device)
        return x_all[idx], y_all[idx]

    def F(x: torch.Tensor, t: int) -> torch.Tensor:
        w, bufs = flat.split(x)
        w2, s2, _ = step(w, flat.optimizer_state(bufs, t, ctx.dtype, ctx.device), *batch(t), hp)
        return flat.pack(w2, s2[1:])

    x0 = flat.initial(w0)
    info = {"P": flat.P, "D": x0.numel(), "n_steps": schedule.n_steps, "device": ctx.device,
            "state": ["weights"] + [ctx.opt.state_names[i] for i in flat.active],
            "dtype": str(ctx.dtype), "push": None, "tangents": "jvp of the generic step"}
    if fast:
        info["tangents"] = "jvp of the hand-written step (pathdep.core.fast.make_fast_step)"
    if fast and supports_hvp(ctx.module):
        # hand-written Hessian-vector products: the k tangents share the primal pass and
        # the first layer's tangent and gradient tangent are one GEMM each (2.7x cheaper
        # than the jvp at k = 8; equal to it to 1e-12 in float64, tests/core/test_tangents.py)
        info["push"] = _tangent_push(ctx, flat, batch, hp)
        info["tangents"] = ("hand-written Hessian-vector products "
                            "(pathdep.core.tangents.make_tangent_push)")
    return F, x0, info
