"""pathdep.stages.grokking and pathdep.plots.grokking on synthetic metrics files with known
curves: the table's key steps per network, and the figure (curves, marks, files)."""

import json

import numpy as np
import pytest
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


# ---- rule grokking_koopman: spectra per independent baseline, W1 and the permutation test ----
def _koopman_traj(path, eigs, seed, T=40, R=5, M=1):
    """trajectory.h5 of R baselines x (1 + M) members whose weights (embed 3x2, unembed 2x2)
    follow w' = A w + noise with A block-diagonal with eigenvalues ``eigs`` (6 + 4)."""
    from pathdep.io.layout import Layout
    from pathdep.io.trajectory import TrajectoryWriter

    layout = Layout(("embed.weight", "unembed.weight"), ((3, 2), (2, 2)), (0, 6))
    rng = np.random.default_rng(seed)
    v = np.random.default_rng(7).standard_normal((10, 10)) + 3 * np.eye(10)
    a = v @ np.diag(eigs) @ np.linalg.inv(v)
    a[:6, 6:] = a[6:, :6] = 0.0
    a[6:, 6:] = np.diag(eigs[6:])
    k = R * (1 + M)
    w = np.empty((T + 1, k, 10))
    w[0] = rng.standard_normal((k, 10))
    for t in range(T):
        w[t + 1] = w[t] @ a.T + 1e-3 * rng.standard_normal((k, 10))
    members = [{"role": "baseline" if i % (1 + M) == 0 else "member", "epsilon": 0.0,
                "baseline": i // (1 + M), "copy": i % (1 + M)} for i in range(k)]
    cfg = {"model": {"kind": "transformer", "tied": False}}
    wr = TrajectoryWriter(path, layout, members, np.zeros((k, 2)), np.arange(T + 1), T, T, np.float64,
                          {"config": json.dumps(cfg), "provenance": "{}"})
    for i in range(T + 1):
        wr.write_weights(i, w[i])
    wr.write_valid(np.ones((T + 1, k), bool))
    wr.write_losses(0, np.ones((T, k)))
    wr.finish()
    return str(path)


def test_koopman_separates_two_settings(tmp_path):
    from pathdep.config.grokking import KOOPMAN_DEFAULTS
    from pathdep.stages.grokking import grokking_koopman

    eig_a = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.97, 0.85, 0.6, 0.3]
    eig_b = [0.5, 0.4, 0.3, 0.2, -0.3, 0.1, 0.6, -0.5, 0.2, 0.1]
    files = [_koopman_traj(tmp_path / "f.h5", eig_a, 0), _koopman_traj(tmp_path / "t.h5", eig_b, 1)]
    runs = [{"run": f"constrain_norm{c}", "optimizer": {"constrain_norm": b}} for c, b in (("F", False), ("T", True))]
    spec = {**KOOPMAN_DEFAULTS, "steps": 30, "rank": 4}
    table = grokking_koopman(runs, files, spec, "gk", tmp_path / "k.nc", tmp_path / "k.csv")
    assert list(table["observable"]) == ["weights", "output_weights"]
    for row in table.itertuples():
        assert (row.a, row.b, row.n_a, row.n_b) == ("False", "True", 5, 5)
        assert row.p_method == "exact" and row.p_value == pytest.approx(1 / 126) == row.p_min
        assert row.w1_between > 3 * row.w1_within
    ds = xr.load_dataset(tmp_path / "k.nc", engine="h5netcdf")
    assert ds["eig_real"].shape[:3] == (2, 2, 5) and list(ds["group"].values) == ["False", "True"]
    ev = ds["eig_real"].sel(observable="output_weights").values[0, 0] + 1j * ds["eig_imag"].sel(
        observable="output_weights").values[0, 0]
    np.testing.assert_allclose(np.sort(ev.real[np.isfinite(ev)])[::-1], [0.97, 0.85, 0.6, 0.3], atol=0.02)
    # the same system in both groups: no evidence against conjugacy
    same = [files[0], _koopman_traj(tmp_path / "s.h5", eig_a, 2)]
    t0 = grokking_koopman(runs, same, spec, "gk", tmp_path / "s.nc", tmp_path / "s.csv")
    assert (t0["p_value"] > 0.05).all()
    assert pd.read_csv(tmp_path / "k.csv").shape == table.shape


# ---- rule grokking_path: shift of the grokking step against eps, barriers ----
PSTEPS = np.array([0, 10, 100, 200, 300, 400, 500, 600, 800, 1000])


def _acc(s09):
    """A test-accuracy curve at PSTEPS reaching 0.5 and 0.9 first at step ``s09``."""
    return np.where(PSTEPS >= s09, 0.95, 0.1)


def _path_files(tmp_path, eps, copy_steps):
    """metrics.nc and geometry.nc of 3 baselines (steps 300, 400, 500) each with one copy."""
    base_steps = [300, 400, 500]
    order = [s for pair in zip(base_steps, copy_steps) for s in pair]
    K = len(order)
    test = np.stack([_acc(s) for s in order])
    coords = {"member": np.arange(K), "checkpoint": np.arange(len(PSTEPS)), "step": ("checkpoint", PSTEPS),
              "baseline": ("member", np.repeat([0, 1, 2], 2)), "copy": ("member", np.tile([0, 1], 3)),
              "role": ("member", ["baseline", "member"] * 3)}
    dist = np.outer(np.arange(K) % 2, 1.0 + PSTEPS) * eps
    m = xr.Dataset({"train_acc": (("member", "checkpoint"), np.ones((K, len(PSTEPS)))),
                    "test_acc": (("member", "checkpoint"), test), "dist": (("member", "checkpoint"), dist)},
                   coords=coords, attrs={"run": f"eps{eps:g}", "swept": json.dumps({"perturbation.epsilon": eps})})
    istep = np.array([0, 100, 600, 1000])
    bar = np.zeros((2, 2, 3, 4))
    bar[0, 1] = [[5.0, 4.0, 0.0, 0.0]] * 3          # raw test barrier: high before, 0 after
    bar[0, 0] = 1.0                                 # raw train barrier: 1 everywhere
    g = xr.Dataset({"barrier": (("align", "split", "imember", "icheckpoint"), bar)},
                   coords={"align": ["raw", "aligned"], "split": ["train", "test"], "imember": [1, 3, 5],
                           "icheckpoint_step": ("icheckpoint", istep)})
    mp, gp = tmp_path / f"m{eps:g}.nc", tmp_path / f"g{eps:g}.nc"
    m.to_netcdf(mp, engine="h5netcdf")
    g.to_netcdf(gp, engine="h5netcdf")
    return str(mp), str(gp)


def test_path_table_known_shifts_and_barriers(tmp_path):
    from pathdep.plots.grokking import plot_grokking_path
    from pathdep.stages.grokking import grokking_path

    small = _path_files(tmp_path, 1e-6, [300, 400, 500])     # copies grok with their baselines
    large = _path_files(tmp_path, 1e-2, [500, 200, 800])     # shifts 200, 200, 300
    t = grokking_path([large[0], small[0]], [large[1], small[1]], {"n_perm": 500, "seed": 0}, "ge",
                      tmp_path / "p.nc", tmp_path / "p.csv")
    assert list(t["epsilon"]) == [1e-6, 1e-6, 1e-2, 1e-2]    # sorted by eps
    r0, r1 = t[(t.epsilon == 1e-6) & (t.level == "test_0.9")].iloc[0], t[(t.epsilon == 1e-2) & (t.level == "test_0.9")].iloc[0]
    assert (r0["shift"], r0["shift_lo"], r0["shift_hi"]) == (0.0, 0.0, 0.0)
    assert r1["shift"] == pytest.approx(700 / 3) and r1["shift_lo"] < r1["shift"] < r1["shift_hi"]
    assert r1["independent_spread"] == pytest.approx(400 / 3) and r1["baseline_step"] == 400
    assert r1["trend_p"] <= 0.2 and r1["trend_rho"] > 0              # 2 eps x 3 baselines: floor 1/8
    # barrier: before = last interpolation step before the pair reached test 0.5, after = first after 0.9
    assert r0["step_before"] == pytest.approx(100) and r0["step_after"] == pytest.approx(600)
    assert r0["barrier_raw_test_before"] == 4.0 and r0["barrier_raw_test_after"] == 0.0
    assert r0["barrier_raw_train_before"] == 1.0 and r0["barrier_raw_test_before_lo"] == 4.0
    assert r1["step_after"] == pytest.approx((600 + 600 + 1000) / 3)    # baseline 2's copy groks at 800
    ds = xr.load_dataset(tmp_path / "p.nc", engine="h5netcdf")
    assert ds["dist"].shape == (2, 6, len(PSTEPS)) and ds["barrier_raw_test"].shape == (2, 3, 4)
    np.testing.assert_array_equal(ds["test_0.9"].values[1], [300, 500, 400, 200, 500, 800])
    fig = plot_grokking_path(str(tmp_path / "p.nc"), str(tmp_path / "p.csv"), str(tmp_path / "p.pdf"),
                             str(tmp_path / "p.png"))
    shift_ax, dist_ax, bar_ax = fig.axes[:3]
    assert dist_ax.get_yscale() == "log" and shift_ax.get_xscale() == "log"
    assert len([ln for ln in dist_ax.lines if ln.get_marker() == "s"]) == 6   # every copy's test-90 % step
    assert (tmp_path / "p.png").read_bytes()[1:4] == b"PNG"
