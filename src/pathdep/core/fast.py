"""A fast ensemble update map for a shared batch (DESIGN invariant 1).

What it computes: the same pure map as ``make_ensemble_step(make_step(apply, loss, opt))``
of :mod:`pathdep.core.dynamics`,

    ``ens_step(W (K, P), states, x (B, ...), y (B, ...), hp {name: (K,)})
    -> (W_new (K, P), states_new, losses (K,))``,

for ``K`` members that all see the same batch ``x``, but with the forward and backward
pass written by hand so that the shared input is exploited:

* MLP (:class:`pathdep.core.models.MLP`, any depth, activations relu / tanh / gelu /
  sigmoid / identity, with or without bias): the first layer of all members is one
  batched GEMM of the shared batch ``x (B, d)`` (broadcast, never copied) with the
  members' weights read in place from the ``(K, P)`` array (``torch.baddbmm`` over a
  ``(K, h, d)`` view with member stride ``P``), and its weight gradient
  ``delta_k^T x`` is one batched GEMM written straight into the output; the later
  (small) layers are batched matmuls over members. (A single ``(B, d) @ (d, K*h)`` GEMM
  was tried first: it needs the ``(K*h, d)`` weights contiguous, i.e. two 10 MB copies
  per step at K = 32, and measured 10-40 % slower than the batched GEMM, which runs at
  the same FLOP rate; bench/bench_training.py.)
* LeNet-5 (:class:`pathdep.core.models.LeNet5`): the first convolution is one
  convolution of the batch with all members' filters concatenated as output channels
  (``K*6`` channels), the second a grouped convolution (``groups=K``) on that
  ``(B, K*6, h, w)`` tensor, their gradients from ``aten.convolution_backward``; the fully
  connected tail as for the MLP.
* Losses: cross entropy on logits with integer labels (mean over the batch) and
  ``0.5 * mean_b sum_j (out - y)^2`` (MSE), as :func:`pathdep.core.dynamics.loss_value`.

The gradient is assembled into a flat ``(K, P)`` tensor in the
:class:`pathdep.io.layout.Layout` order and handed to the same vmapped
:meth:`pathdep.core.optim.Optimizer.update` as the generic path, so SGD (momentum,
Nesterov, weight decay), Adam, AdamW and RMSprop all work unchanged. No autograd graph
is built (the whole step runs under ``torch.no_grad``); the map is a pure function of
its arguments. For tangent maps (Lyapunov spectra) :func:`make_fast_step` gives the
single-network step whose ``torch.func.jvp`` pushes tangents generically; the hand-written
Hessian-vector products are in :mod:`pathdep.core.tangents`.

FLOPs per member-step of the 784-100-10 MLP on a batch of B: forward ``2 B (784*100 + 100*10)``;
backward twice that (weight and input gradients; the first layer's input gradient is not needed,
so the fast path does ~5/6 of the counted work).

How it was checked: ``tests/core/test_fast.py`` compares this map with the vmapped
reference in float64 over 50 steps (SGD, SGD + momentum, Adam; MLPs of depth 1-3 with
each activation, with and without bias, cross entropy and MSE; LeNet-5 on 28x28 and
32x32 inputs) to 1e-12, and reports the float32 difference (~1e-6 after 50 steps).
Benchmark: ``bench/bench_training.py``. ResNets and transformers (:func:`ensemble_step_for`): on a CPU
the member loop with a torch.autograd step (:func:`pathdep.core.resnet.make_member_loop`; ResNet vmap
1.5-2.8x slower, bench/bench_resnet.py; transformer, bench/bench_transformer.py), vmap elsewhere."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from pathdep.core.dynamics import LOSSES, make_ensemble_step, make_step
from pathdep.core.models import MLP, Layout, LeNet5

__all__ = ["supports", "make_fast_ensemble_step", "make_grouped_step", "uses_groups", "ensemble_step_for", "fast_gradients",
           "make_fast_step", "member_loop_preferred"]


# --------------------------------------------------------------------------- activations


def _act_name(module: nn.Module) -> str | None:
    a = module.act
    if isinstance(a, nn.ReLU):
        return "relu"
    if isinstance(a, nn.Tanh):
        return "tanh"
    if isinstance(a, nn.GELU):
        return "gelu" if a.approximate == "none" else None
    if isinstance(a, nn.Sigmoid):
        return "sigmoid"
    if isinstance(a, nn.Identity):
        return "identity"
    return None


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _act(name: str, z: torch.Tensor) -> torch.Tensor:
    if name == "relu":
        return torch.relu(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "gelu":
        return F.gelu(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    return z


def _act_back(name: str, delta: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``delta * act'(z)`` given the pre-activation ``z`` and the activation ``a``."""
    if name == "relu":
        return delta * (z > 0).to(delta.dtype)
    if name == "tanh":
        return delta * (1 - a * a)
    if name == "sigmoid":
        return delta * (a * (1 - a))
    if name == "gelu":
        cdf = 0.5 * (1 + torch.erf(z * _SQRT_HALF))
        pdf = torch.exp(-0.5 * z * z) * _INV_SQRT_2PI
        return delta * (cdf + z * pdf)
    return delta


