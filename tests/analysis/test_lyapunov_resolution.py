"""pathdep.analysis.lyapunov_resolution: gradient descent on a quadratic with known exponents
is resolved and ordered over a long window and flagged unresolved (with a bound containing the
truth) over a short one; swapped columns are flagged; errors; sub-window exponents."""

import numpy as np
import pytest
import torch

from pathdep.analysis.lyapunov_benettin import benettin, ftle
from pathdep.analysis.lyapunov_resolution import (exponent_errors, ordered, resolution,
                                                  window_exponents)

# lr h_i of gradient descent on 1/2 w^T diag(h) w (one negative curvature: a saddle)
LR_H = np.array([-0.02, 0.01, 0.05, 0.2])
TRUE = np.log(np.abs(1 - LR_H))  # [0.0198, -0.01005, -0.0513, -0.223], descending


def _gd_spectrum(steps: int, transient: int = 0):
    A = torch.diag(torch.as_tensor(1 - LR_H, dtype=torch.float64))
    F = lambda x, t: A @ x  # noqa: E731
    res = benettin(F, torch.ones(4, dtype=torch.float64), steps, 4, transient=transient, seed=1, record=False)
    running, log_r = res.running.numpy(), res.log_r
    window = max(1, steps // 5)
    err = exponent_errors(running, ftle(log_r, window).numpy())
    return res.exponents.numpy(), err["err"], running


def test_long_window_is_resolved_and_ordered():
    lam, err, _ = _gd_spectrum(400, transient=50)
    np.testing.assert_allclose(lam, TRUE, atol=3e-3)
    res = resolution(lam, err, 400)
    assert res["resolved"].all() and bool(res["ordered"])
    np.testing.assert_allclose(res["lambda_T"], lam * 400)


def test_short_window_is_flagged_unresolved_with_a_bound_containing_the_truth():
    lam, err, _ = _gd_spectrum(20, transient=50)  # the transient aligns the basis
    res = resolution(lam, err, 20)
    # |lambda_1| T = 0.4 and |lambda_2| T = 0.2: below one e-fold; lambda_4 T = 4.5: resolved
    assert not res["resolved"][0] and not res["resolved"][1] and res["resolved"][3]
    assert (res["bound"][:2] >= 1 / 20).all() and (np.abs(TRUE[:2]) < res["bound"][:2]).all()
    # without the transient a random basis adds O(1) to the log growth: a 20-step window
    # misses lambda_1 by more than 1 / T, which is why the bound is never below 1 / T
    raw, _, _ = _gd_spectrum(20)
    assert abs(raw[0] - TRUE[0]) > 1 / 20


def test_ordering_flags_swapped_columns_only_beyond_their_errors():
    lam = np.array([0.01, 0.03, -0.02])
    assert not ordered(lam, np.full(3, 1e-3))
    assert ordered(lam, np.full(3, 1e-2))  # a rise of 0.02 within 2 * hypot(0.01, 0.01)
    assert ordered(np.sort(lam)[::-1], np.zeros(3))
    both = ordered(np.stack([lam, np.sort(lam)[::-1]]), np.full((2, 3), 1e-3))
    assert both.tolist() == [False, True]


def test_exponent_error_is_the_larger_of_se_and_drift():
    ftle_ = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
    running = np.array([[0.0, np.nan], [0.0, np.nan], [1.0, 5.0], [1.2, 5.0], [1.1, 5.0], [1.0, 5.0]])
    err = exponent_errors(running, ftle_)
    assert err["se"][0] == pytest.approx(np.std(ftle_[:, 0], ddof=1) / 2)
    assert err["drift"][0] == pytest.approx(0.1) and err["drift"][1] == 0.0
    assert err["err"][0] == max(err["se"][0], err["drift"][0]) and err["err"][1] == 0.0
    one = exponent_errors(running, ftle_[:1])
    assert np.isnan(one["se"]).all() and one["err"][0] == one["drift"][0]


def test_window_exponents_of_a_planted_growth():
    start, steps = 10, np.arange(11, 41)
    rate = np.where(steps <= 25, 0.1, -0.05)  # per-step log growth of one column
    G = np.cumsum(rate)
    running = (G / (steps - start))[:, None]
    assert window_exponents(running, steps, start, 10, 25)[0] == pytest.approx(0.1)
    assert window_exponents(running, steps, start, 25, 40)[0] == pytest.approx(-0.05)
    with pytest.raises(ValueError):
        window_exponents(running, steps, start, 5, 20)
    with pytest.raises(ValueError):
        resolution(np.zeros(2), np.zeros(2), 0)
