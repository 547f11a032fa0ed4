"""Sigmoid fit recovers known parameters; the toy model equals its closed forms."""
import numpy as np
import pytest

from pathdep.analysis.patterns import fit_sigmoid, sigmoid, toy_curves, toy_moments, toy_onsets


def test_sigmoid_fit_recovers_parameters_within_errors():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1000, 60)
    truth = dict(t0=320.0, rate=0.02, y_inf=0.93, y0=0.1)
    fits = []
    for _ in range(40):
        y = sigmoid(t, **truth) + 0.01 * rng.standard_normal(len(t))
        fits.append(fit_sigmoid(t, y))
    for k in ("t0", "rate", "y_inf", "y0"):
        est = np.array([f[k] for f in fits])
        se = np.array([f[f"{k}_se"] for f in fits])
        assert all(f["ok"] for f in fits)
        # each estimate within 4 of its standard errors, and the SE matches the scatter
        assert np.all(np.abs(est - truth[k]) < 4 * se), k
        assert 0.6 < est.std() / se.mean() < 1.6, (k, est.std(), se.mean())


def test_sigmoid_fit_fixed_start_and_log_time():
    t = np.geomspace(1, 1e4, 40)
    y = sigmoid(np.log10(1 + t), 2.5, 4.0, 0.8, 0.1)
    f = fit_sigmoid(t, y, y0=0.1, log_time=True)
    assert f["ok"] and f["y0_se"] == 0.0
    assert f["t0"] == pytest.approx(2.5, abs=1e-4) and f["rate"] == pytest.approx(4.0, rel=1e-3)
    assert not fit_sigmoid([0, 1, 2], [0, 1, 1])["ok"]  # too few points


def test_toy_linear_closed_form_uncoupled():
    # p1 + p2 = 1: no two-sided samples, S diagonal: w_i(t) = w*_i + (w0 - w*_i) e^{-S_ii t}
    p, r, s = (0.7, 0.3), (1.0, 0.8), (1.0, 2.0)
    b, S = toy_moments(p, r, s)
    assert S[0, 1] == 0
    t = np.linspace(0, 20, 50)
    m = toy_curves(t, p, r, s, model="linear", w0=0.0)
    ws = b / np.diag(S)
    np.testing.assert_allclose(m, (ws * (1 - np.exp(-np.outer(t, np.diag(S))))) * np.array(s), rtol=1e-10, atol=1e-12)


def test_toy_two_layer_logistic_limit_and_ordering():
    p, r, s = (0.6, 0.4), (1.0, 1.0), (1.0, 1.0)
    b, S = toy_moments(p, r, s)
    t = np.linspace(0, 40, 200)
    w0 = 1e-3
    m = toy_curves(t, p, r, s, model="two_layer", w0=w0)
    ws = b / np.diag(S)
    logistic = ws / (1 + (ws / w0 - 1) * np.exp(-2 * np.outer(t, b)))
    np.testing.assert_allclose(m, logistic, rtol=1e-5, atol=1e-8)
    # the fitted onset equals ln(w*/w0 - 1) / (2 b) and the rate 2 b (logistic in t, y0 = 0)
    out = toy_onsets(p, r, s, w0=w0)
    for i in range(2):
        assert out["fits"][i]["t0"] == pytest.approx(np.log(ws[i] / w0 - 1) / (2 * b[i]), rel=1e-3)
        assert out["fits"][i]["rate"] == pytest.approx(2 * b[i], rel=1e-3)
    # more prevalent, more reliable, simpler: learned earlier
    base = toy_onsets((1.0, 1.0), (0.9, 0.9), (1.0, 1.0))["fits"]
    assert abs(base[0]["t0"] - base[1]["t0"]) < 1e-6 * base[0]["t0"]
    for args in [((1.0, 0.6), (0.9, 0.9), (1, 1)), ((1, 1), (0.95, 0.8), (1, 1)), ((1, 1), (0.9, 0.9), (1.5, 1))]:
        f = toy_onsets(*args)["fits"]
        assert f[0]["t0"] < f[1]["t0"], args


def test_toy_rejects_empty_samples():
    with pytest.raises(ValueError, match="prevalence"):
        toy_moments((0.3, 0.5), (1, 1), (1, 1))


