"""The ``lyapunov:`` config block: defaults, resolution and cross-key checks.

What it holds:

* :data:`DEFAULTS`: the Benettin spectra of the baselines of ``lyapunov.experiments``
  (rule ``lyapunov``); :data:`STUDY_DEFAULTS`: the 2-2-1 study ``lyapunov.study`` (rule
  ``lyapunov_study``; config/lyapunov_full.yaml holds the paper-sized run).
* :func:`resolve`: :data:`DEFAULTS` merged with the ``lyapunov:`` block (its other keys,
  ``experiments``, ``tangent_experiment``, ``study``, are ignored), then checked;
  :func:`resolve_study`: :data:`STUDY_DEFAULTS` merged with ``lyapunov.study``, then
  checked. Both raise ``ValueError("<key>: <what was expected>")`` (``lyapunov.<key>`` and
  ``study.<key>``).
* :func:`check`: ``lyapunov.experiments`` and ``lyapunov.tangent_experiment`` name
  configured experiments, and both blocks resolve; raises one-line
  :class:`~pathdep.config.errors.ConfigError` ``config: lyapunov.<key>: ...``.

How it was checked: tests/config/test_lyapunov.py (defaults, each check names its key) and
tests/test_bad_input.py (a bad key or value gives one line through ``snakemake -n``).
"""

from __future__ import annotations

from typing import Any

from pathdep.config.errors import ConfigError

#: ``transient`` steps align the basis (not accumulated: without them the first QRs add the
#: log of a random vector's projection on the expanding subspace, ~ -log sqrt(D) / steps);
#: ``steps`` are accumulated; ``window`` is the FTLE window (the spread of the FTLEs over
#: ``steps // window`` windows gives the error of each exponent).
DEFAULTS: dict[str, int] = {
    "k": 4,             # leading exponents (k tangent vectors)
    "transient": 100,
    "steps": 400,
    "qr_every": 1,      # a QR every step: the increments log R_ii of every step are kept
    "window": 50,       # 8 FTLE windows over the default 400 steps
    "seed": 0,          # the random initial tangent basis
    "baselines": 0,     # spectra of the first n baselines of each run (0: every baseline; each costs one Benettin run)
}

#: The 2-2-1 study (Sharafi, Martin, Hallerberg, Phys. Rev. E 111, 054208 (2025)), sized
#: to run in about a minute on one CPU thread.
STUDY_DEFAULTS: dict[str, Any] = {
    "task": "xor",
    "activations": ["tanh", "relu"],
    "init_ranges": [0.5, 2.0],      # U(-a, a) for every weight and bias
    "n_networks": 256,              # per (activation, init range)
    "steps": 1000,                  # training steps (final loss after these)
    "lr": 0.3,
    "lyap_steps": 150,              # steps with full Jacobians / CLVs (from step 0)
    "times": [5, 10, 20, 30, 50, 75, 100],  # indicator times (steps)
    "ftle_window": 5,
    "late_window": 50,              # window of ``ftle_end`` (last steps of lyap_steps)
    "warmup_backward": 50,          # Ginelli backward warm-up
    "max_buffer": 64,               # R matrices held at once (memory cap)
    "threshold": 1e-3,              # failed <=> final loss > threshold (gap of the histogram)
    "n_checkpoints": 24,            # log-spaced loss checkpoints
    "seed": 0,
    "dtype": "float64",
    "threads": 1,                   # CPU threads during the run (None: torch's setting)
    # "numba": compiled per-network kernels (study_kernels; ~2.5x the torch path per
    # thread, and they split the networks over ``threads``); "torch": the batched closed
    # form (any device); "auto": numba when it is installed
    "backend": "auto",
}

#: Keys of the ``lyapunov:`` block that are not spectrum settings.
OTHER_KEYS = ("experiments", "tangent_experiment", "study")


def resolve(spec: dict | None) -> dict:
    """:data:`DEFAULTS` with the ``lyapunov:`` block's spectrum keys merged over it, checked.

    Raises:
        ValueError: ``lyapunov.<key>: ...`` for a bad value.
    """
    cfg = dict(DEFAULTS)
    for k_, v in (spec or {}).items():
        if k_ in DEFAULTS:
            cfg[k_] = v
    for k_ in DEFAULTS:
        lo = 0 if k_ in ("transient", "seed", "baselines") else 1
        if int(cfg[k_]) != cfg[k_] or cfg[k_] < lo:
            raise ValueError(f"lyapunov.{k_}: expected an integer >= {lo}, got {cfg[k_]!r}")
    if cfg["transient"] % cfg["qr_every"] or cfg["steps"] % cfg["qr_every"]:
        raise ValueError(f"lyapunov.qr_every: expected a divisor of transient ({cfg['transient']}) "
                         f"and steps ({cfg['steps']}), got {cfg['qr_every']}")
    if cfg["window"] > cfg["steps"]:
        raise ValueError(f"lyapunov.window: expected <= steps ({cfg['steps']}), got {cfg['window']}")
    return cfg


