"""Koopman spectra of the runs of one experiment, W1 between them and conjugacy tests
between groups of runs (Redman et al., NeurIPS 2024, the FCN and LeNet-5 studies).

What it computes (arrays in, arrays out; the stage ``pathdep.stages.koopman`` reads the
trajectories and writes the tables):

* :func:`uniform_segment`: the longest run of evenly spaced checkpoints (DMD needs one
  time step).
* :func:`safe_spectrum` and :func:`run_spectra`: per run, the spectrum pooled over its
  K members, one spectrum per independent baseline pooled over that baseline and its own
  perturbed copies (the paper's "10 initialisations" of one seed: a replicate) and one
  spectrum per member, degenerate ones replaced by None with the reason; W1 between each
  member and its own baseline.
* :func:`w1_between_runs`: the (n, n) matrix of W1 between the runs' pooled spectra
  (NaN where a spectrum is missing, 0 on the diagonal).
* :func:`group_pair_tests`: for each pair of groups, the mean between- and within-group
  W1 and the permutation p-value of :func:`pathdep.analysis.koopman.conjugacy_test` with
  its floor; the replicates are the per-baseline spectra of a group's runs (seeds x
  independent baselines), never the perturbed copies of one baseline (near-identical
  pseudo-replicates whose null rejects any difference: issue 18).
* :func:`pad_spectra` and :func:`pad_windows`: NaN-padded arrays of spectra of unequal
  length, as the netCDF stores them.

How it was checked: tests/analysis/test_koopman_groups.py (the segment finder on uneven
grids; padding; W1 matrix symmetric with a zero diagonal; a linear system per group gives
a small p between groups and a large one within), and tests/stages/test_koopman.py
(synthetic trajectory files of two linear systems come out conjugate within a group and
not between groups; the replicates are baselines, not copies: one baseline per run gives
no test).
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from pathdep.analysis.koopman import (
    DegenerateSpectrumError, check_spectrum, conjugacy_test, koopman_eigenvalues, spectral_distance,
)

#: Columns of the group-pair table, in order.
TABLE_COLUMNS = ("experiment", "a", "b", "n_a", "n_b", "w1_between", "w1_within", "w1_within_a", "w1_within_b",
                 "p_value", "p_method", "p_min", "note")
_TEST_KEYS = ("w1_between", "w1_within", "w1_within_a", "w1_within_b", "p_value", "p_method", "p_min")


def uniform_segment(steps: np.ndarray) -> slice:
    """The longest run of checkpoints with one constant spacing.

    Args:
        steps: (T,) increasing training steps.

    Returns:
        The slice of ``steps`` (the first such run on ties).
    """
    steps = np.asarray(steps)
    if len(steps) < 2:
        return slice(0, len(steps))
    d = np.diff(steps)
    best, start = (0, 1), 0
    for i in range(1, len(d) + 1):
        if i == len(d) or d[i] != d[start]:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = i
    return slice(best[0], best[1] + 1)


def safe_spectrum(y: np.ndarray, n_delays: int, rank, tol: float, name: str) -> tuple[np.ndarray | None, str]:
    """Checked Koopman eigenvalues of (N, T, D) series, or (None, reason) when degenerate.

    Args:
        y: (N, T, D) observables.
        n_delays, rank: as in :func:`pathdep.analysis.koopman.koopman_eigenvalues`.
        tol: collapse tolerance of :func:`pathdep.analysis.koopman.check_spectrum`.
        name: used in the reason.
    """
    try:
        ev = koopman_eigenvalues(y, n_delays=n_delays, rank=rank)
        return check_spectrum(ev, tol=tol, name=name), ""
    except (DegenerateSpectrumError, ValueError) as exc:
        return None, str(exc)


def run_spectra(y: np.ndarray, n_delays: int, rank, tol: float, name: str,
                baseline: np.ndarray | None = None, copy: np.ndarray | None = None) -> dict:
    """Pooled, per-baseline and per-member spectra of one run; W1 from each member to its baseline.

    Args:
        y: (K, T, D) observables of the K members, in blocks of independent baselines
            (block r: baseline r, then its perturbed copies); members with a non-finite
            value (diverged) drop out of every pool and get no spectrum.
        n_delays, rank, tol: DMD settings and the collapse tolerance.
        name: prefix of the notes (``<name>/baseline<r>``, ``<name>/member<k>``).
        baseline, copy: (K,) labels of :func:`pathdep.analysis.replicates.labels` (None:
            one block, member 0 the baseline).

    Returns:
        dict with ``pooled`` ((r,) complex or None: every member), ``note`` (why it is
        None, else ""), ``replicates`` (R spectra, one per independent baseline, pooled over
        that baseline and its own copies: the replicates of the conjugacy test),
        ``replicate_notes`` (R), ``members`` (K spectra or None) and ``member_w1`` (K floats:
        W1 to the member's own baseline, NaN where missing).
    """
    k_all = y.shape[0]
    baseline = np.zeros(k_all, dtype=int) if baseline is None else np.asarray(baseline, dtype=int)
    copy = np.arange(k_all) if copy is None else np.asarray(copy, dtype=int)
    ok = np.all(np.isfinite(y), axis=(1, 2))
    pooled, note = safe_spectrum(y[ok], n_delays, rank, tol, name)
    reps, rep_notes = [], []
    for r in range(int(baseline.max()) + 1 if k_all else 0):
        sel = ok & (baseline == r)
        e, why = (safe_spectrum(y[sel], n_delays, rank, tol, f"{name}/baseline{r}") if sel.any()
                  else (None, f"{name}/baseline{r}: every member diverged"))
        reps.append(e)
        rep_notes.append(why)
    members = [(safe_spectrum(y[k:k + 1], n_delays, rank, tol, f"{name}/member{k}")[0] if ok[k] else None)
               for k in range(k_all)]
    own = {int(b): k for k, (b, c) in enumerate(zip(baseline, copy)) if c == 0}
    member_w1 = []
    for k, e in enumerate(members):
        base = members[own[int(baseline[k])]] if int(baseline[k]) in own else None
        member_w1.append(spectral_distance(base, e) if base is not None and e is not None else np.nan)
    return {"pooled": pooled, "note": note, "replicates": reps, "replicate_notes": rep_notes,
            "members": members, "member_w1": member_w1}


def w1_between_runs(pooled: Sequence[np.ndarray | None]) -> np.ndarray:
    """(n, n) W1 between spectra: 0 on the diagonal, NaN where one is missing.

    Each off-diagonal entry is computed in its own order (``W1(a_i, a_j)``), as the
    conjugacy tables of every experiment were.
    """
    n = len(pooled)
    d = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            if pooled[i] is not None and pooled[j] is not None:
                d[i, j] = 0.0 if i == j else spectral_distance(pooled[i], pooled[j])
    return d


def group_pair_tests(labels: Sequence[str], replicates: Sequence[Sequence[np.ndarray | None]], n_perm: int,
                     seed: int, tol: float) -> list[dict]:
    """Conjugacy test of every pair of groups (in order of first appearance).

    Args:
        labels: (n,) group of each run.
        replicates: per run, its independent replicate spectra (one per baseline, None:
            degenerate); a group's replicates are those of all its runs (seeds x baselines).
            Perturbed copies of a baseline are never replicates: they share its seed.
        n_perm, seed, tol: of :func:`pathdep.analysis.koopman.conjugacy_test`.

    Returns:
        One row per pair: a, b, n_a, n_b (replicates) and the test's W1 means, p-value,
        ``p_method`` and ``p_min`` (its floor); NaN with the reason in ``note`` when the
        test cannot run (e.g. one baseline per group: no null).
    """
    labels = list(labels)
    reps = {g: [e for i, lab in enumerate(labels) if lab == g for e in replicates[i] if e is not None]
            for g in dict.fromkeys(labels)}
    rows = []
    for ga, gb in itertools.combinations(list(reps), 2):
        rep_a, rep_b = reps[ga], reps[gb]
        row = {"a": ga, "b": gb, "n_a": len(rep_a), "n_b": len(rep_b)}
        try:
            if min(len(rep_a), len(rep_b)) < 2:
                raise ValueError(f"{len(rep_a)} and {len(rep_b)} independent replicate spectra (runs x "
                                 "baselines): no null, need >= 2 per group (one baseline: no test)")
            t = conjugacy_test(rep_a, rep_b, n_perm=n_perm, seed=seed, tol=tol)
            row.update({k: t[k] for k in _TEST_KEYS}, note="")
        except (DegenerateSpectrumError, ValueError) as exc:
            row.update({k: (np.nan if k != "p_method" else "") for k in _TEST_KEYS}, note=str(exc))
        rows.append(row)
    return rows


def pad_spectra(spectra: Sequence[np.ndarray | None], r: int) -> np.ndarray:
    """(S, r) complex array of S spectra, each padded with NaN (None: all NaN)."""
    out = np.full((len(spectra), r), np.nan + 0j)
    for i, e in enumerate(spectra):
        if e is not None:
            out[i, :len(e)] = e
    return out


def pad_nested(nested: Sequence[Sequence[np.ndarray | None]], r: int) -> np.ndarray:
    """(n, L, r) complex array of n lists of spectra (L the longest list), NaN-padded."""
    width = max([len(m) for m in nested] + [1])
    return np.stack([pad_spectra(list(m) + [None] * (width - len(m)), r) for m in nested])


def spectrum_width(*spectra) -> int:
    """Longest spectrum in any of the given (nested) lists (at least 1)."""
    flat = [e for group in spectra for item in group
            for e in (item if isinstance(item, (list, tuple)) else [item]) if e is not None]
    return max([len(e) for e in flat] + [1])


def pad_runs(pooled: Sequence[np.ndarray | None], members: Sequence[Sequence[np.ndarray | None]],
             member_w1: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled (n, r), member (n, K, r) spectra and baseline-member W1 (n, K), NaN-padded.

    ``r`` is the longest spectrum (at least 1), ``K`` the most members of a run.
    """
    r = spectrum_width(pooled, members)
    kmax = max(len(m) for m in members)
    mw = np.full((len(pooled), kmax), np.nan)
    for i, w in enumerate(member_w1):
        mw[i, :len(w)] = w
    return pad_spectra(pooled, r), pad_nested(members, r), mw


def pad_windows(windows: Sequence[tuple]) -> dict[str, np.ndarray]:
    """Per-run window results as NaN / -1 / "" padded arrays over (run, window).

    Args:
        windows: per run ``(bounds, spectra, notes, d)`` of
            :func:`pathdep.analysis.koopman.window_bounds` and
            :func:`pathdep.analysis.koopman.windowed_spectra`.

    Returns:
        ``eig`` (n, W, r) complex, ``w1`` (n, W, W), ``start`` / ``stop`` (n, W) int64
        steps (-1 pad) and ``note`` (n, W) str.
    """
    n = len(windows)
    nw = max(len(b) for b, *_ in windows)
    rw = max([len(e) for _, sp, *_ in windows for e in sp if e is not None] + [1])
    we = np.full((n, nw, rw), np.nan + 0j)
    wd = np.full((n, nw, nw), np.nan)
    wb = np.full((n, nw, 2), -1, dtype=np.int64)
    wn = np.full((n, nw), "", dtype=object)
    for i, (bounds, sp, wnotes, d_w) in enumerate(windows):
        k = len(bounds)
        wd[i, :k, :k] = d_w
        wb[i, :k] = [(b[2], b[3]) for b in bounds]
        wn[i, :k] = wnotes
        we[i, :len(sp)] = pad_spectra(sp, rw)
    return {"eig": we, "w1": wd, "start": wb[..., 0], "stop": wb[..., 1], "note": wn.astype(str)}
