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
3. datasets: every ``datasets.<name>`` block through the ``data`` registry
   (:func:`pathdep.data.registry.check_spec`: the source's keys and value types), and for
   the datasets runs use, the source's ``info`` (:func:`pathdep.data.registry.dataset_info`):
   with ``check_files=True`` the source files themselves without loading them (an ``idx``
   root must hold the four IDX files with the right magic numbers; a ``torchvision`` root
   with ``download: false`` the files torchvision looks for). Nothing about a source is
   known here: a new source is one registration in ``data/``. A dataset already prepared
   in ``data_dir`` from the same spec is not re-checked (a SLURM job re-parses the
   workflow on a node that may lack the raw files);
4. the top-level settings blocks (:mod:`pathdep.config.blocks`): experiments named by
   ``analysis.experiments`` / ``lyapunov.experiments`` exist, ``analysis`` resolves for
   every experiment, ``lyapunov.study`` resolves (the same functions the jobs call);
5. semantics per run: a known dataset, model width from ``n_params``/``depth``, the
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
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from pathdep.config.blocks import check_blocks
from pathdep.config.errors import ConfigError
from pathdep.config.merge import deep_merge  # noqa: F401  (re-exported)

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "config.schema.yaml"

# Keys whose value is a list by nature: they sweep only with a list of lists.
LIST_VALUED = {("model", "hidden"), ("optimizer", "betas"), ("training", "checkpoints", "steps"),
               ("analysis", "lambdas"), ("analysis", "checkpoints"), ("analysis", "align_checkpoints")}

# Short names used in run names for swept keys (the last path component otherwise).
SHORT = {("perturbation", "epsilon"): "eps", ("optimizer", "weight_decay"): "wd",
         ("optimizer", "name"): "opt", ("model", "kind"): "model", ("model", "hidden"): "hidden"}
# Dataset parameters swept in an experiment's `data:` block (dominoes: ptop, rbottom, stop, ...).
from pathdep.data.dominoes import DATA_SHORT, derive_dataset  # noqa: E402

SHORT.update(DATA_SHORT)

# Built-in defaults under everything the config gives.
BASE_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "dataset": None,
    "model": {"kind": "mlp", "hidden": [100], "activation": "relu", "bias": True},
    "init": {"scheme": "kaiming_normal"},
    "perturbation": {"target": "init", "kind": "gaussian", "epsilon": 0.01, "relative": False,
                     "granularity": "tensor", "members": 10},
    "optimizer": {"name": "sgd", "lr": 0.01},
    # fast: the shared-batch ensemble step of pathdep.core.fast (~2x the generic vmapped step on
    # CPU, equal to it to 1e-12 in float64); the one place its default is applied.
    "training": {"epochs": 1, "max_steps": None, "batch_size": 64, "dtype": "float32",
                 "save_state_every": 200, "fast": True, "checkpoints": {"mode": "log", "count": 40}},
    "metrics": {"eval_train": 10000, "eval_test": 10000, "batch_size": 2000},
    "analysis": {},
}

# Experiment and dataset names become directory names and wildcards (rules/common.smk).
NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
RUN_RE = re.compile(r"[A-Za-z0-9_.+-]+")

# Optimiser hyperparameters that must stay below 1 (a hyperparameter perturbation scales them).
_BELOW_ONE = {"momentum", "dampening", "beta1", "beta2", "alpha"}


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
        if not allowed:  # a block that takes no keys (yet): its schema description says why
            return ConfigError(f"config: {key_of(path + (name,))}: unknown key ("
                               f"{err.schema.get('description', 'this block takes no keys')})")
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
        if run.get("data"):  # `data:` overrides the dataset's block: a derived dataset, named by its hash
            try:
                derive_dataset(run, config.setdefault("datasets", {}))
            except ValueError as exc:
                raise ConfigError(f"config: {origin(config, exp, 'data')}{exc}") from None
        runs.append(run)
    return runs


# ----------------------------------------------------------------------------- datasets


def dataset_info(name: str, spec: dict, *, check_files: bool = False, data_dir: str | Path | None = None,
                 offline: bool = False, datasets: dict | None = None) -> dict:
    """Input shape, class/output count and training-set size of a configured dataset.

    The ``data`` registry answers (:func:`pathdep.data.registry.dataset_info`): a prepared
    file in ``data_dir`` made from the same spec is read for its attributes; otherwise the
    source's ``info`` (``check_files``: IDX headers and label files, the torchvision files).

    Returns:
        ``{"in_shape": tuple, "out_dim": int, "n_train": int | None, "exact": bool}``
        (``exact`` False when the class count of an ``idx`` source is assumed).

    Raises:
        ConfigError: a bad spec, or (``check_files``) missing or wrong source files.
    """
    from pathdep.data.registry import dataset_info as _info

    try:
        return _info(name, spec, check_files=check_files, data_dir=data_dir, offline=offline, datasets=datasets)
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None


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
    from pathdep.data.registry import check_spec  # imports the sources (torch, h5py): only when validating

    offline = bool(config.get("offline", False))
    for name, spec in datasets.items():  # every block's keys and types, used by a run or not (no files)
        try:
            check_spec(name, spec, offline=offline, datasets=datasets)
        except ValueError as exc:
            raise ConfigError(f"config: {exc}") from None
    run_schema = dict(schema["$defs"]["run"])
    run_schema["$defs"] = schema["$defs"]
    infos: dict[str, dict] = {}
    out: dict[str, list[dict]] = {}
    for exp in config["experiments"]:
        def at(*path: str, _exp=exp) -> str:
            return origin(config, _exp, *path)

        runs = expand_experiment(config, exp)
        names: set[str] = set()
        for run in runs:
            ds = run.get("dataset")
            if isinstance(ds, str) and ds in datasets and ds not in infos:  # dataset-level errors: no run suffix
                infos[ds] = dataset_info(ds, datasets[ds], check_files=check_files, data_dir=data_dir,
                                         offline=offline, datasets=datasets)
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
    check_blocks(config, out)  # analysis:, lyapunov:, koopman:, ... beyond the schema (pathdep.config.blocks)
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
    if target == "init" and kind not in ("gaussian", "sphere", "norm", "reinit"):
        raise ConfigError(f"config: {at('perturbation', 'kind')}: target init expects gaussian, sphere, norm or "
                          f"reinit, got {kind!r}")
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
