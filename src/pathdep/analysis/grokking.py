"""Grokking: the steps at which train and test accuracy first reach given levels.

What it computes: for accuracy curves ``acc (K, C)`` of K networks at C checkpoints with
training steps ``steps (C,)``,

* :func:`first_step`: per network, the first checkpoint step whose accuracy is at least
  ``level`` (NaN when it never is): "train accuracy hits 100 %" is ``level = 1``, the
  generalisation steps of Power et al. 2022 / Nanda et al. 2023 are test ``0.5`` and ``0.9``;
* :func:`key_steps`: the three of them (train 1.0, test 0.5, test 0.9) and the *delay*,
  the ratio of the test-0.9 step to the train-1.0 step (>> 1: grokking; about 1: the test
  accuracy follows the train accuracy, as in the norm-constrained runs of Liu, Michaud &
  Tegmark 2023, "Omnigrok").

The steps are resolved only to the checkpoint grid (log-spaced in the default run): a
reported step is the first *recorded* step at or above the level, an upper bound on the
true first step, above it by less than the spacing to the previous checkpoint.

How it was checked: ``tests/analysis/test_grokking.py`` (known curves: a step function,
a curve that never reaches the level, exact ties at the level, per-network rows, the
delay of a grokking and of a non-grokking pair).
"""

from __future__ import annotations

import numpy as np

__all__ = ["first_step", "key_steps", "LEVELS"]

#: (column name, split, level) of :func:`key_steps`.
LEVELS = (("train_1.0", "train", 1.0), ("test_0.5", "test", 0.5), ("test_0.9", "test", 0.9))


def first_step(acc: np.ndarray, steps: np.ndarray, level: float, tol: float = 1e-9) -> np.ndarray:
    """The first checkpoint step at which each network's accuracy reaches ``level``.

    Args:
        acc: accuracies ``(K, C)`` (or ``(C,)`` for one network) in [0, 1]; NaN never counts.
        steps: training steps ``(C,)`` of the checkpoints, increasing.
        level: the accuracy to reach (``acc >= level - tol`` counts: a training set of n
            samples at 100 % gives exactly 1, up to float rounding of ``hits / n``).
        tol: tolerance of the comparison.

    Returns:
        ``(K,)`` float64 steps (NaN where the level is never reached); a scalar array for
        ``(C,)`` input.
    """
    a = np.asarray(acc, dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)
    if a.shape[-1] != s.shape[0]:
        raise ValueError(f"acc: expected {s.shape[0]} checkpoints on the last axis, got shape {a.shape}")
    hit = np.nan_to_num(a, nan=-np.inf) >= level - tol
    idx = np.argmax(hit, axis=-1)
    return np.where(hit.any(axis=-1), s[idx], np.nan)


def key_steps(train_acc: np.ndarray, test_acc: np.ndarray, steps: np.ndarray) -> dict[str, np.ndarray]:
    """Train 100 %, test 50 % and test 90 % steps and the grokking delay of every network.

    Args:
        train_acc, test_acc: ``(K, C)`` accuracies at the checkpoints.
        steps: ``(C,)`` their training steps.

    Returns:
        ``{"train_1.0", "test_0.5", "test_0.9", "delay"}`` -> ``(K,)`` float64, ``delay =
        test_0.9 / train_1.0`` (NaN when either is missing; a train step of 0 counts as 1).
    """
    acc = {"train": train_acc, "test": test_acc}
    out = {name: first_step(acc[split], steps, level) for name, split, level in LEVELS}
    out["delay"] = out["test_0.9"] / np.maximum(out["train_1.0"], 1.0)
    return out
