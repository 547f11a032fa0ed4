"""Every NTK figure draws from stage files (tiny settings) into a valid PDF and PNG."""

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
    P.plot_section(name, nc, pdf, png)
    assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_path_width_figure(tmp_path):
    """4e from synthetic width-experiment files (metrics.nc + analysis.nc)."""
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
    P.plot_path_width(tmp_path / "p.nc", pdf, png)
    assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