def _check_study_members(cfg: dict) -> None:
    from pathdep.analysis.study_model import ACTIVATIONS, TASKS

    if cfg["task"] not in TASKS:
        raise ValueError(f"study.task: expected one of {sorted(TASKS)}, got {cfg['task']!r}")
    for a in cfg["activations"]:
        if a not in ACTIVATIONS:
            raise ValueError(f"study.activations: expected entries in {ACTIVATIONS}, got {a!r}")
    for a in cfg["init_ranges"]:
        if not float(a) > 0:
            raise ValueError(f"study.init_ranges: expected positive half-widths, got {a!r}")
    for k in ("n_networks", "steps", "lyap_steps", "ftle_window", "late_window",
              "warmup_backward", "max_buffer", "n_checkpoints"):
        if int(cfg[k]) != cfg[k] or cfg[k] < 1:
            raise ValueError(f"study.{k}: expected a positive integer, got {cfg[k]!r}")
    if cfg["dtype"] not in ("float64", "float32"):
        raise ValueError(f"study.dtype: expected 'float64' or 'float32', got {cfg['dtype']!r}")
    th = cfg["threads"]
    if th is not None and (int(th) != th or th < 1):
        raise ValueError(f"study.threads: expected None or a positive integer, got {th!r}")
    if not float(cfg["lr"]) > 0:
        raise ValueError(f"study.lr: expected > 0, got {cfg['lr']!r}")


def _check_study_windows(cfg: dict) -> list[int]:
    """The indicator times as ints, after the checks of the step windows against each other."""
    if cfg["lyap_steps"] > cfg["steps"]:
        raise ValueError(f"study.lyap_steps: expected <= steps ({cfg['steps']}), "
                         f"got {cfg['lyap_steps']}")
    if cfg["late_window"] > cfg["lyap_steps"]:
        raise ValueError(f"study.late_window: expected <= lyap_steps ({cfg['lyap_steps']}), "
                         f"got {cfg['late_window']}")
    if cfg["max_buffer"] <= cfg["warmup_backward"]:
        raise ValueError(f"study.max_buffer: expected > warmup_backward "
                         f"({cfg['warmup_backward']}), got {cfg['max_buffer']}")
    times = [int(t) for t in cfg["times"]]
    hi = cfg["lyap_steps"] - cfg["warmup_backward"]
    if not times or sorted(set(times)) != times or times[0] < cfg["ftle_window"] or times[-1] > hi:
        raise ValueError(f"study.times: expected increasing steps in [ftle_window "
                         f"({cfg['ftle_window']}), lyap_steps - warmup_backward ({hi})], "
                         f"got {cfg['times']}")
    return times


def resolve_study(spec: dict | None) -> dict:
    """:data:`STUDY_DEFAULTS` with ``lyapunov.study`` merged over it, checked; ``times`` as
    ints and ``backend`` resolved to ``"numba"`` or ``"torch"``
    (:func:`pathdep.analysis.study_model.resolve_backend`).

    Raises:
        ValueError: ``study.<key>: ...`` naming the key and what was expected.
    """
    from pathdep.analysis.study_model import resolve_backend

    cfg = dict(STUDY_DEFAULTS)
    for k, v in (spec or {}).items():
        if k not in STUDY_DEFAULTS:
            raise ValueError(f"study.{k}: unknown key (expected one of {sorted(STUDY_DEFAULTS)})")
        cfg[k] = v
    _check_study_members(cfg)
    cfg["times"] = _check_study_windows(cfg)
    cfg["backend"] = resolve_backend(cfg["backend"])
    return cfg


def check(config: dict, runs: dict) -> None:
    """Cross-key checks of the ``lyapunov:`` block (see the module docstring).

    Args:
        config: the config mapping (the schema pass already ran on it).
        runs: ``{experiment: [resolved run, ...]}``.

    Raises:
        ConfigError: ``config: lyapunov.<key>: ...``.
    """
    spec = config.get("lyapunov") or {}
    exps = [str(e) for e in (config.get("experiments") or {})]
    for e in spec.get("experiments") or []:
        if e not in exps:
            raise ConfigError(f"config: lyapunov.experiments: unknown experiment {e!r} (expected some of: "
                              f"{', '.join(exps)})")
    name = spec.get("tangent_experiment")
    if name and name not in runs:
        raise ConfigError(f"config: lyapunov.tangent_experiment: unknown experiment {name!r} "
                          f"(expected one of: {', '.join(runs)})")
    try:
        resolve(spec)
        if spec.get("study"):
            resolve_study(spec["study"])
    except ValueError as exc:  # "lyapunov.<key>: ..." or "study.<key>: ..."
        msg = str(exc)
        raise ConfigError(f"config: {msg if msg.startswith('lyapunov.') else 'lyapunov.' + msg}") from None
