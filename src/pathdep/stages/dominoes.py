"""Domino runs: per-pattern evaluation (rule ``dominoes_patterns``: ``patterns.nc``) and the
experiment's summary table (rule ``dominoes_summary``: ``patterns_summary.csv``).

What it computes, for every member k (0 = baseline, then the perturbed copies) and every
checkpoint t of ``trajectory.h5``, on each evaluation set of the prepared dominoes file
(``both``, ``top_only``, ``bottom_only``, ``top_randomized``, ``bottom_randomized``, plus
the ``train`` and ``test`` splits): the mean cross-entropy ``loss`` and the accuracy
``acc`` (dims ``set x member x checkpoint``; :func:`pathdep.core.evaluate.evaluate`). Then
each accuracy curve is fitted (:func:`pathdep.analysis.patterns.fit_accuracy_curves`: a
sigmoid against the step, start level fixed at chance ``1/K``): ``onset`` (step of the
midpoint), ``rate`` (per step), ``final`` and their standard errors (dims ``set x
member``); and the half-gain onset (first step at which the accuracy reaches chance + half
of its final gain) of every member (``onset_half``, set x member) and of the member-mean
curve (``onset_half_mean``, set); the baseline's fitted sigmoid on 200 log-spaced steps, for
the figure (``fit_acc``, set x ``fit_step``). The simplicity of each real side is measured
by a linear probe (:func:`pathdep.analysis.patterns.linear_probe`: logistic regression on
that side's pixels alone, fitted on the train split's shown sides, scored on the test
split's): attributes ``probe_acc_top``/``probe_acc_bottom``. The dataset's requested and achieved
prevalences/reliabilities are copied into the attributes, with the run's swept values,
so the experiment-level summary needs only these files.

:func:`summarize_patterns` reads the ``patterns.nc`` of an experiment's runs and writes one
row per run and pattern (:func:`pathdep.analysis.patterns.pattern_summary`, with the toy
model's onsets converted to steps by :func:`pathdep.analysis.patterns.toy_time_scale`).

Reading the randomized sets (Shah et al. 2020): accuracy on ``top_randomized`` (top side
shuffled across classes) is what the network gets from the bottom pattern alone when the
top one disagrees; near chance there means it relies on the top pattern.

How it was checked: ``tests/stages/test_dominoes.py`` (a tiny trained run: the baseline's
``test`` accuracy equals the metrics stage's on the same samples; the loss of a
hand-built model matches a direct evaluation; fits present for every set and member;
the half-gain onsets equal a direct evaluation of the stored curves; the probe of the simple
side beats the hard one; the summary's onsets on synthetic curves with known onsets).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch
import xarray as xr

from pathdep.analysis.patterns import (fit_accuracy_curves, fitted_curves, linear_probe, pattern_summary,
                                      toy_time_scale)
from pathdep.analysis.replicates import labels
from pathdep.core.context import DTYPES, build, canonical
from pathdep.core.evaluate import ensemble_forward, evaluate
from pathdep.data.dominoes import load_eval_sets
from pathdep.data.storage import read_inputs
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import Trajectory


def fit_patterns(ds: xr.Dataset) -> xr.Dataset:
    """Add the fits of ``acc`` (:func:`pathdep.analysis.patterns.fit_accuracy_curves`) to a patterns
    dataset, and the baseline's fitted curves on a grid of steps (``fit_acc``: set x ``fit_step``)."""
    k = int(ds.attrs.get("n_classes", 10))
    f = fit_accuracy_curves(ds["step"].values, ds["acc"].values, k)
    grid, curves = fitted_curves(ds["step"].values, f, k)
    half_mean = f.pop("onset_half_mean")
    return ds.assign({v: (("set", "member"), a) for v, a in f.items()}
                     | {"onset_half_mean": (("set",), half_mean), "fit_acc": (("set", "fit_step"), curves)}
                     ).assign_coords(fit_step=grid)