# --------------------------------------------------------------------------- structure


def supports(module: nn.Module) -> bool:
    """Whether :func:`make_fast_ensemble_step` handles this model."""
    if type(module) is MLP:
        # the hand-written backward is that of the standard parameterisation
        return _act_name(module) is not None and getattr(module, "parameterization", "standard") == "standard"
    if type(module) is LeNet5:
        return (_act_name(module) is not None and module.conv0.stride == (1, 1)
                and module.conv1.stride == (1, 1) and module.conv1.padding == (0, 0)
                and module.pool.kernel_size == 2)
    return False


class _Spec:
    """Offsets of every layer's weight and bias in the flat vector (from the layout)."""

    def __init__(self, module: nn.Module, layout: Layout):
        if not supports(module):
            act = type(getattr(module, "act", None)).__name__
            raise ValueError(f"training.fast: no fast ensemble step for {type(module).__name__} "
                             f"(activation {act}); expected an MLP or LeNet5 with relu/tanh/gelu/"
                             "sigmoid/identity")
        self.kind = "mlp" if type(module) is MLP else "lenet5"
        self.act = _act_name(module)
        self.layout = layout
        names = set(layout.names)
        self.P = layout.n_params

        def entry(mod: str):
            w = layout.slice(f"{mod}.weight")
            shape = layout.shapes[layout.names.index(f"{mod}.weight")]
            b = layout.slice(f"{mod}.bias") if f"{mod}.bias" in names else None
            return w, shape, b

        n_fc = module.n_layers if self.kind == "mlp" else module.n_fc
        self.fc = [entry(f"fc{i}") for i in range(n_fc)]
        if self.kind == "lenet5":
            self.conv = [entry("conv0"), entry("conv1")]
            self.pad0 = tuple(module.conv0.padding)
            self.in_shape = tuple(module.in_shape)
        # every parameter must be covered exactly once
        covered = sum(s.stop - s.start for e in self.fc + getattr(self, "conv", [])
                      for s in (e[0], e[2]) if s is not None)
        if covered != self.P:
            raise ValueError("training.fast: layout does not match the model's layers")


def _w(W: torch.Tensor, sl: slice, shape) -> torch.Tensor:
    return W[:, sl].reshape(W.shape[0], *shape)


# --------------------------------------------------------------------------- losses


def _loss_and_delta(loss: str, out: torch.Tensor, y: torch.Tensor):
    """Per-member mean loss ``(K,)`` and ``dL_k/d out`` ``(K, B, C)`` for ``out (K, B, C)``."""
    B = out.shape[1]
    if loss == "cross_entropy":
        logp = torch.log_softmax(out, dim=-1)
        yi = y.reshape(1, B, 1).expand(out.shape[0], B, 1)
        value = -logp.gather(-1, yi).squeeze(-1).mean(-1)
        delta = logp.exp()
        delta.scatter_add_(-1, yi, torch.full_like(yi, -1, dtype=out.dtype))
        return value, delta / B
    if loss == "mse":
        diff = out - y
        value = 0.5 * (diff * diff).sum(-1).mean(-1)
        return value, diff / B
    raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")


