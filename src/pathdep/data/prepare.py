"""Preparation: read a source once, write one fast HDF5 file.

What it computes: :func:`prepare_dataset` turns one ``datasets.<name>`` config block into a
single HDF5 file holding the train and test splits in the source's own codes (uint8 images)
plus the normalisation, so that training reads each split with one ``h5py`` read and one
vectorised decode (:func:`pathdep.data.dataset.load_dataset` reads it back;
:mod:`pathdep.data.storage` holds the encoding and its decode formula). The source
(``spec["source"]``, a :class:`pathdep.data.registry.Source` registered in
:mod:`pathdep.data.sources`) gives the raw arrays; this module subsets, scales, normalises
and writes them.

Pixel scaling and normalisation: image pixels are divided by their maximum code value
(255 for the 8-bit sources, 16 for sklearn digits), giving values in [0, 1]. With
``normalize: true`` (the default for image sources; ``false`` for ``teacher_student``)
the per-channel mean and population standard deviation (axis 1 is the channel axis,
for vector inputs each feature is a channel) are computed on the *train* split (after
subsetting) in float64 and applied to both splits: ``x = (x01 - mean[c]) / std[c]``.
The file records ``mean``/``std`` (zeros/ones when not normalised; a zero std is
replaced by 1). For ``teacher_student`` the teacher acts on the *raw* inputs, so
``raw_x = x * std + mean``.

Subsets (``n_train`` / ``n_test``, image sources): ``null`` keeps the whole split. A
number keeps the *first* N samples of the split, unless ``subset_seed`` is given, in
which case a uniformly random subset of N indices is drawn without replacement
(``numpy.random.default_rng(SeedSequence(subset_seed).spawn(2)[0 for train, 1 for
test])``) and kept in the original order. For ``teacher_student`` they are the numbers
of samples drawn.

HDF5 schema (``format`` attribute ``"pathdep.dataset/2"``)::

    /train/x   (n_train, *in_shape)  images (N, C, H, W); vectors (N, d_in): the raw codes in
               the source's integer dtype (uint8 for idx / torchvision / sklearn digits), or
               the final float32 inputs for genuinely float sources (teacher_student,
               synthetic); decoded by pathdep.data.storage.decode_inputs
    /train/y   int64 (n_train,) class index | float32 (n_train, out_dim) regression
    /test/x, /test/y                          same for the test split
    /teacher/W1 (h, d_in), b1 (h,), W2 (d_out, h), b2 (d_out,)   float64,
                                              teacher_student only
    root attributes:
      format    "pathdep.dataset/2"
      name      dataset name (the config key)        source   a registered source
      task      "classification" | "regression"
      in_shape  int array, shape of one input        out_dim  int (classes or outputs)
      n_train, n_test   int
      mean, std float64 arrays (one per channel) in [0, 1] pixel units, applied on load
      pixel_scale  float, raw pixel codes are divided by it (1.0 for teacher_student)
      x_offset, x_scale  float64 per channel, in stored units: inputs are
                float32((float64(x) - x_offset[c]) / x_scale[c])  (0 and 1 for float storage)
      x_code_scale  float, 1.0 here (dominoes: 255 when x holds uint8 codes of [0, 1] images)
      split     text, e.g. "official train/test" or "seeded stratified 75/25 split, seed 0"
      classes   string array of class names ([] for regression)
      spec      JSON of the config block             provenance  JSON (passed in)

Arrays of 16 KiB or more are chunked (~1 MiB of samples) and compressed with HDF5's
built-in shuffle + gzip (level 4): any HDF5 reader opens them. The decode is the float64
arithmetic of normalising the raw inputs directly (``(float64(raw) - mean_raw) / std_raw``
rounded to float32, in raw units), so the network inputs are bit-identical to it
(``tests/datasets/test_storage.py``).

The file is written through :func:`pathdep.io.atomic.atomic_write` (``<out_path>.partial``,
renamed when complete), so an interrupted or failing run never leaves a partial
``out_path`` and an existing file survives a failed re-run.

How it was checked: ``tests/datasets/test_prepare.py`` (per-channel train mean 0 / std 1,
subsets first-N and seeded, that a failure mid-write leaves no file, that every source's
``info`` matches the file it prepares) and ``tests/datasets/test_storage.py`` (stored dtypes,
bit-identical decode); the real Fashion-MNIST takes ~1.5 s to prepare on a 2-core CPU and
its file is 31 MB (220 MB as normalised float32), ``bench/bench_storage.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from pathdep.data.registry import _bool, _int, check_spec
from pathdep.data.storage import FORMAT, decode_inputs, raw_codes, write_array
from pathdep.io.atomic import atomic_write

__all__ = ["prepare_dataset"]


def _subset(name: str, spec: dict, raw: dict) -> str:
    """Apply n_train / n_test (first N, or seeded random N); returns text for the split attr."""
    seed = _int(name, spec, "subset_seed", None, minimum=0, allow_none=True)
    notes = []
    for i, split in enumerate(("train", "test")):
        key = f"n_{split}"
        n = _int(name, spec, key, None, allow_none=True)
        total = len(raw[f"x_{split}"])
        if n is None:
            continue
        if n > total:
            raise ValueError(f"datasets.{name}.{key}: expected <= {total} (the {split} split size), got {n}")
        if seed is None:
            idx = np.arange(n)
            notes.append(f"first {n} of {total} {split}")
        else:
            rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[i])
            idx = np.sort(rng.choice(total, size=n, replace=False))
            notes.append(f"random {n} of {total} {split} (subset_seed {seed})")
        raw[f"x_{split}"], raw[f"y_{split}"] = raw[f"x_{split}"][idx], raw[f"y_{split}"][idx]
    return "; ".join(notes)


def _channel_stats(x: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (axis 1) mean and population std of ``x``, float64 accumulation, chunked."""
    n, c = x.shape[0], x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    count = n * (x.size // max(n * c, 1))
    s = np.zeros(c)
    for i in range(0, n, chunk):
        s += x[i:i + chunk].sum(axis=axes, dtype=np.float64)
    mean = s / count
    shape = (1, c) + (1,) * (x.ndim - 2)
    ss = np.zeros(c)
    for i in range(0, n, chunk):
        ss += np.square(x[i:i + chunk].astype(np.float64) - mean.reshape(shape)).sum(axis=axes)
    std = np.sqrt(ss / count)
    return mean, np.where(std > 0, std, 1.0)


def _check_labels(name: str, raw: dict, classes: list[str]) -> None:
    for split in ("train", "test"):
        y = raw[f"y_{split}"]
        if y.ndim != 1:
            raise ValueError(f"datasets.{name}: {split} labels have shape {y.shape}, expected ({len(raw[f'x_{split}'])},)")
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(f"datasets.{name}: {split} labels span [{y.min()}, {y.max()}], "
                             f"expected 0..{len(classes) - 1} ({len(classes)} classes)")


def _build(name: str, spec: dict, datasets: dict | None = None) -> tuple[dict, dict, dict | None]:
    """Read the source and return (arrays, attrs, teacher-or-None); no files are written."""
    src = check_spec(name, spec, datasets=datasets)
    source = src.name
    raw = src.load(name, spec, datasets=datasets)
    task = raw.pop("task", "classification")
    split = raw["split"]
    if src.subset:
        note = _subset(name, spec, raw)
        if note:
            split = f"{split}; {note}"
    normalize = _bool(name, spec, "normalize", src.normalize)
    pixel_scale = float(raw["pixel_scale"])
    x_tr = raw["x_train"]
    c = x_tr.shape[1]
    if normalize:
        if len(x_tr) < 2:
            raise ValueError(f"datasets.{name}.n_train: normalize needs at least 2 train samples, got {len(x_tr)}")
        mean_raw, std_raw = _channel_stats(x_tr)
    else:
        mean_raw, std_raw = np.zeros(c), np.full(c, pixel_scale)
    # (x / pixel_scale - mean) / std == (x - mean_raw) / std_raw with mean = mean_raw / pixel_scale
    codes = raw_codes([raw["x_train"], raw["x_test"]])
    if codes is not None:  # stored as the source's codes, normalised on load (pathdep.data.storage)
        arrays = {"train/x": codes[0], "test/x": codes[1]}
        offset, scale = np.asarray(mean_raw, dtype=np.float64), np.asarray(std_raw, dtype=np.float64)
    else:  # genuinely float inputs: the final float32 inputs, identity decode
        arrays = {f"{s}/x": decode_inputs(raw[f"x_{s}"], mean_raw, std_raw) for s in ("train", "test")}
        offset, scale = np.zeros(c), np.ones(c)
    mean, std = mean_raw / pixel_scale, std_raw / pixel_scale
    if task == "classification":
        _check_labels(name, raw, raw["classes"])
        out_dim = len(raw["classes"])
        for s in ("train", "test"):
            arrays[f"{s}/y"] = np.asarray(raw[f"y_{s}"], dtype=np.int64)
    else:
        out_dim = raw["y_train"].shape[1]
        for s in ("train", "test"):
            arrays[f"{s}/y"] = np.asarray(raw[f"y_{s}"], dtype=np.float32)
    attrs = dict(format=FORMAT, name=name, source=source, task=task,
                 in_shape=np.asarray(x_tr.shape[1:], dtype=np.int64), out_dim=int(out_dim),
                 n_train=int(len(arrays["train/x"])), n_test=int(len(arrays["test/x"])),
                 mean=np.asarray(mean, dtype=np.float64), std=np.asarray(std, dtype=np.float64),
                 pixel_scale=pixel_scale, x_offset=offset, x_scale=scale, x_code_scale=1.0, split=split,
                 classes=np.asarray(raw["classes"], dtype=h5py.string_dtype()),
                 spec=json.dumps(spec, sort_keys=True, default=str))
    return arrays, attrs, raw.get("teacher")


def _write(path: str | Path, arrays: dict, attrs: dict, teacher: dict | None) -> None:
    with h5py.File(path, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        for k, v in arrays.items():
            write_array(f, k, v)  # shuffle + gzip (pathdep.data.storage)
        if teacher is not None:
            g = f.create_group("teacher")
            for k, v in teacher.items():
                g.create_dataset(k, data=np.asarray(v, dtype=np.float64))


def prepare_dataset(name: str, spec: dict, out_path: str | Path, provenance: dict | None = None,
                    datasets: dict | None = None) -> None:
    """Read one dataset from its source and write it as a pathdep HDF5 file.

    Args:
        name: Dataset name (the key under ``datasets:`` in the config); used in error
            messages and stored as the ``name`` attribute.
        spec: The dataset's config block; ``spec["source"]`` is a registered source
            (its keys: the source's module in :mod:`pathdep.data.sources`).
        out_path: Destination file; written atomically (:func:`pathdep.io.atomic.atomic_write`).
        provenance: Provenance record (e.g. ``pathdep.io.provenance.collect(...)``), stored
            as JSON in the ``provenance`` attribute.
        datasets: The config's whole ``datasets:`` mapping, for sources that compose other
            configured datasets (``dominoes``).

    Raises:
        ValueError: Bad spec (message names ``datasets.<name>.<key>``), unreadable or
            inconsistent source files (message names the file), or torchvision data
            missing with ``download: false``.
    """
    src = check_spec(name, spec, datasets=datasets)
    if hasattr(src, "prepare"):  # a source that writes more than x/y (dominoes: flags, evaluation sets)
        return src.prepare(name, spec, out_path, provenance=provenance, datasets=datasets)
    arrays, attrs, teacher = _build(name, spec, datasets)
    attrs["provenance"] = json.dumps(provenance if provenance is not None else {}, sort_keys=True, default=str)
    with atomic_write(out_path) as tmp:
        _write(tmp, arrays, attrs, teacher)
