"""pathdep.plots.fits: every fit figure drawn from small synthetic files written by the fits
stage itself (an epsilon sweep of four runs over two decades: metrics.nc, geometry.nc; planted
power laws d = eps k' 2 t^0.5 for copy k'; the logit distance of the largest epsilon collapses
in the last third), checked by content: the selected form passes through its points and is
named with its factor, the collapsing curve says "no form describes it", the sweep is sorted,
the scaling line is prefactor * x^exponent; a two-value sweep says "too few points"."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers import POWER, assert_figure_files, synthetic_geometry, synthetic_metrics

from pathdep.config.fits import FIGURES
from pathdep.plots.fits import NO_FORM, plot_fits
from pathdep.stages.fits import fit_experiment

EPS4 = (0.001, 0.003, 0.01, 0.1)
STEPS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _files(d, eps_values):
    mfiles, gfiles, dms = [], [], []
    for i, e in enumerate(eps_values):
        run = f"eps{e}"
        dm = synthetic_metrics(d / f"m{i}.nc", run=run, swept={"perturbation.epsilon": e}, eps=e, steps=STEPS)
        t = dm["step"].values.astype(float)
        scale = np.arange(dm.sizes["member"])[:, None]  # baseline (row 0): 0
        dm["dist"] = (("member", "checkpoint"), e * scale * POWER[0] * t ** POWER[1])
        fs = 5 * dm["dist"].values
        if e == EPS4[-1]:
            fs = np.where(t > 0.7 * t.max(), 0.1 * fs, fs)
        dm["fs_l2_logits"] = (("member", "checkpoint"), fs)
        dm.attrs["config"] = json.dumps({"run": run, "swept": {"perturbation.epsilon": e},
                                         "optimizer": {"name": "sgd", "lr": 0.1}})
        dm.to_netcdf(d / f"m{i}.nc", engine="h5netcdf")
        synthetic_geometry(dm, e).to_netcdf(d / f"g{i}.nc", engine="h5netcdf")
        mfiles.append(d / f"m{i}.nc")
        gfiles.append(d / f"g{i}.nc")
        dms.append(dm)
    out = [d / n for n in ("fits.nc", "fits.csv", "scaling.nc", "scaling.csv")]
    spec = {"models": ["constant", "power_law", "exp_linear"], "quantities": ["dist", "fs_l2_logits"]}
    fit_experiment(mfiles, gfiles, *out, spec=spec, experiment="t", log=lambda *_: None)
    return mfiles, gfiles, dms, out


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    d = tmp_path_factory.mktemp("figs")
    mfiles, gfiles, dms, out = _files(d, EPS4)
    paths = {f"{f}_{x}": str(d / "figures" / f"{f}.{x}") for f in FIGURES for x in ("pdf", "png")}
    figs = plot_fits(mfiles, gfiles, out[0], out[3], paths, "t")
    return figs, paths, dms


def test_every_figure_written_and_closed(drawn):
    figs, paths, *_ = drawn
    assert set(figs) == set(FIGURES) and plt.get_fignums() == []
    for f in FIGURES:
        assert_figure_files(paths[f"{f}_pdf"], paths[f"{f}_png"])


def test_fits_name_the_form_and_say_when_none_describes_the_curve(drawn):
    figs, _, dms = drawn
    axes = [ax for ax in figs["fits"].axes if ax.get_visible()]
    assert len(axes) == 2  # dist, fs_l2_logits
    ax = axes[0]
    points = [ln for ln in ax.lines if ln.get_marker() == "o" and not isinstance(ln.get_mfc(), str)]
    t = dms[0]["step"].values[1:].astype(float)
    mean0 = dms[0]["dist"].values[1:, 1:].mean(axis=0)  # the copy-averaged curve of baseline 0
    np.testing.assert_allclose(points[0].get_ydata(), mean0[t <= 2 / 3 * t.max()])
    solid = [ln for ln in ax.lines if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 10]
    assert len(solid) == 4
    x, y = solid[0].get_data()
    np.testing.assert_allclose(y, EPS4[0] * 2.0 * POWER[0] * x ** POWER[1], rtol=1e-3)  # mean k' = 2
    texts = [tx.get_text() for tx in ax.get_legend().get_texts()]
    assert all("power_law (last third within x1.0" in tx for tx in texts), texts
    fs_texts = [tx.get_text() for tx in axes[1].get_legend().get_texts()]
    assert sum(NO_FORM in tx for tx in fs_texts) == 1 and NO_FORM in fs_texts[-1], fs_texts
    figs["fits"].canvas.draw()
    for a in axes:  # each panel's legend lies below it, not over its points
        assert a.get_legend().get_window_extent().y1 < a.get_window_extent().y0


def test_divergence_vs_sorts_the_sweep(drawn):
    figs, _, dms = drawn
    fig = figs["divergence_vs"]
    ax = fig.axes[0]
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, EPS4)
    np.testing.assert_allclose(y, [dm["dist"].values[1:, -1].mean() for dm in dms])
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "epsilon"
    assert "one baseline, no interval" in fig.get_suptitle()


def test_scaling_line_is_the_planted_power_law(drawn):
    figs, *_ = drawn
    axes = [ax for ax in figs["scaling"].axes if ax.get_visible() and ax.get_title().endswith("power_law.a")]
    dashed = [ln for ln in axes[0].lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 1
    x, y = dashed[0].get_data()
    # a = 2 eps mean(k') = 4 eps: exponent 1, prefactor 4
    np.testing.assert_allclose(y, 4.0 * x, rtol=1e-3)
    assert x.min() == pytest.approx(EPS4[0]) and x.max() == pytest.approx(EPS4[-1])
    text = axes[0].get_legend().get_texts()[0].get_text()
    assert "exponent 1.00" in text and "one baseline: no interval" in text


def test_two_values_draw_no_law(tmp_path):
    mfiles, gfiles, _, out = _files(tmp_path, EPS4[:2])
    paths = {f"scaling_{x}": str(tmp_path / f"scaling.{x}") for x in ("pdf", "png")}
    fig = plot_fits(mfiles, gfiles, out[0], out[3], paths, "t")["scaling"]
    ax = next(a for a in fig.axes if a.get_title().endswith("power_law.a"))
    assert not [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert any("too few points" in t.get_text() for t in ax.texts)
