"""Config: validation, sweep expansion, run names and seeds.

What it computes: from a config dict (config.yaml) the list of runs the workflow trains.
Every experiment is the ``defaults`` block deep-merged with the experiment's overrides;
every list in it is a sweep axis and the runs are the cartesian product of the axes.
Keys whose value is naturally a list (``model.hidden``, ``optimizer.betas``,
``training.checkpoints.steps``) sweep with a list of lists. Each run gets a readable name
built from its swept values (``lr0.01_momentum0.9``; ``base`` when nothing is swept) and
a fully resolved config slice, which the workflow passes to its jobs through ``params:``.

Validation happens before any job (``rules/common.smk`` calls :func:`validate` while
Snakemake parses the workflow, so ``snakemake -n`` already reports it) and every failure is
a :class:`ConfigError` whose text is **one line** ``config: <key>: <what was expected>``,
where ``<key>`` is where the value was written (``experiments.lr.optimizer.lr`` or
``defaults.optimizer.lr``); a problem of one run of a sweep ends with ``(in run
<experiment>/<run>)``. The passes, in order:

1. structure: sweep lists (not empty, not lists of mappings, list-valued keys swept only
   with a list of lists), experiment and dataset names (they become file names and
   wildcards: letters, digits, ``_``, ``-``);
2. ``schemas/config.schema.yaml`` on the config with every sweep axis collapsed to its
   first value (unknown keys anywhere, types, ranges, enums), then on every resolved run,
   so a bad value inside a sweep list is named too;
3. datasets: keys and value types per source (``pathdep.data``'s own checks), and with
   ``check_files=True`` the source files themselves without loading them: an ``idx`` root
   must hold the four IDX files with the right magic numbers (headers read; the small
   label files read whole, which gives the class count and the train-set size); a
   ``torchvision`` root with ``download: false`` must hold the files torchvision looks
   for. A dataset already prepared in ``data_dir`` from the same spec is not re-checked
   (a SLURM job re-parses the workflow on a node that may lack the raw files);
4. semantics per run: a known dataset, model width from ``n_params``/``depth``, the
   optimizer block (``pathdep.core.optim.optimizer_from_config``), the model builds for the
   dataset's input shape (built on the meta device: no memory, no time),
   ``batch_size`` <= training-set size, swaps fit in an epoch, checkpoint modes,
   perturbation target/kind pairs, hyperparameter perturbations that exist and stay in
   range, and sphere perturbations that fit on their spheres.

Sphere perturbations (``perturbation.kind: sphere``): a chord ``c`` fits on a sphere of
radius ``r`` only if ``c <= 2r``. Relative chords (``c = eps r``) need ``eps <= 2``.
Absolute chords need the actual radius of every tensor (or of the whole vector, for
``granularity: global``) of the reference initialisation. Only for ``init.scheme:
hyperspherical`` is that radius fixed (``sqrt(D) sigma``, ``sigma^2 = 2/fan_in``); for the
other schemes ``|w_p|`` is random (a bias of 10 entries under Kaiming-normal has
``|w_p|/(sqrt(D) sigma)`` anywhere in roughly [0.5, 1.5]), so the validation does not
approximate: it computes the run's actual reference initialisation, exactly as
``pathdep.stages.train.init_ensemble`` does (same model, dtype, scheme and ``run_seeds`` seed; a
few milliseconds for the default MLP, cached per distinct model), and checks every group.
The input shape and class count come from the prepared file when there is one, else from
the source (exact for every source when ``check_files`` is on; without it an ``idx``
dataset without ``classes`` is assumed to have 10 classes). ``init_ensemble`` keeps its
own check (``pathdep.core.init.perturb``), which runs for every member before ``init.h5`` is
written, so a mismatch that slips through still writes nothing.

Seeds: every random choice derives from ``seed`` through ``numpy.random.SeedSequence``
(:func:`run_seeds`), so the reference initialisation is shared by all runs of an experiment
with the same seed (an epsilon sweep shares its baseline) and recorded in every output.

``python -m pathdep.config config.yaml`` checks a config file the same way (files too) and
prints one line; unlike Snakemake's own loader it names the line of a YAML syntax error.

How it was checked: ``tests/test_config.py`` (sweep products, names, merge, seeds, model
widths, the sphere radii against ``init_ensemble``) and ``tests/test_bad_input.py`` (every
bad-input case through Snakemake: non-zero exit, one line naming the key, nothing written).
"""

from __future__ import annotations

import copy
import difflib
import functools
import gzip
import itertools
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "config.schema.yaml"

# Keys whose value is a list by nature: they sweep only with a list of lists.
LIST_VALUED = {("model", "hidden"), ("optimizer", "betas"), ("training", "checkpoints", "steps"),
               ("analysis", "lambdas"), ("analysis", "checkpoints"), ("analysis", "align_checkpoints")}

