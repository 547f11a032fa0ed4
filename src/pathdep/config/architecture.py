"""The ``architecture:`` config block: which runs the ``architecture`` rule compares, and how.

::

    architecture:
      runs: {mlp: arch_mlp/base, lenet5: arch_lenet5/base, resnet: resnet/eps0.0001}
      reference: mlp          # the differences are <label> - reference
      window: [0, 50]         # steps of the early separation rate (the same for every run)
      late_fraction: 0.5      # the late linear slope over the last half of the steps

:func:`resolve` returns the block with :data:`DEFAULTS` filled in and ``runs`` as
``{label: (experiment, run)}``; :func:`check` (``validate()`` runs it through
:data:`pathdep.config.blocks.CHECKS`) refuses, in one line naming ``architecture.<key>``,
unknown runs, a reference that is not a label, a bad window, and runs that differ in
anything but the model (dataset, init perturbation, optimizer, batch size, step count): the
comparison is of architectures only. The parameter counts are reported by the stage
(``n_params`` of each run's metrics file), not checked here.

How it was checked: ``tests/config/test_architecture.py`` (the default config's block, unknown
runs, mismatched runs, malformed keys).
"""

from __future__ import annotations

from pathdep.config.errors import ConfigError
from pathdep.config.spread import run_ref

__all__ = ["DEFAULTS", "MATCHED", "resolve", "check"]

DEFAULTS: dict = {"runs": {}, "reference": "mlp", "window": [0, 50], "late_fraction": 0.5}

#: dotted keys of a resolved run that every compared run must share
MATCHED = ("dataset", "perturbation.target", "perturbation.kind", "perturbation.epsilon", "perturbation.relative",
           "optimizer", "training.batch_size", "training.epochs", "training.max_steps", "training.dtype")


def _get(run: dict, dotted: str):
    v = run
    for k in dotted.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    return v


def _runs(block: dict, runs: dict[str, list[dict]]) -> dict[str, tuple[str, str]]:
    ref_runs = block.get("runs")
    if not isinstance(ref_runs, dict) or len(ref_runs) < 2:
        raise ConfigError(f"config: architecture.runs: expected a mapping of >= 2 labels to '<experiment>/<run>', "
                          f"got {ref_runs!r}")
    return {str(label): run_ref(f"architecture.runs.{label}", ref, runs) for label, ref in ref_runs.items()}


def resolve(config: dict, runs: dict[str, list[dict]]) -> dict:
    """The block with defaults, ``runs`` as ``{label: (experiment, run)}``.

    Raises:
        ConfigError: one line naming ``architecture.<key>``.
    """
    block = config.get("architecture") or {}
    if not isinstance(block, dict) or set(block) - set(DEFAULTS):
        raise ConfigError(f"config: architecture: expected a mapping with keys {', '.join(DEFAULTS)}, got {block!r}")
    spec = {**DEFAULTS, **block, "runs": _runs(block, runs)}
    if spec["reference"] not in spec["runs"]:
        raise ConfigError(f"config: architecture.reference: expected one of the runs' labels "
                          f"({', '.join(spec['runs'])}), got {spec['reference']!r}")
    w = spec["window"]
    if not (isinstance(w, list) and len(w) == 2 and all(isinstance(x, (int, float)) for x in w) and 0 <= w[0] < w[1]):
        raise ConfigError(f"config: architecture.window: expected [t0, t1] steps with 0 <= t0 < t1, got {w!r}")
    lf = spec["late_fraction"]
    if not isinstance(lf, (int, float)) or not 0 < lf <= 1:
        raise ConfigError(f"config: architecture.late_fraction: expected a number in (0, 1], got {lf!r}")
    return spec


def check(config: dict, runs: dict[str, list[dict]]) -> None:
    """The block resolves, and every run matches the reference run except in its model."""
    spec = resolve(config, runs)
    index = {(r["experiment"], r["run"]): r for rs in runs.values() for r in rs}
    ref = index[spec["runs"][spec["reference"]]]
    for label, key in spec["runs"].items():
        for dotted in MATCHED:
            a, b = _get(index[key], dotted), _get(ref, dotted)
            if a != b:
                raise ConfigError(f"config: architecture.runs.{label}: {'/'.join(key)} differs from the reference "
                                  f"{spec['reference']!r} in {dotted} ({a!r} vs {b!r}); the comparison needs runs "
                                  "that differ in the model only")
