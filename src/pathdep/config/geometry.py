"""The ``geometry:`` config block: the settings of the per-run geometry of the trajectories
(rule ``geometry``: aligned distances, interpolation barriers, autocorrelations, hypersphere
fit) and of the hypersphere theory figure.

``DEFAULTS`` lists every key; :func:`resolve` merges a user's block (and its
``geometry.experiments.<exp>`` override) into them and checks the values; :func:`check` runs
at ``validate()`` time (``pathdep.config.blocks.CHECKS``). :func:`select_checkpoints` turns a
checkpoint selection into indices; :func:`lambda_grid` the interpolation grid.

How it was checked: ``tests/config/test_geometry.py`` (defaults, overrides, one-line errors,
checkpoint selection), ``tests/test_bad_input.py`` (errors through ``snakemake -n``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pathdep.config.merge import block_for_experiment, check_per_experiment

DEFAULTS: dict[str, Any] = {
    "checkpoint_mode": "fraction",        # how checkpoints / align_checkpoints are read
    "checkpoints": [0.0, 0.1, 0.5, 1.0],  # interpolation checkpoints (fractions of training)
    "align_checkpoints": "all",           # aligned distance at every checkpoint (cheap: ~ms each)
    "lambdas": 11,                        # interpolation grid: n points in [0, 1], or a list
    "interp_members": 3,                  # members interpolated against the baseline
    "eval_train": 1000,                   # fixed seeded subsets for interpolation ...
    "eval_test": 1000,                    # ... and (test) the output autocorrelations
    "batch_size": 1000,                   # forward-pass chunk: bounds memory, not results
    "align_max_iter": 100,                # weight-matching sweeps (it stops when nothing improves)
    "bn_reset": 1000,                     # BatchNorm models: training samples on which the statistics of
                                          # every interpolated network are recomputed (Git Re-Basin, REPAIR)
    # hypersphere theory figure: rate_dt = D (n-1) dt / R^2 per step, small because the
    # scheme's relative bias is ~ D (n+2) dt / R^2; simulated until D (n-1) t / R^2 = t_max_rate
    "hypersphere": {"dims": [3, 10, 100], "R": 1.0, "D": 1.0, "rate_dt": 0.002, "t_max_rate": 4.0,
                    "walkers": 1000, "seed": 0},
}

#: Figures of rule ``plot_geometry``: name -> (file stem under ``results/figures/`` with
#: ``{exp}``, report category); captions in ``report/<name>.rst``.
FIGURES: dict[str, tuple[str, str]] = {
    "aligned": ("{exp}_aligned", "Aligned distance"),
    "interpolation": ("{exp}_interpolation", "Interpolation"),
    "barriers": ("{exp}_barriers", "Interpolation"),
    "autocorr": ("{exp}_autocorr", "Autocorrelation"),
    "hypersphere": ("{exp}_hypersphere", "Hypersphere"),
}


def _num_list(key: str, v, allow_all: bool = False):
    if allow_all and v == "all":
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        extra = " or 'all'" if allow_all else ""
        raise ValueError(f"geometry.{key}: expected a non-empty list of numbers{extra}, got {v!r}")
    return v


def resolve(spec: dict | None, experiment: str | None = None) -> dict:
    """The geometry settings: :data:`DEFAULTS` <- ``spec`` <- ``spec['experiments'][experiment]``.

    Raises:
        ValueError: one line naming ``geometry.<key>`` for an unknown key or a bad value.
    """
    out = block_for_experiment("geometry", spec, experiment, DEFAULTS)
    if out["checkpoint_mode"] not in ("fraction", "index", "step"):
        raise ValueError(f"geometry.checkpoint_mode: expected fraction, index or step, got {out['checkpoint_mode']!r}")
    out["checkpoints"] = _num_list("checkpoints", out["checkpoints"])
    out["align_checkpoints"] = _num_list("align_checkpoints", out["align_checkpoints"], allow_all=True)
    lam = out["lambdas"]
    if isinstance(lam, int) and not isinstance(lam, bool):
        if lam < 2:
            raise ValueError(f"geometry.lambdas: expected >= 2 grid points, got {lam}")
    else:
        lam = _num_list("lambdas", lam)
        if not (np.isclose(min(lam), 0.0) and np.isclose(max(lam), 1.0)):
            raise ValueError(f"geometry.lambdas: a list must contain 0 and 1 (the endpoints), got {lam!r}")
    for k in ("interp_members", "eval_train", "eval_test", "batch_size", "align_max_iter", "bn_reset"):
        v = out[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "interp_members" else 1):
            raise ValueError(f"geometry.{k}: expected a positive integer, got {v!r}")
    return out


def check(config: dict, runs: dict) -> None:
    """``geometry.experiments.<exp>`` names configured experiments and the block resolves for
    every experiment (the error names the key where it was written).

    Raises:
        pathdep.config.errors.ConfigError: one line ``config: geometry.<key>: ...``.
    """
    check_per_experiment("geometry", config, resolve)


def lambda_grid(spec: dict) -> np.ndarray:
    """The interpolation grid of resolved settings: ``lambdas`` points in [0, 1], or the list."""
    lam = spec["lambdas"]
    if isinstance(lam, int):
        return np.linspace(0.0, 1.0, lam)
    return np.unique(np.asarray(lam, dtype=np.float64))


def select_checkpoints(sel, mode: str, steps) -> np.ndarray:
    """Checkpoint indices (sorted, unique) for a selection.

    Args:
        sel: ``"all"`` or a list; ``fraction``: fractions of the last checkpoint's step
            (nearest checkpoint); ``index``: indices (negative from the end); ``step``:
            training steps (nearest checkpoint).
        mode: ``fraction`` | ``index`` | ``step``.
        steps: the checkpoints' steps ``(C,)``.
    """
    steps = np.asarray(steps, dtype=np.float64)
    C = len(steps)
    if isinstance(sel, str) and sel == "all":
        return np.arange(C)
    out = []
    for v in sel:
        if mode == "index":
            i = int(v)
            if not -C <= i < C:
                raise ValueError(f"geometry.checkpoints: index {i} out of range for {C} checkpoints")
            out.append(i % C)
        else:
            target = float(v) * steps[-1] if mode == "fraction" else float(v)
            if mode == "fraction" and not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"geometry.checkpoints: fraction {v} outside [0, 1]")
            out.append(int(np.argmin(np.abs(steps - target))))
    return np.unique(np.asarray(out, dtype=np.int64))
