"""Divergence metrics of a trajectory (rule ``compute_metrics``), streamed checkpoint by checkpoint.

What it computes, for every member k and checkpoint t (dims ``member x checkpoint``; the
per-layer distance adds ``layer``), against k's own baseline b = b(k) (member 0 when the run
has one baseline; with ``perturbation.baselines: R`` the coordinates ``baseline`` and ``copy``
address each network, :mod:`pathdep.analysis.replicates`) (the seed's metric table,
path-dependence-scaling-laws.txt, "Measuring distance"):

* ``dist``          |w_k(t) - w_b(t)|_2, the weight distance to the own baseline
* ``dist_rel``      dist / |w_b(0)|  (relative to the baseline's initial norm)
* ``dist_over_init`` dist / dist(t=0) (growth of the perturbation; NaN where dist(0) = 0)
* ``dist_layer``    the same per layer (weight and bias of a module together); coordinates
                    ``layer_size`` (parameters) and ``layer_norm0`` (|w_0(0)| of the layer)
* ``dist_rms``      dist / sqrt(P): the RMS difference per weight (width-normalised)
* ``cos_base``      cosine similarity of w_k(t) and w_0(t)
* ``cos_init``      cosine similarity of w_k(t) and w_k(0)
* ``dist_init``     |w_k(t) - w_k(0)|
* ``norm``, ``norm_ratio``  |w_k(t)| and |w_k(t)| / |w_k(0)|
* ``{train,test}_loss``, ``{train,test}_acc`` on fixed evaluation subsets
* ``d_{train,test}_{loss,acc}``  differences to the baseline
* ``{train,test}_cf_loss``, ``{train,test}_cf_acc``: the "cf." metrics that take the
  baseline's predictions as the ground truth (cross entropy against the baseline's argmax
  and agreement with it; for regression, MSE against the baseline's outputs).
* function-space distances on the test subset (``fs_l2_logits``, ``fs_l2_probs``,
  ``fs_disagree``, ``fs_sym_kl``), computed by
  :func:`pathdep.analysis.function_space.function_distances` (RMS L2 of logits and of
  probabilities, argmax disagreement, symmetrised KL ``0.5 (KL(p||q) + KL(q||p))``).

Models with BatchNorm (``norm: batch`` ResNets) are evaluated in eval mode, every member
with its own running statistics at that checkpoint (``trajectory.h5`` ``/buffers``; attribute
``bn``); the weight distances are on the parameters only.

Masked checkpoints (after a member diverged) are NaN. Written as netCDF (xarray,
h5netcdf engine) with the trajectory's provenance and config as attributes.

This stage reads and writes: the run's model, device and data come from
:class:`pathdep.core.context.RunContext`, the members' losses, accuracies and outputs from
:func:`pathdep.core.evaluate.evaluate`, every metric from
:func:`pathdep.analysis.divergence.checkpoint_metrics`.

How it was checked: ``tests/stages/test_metrics.py`` (hand-computable two-member cases,
cf. metrics of the baseline itself are exact, masking).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from pathdep.analysis.divergence import checkpoint_metrics, differences_to_baseline, layer_sizes_and_norms
from pathdep.analysis.replicates import labels, own_baseline
from pathdep.core.context import RunContext, canonical, eval_subset
from pathdep.core.evaluate import ensemble_forward, evaluate
from pathdep.io.atomic import write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import Trajectory

NAMES = ("dist", "dist_rel", "dist_over_init", "cos_base", "cos_init", "dist_init", "norm", "norm_ratio",
         "train_loss", "train_acc", "test_loss", "test_acc", "train_cf_loss", "train_cf_acc",
         "test_cf_loss", "test_cf_acc", "fs_l2_logits", "fs_l2_probs", "fs_disagree", "fs_sym_kl")
"""The ``(member, checkpoint)`` variables computed per checkpoint (NaN where not defined)."""


def _refuse_other_config(traj_path, run: dict, expected: dict | None) -> None:
    if expected is not None and canonical(expected) != canonical(run):
        raise ValueError(f"{traj_path}: trajectory was made from a different config than the workflow expects "
                         f"for {expected.get('experiment')}/{expected.get('run')}; rerun training")


def _eval_sets(ctx: RunContext, run: dict, spec: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The fixed evaluation subsets ``{"train": (x, y), "test": (x, y)}`` on the run's device."""
    sets = {}
    for split in ("train", "test"):
        x, y = getattr(ctx.data, f"x_{split}"), getattr(ctx.data, f"y_{split}")
        idx = eval_subset(len(x), int(spec.get(f"eval_{split}", 10000)), run.get("seed", 0))
        xs, ys = x[idx].to(ctx.device, ctx.dtype), y[idx].to(ctx.device)
        sets[split] = (xs, ys if ctx.task == "classification" else ys.to(ctx.dtype))
    return sets


