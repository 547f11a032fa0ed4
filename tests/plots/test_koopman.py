"""pathdep.plots.koopman: figures written, the eigenvalues drawn are the file's."""

import numpy as np
import xarray as xr

from pathdep.plots.koopman import plot_experiment, plot_toy
from pathdep.stages.koopman import toy


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
    fig = plot_experiment(tmp_path / "e.nc", tmp_path / "e.pdf", tmp_path / "e.png")
    assert (tmp_path / "e.png").exists() and (tmp_path / "e.pdf").exists()
    xs = np.concatenate([ln.get_xdata() for ln in fig.axes[0].lines[1:]])
    np.testing.assert_allclose(np.sort(xs), np.sort(ev.ravel()))
