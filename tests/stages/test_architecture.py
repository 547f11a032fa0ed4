"""pathdep.stages.architecture + pathdep.plots.architecture on synthetic metrics files with
planted separation rates (3 baselines x (1 + 2 copies) per architecture)."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pathdep.plots.architecture import plot_architecture
from pathdep.stages.architecture import architecture_table

STEPS = np.array([0, 1, 2, 4, 8, 16, 32, 50, 64, 100])


def _metrics(path, rates, kind, n_params, exp, norm0=10.0, seed=0):
    """Copies at d(t) = 1e-4 |w_b(t)| exp(rate_r t) (+ small copy noise); |w_b(t)| grows linearly."""
    rng = np.random.default_rng(seed)
    base, copy, dist, norm = [], [], [], []
    wn = norm0 * (1 + 0.01 * STEPS)
    for r, lam in enumerate(rates):
        for k in range(3):
            base.append(r)
            copy.append(k)
            lam_k = lam + (1e-4 * rng.standard_normal() if k else 0.0)
            dist.append(np.zeros(len(STEPS)) if k == 0 else 1e-4 * wn * np.exp(lam_k * STEPS))
            norm.append(wn)
    dist = np.array(dist)
    coords = {"step": ("checkpoint", STEPS), "baseline": ("member", base), "copy": ("member", copy)}
    ds = xr.Dataset({"dist": (("member", "checkpoint"), dist), "norm": (("member", "checkpoint"), np.array(norm)),
                     "dist_rms": (("member", "checkpoint"), dist / np.sqrt(n_params))}, coords=coords,
                    attrs={"experiment": exp, "run": "base", "n_params": n_params,
                           "config": json.dumps({"model": {"kind": kind}})})
    ds.to_netcdf(path, engine="h5netcdf")


def test_table_rates_differences_verdicts_and_figure(tmp_path):
    mlp = [0.030, 0.032, 0.028]
    paths = {"mlp": tmp_path / "mlp.nc", "lenet5": tmp_path / "lenet5.nc", "resnet": tmp_path / "resnet.nc"}
    _metrics(paths["mlp"], mlp, "mlp", 68380, "arch_mlp")
    _metrics(paths["lenet5"], [x - 0.01 for x in mlp], "lenet5", 61706, "arch_lenet5", seed=1)
    _metrics(paths["resnet"], mlp, "resnet", 75002, "resnet", seed=2)
    spec = {"runs": {}, "reference": "mlp", "window": [0, 50], "late_fraction": 0.5}
    df = architecture_table(paths, spec, tmp_path / "a.csv", tmp_path / "a.nc")
    early = df[df["statistic"] == "early_rate"].set_index("architecture")
    assert early.loc["mlp", "mean"] == pytest.approx(0.030, abs=2e-4)
    assert early.loc["lenet5", "mean"] == pytest.approx(0.020, abs=2e-4)
    assert early.loc["lenet5", "param_ratio"] == pytest.approx(61706 / 68380)
    assert early.loc["lenet5 - mlp", "verdict"] == "decrease" and early.loc["lenet5 - mlp", "hi"] < 0
    assert early.loc["lenet5 - mlp", "mean"] == pytest.approx(-0.01, abs=2e-4)
    assert early.loc["resnet - mlp", "verdict"] == "inconclusive"
    assert early.loc["resnet - mlp", "how"] == "paired t" and early.loc["mlp", "baselines"] == 3
    assert set(df["statistic"]) == {"early_rate", "late_slope"}
    back = pd.read_csv(tmp_path / "a.csv")
    assert back.shape == df.shape
    ds = xr.load_dataset(tmp_path / "a.nc", engine="h5netcdf")
    assert list(ds["architecture"].values) == ["mlp", "lenet5", "resnet"]
    # relative distance at step 0 is eps for every architecture
    np.testing.assert_allclose(ds["rel"].values[:, 0], 1e-4, rtol=1e-9)
    assert "git_commit" in json.loads(ds.attrs["provenance"]) and json.loads(ds.attrs["window"]) == [0, 50]
    axes = plot_architecture(str(tmp_path / "a.nc"), str(tmp_path / "a.csv"), str(tmp_path / "f.pdf"),
                             str(tmp_path / "f.png"))
    assert len(axes[0].get_lines()) == 3
    assert [t.get_text().split("\n")[1] for t in axes[2].get_xticklabels()] == ["decrease", "inconclusive"]
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("his,verdict", [((-0.01, -0.002), "supported"), ((-0.01, 0.004), "inconclusive"),
                                         ((-0.01, 0.02), "contradicted")])
def test_claims_ledger_reads_the_least_favourable_difference(tmp_path, his, verdict):
    from pathdep.stages.claims_read import architecture_conv

    rows = [{"statistic": "early_rate", "architecture": "mlp", "how": "", "mean": 0.03, "lo": 0.02, "hi": 0.04}]
    for name, hi in zip(("lenet5 - mlp", "resnet - mlp"), his):
        lo = hi - 0.01 if verdict != "contradicted" or hi < 0 else 0.005
        rows.append({"statistic": "early_rate", "architecture": name, "how": "paired t", "mean": (lo + hi) / 2,
                     "lo": lo, "hi": hi})
    rows.append({"statistic": "late_slope", "architecture": "resnet - mlp", "how": "paired t", "mean": 9.0,
                 "lo": 8.0, "hi": 10.0})
    (tmp_path / "architecture").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "architecture" / "architecture.csv", index=False)
    out = architecture_conv(tmp_path)
    assert out.verdict == verdict and out.hi == pytest.approx(max(his)) and "resnet - mlp" in out.note
