"""Deep merge of config mappings (``defaults`` <- experiment block, a settings block such as
``geometry`` <- its per-experiment override): nested mappings merge key by key, anything else
replaces; a settings block resolved for one experiment, and the check of its per-experiment overrides."""

from __future__ import annotations

import copy


def deep_merge(base: dict, over: dict) -> dict:
    """A new mapping: ``base`` with ``over`` merged in (deep copies; inputs untouched)."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def block_for_experiment(block: str, spec: dict | None, experiment: str | None, defaults: dict) -> dict:
    """A settings block for one experiment: ``defaults`` <- ``spec`` <- ``spec['experiments'][experiment]``.

    Raises:
        ValueError: ``"<block>.<key>: unknown key ..."`` for a key that ``defaults`` lacks.
    """
    spec = dict(spec or {})
    per_exp = spec.pop("experiments", None) or {}
    if experiment is not None and experiment in per_exp:
        spec = deep_merge(spec, per_exp[experiment] or {})
    for k in spec:
        if k not in defaults:
            raise ValueError(f"{block}.{k}: unknown key (expected one of: {', '.join(sorted(defaults))}, experiments)")
    return deep_merge(defaults, spec)


def check_per_experiment(block: str, config: dict, resolve) -> None:
    """Resolve a settings block with per-experiment overrides for every experiment.

    ``config[block]`` may hold ``experiments: {<exp>: {...}}`` overrides; every override must
    name a configured experiment, and ``resolve(spec, experiment)`` must accept the block for
    every experiment. A ``ValueError("<block>.<key>: ...")`` of ``resolve`` is reported where
    the key was written (``<block>.experiments.<exp>.<key>`` for an override).

    Raises:
        ConfigError: one line ``config: <key>: <what was expected, got what>``.
    """
    import re

    from pathdep.config.errors import ConfigError

    spec = config.get(block) or {}
    exps = [str(e) for e in (config.get("experiments") or {})]
    per_exp = spec.get("experiments") or {}
    for e in per_exp:
        if e not in exps:
            raise ConfigError(f"config: {block}.experiments.{e}: unknown experiment (expected one of: {', '.join(exps)})")
    for e in exps:
        try:
            resolve(spec, e)
        except ValueError as exc:
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): (.*)$", str(exc), re.S)
            if not m:
                raise ConfigError(f"config: {block}: {exc}") from None
            path = m.group(1).split(".")[1:]  # after the block name
            written = per_exp.get(e) or {}
            for k in path:  # written in the experiment's override?
                if not isinstance(written, dict) or k not in written:
                    written = None
                    break
                written = written[k]
            where = f"{block}.experiments.{e}" if written is not None and path else block
            raise ConfigError(f"config: {'.'.join([where, *path])}: {m.group(2)}") from None
