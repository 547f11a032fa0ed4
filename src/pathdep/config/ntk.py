"""The ``ntk:`` config block: defaults, sections, resolution and cross-key checks.

What it holds:

* :data:`DEFAULTS` and :data:`SECTIONS`: the settings of the NTK experiments of the seed
  (ntk-gradient-descent-wide-networks) and the names of its self-contained sections; the
  rules (``rules/ntk.smk``: the ``section`` wildcard, ``rules/common.smk``: the targets) read
  :data:`SECTIONS` from here.
* :func:`resolve`: :data:`DEFAULTS` with the block merged in (one level of sections), checked.
* :func:`dataset`, :func:`path_experiment`, :func:`sections`: which prepared dataset the
  sections read, which width experiment the path-vs-width figure reads, which sections run.
* :func:`check`: the dataset and ``path_experiment`` exist (an experiment of MLPs or
  ResNets: a transformer has no ``width``), the block resolves. The sections themselves build
  their own MLPs (the analytic kernels are those of fully connected ReLU networks), so no
  run's model kind reaches them.

How it was checked: tests/config/test_ntk.py (defaults, merge, one-line errors) and
tests/test_bad_input.py (a bad ``ntk.dataset`` / ``ntk.path_experiment`` through the real
``snakemake -n``).
"""

from __future__ import annotations

import json

from pathdep.config.errors import ConfigError

DEFAULTS = {
    "seed": 0,
    "dataset": None,                 # None: the config's defaults.dataset
    "pool": 4,                       # 28x28 images -> 7x7: d = 49 keeps the analytic kernels cheap
    "activation": "relu",            # closed-form (arc-cosine) kernels
    "sigma_w": 1.4142135623730951,   # sqrt(2): He scale, the ReLU kernel keeps its diagonal
    "sigma_b": 0.1,
    "dtype": "float32",              # width sweep and linearisation; 4c and 4d run in float64
    # 4a: widths 16..1024 span the n^-1/2 (parameters) and ~n^-1 (kernels) regimes
    "width_sweep": {"widths": [16, 32, 64, 128, 256, 512, 1024], "depth": 1, "n_train": 128, "n_probe": 16,
                    "steps": 100, "lr_factor": 0.5, "tail_min_width": 128},
    # 4b: SGD with momentum on mini-batches, both losses; lr per loss (CE tolerates a larger one)
    "linearization": {"widths": [64, 256, 1024], "depth": 1, "n_train": 512, "n_test": 128, "steps": 150,
                      "batch_size": 64, "lr": {"cross_entropy": 0.5, "mse": 0.1}, "momentum": 0.9,
                      "losses": ["cross_entropy", "mse"], "checkpoints": 16},
    # 4c: 100 members give the ensemble variance to ~15 %
    "kernel_regression": {"width": 256, "single_width": 2048, "depth": 1, "n_train": 128, "n_test": 32,
                          "members": 100, "steps": 200, "lr_factor": 0.5, "checkpoints": 21},
    # 4d: factors of 2/lambda_0 around the lazy/catapult boundary (1) and the catapult/divergent
    # one (2 in the two-scalar theory; ~6 measured for ReLU, docs/ntk.md)
    "catapult": {"width": 512, "depth": 1, "n_train": 128, "steps": 300,
                 "eta_factors": [0.5, 0.9, 0.95, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]},
    "path_experiment": "width",      # 4e: the experiment sweeping model width
    "kernel_change_inputs": 64,      # 4e: test inputs of the baseline-vs-member NTK distance over training
}
#: The sections run by the ``ntk_section`` rule (one netCDF and one figure each).
SECTIONS = ("width_sweep", "linearization", "kernel_regression", "catapult")


def resolve(spec: dict | None) -> dict:
    """:data:`DEFAULTS` with the config's ``ntk:`` block merged in (one level of sections).

    A section set to null stays None (that section is not built).

    Raises:
        ValueError: ``ntk.linearization.lr: ...`` when a loss of ``linearization.losses``
            has no learning rate.
    """
    cfg = json.loads(json.dumps(DEFAULTS))
    for k, v in (spec or {}).items():
        if k in SECTIONS and isinstance(v, dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    lin = cfg["linearization"]
    if isinstance(lin, dict) and isinstance(lin["lr"], dict):
        missing = [q for q in lin["losses"] if q not in lin["lr"]]
        if missing:
            raise ValueError(f"ntk.linearization.lr: no learning rate for loss {missing[0]!r}")
    return cfg


def dataset(config: dict) -> str | None:
    """The dataset the sections read: ``ntk.dataset``, else ``defaults.dataset``."""
    return (config.get("ntk") or {}).get("dataset") or (config.get("defaults") or {}).get("dataset")


def path_experiment(config: dict, runs: dict) -> str | None:
    """The width experiment of the path-vs-width figure (``ntk.path_experiment``, default
    ``width``), or None when it is null or the default names no configured experiment."""
    exp = (config.get("ntk") or {}).get("path_experiment", DEFAULTS["path_experiment"])
    return exp if exp in runs else None


def sections(config: dict) -> list[str]:
    """The sections to build: all of :data:`SECTIONS` but those set to null."""
    spec = config.get("ntk") or {}
    return [s for s in SECTIONS if spec.get(s, {}) is not None]


def _check_path_kind(exp: str | None, runs: dict) -> None:
    """The path-vs-width experiment sweeps ``model.width``: MLP widths or ResNet channel
    multipliers (the kernel change is each member's empirical NTK, in eval mode with its own
    BatchNorm statistics); a transformer has no ``width``."""
    for run in runs.get(exp) or [] if exp else []:
        kind = (run.get("model") or {}).get("kind", "mlp")
        if kind not in ("mlp", "resnet"):
            raise ConfigError(f"config: ntk.path_experiment: expected an experiment of model kind mlp or resnet "
                              f"(it sweeps model.width), got kind {kind} in experiment {exp!r}")


def check(config: dict, runs: dict) -> None:
    """Cross-key checks of ``ntk:`` (``runs``: ``{experiment: [resolved run, ...]}``).

    Raises:
        ConfigError: one line ``config: ntk.<key>: ...``.
    """
    spec = config.get("ntk") or {}
    ds, known = dataset(config), list(config.get("datasets") or {})
    if ds not in known:
        raise ConfigError(f"config: ntk.dataset: unknown dataset {ds!r} (expected one of: {', '.join(known)})")
    exp = spec.get("path_experiment")
    if exp is not None and exp not in runs:
        raise ConfigError(f"config: ntk.path_experiment: unknown experiment {exp!r} (expected one of: "
                          f"{', '.join(runs)})")
    _check_path_kind(path_experiment(config, runs), runs)
    try:
        resolve(spec)
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
