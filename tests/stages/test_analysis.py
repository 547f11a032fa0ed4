"""Orchestration of the analyses (pathdep.stages.analysis): known answers on real and synthetic files.

* A trained tiny ensemble whose member 1 is overwritten by a hidden-unit permutation of the
  baseline and member 2 by a copy of it: aligned distance 0 for both, raw distance > 0 for
  the permuted one, flat aligned interpolation curves (barrier 0), output autocorrelation
  with the baseline 1; the autocorrelations equal metrics.nc's cos_init / cos_base and the
  sphere displacement is 2 (1 - cos_init).
* Synthetic metrics/analysis files with planted power laws d = A lr^0.5 t^0.7: fit_experiment
  selects the power law, recovers b = 0.7 and the exponent 0.5 of a against lr, and
  summarize_fits reports them.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from helpers import make_dataset, tiny_run, train_tiny

from pathdep.analysis import align as A
from pathdep.config.analysis import DEFAULTS, resolve_spec, select_checkpoints
from pathdep.stages.analysis import analyze_run, fit_experiment, summarize_fits, sweep_values
from pathdep.stages.metrics import compute_metrics
from pathdep.core.models import Layout


def test_select_checkpoints():
    steps = np.array([0, 1, 2, 4, 8, 16, 32, 64])
    assert select_checkpoints([0.0, 0.5, 1.0], "fraction", steps).tolist() == [0, 6, 7]
    assert select_checkpoints([0.1], "fraction", steps).tolist() == [4]  # 6.4 -> step 8
    assert select_checkpoints([0, -1, 3], "index", steps).tolist() == [0, 3, 7]
    assert select_checkpoints([5, 100], "step", steps).tolist() == [3, 7]
    assert select_checkpoints("all", "fraction", steps).tolist() == list(range(8))
    with pytest.raises(ValueError, match="analysis.checkpoints: fraction 1.5"):
        select_checkpoints([1.5], "fraction", steps)
    with pytest.raises(ValueError, match="index 9 out of range"):
        select_checkpoints([9], "index", steps)


def test_resolve_spec_defaults_overrides_and_errors():
    s = resolve_spec(None)
    assert s["lambdas"] == DEFAULTS["lambdas"] and s["fits"]["models"] == DEFAULTS["fits"]["models"]
    s = resolve_spec({"lambdas": 5, "fits": {"space": "linear"}, "experiments": {"a": {"lambdas": 7}}}, "a")
    assert s["lambdas"] == 7 and s["fits"]["space"] == "linear" and s["fits"]["quantities"]
    assert resolve_spec({"lambdas": 5, "experiments": {"a": {"lambdas": 7}}}, "b")["lambdas"] == 5
    for bad, key in [({"lamdas": 3}, "analysis.lamdas"), ({"lambdas": [0.2, 1.0]}, "analysis.lambdas"),
                     ({"fits": {"models": ["cubic"]}}, "analysis.fits.models"),
                     ({"interp_members": -1}, "analysis.interp_members")]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")) as e:
            resolve_spec(bad)
        assert "\n" not in str(e.value)


def test_sweep_values_names():
    assert sweep_values({"swept": {"optimizer.lr": 0.1, "model.hidden": [25]}}) == {"lr": 0.1, "width": 25}
    assert sweep_values({"swept": {"optimizer.name": "adam", "model.kind": "lenet5",
                                   "perturbation.epsilon": 0.01}}) == {
        "optimizer": "adam", "architecture": "lenet5", "epsilon": 0.01}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A trained float64 tiny ensemble with member 1 := P(baseline), member 2 := baseline."""
    tmp = tmp_path_factory.mktemp("planted")
    data = make_dataset(tmp)
    run = tiny_run({"training": {"dtype": "float64"}})
    traj = train_tiny(tmp, run, data)
    with h5py.File(traj, "r+") as f:
        layout = Layout.from_attrs(json.loads(f.attrs["layout"]))
        spec = A.permutation_spec(layout)
        rng = np.random.default_rng(0)
        perms = {p: rng.permutation(n) for p, n in spec.perm_sizes.items()}
        W = f["weights"][()]
        W[:, 1] = A.apply_permutation(W[:, 0], layout, spec, perms)
        W[:, 2] = W[:, 0]
        f["weights"][...] = W
    compute_metrics(traj, data, traj.parent / "metrics.nc", threads=1)
    spec_a = {"lambdas": 5, "checkpoints": [0.0, 0.5, 1.0], "interp_members": 3, "eval_train": 150, "eval_test": 150}
    ds = analyze_run(traj, data, traj.parent / "analysis.nc", spec_a, threads=1, log=lambda *_: None)
    dm = xr.load_dataset(traj.parent / "metrics.nc", engine="h5netcdf")
    return ds, dm


