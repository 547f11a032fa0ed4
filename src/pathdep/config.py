"""Config: validation, sweep expansion, run names and seeds.

What it computes: from a config dict (config.yaml) the list of runs the workflow trains.
Every experiment is the ``defaults`` block deep-merged with the experiment's overrides;
every list in it is a sweep axis and the runs are the cartesian product of the axes.
Keys whose value is naturally a list (``model.hidden``, ``optimizer.betas``,
``training.checkpoints.steps``) sweep with a list of lists. Each run gets a readable name
built from its swept values (``lr0.01_momentum0.9``; ``base`` when nothing is swept) and
a fully resolved config slice, which the workflow passes to its jobs through ``params:``.

Validation happens before any job: the config is checked against
``schemas/config.schema.yaml`` (unknown keys, types) and then every resolved run is checked
again, so a bad value inside a sweep list is named too; semantic checks follow (unknown
dataset, a depth/parameter-count combination with no integer width, ...). Every failure is a
:class:`ConfigError` with one line naming the key and what was expected.

Seeds: every random choice derives from ``seed`` through ``numpy.random.SeedSequence``
(:func:`run_seeds`), so the reference initialisation is shared by all runs of an experiment
with the same seed (an epsilon sweep shares its baseline) and recorded in every output.

How it was checked: ``tests/test_config.py`` (sweep products, names, merge, seeds, and
the bad-input cases).
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"

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

# (input shape, outputs) of each dataset, known without loading it.
_TV_SHAPES = {"mnist": ((1, 28, 28), 10), "fashion_mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10)}


class ConfigError(ValueError):
    """A config problem, reported as one line naming the key."""


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ConfigError(f"{path}: not valid YAML" + (f" (line {line + 1})" if line is not None else "")) from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(cfg).__name__}")
    return cfg


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


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


def _collapse(d: dict, prefix: tuple[str, ...] = ()) -> dict:
    """Replace every sweep axis by its first element (for the structural schema pass)."""
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


def _schema_error(prefix: str, err) -> ConfigError:
    path = ".".join(str(p) for p in err.absolute_path)
    key = f"{prefix}.{path}" if prefix and path else (prefix or path or "config")
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = sorted(err.schema.get("properties", {}))
        name = f"{key}.{extra[0]}" if extra else key
        return ConfigError(f"config: unknown key '{name}' (expected one of: {', '.join(allowed)})")
    if err.validator == "enum":
        return ConfigError(f"config: {key}: expected one of {err.validator_value}, got {err.instance!r}")
    if err.validator == "type":
        return ConfigError(f"config: {key}: expected {err.validator_value}, got {type(err.instance).__name__} {err.instance!r}")
    if err.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[err.validator]
        return ConfigError(f"config: {key}: expected a value {word} {err.validator_value}, got {err.instance!r}")
    if err.validator == "required":
        return ConfigError(f"config: {key or 'top level'}: {err.message}")
    return ConfigError(f"config: {key}: {err.message}")


def _check(instance: Any, schema: dict, prefix: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        raise _schema_error(prefix, errors[0])


def dataset_shape(name: str, spec: dict) -> tuple[tuple[int, ...], int]:
    """(input shape, number of outputs) of a configured dataset, without loading it."""
    src = spec.get("source")
    if src == "idx":
        return (1, 28, 28), 10
    if src == "torchvision":
        ds = spec.get("dataset")
        if ds not in _TV_SHAPES:
            raise ConfigError(f"config: datasets.{name}.dataset: expected one of {sorted(_TV_SHAPES)}, got {ds!r}")
        return _TV_SHAPES[ds]
    if src == "sklearn_digits":
        return (1, 8, 8), 10
    if src == "teacher_student":
        return (int(spec.get("d_in", 10)),), int(spec.get("d_out", 1))
    raise ConfigError(f"config: datasets.{name}.source: unknown source {src!r}")


def resolve_model(model: dict, in_shape, out_dim: int, where: str = "model") -> dict:
    """Fill ``model.hidden`` from ``width``/``depth``/``n_params`` (constant-parameter depth sweeps)."""
    from .models import width_for_param_count

    m = dict(model)
    if m.get("kind", "mlp") != "mlp":
        return m
    in_dim = int(np.prod(in_shape))
    if "n_params" in m:
        depth = int(m.get("depth", len(m.get("hidden", [100]))))
        try:
            width = width_for_param_count(in_dim, depth, out_dim, int(m["n_params"]), bias=m.get("bias", True))
        except ValueError as exc:
            raise ConfigError(f"config: {where}.n_params: {exc}".replace("model.n_params: ", "")) from None
        m["hidden"] = [width] * depth
    elif "width" in m or "depth" in m:
        m["hidden"] = [int(m.get("width", 100))] * int(m.get("depth", 1))
    return m


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


def validate(config: dict) -> dict[str, list[dict]]:
    """Check a config and return ``{experiment: [resolved run, ...]}``.

    Raises:
        ConfigError: one line naming the offending key and what was expected.
    """
    if not isinstance(config, dict):
        raise ConfigError("config: expected a mapping at the top level")
    schema = _schema()
    collapsed = dict(config)
    if isinstance(config.get("experiments"), dict):
        collapsed["experiments"] = {k: _collapse(v or {}) for k, v in config["experiments"].items()}
    if isinstance(config.get("defaults"), dict):
        collapsed["defaults"] = _collapse(config["defaults"])
    _check(collapsed, schema, "")
    run_schema = dict(schema["$defs"]["run"])
    run_schema["$defs"] = schema["$defs"]
    datasets = config["datasets"]
    out: dict[str, list[dict]] = {}
    for exp in config["experiments"]:
        if not exp.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"config: experiments.{exp}: experiment names may hold letters, digits, '_' and '-' only")
        runs = expand_experiment(config, exp)
        names = set()
        for run in runs:
            body = {k: v for k, v in run.items() if k not in ("experiment", "run", "swept")}
            _check(body, run_schema, f"experiments.{exp}")
            where = f"experiments.{exp}"
            ds = run.get("dataset")
            if ds is None:
                raise ConfigError(f"config: {where}.dataset: no dataset given (set defaults.dataset)")
            if ds not in datasets:
                raise ConfigError(f"config: {where}.dataset: unknown dataset {ds!r} (expected one of {sorted(datasets)})")
            in_shape, out_dim = dataset_shape(ds, datasets[ds])
            run["model"] = resolve_model(run["model"], in_shape, out_dim, f"{where}.model")
            _semantic_checks(run, where)
            if run["run"] in names:
                raise ConfigError(f"config: {where}: two runs share the name {run['run']!r}")
            names.add(run["run"])
            run["dataset_spec"] = datasets[ds]
            run["device"] = config.get("device", "auto")
        out[exp] = runs
    return out


def _semantic_checks(run: dict, where: str) -> None:
    pert = run["perturbation"]
    target, kind = pert.get("target", "init"), pert.get("kind", "gaussian")
    if target == "init" and kind not in ("gaussian", "sphere"):
        raise ConfigError(f"config: {where}.perturbation.kind: target init expects gaussian or sphere, got {kind!r}")
    if target == "schedule" and kind not in ("shuffle", "swap"):
        raise ConfigError(f"config: {where}.perturbation.kind: target schedule expects shuffle or swap, got {kind!r}")
    if target == "hyperparameter":
        hp = pert.get("hparam")
        from .optim import Optimizer

        names = Optimizer(run["optimizer"].get("name", "sgd")).hparam_names
        if hp not in names:
            raise ConfigError(f"config: {where}.perturbation.hparam: expected one of {list(names)} for optimizer "
                              f"{run['optimizer'].get('name', 'sgd')}, got {hp!r}")
    if pert.get("kind") == "sphere" and pert.get("relative") and pert.get("epsilon", 0) > 2:
        raise ConfigError(f"config: {where}.perturbation.epsilon: a relative sphere perturbation moves at most the "
                          f"sphere's diameter (epsilon <= 2), got {pert['epsilon']}")
    ck = run["training"]["checkpoints"]
    mode = ck.get("mode", "log")
    if mode == "steps" and not ck.get("steps"):
        raise ConfigError(f"config: {where}.training.checkpoints.steps: mode 'steps' needs a non-empty list of steps")
    if mode == "every" and "every" not in ck:
        raise ConfigError(f"config: {where}.training.checkpoints.every: mode 'every' needs 'every: N'")
    if run["optimizer"].get("nesterov") and not run["optimizer"].get("momentum", 0) > 0:
        raise ConfigError(f"config: {where}.optimizer.nesterov: Nesterov momentum requires momentum > 0")
    if run["model"].get("kind") == "mlp" and not run["model"].get("hidden") and run["model"].get("hidden") != []:
        raise ConfigError(f"config: {where}.model.hidden: expected a list of widths")


def run_seeds(run: dict) -> dict:
    """Seeds of one run, all derived from ``run['seed']`` through SeedSequence.

    Returns:
        ``{"root": s, "init": int, "schedule": int, "members_perturb": [K ints],
        "members_schedule": [K ints]}`` for K = members + 1 (index 0 is the baseline).
    """
    root = int(run.get("seed", 0))
    ss = np.random.SeedSequence(root)
    init_ss, pert_ss, sched_ss = ss.spawn(3)
    k = int(run["perturbation"].get("members", 10)) + 1
    as_int = lambda s: int(s.generate_state(1, dtype=np.uint32)[0])  # noqa: E731
    return {
        "root": root,
        "init": as_int(init_ss),
        "schedule": as_int(sched_ss),
        "members_perturb": [as_int(s) for s in pert_ss.spawn(k)],
        "members_schedule": [as_int(s) for s in sched_ss.spawn(k)],
    }


def canonical(run: dict) -> str:
    """The JSON form of a resolved run (what a trajectory's ``config`` attribute stores)."""
    return json.dumps(run, sort_keys=True, default=str)
