"""Loss and accuracy along the straight line between two networks, and loss barriers.

What it computes: for ``w(l) = (1 - l) w_a + l w_b`` on a grid of ``l`` in [0, 1], the
mean loss and accuracy of ``apply(w(l), x)`` on a data set (linear mode connectivity;
Frankle et al. 2020; Entezari et al. 2022; Ainsworth et al. 2023 when ``w_b`` has been
permutation-aligned with :mod:`pathdep.analysis.align`), and two scalar *barriers*:

* ``kind="linear"`` (reported by default), Entezari, Sedghi, Saukh & Neyshabur, "The Role
  of Permutation Invariance in Linear Mode Connectivity of Neural Networks" (ICLR 2022):
  ``B = max_l [L(l) - ((1 - l) L(0) + l L(1))]``, the height above the chord joining the
  endpoint losses. It is >= 0 on any grid containing both endpoints and exactly 0 for a
  loss that is convex along the line.
* ``kind="midpoint"``, as in the Git Re-Basin reference code (Ainsworth et al. 2023):
  ``B = max_l L(l) - (L(0) + L(1)) / 2``; for a convex curve it equals
  ``|L(1) - L(0)| / 2``, so it mixes the endpoint loss gap into the barrier.

:func:`loss_integral` gives the seed's "loss integrated over the interpolation" (trapezoid
rule in ``l``, optionally above the chord). Losses: the training losses of
:mod:`pathdep.core.losses`, evaluated by :func:`pathdep.core.evaluate.evaluate`:
``"cross_entropy"`` (mean over samples, integer labels) and ``"mse"`` (``0.5 * sum`` over
the outputs of the squared error, mean over samples), so the curves' endpoints are the
losses of ``metrics.nc``. Networks with BatchNorm (``norm: batch`` ResNets): ``prepare`` maps
the interpolated weights to what ``apply`` evaluates, e.g. the weights with their BatchNorm
statistics recomputed at every interpolation point on a fixed training subset
(:meth:`pathdep.core.context.RunContext.bn_reset`; Git Re-Basin, REPAIR, Jordan et al. 2022);
interpolating the running statistics instead inflates the barriers.

How it was checked: ``tests/analysis/test_interpolate.py``: for a linear regression the
MSE along the line is the parabola ``L(l) = (m(r^2) + 2 l m(r u) + l^2 m(u^2)) / 2``
(checked point by point, linear barrier 0, midpoint barrier ``|L1 - L0| / 2``); for a
scalar two-layer linear net ``y = w1 w2 x`` between ``(1, 1)`` and ``(-1, -1)`` the loss is
``m(x^2) (1 - (1 - 2l)^2)^2 / 2`` with barrier ``m(x^2) / 2``; two outputs by hand; identical endpoints give 0; the
vmapped and looped evaluations agree; closed forms for a quadratic curve.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from pathdep.core.evaluate import ensemble_forward, evaluate
from pathdep.core.losses import LOSSES

__all__ = ["interpolation_curve", "barrier", "loss_integral", "DEFAULT_LAMBDAS"]

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz

DEFAULT_LAMBDAS = np.linspace(0.0, 1.0, 25)
"""The 25-point grid of the Git Re-Basin reference code."""


def _regression_hits(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Accuracy ``(L,)`` of regression outputs ``(L, N, C)``: argmax of outputs vs of targets
    when C > 1, else NaN."""
    target = y.reshape(out.shape[1:])
    if out.dim() == 3 and out.shape[-1] > 1:
        return (out.argmax(-1) == target.argmax(-1)[None]).double().mean(-1).cpu()
    return torch.full((out.shape[0],), float("nan"), dtype=torch.float64)


