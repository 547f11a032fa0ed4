"""pathdep.stages.train: bitwise determinism, bitwise resume after SIGKILL / SIGTERM / an interrupt,
the members table and the three perturbation targets, diverging members (masking through to
the metrics), and refusing an init file made from another config."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import assert_h5_equal, interrupted_run, h5_datasets, make_dataset, tiny_run, train_tiny

from pathdep.config import run_seeds
from pathdep.stages.metrics import compute_metrics
from pathdep.core.models import Layout
from pathdep.io.trajectory import Trajectory, load_init
from pathdep.stages.train import init_ensemble, train_ensemble


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), "digits")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), "teacher")


# --------------------------------------------------------------------------- determinism
def test_same_config_gives_identical_files(tmp_path, data):
    run = tiny_run({"optimizer": {"momentum": 0.9}, "training": {"max_steps": 25}})
    a = train_tiny(tmp_path, run, data, "a")
    b = train_tiny(tmp_path, run, data, "b")
    assert_h5_equal(tmp_path / "a" / "init.h5", tmp_path / "b" / "init.h5")
    assert_h5_equal(a, b)
    d = h5_datasets(a)
    assert set(d) >= {"weights", "steps", "epochs", "loss", "diverged_step", "valid", "members/role"}
    assert np.isfinite(d["loss"]).all() and d["valid"].all()
    assert d["weights"].shape[1:] == (4, Layout.from_attrs(json.loads(h5py.File(a)["/"].attrs["layout"])).n_params)
    # the initial checkpoint is init.h5's weights, and training moved them
    with h5py.File(tmp_path / "a" / "init.h5", "r") as f:
        assert np.array_equal(d["weights"][0], f["weights"][()])
    assert not np.array_equal(d["weights"][-1], d["weights"][0])
    assert not (tmp_path / "a" / "trajectory_state").exists()  # state removed once finished
    assert not (tmp_path / "a" / "trajectory.h5.partial").exists()


def test_different_seed_gives_different_trajectory(tmp_path, data):
    a = train_tiny(tmp_path, tiny_run({"training": {"max_steps": 5}}, seed=1), data, "a")
    b = train_tiny(tmp_path, tiny_run({"training": {"max_steps": 5}}, seed=2), data, "b")
    assert not np.array_equal(h5_datasets(a)["weights"][0], h5_datasets(b)["weights"][0])


# --------------------------------------------------------------------------- members
def _init_weights(path):
    with h5py.File(path, "r") as f:
        return f["weights"][()]


def test_members_table_records_seeds_and_hparams(tmp_path, data):
    run = tiny_run({"optimizer": {"lr": 0.03, "momentum": 0.5}, "perturbation": {"epsilon": 0.02},
                    "training": {"max_steps": 4}})
    p = train_tiny(tmp_path, run, data)
    seeds = run_seeds(run)
    for m in (load_init(tmp_path / "run" / "init.h5").members, Trajectory(p).members):
        assert list(m["role"]) == ["baseline", "member", "member", "member"]
        assert list(m["target"]) == ["none", "init", "init", "init"]
        assert list(m["seed_perturb"]) == seeds["members_perturb"]
        assert list(m["seed_schedule"]) == [seeds["schedule"]] * 4
        assert list(m["epsilon"]) == [0.0, 0.02, 0.02, 0.02]
        assert list(m["hp_lr"]) == [0.03] * 4 and list(m["hp_momentum"]) == [0.5] * 4
        assert list(m["hp_dampening"]) == [0.0] * 4 and list(m["hp_weight_decay"]) == [0.0] * 4
        assert m["distance"][0] == 0 and (m["distance"][1:] > 0).all()
    with Trajectory(p) as tr:
        assert json.loads(tr.attrs["seeds"]) == seeds
        assert tr.config["optimizer"]["lr"] == 0.03


def test_hyperparameter_perturbation(tmp_path, data):
    run = tiny_run({"optimizer": {"lr": 0.05}, "training": {"max_steps": 6, "checkpoints": {"mode": "every", "every": 1}},
                    "perturbation": {"target": "hyperparameter", "hparam": "lr", "epsilon": 0.5, "members": 3}})
    p = train_tiny(tmp_path, run, data)
    W0 = _init_weights(tmp_path / "run" / "init.h5")
    assert all(np.array_equal(W0[k], W0[0]) for k in range(4))
    with Trajectory(p) as tr:
        m = tr.members
        assert list(m["hp_lr"]) == [0.05 * (1 + 0.5 * k / 3) for k in range(4)]
        assert list(m["epsilon"]) == [0.5 * k / 3 for k in range(4)]
        assert list(m["distance"]) == [0.0] * 4
        loss = tr.loss()
        # same weights and batch at step 0: the same loss; different lrs afterwards
        assert np.all(loss[0] == loss[0, 0])
        assert len(np.unique(loss[-1])) == 4
        # one SGD step: w1 - w0 is proportional to lr (same gradient)
        assert tr.steps.tolist() == list(range(7))
        dW = tr.weights(1).astype(np.float64) - W0
        for k in range(1, 4):
            np.testing.assert_allclose(dW[k], dW[0] * (1 + 0.5 * k / 3), rtol=1e-4, atol=1e-7)


def test_schedule_shuffle_perturbation(tmp_path, data):
    run = tiny_run({"training": {"max_steps": 6}, "perturbation": {"target": "schedule", "kind": "shuffle"}})
    p = train_tiny(tmp_path, run, data)
    W0 = _init_weights(tmp_path / "run" / "init.h5")
    assert all(np.array_equal(W0[k], W0[0]) for k in range(4))
    seeds = run_seeds(run)
    with Trajectory(p) as tr:
        assert list(tr.members["seed_schedule"]) == [seeds["schedule"], *seeds["members_schedule"][1:]]
        loss = tr.loss()
        assert len(np.unique(loss[0])) == 4  # same weights, different batches
        assert (tr.weights(tr.n_checkpoints - 1)[1:] != tr.weights(tr.n_checkpoints - 1)[0]).any(axis=1).all()


def test_schedule_swap_perturbation(tmp_path, data):
    run = tiny_run({"perturbation": {"target": "schedule", "kind": "swap", "swaps": 2}})
    p = train_tiny(tmp_path, run, data)
    with Trajectory(p) as tr:
        swaps = [json.loads(s) for s in tr.members["swaps"]]
        assert swaps[0] == [] and all(len(s) == 2 for s in swaps[1:])
        loss = tr.loss()
        for k in range(1, 4):
            first = min(i for pair in swaps[k] for i in pair)
            # identical weights and batches until the first swapped batch
            assert np.array_equal(loss[:first, k], loss[:first, 0])
            assert loss[first, k] != loss[first, 0]


def test_sphere_perturbation_keeps_tensor_norms(tmp_path, data):
    run = tiny_run({"perturbation": {"kind": "sphere", "epsilon": 0.3}, "training": {"max_steps": 2}})
    init_ensemble(run, data, tmp_path / "init.h5")
    init = load_init(tmp_path / "init.h5")
    layout = init.layout
    W = init.weights.astype(np.float64)
    for k in range(1, 4):
        assert not np.array_equal(W[k], W[0])
        for name in layout.names:
            sl = layout.slice(name)
            np.testing.assert_allclose(np.linalg.norm(W[k, sl]), np.linalg.norm(W[0, sl]), rtol=1e-6)
            np.testing.assert_allclose(np.linalg.norm(W[k, sl] - W[0, sl]), 0.3, rtol=1e-5)
    with h5py.File(tmp_path / "init.h5", "r") as f:
        dpt = f["members/distance_per_tensor"][()]
    np.testing.assert_allclose(dpt[1:], 0.3, rtol=1e-5)
    assert (dpt[0] == 0).all()


# --------------------------------------------------------------------------- divergence
def test_diverging_members_are_masked(tmp_path, teacher):
    # regression (MSE): lr 0.05 * (1 + 300 k / 3) = 5.05, 10.05, 15.05 blows up; the baseline does not
    run = tiny_run({"optimizer": {"lr": 0.05}, "training": {"epochs": 2, "checkpoints": {"mode": "every", "every": 1}},
                    "perturbation": {"target": "hyperparameter", "hparam": "lr", "epsilon": 300.0, "members": 3}},
                   dataset="teacher")
    p = train_tiny(tmp_path, run, teacher)
    with Trajectory(p) as tr:
        div, valid, steps, loss = tr.diverged_step, tr.valid, tr.steps, tr.loss()
        assert tr.attrs["complete"]
    assert div[0] == -1 and (div[1:] >= 0).all()
    assert np.isfinite(loss[:, 0]).all()
    for k in range(1, 4):
        d = div[k]
        assert np.isfinite(loss[:d, k]).all() and not np.isfinite(loss[d, k])
        assert valid[steps < d, k].all() and not valid[steps >= d, k].any()
    assert valid[:, 0].all()
    ds = compute_metrics(p, teacher, tmp_path / "metrics.nc")
    mask = valid.T  # (K, C)
    for v in ("dist", "dist_rel", "cos_base", "cos_init", "norm", "norm_ratio", "dist_init", "train_loss",
              "test_loss", "train_cf_loss", "test_cf_loss", "fs_l2_logits"):
        x = ds[v].values
        assert np.isnan(x[~mask]).all(), v
        assert np.isfinite(x[mask]).all(), v
    assert np.isnan(ds["dist_layer"].values[~mask]).all() and np.isfinite(ds["dist_layer"].values[mask]).all()
    assert ds["diverged_step"].values.tolist() == div.tolist()


# --------------------------------------------------------------------------- wrong init
def test_init_from_other_config_is_refused(tmp_path, data):
    run = tiny_run({"training": {"max_steps": 3}})
    other = tiny_run({"training": {"max_steps": 3}, "optimizer": {"lr": 0.07}})
    init_ensemble(other, data, tmp_path / "init.h5")
    with pytest.raises(ValueError) as exc:
        train_ensemble(run, tmp_path / "init.h5", data, tmp_path / "trajectory.h5", threads=1, progress=False)
    msg = str(exc.value)
    assert "\n" not in msg and str(tmp_path / "init.h5") in msg and "different config" in msg
    assert not (tmp_path / "trajectory.h5").exists()


# --------------------------------------------------------------------------- resume
# 8 epochs of 42 steps (336 steps, ~1 s of training) with state saved every 5 steps, so
# there is a wide window between the first save and the end in which to kill the process.
N_STEPS = 336
RESUME = {"optimizer": {"momentum": 0.9}, "training": {"epochs": 8, "save_state_every": 5,
                                                       "checkpoints": {"mode": "log", "count": 20}}}

_CHILD = ("import json, sys; from pathdep.stages.train import train_ensemble; "
          "train_ensemble(json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4], "
          "threads=1, progress=False)")


def _start(run, d: Path, data: Path):
    (d / "run.json").write_text(json.dumps(run))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(d / "run.json"), str(d / "init.h5"), str(data),
                             str(d / "trajectory.h5")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)


@pytest.fixture(scope="module", autouse=True)
def interrupted(tmp_path_factory, data):
    """Two ``python -c train_ensemble(...)`` children of the RESUME config, started when this
    module starts so their interpreter start-up overlaps the other tests. A watcher thread
    polls for ``<out>_state/state.pt`` and then sends SIGKILL to one and SIGTERM to the other
    (the run is still far from its end then). Yields ``(run, dirs, procs, watcher)``."""
    run = tiny_run(RESUME)
    tmp = tmp_path_factory.mktemp("children")
    dirs = {}
    for name in ("kill", "term"):
        dirs[name] = tmp / name
        dirs[name].mkdir()
        init_ensemble(run, data, dirs[name] / "init.h5")
    procs = {name: _start(run, d, data) for name, d in dirs.items()}
    sig = {"kill": signal.SIGKILL, "term": signal.SIGTERM}

    def watch():
        pending, t_end = set(procs), time.monotonic() + 120
        while pending and time.monotonic() < t_end:
            for name in list(pending):
                if (dirs[name] / "trajectory_state" / "state.pt").exists():
                    procs[name].send_signal(sig[name])
                    pending.discard(name)
                elif procs[name].poll() is not None:  # exited early: the test reports it
                    pending.discard(name)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    yield run, dirs, procs, watcher
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    """An uninterrupted run of the RESUME config (in-process, 1 thread)."""
    torch.set_num_threads(1)
    run = tiny_run(RESUME)
    tmp = tmp_path_factory.mktemp("ref")
    return run, train_tiny(tmp, run, data, "ref")


@pytest.fixture(scope="module")
def short_reference(tmp_path_factory, data):
    """The same, cut to 60 steps (for the in-process resume tests)."""
    torch.set_num_threads(1)
    run = tiny_run({**RESUME, "training": {**RESUME["training"], "max_steps": 60}})
    tmp = tmp_path_factory.mktemp("ref")
    return run, train_tiny(tmp, run, data, "ref")


def test_resume_after_sigkill_and_sigterm_is_bitwise(data, reference, interrupted):
    run, ref = reference
    run_c, dirs, procs, watcher = interrupted
    assert run_c == run
    watcher.join(timeout=120)
    out = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=60)
        out[name] = (proc.returncode, err)
    # SIGKILL: killed before it finished, state left behind
    rc, err = out["kill"]
    assert rc == -signal.SIGKILL, err[-2000:]
    assert not (dirs["kill"] / "trajectory.h5").exists()
    # SIGTERM: exit code 75 after saving the state at the current step
    rc, err = out["term"]
    assert rc == 75, err[-2000:]
    assert "received signal" in err and "rerun to resume" in err
    assert not (dirs["term"] / "trajectory.h5").exists()
    saved = torch.load(dirs["term"] / "trajectory_state" / "state.pt", weights_only=False)
    term_step = int(saved["step"])
    assert 0 < term_step < N_STEPS
    for name, d in dirs.items():
        assert (d / "trajectory_state" / "state.pt").exists()
        summary = train_ensemble(run, d / "init.h5", data, d / "trajectory.h5", threads=1, progress=False)
        assert 0 < summary["resumed_from"] < N_STEPS, name
        if name == "term":
            assert summary["resumed_from"] == term_step
        assert_h5_equal(d / "trajectory.h5", ref)
        with Trajectory(d / "trajectory.h5") as tr:
            assert tr.attrs["resumed_from"] == summary["resumed_from"]
        assert not (d / "trajectory_state").exists()


def test_resume_after_in_process_interrupt(tmp_path, data, short_reference):
    run, ref = short_reference
    d = tmp_path / "r"
    interrupted_run(run, data, d, stop_after=23)
    st = torch.load(d / "trajectory_state" / "state.pt", weights_only=False)
    assert st["step"] == 20  # the last save point before the interrupt
    summary = train_ensemble(run, d / "init.h5", data, d / "trajectory.h5", threads=1, progress=False)
    assert summary["resumed_from"] == 20
    assert_h5_equal(d / "trajectory.h5", ref)


def test_state_from_other_config_is_ignored(tmp_path, data, short_reference, capfd):
    run, ref = short_reference
    d = tmp_path / "r"
    d.mkdir()
    other = tiny_run({**RESUME, "optimizer": {"momentum": 0.5}, "training": {**RESUME["training"], "max_steps": 60}})
    init_ensemble(other, data, d / "init.h5")
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(other, d / "init.h5", data, d / "trajectory.h5", threads=1, progress=False, stop_after=30)
    init_ensemble(run, data, d / "init.h5")
    capfd.readouterr()
    summary = train_ensemble(run, d / "init.h5", data, d / "trajectory.h5", threads=1, progress=False)
    assert "ignoring saved state" in capfd.readouterr().err
    assert summary["resumed_from"] == 0
    assert_h5_equal(d / "trajectory.h5", ref)
