"""Small-size checks of pathdep.analysis.lyapunov_study (float64): dims and values, the
exponents at a minimum, determinism for a seed; the ROC of a small study."""

import numpy as np
import pytest

from pathdep.analysis.lyapunov_study import run_study
from pathdep.analysis.study_roc import roc_by_time
from pathdep.config.lyapunov import resolve_study

SMALL = {
    "n_networks": 200, "steps": 120, "lyap_steps": 60, "times": [5, 10, 20],
    "ftle_window": 5, "late_window": 20, "warmup_backward": 30, "max_buffer": 40,
    "n_checkpoints": 8,
}


def study(spec):
    return run_study(resolve_study(spec))


@pytest.fixture(scope="module")
def small():
    return study(SMALL)


def test_small_study_dims_and_values(small):
    ds = small
    assert dict(ds.sizes) == {"activation": 2, "init_range": 2, "network": 200, "time": 3,
                              "exponent": 9, "pair": 36, "checkpoint": ds.sizes["checkpoint"],
                              "param": 9}
    assert ds["ftle"].dims == ("activation", "init_range", "network", "time", "exponent")
    assert ds["clv_angle"].dims == ("activation", "init_range", "network", "time", "pair")
    assert list(ds["checkpoint"].values[[0, -1]]) == [0, 120]
    for name in ("final_loss", "loss", "loss_curve", "ftle", "ftle_cum", "ftle_end",
                 "clv_growth", "clv_angle", "min_clv_angle", "w_init", "w_final"):
        assert np.isfinite(ds[name].values).all(), name
    ang = ds["clv_angle"].values
    assert (ang >= 0).all() and (ang <= np.pi / 2 + 1e-12).all()
    assert np.allclose(ds["loss_curve"].values[..., -1], ds["final_loss"].values)
    # init ranges respected
    w0 = ds["w_init"].values
    assert np.abs(w0[:, 0]).max() <= 0.5 and np.abs(w0[:, 1]).max() <= 2.0
    assert np.abs(w0[:, 1]).max() > 1.0
    frac = ds["failure_fraction"].values
    assert ((frac >= 0) & (frac <= 1)).all()
    assert np.array_equal(ds["failed"].values, ds["final_loss"].values > ds.attrs["threshold"])
    assert "XOR" in ds.attrs["task"] and "relu" in ds.attrs["failure_fraction"]
    # FTLE windows are consistent: the mean of the window FTLEs up to t is ftle_cum(t)
    f = ds["ftle"].values
    assert np.allclose(f[..., 0, :], ds["ftle_cum"].values[..., 0, :])  # t = window

    roc = roc_by_time(ds, indicators=("loss", "ftle", "clv_min_angle", "all"), n_folds=3)
    assert roc["auc"].dims == ("activation", "init_range", "indicator", "time")
    assert roc["tpr"].shape == (2, 2, 4, 3, 101)
    auc = roc["auc"].values
    ok = np.isfinite(auc)
    assert ok.any() and ((auc[ok] >= 0) & (auc[ok] <= 1)).all()


def test_exponents_nonpositive_at_a_minimum():
    ds = study({"activations": ["tanh"], "init_ranges": [0.5], "n_networks": 32,
                       "steps": 300, "lyap_steps": 300, "times": [5], "late_window": 100,
                       "warmup_backward": 30, "max_buffer": 40, "n_checkpoints": 4})
    loss = ds["final_loss"].values[0, 0]
    at_min = loss < 1e-8
    assert at_min.sum() >= 8
    late = ds["ftle_end"].values[0, 0][at_min]  # (n, 9), last 100 steps
    assert late.max() < 1e-3
    # at a zero-loss minimum of 4 data points the Hessian has rank <= 4: some
    # directions contract, the flat ones are marginal
    assert (late.min(axis=1) < -0.05).all()


def test_deterministic_for_a_seed():
    cfg = {**SMALL, "activations": ["relu"], "init_ranges": [2.0], "n_networks": 20,
           "steps": 70}
    a, b = study(cfg), study(cfg)
    for name in ("final_loss", "ftle", "clv_angle", "w_final"):
        assert np.array_equal(a[name].values, b[name].values), name
    c = study({**cfg, "seed": 1})
    assert not np.array_equal(a["w_init"].values, c["w_init"].values)
