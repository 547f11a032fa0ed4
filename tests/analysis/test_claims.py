"""pathdep.analysis.claims: decision rules both ways, curve statistics with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pathdep.analysis import claims as C


@pytest.mark.parametrize("lo,hi,expect", [(0.6, 0.9, C.SUPPORTED), (0.1, 0.4, C.CONTRADICTED),
                                          (0.4, 0.6, C.INCONCLUSIVE)])
def test_decide_above(lo, hi, expect):
    assert C.decide_above(lo, hi, 0.5) == expect
    flipped = {C.SUPPORTED: C.CONTRADICTED, C.CONTRADICTED: C.SUPPORTED}.get(expect, expect)
    assert C.decide_below(lo, hi, 0.5) == flipped


def test_nan_interval_is_inconclusive_with_reason():
    assert C.decide_above(math.nan, math.nan, 0.0) == "inconclusive (one baseline: no interval)"
    assert C.decide_within(math.nan, 1.0, 0, 2, why="no se") == "inconclusive (no se)"


@pytest.mark.parametrize("lo,hi,expect", [(0.9, 1.1, C.SUPPORTED), (1.3, 1.5, C.CONTRADICTED),
                                          (0.5, 0.7, C.CONTRADICTED), (0.7, 0.9, C.INCONCLUSIVE)])
def test_decide_within(lo, hi, expect):
    assert C.decide_within(lo, hi, 0.8, 1.2) == expect


def test_across_baselines_needs_two():
    m, lo, hi = C.across_baselines(np.array([2.0]))
    assert m == 2.0 and math.isnan(lo) and math.isnan(hi)
    m, lo, hi = C.across_baselines(np.array([1.0, 2.0, 3.0, np.nan]))
    assert m == pytest.approx(2.0) and lo < 1.0 < 3.0 < hi
    assert math.isnan(C.across_baselines(np.array([np.nan]))[0])


def test_late_exponent_known_answers():
    t = np.arange(0, 1001, 10.0)
    assert C.late_exponent(t, 3 * t) == pytest.approx(1.0)
    assert C.late_exponent(t, np.sqrt(t)) == pytest.approx(0.5)
    assert C.late_exponent(t, np.exp(t / 100)) > 3           # exponential bends up
    assert math.isnan(C.late_exponent(t[:3], t[:3]))          # too few points


def test_late_slope_and_loglog():
    t = np.linspace(0, 100, 51)
    assert C.late_slope(t, 0.5 * t + 3) == pytest.approx(0.5)
    x = np.array([1.0, 2.0, 4.0, 8.0])
    p, se = C.loglog_slope(x, 5 * x ** -0.5)
    assert p == pytest.approx(-0.5) and se == pytest.approx(0, abs=1e-12)
    p, se = C.loglog_slope(x[:2], x[:2])
    assert p == pytest.approx(1.0) and math.isnan(se)


def test_normal_interval():
    assert C.normal_interval(1.0, 0.5) == pytest.approx((1.0, 1.0 - 0.98, 1.0 + 0.98), abs=1e-4)
    assert math.isnan(C.normal_interval(1.0, math.nan)[1])


def test_final_value_and_nearest():
    assert C.final_value(None, np.array([1.0, 2.0, np.nan])) == 2.0
    assert math.isnan(C.final_value(None, np.array([np.nan])))
    assert C.nearest(np.array([5, 10, 20, 30]), 22.5) == 20.0
    assert C.nearest(np.array([5, 10, 20]), 0.0) == 5.0


def test_region():
    assert C.region("above", 0.5) == (0.5, math.inf) and C.region("below", 0.0) == (-math.inf, 0.0)


def test_steps_per_epoch():
    assert C.steps_per_epoch(np.array([0, 937, 1874]), np.array([0.0, 1.0, 2.0])) == pytest.approx(937)
    assert math.isnan(C.steps_per_epoch(np.array([0]), np.array([0.0])))


def test_late_statistics_on_sparse_log_spaced_checkpoints():
    t = np.array([0, 1, 3, 10, 30, 100, 300, 1000.0])       # 2 points in the last half of the steps
    assert C.late_exponent(t, 2 * t) == pytest.approx(1.0)
    assert C.late_slope(t, 2 * t + 1) == pytest.approx(2.0)
