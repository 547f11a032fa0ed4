"""pathdep.plots.lyapunov: the spectrum, link and 2-2-1 study figures drawn from small synthetic
files (two runs' lyapunov.nc, a link table CSV, study and ROC netCDF files with planted failure
fractions and AUCs), checked by content: one running-exponent curve per run with its label, the
final spectra, error bars of the planted sizes, the y = x line spanning every point, the
lambda band of the tangent panel, one panel per (activation, init range) with its planted
failure fraction, at most four AUC curves per panel in distinct colours with bands of the
planted fold std."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers import assert_figure_files

from pathdep.plots.lyapunov import plot_link, plot_spectrum, plot_study


def _spectrum(path, eps, lam):
    steps = np.arange(1, 51)
    running = lam[None, :] + 0.5 / steps[:, None]  # converges like 1/steps to the final spectrum
    ds = xr.Dataset({"exponents": ("exponent", lam), "running": (("step", "exponent"), running)},
                    coords={"exponent": np.arange(1, len(lam) + 1), "step": steps},
                    attrs={"experiment": "eps", "run": f"eps{eps}", "swept": json.dumps({"perturbation.epsilon": eps})})
    ds.to_netcdf(path, engine="h5netcdf")
    return ds


def test_spectrum(tmp_path):
    lams = [np.array([0.02, -0.01, -0.05]), np.array([0.01, -0.02, -0.06])]
    paths = [tmp_path / "a.nc", tmp_path / "b.nc"]
    for p, e, lam in zip(paths, (0.01, 0.1), lams):
        _spectrum(p, e, lam)
    fig = plot_spectrum(paths, tmp_path / "s.pdf", tmp_path / "s.png")
    assert_figure_files(tmp_path / "s.pdf", tmp_path / "s.png")
    ax0, ax1 = fig.axes  # one experiment: its running estimates above its spectra
    runs = [ln for ln in ax0.lines if ln.get_label() and not ln.get_label().startswith("_")]
    assert [ln.get_label() for ln in runs] == ["epsilon=0.01", "epsilon=0.1"]
    assert "eps" in ax0.get_title()
    np.testing.assert_allclose(runs[0].get_ydata()[-1], 0.02 + 0.5 / 50)
    spectra = [ln for ln in ax1.lines if not ln.get_label().startswith("_")]
    for ln, lam in zip(spectra, lams):
        np.testing.assert_allclose(ln.get_ydata(), lam)
    assert len({ln.get_marker() for ln in runs}) == 2  # each series its own marker (and colour)
    assert len({tuple(ln.get_color()) for ln in runs}) == 2
    assert ax0.get_yscale() == "linear"  # exponents of one scale: linear
    assert plt.get_fignums() == []


def test_spectrum_symlog_when_one_run_dominates(tmp_path):
    """One run's exponent 1000x the others' would squash them at 0: symlog y, one column per
    experiment."""
    lams = [np.array([1e-3, 1e-4]), np.array([1e-6, -1e-6]), np.array([-2e-6, -3e-6]), np.array([5e-6, 1e-6])]
    paths = []
    for i, lam in enumerate(lams):
        paths.append(tmp_path / f"{i}.nc")
        ds = _spectrum(paths[-1], i, lam)
        if i == 3:  # a second experiment
            ds.attrs["experiment"] = "other"
            ds.to_netcdf(paths[-1], engine="h5netcdf", mode="w")
    fig = plot_spectrum(paths, tmp_path / "s.pdf", tmp_path / "s.png")
    assert len(fig.axes) == 4  # two columns (experiments) x (running, spectrum)
    run_eps, run_other, spec_eps, spec_other = fig.axes
    assert run_eps.get_yscale() == "symlog" and spec_eps.get_yscale() == "symlog"
    assert run_other.get_yscale() == "linear"
    labels = [ln.get_label() for ln in run_eps.lines if not ln.get_label().startswith("_")]
    assert len(labels) == 3 and len({ln.get_marker() for ln in run_eps.lines if ln.get_label() in labels}) == 3


def test_link_from_csv(tmp_path):
    table = pd.DataFrame({"experiment": ["lr", "lr", "mom", "epsilon", "epsilon", "epsilon"],
                          "run": ["a", "b", "c", "e6", "e4", "e1"],
                          "epsilon": [1e-4, 1e-4, 1e-4, 1e-6, 1e-4, 1e-1],
                          "lambda_max": [0.01, 0.03, -0.02, 0.02, 0.02, 0.02],
                          "lambda_max_err": [0.002, 0.003, 0.004, 0.001, 0.001, 0.001],
                          "measured_rate": [0.012, 0.025, 0.05, 0.021, 0.019, 0.001],
                          "measured_rate_se": [0.001, 0.002, 0.01, 0.001, 0.001, 0.0005],
                          "agree": [True, True, False, True, True, False],
                          "tangent": [False, False, False, True, True, True]})
    table.to_csv(tmp_path / "link.csv", index=False)
    fig = plot_link(tmp_path / "link.csv", tmp_path / "l.pdf", tmp_path / "l.png")
    assert_figure_files(tmp_path / "l.pdf", tmp_path / "l.png")
    ax, ax_eps = fig.axes
    assert len(ax.containers) == 3  # one errorbar set per experiment
    _, _, (xbars, ybars) = ax.containers[2]
    # the third experiment (epsilon): vertical bar half-length = planted se
    seg = ybars.get_segments()[2]
    assert seg[1][1] - seg[0][1] == pytest.approx(2 * 0.0005)
    diag = [ln for ln in ax.lines if ln.get_label() == "y = x"]
    assert len(diag) == 1
    x, y = diag[0].get_data()
    np.testing.assert_allclose(x, y)
    pts = np.r_[table["lambda_max"], table["measured_rate"]]
    assert min(x) < pts.min() and max(x) > pts.max()
    dots = {c.get_label(): c.get_facecolors() for c in ax.collections if c.get_label() in ("lr", "mom")}
    assert not np.allclose(dots["lr"][:, :3], 1)  # lr: both agree, filled
    np.testing.assert_allclose(dots["mom"][:, :3], 1)  # mom: disagrees, open marker
    assert ax.get_xscale() == ax.get_yscale() == "linear"  # rates and exponents of one scale
    names = {t.get_text() for t in ax.texts}
    assert {"a", "b", "c"} <= names  # every point named (no swept column: the run)
    assert "e6; e4" in names or "e6" in names
    assert fig.legends and ax.get_legend() is None  # the legend is under the panels
    assert ax_eps.get_xscale() == "log"
    band = [p for p in ax_eps.patches]
    assert len(band) == 1
    (ln,) = [ln for ln in ax_eps.lines if ln.get_label() == "measured rate"] or [ax_eps.containers[0].lines[0]]
    np.testing.assert_allclose(ln.get_ydata(), [0.021, 0.019, 0.001])


@pytest.fixture()
def study_files(tmp_path):
    rng = np.random.default_rng(0)
    acts, ranges, N, times = ["tanh", "relu"], [0.5, 2.0], 40, [5, 20]
    thr = 1e-3
    fail_frac = np.array([[0.1, 0.25], [0.05, 0.5]])
    final = np.full((2, 2, N), 1e-6)
    for i in range(2):
        for j in range(2):
            final[i, j, : int(fail_frac[i, j] * N)] = 0.1
    failed = final > thr
    ftle = rng.normal(size=(2, 2, N, 2, 9)) + 2.0 * failed[..., None, None]
    angle = rng.uniform(0.1, 1.5, size=(2, 2, N, 2))
    study = xr.Dataset({"final_loss": (("activation", "init_range", "network"), final),
                        "failed": (("activation", "init_range", "network"), failed),
                        "failure_fraction": (("activation", "init_range"), failed.mean(-1)),
                        "ftle": (("activation", "init_range", "network", "time", "exponent"), ftle),
                        "min_clv_angle": (("activation", "init_range", "network", "time"), angle)},
                       coords={"activation": acts, "init_range": ranges, "network": np.arange(N), "time": times,
                               "exponent": np.arange(1, 10)}, attrs={"threshold": thr})
    auc = np.linspace(0.6, 0.95, 2 * 2 * 5 * 2).reshape(2, 2, 5, 2)
    std = np.full_like(auc, 0.03)
    roc = xr.Dataset({"auc": (("activation", "init_range", "indicator", "time"), auc),
                      "auc_std": (("activation", "init_range", "indicator", "time"), std),
                      "auc_se": (("activation", "init_range", "indicator", "time"), std / 2)},
                     coords={"activation": acts, "init_range": ranges,
                             "indicator": ["ftle", "loss", "clv_min_angle", "all", "clv_angles"], "time": times})
    study.to_netcdf(tmp_path / "study.nc", engine="h5netcdf")
    roc.to_netcdf(tmp_path / "roc.nc", engine="h5netcdf")
    return tmp_path, fail_frac, auc


def test_link_symlog_points_apart(tmp_path):
    """Exponents near 0 next to rates decades larger: symlog on both axes (y = x diagonal),
    coinciding points of two experiments share one label."""
    table = pd.DataFrame({"experiment": ["lr", "lr", "mom"], "run": ["a", "b", "c"],
                          "swept": ['{"optimizer.lr": 0.01}', '{"optimizer.lr": 0.3}', '{"optimizer.momentum": 0.0}'],
                          "lambda_max": [-8e-7, 2e-3, -8e-7], "lambda_max_err": [3e-7, 2e-3, 3e-7],
                          "measured_rate": [4e-3, 1.5e-3, 4e-3], "measured_rate_se": [3e-4, 1e-4, 3e-4],
                          "agree": [False, True, False]})
    fig = plot_link(table, tmp_path / "l.pdf", tmp_path / "l.png")
    (ax,) = fig.axes
    assert ax.get_xscale() == ax.get_yscale() == "symlog"
    names = [t.get_text() for t in ax.texts if "=" in t.get_text() and "symlog" not in t.get_text()]
    assert sorted(names) == ["lr=0.01 = momentum=0.0", "lr=0.3"]


def test_loss_floor_labelled(tmp_path):
    """Final losses at 0 are drawn at log10(1e-30): the pile is labelled with its count."""
    study = xr.Dataset({"final_loss": (("activation", "init_range", "network"), np.array([[[0.0, 1e-40, 0.1, 1e-5]]])),
                        "failed": (("activation", "init_range", "network"), np.array([[[False, False, True, False]]])),
                        "failure_fraction": (("activation", "init_range"), np.array([[0.25]])),
                        "ftle": (("activation", "init_range", "network", "time", "exponent"), np.zeros((1, 1, 4, 1, 1))),
                        "min_clv_angle": (("activation", "init_range", "network", "time"), np.ones((1, 1, 4, 1)))},
                       coords={"activation": ["tanh"], "init_range": [1.0], "time": [5], "exponent": [1]},
                       attrs={"threshold": 1e-3})
    roc = xr.Dataset({"auc": (("activation", "init_range", "indicator", "time"), np.full((1, 1, 1, 1), 0.7))},
                     coords={"activation": ["tanh"], "init_range": [1.0], "indicator": ["loss"], "time": [5]})
    out = {k: (tmp_path / f"{k}.pdf", tmp_path / f"{k}.png") for k in ("loss", "ftle", "clv", "roc")}
    figs = plot_study(study, roc, out)
    (label,) = [t.get_text() for t in figs["loss"].axes[0].texts]
    assert label.startswith("2 at loss \u2264 1e-30")


def test_study(study_files):
    d, fail_frac, auc = study_files
    out = {k: (d / f"{k}.pdf", d / f"{k}.png") for k in ("loss", "ftle", "clv", "roc")}
    figs = plot_study(d / "study.nc", d / "roc.nc", out, caveat="ReLU: structural failures")
    for pdf, png in out.values():
        assert_figure_files(pdf, png)
    for name in out:
        assert len(figs[name].axes) == 4  # one panel per (activation, init range)
    titles = [ax.get_title() for ax in figs["loss"].axes]
    assert titles == ["tanh, U(-0.5,0.5): 10.0% failed", "tanh, U(-2,2): 25.0% failed",
                      "relu, U(-0.5,0.5): 5.0% failed", "relu, U(-2,2): 50.0% failed"]
    ax = figs["loss"].axes[0]
    assert ax.lines[0].get_xdata()[0] == pytest.approx(-3.0)  # the threshold line at log10(1e-3)
    # no loss at the 1e-30 floor in these files: no floor label; the tick formatter names it
    assert not [t for t in ax.texts if "clip floor" in t.get_text()]
    assert ax.xaxis.get_major_formatter()(-30.0, 0).startswith("\u2264")
    for ax in figs["ftle"].axes:
        h_ok, h_fail = ax.containers
        for h in (h_ok, h_fail):  # density histograms: each integrates to 1
            assert sum(p.get_height() * p.get_width() for p in h.patches) == pytest.approx(1.0)
    ax = figs["roc"].axes[3]  # relu U(-2,2)
    curves = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert len(curves) == 4  # at most four indicators of the five
    np.testing.assert_allclose(curves[0].get_ydata(), auc[1, 1, 0])
    cols = {tuple(ln.get_color()) if not isinstance(ln.get_color(), str) else ln.get_color() for ln in curves}
    assert len(cols) == 4
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() == pytest.approx(auc[1, 1, 0].max() + 0.03)
    assert "SE <= 0.015" in ax.get_title()
    # one figure legend, outside the panels, instead of one per panel over the curves
    assert all(a.get_legend() is None for a in figs["roc"].axes)
    assert [t.get_text() for t in figs["roc"].legends[0].get_texts()] == ["ftle", "loss", "clv_min_angle", "all"]
    assert plt.get_fignums() == []
