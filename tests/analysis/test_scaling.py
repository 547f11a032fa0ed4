"""Scaling tables and log-log power-law fits."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pathdep.analysis.fits import MODELS, dataset_to_frame, fit_all, fits_to_dataset
from pathdep.analysis.scaling import power_law_fit, scaling_table, table_power_laws


def test_exact_power_law():
    x = np.array([1e-4, 1e-3, 1e-2, 1e-1])
    k, A, se = power_law_fit(x, 3.5 * x ** -0.75)
    assert k == pytest.approx(-0.75, rel=1e-12)
    assert A == pytest.approx(3.5, rel=1e-12)
    assert se < 1e-12
    fit = power_law_fit([1, 2], [2, 8])
    assert fit.exponent == pytest.approx(2.0) and np.isnan(fit.stderr)
    with pytest.raises(ValueError):
        power_law_fit([1, 2, 3], [1, -1, 2])


def test_noisy_power_law_stderr():
    rng = np.random.default_rng(0)
    x = np.logspace(0, 3, 40)
    y = 0.2 * x**1.3 * np.exp(0.05 * rng.standard_normal(40))
    k, A, se = power_law_fit(x, y)
    assert 0 < se < 0.02
    assert abs(k - 1.3) < 4 * se


def test_scaling_table_from_fits():
    t = np.linspace(0, 200, 101)
    curves, lrs, members = [], [], []
    rng = np.random.default_rng(1)
    for lr in (1e-3, 1e-2, 1e-1):
        for m in range(3):
            a = 2.0 * lr**0.5
            d = MODELS["sqrt"].func(t, 0.05, a) * (1 + 0.002 * rng.standard_normal(t.size))
            curves.append(fit_all(t, d, models=["sqrt", "power_law"]))
            lrs.append(lr)
            members.append(m)
    ds = fits_to_dataset(curves, {"lr": lrs, "member": members})
    tab = scaling_table(ds, "lr")
    assert list(tab.index) == [1e-3, 1e-2, 1e-1]
    assert (tab["model"] == "sqrt").all() and (tab["n"] == 3).all()
    np.testing.assert_allclose(tab["a"], 2.0 * tab.index.values**0.5, rtol=0.01)
    assert {"a_std", "a_sem", "a_median", "a_fit_stderr", "d0"} <= set(tab.columns)
    pl = table_power_laws(tab, ["a"])
    assert pl.loc["a", "exponent"] == pytest.approx(0.5, abs=0.01)
    # the same from the frame, and an explicit model choice
    tab2 = scaling_table(dataset_to_frame(ds), "lr", model="power_law", params=["b"])
    assert tab2["model"].iloc[0] == "power_law" and "b" in tab2


def test_scaling_table_plain_frame():
    df = pd.DataFrame({"width": [10, 10, 20, 20], "slope": [1.0, 3.0, 4.0, 6.0]})
    tab = scaling_table(df, "width")
    np.testing.assert_allclose(tab["slope"], [2.0, 5.0])
    np.testing.assert_allclose(tab["slope_std"], [np.sqrt(2), np.sqrt(2)])
    with pytest.raises(ValueError):
        scaling_table(df, "lr")


LRS = (0.001, 0.003, 0.01, 0.1)  # four values over two decades: enough for a law


def _rows(lrs=LRS, baselines=(0, 1), k=0.5, spread=0.0):
    """Fits-table rows: a = 3 lr^k (baseline r: exponent k + spread * (r - mean)), two forms."""
    rows = []
    mid = np.mean(baselines)
    for lr in lrs:
        for r in baselines:
            kr = k + spread * (r - mid)
            for model, best in (("power_law", r == 0 or lr == 0.1), ("sqrt", not (r == 0 or lr == 0.1))):
                rows.append({"run": f"lr{lr}", "baseline": r, "quantity": "dist", "model": model, "best": best,
                             "oos_selected": model == "power_law", "described": True,
                             "lr": lr, "lr_eff": lr / 0.1, "a": 3.0 * lr**kr * (1 + 0.01 * r), "b": 0.7,
                             "d0": 1.0, "success": True, "aic": 0.0})
    return rows


def test_scaling_frame_planted_power_law_and_best_counts():
    from pathdep.analysis.scaling import SCALING_COLUMNS, scaling_frame, summary_table

    rows = _rows()
    sphere = pd.DataFrame([{"run": f"lr{lr}", "baseline": 0, "lr": lr, "lr_eff": lr / 0.1, "quantity": "direction",
                            "model": "sphere_walk", "best": True, "D": 2e-6 * lr**2, "D_stderr": 0.0} for lr in LRS])
    table = scaling_frame(pd.DataFrame(rows), sphere, ["lr"], "e", lr_sweep=True)
    assert list(table.columns) == SCALING_COLUMNS and set(table["hparam"]) == {"lr", "lr_eff"}
    a = table[(table.hparam == "lr") & (table.model == "power_law") & (table.param == "a")]
    np.testing.assert_allclose(a["pl_exponent"], 0.5, atol=1e-3)
    np.testing.assert_allclose(a["mean"], 3.0 * np.array(LRS) ** 0.5 * 1.005, rtol=1e-12)
    assert a["n_best"].tolist() == [1, 1, 1, 2] and set(a["n"]) == {2} and set(a["pl_points"]) == {4}
    assert set(a["n_selected"]) == {2} and set(a["n_described"]) == {2} and set(a["pl_note"].fillna("")) == {""}
    assert np.all(a["lo"] < a["mean"]) and np.all(a["hi"] > a["mean"])  # two baselines: an interval
    D = table[(table.hparam == "lr") & (table.quantity == "direction")]
    np.testing.assert_allclose(D["pl_exponent"], 2.0, rtol=1e-9)
    assert D["lo"].isna().all()  # one baseline: no interval
    fits = pd.DataFrame(rows)
    summary = summary_table([("e", table, fits), ("empty", table.iloc[:0], fits)])
    assert set(summary["experiment"]) == {"e", "all"}
    row = summary[(summary.quantity == "dist") & (summary.model == "power_law") & (summary.param == "b")
                  & (summary.hparam == "lr") & (summary.experiment == "e")].iloc[0]
    assert row.best_model == "power_law" and row.best_share == 5 / 8 and row.b_median == 0.7
    assert row.frac_described == 1.0 and row.oos_model == "power_law" and row.n_curves == 8
    assert summary[summary.quantity == "direction"]["pl_exponent"].iloc[0] == pytest.approx(2.0)
    tot = summary[(summary.experiment == "all") & (summary.quantity == "all")].iloc[0]
    assert tot.n_curves == 8 and tot.frac_described == 1.0


def test_no_law_through_too_few_points_or_less_than_a_decade():
    from pathdep.analysis.scaling import TOO_FEW, law_allowed, scaling_frame

    assert law_allowed([0.001, 0.003, 0.01, 0.1]) and not law_allowed([0.001, 0.01, 0.1])
    assert not law_allowed([1, 2, 4, 8]) and law_allowed([1, 2, 4, 10])
    for lrs in ((0.001, 0.01, 0.1), (0.01, 0.02, 0.04, 0.08)):
        table = scaling_frame(pd.DataFrame(_rows(lrs)), None, ["lr"], "e")
        assert table["pl_exponent"].isna().all() and set(table["pl_note"]) == {TOO_FEW}


def test_momentum_laws_are_in_one_minus_m():
    from pathdep.analysis.scaling import scaling_frame

    rows = []
    for m in (0.0, 0.5, 0.8, 0.9, 0.95):
        rows.append({"run": f"m{m}", "baseline": 0, "quantity": "dist", "model": "power_law", "best": True,
                     "momentum": m, "a": 2.0 / (1 - m), "b": 1.0, "success": True, "aic": 0.0})
    table = scaling_frame(pd.DataFrame(rows), None, ["momentum"], "e")
    a = table[table.param == "a"]
    assert set(a["pl_x"]) == {"1 - momentum"}
    np.testing.assert_allclose(a["pl_exponent"], -1.0, atol=1e-9)
    np.testing.assert_allclose(a["pl_prefactor"], 2.0, rtol=1e-9)
    assert a["pl_exponent_lo"].isna().all()  # one baseline: no interval


def test_exponent_interval_across_baselines():
    from pathdep.analysis.scaling import scaling_frame

    table = scaling_frame(pd.DataFrame(_rows(baselines=(0, 1, 2), spread=0.1)), None, ["lr"], "e")
    a = table[(table.model == "power_law") & (table.param == "a")].iloc[0]
    assert a.pl_exponent == pytest.approx(0.5, abs=1e-9)  # mean of 0.4, 0.5, 0.6
    half = stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)
    assert a.pl_exponent_lo == pytest.approx(0.5 - half, rel=1e-6)
    assert a.pl_exponent_hi == pytest.approx(0.5 + half, rel=1e-6)
