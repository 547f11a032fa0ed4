"""Koopman spectra stages (rules/koopman.smk): the OMD/OGD/BM toy, and the spectra of the
workflow's recorded trajectories with W1 distances and conjugacy tests.

What it computes:

* :func:`toy`: :func:`pathdep.analysis.koopman_toy.toy_study` (Redman et al. 2024, sec. 4.1)
  -> ``koopman_toy.nc`` (iterates, losses, eigenvalues per method and per replicate group)
  and ``koopman_toy.csv`` (W1 between methods, within/between replicate means, p-values).
* :func:`calibration`: :func:`pathdep.analysis.koopman_calibration.calibrate` (issue 18:
  a test that can fail) -> ``calibration.nc`` (every p-value) and ``calibration.csv``
  (rejection rate under the null, power, the rate with copies of one baseline as
  replicates, each with the p floor).
* :func:`experiment`: for every run of one experiment, its trajectory.h5 read as an
  observable series of shape (K members, T, D) (``observable``: ``output_weights``, the
  output layer's weights (:func:`output_tensor`: the last ``*.weight`` parameter, a ResNet's
  ``fc.weight``, a transformer's unembedding, the token embedding when tied) as in Redman et
  al.'s FCN study, or
  ``weights`` (every parameter), both at the checkpoints, which must be evenly spaced (the
  longest evenly spaced run of checkpoints is used; log-spaced checkpoints leave only a few);
  or ``loss``, the per-step batch loss of every member, recorded at every step whatever the
  checkpoints). Per run: the pooled spectrum (DMD over the K members' trajectories), one
  spectrum per independent baseline (pooled over that baseline and its own copies, the
  paper's "10 initialisations" of one seed) and one per member; W1 between each member and
  its own baseline. Across runs: runs grouped by ``group_by`` (a dotted key of the resolved
  run, e.g. ``model.width``), else each run a group; a group's replicates are the baseline
  spectra of its runs (seeds x ``perturbation.baselines``; files without baseline labels
  are one baseline), never the copies of one baseline. For each pair of groups the mean
  between- and within-group W1 and the permutation p-value of
  :func:`pathdep.analysis.koopman.conjugacy_test` with its floor (``p_method``, ``p_min``;
  fewer than 2 replicates in a group: no test, the reason in ``note``). Degenerate spectra
  (:func:`~pathdep.analysis.koopman.check_spectrum`) are flagged in the table, not compared.
  With ``windows`` ({size: steps, stride: steps} or {per_epoch: true}; Redman et al.'s
  LeNet-5 study), each run's series is also cut into consecutive windows of training steps
  (:func:`pathdep.analysis.koopman.window_bounds`), one spectrum per window pooled over the
  members, and the window x window W1 matrix per run
  (:func:`pathdep.analysis.koopman.windowed_spectra`), written to the same netCDF, with the
  best two-block split of that matrix (a dynamical transition: its window, first step,
  contrast and permutation p, :func:`pathdep.analysis.koopman_windows.transition_scan`) per
  run in ``window_split/_contrast/_p`` and the optional ``windows_csv``.

The numerics live in :mod:`pathdep.analysis.koopman` and
:mod:`pathdep.analysis.koopman_groups`, the settings in :mod:`pathdep.config.koopman`.

How it was checked: tests/stages/test_koopman.py (the toy files hold the table the numerics
give; a synthetic trajectory.h5 pair of linear systems comes out conjugate within a group
and not between groups; an uneven checkpoint grid and a too-short series give one-line
errors; a trajectory.h5 whose output weights switch between two linear maps at a known
step gives the block structure of W1 between windows, per-epoch windows included).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.koopman import window_bounds, windowed_spectra
from pathdep.analysis.koopman_windows import transition_scan
from pathdep.analysis.koopman_groups import (
    TABLE_COLUMNS, group_pair_tests, pad_nested, pad_runs, pad_spectra, pad_windows, run_spectra, spectrum_width,
    uniform_segment, w1_between_runs,
)
from pathdep.analysis.replicates import labels as replicate_labels
from pathdep.analysis.koopman_calibration import CASES, calibrate
from pathdep.analysis.koopman_toy import METHODS, toy_study
from pathdep.config.koopman import OBSERVABLES, group_of, resolve, window_size
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import Trajectory


def _prov(spec: dict) -> str:
    return json.dumps(collect(spec), default=str)


def _toy_variables(res: dict) -> dict:
    """netCDF variables of :func:`pathdep.analysis.koopman_toy.toy_study`'s result."""
    traj = res["trajectories"]
    r = max(len(e) for e in res["eigenvalues"].values())
    rg = max(g.shape[1] for g in res["group_eigenvalues"].values())
    ev = pad_spectra([res["eigenvalues"][m] for m in METHODS], r)
    gev = np.stack([pad_spectra(list(res["group_eigenvalues"][m]), rg) for m in METHODS])
    return {
        "iterate": (("algorithm", "ic", "t", "dim"), np.stack([traj[m] for m in METHODS])),
        "loss": (("algorithm", "ic", "t"), np.stack([traj[f"loss_{m}"] for m in METHODS])),
        "group": (("ic",), res["groups"]),
        "eig_real": (("algorithm", "mode"), ev.real), "eig_imag": (("algorithm", "mode"), ev.imag),
        "group_eig_real": (("algorithm", "replicate", "gmode"), gev.real),
        "group_eig_imag": (("algorithm", "replicate", "gmode"), gev.imag),
    }


