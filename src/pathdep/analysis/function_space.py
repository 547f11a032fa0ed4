"""Distances between networks in function space, measured on a fixed set of inputs.

What it computes: given the baseline's outputs ``(N, C)`` and the members' outputs
``(..., N, C)`` on the same N inputs (typically the test set), per member:

* ``l2_logits``: ``sqrt(mean_n |f_a(x_n) - f_b(x_n)|_2^2)``, the RMS over samples of the
  Euclidean distance between logit vectors (an empirical L2(P_x) function distance; the
  seed's "distance in F");
* ``l2_probs``: the same on softmax probabilities;
* ``disagreement``: fraction of samples whose argmax differs (1 - prediction agreement);
* ``sym_kl``: ``mean_n 0.5 (KL(p||q) + KL(q||p))`` with ``p``, ``q`` the two softmaxes,
  computed as ``0.5 sum_c (p - q)(log p - log q)`` from ``log_softmax`` (stable, >= 0);
* ``kl_base_member``: ``mean_n KL(p_base || q_member)``;
* ``cf_nll``: cross-entropy of the member against the baseline's argmax labels (the seed's
  "counterfactual" loss, L_cf).

The output logits are treated as unnormalised log-probabilities over the last axis; for a
single output (C = 1) the probability metrics are 0 by construction.

How it was checked: ``tests/analysis/test_function_space.py``: two-sample cases computed
by hand, zero for identical outputs, symmetry of everything but ``kl_base_member`` and
``cf_nll``, disagreement counts, agreement with ``torch.nn.functional.kl_div``, and
finiteness for logits of order 1e4.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["function_distances", "log_softmax"]


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable ``log softmax`` over the last axis (float64)."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def function_distances(logits_base, logits_member) -> dict[str, np.ndarray]:
    """Function-space distances between a baseline and ensemble members.

    Args:
        logits_base: baseline outputs ``(N, C)`` (numpy or torch).
        logits_member: member outputs ``(..., N, C)``, e.g. ``(K, N, C)`` or
            ``(T, K, N, C)``; a single ``(N, C)`` is accepted too.

    Returns:
        ``{"l2_logits", "l2_probs", "disagreement", "sym_kl", "kl_base_member",
        "cf_nll"}``, each a float64 array of shape ``(...)`` (0-d for an ``(N, C)``
        member).
    """
    a = _np(logits_base)
    b = _np(logits_member)
    if a.ndim != 2 or b.shape[-2:] != a.shape:
        raise ValueError(f"logits: expected base (N, C) and members (..., N, C) with the same N, C; "
                         f"got {a.shape} and {b.shape}")
    la, lb = log_softmax(a), log_softmax(b)
    pa, pb = np.exp(la), np.exp(lb)
    out = {
        "l2_logits": np.sqrt(np.mean(np.sum((b - a) ** 2, axis=-1), axis=-1)),
        "l2_probs": np.sqrt(np.mean(np.sum((pb - pa) ** 2, axis=-1), axis=-1)),
        "disagreement": np.mean(np.argmax(b, axis=-1) != np.argmax(a, axis=-1), axis=-1).astype(np.float64),
        "sym_kl": np.mean(0.5 * np.sum((pa - pb) * (la - lb), axis=-1), axis=-1),
        "kl_base_member": np.mean(np.sum(pa * (la - lb), axis=-1), axis=-1),
    }
    labels = np.argmax(a, axis=-1)  # (N,)
    out["cf_nll"] = -np.mean(np.take_along_axis(lb, np.broadcast_to(labels[:, None], lb.shape[:-1] + (1,)),
                                                axis=-1)[..., 0], axis=-1)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
