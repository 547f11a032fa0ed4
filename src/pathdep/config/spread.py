"""The ``spread:`` config block: ``{source label: "<experiment>/<run>"}``, the ensembles whose
spreads the ``spread`` rule compares (e.g. init, schedule, hyperparameter, global).

The block has no defaults (every entry names a run). :func:`resolve` turns it into
``{label: (experiment, run)}``; :func:`check` is the cross-key check ``validate()`` runs
(through :data:`pathdep.config.blocks.CHECKS`). How it was checked:
tests/stages/test_spread.py (known and unknown experiments and runs, malformed entries).
"""

from __future__ import annotations

from pathdep.config.errors import ConfigError


def resolve(config: dict, runs: dict[str, list[dict]]) -> dict[str, tuple[str, str]]:
    """``{label: (experiment, run)}`` of the ``spread:`` block, checked against the runs.

    Args:
        config: the whole config.
        runs: ``validate(config)``'s ``{experiment: [resolved runs]}``.

    Raises:
        ConfigError: one line naming ``spread.<label>`` for a malformed entry or an unknown
            experiment or run (listing the known ones).
    """
    block = config.get("spread") or {}
    if not isinstance(block, dict):
        raise ConfigError(f"config: spread: expected a mapping of label: <experiment>/<run>, got {block!r}")
    return {str(label): run_ref(f"spread.{label}", ref, runs) for label, ref in block.items()}


def run_ref(key: str, ref, runs: dict[str, list[dict]]) -> tuple[str, str]:
    """``(experiment, run)`` of a ``"<experiment>/<run>"`` reference written at config ``key``.

    Raises:
        ConfigError: one line naming ``key`` for a malformed reference or an unknown
            experiment or run (listing the known ones).
    """
    if not isinstance(ref, str) or ref.count("/") != 1:
        raise ConfigError(f"config: {key}: expected '<experiment>/<run>', got {ref!r}")
    exp, run = ref.split("/")
    if exp not in runs:
        raise ConfigError(f"config: {key}: unknown experiment {exp!r} (expected one of: {', '.join(runs)})")
    names = [r["run"] for r in runs[exp]]
    if run not in names:
        raise ConfigError(f"config: {key}: experiment {exp!r} has no run {run!r} "
                          f"(expected one of: {', '.join(names)})")
    return exp, run


def check(config: dict, runs: dict[str, list[dict]]) -> None:
    """Every ``spread:`` entry names a configured run (raises :class:`ConfigError`)."""
    resolve(config, runs)

