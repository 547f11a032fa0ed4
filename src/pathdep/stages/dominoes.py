"""Per-pattern evaluation of domino runs (rule ``dominoes_patterns``): ``patterns.nc``.

What it computes, for every member k (0 = baseline, then the perturbed copies) and every
checkpoint t of ``trajectory.h5``, on each evaluation set of the prepared dominoes file
(``both``, ``top_only``, ``bottom_only``, ``top_randomized``, ``bottom_randomized``, plus
the ``train`` and ``test`` splits): the mean cross-entropy ``loss`` and the accuracy
``acc`` (dims ``set x member x checkpoint``). Then each accuracy curve is fitted with
:func:`pathdep.analysis.patterns.fit_sigmoid` against the step, with the start level fixed
at chance ``1/K``: ``onset`` (step of the midpoint), ``rate`` (per step), ``final`` and
their standard errors (dims ``set x member``); and the half-gain onset
(:func:`pathdep.analysis.patterns.half_gain_time`: first step at which the accuracy reaches
chance + half of its final gain) of every member (``onset_half``, set x member) and of the
member-mean curve (``onset_half_mean``, set). The simplicity of each real side is measured
by a linear probe (:func:`pathdep.analysis.patterns.linear_probe`: logistic regression on
that side's pixels alone, fitted on the train split's shown sides, scored on the test
split's): attributes ``probe_acc_top``/``probe_acc_bottom``. The dataset's requested and achieved
prevalences/reliabilities are copied into the attributes, with the run's swept values,
so the experiment-level figure needs only these files.

Reading the randomized sets (Shah et al. 2020): accuracy on ``top_randomized`` (top side
shuffled across classes) is what the network gets from the bottom pattern alone when the
top one disagrees; near chance there means it relies on the top pattern.

How it was checked: ``tests/stages/test_dominoes.py`` (a tiny trained run: the baseline's
``test`` accuracy equals the metrics stage's on the same samples; the loss of a
hand-built model matches a direct evaluation; fits present for every set and member;
the half-gain onsets equal a direct evaluation of the stored curves; the probe of the digits
side beats chance).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch
import xarray as xr

from pathdep.analysis.patterns import fit_sigmoid, half_gain_time, linear_probe, probe_simplicity
from pathdep.core.context import DTYPES, build, canonical
from pathdep.core.dynamics import make_ensemble_eval
from pathdep.data.dominoes import load_eval_sets
from pathdep.io.atomic import write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import Trajectory
from pathdep.stages.metrics import _evaluate

FIT_VARS = ("onset", "rate", "final", "onset_se", "rate_se", "final_se", "fit_rmse")


def fit_patterns(ds: xr.Dataset) -> xr.Dataset:
    """Add sigmoid fits of ``acc`` (vs ``step``, start fixed at chance) per set and member."""
    k = int(ds.attrs.get("n_classes", 10))
    steps = ds["step"].values.astype(float)
    out = {v: np.full((ds.sizes["set"], ds.sizes["member"]), np.nan) for v in FIT_VARS}
    for i in range(ds.sizes["set"]):
        for m in range(ds.sizes["member"]):
            f = fit_sigmoid(steps, ds["acc"].values[i, m], y0=1.0 / k)
            for v, src in zip(FIT_VARS, ("t0", "rate", "y_inf", "t0_se", "rate_se", "y_inf_se", "rmse")):
                out[v][i, m] = f[src]
    acc = ds["acc"].values
    half = np.array([[half_gain_time(steps, acc[i, m], 1.0 / k) for m in range(ds.sizes["member"])]
                     for i in range(ds.sizes["set"])]).reshape(ds.sizes["set"], ds.sizes["member"])
    with np.errstate(all="ignore"):
        mean_curve = np.nanmean(acc, axis=1)
    half_mean = np.array([half_gain_time(steps, mean_curve[i], 1.0 / k) for i in range(ds.sizes["set"])])
    return ds.assign({v: (("set", "member"), a) for v, a in out.items()}
                     | {"onset_half": (("set", "member"), half), "onset_half_mean": (("set",), half_mean)})


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
                x = g["x"][()][keep] if len(keep) else np.zeros((0, c, 2 * h, w), np.float32)
                xs.append(x[:, :, j * h:(j + 1) * h, :])
                ys.append(g[f"{side}_label"][()][keep])
            out[side] = linear_probe(xs[0], ys[0], xs[1], ys[1], max_train=max_train)
    return out


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
    sets = load_eval_sets(data_path)
    with h5py.File(data_path, "r") as f:
        dattrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()
                  if k.startswith(("requested_", "achieved_")) or k in ("top", "bottom", "name", "out_dim")}
        meta = {"in_shape": tuple(int(v) for v in f.attrs["in_shape"]), "out_dim": int(f.attrs["out_dim"]),
                "task": "classification"}
    with Trajectory(traj_path) as tr:
        run = tr.config
        if expected_config is not None and canonical(expected_config) != canonical(run):
            raise ValueError(f"{traj_path}: trajectory was made from a different config than the workflow expects "
                             f"for {expected_config.get('experiment')}/{expected_config.get('run')}; rerun training")
        dtype = DTYPES[run["training"]["dtype"]]
        module, layout, apply = build(run, meta, dtype)
        ev = make_ensemble_eval(apply, "cross_entropy")
        names = list(sets)
        data = {}
        for s in names:
            n = len(sets[s]["y"]) if max_eval is None else min(max_eval, len(sets[s]["y"]))
            data[s] = (torch.as_tensor(sets[s]["x"][:n], dtype=dtype), torch.as_tensor(sets[s]["y"][:n]))
        C, K = tr.n_checkpoints, tr.n_members
        loss = np.full((len(names), K, C), np.nan)
        acc = np.full((len(names), K, C), np.nan)
        for c in range(C):
            W = torch.as_tensor(tr.weights(c), dtype=dtype)
            for i, s in enumerate(names):
                _, loss[i, :, c], acc[i, :, c] = _evaluate(ev, W, *data[s], "classification", batch_size)
        mask = ~tr.valid.T
        loss[:, mask], acc[:, mask] = np.nan, np.nan
        coords = {"set": names, "member": np.arange(K), "checkpoint": np.arange(C),
                  "step": ("checkpoint", tr.steps), "epoch": ("checkpoint", tr.epochs),
                  "role": ("member", tr.members["role"].astype(str).values),
                  "epsilon": ("member", tr.members["epsilon"].values.astype(float)),
                  "n_samples": ("set", [len(data[s][1]) for s in names])}
        ds = xr.Dataset({"loss": (("set", "member", "checkpoint"), loss),
                         "acc": (("set", "member", "checkpoint"), acc)}, coords=coords)
        ds.attrs.update({k: (str(v) if isinstance(v, (bytes, str)) else float(v)) for k, v in dattrs.items()})
        ds.attrs.update({"experiment": run.get("experiment", ""), "run": run.get("run", ""),
                         "swept": json.dumps(run.get("swept", {})), "n_classes": meta["out_dim"],
                         "dataset": run.get("dataset", ""), "lr": float(run["optimizer"].get("lr", np.nan)),
                         "config": canonical(run), "provenance": json.dumps(collect(run, "cpu"), default=str)})
    ds = fit_patterns(ds)
    probe = probe_sides(data_path)
    ds.attrs.update({f"probe_acc_{side}": float(v) for side, v in probe.items()})
    write_netcdf(ds, out_path)
    return ds


def summarize_patterns(pattern_files, out_csv: str | Path, simplicity=None, model: str = "two_layer",
                       w0: float = 1e-3):
    """One row per run and pattern: measured onsets and the toy model's prediction.

    For each ``patterns.nc`` (one run of an experiment) and each one-sided set
    (``top_only``, ``bottom_only``): the swept values, the achieved prevalence and
    reliability, the onset ``onset`` = half-gain time of the member-mean accuracy curve
    (``onset_se`` = standard deviation of the members' half-gain times / sqrt(members)),
    the baseline's sigmoid fit (``sigmoid_onset``, ``rate``, ``final`` with standard
    errors), the randomized-set accuracies at the last checkpoint (member mean), the probe
    accuracies and simplicities of each side, and the toy model's half-gain onset
    (:func:`pathdep.analysis.patterns.toy_onsets` with the run's achieved prevalence and
    reliability, ``K`` classes, and per side the given ``simplicity`` (a ``(top, bottom)``
    pair or a ``{side: s}`` dict) or, for a side not given, ``probe_simplicity`` of the one
    measured by the linear probe). The toy's time unit is converted to steps with one
    factor for the whole experiment, ``c = exp(mean(ln onset - ln toy_onset))`` over the
    rows where both are valid (column ``toy_onset_steps``).

    Returns:
        The table (a pandas DataFrame), also written to ``out_csv``.
    """
    import pandas as pd

    from pathdep.analysis.patterns import toy_onsets
    from pathdep.io.atomic import write_csv

    rows = []
    for path in pattern_files:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
        a = ds.attrs
        k = int(a.get("n_classes", 10))
        p = (a["achieved_prevalence_top"], a["achieved_prevalence_bottom"])
        r = (a["achieved_reliability_top"], a["achieved_reliability_bottom"])
        r = tuple(1.0 / k if not np.isfinite(v) else v for v in r)
        q = (float(a.get("probe_acc_top", np.nan)), float(a.get("probe_acc_bottom", np.nan)))
        given = dict(zip(("top", "bottom"), simplicity)) if isinstance(simplicity, (tuple, list)) else dict(simplicity or {})
        simp = tuple(float(given[side]) if side in given else (probe_simplicity(v, k) if np.isfinite(v) else 1.0)
                     for side, v in zip(("top", "bottom"), q))
        try:
            toy = toy_onsets(p, r, simp, model=model, w0=w0, n_classes=k)
        except ValueError:
            toy = {"onset": [np.nan, np.nan], "final": [np.nan, np.nan], "fits": [{"t0": np.nan}, {"t0": np.nan}]}
        sets = list(ds["set"].values)
        with np.errstate(all="ignore"):
            last = {s: float(np.nanmean(ds["acc"].values[sets.index(s), :, -1])) for s in sets}
        for i, side in enumerate(("top", "bottom")):
            j = sets.index(f"{side}_only")
            half = ds["onset_half"].values[j]
            nv = int(np.isfinite(half).sum())
            row = {"run": a.get("run", ""), "pattern": side,
                   **{f"swept:{kk}": v for kk, v in json.loads(a["swept"]).items()},
                   "prevalence": p[i], "reliability": r[i], "probe_acc": q[i], "simplicity": simp[i],
                   "onset": float(ds["onset_half_mean"].values[j]),
                   "onset_se": float(np.nanstd(half, ddof=1) / np.sqrt(nv)) if nv > 1 else np.nan,
                   "onset_members_n": nv,
                   "sigmoid_onset": ds["onset"].values[j, 0], "sigmoid_onset_se": ds["onset_se"].values[j, 0],
                   "rate": ds["rate"].values[j, 0], "rate_se": ds["rate_se"].values[j, 0],
                   "final": ds["final"].values[j, 0],
                   "toy_onset": float(toy["onset"][i]), "toy_final": float(toy["final"][i]),
                   "toy_sigmoid_onset": float(toy["fits"][i]["t0"])}
            row.update({f"acc_{s}": v for s, v in last.items()})
            rows.append(row)
    df = pd.DataFrame(rows)
    ok = np.isfinite(df["onset"]) & (df["onset"] > 0) & np.isfinite(df["toy_onset"]) & (df["toy_onset"] > 0)
    scale = float(np.exp(np.mean(np.log(df["onset"][ok]) - np.log(df["toy_onset"][ok])))) if ok.any() else np.nan
    df["toy_onset_steps"] = df["toy_onset"] * scale
    df["toy_scale"] = scale
    df.attrs["toy_scale"] = scale
    write_csv(df, out_csv)
    return df
