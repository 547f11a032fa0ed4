"""Divergence of ensemble members from their baseline at one checkpoint: weights and outputs.

What it computes, for members ``k`` against their own baseline ``b(k)`` (row 0 when the run
has one baseline; with replicate baselines ``base`` gives each row's own baseline,
:func:`pathdep.analysis.replicates.own_baseline`) with flat weights ``W_k(t)``
``(K, P)`` and their initial weights ``W_k(0)`` (the seed's metric table,
path-dependence-scaling-laws.txt, "Measuring distance"):

* :func:`weight_metrics`: ``dist`` ``|w_k(t) - w_0(t)|``, ``dist_rel`` (over ``|w_0(0)|``),
  ``dist_over_init`` (over ``dist(0)``; NaN where ``dist(0) = 0``), ``norm`` and
  ``norm_ratio`` (``|w_k(t)| / |w_k(0)|``), ``cos_base`` (cosine to ``w_0(t)``),
  ``cos_init`` (cosine to ``w_k(0)``), ``dist_init`` ``|w_k(t) - w_k(0)|``;
* :func:`layer_distances`: ``dist`` restricted to each layer; :func:`layer_sizes_and_norms`
  the layers' parameter counts and the baseline's initial layer norms;
* :func:`baseline_as_truth`: the "cf." metrics that take the baseline's predictions as the
  ground truth: cross entropy against the baseline's argmax and agreement with it (for
  regression: the MSE of :mod:`pathdep.core.losses` against the baseline's outputs);
* :func:`output_distances`: function-space distances to the baseline
  (:func:`pathdep.analysis.function_space.function_distances`), named as in ``metrics.nc``;
* :func:`checkpoint_metrics`: all of the above at one checkpoint, from the members'
  evaluations (:func:`pathdep.core.evaluate.evaluate`) on the train and test subsets;
  :func:`differences_to_baseline` the ``d_*`` and ``dist_rms`` columns.

Everything is float64 numpy (outputs may be torch tensors on any device).

How it was checked: ``tests/analysis/test_divergence.py`` (two members by hand: distances,
cosines, the cf. metrics of the baseline itself are exact (cross entropy of its own argmax,
agreement 1, MSE 0), per-layer distances add up to the total) and
``bench/check_refactor_identity.py`` (``metrics.nc`` identical to 1e-12 to the values of the
implementation inside the metrics stage it replaces).
"""

from __future__ import annotations

import numpy as np
import torch

from pathdep.analysis.function_space import function_distances
from pathdep.core.losses import sample_losses

__all__ = ["weight_metrics", "layer_distances", "layer_sizes_and_norms", "baseline_as_truth", "output_distances",
           "checkpoint_metrics", "differences_to_baseline"]


def _base(base: np.ndarray | None, k: int) -> np.ndarray:
    """Own-baseline rows ``(K,)``; ``None`` is one block whose baseline is row 0."""
    return np.zeros(k, dtype=int) if base is None else np.asarray(base, dtype=int)


