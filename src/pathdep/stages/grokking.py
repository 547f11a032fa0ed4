"""Grokking (rule ``grokking``): the key steps of every network of a grokking experiment.

Reads the ``metrics.nc`` of each run of the experiment (e.g. the unconstrained and the
norm-constrained run of ``optimizer.constrain_norm: [false, true]``) and writes
``grokking.csv``: one row per network (run, baseline, copy) with the first checkpoint steps
at train accuracy 100 %, test accuracy 50 % and 90 % and their ratio (the delay;
:func:`pathdep.analysis.grokking.key_steps`), the final accuracies and losses, and whether
the run held its weight norm fixed. The accuracies are those of the metrics' evaluation
subsets (``metrics.eval_train`` / ``eval_test``; the whole split when they cover it).

How it was checked: ``tests/stages/test_grokking.py`` (synthetic metrics files with known
curves: the rows and key steps).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.grokking import eps_trend, independent_spread, key_steps, phase_values, shift_summary
from pathdep.analysis.koopman_groups import TABLE_COLUMNS, group_pair_tests, pad_nested, safe_spectrum, spectrum_width
from pathdep.analysis.replicates import interval, labels, own_baseline, per_baseline
from pathdep.config.koopman import group_of
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.stages.koopman import observations

__all__ = ["grokking_table", "grokking_koopman", "grokking_path"]


def _rows(path: str | Path) -> list[dict]:
    """The rows of one run's metrics file."""
    ds = xr.load_dataset(path, engine="h5netcdf")
    steps = ds["step"].values.astype(np.int64)
    keys = key_steps(ds["train_acc"].values, ds["test_acc"].values, steps)
    base, copy = labels(ds)
    cfg = json.loads(ds.attrs.get("config", "{}"))
    constrained = bool(cfg.get("optimizer", {}).get("constrain_norm", False))
    return [{"experiment": ds.attrs.get("experiment", ""), "run": ds.attrs.get("run", ""),
             "constrain_norm": constrained, "member": k, "baseline": int(base[k]), "copy": int(copy[k]),
             **{name: float(v[k]) for name, v in keys.items()},
             "final_step": int(steps[-1]),
             "final_train_acc": float(ds["train_acc"].values[k, -1]),
             "final_test_acc": float(ds["test_acc"].values[k, -1]),
             "final_test_loss": float(ds["test_loss"].values[k, -1])}
            for k in range(ds.sizes["member"])]


def grokking_table(metrics: Sequence[str | Path], out_csv: str | Path) -> pd.DataFrame:
    """Args:
        metrics: the ``metrics.nc`` files of the experiment's runs.
        out_csv: ``grokking.csv`` (written atomically).

    Returns:
        The table: per network ``train_1.0``, ``test_0.5``, ``test_0.9`` (first checkpoint
        steps; NaN: never reached), ``delay`` (test_0.9 / train_1.0), the final accuracies.
    """
    df = pd.DataFrame([row for path in metrics for row in _rows(path)])
    write_csv(df, out_csv)
    return df


# ---- Koopman spectra of the grokking and the norm-constrained transformer (rule grokking_koopman) ----
def _koopman_run(run: dict, path, s: dict, obs: str, exp: str) -> tuple[str, list, list]:
    """(group label, one spectrum per independent baseline, their notes) of one run and observable."""
    y, _, info = observations(path, obs, window=[0, s["steps"]], need=s["n_delays"] + 3)
    ok = np.all(np.isfinite(y), axis=(1, 2))                       # diverged members drop out
    reps = [safe_spectrum(y[ok & (info["baseline"] == r)], s["n_delays"], s["rank"], s["collapse_tol"],
                          f"{exp}/{run['run']}/{obs}/baseline{r}") for r in np.unique(info["baseline"])]
    return group_of(run, s["group_by"]), [e for e, _ in reps], [why for _, why in reps]


