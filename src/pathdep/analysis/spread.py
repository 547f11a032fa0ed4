"""How much of the spread of trained networks each source of randomness explains.

What it computes (the seed's central comparison, "almost all of the variance seems to be
explained by the batch schedule"): for ensembles that differ from a shared baseline in one
source only (initial weights, batch order, one hyperparameter, or everything: independent
runs), the spread of the K networks at every checkpoint, from the arrays of a metrics file:

* ``dist_rel``: mean over members of ``|w_k - w_0| / |w_0(0)|``;
* ``disagree``: mean over members of the fraction of test inputs where member k's
  prediction differs from the baseline's;
* ``acc_sd``: standard deviation of test accuracy over all K networks (ddof = 1);
* ``loss_sd``: standard deviation of test loss over all K networks;
* ``fraction_of_global``: each source's final ``acc_sd^2`` and ``disagree`` divided by
  those of the ``global`` ensemble (independent runs), when one is given: the share of the
  total variance that the source alone produces.

With replicate baselines (``perturbation.baselines: R``) :func:`block_spread` computes the
curves of each baseline's block (the baseline and its own copies) separately, ``(R, C)``,
and :func:`block_shares` each block's share of the global ensemble's block with the same
index; intervals are then taken across the R independent baselines
(:func:`pathdep.analysis.replicates.interval`), never across copies of one baseline.

Pure numpy: arrays ``(K, C)`` in (member 0 = baseline), arrays out.
How it was checked: ``tests/analysis/test_spread.py`` (hand-computed values on a 3-member
example; NaN members from diverged runs are ignored; blocks equal the single-block values
of each block cut out by hand).
"""

from __future__ import annotations

import warnings

import numpy as np

MEASURES = ("dist_rel", "disagree", "acc_sd", "loss_sd")


def spread_curves(dist_rel: np.ndarray, disagree: np.ndarray, test_acc: np.ndarray,
                  test_loss: np.ndarray) -> dict[str, np.ndarray]:
    """Spread measures over checkpoints.

    Args:
        dist_rel, disagree, test_acc, test_loss: ``(K, C)`` arrays of one ensemble, row 0
            the baseline (``dist_rel`` and ``disagree`` are 0 there).

    Returns:
        ``{measure: (C,)}`` for :data:`MEASURES`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "dist_rel": np.nanmean(np.asarray(dist_rel, float)[1:], axis=0),
            "disagree": np.nanmean(np.asarray(disagree, float)[1:], axis=0),
            "acc_sd": np.nanstd(np.asarray(test_acc, float), axis=0, ddof=1),
            "loss_sd": np.nanstd(np.asarray(test_loss, float), axis=0, ddof=1),
        }


def block_spread(dist_rel: np.ndarray, disagree: np.ndarray, test_acc: np.ndarray, test_loss: np.ndarray,
                 baseline: np.ndarray, copy: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`spread_curves` of each replicate baseline's block.

    Args:
        dist_rel, disagree, test_acc, test_loss: ``(K, C)`` for all networks of a run.
        baseline, copy: ``(K,)`` labels (:func:`pathdep.analysis.replicates.labels`).

    Returns:
        ``{measure: (R, C)}``: row r from block r alone (its baseline first).
    """
    baseline, copy = np.asarray(baseline), np.asarray(copy)
    R = int(baseline.max()) + 1
    rows = [np.flatnonzero(baseline == r)[np.argsort(copy[baseline == r])] for r in range(R)]
    per = [spread_curves(*(np.asarray(a, float)[idx] for a in (dist_rel, disagree, test_acc, test_loss)))
           for idx in rows]
    return {m: np.stack([p[m] for p in per]) for m in MEASURES}


def block_shares(source: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-baseline shares of the reference (global) spread at the last finite checkpoint.

    Args:
        source, reference: ``{measure: (R, C)}`` of :func:`block_spread`; block r of the source
            is divided by block r of the reference (both independent draws; min(R) blocks used).

    Returns:
        ``{"acc_var_share": (R,), "disagree_share": (R,)}`` (NaN where the reference is 0).
    """
    def last(a):
        a = np.asarray(a, float)
        out = np.full(a.shape[0], np.nan)
        for i, row in enumerate(a):
            f = row[np.isfinite(row)]
            out[i] = f[-1] if len(f) else np.nan
        return out

    n = min(source["acc_sd"].shape[0], reference["acc_sd"].shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        ra, rd = last(reference["acc_sd"])[:n], last(reference["disagree"])[:n]
        return {"acc_var_share": np.where(ra > 0, last(source["acc_sd"])[:n] ** 2 / ra ** 2, np.nan),
                "disagree_share": np.where(rd > 0, last(source["disagree"])[:n] / rd, np.nan)}


def fraction_of_global(final: dict[str, dict[str, float]], reference: str = "global") -> dict[str, dict[str, float]]:
    """Each source's final variance measures relative to the reference ensemble's.

    Args:
        final: ``{source: {measure: value}}`` at the last checkpoint.
        reference: the source of independent runs.

    Returns:
        ``{source: {"acc_var_share": acc_sd^2 / ref acc_sd^2, "disagree_share": disagree /
        ref disagree}}`` (NaN without a reference).
    """
    ref = final.get(reference)
    out = {}
    for src, m in final.items():
        if ref is None:
            out[src] = {"acc_var_share": np.nan, "disagree_share": np.nan}
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            out[src] = {"acc_var_share": float(m["acc_sd"] ** 2 / ref["acc_sd"] ** 2) if ref["acc_sd"] > 0 else np.nan,
                        "disagree_share": float(m["disagree"] / ref["disagree"]) if ref["disagree"] > 0 else np.nan}
    return out
