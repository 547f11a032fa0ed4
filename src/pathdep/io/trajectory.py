"""HDF5 files of ensembles: initial weights (``init.h5``) and trajectories (``trajectory.h5``).

Schema (``schema_version`` 1; readable with plain h5py, no pathdep needed)::

    init.h5
      /weights            (K, P) float32/64   initial flat weights; member 0 is the baseline
                          (chunked (1, P), shuffle + gzip)
      /members/<column>   (K,)                member table (see below)
      /members/distance_per_tensor (K, n_tensors)  |w_k - w_0| per parameter tensor
      /buffers            (K, Q)  initial flat buffers (BatchNorm running statistics; only
                          when Q > 0), attr buffer_layout (JSON, as layout)
      attrs: schema_version, kind="init", layout (JSON: names, shapes, offsets),
             config (JSON of the resolved run), provenance (JSON), seeds (JSON)

    trajectory.h5
      /weights            (C, K, P)  weights at checkpoints, chunked (1, K, P), streamed,
                                     shuffle + gzip (level 1)
      /buffers            (C, K, Q)  buffers at checkpoints (BatchNorm running_mean and
                                     running_var, ``core.resnet.buffer_layout``), the dtype
                                     of /weights, chunked (1, K, Q), the same filters;
                                     attr buffer_layout (JSON Layout.to_attrs()). Written
                                     only when Q > 0 (absent: norm none, MLPs, old files)
      /steps              (C,)  int64    training step of each checkpoint (0 = init)
      /epochs             (C,)  float64  the same in epochs
      /loss               (T, K) float32 per-step batch loss of each member (before the update)
      /diverged_step      (K,)  int64    first step whose loss was NaN/inf, -1 if none
      /valid              (C, K) bool    False at checkpoints from a member's diverged_step on
      /members/...        as in init.h5
      attrs: schema_version, kind="trajectory", layout, config, provenance, seeds,
             complete (True only once every checkpoint is written), n_steps,
             steps_per_epoch, task, loss, write_seconds, train_seconds

Buffers API: ``save_init(..., buffers=B0 (K, Q), buffer_layout=bl)``;
``TrajectoryWriter(..., buffer_layout=bl)`` then ``write_buffers(i, B (K, Q))``;
``InitFile.buffers`` / ``Trajectory.buffers(i)`` return ``(K, Q)`` and
``InitFile.buffer_layout`` / ``Trajectory.buffer_layout`` the :class:`Layout`; a file
without buffers gives ``(K, 0)`` arrays (of the weights' dtype) and an empty layout.
The change is additive, so ``schema_version`` stays 1.

Member table columns: ``role`` ("baseline"/"member"), ``baseline`` (r: the replicate
baseline the network belongs to) and ``copy`` (0: the baseline itself, 1..M: its perturbed
copies; ``perturbation.baselines`` blocks in order), ``seed_init`` (the block's init seed),
``target`` (init, schedule,
hyperparameter, none), ``kind``, ``epsilon`` (the member's own perturbation size: the
configured epsilon for init perturbations, ``epsilon*k/N`` for hyperparameter ones),
``distance`` and ``relative_distance`` (global |w_k(0) - w_0(0)|, and over |w_0(0)|),
``seed_perturb``, ``seed_schedule``, ``swaps`` (JSON), and ``hp_<name>`` for every
optimiser hyperparameter of the member.

A trajectory is written to ``<path>.partial`` (:func:`pathdep.io.atomic.partial_path`) and
renamed at the end, so Snakemake (and a reader) never sees a half-written file as done;
``init.h5`` goes through :func:`pathdep.io.atomic.atomic_write`.

Storage options (``training.checkpoints``: ``store``, ``precision``, ``layers``, ``subsample``):
:mod:`pathdep.io.storage`; :meth:`Trajectory.weights` decodes them (analyses unchanged).

Compression: every ``/weights`` array uses HDF5's built-in shuffle + gzip filters (any HDF5
reader decodes them, no plugin; lossless, so a checkpoint reads back bit for bit). On the
default run's trajectories level 1 saves 14 % of the weights' bytes (levels 4 and 6 under
1 % more at 1.1-1.8x the write time; shuffle + LZF only 7 %). Training hands each
checkpoint to a :class:`BackgroundWriter`, whose thread compresses it while the loop goes
on (h5py releases the GIL inside ``H5Dwrite``). README, "Results size", has the measured
sizes and times (``bench/bench_storage.py``).

:class:`BackgroundWriter` takes file writes off a loop's critical path: a single thread
runs the submitted writes in submission order (so a resume state submitted after a
checkpoint is on disk only once that checkpoint is), with a bounded queue (the producer
waits when the disk falls behind, so memory stays bounded), and re-raises a failed write in
the producer on its next call.

How it was checked: ``tests/io/test_trajectory.py`` (round trip bit for bit through the
filters, the filters present, streaming writes,
background writes in order and their errors re-raised, truncated and corrupted files give
one-line errors) and ``tests/io/test_atomic.py``.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import pandas as pd

from pathdep.io.atomic import atomic_write, partial_path
from pathdep.io import storage as ST
from pathdep.io.layout import Layout

SCHEMA_VERSION = 1
#: gzip level of the weights (1: 14 % smaller than raw float32; higher levels gain < 1 % more).
GZIP_LEVEL = 1
#: the HDF5 filters of every /weights array (shuffle, then deflate).
WEIGHT_FILTERS = {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True}


class TrajectoryError(ValueError):
    """A trajectory or init file that cannot be used, reported as one line."""


def _write_members(f: h5py.File, members: list[dict], dist_per_tensor: np.ndarray | None) -> None:
    g = f.create_group("members")
    cols = list(members[0].keys())
    for c in cols:
        vals = [m[c] for m in members]
        if isinstance(vals[0], str):
            g.create_dataset(c, data=np.array(vals, dtype=h5py.string_dtype()))
        elif isinstance(vals[0], (list, dict, tuple)):
            g.create_dataset(c, data=np.array([json.dumps(v) for v in vals], dtype=h5py.string_dtype()))
        elif isinstance(vals[0], (bool, np.bool_)):
            g.create_dataset(c, data=np.array(vals, dtype=bool))
        elif isinstance(vals[0], (int, np.integer)):
            g.create_dataset(c, data=np.array(vals, dtype=np.int64))
        else:
            g.create_dataset(c, data=np.array(vals, dtype=np.float64))
    if dist_per_tensor is not None:
        g.create_dataset("distance_per_tensor", data=np.asarray(dist_per_tensor, dtype=np.float64))


def read_members(f: h5py.File) -> pd.DataFrame:
    g = f["members"]
    data = {}
    for c in g:
        if c == "distance_per_tensor":
            continue
        v = g[c][()]
        if v.dtype.kind in ("O", "S"):
            v = np.array([x.decode() if isinstance(x, bytes) else x for x in v])
        data[c] = v
    return pd.DataFrame(data)


EMPTY_LAYOUT = Layout((), (), ())


def _buffer_layout_of(f: h5py.File) -> Layout:
    s = f.attrs.get("buffer_layout")
    return Layout.from_attrs(json.loads(s)) if s is not None and "buffers" in f else EMPTY_LAYOUT


def save_init(path: str | Path, weights: np.ndarray, layout: Layout, members: list[dict],
              dist_per_tensor: np.ndarray, attrs: dict, buffers: np.ndarray | None = None,
              buffer_layout: Layout | None = None) -> None:
    """Write ``init.h5`` atomically (``.partial`` then rename); ``buffers (K, Q)`` with
    ``buffer_layout`` are stored only when ``Q > 0``."""
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        weights = np.asarray(weights)
        f.create_dataset("weights", data=weights, chunks=(1,) + weights.shape[1:] if weights.size else None,
                         **(WEIGHT_FILTERS if weights.size else {}))
        if buffer_layout is not None and buffer_layout.n_params > 0:
            b = np.asarray(buffers)
            if b.shape != (len(weights), buffer_layout.n_params):
                raise ValueError(f"save_init: buffers have shape {b.shape}, expected "
                                 f"{(len(weights), buffer_layout.n_params)}")
            f.create_dataset("buffers", data=b, chunks=(1, b.shape[1]), **WEIGHT_FILTERS)
            f.attrs["buffer_layout"] = json.dumps(buffer_layout.to_attrs())
        _write_members(f, members, dist_per_tensor)
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["kind"] = "init"
        f.attrs["layout"] = json.dumps(layout.to_attrs())
        for k, v in attrs.items():
            f.attrs[k] = v if isinstance(v, (str, int, float, bool)) else json.dumps(v, default=str)


def _open(path: str | Path, kind: str) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise TrajectoryError(f"{path}: file not found (expected an HDF5 {kind} file)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise TrajectoryError(f"{path}: not a readable HDF5 {kind} file (truncated or corrupted: "
                              f"{str(exc).splitlines()[0][:120]})") from None
    try:
        ok = f.attrs.get("kind") == kind and int(f.attrs.get("schema_version", -1)) == SCHEMA_VERSION
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        f.close()
        raise TrajectoryError(f"{path}: not a readable HDF5 {kind} file (corrupted attributes: "
                              f"{str(exc).splitlines()[0][:120]})") from None
    if not ok:
        f.close()
        raise TrajectoryError(f"{path}: not a pathdep {kind} file of schema version {SCHEMA_VERSION}")
    return f


@dataclass
class InitFile:
    weights: np.ndarray
    layout: Layout
    members: pd.DataFrame
    config: dict
    attrs: dict
    buffers: np.ndarray | None = None      # (K, Q); (K, 0) without buffers
    buffer_layout: Layout = EMPTY_LAYOUT


def load_init(path: str | Path) -> InitFile:
    with _open(path, "init") as f:
        try:
            w = f["weights"][()]
            b = f["buffers"][()] if "buffers" in f else np.zeros((len(w), 0), dtype=w.dtype)
            return InitFile(weights=w, layout=Layout.from_attrs(json.loads(f.attrs["layout"])),
                            members=read_members(f), config=json.loads(f.attrs["config"]),
                            attrs={k: f.attrs[k] for k in f.attrs}, buffers=b,
                            buffer_layout=_buffer_layout_of(f))
        except (KeyError, OSError, RuntimeError, ValueError) as exc:
            raise TrajectoryError(f"{path}: init file is incomplete or corrupted "
                                  f"({str(exc).splitlines()[0][:120]})") from None


class TrajectoryWriter:
    """Streams checkpoints into ``<path>.partial``; :meth:`finish` renames it to ``path``.

    Memory does not grow with the number of checkpoints: each checkpoint is one
    ``(K, P)`` slab written into one chunk of a preallocated dataset (shuffle + gzip,
    compressed by the thread that calls :meth:`write_weights`).
    """

    def __init__(self, path: str | Path, layout: Layout, members: list[dict], dist_per_tensor: np.ndarray,
                 ckpt_steps: np.ndarray, n_steps: int, steps_per_epoch: int, dtype, attrs: dict,
                 resume: bool = False, buffer_layout: Layout | None = None, storage: dict | None = None):
        self.path = Path(path)
        self.tmp = partial_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        k, p = len(members), layout.n_params
        if storage is None:   # the run's own training.checkpoints block
            cfg = attrs.get("config", "{}")
            storage = (json.loads(cfg) if isinstance(cfg, str) else cfg).get("training", {}).get("checkpoints")
        self.spec, self.base = ST.spec_of(storage), ST.baseline_rows(members)
        self.index = ST.stored_index(layout, self.spec)
        if resume and self.tmp.exists():
            self.f = h5py.File(self.tmp, "r+")
            return
        self.f = h5py.File(self.tmp, "w")
        f = self.f
        c = len(ckpt_steps)
        self._create_weights(c, k, p, dtype)
        if buffer_layout is not None and buffer_layout.n_params > 0:
            q = buffer_layout.n_params
            f.create_dataset("buffers", shape=(c, k, q), dtype=dtype, chunks=(1, k, q), **WEIGHT_FILTERS)
            f.attrs["buffer_layout"] = json.dumps(buffer_layout.to_attrs())
        f.create_dataset("steps", data=np.asarray(ckpt_steps, dtype=np.int64))
        f.create_dataset("epochs", data=np.asarray(ckpt_steps, dtype=np.float64) / steps_per_epoch)
        f.create_dataset("loss", shape=(n_steps, k), dtype=np.float32, fillvalue=np.nan)
        f.create_dataset("diverged_step", data=-np.ones(k, dtype=np.int64))
        f.create_dataset("valid", data=np.zeros((c, k), dtype=bool))
        _write_members(f, members, dist_per_tensor)
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["kind"] = "trajectory"
        f.attrs["layout"] = json.dumps(layout.to_attrs())
        f.attrs["complete"] = False
        f.attrs["n_steps"] = int(n_steps)
        f.attrs["steps_per_epoch"] = int(steps_per_epoch)
        for key, v in attrs.items():
            f.attrs[key] = v if isinstance(v, (str, int, float, bool)) else json.dumps(v, default=str)

    def _create_weights(self, c: int, k: int, p: int, dtype) -> None:
        """``/weights``, or the encoded datasets of :mod:`pathdep.io.storage`."""
        f, spec = self.f, self.spec
        if ST.is_plain(spec):
            f.create_dataset("weights", shape=(c, k, p), dtype=dtype, chunks=(1, k, p), **WEIGHT_FILTERS)
            return
        ps = p if self.index is None else len(self.index)
        f.create_dataset("weights_stored", shape=(c, k, ps), dtype=ST.storage_dtype(spec, dtype),
                         chunks=(1, k, ps), **WEIGHT_FILTERS)
        if spec["store"] == "deltas":
            r = len(np.unique(self.base))
            f.create_dataset("weights_base", shape=(c, r, ps), dtype=dtype, chunks=(1, r, ps), **WEIGHT_FILTERS)
            if spec["precision"] != "exact":
                f.create_dataset("delta_scale", shape=(c, k), dtype=np.float64)
        if self.index is not None:
            f.create_dataset("stored_index", data=self.index)
        f.attrs["storage"] = json.dumps(spec)
        f.attrs["storage_error"] = ST.error_bound(spec, ps)
        f.attrs["weights_dtype"] = np.dtype(dtype).name

    def write_weights(self, i: int, weights: np.ndarray) -> None:
        """Weights ``(K, P)`` of checkpoint ``i`` (one chunk, compressed on the calling thread;
        encoded as ``training.checkpoints`` says, :mod:`pathdep.io.storage`)."""
        if ST.is_plain(self.spec):
            self.f["weights"][i] = weights
            return
        w = np.asarray(weights)
        enc = ST.encode(w if self.index is None else w[:, self.index], self.spec, self.base)
        self.f["weights_stored"][i] = enc["stored"]
        if "base" in enc:
            self.f["weights_base"][i] = enc["base"]
        if "scale" in enc:
            self.f["delta_scale"][i] = enc["scale"]

    def write_buffers(self, i: int, buffers: np.ndarray) -> None:
        """Buffers ``(K, Q)`` of checkpoint ``i`` (the file must have been opened with a
        non-empty ``buffer_layout``)."""
        if "buffers" not in self.f:
            raise ValueError(f"{self.path}: write_buffers needs TrajectoryWriter(buffer_layout=) with Q > 0")
        self.f["buffers"][i] = buffers

    def write_valid(self, valid: np.ndarray) -> None:
        """Validity ``(C, K)`` of every checkpoint at once."""
        self.f["valid"][...] = valid

    def write_losses(self, start: int, losses: np.ndarray) -> None:
        self.f["loss"][start:start + len(losses)] = losses

    def set_diverged(self, diverged: np.ndarray) -> None:
        self.f["diverged_step"][...] = diverged

    def flush(self) -> None:
        self.f.flush()

    def finish(self, extra_attrs: dict | None = None) -> None:
        for k, v in (extra_attrs or {}).items():
            self.f.attrs[k] = v
        self.f.attrs["complete"] = True
        self.f.close()
        os.replace(self.tmp, self.path)  # the atomic rename of pathdep.io.atomic

    def close(self) -> None:
        if self.f.id.valid:
            self.f.close()


class BackgroundWriter:
    """Run file writes on one thread, in submission order, behind a bounded queue.

    Args:
        maxsize: at most this many writes wait in the queue; :meth:`submit` blocks beyond
            it (memory stays bounded when the disk is slower than the loop).

    A write that raises is re-raised (once) by the next :meth:`submit`, :meth:`flush` or
    :meth:`close`; later writes are skipped after a failure. ``seconds`` accumulates the
    time spent inside the writes (on the writer thread).
    """

    def __init__(self, maxsize: int = 4):
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._error: BaseException | None = None
        self._failed = False
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._work, name="pathdep-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        import time

        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                if not self._failed:
                    t = time.perf_counter()
                    try:
                        item[0](*item[1], **item[2])
                    except BaseException as exc:  # noqa: BLE001 - handed to the producer
                        self._error, self._failed = exc, True
                    self.seconds += time.perf_counter() - t
            finally:
                self._q.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        """Queue ``fn(*args, **kwargs)``; the arguments must not be modified afterwards."""
        self._raise()
        if not self._thread.is_alive():
            raise RuntimeError("BackgroundWriter: submit after close")
        self._q.put((fn, args, kwargs))

    def flush(self) -> None:
        """Wait until every submitted write is done (re-raising a failure)."""
        self._q.join()
        self._raise()

    def close(self) -> None:
        """Finish the queued writes and stop the thread (re-raising a failure)."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Trajectory:
    """Read-only view of a finished ``trajectory.h5`` (weights read lazily, one checkpoint at a time).

    Raises:
        TrajectoryError: missing, truncated, corrupted or incomplete file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.f = _open(path, "trajectory")
        try:
            if not bool(self.f.attrs.get("complete", False)):
                raise TrajectoryError(f"{path}: trajectory is incomplete (training did not finish)")
            self.layout = Layout.from_attrs(json.loads(self.f.attrs["layout"]))
            self.config = json.loads(self.f.attrs["config"])
            self.provenance = json.loads(self.f.attrs.get("provenance", "{}"))
            self.steps = self.f["steps"][()]
            self.epochs = self.f["epochs"][()]
            self.valid = self.f["valid"][()]
            self.diverged_step = self.f["diverged_step"][()]
            self.members = read_members(self.f)
            self.buffer_layout = _buffer_layout_of(self.f)
            self._open_storage()
            name = "weights" if self.plain else "weights_stored"
            w, n = self.f[name], len(self.stored_index) if self.stored_index is not None else self.layout.n_params
            if w.shape != (len(self.steps), len(self.members), n):
                raise TrajectoryError(f"{path}: /{name} has shape {w.shape}, expected "
                                      f"{(len(self.steps), len(self.members), n)}")
            b = self.f["buffers"].shape if "buffers" in self.f else None
            if b is not None and b != w.shape[:2] + (self.buffer_layout.n_params,):
                raise TrajectoryError(f"{path}: /buffers has shape {b}, expected "
                                      f"{w.shape[:2] + (self.buffer_layout.n_params,)}")
        except TrajectoryError:
            self.f.close()
            raise
        except (KeyError, OSError, RuntimeError, ValueError) as exc:  # h5py: RuntimeError for broken groups
            self.f.close()
            raise TrajectoryError(f"{path}: trajectory file is corrupted ({str(exc).splitlines()[0][:120]})") from None

    def _open_storage(self) -> None:
        """The storage encoding (plain /weights, or :mod:`pathdep.io.storage`'s datasets)."""
        self.plain = "weights" in self.f
        self.storage = ST.spec_of(None) if self.plain else json.loads(self.f.attrs["storage"])
        self.dtype = np.dtype(self.f["weights"].dtype if self.plain else self.f.attrs["weights_dtype"])
        self.stored_index = self.f["stored_index"][()] if "stored_index" in self.f else None
        self._base = ST.baseline_rows(self.members.to_dict("records"))

    @property
    def n_checkpoints(self) -> int:
        return len(self.steps)

    @property
    def n_members(self) -> int:
        return len(self.members)

    def weights(self, i: int) -> np.ndarray:
        """Weights ``(K, P)`` at checkpoint ``i`` (decoded when stored as deltas or in a lossy
        precision; the file's attr ``storage_error`` states the bound)."""
        if self.stored_index is not None:
            raise TrajectoryError(f"{self.path}: stores {len(self.stored_index)} of {self.layout.n_params} "
                                  f"parameters (training.checkpoints.layers/subsample); use stored_weights(i)")
        return self.stored_weights(i)

    def stored_weights(self, i: int) -> np.ndarray:
        """The stored entries ``(K, P')`` at checkpoint ``i`` (``P' = P`` without subsampling;
        the entries ``stored_index`` of the flat vector otherwise), decoded."""
        try:
            if self.plain:
                return self.f["weights"][i]
            arrays = {n: self.f[d][i] for n, d in (("stored", "weights_stored"), ("base", "weights_base"),
                                                   ("scale", "delta_scale")) if d in self.f}
            return ST.decode(arrays, self.storage, self._base, self.dtype)
        except (OSError, RuntimeError) as exc:
            raise TrajectoryError(f"{self.path}: cannot read checkpoint {i} (corrupted: {exc})") from None

    def buffers(self, i: int) -> np.ndarray:
        """Buffers ``(K, Q)`` at checkpoint ``i``; ``(K, 0)`` for files without buffers."""
        if "buffers" not in self.f:
            return np.zeros((self.n_members, 0), dtype=self.dtype)
        try:
            return self.f["buffers"][i]
        except (OSError, RuntimeError) as exc:
            raise TrajectoryError(f"{self.path}: cannot read buffers of checkpoint {i} (corrupted: {exc})") from None

    def loss(self) -> np.ndarray:
        """Per-step batch losses ``(T, K)``."""
        try:
            return self.f["loss"][()]
        except (KeyError, OSError, RuntimeError) as exc:
            raise TrajectoryError(f"{self.path}: cannot read /loss (corrupted: {str(exc).splitlines()[0][:120]})") from None

    @property
    def attrs(self) -> dict:
        return {k: self.f.attrs[k] for k in self.f.attrs}

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
