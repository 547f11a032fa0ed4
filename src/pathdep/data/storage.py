"""How a prepared dataset file stores its inputs: the source's own codes, normalised on load.

What it computes. A prepared file (``pathdep.dataset/2``) keeps each split's inputs ``x`` in
the smallest exact form and the normalisation as attributes; :func:`decode_inputs` turns
them into the float32 network inputs with the same float64 arithmetic, in the same order,
as preparation used before the codes were stored, so the decoded arrays are bit-identical
to the normalised float32 arrays that ``pathdep.dataset/1`` files held:

    s = float32(float64(stored) / x_code_scale)      (skipped when x_code_scale == 1)
    x = float32((float64(s) - x_offset[c]) / x_scale[c])           c = channel (axis 1)

* image sources (``idx``, ``torchvision``, ``sklearn_digits``): ``stored`` = the raw codes
  in the source's own integer dtype (uint8; sklearn digits' 0..16 are exact in uint8),
  ``x_offset``/``x_scale`` = the per-channel train mean/std in raw code units,
  ``x_code_scale`` 1 (:func:`raw_codes`);
* dominoes: ``stored`` = the composed raw image in [0, 1]: uint8 codes with
  ``x_code_scale`` 255 when every pixel is exactly ``float32(k / 255)`` (both sides 8-bit
  images at their own size; blank pixels are 0), else the float32 image itself
  (``x_code_scale`` 1, e.g. resized sklearn digits); ``x_offset``/``x_scale`` = mean/std
  (:func:`grid_codes`);
* genuinely float sources (``teacher_student``, ``synthetic``): ``stored`` = the final
  float32 inputs, ``x_offset`` 0 and ``x_scale`` 1 (the identity: a plain ``h5py`` read
  gives the network inputs).

For uint8 codes the formula is evaluated once per code value and channel (a 256-entry
table, the same float64 operations) and applied by lookup.

Every array of a prepared file of at least :data:`MIN_COMPRESSED_BYTES` is written with
HDF5's built-in shuffle + gzip filters (:func:`write_array`, level :data:`GZIP_LEVEL`,
chunks of about 1 MiB along the sample axis): readable by any HDF5 reader, no plugin.

How it was checked: ``tests/datasets/test_storage.py`` (every source: the stored dtype, and
the decoded inputs bit for bit equal to the float32 normalisation computed directly as
before; the filters on the written arrays); ``bench/bench_storage.py`` decodes the real
Fashion-MNIST and dominoes files of the default run and compares them bit for bit with the
``pathdep.dataset/1`` files (sizes and read times in README, "Results size").
"""

from __future__ import annotations

import h5py
import numpy as np

__all__ = ["FORMAT", "OLD_FORMATS", "GZIP_LEVEL", "MIN_COMPRESSED_BYTES", "raw_codes", "grid_codes",
           "decode_inputs", "read_inputs", "write_array", "check_format"]

FORMAT = "pathdep.dataset/2"
#: formats this package recognises but no longer reads (their files must be prepared again).
OLD_FORMATS = ("pathdep.dataset/1",)
#: gzip level of the prepared arrays (4: within 2 % of level 9's size at a twentieth of its write time).
GZIP_LEVEL = 4
#: arrays smaller than this are stored contiguous and uncompressed (a filter saves nothing there).
MIN_COMPRESSED_BYTES = 16384
_CHUNK_BYTES = 1 << 20
_BLOCK = 8192  # samples per block of the float64 decode arithmetic (bounded memory)


def raw_codes(xs: list[np.ndarray]) -> list[np.ndarray] | None:
    """The raw inputs of every split as exact integer codes, or None when they are genuinely float.

    Integer arrays are kept in their own dtype; float arrays whose every value is an
    integer in 0..255 (no ``-0.0``) become uint8. Either way ``float64(code)`` equals the
    raw value exactly, so the decode reproduces preparation's ``float64(raw)`` arithmetic.
    """
    if all(x.dtype.kind in "iu" for x in xs):
        return list(xs)
    out = []
    for x in xs:
        if x.dtype.kind != "f":
            return None
        ok = (x >= 0) & (x <= 255) & (np.floor(x) == x) & ~np.signbit(x)
        if not bool(np.all(ok)):
            return None
        out.append(x.astype(np.uint8))
    return out


