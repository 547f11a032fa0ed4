"""Domino counts and draws: how many dominoes show which side, and which images they show.

What it computes. The seed's linear system for the sampling fractions has only the trivial
solution; here the counts are solved directly for the ``n`` requested dominoes
(:func:`solve_counts`): ``n_top = round(n p_top)``, ``n_bottom = max(round(n p_bottom),
n - n_top)``, ``n_both = n_top + n_bottom - n``; the one-sided counts follow. A request with
``p_top + p_bottom < 1`` would leave dominoes with no side and is refused.
:func:`sample_dominoes` draws balanced labels (``i mod K``, shuffled), the sides' flags, an
exact ``round(r n_shown)`` of reliable shown sides, and each side image from that side's pool
of its class; :func:`measure` gives the achieved prevalences and reliabilities from the flags.

How it was checked: ``tests/datasets/test_dominoes.py`` (the count solver over a grid of
requests including empty sides: exact counts, achieved values within sampling error;
impossible requests refused; randomized sets independent of the label).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SIDES", "solve_counts", "sample_dominoes", "measure"]

SIDES = ("top", "bottom")


def _unit(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 0.0 <= float(v) <= 1.0:
        hint = " (to sweep it, put the list under experiments.<exp>.data)" if isinstance(v, list) else ""
        raise ValueError(f"{where}: expected a number in [0, 1], got {v!r}{hint}")
    return float(v)


def solve_counts(n: int, p_top: float, p_bottom: float, where: str = "prevalence") -> dict[str, int]:
    """Numbers of two-sided and one-sided dominoes for the requested prevalences.

    Args:
        n: Number of dominoes.
        p_top, p_bottom: Requested fraction of dominoes showing the top / bottom side.
        where: Config key named in errors.

    Returns:
        ``{"both": n2, "top_only": n_t1, "bottom_only": n_b1}`` summing to ``n``, with
        ``|(n2 + n_t1)/n - p_top| <= 1/(2n)`` and the bottom within ``1/n``.

    Raises:
        ValueError: a prevalence outside [0, 1], or ``p_top + p_bottom < 1`` (some
            dominoes would show no side).
    """
    pt, pb = _unit(f"{where}.top", p_top), _unit(f"{where}.bottom", p_bottom)
    if pt + pb < 1.0 - 1e-12:
        raise ValueError(f"{where}: top {pt:g} + bottom {pb:g} < 1 would leave {1 - pt - pb:.3g} of the dominoes "
                         f"with no side; raise one of them")
    n_t = int(round(n * pt))
    n_b = max(int(round(n * pb)), n - n_t)
    n_both = n_t + n_b - n
    return {"both": n_both, "top_only": n_t - n_both, "bottom_only": n_b - n_both}


def sample_dominoes(rng: np.random.Generator, n: int, k: int, prevalence: dict, reliability: dict,
                    pools: dict, replace: bool = False, randomize: str | None = None,
                    where: str = "dominoes") -> dict[str, np.ndarray]:
    """Draw the labels, flags and side-image indices of ``n`` dominoes.

    Args:
        rng: Random generator.
        n: Number of dominoes.
        k: Number of classes (>= 2).
        prevalence, reliability: ``{"top": p, "bottom": p}``.
        pools: ``{"top": [idx of class 0, ..., idx of class k-1], "bottom": [...]}``
            indices into each side's image array.
        replace: Draw side images with replacement.
        randomize: ``"top"``/``"bottom"``: that side's class is uniform over all ``k``
            classes, independent of the label (Shah et al.'s randomized sets).
        where: Dataset name for errors.

    Returns:
        ``label, top_present, bottom_present, top_label, bottom_label, top_index,
        bottom_index`` arrays of length ``n`` (labels/indices -1 where the side is blank).
    """
    counts = solve_counts(n, prevalence["top"], prevalence["bottom"], where=f"datasets.{where}.prevalence")
    label = rng.permutation(np.arange(n) % k).astype(np.int64)
    kind = rng.permutation(np.repeat([0, 1, 2], [counts["both"], counts["top_only"], counts["bottom_only"]]))
    out = {"label": label}
    for side, only in (("top", 1), ("bottom", 2)):
        present = (kind == 0) | (kind == only)
        side_label = _side_labels(rng, label, present, k, reliability, side, randomize == side, where)
        index = _side_images(rng, side_label, pools[side], k, replace, side, where)
        out[f"{side}_present"], out[f"{side}_label"], out[f"{side}_index"] = present, side_label, index
    return out


def _side_labels(rng: np.random.Generator, label: np.ndarray, present: np.ndarray, k: int, reliability: dict,
                 side: str, randomize: bool, where: str) -> np.ndarray:
    """The class each domino shows on ``side`` (-1 where blank): the label on an exact
    ``round(r n_shown)`` of the shown sides, another class (uniform over the other ``k - 1``)
    on the rest; uniform over all ``k`` classes when ``randomize``."""
    n = len(label)
    idx = np.flatnonzero(present)
    side_label = np.full(n, -1, dtype=np.int64)
    if randomize:
        side_label[idx] = rng.integers(0, k, size=len(idx))
        return side_label
    r = _unit(f"datasets.{where}.reliability.{side}", reliability[side])
    n_rel = int(round(r * len(idx)))
    rel = np.zeros(len(idx), dtype=bool)
    rel[rng.choice(len(idx), size=n_rel, replace=False)] = True
    shift = rng.integers(1, k, size=len(idx))  # uniform over the other k - 1 classes
    side_label[idx] = np.where(rel, label[idx], (label[idx] + shift) % k)
    return side_label


def _side_images(rng: np.random.Generator, side_label: np.ndarray, pools: list, k: int, replace: bool,
                 side: str, where: str) -> np.ndarray:
    """Index of each shown side's image in its class pool ``pools[c]`` (-1 where blank)."""
    index = np.full(len(side_label), -1, dtype=np.int64)
    for c in range(k):
        sel = np.flatnonzero(side_label == c)
        pool = pools[c]
        if len(sel) == 0:
            continue
        if not replace and len(sel) > len(pool):
            raise ValueError(f"datasets.{where}: not enough samples of class {c} on the {side} side "
                             f"(need {len(sel)}, have {len(pool)}); lower n_train/n_test/n_eval or set replace: true")
        if len(pool) == 0:
            raise ValueError(f"datasets.{where}: class {c} has no samples on the {side} side")
        index[sel] = rng.choice(pool, size=len(sel), replace=replace)
    return index


def measure(flags: dict) -> dict[str, float]:
    """Achieved prevalence (fraction of dominoes showing the side) and reliability (fraction
    of shown sides whose class is the label) per side, from the per-sample flags."""
    out = {}
    for s in SIDES:
        pres = np.asarray(flags[f"{s}_present"], dtype=bool)
        out[f"prevalence_{s}"] = float(pres.mean()) if len(pres) else float("nan")
        shown = np.asarray(flags[f"{s}_label"])[pres] == np.asarray(flags["label"])[pres]
        out[f"reliability_{s}"] = float(shown.mean()) if len(shown) else float("nan")
    return out
