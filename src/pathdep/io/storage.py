"""Storage encodings of a trajectory's weights (``training.checkpoints`` keys ``store``,
``precision``, ``layers``, ``subsample``): what a checkpoint ``W (K, P)`` becomes on disk and
how :class:`pathdep.io.trajectory.Trajectory` turns it back into weights.

The default (``store: full``, ``precision: exact``, no subsampling) writes the classic
``/weights (C, K, P)`` dataset unchanged. Any other setting writes, instead of ``/weights``
(so that a reader that opens ``/weights`` directly fails loudly instead of reading encoded
numbers)::

    /weights_stored (C, K, P')  the encoded values (see below), chunked (1, K, P'),
                                shuffle + gzip 1 (WEIGHT_FILTERS)
    /weights_base   (C, R, P')  store: deltas: each baseline's weights (the weights' dtype,
                                lossless); R = number of baselines
    /delta_scale    (C, K)      store: deltas with a lossy precision: per-row scale (float64)
    /stored_index   (P',)       layers / subsample: the stored entries of the flat vector
    attr storage                JSON {store, precision, layers, subsample}

Encodings (``P' = P`` without subsampling):

- ``store: deltas, precision: exact``: member ``k``'s bit pattern minus its own baseline's
  (``uint32``/``uint64`` modular difference, zigzag-mapped so small negative differences
  have zero high bytes); baseline rows hold 0. **Exact**: the weights read back bit for bit
  (integer arithmetic mod 2^32 is invertible). A float subtraction would not be
  (``(w_k - w_0) + w_0 != w_k`` in float32 for 1-ulp cases).
- ``store: full, precision: float16 | bfloat16``: every weight rounded to nearest
  (bfloat16: the top 16 bits of float32, round-to-nearest-even, kept as ``uint16``).
  Error per entry ``<= u |w|``, ``u = 2^-11`` (float16; for ``|w| >= 2^-14``, absolute
  ``2^-25`` below it; overflow above 65504) or ``2^-8`` (bfloat16). It adds noise of
  relative size ``~u`` to every member's weights, so the config refuses it when a
  perturbation is smaller than ``100 u`` (``pathdep.config.storage``).
- ``store: deltas, precision: float16 | bfloat16``: baselines exact; for a member,
  ``d = w_k - w_base`` (float64) scaled by ``s = max |d|`` and rounded:
  ``w_k = w_base + s * q``. Error per entry ``<= u |d_i| + 2^-25 s`` (float16; bfloat16:
  ``u |d_i|``), so ``|error| <= (u + 2^-25 sqrt(P)) |w_k - w_base|``: relative to the
  member's own distance from its baseline, whatever eps is (plus the rounding of the
  reconstruction to the weights' dtype, half an ulp of ``w_k``).
- ``layers: [names]`` / ``subsample: n``: only the parameters of the named layers
  (``Layout.layers()`` names) and of those every n-th entry are stored. The full vector
  cannot be rebuilt, so ``Trajectory.weights`` refuses such a file in one line and
  ``Trajectory.stored_weights`` / ``stored_index`` give the subset.

How it was checked: ``tests/io/test_storage.py`` (exact round trip of ``deltas`` for
float32/float64 including sign changes, NaN/inf and diverged members; measured error of
the lossy options below their bound; subsampling indices; file sizes).
"""

from __future__ import annotations

import numpy as np

from pathdep.io.layout import Layout

PRECISIONS = ("exact", "float16", "bfloat16")
STORES = ("full", "deltas")
#: unit roundoff (half an ulp, relative) of each lossy precision.
UNIT_ROUNDOFF = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}
#: float16's absolute rounding below its smallest normal number (half the subnormal spacing).
FLOAT16_FLOOR = 2.0 ** -25


def spec_of(checkpoints: dict | None) -> dict:
    """The storage keys of a ``training.checkpoints`` block, with defaults."""
    ck = checkpoints or {}
    return {"store": ck.get("store", "full"), "precision": ck.get("precision", "exact"),
            "layers": list(ck["layers"]) if ck.get("layers") else None, "subsample": int(ck.get("subsample", 1))}


def is_plain(spec: dict) -> bool:
    """True when the classic ``/weights`` dataset is written (the default)."""
    return spec["store"] == "full" and spec["precision"] == "exact" and not spec["layers"] and spec["subsample"] == 1


def stored_index(layout: Layout, spec: dict) -> np.ndarray | None:
    """Indices ``(P',)`` of the stored entries, or None when every entry is stored."""
    if not spec["layers"] and spec["subsample"] == 1:
        return None
    layers = layout.layers()
    want = spec["layers"] or layers
    unknown = [n for n in want if n not in layers]
    if unknown:
        raise ValueError(f"training.checkpoints.layers: unknown layer(s) {unknown}; the model's layers are {layers}")
    li = layout.layer_index()
    idx = [np.arange(o, o + s) for n, o, s, i in zip(layout.names, layout.offsets, layout.sizes, li)
           if layers[i] in want]
    return np.concatenate(idx)[::spec["subsample"]].astype(np.int64)


