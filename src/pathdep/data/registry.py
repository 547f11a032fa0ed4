"""The registry of dataset sources: one entry per ``datasets.<name>.source`` value.

What it holds: :data:`REGISTRY` maps a source name (``idx``, ``torchvision``,
``sklearn_digits``, ``teacher_student``, ...) to a :class:`Source`, which declares

* ``keys`` -- the keys a ``datasets.<name>`` block of this source may hold (besides
  ``source``) and ``defaults`` -- their default values (one table: preparation and config
  validation read the same defaults);
* :meth:`Source.check` -- key types and ranges, no file access (cheap);
* :meth:`Source.info` -- input shape, output count and training-set size without loading
  the data (``check_files=True`` sniffs the source files: IDX headers, torchvision files);
* :meth:`Source.load` -- the raw arrays (see :meth:`Source.load` for the dict it returns);
  :func:`pathdep.data.prepare.prepare_dataset` then subsets, scales, normalises and writes.

Config validation (``pathdep.config``) and preparation both go through :func:`check_spec`
and :func:`dataset_info`; nothing outside ``data/`` knows how a source works.

Adding a source is one registration: subclass :class:`Source` in a new module of
``data/sources/``, decorate it with :func:`register`, and import that module in
``pathdep/data/sources/__init__.py``::

    @register
    class Dominoes(Source):
        name = "dominoes"
        keys = frozenset({"left", "right", "n_train", "n_test", "seed"})
        defaults = {"n_train": 1000, "n_test": 200, "seed": 0}
        subset = False          # n_train/n_test are sample counts, not a subset of a split

        def check(self, name, spec, *, offline=False, datasets=None): ...
        def info(self, name, spec, *, check_files=False, datasets=None): ...
        def load(self, name, spec, *, datasets=None): ...

A source that composes other configured datasets (``dominoes`` from two of them) reads
their blocks from ``datasets`` (the whole ``datasets:`` mapping of the config, passed by
validation and by ``prepare_dataset(..., datasets=...)``) and may call
:func:`dataset_info` / ``REGISTRY[other].load`` on them. Errors are ``ValueError`` whose
text starts with the key, ``datasets.<name>.<key>: ...`` (validation prefixes ``config: ``).

How it was checked: ``tests/datasets/test_prepare.py`` (each source's ``info`` equals the
shapes/sizes of the file ``prepare_dataset`` writes; the error messages; a registered toy
source is validated and prepared with no other change).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pathdep.data.storage import FORMAT

__all__ = ["REGISTRY", "Source", "register", "check_spec", "dataset_info", "prepared_info"]

#: source name -> the registered :class:`Source` instance.
REGISTRY: dict[str, "Source"] = {}

# The subset keys every source with ``subset = True`` accepts (image sources).
SUBSET_KEYS = frozenset({"n_train", "n_test", "subset_seed", "normalize"})


class Source:
    """One kind of dataset source. Subclass, set the class attributes, override the methods.

    Attributes:
        name: the ``source:`` value.
        keys: keys of the config block besides ``source`` (``SUBSET_KEYS`` are added when
            ``subset`` is true).
        defaults: default values of (some of) ``keys``.
        subset: ``n_train``/``n_test`` (+ ``subset_seed``) select a subset of the loaded
            splits; False when the source draws exactly that many samples itself.
        normalize: default of the ``normalize`` key (per-channel train mean/std).
    """

    name: ClassVar[str] = ""
    keys: ClassVar[frozenset] = frozenset()
    defaults: ClassVar[dict] = {}
    subset: ClassVar[bool] = True
    normalize: ClassVar[bool] = True

    def allowed(self) -> frozenset:
        return frozenset({"source"}) | self.keys | (SUBSET_KEYS if self.subset else frozenset({"normalize"}))

    def param(self, spec: dict, key: str) -> Any:
        """``spec[key]``, or its default when missing or null."""
        v = spec.get(key)
        return self.defaults.get(key) if v is None else v

    def check(self, name: str, spec: dict, *, offline: bool = False, datasets: dict | None = None) -> None:
        """Types and ranges of the block's values (no file access). Raises ValueError."""

    def info(self, name: str, spec: dict, *, check_files: bool = False, datasets: dict | None = None) -> dict:
        """``{"in_shape": tuple, "out_dim": int, "n_train": int | None, "exact": bool}`` of the
        full training split (before ``n_train`` subsetting), without loading the data."""
        raise NotImplementedError

    def load(self, name: str, spec: dict, *, datasets: dict | None = None) -> dict:
        """Raw arrays and metadata: ``x_train``/``x_test`` (N, C, H, W) or (N, d) in raw units,
        ``y_train``/``y_test``, ``classes`` (names; [] for regression), ``pixel_scale``,
        ``split`` (text), optionally ``task`` ("regression") and ``teacher`` (dict of arrays)."""
        raise NotImplementedError


