"""Scaling tables and log-log power-law fits."""

import numpy as np
import pandas as pd
import pytest

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


def test_scaling_frame_planted_power_law_and_best_counts():
    from pathdep.analysis.scaling import SCALING_COLUMNS, scaling_frame, summary_table

    rows = []
    for lr in (0.001, 0.01, 0.1):
        for member in (1, 2):
            for model, best in (("power_law", member == 1 or lr == 0.1), ("sqrt", not (member == 1 or lr == 0.1))):
                rows.append({"run": f"lr{lr}", "member": member, "quantity": "dist", "model": model, "best": best,
                             "lr": lr, "lr_eff": lr / 0.1, "a": 3.0 * lr**0.5 * (1 + 0.01 * member), "b": 0.7,
                             "d0": 1.0, "success": True, "aic": 0.0})
    sphere = pd.DataFrame([{"run": f"lr{lr}", "member": 1, "lr": lr, "lr_eff": lr / 0.1, "quantity": "direction",
                            "model": "sphere_walk", "best": True, "D": 2e-6 * lr**2, "D_stderr": 0.0}
                           for lr in (0.001, 0.01, 0.1)])
    table = scaling_frame(pd.DataFrame(rows), sphere, ["lr"], "e", lr_sweep=True)
    assert list(table.columns) == SCALING_COLUMNS and set(table["hparam"]) == {"lr", "lr_eff"}
    a = table[(table.hparam == "lr") & (table.model == "power_law") & (table.param == "a")]
    np.testing.assert_allclose(a["pl_exponent"], 0.5, atol=1e-3)
    np.testing.assert_allclose(a["mean"], 3.0 * np.array([0.001, 0.01, 0.1]) ** 0.5 * 1.015, rtol=1e-12)
    assert a["n_best"].tolist() == [1, 1, 2] and set(a["n"]) == {2} and set(a["pl_points"]) == {3}
    D = table[(table.hparam == "lr") & (table.quantity == "direction")]
    np.testing.assert_allclose(D["pl_exponent"], 2.0, rtol=1e-9)
    fits = pd.DataFrame(rows)
    summary = summary_table([("e", table, fits), ("empty", table.iloc[:0], fits)])
    assert set(summary["experiment"]) == {"e"}
    row = summary[(summary.quantity == "dist") & (summary.model == "power_law") & (summary.param == "b")
                  & (summary.hparam == "lr")].iloc[0]
    assert row.best_model == "power_law" and row.best_share == 4 / 6 and row.b_median == 0.7
    assert summary[summary.quantity == "direction"]["pl_exponent"].iloc[0] == pytest.approx(2.0)