# Short names used in run names for swept keys (the last path component otherwise).
SHORT = {("perturbation", "epsilon"): "eps", ("optimizer", "weight_decay"): "wd",
         ("optimizer", "name"): "opt", ("model", "kind"): "model", ("model", "hidden"): "hidden"}

# Built-in defaults under everything the config gives.
BASE_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "dataset": None,
    "model": {"kind": "mlp", "hidden": [100], "activation": "relu", "bias": True},
    "init": {"scheme": "kaiming_normal"},
    "perturbation": {"target": "init", "kind": "gaussian", "epsilon": 0.01, "relative": False,
                     "granularity": "tensor", "members": 10},
    "optimizer": {"name": "sgd", "lr": 0.01},
    "training": {"epochs": 1, "max_steps": None, "batch_size": 64, "dtype": "float32",
                 "save_state_every": 200, "checkpoints": {"mode": "log", "count": 40}},
    "metrics": {"eval_train": 10000, "eval_test": 10000, "batch_size": 2000},
    "analysis": {},
}

# Experiment and dataset names become directory names and wildcards (rules/common.smk).
NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
RUN_RE = re.compile(r"[A-Za-z0-9_.+-]+")

# torchvision datasets: (class, input shape, classes, train-set size).
_TV = {
    "mnist": ("MNIST", (1, 28, 28), 10, 60000),
    "fashion_mnist": ("FashionMNIST", (1, 28, 28), 10, 60000),
    "cifar10": ("CIFAR10", (3, 32, 32), 10, 50000),
}
_TV_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                   "t10k-labels-idx1-ubyte")
_TV_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
_DIGITS_N = 1797  # sklearn.datasets.load_digits
_TEACHER_DEFAULTS = {"d_in": 10, "d_out": 1, "n_train": 2000}
# Optimiser hyperparameters that must stay below 1 (a hyperparameter perturbation scales them).
_BELOW_ONE = {"momentum", "dampening", "beta1", "beta2", "alpha"}


class ConfigError(ValueError):
    """A config problem, reported as one line naming the key (newlines are folded)."""

    def __init__(self, message: str):
        super().__init__(re.sub(r"\s*[\r\n]+\s*", " ", str(message)).strip())


def load_config(path: str | Path) -> dict:
    """Read a YAML config file; errors name the file (and the line of a syntax error)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        raise ConfigError(f"{path}: not valid YAML{where}" + (f" ({problem})" if problem else "")) from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {_got(cfg)}")
    return cfg


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    """The parsed schema (parsed once: pure-Python YAML parsing of it costs ~15 ms). Not mutated."""
    return yaml.load(SCHEMA_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ----------------------------------------------------------------------------- messages

_JSON_TYPES = {"object": "a mapping", "array": "a list", "number": "a number", "integer": "an integer",
               "string": "a string", "boolean": "true or false", "null": "null"}


def _got(v: Any) -> str:
    """``string 'fast'``, ``null``, ``list [1, 2]``: a value for a one-line message."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    kind = {str: "string", int: "integer", float: "number", list: "list", dict: "mapping"}.get(type(v), type(v).__name__)
    r = repr(v)
    return f"{kind} {r if len(r) <= 80 else r[:77] + '...'}"


def _hint(v: Any) -> str:
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return ""
        if re.fullmatch(r"[+-]?\d+[eE][+-]?\d+", v.strip()):
            return f" (YAML 1.1 reads {v} as a string: write the mantissa with a dot, e.g. 1.0e-3)"
        return " (a quoted number is a string: remove the quotes)"
    return ""


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _schema_error(err, key_of: Callable[[tuple], str]) -> ConfigError:
    path = tuple(str(p) for p in err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        name = extra[0] if extra else "?"
        hint = _did_you_mean(name, allowed)
        if not path and "." in name:
            hint = " (a key cannot contain '.'; nest it, e.g. defaults: {optimizer: {lr: ...}})" + hint
        return ConfigError(f"config: {key_of(path + (name,))}: unknown key{hint} (expected one of: {', '.join(allowed)})")
    if v == "required":
        m = re.match(r"'(.+)' is a required property", err.message)
        missing = m.group(1) if m else "?"
        return ConfigError(f"config: {key_of(path + (missing,))}: required key missing")
    key = key_of(path) if path else "top level"
    got = _got(err.instance)
    if v == "enum":
        opts = ", ".join(str(o) for o in err.validator_value)
        hint = _did_you_mean(err.instance, err.validator_value)
        return ConfigError(f"config: {key}: expected one of {opts}; got {got}{hint}")
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        return ConfigError(f"config: {key}: expected {' or '.join(_JSON_TYPES.get(t, t) for t in want)}, "
                           f"got {got}{_hint(err.instance)}")
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return ConfigError(f"config: {key}: expected a number {word} {err.validator_value}, got {err.instance!r}")
    if v in ("minProperties", "minItems"):
        n = err.validator_value
        what = ("entry" if n == 1 else "entries") if v == "minProperties" else ("item" if n == 1 else "items")
        return ConfigError(f"config: {key}: expected at least {n} {what}, got {got}")
    if v == "maxItems":
        return ConfigError(f"config: {key}: expected at most {err.validator_value} items, got {got}")
    return ConfigError(f"config: {key}: {err.message}")


def _check(instance: Any, schema: dict, key_of: Callable[[tuple], str]) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance),
                    key=lambda e: (len(list(e.absolute_path)), str(list(e.absolute_path))))
    if errors:
        raise _schema_error(errors[0], key_of)


