"""Residual networks: CIFAR-style ResNet-(6n+2) and ResNet-18/34, with or without BatchNorm.

What it computes: ``model: {kind: resnet, depth, width, shortcut, norm}``
(:func:`build_resnet`).

* ``depth = 6n + 2`` (8, 14, 20, 32, 44, 56, 110, ...): He et al. 2016, sec. 4.2. A 3x3
  stem convolution to ``16 k`` channels, three stages of ``n`` basic blocks with
  ``16 k, 32 k, 64 k`` channels (``k = width``; Zagoruyko & Komodakis' WideResNet width
  multiplier), the first block of stages 2 and 3 with stride 2, global average pooling and
  a linear head. ResNet-20 with option A and BatchNorm has 269,722 parameters (the paper's
  0.27M; ``tests/core/test_resnet.py`` pins it with the formula written out).
* ``depth = 18 | 34``: basic blocks 2-2-2-2 / 3-4-6-3 with ``64 k .. 512 k`` channels, a
  3x3 stride-1 stem and no max-pool (the CIFAR variant of He et al.'s ImageNet networks);
  ResNet-18 with option B for 10 classes on 3-channel inputs has 11,173,962 parameters.
* ``shortcut``: ``A`` = parameter-free identity; where a block changes shape the input is
  subsampled (``x[:, :, ::2, ::2]``) and the new channels are zeros **appended after** the
  input's channels (channel ``i < c_in`` of the output stream is channel ``i`` of the input
  stream). ``B`` = a 1x1 convolution with the block's stride (+ BatchNorm when ``norm:
  batch``) where the shape changes, identity elsewhere. Default: ``A`` for 6n+2, ``B`` for
  18/34.
* ``norm``: ``batch`` (``nn.BatchNorm2d`` after every convolution, momentum 0.1, eps 1e-5,
  running statistics without the ``num_batches_tracked`` counter, which momentum 0.1 never
  reads; convolutions without bias) or ``none`` (no normalisation; every convolution has a
  bias).
* ``activation``: ReLU by default (any of :data:`pathdep.core.models.ACTIVATIONS`' names).
  The MLP keys a run inherits from the defaults (``hidden``, ``bias``) are ignored.

Any input ``(C, H, W)`` works (every convolution pads, strides round up, the pool is
global): Fashion-MNIST ``1x28x28`` gives stage maps 28, 14, 7.

Parameter names (the flat layout): ``conv0.*``, ``bn0.*``, ``stages.{s}.{b}.conv1.*``,
``.bn1.*``, ``.conv2.*``, ``.bn2.*``, ``.short_conv.*``, ``.short_bn.*`` (option B where the
shape changes), ``fc.*``. Buffers (``norm: batch``): ``<bn>.running_mean``,
``<bn>.running_var`` in ``named_buffers()`` order (:func:`buffer_layout`).

Initialisation (``init.scheme: default``, each submodule's ``reset_parameters``): as
torchvision's ResNet, convolutions Kaiming-normal with fan-out and ReLU gain
(``N(0, 2 / (c_out * 3 * 3))``), their biases 0, BatchNorm weight 1 and bias 0, the head
PyTorch's ``nn.Linear`` default. The fan-in schemes cannot initialise a BatchNorm (no
fan-in): use ``default`` with ``norm: batch``.

Train/eval semantics of ``norm: batch``: BatchNorm's running statistics are **state**, one
flat vector ``b (Q,)`` per member beside its parameters ``w (P,)``.
:func:`make_apply_with_buffers` gives the pure ``apply(w, b, x, train) -> (out, b_new)``:
with ``train=True`` it normalises by the batch's statistics and returns the updated running
statistics (``r <- 0.9 r + 0.1 s``, the variance unbiased, as ``nn.BatchNorm2d``); with
``train=False`` it normalises by ``b`` and returns ``b`` unchanged (evaluation: every member
with its own running statistics). It works under ``torch.vmap`` (per-member ``w`` and ``b``)
and inside ``torch.func.grad`` (``b_new`` as auxiliary output); :func:`make_step_with_buffers`
is the update map ``(w, state, b, x, y, hp) -> (w, state, b, loss)``. The plain
:func:`pathdep.core.models.make_apply` evaluates a ``norm: batch`` model with the module's
own buffers (no per-member state); training uses the functions here.

How it was checked: ``tests/core/test_resnet.py`` (parameter counts against closed forms,
forward shapes on 1x28x28 and 3x32x32, a vmapped ResNet-8 ``norm: none`` ensemble equals
sequential ``torch.nn`` copies under ``torch.optim.SGD`` with momentum and weight decay in
float64 over 20 steps; ``apply_with_buffers`` equals ``nn.BatchNorm2d`` modules in train and
eval mode for one member and a vmapped ensemble, and the vmapped BN step equals sequential
``torch.optim`` copies; :func:`make_bn_reset` equals ``nn.BatchNorm2d`` with ``momentum=None``;
the fast path refuses ResNets; bad depths fail in one line).
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value
from torch.utils import _pytree as pytree

from pathdep.io.layout import Layout

__all__ = ["ResNet", "build_resnet", "RESNET_KEYS", "buffer_layout", "buffers_of", "make_apply_with_buffers",
           "make_ensemble_step_with_buffers", "make_autograd_step",
           "make_bn_reset", "make_member_loop", "make_step_with_buffers", "stage_plan"]

#: the keys of a ``model: {kind: resnet}`` block besides ``kind``
RESNET_KEYS = ("depth", "width", "shortcut", "norm", "activation")
NORMS = ("batch", "none")
SHORTCUTS = ("A", "B")
_IMAGENET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

# the activations: the same names as pathdep.core.models.ACTIVATIONS (models imports this module)
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "identity": nn.Identity}


def stage_plan(depth: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(blocks per stage, base channels per stage)`` of a ResNet of ``depth``.

    Raises:
        ValueError: ``model.depth: ...`` unless ``depth = 6n + 2 >= 8`` or ``18 | 34``.
    """
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise ValueError(f"model.depth: expected 6n+2 (8, 20, 32, 44, 56, 110, ...) or 18 | 34 for kind resnet, got {depth!r}")
    if depth in _IMAGENET_BLOCKS:
        return _IMAGENET_BLOCKS[depth], (64, 128, 256, 512)
    if depth >= 8 and (depth - 2) % 6 == 0:
        n = (depth - 2) // 6
        return (n, n, n), (16, 32, 64)
    raise ValueError(f"model.depth: expected 6n+2 (8, 20, 32, 44, 56, 110, ...) or 18 | 34 for kind resnet, got {depth}")


