"""pathdep.stages.spread + pathdep.plots.spread on synthetic metrics files."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pathdep.plots.spread import plot_spread
from pathdep.stages.spread import spread_table


def _metrics(path, scale, exp, run):
    K, C = 4, 5
    rng = np.random.default_rng(0)
    step = np.array([0, 10, 100, 1000, 2000])
    grow = np.linspace(0, 1, C)
    dis = scale * grow * (np.arange(K)[:, None] > 0)
    acc = 0.8 + scale * grow * rng.standard_normal((K, C))
    ds = xr.Dataset({"dist_rel": (("member", "checkpoint"), dis), "fs_disagree": (("member", "checkpoint"), dis),
                     "test_acc": (("member", "checkpoint"), acc), "test_loss": (("member", "checkpoint"), 1 - acc)},
                    coords={"step": ("checkpoint", step)}, attrs={"experiment": exp, "run": run})
    ds.to_netcdf(path, engine="h5netcdf")
    return ds


def test_spread_table_and_figure(tmp_path):
    paths = {}
    for src, scale in (("init", 0.01), ("schedule", 0.05), ("global", 0.1)):
        _metrics(tmp_path / f"{src}.nc", scale, src, "base")
        paths[src] = tmp_path / f"{src}.nc"
    df = spread_table(paths, tmp_path / "s.nc", tmp_path / "s.csv")
    assert list(df["source"]) == ["init", "schedule", "global"]
    np.testing.assert_allclose(df["disagree"], [0.01, 0.05, 0.1])
    np.testing.assert_allclose(df["disagree_share"], [0.1, 0.5, 1.0])
    assert (df["final_step"] == 2000).all()
    assert pd.read_csv(tmp_path / "s.csv").shape == df.shape
    a, b = plot_spread(str(tmp_path / "s.nc"), str(tmp_path / "s.csv"), str(tmp_path / "f.pdf"), str(tmp_path / "f.png"))
    assert len(a.get_lines()) == 3 and len(b.patches) == 3
    # each bar's label starts with what the bar shows (its height) and its ratio to global's;
    # the disagreement share is named as such
    labels = [t.get_text() for t in b.texts]
    for t, p, share in zip(labels, b.patches, df["disagree_share"]):
        assert t.startswith(f"sd {p.get_height():.2f} pp") and f"disagreement:\n{share:.0%}" in t
    assert "(100% of global sd)" in labels[-1]
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert not list(tmp_path.glob("*.partial"))

