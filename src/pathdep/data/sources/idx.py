"""The ``idx`` source: the IDX files of an MNIST-style dataset in ``root``.

What it reads: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain or ``.gz``, in ``root``
(:func:`read_idx`). This is how the default config gets Fashion-MNIST offline (Debian's
``dataset-fashion-mnist`` installs them in ``/usr/share/datasets/fashion-mnist``). Optional
``classes`` (list of names) sets the class names and ``out_dim``; otherwise ``out_dim`` is
``1 + max label`` over the full files and the names are ``"0", "1", ...``. Pixels are uint8
codes (``pixel_scale`` 255).

How it was checked: ``tests/datasets/test_idx.py`` writes tiny IDX files (plain and
gzip, every type code) and reads them back; wrong magic numbers, truncated and over-long
files give one-line errors naming the file; the header sniffing of :func:`idx_header`
agrees with :func:`read_idx`. The real Fashion-MNIST was prepared and loaded by hand:
60000/10000 samples, 6000 per class, raw train mean 0.2860 / std 0.3530 (the published
values).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from pathdep.data.registry import Source, _str, register

__all__ = ["read_idx", "idx_header", "IdxSource"]

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
