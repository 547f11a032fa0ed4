"""Dynamical transitions in training: where the Koopman spectra of windows of training split
into two blocks, and whether that split is more than the windows' scatter.

What it computes, from the (W, W) matrix ``d`` of W1 distances between the Koopman spectra of
W consecutive windows of one run (:func:`pathdep.analysis.koopman.windowed_spectra`; Redman
et al., NeurIPS 2024, sec. 4.3: the per-window and per-epoch heat maps of LeNet-5 and
ResNet-20 training):

* :func:`split_contrast`: for a split ``s`` (windows ``[0, s)`` before, ``[s, W)`` after) the
  mean W1 between a window before and one after, over the mean W1 between two different
  windows on the same side. One system throughout gives ~1; dynamics that switch at ``s``
  give the ratio of the switch's W1 to the windows' scatter (>> 1).
* :func:`transition_scan`: the contrast of every split with at least ``min_side`` windows on
  each side (default 1: the first window alone unlike the rest is the typical early
  transition), the best split (largest contrast) and a permutation p-value of that maximum:
  the window order is shuffled (rows and columns of ``d`` together) and the scan repeated;
  ``p = (1 + #{max contrast >= observed}) / (1 + n_perm)`` (floor ``1 / (1 + n_perm)``).
  The null is "the windows are exchangeable" (stationary dynamics over the run);
  overlapping windows (stride < size) share samples and make neighbours alike, which the
  shuffle breaks, so the test is meant for non-overlapping windows (stride = size: the
  default of ``koopman.windows``); windows whose spectrum is missing (NaN rows) are
  dropped first.

How it was checked (tests/analysis/test_koopman_windows.py, float64): a
piecewise-linear system whose map switches at a known window gives the split at that window,
a contrast >> 1 and p at its floor; the null (one map throughout, the same noise) gives a
contrast near 1 and p > 0.05; a constant matrix has contrast 1 everywhere. Calibration on that
system (12 windows of 20 steps, noise 1e-2, 199 shuffles): rejection rate at 0.05 under the
null 2/40 = 0.05 (min_side 1; 3/40 with min_side 2), power 20/20 with the switch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["split_contrast", "transition_scan"]


def split_contrast(d: np.ndarray, s: int) -> float:
    """Mean between-side W1 over mean within-side W1 for the split ``[0, s) | [s, W)``.

    Args:
        d: (W, W) symmetric distances (diagonal ignored), no NaN.
        s: first window after the split, ``1 <= s <= W - 1``.

    Returns:
        The contrast (NaN when no side holds two windows or the within mean is 0).
    """
    d = np.asarray(d, dtype=np.float64)
    W = d.shape[0]
    side = np.arange(W) >= s
    off = ~np.eye(W, dtype=bool)
    within = d[(side[:, None] == side[None, :]) & off]
    between = d[side[:, None] != side[None, :]]
    if within.size == 0 or between.size == 0 or within.mean() <= 0:
        return float("nan")
    return float(between.mean() / within.mean())


def _scan(d: np.ndarray, min_side: int) -> np.ndarray:
    W = d.shape[0]
    out = np.full(W, np.nan)
    for s in range(min_side, W - min_side + 1):
        out[s] = split_contrast(d, s)
    return out


def transition_scan(d: np.ndarray, min_side: int = 1, n_perm: int = 999, seed: int = 0) -> dict:
    """The best two-block split of a window x window W1 matrix and its permutation p-value.

    Args:
        d: (W, W) W1 between window spectra (NaN rows/columns: missing windows, dropped).
        min_side: fewest windows on each side of a split.
        n_perm: shuffles of the window order.
        seed: of the shuffles.

    Returns:
        ``{"split": s (index into the kept windows, -1 if none), "contrast": its contrast,
        "contrasts": (W_kept,) per split (NaN where not scanned), "p_value", "p_min",
        "kept": indices of the kept windows, "note"}``.
    """
    d = np.asarray(d, dtype=np.float64)
    kept = np.flatnonzero(np.isfinite(d).sum(axis=1) > 1) if d.size else np.zeros(0, int)
    d = d[np.ix_(kept, kept)]
    W = len(kept)
    none = {"split": -1, "contrast": float("nan"), "contrasts": np.full(W, np.nan), "p_value": float("nan"),
            "p_min": 1.0 / (1 + n_perm), "kept": kept}
    if W < 2 * min_side or not np.isfinite(d).all():
        return {**none, "note": f"{W} windows with spectra, need >= {2 * min_side} (min_side {min_side} per side)"}
    c = _scan(d, min_side)
    if not np.isfinite(c).any():
        return {**none, "contrasts": c, "note": "no split with a within-side spread"}
    s = int(np.nanargmax(c))
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(int(n_perm)):
        p = rng.permutation(W)
        hits += bool(np.nanmax(_scan(d[np.ix_(p, p)], min_side)) >= c[s] - 1e-12)
    return {"split": s, "contrast": float(c[s]), "contrasts": c, "p_value": (1 + hits) / (1 + n_perm),
            "p_min": 1.0 / (1 + n_perm), "kept": kept, "note": ""}