def toy(spec: dict, nc: str | Path, csv: str | Path) -> pd.DataFrame:
    """Run the OMD/OGD/BM study and write its netCDF and CSV table.

    Args:
        spec: ``koopman.toy`` (keys of :data:`pathdep.config.koopman.DEFAULTS` ``["toy"]``).
        nc, csv: outputs.

    Returns:
        The table (one row per pair of methods).
    """
    s = resolve(spec, "toy")
    res = toy_study(**s)
    table = pd.DataFrame(res["table"])
    ds = xr.Dataset(_toy_variables(res), coords={"algorithm": list(METHODS)},
                    attrs={"spec": json.dumps(s), "provenance": _prov(s),
                           "table": table.to_json(orient="records"),
                           "description": "Redman et al. 2024 validation: OMD (x) vs OGD (u = log x) vs "
                                          "bisection on f = sum tan x_i; eigenvalues by DMD"})
    write_netcdf(ds, nc)
    write_csv(table, csv)
    return table


def calibration(spec: dict, nc: str | Path, csv: str | Path) -> pd.DataFrame:
    """Calibrate the conjugacy test on noisy linear systems and write its table and p-values.

    Args:
        spec: ``koopman.calibration`` (keys of :data:`pathdep.config.koopman.DEFAULTS`
            ``["calibration"]``).
        nc: ``p_value (case, replicates, repeat)`` and the table as an attribute.
        csv: one row per case (null, alternative, null_copies) and replicates per group:
            rejections at alpha over the repeats, rate and its Clopper-Pearson 95 %
            interval, the test's p_method and p_min, the effect size w1_settings.

    Returns:
        The table.
    """
    s = resolve(spec, "calibration")
    res = calibrate(**s)
    table = pd.DataFrame(res["table"])
    ds = xr.Dataset({"p_value": (("case", "replicates", "repeat"), np.stack([res["p_values"][c] for c in CASES]))},
                    coords={"case": list(CASES), "replicates": list(s["replicates"]),
                            "repeat": np.arange(s["repeats"])},
                    attrs={"spec": json.dumps(s), "provenance": _prov(s), "table": table.to_json(orient="records"),
                           "description": "conjugacy test on noisy linear systems: rejection rate under the null "
                                          "(independent seeds), power against a shifted eigenvalue pair, and "
                                          "the null with copies of one baseline as replicates"})
    write_netcdf(ds, nc)
    write_csv(table, csv)
    return table


