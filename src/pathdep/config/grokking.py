"""The ``grokking:`` config block: ``{experiments: [name, ...]}``, the experiments whose runs
the ``grokking`` rule tabulates and draws (train 100 % / test 50 % / 90 % steps, the figure).

:func:`resolve` returns the experiment list; :func:`check` (the cross-key check that
``validate()`` runs, :data:`pathdep.config.blocks.CHECKS`) requires every named experiment to exist. A
grokking experiment may also get the standard figures and analyses (metrics, geometry with the
transformer permutation spec, fits: they ran on a tiny transformer experiment); the default
config lists it in ``figures.exclude`` for the time budget.
How it was checked: ``tests/config/test_grokking.py`` (known and unknown experiments, a
malformed block).
"""

from __future__ import annotations

from pathdep.config.errors import ConfigError

__all__ = ["DEFAULTS", "resolve", "check"]

DEFAULTS: dict = {"experiments": []}


def resolve(config: dict, runs: dict[str, list[dict]]) -> list[str]:
    """The ``grokking.experiments`` list, checked against the configured experiments.

    Raises:
        ConfigError: one line naming ``grokking.<key>``.
    """
    block = config.get("grokking") or {}
    if not isinstance(block, dict) or set(block) - set(DEFAULTS):
        raise ConfigError(f"config: grokking: expected a mapping with key 'experiments', got {block!r}")
    exps = block.get("experiments") or []
    if not isinstance(exps, list) or not all(isinstance(e, str) for e in exps):
        raise ConfigError(f"config: grokking.experiments: expected a list of experiment names, got {exps!r}")
    for e in exps:
        if e not in runs:
            raise ConfigError(f"config: grokking.experiments: unknown experiment {e!r} "
                              f"(expected one of: {', '.join(runs)})")
    return list(exps)


def check(config: dict, runs: dict[str, list[dict]]) -> None:
    """The block resolves (raises :class:`ConfigError`)."""
    resolve(config, runs)
