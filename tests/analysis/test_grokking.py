"""pathdep.analysis.grokking: first steps at a level on known curves, and the grokking delay."""

import numpy as np
import pytest

from pathdep.analysis.grokking import first_step, key_steps

STEPS = np.array([0, 1, 2, 5, 10, 20, 50, 100, 200, 500])


def test_first_step_known_curves():
    acc = np.array([
        [0.0, 0.1, 0.2, 0.5, 0.6, 0.9, 1.0, 1.0, 1.0, 1.0],   # reaches 0.5 at step 5, 0.9 at 20
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4],   # never
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],   # first hit counts even if lost
    ])
    np.testing.assert_array_equal(first_step(acc, STEPS, 0.5), [5, np.nan, 1])
    np.testing.assert_array_equal(first_step(acc, STEPS, 0.9), [20, np.nan, 1])
    # 1 - 1e-12 counts as 100 % (hits / n rounding), 0.99 does not
    assert first_step(np.r_[0.5, 1 - 1e-12, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], STEPS, 1.0) == 1
    assert np.isnan(first_step(np.full(10, 0.99), STEPS, 1.0))
    with pytest.raises(ValueError, match="acc: expected 10 checkpoints"):
        first_step(np.zeros((2, 3)), STEPS, 0.5)


def test_key_steps_delay_of_grokking_and_constrained():
    train = np.array([[0.1, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                      [0.1, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    test = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.6, 0.95, 1.0],    # groks late
                     [0.0, 0.2, 0.6, 0.95, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])   # follows train
    k = key_steps(train, test, STEPS)
    np.testing.assert_array_equal(k["train_1.0"], [2, 2])
    np.testing.assert_array_equal(k["test_0.5"], [100, 2])
    np.testing.assert_array_equal(k["test_0.9"], [200, 5])
    np.testing.assert_allclose(k["delay"], [100.0, 2.5])


# ---- path dependence of grokking (issue 20, item 4) ----
from scipy import stats as _stats  # noqa: E402

from pathdep.analysis.grokking import (  # noqa: E402
    independent_spread, phase_checkpoints, shift_summary, step_shift, trend_test,
)

# 3 baselines x (baseline + 2 copies)
BASE = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
COPY = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])


def test_step_shift_and_summary_known_blocks():
    steps = np.array([100, 110, 130, 200, 200, 260, 300, np.nan, 340])
    sh = step_shift(steps, BASE, COPY)
    np.testing.assert_array_equal(sh, [np.nan, 10, 30, np.nan, 0, 60, np.nan, np.nan, 40])
    out = shift_summary(steps, BASE, COPY)
    per = np.array([20.0, 30.0, 40.0])                      # copies averaged within each baseline first
    half = _stats.t.ppf(0.975, 2) * per.std(ddof=1) / np.sqrt(3)
    assert out["shift"] == pytest.approx(30.0)
    assert (out["shift_lo"], out["shift_hi"]) == pytest.approx((30.0 - half, 30.0 + half))
    assert out["rel_shift"] == pytest.approx(np.mean([0.2, 0.15, 40 / 300]))
    assert out["baseline_step"] == pytest.approx(200.0)
    assert (out["missing_copies"], out["missing_baselines"], out["n_used"]) == (1, 0, 3)
    # identical copies: zero shift, zero-width interval
    same = np.repeat([100.0, 200.0, 300.0], 3)
    z = shift_summary(same, BASE, COPY)
    assert (z["shift"], z["shift_lo"], z["shift_hi"]) == (0.0, 0.0, 0.0)
    # one baseline: a mean, no interval
    one = shift_summary(np.array([100.0, 150.0]), np.array([0, 0]), np.array([0, 1]))
    assert one["shift"] == 50.0 and np.isnan(one["shift_lo"])


def test_independent_spread_known_pairs():
    assert independent_spread(np.array([100.0, 200.0, 400.0])) == pytest.approx((100 + 300 + 200) / 3)
    assert independent_spread(np.array([100.0, np.nan, 300.0])) == pytest.approx(200.0)
    assert np.isnan(independent_spread(np.array([100.0, np.nan])))


def test_trend_test_monotone_and_null():
    x = np.repeat(np.log10([1e-6, 1e-4, 1e-2]), 3)
    strata = np.tile([0, 1, 2], 3)
    y = 10.0 ** (x + 8) + np.tile([0.0, 1.0, 2.0], 3)       # grows with eps in every baseline
    t = trend_test(x, y, strata=strata, n_perm=2000)
    assert t["rho"] > 0.9 and t["p_value"] < 0.01
    assert trend_test(x, -y, strata=strata, n_perm=2000)["p_value"] > 0.9   # one-sided
    # null: shifts independent of eps -> rejection rate at 0.05 stays near 0.05
    rng = np.random.default_rng(1)
    ps = np.array([trend_test(x, rng.exponential(size=9), strata=strata, n_perm=300, seed=i)["p_value"]
                   for i in range(400)])
    assert np.mean(ps < 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400)
    assert np.mean(ps) == pytest.approx(0.5, abs=0.06)
    # degenerate: too few pairs or constant values
    assert np.isnan(trend_test(x[:2], y[:2])["p_value"])
    assert np.isnan(trend_test(x, np.ones(9))["p_value"])


def test_phase_checkpoints_known_steps():
    isteps = np.array([0, 100, 500, 1000, 2000, 2500])
    assert phase_checkpoints(isteps, 700, 1500) == (2, 4)
    assert phase_checkpoints(isteps, 1000, 2000) == (2, 4)     # before is strict, after inclusive
    assert phase_checkpoints(isteps, 0, 3000) == (-1, -1)
    assert phase_checkpoints(isteps, np.nan, np.nan) == (5, -1)  # never grokked: no "after"


def test_eps_trend_paired_runs_and_phase_values():
    from pathdep.analysis.grokking import eps_trend, phase_values

    base, copy = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 1, 0, 1])
    b = np.array([1000.0, 0, 1500, 0, 2000, 0])
    runs = [b + np.array([0, 1000 + d, 0, 1500 + 2 * d, 0, 2000 + 3 * d]) for d in (1, 30, 300)]   # shift grows
    t = eps_trend([1e-6, 1e-4, 1e-2], runs, base, copy, n_perm=2000)
    assert t["n"] == 9 and t["rho"] > 0.5 and t["p_value"] <= 1 / 216 + 0.01   # 3!^3 = 216 within-baseline splits
    flat = eps_trend([1e-6, 1e-4, 1e-2], [runs[0]] * 3, base, copy)
    assert np.isnan(flat["p_value"]) or flat["p_value"] > 0.05
    # phase values: copy 1's pair (rows 1 and 0) starts at 300 and has grokked by 900
    isteps = np.array([0, 200, 400, 1000])
    own = np.array([0, 0, 2, 2])
    start, end = np.array([300.0, 500, 100, np.nan]), np.array([900.0, 700, 200, np.nan])
    curve = np.array([[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]])
    out = phase_values(isteps, np.array([1, 3]), own, start, end, {"barrier": curve})
    np.testing.assert_array_equal(out["step_before"], [200, 0])
    np.testing.assert_array_equal(out["step_after"], [1000, np.nan])
    np.testing.assert_array_equal(out["barrier_before"], [1.0, 10.0])
    np.testing.assert_array_equal(out["barrier_after"], [3.0, np.nan])
