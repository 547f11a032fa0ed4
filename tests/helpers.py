"""Shared helpers for the package tests: tiny datasets, tiny resolved run configs, and the
init + train (+ metrics) pipeline on them.

Import as ``from helpers import ...`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import h5py
import numpy as np

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