_KEY_MSG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): (.*)$", re.S)


def _wrap(exc: Exception, at: Callable[..., str]) -> ConfigError:
    """A package ``ValueError('optimizer.lr: ...')`` as ``ConfigError('config: <origin>: ...')``."""
    m = _KEY_MSG.match(str(exc))
    if m:
        return ConfigError(f"config: {at(*m.group(1).split('.'))}: {m.group(2)}")
    return ConfigError(f"config: {at()}: {exc}")


# ----------------------------------------------------------------------------- sweeps


def _is_axis(path: tuple[str, ...], value: Any) -> bool:
    if not isinstance(value, list):
        return False
    if path in LIST_VALUED:
        return len(value) > 0 and all(isinstance(v, list) for v in value)
    return True


def _axes(d: dict, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], list]]:
    out = []
    for k, v in d.items():
        p = (*prefix, k)
        if isinstance(v, dict):
            out.extend(_axes(v, p))
        elif _is_axis(p, v):
            out.append((p, v))
    return out


def _check_sweeps(block: Any, where: str, prefix: tuple[str, ...] = ()) -> None:
    """Sweep lists that cannot be meant: empty, lists of mappings, mixed list-valued sweeps."""
    if not isinstance(block, dict):
        return
    for k, v in block.items():
        p = (*prefix, k)
        key = ".".join((where, *map(str, p)))
        if isinstance(v, dict):
            _check_sweeps(v, where, p)
        elif isinstance(v, list):
            if p in LIST_VALUED:
                if any(isinstance(x, list) for x in v) and not all(isinstance(x, list) for x in v):
                    raise ConfigError(f"config: {key}: expected a list of values, or a list of lists to sweep it "
                                      f"(e.g. [[100], [100, 100]]); got a mix, {_got(v)}")
                continue
            if p[:1] == ("analysis",):
                continue
            if not v:
                raise ConfigError(f"config: {key}: empty sweep list (give a value or a non-empty list of values)")
            if any(isinstance(x, dict) for x in v):
                raise ConfigError(f"config: {key}: a list of mappings cannot be swept; sweep the values inside "
                                  f"(e.g. {key}.<key>: [a, b]) or use one experiment per block")


def _set(d: dict, path: tuple[str, ...], value: Any) -> None:
    for k in path[:-1]:
        d = d.setdefault(k, {})
    d[path[-1]] = value


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "T" if v else "F"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "-".join(_fmt(x) for x in v)
    return str(v)


def _collapse(d: Any, prefix: tuple[str, ...] = ()) -> Any:
    """Replace every sweep axis by its first element (for the structural schema pass)."""
    if not isinstance(d, dict):
        return d
    out = {}
    for k, v in d.items():
        p = (*prefix, k)
        if isinstance(v, dict):
            out[k] = _collapse(v, p)
        elif _is_axis(p, v) and len(v) > 0:
            out[k] = v[0]
        else:
            out[k] = v
    return out


def _depth_in(block: Any, path: tuple[str, ...]) -> int:
    """How many leading components of ``path`` exist in ``block`` (nested dicts)."""
    n = 0
    for k in path:
        if not isinstance(block, dict) or k not in block:
            break
        block, n = block[k], n + 1
    return n


def origin(config: dict, exp: str, *path: str) -> str:
    """Where a key of experiment ``exp``'s runs was written, as a dotted config path.

    The experiment's own block wins over ``defaults`` (as in the merge); a key set in
    neither is named under the experiment. For a key that is missing (a required
    sibling), the block holding more of its parents is named.
    """
    dotted = ".".join(path)
    if not path:
        return f"experiments.{exp}"
    exp_block = (config.get("experiments") or {}).get(exp)
    defaults = config.get("defaults")
    de, dd = _depth_in(exp_block, path), _depth_in(defaults, path)
    if path == ("seed",) and de == 0 and dd == 0 and "seed" in config:
        return "seed"
    if dd > de:
        return f"defaults.{dotted}"
    return f"experiments.{exp}.{dotted}"


