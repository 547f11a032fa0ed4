"""The geometry stage (pathdep.stages.geometry): known answers on real files.

A trained tiny ensemble whose member 1 is overwritten by a hidden-unit permutation of the
baseline and member 2 by a copy of it: aligned distance 0 for both, raw distance > 0 for
the permuted one, flat aligned interpolation curves (barrier 0), output autocorrelation
with the baseline 1; the autocorrelations equal metrics.nc's cos_init / cos_base and the
sphere displacement is 2 (1 - cos_init). The hypersphere theory table follows the closed forms.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import xarray as xr
from helpers import make_dataset, tiny_run, train_tiny

from pathdep.analysis import align as A
from pathdep.core.models import Layout
from pathdep.stages.geometry import compute_geometry, hypersphere_theory
from pathdep.stages.metrics import compute_metrics


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
    ds = compute_geometry(traj, data, traj.parent / "geometry.nc", spec_a, threads=1, log=lambda *_: None)
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


def test_hypersphere_theory_table(tmp_path):
    spec = {"dims": [3, 10], "walkers": 200, "rate_dt": 0.01, "t_max_rate": 2.0, "seed": 1}
    ds = hypersphere_theory(tmp_path / "theory.nc", spec, log=lambda *_: None)
    back = xr.load_dataset(tmp_path / "theory.nc", engine="h5netcdf")
    assert list(back["n"].values) == [3, 10] and back.sizes["point"] == ds.sizes["point"] > 10
    np.testing.assert_allclose(back["cos_line"].values, np.exp(-back["x_line"].values), rtol=1e-12)
    np.testing.assert_allclose(back["sq_line"].values, 2 * (1 - np.exp(-back["x_line"].values)), rtol=1e-12)
    np.testing.assert_allclose(back["x"].values[0], back["x"].values[1], rtol=1e-12)  # the same rescaled times
    z = (back["sq"].values[:, 1:] - 2 * (1 - np.exp(-back["x"].values[:, 1:]))) / back["sq_sem"].values[:, 1:]
    assert np.abs(z).max() < 5  # the simulation within its standard error of the theory
