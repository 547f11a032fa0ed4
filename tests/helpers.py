"""Shared helpers for the package tests: tiny datasets, tiny resolved run configs, the
init + train (+ metrics) pipeline on them, and for figure tests a synthetic ``metrics.nc``
and a check that a figure's PDF and PNG are valid; Snakemake on the tiny config (``smk``,
``job_counts``; the one end-to-end run is the ``tiny_workflow`` fixture in conftest.py).

Import as ``from helpers import ...`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from pathdep.config import deep_merge, validate
from pathdep.data import prepare_dataset

DATASETS = {
    "digits": {"source": "sklearn_digits", "test_fraction": 0.25, "seed": 0},
    "teacher": {"source": "teacher_student", "d_in": 6, "d_out": 2, "teacher_hidden": 8,
                "n_train": 256, "n_test": 64, "noise": 0.0, "seed": 3},
}

# A tiny run: sklearn digits (1347 train / 450 test, 8x8), MLP 64-16-10, 3 members, 1 epoch
# of batch 32 (42 steps), log checkpoints.
TINY_DEFAULTS = {
    "dataset": "digits",
    "model": {"kind": "mlp", "hidden": [16], "activation": "relu", "bias": True},
    "init": {"scheme": "kaiming_normal"},
    "perturbation": {"target": "init", "kind": "gaussian", "epsilon": 0.01, "members": 3},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.0},
    "training": {"epochs": 1, "batch_size": 32, "save_state_every": 10,
                 "checkpoints": {"mode": "log", "count": 8}},
    "metrics": {"eval_train": 300, "eval_test": 200, "batch_size": 100},
}


def make_dataset(directory: str | Path, name: str = "digits") -> Path:
    """Write the prepared dataset ``name`` (``digits`` or ``teacher``) into ``directory``."""
    path = Path(directory) / f"{name}.h5"
    if not path.exists():
        prepare_dataset(name, DATASETS[name], path, provenance={"test": True})
    return path


def tiny_config(overrides: dict | None = None, dataset: str = "digits", seed: int = 1) -> dict:
    """A full config dict (one experiment ``t``) with ``overrides`` merged into the defaults."""
    defaults = deep_merge(TINY_DEFAULTS, {"dataset": dataset})
    if dataset == "teacher":
        defaults["metrics"] = {"eval_train": 128, "eval_test": 64, "batch_size": 64}
    return {"seed": seed, "device": "cpu", "threads": 1,
            "datasets": {dataset: copy.deepcopy(DATASETS[dataset])},
            "defaults": deep_merge(defaults, overrides or {}),
            "experiments": {"t": {}}}


def tiny_run(overrides: dict | None = None, dataset: str = "digits", seed: int = 1) -> dict:
    """The resolved run (``pathdep.config.validate``) of :func:`tiny_config`."""
    runs = validate(tiny_config(overrides, dataset, seed))["t"]
    assert len(runs) == 1
    return runs[0]


def train_tiny(tmp: str | Path, run: dict, data: Path, name: str = "run", **kw) -> Path:
    """init_ensemble + train_ensemble into ``tmp/name``; returns the trajectory path."""
    from pathdep.stages.train import init_ensemble, train_ensemble

    d = Path(tmp) / name
    d.mkdir(parents=True, exist_ok=True)
    init_ensemble(run, data, d / "init.h5")
    kw.setdefault("progress", False)
    kw.setdefault("threads", 1)
    train_ensemble(run, d / "init.h5", data, d / "trajectory.h5", **kw)
    return d / "trajectory.h5"


def interrupted_run(run: dict, data: Path, d: Path, stop_after: int) -> None:
    """init_ensemble into ``d`` and train_ensemble until a KeyboardInterrupt after ``stop_after``
    steps (the resume tests then call train_ensemble again on ``d``)."""
    import pytest

    from pathdep.stages.train import init_ensemble, train_ensemble

    d.mkdir(parents=True, exist_ok=True)
    init_ensemble(run, data, d / "init.h5")
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(run, d / "init.h5", data, d / "trajectory.h5", threads=1, progress=False,
                       stop_after=stop_after)


def h5_datasets(path: str | Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file, by path."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def assert_h5_equal(a: str | Path, b: str | Path) -> None:
    """Every dataset in two HDF5 files equal bit for bit (NaN positions included)."""
    da, db = h5_datasets(a), h5_datasets(b)
    assert sorted(da) == sorted(db)
    for k in da:
        x, y = da[k], db[k]
        assert x.dtype == y.dtype and x.shape == y.shape, k
        if x.dtype.kind == "f":
            assert np.array_equal(x.view(f"u{x.itemsize}"), y.view(f"u{y.itemsize}")), f"dataset {k} differs"
        else:
            assert np.array_equal(x, y), f"dataset {k} differs"


# ---------------------------------------------------------------------------- figures
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_figure_files(pdf: str | Path, png: str | Path, min_bytes: int = 1000) -> tuple[int, int]:
    """A figure's two files exist and are valid: a PDF (``%PDF-`` ... ``%%EOF``) and a PNG (magic
    bytes, IHDR chunk); no ``.partial`` left beside them. Returns the PNG's ``(width, height)``."""
    pdf, png = Path(pdf), Path(png)
    b = pdf.read_bytes()
    assert len(b) > min_bytes and b.startswith(b"%PDF-") and b"%%EOF" in b[-64:], pdf
    b = png.read_bytes()
    assert len(b) > min_bytes and b[:8] == PNG_MAGIC and b[12:16] == b"IHDR", png
    w, h = int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")
    assert 100 < w < 5000 and 100 < h < 5000, (png, w, h)
    for p in (pdf, png):
        assert not p.with_name(p.name + ".partial").exists(), p
    return w, h