def output_tensor(names: Sequence[str], config: dict | None) -> str:
    """The output layer's weight tensor of a layout: the unembedding of a transformer (the
    token embedding when ``tied``), else the last ``*.weight`` (the last parameter if none):
    an MLP's or LeNet-5's last layer, a ResNet's ``fc.weight``."""
    names = list(names)
    model = (config or {}).get("model") or {}
    if model.get("kind") == "transformer":
        want = "embed.weight" if model.get("tied") else "unembed.weight"
        if want in names:
            return want
    return ([n for n in names if n.endswith("weight")] or names)[-1]


def _read_series(tr: Trajectory, observable: str) -> tuple[np.ndarray, np.ndarray]:
    """(y (K, T, D) float64, steps (T,)) of an open trajectory file."""
    if observable == "loss":
        loss = tr.loss() if callable(tr.loss) else tr.loss              # (T, K)
        y = np.asarray(loss, dtype=np.float64).T[:, :, None]         # (K, T, 1)
        return y, np.arange(y.shape[1])
    seg = uniform_segment(tr.steps)
    sl = tr.layout.slice(output_tensor(tr.layout.names, tr.config)) if observable == "output_weights" else slice(None)
    w = np.stack([tr.weights(c)[:, sl] for c in range(seg.start, seg.stop)])  # (T, K, D), decoded storage
    return np.transpose(np.asarray(w, dtype=np.float64), (1, 0, 2)), np.asarray(tr.steps[seg])


def observations(path: str | Path, observable: str, window: Sequence[int] | None = None,
                 need: int = 3) -> tuple[np.ndarray, np.ndarray, dict]:
    """An observable series of every member of one trajectory file.

    Args:
        path: trajectory.h5.
        observable: one of :data:`pathdep.config.koopman.OBSERVABLES`.
        window: optional [first, last] training step (inclusive) to keep.
        need: fewest time points accepted.

    Returns:
        (obs (K, T, D) float64, steps (T,), info) with ``info`` holding the run config,
        member roles and the step spacing used.
    """
    if observable not in OBSERVABLES:
        raise ValueError(f"koopman.observable: expected one of {list(OBSERVABLES)}, got {observable!r}")
    with Trajectory(path) as tr:
        roles = np.asarray(tr.members["role"]).astype(str)
        baseline, copy = replicate_labels(tr.members)
        y, steps = _read_series(tr, observable)
        config = tr.config
        steps_per_epoch = int(tr.f.attrs.get("steps_per_epoch", 0))
    if window is not None:
        keep = (steps >= window[0]) & (steps <= window[1])
        y, steps = y[:, keep], steps[keep]
    if y.shape[1] < need:
        raise ValueError(f"{path}: koopman.observable {observable!r}: {y.shape[1]} evenly spaced time points, "
                         f"need >= {need} (record checkpoints with training.checkpoints.mode: every, "
                         "or use observable: loss)")
    spacing = int(np.diff(steps)[0]) if len(steps) > 1 else 0
    return y, steps, {"config": config, "roles": roles, "baseline": baseline, "copy": copy, "spacing": spacing,
                      "steps_per_epoch": steps_per_epoch}


def _windows(y, steps, info, s, path, name) -> tuple:
    """(bounds, spectra, notes, W1 matrix) of one run's windows of training."""
    size, stride = window_size(s["windows"], info["steps_per_epoch"])
    need = s["n_delays"] + 3
    bounds = window_bounds(steps, size, stride, need=need)
    if len(bounds) < 2:
        raise ValueError(f"{path}: koopman.windows: {len(bounds)} complete window(s) of {size} steps "
                         f"with >= {need} samples in steps {steps[0]}..{steps[-1]}, need >= 2")
    ok = np.all(np.isfinite(y), axis=(1, 2))                            # diverged members drop out
    return (bounds, *windowed_spectra(y[ok], bounds, s["n_delays"], s["rank"], s["collapse_tol"],
                                      name=f"{name} window"))


