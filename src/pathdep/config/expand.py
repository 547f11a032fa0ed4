"""Run resolution: the built-in run defaults, sweep expansion, run names, where a key was written.

What it computes: from a config dict (config.yaml) the runs of one experiment
(:func:`expand_experiment`). Every experiment is :data:`BASE_DEFAULTS` deep-merged with the
config's top-level ``seed``, its ``defaults`` block and the experiment's overrides; every
list in it is a sweep axis and the runs are the cartesian product of the axes. Keys whose
value is naturally a list (:data:`LIST_VALUED`: ``model.hidden``, ``optimizer.betas``,
``training.checkpoints.steps``) sweep with a list of lists. Each run gets a readable name
built from its swept values (``lr0.01_momentum0.9``; ``base`` when nothing is swept) and a
fully resolved config slice, which the workflow passes to its jobs through ``params:``. A
run's ``data:`` block derives a dataset (:func:`pathdep.data.dominoes.derive_dataset`).
:func:`origin` names where a key of a run was written (the experiment's block or
``defaults``), for messages.

How it was checked: ``tests/test_config.py`` (sweep products, names, merge order, list-valued
keys, where a key was written).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from pathdep.config.errors import ConfigError
from pathdep.config.merge import deep_merge
from pathdep.config.schema import value_text
from pathdep.data.dominoes import DATA_SHORT, derive_dataset

__all__ = ["BASE_DEFAULTS", "TOP_DEFAULTS", "top_setting", "LIST_VALUED", "SHORT", "expand_experiment", "origin",
           "check_sweeps", "collapse"]

# Keys whose value is a list by nature: they sweep only with a list of lists.
LIST_VALUED = {("model", "hidden"), ("optimizer", "betas"), ("training", "checkpoints", "steps"),
               ("training", "checkpoints", "layers")}

# Short names used in run names for swept keys (the last path component otherwise).
SHORT = {("perturbation", "epsilon"): "eps", ("optimizer", "weight_decay"): "wd",
         ("optimizer", "name"): "opt", ("model", "kind"): "model", ("model", "hidden"): "hidden"}
# Dataset parameters swept in an experiment's `data:` block (dominoes: ptop, rbottom, stop, ...).
SHORT.update(DATA_SHORT)

# Top-level settings of the whole config (not of one run): the defaults applied where they are
# read (validation for device and offline, rules/common.smk get_threads for threads).
TOP_DEFAULTS: dict[str, Any] = {
    "device": "auto",   # the job's GPU when there is one, else the CPU
    "threads": 2,       # torch threads per heavy job (capped at the machine's cores by the workflow)
    "offline": False,   # true: refuse datasets with download: true
}


def top_setting(config: dict, key: str) -> Any:
    """``config[key]`` of a top-level setting, or its :data:`TOP_DEFAULTS` value when absent or null."""
    v = config.get(key)
    return TOP_DEFAULTS[key] if v is None else v


# Built-in defaults under everything the config gives (config.yaml sets most of them in its
# `defaults:` block): the seed's MLP with one hidden layer of 100, Kaiming-normal init, plain SGD
# at the seed's lr 0.01 and batch 64, ten perturbed members as in the seed.
BASE_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "dataset": None,
    "model": {"kind": "mlp", "hidden": [100], "activation": "relu", "bias": True},
    "init": {"scheme": "kaiming_normal"},
    "perturbation": {"target": "init", "kind": "gaussian", "epsilon": 0.01, "relative": False,
                     "granularity": "tensor", "members": 10, "baselines": 1},
    "optimizer": {"name": "sgd", "lr": 0.01},
    # fast: the shared-batch ensemble step of pathdep.core.fast (~2x the generic vmapped step on
    # CPU, equal to it to 1e-12 in float64); the one place its default is applied.
    "training": {"epochs": 1, "max_steps": None, "batch_size": 64, "dtype": "float32",
                 "save_state_every": 200, "fast": True, "checkpoints": {"mode": "log", "count": 40}},
    # metrics on at most 10000 samples of each split, 2000 per forward chunk
    "metrics": {"eval_train": 10000, "eval_test": 10000, "batch_size": 2000},
    "analysis": {},
}


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


def check_sweeps(block: Any, where: str, prefix: tuple[str, ...] = ()) -> None:
    """Sweep lists that cannot be meant: empty, lists of mappings, mixed list-valued sweeps."""
    if not isinstance(block, dict):
        return
    for k, v in block.items():
        p = (*prefix, k)
        key = ".".join((where, *map(str, p)))
        if isinstance(v, dict):
            check_sweeps(v, where, p)
        elif isinstance(v, list):
            if p in LIST_VALUED:
                if any(isinstance(x, list) for x in v) and not all(isinstance(x, list) for x in v):
                    raise ConfigError(f"config: {key}: expected a list of values, or a list of lists to sweep it "
                                      f"(e.g. [[100], [100, 100]]); got a mix, {value_text(v)}")
                continue
            if p[:1] == ("analysis",):  # takes no keys: the schema pass names a key written there
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


def collapse(d: Any, prefix: tuple[str, ...] = ()) -> Any:
    """Replace every sweep axis by its first element (for the structural schema pass)."""
    if not isinstance(d, dict):
        return d
    out = {}
    for k, v in d.items():
        p = (*prefix, k)
        if isinstance(v, dict):
            out[k] = collapse(v, p)
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