def _koopman_dataset(names: list[str], per_obs: dict, table: pd.DataFrame, s: dict, exp: str) -> xr.Dataset:
    obs = list(per_obs)
    reps = [[rep for rep in per_obs[o][1]] for o in obs]
    r = spectrum_width(*reps)
    eig = np.stack([pad_nested(rr, r) for rr in reps])                  # (observable, run, baseline, mode)
    nb = eig.shape[2]
    notes = np.array([[list(n) + [""] * (nb - len(n)) for n in per_obs[o][2]] for o in obs], dtype=object)
    return xr.Dataset(
        {"eig_real": (("observable", "run", "baseline", "mode"), eig.real),
         "eig_imag": (("observable", "run", "baseline", "mode"), eig.imag),
         "note": (("observable", "run", "baseline"), notes.astype(str)),
         "group": (("run",), np.array(per_obs[obs[0]][0], dtype=object).astype(str))},
        coords={"observable": obs, "run": names, "baseline": np.arange(nb), "mode": np.arange(r)},
        attrs={"experiment": exp, "spec": json.dumps(s), "group_by": s["group_by"],
               "table": table.to_json(orient="records")})


def grokking_koopman(runs: Sequence[dict], traj_files: Sequence[str | Path], spec: dict, exp: str,
                     nc: str | Path, csv: str | Path) -> pd.DataFrame:
    """Koopman spectra over the first ``spec['steps']`` steps, W1 and a permutation test between groups.

    Args:
        runs: resolved run configs aligned with ``traj_files`` (every step recorded).
        traj_files: their ``trajectory.h5``.
        spec: :func:`pathdep.config.grokking.koopman_spec` (observables, steps, rank, n_delays,
            n_perm, collapse_tol, seed, group_by).
        exp: experiment name.
        nc: eigenvalues ``eig_real/eig_imag (observable, run, baseline, mode)`` (one spectrum per
            independent baseline, pooled over it and its copies) and the group of each run.
        csv: one row per observable and pair of groups: ``n_a``, ``n_b`` (replicates), W1
            between and within, ``p_value`` with ``p_method`` and its floor ``p_min``.

    Returns:
        The table.
    """
    s = dict(spec)
    per_obs, rows = {}, []
    for obs in s["observables"]:
        per = [_koopman_run(run, path, s, obs, exp) for run, path in zip(runs, traj_files)]
        labels, reps, notes = (list(x) for x in zip(*per))
        per_obs[obs] = (labels, reps, notes)
        rows += [{"experiment": exp, "observable": obs, **row}
                 for row in group_pair_tests(labels, reps, n_perm=s["n_perm"], seed=s["seed"], tol=s["collapse_tol"])]
    table = pd.DataFrame(rows, columns=["experiment", "observable", *TABLE_COLUMNS[1:]])
    write_netcdf(_koopman_dataset([r["run"] for r in runs], per_obs, table, s, exp), nc)
    write_csv(table, csv)
    return table


# ---- path dependence of the grokking step (rule grokking_path) ----
_PATH_LEVELS = ("test_0.5", "test_0.9")
_BARRIERS = (("raw", "test"), ("raw", "train"))


def _path_read(metrics_path, geometry_path) -> dict:
    """Per-member key steps, the distance curves and the barriers of one eps run."""
    ds = xr.load_dataset(metrics_path, engine="h5netcdf")
    geo = xr.load_dataset(geometry_path, engine="h5netcdf")
    base, copy = labels(ds)
    steps = ds["step"].values.astype(np.int64)
    keys = key_steps(ds["train_acc"].values, ds["test_acc"].values, steps)
    eps = float(json.loads(ds.attrs.get("swept", "{}")).get("perturbation.epsilon", np.nan))
    return {"eps": eps, "run": str(ds.attrs.get("run", "")), "baseline": base, "copy": copy, "steps": steps,
            "keys": keys, "dist": ds["dist"].values, "imember": geo["imember"].values.astype(int),
            "istep": geo["icheckpoint_step"].values.astype(np.int64),
            "barrier": {f"{a}_{s}": geo["barrier"].sel(align=a, split=s).values for a, s in _BARRIERS}}