def expand_experiment(config: dict, exp: str) -> list[dict]:
    """Resolved run configs of one experiment (cartesian product of its sweep axes)."""
    top = {k: config[k] for k in ("seed",) if k in config}
    merged = deep_merge(deep_merge(BASE_DEFAULTS, top), config.get("defaults", {}))
    merged = deep_merge(merged, config["experiments"][exp] or {})
    axes = _axes(merged)
    runs = []
    for combo in itertools.product(*[vals for _, vals in axes]) if axes else [()]:
        run = copy.deepcopy(merged)
        parts = []
        for (path, _), value in zip(axes, combo):
            _set(run, path, value)
            parts.append(f"{SHORT.get(path, path[-1])}{_fmt(value)}")
        name = "_".join(parts) if parts else "base"
        run["experiment"] = exp
        run["run"] = name.replace("/", "-").replace(" ", "")
        run["swept"] = {".".join(p): v for (p, _), v in zip(axes, combo)}
        runs.append(run)
    return runs


# ----------------------------------------------------------------------------- datasets


def _check_dataset_spec(name: str, spec: dict, offline: bool) -> None:
    """Keys and value types of one ``datasets.<name>`` block (pathdep.data's own checks)."""
    from pathdep.data import sources as D

    try:
        source = D._check_keys(name, spec)
        if source != "teacher_student":
            D._int(name, spec, "n_train", None, allow_none=True)
            D._int(name, spec, "n_test", None, allow_none=True)
            D._int(name, spec, "subset_seed", None, minimum=0, allow_none=True)
        if "normalize" in spec:
            D._bool(name, spec, "normalize", True)
        if source == "idx":
            D._str(name, spec, "root")
            classes = spec.get("classes")
            if classes is not None and (not isinstance(classes, list) or len(classes) < 2
                                        or not all(isinstance(c, str) for c in classes)):
                raise ValueError(f"datasets.{name}.classes: expected a list of at least 2 class names, got {classes!r}")
        elif source == "torchvision":
            if spec.get("dataset") not in _TV:
                raise ValueError(f"datasets.{name}.dataset: expected one of {', '.join(_TV)}; got {_got(spec.get('dataset'))}"
                                 f"{_did_you_mean(spec.get('dataset'), _TV)}")
            D._str(name, spec, "root", "data/")
            if D._bool(name, spec, "download", False) and offline:
                raise ValueError(f"datasets.{name}.download: true, but the config says offline: true")
        elif source == "sklearn_digits":
            D._float(name, spec, "test_fraction", 0.25, 0.0, 1.0, open_lo=True)
            D._int(name, spec, "seed", 0, minimum=0)
            D._bool(name, spec, "stratify", True)
        else:
            p = {k: spec.get(k) for k in ("d_in", "d_out", "teacher_hidden", "n_train", "n_test", "noise", "seed")}
            for k in ("d_in", "d_out", "teacher_hidden", "n_train", "n_test"):
                if p[k] is not None:
                    D._int(name, p, k)
            if p["noise"] is not None:
                D._float(name, p, "noise", 0.0, 0.0)
            if p["seed"] is not None:
                D._int(name, p, "seed", 0, minimum=0)
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None


def _prepared_info(path: Path, spec: dict) -> dict | None:
    """Shape info of a dataset already prepared from the same spec, else None."""
    if not path.is_file():
        return None
    try:
        import h5py

        with h5py.File(path, "r") as f:
            a = f.attrs
            stored = a.get("spec")
            stored = stored.decode() if isinstance(stored, bytes) else stored
            if stored != json.dumps(spec, sort_keys=True, default=str):
                return None
            return {"in_shape": tuple(int(s) for s in a["in_shape"]), "out_dim": int(a["out_dim"]),
                    "n_train": int(a["n_train"]), "exact": True}
    except Exception:  # noqa: BLE001 - an unreadable prepared file is simply not used
        return None


def _idx_file(name: str, root: Path, base: str) -> Path:
    for cand in (root / base, root / (base + ".gz")):
        if cand.is_file():
            return cand
    raise ConfigError(f"config: datasets.{name}.root: {root} has no {base} or {base}.gz")


def _idx_header(name: str, path: Path, expected_magic: int) -> tuple[int, ...]:
    """Shape from an IDX header (magic checked; plain files checked for truncation)."""
    from pathdep.data.sources import _describe_magic

    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = f.read(4)
            ndim = head[3] if len(head) == 4 else 0
            dims = f.read(4 * ndim)
    except (OSError, EOFError) as exc:
        raise ConfigError(f"config: datasets.{name}.root: {path}: corrupt or truncated gzip stream ({exc})") from None
    magic = int.from_bytes(head, "big") if len(head) == 4 else None
    if magic != expected_magic:
        got = f"0x{magic:08X}" if magic is not None else f"only {len(head)} bytes"
        raise ConfigError(f"config: datasets.{name}.root: {path}: not the expected IDX file (magic number {got}, "
                          f"expected 0x{expected_magic:08X}, {_describe_magic(expected_magic)})")
    if len(dims) < 4 * ndim:
        raise ConfigError(f"config: datasets.{name}.root: {path}: truncated IDX header")
    shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
    if not gz:
        want = 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64))
        have = path.stat().st_size
        if have != want:
            raise ConfigError(f"config: datasets.{name}.root: {path}: {'truncated' if have < want else 'over-long'} IDX file "
                              f"(header says {'x'.join(map(str, shape))} bytes of data, file has {have - 4 - 4 * ndim})")
    return shape


