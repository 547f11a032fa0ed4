"""Domino figures: files written, one panel per run, drawn curves equal the stored values."""
import json

import numpy as np
import pytest
import xarray as xr
from helpers import assert_figure_files

from pathdep.plots.dominoes import plot_dominoes
from pathdep.stages.dominoes import fit_patterns, summarize_patterns

SETS = ["both", "top_only", "bottom_only", "top_randomized", "bottom_randomized", "train", "test"]


def _fake(path, p_top, onset_top):
    steps = np.arange(0, 200, 5)
    acc = np.empty((len(SETS), 3, len(steps)))
    for i, s in enumerate(SETS):
        t0 = onset_top if s.startswith("top") else 40.0
        acc[i] = 0.1 + 0.8 / (1 + np.exp(-0.1 * (steps - t0 - np.arange(3)[:, None])))
    ds = xr.Dataset({"acc": (("set", "member", "checkpoint"), acc), "loss": (("set", "member", "checkpoint"), -np.log(acc))},
                    coords={"set": SETS, "member": np.arange(3), "checkpoint": np.arange(len(steps)),
                            "step": ("checkpoint", steps), "role": ("member", ["baseline", "p", "p"])})
    ds.attrs.update({"n_classes": 10, "experiment": "e", "run": f"ptop{p_top}", "swept": json.dumps({"data.prevalence.top": p_top}),
                     "achieved_prevalence_top": p_top, "achieved_prevalence_bottom": 1.0,
                     "achieved_reliability_top": 1.0, "achieved_reliability_bottom": 1.0})
    fit_patterns(ds).to_netcdf(path, engine="h5netcdf")
    return path


def test_plot_dominoes(tmp_path):
    files = [_fake(tmp_path / f"p{i}.nc", p, o) for i, (p, o) in enumerate([(0.5, 90.0), (0.8, 60.0), (1.0, 30.0)])]
    df = summarize_patterns(files, tmp_path / "s.csv")
    top = df[df["pattern"] == "top"]
    # half-gain onset of the member-mean curve (members shifted by 0, 1, 2 steps): t0 + 1
    np.testing.assert_allclose(top["onset"], [91.0, 61.0, 31.0], atol=0.6)
    np.testing.assert_allclose(top["sigmoid_onset"], [90.0, 60.0, 30.0], atol=0.5)  # the baseline's sigmoid fit
    out = {k: tmp_path / f"{k}.{k.split('_')[1]}" for k in ("patterns_pdf", "patterns_png", "onsets_pdf", "onsets_png")}
    f1, f2 = plot_dominoes(files, tmp_path / "s.csv", out)
    assert_figure_files(out["patterns_pdf"], out["patterns_png"])
    assert_figure_files(out["onsets_pdf"], out["onsets_png"])
    assert sum(ax.get_visible() for ax in f1.axes) == 3
    line = f1.axes[0].lines[1]  # the first panel's top-only mean line (after "both")
    ref = xr.open_dataset(files[0], engine="h5netcdf")["acc"].values[1].mean(0)
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), ref)
    fit = f1.axes[0].lines[2]  # the top-only fitted sigmoid, as the stage evaluated it
    stored = xr.open_dataset(files[0], engine="h5netcdf")
    np.testing.assert_allclose(np.asarray(fit.get_ydata(), dtype=float), stored["fit_acc"].values[1])
    np.testing.assert_allclose(np.asarray(fit.get_xdata(), dtype=float), stored["fit_step"].values)
    ys = np.asarray(f2.axes[0].lines[0].get_ydata(), dtype=float)  # onset vs prevalence, top pattern
    np.testing.assert_allclose(ys, top["onset"].values, rtol=1e-12)
    # the toy's onsets in steps: its one scale factor makes the geometric means agree
    ok = np.isfinite(df["toy_onset_steps"])
    assert ok.sum() >= 4
    assert np.mean(np.log(df["toy_onset_steps"][ok])) == pytest.approx(np.mean(np.log(df["onset"][ok])), abs=1e-9)