def grid_codes(xs: list[np.ndarray], scale: float = 255.0) -> list[np.ndarray] | None:
    """float32 images in [0, 1] as uint8 codes ``k`` with ``float32(k / scale) == x`` bit for bit, or None."""
    out = []
    for x in xs:
        if x.dtype != np.float32:
            return None
        k = np.rint(x.astype(np.float64) * scale)
        if not bool(np.all((k >= 0) & (k <= 255))):
            return None
        back = (k / scale).astype(np.float32)
        if not np.array_equal(back.view(np.uint32), x.view(np.uint32)):
            return None
        out.append(k.astype(np.uint8))
    return out


def decode_inputs(stored: np.ndarray, offset, scale, code_scale: float = 1.0) -> np.ndarray:
    """The float32 network inputs of stored codes (this module's docstring has the formula).

    Args:
        stored: ``(N, C, ...)`` or ``(N, d)`` as stored (uint8 codes, or float32).
        offset, scale: per-channel (axis 1) float64 ``x_offset`` / ``x_scale``.
        code_scale: ``x_code_scale`` (1: the codes are used as they are).

    Returns:
        float32 array of ``stored.shape``.
    """
    offset = np.asarray(offset, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if (stored.dtype == np.float32 and code_scale == 1.0 and not offset.any()
            and bool(np.all(scale == 1.0))):
        return stored  # the identity: the file holds the final inputs
    if stored.dtype == np.uint8:  # the same arithmetic on the 256 codes, then one lookup per pixel
        lut = _decode_blocks(np.arange(256, dtype=np.uint8)[None, None].repeat(stored.shape[1], axis=1),
                             offset, scale, code_scale)[0]  # (C, 256)
        if stored.shape[1] == 1:
            return lut[0][stored]
        out = np.empty(stored.shape, dtype=np.float32)
        for c in range(stored.shape[1]):
            out[:, c] = lut[c][stored[:, c]]
        return out
    return _decode_blocks(stored, offset, scale, code_scale)


def _decode_blocks(stored: np.ndarray, offset: np.ndarray, scale: np.ndarray, code_scale: float) -> np.ndarray:
    """The decode formula in float64, block by block (bounded memory)."""
    shape = (1, stored.shape[1]) + (1,) * (stored.ndim - 2)
    m, s = offset.reshape(shape), scale.reshape(shape)
    out = np.empty(stored.shape, dtype=np.float32)
    for i in range(0, len(stored), _BLOCK):
        v = stored[i:i + _BLOCK]
        if code_scale != 1.0:
            v = (v.astype(np.float64) / code_scale).astype(np.float32)
        out[i:i + _BLOCK] = (v.astype(np.float64) - m) / s
    return out


def check_format(path, attrs) -> None:
    """Raise the one-line error for a file of an older (or unknown) dataset format."""
    fmt = attrs.get("format")
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    if fmt == FORMAT:
        return
    if fmt in OLD_FORMATS:
        raise ValueError(f"{path}: dataset format {fmt} (normalised float32) is no longer read; this pathdep "
                         f"writes {FORMAT} (raw codes, compressed): delete the file and prepare it again "
                         f"(snakemake {path})")
    raise ValueError(f"{path}: unknown dataset format {fmt!r} (expected {FORMAT}); prepare it again "
                     f"(snakemake {path})")


def read_inputs(f: h5py.File, key: str) -> np.ndarray:
    """Decode the inputs ``key`` (e.g. ``"train/x"``, ``"eval/both/x"``) of an open prepared file."""
    check_format(f.filename, f.attrs)
    a = f.attrs
    return decode_inputs(f[key][()], a["x_offset"], a["x_scale"], float(a["x_code_scale"]))


def write_array(group: h5py.Group, key: str, data: np.ndarray) -> h5py.Dataset:
    """Write ``data`` under ``key``: shuffle + gzip in ~1 MiB chunks of samples, or plain if small."""
    data = np.asarray(data)
    if data.nbytes < MIN_COMPRESSED_BYTES or data.ndim == 0 or len(data) == 0:
        return group.create_dataset(key, data=data)
    row = max(data.nbytes // len(data), 1)
    rows = int(min(len(data), max(1, _CHUNK_BYTES // row)))
    return group.create_dataset(key, data=data, chunks=(rows,) + data.shape[1:], compression="gzip",
                                compression_opts=GZIP_LEVEL, shuffle=True)
