"""Normalised autocorrelations (cosine similarities) of weight and output trajectories.

What it computes: for a trajectory ``x`` of shape ``(C, ..., *F)`` (C checkpoints, any
leading member axes, and ``F`` feature axes flattened into one vector: ``(P,)`` for
weights, ``(N, classes)`` for outputs), the normalised two-time correlation
``<x_s . x_t> / (|x_s| |x_t|)`` for three choices of the partner ``s``:

* ``ref="initial"``: ``s = 0``, the autocorrelation relative to the start of training,
  which the seed ("Path dependence in ML", scaling-laws notes) singles out as the one of
  interest for non-stationary training dynamics; also "cosine similarity to init".
* ``ref="baseline"``: the *baseline member at the same checkpoint*: ``x[t, k]`` against
  ``x[t, baseline_index]`` along the member axis (axis 1) - the seed's "cosine similarity
  to baseline". An explicit reference trajectory ``ref=array`` (broadcastable to ``x``)
  does the same for any partner.
* ``ref="lagged"``: ``s = t + lag`` (stationary-style ``R(tau)``), shape ``(C - lag, ...)``.

``center=True`` subtracts each vector's mean over its features first (Pearson
correlation instead of cosine). A zero vector gives NaN. :func:`decorrelation_time`
finds when a correlation curve first drops below ``1/e`` (linear interpolation).

How it was checked: ``tests/analysis/test_autocorr.py``: a constant trajectory gives 1, an
orthogonal one 0, a rotation by a known angle ``theta_t`` in a random plane of R^D gives
``cos theta_t`` for all three references, and ``decorrelation_time`` inverts
``exp(-t/tau)``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["autocorrelation", "output_autocorrelation", "decorrelation_time", "trajectory_autocorrelations",
           "checkpoint_outputs"]


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _cos(a: np.ndarray, b: np.ndarray, center: bool) -> np.ndarray:
    if center:
        a = a - a.mean(-1, keepdims=True)
        b = b - b.mean(-1, keepdims=True)
    num = np.sum(a * b, axis=-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def autocorrelation(x, ref="initial", *, lag: int = 1, feature_ndim: int = 1,
                    baseline_index: int = 0, center: bool = False) -> np.ndarray:
    """Normalised correlation of a trajectory with a reference.

    Args:
        x: trajectory ``(C, ..., *F)``; ``C`` checkpoints first, ``feature_ndim`` trailing
            axes form the vector (``(C, K, P)`` weights: ``feature_ndim=1``;
            ``(C, K, N, classes)`` outputs: ``feature_ndim=2``).
        ref: ``"initial"`` (cosine with ``x[0]``), ``"baseline"`` (cosine with
            ``x[:, baseline_index]`` at the same checkpoint), ``"lagged"`` (cosine of
            ``x[t]`` with ``x[t + lag]``), or an array broadcastable to ``x`` (cosine with
            ``ref[t]`` at the same checkpoint).
        lag: the lag for ``ref="lagged"`` (>= 1).
        feature_ndim: number of trailing axes flattened into the vector.
        baseline_index: index of the baseline on axis 1 for ``ref="baseline"``.
        center: subtract each vector's feature mean first (Pearson correlation).

    Returns:
        float64 array ``(C, ...)`` (``(C - lag, ...)`` for ``"lagged"``); for
        ``"baseline"`` the baseline's own entries are 1.
    """
    x = _np(x)
    if feature_ndim < 1 or x.ndim < feature_ndim + 1:
        raise ValueError(f"x: expected (C, ..., *F) with feature_ndim={feature_ndim}, got shape {x.shape}")
    lead = x.shape[:x.ndim - feature_ndim]
    xf = x.reshape(*lead, -1)
    if isinstance(ref, str):
        if ref == "initial":
            return _cos(xf, xf[:1], center)
        if ref == "baseline":
            if xf.ndim < 3:
                raise ValueError(f"x: ref='baseline' needs a member axis (C, K, ..., *F), got shape {x.shape}")
            return _cos(xf, xf[:, baseline_index:baseline_index + 1], center)
        if ref == "lagged":
            lag = int(lag)
            if not 1 <= lag < xf.shape[0]:
                raise ValueError(f"lag: expected 1 <= lag < {xf.shape[0]} checkpoints, got {lag}")
            return _cos(xf[:-lag], xf[lag:], center)
        raise ValueError(f"ref: expected 'initial', 'baseline', 'lagged' or an array, got {ref!r}")
    r = np.broadcast_to(_np(ref), x.shape).reshape(*lead, -1)
    return _cos(xf, r, center)


def output_autocorrelation(logits, ref="initial", **kwargs) -> np.ndarray:
    """:func:`autocorrelation` of outputs ``(C, ..., N, classes)`` flattened per network."""
    return autocorrelation(logits, ref, feature_ndim=2, **kwargs)


def decorrelation_time(t, corr, level: float = float(np.exp(-1.0))) -> np.ndarray:
    """First time a correlation curve drops to ``level`` (linear interpolation).

    Args:
        t: times ``(C,)`` (steps or epochs), increasing.
        corr: correlations ``(C, ...)`` (e.g. from :func:`autocorrelation`).
        level: threshold; default ``1/e``.

    Returns:
        ``(...)`` float64; NaN where the curve never reaches ``level``.
    """
    t = np.asarray(t, dtype=np.float64)
    c = _np(corr)
    c2 = c.reshape(c.shape[0], -1)
    out = np.full(c2.shape[1], np.nan)
    for j in range(c2.shape[1]):
        below = np.flatnonzero(c2[:, j] <= level)
        if len(below) == 0:
            continue
        i = below[0]
        if i == 0:
            out[j] = t[0]
            continue
        c0, c1 = c2[i - 1, j], c2[i, j]
        out[j] = t[i - 1] + (c0 - level) / (c0 - c1) * (t[i] - t[i - 1])
    return out.reshape(c.shape[1:]) if c.ndim > 1 else out[0]


def trajectory_autocorrelations(W, ok, steps, outputs: Callable[[int], np.ndarray],
                                base: np.ndarray | None = None) -> tuple[dict, dict]:
    """Weight and output autocorrelations of an ensemble trajectory, and their ``1/e`` times.

    Args:
        W: weights ``(C, K, P)``; ``ok`` ``(C, K)`` bool (invalid entries become NaN).
        steps: checkpoint times ``(C,)``.
        outputs: ``outputs(c) -> (K, N, out)`` the members' outputs on a fixed set at
            checkpoint ``c`` (called once per checkpoint).
        base: ``(K,)`` row of each member's own baseline (default 0: one baseline).

    Returns:
        ``(ac, tau)``: ``ac`` ``{"ac_w_init", "ac_w_base", "ac_out_init", "ac_out_base"}``
        ``(K, C)`` (cosine with the member's own start, with the baseline at the same
        checkpoint; weights, outputs flattened over samples and classes) and ``tau``
        ``{"tau_w_init", ...}`` ``(K,)`` (:func:`decorrelation_time`).
    """
    C, K, _ = W.shape
    ac = {n: np.full((K, C), np.nan) for n in ("ac_w_init", "ac_w_base", "ac_out_init", "ac_out_base")}
    b = np.zeros(K, dtype=int) if base is None else np.asarray(base, dtype=int)
    W0 = W[0].astype(np.float64)
    O0 = outputs(0)
    for c in range(C):
        Wc = W[c].astype(np.float64)
        ac["ac_w_init"][:, c] = autocorrelation(Wc[None], ref=W0[None])[0]
        ac["ac_w_base"][:, c] = autocorrelation(Wc[None], ref=Wc[b][None])[0]
        Oc = O0 if c == 0 else outputs(c)
        ac["ac_out_init"][:, c] = output_autocorrelation(Oc[None], ref=O0[None])[0]
        ac["ac_out_base"][:, c] = output_autocorrelation(Oc[None], ref=Oc[b][None])[0]
    for v in ac.values():
        v[~np.asarray(ok).T] = np.nan
    taus = {f"tau_{n[3:]}": decorrelation_time(steps, ac[n].T) for n in ac}
    return ac, taus


def checkpoint_outputs(apply: Callable, W, x, y, loss: str, batch_size: int, dtype, device) -> Callable[[int], np.ndarray]:
    """``outputs(c) -> (K, N, out)`` float64: the members' outputs on ``x`` at checkpoint ``c``.

    The outputs of the one batched ensemble evaluation
    (:func:`pathdep.core.evaluate.evaluate`, chunks of ``batch_size`` samples), for
    :func:`trajectory_autocorrelations`.

    Args:
        apply: ``apply(w (P,), x) -> outputs``; ``W``: weights ``(C, K, P)`` (numpy). BatchNorm
            models: ``RunContext.eval_apply`` with ``W`` the evaluation vectors ``(C, K, P + Q)``
            (weights and each member's own running statistics; eval mode).
        x, y: inputs and labels / targets on ``device``; ``loss``: their loss kind.
        dtype, device: of the forward passes.
    """
    from pathdep.core.evaluate import ensemble_forward, evaluate

    forward = ensemble_forward(apply)

    def outputs(c: int) -> np.ndarray:
        Wt = torch.as_tensor(W[c], dtype=dtype, device=device)
        ev = evaluate(apply, Wt, x, y, loss, int(batch_size), outputs=True, forward=forward)
        return ev.outputs.double().cpu().numpy()

    return outputs