# --------------------------------------------------------------------------- MLP tail


class _Out:
    """Receives each parameter tensor's gradient ``g (K, n)`` for the slice ``sl``: stores
    it into ``G (K, P)``, or, for plain SGD (``lr`` given: no momentum, no weight decay),
    stores the updated weights ``W[:, sl] - lr g`` directly (one pass fewer over the
    ``(K, P)`` arrays, which dominate at large K)."""

    def __init__(self, W: torch.Tensor, lr: torch.Tensor | None):
        self.W, self.lr = W, lr
        self.G = torch.empty_like(W)

    def put(self, sl: slice, g: torch.Tensor) -> None:
        if self.lr is None:
            self.G[:, sl] = g
        else:
            self.G[:, sl] = self.W[:, sl] - self.lr[:, None] * g


def _tail_forward(spec: _Spec, W: torch.Tensor, a: torch.Tensor, start: int, cache: list):
    """Fully connected layers ``start ..`` on ``a (K, B, n)``; returns the logits."""
    n = len(spec.fc)
    for i in range(start, n):
        ws, shape, bs = spec.fc[i]
        Wi = _w(W, ws, shape)  # (K, out, in)
        if bs is not None:
            z = torch.baddbmm(W[:, bs].unsqueeze(1), a, Wi.transpose(1, 2))
        else:
            z = torch.bmm(a, Wi.transpose(1, 2))
        if i < n - 1:
            h = _act(spec.act, z)
            cache.append((a, z, h))
            a = h
        else:
            cache.append((a, None, None))
            return z
    raise AssertionError


def _tail_backward(spec: _Spec, W: torch.Tensor, G: _Out, delta: torch.Tensor,
                   start: int, cache: list) -> torch.Tensor:
    """Backward through fc layers ``n-1 .. start``; writes their gradients into ``G``;
    returns ``dL/d a_start`` (the input of layer ``start``)."""
    for i in range(len(spec.fc) - 1, start - 1, -1):
        ws, shape, bs = spec.fc[i]
        a_in, _, _ = cache[i - start]
        G.put(ws, torch.bmm(delta.transpose(1, 2), a_in).reshape(W.shape[0], -1))
        if bs is not None:
            G.put(bs, delta.sum(1))
        delta = torch.bmm(delta, _w(W, ws, shape))  # (K, B, in)
        if i > start:
            _, z, h = cache[i - 1 - start]
            delta = _act_back(spec.act, delta, z, h)
    return delta


def _mlp_grad(spec: _Spec, W: torch.Tensor, x: torch.Tensor, y: torch.Tensor, loss: str,
              lr: torch.Tensor | None = None):
    K = W.shape[0]
    B = x.shape[0]
    x = x.reshape(B, -1)
    ws, (h, d), bs = spec.fc[0]
    # the members' first-layer weights read in place: (K, h, d) with member stride P (a
    # (K*h, d) matrix would need a copy of all of them every step)
    W0 = W[:, ws].view(K, h, d)
    xk = x.expand(K, B, d)  # the shared batch, not copied
    # first layer of all members: one batched GEMM (B, d) @ (d, h) per member
    if bs is not None:
        z0 = torch.baddbmm(W[:, bs].unsqueeze(1), xk, W0.transpose(1, 2))  # (K, B, h)
    else:
        z0 = torch.bmm(xk, W0.transpose(1, 2))
    G = _Out(W, lr)
    G0 = G.G[:, ws].view(K, h, d)
    if len(spec.fc) == 1:
        value, d0 = _loss_and_delta(loss, z0, y)
    else:
        a0 = _act(spec.act, z0)
        cache: list = []
        out = _tail_forward(spec, W, a0, 1, cache)
        value, delta = _loss_and_delta(loss, out, y)
        dA = _tail_backward(spec, W, G, delta, 1, cache)  # (K, B, h)
        d0 = _act_back(spec.act, dA, z0, a0)
    # first layer's weight gradient of all members, written in place into G (out= has no
    # forward-mode derivative: under torch.func.jvp, make_fast_step, it is assigned)
    if lr is None:
        if torch.is_grad_enabled():
            G.G[:, ws] = torch.bmm(d0.transpose(1, 2), xk).reshape(K, h * d)
        else:
            torch.bmm(d0.transpose(1, 2), xk, out=G0)
    else:  # plain SGD: W0 - (lr_k d0_k)^T x (baddbmm into the strided G0 falls back to a
        # per-member loop and a slow copy: ~10 % slower at K = 32, bench/bench_training.py)
        d0s = d0 * lr[:, None, None]
        torch.sub(W0, torch.bmm(d0s.transpose(1, 2), xk), out=G0)
    if bs is not None:
        G.put(bs, d0.sum(1))
    return G.G, value


