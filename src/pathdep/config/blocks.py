"""The table of the settings blocks' cross-key checks: :data:`CHECKS` ``{block: check}``.

What it computes: nothing itself; :func:`check_blocks` (called by
:func:`pathdep.config.validation.validate` after the schema pass and the run checks) runs
``check(config, runs)`` of every top-level settings block present in the config. Each check
lives with its block's defaults and ``resolve`` in ``config/<family>.py`` and raises one
line ``config: <block>.<key>: <what was expected, got what>`` for what a JSON schema cannot
say (experiments named by the block exist, the block resolves for every experiment with
the same ``resolve`` its jobs call, keys that depend on each other agree).

A new settings block: a schema section under ``properties`` of schemas/config.schema.yaml
(``additionalProperties: false``), a ``config/<block>.py`` with ``DEFAULTS``, ``resolve``
and ``check(config, runs)`` (``runs``: ``{experiment: [resolved run, ...]}``; it imports
nothing from ``pathdep.config.validation``, which imports this module), and one entry here.

How it was checked: ``tests/test_bad_input.py`` (a typo or bad value in each block gives one
line naming the key through the real ``snakemake -n``) and ``tests/test_config.py``.
"""

from __future__ import annotations

from typing import Callable

from pathdep.config import architecture, figures, fits, geometry, grokking, koopman, lyapunov, ntk, spread

#: Cross-key checks per top-level block, run in this order when the block is present.
CHECKS: dict[str, Callable[[dict, dict], None]] = {
    "geometry": geometry.check,
    "fits": fits.check,
    "lyapunov": lyapunov.check,
    "figures": figures.check,
    "koopman": koopman.check,
    "spread": spread.check,
    "ntk": ntk.check,
    "grokking": grokking.check,
    "architecture": architecture.check,
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
