"""pathdep.plots.experiment: plot_experiment on synthetic metrics files (two runs of a sweep, one
with diverged members and its baseline not in row 0) writes valid PDF and PNG files; one curve
per run, bands spanning the perturbed members but not the baseline, the diverged members
counted in the legend, the baseline's own loss curve drawn."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers import assert_figure_files, synthetic_metrics

from pathdep.plots.experiment import FIGURES, plot_experiment


def _outputs(d):
    return {f"{f}_{ext}": str(d / "figures" / f"{f}.{ext}") for f in FIGURES for ext in ("pdf", "png")}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("experiment_figs")
    a = synthetic_metrics(tmp_path / "a.nc", run="eps0.001", swept={"perturbation.epsilon": 0.001}, eps=1e-3)
    b = synthetic_metrics(tmp_path / "b.nc", run="eps0.1", swept={"perturbation.epsilon": 0.1}, eps=1e-1,
                          members=5, baseline_row=2, diverged={4: 5, 1: 0})
    out = _outputs(tmp_path)
    figs = plot_experiment([tmp_path / "a.nc", tmp_path / "b.nc"], out, "t")
    return figs, out, (a, b), tmp_path


def test_files_are_valid_and_figures_closed(drawn):
    figs, out, _, tmp = drawn
    for f in FIGURES:
        assert_figure_files(out[f"{f}_pdf"], out[f"{f}_png"])
    assert sorted(p.name for p in (tmp / "figures").iterdir()) == sorted(f"{f}.{e}" for f in FIGURES for e in ("pdf", "png"))
    assert set(figs) == set(FIGURES) and plt.get_fignums() == []


def test_divergence_bands_span_the_perturbed_members_only(drawn):
    figs, _, (a, b), _ = drawn
    ax = figs["divergence"].axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 2  # one mean line and one band per run
    assert ax.get_xscale() == ax.get_yscale() == "log"
    for line, band, ds, base in zip(ax.lines, ax.collections, (a, b), (0, 2)):
        pert = np.delete(ds["dist_rel"].values, base, axis=0)
        keep = np.isfinite(pert).any(0)
        with np.errstate(invalid="ignore"):
            np.testing.assert_allclose(line.get_ydata()[keep], np.nanmean(pert[:, keep], 0))
        v = band.get_paths()[0].vertices
        # the band's lower edge is the smallest perturbed member, never the baseline's 0
        assert v[:, 1].min() == pytest.approx(np.nanmin(pert[:, 1:]), rel=1e-6)
        assert v[:, 1].max() == pytest.approx(np.nanmax(pert), rel=1e-6)
        assert v[:, 1].min() > 0


def test_divergence_shows_growth_per_layer_and_per_weight(drawn):
    """Panels: growth over the initial distance, per-layer distance relative to the layer's
    initial norm (one line per run and layer), RMS distance per weight."""
    figs, _, (a, b), _ = drawn
    ax_growth, ax_layer, ax_rms = figs["divergence"].axes[1:4]
    pert = np.delete(a["dist_over_init"].values, 0, axis=0)
    np.testing.assert_allclose(ax_growth.lines[0].get_ydata()[1:], np.nanmean(pert, 0)[1:])
    assert len(ax_layer.lines) == 2 * 2  # 2 runs x 2 layers
    pl = np.delete(a["dist_layer"].values, 0, axis=0)
    np.testing.assert_allclose(ax_layer.lines[0].get_ydata(), np.nanmean(pl[..., 0], 0) / 2.0)
    np.testing.assert_allclose(ax_layer.lines[1].get_ydata(), np.nanmean(pl[..., 1], 0) / 1.0)
    layer_legend = [lg for lg in figs["divergence"].legends if lg.get_title().get_text() == "layer"]
    assert [t.get_text() for t in layer_legend[0].get_texts()] == ["fc0", "fc1"]
    np.testing.assert_allclose(ax_rms.lines[0].get_ydata(), np.nanmean(np.delete(a["dist_rms"].values, 0, 0), 0))


def test_legend_counts_the_diverged_members(drawn):
    figs, *_ = drawn
    texts = [t.get_text() for t in figs["divergence"].legends[0].get_texts()]
    assert texts == ["epsilon=0.001", "epsilon=0.1 (2 diverged)"]


def test_divergence_legends_are_outside_the_axes(drawn):
    """The run and layer legends are figure legends right of every panel, none over the data."""
    figs, *_ = drawn
    fig = figs["divergence"]
    fig.canvas.draw()
    right = max(ax.get_window_extent().x1 for ax in fig.axes)
    assert len(fig.legends) == 2 and all(ax.get_legend() is None for ax in fig.axes)
    assert all(lg.get_window_extent().x0 >= right for lg in fig.legends)


def test_loss_draws_the_baseline_and_the_members(drawn):
    figs, _, (a, b), _ = drawn
    ax = figs["loss"].axes[1]  # test loss
    solid = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    assert len(solid) == 2 and len(ax.collections) == 2
    np.testing.assert_allclose(solid[1].get_ydata(), b["test_loss"].values[2])  # the baseline row of run b
    assert [t.get_text() for t in figs["loss"].axes[0].get_legend().get_texts()] == ["epsilon=0.001", "epsilon=0.1"]


def test_cf_disagreement_is_one_minus_agreement(drawn):
    figs, _, (a, _), _ = drawn
    line = figs["cf"].axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), np.mean(1 - a["test_cf_acc"].values[1:], 0))


def test_schedule_perturbation_without_initial_distance(tmp_path):
    """A schedule perturbation starts at distance 0: the growth-over-initial-distance panel has
    no finite value and must not break the log axes (it says so instead)."""
    ds = synthetic_metrics(tmp_path / "s.nc", run="base")
    ds = ds.load()
    ds["dist_over_init"][:] = np.nan
    ds.to_netcdf(tmp_path / "s2.nc", engine="h5netcdf")
    out = _outputs(tmp_path)
    figs = plot_experiment([tmp_path / "s2.nc"], out, "sched")
    ax = figs["divergence"].axes[1]
    assert ax.get_yscale() == "linear" and "not defined" in ax.texts[0].get_text()
    assert not ax.axison  # no meaningless +-0.04 axes, only the text
    assert_figure_files(out["divergence_pdf"], out["divergence_png"])