# --------------------------------------------------------------------------- LeNet-5


def _conv_back(grad_out, inp, weight, has_bias, padding, groups, need_input):
    return torch.ops.aten.convolution_backward(
        grad_out, inp, weight, [weight.shape[0]] if has_bias else None, [1, 1], list(padding),
        [1, 1], False, [0, 0], groups, [need_input, True, has_bias])


def _lenet_grad(spec: _Spec, W: torch.Tensor, x: torch.Tensor, y: torch.Tensor, loss: str,
                lr: torch.Tensor | None = None):
    K = W.shape[0]
    x = x.reshape(-1, *spec.in_shape)
    B = x.shape[0]
    (ws0, sh0, bs0), (ws1, sh1, bs1) = spec.conv
    c0, c1 = sh0[0], sh1[0]
    W0 = W[:, ws0].reshape(K * c0, *sh0[1:])
    b0 = W[:, bs0].reshape(K * c0) if bs0 is not None else None
    W1 = W[:, ws1].reshape(K * c1, *sh1[1:])
    b1 = W[:, bs1].reshape(K * c1) if bs1 is not None else None
    # conv0 of all members: one convolution with K*c0 output channels
    z0 = F.conv2d(x, W0, b0, padding=spec.pad0)
    a0 = _act(spec.act, z0)
    p0 = F.avg_pool2d(a0, 2)
    # conv1: grouped, member k reads channels k*c0 .. (k+1)*c0
    z1 = F.conv2d(p0, W1, b1, groups=K)
    a1 = _act(spec.act, z1)
    p1 = F.avg_pool2d(a1, 2)  # (B, K*c1, s, s)
    feat = p1.reshape(B, K, -1).transpose(0, 1)  # (K, B, c1*s*s), per member (c, h, w) order
    cache: list = []
    out = _tail_forward(spec, W, feat, 0, cache)
    value, delta = _loss_and_delta(loss, out, y)
    G = _Out(W, lr)
    dfeat = _tail_backward(spec, W, G, delta, 0, cache)  # (K, B, n_flat)
    dp1 = dfeat.transpose(0, 1).reshape(p1.shape)
    da1 = torch.ops.aten.avg_pool2d_backward(dp1, a1, [2, 2], [2, 2], [0, 0], False, True, None)
    dz1 = _act_back(spec.act, da1, z1, a1)
    dp0, gW1, gb1 = _conv_back(dz1, p0, W1, bs1 is not None, (0, 0), K, True)
    G.put(ws1, gW1.reshape(K, -1))
    if bs1 is not None:
        G.put(bs1, gb1.reshape(K, c1))
    da0 = torch.ops.aten.avg_pool2d_backward(dp0, a0, [2, 2], [2, 2], [0, 0], False, True, None)
    dz0 = _act_back(spec.act, da0, z0, a0)
    _, gW0, gb0 = _conv_back(dz0, x, W0, bs0 is not None, spec.pad0, 1, False)
    G.put(ws0, gW0.reshape(K, -1))
    if bs0 is not None:
        G.put(bs0, gb0.reshape(K, c0))
    return G.G, value


# --------------------------------------------------------------------------- public


