"""pathdep.analysis.lyapunov_link: the distance growth rate uses only its window, the error
of lambda_max is the larger of its two parts, agreement within two combined errors."""

import math

import numpy as np
import pytest

from pathdep.analysis.lyapunov_link import AGREE_SIGMA, agree, distance_growth_rate, lambda_error


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
