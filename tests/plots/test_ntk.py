"""Every NTK figure draws from stage files (tiny settings) into a valid PDF and PNG."""

from matplotlib.backends.backend_agg import FigureCanvasAgg
import pytest
import torch
from helpers import make_dataset

from pathdep.plots import ntk as P
from pathdep.stages import ntk as S

TINY = {"pool": 1,
        "width_sweep": {"widths": [16, 32, 64], "n_train": 32, "n_probe": 8, "steps": 10},
        "linearization": {"widths": [16, 64], "n_train": 64, "n_test": 8, "steps": 8, "checkpoints": 4},
        "kernel_regression": {"width": 32, "single_width": 64, "n_train": 16, "n_test": 4, "members": 8,
                              "steps": 6, "checkpoints": 3},
        "catapult": {"width": 64, "n_train": 16, "steps": 20, "eta_factors": [0.5, 1.5, 40.0]}}


@pytest.mark.parametrize("name", list(S.RUNNERS))
def test_figures(name, tmp_path):
    torch.set_num_threads(1)
    data = make_dataset(tmp_path)
    nc = tmp_path / f"{name}.nc"
    S.run_section(name, TINY, data, nc)
    pdf, png = tmp_path / f"{name}.pdf", tmp_path / f"{name}.png"
    fig = P.plot_section(name, nc, pdf, png)
    assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if name == "catapult":  # the kernel-change legend sits under its panel, off the curves
        ax = fig.axes[1]
        r = FigureCanvasAgg(fig).get_renderer()  # the saved figure is closed
        assert ax.get_legend().get_window_extent(r).y1 <= ax.get_window_extent(r).y0


def test_path_width_figure(tmp_path):
    """4e from synthetic width-experiment files (metrics.nc + geometry.nc)."""
    import numpy as np
    import xarray as xr

    metrics, analyses = [], []
    for i, w in enumerate([25, 50, 100, 200]):
        dist = np.tile(np.linspace(1e-3, 1e-2 / np.sqrt(w), 3), (4, 1)) * (1 + 0.1 * np.arange(4))[:, None]
        m = xr.Dataset({q: (("member", "checkpoint"), dist) for q in ("dist", "dist_rel", "dist_over_init", "fs_l2_logits")},
                       coords={"step": ("checkpoint", [0, 10, 20])}, attrs={"config": '{"model": {"hidden": [%d]}}' % w})
        bar = np.empty((2, 2, 3, 2))
        bar[0], bar[1] = 1.0 / w, 0.2 / w
        a = xr.Dataset({"dist_aligned": (("member", "checkpoint"), dist / 2),
                        "barrier": (("align", "split", "imember", "icheckpoint"), bar)},
                       coords={"align": ["raw", "aligned"], "split": ["train", "test"]}, attrs=m.attrs)
        metrics.append(tmp_path / f"m{i}.nc")
        analyses.append(tmp_path / f"a{i}.nc")
        m.to_netcdf(metrics[-1])
        a.to_netcdf(analyses[-1])
    S.path_vs_width(metrics, tmp_path / "p.nc", analyses)
    pdf, png = tmp_path / "p.pdf", tmp_path / "p.png"
    fig = P.plot_path_width(tmp_path / "p.nc", pdf, png)
    assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dist_ax = fig.axes[1]  # raw and aligned: own markers, offset in width, both visible
    raw, aligned = [c.lines[0] for c in dist_ax.containers]
    assert raw.get_marker() != aligned.get_marker()
    assert (aligned.get_xdata() > raw.get_xdata()).all()
    assert fig.axes[3].get_yscale() == "log"  # positive barriers, bars above 0: log

    # a zero and a negative barrier, a lower bar below 0: symlog, nothing dropped
    ds = xr.load_dataset(tmp_path / "p.nc")
    ds["barrier_raw"].values[:2] = [0.0, -1e-4]
    ds.to_netcdf(tmp_path / "q.nc")
    fig = P.plot_path_width(tmp_path / "q.nc", pdf, png)
    bar_ax = fig.axes[3]
    assert bar_ax.get_yscale() == "symlog"
    raw = bar_ax.containers[0].lines[0]
    assert len(raw.get_ydata()) == 4 and raw.get_ydata()[1] == -1e-4