def _idx_info(name: str, spec: dict) -> dict:
    from pathdep.data.sources import _IDX_FILES, read_idx

    root = Path(spec["root"])
    if not root.is_dir():
        raise ConfigError(f"config: datasets.{name}.root: {root} is not a directory (expected the folder holding "
                          f"train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...)")
    shapes, labels = {}, {}
    for key, (base, magic) in _IDX_FILES.items():
        path = _idx_file(name, root, base)
        if key.endswith("labels"):
            try:
                labels[key] = read_idx(path, expected_magic=magic)
            except ValueError as exc:
                raise ConfigError(f"config: datasets.{name}.root: {exc}") from None
        else:
            shapes[key] = _idx_header(name, path, magic)
    for split in ("train", "test"):
        n_img, n_lab = shapes[f"{split}_images"][0], len(labels[f"{split}_labels"])
        if n_img != n_lab:
            raise ConfigError(f"config: datasets.{name}.root: {root / _IDX_FILES[f'{split}_labels'][0]}(.gz): "
                              f"{n_lab} labels for {n_img} images")
    top = int(max(labels["train_labels"].max(initial=0), labels["test_labels"].max(initial=0)))
    classes = spec.get("classes")
    if classes is not None and top >= len(classes):
        raise ConfigError(f"config: datasets.{name}.classes: {len(classes)} names but the labels go up to {top}")
    _, h, w = shapes["train_images"]
    return {"in_shape": (1, h, w), "out_dim": len(classes) if classes else top + 1,
            "n_train": len(labels["train_labels"]), "exact": True}


def _torchvision_files(name: str, spec: dict) -> None:
    which = spec["dataset"]
    root = Path(spec.get("root", "data/"))
    cls = _TV[which][0]
    if which == "cifar10":
        folder, files = root / "cifar-10-batches-py", _TV_CIFAR_FILES
    else:
        folder, files = root / cls / "raw", _TV_MNIST_FILES
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise ConfigError(f"config: datasets.{name}.root: {which} not found under {root} and download is false "
                          f"({folder / missing[0]} is missing); set download: true, or point root at the folder "
                          f"that holds {folder.relative_to(root)}/")


def dataset_info(name: str, spec: dict, *, check_files: bool = False, data_dir: str | Path | None = None,
                 offline: bool = False) -> dict:
    """Input shape, class/output count and training-set size of a configured dataset.

    Nothing is loaded: a prepared file in ``data_dir`` made from the same spec is read for
    its attributes; otherwise the shape comes from the source (``check_files``: the IDX
    headers and label files, the torchvision files' presence).

    Returns:
        ``{"in_shape": tuple, "out_dim": int, "n_train": int | None, "exact": bool}``
        (``exact`` False when the class count of an ``idx`` source is assumed).

    Raises:
        ConfigError: a bad spec, or (``check_files``) missing or wrong source files.
    """
    _check_dataset_spec(name, spec, offline)
    if data_dir is not None:
        info = _prepared_info(Path(data_dir) / f"{name}.h5", spec)
        if info is not None:
            return info
    src = spec["source"]
    if src == "idx":
        if check_files:
            info = _idx_info(name, spec)
        else:
            classes = spec.get("classes")
            info = {"in_shape": (1, 28, 28), "out_dim": len(classes) if classes else 10, "n_train": None,
                    "exact": classes is not None}
    elif src == "torchvision":
        if check_files and not spec.get("download", False):
            _torchvision_files(name, spec)
        _, shape, classes, n = _TV[spec["dataset"]]
        info = {"in_shape": shape, "out_dim": classes, "n_train": n, "exact": True}
    elif src == "sklearn_digits":
        # sklearn's train_test_split: n_train = floor((1 - test_fraction) * n)
        frac = float(spec.get("test_fraction", 0.25))
        info = {"in_shape": (1, 8, 8), "out_dim": 10, "n_train": int(math.floor((1.0 - frac) * _DIGITS_N)),
                "exact": True}
    else:
        p = {k: spec.get(k) if spec.get(k) is not None else v for k, v in _TEACHER_DEFAULTS.items()}
        return {"in_shape": (int(p["d_in"]),), "out_dim": int(p["d_out"]), "n_train": int(p["n_train"]), "exact": True}
    n_sub = spec.get("n_train")
    if n_sub is not None:
        if info["n_train"] is not None and n_sub > info["n_train"]:
            raise ConfigError(f"config: datasets.{name}.n_train: expected <= {info['n_train']} (the train split "
                              f"size), got {n_sub}")
        info["n_train"] = int(n_sub)
    return info


