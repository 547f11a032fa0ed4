"""pathdep.plots.lyapunov: the spectrum, link and 2-2-1 study figures drawn from small synthetic
files (runs' lyapunov.nc of three baselines, link table CSVs, study and ROC netCDF files with
planted failure fractions and AUCs), checked by content: one running-exponent curve per
baseline with the run's label, the unresolved band, hollow unresolved exponents, interval bars
of the planted sizes, the y = x line spanning every point, the lambda band of the sweep panel,
the verdicts and bounds of the table, one panel per (activation, init range) with its planted
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


def _spectrum(path, eps, lam, R=1, resolved=None, ordered=True, experiment="eps"):
    """A lyapunov.nc of R baselines whose running estimates converge like 1/T to ``lam``
    (baseline r offset by r * 1e-3)."""
    steps = np.arange(101, 151)
    T = steps - 100
    lam_r = lam[None, :] + 1e-3 * np.arange(R)[:, None]
    running = lam_r[:, None, :] + 0.5 / T[None, :, None]
    mean = lam_r.mean(0)
    res = np.ones((R, len(lam)), "int8") if resolved is None else np.tile(resolved, (R, 1)).astype("int8")
    ds = xr.Dataset({"exponents": (("baseline", "exponent"), lam_r),
                     "exponent_err": (("baseline", "exponent"), np.full((R, len(lam)), 1e-4)),
                     "exponents_mean": ("exponent", mean), "exponents_hi": ("exponent", mean + 2e-3),
                     "exponents_lo": ("exponent", mean - 2e-3),
                     "resolved": (("baseline", "exponent"), res),
                     "ordered": ("baseline", np.full(R, int(ordered), "int8")),
                     "running": (("baseline", "step", "exponent"), running)},
                    coords={"exponent": np.arange(1, len(lam) + 1), "step": steps},
                    attrs={"experiment": experiment, "run": f"eps{eps}",
                           "swept": json.dumps({"perturbation.epsilon": eps})})
    ds.to_netcdf(path, engine="h5netcdf")
    return ds


def test_spectrum(tmp_path):
    """One line per baseline against the window length (log x) ending at the planted exponent,
    the unresolved band +-1/T, hollow unresolved exponents, interval bars, unordered runs named."""
    lams = [np.array([0.02, -0.01, -0.05]), np.array([0.01, -0.02, -0.06])]
    paths = [tmp_path / "a.nc", tmp_path / "b.nc"]
    _spectrum(paths[0], 0.01, lams[0], R=3)
    _spectrum(paths[1], 0.1, lams[1], R=3, resolved=np.array([1, 0, 1]), ordered=False)
    fig = plot_spectrum(paths, tmp_path / "s.pdf", tmp_path / "s.png")
    assert_figure_files(tmp_path / "s.pdf", tmp_path / "s.png")
    ax0, ax1 = fig.axes  # one experiment: its running estimates above its spectra
    assert ax0.get_xscale() == "log" and "eps" in ax0.get_title()
    lines = [ln for ln in ax0.lines if np.size(ln.get_xdata()) == 50]
    assert len(lines) == 6  # 2 runs x 3 baselines
    assert [ln.get_label() for ln in lines if not ln.get_label().startswith("_")] == ["epsilon=0.01", "epsilon=0.1"]
    np.testing.assert_allclose(lines[1].get_ydata()[-1], 0.02 + 1e-3 + 0.5 / 50)
    band = ax0.collections[-1].get_paths()[0].vertices
    assert band[:, 1].max() == pytest.approx(1.0)  # |lambda| < 1/T from T = 1
    dots = [c for c in ax1.collections if c.get_offsets().shape[0] == 3]
    np.testing.assert_allclose(dots[0].get_offsets()[:, 1], lams[0] + 1e-3)  # mean of the baselines
    face = dots[1].get_facecolors()
    assert np.allclose(face[1, :3], 1) and not np.allclose(face[0, :3], 1)  # exponent 2 unresolved: hollow
    labels = ax1.get_legend_handles_labels()[1]
    assert labels == ["epsilon=0.01", "epsilon=0.1 (columns not ordered)"]
    _, _, (bars,) = ax1.containers[0]
    seg = bars.get_segments()[0]
    assert seg[1][1] - seg[0][1] == pytest.approx(4e-3)  # the planted interval
    assert plt.get_fignums() == []


def test_spectrum_symlog_when_one_run_dominates(tmp_path):
    """One run's exponent 1000x the others' would squash them at 0: symlog y, one column per
    experiment; files of one baseline without the baseline axis are drawn too."""
    lams = [np.array([1e-1, 1e-2]), np.array([1e-6, -1e-6]), np.array([-2e-6, -3e-6]), np.array([5e-6, 1e-6])]
    paths = []
    for i, lam in enumerate(lams):
        paths.append(tmp_path / f"{i}.nc")
        _spectrum(paths[-1], i, lam, experiment="other" if i == 3 else "eps")
    one = xr.load_dataset(paths[3]).isel(baseline=0)
    one.to_netcdf(paths[3], engine="h5netcdf", mode="w")
    fig = plot_spectrum(paths, tmp_path / "s.pdf", tmp_path / "s.png")
    assert len(fig.axes) == 4  # two columns (experiments) x (running, spectrum)
    run_eps, run_other, spec_eps, spec_other = fig.axes
    assert spec_eps.get_yscale() == "symlog"
    assert len([ln for ln in run_other.lines if np.size(ln.get_xdata()) == 50]) == 1  # no baseline axis


def _link_tables():
    rows, per = [], []
    for i, (eps, rate, verdict) in enumerate([(1e-8, 0.01, "agree"), (1e-4, 0.01, "agree"), (1e-2, 0.003, "disagree")]):
        rows.append({"experiment": "tangent", "run": f"e{i}", "swept": json.dumps({"epsilon": eps}), "epsilon": eps,
                     "tangent": True, "rate_start": 100, "rate_stop": 600, "lambda_1": 0.01, "lambda_1_lo": 0.008,
                     "lambda_1_hi": 0.012, "measured_rate": rate, "measured_rate_lo": rate - 0.001,
                     "measured_rate_hi": rate + 0.001, "growth_min": np.exp(rate * 500), "lambda_1_bound": 0.0103,
                     "lambda_1_resolved": True, "verdict": verdict})
        per += [{"experiment": "tangent", "run": f"e{i}", "baseline": r, "lambda_1": 0.01 + 1e-3 * (r - 1),
                 "measured_rate": rate + 1e-3 * (r - 1)} for r in range(3)]
    for i, lr in enumerate((0.01, 0.3)):
        rows.append({"experiment": "lr", "run": f"lr{lr}", "swept": json.dumps({"optimizer.lr": lr}), "epsilon": 1e-4,
                     "tangent": False, "rate_start": 100, "rate_stop": 600, "lambda_1": 1e-6 * (i + 1),
                     "lambda_1_lo": np.nan, "lambda_1_hi": np.nan, "measured_rate": 4e-3, "measured_rate_lo": 3e-3,
                     "measured_rate_hi": 5e-3, "growth_min": 7.0, "lambda_1_bound": 2e-3,
                     "lambda_1_resolved": False, "verdict": "disagree"})
        per += [{"experiment": "lr", "run": f"lr{lr}", "baseline": r, "lambda_1": 1e-6, "measured_rate": 4e-3}
                for r in range(3)]
    return pd.DataFrame(rows), pd.DataFrame(per)


def test_link_from_csv(tmp_path):
    """The sweep panel (lambda_1 band = its interval, rates with their intervals, verdicts from
    the table), the per-baseline panel (one point per baseline, y = x spanning them) and the
    kink panel (the bound of the unresolved lambda_1, one tick per run)."""
    table, per = _link_tables()
    table.to_csv(tmp_path / "link.csv", index=False)
    per.to_csv(tmp_path / "b.csv", index=False)
    fig = plot_link(tmp_path / "link.csv", tmp_path / "b.csv", tmp_path / "l.pdf", tmp_path / "l.png")
    assert_figure_files(tmp_path / "l.pdf", tmp_path / "l.png")
    ax_eps, ax_per, ax_kink = fig.axes
    assert ax_eps.get_xscale() == "log"
    (band,) = [p for p in ax_eps.patches]
    ys = band.get_patch_transform().transform(band.get_path().vertices)[:, 1]
    assert ys.min() == pytest.approx(0.008) and ys.max() == pytest.approx(0.012)
    _, _, (bars,) = ax_eps.containers[0]
    seg = bars.get_segments()[2]
    assert seg[1][1] - seg[0][1] == pytest.approx(0.002)
    assert {t.get_text().split("\n")[0] for t in ax_eps.texts} == {"agree", "disagree"}
    pts = np.concatenate([c.get_offsets() for c in ax_per.collections])
    assert len(pts) == 9
    (diag,) = [ln for ln in ax_per.lines if ln.get_label() == "y = x"]
    x, y = diag.get_data()
    np.testing.assert_allclose(x, y)
    assert min(x) < pts.min() and max(x) > pts.max()
    assert len(ax_kink.get_xticks()) == 2 and "lr=0.01" in ax_kink.get_xticklabels()[0].get_text()
    bounds = [p for p in ax_kink.patches]
    assert len(bounds) == 2 and bounds[0].get_height() == pytest.approx(4e-3)
    assert [t.get_text() for t in ax_kink.texts] == ["disagree", "disagree"]


def test_link_without_tangent_rows_draws_the_kink_panel_only(tmp_path):
    table, per = _link_tables()
    fig = plot_link(table[~table["tangent"]], per, tmp_path / "l.pdf", tmp_path / "l.png")
    (ax,) = fig.axes
    assert ax.get_yscale() == "symlog"  # lambda_1 ~ 1e-6 next to rates ~ 4e-3


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
