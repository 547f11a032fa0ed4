"""pathdep.analysis.claims_stats: each statistic on synthetic data whose verdict is known,
both ways (supported and contradicted), and with one baseline (inconclusive, no interval)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pathdep.analysis import claims_stats as S
from pathdep.analysis.claims import CONTRADICTED, INCONCLUSIVE, SUPPORTED, late_exponent, late_slope

RNG = np.random.default_rng(0)
ONE = "inconclusive (one baseline: no interval)"


def _noisy(x, scale=0.01, r=4):
    return np.asarray(x, float)[None, :] * (1 + scale * RNG.standard_normal((r, len(x))))


def test_form_share_both_ways_and_one_baseline():
    base = np.repeat(np.arange(4), 10)
    mostly = np.where(RNG.random(40) < 0.9, "exp_linear", "power_law")
    mostly[::10] = "exp_linear"
    rarely = np.where(np.arange(40) % 10 == 0, "exp_linear", "sqrt")
    assert S.form_share(mostly, base, ("exp_linear",)).verdict == SUPPORTED
    assert S.form_share(rarely, base, ("exp_linear",)).verdict == CONTRADICTED
    assert S.form_share(rarely, base, ("sqrt", "sphere"), 0.5, "below").verdict == CONTRADICTED
    one = S.form_share(mostly[:10], np.zeros(10, int), ("exp_linear",))
    assert one.verdict == ONE and one.value == pytest.approx(np.mean(mostly[:10] == "exp_linear"))
    assert "no fitted curves" in S.form_share(np.array([]), np.array([]), ("x",)).verdict


def test_sweep_exponent_linear_vs_flat():
    x = np.array([0.003, 0.01, 0.03, 0.1])
    steps = np.linspace(0, 1000, 41)
    rates = np.array([[late_slope(steps, a * steps) for a in x * f] for f in (1, 1.02, 0.98, 1.01)])
    assert S.sweep_exponent(x, rates).value == pytest.approx(1.0, abs=0.02)
    assert S.sweep_exponent(x, rates).verdict == SUPPORTED
    assert S.sweep_exponent(x, _noisy(np.ones(4))).verdict == CONTRADICTED      # slopes independent of x
    assert S.sweep_exponent(x, rates[:1]).verdict == ONE


def test_endpoint_change_curving_down_and_up():
    t = np.linspace(1, 1000, 50)
    concave = [late_exponent(t, t ** 0.6), late_exponent(t, t ** 0.8), late_exponent(t, t ** 1.0)]
    exps = _noisy(concave[::-1])                       # exponent falls along the sweep
    assert S.endpoint_change(exps, "below").verdict == SUPPORTED
    assert S.endpoint_change(_noisy(concave), "below").verdict == CONTRADICTED
    assert S.endpoint_change(_noisy([1.0, 3.0]), "above", log=True).value == pytest.approx(math.log(3), abs=0.05)
    assert "fewer than 2" in S.endpoint_change(np.ones((3, 1)), "above").verdict


def test_level_and_source_share():
    assert S.level(np.array([2.0, 2.1, 1.9]), 1.0).verdict == SUPPORTED
    assert S.level(np.array([0.9, 0.95, 0.92]), 1.0).verdict == CONTRADICTED
    assert S.source_share(np.array([0.4, 0.42, 0.41]), np.array([0.01, 0.012, 0.011])).verdict == SUPPORTED
    assert S.source_share(np.array([0.1, 0.11, 0.1]), np.array([0.1, 0.09, 0.1])).verdict == CONTRADICTED
    assert S.source_share(np.array([0.4]), np.array([0.01])).verdict == ONE


def test_weakest_auc():
    good = S.weakest_auc(np.array([0.9, 0.8, 0.75]), np.array([0.01, 0.01, 0.01]), ["a", "b", "c"])
    assert good.verdict == SUPPORTED and good.note == "weakest: c" and good.value == 0.75
    bad = S.weakest_auc(np.array([0.9, 0.4]), np.array([0.01, 0.01]), ["a", "b"])
    assert bad.verdict == CONTRADICTED
    assert S.weakest_auc(np.array([0.55]), np.array([0.05]), ["a"]).verdict == INCONCLUSIVE


def test_fraction_difference():
    assert S.fraction_difference(0.14, 2000, 0.65, 2000).verdict == SUPPORTED
    assert S.fraction_difference(0.30, 20000, 0.301, 20000).verdict == CONTRADICTED
    assert S.fraction_difference(0.30, 50, 0.35, 50).verdict == INCONCLUSIVE


def test_koopman_pairs():
    assert S.conjugate_pair(0.7, np.array([0.01, 0.009])).verdict == SUPPORTED
    assert S.conjugate_pair(0.01, np.array([0.01, 0.009])).verdict == CONTRADICTED
    assert S.conjugate_pair(0.7, np.array([0.01, 0.3])).verdict == INCONCLUSIVE
    assert S.nonconjugate_pair(0.01, 0.2, 0.1).verdict == SUPPORTED
    assert S.nonconjugate_pair(0.6, 0.09, 0.1).verdict == CONTRADICTED
    assert S.nonconjugate_pair(0.2, 0.12, 0.1).verdict == INCONCLUSIVE


def test_window_transition():
    W = 9
    steps = np.arange(W)
    early_big = np.abs(np.exp(-steps)[:, None] - np.exp(-steps)[None, :]) + 1e-3
    runs = np.stack([early_big * (1 + 0.05 * k) for k in range(4)])
    assert S.window_transition(runs).verdict == SUPPORTED
    late_big = np.abs(np.exp(steps - W)[:, None] - np.exp(steps - W)[None, :]) + 1e-3
    assert S.window_transition(np.stack([late_big * (1 + 0.05 * k) for k in range(4)])).verdict == CONTRADICTED
    assert S.window_transition(runs[:1]).verdict == "inconclusive (one run: no interval)"


def test_exponent_near_and_decreasing():
    assert S.exponent_near(-0.49, 0.01, -0.5, 0.15).verdict == SUPPORTED
    assert S.exponent_near(-0.86, 0.04, -0.5, 0.15).verdict == CONTRADICTED
    assert S.exponent_near(-0.5, math.nan, -0.5, 0.15).verdict == "inconclusive (no standard error)"
    w = np.array([64.0, 256.0, 1024.0, 4096.0])
    dev = np.stack([3 * w ** -0.5, 1.5 * w ** -0.5]) * (1 + 0.01 * RNG.standard_normal((2, 4)))
    down = S.decreasing(w, dev)
    assert down.verdict == SUPPORTED and down.value == pytest.approx(-0.5, abs=0.03)
    assert S.decreasing(w, 1 / dev).verdict == CONTRADICTED
    assert "too few" in S.decreasing(w[:2], dev[:1, :2]).verdict


def test_catapult_brackets():
    f = np.array([0.5, 0.9, 1.05, 1.1, 2.0, 2.2, 6.0])
    assert S.transition_bracket(f, f > 2.1) == (2.0, 2.2)
    assert S.bracket_contains(2.0, 2.2, 2.0, "2/l").verdict == CONTRADICTED
    assert S.bracket_contains(1.9, 2.2, 2.0, "2/l").verdict == SUPPORTED
    lo, hi = S.transition_bracket(f, np.zeros(7))
    assert "not bracketed" in S.bracket_contains(lo, hi, 2.0, "2/l").verdict


def test_dominoes_statistics():
    assert S.onset_difference(np.array([3.0, 3.2, 2.9]), np.array([9.0, 8.5, 9.4])).verdict == SUPPORTED
    assert S.onset_difference(np.array([9.0, 8.5, 9.4]), np.array([3.0, 3.2, 2.9])).verdict == CONTRADICTED
    x = np.array([0.2, 0.5, 1.0])
    assert S.reliance_slope(x, _noisy(x - 0.4, 0.05)).verdict == SUPPORTED
    assert S.reliance_slope(x, _noisy(0.4 - x, 0.05)).verdict == CONTRADICTED
    assert S.reliance_slope(x, (x - 0.4)[None, :]).verdict == ONE


def test_reliance_slope_skips_missing_points():
    x = np.array([0.2, 0.5, 1.0])
    rel = np.array([[-0.2, np.nan, 0.6], [-0.21, 0.1, 0.58], [-0.19, 0.11, 0.61]])
    out = S.reliance_slope(x, rel)
    assert out.verdict == SUPPORTED and out.value == pytest.approx(1.0, abs=0.05)


def test_predicted_ranges_and_level_averages_runs():
    assert S.form_share(np.array(["a"]), np.array([0]), ("a",)).predicted == (0.5, math.inf)
    assert S.sweep_exponent(np.array([1.0, 2.0]), np.ones((1, 2))).predicted == pytest.approx((0.8, 1.2))
    assert S.bracket_contains(1.0, 2.0, 2.0, "u").predicted == (2.0, 2.0)
    out = S.level(np.array([[2.0, 4.0], [3.0, 3.0], [2.5, 3.5]]), 1.0)
    assert out.value == pytest.approx(3.0) and out.verdict == SUPPORTED


def test_onset_epochs():
    base = np.repeat(np.arange(3), 4)
    short = S.onset_epochs(np.array([200.0, 250, 300, 220] * 3) * (1 + 0.01 * base), 937.0, base)
    assert short.verdict == SUPPORTED and short.value == pytest.approx(235 / 937, rel=0.05)
    assert S.onset_epochs(np.full(12, 3000.0) * (1 + 0.01 * base), 937.0, base).verdict == CONTRADICTED
    assert S.onset_epochs(np.full(4, 200.0), 937.0, np.zeros(4, int)).verdict == ONE
    assert "no exp_linear" in S.onset_epochs(np.array([]), 937.0, np.array([], int)).verdict


def test_relative_agreement():
    assert S.relative_agreement(0.1e-4, -0.2e-4, 0.3e-4, 1e-4).verdict == SUPPORTED
    assert S.relative_agreement(-0.8e-4, -0.9e-4, -0.7e-4, 1e-4).verdict == CONTRADICTED
    assert S.relative_agreement(0.0, -0.1, 0.1, 1.0, resolved=False).verdict == "inconclusive (lambda_1 not resolved)"
    assert S.relative_agreement(-0.5, math.nan, math.nan, 1.0).verdict == ONE


def test_disagreement_ratio():
    glob = np.array([0.08, 0.085, 0.075])
    assert S.disagreement_ratio(np.array([0.01, 0.012, 0.011]), glob).verdict == SUPPORTED
    assert S.disagreement_ratio(np.array([0.07, 0.08, 0.075]), glob).verdict == CONTRADICTED
    assert S.disagreement_ratio(np.array([0.01]), glob[:1]).verdict == ONE


def test_nonconjugate_pair_with_a_test_that_cannot_reject():
    out = S.nonconjugate_pair(0.1, 0.09, 0.1, p_floor=0.1)
    assert out.verdict == "inconclusive (the test's smallest p is 0.1)"
    assert S.nonconjugate_pair(0.01, 0.2, 0.1, p_floor=0.001).verdict == SUPPORTED


def test_bracket_above():
    assert S.bracket_above(5.0, 6.0, 1.0, "2/l").verdict == SUPPORTED
    assert S.bracket_above(0.5, 0.9, 1.0, "2/l").verdict == CONTRADICTED
    assert S.bracket_above(0.9, 1.1, 1.0, "2/l").verdict == INCONCLUSIVE
    assert "not bracketed" in S.bracket_above(math.nan, math.nan, 1.0, "2/l").verdict


def test_no_interval_says_why():
    """Three baselines of which only one gives a value is not 'one baseline'."""
    out = S.endpoint_change(np.array([[1.0, 2.0], [np.nan, 2.0], [1.0, np.nan]]), "above")
    assert out.verdict == "inconclusive (1 of 3 baselines give a value: no interval)"
    assert S.window_transition(np.ones((1, 4, 4)) + np.eye(4)).verdict.startswith("inconclusive (one run")
