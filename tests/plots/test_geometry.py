"""pathdep.plots.geometry: every geometry figure drawn from small synthetic files (two runs of
an epsilon sweep: geometry.nc with planted barriers and aligned distances), checked by
content: the baseline never enters a band, the plotted means are the planted values; and the
hypersphere theory figure draws theory.nc."""


import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from helpers import (ALIGNED_RATIO, EPS, H_ALIGNED, H_RAW, POWER, assert_figure_files, synthetic_geometry,
                     synthetic_metrics)

from pathdep.config.geometry import FIGURES
from pathdep.plots.geometry import plot_geometry, plot_hypersphere_theory
from pathdep.stages.geometry import hypersphere_theory

@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    d = tmp_path_factory.mktemp("figs")
    gfiles, dms, dgs = [], [], []
    for i, e in enumerate(EPS):
        dm = synthetic_metrics(d / f"m{i}.nc", run=f"eps{e}", swept={"perturbation.epsilon": e}, eps=e,
                               steps=(0, 1, 2, 5, 10, 20, 50, 100, 200))
        t = dm["step"].values.astype(float)
        scale = np.arange(dm.sizes["member"])[:, None]  # baseline (row 0): 0
        dm["dist"] = (("member", "checkpoint"), e * scale * POWER[0] * t ** POWER[1])
        dg = synthetic_geometry(dm, e)
        dg.to_netcdf(d / f"g{i}.nc", engine="h5netcdf")
        gfiles.append(d / f"g{i}.nc")
        dms.append(dm)
        dgs.append(dg)
    out = {f"{f}_{x}": str(d / "figures" / f"{f}.{x}") for f in FIGURES for x in ("pdf", "png")}
    figs = plot_geometry(gfiles, out, "t")
    return figs, out, dms, dgs


def test_every_figure_written_and_closed(drawn):
    figs, out, *_ = drawn
    assert set(figs) == set(FIGURES) and plt.get_fignums() == []
    for f in FIGURES:
        assert_figure_files(out[f"{f}_pdf"], out[f"{f}_png"])


def test_aligned_ratio_is_the_planted_one(drawn):
    figs, _, dms, dgs = drawn
    ax0, ax1 = figs["aligned"].axes[:2]
    assert len(ax0.lines) == 4 and len(ax1.lines) == 2  # raw + aligned per run; ratio per run
    for line in ax1.lines:
        y = line.get_ydata()  # only aligned checkpoints are drawn; 0 / 0 at step 0
        assert np.isnan(y[0]) and np.allclose(y[1:], ALIGNED_RATIO)
        assert len(line.get_xdata()) == dgs[0].sizes["checkpoint"] - 1
    labels = [t.get_text() for t in figs["aligned"].legends[0].get_texts()]  # outside the axes
    assert labels == ["epsilon=0.001", "epsilon=0.1"] and ax0.get_legend() is None
    assert not ax1.texts and not ax1.yaxis.get_major_formatter().get_useOffset()


def test_aligned_ratio_of_one_is_said_in_words(drawn, tmp_path):
    """Alignment that changes nothing: ratio 1 (to 1e-12) is a text on sane limits, no "1e-12+1" offset."""
    _, _, dms, dgs = drawn
    out = {f"{f}_{x}": str(tmp_path / f"{f}.{x}") for f in FIGURES for x in ("pdf", "png")}
    from pathdep.plots.geometry import _fig_aligned

    same = [da.assign(dist_aligned=da["dist"] * (1 + 1e-12)) for da in dgs]
    fig = _fig_aligned(same, ["C0", "C1"], "t", out)
    ax1 = fig.axes[1]
    fig.canvas.draw()
    assert "alignment changes nothing" in ax1.texts[0].get_text()
    assert ax1.get_ylim() == (0.0, 1.1) and ax1.yaxis.get_offset_text().get_text() == ""


def test_interpolation_and_barriers_show_the_planted_barriers(drawn):
    figs, _, _, dgs = drawn
    axes = figs["interpolation"].axes
    assert len(axes) == 2 * dgs[0].sizes["icheckpoint"]
    lam = dgs[0]["lam"].values
    mid = np.argmin(np.abs(lam - 0.5))
    ys = sorted(ln.get_ydata()[mid] for ln in axes[0].lines)  # drawn above the chord: the barrier itself
    np.testing.assert_allclose(ys, [H_ALIGNED, H_ALIGNED, H_RAW, H_RAW])
    assert all(abs(ln.get_ydata()[0]) < 1e-12 and abs(ln.get_ydata()[-1]) < 1e-12 for ln in axes[0].lines)
    ax = figs["barriers"].axes[0]
    heights = sorted({round(float(v), 12) for ln in ax.lines for v in ln.get_ydata()})
    assert heights == [H_ALIGNED, H_RAW]
    steps = dgs[0]["icheckpoint_step"].values
    lo, hi = ax.get_xlim()
    assert lo < steps.min() and hi > steps.max()  # the end markers are not cut by the axes
    # legends outside the axes; no offset notation, and flat curves are not blown up
    assert figs["interpolation"].legends and axes[0].get_legend() is None
    for a in axes:
        lo, hi = a.get_ylim()
        assert hi - lo >= 1e-3 * max(abs(lo), abs(hi)) * (1 - 1e-9)
        assert not a.yaxis.get_major_formatter().get_useOffset()


def test_autocorr_bands_exclude_the_baseline(drawn):
    figs, _, _, dgs = drawn
    axes = figs["autocorr"].axes
    assert len(axes) == 4 and all(len(ax.lines) == 2 for ax in axes)
    assert not any(ax.yaxis.get_major_formatter().get_useOffset() for ax in axes)
    # ac_w_base of the baseline is cos(0) = 1; including it would pull the mean up
    ds = dgs[1]
    got = axes[1].lines[1].get_ydata()
    np.testing.assert_allclose(got[1:], ds["ac_w_base"].values[1:, 1:].mean(0))
    assert not np.allclose(got[1:], ds["ac_w_base"].values[:, 1:].mean(0))
    assert np.all(axes[1].collections[1].get_paths()[0].vertices[:, 1] < 1.0)


def test_hypersphere_theory_draws_the_table(tmp_path):
    spec = {"dims": [3, 20], "walkers": 400, "t_max_rate": 2.0, "rate_dt": 0.01}
    ds = hypersphere_theory(tmp_path / "theory.nc", spec, log=lambda *_: None)
    fig = plot_hypersphere_theory(tmp_path / "theory.nc", tmp_path / "h.pdf", tmp_path / "h.png")
    assert_figure_files(tmp_path / "h.pdf", tmp_path / "h.png")
    ax0, ax1 = fig.axes[:2]
    assert len(ax0.containers) == 2 and len(ax0.lines) >= 2  # simulated points and closed form per n
    for i, cont in enumerate(ax1.containers):
        xs, ys = cont.lines[0].get_data()
        np.testing.assert_array_equal(xs, ds["x"].values[i])
        np.testing.assert_array_equal(ys, ds["sq"].values[i])
    lines = [ln for ln in ax0.lines if ln.get_marker() in ("None", "", None)]
    for i, line in enumerate(lines):
        np.testing.assert_array_equal(line.get_ydata(), ds["cos_line"].values[i])
        theory = np.interp(ds["x"].values[i], *line.get_data())
        assert np.max(np.abs(ds["cos"].values[i] - theory)) < 0.1  # within the scheme's bias and the noise
