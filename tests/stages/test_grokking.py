"""pathdep.stages.grokking and pathdep.plots.grokking on synthetic metrics files with known
curves: the table's key steps per network, and the figure (curves, marks, files)."""

import json

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.plots.grokking import plot_grokking
from pathdep.stages.grokking import grokking_table

STEPS = np.array([0, 1, 3, 10, 30, 100, 300, 1000])


def _metrics(path, run, constrained, test_rows):
    K = len(test_rows)
    train = np.tile([0.1, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], (K, 1))
    test = np.asarray(test_rows, dtype=float)
    ds = xr.Dataset(
        {"train_acc": (("member", "checkpoint"), train), "test_acc": (("member", "checkpoint"), test),
         "train_loss": (("member", "checkpoint"), 1.0 - 0.9 * train), "test_loss": (("member", "checkpoint"), 2.0 - test)},
        coords={"member": np.arange(K), "checkpoint": np.arange(len(STEPS)), "step": ("checkpoint", STEPS),
                "role": ("member", ["baseline"] + ["member"] * (K - 1)),
                "baseline": ("member", np.zeros(K, dtype=int)), "copy": ("member", np.arange(K))})
    ds.attrs.update(experiment="grok", run=run, swept=json.dumps({"optimizer.constrain_norm": constrained}),
                    config=json.dumps({"optimizer": {"name": "adamw", "constrain_norm": constrained}}))
    ds.to_netcdf(path, engine="h5netcdf")
    return str(path)


def test_table_and_figure(tmp_path):
    late = [0.0, 0.0, 0.0, 0.0, 0.1, 0.3, 0.7, 0.95]     # groks: 0.5 at 300, 0.9 at 1000
    never = [0.0, 0.0, 0.0, 0.0, 0.1, 0.1, 0.2, 0.3]
    early = [0.0, 0.2, 0.6, 0.95, 1.0, 1.0, 1.0, 1.0]   # follows train: 0.5 at 3, 0.9 at 10
    files = [_metrics(tmp_path / "a.nc", "free", False, [never, late]),
             _metrics(tmp_path / "b.nc", "fixed", True, [early, early])]
    df = grokking_table(files, tmp_path / "g.csv")
    assert list(df["run"]) == ["free", "free", "fixed", "fixed"]
    assert list(df["constrain_norm"]) == [False, False, True, True]
    np.testing.assert_array_equal(df["train_1.0"], [3, 3, 3, 3])
    np.testing.assert_array_equal(df["test_0.5"], [np.nan, 300, 3, 3])
    np.testing.assert_array_equal(df["test_0.9"], [np.nan, 1000, 10, 10])
    np.testing.assert_allclose(df["delay"], [np.nan, 1000 / 3, 10 / 3, 10 / 3])
    assert pd.read_csv(tmp_path / "g.csv").shape == df.shape
    fig = plot_grokking(files, str(tmp_path / "g.csv"), str(tmp_path / "g.pdf"), str(tmp_path / "g.png"))
    acc, loss, early_ax = fig.axes[:3]
    assert acc.get_xscale() == "log" and loss.get_yscale() == "log"
    # 2 runs x 2 networks x (train, test) curves; marks of each run's baseline: a circle (train
    # 100 %) for both, a square (test 90 %) only for the run whose baseline reaches it
    assert len([ln for ln in acc.lines if ln.get_linestyle() == "--"]) == 4
    assert len([ln for ln in acc.lines if ln.get_marker() == "o"]) == 2
    assert len([ln for ln in acc.lines if ln.get_marker() == "s"]) == 1
    assert max(early_ax.lines[0].get_xdata()) <= 100
    assert (tmp_path / "g.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "g.png").read_bytes()[1:4] == b"PNG"
