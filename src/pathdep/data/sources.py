"""Datasets: read a source once, write one fast HDF5 file, load it back as tensors.

What it computes: ``prepare_dataset`` turns one ``datasets.<name>`` config block into a
single HDF5 file holding the train and test splits as float32 arrays that are already
scaled and normalised, so that training reads each split with one ``h5py`` read and no
per-sample transform. ``load_dataset`` reads that file back into a :class:`Dataset`.

Sources (``spec["source"]``), each a :class:`pathdep.data.registry.Source` registered with
``@register`` below (keys, defaults, a cheap ``info`` that config validation calls, and the
loader; a new source is one more registered class, see :mod:`pathdep.data.registry`):

* ``idx`` -- the IDX files of MNIST-style datasets (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
  each plain or ``.gz``) in ``root``; read by :func:`read_idx`. This is how the default
  config gets Fashion-MNIST offline (Debian's ``dataset-fashion-mnist`` installs them in
  ``/usr/share/datasets/fashion-mnist``). Optional ``classes`` (list of names) sets the
  class names and ``out_dim``; otherwise ``out_dim`` is ``1 + max label`` over the full
  files and the names are ``"0", "1", ...``.
* ``torchvision`` -- the real ``torchvision.datasets.MNIST`` / ``FashionMNIST`` /
  ``CIFAR10`` loaders (``dataset``: ``mnist`` | ``fashion_mnist`` | ``cifar10``) under
  ``root``, downloading only when ``download: true``.
* ``sklearn_digits`` -- ``sklearn.datasets.load_digits`` (1797 8x8 images, bundled, no
  network), split by ``test_fraction`` with ``seed`` (stratified by class unless
  ``stratify: false``).
* ``teacher_student`` -- regression: Gaussian inputs ``x ~ N(0, I_{d_in})`` labelled by
  a random one-hidden-layer tanh teacher ``y = W2 tanh(W1 x + b1) + b2 + noise * e``
  (``e ~ N(0, I)``). The teacher's weights are stored in the file (group ``/teacher``).

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

HDF5 schema (``format`` attribute ``"pathdep.dataset/1"``)::

    /train/x   float32 (n_train, *in_shape)   images (N, C, H, W); vectors (N, d_in)
    /train/y   int64 (n_train,) class index | float32 (n_train, out_dim) regression
    /test/x, /test/y                          same for the test split
    /teacher/W1 (h, d_in), b1 (h,), W2 (d_out, h), b2 (d_out,)   float64,
                                              teacher_student only
    root attributes:
      format    "pathdep.dataset/1"
      name      dataset name (the config key)        source   one of SOURCES
      task      "classification" | "regression"
      in_shape  int array, shape of one input        out_dim  int (classes or outputs)
      n_train, n_test   int
      mean, std float64 arrays (one per channel) already applied to x
      pixel_scale  float, raw pixel codes were divided by it (1.0 for teacher_student)
      split     text, e.g. "official train/test" or "seeded stratified 75/25 split, seed 0"
      classes   string array of class names ([] for regression)
      spec      JSON of the config block             provenance  JSON (passed in)

The file is written through :func:`pathdep.io.atomic.atomic_write` (``<out_path>.partial``,
renamed when complete), so an interrupted or failing run never leaves a partial
``out_path`` and an existing file survives a failed re-run.

How it was checked: ``tests/datasets/test_sources.py`` writes tiny IDX files (plain and gzip), the
same files in torchvision's MNIST / FashionMNIST raw layout, and tiny CIFAR-10 pickle
batches in the real format; it checks that the ``idx`` and ``torchvision`` paths give
identical arrays, shapes, dtypes, labels, per-channel train mean 0 / std 1, the one-line
errors (wrong magic number, truncated file, missing data offline, unknown key), seeded
determinism of ``sklearn_digits`` and ``teacher_student``, ``y == teacher(x)`` at zero
noise (recomputed independently in float64), that a failure mid-write leaves no file, and
that every source's ``info`` (what config validation sees) matches the file it prepares.
The real Fashion-MNIST from ``/usr/share/datasets/fashion-mnist`` was prepared and
loaded by hand: 60000/10000 samples, 6000 per class, raw train mean 0.2860 / std 0.3530
(the published values), stored train mean 0 / std 1; the 220 MB file takes ~1.6 s to
prepare and ~0.2 s to load on a 2-core CPU.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor

from pathdep.data.registry import REGISTRY, Source, _bool, _did_you_mean, _float, _int, _str, check_spec, register
from pathdep.io.atomic import atomic_write

__all__ = ["SOURCES", "FORMAT", "Dataset", "prepare_dataset", "load_dataset", "read_idx", "idx_header"]

#: The registered sources (name -> :class:`pathdep.data.registry.Source`; the registry itself,
#: so a source registered later is listed too).
SOURCES = REGISTRY
FORMAT = "pathdep.dataset/1"

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", 0x00000803),
    "train_labels": ("train-labels-idx1-ubyte", 0x00000801),
    "test_images": ("t10k-images-idx3-ubyte", 0x00000803),
    "test_labels": ("t10k-labels-idx1-ubyte", 0x00000801),
}

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


# ----------------------------------------------------------------------------- IDX


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip-compressed.

    The header is a big-endian magic number ``0x0000TTNN`` (two zero bytes, a type code
    ``TT`` in 08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64, and the number of dimensions
    ``NN``), then ``NN`` big-endian uint32 sizes, then the data, big-endian, C order.
    Gzip is detected from the file's first bytes, not its name.

    Args:
        path: File to read.
        expected_magic: If given, the exact magic number required (``0x00000803`` for
            uint8 image stacks, ``0x00000801`` for uint8 label vectors).

    Returns:
        Array of shape given by the header, native byte order.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Not an IDX file (bad magic number), unexpected magic number,
            truncated or over-long data, or a corrupt gzip stream; the message names the
            file.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, gzip.BadGzipFile) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({e})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(raw)} bytes, no magic number)")
    magic = int.from_bytes(raw[:4], "big")
    want = f"0x{expected_magic:08X}" if expected_magic is not None else "0x0000TTNN"
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or code not in _IDX_DTYPES or ndim < 1:
        raise ValueError(f"{path}: not an IDX file (magic number 0x{magic:08X}, expected {want})")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{path}: unexpected IDX magic number 0x{magic:08X}, expected {want} "
                         f"({_describe_magic(expected_magic)})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX file (header of {header} bytes, file has {len(raw)})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header
    if have != need:
        what = "truncated" if have < need else "over-long"
        raise ValueError(f"{path}: {what} IDX file (header says {'x'.join(map(str, shape))} "
                         f"{dtype.name} = {need} data bytes, found {have})")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _describe_magic(magic: int) -> str:
    code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    dt = _IDX_DTYPES.get(code)
    return f"{dt.name if dt is not None else '?'} array with {ndim} dimension(s)"


# ----------------------------------------------------------------------------- sources
# Each source is a registered pathdep.data.registry.Source: its keys and defaults, a cheap
# ``info`` (shapes and sizes; with check_files the files are sniffed, not loaded) and its
# loader, which returns raw arrays (images uint8/float (N, C, H, W) before scaling, labels)
# plus metadata; _build() subsets, scales and normalises them.


def _find_idx(name: str, root: Path, base: str) -> Path:
    for cand in (root / base, root / (base + ".gz")):
        if cand.is_file():
            return cand
    raise ValueError(f"datasets.{name}.root: {root} has no {base} or {base}.gz")


def _idx_root(name: str, spec: dict) -> Path:
    root = Path(_str(name, spec, "root"))
    if not root.is_dir():
        raise ValueError(f"datasets.{name}.root: {root} is not a directory (expected the folder holding "
                         f"train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...)")
    return root


def idx_header(path: str | Path, expected_magic: int) -> tuple[int, ...]:
    """The shape in an IDX file's header, reading the header only.

    The magic number must equal ``expected_magic``; a plain (not gzip) file must also have
    exactly the size its header announces (a gzip file is not decompressed past its header).

    Raises:
        ValueError: naming the file: wrong magic number, truncated header or data.
    """
    path = Path(path)
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = f.read(4)
            ndim = head[3] if len(head) == 4 else 0
            dims = f.read(4 * ndim)
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    magic = int.from_bytes(head, "big") if len(head) == 4 else None
    if magic != expected_magic:
        got = f"0x{magic:08X}" if magic is not None else f"only {len(head)} bytes"
        raise ValueError(f"{path}: not the expected IDX file (magic number {got}, expected "
                         f"0x{expected_magic:08X}, {_describe_magic(expected_magic)})")
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
    if not gz:
        want = 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64)) * _IDX_DTYPES[(expected_magic >> 8) & 0xFF].itemsize
        have = path.stat().st_size
        if have != want:
            raise ValueError(f"{path}: {'truncated' if have < want else 'over-long'} IDX file (header says "
                             f"{'x'.join(map(str, shape))}, {want - 4 - 4 * ndim} data bytes, file has {have - 4 - 4 * ndim})")
    return shape


def _label_check(name: str, root: Path, n_images: dict, labels: dict) -> None:
    for split in ("train", "test"):
        n_img, n_lab = n_images[split], len(labels[split])
        if n_img != n_lab:
            raise ValueError(f"datasets.{name}.root: {root / _IDX_FILES[f'{split}_labels'][0]}(.gz): {n_lab} labels "
                             f"for {n_img} images in {_IDX_FILES[f'{split}_images'][0]}")


@register
class IdxSource(Source):
    """IDX files of an MNIST-style dataset in ``root`` (plain or ``.gz``)."""

    name = "idx"
    keys = frozenset({"root", "classes"})

    def check(self, name, spec, *, offline=False, datasets=None):
        _str(name, spec, "root")
        classes = spec.get("classes")
        if classes is not None and (not isinstance(classes, (list, tuple)) or len(classes) < 2
                                    or not all(isinstance(c, str) for c in classes)):
            raise ValueError(f"datasets.{name}.classes: expected a list of at least 2 class names, got {classes!r}")

    def info(self, name, spec, *, check_files=False, datasets=None):
        """Headers of the image files, the (small) label files read whole; without
        ``check_files`` a 28x28 image and 10 classes (unless ``classes``) are assumed."""
        classes = spec.get("classes")
        if not check_files:
            return {"in_shape": (1, 28, 28), "out_dim": len(classes) if classes else 10, "n_train": None,
                    "exact": classes is not None}
        root = _idx_root(name, spec)
        shapes, labels = {}, {}
        for key, (base, magic) in _IDX_FILES.items():
            path = _find_idx(name, root, base)
            try:
                if key.endswith("labels"):
                    labels[key.split("_")[0]] = read_idx(path, expected_magic=magic)
                else:
                    shapes[key.split("_")[0]] = idx_header(path, magic)
            except ValueError as exc:
                raise ValueError(f"datasets.{name}.root: {exc}") from None
        _label_check(name, root, {s: shapes[s][0] for s in shapes}, labels)
        top = int(max(labels["train"].max(initial=0), labels["test"].max(initial=0)))
        if classes is not None and top >= len(classes):
            raise ValueError(f"datasets.{name}.classes: {len(classes)} names but the labels go up to {top}")
        _, h, w = shapes["train"]
        return {"in_shape": (1, h, w), "out_dim": len(classes) if classes else top + 1,
                "n_train": len(labels["train"]), "exact": True}

    def load(self, name, spec, *, datasets=None):
        root = _idx_root(name, spec)
        arrays = {key: read_idx(_find_idx(name, root, base), expected_magic=magic)
                  for key, (base, magic) in _IDX_FILES.items()}
        _label_check(name, root, {s: len(arrays[f"{s}_images"]) for s in ("train", "test")},
                     {s: arrays[f"{s}_labels"] for s in ("train", "test")})
        classes = spec.get("classes")
        if classes is not None:
            classes = list(classes)
        else:
            n = 1 + int(max(arrays["train_labels"].max(initial=0), arrays["test_labels"].max(initial=0)))
            classes = [str(i) for i in range(n)]
        return dict(x_train=arrays["train_images"][:, None], y_train=arrays["train_labels"],
                    x_test=arrays["test_images"][:, None], y_test=arrays["test_labels"],
                    classes=classes, pixel_scale=255.0, split="official train/test")


# torchvision datasets: config name -> (class, input shape, classes, train-set size, folder
# under root, the files torchvision looks for there).
_TV_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                   "t10k-labels-idx1-ubyte")
_TV_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
_TORCHVISION = {
    "mnist": ("MNIST", (1, 28, 28), 10, 60000, "MNIST/raw", _TV_MNIST_FILES),
    "fashion_mnist": ("FashionMNIST", (1, 28, 28), 10, 60000, "FashionMNIST/raw", _TV_MNIST_FILES),
    "cifar10": ("CIFAR10", (3, 32, 32), 10, 50000, "cifar-10-batches-py", _TV_CIFAR_FILES),
}


@register
class TorchvisionSource(Source):
    """``torchvision.datasets`` MNIST / FashionMNIST / CIFAR10 under ``root``."""

    name = "torchvision"
    keys = frozenset({"dataset", "root", "download"})
    defaults = {"root": "data/", "download": False}

    def check(self, name, spec, *, offline=False, datasets=None):
        which = spec.get("dataset")
        if which not in _TORCHVISION:
            raise ValueError(f"datasets.{name}.dataset: expected one of {', '.join(_TORCHVISION)}; got {which!r}"
                             f"{_did_you_mean(which, _TORCHVISION)}")
        _str(name, spec, "root", self.defaults["root"])
        if _bool(name, spec, "download", self.defaults["download"]) and offline:
            raise ValueError(f"datasets.{name}.download: true, but the config says offline: true")

    def info(self, name, spec, *, check_files=False, datasets=None):
        """Known shapes; ``check_files`` with ``download: false``: the files torchvision reads exist."""
        which = spec["dataset"]
        _, shape, n_classes, n_train, folder, files = _TORCHVISION[which]
        if check_files and not self.param(spec, "download"):
            root = Path(self.param(spec, "root"))
            missing = [f for f in files if not (root / folder / f).is_file()]
            if missing:
                raise ValueError(f"datasets.{name}.root: {which} not found under {root} and download is false "
                                 f"({root / folder / missing[0]} is missing); set download: true, or point root "
                                 f"at the folder that holds {folder}/")
        return {"in_shape": shape, "out_dim": n_classes, "n_train": n_train, "exact": True}

    def load(self, name, spec, *, datasets=None):
        import torchvision.datasets as tvd

        which = spec.get("dataset")
        root = self.param(spec, "root")
        download = _bool(name, spec, "download", False)
        cls_name, *_, folder, files = _TORCHVISION[which]
        cls = getattr(tvd, cls_name)
        out = {}
        for split, train in (("train", True), ("test", False)):
            try:
                ds = cls(root=root, train=train, download=download)
            except RuntimeError as e:
                if not download:
                    raise ValueError(
                        f"datasets.{name}.root: {which} not found under {root} and download is false; set "
                        f"download: true or point root at the folder that contains {folder}/ ({e})") from None
                raise ValueError(f"datasets.{name}: {which} could not be downloaded into {root}: {e}") from None
            except OSError as e:  # network errors during download (URLError is an OSError)
                raise ValueError(f"datasets.{name}: {which} could not be downloaded into {root}: {e}") from None
            data = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
            if data.ndim == 3:  # MNIST-like (N, H, W)
                data = data[:, None]
            else:  # CIFAR (N, H, W, C) -> (N, C, H, W)
                data = np.ascontiguousarray(data.transpose(0, 3, 1, 2))
            targets = ds.targets.numpy() if isinstance(ds.targets, torch.Tensor) else np.asarray(ds.targets)
            out[f"x_{split}"], out[f"y_{split}"] = data, targets
            out["classes"] = [str(c) for c in ds.classes]
        return dict(out, pixel_scale=255.0, split="official train/test")


_DIGITS_N = 1797  # sklearn.datasets.load_digits: 1797 8x8 images of 10 digits


@register
class SklearnDigits(Source):
    """``sklearn.datasets.load_digits`` (bundled), split by ``test_fraction`` with ``seed``."""

    name = "sklearn_digits"
    keys = frozenset({"test_fraction", "seed", "stratify"})
    defaults = {"test_fraction": 0.25, "seed": 0, "stratify": True}

    def check(self, name, spec, *, offline=False, datasets=None):
        _float(name, spec, "test_fraction", self.defaults["test_fraction"], 0.0, 1.0, open_lo=True)
        _int(name, spec, "seed", self.defaults["seed"], minimum=0)
        _bool(name, spec, "stratify", self.defaults["stratify"])

    def info(self, name, spec, *, check_files=False, datasets=None):
        # sklearn's train_test_split: n_test = ceil(test_fraction * n), n_train = the rest
        frac = float(self.param(spec, "test_fraction"))
        return {"in_shape": (1, 8, 8), "out_dim": 10, "n_train": _DIGITS_N - math.ceil(frac * _DIGITS_N),
                "exact": True}

    def load(self, name, spec, *, datasets=None):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        frac = float(self.param(spec, "test_fraction"))
        seed = int(self.param(spec, "seed"))
        stratify = bool(self.param(spec, "stratify"))
        d = load_digits()
        x, y = d.images.astype(np.float64)[:, None], d.target.astype(np.int64)
        idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=frac, random_state=seed,
                                          shuffle=True, stratify=y if stratify else None)
        idx_tr, idx_te = np.sort(idx_tr), np.sort(idx_te)
        pct = round(100 * frac)
        kind = "stratified" if stratify else "random"
        return dict(x_train=x[idx_tr], y_train=y[idx_tr], x_test=x[idx_te], y_test=y[idx_te],
                    classes=[str(int(c)) for c in d.target_names], pixel_scale=16.0,
                    split=f"seeded {kind} {100 - pct}/{pct} split of {len(y)} samples "
                          f"(sklearn train_test_split, test_fraction {frac}, seed {seed})")


@register
class TeacherStudent(Source):
    """Regression on Gaussian inputs labelled by a random one-hidden-layer tanh teacher."""

    name = "teacher_student"
    keys = frozenset({"d_in", "d_out", "teacher_hidden", "n_train", "n_test", "noise", "seed"})
    defaults = {"d_in": 10, "d_out": 1, "teacher_hidden": 32, "n_train": 2000, "n_test": 500,
                "noise": 0.0, "seed": 0}
    subset = False
    normalize = False

    def _params(self, name: str, spec: dict) -> dict:
        p = {k: self.param(spec, k) for k in self.defaults}
        for k in ("d_in", "d_out", "teacher_hidden", "n_train", "n_test"):
            p[k] = _int(name, p, k)
        p["noise"] = _float(name, p, "noise", 0.0, 0.0)
        p["seed"] = _int(name, p, "seed", 0, minimum=0)
        return p

    def check(self, name, spec, *, offline=False, datasets=None):
        self._params(name, spec)

    def info(self, name, spec, *, check_files=False, datasets=None):
        p = self._params(name, spec)
        return {"in_shape": (p["d_in"],), "out_dim": p["d_out"], "n_train": p["n_train"], "exact": True}

    def load(self, name, spec, *, datasets=None):
        p = self._params(name, spec)
        d_in, d_out, h, n_tr, n_te = p["d_in"], p["d_out"], p["teacher_hidden"], p["n_train"], p["n_test"]
        noise, seed = p["noise"], p["seed"]
        s_teacher, s_train, s_test, s_noise = np.random.SeedSequence(seed).spawn(4)
        rt = np.random.default_rng(s_teacher)
        teacher = {  # LeCun-normal scaling so pre-activations are O(1) for x ~ N(0, I)
            "W1": rt.standard_normal((h, d_in)) / np.sqrt(d_in),
            "b1": rt.standard_normal(h) * 0.1,
            "W2": rt.standard_normal((d_out, h)) / np.sqrt(h),
            "b2": rt.standard_normal(d_out) * 0.1,
        }
        rn = np.random.default_rng(s_noise)
        out = {}
        for split, n, ss in (("train", n_tr, s_train), ("test", n_te, s_test)):
            # inputs are rounded to float32 first so the stored x is exactly the teacher's input
            x = np.random.default_rng(ss).standard_normal((n, d_in)).astype(np.float32)
            y = teacher_forward(teacher, x.astype(np.float64))
            if noise > 0:
                y = y + noise * rn.standard_normal(y.shape)
            out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.float32)
        return dict(out, teacher=teacher, classes=[], pixel_scale=1.0, task="regression",
                    split=f"independent N(0, I) draws: {n_tr} train / {n_te} test, seed {seed} "
                          f"(SeedSequence spawn: teacher, train x, test x, noise)")


def teacher_forward(teacher: dict, x: np.ndarray) -> np.ndarray:
    """Evaluate the teacher ``y = W2 tanh(W1 x + b1) + b2`` in float64.

    Args:
        teacher: ``W1 (h, d_in)``, ``b1 (h,)``, ``W2 (d_out, h)``, ``b2 (d_out,)``.
        x: Raw (un-normalised) inputs ``(N, d_in)``.

    Returns:
        ``(N, d_out)`` float64 outputs (no noise).
    """
    return np.tanh(x @ teacher["W1"].T + teacher["b1"]) @ teacher["W2"].T + teacher["b2"]

# ----------------------------------------------------------------------------- preparation


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


def _scale(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """float32 ``(x - mean[c]) / std[c]`` with per-channel (axis 1) ``mean``/``std`` in raw units."""
    out = np.empty(x.shape, dtype=np.float32)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    m, s = mean.reshape(shape), std.reshape(shape)
    for i in range(0, len(x), 8192):  # chunked float64 arithmetic, bounded memory
        out[i:i + 8192] = (x[i:i + 8192].astype(np.float64) - m) / s
    return out


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
    arrays = {f"{s}/x": _scale(raw[f"x_{s}"], mean_raw, std_raw) for s in ("train", "test")}
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
                 pixel_scale=pixel_scale, split=split,
                 classes=np.asarray(raw["classes"], dtype=h5py.string_dtype()),
                 spec=json.dumps(spec, sort_keys=True, default=str))
    return arrays, attrs, raw.get("teacher")


def _write(path: str | Path, arrays: dict, attrs: dict, teacher: dict | None) -> None:
    with h5py.File(path, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        for k, v in arrays.items():
            f.create_dataset(k, data=v)  # contiguous, uncompressed: one fast read
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
        spec: The dataset's config block; ``spec["source"]`` is one of :data:`SOURCES`
            (keys per source in the module docstring).
        out_path: Destination file; written atomically (:func:`pathdep.io.atomic.atomic_write`).
        provenance: Provenance record (e.g. ``pathdep.io.provenance.collect(...)``), stored
            as JSON in the ``provenance`` attribute.
        datasets: The config's whole ``datasets:`` mapping, for sources that compose other
            configured datasets (unused by the built-in sources).

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


# ----------------------------------------------------------------------------- loading

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

    Each array is read with one ``h5py`` read and moved to ``device``.

    Args:
        path: The ``.h5`` file.
        device: Torch device for the tensors.

    Returns:
        The :class:`Dataset`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not HDF5 or lacks the pathdep dataset schema.
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
        arr = {k: f[k][()] for k in _REQUIRED}
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