def _stream(tr: Trajectory, ctx: RunContext, sets: dict, batch_size: int) -> tuple[dict, np.ndarray]:
    """Every checkpoint's metrics: ``({name: (K, C)}, dist_layer (K, C, layers))``, masked."""
    C, K, n_layers = tr.n_checkpoints, tr.n_members, len(ctx.layout.layers())
    layer_of = np.repeat(np.array(ctx.layout.layer_index()), ctx.layout.sizes)
    res = {n: np.full((K, C), np.nan) for n in NAMES}
    dist_layer = np.full((K, C, n_layers), np.nan)
    W0 = tr.weights(0).astype(np.float64)
    base = own_baseline(*labels(tr.members))
    forward = ensemble_forward(ctx.eval_apply)
    for c in range(C):
        Wc = tr.weights(c).astype(np.float64)
        Zt = ctx.z(Wc, tr.buffers(c) if ctx.has_buffers else None)  # (K, P [+ Q]): own running statistics
        evals = {s: evaluate(ctx.eval_apply, Zt, x, y, ctx.loss, batch_size, outputs=True, forward=forward)
                 for s, (x, y) in sets.items()}
        values, dist_layer[:, c] = checkpoint_metrics(Wc, W0, layer_of, n_layers, evals, ctx.task, base)
        for n, v in values.items():
            res[n][:, c] = v
    mask = ~tr.valid.T  # (K, C)
    for v in res.values():
        v[mask] = np.nan
    dist_layer[mask] = np.nan
    return res | differences_to_baseline(res, ctx.layout.n_params, base), dist_layer


def _dataset(tr: Trajectory, ctx: RunContext, run: dict, res: dict, dist_layer: np.ndarray, sets: dict) -> xr.Dataset:
    """The metrics netCDF: variables, coordinates (members, checkpoints, layers) and attributes."""
    layout = ctx.layout
    layer_of = np.repeat(np.array(layout.layer_index()), layout.sizes)
    sizes, norms0 = layer_sizes_and_norms(layer_of, len(layout.layers()), tr.weights(0)[0].astype(np.float64))
    coords = {
        "member": np.arange(tr.n_members), "checkpoint": np.arange(tr.n_checkpoints), "layer": layout.layers(),
        # per-layer distances relative to the layer (dist_layer / layer_norm0) or per weight (/ sqrt(layer_size))
        "layer_size": ("layer", sizes), "layer_norm0": ("layer", norms0),
        "step": ("checkpoint", tr.steps), "epoch": ("checkpoint", tr.epochs),
        "role": ("member", tr.members["role"].astype(str).values),
        "baseline": ("member", labels(tr.members)[0]), "copy": ("member", labels(tr.members)[1]),
        "epsilon": ("member", tr.members["epsilon"].values.astype(float)),
        "init_distance": ("member", tr.members["distance"].values.astype(float)),
        "diverged_step": ("member", tr.diverged_step),
    }
    coords |= {c: ("member", tr.members[c].values.astype(float)) for c in tr.members.columns if c.startswith("hp_")}
    data_vars = {n: (("member", "checkpoint"), v) for n, v in res.items()}
    data_vars["dist_layer"] = (("member", "checkpoint", "layer"), dist_layer)
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update({
        "experiment": run.get("experiment", ""), "run": run.get("run", ""),
        "swept": json.dumps(run.get("swept", {})), "task": ctx.task,
        "n_params": layout.n_params, "eval_train": len(sets["train"][1]), "eval_test": len(sets["test"][1]),
        "config": canonical(run), "trajectory_provenance": json.dumps(tr.provenance),
        "provenance": json.dumps(collect(run, ctx.device), default=str),
    })
    if ctx.has_buffers:
        ds.attrs["bn"] = "eval mode, each member's own running statistics (trajectory /buffers at the checkpoint)"
    return ds


def compute_metrics(traj_path: str | Path, data_path: str | Path, out_path: str | Path,
                    spec: dict | None = None, expected_config: dict | None = None,
                    device: str = "cpu", threads: int | None = None) -> xr.Dataset:
    """Stream a trajectory's checkpoints and write the metrics netCDF.

    Args:
        traj_path: ``trajectory.h5``.
        data_path: the prepared dataset.
        out_path: the netCDF to write (``.partial`` then renamed).
        spec: ``metrics`` config block (eval subset sizes, batch size); default from the
            trajectory's config.
        expected_config: the run config the workflow expects; a trajectory made from a
            different config is refused with a one-line error.
        device: torch device of the evaluation.
        threads: torch intra-op threads.

    Returns:
        The metrics dataset (also written to ``out_path``).
    """
    if threads:
        torch.set_num_threads(int(threads))
    with Trajectory(traj_path) as tr:
        run = tr.config
        _refuse_other_config(traj_path, run, expected_config)
        spec = spec or run.get("metrics", {})
        ctx = RunContext.build(run, data_path, device, load=True)
        sets = _eval_sets(ctx, run, spec)
        res, dist_layer = _stream(tr, ctx, sets, int(spec.get("batch_size", 2000)))
        ds = _dataset(tr, ctx, run, res, dist_layer, sets)
    write_netcdf(ds, out_path)
    return ds
