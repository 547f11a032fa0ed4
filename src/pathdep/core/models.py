"""Models and the flat parameter layout.

What it computes: the networks pathdep trains (an MLP with configurable hidden widths,
activation and bias, a LeNet-5-style CNN, and a decoder-only transformer,
:mod:`pathdep.core.transformer`), and the *layout* that maps one flat
parameter vector ``w`` of shape ``(P,)`` to the module's named tensors. Every other part
of pathdep works on flat vectors (ensembles are ``(K, P)`` tensors, trajectories are
``(n_checkpoints, K, P)`` arrays); the layout is the only place that knows about names
and shapes, and it is written into every trajectory file.

How it was checked: ``tests/test_models.py`` compares ``functional_call`` on a flat
vector with the module's own forward, counts parameters against ``sum(p.numel())``, and
checks ``width_for_param_count`` against the model it builds.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.func import functional_call

from pathdep.core.transformer import Transformer
from pathdep.io.layout import Layout  # noqa: F401  (re-exported: the flat vector's layout)

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


PARAMETERIZATIONS = ("standard", "ntk")


class MLP(nn.Module):
    """Fully connected network ``in -> hidden[0] -> ... -> hidden[-1] -> out``.

    Layers are named ``fc0, fc1, ...`` so parameter names read ``fc0.weight``,
    ``fc0.bias``; PyTorch stores a weight as ``(out, in)``.

    ``parameterization`` (Jacot et al. 2018; neural-tangents ``stax.Dense``):

    * ``"standard"``: ``z = x W^T + b``; the scale lives in the initial weights
      (``init.scheme``). ``sigma_w``/``sigma_b`` are ignored; the forward pass is exactly
      ``nn.Linear``'s (existing trajectories stay bit-identical).
    * ``"ntk"``: ``z = (sigma_w / sqrt(fan_in)) x W^T + sigma_b b`` with ``W, b ~ N(0, 1)``
      (:func:`pathdep.core.init.init_params` draws standard normals for such a module),
      so that learning rates of order 1 are stable at any width.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int,
                 activation: str = "relu", bias: bool = True, parameterization: str = "standard",
                 sigma_w: float = 1.0, sigma_b: float = 1.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"model.activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"model.parameterization: expected one of {list(PARAMETERIZATIONS)}, "
                             f"got {parameterization!r}")
        self.parameterization = parameterization
        self.sigma_w = float(sigma_w)
        self.sigma_b = float(sigma_b)
        self.bias = bool(bias)
        dims = [int(in_dim), *[int(h) for h in hidden], int(out_dim)]
        self.n_layers = len(dims) - 1
        for i in range(self.n_layers):
            self.add_module(f"fc{i}", nn.Linear(dims[i], dims[i + 1], bias=bias))
        self.act = ACTIVATIONS[activation]()
        self.dims = dims

    def _ntk_linear(self, i: int, x: torch.Tensor) -> torch.Tensor:
        layer = getattr(self, f"fc{i}")
        z = (self.sigma_w / math.sqrt(self.dims[i])) * (x @ layer.weight.t())
        if layer.bias is not None:
            z = z + self.sigma_b * layer.bias
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() > 2:  # images (B, C, H, W) -> (B, C*H*W)
            x = x.flatten(start_dim=1)
        ntk = self.parameterization == "ntk"
        for i in range(self.n_layers):
            x = self._ntk_linear(i, x) if ntk else getattr(self, f"fc{i}")(x)
            if i < self.n_layers - 1:
                x = self.act(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Post-activations of the last hidden layer ``(B, hidden[-1])`` (the inputs of the
        output layer; their Gram matrix is the empirical NNGP kernel)."""
        if x.dim() > 2:
            x = x.flatten(start_dim=1)
        ntk = self.parameterization == "ntk"
        for i in range(self.n_layers - 1):
            x = self.act(self._ntk_linear(i, x) if ntk else getattr(self, f"fc{i}")(x))
        return x


class LeNet5(nn.Module):
    """LeNet-5-style CNN (LeCun et al. 1998), with average pooling.

    conv0 (C->6, 5x5, padding 2 for 28x28 inputs) -> pool -> conv1 (6->16, 5x5) -> pool
    -> fc0 (->120) -> fc1 (->84) -> fc2 (->classes). Names ``conv0, conv1, fc0..fc2``.
    """

    def __init__(self, in_shape: Sequence[int], out_dim: int, activation: str = "relu",
                 bias: bool = True, channels: Sequence[int] = (6, 16), fc: Sequence[int] = (120, 84)):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"model.activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
        c, h, w = (int(v) for v in in_shape)
        pad = 2 if h == 28 else 0
        self.conv0 = nn.Conv2d(c, channels[0], 5, padding=pad, bias=bias)
        self.conv1 = nn.Conv2d(channels[0], channels[1], 5, bias=bias)
        self.pool = nn.AvgPool2d(2)
        self.act = ACTIVATIONS[activation]()
        with torch.no_grad():
            n_flat = self._features(torch.zeros(1, c, h, w)).shape[-1]
        dims = [n_flat, *fc, out_dim]
        self.n_fc = len(dims) - 1
        for i in range(self.n_fc):
            self.add_module(f"fc{i}", nn.Linear(dims[i], dims[i + 1], bias=bias))
        self.in_shape = (c, h, w)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.conv0(x)))
        x = self.pool(self.act(self.conv1(x)))
        return x.flatten(start_dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, *self.in_shape)
        x = self._features(x)
        for i in range(self.n_fc):
            x = getattr(self, f"fc{i}")(x)
            if i < self.n_fc - 1:
                x = self.act(x)
        return x


def build_model(spec: dict, in_shape: Sequence[int], out_dim: int) -> nn.Module:
    """Build the model named by a resolved ``model`` config block.

    Args:
        spec: ``{"kind": "mlp"|"lenet5"|"transformer", "hidden": [...], "activation": ...,
            "bias": ..., "parameterization": "standard"|"ntk", "sigma_w": ..., "sigma_b": ...}``
            (the last three for MLPs only; LeNet-5 is standard only); a transformer takes
            :data:`TRANSFORMER_KEYS` (:mod:`pathdep.core.transformer`).
        in_shape: one input's shape, e.g. ``(1, 28, 28)`` or ``(2,)``.
        out_dim: number of outputs (classes, or regression targets).
    """
    kind = spec.get("kind", "mlp")
    act = spec.get("activation", "relu")
    bias = bool(spec.get("bias", True))
    param = spec.get("parameterization", "standard")
    if kind == "mlp":
        in_dim = 1
        for d in in_shape:
            in_dim *= int(d)
        return MLP(in_dim, spec.get("hidden", [100]), out_dim, act, bias, param,
                   float(spec.get("sigma_w", 1.0)), float(spec.get("sigma_b", 1.0)))
    if param != "standard":
        raise ValueError(f"model.parameterization: {param!r} is implemented for kind mlp only, got kind {kind!r}")
    if kind == "transformer":
        return _build_transformer(spec, in_shape, out_dim)
    if kind == "lenet5":
        if len(in_shape) != 3:
            raise ValueError(f"model.kind: lenet5 needs image inputs (C, H, W), got input shape {tuple(in_shape)}")
        return LeNet5(in_shape, out_dim, act, bias)
    if kind == "resnet":   # pathdep.core.resnet: model.{depth, width, shortcut, norm}
        from pathdep.core.resnet import build_resnet
        return build_resnet(spec, in_shape, out_dim)
    raise ValueError(f"model.kind: expected one of {list(MODEL_KINDS)}, got {kind!r}")


MODEL_KINDS = ("lenet5", "mlp", "resnet", "transformer")

#: the keys of a ``model: {kind: transformer}`` block besides ``kind`` (``context`` defaults
#: to the dataset's sequence length)
TRANSFORMER_KEYS = ("n_layer", "n_head", "d_model", "d_mlp", "layernorm", "tied", "context", "activation", "bias")


def _build_transformer(spec: dict, in_shape: Sequence[int], out_dim: int) -> nn.Module:
    """A :class:`pathdep.core.transformer.Transformer` for token sequences ``in_shape = (T,)``;
    the vocabulary is ``out_dim`` (inputs and targets share the token ids)."""
    # the MLP keys (hidden, sigma_w, ...) that a run inherits from the defaults are ignored
    if len(in_shape) != 1:
        raise ValueError(f"model.kind: transformer needs token sequences (a modular_arithmetic or text "
                         f"dataset), got input shape {tuple(in_shape)}")
    T = int(in_shape[0])
    context = spec.get("context", T)
    if isinstance(context, int) and not isinstance(context, bool) and context < T:
        raise ValueError(f"model.context: expected >= the sequence length {T}, got {context}")
    return Transformer(int(out_dim), context, spec.get("n_layer", 1), spec.get("n_head", 4),
                       spec.get("d_model", 128), spec.get("d_mlp", 512), spec.get("layernorm", "pre"),
                       bool(spec.get("tied", False)), spec.get("activation", "relu"), bool(spec.get("bias", True)))


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def mlp_param_count(in_dim: int, width: int, depth: int, out_dim: int, bias: bool = True) -> int:
    """Parameters of an MLP with ``depth`` hidden layers of ``width``, counted from the model."""
    return count_params(MLP(in_dim, [width] * depth, out_dim, bias=bias))


def width_for_param_count(in_dim: int, depth: int, out_dim: int, n_params: int,
                          bias: bool = True, tol: float = 0.05) -> int:
    """Width ``w`` of ``depth`` equal hidden layers whose parameter count is closest to
    ``n_params``. Counts come from the built model, not a closed form (the seed's closed
    form drops a ``w`` term; DESIGN.md).

    Raises:
        ValueError: if no integer width reaches ``n_params`` within relative ``tol``.
    """
    if depth < 1:
        raise ValueError(f"model.depth: expected >= 1, got {depth}")

    def count(w: int) -> int:
        # Closed form verified against the built model in tests; building big models
        # in a bisection would be slow. D = (in+b) w + (depth-1)(w+b) w + (w+b) out.
        b = 1 if bias else 0
        return (in_dim + b) * w + (depth - 1) * (w + b) * w + (w + b) * out_dim

    lo, hi = 1, 1
    while count(hi) < n_params:
        hi *= 2
        if hi > 10**7:
            break
    while lo < hi:
        mid = (lo + hi) // 2
        if count(mid) < n_params:
            lo = mid + 1
        else:
            hi = mid
    best = min((w for w in (lo - 1, lo) if w >= 1), key=lambda w: abs(count(w) - n_params))
    actual = mlp_param_count(in_dim, best, depth, out_dim, bias)
    if abs(actual - n_params) > tol * n_params:
        raise ValueError(
            f"model.n_params: no integer width gives {n_params} parameters with depth {depth} "
            f"(closest: width {best} -> {actual}, off by more than {tol:.0%})")
    return best


def make_apply(module: nn.Module, layout: Layout):
    """Return ``apply(w, x) -> outputs`` evaluating ``module`` at the flat parameters ``w``.

    ``w`` has shape ``(P,)``; the function is pure and works under ``torch.vmap`` and
    ``torch.func.jvp``. It carries ``module`` and ``layout`` as attributes (the structured
    empirical NTK reads the layers from them).
    """

    def apply(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return functional_call(module, layout.unflatten(w), (x,))

    apply.module, apply.layout = module, layout   # read by the structured empirical NTK
    return apply
