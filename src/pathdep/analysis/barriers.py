"""Loss barriers between the baseline and its members over training.

What it computes: for checkpoints ``c`` and members ``k`` of an ensemble trajectory
``W (C, K, P)``, the loss and accuracy along the straight line ``(1 - l) w_0(c) + l w_k(c)``
from the baseline to the member (:func:`pathdep.analysis.interpolate.interpolation_curve`),
once with the member as it is and once after aligning it to the baseline
(:func:`pathdep.analysis.align.align_to_baseline` gather indices), on a train and a test
set; and the barriers of those curves: ``barrier`` (linear, Entezari et al. 2022:
``max_l [L(l) - ((1 - l) L(0) + l L(1))]``), ``barrier_midpoint`` (the Git Re-Basin code's
``max_l L(l) - (L(0) + L(1)) / 2``, Ainsworth et al. 2023) and ``barrier_integral`` (the
integral of ``L(l)`` above the chord).

How it was checked: ``tests/analysis/test_barriers.py`` (a member that is a permuted copy of
the baseline gives a flat aligned curve, barrier 0, and equal raw and aligned endpoints;
identical members give 0 both ways; the grid entries equal single
:func:`~pathdep.analysis.interpolate.interpolation_curve` calls).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from pathdep.analysis import interpolate as IP

__all__ = ["interpolation_grid", "barriers", "ALIGN", "SPLITS"]

ALIGN = ("raw", "aligned")
SPLITS = ("train", "test")


def interpolation_grid(apply: Callable, W: np.ndarray, ok: np.ndarray, gather: Mapping, members, checkpoints,
                       xs: Mapping, ys: Mapping, lambdas: np.ndarray, loss: str, batch_size: int,
                       dtype: torch.dtype, device, base: np.ndarray | None = None,
                       prepare: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Loss and accuracy along ``(1 - l) w_b + l w_k``, raw and aligned, on every split, from
    each member's own baseline ``b = base[k]`` (row 0 when ``base`` is None).

    Args:
        apply: ``apply(w (P,), x) -> outputs``.
        W: weights ``(C, K, P)``; ``ok`` ``(C, K)`` bool (invalid entries stay NaN).
        gather: ``{(checkpoint, member): gather index (P,)}`` aligning each interpolated
            member to the baseline (``W[c, k][gather]``).
        members: member indices ``(M,)``; ``checkpoints``: checkpoint indices ``(I,)``.
        xs, ys: ``{"train": tensor, "test": tensor}`` inputs and labels / targets.
        lambdas: the grid ``(L,)``.
        loss, batch_size: as in :func:`~pathdep.analysis.interpolate.interpolation_curve`.
        dtype, device: of the forward passes.
        base: ``(K,)`` own-baseline rows (:func:`pathdep.analysis.replicates.own_baseline`).
        prepare: passed to :func:`~pathdep.analysis.interpolate.interpolation_curve` (BatchNorm
            statistics recomputed at every interpolation point).

    Returns:
        ``(loss, accuracy)``, each ``(align=2, split=2, M, I, L)`` (axes as :data:`ALIGN`,
        :data:`SPLITS`).
    """
    shape = (len(ALIGN), len(SPLITS), len(members), len(checkpoints), len(lambdas))
    iloss, iacc = np.full(shape, np.nan), np.full(shape, np.nan)
    base = np.zeros(W.shape[1], dtype=int) if base is None else np.asarray(base, dtype=int)
    for ci, c in enumerate(checkpoints):
        for mi, k in enumerate(members):
            if not (ok[c, base[k]] and ok[c, k]):
                continue
            wa = torch.as_tensor(W[c, base[k]], dtype=dtype, device=device)
            for ai, aligned in enumerate((False, True)):
                wk = W[c, k][gather[(int(c), int(k))]] if aligned else W[c, k]
                wb = torch.as_tensor(np.ascontiguousarray(wk), dtype=dtype, device=device)
                for si, split in enumerate(SPLITS):
                    cur = IP.interpolation_curve(apply, wa, wb, xs[split], ys[split], lambdas, loss=loss,
                                                 batch_size=int(batch_size), prepare=prepare)
                    iloss[ai, si, mi, ci] = cur["loss"]
                    iacc[ai, si, mi, ci] = cur["accuracy"]
    return iloss, iacc


def barriers(losses: np.ndarray, lambdas: np.ndarray) -> dict[str, np.ndarray]:
    """``barrier``, ``barrier_midpoint`` and ``barrier_integral`` of curves ``(..., L)`` -> ``(...)``."""
    return {"barrier": IP.barrier(losses, lambdas, "linear"),
            "barrier_midpoint": IP.barrier(losses, lambdas, "midpoint"),
            "barrier_integral": IP.loss_integral(losses, lambdas, subtract_linear=True)}
