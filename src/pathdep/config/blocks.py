"""Checks of the config's top-level settings blocks beyond the schema: ``analysis:``,
``lyapunov:`` (and its ``study:``), ``figures:``.

What it computes: nothing; it raises :class:`ConfigError` (one line, ``config: <key>:
...``) for what a JSON schema cannot say, before any job runs (``validate`` calls
:func:`check_blocks` after the schema pass, which already refused unknown keys and wrong
types in every block):

* ``analysis.experiments.<exp>`` and ``lyapunov.experiments`` name configured experiments;
* ``analysis`` resolved for every experiment by the same function the jobs use
  (:func:`pathdep.config.analysis.resolve_spec`: lambdas hold 0 and 1, fit models and
  quantities exist, ...); a problem is named where it was written (``analysis.<key>`` or
  ``analysis.experiments.<exp>.<key>``);
* ``lyapunov`` by :func:`pathdep.config.lyapunov.check` (its experiments exist, the
  spectrum settings and ``lyapunov.study`` resolve: ``lyap_steps <= steps``, ...).

A new settings block (``koopman:``, ``ntk:``): a schema section under ``properties`` of
schemas/config.schema.yaml (``additionalProperties: false``) and, for checks across keys,
one ``_check_<block>(config, runs)`` function here added to :data:`CHECKS` (``runs``:
``{experiment: [resolved run, ...]}``; import nothing from ``pathdep.config.validation``,
which imports this module).

How it was checked: ``tests/test_bad_input.py`` (a typo or bad value in each block gives one
line naming the key through the real ``snakemake -n``) and ``tests/test_config.py``.
"""

from __future__ import annotations

import re
from typing import Callable

from pathdep.config import lyapunov
from pathdep.config import koopman, ntk, spread
from pathdep.config.errors import ConfigError

_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): (.*)$", re.S)


def _experiments(config: dict) -> list[str]:
    return [str(e) for e in (config.get("experiments") or {})]


def _check_analysis(config: dict, runs: dict) -> None:
    from pathdep.config.analysis import resolve_spec

    spec = config.get("analysis") or {}
    exps = _experiments(config)
    per_exp = spec.get("experiments") or {}
    for e in per_exp:
        if e not in exps:
            raise ConfigError(f"config: analysis.experiments.{e}: unknown experiment (expected one of: "
                              f"{', '.join(exps)})")
    for e in exps:
        try:
            resolve_spec(spec, e)
        except ValueError as exc:
            m = _KEY.match(str(exc))
            if not m:
                raise ConfigError(f"config: analysis: {exc}") from None
            path = m.group(1).split(".")[1:]  # after "analysis"
            block = per_exp.get(e) or {}
            for k in path:  # written in the experiment's override?
                if not isinstance(block, dict) or k not in block:
                    block = None
                    break
                block = block[k]
            where = f"analysis.experiments.{e}" if block is not None and path else "analysis"
            raise ConfigError(f"config: {'.'.join([where, *path])}: {m.group(2)}") from None


def _check_figures(config: dict, runs: dict) -> None:
    exps = _experiments(config)
    for e in (config.get("figures") or {}).get("exclude") or []:
        if e not in exps:
            raise ConfigError(f"config: figures.exclude: unknown experiment {e!r} (expected some of: "
                              f"{', '.join(exps)})")


#: Cross-key checks per top-level block, in order.
CHECKS: dict[str, Callable[[dict, dict], None]] = {
    "analysis": _check_analysis,
    "lyapunov": lyapunov.check,
    "figures": _check_figures,
    "koopman": koopman.check,
    "spread": spread.check,
    "ntk": ntk.check,
}


def check_blocks(config: dict, runs: dict) -> None:
    """Run every :data:`CHECKS` entry whose block is present, as ``check(config, runs)``.

    Args:
        config: the config mapping (the schema pass already ran on it).
        runs: ``{experiment: [resolved run, ...]}`` (every run already checked).
    """
    for block, check in CHECKS.items():
        if config.get(block) is not None:
            check(config, runs)