def synthetic_metrics(path: str | Path, *, run: str = "r", swept: dict | None = None, members: int = 4,
                      steps=(0, 1, 2, 5, 10, 20, 50, 100), eps: float = 1e-3, rate: float = 0.03,
                      baseline_row: int = 0, diverged: dict | None = None, experiment: str = "t", seed: int = 0):
    """Write a small ``metrics.nc`` with the variables the figures read; returns the dataset.

    Member ``k`` (one baseline at ``baseline_row``, the rest perturbed) has
    ``dist = eps * k' * exp(rate * step)`` (``k' = 1, 2, ...`` over the perturbed members; 0
    for the baseline), losses decaying from 2.3, cf. accuracy ``1 - dist`` clipped, cosines
    ``cos(dist)``. ``diverged = {row: checkpoint}`` masks that member (NaN) from that
    checkpoint on and sets ``diverged_step``.
    """
    import xarray as xr

    t = np.asarray(steps, dtype=np.int64)
    K, C = members, len(t)
    rng = np.random.default_rng(seed)
    scale = np.zeros(K)
    scale[[k for k in range(K) if k != baseline_row]] = np.arange(1, K)
    dist = eps * scale[:, None] * np.exp(rate * t)[None, :]
    base_loss = 2.3 * np.exp(-t / 40.0) + 0.1
    loss = base_loss[None, :] * (1 + 0.05 * scale[:, None] * rng.random((K, C)))
    role = np.where(np.arange(K) == baseline_row, "baseline", "member")
    div_step = -np.ones(K, dtype=np.int64)
    data = {"dist": dist, "dist_rel": dist / 3.0, "train_loss": loss, "test_loss": loss * 1.1,
            "test_cf_acc": np.clip(1 - dist, 0, 1), "test_cf_loss": dist * 2, "fs_l2_logits": 5 * dist,
            "cos_init": np.cos(dist), "cos_base": np.cos(dist), "norm_ratio": 1 + 0.01 * np.log1p(t)[None, :] + 0 * dist}
    with np.errstate(divide="ignore", invalid="ignore"):
        data["dist_over_init"] = np.where(dist[:, :1] > 0, dist / dist[:, :1], np.nan)
    data["dist_rms"] = dist / np.sqrt(100.0)
    # two layers carrying 0.8 and 0.6 of the distance (0.8^2 + 0.6^2 = 1)
    layer_split = np.array([0.8, 0.6])
    dist_layer = dist[:, :, None] * layer_split
    for row, c in (diverged or {}).items():
        for v in data.values():
            v[row, c:] = np.nan
        dist_layer[row, c:] = np.nan
        div_step[row] = t[c]
    vars_ = {k: (("member", "checkpoint"), v) for k, v in data.items()}
    vars_["dist_layer"] = (("member", "checkpoint", "layer"), dist_layer)
    ds = xr.Dataset(vars_,
                    coords={"step": ("checkpoint", t), "role": ("member", role),
                            "diverged_step": ("member", div_step), "layer": ["fc0", "fc1"],
                            "layer_size": ("layer", np.array([80, 20])), "layer_norm0": ("layer", np.array([2.0, 1.0]))},
                    attrs={"run": run, "experiment": experiment, "swept": json.dumps(swept or {})})
    ds.to_netcdf(path, engine="h5netcdf")
    return ds