class _Conv(nn.Conv2d):
    """``nn.Conv2d`` initialised as torchvision's ResNet: Kaiming-normal, fan-out, ReLU gain."""

    def reset_parameters(self) -> None:
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class _BatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` without the ``num_batches_tracked`` counter (momentum 0.1 never reads
    it; the buffers stay floating point, one flat vector per member)."""

    def __init__(self, c: int):
        super().__init__(c)
        self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1)


def _norm(c: int, norm: str) -> nn.Module | None:
    return None if norm == "none" else _BatchNorm(c)


class _Block(nn.Module):
    """Basic block: ``act(bn2(conv2(act(bn1(conv1 x)))) + shortcut(x))``."""

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str, norm: str, act: nn.Module):
        super().__init__()
        bias = norm == "none"
        self.conv1 = _Conv(c_in, c_out, 3, stride, 1, bias=bias)
        self.bn1 = _norm(c_out, norm)
        self.conv2 = _Conv(c_out, c_out, 3, 1, 1, bias=bias)
        self.bn2 = _norm(c_out, norm)
        self.act = act
        self.reshapes = stride != 1 or c_in != c_out
        self.shortcut, self.stride, self.pad = shortcut, stride, c_out - c_in
        if self.reshapes and shortcut == "B":
            self.short_conv = _Conv(c_in, c_out, 1, stride, 0, bias=bias)
            self.short_bn = _norm(c_out, norm)

    def _short(self, x: torch.Tensor) -> torch.Tensor:
        if not self.reshapes:
            return x
        if self.shortcut == "B":
            s = self.short_conv(x)
            return s if self.short_bn is None else self.short_bn(s)
        s = x[:, :, ::self.stride, ::self.stride]
        return F.pad(s, (0, 0, 0, 0, 0, self.pad)) if self.pad else s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        h = self.act(h if self.bn1 is None else self.bn1(h))
        h = self.conv2(h)
        h = h if self.bn2 is None else self.bn2(h)
        return self.act(h + self._short(x))


class ResNet(nn.Module):
    """A ResNet of ``depth`` (6n+2 or 18/34) and width multiplier ``width`` on ``in_shape`` images."""

    def __init__(self, in_shape: Sequence[int], out_dim: int, depth: int = 20, width: int = 1,
                 shortcut: str | None = None, norm: str = "batch", activation: str = "relu"):
        super().__init__()
        blocks, base = stage_plan(depth)
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"model.width: expected an integer >= 1 (channel multiplier) for kind resnet, got {width!r}")
        shortcut = shortcut if shortcut is not None else ("B" if depth in _IMAGENET_BLOCKS else "A")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"model.shortcut: expected one of {list(SHORTCUTS)}, got {shortcut!r}")
        if norm not in NORMS:
            raise ValueError(f"model.norm: expected one of {list(NORMS)}, got {norm!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"model.activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if len(in_shape) != 3:
            raise ValueError(f"model.kind: resnet needs image inputs (C, H, W), got input shape {tuple(in_shape)}")
        c = int(in_shape[0])
        self.in_shape = tuple(int(v) for v in in_shape)
        self.depth, self.width, self.shortcut, self.norm = depth, width, shortcut, norm
        self.act = _ACTIVATIONS[activation]()
        chans = [b * width for b in base]
        self.conv0 = _Conv(c, chans[0], 3, 1, 1, bias=norm == "none")
        self.bn0 = _norm(chans[0], norm)
        stages, c_in = [], chans[0]
        for s, (n, c_out) in enumerate(zip(blocks, chans)):
            stride = 1 if s == 0 else 2
            stage = [_Block(c_in if b == 0 else c_out, c_out, stride if b == 0 else 1, shortcut, norm, self.act)
                     for b in range(n)]
            stages.append(nn.Sequential(*stage))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(chans[-1], out_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The globally pooled features ``(B, channels of the last stage)`` (the head's inputs)."""
        x = x.reshape(-1, *self.in_shape)
        h = self.conv0(x)
        h = self.act(h if self.bn0 is None else self.bn0(h))
        return self.stages(h).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build_resnet(spec: dict, in_shape: Sequence[int], out_dim: int) -> ResNet:
    """The :class:`ResNet` of a resolved ``model: {kind: resnet, ...}`` block (:data:`RESNET_KEYS`;
    defaults: depth 20, width 1, shortcut A for 6n+2 / B for 18|34, norm batch, relu)."""
    return ResNet(in_shape, out_dim, spec.get("depth", 20), spec.get("width", 1), spec.get("shortcut"),
                  spec.get("norm", "batch"), spec.get("activation", "relu"))


# --------------------------------------------------------------------------- buffers as state


def buffer_layout(module: nn.Module) -> Layout:
    """The layout of the flat buffer vector ``b (Q,)``: ``module.named_buffers()`` in order
    (for a ``norm: batch`` ResNet the BatchNorms' ``running_mean`` and ``running_var``;
    empty for ``norm: none``)."""
    return Layout.from_named(module.named_buffers())


def buffers_of(module: nn.Module, blayout: Layout | None = None) -> torch.Tensor:
    """The module's own buffers as one flat vector ``(Q,)`` (BatchNorm's initial running
    statistics: means 0, variances 1)."""
    blayout = blayout or buffer_layout(module)
    bufs = dict(module.named_buffers())
    if not blayout.names:
        return torch.zeros(0)
    return torch.cat([bufs[n].detach().reshape(-1) for n in blayout.names])


def make_apply_with_buffers(module: nn.Module, layout: Layout, blayout: Layout | None = None) -> Callable:
    """Return the pure ``apply(w (P,), b (Q,), x, train: bool) -> (out, b_new (Q,))``.

    ``train=True``: BatchNorm normalises by the batch's statistics and ``b_new`` holds the
    updated running statistics (``nn.BatchNorm2d``'s in-place update, done on a copy of
    ``b``); ``train=False``: normalises by ``b``, ``b_new`` is ``b``. Works under
    ``torch.vmap`` over ``w`` and ``b`` (and ``x``) and inside ``torch.func.grad`` with
    ``b_new`` as auxiliary output. ``train`` must be a Python bool (it picks a train- or
    eval-mode copy of ``module``; the module itself is not modified).
    """
    blayout = blayout if blayout is not None else buffer_layout(module)
    mods = {True: copy.deepcopy(module).train(), False: copy.deepcopy(module).eval()}

    def apply(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, train: bool):
        bufs = {n: t.clone() for n, t in blayout.unflatten(b).items()}
        params = w if isinstance(w, dict) else layout.unflatten(w)   # a dict: make_autograd_step's leaves
        out = functional_call(mods[bool(train)], {**params, **bufs}, (x,))
        if not train or not blayout.names:
            return out, b
        return out, torch.cat([bufs[n].reshape(*b.shape[:-1], -1) for n in blayout.names], dim=-1)

    apply.module, apply.layout, apply.buffer_layout = module, layout, blayout
    return apply


def make_bn_reset(module: nn.Module, layout: Layout, blayout: Layout | None = None) -> Callable:
    """Return ``reset(w (P,), b (Q,), xs) -> b_new (Q,)``: BatchNorm statistics recomputed for
    the weights ``w`` on the batches ``xs`` (a sequence, or a tensor ``(n, B, ...)``).

    ``b_new`` is the average over the batches of each batch's mean and unbiased variance at
    the input of every BatchNorm, the network run in train mode (what ``nn.BatchNorm2d`` with
    ``momentum=None`` accumulates; Git Re-Basin's ``reset_bn_stats``, REPAIR's reset; Jordan
    et al. 2022). ``b`` only gives the shape (and the member axis under ``torch.vmap``); its
    values are not read; ``None`` takes both from ``w`` (e.g. under a vmap over
    interpolation points, ``apply_b(w, reset(w, None, xs), x, False)``). Interpolated networks ``(1 - lam) w_a + lam w_b`` are evaluated with
    these statistics, not with interpolated running statistics (which inflate barriers).
    """
    blayout = blayout if blayout is not None else buffer_layout(module)
    stats = copy.deepcopy(module).train()
    for m in stats.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0          # running <- batch statistic (the old value is multiplied by 0)

    def reset(w: torch.Tensor, b: torch.Tensor | None, xs) -> torch.Tensor:
        if b is None:   # zeros carrying w's member axis under vmap (w[:1] * 0 is batched there)
            b = w.new_zeros(blayout.n_params) + 0 * w[:1]
        total, n = None, 0
        params = layout.unflatten(w)
        for x in xs:
            bufs = {name: torch.zeros_like(t) for name, t in blayout.unflatten(b).items()}
            functional_call(stats, {**params, **bufs}, (x,))
            s = torch.cat([bufs[name].reshape(*b.shape[:-1], -1) for name in blayout.names], dim=-1)
            total, n = (s if total is None else total + s), n + 1
        if n == 0:
            raise ValueError("reset: no batches to recompute the BatchNorm statistics on")
        return total / n

    return reset


def make_step_with_buffers(apply_b: Callable, loss: str, optimizer) -> Callable:
    """The pure update map of one network with buffers (``norm: batch``).

    Args:
        apply_b: from :func:`make_apply_with_buffers`.
        loss: ``"cross_entropy"`` or ``"mse"`` (:func:`pathdep.core.dynamics.loss_value`).
        optimizer: a :class:`pathdep.core.optim.Optimizer`.

    Returns:
        ``step(w, state, b, x, y, hp) -> (w_new, state_new, b_new, batch_loss)``: the forward
        pass in train mode at ``(w, b)`` gives the loss (at ``w``, before the update), its
        gradient and the new running statistics; vmap it with ``in_dims=(0, 0, 0, None,
        None, 0)`` for a shared batch.
    """
    from pathdep.core.dynamics import loss_value

    def L(w, b, x, y):
        out, b_new = apply_b(w, b, x, True)
        value = loss_value(loss, out, y)
        return value, (value, b_new)

    gv = grad_and_value(L, has_aux=True)

    def step(w, state, b, x, y, hp):
        g, (_, (value, b_new)) = gv(w, b, x, y)
        w_new, state_new = optimizer.update(w, g, state, hp)
        return w_new, state_new, b_new.detach(), value.detach()

    return step


def make_member_loop(step: Callable, in_dims: tuple) -> Callable:
    """The map ``torch.vmap(step, in_dims=in_dims)`` computed one member at a time.

    Arguments with ``in_dims`` 0 (tensors, or tuples / dicts of tensors: optimiser states,
    hyperparameters) are indexed per member, the others are shared; the outputs are stacked
    along a new leading axis. The same pure map as the vmapped step (equal to it in float64,
    ``tests/core/test_resnet.py``); on a CPU it runs convolutional ensembles at the speed of
    a loop of torch models, where ``torch.vmap`` turns the members' convolutions into
    grouped convolutions whose backward is slower (``bench/bench_resnet.py``: ResNet-8,
    K = 9, 1 thread: vmap 1.5-2x slower than the loop, this map within 10 % of it).
    """
    def ens(*args):
        K = next(pytree.tree_leaves(a)[0].shape[0] for a, d in zip(args, in_dims) if d == 0)
        outs = [step(*[pytree.tree_map(lambda t: t[k], a) if d == 0 else a for a, d in zip(args, in_dims)])
                for k in range(K)]
        leaves, spec = zip(*(pytree.tree_flatten(o) for o in outs))
        return pytree.tree_unflatten([torch.stack(ts) for ts in zip(*leaves)], spec[0])

    return ens


def make_ensemble_step_with_buffers(apply_b: Callable, loss: str, optimizer, shared_batch: bool = True,
                                    loop: bool = False) -> Callable:
    """The ensemble update map of networks with buffers (``norm: batch``).

    Args:
        apply_b: from :func:`make_apply_with_buffers`; ``loss``, ``optimizer``: as in
            :func:`make_step_with_buffers`.
        shared_batch: all members see ``x (B, ...)``; otherwise ``x`` is ``(K, B, ...)``.
        loop: one member at a time (:func:`make_member_loop`, the CPU path of
            :func:`pathdep.core.fast.member_loop_preferred`) instead of ``torch.vmap``; the same map.

    Returns:
        ``ens_step(W (K, P), states, B (K, Q), x, y, hp {name: (K,)}) -> (W, states, B, losses (K,))``.
    """
    b = None if shared_batch else 0
    in_dims = (0, 0, 0, b, b, 0)
    if loop:
        return make_member_loop(make_autograd_step(apply_b, loss, optimizer, buffers=True), in_dims)
    return torch.vmap(make_step_with_buffers(apply_b, loss, optimizer), in_dims=in_dims)


def make_autograd_step(apply: Callable, loss: str, optimizer, buffers: bool = False) -> Callable:
    """The update map of :func:`pathdep.core.dynamics.make_step` (``buffers=False``,
    ``apply(w, x)``) or of :func:`make_step_with_buffers` (``buffers=True``, ``apply_b``), its
    gradient taken by ``torch.autograd.grad`` with respect to one leaf tensor per parameter
    (``apply.module``, ``apply.layout``) instead of ``torch.func`` on the flat vector: the same
    pure map (equal in float64, ``tests/core/test_resnet_bn.py``), not vmappable, ~30 % faster
    per member on a CPU (ResNet-20, batch 128: torch.func's wrapped tensors slow every
    convolution down, and the flat vector's slices each add a zero-filled ``(P,)`` gradient).
    For :func:`make_member_loop`. Generic over the model (any ``apply`` of
    :func:`pathdep.core.models.make_apply`: the transformer's CPU path too, equal to vmap and torch AdamW
    with ``constrain_norm``, ``tests/core/test_transformer_loop.py``) and the pure optimizer."""
    from pathdep.core.dynamics import loss_value

    module, layout = apply.module, apply.layout

    def step(w, state, *args):
        b, (x, y, hp) = (args[0], args[1:]) if buffers else (None, args)
        with torch.enable_grad():
            params = {n: t.detach().requires_grad_() for n, t in layout.unflatten(w).items()}
            out, b_new = apply(params, b, x, True) if buffers else (functional_call(module, params, (x,)), None)
            value = loss_value(loss, out, y)
            gs = torch.autograd.grad(value, list(params.values()), allow_unused=True)
        g = torch.cat([(torch.zeros_like(t) if gt is None else gt).reshape(-1) for t, gt in zip(params.values(), gs)])
        w_new, state_new = optimizer.update(w, g, state, hp)
        if buffers:
            return w_new, state_new, b_new.detach(), value.detach()
        return w_new, state_new, value.detach()

    return step