def _run(run: dict, path, s: dict, exp: str) -> dict:
    """Spectra (and windows) of one run's trajectory file."""
    y, steps, info = observations(path, s["observable"], s["window"], need=s["n_delays"] + 3)
    name = f"{exp}/{run['run']}"
    out = {"windows": _windows(y, steps, info, s, path, name) if s["windows"] else None,
           "window_size": window_size(s["windows"], info["steps_per_epoch"]) if s["windows"] else None}
    out.update(run_spectra(y, s["n_delays"], s["rank"], s["collapse_tol"], name, info["baseline"], info["copy"]))
    out["label"] = group_of(run, s["group_by"])
    return out


WINDOW_COLUMNS = ("experiment", "run", "n_windows", "size", "stride", "split_window", "split_step", "contrast",
                  "p_value", "p_min", "note")


def _transitions(names, res, s: dict, exp: str) -> pd.DataFrame:
    """One row per run: the best two-block split of its window x window W1 matrix
    (:func:`pathdep.analysis.koopman_windows.transition_scan`), the first step after it."""
    rows = []
    for name, r in zip(names, res):
        if r["windows"] is None:
            continue
        bounds, d = r["windows"][0], r["windows"][3]
        t = transition_scan(d, n_perm=s["n_perm"], seed=s["seed"])
        k = int(t["kept"][t["split"]]) if t["split"] >= 0 else -1
        rows.append({"experiment": exp, "run": name, "n_windows": len(bounds), "size": r["window_size"][0],
                     "stride": r["window_size"][1], "split_window": k,
                     "split_step": int(bounds[k][2]) if k >= 0 else -1, "contrast": t["contrast"],
                     "p_value": t["p_value"], "p_min": t["p_min"], "note": t["note"]})
    return pd.DataFrame(rows, columns=list(WINDOW_COLUMNS))


def _replicate_variables(names, res) -> tuple[dict, dict]:
    """netCDF variables of the replicates (one spectrum per run and baseline) and the W1 between them."""
    reps = [r["replicates"] for r in res]
    rr = pad_nested(reps, spectrum_width(reps))
    nb = rr.shape[1]
    notes = np.array([list(r["replicate_notes"]) + [""] * (nb - len(r["replicate_notes"])) for r in res], dtype=object)
    flat = [(i, b) for i, r in enumerate(reps) for b in range(len(r))]
    return ({"replicate_eig_real": (("run", "baseline", "rmode"), rr.real),
             "replicate_eig_imag": (("run", "baseline", "rmode"), rr.imag),
             "replicate_note": (("run", "baseline"), notes.astype(str)),
             "w1_replicates": (("replicate", "replicate2"), w1_between_runs([reps[i][b] for i, b in flat])),
             "replicate_run": (("replicate",), np.array([names[i] for i, _ in flat], dtype=object).astype(str)),
             "replicate_baseline": (("replicate",), np.array([b for _, b in flat], dtype=np.int64)),
             "replicate_group": (("replicate",), np.array([res[i]["label"] for i, _ in flat], dtype=object).astype(str))},
            {"baseline": np.arange(nb), "replicate": np.arange(len(flat)), "replicate2": np.arange(len(flat))})


