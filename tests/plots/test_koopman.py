"""pathdep.plots.koopman: figures written, the eigenvalues drawn are the file's."""

from matplotlib.backends.backend_agg import FigureCanvasAgg
import numpy as np
import xarray as xr

import pytest

from pathdep.plots.koopman import plot_calibration, plot_spectra, plot_toy, plot_windows
from pathdep.stages.koopman import calibration, toy


def _legend_outside(fig, ax) -> bool:
    """The axes' legend lies wholly outside its plotting area (so it hides no data)."""
    r = FigureCanvasAgg(fig).get_renderer()  # the saved figure is closed
    leg, box = ax.get_legend().get_window_extent(r), ax.get_window_extent(r)
    return leg.y1 <= box.y0 or leg.y0 >= box.y1 or leg.x1 <= box.x0 or leg.x0 >= box.x1


def test_plot_toy_draws_file_eigenvalues(tmp_path):
    toy({"n_perm": 50}, tmp_path / "toy.nc", tmp_path / "toy.csv")
    fig = plot_toy(tmp_path / "toy.nc", tmp_path / "t.pdf", tmp_path / "t.png")
    assert (tmp_path / "t.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    ds = xr.load_dataset(tmp_path / "toy.nc", engine="h5netcdf")
    want = np.sort(ds["eig_real"].sel(algorithm="BM").values)
    want = want[np.isfinite(want)]
    drawn = [ln for ln in fig.axes[2].lines if ln.get_label() == "BM"][0]
    np.testing.assert_allclose(np.sort(drawn.get_xdata()), want)
    assert _legend_outside(fig, fig.axes[0])  # panel A's legend hid the OGD u2 curve


def test_plot_experiment(tmp_path):
    runs = ["a", "b", "c", "d"]
    ev = np.array([[0.9, 0.5, 0.2], [0.91, 0.5, 0.21], [0.7, -0.3, 0.1], [0.69, -0.3, 0.12]])
    d = np.abs(ev[:, None, 0] - ev[None, :, 0])
    ds = xr.Dataset(
        {"eig_real": (("run", "mode"), ev), "eig_imag": (("run", "mode"), np.zeros_like(ev)),
         "w1_baseline_member": (("run", "member"), np.full((4, 3), 0.01)),
         "w1_runs": (("run", "run2"), d), "group": (("run",), np.array(["x", "x", "y", "y"]))},
        coords={"run": runs, "run2": runs},
        attrs={"experiment": "e", "spec": '{"observable": "loss"}', "group_by": "g",
               "table": '[{"a": "x", "b": "y", "p_value": 0.1}]'})
    ds.to_netcdf(tmp_path / "e.nc", engine="h5netcdf")
    fig = plot_spectra(tmp_path / "e.nc", tmp_path / "e.pdf", tmp_path / "e.png")
    assert (tmp_path / "e.png").exists() and (tmp_path / "e.pdf").exists()
    xs = np.concatenate([ln.get_xdata() for ln in fig.axes[0].lines[1:]])
    np.testing.assert_allclose(np.sort(xs), np.sort(ev.ravel()))
    assert _legend_outside(fig, fig.axes[0])  # inside the unit disc it hid eigenvalues


def test_plot_calibration_draws_file_rates(tmp_path):
    table = calibration({"replicates": [3, 4], "repeats": 20}, tmp_path / "c.nc", tmp_path / "c.csv")
    fig = plot_calibration(tmp_path / "c.nc", tmp_path / "c.pdf", tmp_path / "c.png")
    assert (tmp_path / "c.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "c.png").exists()
    lines = [ln for ln in fig.axes[0].lines if len(ln.get_xdata()) == 2 and ln.get_marker() == "s"]
    np.testing.assert_allclose(lines[0].get_ydata(), table[table["case"] == "alternative"]["rate"])
    ecdf = [ln for ln in fig.axes[1].lines if ln.get_label().startswith("4 vs 4")][0]
    p = xr.load_dataset(tmp_path / "c.nc", engine="h5netcdf")["p_value"].sel(case="null_seeds", replicates=4).values
    np.testing.assert_allclose(ecdf.get_xdata(), np.sort(p))


def test_plot_windows_heat_map_is_log10_w1(tmp_path):
    runs = ["a", "b"]
    regime = np.array([0, 0, 0, 1, 1])
    base = np.where(regime[:, None] == regime[None, :], 1e-4, 0.3)
    d = np.stack([base * (1 + 0.1 * np.arange(25).reshape(5, 5)), base])
    d = (d + np.transpose(d, (0, 2, 1))) / 2
    d[:, np.arange(5), np.arange(5)] = 0.0
    d[1, 4, :] = d[1, :, 4] = np.nan                             # run b has 4 windows
    start = np.array([[0, 100, 200, 300, 400], [0, 100, 200, 300, -1]])
    ds = xr.Dataset(
        {"w1_windows": (("run", "window", "window2"), d), "window_start": (("run", "window"), start),
         "window_stop": (("run", "window"), np.where(start >= 0, start + 100, -1)),
         "eig_real": (("run", "mode"), np.ones((2, 2))), "eig_imag": (("run", "mode"), np.zeros((2, 2)))},
        coords={"run": runs, "run2": runs, "window": np.arange(5), "window2": np.arange(5)},
        attrs={"experiment": "cnn", "spec": '{"observable": "loss", "windows": {"size": 100}}'})
    ds.to_netcdf(tmp_path / "c.nc", engine="h5netcdf")
    fig = plot_windows(tmp_path / "c.nc", tmp_path / "c.pdf", tmp_path / "c.png")
    assert (tmp_path / "c.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "c.png").exists()
    imgs = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(imgs) == 3                                       # two runs and their mean
    want = d[0].copy()
    want[np.arange(5), np.arange(5)] = np.nan
    want = np.log10(want)
    np.testing.assert_allclose(np.ma.filled(imgs[0], np.nan), want)
    assert imgs[1].shape == (4, 4)
    np.testing.assert_allclose(np.ma.filled(imgs[2], np.nan)[0, 4], np.log10(d[0, 0, 4]))   # mean skips NaN
    assert np.ma.filled(imgs[2], np.nan)[0, 3] == pytest.approx(np.log10((d[0, 0, 3] + d[1, 0, 3]) / 2))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:2] == ["0-100", "100-200"]
    with pytest.raises(ValueError, match="windows"):
        plot_windows(_no_windows(tmp_path), tmp_path / "x.pdf", tmp_path / "x.png")


def _no_windows(tmp_path):
    xr.Dataset({"w1_runs": (("run", "run2"), np.zeros((1, 1)))}, coords={"run": ["a"], "run2": ["a"]}
               ).to_netcdf(tmp_path / "n.nc", engine="h5netcdf")
    return tmp_path / "n.nc"
