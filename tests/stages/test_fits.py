"""The fits stage (pathdep.stages.fits): known answers on synthetic files.

Synthetic metrics/geometry files of an lr sweep (4 values over two decades), two baselines
with two perturbed copies each, planted power laws d = A lr^0.5 t^0.7 (baseline r: prefactor
times 1 + 0.1 r): fit_experiment fits one copy-averaged curve per baseline, selects the power
law by AIC and out of sample (described), recovers b = 0.7 and the exponent 0.5 of a against
lr with an interval across the two baselines; the logit distance collapses in the last third
(no form describes it); the hypersphere D enters the table only where the diffusion form
fits; summarize_fits reports the described shares.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.fit_holdout import NO_FORM
from pathdep.stages.fits import fit_experiment, summarize_fits

LRS = (0.001, 0.003, 0.01, 0.1)


def _synthetic(tmp, lrs=LRS, R=2, M=2, A=2.0, k=0.5, b=0.7, sphere_off=1.0):
    """metrics.nc / geometry.nc with d(t) = A (1 + 0.1 r) lr^k t^b (1 + 0.5% noise) for the
    copies of baseline r; fs_l2_logits = 3 d but divided by 10 after 70 % of the run."""
    t = np.unique(np.round(np.geomspace(1, 2000, 30))).astype(int)
    t = np.concatenate([[0], t])
    rng = np.random.default_rng(0)
    base, copy = np.repeat(np.arange(R), M + 1), np.tile(np.arange(M + 1), R)
    K = R * (M + 1)
    mfiles, gfiles = [], []
    for lr in lrs:
        run = {"experiment": "lr", "run": f"lr{lr:g}", "swept": {"optimizer.lr": lr},
               "optimizer": {"name": "sgd", "lr": lr}}
        amp = A * (1 + 0.1 * base)[:, None] * lr**k
        d = amp * np.maximum(t, 1e-9) ** b * (1 + 0.005 * rng.standard_normal((K, len(t))))
        d[copy == 0] = 0.0
        coords = {"member": np.arange(K), "checkpoint": np.arange(len(t)), "step": ("checkpoint", t),
                  "role": ("member", np.where(copy == 0, "baseline", "member")),
                  "baseline": ("member", base), "copy": ("member", copy)}
        mc = ("member", "checkpoint")
        attrs = {"run": run["run"], "config": json.dumps(run), "swept": json.dumps(run["swept"])}
        fs = 3 * d * np.where(t > 0.7 * t.max(), 0.1, 1.0)
        dm = xr.Dataset({"dist": (mc, d), "fs_l2_logits": (mc, fs), "test_cf_acc": (mc, np.ones_like(d))},
                        coords=coords, attrs=attrs)
        D = np.full(K, 1e-6 * lr**2)
        theory = 2 * -np.expm1(-np.outer(D * 1e4, t))
        dg = xr.Dataset({"dist_aligned": (mc, 0.5 * d), "sphere_D": (("member",), D),
                         "sphere_D_stderr": (("member",), np.full(K, 1e-9)), "sphere_theory": (mc, theory),
                         "sphere_sq_disp": (mc, theory * sphere_off)}, coords=coords,
                        attrs={**attrs, "sweep_values": json.dumps({"lr": lr}), "lr": lr, "lr_eff": lr})
        mfiles.append(tmp / f"m{lr:g}.nc")
        gfiles.append(tmp / f"g{lr:g}.nc")
        dm.to_netcdf(mfiles[-1], engine="h5netcdf")
        dg.to_netcdf(gfiles[-1], engine="h5netcdf")
    return mfiles, gfiles


SPEC = {"models": ["constant", "power_law", "sqrt"], "quantities": ["dist", "dist_aligned", "fs_l2_logits"]}


def test_fit_experiment_recovers_planted_scaling(tmp_path):
    mfiles, gfiles = _synthetic(tmp_path)
    out = [tmp_path / n for n in ("fits.nc", "fits.csv", "scaling.nc", "scaling.csv")]
    fits, table = fit_experiment(mfiles, gfiles, *out, spec=SPEC, experiment="lr", log=lambda *_: None)
    assert all(p.exists() for p in out)
    assert fits.sizes["curve"] == 4 * 2 * 3  # runs x baselines x quantities
    assert set(fits["copies"].values) == {2}
    qs = fits["quantity"].values.astype(str)
    grows = qs != "fs_l2_logits"
    assert set(fits["best_model"].values[grows].astype(str)) == {"power_law"}
    assert set(fits["verdict"].values[grows].astype(str)) == {"power_law"} and fits["described"].values[grows].all()
    assert set(fits["verdict"].values[~grows].astype(str)) == {NO_FORM} and not fits["described"].values[~grows].any()
    b = fits["value"].sel(model="power_law", param="b").values[grows]
    np.testing.assert_allclose(b, 0.7, atol=0.01)
    csv = pd.read_csv(out[1])
    for col in ("oos_model", "oos_err_last", "described", "verdict", "oos_factor", "ratio_last", "baseline"):
        assert col in csv.columns, col
    pl = table[(table.hparam == "lr") & (table.model == "power_law") & (table.quantity == "dist")]
    a = pl[pl.param == "a"]
    np.testing.assert_allclose(a["pl_exponent"], 0.5, atol=0.02)
    # the exponent is the same for both baselines: a narrow interval around 0.5
    assert np.all(a["pl_exponent_lo"] < 0.5 + 0.02) and np.all(a["pl_exponent_hi"] > 0.5 - 0.02)
    assert np.all(a["pl_exponent_hi"] - a["pl_exponent_lo"] < 0.1)
    np.testing.assert_allclose(a["mean"], 2.0 * 1.05 * np.array(LRS) ** 0.5, rtol=0.02)
    assert np.all(a["lo"] < a["mean"]) and np.all(a["hi"] > a["mean"])  # prefactors differ by 10 % across baselines
    assert set(pl["n"]) == {2} and set(pl["n_best"]) == {2} and set(a["n_described"]) == {2}
    D = table[(table.quantity == "direction") & (table.param == "D")]
    np.testing.assert_allclose(D["pl_exponent"].iloc[0], 2.0, atol=1e-9)
    final = table[(table.model == "final") & (table.quantity == "dist") & (table.hparam == "lr")]
    assert len(final) == 4 and final["pl_exponent"].notna().all()
    back = xr.load_dataset(out[2], engine="h5netcdf")
    assert back.sizes["row"] == len(table)
    summary = summarize_fits([out[3]], [out[1]], tmp_path / "summary.csv", log=lambda *_: None)
    row = summary[(summary.quantity == "dist") & (summary.model == "power_law") & (summary.param == "a")
                  & (summary.experiment == "lr")].iloc[0]
    assert row.best_model == "power_law" and row.best_share == 1.0 and row.frac_described == 1.0
    assert abs(row.b_median - 0.7) < 0.01 and abs(row.pl_exponent - 0.5) < 0.02
    fs = summary[(summary.quantity == "fs_l2_logits") & (summary.experiment == "lr")].iloc[0]
    assert fs.frac_described == 0.0 and fs.oos_model == NO_FORM
    tot = summary[(summary.experiment == "all") & (summary.quantity == "all")].iloc[0]
    assert tot.n_curves == 24 and tot.n_described == 16


def test_sphere_D_left_out_where_the_diffusion_form_misses(tmp_path):
    mfiles, gfiles = _synthetic(tmp_path, sphere_off=3.0)
    out = [tmp_path / n for n in ("fits.nc", "fits.csv", "scaling.nc", "scaling.csv")]
    spec = {**SPEC, "quantities": ["dist"]}
    _, table = fit_experiment(mfiles, gfiles, *out, spec=spec, experiment="lr", log=lambda *_: None)
    D = table[(table.quantity == "direction") & (table.param == "D")]
    assert len(D) and D["mean"].isna().all() and D["pl_exponent"].isna().all()


def test_one_baseline_gives_no_interval(tmp_path):
    mfiles, gfiles = _synthetic(tmp_path, R=1)
    out = [tmp_path / n for n in ("fits.nc", "fits.csv", "scaling.nc", "scaling.csv")]
    _, table = fit_experiment(mfiles, gfiles, *out, spec={**SPEC, "quantities": ["dist"]}, experiment="lr",
                              log=lambda *_: None)
    a = table[(table.model == "power_law") & (table.param == "a") & (table.hparam == "lr")]
    assert a["lo"].isna().all() and a["pl_exponent_lo"].isna().all() and a["pl_exponent"].notna().all()
