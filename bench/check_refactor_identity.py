"""Check that a refactor left training and metrics unchanged: old code vs new code, side by side.

For a few tiny configs (sklearn digits / teacher-student, MLP, SGD with momentum or Adam,
init / schedule / hyperparameter perturbations, a few hundred steps) it runs
prepare_dataset + init_ensemble + train_ensemble + compute_metrics + geometry once with the OLD
package (a checkout given by ``--old``, imported through ``PYTHONPATH=<old>/src``) and once
with the NEW one (this checkout's ``src``), each in its own interpreter, and compares

* every HDF5 dataset of ``init.h5`` and ``trajectory.h5`` bit for bit (NaN positions
  included; the storage filters may differ, the decoded values may not),
* every array of the prepared dataset file bit for bit, its inputs ``x`` *decoded*: a
  ``pathdep.dataset/1`` file holds them as normalised float32, a ``pathdep.dataset/2`` file
  as codes plus ``x_offset``/``x_scale``/``x_code_scale``, decoded here by the formula of
  ``pathdep.data.storage`` written out again (an independent check of it), and
* every variable of ``metrics.nc`` and ``geometry.nc`` (the per-run geometry with a small
  spec) to an absolute tolerance (default 1e-12).

The old layouts (flat modules ``pathdep.train``, ``pathdep.metrics``, ``pathdep.analysis.run``;
the per-run geometry as ``pathdep.stages.analysis.analyze_run``) and the current one
(``pathdep.stages.train``, ``pathdep.stages.metrics``, ``pathdep.stages.geometry.compute_geometry``)
are all recognised; both sides write ``geometry.nc``.

Usage::

    .venv/bin/python bench/check_refactor_identity.py --old /tmp/old [--threads 1] [--keep DIR]

Exit status 0 when everything is identical, 1 otherwise (one line per difference).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

DATASETS = {
    "digits": {"source": "sklearn_digits", "test_fraction": 0.25, "seed": 0},
    "teacher": {"source": "teacher_student", "d_in": 6, "d_out": 2, "teacher_hidden": 8,
                "n_train": 256, "n_test": 64, "noise": 0.0, "seed": 3},
}

BASE = {
    "model": {"kind": "mlp", "hidden": [16], "activation": "relu", "bias": True},
    "init": {"scheme": "kaiming_normal"},
    # `fast` explicit: both checkouts take the same ensemble step whatever their default
    "training": {"epochs": 5, "batch_size": 32, "save_state_every": 50, "fast": False,
                 "checkpoints": {"mode": "log", "count": 12}},
    "metrics": {"eval_train": 300, "eval_test": 200, "batch_size": 100},
}

# name -> (dataset, overrides of the defaults)
CASES = {
    "init_momentum": ("digits", {
        "perturbation": {"target": "init", "kind": "gaussian", "epsilon": 0.01, "members": 3},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "training": {"fast": True}}),
    "schedule_shuffle": ("digits", {
        "perturbation": {"target": "schedule", "kind": "shuffle", "members": 2},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.5},
        "training": {"dtype": "float64", "checkpoints": {"mode": "every", "every": 15}}}),
    "swap_adam_teacher": ("teacher", {
        "perturbation": {"target": "schedule", "kind": "swap", "swaps": 2, "members": 2},
        "optimizer": {"name": "adam", "lr": 0.003},
        "training": {"epochs": 20},
        "metrics": {"eval_train": 128, "eval_test": 64, "batch_size": 64}}),
    "hparam_lr": ("digits", {
        "perturbation": {"target": "hyperparameter", "hparam": "lr", "epsilon": 0.1, "members": 2},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "training": {"epochs": 3}}),
}


# geometry.nc on every case: every checkpoint aligned, 2 members interpolated
GEOMETRY = {"checkpoints": [0.0, 0.5, 1.0], "lambdas": 5, "interp_members": 2, "eval_train": 200,
            "eval_test": 100, "batch_size": 100}


def _merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _geometry_stage():
    """The per-run geometry stage of whichever package is importable (same signature in all)."""
    try:
        from pathdep.stages.geometry import compute_geometry
        return compute_geometry
    except ImportError:
        pass
    try:  # the rule family was called "analysis" (rule analyze_run)
        from pathdep.stages.analysis import analyze_run
    except ImportError:  # flat package
        from pathdep.analysis.run import analyze_run
    return analyze_run


def worker(out: Path, threads: int) -> None:
    """Run every case with whichever ``pathdep`` is importable (old or new)."""
    import torch

    torch.set_num_threads(threads)
    from pathdep.config import validate
    from pathdep.data import prepare_dataset

    try:  # layered package
        from pathdep.stages.metrics import compute_metrics
        from pathdep.stages.train import init_ensemble, train_ensemble
    except ImportError:  # flat package (before the regrouping)
        from pathdep.metrics import compute_metrics
        from pathdep.train import init_ensemble, train_ensemble
    compute_geometry = _geometry_stage()
    import pathdep

    print(f"worker: pathdep from {Path(pathdep.__file__).parent}", file=sys.stderr)
    timings = {}
    for name, (ds, over) in CASES.items():
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        data = d / f"{ds}.h5"
        prepare_dataset(ds, DATASETS[ds], data, provenance={"check": True})
        cfg = {"seed": 7, "device": "cpu", "threads": threads, "datasets": {ds: DATASETS[ds]},
               "defaults": _merge(_merge(BASE, {"dataset": ds}), over), "experiments": {"t": {}}}
        (run,) = validate(cfg)["t"]
        init_ensemble(run, data, d / "init.h5")
        t = train_ensemble(run, d / "init.h5", data, d / "trajectory.h5", threads=threads, progress=False)
        compute_metrics(d / "trajectory.h5", data, d / "metrics.nc", threads=threads)
        compute_geometry(d / "trajectory.h5", data, d / "geometry.nc", spec=GEOMETRY, threads=threads,
                         log=lambda *a: None)
        timings[name] = t
    (out / "timings.json").write_text(json.dumps(timings, default=float))


def _h5(path: Path) -> dict:
    import h5py

    res = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: res.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return res


def _decoded_dataset(path: Path) -> tuple[dict, list[str]]:
    """Every array of a prepared dataset file, inputs decoded to float32; notes on their storage."""
    import h5py

    res, notes = _h5(path), []
    with h5py.File(path, "r") as f:
        a = dict(f.attrs)
    if a.get("format") == "pathdep.dataset/1":
        return res, notes
    for k in [k for k in res if k == "x" or k.endswith("/x")]:
        v = res[k]
        notes.append(f"{k} stored {v.dtype}")
        if float(a["x_code_scale"]) != 1.0:
            v = (v.astype(np.float64) / float(a["x_code_scale"])).astype(np.float32)
        sh = (1, -1) + (1,) * (v.ndim - 2)
        off, sc = np.asarray(a["x_offset"], np.float64).reshape(sh), np.asarray(a["x_scale"], np.float64).reshape(sh)
        res[k] = ((v.astype(np.float64) - off) / sc).astype(np.float32)
    return res, notes


def compare(old: Path, new: Path, tol: float, notes: list[str] | None = None) -> list[str]:
    """Differences between the outputs of the two workers (empty: identical)."""
    import xarray as xr

    bad = []
    for name, (ds, _) in CASES.items():
        for fname in (f"{ds}.h5", "init.h5", "trajectory.h5"):
            if fname == f"{ds}.h5":
                (a, _), (b, how) = _decoded_dataset(old / name / fname), _decoded_dataset(new / name / fname)
                if notes is not None and how:
                    notes.append(f"{name}/{fname}: {', '.join(how)} (compared decoded)")
            else:
                a, b = _h5(old / name / fname), _h5(new / name / fname)
            if sorted(a) != sorted(b):
                bad.append(f"{name}/{fname}: datasets differ: {sorted(set(a) ^ set(b))}")
                continue
            for k in a:
                x, y = np.asarray(a[k]), np.asarray(b[k])
                if x.dtype != y.dtype or x.shape != y.shape:
                    bad.append(f"{name}/{fname}:{k}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
                elif x.dtype.kind == "f":
                    if not np.array_equal(x.view(f"u{x.itemsize}"), y.view(f"u{y.itemsize}")):
                        bad.append(f"{name}/{fname}:{k}: not bit-identical "
                                   f"(max |diff| {np.nanmax(np.abs(x.astype(float) - y.astype(float))):.3g})")
                elif not np.array_equal(x, y):
                    bad.append(f"{name}/{fname}:{k}: values differ")
        for nc in ("metrics.nc", "geometry.nc"):
            ma = xr.load_dataset(old / name / nc, engine="h5netcdf")
            mb = xr.load_dataset(new / name / nc, engine="h5netcdf")
            if set(ma.variables) != set(mb.variables):
                bad.append(f"{name}/{nc}: variables differ: {sorted(set(ma.variables) ^ set(mb.variables))}")
            for v in set(ma.variables) & set(mb.variables):
                x, y = ma[v].values, mb[v].values
                if x.shape != y.shape:
                    bad.append(f"{name}/{nc}:{v}: shape {x.shape} vs {y.shape}")
                elif x.dtype.kind in "fc":
                    if not (np.array_equal(np.isnan(x), np.isnan(y))
                            and np.all(np.abs(np.nan_to_num(x) - np.nan_to_num(y)) <= tol)):
                        bad.append(f"{name}/{nc}:{v}: differs beyond {tol:g}")
                elif not np.array_equal(x, y):
                    bad.append(f"{name}/{nc}:{v}: values differ")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default="/tmp/old", help="checkout of the code before the refactor")
    ap.add_argument("--new", default=str(ROOT), help="checkout of the refactored code (default: this one)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tol", type=float, default=1e-12, help="absolute tolerance for metrics.nc variables")
    ap.add_argument("--keep", default=None, help="write outputs here instead of a temporary directory")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(Path(a.worker), a.threads)
        return 0
    tmp = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="identity_"))
    tmp.mkdir(parents=True, exist_ok=True)
    for tag, src in (("old", a.old), ("new", a.new)):
        env = dict(os.environ, PYTHONPATH=str(Path(src) / "src"), OMP_NUM_THREADS=str(a.threads))
        subprocess.run([sys.executable, __file__, "--worker", str(tmp / tag), "--threads", str(a.threads)],
                       env=env, check=True, cwd=tmp)
    notes: list[str] = []
    bad = compare(tmp / "old", tmp / "new", a.tol, notes)
    t_old = json.loads((tmp / "old" / "timings.json").read_text())
    t_new = json.loads((tmp / "new" / "timings.json").read_text())
    for name in CASES:
        o, n = t_old[name], t_new[name]
        print(f"{name:20s} steps {n['steps']:4d}  write/train old {o['write_seconds'] / o['train_seconds']:.1%}"
              f"  new {n['write_seconds'] / n['train_seconds']:.1%}")
    if bad:
        print("\n".join(bad))
        print(f"DIFFERENT: {len(bad)} differences (outputs in {tmp})")
        return 1
    for line in dict.fromkeys(notes):
        print(line)
    print(f"IDENTICAL: {len(CASES)} cases; every HDF5 dataset bit for bit (dataset inputs decoded), metrics.nc "
          f"and geometry.nc to {a.tol:g} ({tmp})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
