"""The ``analysis:`` config block: defaults, validation (one-line errors naming
``analysis.<key>``) and the checkpoint / interpolation-grid selections it describes."""

from __future__ import annotations

from typing import Any

import numpy as np

from pathdep.analysis import fits as FT
from pathdep.analysis.quantities import QUANTITIES
from pathdep.config.merge import deep_merge

DEFAULTS: dict[str, Any] = {
    "checkpoint_mode": "fraction",        # how checkpoints / align_checkpoints are read
    "checkpoints": [0.0, 0.1, 0.5, 1.0],  # interpolation checkpoints (fractions of training)
    "align_checkpoints": "all",           # aligned distance at every checkpoint (cheap: ~ms each)
    "lambdas": 11,                        # interpolation grid: n points in [0, 1], or a list
    "interp_members": 3,                  # members interpolated against the baseline
    "eval_train": 1000,                   # fixed seeded subsets for interpolation ...
    "eval_test": 1000,                    # ... and (test) the output autocorrelations
    "batch_size": 1000,
    "align_max_iter": 100,                # weight-matching sweeps (it stops when nothing improves)
    "fits": {
        "models": list(FT.DEFAULT_MODELS),
        "space": "log",
        "quantities": ["dist", "dist_aligned", "dist_excess", "fs_l2_logits", "fs_sym_kl"],
    },
    "hypersphere": {"dims": [3, 10, 100], "R": 1.0, "D": 1.0, "rate_dt": 0.002, "t_max_rate": 4.0,
                    "walkers": 1000, "seed": 0},
}


# ----------------------------------------------------------------------------- config
def _num_list(key: str, v, allow_all: bool = False):
    if allow_all and v == "all":
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        extra = " or 'all'" if allow_all else ""
        raise ValueError(f"analysis.{key}: expected a non-empty list of numbers{extra}, got {v!r}")
    return v


def resolve_spec(spec: dict | None, experiment: str | None = None) -> dict:
    """The analysis settings: :data:`DEFAULTS` <- ``spec`` <- ``spec['experiments'][experiment]``.

    Raises:
        ValueError: one line naming ``analysis.<key>`` for an unknown key or a bad value.
    """
    spec = dict(spec or {})
    per_exp = spec.pop("experiments", None) or {}
    if experiment is not None and experiment in per_exp:
        spec = deep_merge(spec, per_exp[experiment] or {})
    for k in spec:
        if k not in DEFAULTS:
            raise ValueError(f"analysis.{k}: unknown key (expected one of: {', '.join(sorted(DEFAULTS))}, experiments)")
    out = deep_merge(DEFAULTS, spec)
    if out["checkpoint_mode"] not in ("fraction", "index", "step"):
        raise ValueError(f"analysis.checkpoint_mode: expected fraction, index or step, got {out['checkpoint_mode']!r}")
    out["checkpoints"] = _num_list("checkpoints", out["checkpoints"])
    out["align_checkpoints"] = _num_list("align_checkpoints", out["align_checkpoints"], allow_all=True)
    lam = out["lambdas"]
    if isinstance(lam, int) and not isinstance(lam, bool):
        if lam < 2:
            raise ValueError(f"analysis.lambdas: expected >= 2 grid points, got {lam}")
    else:
        lam = _num_list("lambdas", lam)
        if not (np.isclose(min(lam), 0.0) and np.isclose(max(lam), 1.0)):
            raise ValueError(f"analysis.lambdas: a list must contain 0 and 1 (the endpoints), got {lam!r}")
    for k in ("interp_members", "eval_train", "eval_test", "batch_size", "align_max_iter"):
        v = out[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "interp_members" else 1):
            raise ValueError(f"analysis.{k}: expected a positive integer, got {v!r}")
    for m in out["fits"]["models"]:
        if m not in FT.MODELS:
            raise ValueError(f"analysis.fits.models: expected names from {sorted(FT.MODELS)}, got {m!r}")
    if out["fits"]["space"] not in ("log", "linear"):
        raise ValueError(f"analysis.fits.space: expected log or linear, got {out['fits']['space']!r}")
    for q in out["fits"]["quantities"]:
        if q not in QUANTITIES:
            raise ValueError(f"analysis.fits.quantities: expected names from {sorted(QUANTITIES)}, got {q!r}")
    return out


def lambda_grid(spec: dict) -> np.ndarray:
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
                raise ValueError(f"analysis.checkpoints: index {i} out of range for {C} checkpoints")
            out.append(i % C)
        else:
            target = float(v) * steps[-1] if mode == "fraction" else float(v)
            if mode == "fraction" and not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"analysis.checkpoints: fraction {v} outside [0, 1]")
            out.append(int(np.argmin(np.abs(steps - target))))
    return np.unique(np.asarray(out, dtype=np.int64))


