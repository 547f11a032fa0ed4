"""pathdep.stages.ntk on tiny settings (sklearn digits): files, invariants, known answers."""

import json

import numpy as np
import pytest
import torch
import xarray as xr
from helpers import make_dataset

from pathdep.stages import ntk as S

TINY = {"pool": 1,
        "width_sweep": {"widths": [16, 64, 256], "n_train": 48, "n_probe": 12, "steps": 40},
        "linearization": {"widths": [32, 512], "n_train": 96, "n_test": 24, "steps": 25, "checkpoints": 5},
        "kernel_regression": {"width": 64, "single_width": 512, "n_train": 24, "n_test": 6, "members": 100,
                              "steps": 30, "checkpoints": 4},
        "catapult": {"width": 256, "n_train": 24, "steps": 80, "eta_factors": [0.5, 1.6, 40.0]}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    torch.set_num_threads(1)
    return make_dataset(tmp_path_factory.mktemp("ntkdata"))


def test_width_sweep(data, tmp_path):
    ds = S.width_sweep(TINY, data, tmp_path / "w.nc")
    assert json.loads(ds.attrs["ntk_method"])["method"] == "structured"  # the chosen path is recorded
    assert xr.load_dataset(tmp_path / "w.nc")["dparams"].shape == (3,)
    # lazier with width: every change shrinks from the narrowest to the widest network
    for q in ("dparams", "dntk", "dnngp"):
        assert ds[q].values[-1] < ds[q].values[0]
        assert float(ds[f"exponent_{q}"]) < 0
    assert np.all(ds["loss_end"].values < ds["loss0"].values)


def test_linearization(data, tmp_path):
    ds = S.linearization(TINY, data, tmp_path / "l.nc")
    dev = ds["logit_deviation"].values
    assert np.all(dev[:, :, 0] == 0)            # same function at init
    assert np.all(dev[:, :, -1] > 0)
    assert np.all(dev[:, -1, -1] < dev[:, 0, -1])   # the wider network stays closer to its linearisation


def test_kernel_regression(data, tmp_path):
    ds = S.kernel_regression(TINY, data, tmp_path / "k.nc")
    assert json.loads(ds.attrs["ntk_method"])["method"] == "structured"
    # single network == its own linear model at step 0 (same f_0), and close at the end
    np.testing.assert_allclose(ds["single"].values[0], ds["single_linear"].values[0], atol=1e-10)
    # ensemble at init: mean 0 and NNGP variance, within sampling error of 100 members
    v_th = ds["theory_var"].values[0]
    assert np.all(np.abs(ds["ensemble_var"].values[0] / v_th - 1) < 0.5)
    assert np.all(np.abs(ds["ensemble_mean"].values[0]) < 4 * np.sqrt(v_th / 100))
    # after training the ensemble mean moves toward the theory mean
    err_end = np.abs(ds["ensemble_mean"].values[-1] - ds["theory_mean"].values[-1])
    assert np.all(err_end < 4 * np.sqrt(ds["ensemble_var"].values[-1] / 100) + 0.15)


def test_catapult(data, tmp_path):
    ds = S.catapult(TINY, data, tmp_path / "c.nc")
    assert '"method": "structured"' in ds.attrs["ntk_method"]      # the registry's MLP: the fast path
    assert float(ds["eta_crit"]) == pytest.approx(2 / float(ds["lambda0"]))
    lazy, cat, div = (ds.sel(eta_factor=f) for f in (0.5, 1.6, 40.0))
    assert int(lazy["catapult"]) == 0 and int(lazy["diverged"]) == 0
    assert abs(float(lazy["kernel_change"])) < 0.1
    # far above 4/lambda_0 a ReLU network either diverges or collapses (kernel ~ 0, dead units)
    assert int(div["diverged"]) == 1 or float(div["kernel_change"]) < -0.9
    # above 2/lambda_0 the loss rises before it falls, and the kernel changes by O(1)
    assert int(cat["catapult"]) == 1 and float(cat["kernel_change"]) < -0.2
    # the two-scalar map: lambda ends below 2/eta in the catapult phase (lambda_0 = 1)
    assert float(cat["map_lambda"].values[-1]) < 1.0 / 1.6


def write_width_files(tmp_path, widths=(25, 100, 400)):
    """Synthetic metrics.nc + geometry.nc of a width experiment with planted power laws:
    dist ~ w^-1/2, dist_aligned = dist / 2, barriers ~ w^-1 (raw) and w^-2 (aligned)."""
    metrics, analyses = [], []
    K, C = 4, 3
    for i, w in enumerate(widths):
        dist = np.tile(np.linspace(1e-3, 1e-2 / np.sqrt(w), C), (K, 1)) * (1 + 0.1 * np.arange(K))[:, None]
        ds = xr.Dataset({q: (("member", "checkpoint"), dist) for q in ("dist", "dist_rel", "dist_over_init", "fs_l2_logits")},
                        coords={"step": ("checkpoint", [0, 10, 20])})
        ds.attrs["config"] = '{"model": {"hidden": [%d]}}' % w
        metrics.append(tmp_path / f"m{i}.nc")
        ds.to_netcdf(metrics[-1])
        al = dist / 2
        al[:, -1] = np.nan          # last checkpoint not aligned: the last aligned one is used
        al[:, 1] = 1e-2 / np.sqrt(w) / 2
        bar = np.empty((2, 2, K - 1, 2))   # align x split x imember x icheckpoint
        bar[0], bar[1] = 1.0 / w, 1.0 / w ** 2
        an = xr.Dataset({"dist_aligned": (("member", "checkpoint"), al),
                         "barrier": (("align", "split", "imember", "icheckpoint"), bar)},
                        coords={"align": ["raw", "aligned"], "split": ["train", "test"]})
        an.attrs["config"] = ds.attrs["config"]
        analyses.append(tmp_path / f"a{i}.nc")
        an.to_netcdf(analyses[-1])
    return metrics, analyses


def test_path_vs_width(tmp_path):
    metrics, analyses = write_width_files(tmp_path)
    out = S.path_vs_width(metrics[::-1], tmp_path / "p.nc", analyses[::-1])
    assert list(out["width"].values) == [25, 100, 400]
    assert float(out["exponent_dist"]) == pytest.approx(-0.5, abs=1e-9)
    assert float(out["exponent_dist_aligned"]) == pytest.approx(-0.5, abs=1e-9)
    assert float(out["exponent_barrier_raw"]) == pytest.approx(-1.0, abs=1e-9)
    assert float(out["exponent_barrier_aligned"]) == pytest.approx(-2.0, abs=1e-9)
    assert int(out["final_step"].values[0]) == 20
    # without analysis files: the metrics-only variables
    assert "dist_aligned" not in S.path_vs_width(metrics, tmp_path / "q.nc")
    with pytest.raises(ValueError, match="one geometry.nc per metrics.nc"):
        S.path_vs_width(metrics, tmp_path / "r.nc", analyses[:1])


def test_unknown_section(tmp_path):
    with pytest.raises(ValueError, match="ntk: unknown section"):
        S.run_section("nope", {}, tmp_path / "x.h5", tmp_path / "y.nc")


def test_sections_have_one_source():
    from pathdep.config.ntk import SECTIONS
    from pathdep.plots.ntk import PLOTS

    assert tuple(S.RUNNERS) == SECTIONS
    assert set(PLOTS) == set(SECTIONS) | {"path_vs_width"}


def test_kernel_change_reads_width_trajectories(data, tmp_path):
    """Two widths of a tiny width experiment: one row per width (sorted), the baseline-vs-member
    NTK distance of a checkpoint equals the loop-free direct value, and the figure is drawn."""
    from helpers import assert_figure_files, tiny_run, train_tiny

    from pathdep.analysis import ntk as K
    from pathdep.core.context import RunContext
    from pathdep.io.trajectory import Trajectory
    from pathdep.plots.ntk import plot_kernel_change

    trajs = [train_tiny(tmp_path, tiny_run({"model": {"hidden": [h]}}), data, name=f"w{h}") for h in (24, 8)]
    out = S.kernel_change({"kernel_change_inputs": 12}, trajs, [data, data], tmp_path / "kc.nc", threads=1)
    assert list(out["width"].values) == [8, 24]
    d = out["kernel_change"].values
    assert np.isnan(d[:, :, 0]).all()                 # the baseline's own row: no distance to itself
    assert np.isfinite(d[:, :, 1:]).all() and (d[:, :, 1:] > 0).all()
    with Trajectory(trajs[1]) as tr:     # width 8, last checkpoint, member 1, by the generic Jacobian path
        ctx = RunContext.build(tr.config, data, device="cpu")
        W = torch.as_tensor(tr.weights(tr.n_checkpoints - 1)).to(ctx.dtype)
    from pathdep.data import load_dataset
    xt = load_dataset(data).x_test
    idx = np.sort(np.random.default_rng([0, 17]).choice(len(xt), 12, False))
    x = xt[torch.as_tensor(idx)].to(ctx.dtype)
    t0, t1 = (K.empirical_ntk(ctx.apply, W[k], x, method="jacobian").double() for k in (0, 1))
    assert d[0, -1, 1] == pytest.approx(float((t1 - t0).norm() / t0.norm()), rel=1e-4)
    plot_kernel_change(tmp_path / "kc.nc", tmp_path / "kc.pdf", tmp_path / "kc.png")
    assert_figure_files(tmp_path / "kc.pdf", tmp_path / "kc.png")