def fast_gradients(module: nn.Module, layout: Layout, loss: str, no_grad: bool = True) -> Callable:
    """``grads(W (K, P), x (B, ...), y) -> (G (K, P), losses (K,))`` for a shared batch.

    ``G[k]`` is the gradient of member ``k``'s mean batch loss at ``W[k]`` and
    ``losses[k]`` that loss, computed without autograd. With ``no_grad=False`` the code
    runs outside ``torch.no_grad`` so that ``torch.func.jvp`` can push tangents through it
    (MLPs; LeNet's ``aten.convolution_backward`` has no forward derivative).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    spec = _Spec(module, layout)
    fn = _mlp_grad if spec.kind == "mlp" else _lenet_grad

    def grads(W, x, y):
        if not no_grad:
            return fn(spec, W, x, y, loss)
        with torch.no_grad():
            return fn(spec, W, x, y, loss)

    return grads


def make_fast_step(module: nn.Module, layout: Layout, loss: str, optimizer) -> Callable:
    """The single-network update map ``step(w (P,), state, x, y, hp) -> (w_new, state_new,
    loss)`` of :func:`pathdep.core.dynamics.make_step`, with the hand-written gradient.

    Meant for tangent maps (Lyapunov spectra): ``torch.func.jvp`` of this step, vmapped over
    ``k`` tangent vectors, runs the first layer's tangent for all ``k`` vectors as one
    GEMM ``x @ [dW_1 ... dW_k]^T`` and its gradient tangent as one GEMM (the shared-batch
    structure of the ensemble step, with tangents in place of members). MLPs only.

    Raises:
        ValueError: for a model other than :class:`~pathdep.core.models.MLP`.
    """
    if not (type(module) is MLP and supports(module)):
        raise ValueError(f"lyapunov: the fast tangent step needs an MLP, got {type(module).__name__}")
    grads = fast_gradients(module, layout, loss, no_grad=False)

    def step(w, state, x, y, hp):
        G, value = grads(w.unsqueeze(0), x, y)
        w_new, st_new = optimizer.update(w, G[0], state, hp)
        return w_new, st_new, value[0]

    return step


def _plain_sgd(optimizer) -> bool:
    """SGD whose momentum and weight decay are zero for every member (specialised away):
    the update is ``w - lr g`` and the momentum buffer never changes."""
    return (optimizer.name == "sgd" and not optimizer.nesterov
            and {"momentum", "weight_decay"} <= set(optimizer.zero))


def make_fast_ensemble_step(module: nn.Module, layout: Layout, loss: str, optimizer) -> Callable:
    """The shared-batch ensemble update map with a hand-written forward and backward.

    Args:
        module: an :class:`~pathdep.core.models.MLP` or :class:`~pathdep.core.models.LeNet5`
            (its dtype is irrelevant; the parameters come from ``W``).
        layout: the flat layout of ``module``.
        loss: ``"cross_entropy"`` or ``"mse"``.
        optimizer: a :class:`pathdep.core.optim.Optimizer`.

    Returns:
        ``ens_step(W (K, P), states, x (B, ...), y, hp {name: (K,)}) -> (W_new, states_new,
        losses (K,))``, the same signature and values (to rounding) as
        ``make_ensemble_step(make_step(apply, loss, optimizer), shared_batch=True)``.

    Raises:
        ValueError: for a model without a fast path (see :func:`supports`).
    """
    grads = fast_gradients(module, layout, loss)
    update = torch.vmap(optimizer.update, in_dims=(0, 0, 0, 0))
    plain_sgd = _plain_sgd(optimizer)
    if plain_sgd:
        spec = _Spec(module, layout)
        fn = _mlp_grad if spec.kind == "mlp" else _lenet_grad

        def sgd_step(W, states, x, y, hp):
            # w - lr g fused into the gradient pass (Optimizer._sgd with momentum and
            # weight decay specialised away: the buffer is untouched, the counter steps)
            with torch.no_grad():
                lr = hp["lr"].to(W.dtype) if "lr" in hp else torch.full(
                    (W.shape[0],), optimizer.defaults["lr"], dtype=W.dtype, device=W.device)
                W_new, value = fn(spec, W, x, y, loss, lr)
                return W_new, (states[0] + 1, *states[1:]), value

        return sgd_step

    def ens_step(W, states, x, y, hp):
        G, value = grads(W, x, y)
        with torch.no_grad():
            W_new, st_new = update(W, G, states, hp)
        return W_new, st_new, value

    return ens_step


def make_grouped_step(group_step: Callable, groups: list[tuple[int, int]]) -> Callable:
    """An ensemble update map over contiguous member groups, each with its own shared batch.

    Args:
        group_step: a shared-batch ensemble step ``(W (k, P), states, x (B, ...), y (B,), hp)``
            (e.g. :func:`make_fast_ensemble_step`).
        groups: ``[(start, stop), ...]`` covering the K members in order
            (:attr:`pathdep.core.schedule.Schedule.groups`: R replicate baselines and their copies).

    Returns:
        ``step(W (K, P), states, x (G, B, ...), y (G, B), hp {name: (K,)})``: group g's members
        step on batch ``x[g]``; the results are concatenated in member order (equal to the
        generic per-member step with each member's batch, tests/core/test_fast.py).
    """
    def step(W, states, x, y, hp):
        outs = [group_step(W[a:b], tuple(s[a:b] for s in states), x[g], y[g], {h: v[a:b] for h, v in hp.items()})
                for g, (a, b) in enumerate(groups)]
        return (torch.cat([o[0] for o in outs]), tuple(torch.cat(p) for p in zip(*(o[1] for o in outs))),
                torch.cat([o[2] for o in outs]))

    return step


def ensemble_step_for(module: nn.Module, layout: Layout, apply: Callable, optimizer, loss: str,
                      shared_batch: bool, fast: bool, groups: list[tuple[int, int]] | None = None) -> Callable:
    """The ensemble update map a training loop should use.

    Returns :func:`make_fast_ensemble_step` when ``fast`` is set, the batch is shared and
    the model is supported; with ``groups`` (members in contiguous groups that share a batch,
    fewer groups than members) the fast step per group (:func:`make_grouped_step`, batches
    ``(G, B, ...)``); else the generic vmapped
    ``make_ensemble_step(make_step(apply, loss, optimizer), shared_batch)`` (the
    reference, per-member batches ``(K, B, ...)`` when not shared). All have the signature
    ``(W, states, x, y, hp) -> (W, states, losses)``.
    """
    if fast and shared_batch and supports(module):
        return make_fast_ensemble_step(module, layout, loss, optimizer)
    if fast and groups is not None and 1 < len(groups) < groups[-1][1] and supports(module):
        return make_grouped_step(make_fast_ensemble_step(module, layout, loss, optimizer), groups)
    if member_loop_preferred(module):
        from pathdep.core.resnet import make_autograd_step, make_member_loop
        b = None if shared_batch else 0
        return make_member_loop(make_autograd_step(apply, loss, optimizer), (0, 0, b, b, 0))
    return make_ensemble_step(make_step(apply, loss, optimizer), shared_batch=shared_batch)


def member_loop_preferred(module: nn.Module, device: str | torch.device | None = None) -> bool:
    """ResNets and transformers on a CPU (``device``, default the parameters') step one member at a time (the
    same map as vmap, which there turns ResNets' convolutions into slower grouped ones and runs the transformer's
    batched matmuls slower than a loop); every other model and device vmaps (MLP/LeNet-5: the fast path first)."""
    from pathdep.core.resnet import ResNet
    from pathdep.core.transformer import Transformer

    p = next(module.parameters(), None)
    dev = torch.device(device if device is not None else (p.device if p is not None else "cpu"))
    return isinstance(module, (ResNet, Transformer)) and dev.type == "cpu"


def uses_groups(module: nn.Module, shared_batch: bool, fast: bool, groups: list[tuple[int, int]] | None) -> bool:
    """Whether :func:`ensemble_step_for` returns the grouped step (batches ``(G, B, ...)``)."""
    return bool(fast and not shared_batch and groups is not None and 1 < len(groups) < groups[-1][1]
                and supports(module))