def probe_sides(data_path: str | Path, max_train: int = 1000) -> dict[str, float]:
    """Linear-probe accuracy of each side alone (its own class), train -> test split shown sides."""
    with h5py.File(data_path, "r") as f:
        c, h, w = (int(v) for v in f.attrs["side_shape"])
        out = {}
        for j, side in enumerate(("top", "bottom")):
            xs, ys = [], []
            for split in ("train", "test"):
                g = f[split]
                keep = np.flatnonzero(g[f"{side}_present"][()])
                x = read_inputs(f, f"{split}/x")[keep] if len(keep) else np.zeros((0, c, 2 * h, w), np.float32)
                xs.append(x[:, :, j * h:(j + 1) * h, :])
                ys.append(g[f"{side}_label"][()][keep])
            out[side] = linear_probe(xs[0], ys[0], xs[1], ys[1], max_train=max_train)
    return out


def _read_sets(data_path, dtype, max_eval: int | None) -> tuple[dict, dict, dict]:
    """``(sets {name: (x, y)}, dataset attributes to copy, model meta)`` of a dominoes file."""
    sets = load_eval_sets(data_path)
    with h5py.File(data_path, "r") as f:
        dattrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()
                  if k.startswith(("requested_", "achieved_")) or k in ("top", "bottom", "name", "out_dim")}
        meta = {"in_shape": tuple(int(v) for v in f.attrs["in_shape"]), "out_dim": int(f.attrs["out_dim"]),
                "task": "classification"}
    data = {}
    for s in sets:
        n = len(sets[s]["y"]) if max_eval is None else min(max_eval, len(sets[s]["y"]))
        data[s] = (torch.as_tensor(sets[s]["x"][:n], dtype=dtype), torch.as_tensor(sets[s]["y"][:n]))
    return data, dattrs, meta


