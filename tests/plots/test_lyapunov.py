"""pathdep.plots.lyapunov: the spectrum, link and 2-2-1 study figures drawn from small synthetic
files (two runs' lyapunov.nc, a link table CSV, study and ROC netCDF files with planted failure
fractions and AUCs), checked by content: one running-exponent curve per run with its label, the
final spectra, the y = x line spanning every point, one histogram per init range with its
planted failure fraction, one AUC curve per indicator and range."""

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
    ax0, ax1 = fig.axes
    runs = [ln for ln in ax0.lines if ln.get_label() and not ln.get_label().startswith("_")]
    assert [ln.get_label() for ln in runs] == ["eps: epsilon=0.01", "eps: epsilon=0.1"]
    np.testing.assert_allclose(runs[0].get_ydata()[-1], 0.02 + 0.5 / 50)
    spectra = [ln for ln in ax1.lines if ln.get_marker() == "o"]
    for ln, lam in zip(spectra, lams):
        np.testing.assert_allclose(ln.get_ydata(), lam)
    assert plt.get_fignums() == []


def test_link_from_csv(tmp_path):
    table = pd.DataFrame({"experiment": ["eps", "eps", "lr"], "run": ["a", "b", "c"],
                          "lambda_max": [0.01, 0.03, -0.02], "measured_rate": [0.012, 0.025, 0.05],
                          "measured_rate_se": [0.001, 0.002, 0.01]})
    table.to_csv(tmp_path / "link.csv", index=False)
    fig = plot_link(tmp_path / "link.csv", tmp_path / "l.pdf", tmp_path / "l.png")
    assert_figure_files(tmp_path / "l.pdf", tmp_path / "l.png")
    ax = fig.axes[0]
    assert len(ax.containers) == 2  # one errorbar set per experiment
    diag = [ln for ln in ax.lines if ln.get_label() == "y = x"]
    assert len(diag) == 1
    x, y = diag[0].get_data()
    np.testing.assert_allclose(x, y)
    pts = np.r_[table["lambda_max"], table["measured_rate"]]
    assert min(x) < pts.min() and max(x) > pts.max()
    np.testing.assert_allclose(ax.containers[1].lines[0].get_ydata(), [0.05])


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
                        "ftle": (("activation", "init_range", "network", "time", "exponent"), ftle),
                        "min_clv_angle": (("activation", "init_range", "network", "time"), angle)},
                       coords={"activation": acts, "init_range": ranges, "network": np.arange(N), "time": times,
                               "exponent": np.arange(1, 10)}, attrs={"threshold": thr})
    auc = np.linspace(0.6, 0.95, 2 * 2 * 2 * 2).reshape(2, 2, 2, 2)
    roc = xr.Dataset({"auc": (("activation", "init_range", "indicator", "time"), auc)},
                     coords={"activation": acts, "init_range": ranges, "indicator": ["ftle", "loss"], "time": times})
    study.to_netcdf(tmp_path / "study.nc", engine="h5netcdf")
    roc.to_netcdf(tmp_path / "roc.nc", engine="h5netcdf")
    return tmp_path, fail_frac, auc


def test_study(study_files):
    d, fail_frac, auc = study_files
    out = {k: (d / f"{k}.pdf", d / f"{k}.png") for k in ("loss", "ftle", "clv", "roc")}
    figs = plot_study(d / "study.nc", d / "roc.nc", out)
    for pdf, png in out.values():
        assert_figure_files(pdf, png)
    ax = figs["loss"].axes[0]  # tanh
    assert len(ax.containers) == 2  # one histogram per init range
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["U(-0.5,0.5): 10.0% failed", "U(-2,2): 25.0% failed"]
    assert ax.lines[0].get_xdata()[0] == pytest.approx(-3.0)  # the threshold line at log10(1e-3)
    for a, ax in enumerate(figs["ftle"].axes):
        h_ok, h_fail = ax.containers
        # density histograms: each integrates to 1
        for h in (h_ok, h_fail):
            assert sum(p.get_height() * p.get_width() for p in h.patches) == pytest.approx(1.0)
    ax = figs["roc"].axes[1]  # relu: 2 indicators x 2 ranges
    curves = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert len(curves) == 4
    np.testing.assert_allclose(curves[0].get_ydata(), auc[1, 0, 0])
    assert plt.get_fignums() == []
