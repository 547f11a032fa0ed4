"""Batched evaluation of an ensemble on a data set: losses, accuracies and outputs.

What it computes: for K networks given as flat weights ``W (K, P)`` and a data set
``(x (N, ...), y)``, the forward pass ``apply(W[k], x)`` of all members at once
(``torch.vmap`` over the member axis, or a loop over members), in chunks of
``batch_size`` samples, and per member

* the mean loss over the N samples (:func:`pathdep.core.losses.sample_losses`: cross
  entropy, or ``0.5 * sum`` over outputs of the squared error), accumulated over chunks
  in float64;
* the accuracy (fraction of samples whose argmax output is the label; NaN for ``"mse"``);
* optionally the outputs ``(K, N, C)`` (for function-space distances, "cf." metrics,
  autocorrelations of outputs).

One function serves the metrics stage, the domino evaluation sets and the interpolation
curves (:func:`pathdep.analysis.interpolate.interpolation_curve`, with the interpolated
weights as the "members").

How it was checked: ``tests/core/test_evaluate.py`` (a linear model's MSE and cross
entropy by hand; chunked evaluation equals one batch to 1e-12 in float64; vmapped equals a
loop over members; the outputs equal ``apply`` per member).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from pathdep.core.losses import LOSSES, sample_losses

__all__ = ["Evaluation", "ensemble_forward", "evaluate"]


@dataclass
class Evaluation:
    """What :func:`evaluate` returns.

    Attributes:
        loss: ``(K,)`` float64, mean loss over the samples.
        accuracy: ``(K,)`` float64, fraction of argmax hits (NaN for ``"mse"``).
        outputs: ``(K, N, C)`` outputs on the device (None unless asked for).
    """

    loss: np.ndarray
    accuracy: np.ndarray
    outputs: torch.Tensor | None = None


def ensemble_forward(apply: Callable, vmap: bool = True) -> Callable:
    """``forward(W (K, P), x (B, ...)) -> outputs (K, B, C)`` without gradients.

    Args:
        apply: ``apply(w (P,), x) -> outputs (B, C)`` (see :func:`pathdep.core.models.make_apply`).
        vmap: vectorise over members with ``torch.vmap``; False: a loop over members
            (reference implementation; the same numbers).
    """
    vapply = torch.vmap(apply, in_dims=(0, None))

    def forward(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if vmap:
                return vapply(W, x)
            return torch.stack([apply(W[k], x) for k in range(W.shape[0])])

    return forward


def _chunk_sums(out: torch.Tensor, yb: torch.Tensor, loss: str, loss_dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss ``(K,)`` (float64, on the CPU) and number of argmax hits of one chunk."""
    if loss == "mse":
        yb = yb.reshape(out.shape[1:])
    if loss_dtype is not None:
        o, t = out.to(loss_dtype), (yb if loss == "cross_entropy" else yb.to(loss_dtype))
    else:
        o, t = out, (yb if loss == "cross_entropy" else yb.to(out.dtype))
    total = sample_losses(loss, o, t).sum(-1).double().cpu()
    if loss != "cross_entropy":
        return total, torch.zeros(out.shape[0], dtype=torch.float64)
    return total, (out.argmax(-1) == yb).double().sum(-1).cpu()


def evaluate(apply: Callable, W: torch.Tensor, x: torch.Tensor, y: torch.Tensor, loss: str,
             batch_size: int = 2000, outputs: bool = False, loss_dtype: torch.dtype | None = torch.float64,
             vmap: bool = True, forward: Callable | None = None) -> Evaluation:
    """Mean loss, accuracy and (optionally) outputs of every member on ``(x, y)``.

    Args:
        apply: ``apply(w (P,), x) -> outputs (B, C)``.
        W: flat weights ``(K, P)`` (on the device and in the dtype of the computation).
        x: inputs ``(N, ...)``, on the same device.
        y: integer labels ``(N,)`` (``"cross_entropy"``) or targets of the output shape
            (``(N, C)``, or ``(N,)`` for ``(N, 1)`` outputs) for ``"mse"``.
        loss: ``"cross_entropy"`` or ``"mse"`` (:mod:`pathdep.core.losses`).
        batch_size: samples per forward pass.
        outputs: also return the outputs ``(K, N, C)``.
        loss_dtype: dtype of the per-sample losses and their per-chunk sums (default
            float64); None: the outputs' dtype (the chunk sums are accumulated in float64
            either way).
        vmap: see :func:`ensemble_forward`.
        forward: a prebuilt :func:`ensemble_forward` (saves rebuilding it per call).

    Returns:
        :class:`Evaluation` with ``loss`` and ``accuracy`` ``(K,)`` float64 numpy arrays.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    forward = forward or ensemble_forward(apply, vmap)
    K, n = W.shape[0], len(x)
    loss_sum = torch.zeros(K, dtype=torch.float64)
    correct = torch.zeros(K, dtype=torch.float64)
    outs = []
    for i in range(0, n, batch_size):
        out = forward(W, x[i:i + batch_size])
        ls, hits = _chunk_sums(out, y[i:i + batch_size], loss, loss_dtype)
        loss_sum += ls
        correct += hits
        if outputs:
            outs.append(out)
    acc = (correct / n).numpy() if loss == "cross_entropy" else np.full(K, np.nan)
    return Evaluation((loss_sum / n).numpy(), acc, torch.cat(outs, 1) if outputs else None)
