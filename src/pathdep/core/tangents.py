"""Hand-written tangent maps of one MLP: Hessian-vector products and the push of ``k``
tangent vectors of its optimiser state.

What it computes, for one network of :class:`pathdep.core.models.MLP` (relu / tanh /
sigmoid / identity, standard parameterisation) on one batch:

* :func:`make_fast_hvp`: ``grad_hvp(w (P,), V (k, P), x, y) -> (g (P,), HV (k, P), loss)``
  with ``HV[j] = H(w) V[j]``, Pearlmutter's R-operator (Neural Computation 6, 147 (1994))
  written out: the tangents of all ``k`` vectors share the primal activations, and the first
  layer's tangent ``x V_0^T`` and its gradient tangent ``delta_dot^T x`` are GEMMs over all
  vectors (the shared-batch structure of :func:`pathdep.core.fast.make_fast_ensemble_step`
  with tangents in place of members);
* :func:`make_tangent_push`: one optimiser step and its Jacobian applied to ``k`` tangents
  of the state ``(w, buffers)`` (the Lyapunov tangent map, :mod:`pathdep.core.flatstate`);
  ~2.5x cheaper than the ``torch.func.jvp`` of :func:`pathdep.core.fast.make_fast_step` at
  k = 8 (bench/bench_lyapunov.py).

How it was checked (tests/core/test_tangents.py, float64): the Hessian-vector products
against ``jvp(grad)`` (4 activations x depths 0-2 x 2 losses, with and without bias) and the
tangent push against the jvp of :func:`pathdep.core.fast.make_fast_step` (SGD, momentum +
weight decay, Adam), both to 1e-12.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from pathdep.core.dynamics import LOSSES
from pathdep.core.fast import _act, _act_name, _plain_sgd, _Spec, supports
from pathdep.core.models import MLP, Layout

__all__ = ["supports_hvp", "make_fast_hvp", "make_tangent_push"]


def _act_derivs(name: str, z: torch.Tensor, a: torch.Tensor):
    """``(act'(z), act''(z) or None)`` from the pre-activation ``z`` and ``a = act(z)``."""
    if name == "relu":
        return (z > 0).to(z.dtype), None
    if name == "tanh":
        s1 = 1 - a * a
        return s1, -2 * a * s1
    if name == "sigmoid":
        s1 = a * (1 - a)
        return s1, s1 * (1 - 2 * a)
    if name == "identity":
        return torch.ones_like(z), None
    raise ValueError(f"lyapunov: no hand-written Hessian-vector product for activation {name!r}")


def _shared_mm(a: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """``a (B, n) @ V_j^T`` for all ``j`` of ``V (k, m, n)``: ONE GEMM -> ``(k, B, m)``."""
    k, m, n = V.shape
    return (a @ V.reshape(k * m, n).t()).reshape(a.shape[0], k, m).transpose(0, 1)


def _mlp_grad_hvp(spec: _Spec, w: torch.Tensor, V: torch.Tensor, x: torch.Tensor,
                  y: torch.Tensor, loss: str):
    """Gradient ``g (P,)``, Hessian-vector products ``H V_j`` ``(k, P)`` and the loss of one
    MLP on one batch (forward-over-backward written out; see :func:`make_fast_hvp`)."""
    B = x.shape[0]
    k = V.shape[0]
    n = len(spec.fc)
    a = [x.reshape(B, -1)]   # layer inputs a_{-1} = x, a_0, ..
    ad = [None]              # their tangents (k, B, in); x has none
    zs, zds = [], []
    for i, (ws, shape, bs) in enumerate(spec.fc):
        Wi = w[ws].reshape(shape)
        z = a[i] @ Wi.t()
        if ad[i] is None:  # first layer: x V_j^T, each read in place from V's rows
            zd = torch.empty(k, B, shape[0], dtype=w.dtype, device=w.device)
            for j in range(k):
                torch.mm(a[i], V[j, ws].view(shape).t(), out=zd[j])
        else:
            zd = _shared_mm(a[i], V[:, ws].reshape(k, *shape))  # a_{i-1} V_i^T: one GEMM
            zd = zd + ad[i] @ Wi.t()  # (k, B, in) @ (in, out): one GEMM
        if bs is not None:
            z = z + w[bs]
            zd = zd + V[:, bs].unsqueeze(1)
        zs.append(z)
        zds.append(zd)
        if i < n - 1:
            h = _act(spec.act, z)
            s1, _ = _act_derivs(spec.act, z, h)
            a.append(h)
            ad.append(s1 * zd)
    out, zd = zs[-1], zds[-1]
    if loss == "cross_entropy":
        logp = torch.log_softmax(out, dim=-1)
        value = -logp.gather(-1, y.reshape(B, 1)).mean()
        p = logp.exp()
        d = p.clone()
        d[torch.arange(B, device=d.device), y] -= 1
        d = d / B
        pz = p * zd  # (k, B, C)
        dd = (pz - p * pz.sum(-1, keepdim=True)) / B
    elif loss == "mse":
        diff = out - y
        value = 0.5 * (diff * diff).sum(-1).mean()
        d, dd = diff / B, zd / B
    else:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    g = torch.empty_like(w)
    HV = torch.empty_like(V)
    for i in range(n - 1, -1, -1):
        ws, shape, bs = spec.fc[i]
        out_i, in_i = shape
        g[ws] = (d.t() @ a[i]).reshape(-1)
        # d(delta^T a)/dt = dd^T a + delta^T ad
        if ad[i] is None:  # first layer: written straight into HV (rows are contiguous)
            ddt = dd.transpose(1, 2)
            for j in range(k):
                torch.mm(ddt[j], a[i], out=HV[j, ws].view(out_i, in_i))
        else:
            hv = (dd.transpose(1, 2).reshape(k * out_i, B) @ a[i]).reshape(k, out_i, in_i)
            hv = hv + d.t() @ ad[i]  # (out, B) @ (k, B, in)
            HV[:, ws] = hv.reshape(k, -1)
        if bs is not None:
            g[bs] = d.sum(0)
            HV[:, bs] = dd.sum(1)
        if i > 0:
            Wi = w[ws].reshape(shape)
            Vi = V[:, ws].reshape(k, *shape)
            da = d @ Wi                                # (B, in)
            dad = dd @ Wi + d @ Vi                     # (k, B, in)
            s1, s2 = _act_derivs(spec.act, zs[i - 1], a[i])
            d = da * s1
            dd = dad * s1
            if s2 is not None:
                dd = dd + (da * s2) * zds[i - 1]
    return g, HV, value


def supports_hvp(module: nn.Module) -> bool:
    """Whether :func:`make_fast_hvp` / :func:`make_tangent_push` handle this model (an MLP
    with relu / tanh / sigmoid / identity in the standard parameterisation)."""
    return type(module) is MLP and supports(module) and _act_name(module) != "gelu"


def make_fast_hvp(module: nn.Module, layout: Layout, loss: str) -> Callable:
    """Gradient and ``k`` Hessian-vector products of one MLP's batch loss, hand-written.

    ``grad_hvp(w (P,), V (k, P), x (B, ...), y) -> (g (P,), HV (k, P), loss ())`` with
    ``HV[j] = H(w) V[j]``, the R-operator of Pearlmutter (Neural Computation 6, 147
    (1994)) written out for the MLP: the tangents of all ``k`` vectors share the primal
    activations, so the first layer's tangent ``x V_0^T`` and its gradient tangent
    ``delta_dot^T x`` are ONE GEMM each over all vectors (the shared-batch structure of
    :func:`make_fast_ensemble_step` with tangents in place of members). Used for the
    tangent maps of Lyapunov spectra (:func:`make_tangent_push`).

    Args:
        module: an :class:`~pathdep.core.models.MLP` with relu / tanh / sigmoid / identity
            (standard parameterisation).
        layout: its flat layout.
        loss: ``"cross_entropy"`` or ``"mse"``.

    Raises:
        ValueError: for another model or activation.
    """
    if not supports_hvp(module):
        raise ValueError(f"lyapunov: the hand-written Hessian-vector product needs an MLP with "
                         f"relu/tanh/sigmoid/identity, got {type(module).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    spec = _Spec(module, layout)

    def grad_hvp(w, V, x, y):
        with torch.no_grad():
            return _mlp_grad_hvp(spec, w, V, x, y, loss)

    return grad_hvp


def make_tangent_push(module: nn.Module, layout: Layout, loss: str, optimizer) -> Callable:
    """One optimizer step of one MLP and the push of ``k`` tangent vectors of its state.

    ``push(w (P,), state, x, y, hp, V (k, P), Vs [(k, P) or None, ...]) -> (w_new,
    state_new, V_new (k, P), Vs_new)``: ``(w_new, state_new)`` is ``optimizer.update(w,
    g(w), state, hp)`` and ``(V_new, Vs_new)`` its Jacobian applied to the tangents
    ``(V, Vs)`` of ``w`` and of the buffers ``state[1:]`` (the step counter has none; a
    ``None`` in ``Vs`` marks a buffer held constant, e.g. the unused momentum buffer of
    plain SGD, whose entry in ``Vs_new`` is ``None`` too). The Hessian part
    comes from :func:`make_fast_hvp`; the optimizer's own (elementwise) derivative from
    ``torch.func.jvp`` of :meth:`~pathdep.core.optim.Optimizer.update`, vmapped over the
    ``k`` vectors. Equal to the jvp of :func:`make_fast_step` to rounding
    (tests/core/test_fast.py: 1e-12 in float64, SGD, momentum, Adam).
    """
    grad_hvp = make_fast_hvp(module, layout, loss)
    plain_sgd = _plain_sgd(optimizer)

    def push(w, state, x, y, hp, V, Vs):
        g, HV, _ = grad_hvp(w, V, x, y)
        step = state[0]
        if plain_sgd and all(v is None for v in Vs):
            # w - lr g and its tangent V - lr H V (Optimizer._sgd with momentum and weight
            # decay specialised away: the buffer is untouched, the counter steps)
            lr = float(hp.get("lr", optimizer.defaults["lr"]))
            return (torch.add(w, g, alpha=-lr), (step + 1, *state[1:]),
                    torch.add(V, HV, alpha=-lr, out=HV), list(Vs))
        bufs = list(state[1:])
        idx = [i for i, v in enumerate(Vs) if v is not None]  # buffers with tangents

        def upd(w_, g_, *tb):
            b = list(bufs)
            for i, t in zip(idx, tb):
                b[i] = t
            w2, s2 = optimizer.update(w_, g_, (step, *b), hp)
            return w2, tuple(s2[1 + i] for i in idx)

        def one(v, hv, *vb):
            return torch.func.jvp(upd, (w, g, *[bufs[i] for i in idx]), (v, hv, *vb))

        (w2, s2a), (Vw, Vb) = torch.vmap(one, out_dims=((None, None), 0))(
            V, HV, *[Vs[i] for i in idx])
        # the buffers without tangents, and the step counter, from one plain update
        _, s2 = optimizer.update(w, g, state, hp)
        s2 = list(s2)
        for i, t in zip(idx, s2a):
            s2[1 + i] = t
        Vout = [None] * len(Vs)
        for i, t in zip(idx, Vb):
            Vout[i] = t
        return w2, tuple(s2), Vw, Vout

    return push
