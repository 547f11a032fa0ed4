"""Git Re-Basin permutation specs of ResNets (:mod:`pathdep.core.resnet`), both shortcut options.

What it computes: the permutation spec (:class:`ResNetSpec`: the fields of
:class:`pathdep.analysis.align.PermutationSpec`, plus a virtual layout for option A) that
:func:`pathdep.analysis.align.permutation_spec` returns for a ResNet layout (parameters, or
the BatchNorm buffers of :func:`pathdep.core.resnet.buffer_layout`), following Ainsworth,
Hayase & Srinivasa (ICLR 2023), sec. 3 and their ResNet spec:

* one permutation per **block** ``P_block<s>_<b>``: the rows of ``conv1`` (and its bias or
  ``bn1``) and the columns of ``conv2``;
* the **residual stream** of stage ``s`` is shared by everything that writes into it (the
  stem for stage 0, every block's ``conv2`` / ``bn2``, the option-B projection) and
  everything that reads it (the next block's ``conv1`` and projection columns, the head's
  columns). With option B the projection decouples the stages: stream ``s`` is one
  permutation ``P_stream<s>``. With option A the zero-padded identity carries channel ``i``
  of stream ``s - 1`` into channel ``i`` of stream ``s``, so stream ``s`` is the
  concatenation of the ``c_{s-1}`` channels of stream ``s - 1`` (their permutations) and
  ``c_s - c_{s-1}`` new channels with a new permutation ``P_stream<s>``: a block-diagonal
  permutation (the only ones the padded identity commutes with).
* every per-channel tensor (conv bias, BatchNorm weight and bias, running mean and
  variance) follows its convolution's output channels; the same permutation names are used
  for the parameter and the buffer layouts, so one ``perms`` dict permutes both.

Option A needs permutations that act on **segments** of an axis, which a plain spec cannot
express: the spec then describes the network on a *virtual layout* ``virtual`` in which every
tensor is cut along its stream axes into one piece per segment (``gather``: the flat index
of each virtual entry in the real vector, a bijection). :mod:`pathdep.analysis.align` runs
weight matching on ``w[gather]`` and maps the permutation index back
(``idx_real[gather] = gather[idx_virtual]``). For option B no tensor is cut (``virtual`` is
None). (The module does not import :mod:`pathdep.analysis.align`, which imports it.)

How it was checked: ``tests/analysis/test_align_resnet.py`` (planted permutations of option-A
and option-B ResNets, with and without BatchNorm: the function is unchanged in float64, in
train and eval mode with the buffers permuted alike, and weight matching recovers the plant
exactly; the spec's structure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np

from pathdep.io.layout import Layout

__all__ = ["ResNetSpec", "resnet_permutation_spec", "is_resnet"]


@dataclass(frozen=True)
class ResNetSpec:
    """A permutation spec (the attributes of :class:`pathdep.analysis.align.PermutationSpec`).

    With ``virtual`` (option A) the first four describe the virtual layout, and ``gather
    (P,)`` is the real flat index of each virtual entry (``w_virtual = w[gather]``).
    """

    perm_sizes: dict
    view_shapes: dict
    axes_to_perm: dict
    perm_to_axes: dict
    virtual: Layout | None = field(default=None, compare=False)
    gather: np.ndarray | None = field(default=None, compare=False, repr=False)


def is_resnet(layout: Layout) -> bool:
    """A :class:`pathdep.core.resnet.ResNet`'s parameter or buffer layout."""
    return any(n.startswith("stages.0.0.") for n in layout.names) and any(n.startswith("bn0.") or n.startswith("conv0.")
                                                                       for n in layout.names)


def _streams(shapes: dict, stages: list[int]) -> list[list[tuple[str, int, int]]]:
    """Per stage, the segments ``(perm name, start, stop)`` of its residual stream's channels."""
    def width(s: int) -> int:
        return next(sh[0] for n, sh in shapes.items() if n.startswith(f"stages.{s}.0.conv2.")
                    or n.startswith(f"stages.{s}.0.bn2."))

    segs: list[list[tuple[str, int, int]]] = []
    for s in stages:
        c = width(s)
        projected = any(n.startswith(f"stages.{s}.0.short_") for n in shapes)
        if s == 0 or projected:
            segs.append([(f"P_stream{s}", 0, c)])
            continue
        prev = segs[-1]
        c_prev = prev[-1][2]
        segs.append(prev + ([(f"P_stream{s}", c_prev, c)] if c > c_prev else []))
    return segs


def _axis_perms(name: str, shape: tuple, streams: list) -> list:
    """For each axis of tensor ``name``: None, a block permutation name, or a stream's segments."""
    parts = name.split(".")
    out: list = [None] * len(shape)
    if parts[0] in ("conv0", "bn0"):
        out[0] = streams[0]
    elif parts[0] == "fc":
        if len(shape) == 2:
            out[1] = streams[-1]
    else:
        s, b, mod = int(parts[1]), int(parts[2]), parts[3]
        block = f"P_block{s}_{b}"
        out[0] = block if mod in ("conv1", "bn1") else streams[s]
        if len(shape) == 4:   # a convolution's input channels
            out[1] = block if mod == "conv2" else streams[s - 1 if (b == 0 and s > 0) else s]
    return out


def resnet_permutation_spec(layout: Layout) -> ResNetSpec:
    """The permutation spec of a ResNet's parameter (or buffer) layout.

    Returns:
        A :class:`ResNetSpec`; ``virtual`` is None when no axis carries more than one
        permutation (option B), else the virtual layout of the segments (option A).
    """
    shapes = dict(zip(layout.names, layout.shapes))
    stages = sorted({int(n.split(".")[1]) for n in layout.names if n.startswith("stages.")})
    streams = _streams(shapes, stages)
    v_names, v_shapes, v_axes, gathers = [], [], [], []
    for name, o in zip(layout.names, layout.offsets):
        shape = shapes[name]
        axes = _axis_perms(name, shape, streams)
        # the pieces of each axis: (perm or None, start, stop)
        pieces = [[(a, 0, n)] if a is None or isinstance(a, str) else a for a, n in zip(axes, shape)]
        index = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape) + o
        combos = list(product(*pieces))
        for i, combo in enumerate(combos):
            sl = tuple(slice(a, b) for _, a, b in combo)
            v_names.append(name if len(combos) == 1 else f"{name}#{i}")
            v_shapes.append(tuple(b - a for _, a, b in combo))
            v_axes.append(tuple(p for p, _, _ in combo))
            gathers.append(index[sl].reshape(-1))
    sizes = {}
    for sh, axes in zip(v_shapes, v_axes):
        for n, p in zip(sh, axes):
            if p is not None:
                sizes[p] = n
    perm_to_axes = {p: tuple((n, a) for n, axes in zip(v_names, v_axes) for a, q in enumerate(axes) if q == p)
                    for p in sizes}
    common = dict(perm_sizes=sizes, view_shapes=dict(zip(v_names, v_shapes)), axes_to_perm=dict(zip(v_names, v_axes)),
                  perm_to_axes=perm_to_axes)
    if len(v_names) == len(layout.names):
        return ResNetSpec(**common)
    offsets = np.concatenate([[0], np.cumsum([len(g) for g in gathers])[:-1]]).astype(int).tolist()
    virtual = Layout(tuple(v_names), tuple(v_shapes), tuple(offsets))
    return ResNetSpec(**common, virtual=virtual, gather=np.concatenate(gathers))
