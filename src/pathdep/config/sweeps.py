"""What a resolved run config says about its place in a sweep, for tables and axes: the
swept values under short names, and its learning rates.

Learning rates (one meaning each, used by ``geometry.nc`` / ``fits.nc`` attributes, the
scaling table's ``lr_eff`` rows and the ``divergence_vs`` figure):

* ``lr``: the optimizer's nominal learning rate;
* ``lr_eff``: the effective step size, ``lr / (1 - momentum)`` for SGD with heavy-ball
  momentum (the step it takes in a steady gradient), ``lr`` for the adaptive optimizers;
* the learning-rate-corrected time is ``time_lr = steps * lr_eff``.

How it was checked: ``tests/config/test_sweeps.py``.
"""

from __future__ import annotations

from typing import Any

# short names of swept keys in tables and on axes (the last key component otherwise)
_SHORT = {"model.hidden": "width", "optimizer.name": "optimizer", "model.kind": "architecture",
          "perturbation.epsilon": "epsilon"}


def sweep_values(run: dict) -> dict[str, Any]:
    """Swept hyperparameters of a run as ``{short name: value}`` for tables and axes.

    ``model.hidden`` sweeps become ``width`` (a single hidden layer) or the joined widths;
    ``model.depth`` stays ``depth``; names are the last key (``optimizer.lr`` -> ``lr``,
    ``optimizer.name`` -> ``optimizer``, ``model.kind`` -> ``architecture``); lists are
    joined with ``-`` and booleans become strings.
    """
    out = {}
    for key, v in (run.get("swept") or {}).items():
        short = _SHORT.get(key, key.split(".")[-1])
        if key == "model.hidden":
            v = v[0] if isinstance(v, list) and len(v) == 1 else "-".join(str(x) for x in v)
        if isinstance(v, bool):
            v = str(v)
        elif isinstance(v, list):
            v = "-".join(str(x) for x in v)
        out[short] = v
    return out


def learning_rates(run: dict) -> tuple[float, float]:
    """``(lr, lr_eff)`` of a run (module docstring): ``lr_eff = lr / (1 - momentum)`` for SGD,
    ``lr`` for the adaptive optimizers; ``lr`` is NaN when the run has none."""
    opt = run.get("optimizer", {})
    lr = float(opt.get("lr", float("nan")))
    if opt.get("name", "sgd") == "sgd":
        return lr, lr / (1.0 - float(opt.get("momentum", 0.0) or 0.0))
    return lr, lr
