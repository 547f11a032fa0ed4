"""pathdep.analysis.koopman_stats: the split statistic, exact and Monte Carlo p-values, floors."""

import itertools

import numpy as np
import pytest

from pathdep.analysis.koopman_stats import (
    exact_min_p, permutation_pvalue, replicates_needed, split_statistics,
)


def _points(n_a, n_b, shift, seed=0):
    x = np.random.default_rng(seed).standard_normal(n_a + n_b)
    x[:n_a] += shift
    return np.abs(x[:, None] - x[None, :])


def test_split_statistic_equals_loop_over_pairs():
    d = _points(3, 4, 1.0)
    for idx in [(0, 1, 2), (0, 3, 6), (2, 4, 5)]:
        a = np.zeros(7, bool)
        a[list(idx)] = True
        within = [d[i, j] for i, j in itertools.combinations(range(7), 2) if a[i] == a[j]]
        between = [d[i, j] for i in range(7) for j in range(7) if a[i] and not a[j]]
        stat, b, w = split_statistics(d, a[None])
        assert b[0] == pytest.approx(np.mean(between)) and w[0] == pytest.approx(np.mean(within))
        assert stat[0] == pytest.approx(np.mean(between) - np.mean(within))


def test_exact_floors_and_separated_designs():
    assert exact_min_p(3, 3) == pytest.approx(1 / 10) and exact_min_p(4, 4) == pytest.approx(1 / 35)
    assert exact_min_p(5, 5) == pytest.approx(1 / 126) and exact_min_p(3, 4) == pytest.approx(1 / 35)
    assert replicates_needed(0.05) == 4 and replicates_needed(0.01) == 5
    for n, floor in ((3, 1 / 10), (4, 1 / 35)):
        t = permutation_pvalue(_points(n, n, 100.0), n)      # perfectly separated: the floor
        assert t["p_method"] == "exact" and t["p_value"] == pytest.approx(floor) == t["p_min"]
    # 3 vs 3 cannot reject at 0.05 however far apart the groups are
    assert permutation_pvalue(_points(3, 3, 1e6), 3)["p_value"] > 0.05
    # identical replicates: every split ties, p = 1
    assert permutation_pvalue(np.zeros((6, 6)), 3)["p_value"] == 1.0


def test_monte_carlo_agrees_with_exact():
    d = _points(6, 6, 0.8, seed=3)
    ex = permutation_pvalue(d, 6)
    mc = permutation_pvalue(d, 6, n_perm=4000, seed=1, max_exact=10)
    assert ex["p_method"] == "exact" and ex["n_splits"] == 924
    assert mc["p_method"] == "monte_carlo" and mc["p_min"] == pytest.approx(1 / 4001)
    assert abs(mc["p_value"] - ex["p_value"]) < 0.02
    assert mc["statistic"] == pytest.approx(ex["statistic"])
    with pytest.raises(ValueError, match=">= 2 replicates per group"):
        permutation_pvalue(d[:3, :3], 1)