def test_half_gain_time_on_sigmoids():
    from pathdep.analysis.patterns import half_gain_time

    t = np.linspace(0, 1000, 2001)
    y = sigmoid(t, 300.0, 0.03, 0.9, 0.1)
    # half of the gain of a symmetric sigmoid is its midpoint, in either interpolation
    assert half_gain_time(t, y, 0.1, final=0.9, log_time=False) == pytest.approx(300.0, abs=0.05)
    assert half_gain_time(t, y, 0.1, final=0.9) == pytest.approx(300.0, abs=0.05)
    # invariant to the size of the gain; a curve that stops early has an earlier onset
    assert half_gain_time(t, 0.1 + 0.2 * (y - 0.1), 0.1) == pytest.approx(half_gain_time(t, y, 0.1), abs=1e-9)
    assert half_gain_time(t[:700], y[:700], 0.1) < 300.0
    # no gain (or below min_gain): not learned
    assert np.isnan(half_gain_time(t, np.full_like(t, 0.1), 0.1))
    assert np.isnan(half_gain_time(t, 0.1 + 0.01 * (y - 0.1), 0.1, min_gain=0.02))


def test_toy_known_limits():
    from pathdep.analysis.patterns import agreement

    # agreement above chance: binary 2r - 1, zero at r = 1/K, one at r = 1
    np.testing.assert_allclose(agreement([0.5, 1.0, 0.75], 2), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(agreement([0.1, 1.0], 10), [0.0, 1.0], atol=1e-15)
    for model in ("two_layer", "linear"):
        # equal features: equal onsets, whatever the overlap
        for p in ((1.0, 1.0), (0.7, 0.7), (0.5, 0.5)):
            o = toy_onsets(p, (0.9, 0.9), (1.0, 1.0), model=model, n_classes=10)["onset"]
            assert np.all(np.isfinite(o)) and o[0] == pytest.approx(o[1], rel=1e-6), (model, p)
        # reliability 0.5 of 10 classes is 4/9 above chance: learned, but later than a reliable one
        # (beside a bottom side of reliability 0.9; a perfectly reliable one would explain the label
        # alone, and the squared-loss toy then never learns the other side: w* = 0)
        slow = toy_onsets((1.0, 1.0), (0.5, 0.9), (1.0, 1.0), model=model, n_classes=10)
        fast = toy_onsets((1.0, 1.0), (1.0, 0.9), (1.0, 1.0), model=model, n_classes=10)
        assert np.isfinite(slow["onset"][0]) and 0 < slow["final"][0] < fast["final"][0], model
        if model == "two_layer":  # the linear toy's time scales are S's eigenvalues: reliability sets only the level
            assert slow["onset"][0] > slow["onset"][1] and slow["onset"][0] > fast["onset"][0]
        assert np.isnan(toy_onsets((1.0, 1.0), (0.5, 1.0), (1.0, 1.0), model=model, n_classes=10)["onset"][0])
        # ... whereas reliability 0.5 of 2 classes carries no signal: never learned
        assert np.isnan(toy_onsets((1.0, 1.0), (0.5, 0.9), (1.0, 1.0), model=model, n_classes=2)["onset"][0])
    # the ordering the sigmoid midpoint got wrong: a rare (p = 0.4) top side after an always-shown bottom
    o = toy_onsets((0.4, 1.0), (1.0, 0.9), (1.0, 1.0), n_classes=10)["onset"]
    assert o[0] > 2 * o[1]
    # onsets fall monotonically with prevalence of the top side
    on = [toy_onsets((p, 1.0), (1.0, 0.9), (1.0, 1.0), n_classes=10)["onset"][0] for p in (0.2, 0.5, 0.8)]
    assert on[0] > on[1] > on[2]


def test_linear_probe_measures_simplicity():
    from pathdep.analysis.patterns import linear_probe, probe_simplicity

    rng = np.random.default_rng(0)
    k, d, n = 3, 20, 600
    y = rng.integers(0, k, size=n)
    means = 4.0 * rng.standard_normal((k, d)) / np.sqrt(d) * 3
    easy = means[y] + rng.standard_normal((n, d))
    noise = rng.standard_normal((n, d))
    q_easy = linear_probe(easy[:400], y[:400], easy[400:], y[400:])
    q_noise = linear_probe(noise[:400], y[:400], noise[400:], y[400:])
    assert q_easy > 0.9 and q_noise < 0.5
    assert probe_simplicity(1.0, 10) == pytest.approx(1.0)
    assert probe_simplicity(0.1, 10) == pytest.approx(1e-3)  # chance: floored, not negative
    assert probe_simplicity(q_easy, k) > probe_simplicity(q_noise, k)


def _curves(onsets, n_members=3):
    from pathdep.analysis.patterns import sigmoid

    steps = np.arange(0, 200, 5).astype(float)
    acc = np.stack([np.stack([sigmoid(steps, t0 + m, 0.1, 0.9, 0.1) for m in range(n_members)]) for t0 in onsets])
    return steps, acc


def test_fit_accuracy_curves_recover_onsets():
    from pathdep.analysis.patterns import FIT_VARS, fit_accuracy_curves, fitted_curves, half_gain_time

    steps, acc = _curves([40.0, 90.0])
    f = fit_accuracy_curves(steps, acc, 10)
    assert set(f) == set(FIT_VARS) | {"onset_half", "onset_half_mean"}
    np.testing.assert_allclose(f["onset"], [[40, 41, 42], [90, 91, 92]], atol=1e-3)
    np.testing.assert_allclose(f["final"], 0.9, atol=1e-6)
    assert f["onset_half"][1, 2] == pytest.approx(half_gain_time(steps, acc[1, 2], 0.1))
    assert f["onset_half_mean"][0] == pytest.approx(half_gain_time(steps, acc[0].mean(0), 0.1))
    grid, curves = fitted_curves(steps, f, 10)
    assert grid[0] == 5.0 and grid[-1] == 195.0 and curves.shape == (2, 200)
    np.testing.assert_allclose(np.interp(steps[1:], grid, curves[0]), acc[0, 0, 1:], atol=2e-3)


def test_pattern_summary_and_toy_scale():
    from pathdep.analysis.patterns import fit_accuracy_curves, pattern_summary, toy_time_scale

    sets = ["top_only", "bottom_only"]
    steps, acc = _curves([60.0, 30.0])
    f = fit_accuracy_curves(steps, acc, 10)
    rows = pattern_summary(sets, f, acc, (0.8, 1.0), (1.0, np.nan), (np.nan, np.nan), 10, simplicity=(1.0, 2.0))
    assert [r["pattern"] for r in rows] == ["top", "bottom"]
    assert rows[1]["reliability"] == pytest.approx(0.1)  # non-finite: chance
    assert rows[0]["simplicity"] == 1.0 and rows[1]["simplicity"] == 2.0
    assert rows[0]["onset"] == pytest.approx(f["onset_half_mean"][0])
    half = f["onset_half"][0]
    assert rows[0]["onset_se"] == pytest.approx(np.std(half, ddof=1) / np.sqrt(3)) and rows[0]["onset_members_n"] == 3
    assert rows[0]["acc_top_only"] == pytest.approx(acc[0, :, -1].mean())
    # the bottom side at chance reliability carries no signal: the toy never learns it
    assert np.isfinite(rows[0]["toy_onset"]) and np.isnan(rows[1]["toy_onset"])
    # geometric mean of the ratios; rows with a non-positive or NaN value are left out
    assert toy_time_scale([10.0, 40.0, np.nan], [1.0, 1.0, 3.0]) == pytest.approx(20.0)
    assert np.isnan(toy_time_scale([np.nan], [1.0]))


def test_onset_se_is_taken_across_baselines_when_there_are_replicates():
    from pathdep.analysis.patterns import _onset_spread

    half = np.array([10.0, 11.0, 12.0, 20.0, 21.0, 22.0])
    across = _onset_spread(half, np.array([0, 0, 0, 1, 1, 1]))
    assert across["onset_se_over"] == "baselines" and across["onset_replicates_n"] == 2
    assert across["onset_se"] == pytest.approx(np.std([11.0, 21.0], ddof=1) / np.sqrt(2))
    one = _onset_spread(half, None)
    assert one["onset_se_over"] == "copies of one baseline" and one["onset_replicates_n"] == 6
