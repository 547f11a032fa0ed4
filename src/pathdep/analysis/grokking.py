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

Path dependence of grokking (issue 20, item 4), for a run of R independent baselines each
with M perturbed copies (``pathdep.analysis.replicates`` labels):

* :func:`step_shift`: per copy, ``|s_copy - s_own_baseline|`` of a key step (NaN for the
  baselines and where either network never reaches the level);
* :func:`shift_summary`: the shifts averaged over the copies of each baseline, then the mean
  and Student-t interval across the R baselines (the referee's rule of
  ``pathdep.analysis.replicates``), the shift relative to the baseline's step, and how many
  copies or baselines never reached the level;
* :func:`independent_spread`: the mean absolute difference of the key step between
  independent baselines (``E|s - s'|`` over pairs): what a wholly independent run moves it
  by, the ceiling of the copies' shifts;
* :func:`trend_test`: Spearman's rank correlation of the shifts with log eps and a one-sided
  permutation p-value (small: the shift grows with eps); ties and NaN handled;
* :func:`eps_trend`: that test on the per-baseline mean shifts of several eps runs that
  share their R baselines (permuted within a baseline: the shifts are paired);
* :func:`phase_checkpoints` / :func:`phase_values`: of the interpolation checkpoints, the
  last one before either network of a pair reached test 0.5 and the first at which both
  reached test 0.9, and a per-pair curve (e.g. the linear-interpolation barrier) there:
  "before" and "after" grokking.

The steps are resolved only to the checkpoint grid (log-spaced in the default run): a
reported step is the first *recorded* step at or above the level, an upper bound on the
true first step, above it by less than the spacing to the previous checkpoint.

How it was checked: ``tests/analysis/test_grokking.py`` (known curves: a step function,
a curve that never reaches the level, exact ties at the level, per-network rows, the
delay of a grokking and of a non-grokking pair; shifts of planted steps per block and their
t interval against ``scipy.stats.t``; the independent spread of known steps; the trend test
rejects a monotone shift and does not reject shifts drawn independently of eps (its false
positive rate over 400 null draws is <= 0.05 + 3 se); the phase checkpoints of known steps,
NaN steps giving no "after").
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
from scipy import stats

from pathdep.analysis.replicates import interval, own_baseline, per_baseline

__all__ = ["first_step", "key_steps", "LEVELS", "step_shift", "shift_summary", "independent_spread",
           "trend_test", "eps_trend", "phase_checkpoints", "phase_values"]

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


def step_shift(steps: np.ndarray, baseline: np.ndarray, copy: np.ndarray) -> np.ndarray:
    """How far each copy's key step lies from its own baseline's.

    Args:
        steps: ``(K,)`` a key step per network (NaN: never reached).
        baseline, copy: ``(K,)`` replicate labels (copy 0 = the baseline of its block).

    Returns:
        ``(K,)`` float64 ``|s_k - s_own(k)|``; NaN for baselines and where either step is NaN.
    """
    s = np.asarray(steps, dtype=np.float64)
    copy = np.asarray(copy)
    out = np.abs(s - s[own_baseline(baseline, copy)])
    return np.where(copy > 0, out, np.nan)


def shift_summary(steps: np.ndarray, baseline: np.ndarray, copy: np.ndarray, level: float = 0.95) -> dict:
    """The shift of a key step by the perturbation, with an interval across baselines.

    Args:
        steps: ``(K,)`` a key step per network (NaN: never reached).
        baseline, copy: ``(K,)`` replicate labels.
        level: coverage of the Student-t interval.

    Returns:
        dict: ``n_baselines``, ``n_used`` (baselines with a finite mean shift), ``shift``,
        ``shift_lo``, ``shift_hi`` (mean over baselines of the per-baseline mean shift; NaN
        bounds with fewer than 2), ``rel_shift`` (the same of shift / own baseline step),
        ``baseline_step`` (mean of the baselines' steps), ``missing_copies`` /
        ``missing_baselines`` (networks that never reached the level).
    """
    s = np.asarray(steps, dtype=np.float64)
    baseline, copy = np.asarray(baseline), np.asarray(copy)
    shift = step_shift(s, baseline, copy)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = shift / s[own_baseline(baseline, copy)]
    per = per_baseline(shift, baseline, copy)
    mean, lo, hi = interval(per, level)
    base = s[copy == 0]
    return {"n_baselines": int(len(per)), "n_used": int(np.isfinite(per).sum()), "shift": float(mean),
            "shift_lo": float(lo), "shift_hi": float(hi),
            "rel_shift": float(interval(per_baseline(rel, baseline, copy), level)[0]),
            "baseline_step": float(np.nanmean(base)) if np.isfinite(base).any() else float("nan"),
            "missing_copies": int(np.sum(~np.isfinite(s) & (copy > 0))),
            "missing_baselines": int(np.sum(~np.isfinite(base)))}


def independent_spread(steps: np.ndarray) -> float:
    """Mean absolute difference ``E|s_i - s_j|`` over pairs of independent runs' key steps.

    Args:
        steps: ``(R,)`` one key step per independent baseline (NaN dropped).

    Returns:
        The mean over the ``R'(R'-1)/2`` pairs of finite steps (NaN with fewer than 2).
    """
    s = np.asarray(steps, dtype=np.float64)
    s = s[np.isfinite(s)]
    if len(s) < 2:
        return float("nan")
    return float(np.mean([abs(a - b) for a, b in itertools.combinations(s, 2)]))


def trend_test(x: np.ndarray, y: np.ndarray, strata: np.ndarray | None = None, n_perm: int = 10000,
               seed: int = 0) -> dict:
    """Does ``y`` grow with ``x``? Spearman's rho and a one-sided permutation p-value.

    Args:
        x: ``(n,)`` e.g. log10 eps of each baseline's mean shift.
        y: ``(n,)`` the values (NaN pairs dropped).
        strata: ``(n,)`` labels; ``y`` is permuted only within a stratum (e.g. the baseline
            index, when every eps run trains the same R baselines: its shifts are paired).
            None: one stratum.
        n_perm: random relabellings of ``y`` (p = (1 + #{rho_perm >= rho}) / (1 + n_perm)).
        seed: RNG seed.

    Returns:
        dict ``rho``, ``p_value`` (NaN with fewer than 3 pairs or constant x or y), ``n``.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    g = np.zeros(len(x), dtype=int) if strata is None else np.asarray(strata)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, g = x[ok], y[ok], g[ok]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": float("nan"), "p_value": float("nan"), "n": int(len(x))}
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean()), (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())
    rho = float(rx @ ry)
    rng, perm = np.random.default_rng(seed), np.tile(ry, (int(n_perm), 1))
    for label in np.unique(g):
        cols = np.flatnonzero(g == label)
        perm[:, cols] = rng.permuted(perm[:, cols], axis=1)
    p = (1 + np.sum(perm @ rx >= rho - 1e-12)) / (1 + int(n_perm))
    return {"rho": rho, "p_value": float(p), "n": int(len(x))}


def phase_checkpoints(icheck_steps: np.ndarray, start: float, end: float) -> tuple[int, int]:
    """Interpolation checkpoints before and after a pair of networks grokked.

    Args:
        icheck_steps: ``(I,)`` increasing steps of the interpolation checkpoints.
        start: the earlier of the two networks' test-0.5 steps (NaN: neither started).
        end: the later of their test-0.9 steps (NaN: one never grokked).

    Returns:
        ``(before, after)`` indices into ``icheck_steps``: the last checkpoint strictly before
        ``start`` (NaN start: the last checkpoint) and the first at or after ``end``; -1 where
        there is none.
    """
    s = np.asarray(icheck_steps, dtype=np.float64)
    before = np.flatnonzero(s < start) if np.isfinite(start) else np.arange(len(s))
    after = np.flatnonzero(s >= end) if np.isfinite(end) else np.array([], dtype=int)
    return (int(before[-1]) if len(before) else -1, int(after[0]) if len(after) else -1)


def eps_trend(eps: Sequence[float], steps: Sequence[np.ndarray], baseline: np.ndarray, copy: np.ndarray,
              n_perm: int = 10000, seed: int = 0) -> dict:
    """:func:`trend_test` of the per-baseline mean shift against log10 eps over runs.

    Args:
        eps: ``(E,)`` the runs' relative perturbation sizes.
        steps: ``E`` arrays ``(K,)`` of a key step per network (same layout in every run).
        baseline, copy: ``(K,)`` replicate labels (the runs share their baselines: the
            permutation stays within a baseline).
        n_perm, seed: of :func:`trend_test`.

    Returns:
        :func:`trend_test`'s dict.
    """
    per = np.stack([per_baseline(step_shift(s, baseline, copy), baseline, copy) for s in steps])   # (E, R)
    x = np.repeat(np.log10(np.asarray(eps, dtype=np.float64)), per.shape[1])
    strata = np.tile(np.arange(per.shape[1]), per.shape[0])
    return trend_test(x, per.ravel(), strata=strata, n_perm=n_perm, seed=seed)


def phase_values(icheck_steps: np.ndarray, members: np.ndarray, own: np.ndarray, start: np.ndarray,
                 end: np.ndarray, curves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-pair curves at the interpolation checkpoints before and after the pair grokked.

    Args:
        icheck_steps: ``(I,)`` steps of the interpolation checkpoints.
        members: ``(J,)`` the interpolated copies (rows of the member axis).
        own: ``(K,)`` each network's own baseline row.
        start: ``(K,)`` test-0.5 steps; a pair starts at the earlier of its two (NaN ignored).
        end: ``(K,)`` test-0.9 steps; a pair has grokked at the later of its two (NaN if either
            never did).
        curves: name -> ``(J, I)`` values per interpolated copy and checkpoint.

    Returns:
        ``step_before``, ``step_after`` and ``<name>_before``, ``<name>_after``, each ``(J,)``
        (NaN where :func:`phase_checkpoints` finds no checkpoint).
    """
    out: dict[str, list] = {"step_before": [], "step_after": []}
    for name in curves:
        out[f"{name}_before"], out[f"{name}_after"] = [], []
    steps = np.asarray(icheck_steps, dtype=np.float64)
    for j, m in enumerate(np.asarray(members, dtype=int)):
        pair = [m, int(own[m])]
        first = np.nanmin(start[pair]) if np.isfinite(start[pair]).any() else np.nan   # either started
        idx = dict(zip(("before", "after"), phase_checkpoints(steps, first, np.max(end[pair]))))  # both grokked
        for ph, i in idx.items():
            out[f"step_{ph}"].append(steps[i] if i >= 0 else np.nan)
            for name, v in curves.items():
                out[f"{name}_{ph}"].append(v[j, i] if i >= 0 else np.nan)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