def _evaluate_sets(tr: Trajectory, apply, data: dict, dtype, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross entropy and accuracy ``(set, member, checkpoint)`` of every checkpoint, masked."""
    C, K = tr.n_checkpoints, tr.n_members
    loss = np.full((len(data), K, C), np.nan)
    acc = np.full((len(data), K, C), np.nan)
    forward = ensemble_forward(apply)
    for c in range(C):
        W = torch.as_tensor(tr.weights(c), dtype=dtype)
        for i, (x, y) in enumerate(data.values()):
            ev = evaluate(apply, W, x, y, "cross_entropy", batch_size, forward=forward)
            loss[i, :, c], acc[i, :, c] = ev.loss, ev.accuracy
    mask = ~tr.valid.T
    loss[:, mask], acc[:, mask] = np.nan, np.nan
    return loss, acc


def _patterns_dataset(tr: Trajectory, run: dict, data: dict, loss, acc, dattrs: dict, n_classes: int) -> xr.Dataset:
    names = list(data)
    coords = {"set": names, "member": np.arange(tr.n_members), "checkpoint": np.arange(tr.n_checkpoints),
              "step": ("checkpoint", tr.steps), "epoch": ("checkpoint", tr.epochs),
              "role": ("member", tr.members["role"].astype(str).values),
              "baseline": ("member", labels(tr.members)[0]), "copy": ("member", labels(tr.members)[1]),
              "epsilon": ("member", tr.members["epsilon"].values.astype(float)),
              "n_samples": ("set", [len(data[s][1]) for s in names])}
    ds = xr.Dataset({"loss": (("set", "member", "checkpoint"), loss),
                     "acc": (("set", "member", "checkpoint"), acc)}, coords=coords)
    ds.attrs.update({k: (str(v) if isinstance(v, (bytes, str)) else float(v)) for k, v in dattrs.items()})
    ds.attrs.update({"experiment": run.get("experiment", ""), "run": run.get("run", ""),
                     "swept": json.dumps(run.get("swept", {})), "n_classes": n_classes,
                     "dataset": run.get("dataset", ""), "lr": float(run["optimizer"].get("lr", np.nan)),
                     "config": canonical(run), "provenance": json.dumps(collect(run, "cpu"), default=str)})
    return ds


def evaluate_patterns(traj_path: str | Path, data_path: str | Path, out_path: str | Path,
                      expected_config: dict | None = None, batch_size: int = 2000,
                      max_eval: int | None = None, threads: int | None = None) -> xr.Dataset:
    """Evaluate every member at every checkpoint on the domino evaluation sets; write netCDF.

    Args:
        traj_path: ``trajectory.h5`` of a run trained on a dominoes dataset.
        data_path: The prepared dominoes file (``results/data/<name>.h5``).
        out_path: ``patterns.nc`` (written atomically).
        expected_config: The run config the workflow expects; a trajectory made from
            another config is refused (one line).
        batch_size: Evaluation batch size.
        max_eval: Use at most this many samples of each set (first ones); default all.
        threads: torch intra-op threads.

    Returns:
        The dataset written (``loss``, ``acc``: set x member x checkpoint; fits: set x member).
    """
    if threads:
        torch.set_num_threads(int(threads))
    with Trajectory(traj_path) as tr:
        run = tr.config
        if expected_config is not None and canonical(expected_config) != canonical(run):
            raise ValueError(f"{traj_path}: trajectory was made from a different config than the workflow expects "
                             f"for {expected_config.get('experiment')}/{expected_config.get('run')}; rerun training")
        dtype = DTYPES[run["training"]["dtype"]]
        data, dattrs, meta = _read_sets(data_path, dtype, max_eval)
        _, _, apply = build(run, meta, dtype)
        loss, acc = _evaluate_sets(tr, apply, data, dtype, batch_size)
        ds = _patterns_dataset(tr, run, data, loss, acc, dattrs, meta["out_dim"])
    ds = fit_patterns(ds)
    ds.attrs.update({f"probe_acc_{side}": float(v) for side, v in probe_sides(data_path).items()})
    write_netcdf(ds, out_path)
    return ds


def _run_rows(ds: xr.Dataset, simplicity, model: str, w0: float) -> list[dict]:
    """The summary rows of one run's ``patterns.nc`` (run name and swept values first)."""
    a = ds.attrs
    fits = {v: ds[v].values for v in ("onset", "onset_se", "rate", "rate_se", "final", "onset_half",
                                       "onset_half_mean")}
    rows = pattern_summary(list(ds["set"].values), fits, ds["acc"].values,
                           (a["achieved_prevalence_top"], a["achieved_prevalence_bottom"]),
                           (a["achieved_reliability_top"], a["achieved_reliability_bottom"]),
                           (a.get("probe_acc_top", np.nan), a.get("probe_acc_bottom", np.nan)),
                           int(a.get("n_classes", 10)), simplicity=simplicity, model=model, w0=w0,
                           baseline=labels(ds)[0])
    swept = {f"swept:{k}": v for k, v in json.loads(a["swept"]).items()}
    return [{"run": a.get("run", ""), "pattern": r.pop("pattern"), **swept, **r} for r in rows]


def summarize_patterns(pattern_files, out_csv: str | Path, simplicity=None, model: str = "two_layer",
                       w0: float = 1e-3):
    """Write ``patterns_summary.csv``: one row per run and pattern, measured onsets and the toy model's.

    Rows from :func:`pathdep.analysis.patterns.pattern_summary` (``simplicity`` per side as a
    ``(top, bottom)`` pair or ``{side: s}`` dict; a side not given uses its probe's), plus
    ``toy_onset_steps`` = ``toy_onset`` times the experiment's one factor ``toy_scale``
    (:func:`pathdep.analysis.patterns.toy_time_scale`).

    Returns:
        The table (a pandas DataFrame), also written to ``out_csv``.
    """
    import pandas as pd

    rows = []
    for path in pattern_files:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            rows += _run_rows(ds.load(), simplicity, model, w0)
    df = pd.DataFrame(rows)
    scale = toy_time_scale(df["onset"], df["toy_onset"])
    df["toy_onset_steps"] = df["toy_onset"] * scale
    df["toy_scale"] = scale
    df.attrs["toy_scale"] = scale
    write_csv(df, out_csv)
    return df
