"""Checks of a run's trajectory storage keys (``training.checkpoints``: ``store``,
``precision``, ``layers``, ``subsample``; the encodings are :mod:`pathdep.io.storage`).

What it checks:

- a lossy ``precision`` (float16 / bfloat16) on full weights (``store: full``) rounds every
  weight to a relative ``u`` (2^-11 / 2^-8), which adds noise of relative size ``~u`` to
  each member's distance from its baseline. It is refused when that could erase the
  smallest perturbation: an init perturbation with ``relative: true`` and
  ``epsilon < 100 u`` (the rounding would exceed 1 % of the initial distance), an absolute
  init perturbation (its size relative to ``|w0|`` is not known here), and schedule or
  hyperparameter perturbations (members start equal; their differences grow from 0 through
  the rounding). ``store: deltas`` with a lossy precision rounds ``w_k - w_base`` relative
  to its own size, so it never erases a perturbation and is never refused.
- ``layers`` / ``subsample`` store a subset of the parameters: the network cannot be
  evaluated from it, so the families that read every parameter cannot run: metrics (loss,
  accuracy), geometry (alignment, barriers), ntk, dominoes and koopman's weight
  observables; spread, fits and claims read metrics. Every run of the workflow feeds the
  metrics stage, so validation refuses them in one line (lyapunov, which retrains from
  ``init.h5``, and koopman on the loss would run; files written outside the workflow are
  read with ``Trajectory.stored_weights``).

``training.augment: crop_flip`` (:func:`pathdep.core.schedule.augment`) needs image inputs
``(C, H, W)``: :func:`check_augment` refuses it in one line for vector datasets.

How it was checked: ``tests/config/test_storage_config.py`` (each refusal in one line, the
accepted combinations).
"""

from __future__ import annotations

from pathdep.config.errors import ConfigError
from pathdep.io.storage import UNIT_ROUNDOFF

#: a lossy full-weight precision is refused for a relative eps below this many units of roundoff.
ERASE_FACTOR = 100.0


def check_storage(run: dict, at) -> None:
    """Refuse storage options that would lose what the run measures (one-line ConfigError).

    Args:
        run: one resolved run (``training.checkpoints`` and ``perturbation`` are read).
        at: ``at(*keys) -> str``, the key path for messages.
    """
    ck = run["training"].get("checkpoints", {})
    where = lambda *k: at("training", "checkpoints", *k)  # noqa: E731
    if ck.get("layers") or int(ck.get("subsample", 1)) > 1:
        key = "layers" if ck.get("layers") else "subsample"
        raise ConfigError(f"config: {where(key)}: a subsampled trajectory cannot feed metrics (loss and accuracy "
                          "need every parameter), geometry, ntk, dominoes or koopman weight observables, and every "
                          "run feeds metrics; use store: deltas and/or precision (pathdep.io.storage)")
    precision = ck.get("precision", "exact")
    if precision == "exact" or ck.get("store", "full") == "deltas":
        return
    u = UNIT_ROUNDOFF[precision]
    pert = run["perturbation"]
    target, kind, eps = pert.get("target", "init"), pert.get("kind", "gaussian"), float(pert.get("epsilon", 0.0))
    head = f"config: {where('precision')}: {precision} rounds every weight to {u:.3g} relative"
    if target in ("schedule", "hyperparameter"):
        raise ConfigError(f"{head}, and {target} perturbations start from equal weights whose differences grow "
                          "from 0 through that rounding; use store: deltas (rounds w_k - w_base relative to itself)")
    if target != "init" or kind == "reinit":
        return
    if not pert.get("relative", False):
        raise ConfigError(f"{head}, and an absolute perturbation (relative: false, epsilon {eps:g}) cannot be "
                          "compared with it here; use relative: true or store: deltas")
    if eps < ERASE_FACTOR * u:
        raise ConfigError(f"{head}, which would erase perturbation.epsilon {eps:g} (needs epsilon >= "
                          f"{ERASE_FACTOR:g} x {u:.3g} = {ERASE_FACTOR * u:.3g}); use store: deltas or precision: exact")


def check_augment(run: dict, info: dict, at) -> None:
    """``training.augment: crop_flip`` needs image inputs (one-line ConfigError otherwise)."""
    aug = run["training"].get("augment", "none")
    shape = tuple(info["in_shape"])
    if aug != "none" and len(shape) != 3:
        raise ConfigError(f"config: {at('training', 'augment')}: {aug} crops and flips images (C, H, W); dataset "
                          f"{run.get('dataset')!r} has inputs of shape {shape}; use augment: none")
