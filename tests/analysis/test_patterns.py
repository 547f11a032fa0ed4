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
