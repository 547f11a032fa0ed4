"""Koopman spectra stages (rules/koopman.smk): the OMD/OGD/BM toy, and the spectra of the
workflow's recorded trajectories with W1 distances and conjugacy tests.

What it computes:

* :func:`toy`: :func:`pathdep.analysis.koopman_toy.toy_study` (Redman et al. 2024, sec. 4.1)
  -> ``koopman_toy.nc`` (iterates, losses, eigenvalues per method and per replicate group)
  and ``koopman_toy.csv`` (W1 between methods, within/between replicate means, p-values).
* :func:`experiment`: for every run of one experiment, its trajectory.h5 read as an
  observable series of shape (K members, T, D) (``observable``: ``output_weights``, the
  last weight tensor (the last ``*.weight`` parameter, else the last parameter), i.e. the output-layer weights as in Redman et al.'s FCN study, or
  ``weights`` (every parameter), both at the checkpoints, which must be evenly spaced (the
  longest evenly spaced run of checkpoints is used; log-spaced checkpoints leave only a few);
  or ``loss``, the per-step batch loss of every member, recorded at every step whatever the
  checkpoints). Per run: the pooled spectrum (DMD over the K members' trajectories, the
  paper's "10 initialisations") and one spectrum per member; W1 between the baseline and
  each perturbed member. Across runs: runs grouped by ``group_by`` (a dotted key of the
  resolved run, e.g. ``model.width``: replicates are the runs of a group, e.g. seeds), or
  else each run a group with its members' spectra as replicates; for each pair of groups the
  mean between- and within-group W1 and the permutation p-value of
  :func:`pathdep.analysis.koopman.conjugacy_test`. Degenerate spectra
  (:func:`~pathdep.analysis.koopman.check_spectrum`) are flagged in the table, not compared.
  With ``windows`` ({size: steps, stride: steps} or {per_epoch: true}; Redman et al.'s
  LeNet-5 study), each run's series is also cut into consecutive windows of training steps
  (:func:`pathdep.analysis.koopman.window_bounds`), one spectrum per window pooled over the
  members, and the window x window W1 matrix per run
  (:func:`pathdep.analysis.koopman.windowed_spectra`), written to the same netCDF.

How it was checked: tests/stages/test_koopman.py (the toy files hold the table the numerics
give; a synthetic trajectory.h5 pair of linear systems comes out conjugate within a group
and not between groups; an uneven checkpoint grid and a too-short series give one-line
errors; a trajectory.h5 whose output weights switch between two linear maps at a known
step gives the block structure of W1 between windows, per-epoch windows included).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.koopman import (
    DegenerateSpectrumError, check_spectrum, conjugacy_test, koopman_eigenvalues, spectral_distance,
    window_bounds, windowed_spectra,
)
from pathdep.analysis.koopman_toy import METHODS, toy_study
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import Trajectory

TOY_DEFAULTS = {"eta": 1e-2, "T": 100, "grid": 5, "n_delays": 4, "rank": None, "n_groups": 5,
                "n_perm": 2000, "seed": 0}
EXP_DEFAULTS = {"observable": "output_weights", "n_delays": 0, "rank": 10, "group_by": None,
                "window": None, "windows": None, "n_perm": 1000, "collapse_tol": 1e-3, "seed": 0}
OBSERVABLES = ("output_weights", "weights", "loss")
WINDOW_KEYS = ("size", "stride", "per_epoch")


def _split(ev: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Complex (r,) -> real, imag padded with NaN to n."""
    out = np.full(n, np.nan + 0j)
    out[:len(ev)] = ev
    return out.real, out.imag


def _prov(spec: dict) -> str:
    return json.dumps(collect(spec), default=str)


