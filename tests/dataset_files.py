"""Source files in their real formats, written by the tests themselves (no network): IDX
files (plain or gzip), torchvision's MNIST / FashionMNIST raw layout, CIFAR-10 pickle batches."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from pathdep.data import load_dataset

N_TRAIN, N_TEST = 20, 8


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """IDX encoding: magic 0x0000<code><ndim>, big-endian uint32 sizes, big-endian data."""
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return head + np.ascontiguousarray(arr, dtype=dt).tobytes()


def tiny_mnist(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8), rng.integers(0, 10, N_TRAIN).astype(np.uint8),
            rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8), rng.integers(0, 10, N_TEST).astype(np.uint8))


def write_idx_set(root: Path, arrays, gz: bool | list[bool]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    gzs = gz if isinstance(gz, list) else [gz] * 4
    for name, arr, z in zip(names, arrays, gzs):
        b = idx_bytes(arr)
        if z:
            (root / (name + ".gz")).write_bytes(gzip.compress(b))
        else:
            (root / name).write_bytes(b)
    return root


def idx_spec(root, **kw):
    return {"source": "idx", "root": str(root), "n_train": None, "n_test": None, "normalize": True, **kw}


def write_cifar(root: Path, per_batch: int = 4, n_test: int = 6, seed: int = 0):
    """Tiny CIFAR-10 in the real python-pickle layout: dict with b-less keys after latin1."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)  # rows: R(1024) G(1024) B(1024)
        x[:, :1024] //= 2  # make channels differ so per-channel stats matter
        y = rng.integers(0, 10, per_batch).tolist()
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({"batch_label": f"training batch {i} of 5", "labels": y, "data": x,
                         "filenames": [f"img{i}_{j}.png" for j in range(per_batch)]}, f)
        xs.append(x), ys.extend(y)
    xt = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    yt = rng.integers(0, 10, n_test).tolist()
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": yt, "data": xt,
                     "filenames": [f"t{j}.png" for j in range(n_test)]}, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": per_batch, "label_names": names, "num_vis": 3072}, f)
    return np.concatenate(xs), np.array(ys), xt, np.array(yt), names


def prepared_shapes(path: Path) -> dict:
    """``in_shape``, ``out_dim`` and ``n_train`` of a prepared file, read back."""
    ds = load_dataset(path)
    return {"in_shape": tuple(ds.in_shape), "out_dim": ds.out_dim, "n_train": len(ds.x_train)}
