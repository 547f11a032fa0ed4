"""Weight-matching permutation spec of the transformer (:mod:`pathdep.core.transformer`).

What it computes: :func:`transformer_permutation_spec`, the
:class:`pathdep.analysis.align.PermutationSpec` of a transformer's layout, so that
:func:`pathdep.analysis.align.weight_matching` (Ainsworth et al. 2023) aligns two transformers.
Three kinds of permutation leave the function unchanged, and each gets one:

* ``P_mlp<i>`` (``d_mlp`` units) per block ``i``: the MLP's hidden units, rows of
  ``fc_in.weight``/``fc_in.bias`` and columns of ``fc_out.weight`` (the activation is
  elementwise);
* ``P_heads<i>`` (``n_head`` units) per block: whole heads, axis 0 of ``q``, ``k``, ``v``
  (weights ``(H, dh, d)`` and biases ``(H, dh)``) and axis 1 of ``o.weight (d, H, dh)``
  together (the heads' outputs are summed);
* ``P_res`` (``d_model`` units): the residual stream's coordinates, axis 1 of both
  embeddings, of the unembedding and of every weight reading the stream (q, k, v, fc_in),
  axis 0 of every weight and bias writing to it (o, fc_out), and the LayerNorms' gain and
  shift (LayerNorm's mean and variance over the coordinates are invariant under a
  permutation, so pre-LN allows it; it does not allow general rotations, which are not
  handled).

Not handled (the aligned distance is therefore an upper bound on the distance modulo every
symmetry): permutations of the ``dh`` coordinates inside a head (shared by q and k, and
separately by v and the columns of o), per-head invertible maps of those (q -> q A,
k -> k A^-T), and the softmax's and the unembedding's shift invariances.

How it was checked: ``tests/analysis/test_align_transformer.py`` plants random permutations of
every kind in random transformers (pre-LN and none, tied and untied, 2 blocks) in float64: the
permuted network's outputs equal the original's to 1e-12, and weight matching recovers the
planted permutations exactly (aligned distance 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pathdep.io.layout import Layout

__all__ = ["TransformerSpec", "is_transformer", "transformer_permutation_spec"]


@dataclass(frozen=True)
class TransformerSpec:
    """A permutation spec: the attributes of :class:`pathdep.analysis.align.PermutationSpec`
    (defined here, as :mod:`pathdep.analysis.align_resnet` does, since ``align`` imports this
    module)."""

    perm_sizes: dict
    view_shapes: dict
    axes_to_perm: dict
    perm_to_axes: dict

_BLOCK = re.compile(r"^blocks\.(\d+)\.")


def is_transformer(layout: Layout) -> bool:
    """The layout of a :class:`pathdep.core.transformer.Transformer`."""
    names = set(layout.names)
    return "embed.weight" in names and "pos.weight" in names and any(n.endswith("attn.q.weight") for n in names)


def _axes(name: str, shape: tuple, d: int) -> list:
    """The permutations on each axis of one parameter (block index substituted by the caller)."""
    leaf = name.split(".", 2)[-1] if _BLOCK.match(name) else name
    table = {
        "embed.weight": [None, "P_res"], "pos.weight": [None, "P_res"], "unembed.weight": [None, "P_res"],
        "ln_f.weight": ["P_res"], "ln_f.bias": ["P_res"],
        "ln1.weight": ["P_res"], "ln1.bias": ["P_res"], "ln2.weight": ["P_res"], "ln2.bias": ["P_res"],
        "attn.q.weight": ["P_heads", None, "P_res"], "attn.k.weight": ["P_heads", None, "P_res"],
        "attn.v.weight": ["P_heads", None, "P_res"],
        "attn.q.bias": ["P_heads", None], "attn.k.bias": ["P_heads", None], "attn.v.bias": ["P_heads", None],
        "attn.o.weight": ["P_res", "P_heads", None], "attn.o.bias": ["P_res"],
        "mlp.fc_in.weight": ["P_mlp", "P_res"], "mlp.fc_in.bias": ["P_mlp"],
        "mlp.fc_out.weight": ["P_res", "P_mlp"], "mlp.fc_out.bias": ["P_res"],
    }
    if leaf not in table:
        raise ValueError(f"layout: parameter {name!r} is not part of a pathdep transformer; cannot derive a "
                         "permutation spec")
    axes = table[leaf]
    if len(axes) != len(shape):
        raise ValueError(f"layout: parameter {name!r} has shape {shape}, expected {len(axes)} axes")
    return axes


def transformer_permutation_spec(layout: Layout):
    """The permutation spec (:class:`TransformerSpec`) of a transformer layout.

    Args:
        layout: the flat layout of a :class:`pathdep.core.transformer.Transformer`.

    Returns:
        A spec with ``P_res`` and, per block ``i``, ``P_heads<i>`` and ``P_mlp<i>``.

    Raises:
        ValueError: a parameter the transformer does not have, or of an unexpected rank.
    """
    shapes = dict(zip(layout.names, layout.shapes))
    d = shapes["embed.weight"][1]
    axes_to_perm, perm_sizes = {}, {"P_res": d}
    for name, shape in shapes.items():
        m = _BLOCK.match(name)
        axes = [None if p is None else (p if p == "P_res" or m is None else f"{p}{m.group(1)}")
                for p in _axes(name, tuple(shape), d)]
        for axis, p in enumerate(axes):
            if p is not None:
                perm_sizes.setdefault(p, shape[axis])
        axes_to_perm[name] = tuple(axes)
    perm_to_axes = {p: tuple((n, a) for n in layout.names for a, q in enumerate(axes_to_perm[n]) if q == p)
                    for p in perm_sizes}
    return TransformerSpec(perm_sizes=perm_sizes, view_shapes={n: tuple(s) for n, s in shapes.items()},
                           axes_to_perm=axes_to_perm, perm_to_axes=perm_to_axes)
