"""The loss of each task, defined once: per sample, and its mean over a batch.

What it computes, for network outputs ``out (..., N, C)`` and targets ``y``:

* ``"cross_entropy"`` (classification): ``-log softmax(out)[y_n]`` per sample ``n``
  (integer labels ``y (N,)``); the loss is its mean over the samples.
* ``"mse"`` (regression): ``0.5 * sum_c (out_nc - y_nc)^2`` per sample (targets of the
  output shape ``(N, C)``); the loss is its mean over the samples, i.e. half the squared
  error summed over the outputs and averaged over the samples (not averaged over the
  outputs).

The training step (:func:`pathdep.core.dynamics.make_step`), the metrics, the evaluation
sets of the domino runs and the interpolation curves (:mod:`pathdep.analysis.interpolate`)
all use these two functions, so a loss in ``metrics.nc`` and on an interpolation curve
mean the same thing as the training loss.

How it was checked: ``tests/core/test_losses.py`` (a linear model's MSE and a two-class
cross entropy computed by hand; the batch mean equals the mean of the per-sample losses;
unknown names are refused).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("cross_entropy", "mse")


def _check(name: str) -> None:
    if name not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {name!r}")


def sample_losses(name: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Loss of every sample, in the dtype of ``out``.

    Args:
        name: ``"cross_entropy"`` or ``"mse"``.
        out: outputs ``(..., N, C)`` (leading axes: e.g. ensemble members).
        y: integer labels ``(N,)`` (cross entropy) or targets ``(N, C)`` (MSE),
            broadcast over the leading axes of ``out``.

    Returns:
        ``(..., N)``: ``-log softmax(out)[y]`` or ``0.5 * sum_c (out - y)^2``.
    """
    _check(name)
    if name == "cross_entropy":
        lp = F.log_softmax(out, -1)
        return -lp.gather(-1, y.expand(out.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    return 0.5 * ((out - y) ** 2).sum(-1)


def loss_value(name: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of :func:`sample_losses` over a batch ``out (N, C)``: the training loss.

    Cross entropy goes through the fused ``torch.nn.functional.cross_entropy`` (the same
    value; the training step's gradient and the hand-written kernels of
    :mod:`pathdep.core.fast` are pinned to it).
    """
    _check(name)
    if name == "cross_entropy":
        return F.cross_entropy(out, y)
    return sample_losses(name, out, y).mean()


def task_loss(task: str) -> str:
    """The loss of a task: ``"cross_entropy"`` for classification, else ``"mse"``."""
    return "cross_entropy" if task == "classification" else "mse"
