"""pathdep.analysis.lyapunov_link: the distance growth rate uses only its window, the error
of lambda_max is the larger of its two parts, agreement within two combined errors; the
window growth of a 20x and a 3x perturbation; the link verdicts known both ways."""

import math

import numpy as np
import pytest

from pathdep.analysis.lyapunov_link import (AGREE_SIGMA, agree, distance_growth_rate, lambda_error,
                                             link_statistic, window_growth)


def test_distance_growth_rate_uses_only_the_window():
    """A planted exponential of rate 0.02 inside [10, 50] and a different (saturating) law
    outside it: the rate of the window is recovered, with the number of checkpoints used."""
    steps = np.array([0, 1, 2, 5, 10, 20, 30, 50, 100, 200])
    grow = np.where(steps <= 50, 0.02 * steps, 0.02 * 50 + 0.001 * (steps - 50))
    grow = np.where(steps < 10, 0.2 + 0.0 * steps, grow)
    dist = np.vstack([1e-3 * np.exp(grow), 2e-3 * np.exp(grow)])
    rate, se, n = distance_growth_rate(steps, dist, 10, 50)
    assert rate == pytest.approx(0.02, rel=1e-9) and se < 1e-9 and n == 4
    wide, _, n_wide = distance_growth_rate(steps, dist, 0, 200)
    assert n_wide == 10 and abs(wide - 0.02) > 0.005  # outside the window the law differs
    assert np.isnan(distance_growth_rate(steps, dist, 60, 99)[0])  # no checkpoint inside


def test_lambda_error_is_the_larger_of_se_and_drift():
    ftle_1 = np.array([1.0, 2.0, 3.0, 4.0])
    running = np.array([0.0, 0.0, 1.0, 1.2, 1.1, 1.0])
    err = lambda_error(running, ftle_1)
    assert err["se"] == pytest.approx(np.std(ftle_1, ddof=1) / 2)
    assert err["drift"] == pytest.approx(0.1)  # half the range of [1.2, 1.1, 1.0]
    assert err["err"] == max(err["se"], err["drift"])
    one = lambda_error(running, ftle_1[:1])
    assert math.isnan(one["se"]) and one["err"] == one["drift"]


def test_agree_within_two_combined_errors():
    z, ok = agree(1.0, 0.3, 1.5, 0.4)
    assert z == pytest.approx(1.0) and ok
    z, ok = agree(1.0, 0.3, 1.0 + 0.5 * (AGREE_SIGMA + 0.1), 0.4)
    assert not ok
    for args in ((float("nan"), 0.1, 1.0, 0.1), (1.0, 0.0, 2.0, 0.0)):  # no value / no error
        z, ok = agree(*args)
        assert math.isnan(z) and not ok


def _perturbed_growth(factor_per_step: float, steps: np.ndarray, R: int = 3, seed: int = 0):
    """Mean copy distance of R baselines under x -> a x (a linear map), with noise in a."""
    rng = np.random.default_rng(seed)
    a = factor_per_step * np.exp(rng.normal(0, 1e-4, size=(R, 1)))
    return 1e-8 * a ** steps[None, :], np.log(a[:, 0])


def test_window_growth_resolves_a_tenfold_growth_and_not_a_threefold_one():
    steps = np.arange(0, 601, 25)
    fast, lam_fast = _perturbed_growth(np.exp(np.log(20) / 500), steps)   # 20x over [100, 600]
    slow, lam_slow = _perturbed_growth(np.exp(np.log(3) / 500), steps)    # 3x
    g = window_growth(steps, fast, 100, 600)
    assert (g["a"], g["b"]) == (100, 600)
    np.testing.assert_allclose(g["rate"], lam_fast, rtol=1e-10)
    assert (g["growth"] > 10).all() and (window_growth(steps, slow, 100, 600)["growth"] < 10).all()
    # the window's outer checkpoints are used (110 and 590 are not checkpoints)
    assert window_growth(steps, fast, 110, 590)["a"] == 125
    assert np.isnan(window_growth(steps, fast, 101, 110)["rate"]).all()


def test_link_statistic_verdicts_both_ways():
    steps = np.arange(0, 601, 25)
    T = 500
    fast, lam = _perturbed_growth(np.exp(np.log(20) / T), steps)
    g = window_growth(steps, fast, 100, 600)
    bound = np.full(3, 1e-3)
    ok = link_statistic(lam * (1 + 1e-3), bound, g["rate"], g["growth"], T)
    assert ok["verdict"] == "agree" and ok["resolved"] and ok["n_baselines"] == 3
    assert ok["lambda_1_lo"] < ok["lambda_1"] < ok["lambda_1_hi"] and ok["growth_min"] > 10
    # the measured rate twice lambda_1: the paired difference excludes 0
    assert link_statistic(lam / 2, bound, g["rate"], g["growth"], T)["verdict"] == "disagree"
    # a slow growth (3x): no comparison
    slow, lam_s = _perturbed_growth(np.exp(np.log(3) / T), steps)
    gs = window_growth(steps, slow, 100, 600)
    low = link_statistic(lam_s, bound, gs["rate"], gs["growth"], T)
    assert low["verdict"] == "unresolved" and not low["resolved"]
    # an unresolved lambda_1 (|lambda| T = 0.05) against a resolved fast divergence: disagree;
    # against a divergence within the bound: unresolved
    tiny = np.full(3, 1e-4)
    assert link_statistic(tiny, np.full(3, 1 / T), g["rate"], g["growth"], T)["verdict"] == "disagree"
    assert link_statistic(tiny, np.full(3, 0.1), g["rate"], g["growth"], T)["verdict"] == "unresolved"
    one = link_statistic(lam[:1], bound[:1], g["rate"][:1], g["growth"][:1], T)
    assert one["verdict"] == "inconclusive (one baseline)" and np.isnan(one["lambda_1_lo"])
    none = link_statistic(np.full(3, np.nan), bound, g["rate"], g["growth"], T)
    assert none["verdict"] == "unresolved" and none["n_baselines"] == 0