def dataset_shape(name: str, spec: dict) -> tuple[tuple[int, ...], int]:
    """(input shape, number of outputs) of a configured dataset, without loading it."""
    info = dataset_info(name, spec)
    return info["in_shape"], info["out_dim"]


# ----------------------------------------------------------------------------- models


def resolve_model(model: dict, in_shape, out_dim: int, where: str = "model") -> dict:
    """Fill ``model.hidden`` from ``width``/``depth``/``n_params`` (constant-parameter depth sweeps).

    ``n_params`` (with ``depth``, default ``len(hidden)``) picks the width whose parameter
    count, counted from the built model, is closest; ``width``/``depth`` alone give
    ``[width] * depth``. ``where`` is the config path of the model block, for messages.

    Raises:
        ConfigError: ``<where>.n_params`` when no integer width comes within 5%, or
            width/depth/n_params on a model kind that has no hidden widths.
    """
    from pathdep.core.models import width_for_param_count

    m = dict(model)
    sizing = [k for k in ("n_params", "width", "depth") if k in m]
    if m.get("kind", "mlp") != "mlp":
        if sizing:
            raise ConfigError(f"config: {where}.{sizing[0]}: only model kind mlp has hidden widths to size, "
                              f"got kind {m.get('kind')!r}")
        return m
    in_dim = int(np.prod(in_shape))
    if "n_params" in m:
        depth = int(m.get("depth", len(m.get("hidden", [100]))))
        try:
            width = width_for_param_count(in_dim, depth, out_dim, int(m["n_params"]), bias=m.get("bias", True))
        except ValueError as exc:
            msg = re.sub(r"^model\.\w+: ", "", str(exc))
            raise ConfigError(f"config: {where}.n_params: {msg} (input {in_dim}, outputs {out_dim})") from None
        m["hidden"] = [width] * depth
    elif "width" in m or "depth" in m:
        m["hidden"] = [int(m.get("width", 100))] * int(m.get("depth", 1))
    return m


def _build_meta(model: dict, in_shape, out_dim: int, at, ds: str = "?") -> None:
    """Build the model on the meta device (shapes only) to catch a model/dataset mismatch."""
    import torch

    from pathdep.core.models import build_model

    try:
        with torch.device("meta"):
            build_model(model, tuple(in_shape), out_dim)
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, ValueError) and _KEY_MSG.match(first):
            raise _wrap(ValueError(first), at) from None
        raise ConfigError(f"config: {at('model', 'kind')}: {model.get('kind')} cannot take the inputs of dataset "
                          f"{ds!r}, shape {tuple(in_shape)} ({first})") from None


@functools.lru_cache(maxsize=32)
def _init_norms(key: str) -> tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...], float]:
    """Per-tensor and global norms of a run's reference initialisation (as init_ensemble makes it)."""
    import torch

    from pathdep.core.init import init_params
    from pathdep.core.models import Layout, build_model

    d = json.loads(key)
    dtype = torch.float64 if d["dtype"] == "float64" else torch.float32
    with torch.random.fork_rng(devices=[]):  # module construction draws from torch's global RNG
        module = build_model(d["model"], tuple(d["in_shape"]), d["out_dim"]).to(dtype)
    layout = Layout.from_module(module)
    w0 = init_params(module, layout, d["scheme"], d["seed"]).to(dtype)
    x = w0.detach().to(torch.float64).cpu().numpy()
    norms = tuple(float(np.linalg.norm(x[o:o + s])) for o, s in zip(layout.offsets, layout.sizes))
    return tuple(layout.names), tuple(layout.sizes), norms, float(np.linalg.norm(x))


