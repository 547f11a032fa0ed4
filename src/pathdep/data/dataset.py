"""The prepared dataset file read back: :class:`Dataset` and :func:`load_dataset`.

What it reads: a ``pathdep.dataset/2`` file written by
:func:`pathdep.data.prepare.prepare_dataset` (schema there); each split is one ``h5py``
read, decoded to the float32 network inputs (:func:`pathdep.data.storage.decode_inputs`:
the source's codes normalised on load) and moved to the requested device. A file of the
older ``pathdep.dataset/1`` format is refused with one line saying to prepare it again.

How it was checked: ``tests/datasets/test_prepare.py`` (round trips of every source; a
missing file, a non-HDF5 file and a file without the schema give one line naming the path)
and ``tests/datasets/test_storage.py`` (decoded inputs bit-identical to the direct float32
normalisation; the old format refused in one line). The real Fashion-MNIST file (31 MB)
loads in ~0.3 s on a 2-core CPU, decompression and decode included (``bench/bench_storage.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor

from pathdep.data.storage import FORMAT, check_format, decode_inputs

__all__ = ["FORMAT", "Dataset", "load_dataset"]


@dataclass
class Dataset:
    """One prepared dataset, both splits in memory.

    Attributes:
        name: Dataset name (the config key).
        task: ``"classification"`` or ``"regression"``.
        x_train: float32 ``(n_train, *in_shape)``, already normalised.
        y_train: int64 ``(n_train,)`` class indices, or float32 ``(n_train, out_dim)``.
        x_test: float32 ``(n_test, *in_shape)``.
        y_test: like ``y_train`` for the test split.
        in_shape: Shape of one input, e.g. ``(1, 28, 28)`` or ``(10,)``.
        out_dim: Number of classes (classification) or outputs (regression).
        attrs: All root attributes of the file, decoded (``spec`` and ``provenance``
            parsed from JSON, ``in_shape`` a tuple, ``mean``/``std``/``classes`` lists).
    """

    name: str
    task: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    in_shape: tuple[int, ...]
    out_dim: int
    attrs: dict = field(default_factory=dict)


_REQUIRED = ("train/x", "train/y", "test/x", "test/y")
_REQUIRED_ATTRS = ("name", "task", "in_shape", "out_dim")


def _decode(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return [_decode(e) for e in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def load_dataset(path: str | Path, device: str | torch.device = "cpu") -> Dataset:
    """Load a file written by :func:`prepare_dataset`.

    Each array is read with one ``h5py`` read, the inputs decoded to float32
    (:func:`pathdep.data.storage.decode_inputs`), and moved to ``device``.

    Args:
        path: The ``.h5`` file.
        device: Torch device for the tensors.

    Returns:
        The :class:`Dataset`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not HDF5, lacks the pathdep dataset schema, or is of an
            older format (one line: delete it and prepare it again).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dataset file not found (create it with prepare_dataset, "
                                f"e.g. snakemake {path})")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not an HDF5 file ({e})") from None
    with f:
        missing = [k for k in _REQUIRED if k not in f] + [f"@{a}" for a in _REQUIRED_ATTRS if a not in f.attrs]
        if missing:
            raise ValueError(f"{path}: not a pathdep dataset file (missing {', '.join(missing)}; "
                             f"expected /train/x, /train/y, /test/x, /test/y and root attrs "
                             f"{', '.join(_REQUIRED_ATTRS)})")
        check_format(path, f.attrs)
        a = f.attrs
        arr = {k: f[k][()] for k in _REQUIRED}
        for k in ("train/x", "test/x"):
            arr[k] = decode_inputs(arr[k], a["x_offset"], a["x_scale"], float(a["x_code_scale"]))
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
    for k in ("spec", "provenance"):
        if isinstance(attrs.get(k), str):
            attrs[k] = json.loads(attrs[k])
    in_shape = tuple(int(s) for s in attrs["in_shape"])
    attrs["in_shape"] = in_shape
    task = attrs["task"]
    for s in ("train", "test"):
        x, y = arr[f"{s}/x"], arr[f"{s}/y"]
        if x.dtype != np.float32 or tuple(x.shape[1:]) != in_shape or len(y) != len(x):
            raise ValueError(f"{path}: /{s}/x has {x.dtype} {x.shape} and /{s}/y {y.dtype} {y.shape}; "
                             f"expected float32 (N, {', '.join(map(str, in_shape))}) and N labels")
        want = np.int64 if task == "classification" else np.float32
        if y.dtype != want:
            raise ValueError(f"{path}: /{s}/y is {y.dtype}, expected {np.dtype(want).name} for task {task}")
    t = {k: torch.from_numpy(v).to(device) for k, v in arr.items()}
    return Dataset(name=attrs["name"], task=task, x_train=t["train/x"], y_train=t["train/y"],
                   x_test=t["test/x"], y_test=t["test/y"], in_shape=in_shape,
                   out_dim=int(attrs["out_dim"]), attrs=attrs)
