"""Permutation p-values of between- minus within-group distances, exact or Monte Carlo.

What it computes: the two-group permutation test behind
:func:`pathdep.analysis.koopman.conjugacy_test` (Redman et al., NeurIPS 2024, compare
Koopman spectra of two training settings). Given the (n, n) matrix of distances between
n = n_a + n_b replicate spectra (group A first), the statistic is the mean between-group
distance minus the mean within-group distance (within pairs of A and of B pooled); under
the null the replicates are exchangeable, so every split of the n replicates into n_a and
n_b is equally likely.

* :func:`split_statistics`: the statistic of many splits at once (a split is a boolean row
  marking group A): with m the (P, n) indicator and D the distances, the A-A sum is
  m D m^T / 2, the B-B sum (1 - m) D (1 - m)^T / 2, the A-B sum m D (1 - m)^T.
* :func:`permutation_pvalue`: the exact test when the number of splits C(n, n_a) is at
  most ``max_exact`` (every split enumerated, the observed one included:
  p = #{stat_split >= stat} / C(n, n_a)); else ``n_perm`` random splits
  (p = (1 + #{stat_perm >= stat}) / (1 + n_perm)). Each p comes with its floor ``p_min``:
  exact, the smallest attainable p (the observed split and, when n_a = n_b, its mirror, out
  of C(n, n_a): 1/10 for 3 vs 3, 1/35 for 4 vs 4, 1/126 for 5 vs 5); Monte Carlo, its
  resolution 1/(1 + n_perm).
* :func:`exact_min_p` and :func:`replicates_needed`: that floor, and the fewest
  replicates per group (equal groups) whose exact floor is at most a level alpha (4 at
  0.05): with fewer, the test cannot reject whatever the data.

How it was checked: tests/analysis/test_koopman_stats.py (the vectorised statistic equals
the loop over pairs; the exact p of a perfectly separated 3 vs 3 design is 1/10 and of
4 vs 4 1/35; Monte Carlo p agrees with the exact p on a 6 vs 6 design within 0.02; identical
replicates give p = 1 (ties count against rejection)), and the calibration of
:mod:`pathdep.analysis.koopman_calibration`: under the null the exact test rejects at 0.05
in at most 0.05 + binomial noise of repeats.
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np

#: Largest number of splits enumerated exactly (C(16, 8) = 12870, C(18, 9) = 48620 ... are exact).
MAX_EXACT = 100_000


def split_statistics(d: np.ndarray, in_a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean between minus mean within distance for P splits.

    Args:
        d: (n, n) symmetric distances with a zero diagonal.
        in_a: (P, n) boolean, True where a replicate is in group A (every row holds the
            same count n_a; at least one within pair overall).

    Returns:
        (statistic, between, within), each (P,).
    """
    d = np.asarray(d, dtype=np.float64)
    a = np.asarray(in_a, dtype=np.float64)
    b = 1.0 - a
    na, nb = a[0].sum(), b[0].sum()
    da = a @ d
    s_aa = np.einsum("pi,pi->p", da, a) / 2
    s_ab = np.einsum("pi,pi->p", da, b)
    s_bb = np.einsum("pi,pi->p", b @ d, b) / 2
    n_within = na * (na - 1) / 2 + nb * (nb - 1) / 2
    within = (s_aa + s_bb) / n_within
    between = s_ab / (na * nb)
    return between - within, between, within


def exact_min_p(n_a: int, n_b: int) -> float:
    """Smallest p-value the exact two-group permutation test can give (n_a vs n_b replicates)."""
    return (2 if n_a == n_b else 1) / comb(n_a + n_b, n_a)


def replicates_needed(alpha: float = 0.05, max_n: int = 50) -> int:
    """Fewest replicates per group (n vs n) whose exact p floor is <= ``alpha``."""
    for n in range(2, max_n + 1):
        if exact_min_p(n, n) <= alpha:
            return n
    raise ValueError(f"replicates_needed: no n <= {max_n} reaches p <= {alpha}")


def permutation_pvalue(d: np.ndarray, n_a: int, n_perm: int = 1000, seed: int = 0,
                       max_exact: int = MAX_EXACT) -> dict:
    """Permutation p-value of between- minus within-group distance.

    Args:
        d: (n, n) symmetric distances, replicates of group A in rows ``:n_a``.
        n_a: size of group A (group B is the rest); both >= 2.
        n_perm: random splits when the test is not exact.
        seed: RNG of the random splits.
        max_exact: enumerate every split when C(n, n_a) <= this.

    Returns:
        dict with ``statistic``, ``w1_between``, ``w1_within`` (observed means),
        ``p_value``, ``p_method`` (``"exact"`` or ``"monte_carlo"``), ``p_min`` (exact: the
        smallest attainable p; Monte Carlo: the resolution 1/(1 + n_perm)) and
        ``n_splits`` (splits evaluated).
    """
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    n_b = n - n_a
    if n_a < 2 or n_b < 2:
        raise ValueError(f"permutation test: need >= 2 replicates per group (got {n_a} and {n_b})")
    obs = np.zeros((1, n), dtype=bool)
    obs[0, :n_a] = True
    stat, between, within = (float(x[0]) for x in split_statistics(d, obs))
    tol = 1e-12 * max(1.0, abs(stat))
    total = comb(n, n_a)
    if total <= max_exact:
        splits = np.zeros((total, n), dtype=bool)
        for i, idx in enumerate(itertools.combinations(range(n), n_a)):
            splits[i, list(idx)] = True
        s = split_statistics(d, splits)[0]
        p, method, p_min, used = np.sum(s >= stat - tol) / total, "exact", exact_min_p(n_a, n_b), total
    else:
        rng = np.random.default_rng(seed)
        splits = rng.permuted(np.tile(obs[0], (int(n_perm), 1)), axis=1)
        s = split_statistics(d, splits)[0]
        p, method, p_min, used = (1 + np.sum(s >= stat - tol)) / (1 + n_perm), "monte_carlo", 1 / (1 + n_perm), n_perm
    return {"statistic": stat, "w1_between": between, "w1_within": within, "p_value": float(p),
            "p_method": method, "p_min": float(p_min), "n_splits": int(used)}