def _sphere_checks(run: dict, info: dict, at) -> None:
    pert = run["perturbation"]
    if pert.get("target", "init") != "init" or pert.get("kind") != "sphere":
        return
    eps = float(pert.get("epsilon", 0.0))
    relative = bool(pert.get("relative", False))
    if relative and eps > 2:
        raise ConfigError(f"config: {at('perturbation', 'epsilon')}: a relative sphere perturbation moves at most "
                          f"the sphere's diameter (epsilon <= 2), got {eps:g}")
    if eps == 0:
        return
    from pathdep.core.context import run_seeds

    seed = run_seeds(run)["init"]
    key = json.dumps({"model": run["model"], "in_shape": list(info["in_shape"]), "out_dim": info["out_dim"],
                      "scheme": run["init"]["scheme"], "seed": seed, "dtype": run["training"]["dtype"]}, sort_keys=True)
    names, sizes, norms, total = _init_norms(key)
    if pert.get("granularity", "tensor") == "global":
        groups = [("<all parameters>", sum(sizes), total)]
    else:
        groups = list(zip(names, sizes, norms))
    for name, size, r in groups:
        if r == 0.0:
            raise ConfigError(f"config: {at('perturbation', 'kind')}: tensor '{name}' of the reference init is all "
                              f"zero, so it has no sphere to stay on; use kind gaussian or granularity global")
        c = eps * r if relative else eps
        if size == 1 and c < 2.0 * r:  # as pathdep.core.init.perturb: only the sign flip (c = 2r) exists
            raise ConfigError(f"config: {at('perturbation', 'granularity')}: tensor '{name}' has one element; on its "
                              f"0-sphere a sphere perturbation can only flip the sign; use granularity global")
    if relative:
        return
    name, size, r = min(groups, key=lambda g: g[2])
    if eps > 2.0 * r * (1.0 + 1e-12):
        scope = "the whole parameter vector" if name == "<all parameters>" else f"tensor '{name}' ({size} entries)"
        raise ConfigError(f"config: {at('perturbation', 'epsilon')}: sphere chord {eps:g} exceeds the diameter "
                          f"2|w0| = {2 * r:.6g} of {scope} in the reference init (init.scheme {run['init']['scheme']}, "
                          f"seed {run.get('seed', 0)}); use epsilon <= {2 * r:.6g}, relative: true or granularity: global")


# ----------------------------------------------------------------------------- validation


