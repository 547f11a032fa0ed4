"""The ``figures:`` config block: which experiments get the standard path-dependence figures.

What it holds:

* :data:`DEFAULTS`: ``exclude``, the experiments that get no standard figures and analyses
  (metrics, geometry, fits, ``plot_*``); their runs are still trained for the families that
  read them (e.g. the Koopman FCN study).
* :func:`resolve`: :data:`DEFAULTS` merged with the block, checked
  (``ValueError("figures.<key>: ...")``).
* :func:`standard_experiments`: the configured experiments minus ``exclude``, in config
  order (what ``rules/common.smk`` expands the standard targets over).
* :func:`check`: the block resolves and ``exclude`` names configured experiments.

How it was checked: ``tests/config/test_figures.py`` and ``tests/test_bad_input.py`` (an
unknown experiment in ``figures.exclude`` gives one line through ``snakemake -n``).
"""

from __future__ import annotations

import copy

from pathdep.config.errors import ConfigError

__all__ = ["DEFAULTS", "resolve", "standard_experiments", "check"]

DEFAULTS: dict = {
    "exclude": [],  # every experiment gets the standard figures unless it is a study of its own
}


def resolve(spec: dict | None) -> dict:
    """:data:`DEFAULTS` with the ``figures:`` block merged in, checked.

    Raises:
        ValueError: ``figures.<key>: expected ..., got ...`` (one line).
    """
    spec = spec or {}
    if not isinstance(spec, dict):
        raise ValueError(f"figures: expected a mapping, got {spec!r}")
    unknown = sorted(set(spec) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"figures.{unknown[0]}: unknown key (expected one of: {', '.join(DEFAULTS)})")
    out = copy.deepcopy(DEFAULTS)
    out.update({k: v for k, v in spec.items() if v is not None})
    if not isinstance(out["exclude"], list) or not all(isinstance(e, str) for e in out["exclude"]):
        raise ValueError(f"figures.exclude: expected a list of experiment names, got {out['exclude']!r}")
    return out


def standard_experiments(config: dict) -> list[str]:
    """The experiments of ``config`` that get the standard figures (all but ``figures.exclude``)."""
    skip = set(resolve(config.get("figures"))["exclude"])
    return [str(e) for e in (config.get("experiments") or {}) if e not in skip]


def check(config: dict, runs: dict) -> None:
    """``figures:`` resolves and ``figures.exclude`` names configured experiments.

    Args:
        config: the whole config (the schema pass already ran on it).
        runs: ``{experiment: [resolved run, ...]}``.

    Raises:
        ConfigError: ``config: figures.<key>: ...`` (one line).
    """
    try:
        spec = resolve(config.get("figures"))
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
    exps = [str(e) for e in (config.get("experiments") or {})]
    for e in spec["exclude"]:
        if e not in exps:
            raise ConfigError(f"config: figures.exclude: unknown experiment {e!r} (expected some of: "
                              f"{', '.join(exps)})")