def test_planted_permutation_aligned_distance_zero(planted):
    ds, dm = planted
    raw, al = ds["dist"].values, ds["dist_aligned"].values
    assert np.all(raw[1] > 0.1)                    # a permutation moves the weights far ...
    np.testing.assert_allclose(al[1], 0.0, atol=1e-12)  # ... and weight matching undoes it
    np.testing.assert_allclose(al[2], 0.0, atol=0) and np.testing.assert_allclose(raw[2], 0.0, atol=0)
    assert np.all(al[3] <= raw[3] + 1e-12) and np.all(al[0] == 0)
    np.testing.assert_allclose(raw, dm["dist"].values, rtol=1e-12)


def test_planted_permutation_interpolation(planted):
    ds, _ = planted
    L = ds["interp_loss"]
    # aligned member 1 is the baseline itself: the curve is flat and its barrier 0
    flat = L.sel(align="aligned", imember=1).values
    np.testing.assert_allclose(flat, flat[..., :1] * np.ones_like(flat), rtol=1e-10)
    np.testing.assert_allclose(ds["barrier"].sel(align="aligned", imember=[1, 2]).values, 0.0, atol=1e-10)
    np.testing.assert_allclose(ds["barrier"].sel(align="raw", imember=2).values, 0.0, atol=1e-12)
    # endpoints: the permuted member computes the same function, raw or aligned
    np.testing.assert_allclose(L.sel(align="raw").values[..., -1], L.sel(align="aligned").values[..., -1], rtol=1e-10)
    np.testing.assert_allclose(L.sel(align="raw").values[..., 0], L.sel(align="aligned").values[..., 0], rtol=0)
    assert np.all(ds["barrier"].values >= 0)
    # interpolating between permuted copies of a trained net is not free
    assert ds["barrier"].sel(align="raw", imember=1).values[..., -1].max() > 1e-3


def test_autocorrelations_and_sphere_identities(planted):
    ds, dm = planted
    np.testing.assert_allclose(ds["ac_w_init"].values, dm["cos_init"].values, rtol=1e-10)
    np.testing.assert_allclose(ds["ac_w_base"].values, dm["cos_base"].values, rtol=1e-10)
    np.testing.assert_allclose(ds["ac_out_base"].values[1:3], 1.0, rtol=1e-10)  # same function as the baseline
    np.testing.assert_allclose(ds["sphere_sq_disp"].values, 2 * (1 - ds["ac_w_init"].values), atol=1e-12)
    np.testing.assert_allclose(ds["norm_ratio"].values, dm["norm_ratio"].values, rtol=1e-10)
    assert np.all(ds["sphere_D"].values > 0) and ds["sphere_theory"].shape == ds["sphere_sq_disp"].shape
    np.testing.assert_allclose(ds["sphere_D"].values[1], ds["sphere_D"].values[0], rtol=1e-8)  # permutation-invariant


# ----------------------------------------------------------------------------- synthetic fits
def _synthetic(tmp, lrs=(0.001, 0.01, 0.1), K=3, A=2.0, k=0.5, b=0.7):
    """metrics.nc / analysis.nc with d_m(t) = A lr^k t^b (1 + 0.5% noise) for every quantity."""
    t = np.unique(np.round(np.geomspace(1, 2000, 30))).astype(int)
    t = np.concatenate([[0], t])
    rng = np.random.default_rng(0)
    mfiles, afiles = [], []
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
        da = xr.Dataset({"dist_aligned": (mc, 0.5 * d), "sphere_D": (("member",), np.full(K, 1e-6 * lr**2)),
                         "sphere_D_stderr": (("member",), np.full(K, 1e-9))}, coords=coords,
                        attrs={**attrs, "sweep_values": json.dumps({"lr": lr}), "lr": lr, "lr_eff": lr})
        mfiles.append(tmp / f"m{lr:g}.nc")
        afiles.append(tmp / f"a{lr:g}.nc")
        dm.to_netcdf(mfiles[-1], engine="h5netcdf")
        da.to_netcdf(afiles[-1], engine="h5netcdf")
    return mfiles, afiles


def test_fit_experiment_recovers_planted_scaling(tmp_path):
    mfiles, afiles = _synthetic(tmp_path)
    spec = {"fits": {"models": ["power_law", "sqrt"], "quantities": ["dist", "dist_aligned", "dist_excess"]}}
    out = [tmp_path / n for n in ("fits.nc", "fits.csv", "scaling.nc", "scaling.csv")]
    fits, table = fit_experiment(mfiles, afiles, *out, spec=spec, experiment="lr", log=lambda *_: None)
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
