"""Known answers of pathdep.analysis.architecture: planted exponential rates and linear slopes,
per-baseline averaging, the verdict both ways and its null case."""

import math

import numpy as np
import pytest

from pathdep.analysis import architecture as A

STEPS = np.array([0, 1, 2, 3, 5, 8, 13, 20, 32, 50, 80, 120, 200])


def test_log_rate_recovers_planted_rate_whatever_the_normalisation():
    lam = 0.013
    curve = 1e-4 * np.exp(lam * STEPS)
    assert A.log_rate(STEPS, curve, 0, 50) == pytest.approx(lam, rel=1e-12)
    # a constant normalisation (sqrt(P), |w(0)|) leaves the rate unchanged
    for c in (1.0 / math.sqrt(79510), 37.0):
        assert A.log_rate(STEPS, c * curve, 0, 50) == pytest.approx(lam, rel=1e-12)
    # only the window's checkpoints count: a kink after t1 does not change it
    kinked = np.where(STEPS <= 50, curve, curve[STEPS == 50] * 100.0)
    assert A.log_rate(STEPS, kinked, 0, 50) == pytest.approx(lam, rel=1e-12)
    assert A.log_rate(STEPS, kinked, 0, 200) > 2 * lam


def test_log_rate_skips_nonpositive_and_needs_two_points():
    curve = np.exp(0.02 * STEPS)
    curve[0] = 0.0
    assert A.log_rate(STEPS, curve, 0, 20) == pytest.approx(0.02, rel=1e-12)
    assert math.isnan(A.log_rate(STEPS, curve, 0, 0))


def test_lin_slope_on_the_late_part_only():
    curve = np.where(STEPS < 100, np.exp(0.05 * STEPS), 3e-3 * STEPS + 1.0)
    assert A.lin_slope(STEPS, curve, 0.5) == pytest.approx(3e-3, rel=1e-12)


def test_relative_distance_divides_by_the_own_baseline_norm():
    dist = np.array([[0, 0], [1, 2], [0, 0], [3, 6]], float)
    norm = np.array([[2, 4], [9, 9], [10, 10], [1, 1]], float)
    b, c = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    np.testing.assert_allclose(A.relative_distance(dist, norm, b, c), [[0, 0], [0.5, 0.5], [0, 0], [0.3, 0.6]])


def _ensemble(rates: list[float], copies: int, noise: float, rng) -> tuple:
    """Relative distances (K, C) and rms (K, C) of R = len(rates) baselines with planted rates."""
    rows, base, copy = [], [], []
    for r, lam in enumerate(rates):
        for k in range(copies + 1):
            jitter = 0.0 if k == 0 else noise * rng.standard_normal()
            rows.append(1e-4 * np.exp((lam + jitter) * STEPS) if k else np.zeros(len(STEPS)))
            base.append(r)
            copy.append(k)
    rel = np.array(rows)
    return rel, rel * 2.0, np.array(base), np.array(copy)


def test_per_baseline_rates_average_copies_within_a_baseline():
    rng = np.random.default_rng(0)
    rel, rms, b, c = _ensemble([0.01, 0.02, 0.03], copies=2, noise=0.0, rng=rng)
    out = A.per_baseline_rates(STEPS, rel, rms, b, c, (0, 50), 0.5)
    np.testing.assert_allclose(out["early_rate"], [0.01, 0.02, 0.03], rtol=1e-12)
    assert out["late_slope"].shape == (3,)
    m, lo, hi, n = A.summarize(out["early_rate"])
    assert (m, n) == (pytest.approx(0.02), 3) and lo < 0.02 < hi


def _verdict_of(rates_a, rates_b, seed):
    rng = np.random.default_rng(seed)
    ra = A.per_baseline_rates(STEPS, *_ensemble(rates_a, 2, 1e-3, rng), (0, 50), 0.5)["early_rate"]
    rb = A.per_baseline_rates(STEPS, *_ensemble(rates_b, 2, 1e-3, rng), (0, 50), 0.5)["early_rate"]
    m, lo, hi, how = A.difference(ra, rb)
    return m, lo, hi, A.verdict(lo, hi), how


def test_planted_lower_rate_is_a_decrease_and_higher_is_not():
    base = [0.020, 0.024, 0.018, 0.022, 0.021]
    m, lo, hi, v, how = _verdict_of([x - 0.01 for x in base], base, 1)
    assert v == A.DECREASE and hi < 0 and m == pytest.approx(-0.01, abs=2e-3) and how == "paired t"
    assert _verdict_of([x + 0.01 for x in base], base, 2)[3] == A.NO_DECREASE


def test_null_case_is_never_declared_a_decrease():
    # same planted rates, independent copy noise: the 95 % interval may miss 0 in ~5 % of
    # draws in either direction; over 40 seeds a decrease must stay rare
    base = [0.020, 0.024, 0.018, 0.022, 0.021]
    verdicts = [_verdict_of(base, base, s)[3] for s in range(40)]
    assert verdicts.count(A.DECREASE) <= 5
    assert verdicts.count(A.INCONCLUSIVE) >= 30


def test_welch_when_baseline_counts_differ_and_no_interval_from_one():
    m, lo, hi, how = A.difference(np.array([1.0, 1.2, 0.9, 1.1]), np.array([2.0, 2.1, 1.9]))
    assert how == "welch t" and hi < 0 and m == pytest.approx(1.05 - 2.0)
    m, lo, hi, _ = A.difference(np.array([1.0]), np.array([2.0]))
    assert m == pytest.approx(-1.0) and math.isnan(lo) and A.verdict(lo, hi) == A.INCONCLUSIVE
