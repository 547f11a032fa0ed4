"""A decoder-only transformer (GPT-2 style) that classifies from its last position.

What it computes: token ids ``x (B, T)`` (stored as floats by the data files; rounded to
integers here) go through token + learned position embeddings, ``n_layer`` blocks of causal
multi-head self-attention and a two-layer MLP (each added to the residual stream; with
``layernorm: pre`` a LayerNorm before each, and one before the unembedding, as GPT-2; with
``layernorm: none`` none at all, as Nanda et al. 2023's grokking model), and an
unembedding (its own matrix, or the token embedding's transpose when ``tied``).
:meth:`Transformer.forward` returns the logits of the **last position only**, ``(B,
out_dim)``, so a sequence task is an ordinary classification to every other part of
pathdep (losses, accuracy, function-space metrics, NTK outputs): modular arithmetic's
answer sits at the last position (``a b =``), and the ``text`` source's target is the
character after each window. :meth:`Transformer.forward_sequence` gives the logits of
every position ``(B, T, out_dim)`` (the forward pass computes the last block's queries and
MLP at the last position only, which is what makes the two differ in cost, not in value).

The vocabulary is the dataset's number of classes (``out_dim``): inputs and targets share
one set of token ids, so a tied unembedding is always defined.

Parameter names (the flat layout; alignment and analyses read them):
``embed.weight (V, d)``, ``pos.weight (context, d)``, per block ``i``:
``blocks.i.ln1.{weight,bias}`` (pre-LN only), ``blocks.i.attn.{q,k,v}.weight (H, dh, d)``
and ``blocks.i.attn.o.weight (d, H, dh)`` (``dh = d / n_head``: the head is an axis of its
own, so the layout tells the heads apart), ``blocks.i.attn.{q,v}.bias (H, dh)`` and
``blocks.i.attn.o.bias (d,)`` (no key bias: the softmax ignores it, so its gradient is
exactly 0 and Adam would move it by rounding noise), ``blocks.i.ln2.*``, ``blocks.i.mlp.fc_in.* (d_mlp, d)``,
``blocks.i.mlp.fc_out.* (d, d_mlp)``; ``ln_f.*`` (pre-LN); ``unembed.weight (V, d)``
(untied only). ``bias: false`` drops every linear bias (LayerNorms keep theirs).

Initialisation (``init.scheme: default``: each submodule's ``reset_parameters``), as the
code of Nanda et al. 2023: every weight matrix and both embeddings ``N(0, 1/d_model)``,
the untied unembedding ``N(0, 1/V)``, biases 0, LayerNorm gain 1 and shift 0. The fan-in
schemes (``kaiming_*``, ``hyperspherical``) cannot initialise a LayerNorm (no fan-in);
use ``default`` with ``layernorm: pre``.

How it was checked: ``tests/core/test_transformer.py`` (a K = 3 ensemble trained by the
vmapped pure step equals 3 sequential ``torch.nn`` copies under ``torch.optim.AdamW`` in
float64 over 20 steps to 1e-12 (measured ~4e-16), for pre-LN/none and tied/untied; ``forward`` equals the last
position of ``forward_sequence``; causality: changing a later token leaves earlier
positions' logits unchanged; the init's standard deviations; parameter counts).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Transformer", "LAYERNORMS"]

LAYERNORMS = ("pre", "none")

# the MLP activations: the same as pathdep.core.models.ACTIVATIONS (models imports this
# module, so it cannot import them from there; tests/core/test_transformer.py compares them)
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "identity": nn.Identity}


class _Linear(nn.Linear):
    """``nn.Linear`` with a normal initialisation ``N(0, std^2)`` and zero bias."""

    def __init__(self, d_in: int, d_out: int, bias: bool, std: float):
        self.std = float(std)
        super().__init__(d_in, d_out, bias=bias)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, 0.0, self.std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class _Embedding(nn.Module):
    """A lookup table ``weight (n, d)`` initialised ``N(0, std^2)``."""

    def __init__(self, n: int, d: int, std: float):
        super().__init__()
        self.std = float(std)
        self.weight = nn.Parameter(torch.empty(n, d))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, 0.0, self.std)


class _Heads(nn.Module):
    """Per-head projections ``weight (H, dh, d)``, ``bias (H, dh)`` (None: no bias); ``N(0, std^2)``
    init, zero bias. ``forward(a (B, T, d)) -> (B, H, T, dh)``."""

    def __init__(self, d: int, n_head: int, bias: bool, std: float):
        super().__init__()
        self.std = float(std)
        self.weight = nn.Parameter(torch.empty(n_head, d // n_head, d))
        self.bias = nn.Parameter(torch.empty(n_head, d // n_head)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, 0.0, self.std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        z = torch.einsum("btd,hed->bhte", a, self.weight)
        return z if self.bias is None else z + self.bias[:, None, :]


class _Merge(nn.Module):
    """The output projection ``weight (d, H, dh)``, ``bias (d,)``: ``(B, H, T, dh) -> (B, T, d)``."""

    def __init__(self, d: int, n_head: int, bias: bool, std: float):
        super().__init__()
        self.std = float(std)
        self.weight = nn.Parameter(torch.empty(d, n_head, d // n_head))
        self.bias = nn.Parameter(torch.empty(d)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, 0.0, self.std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("bhte,dhe->btd", z, self.weight)
        return out if self.bias is None else out + self.bias


class _Attention(nn.Module):
    def __init__(self, d: int, n_head: int, bias: bool):
        super().__init__()
        std = 1.0 / math.sqrt(d)
        # no key bias: it adds q . b_k to every score of a query, which the softmax ignores
        # (its gradient is exactly 0; Adam would move it by rounding noise / eps)
        self.q, self.k, self.v = (_Heads(d, n_head, bias and name != "k", std) for name in "qkv")
        self.o = _Merge(d, n_head, bias, std)
        self.dh = d // n_head

    def forward(self, a: torch.Tensor, last_only: bool) -> torch.Tensor:
        k, v = self.k(a), self.v(a)                                   # (B, H, T, dh)
        if last_only:  # the last position attends to all positions: no mask
            s = self.q(a[:, -1:]) @ k.transpose(-1, -2) / math.sqrt(self.dh)   # (B, H, 1, T)
        else:
            T = a.shape[1]
            s = self.q(a) @ k.transpose(-1, -2) / math.sqrt(self.dh)           # (B, H, T, T)
            causal = torch.ones(T, T, dtype=torch.bool, device=a.device).tril()
            s = s.masked_fill(~causal, float("-inf"))
        return self.o(torch.softmax(s, dim=-1) @ v)


class _MLP(nn.Module):
    def __init__(self, d: int, d_mlp: int, bias: bool, act: nn.Module):
        super().__init__()
        std = 1.0 / math.sqrt(d)
        self.fc_in = _Linear(d, d_mlp, bias, std)
        self.fc_out = _Linear(d_mlp, d, bias, std)
        self.act = act

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.act(self.fc_in(a)))


class _Block(nn.Module):
    def __init__(self, d: int, n_head: int, d_mlp: int, pre_ln: bool, bias: bool, act: nn.Module):
        super().__init__()
        self.pre_ln = pre_ln
        if pre_ln:
            self.ln1 = nn.LayerNorm(d)
        self.attn = _Attention(d, n_head, bias)
        if pre_ln:
            self.ln2 = nn.LayerNorm(d)
        self.mlp = _MLP(d, d_mlp, bias, act)

    def forward(self, h: torch.Tensor, last_only: bool) -> torch.Tensor:
        a = self.ln1(h) if self.pre_ln else h
        h = (h[:, -1:] if last_only else h) + self.attn(a, last_only)
        return h + self.mlp(self.ln2(h) if self.pre_ln else h)


class Transformer(nn.Module):
    """Decoder-only transformer; ``forward(x (B, T)) -> logits of the last position (B, V)``.

    Args:
        vocab: number of token ids (inputs and outputs; the dataset's ``out_dim``).
        context: number of learned positions (>= the sequence length).
        n_layer, n_head, d_model, d_mlp: sizes (``d_model`` divisible by ``n_head``).
        layernorm: ``"pre"`` (GPT-2) or ``"none"``.
        tied: unembedding = token embedding transposed.
        activation: the MLP's nonlinearity (``relu``, ``tanh``, ``gelu``, ``sigmoid``, ``identity``).
        bias: biases in every linear layer (attention and MLP).
    """

    def __init__(self, vocab: int, context: int, n_layer: int = 1, n_head: int = 4, d_model: int = 128,
                 d_mlp: int = 512, layernorm: str = "pre", tied: bool = False, activation: str = "relu",
                 bias: bool = True):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"model.activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if layernorm not in LAYERNORMS:
            raise ValueError(f"model.layernorm: expected one of {list(LAYERNORMS)}, got {layernorm!r}")
        for key, v in (("n_layer", n_layer), ("n_head", n_head), ("d_model", d_model), ("d_mlp", d_mlp),
                       ("context", context)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"model.{key}: expected an integer >= 1, got {v!r}")
        if d_model % n_head:
            raise ValueError(f"model.n_head: expected a divisor of d_model = {d_model}, got {n_head}")
        self.vocab, self.context, self.n_layer, self.n_head = int(vocab), int(context), n_layer, n_head
        self.d_model, self.d_mlp, self.layernorm, self.tied = d_model, d_mlp, layernorm, bool(tied)
        std = 1.0 / math.sqrt(d_model)
        self.embed = _Embedding(vocab, d_model, std)
        self.pos = _Embedding(context, d_model, std)
        pre = layernorm == "pre"
        self.blocks = nn.ModuleList(_Block(d_model, n_head, d_mlp, pre, bias, _ACTIVATIONS[activation]())
                                    for _ in range(n_layer))
        if pre:
            self.ln_f = nn.LayerNorm(d_model)
        if not self.tied:
            self.unembed = _Embedding(vocab, d_model, 1.0 / math.sqrt(vocab))

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        idx = x.round().long() if x.is_floating_point() else x.long()
        if idx.dim() == 1:
            idx = idx.unsqueeze(0)
        if idx.shape[-1] > self.context:
            raise ValueError(f"model.context: sequences of length {idx.shape[-1]} exceed the context "
                             f"{self.context}")
        return idx

    def _run(self, x: torch.Tensor, last_only: bool) -> torch.Tensor:
        idx = self._tokens(x)
        T = idx.shape[1]
        h = F.embedding(idx, self.embed.weight) + self.pos.weight[:T]
        for i, block in enumerate(self.blocks):
            h = block(h, last_only and i == len(self.blocks) - 1)
        if self.layernorm == "pre":
            h = self.ln_f(h)
        U = self.embed.weight if self.tied else self.unembed.weight
        return h @ U.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the last position, ``(B, vocab)``, for token ids ``x (B, T)``."""
        return self._run(x, True)[:, -1]

    def forward_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every position, ``(B, T, vocab)`` (causal: position t sees tokens <= t)."""
        return self._run(x, False)
