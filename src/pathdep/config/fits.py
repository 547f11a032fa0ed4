"""The ``fits:`` config block: the settings of the per-experiment fits (rule
``fit_experiment``: which functional forms, in which space, on which divergence curves).

``DEFAULTS`` lists every key; :func:`resolve` merges a user's block (and its
``fits.experiments.<exp>`` override) into them and checks the values; :func:`check` runs at
``validate()`` time (``pathdep.config.blocks.CHECKS``).

How it was checked: ``tests/config/test_fits.py`` (defaults, overrides, one-line errors),
``tests/test_bad_input.py`` (errors through ``snakemake -n``).
"""

from __future__ import annotations

from typing import Any

from pathdep.analysis.fits import DEFAULT_MODELS, MODELS
from pathdep.analysis.quantities import QUANTITIES
from pathdep.config.merge import block_for_experiment, check_per_experiment

DEFAULTS: dict[str, Any] = {
    "models": list(DEFAULT_MODELS),  # the forms of pathdep.analysis.fits compared by AIC
    "space": "log",                  # residuals of log d: curves span decades
    # dist_excess = dist(t) - dist(0): the growth beyond the perturbation itself
    "quantities": ["dist", "dist_aligned", "dist_excess", "fs_l2_logits", "fs_sym_kl"],
}

#: Figures of rule ``plot_fits``: name -> (file stem with ``{exp}``, report category);
#: captions in ``report/<name>.rst``.
FIGURES: dict[str, tuple[str, str]] = {
    "fits": ("{exp}_fits", "Fitted forms"),
    "divergence_vs": ("divergence_vs_{exp}", "Divergence vs hyperparameter"),
    "scaling": ("scaling_{exp}", "Scaling laws"),
}


def resolve(spec: dict | None, experiment: str | None = None) -> dict:
    """The fit settings: :data:`DEFAULTS` <- ``spec`` <- ``spec['experiments'][experiment]``.

    Raises:
        ValueError: one line naming ``fits.<key>`` for an unknown key or a bad value.
    """
    out = block_for_experiment("fits", spec, experiment, DEFAULTS)
    for m in out["models"]:
        if m not in MODELS:
            raise ValueError(f"fits.models: expected names from {sorted(MODELS)}, got {m!r}")
    if out["space"] not in ("log", "linear"):
        raise ValueError(f"fits.space: expected log or linear, got {out['space']!r}")
    for q in out["quantities"]:
        if q not in QUANTITIES:
            raise ValueError(f"fits.quantities: expected names from {sorted(QUANTITIES)}, got {q!r}")
    return out


def check(config: dict, runs: dict) -> None:
    """``fits.experiments.<exp>`` names configured experiments and the block resolves for
    every experiment (the error names the key where it was written).

    Raises:
        pathdep.config.errors.ConfigError: one line ``config: fits.<key>: ...``.
    """
    check_per_experiment("fits", config, resolve)