def register(cls: type[Source]) -> type[Source]:
    """Class decorator: add an instance of ``cls`` to :data:`REGISTRY` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__}: a Source needs a name")
    REGISTRY[cls.name] = cls()
    return cls


# ----------------------------------------------------------------------------- value checks
# ``datasets.<name>.<key>: expected ..., got ...`` for one value of a block.


def _int(name: str, spec: dict, key: str, default: Any = None, minimum: int = 1,
         allow_none: bool = False) -> int | None:
    v = spec.get(key, default)
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"datasets.{name}.{key}: expected an integer >= {minimum}"
                         f"{' or null' if allow_none else ''}, got {v!r}")
    return int(v)


def _float(name: str, spec: dict, key: str, default: float, lo: float, hi: float | None = None,
           open_lo: bool = False) -> float:
    v = spec.get(key, default)
    ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
    if ok:
        v = float(v)
        ok = (v > lo if open_lo else v >= lo) and (hi is None or v < hi)
    if not ok:
        rng = f"in ({lo}, {hi})" if hi is not None else f">= {lo}"
        raise ValueError(f"datasets.{name}.{key}: expected a number {rng}, got {spec.get(key)!r}")
    return v


def _bool(name: str, spec: dict, key: str, default: bool) -> bool:
    v = spec.get(key, default)
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"datasets.{name}.{key}: expected true or false, got {v!r}")
    return bool(v)


def _str(name: str, spec: dict, key: str, default: str | None = None) -> str:
    v = spec.get(key, default)
    if not isinstance(v, (str, Path)) or str(v) == "":
        raise ValueError(f"datasets.{name}.{key}: expected a path or name, got {v!r}")
    return str(v)


def _did_you_mean(word: Any, options) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ----------------------------------------------------------------------------- entry points


def check_spec(name: str, spec: Any, *, offline: bool = False, datasets: dict | None = None) -> Source:
    """Check one ``datasets.<name>`` block (source, keys, value types) and return its source.

    Raises:
        ValueError: ``datasets.<name>[.<key>]: ...`` (one line).
    """
    if not isinstance(spec, dict):
        raise ValueError(f"datasets.{name}: expected a mapping, got {type(spec).__name__}")
    source = spec.get("source")
    if source not in REGISTRY:
        raise ValueError(f"datasets.{name}.source: expected one of {', '.join(REGISTRY)}, got {source!r}"
                         f"{_did_you_mean(source, REGISTRY)}")
    src = REGISTRY[source]
    allowed = src.allowed()
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"datasets.{name}.{unknown[0]}: unknown key for source {source}"
                         f"{_did_you_mean(unknown[0], allowed)} (allowed: {', '.join(sorted(allowed))})")
    if src.subset:
        _int(name, spec, "n_train", None, allow_none=True)
        _int(name, spec, "n_test", None, allow_none=True)
        _int(name, spec, "subset_seed", None, minimum=0, allow_none=True)
    _bool(name, spec, "normalize", src.normalize)
    src.check(name, spec, offline=offline, datasets=datasets)
    return src


def prepared_info(path: str | Path, spec: dict) -> dict | None:
    """Shape info of a dataset file already prepared from the same ``spec`` (current format), else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        import h5py

        with h5py.File(path, "r") as f:
            a = f.attrs
            if a.get("format") != FORMAT:  # an older format is prepared again
                return None
            stored = a.get("spec")
            stored = stored.decode() if isinstance(stored, bytes) else stored
            if stored != json.dumps(spec, sort_keys=True, default=str):
                return None
            return {"in_shape": tuple(int(s) for s in a["in_shape"]), "out_dim": int(a["out_dim"]),
                    "n_train": int(a["n_train"]), "exact": True}
    except Exception:  # noqa: BLE001 - an unreadable prepared file is simply not used
        return None


def dataset_info(name: str, spec: dict, *, check_files: bool = False, data_dir: str | Path | None = None,
                 offline: bool = False, datasets: dict | None = None) -> dict:
    """Input shape, output count and training-set size of a configured dataset, without loading it.

    A file in ``data_dir`` prepared from the same spec is read for its attributes (a SLURM
    node re-parsing the workflow may lack the raw files); otherwise the source answers
    (``check_files``: it also sniffs its files). ``n_train`` of a subset source is applied.

    Returns:
        ``{"in_shape": tuple, "out_dim": int, "n_train": int | None, "exact": bool}``
        (``exact`` False when a count is assumed, e.g. the classes of an unchecked ``idx``).

    Raises:
        ValueError: ``datasets.<name>.<key>: ...`` (one line).
    """
    src = check_spec(name, spec, offline=offline, datasets=datasets)
    if data_dir is not None:
        info = prepared_info(Path(data_dir) / f"{name}.h5", spec)
        if info is not None:
            return info
    info = dict(src.info(name, spec, check_files=check_files, datasets=datasets))
    n_sub = spec.get("n_train") if src.subset else None
    if n_sub is not None:
        if info["n_train"] is not None and n_sub > info["n_train"]:
            raise ValueError(f"datasets.{name}.n_train: expected <= {info['n_train']} (the train split size), "
                             f"got {n_sub}")
        info["n_train"] = int(n_sub)
    return info
