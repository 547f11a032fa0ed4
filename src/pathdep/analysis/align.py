"""Permutation alignment of two networks by weight matching ("Git Re-Basin").

What it computes: for two flat parameter vectors of the same architecture, the hidden-unit
permutations that bring the second network as close as possible (in L2) to the first,
following the *weight matching* algorithm of Ainsworth, Hayase & Srinivasa, "Git Re-Basin:
Merging Models modulo Permutation Symmetries" (ICLR 2023, arXiv 2209.04836): coordinate
ascent over the permutations, each sub-problem a linear assignment
(``scipy.optimize.linear_sum_assignment``). The permuted network computes exactly the same
function; the aligned distance ``|w_ref - P(w_other)|`` is the seed's ``d_w^perm``.

The *permutation spec* is derived from the :class:`pathdep.core.models.Layout` for the chained
architectures pathdep builds (:class:`~pathdep.core.models.MLP` and
:class:`~pathdep.core.models.LeNet5`): the output units of every layer but the last carry one
permutation ``P_<layer>`` acting on that layer's weight rows and bias, and on the next
layer's weight columns. Between the last convolution and the first linear layer the
flatten order is ``(C, H, W)``, so channel ``c`` owns the contiguous block of columns
``c*H*W ... (c+1)*H*W - 1`` of ``fc0.weight``; the spec views ``fc0.weight`` as
``(out, C, H*W)`` and permutes its axis 1. ResNets (:mod:`pathdep.core.resnet`): the spec of
:mod:`pathdep.analysis.align_resnet` (a permutation per residual stream and per block; option-A
streams as segments of a virtual layout, which :func:`weight_matching` and
:func:`permutation_index` map through), checked by ``tests/analysis/test_align_resnet.py``.
Transformers (:mod:`pathdep.core.transformer`): the spec of
:mod:`pathdep.analysis.align_transformer` (MLP hidden units and whole heads per block, the
residual stream), checked by ``tests/analysis/test_align_transformer.py``.

Convention: ``perms[p][i] = j`` means unit ``i`` of the permuted ``w_other`` is unit ``j``
of ``w_other`` (``np.take(W, perm, axis)``), i.e. the permutation maps reference units to
the other network's units.

How it was checked: ``tests/analysis/test_align.py`` plants a random permutation in a
random MLP (784-32-16-10) and a LeNet-5 on (1, 28, 28), checks that the permuted network's
outputs equal the original's (float64, 1e-5), that weight matching recovers exactly the
inverse permutation (aligned distance 0), and that for two independent networks the aligned
distance never exceeds the raw distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from pathdep.core.models import Layout

__all__ = [
    "PermutationSpec",
    "permutation_spec",
    "weight_matching",
    "permutation_index",
    "apply_permutation",
    "aligned_distance",
    "align_ensemble",
    "BaselineAlignment",
    "align_to_baseline",
]


@dataclass(frozen=True)
class PermutationSpec:
    """Which axes of which parameter tensors each hidden-unit permutation acts on.

    Attributes:
        perm_sizes: ``{perm name: number of units}``.
        view_shapes: ``{param name: shape}``; the shape each tensor is viewed in so that
            every permuted axis is explicit (e.g. ``fc0.weight`` of a LeNet-5 as
            ``(120, 16, 25)``).
        axes_to_perm: ``{param name: (perm name or None for each axis of its view shape)}``.
        perm_to_axes: ``{perm name: ((param name, axis), ...)}``, the inverse map.
    """

    perm_sizes: dict
    view_shapes: dict
    axes_to_perm: dict
    perm_to_axes: dict


def permutation_spec(layout: Layout) -> PermutationSpec:
    """Derive the permutation spec of a chained MLP / LeNet-5 from its layout.

    Layers are taken in ``layout.layers()`` order and assumed to feed each other in that
    order (true for :class:`~pathdep.core.models.MLP` and :class:`~pathdep.core.models.LeNet5`; the
    elementwise activations and the average pooling commute with channel permutations).
    Each layer but the last gets a permutation ``P_<layer>``.

    Args:
        layout: the flat parameter layout; weights ``(out, in)`` or ``(out, in, kh, kw)``.

    Returns:
        The :class:`PermutationSpec`.

    Raises:
        ValueError: if a layer has no ``.weight`` or consecutive layers do not chain.
    """
    from pathdep.analysis.align_resnet import is_resnet, resnet_permutation_spec

    if is_resnet(layout):   # pathdep.core.resnet: residual streams and blocks (analysis.align_resnet)
        return resnet_permutation_spec(layout)
    from pathdep.analysis.align_transformer import is_transformer, transformer_permutation_spec

    if is_transformer(layout):   # pathdep.core.transformer: MLP units, whole heads, residual stream
        return transformer_permutation_spec(layout)
    layers = layout.layers()
    shapes = dict(zip(layout.names, layout.shapes))
    for layer in layers:
        if f"{layer}.weight" not in shapes:
            raise ValueError(f"layout: layer {layer!r} has no '{layer}.weight'; cannot derive a permutation spec")
    view_shapes = {n: tuple(s) for n, s in shapes.items()}
    axes_to_perm: dict[str, list] = {n: [None] * len(s) for n, s in shapes.items()}
    perm_sizes: dict[str, int] = {}
    for cur, nxt in zip(layers[:-1], layers[1:]):
        w_cur, w_nxt = shapes[f"{cur}.weight"], shapes[f"{nxt}.weight"]
        n_units = w_cur[0]
        p = f"P_{cur}"
        perm_sizes[p] = n_units
        axes_to_perm[f"{cur}.weight"][0] = p
        if f"{cur}.bias" in shapes:
            axes_to_perm[f"{cur}.bias"][0] = p
        n_in = w_nxt[1]
        if n_in == n_units:
            axes_to_perm[f"{nxt}.weight"][1] = p
        elif len(w_cur) == 4 and len(w_nxt) == 2 and n_in % n_units == 0:
            # conv -> linear: flatten order (C, H, W); channel c owns a block of H*W columns
            block = n_in // n_units
            view_shapes[f"{nxt}.weight"] = (w_nxt[0], n_units, block)
            axes_to_perm[f"{nxt}.weight"] = [None, p, None]
        else:
            raise ValueError(
                f"layout: layers {cur!r} (out {n_units}) and {nxt!r} (in {n_in}) do not chain; "
                "cannot derive a permutation spec")
    perm_to_axes: dict[str, list] = {p: [] for p in perm_sizes}
    for name in layout.names:
        for axis, p in enumerate(axes_to_perm[name]):
            if p is not None:
                perm_to_axes[p].append((name, axis))
    return PermutationSpec(
        perm_sizes=perm_sizes,
        view_shapes=view_shapes,
        axes_to_perm={n: tuple(v) for n, v in axes_to_perm.items()},
        perm_to_axes={p: tuple(v) for p, v in perm_to_axes.items()},
    )


def _to_numpy(w) -> np.ndarray:
    if isinstance(w, torch.Tensor):
        return w.detach().cpu().to(torch.float64).numpy()
    return np.asarray(w, dtype=np.float64)


def _unflatten(w: np.ndarray, layout: Layout, spec: PermutationSpec) -> dict[str, np.ndarray]:
    if w.shape != (layout.n_params,):
        raise ValueError(f"w: expected shape ({layout.n_params},) for this layout, got {w.shape}")
    if getattr(spec, "virtual", None) is not None and layout != spec.virtual:   # a SegmentedSpec (option-A ResNets)
        w, layout = w[spec.gather], spec.virtual
    return {n: w[layout.slice(n)].reshape(spec.view_shapes[n]) for n in layout.names}


def _permuted(param: np.ndarray, name: str, spec: PermutationSpec, perms: dict, except_axis=None) -> np.ndarray:
    for axis, p in enumerate(spec.axes_to_perm[name]):
        if p is not None and axis != except_axis:
            param = np.take(param, perms[p], axis=axis)
    return param


def weight_matching(w_ref, w_other, layout: Layout, spec: PermutationSpec | None = None,
                    max_iter: int = 100, seed: int = 0, tol: float = 1e-12) -> dict[str, np.ndarray]:
    """Find the permutations of ``w_other`` that maximise ``<w_ref, P(w_other)>``.

    Ainsworth et al. (2023), Algorithm 1: starting from identities, sweep over the
    permutations in a random order (a fresh order per sweep, from ``seed``); for
    permutation ``P_l`` build ``A = sum_W W_ref[axis first] @ W_other'[axis first]^T`` over
    every tensor it touches (``W_other'`` with all other permutations applied), solve
    ``linear_sum_assignment(A, maximize=True)`` and keep the result if it raises the
    objective by more than ``tol``. Stop after a sweep with no such improvement, or after
    ``max_iter`` sweeps. Minimising ``|w_ref - P w_other|`` is the same problem.

    Args:
        w_ref: reference weights, shape ``(P,)`` (numpy or torch).
        w_other: weights to align, shape ``(P,)``.
        layout: their layout.
        spec: the permutation spec (derived from ``layout`` if None).
        max_iter: maximum number of sweeps.
        seed: seeds the random sweep order.
        tol: minimum objective improvement to accept a new permutation.

    Returns:
        ``{perm name: int array (n_units,)}``; apply with :func:`apply_permutation`.
    """
    spec = spec or permutation_spec(layout)
    a = _unflatten(_to_numpy(w_ref), layout, spec)
    b = _unflatten(_to_numpy(w_other), layout, spec)
    perms = {p: np.arange(n) for p, n in spec.perm_sizes.items()}
    names = list(spec.perm_sizes)
    rng = np.random.default_rng(seed)
    for _ in range(int(max_iter)):
        progress = False
        for i in rng.permutation(len(names)):
            p = names[i]
            n = spec.perm_sizes[p]
            A = np.zeros((n, n))
            for name, axis in spec.perm_to_axes[p]:
                wa = np.moveaxis(a[name], axis, 0).reshape(n, -1)
                wb = np.moveaxis(_permuted(b[name], name, spec, perms, except_axis=axis), axis, 0).reshape(n, -1)
                A += wa @ wb.T
            _, ci = linear_sum_assignment(A, maximize=True)
            rows = np.arange(n)
            old, new = A[rows, perms[p]].sum(), A[rows, ci].sum()
            if new > old + tol:
                perms[p] = ci
                progress = True
        if not progress:
            break
    return perms


def permutation_index(layout: Layout, spec: PermutationSpec, perms: dict) -> np.ndarray:
    """Flat gather index ``idx`` (P,) with ``apply_permutation(w) == w[..., idx]``."""
    if getattr(spec, "virtual", None) is not None and layout != spec.virtual:   # a SegmentedSpec: map back
        out = np.empty_like(spec.gather)
        out[spec.gather] = spec.gather[permutation_index(spec.virtual, spec, perms)]
        return out
    idx = np.arange(layout.n_params)
    out = np.empty_like(idx)
    for name in layout.names:
        sl = layout.slice(name)
        out[sl] = _permuted(idx[sl].reshape(spec.view_shapes[name]), name, spec, perms).reshape(-1)
    return out


def apply_permutation(w, layout: Layout, spec: PermutationSpec, perms: dict):
    """Permute the hidden units of ``w``; the network function is unchanged.

    Args:
        w: weights ``(..., P)``, numpy or torch (the type is preserved).
        layout: their layout.
        spec: the permutation spec.
        perms: ``{perm name: int array}`` as returned by :func:`weight_matching`.

    Returns:
        The permuted weights, same shape and type as ``w``.
    """
    idx = permutation_index(layout, spec, perms)
    if isinstance(w, torch.Tensor):
        return w[..., torch.as_tensor(idx, device=w.device)]
    return np.asarray(w)[..., idx]


def aligned_distance(w_ref, w_other, layout: Layout, spec: PermutationSpec | None = None, **kwargs) -> float:
    """``|w_ref - P*(w_other)|_2`` after weight matching (the seed's ``d_w^perm``).

    Args:
        w_ref, w_other: weights ``(P,)``.
        layout, spec: as in :func:`weight_matching`; ``kwargs`` are passed on to it.

    Returns:
        The aligned L2 distance (float); never larger than the raw distance.
    """
    spec = spec or permutation_spec(layout)
    perms = weight_matching(w_ref, w_other, layout, spec, **kwargs)
    diff = _to_numpy(w_ref) - apply_permutation(_to_numpy(w_other), layout, spec, perms)
    return float(np.linalg.norm(diff))


def align_ensemble(w_ref, members, layout: Layout, spec: PermutationSpec | None = None, **kwargs):
    """Align every member of an ensemble to a reference.

    Args:
        w_ref: reference weights ``(P,)``.
        members: ``(K, P)`` weights.
        layout, spec, kwargs: as in :func:`weight_matching`.

    Returns:
        ``(aligned (K, P) numpy float64, distances (K,), perms list of K dicts)``.
    """
    spec = spec or permutation_spec(layout)
    ref = _to_numpy(w_ref)
    members = _to_numpy(members)
    aligned = np.empty_like(members)
    perms_all = []
    for k in range(members.shape[0]):
        perms = weight_matching(ref, members[k], layout, spec, **kwargs)
        aligned[k] = apply_permutation(members[k], layout, spec, perms)
        perms_all.append(perms)
    dist = np.linalg.norm(aligned - ref[None], axis=-1)
    return aligned, dist, perms_all


class BaselineAlignment(NamedTuple):
    """Result of :func:`align_to_baseline`.

    Attributes:
        dist: ``(K, C)`` raw L2 distance ``|w_k(t) - w_0(t)|`` (NaN where a member is invalid).
        dist_aligned: ``(K, C)`` ``|w_0(t) - P(w_k(t))|`` after weight matching, at the
            aligned checkpoints only (NaN elsewhere; 0 for the baseline).
        aligned: ``(C,)`` bool, the aligned checkpoints.
        gather: ``{(checkpoint, member): flat gather index (P,)}`` that aligns the member to
            the baseline (``w_k[gather]``), for the requested pairs.
        gather_buffers: the same for the member's buffers ``(Q,)`` (BatchNorm running
            statistics permuted with their channels) when a ``buffer_layout`` was given, else ``{}``.
    """

    dist: np.ndarray
    dist_aligned: np.ndarray
    aligned: np.ndarray
    gather: dict
    gather_buffers: dict = {}


def align_to_baseline(W, ok, layout: Layout, checkpoints, keep=(), max_iter: int = 100,
                      seed: int = 0, base: np.ndarray | None = None,
                      buffer_layout: Layout | None = None) -> BaselineAlignment:
    """Raw and permutation-aligned distances of every member to its own baseline (member 0
    when ``base`` is None; ``base (K,)`` the own-baseline rows of replicate baselines).

    Weight matching (:func:`weight_matching`, float64) of each valid member to the baseline
    at the same checkpoint, at ``checkpoints`` and at the checkpoints of ``keep``.

    Args:
        W: weights ``(C, K, P)`` (any float dtype; distances in float64).
        ok: ``(C, K)`` bool, valid (finite) entries.
        layout: their layout.
        checkpoints: indices of the checkpoints whose aligned distances are reported.
        keep: ``(checkpoint, member)`` pairs whose gather indices are returned (aligned
            even where their checkpoint is not in ``checkpoints``).
        max_iter, seed: passed to :func:`weight_matching`.
        buffer_layout: the layout of the members' buffers (BatchNorm statistics; Git Re-Basin:
            they do not enter the matching objective, they follow the parameters' permutations):
            also return their gather indices. None or empty: ``gather_buffers`` is ``{}``.

    Returns:
        :class:`BaselineAlignment`.

    How it was checked: ``tests/analysis/test_align.py`` (a planted permutation of the
    baseline gives aligned distance 0 and a gather index that undoes it).
    """
    C, K, _ = W.shape
    spec = permutation_spec(layout)
    keep = {(int(c), int(k)) for c, k in keep}
    b = np.zeros(K, dtype=int) if base is None else np.asarray(base, dtype=int)
    dist = np.full((K, C), np.nan)
    dist_al = np.full((K, C), np.nan)
    gather: dict[tuple[int, int], np.ndarray] = {}
    gather_b: dict[tuple[int, int], np.ndarray] = {}
    bspec = permutation_spec(buffer_layout) if buffer_layout is not None and buffer_layout.n_params else None
    for c in range(C):
        Wc = W[c].astype(np.float64)
        dist[:, c] = np.linalg.norm(Wc - Wc[b], axis=1)
    for c in sorted({int(c) for c in checkpoints} | {c for c, _ in keep}):
        Wc = W[c].astype(np.float64)
        for k in range(K):
            if not (ok[c, b[k]] and ok[c, k]):
                continue
            if k == b[k]:
                dist_al[k, c] = 0.0
                continue
            perms = weight_matching(Wc[b[k]], Wc[k], layout, spec, max_iter=max_iter, seed=seed)
            idx = permutation_index(layout, spec, perms)
            dist_al[k, c] = float(np.linalg.norm(Wc[b[k]] - Wc[k][idx]))
            if (c, k) in keep:
                gather[(c, k)] = idx
                if bspec is not None:
                    gather_b[(c, k)] = np.asarray(permutation_index(buffer_layout, bspec, perms)).reshape(-1)
    aligned = np.zeros(C, dtype=bool)
    aligned[np.asarray(checkpoints, dtype=np.int64)] = True
    dist_al[:, ~aligned] = np.nan
    dist[~np.asarray(ok).T] = np.nan
    return BaselineAlignment(dist, dist_al, aligned, gather, gather_b)