def toy(spec: dict, nc: str | Path, csv: str | Path) -> pd.DataFrame:
    """Run the OMD/OGD/BM study and write its netCDF and CSV table.

    Args:
        spec: ``koopman.toy`` (keys of :data:`TOY_DEFAULTS`).
        nc, csv: outputs.

    Returns:
        The table (one row per pair of methods).
    """
    s = {**TOY_DEFAULTS, **(spec or {})}
    unknown = set(s) - set(TOY_DEFAULTS)
    if unknown:
        raise ValueError(f"koopman.toy.{sorted(unknown)[0]}: unknown key")
    res = toy_study(**s)
    traj = res["trajectories"]
    r = max(len(e) for e in res["eigenvalues"].values())
    rg = max(g.shape[1] for g in res["group_eigenvalues"].values())
    data = {
        "iterate": (("algorithm", "ic", "t", "dim"), np.stack([traj[m] for m in METHODS])),
        "loss": (("algorithm", "ic", "t"), np.stack([traj[f"loss_{m}"] for m in METHODS])),
        "group": (("ic",), res["groups"]),
    }
    re_, im_ = zip(*[_split(res["eigenvalues"][m], r) for m in METHODS])
    data["eig_real"], data["eig_imag"] = (("algorithm", "mode"), np.array(re_)), (("algorithm", "mode"), np.array(im_))
    g = [[_split(e, rg) for e in res["group_eigenvalues"][m]] for m in METHODS]
    data["group_eig_real"] = (("algorithm", "replicate", "gmode"), np.array([[x[0] for x in gm] for gm in g]))
    data["group_eig_imag"] = (("algorithm", "replicate", "gmode"), np.array([[x[1] for x in gm] for gm in g]))
    table = pd.DataFrame(res["table"])
    ds = xr.Dataset(data, coords={"algorithm": list(METHODS)},
                    attrs={"spec": json.dumps(s), "provenance": _prov(s),
                           "table": table.to_json(orient="records"),
                           "description": "Redman et al. 2024 validation: OMD (x) vs OGD (u = log x) vs "
                                          "bisection on f = sum tan x_i; eigenvalues by DMD"})
    write_netcdf(ds, nc)
    write_csv(table, csv)
    return table


def _uniform_segment(steps: np.ndarray) -> slice:
    """The longest run of checkpoints with one constant spacing."""
    steps = np.asarray(steps)
    if len(steps) < 2:
        return slice(0, len(steps))
    d = np.diff(steps)
    best, start = (0, 1), 0
    for i in range(1, len(d) + 1):
        if i == len(d) or d[i] != d[start]:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = i
    return slice(best[0], best[1] + 1)