def weight_metrics(Wc: np.ndarray, W0: np.ndarray, base: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Weight-space metrics at one checkpoint.

    Args:
        Wc: weights ``(K, P)`` at the checkpoint (float64; row 0 the baseline).
        W0: weights ``(K, P)`` at checkpoint 0.
        base: ``(K,)`` row of each network's own baseline
            (:func:`pathdep.analysis.replicates.own_baseline`); default all 0 (one baseline).

    Returns:
        ``dist``, ``dist_rel``, ``dist_over_init``, ``norm``, ``norm_ratio``, ``cos_base``,
        ``cos_init``, ``dist_init``, each ``(K,)`` (see the module docstring).
    """
    b = _base(base, Wc.shape[0])
    n0 = np.linalg.norm(W0, axis=1)
    d0 = np.linalg.norm(W0 - W0[b], axis=1)
    dist = np.linalg.norm(Wc - Wc[b], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.where(d0 > 0, dist / np.where(d0 > 0, d0, 1), np.nan)
    nc = np.linalg.norm(Wc, axis=1)
    return {"dist": dist, "dist_rel": dist / n0[b], "dist_over_init": over, "norm": nc, "norm_ratio": nc / n0,
            "cos_base": np.einsum("kp,kp->k", Wc, Wc[b]) / (nc * nc[b]),
            "cos_init": np.einsum("kp,kp->k", Wc, W0) / (nc * n0), "dist_init": np.linalg.norm(Wc - W0, axis=1)}


def layer_distances(Wc: np.ndarray, layer_of: np.ndarray, n_layers: int, base: np.ndarray | None = None) -> np.ndarray:
    """``|w_k(t) - w_b(k)(t)|`` per layer, ``(K, n_layers)``; ``layer_of (P,)`` is each weight's layer,
    ``base`` the own-baseline rows (default 0)."""
    sq = (Wc - Wc[_base(base, Wc.shape[0])]) ** 2
    out = np.empty((Wc.shape[0], n_layers))
    for li in range(n_layers):
        out[:, li] = np.sqrt(sq[:, layer_of == li].sum(1))
    return out


def layer_sizes_and_norms(layer_of: np.ndarray, n_layers: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameters per layer (int64) and the layer norms of ``w (P,)``, each ``(n_layers,)``."""
    sizes = np.bincount(layer_of, minlength=n_layers).astype(np.int64)
    return sizes, np.sqrt(np.bincount(layer_of, weights=w ** 2, minlength=n_layers))


def baseline_as_truth(out: torch.Tensor, task: str, base: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The "cf." loss and accuracy ``(K,)`` of every member against its own baseline's predictions.

    Args:
        out: outputs ``(K, N, C)`` (row 0 the baseline).
        task: ``"classification"`` (cross entropy against the baseline's argmax, and agreement
            with it) or anything else (MSE against the baseline's outputs; accuracy NaN).
        base: ``(K,)`` own-baseline rows (default 0).
    """
    ref = out[torch.as_tensor(_base(base, out.shape[0]), device=out.device)]
    if task == "classification":
        lab = ref.argmax(-1)
        loss = sample_losses("cross_entropy", out.double(), lab).mean(-1)
        acc = (out.argmax(-1) == lab).double().mean(-1)
        return loss.cpu().numpy(), acc.cpu().numpy()
    loss = sample_losses("mse", out.double(), ref.double()).mean(-1)
    return loss.cpu().numpy(), np.full(out.shape[0], np.nan)


def output_distances(out: torch.Tensor, task: str, base: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Function-space distances ``(K,)`` of every member to its own baseline on the same inputs.

    Returns ``fs_l2_logits``, ``fs_l2_probs``, ``fs_disagree``, ``fs_sym_kl`` for
    classification; for regression only ``fs_l2_logits`` (the RMS distance of the outputs).
    ``base``: ``(K,)`` own-baseline rows (default 0).
    """
    b = _base(base, out.shape[0])
    d: dict[str, np.ndarray] = {}
    for r in np.unique(b):
        rows = np.flatnonzero(b == r)
        dr = function_distances(out[int(r)], out[torch.as_tensor(rows, device=out.device)])
        for n, v in dr.items():
            d.setdefault(n, np.empty(len(b)))[rows] = v
    if task != "classification":
        return {"fs_l2_logits": d["l2_logits"]}
    return {"fs_l2_logits": d["l2_logits"], "fs_l2_probs": d["l2_probs"],
            "fs_disagree": d["disagreement"], "fs_sym_kl": d["sym_kl"]}


def checkpoint_metrics(Wc: np.ndarray, W0: np.ndarray, layer_of: np.ndarray, n_layers: int, evals: dict,
                       task: str, base: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every member metric at one checkpoint.

    Args:
        Wc, W0: weights ``(K, P)`` (float64) at the checkpoint and at checkpoint 0.
        layer_of: ``(P,)`` layer index of every weight; ``n_layers`` their number.
        evals: ``{"train": Evaluation, "test": Evaluation}`` of the members at ``Wc``
            (:func:`pathdep.core.evaluate.evaluate` with ``outputs=True``).
        task: ``"classification"`` or ``"regression"``.
        base: ``(K,)`` own-baseline rows (default 0: one baseline).

    Returns:
        ``({name: (K,)}, dist_layer (K, n_layers))``: the weight metrics, ``<split>_loss``,
        ``<split>_acc``, ``<split>_cf_loss``, ``<split>_cf_acc`` and the function-space
        distances on the test subset.
    """
    m = weight_metrics(Wc, W0, base)
    for split, ev in evals.items():
        m[f"{split}_loss"], m[f"{split}_acc"] = ev.loss, ev.accuracy
        m[f"{split}_cf_loss"], m[f"{split}_cf_acc"] = baseline_as_truth(ev.outputs, task, base)
    m.update(output_distances(evals["test"].outputs, task, base))
    return m, layer_distances(Wc, layer_of, n_layers, base)


def differences_to_baseline(res: dict[str, np.ndarray], n_params: int,
                            base: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``dist_rms`` (``dist / sqrt(P)``, the RMS difference per weight) and ``d_<split>_<loss|acc>``
    (each member minus its own baseline, ``base`` ``(K,)`` rows, default 0), from ``(K, C)`` arrays
    in ``res``."""
    b = _base(base, res["dist"].shape[0])
    out = {"dist_rms": res["dist"] / np.sqrt(n_params)}
    for n in ("train", "test"):
        out[f"d_{n}_loss"] = res[f"{n}_loss"] - res[f"{n}_loss"][b]
        out[f"d_{n}_acc"] = res[f"{n}_acc"] - res[f"{n}_acc"][b]
    return out