# ---------------------------------------------------------------------------- the workflow
# A synthetic geometry.nc for figure tests (tests/plots/test_geometry.py, test_fits.py): two runs of an
# epsilon sweep with planted barriers, aligned distances and autocorrelations.
EPS = (0.001, 0.1)
H_RAW, H_ALIGNED = 0.3, 0.05  # planted interpolation barriers
ALIGNED_RATIO = 0.6  # planted |w_0 - P w_k| / |w_k - w_0|
POWER = (2.0, 0.5)  # dist = a t^b of the perturbed members (times their index)


def synthetic_geometry(dm: xr.Dataset, eps: float, n_ck: int = 3, n_lam: int = 5) -> xr.Dataset:
    """A synthetic geometry.nc for the metrics dataset ``dm`` (baseline row 0, 2 interpolated members)."""
    K, C = dm["dist"].shape
    t = dm["step"].values
    dist = dm["dist"].values
    lam = np.linspace(0, 1, n_lam)
    L0, L1 = 1.0, 1.2
    chord = (1 - lam) * L0 + lam * L1
    interp = np.empty((2, 2, 2, n_ck, n_lam))
    barrier = np.empty((2, 2, 2, n_ck))
    for a, h in enumerate((H_RAW, H_ALIGNED)):
        interp[a] = chord + 4 * h * lam * (1 - lam)
        barrier[a] = h
    ok = np.ones(C, bool)
    ok[1] = False  # one checkpoint not aligned
    cos = np.cos(np.sqrt(t / t.max()))[None, :] * np.ones((K, 1))
    D = np.linspace(1e-4, 2e-4, K)
    theory = 2 * (1 - np.exp(-D[:, None] * 10 * t[None, :]))
    mk = ("member", "checkpoint")
    ds = xr.Dataset(
        {"dist": (mk, dist), "dist_aligned": (mk, np.where(ok, ALIGNED_RATIO * dist, np.nan)),
         "aligned_checkpoint": ("checkpoint", ok),
         "interp_loss": (("align", "split", "imember", "icheckpoint", "lam"), interp),
         "barrier": (("align", "split", "imember", "icheckpoint"), barrier),
         "ac_w_init": (mk, cos), "ac_w_base": (mk, np.cos(dist)), "ac_out_init": (mk, cos ** 2),
         "ac_out_base": (mk, np.cos(2 * dist)), "sphere_sq_disp": (mk, 2 * (1 - cos)),
         "sphere_theory": (mk, theory), "norm_ratio": (mk, 1 + 0.01 * np.log1p(t)[None, :] * np.ones((K, 1))),
         "sphere_D": ("member", D), "sphere_D_stderr": ("member", D / 10)},
        coords={"step": ("checkpoint", t), "role": dm["role"], "align": ["raw", "aligned"], "split": ["test", "train"],
                "lam": lam, "icheckpoint_step": ("icheckpoint", t[np.linspace(0, C - 1, n_ck).astype(int)]),
                "icheckpoint_index": ("icheckpoint", np.linspace(0, C - 1, n_ck).astype(int))},
        attrs={**dm.attrs, "sweep_values": json.dumps({"epsilon": eps}), "lr_eff": 0.1})
    return ds


ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "config_tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--workflow-profile", "none", "--snakefile", str(ROOT / "Snakefile")]


def smk(args: list, cwd: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile (no workflow profile) with ``args`` in ``cwd``."""
    return subprocess.run([*SNAKEMAKE, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def job_counts(stdout: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table into ``{rule: count}`` (``total`` included)."""
    counts, on = {}, False
    for line in stdout.splitlines():
        if line.startswith("job ") and "count" in line:
            on = True
            continue
        if on:
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m:
                counts[m.group(1)] = int(m.group(2))
            elif line.strip() and not line.startswith("-"):
                break
    return counts
