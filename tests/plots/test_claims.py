"""pathdep.plots.claims: the figure is drawn from a claims.csv (every verdict kind, a
predicted value, open and closed predicted ranges, a not-run row) and its helpers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pathdep.plots.claims import panel_limits, plot_claims, verdict_kind


def test_verdict_kind():
    assert verdict_kind("not run (config/paper.yaml)") == "not run"
    assert verdict_kind("inconclusive (one baseline: no interval)") == "inconclusive"
    assert verdict_kind("supported") == "supported" and verdict_kind("contradicted") == "contradicted"


def test_panel_limits_cover_value_interval_and_finite_prediction():
    lo, hi = panel_limits({"value": 1.0, "lo": 0.5, "hi": 1.5, "predicted_lo": 2.0, "predicted_hi": math.inf})
    assert lo < 0.5 and hi > 2.0
    assert panel_limits({"value": math.nan, "lo": math.nan, "hi": math.nan, "predicted_lo": math.nan,
                         "predicted_hi": math.nan}) is None


def test_plot_claims_writes_pdf_and_png(tmp_path):
    inf = math.inf
    rows = [("a", "supported", 0.7, 0.6, 0.8, 0.5, inf), ("b", "contradicted", 6.0, 5.0, 6.0, 2.0, 2.0),
            ("c", "inconclusive (one baseline: no interval)", 0.2, math.nan, math.nan, -inf, 0.0),
            ("d", "not run (config/paper.yaml)", math.nan, math.nan, math.nan, math.nan, math.nan)]
    df = pd.DataFrame(rows, columns=["id", "verdict", "value", "lo", "hi", "predicted_lo", "predicted_hi"])
    df["statistic"] = "a statistic"
    df.to_csv(tmp_path / "claims.csv", index=False)
    plot_claims(str(tmp_path / "claims.csv"), str(tmp_path / "c.pdf"), str(tmp_path / "c.png"), ncols=3)
    assert (tmp_path / "c.pdf").stat().st_size > 1000 and (tmp_path / "c.png").stat().st_size > 1000
    with pytest.raises(FileNotFoundError):
        plot_claims(str(tmp_path / "none.csv"), str(tmp_path / "x.pdf"), str(tmp_path / "x.png"))


def test_panel_limits_of_a_narrow_interval_at_a_large_value():
    lo, hi = panel_limits({"value": 1.0, "lo": 0.999999, "hi": 1.000001, "predicted_lo": -math.inf,
                           "predicted_hi": 1.0})
    assert hi - lo > 0.1            # not a 1e-6 wide axis
