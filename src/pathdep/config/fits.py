"""The ``fits:`` config block: the settings of the per-experiment fits (rule
``fit_experiment``: which functional forms, in which space, on which divergence curves).

``DEFAULTS`` lists every key (forms, fit space, curves, residual weights, the out-of-sample
split ``fit_fraction`` and ``tolerance``); :func:`resolve` merges a user's block (and its
``fits.experiments.<exp>`` override) into them and checks the values; :func:`check` runs at
``validate()`` time (``pathdep.config.blocks.CHECKS``).

:func:`swept_experiments` names the experiments that get the sweep figures (``divergence_vs``,
``scaling``): an experiment of one run has no sweep to draw.

How it was checked: ``tests/config/test_fits.py`` (defaults, overrides, one-line errors, swept
experiments),
``tests/test_bad_input.py`` (errors through ``snakemake -n``).
"""

from __future__ import annotations

from typing import Any

from pathdep.analysis.fits import DEFAULT_MODELS, MODELS, WEIGHTS
from pathdep.analysis.quantities import QUANTITIES
from pathdep.config.merge import block_for_experiment, check_per_experiment

DEFAULTS: dict[str, Any] = {
    "models": list(DEFAULT_MODELS),  # the forms of pathdep.analysis.fits compared by AIC
    "space": "log",                  # residuals of log d: curves span decades
    # dist_excess = dist(t) - dist(0): the growth beyond the perturbation itself
    "quantities": ["dist", "dist_aligned", "dist_excess", "fs_l2_logits", "fs_sym_kl"],
    # residual weights: uniform in time, so the late (linear) phase counts on log-spaced
    # checkpoints (measured on the default run: the AIC-best form missed the last checkpoint
    # by more than 30 % on 16 of 30 dist curves with equal weights per point, 2 with "time")
    "weights": "time",
    "fit_fraction": 0.6667,  # out of sample: fit the steps up to this fraction of the run ...
    "tolerance": 0.3,        # ... a form describes a curve if it predicts the rest within 30 %
    # starting points per form (lowest initial cost first): exp_linear has up to 10, and on the
    # default run's 150 curves all 10 and the best 3 gave the same AIC-best form on 149 and the
    # same out-of-sample verdict on 147, in 54 % of the time
    "max_starts": 4,
}

#: Figures of rule ``plot_fits``: name -> (file stem with ``{exp}``, report category);
#: captions in ``report/<name>.rst``.
FIGURES: dict[str, tuple[str, str]] = {
    "fits": ("{exp}_fits", "Fitted forms"),
    "divergence_vs": ("divergence_vs_{exp}", "Divergence vs hyperparameter"),
    "scaling": ("scaling_{exp}", "Scaling laws"),
}


#: figures drawn only for experiments that sweep something (rule ``plot_scaling``)
SWEEP_FIGURES: tuple[str, ...] = ("divergence_vs", "scaling")


def swept_experiments(runs: dict, experiments) -> list[str]:
    """The experiments of ``experiments`` with a sweep: at least two runs and a swept key.

    Args:
        runs: ``{experiment: [resolved run, ...]}`` (``pathdep.config.validate``).
        experiments: names to filter, in order.
    """
    return [e for e in experiments if len(runs.get(e) or []) >= 2 and any(r.get("swept") for r in runs[e])]


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
    if out["weights"] not in WEIGHTS:
        raise ValueError(f"fits.weights: expected one of {', '.join(WEIGHTS)}, got {out['weights']!r}")
    if not isinstance(out["fit_fraction"], (int, float)) or not 0 < out["fit_fraction"] < 1:
        raise ValueError(f"fits.fit_fraction: expected a number in (0, 1), got {out['fit_fraction']!r}")
    if not isinstance(out["max_starts"], int) or isinstance(out["max_starts"], bool) or out["max_starts"] < 1:
        raise ValueError(f"fits.max_starts: expected an integer >= 1, got {out['max_starts']!r}")
    if not isinstance(out["tolerance"], (int, float)) or not out["tolerance"] > 0:
        raise ValueError(f"fits.tolerance: expected a number > 0, got {out['tolerance']!r}")
    return out


def check(config: dict, runs: dict) -> None:
    """``fits.experiments.<exp>`` names configured experiments and the block resolves for
    every experiment (the error names the key where it was written).

    Raises:
        pathdep.config.errors.ConfigError: one line ``config: fits.<key>: ...``.
    """
    check_per_experiment("fits", config, resolve)