def _path_rows(r: dict, exp: str, trend: dict) -> list[dict]:
    """Table rows of one eps run: shift of each level's step, barriers before/after grokking."""
    own = own_baseline(r["baseline"], r["copy"])
    ph = phase_values(r["istep"], r["imember"], own, r["keys"]["test_0.5"], r["keys"]["test_0.9"],
                      {f"barrier_{n}": v for n, v in r["barrier"].items()})
    ib, ic = r["baseline"][r["imember"]], r["copy"][r["imember"]]
    bars = {}
    for k, v in ph.items():
        mean, lo, hi = interval(per_baseline(v, ib, ic))
        bars[k] = float(mean)
        if not k.startswith("step"):
            bars.update({f"{k}_lo": float(lo), f"{k}_hi": float(hi)})
    return [{"experiment": exp, "run": r["run"], "epsilon": r["eps"], "level": lev,
             **shift_summary(r["keys"][lev], r["baseline"], r["copy"]),
             "independent_spread": independent_spread(r["keys"][lev][r["copy"] == 0]),
             "trend_rho": trend[lev]["rho"], "trend_p": trend[lev]["p_value"], **bars} for lev in _PATH_LEVELS]


def _path_dataset(reads: list[dict], exp: str) -> xr.Dataset:
    """Per run: eps, member labels and key steps, the distance curves, the barrier curves."""
    rv = lambda f: np.stack([f(r) for r in reads])   # noqa: E731
    return xr.Dataset(
        {"epsilon": (("run",), rv(lambda r: r["eps"])), "baseline": (("run", "member"), rv(lambda r: r["baseline"])),
         "copy": (("run", "member"), rv(lambda r: r["copy"])),
         **{lev: (("run", "member"), rv(lambda r, lev=lev: r["keys"][lev])) for lev in ("train_1.0", *_PATH_LEVELS)},
         "dist": (("run", "member", "checkpoint"), rv(lambda r: r["dist"])),
         "step": (("checkpoint",), reads[0]["steps"]), "icheckpoint_step": (("icheckpoint",), reads[0]["istep"]),
         "imember": (("run", "imember"), rv(lambda r: r["imember"])),
         **{f"barrier_{n}": (("run", "imember", "icheckpoint"), rv(lambda r, n=n: r["barrier"][n]))
            for n in reads[0]["barrier"]}},
        coords={"run": [r["run"] for r in reads]}, attrs={"experiment": exp})


def grokking_path(metrics: Sequence[str | Path], geometry: Sequence[str | Path], spec: dict, exp: str,
                  nc: str | Path, csv: str | Path) -> pd.DataFrame:
    """How far perturbing the initial weights moves the grokking step, against eps.

    Args:
        metrics, geometry: ``metrics.nc`` and ``geometry.nc`` of the runs (one per eps), aligned.
        spec: :func:`pathdep.config.grokking.path_spec` (``n_perm``, ``seed`` of the trend test).
        exp: experiment name.
        nc: per run the members' key steps, ``dist (run, member, checkpoint)`` and the barriers
            ``barrier_raw_test/train (run, imember, icheckpoint)``.
        csv: one row per eps and level (test_0.5, test_0.9): the copies' shift of the step from
            their own baseline's (mean over baselines of the mean over copies, Student-t
            interval), the relative shift, the independent baselines' spread, the trend test
            over eps, and the raw test/train barriers before and after grokking with intervals.

    Returns:
        The table.
    """
    reads = sorted((_path_read(m, g) for m, g in zip(metrics, geometry)), key=lambda r: r["eps"])
    trend = {lev: eps_trend([r["eps"] for r in reads], [r["keys"][lev] for r in reads], reads[0]["baseline"],
                            reads[0]["copy"], n_perm=spec["n_perm"], seed=spec["seed"]) for lev in _PATH_LEVELS}
    table = pd.DataFrame([row for r in reads for row in _path_rows(r, exp, trend)])
    write_netcdf(_path_dataset(reads, exp), nc)
    write_csv(table, csv)
    return table
