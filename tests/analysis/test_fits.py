"""Fitted divergence laws: known parameters recovered, AIC picks the generating form."""

import numpy as np
import pytest

from pathdep.analysis.fits import (DEFAULT_MODELS, MODELS, best_fit, dataset_to_frame, fit_all, fit_model,
                                   fits_to_dataset)

T = np.linspace(0, 300, 151)
TRUTH = {
    "power_law": dict(a=0.02, b=1.4),
    "exp_linear": dict(d0=0.01, r=0.1, t_c=30.0),
    "sqrt": dict(d0=0.1, a=0.05),
    "sphere": dict(R=1.0, d0=0.3, k=0.02),
}


def _curve(name, noise=0.01, seed=0, t=T):
    m = MODELS[name]
    d = m.func(t, *[TRUTH[name][p] for p in m.params])
    return d * (1 + noise * np.random.default_rng(seed).standard_normal(t.size))


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_recover_and_select(name):
    res = fit_all(T, _curve(name))
    assert [r.model for r in res][0] == name, [(r.model, r.delta_aic) for r in res]
    assert sorted(r.model for r in res) == sorted(DEFAULT_MODELS)
    best = res[0]
    assert best.delta_aic == 0.0 and all(r.delta_aic >= 0 for r in res)
    assert best.success and best.n_points == 150  # t = 0 dropped
    for p, v in TRUTH[name].items():
        assert best.params[p] == pytest.approx(v, rel=0.05), (p, best.params)
        assert 0 < best.stderr[p] < 0.05 * abs(v)
        # the truth lies within 4 standard errors
        assert abs(best.params[p] - v) < 4 * best.stderr[p] + 1e-3 * abs(v)
    np.testing.assert_allclose(best.predict(T[1:]), _curve(name, noise=0)[1:], rtol=0.03)


def test_exp_linear_is_c1():
    m = MODELS["exp_linear"]
    d0, r, tc = 0.01, 0.1, 30.0
    h = 1e-6
    left = (m.func(tc, d0, r, tc) - m.func(tc - h, d0, r, tc)) / h
    right = (m.func(tc + h, d0, r, tc) - m.func(tc, d0, r, tc)) / h
    assert left == pytest.approx(right, rel=1e-4)
    assert right == pytest.approx(r * d0 * np.exp(r * tc), rel=1e-4)


def test_sphere_limits():
    m = MODELS["sphere"]
    t = np.array([0.0, 1e-4, 1e6])
    R, k = 2.0, 0.5
    d = m.func(t, R, 0.0, k)
    assert d[0] == 0.0 and d[2] == pytest.approx(np.sqrt(2) * R)
    assert d[1] ** 2 / t[1] == pytest.approx(2 * R**2 * k, rel=1e-3)  # initial slope of d^2
    # far from the curvature (R = 2e7, k ~ 1e-19, as a fit to a flat-space walk gives) no
    # cancellation: d^2 ~ d0^2 + 2 R^2 k t
    R, k, d0 = 2.0e7, 8e-20, 1e-3
    tt = np.array([1.0, 100.0, 1000.0])
    np.testing.assert_allclose(m.func(tt, R, d0, k), np.sqrt(d0**2 + 2 * R**2 * k * tt), rtol=1e-9)


def test_linear_space_additive_noise_and_exact_data():
    rng = np.random.default_rng(5)
    d = MODELS["power_law"].func(T, 0.02, 1.4)
    noisy = d + 0.005 * d.max() * rng.standard_normal(T.size)
    r = fit_model(T, noisy, "power_law", space="linear")
    assert r.params["b"] == pytest.approx(1.4, rel=0.02)
    exact = fit_model(T, d, "power_law")
    assert exact.params["b"] == pytest.approx(1.4, rel=1e-8)
    assert exact.stderr["b"] < 1e-8
    lin = fit_model(T, 0.5 + 0.01 * T, "linear", space="linear", t_min=None)
    assert lin.params["d0"] == pytest.approx(0.5) and lin.n_points == T.size
    few = fit_model(T[:3], d[:3], "exp_linear")
    assert not few.success and few.aic == np.inf


def test_dataset_frame():
    single = fit_all(T, _curve("sqrt"))
    ds = fits_to_dataset(single, {"run": "lr0.01", "member": 3})
    assert ds["value"].dims == ("model", "param")
    assert str(ds["best_model"].values) == "sqrt"
    assert float(ds["value"].sel(model="sqrt", param="a")) == pytest.approx(single[0].params["a"])
    assert np.isnan(float(ds["value"].sel(model="power_law", param="t_c")))
    curves = [fit_all(T, _curve(n, seed=i)) for i, n in enumerate(["sqrt", "power_law", "sphere"])]
    ds2 = fits_to_dataset(curves, {"lr": [0.1, 0.01, 0.001], "exp": "demo"}, dim="lr")
    assert ds2["aic"].dims == ("lr", "model")
    assert list(ds2["best_model"].values) == ["sqrt", "power_law", "sphere"]
    df = dataset_to_frame(ds2)
    assert len(df) == 3 * len(DEFAULT_MODELS)
    assert {"lr", "exp", "model", "aic", "best", "a", "a_stderr", "t_c"} <= set(df.columns)
    assert df[df.best].model.tolist() == ["sqrt", "power_law", "sphere"]
    assert best_fit(curves[1]).model == "power_law"
