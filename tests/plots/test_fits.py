"""pathdep.plots.fits: every fit figure drawn from small synthetic files (two runs of an
epsilon sweep: metrics.nc, geometry.nc, fits.nc fitted by pathdep.analysis.fits to exact
power laws, a scaling table with a planted power law), checked by content: the fitted power
law passes through its points, the sweep is sorted, the scaling line is prefactor * x^exponent."""


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers import (ALIGNED_RATIO, EPS, H_ALIGNED, H_RAW, POWER, assert_figure_files, synthetic_geometry,
                     synthetic_metrics)

from pathdep.analysis import fits as FT
from pathdep.config.fits import FIGURES
from pathdep.plots.fits import plot_fits

def _scaling_table() -> pd.DataFrame:
    """Planted: the power law's prefactor a = 3 eps^0.25 over the epsilon sweep."""
    rows = []
    for e in EPS:
        for p, mean in (("a", 3 * e ** 0.25), ("b", 0.5)):
            rows.append({"experiment": "t", "hparam": "epsilon", "value": e, "quantity": "dist", "model": "power_law",
                         "param": p, "n": 3, "n_best": 3, "mean": mean, "std": 0.0, "sem": 0.01 * mean,
                         "pl_exponent": 0.25 if p == "a" else 0.0, "pl_exponent_stderr": 0.01,
                         "pl_prefactor": 3.0 if p == "a" else 0.5})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    d = tmp_path_factory.mktemp("figs")
    mfiles, gfiles, dms, dgs, results, co = [], [], [], [], [], {"quantity": [], "run": [], "member": []}
    for i, e in enumerate(EPS):
        dm = synthetic_metrics(d / f"m{i}.nc", run=f"eps{e}", swept={"perturbation.epsilon": e}, eps=e,
                               steps=(0, 1, 2, 5, 10, 20, 50, 100, 200))
        t = dm["step"].values.astype(float)
        scale = np.arange(dm.sizes["member"])[:, None]  # baseline (row 0): 0
        dm["dist"] = (("member", "checkpoint"), e * scale * POWER[0] * t ** POWER[1])
        dm["fs_l2_logits"] = 5 * dm["dist"]
        dm.to_netcdf(d / f"m{i}.nc", engine="h5netcdf")
        dg = synthetic_geometry(dm, e)
        dg.to_netcdf(d / f"g{i}.nc", engine="h5netcdf")
        for q in ("dist", "fs_l2_logits"):
            for k in range(1, dm.sizes["member"]):
                results.append(FT.fit_all(t, dm[q].values[k], ["power_law", "exp_linear"]))
                co["quantity"].append(q)
                co["run"].append(f"eps{e}")
                co["member"].append(k)
        mfiles.append(d / f"m{i}.nc")
        gfiles.append(d / f"g{i}.nc")
        dms.append(dm)
        dgs.append(dg)
    FT.fits_to_dataset(results, co, dim="curve").to_netcdf(d / "fits.nc", engine="h5netcdf")
    _scaling_table().to_csv(d / "scaling.csv", index=False)
    out = {f"{f}_{x}": str(d / "figures" / f"{f}.{x}") for f in FIGURES for x in ("pdf", "png")}
    figs = plot_fits(mfiles, gfiles, d / "fits.nc", d / "scaling.csv", out, "t")
    return figs, out, dms, dgs


def test_every_figure_written_and_closed(drawn):
    figs, out, *_ = drawn
    assert set(figs) == set(FIGURES) and plt.get_fignums() == []
    for f in FIGURES:
        assert_figure_files(out[f"{f}_pdf"], out[f"{f}_png"])


def test_fits_power_law_passes_through_its_points(drawn):
    figs, _, dms, _ = drawn
    axes = [ax for ax in figs["fits"].axes if ax.get_visible()]
    assert len(axes) == 2  # dist, fs_l2_logits
    ax = axes[0]
    points = [ln for ln in ax.lines if ln.get_marker() == "o"]
    dotted = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    assert len(points) == 2  # one run each: its first perturbed member
    t = dms[0]["step"].values[1:].astype(float)
    np.testing.assert_allclose(points[0].get_ydata(), dms[0]["dist"].values[1, 1:])
    np.testing.assert_allclose(points[0].get_xdata(), t)
    for ln, e in zip(dotted, EPS):
        x = ln.get_xdata()
        np.testing.assert_allclose(ln.get_ydata(), e * POWER[0] * x ** POWER[1], rtol=1e-4)
    figs["fits"].canvas.draw()
    for a in axes:  # each panel's legend lies below it, not over its points
        assert a.get_legend().get_window_extent().y1 < a.get_window_extent().y0


def test_divergence_vs_sorts_the_sweep(drawn):
    figs, _, dms, _ = drawn
    ax = figs["divergence_vs"].axes[0]
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, EPS)
    np.testing.assert_allclose(y, [dm["dist"].values[1:, -1].mean() for dm in dms])
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "epsilon"
    # two decades: ticks at the swept values, plainly labelled, minor ticks unlabelled
    figs["divergence_vs"].canvas.draw()
    np.testing.assert_allclose(ax.get_xticks(), EPS)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.1"]
    assert not any(t.get_text() for t in ax.get_xticklabels(minor=True))


def test_scaling_line_is_the_planted_power_law(drawn):
    figs, *_ = drawn
    axes = [ax for ax in figs["scaling"].axes if ax.get_visible()]
    assert len(axes) == 2  # power_law: a, b
    dashed = [ln for ln in axes[0].lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 1
    x, y = dashed[0].get_data()
    np.testing.assert_allclose(y, 3.0 * x ** 0.25)
    assert x.min() == pytest.approx(EPS[0]) and x.max() == pytest.approx(EPS[1])
    assert "exponent 0.25" in axes[0].get_legend().get_texts()[0].get_text()