def interpolation_curve(apply: Callable, w_a, w_b, x, y, lambdas: Sequence[float] | None = None,
                        loss: str = "cross_entropy", batch_size: int = 1024,
                        lambda_chunk: int | None = None, vmap: bool = True, prepare: Callable | None = None) -> dict:
    """Loss and accuracy of ``w(l) = (1 - l) w_a + l w_b`` on ``(x, y)``.

    Args:
        apply: ``apply(w (P,), x (B, ...)) -> outputs (B, C)`` (from ``make_apply``).
        w_a, w_b: endpoint weights ``(P,)`` (torch or numpy); computations use ``w_a``'s
            dtype (float32 if numpy float32, float64 if numpy float64).
        x: inputs ``(N, ...)``.
        y: integer labels ``(N,)`` for ``"cross_entropy"``; targets of the output shape
            (``(N, C)``, or ``(N,)`` for ``(N, 1)`` outputs) for ``"mse"``.
        lambdas: grid ``(L,)``; default :data:`DEFAULT_LAMBDAS` (25 points in [0, 1]).
        loss: ``"cross_entropy"`` or ``"mse"`` (:mod:`pathdep.core.losses`: ``0.5 * sum``
            over outputs, mean over samples).
        batch_size: samples per forward pass.
        lambda_chunk: lambdas evaluated together under ``torch.vmap`` (default: all);
            lower it to bound memory (``lambda_chunk * P`` weights plus activations).
        vmap: if False, loop over lambdas (reference implementation; same numbers).
        prepare: ``prepare(W (l, P)) -> Z (l, P')``, what ``apply`` takes for the interpolated
            networks (e.g. BatchNorm statistics recomputed per point appended); default: ``W``.

    Returns:
        ``{"lambdas": (L,), "loss": (L,), "accuracy": (L,)}`` numpy float64 arrays; the
        loss is the mean over the N samples; accuracy is the fraction of argmax hits (for
        ``"mse"``: argmax of outputs vs targets when C > 1, else NaN).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    lam_np = np.asarray(DEFAULT_LAMBDAS if lambdas is None else lambdas, dtype=np.float64).reshape(-1)
    w_a = torch.as_tensor(w_a)
    dtype, device = w_a.dtype, w_a.device
    w_b = torch.as_tensor(w_b, dtype=dtype, device=device)
    if w_a.shape != w_b.shape or w_a.dim() != 1:
        raise ValueError(f"w_a, w_b: expected two (P,) vectors, got {tuple(w_a.shape)} and {tuple(w_b.shape)}")
    x = torch.as_tensor(x)
    x = x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)
    y = torch.as_tensor(y, device=device)
    if loss == "cross_entropy":
        y = y.long()
    lam = torch.as_tensor(lam_np, dtype=dtype, device=device)
    chunk = len(lam_np) if lambda_chunk is None else max(1, int(lambda_chunk))
    forward = ensemble_forward(apply, vmap)
    losses, accs = [], []
    for s in range(0, len(lam_np), chunk):
        lc = lam[s:s + chunk, None]
        W = (1 - lc) * w_a[None] + lc * w_b[None]  # (l, P): the interpolated networks as "members"
        W = W if prepare is None else prepare(W)
        ev = evaluate(apply, W, x, y, loss, batch_size, outputs=(loss == "mse"), loss_dtype=None, forward=forward)
        losses.append(ev.loss)
        accs.append(ev.accuracy if loss == "cross_entropy" else _regression_hits(ev.outputs, y).numpy())
    return {"lambdas": lam_np, "loss": np.concatenate(losses), "accuracy": np.concatenate(accs)}


def _endpoints(lambdas: np.ndarray) -> tuple[int, int]:
    i0 = np.flatnonzero(np.isclose(lambdas, 0.0, atol=1e-12))
    i1 = np.flatnonzero(np.isclose(lambdas, 1.0, atol=1e-12))
    if len(i0) == 0 or len(i1) == 0:
        raise ValueError("lambdas: the grid must contain both endpoints 0 and 1 to define a barrier")
    return int(i0[0]), int(i1[0])


def barrier(curve_losses, lambdas, kind: str = "linear"):
    """Loss barrier along an interpolation curve.

    Args:
        curve_losses: ``(..., L)`` losses on the grid (e.g. ``curve["loss"]``).
        lambdas: ``(L,)`` grid; must contain 0 and 1.
        kind: ``"linear"`` (Entezari et al. 2022, default):
            ``max_l [L(l) - ((1 - l) L(0) + l L(1))]``; ``"midpoint"`` (Git Re-Basin
            reference code): ``max_l L(l) - (L(0) + L(1)) / 2``.

    Returns:
        float for a 1-D curve, else an array of shape ``(...)``.
    """
    L = np.asarray(curve_losses, dtype=np.float64)
    lam = np.asarray(lambdas, dtype=np.float64).reshape(-1)
    if L.shape[-1] != lam.shape[0]:
        raise ValueError(f"curve_losses: expected last axis of length {lam.shape[0]} (lambdas), got {L.shape}")
    i0, i1 = _endpoints(lam)
    L0, L1 = L[..., i0:i0 + 1], L[..., i1:i1 + 1]
    if kind == "linear":
        b = np.max(L - ((1 - lam) * L0 + lam * L1), axis=-1)
    elif kind == "midpoint":
        b = np.max(L, axis=-1) - 0.5 * (L0[..., 0] + L1[..., 0])
    else:
        raise ValueError(f"barrier kind: expected 'linear' or 'midpoint', got {kind!r}")
    return float(b) if b.ndim == 0 else b


def loss_integral(curve_losses, lambdas, subtract_linear: bool = True):
    """Trapezoid integral over ``l`` in [0, 1] of the loss along the line.

    Args:
        curve_losses: ``(..., L)`` losses.
        lambdas: ``(L,)`` increasing grid (containing 0 and 1 when ``subtract_linear``).
        subtract_linear: integrate ``L(l) - ((1 - l) L(0) + l L(1))`` (area above the
            chord) instead of ``L(l)``.

    Returns:
        float for a 1-D curve, else an array of shape ``(...)``.
    """
    L = np.asarray(curve_losses, dtype=np.float64)
    lam = np.asarray(lambdas, dtype=np.float64).reshape(-1)
    if subtract_linear:
        i0, i1 = _endpoints(lam)
        L = L - ((1 - lam) * L[..., i0:i0 + 1] + lam * L[..., i1:i1 + 1])
    v = _trapezoid(L, lam, axis=-1)
    return float(v) if np.ndim(v) == 0 else v
