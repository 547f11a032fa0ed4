"""Per-pattern evaluation stage on a tiny trained domino run."""
import numpy as np
import pytest
import torch
import xarray as xr
from helpers import tiny_run, train_tiny

from pathdep.data.dominoes import load_eval_sets, prepare_dominoes
from pathdep.stages.dominoes import evaluate_patterns

SIDE = {"source": "synthetic", "classes": 3, "size": 5, "n_train": 600, "n_test": 300}


@pytest.fixture(scope="module")
def domino_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dom")
    spec = {"source": "dominoes", "top": dict(SIDE, simplicity=6.0), "bottom": dict(SIDE, simplicity=1.5, seed=1),
            "prevalence": {"top": 0.8, "bottom": 1.0}, "n_train": 400, "n_test": 100, "n_eval": 90}
    data = tmp / "dom.h5"
    prepare_dominoes("dom", spec, data)
    run = tiny_run({"perturbation": {"members": 2}, "training": {"epochs": 3, "batch_size": 20},
                    "optimizer": {"lr": 0.05}})
    run["dataset"] = "dom"
    traj = train_tiny(tmp, run, data)
    ds = evaluate_patterns(traj, data, tmp / "patterns.nc", expected_config=run)
    return run, data, traj, ds, tmp


def test_patterns_match_direct_evaluation(domino_run):
    run, data, traj, ds, tmp = domino_run
    from pathdep.core.context import build
    from pathdep.io.trajectory import Trajectory

    assert set(ds["set"].values) >= {"both", "top_only", "bottom_only", "top_randomized", "bottom_randomized", "test"}
    assert ds["acc"].shape[1:] == (3, ds.sizes["checkpoint"])
    sets = load_eval_sets(data)
    meta = {"in_shape": (1, 10, 5), "out_dim": 3, "task": "classification"}
    module, layout, apply = build(run, meta, torch.float32)
    with Trajectory(traj) as tr:
        c = tr.n_checkpoints - 1
        W = torch.as_tensor(tr.weights(c)[2], dtype=torch.float32)
    for s in ("top_only", "bottom_randomized"):
        x, y = torch.as_tensor(sets[s]["x"]), torch.as_tensor(sets[s]["y"])
        out = apply(W, x)
        acc = (out.argmax(-1) == y).double().mean().item()
        loss = torch.nn.functional.cross_entropy(out.double(), y).item()
        i = list(ds["set"].values).index(s)
        assert ds["acc"].values[i, 2, c] == pytest.approx(acc, abs=1e-12)
        assert ds["loss"].values[i, 2, c] == pytest.approx(loss, rel=1e-5)
    # the file round-trips, carries the achieved prevalences and one fit per set and member
    back = xr.open_dataset(tmp / "patterns.nc", engine="h5netcdf")
    assert back.attrs["achieved_prevalence_top"] == pytest.approx(0.8)
    assert back["onset"].shape == (ds.sizes["set"], 3)
    # the easy top pattern is learned: top-only accuracy well above chance at the end
    i = list(ds["set"].values).index("top_only")
    assert ds["acc"].values[i, 0, -1] > 1 / 3 + 0.2
    # half-gain onsets: per member and of the member-mean curve, as a direct evaluation
    from pathdep.analysis.patterns import half_gain_time

    steps = ds["step"].values.astype(float)
    for m in range(3):
        h = half_gain_time(steps, ds["acc"].values[i, m], 1 / 3)
        assert np.isfinite(h) and back["onset_half"].values[i, m] == pytest.approx(h)
    assert back["onset_half_mean"].values[i] == pytest.approx(half_gain_time(steps, ds["acc"].values[i].mean(0), 1 / 3))
    # linear probes: the simple side (simplicity 6) beats the hard one (1.5), both above chance
    assert back.attrs["probe_acc_top"] > back.attrs["probe_acc_bottom"] > 1 / 3


def test_refuses_other_config(domino_run):
    run, data, traj, ds, tmp = domino_run
    other = dict(run, seed=99)
    with pytest.raises(ValueError, match="different config"):
        evaluate_patterns(traj, data, tmp / "x.nc", expected_config=other)
    assert not (tmp / "x.nc").exists()


def _fake_patterns(path, p_top, onset_top):
    """A patterns.nc whose accuracy curves are sigmoids with known onsets (members shifted by 0, 1, 2 steps)."""
    import json

    from pathdep.stages.dominoes import fit_patterns

    sets = ["both", "top_only", "bottom_only", "top_randomized", "bottom_randomized"]
    steps = np.arange(0, 200, 5)
    acc = np.empty((len(sets), 3, len(steps)))
    for i, s in enumerate(sets):
        t0 = onset_top if s.startswith("top") else 40.0
        acc[i] = 0.1 + 0.8 / (1 + np.exp(-0.1 * (steps - t0 - np.arange(3)[:, None])))
    ds = xr.Dataset({"acc": (("set", "member", "checkpoint"), acc)},
                    coords={"set": sets, "member": np.arange(3), "checkpoint": np.arange(len(steps)),
                            "step": ("checkpoint", steps)})
    ds.attrs.update({"n_classes": 10, "run": f"ptop{p_top}", "swept": json.dumps({"data.prevalence.top": p_top}),
                     "achieved_prevalence_top": p_top, "achieved_prevalence_bottom": 1.0,
                     "achieved_reliability_top": 1.0, "achieved_reliability_bottom": 1.0})
    fit_patterns(ds).to_netcdf(path, engine="h5netcdf")
    return path


def test_summary_table(tmp_path):
    import pandas as pd

    from pathdep.stages.dominoes import summarize_patterns

    files = [_fake_patterns(tmp_path / f"p{i}.nc", p, o) for i, (p, o) in enumerate([(0.5, 90.0), (1.0, 30.0)])]
    df = summarize_patterns(files, tmp_path / "s.csv", simplicity={"top": 1.0})
    back = pd.read_csv(tmp_path / "s.csv")
    assert list(back.columns[:3]) == ["run", "pattern", "swept:data.prevalence.top"] and len(back) == 4
    top = back[back["pattern"] == "top"]
    np.testing.assert_allclose(top["onset"], [91.0, 31.0], atol=0.6)  # member-mean curve: t0 + 1
    np.testing.assert_allclose(top["sigmoid_onset"], [90.0, 30.0], atol=0.5)  # the baseline's fit
    assert (top["simplicity"] == 1.0).all()
    ok = np.isfinite(df["toy_onset_steps"])
    assert np.mean(np.log(df["toy_onset_steps"][ok])) == pytest.approx(np.mean(np.log(df["onset"][ok])), abs=1e-9)
