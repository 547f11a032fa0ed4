"""Divergence metrics of a trajectory (rule ``compute_metrics``), streamed checkpoint by checkpoint.

What it computes, for every member k and checkpoint t (dims ``member x checkpoint``; the
per-layer distance adds ``layer``), with member 0 the baseline (the seed's metric table,
path-dependence-scaling-laws.txt, "Measuring distance"):

* ``dist``          |w_k(t) - w_0(t)|_2, the weight distance to the baseline
* ``dist_rel``      dist / |w_0(0)|  (relative to the baseline's initial norm)
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

Masked checkpoints (after a member diverged) are NaN. Written as netCDF (xarray,
h5netcdf engine) with the trajectory's provenance and config as attributes.

The run's model, device and data come from :class:`pathdep.core.context.RunContext`.

How it was checked: ``tests/stages/test_metrics.py`` (hand-computable two-member cases,
cf. metrics of the baseline itself are exact, masking).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from pathdep.core.context import RunContext, canonical, eval_subset
from pathdep.core.dynamics import make_ensemble_eval
from pathdep.io.atomic import write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import Trajectory


def _evaluate(ev, W, x, y, task, bs):
    outs, losses, accs = [], [], []
    K = W.shape[0]
    loss_sum = torch.zeros(K, dtype=torch.float64)
    correct = torch.zeros(K, dtype=torch.float64)
    for i in range(0, len(x), bs):
        xb, yb = x[i:i + bs], y[i:i + bs]
        out, _ = ev(W, xb, None)
        if task == "classification":
            lp = F.log_softmax(out.double(), -1)
            loss_sum += -lp.gather(-1, yb.expand(K, -1).unsqueeze(-1)).squeeze(-1).sum(-1).cpu()
            correct += (out.argmax(-1) == yb).double().sum(-1).cpu()
        else:
            loss_sum += (0.5 * ((out.double() - yb.double()) ** 2).sum(-1)).sum(-1).cpu()
        outs.append(out)
    n = len(x)
    out = torch.cat(outs, 1)
    del losses, accs
    return out, (loss_sum / n).numpy(), (correct / n).numpy() if task == "classification" else np.full(K, np.nan)


def _cf(out: torch.Tensor, task: str) -> tuple[np.ndarray, np.ndarray]:
    base = out[0]
    if task == "classification":
        lab = base.argmax(-1)
        lp = F.log_softmax(out.double(), -1)
        loss = -lp.gather(-1, lab.expand(out.shape[0], -1).unsqueeze(-1)).squeeze(-1).mean(-1)
        acc = (out.argmax(-1) == lab).double().mean(-1)
        return loss.cpu().numpy(), acc.cpu().numpy()
    loss = 0.5 * ((out.double() - base.double()) ** 2).sum(-1).mean(-1)
    return loss.cpu().numpy(), np.full(out.shape[0], np.nan)


def _function_space(out: torch.Tensor) -> dict[str, np.ndarray]:
    """Function-space distances of every member to member 0 (the baseline) on the test
    subset, via the single implementation :func:`pathdep.analysis.function_space.function_distances`."""
    from pathdep.analysis.function_space import function_distances

    d = function_distances(out[0], out)
    return {"fs_l2_logits": d["l2_logits"], "fs_l2_probs": d["l2_probs"],
            "fs_disagree": d["disagreement"], "fs_sym_kl": d["sym_kl"]}


def _weight_metrics(Wc: np.ndarray, W0: np.ndarray, n0: np.ndarray, d0: np.ndarray) -> dict[str, np.ndarray]:
    """Weight-space metrics at one checkpoint.

    Args:
        Wc: weights ``(K, P)`` at the checkpoint (float64; row 0 the baseline).
        W0: weights ``(K, P)`` at checkpoint 0; ``n0 = |W0|`` and ``d0 = |W0 - W0[0]|`` ``(K,)``.

    Returns:
        ``dist``, ``dist_rel``, ``dist_over_init``, ``norm``, ``norm_ratio``, ``cos_base``,
        ``cos_init``, ``dist_init``, each ``(K,)`` (see the module docstring).
    """
    dist = np.linalg.norm(Wc - Wc[0], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.where(d0 > 0, dist / np.where(d0 > 0, d0, 1), np.nan)
    nc = np.linalg.norm(Wc, axis=1)
    return {"dist": dist, "dist_rel": dist / n0[0], "dist_over_init": over, "norm": nc, "norm_ratio": nc / n0,
            "cos_base": (Wc @ Wc[0]) / (nc * nc[0]), "cos_init": np.einsum("kp,kp->k", Wc, W0) / (nc * n0),
            "dist_init": np.linalg.norm(Wc - W0, axis=1)}


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

    Returns:
        The metrics dataset (also written to ``out_path``).
    """
    if threads:
        torch.set_num_threads(int(threads))
    with Trajectory(traj_path) as tr:
        run = tr.config
        if expected_config is not None and canonical(expected_config) != canonical(run):
            raise ValueError(f"{traj_path}: trajectory was made from a different config than the workflow expects "
                             f"for {expected_config.get('experiment')}/{expected_config.get('run')}; rerun training")
        spec = spec or run.get("metrics", {})
        ctx = RunContext.build(run, data_path, device, load=True)
        dev, dtype, data, layout, task = ctx.device, ctx.dtype, ctx.data, ctx.layout, ctx.task
        ev = make_ensemble_eval(ctx.apply, "cross_entropy")
        itr = eval_subset(len(data.x_train), int(spec.get("eval_train", 10000)), run.get("seed", 0))
        ite = eval_subset(len(data.x_test), int(spec.get("eval_test", 10000)), run.get("seed", 0))
        xtr, ytr = data.x_train[itr].to(dev, dtype), data.y_train[itr].to(dev)
        xte, yte = data.x_test[ite].to(dev, dtype), data.y_test[ite].to(dev)
        if task != "classification":
            ytr, yte = ytr.to(dtype), yte.to(dtype)
        bs = int(spec.get("batch_size", 2000))
        C, K = tr.n_checkpoints, tr.n_members
        layers = layout.layers()
        lidx = np.repeat(np.array(layout.layer_index()), layout.sizes)
        names = ["dist", "dist_rel", "dist_over_init", "cos_base", "cos_init", "dist_init", "norm", "norm_ratio",
                 "train_loss", "train_acc", "test_loss", "test_acc", "train_cf_loss", "train_cf_acc",
                 "test_cf_loss", "test_cf_acc", "fs_l2_logits", "fs_l2_probs", "fs_disagree", "fs_sym_kl"]
        res = {n: np.full((K, C), np.nan) for n in names}
        dist_layer = np.full((K, C, len(layers)), np.nan)
        W0 = tr.weights(0).astype(np.float64)
        n0 = np.linalg.norm(W0, axis=1)
        d0 = np.linalg.norm(W0 - W0[0], axis=1)
        for c in range(C):
            Wc = tr.weights(c).astype(np.float64)
            for n, v in _weight_metrics(Wc, W0, n0, d0).items():
                res[n][:, c] = v
            sq = (Wc - Wc[0]) ** 2
            for li in range(len(layers)):
                dist_layer[:, c, li] = np.sqrt(sq[:, lidx == li].sum(1))
            Wt = torch.as_tensor(Wc, dtype=dtype, device=dev)
            out_tr, res["train_loss"][:, c], res["train_acc"][:, c] = _evaluate(ev, Wt, xtr, ytr, task, bs)
            out_te, res["test_loss"][:, c], res["test_acc"][:, c] = _evaluate(ev, Wt, xte, yte, task, bs)
            res["train_cf_loss"][:, c], res["train_cf_acc"][:, c] = _cf(out_tr, task)
            res["test_cf_loss"][:, c], res["test_cf_acc"][:, c] = _cf(out_te, task)
            if task == "classification":
                for k2, v in _function_space(out_te).items():
                    res[k2][:, c] = v
            else:
                res["fs_l2_logits"][:, c] = _function_space(out_te)["fs_l2_logits"]  # regression: outputs only
        mask = ~tr.valid.T  # (K, C)
        for n in names:
            res[n][mask] = np.nan
        dist_layer[mask] = np.nan
        coords = {
            "member": np.arange(K),
            "checkpoint": np.arange(C),
            "layer": layers,
            # parameters per layer and the baseline's initial layer norm: per-layer distances
            # relative to the layer (dist_layer / layer_norm0) or per weight (/ sqrt(layer_size))
            "layer_size": ("layer", np.bincount(lidx, minlength=len(layers)).astype(np.int64)),
            "layer_norm0": ("layer", np.sqrt(np.bincount(lidx, weights=W0[0] ** 2, minlength=len(layers)))),
            "step": ("checkpoint", tr.steps),
            "epoch": ("checkpoint", tr.epochs),
            "role": ("member", tr.members["role"].astype(str).values),
            "epsilon": ("member", tr.members["epsilon"].values.astype(float)),
            "init_distance": ("member", tr.members["distance"].values.astype(float)),
            "diverged_step": ("member", tr.diverged_step),
        }
        for col in tr.members.columns:
            if col.startswith("hp_"):
                coords[col] = ("member", tr.members[col].values.astype(float))
        data_vars = {n: (("member", "checkpoint"), res[n]) for n in names}
        data_vars["dist_layer"] = (("member", "checkpoint", "layer"), dist_layer)
        # width-normalised: the RMS difference per weight, comparable across widths and depths
        data_vars["dist_rms"] = (("member", "checkpoint"), res["dist"] / np.sqrt(layout.n_params))
        for n in ("train", "test"):
            data_vars[f"d_{n}_loss"] = (("member", "checkpoint"), res[f"{n}_loss"] - res[f"{n}_loss"][0])
            data_vars[f"d_{n}_acc"] = (("member", "checkpoint"), res[f"{n}_acc"] - res[f"{n}_acc"][0])
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs.update({
            "experiment": run.get("experiment", ""), "run": run.get("run", ""),
            "swept": json.dumps(run.get("swept", {})), "task": task,
            "n_params": layout.n_params, "eval_train": len(itr), "eval_test": len(ite),
            "config": canonical(run), "trajectory_provenance": json.dumps(tr.provenance),
            "provenance": json.dumps(collect(run, dev), default=str),
        })
    write_netcdf(ds, out_path)
    return ds