def baseline_rows(members: list[dict]) -> np.ndarray:
    """For each member row, the row of its own baseline (``baseline`` r, ``copy`` 0); row 0
    for member tables without those columns."""
    if not members or "baseline" not in members[0] or "copy" not in members[0]:
        return np.zeros(len(members), dtype=np.int64)
    own = {int(m["baseline"]): k for k, m in enumerate(members) if int(m["copy"]) == 0}
    return np.array([own.get(int(m["baseline"]), 0) for m in members], dtype=np.int64)


def _uint(dtype) -> type:
    return {4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]


def _to_bf16(x: np.ndarray) -> np.ndarray:
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    r = b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))     # round to nearest even
    r = np.where(np.isnan(x), b | np.uint32(0x00400000), r)                # keep NaNs NaN
    return (r >> np.uint32(16)).astype(np.uint16)


def _from_bf16(q: np.ndarray) -> np.ndarray:
    return (q.astype(np.uint32) << np.uint32(16)).view(np.float32)


def quantise(x: np.ndarray, precision: str) -> np.ndarray:
    """``x`` rounded to ``precision`` in its storage type (float16, or uint16 for bfloat16)."""
    return x.astype(np.float16) if precision == "float16" else _to_bf16(x)


def dequantise(q: np.ndarray, precision: str) -> np.ndarray:
    """float64 values of :func:`quantise`'s output."""
    return (q if precision == "float16" else _from_bf16(q)).astype(np.float64)


def storage_dtype(spec: dict, dtype) -> np.dtype:
    """The dtype of ``/weights_stored``."""
    if spec["precision"] == "float16":
        return np.dtype(np.float16)
    if spec["precision"] == "bfloat16":
        return np.dtype(np.uint16)
    return np.dtype(_uint(dtype)) if spec["store"] == "deltas" else np.dtype(dtype)


def encode(W: np.ndarray, spec: dict, base: np.ndarray) -> dict[str, np.ndarray]:
    """One checkpoint ``W (K, P')`` (already subsampled) as the arrays to store.

    Returns ``{"stored": (K, P')}`` plus ``"base": (R, P')`` (deltas) and ``"scale": (K,)``
    (lossy deltas); ``base`` is :func:`baseline_rows`.
    """
    W = np.ascontiguousarray(W)
    heads = np.unique(base)
    if spec["store"] == "full":
        return {"stored": quantise(W, spec["precision"]) if spec["precision"] != "exact" else W}
    out = {"base": W[heads]}
    if spec["precision"] == "exact":
        u = _uint(W.dtype)
        d = (W.view(u) - W[base].view(u)).view(np.dtype(f"i{W.itemsize}"))   # modular difference
        bits = np.dtype(f"i{W.itemsize}").itemsize * 8 - 1
        out["stored"] = ((d << 1) ^ (d >> bits)).view(u)                     # zigzag
        return out
    d = W.astype(np.float64) - W[base].astype(np.float64)
    with np.errstate(invalid="ignore"):
        s = np.nanmax(np.where(np.isfinite(d), np.abs(d), 0.0), axis=1)
    s = np.where(s > 0, s, 1.0)
    out["stored"], out["scale"] = quantise(d / s[:, None], spec["precision"]), s
    return out


def decode(arrays: dict[str, np.ndarray], spec: dict, base: np.ndarray, dtype) -> np.ndarray:
    """Inverse of :func:`encode`: weights ``(K, P')`` in ``dtype``."""
    q, dtype = arrays["stored"], np.dtype(dtype)
    if spec["store"] == "full":
        return q if spec["precision"] == "exact" else dequantise(q, spec["precision"]).astype(dtype)
    heads = np.unique(base)
    B = np.empty((len(base),) + arrays["base"].shape[1:], dtype=dtype)
    B[heads] = arrays["base"]
    B = B[base]
    if spec["precision"] == "exact":
        u = _uint(dtype)
        z = q.view(u)
        d = (z >> u(1)) ^ (-(z & u(1)))                                      # un-zigzag (mod 2^bits)
        return (B.view(u) + d).view(dtype)
    W = B.astype(np.float64) + arrays["scale"][:, None] * dequantise(q, spec["precision"])
    W = W.astype(dtype)
    W[heads] = arrays["base"]
    return W


def error_bound(spec: dict, n_stored: int) -> str:
    """The documented per-entry error bound of an encoding, in words (stored as an attribute)."""
    p = spec["precision"]
    if p == "exact":
        return "exact (bit for bit)"
    u = UNIT_ROUNDOFF[p]
    if spec["store"] == "full":
        floor = f" + {FLOAT16_FLOOR:.3g} absolute below 2^-14" if p == "float16" else ""
        return f"abs(w - w_stored) <= {u:.3g} abs(w) per entry{floor}"
    extra = FLOAT16_FLOOR * np.sqrt(n_stored) if p == "float16" else 0.0
    return f"norm(w_k - w_k stored) <= {u + extra:.3g} norm(w_k - w_base) (baselines exact) + half an ulp of w_k"
