"""The fits stage (pathdep.stages.fits): known answers on synthetic files.

Synthetic metrics/geometry files with planted power laws d = A lr^0.5 t^0.7: fit_experiment
selects the power law, recovers b = 0.7 and the exponent 0.5 of a against lr, and
summarize_fits reports them.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from pathdep.stages.fits import fit_experiment, summarize_fits


def _synthetic(tmp, lrs=(0.001, 0.01, 0.1), K=3, A=2.0, k=0.5, b=0.7):
    """metrics.nc / geometry.nc with d_m(t) = A lr^k t^b (1 + 0.5% noise) for every quantity."""
    t = np.unique(np.round(np.geomspace(1, 2000, 30))).astype(int)
    t = np.concatenate([[0], t])
    rng = np.random.default_rng(0)
    mfiles, gfiles = [], []
    for lr in lrs:
        run = {"experiment": "lr", "run": f"lr{lr:g}", "swept": {"optimizer.lr": lr},
               "optimizer": {"name": "sgd", "lr": lr}}
        d = A * lr**k * np.maximum(t, 1e-9) ** b * (1 + 0.005 * rng.standard_normal((K, len(t))))
        d[0] = 0.0
        coords = {"member": np.arange(K), "checkpoint": np.arange(len(t)), "step": ("checkpoint", t),
                  "role": ("member", np.array(["baseline"] + ["member"] * (K - 1)))}
        mc = ("member", "checkpoint")
        attrs = {"run": run["run"], "config": json.dumps(run), "swept": json.dumps(run["swept"])}
        dm = xr.Dataset({q: (mc, d * s) for q, s in (("dist", 1.0), ("fs_l2_logits", 3.0))}, coords=coords, attrs=attrs)
        dg = xr.Dataset({"dist_aligned": (mc, 0.5 * d), "sphere_D": (("member",), np.full(K, 1e-6 * lr**2)),
                         "sphere_D_stderr": (("member",), np.full(K, 1e-9))}, coords=coords,
                        attrs={**attrs, "sweep_values": json.dumps({"lr": lr}), "lr": lr, "lr_eff": lr})
        mfiles.append(tmp / f"m{lr:g}.nc")
        gfiles.append(tmp / f"g{lr:g}.nc")
        dm.to_netcdf(mfiles[-1], engine="h5netcdf")
        dg.to_netcdf(gfiles[-1], engine="h5netcdf")
    return mfiles, gfiles


def test_fit_experiment_recovers_planted_scaling(tmp_path):
    mfiles, gfiles = _synthetic(tmp_path)
    spec = {"models": ["power_law", "sqrt"], "quantities": ["dist", "dist_aligned", "dist_excess"]}
    out = [tmp_path / n for n in ("fits.nc", "fits.csv", "scaling.nc", "scaling.csv")]
    fits, table = fit_experiment(mfiles, gfiles, *out, spec=spec, experiment="lr", log=lambda *_: None)
    assert all(p.exists() for p in out)
    assert fits.sizes["curve"] == 3 * 2 * 3  # runs x perturbed members x quantities
    # d(0) ~ 1e-7 here, so the growth beyond the initial distance is the distance itself
    qs = fits["quantity"].values.astype(str)
    np.testing.assert_allclose(fits["value"].values[qs == "dist_excess"], fits["value"].values[qs == "dist"],
                               rtol=1e-4, atol=1e-6)
    assert set(fits["best_model"].values.astype(str)) == {"power_law"}
    b = fits["value"].sel(model="power_law", param="b").values
    np.testing.assert_allclose(b, 0.7, atol=0.01)
    pl = table[(table.hparam == "lr") & (table.model == "power_law") & (table.quantity == "dist")]
    np.testing.assert_allclose(pl[pl.param == "a"]["pl_exponent"], 0.5, atol=0.02)
    np.testing.assert_allclose(pl[pl.param == "b"]["pl_exponent"], 0.0, atol=0.02)
    np.testing.assert_allclose(pl[pl.param == "a"]["mean"].to_numpy(), 2.0 * np.array([0.001, 0.01, 0.1]) ** 0.5,
                               rtol=0.02)
    assert set(pl["n"]) == {2} and set(pl["n_best"]) == {2}
    # aligned distance is half the raw one: same exponent, prefactor halved
    al = table[(table.hparam == "lr") & (table.model == "power_law") & (table.quantity == "dist_aligned")]
    np.testing.assert_allclose(al[al.param == "a"]["pl_prefactor"].iloc[0],
                               0.5 * pl[pl.param == "a"]["pl_prefactor"].iloc[0], rtol=0.03)
    D = table[(table.quantity == "direction") & (table.param == "D")]
    np.testing.assert_allclose(D["pl_exponent"].iloc[0], 2.0, atol=1e-9)
    back = xr.load_dataset(out[2], engine="h5netcdf")
    assert back.sizes["row"] == len(table)
    summary = summarize_fits([out[3]], [out[1]], tmp_path / "summary.csv", log=lambda *_: None)
    row = summary[(summary.quantity == "dist") & (summary.model == "power_law") & (summary.param == "a")].iloc[0]
    assert row.best_model == "power_law" and row.best_share == 1.0
    assert abs(row.b_median - 0.7) < 0.01 and abs(row.pl_exponent - 0.5) < 0.02
