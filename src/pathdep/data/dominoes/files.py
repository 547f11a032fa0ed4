"""Dominoes files: the prepared ``pathdep.dataset/2`` file with flags and evaluation sets.

What it writes (:func:`prepare_dominoes`)::

    /train/{x,y}, /test/{x,y}           as every dataset (label = y)
    /{train,test}/{top_present,bottom_present}  bool (N,)
    /{train,test}/{top_label,bottom_label}      int64 (N,), -1 where the side is blank
    /eval/<set>/{x,y,top_present,bottom_present,top_label,bottom_label}
    attrs: requested_* / achieved_* prevalence and reliability per side (train split),
           counts_train (both, top_only, bottom_only), blank_value (per channel),
           side_shape (C, H, W), eval_sets, top/bottom (side names), top_classes, ...

Normalisation: per-channel mean/std of the raw train dominoes (blank pixels included),
applied on load to every split and evaluation set; ``blank_value = -mean/std``. Each ``x``
holds the raw composed image in [0, 1] (blank pixels 0): uint8 codes ``k`` with
``x_code_scale`` 255 when every pixel is exactly ``float32(k / 255)`` (both sides 8-bit
images at their own size), else float32 (e.g. resized sklearn digits); ``x_offset`` =
mean and ``x_scale`` = std (:mod:`pathdep.data.storage` has the decode). Arrays are
compressed with shuffle + gzip. :func:`load_eval_sets` reads the evaluation sets back,
decoded.

How it was checked: ``tests/datasets/test_dominoes.py`` and ``tests/stages/test_dominoes.py``
(blank sides equal ``blank_value`` in the decoded inputs; the evaluation sets round-trip);
``tests/datasets/test_storage.py`` (decoded bit for bit equal to normalising the composed
images in float64 and rounding to float32, for uint8 and float sides).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from pathdep.data.dominoes.build import build_dominoes
from pathdep.data.dominoes.spec import DOMINO_DEFAULTS, FLAGS
from pathdep.data.storage import FORMAT, grid_codes, read_inputs, write_array
from pathdep.io.atomic import atomic_write

__all__ = ["prepare_dominoes", "load_eval_sets"]


def prepare_dominoes(name: str, spec: dict, out_path: str | Path, provenance: dict | None = None,
                     datasets: dict | None = None, side_files: dict | None = None) -> None:
    """Build the dominoes and write them as a ``pathdep.dataset/2`` file (plus flags, eval sets).

    Normalisation: per-channel mean/std of the raw train dominoes (blank pixels included),
    stored as ``x_offset``/``x_scale`` and applied on load to every split and evaluation set;
    ``blank_value = -mean/std``. ``x`` holds the raw images (uint8 codes when exact).

    Args:
        name, spec, datasets, side_files: As :func:`build_dominoes`.
        out_path: The ``.h5`` to write (atomically).
        provenance: Stored as JSON.
    """
    b = build_dominoes(name, spec, datasets, side_files)
    sp = b["splits"]
    x_tr = sp["train"]["x"]
    c = x_tr.shape[1]
    if b["normalize"]:
        mean = x_tr.astype(np.float64).mean(axis=(0, 2, 3))
        std = x_tr.astype(np.float64).std(axis=(0, 2, 3))
        std = np.where(std > 0, std, 1.0)
    else:
        mean, std = np.zeros(c), np.ones(c)
    keys = list(sp)
    codes = grid_codes([sp[k]["x"] for k in keys], 255.0)
    stored = dict(zip(keys, codes)) if codes is not None else {k: sp[k]["x"] for k in keys}
    attrs = dict(b["attrs"], format=FORMAT, name=name, source="dominoes", task="classification",
                 in_shape=np.asarray(x_tr.shape[1:], dtype=np.int64), out_dim=int(b["k"]),
                 n_train=int(len(x_tr)), n_test=int(len(sp["test"]["x"])), mean=mean, std=std,
                 blank_value=(-mean / std), pixel_scale=1.0, x_offset=np.asarray(mean, dtype=np.float64),
                 x_scale=np.asarray(std, dtype=np.float64), x_code_scale=255.0 if codes is not None else 1.0,
                 split=f"dominoes from the {b['attrs']['top']} (top) and {b['attrs']['bottom']} (bottom) "
                       f"train/test splits, seed {spec.get('seed', DOMINO_DEFAULTS['seed'])}",
                 classes=np.asarray(b["classes"], dtype=h5py.string_dtype()),
                 spec=json.dumps(spec, sort_keys=True, default=str),
                 provenance=json.dumps(provenance or {}, sort_keys=True, default=str))
    with atomic_write(out_path) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in attrs.items():
                f.attrs[k] = v
            for key, fl in sp.items():
                g = f.create_group(key)
                write_array(g, "x", stored[key])  # raw [0, 1] image, normalised on load
                write_array(g, "y", fl["label"].astype(np.int64))
                for fk in FLAGS:
                    write_array(g, fk, fl[fk])


def load_eval_sets(path: str | Path, include_splits: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """The evaluation sets of a prepared dominoes file: ``{set: {"x", "y", flags...}}``, ``x`` decoded.

    With ``include_splits`` the whole ``train`` and ``test`` splits are added too.
    """
    out = {}
    with h5py.File(path, "r") as f:
        if f.attrs.get("source") != "dominoes" or "eval" not in f:
            raise ValueError(f"{path}: not a prepared dominoes file (no /eval group; source "
                             f"{f.attrs.get('source')!r})")
        keys = [f"eval/{e}" for e in f["eval"]] + (["train", "test"] if include_splits else [])
        for key in keys:
            g = f[key]
            out[key.split("/")[-1]] = {"x": read_inputs(f, f"{key}/x")} | {k: g[k][()] for k in ("y", *FLAGS)}
    return out