def validate(config: dict, *, check_files: bool = False, data_dir: str | Path | None = None) -> dict[str, list[dict]]:
    """Check a config and return ``{experiment: [resolved run, ...]}``.

    Args:
        config: the config mapping (as Snakemake loaded it).
        check_files: also check the dataset source files (without loading them); the
            workflow turns this on in its main process.
        data_dir: folder of prepared datasets (``results/data``); a dataset prepared there
            from the same spec is not re-checked against its source and gives exact shapes.

    Raises:
        ConfigError: one line, ``config: <key>: <what was expected>``.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"config: top level: expected a mapping of keys, got {_got(config)}")
    schema = _schema()
    for where in ("defaults",):
        _check_sweeps(config.get(where), where)
    if isinstance(config.get("experiments"), dict):
        for exp, block in config["experiments"].items():
            _check_sweeps(block, f"experiments.{exp}")
    collapsed = dict(config)
    if isinstance(config.get("experiments"), dict):
        collapsed["experiments"] = {k: _collapse(v) if v is not None else {} for k, v in config["experiments"].items()}
    if isinstance(config.get("defaults"), dict):
        collapsed["defaults"] = _collapse(config["defaults"])
    _check(collapsed, schema, lambda p: ".".join(p))
    datasets = config["datasets"]
    for name in datasets:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ConfigError(f"config: datasets.{name}: dataset names are strings of letters, digits, '_' "
                              f"and '-' (the name becomes results/data/<name>.h5), got {_got(name)}")
    for exp in config["experiments"]:
        if not isinstance(exp, str) or not NAME_RE.fullmatch(exp):
            raise ConfigError(f"config: experiments.{exp}: experiment names are strings of letters, digits, "
                              f"'_' and '-' (the name becomes the folder results/<name>/), got {_got(exp)}")
    run_schema = dict(schema["$defs"]["run"])
    run_schema["$defs"] = schema["$defs"]
    infos: dict[str, dict] = {}
    offline = bool(config.get("offline", False))
    out: dict[str, list[dict]] = {}
    for exp in config["experiments"]:
        def at(*path: str, _exp=exp) -> str:
            return origin(config, _exp, *path)

        runs = expand_experiment(config, exp)
        names: set[str] = set()
        for run in runs:
            ds = run.get("dataset")
            if isinstance(ds, str) and ds in datasets and ds not in infos:  # dataset-level errors: no run suffix
                infos[ds] = dataset_info(ds, datasets[ds], check_files=check_files, data_dir=data_dir, offline=offline)
            try:
                _check_run(run, run_schema, at, datasets, infos)
            except ConfigError as exc:
                if len(runs) > 1:  # which run of the sweep (a key from defaults may clash with one swept value)
                    raise ConfigError(f"{exc} (in run {exp}/{run['run']})") from None
                raise
            if not RUN_RE.fullmatch(run["run"]):
                raise ConfigError(f"config: experiments.{exp}: run name {run['run']!r} (from the swept values "
                                  f"{', '.join(run['swept'])}) may hold letters, digits and '_.+-' only")
            if run["run"] in names:
                raise ConfigError(f"config: experiments.{exp}: two runs share the name {run['run']!r} "
                                  f"(a sweep list repeats a value?)")
            names.add(run["run"])
            run["dataset_spec"] = datasets[ds]
            run["device"] = config.get("device", "auto")
        out[exp] = runs
    return out


def _check_run(run: dict, run_schema: dict, at, datasets: dict, infos: dict) -> None:
    """Schema, dataset reference, model, optimizer and perturbation checks of one resolved run."""
    body = {k: v for k, v in run.items() if k not in ("experiment", "run", "swept")}
    _check(body, run_schema, lambda p: at(*p))
    ds = run.get("dataset")
    if ds is None:
        raise ConfigError(f"config: {at('dataset')}: no dataset given (set defaults.dataset to one of "
                          f"{', '.join(map(str, datasets))})")
    if ds not in datasets:
        raise ConfigError(f"config: {at('dataset')}: unknown dataset {ds!r}{_did_you_mean(ds, datasets)} "
                          f"(expected one of the keys of datasets: {', '.join(map(str, datasets))})")
    info = infos[ds]
    run["model"] = resolve_model(run["model"], info["in_shape"], info["out_dim"],
                                 at("model", "n_params").rsplit(".", 1)[0])
    _semantic_checks(run, at, info, ds)
    _build_meta(run["model"], info["in_shape"], info["out_dim"], at, ds)
    _sphere_checks(run, info, at)


def _semantic_checks(run: dict, at, info: dict, ds: str) -> None:
    from pathdep.core.optim import Optimizer, optimizer_from_config

    pert = run["perturbation"]
    target, kind = pert.get("target", "init"), pert.get("kind", "gaussian")
    if target == "init" and kind not in ("gaussian", "sphere"):
        raise ConfigError(f"config: {at('perturbation', 'kind')}: target init expects gaussian or sphere, got {kind!r}")
    if target == "schedule" and kind not in ("shuffle", "swap"):
        raise ConfigError(f"config: {at('perturbation', 'kind')}: target schedule expects shuffle or swap, got {kind!r}")
    opt = run["optimizer"]
    if opt.get("nesterov") and not opt.get("momentum", 0) > 0:
        raise ConfigError(f"config: {at('optimizer', 'nesterov')}: Nesterov momentum requires momentum > 0, "
                          f"got momentum {opt.get('momentum', 0)}")
    try:
        _, hp = optimizer_from_config(opt)
    except ValueError as exc:
        raise _wrap(exc, at) from None
    if target == "hyperparameter":
        name = opt.get("name", "sgd")
        hps = Optimizer(name).hparam_names
        h = pert.get("hparam")
        if h not in hps:
            raise ConfigError(f"config: {at('perturbation', 'hparam')}: expected one of {', '.join(hps)} "
                              f"(the hyperparameters of optimizer {name}); got {_got(h)}{_did_you_mean(h, hps)}")
        eps = float(pert.get("epsilon", 0.0))
        if hp[h] == 0 and eps > 0:
            raise ConfigError(f"config: {at('perturbation', 'hparam')}: {h} is 0 for optimizer {name}, and a "
                              f"hyperparameter perturbation scales it (member k: {h} * (1 + epsilon k/N)); set "
                              f"optimizer.{h} > 0")
        top = hp[h] * (1.0 + eps)
        if h in _BELOW_ONE and top >= 1.0:
            raise ConfigError(f"config: {at('perturbation', 'epsilon')}: the last member's {h} would be "
                              f"{hp[h]:g} * (1 + {eps:g}) = {top:g}, expected < 1")
    ck = run["training"]["checkpoints"]
    mode = ck.get("mode", "log")
    if mode == "steps" and not ck.get("steps"):
        raise ConfigError(f"config: {at('training', 'checkpoints', 'steps')}: mode 'steps' needs a non-empty list of steps")
    if mode == "every" and "every" not in ck:
        raise ConfigError(f"config: {at('training', 'checkpoints', 'every')}: mode 'every' needs 'every: N'")
    n = info.get("n_train")
    bs = int(run["training"]["batch_size"])
    if n is not None:
        if bs > n:
            raise ConfigError(f"config: {at('training', 'batch_size')}: expected <= {n} (the training-set size of "
                              f"dataset {ds!r}), got {bs}")
        if target == "schedule" and kind == "swap":
            swaps = int(pert.get("swaps", 1))
            if 2 * swaps > n // bs:
                raise ConfigError(f"config: {at('perturbation', 'swaps')}: {swaps} swaps need {2 * swaps} batches per "
                                  f"epoch, dataset {ds!r} with batch_size {bs} has {n // bs}")
    if run["model"].get("kind") == "mlp" and not isinstance(run["model"].get("hidden"), list):
        raise ConfigError(f"config: {at('model', 'hidden')}: expected a list of widths")


def main(argv: list[str] | None = None) -> int:
    """``python -m pathdep.config FILE [--data-dir DIR]``: check a config file, print one line."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pathdep.config", description="Check a pathdep config file.")
    ap.add_argument("file")
    ap.add_argument("--data-dir", default="results/data", help="prepared datasets (default: results/data)")
    args = ap.parse_args(argv)
    try:
        runs = validate(load_config(args.file), check_files=True, data_dir=args.data_dir)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"{args.file}: ok, {len(runs)} experiment(s), {sum(len(r) for r in runs.values())} run(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
