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