def _experiment_dataset(names, res, table, s, exp) -> xr.Dataset:
    pr, mr, mw = pad_runs([r["pooled"] for r in res], [r["members"] for r in res], [r["member_w1"] for r in res])
    rvars, rcoords = _replicate_variables(names, res)
    wvars, wcoords = {}, {}
    if s["windows"]:
        w = pad_windows([r["windows"] for r in res])
        wvars = {"window_eig_real": (("run", "window", "wmode"), w["eig"].real),
                 "window_eig_imag": (("run", "window", "wmode"), w["eig"].imag),
                 "w1_windows": (("run", "window", "window2"), w["w1"]),
                 "window_start": (("run", "window"), w["start"]), "window_stop": (("run", "window"), w["stop"]),
                 "window_note": (("run", "window"), w["note"])}
        wcoords = {"window": np.arange(w["w1"].shape[1]), "window2": np.arange(w["w1"].shape[1])}
    return xr.Dataset(
        {**wvars, **rvars, "eig_real": (("run", "mode"), pr.real), "eig_imag": (("run", "mode"), pr.imag),
         "member_eig_real": (("run", "member", "mode"), mr.real),
         "member_eig_imag": (("run", "member", "mode"), mr.imag),
         "w1_baseline_member": (("run", "member"), mw),
         "w1_runs": (("run", "run2"), w1_between_runs([r["pooled"] for r in res])),
         "group": (("run",), np.array([r["label"] for r in res], dtype=object).astype(str)),
         "note": (("run",), np.array([r["note"] for r in res], dtype=object).astype(str))},
        coords={"run": names, "run2": names, **wcoords, **rcoords},
        attrs={"experiment": exp, "spec": json.dumps(s), "provenance": _prov(s),
               "group_by": s["group_by"] or "", "table": table.to_json(orient="records")})


def experiment(runs: Sequence[dict], traj_files: Sequence[str | Path], spec: dict, exp: str,
               nc: str | Path, csv: str | Path, windows_csv: str | Path | None = None) -> pd.DataFrame:
    """Koopman spectra of every run of one experiment, W1 tables and conjugacy tests.

    Args:
        runs: resolved run configs (``run`` = name), aligned with ``traj_files``.
        traj_files: trajectory.h5 of each run.
        spec: ``koopman`` settings for this experiment
            (:func:`pathdep.config.koopman.experiment_spec`).
        exp: experiment name.
        nc: netCDF with per-run pooled, per-baseline (``replicate_eig_* (run, baseline,
            rmode)``) and per-member eigenvalues, the run x run W1 and the W1 between
            replicates (``w1_replicates (replicate, replicate2)`` with ``replicate_run``,
            ``replicate_baseline``, ``replicate_group``);
            with ``windows`` also ``window_eig_* (run, window, wmode)``, ``w1_windows (run,
            window, window2)`` and the steps ``window_start``/``window_stop`` (run, window)
            (-1 / NaN pad runs with fewer windows).
        csv: the group-pair table (a, b, n_a, n_b, w1_between, w1_within, p_value, p_method,
            p_min, note).
        windows_csv: optional table of dynamical transitions, one row per run with windows
            (:data:`WINDOW_COLUMNS`: the best two-block split of the window x window W1
            matrix, its contrast and permutation p; no rows without ``windows``); the same
            values are in the netCDF (``window_split``, ``window_contrast``, ``window_p``).

    Returns:
        The group-pair table.
    """
    s = resolve(spec)
    res = [_run(run, path, s, exp) for run, path in zip(runs, traj_files)]
    rows = group_pair_tests([r["label"] for r in res], [r["replicates"] for r in res], n_perm=s["n_perm"],
                            seed=s["seed"], tol=s["collapse_tol"])
    table = pd.DataFrame([{"experiment": exp, **row} for row in rows], columns=list(TABLE_COLUMNS))
    ds = _experiment_dataset([r["run"] for r in runs], res, table, s, exp)
    trans = _transitions([r["run"] for r in runs], res, s, exp)
    if s["windows"]:
        by = trans.set_index("run")
        for col, var in (("split_window", "window_split"), ("contrast", "window_contrast"), ("p_value", "window_p")):
            ds[var] = (("run",), by.loc[[r["run"] for r in runs], col].to_numpy())
        ds.attrs["window_p_min"] = float(trans["p_min"].iloc[0]) if len(trans) else float("nan")
    write_netcdf(ds, nc)
    write_csv(table, csv)
    if windows_csv is not None:
        write_csv(trans, windows_csv)
    return table