def observations(path: str | Path, observable: str, window: Sequence[int] | None = None,
                 need: int = 3) -> tuple[np.ndarray, np.ndarray, dict]:
    """An observable series of every member of one trajectory file.

    Args:
        path: trajectory.h5.
        observable: one of :data:`OBSERVABLES`.
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
        if observable == "loss":
            loss = tr.loss() if callable(tr.loss) else tr.loss              # (T, K)
            y = np.asarray(loss, dtype=np.float64).T[:, :, None]         # (K, T, 1)
            steps = np.arange(y.shape[1])
        else:
            seg = _uniform_segment(tr.steps)
            steps = np.asarray(tr.steps[seg])
            wnames = [n for n in tr.layout.names if n.endswith("weight")] or list(tr.layout.names)
            sl = tr.layout.slice(wnames[-1]) if observable == "output_weights" else slice(None)
            w = tr.f["weights"][seg.start:seg.stop, :, sl]                 # (T, K, D)
            y = np.transpose(np.asarray(w, dtype=np.float64), (1, 0, 2))
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
    return y, steps, {"config": config, "roles": roles, "spacing": spacing, "steps_per_epoch": steps_per_epoch}


def _get(d: dict, dotted: str):
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            raise ValueError(f"koopman.group_by: key {dotted!r} not in the run config")
        d = d[k]
    return d


def window_size(windows: dict, steps_per_epoch: int) -> tuple[int, int]:
    """(size, stride) in training steps of a ``koopman.windows`` block.

    Args:
        windows: ``{size: N, stride: M}`` (stride defaults to size) or ``{per_epoch: true}``
            (size = stride = one epoch).
        steps_per_epoch: of the run (from its trajectory.h5).
    """
    if not isinstance(windows, dict):
        raise ValueError(f"koopman.windows: expected a mapping {{size, stride}} or {{per_epoch: true}}, got {windows!r}")
    unknown = set(windows) - set(WINDOW_KEYS)
    if unknown:
        raise ValueError(f"koopman.windows.{sorted(unknown)[0]}: unknown key (expected some of {list(WINDOW_KEYS)})")
    if windows.get("per_epoch"):
        if "size" in windows:
            raise ValueError("koopman.windows: give either size or per_epoch: true, not both")
        if steps_per_epoch < 1:
            raise ValueError("koopman.windows.per_epoch: the trajectory does not record steps_per_epoch")
        size = steps_per_epoch
    elif "size" in windows:
        size = int(windows["size"])
    else:
        raise ValueError("koopman.windows: expected size (steps) or per_epoch: true")
    stride = int(windows.get("stride", size))
    if size < 1 or stride < 1:
        raise ValueError(f"koopman.windows: size and stride must be >= 1 step, got {size}, {stride}")
    return size, stride


def _safe_spectrum(y, spec, name):
    try:
        ev = koopman_eigenvalues(y, n_delays=spec["n_delays"], rank=spec["rank"])
        return check_spectrum(ev, tol=spec["collapse_tol"], name=name), ""
    except (DegenerateSpectrumError, ValueError) as exc:
        return None, str(exc)


def experiment(runs: Sequence[dict], traj_files: Sequence[str | Path], spec: dict, exp: str,
               nc: str | Path, csv: str | Path) -> pd.DataFrame:
    """Koopman spectra of every run of one experiment, W1 tables and conjugacy tests.

    Args:
        runs: resolved run configs (``run`` = name), aligned with ``traj_files``.
        traj_files: trajectory.h5 of each run.
        spec: ``koopman`` settings for this experiment (keys of :data:`EXP_DEFAULTS`).
        exp: experiment name.
        nc: netCDF with per-run pooled and per-member eigenvalues, and the run x run W1;
            with ``windows`` also ``window_eig_* (run, window, wmode)``, ``w1_windows (run,
            window, window2)`` and the steps ``window_start``/``window_stop`` (run, window)
            (-1 / NaN pad runs with fewer windows).
        csv: the group-pair table (a, b, w1_between, w1_within, p_value, ...).

    Returns:
        The group-pair table.
    """
    s = {**EXP_DEFAULTS, **(spec or {})}
    names = [r["run"] for r in runs]
    pooled, members, member_w1, notes, labels = [], [], [], [], []
    win = []                                   # per run: (bounds, spectra, notes, W1 matrix)
    for run, path in zip(runs, traj_files):
        y, steps, info = observations(path, s["observable"], s["window"], need=s["n_delays"] + 3)
        ok = np.all(np.isfinite(y), axis=(1, 2))                        # diverged members drop out
        if s["windows"]:
            size, stride = window_size(s["windows"], info["steps_per_epoch"])
            bounds = window_bounds(steps, size, stride, need=s["n_delays"] + 3)
            if len(bounds) < 2:
                raise ValueError(f"{path}: koopman.windows: {len(bounds)} complete window(s) of {size} steps "
                                 f"with >= {s['n_delays'] + 3} samples in steps {steps[0]}..{steps[-1]}, need >= 2")
            wsp, wnotes, wd = windowed_spectra(y[ok], bounds, s["n_delays"], s["rank"], s["collapse_tol"],
                                               name=f"{exp}/{run['run']} window")
            win.append((bounds, wsp, wnotes, wd))
        ev, note = _safe_spectrum(y[ok], s, f"{exp}/{run['run']}")
        pooled.append(ev)
        mev = [(_safe_spectrum(y[k:k + 1], s, f"{exp}/{run['run']}/member{k}")[0] if ok[k] else None)
               for k in range(y.shape[0])]
        members.append(mev)
        base = mev[0]
        member_w1.append([spectral_distance(base, e) if base is not None and e is not None else np.nan
                          for e in mev])
        notes.append(note)
        labels.append(str(_get(run, s["group_by"])) if s["group_by"] else run["run"])
    # W1 between runs' pooled spectra.
    n = len(runs)
    d = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            if pooled[i] is not None and pooled[j] is not None:
                d[i, j] = 0.0 if i == j else spectral_distance(pooled[i], pooled[j])
    # Group pairs and permutation tests.
    groups = list(dict.fromkeys(labels))
    rows = []
    for ga, gb in itertools.combinations(groups, 2):
        if s["group_by"]:
            rep_a = [pooled[i] for i in range(n) if labels[i] == ga and pooled[i] is not None]
            rep_b = [pooled[i] for i in range(n) if labels[i] == gb and pooled[i] is not None]
        else:
            rep_a = [e for e in members[labels.index(ga)] if e is not None]
            rep_b = [e for e in members[labels.index(gb)] if e is not None]
        row = {"experiment": exp, "a": ga, "b": gb, "n_a": len(rep_a), "n_b": len(rep_b)}
        try:
            t = conjugacy_test(rep_a, rep_b, n_perm=s["n_perm"], seed=s["seed"], tol=s["collapse_tol"])
            row.update({k: t[k] for k in ("w1_between", "w1_within", "w1_within_a", "w1_within_b",
                                          "p_value")}, note="")
        except (DegenerateSpectrumError, ValueError) as exc:
            row.update({k: np.nan for k in ("w1_between", "w1_within", "w1_within_a", "w1_within_b",
                                            "p_value")}, note=str(exc))
        rows.append(row)
    table = pd.DataFrame(rows, columns=["experiment", "a", "b", "n_a", "n_b", "w1_between", "w1_within",
                                        "w1_within_a", "w1_within_b", "p_value", "note"])
    r = max([len(e) for e in pooled if e is not None] + [len(e) for m in members for e in m if e is not None] + [1])
    kmax = max(len(m) for m in members)
    pr = np.full((n, r), np.nan + 0j)
    mr = np.full((n, kmax, r), np.nan + 0j)
    mw = np.full((n, kmax), np.nan)
    for i in range(n):
        if pooled[i] is not None:
            pr[i, :len(pooled[i])] = pooled[i]
        for k, e in enumerate(members[i]):
            if e is not None:
                mr[i, k, :len(e)] = e
        mw[i, :len(member_w1[i])] = member_w1[i]
    wvars, wcoords = {}, {}
    if win:
        nw = max(len(b) for b, *_ in win)
        rw = max([len(e) for _, sp, *_ in win for e in sp if e is not None] + [1])
        we = np.full((n, nw, rw), np.nan + 0j)
        wd = np.full((n, nw, nw), np.nan)
        wb = np.full((n, nw, 2), -1, dtype=np.int64)
        wn = np.full((n, nw), "", dtype=object)
        for i, (bounds, sp, wnotes, d_w) in enumerate(win):
            k = len(bounds)
            wd[i, :k, :k] = d_w
            wb[i, :k] = [(b[2], b[3]) for b in bounds]
            wn[i, :k] = wnotes
            for j, e in enumerate(sp):
                if e is not None:
                    we[i, j, :len(e)] = e
        wvars = {"window_eig_real": (("run", "window", "wmode"), we.real),
                 "window_eig_imag": (("run", "window", "wmode"), we.imag),
                 "w1_windows": (("run", "window", "window2"), wd),
                 "window_start": (("run", "window"), wb[..., 0]),
                 "window_stop": (("run", "window"), wb[..., 1]),
                 "window_note": (("run", "window"), wn.astype(str))}
        wcoords = {"window": np.arange(nw), "window2": np.arange(nw)}
    ds = xr.Dataset(
        {**wvars, "eig_real": (("run", "mode"), pr.real), "eig_imag": (("run", "mode"), pr.imag),
         "member_eig_real": (("run", "member", "mode"), mr.real),
         "member_eig_imag": (("run", "member", "mode"), mr.imag),
         "w1_baseline_member": (("run", "member"), mw),
         "w1_runs": (("run", "run2"), d),
         "group": (("run",), np.array(labels, dtype=object).astype(str)),
         "note": (("run",), np.array(notes, dtype=object).astype(str))},
        coords={"run": names, "run2": names, **wcoords},
        attrs={"experiment": exp, "spec": json.dumps(s), "provenance": _prov(s),
               "group_by": s["group_by"] or "", "table": table.to_json(orient="records")})
    write_netcdf(ds, nc)
    write_csv(table, csv)
    return table
