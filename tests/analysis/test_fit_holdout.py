"""Out-of-sample judgement of fitted forms (pathdep.analysis.fit_holdout) and residual weights
(pathdep.analysis.fits.point_weights): verdicts known both ways."""

import numpy as np
import pytest

from pathdep.analysis.fit_holdout import (NO_FORM, Holdout, curves_to_dataset, evaluate_curve, extrapolation,
                                          select)
from pathdep.analysis.fits import MODELS, dataset_to_frame, fit_all, point_weights

# log-spaced checkpoints as the workflow writes them (36 from 0 to ~1900 steps)
T = np.unique(np.round(np.geomspace(1, 1900, 40)))
T = np.concatenate([[0.0], T])


def _planted(noise=0.02, seed=0):
    d = MODELS["exp_linear"].func(T, 1e-3, 0.05, 100.0)
    return d * (1 + noise * np.random.default_rng(seed).standard_normal(T.size))


def test_planted_form_is_recovered_and_predicts_its_last_third():
    c = evaluate_curve(T, _planted(), weights="time")
    assert c.results[0].model == "exp_linear"  # AIC on the whole curve
    p = c.results[0].params
    assert p["r"] == pytest.approx(0.05, rel=0.1) and p["t_c"] == pytest.approx(100, rel=0.15)
    assert c.oos_model == "exp_linear" and c.described and c.verdict == "exp_linear"
    assert c.oos_factor < 1.3 and c.oos_err_last < 0.3
    assert c.t_cut == pytest.approx(2 / 3 * T.max())
    h = c.holdout["exp_linear"]
    assert h.n_heldout == int(np.sum(T > c.t_cut)) and h.n_heldout >= 3
    assert h.fit.n_points == int(np.sum((T > 0) & (T <= c.t_cut)))  # the fit did not see the last third
    # the constant null model cannot foresee growth: far off out of sample
    assert c.holdout["constant"].factor > 2


def test_a_curve_no_form_describes_says_so():
    # grows as a power law, then collapses in the last third: nothing fitted before can know
    d = 0.01 * np.maximum(T, 1e-9) ** 0.8
    d = np.where(T > 0.7 * T.max(), d / 3.0, d)
    c = evaluate_curve(T, d, weights="time")
    assert not c.described and c.verdict == NO_FORM
    assert c.oos_factor > 1.3 and c.oos_model in MODELS  # the closest form is still named in oos_model
    # the same curve without the collapse is described by the power law
    c2 = evaluate_curve(T, 0.01 * np.maximum(T, 1e-9) ** 0.8, weights="time")
    assert c2.described and c2.oos_factor < 1.01


def test_extrapolation_factor_and_last_ratio():
    f, r = extrapolation([1.0, 2.0, 3.0], [1.0, 1.0, 4.0])
    assert f == pytest.approx(2.0) and r == pytest.approx(0.75)
    f, r = extrapolation([0.5, 1.0], [1.0, 1.0])  # undershoot by 2x is a factor 2, like overshoot
    assert f == pytest.approx(2.0) and r == 1.0
    assert extrapolation([0.0, 1.0], [1.0, 1.0])[0] == np.inf
    assert np.isnan(extrapolation([1.0], [0.0])[0])


def test_select_tolerance_both_ways_and_no_scores():
    fake = fit_all(T, _planted(), ["power_law"])[0]
    held = {"a": Holdout("a", fake, 1.25, 1.2, 1.0, 3), "b": Holdout("b", fake, 1.6, 0.7, 1.0, 3)}
    m, factor, err, described, verdict = select(held, 0.3)
    assert (m, described, verdict) == ("a", True, "a") and err == pytest.approx(0.2)
    m, factor, err, described, verdict = select(held, 0.2)
    assert (m, described, verdict) == ("a", False, NO_FORM)
    nan = {"a": Holdout("a", fake, float("nan"), float("nan"), 1.0, 0)}
    assert select(nan)[0] == "" and select(nan)[4] == NO_FORM


def test_point_weights_uniform_in_time():
    w = point_weights(T[1:], "time")
    assert w.mean() == pytest.approx(1.0) and np.all(w > 0)
    late = T[1:] > T.max() / 2
    # uniform in time: the late half of the run carries half the weight
    assert w[late].sum() / w.sum() == pytest.approx(0.5, abs=0.05)
    assert np.all(point_weights(T[1:], "points") == 1.0)
    np.testing.assert_allclose(point_weights(T[1:], "mixed"), 0.5 * (w + 1))
    with pytest.raises(ValueError, match="weights"):
        point_weights(T, "log")


def test_time_weights_are_a_time_average():
    # the constant form fitted in log space is the weighted mean of log d: over log-spaced points
    # with equal weights the mean of log t (the onset decides), weighted in time the time average
    # of log t over [0, T], ln T - 1 (every step counts alike)
    t = T[1:]
    c_pts = fit_all(t, t, ["constant"], weights="points")[0].params["c"]
    c_time = fit_all(t, t, ["constant"], weights="time")[0].params["c"]
    assert c_pts == pytest.approx(np.exp(np.mean(np.log(t))), rel=1e-6)
    w = point_weights(t, "time")
    assert c_time == pytest.approx(np.exp(np.sum(w * np.log(t)) / w.sum()), rel=1e-6)
    assert c_time == pytest.approx(t.max() / np.e, rel=0.1) and c_pts < 0.2 * c_time


def test_dataset_and_frame_columns():
    curves = [evaluate_curve(T, _planted(seed=s), ["constant", "power_law", "exp_linear"]) for s in range(2)]
    ds = curves_to_dataset(curves, {"run": ["a", "b"], "quantity": ["dist", "dist"]})
    assert ds.sizes["curve"] == 2 and ds["oos_factor"].dims == ("curve", "model")
    assert list(ds["described"].values) == [c.described for c in curves]
    assert ds["oos_selected"].values.sum() == 2
    np.testing.assert_allclose(ds["curve_d"].values[0, :len(curves[0].d)], curves[0].d)
    df = dataset_to_frame(ds)
    assert len(df) == 6
    for col in ("oos_factor", "oos_ratio_last", "ratio_last", "oos_selected", "oos_model", "described", "verdict",
                "oos_err_last", "best"):
        assert col in df.columns, col
    sel = df[df["oos_selected"]]
    assert list(sel["model"]) == [c.oos_model for c in curves]
