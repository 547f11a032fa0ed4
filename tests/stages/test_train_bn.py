"""pathdep.stages.train with BatchNorm ResNets (issue 19 items 1 and 3): the train stage's K-member
ResNet-8 ensemble equals K sequential ``torch.nn`` models (``nn.BatchNorm2d`` in train mode,
``torch.optim.SGD`` with momentum and weight decay) in float64 over 20 steps, weights AND running
statistics; N + N steps with a resume equal 2N straight steps bit for bit (buffers included);
copies start with the baseline's initial buffers; init.scheme other than default is refused."""

import copy

import h5py
import numpy as np
import pytest
import torch
from helpers import assert_h5_equal, interrupted_run, make_dataset, tiny_config, tiny_run, train_tiny

from pathdep.config import ConfigError, validate
from pathdep.core.context import RunContext
from pathdep.core.dynamics import loss_value
from pathdep.io.trajectory import Trajectory, load_init
from pathdep.stages.train import _schedule, train_ensemble

BN = {"model": {"kind": "resnet", "depth": 8, "width": 1, "norm": "batch"}, "init": {"scheme": "default"},
      "perturbation": {"members": 2, "epsilon": 0.05},
      "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-3},
      "training": {"max_steps": 20, "batch_size": 16, "dtype": "float64", "checkpoints": {"mode": "every", "every": 5}}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), "digits")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    torch.set_num_threads(1)
    run = tiny_run(BN)
    return run, train_tiny(tmp_path_factory.mktemp("bn"), run, data, "a")


def _sequential(run, data, init_path):
    """The members one at a time as torch.nn modules in train mode under torch.optim.SGD."""
    ctx = RunContext.build(run, data, "cpu", load=True)
    init = load_init(init_path)
    sched = _schedule(ctx, init)
    x_all, y_all = ctx.train_tensors()
    opt = run["optimizer"]
    ws, bs = [], []
    for k in range(init.weights.shape[0]):
        m = copy.deepcopy(ctx.module).train()
        with torch.no_grad():
            for name, t in ctx.layout.unflatten(torch.as_tensor(init.weights[k])).items():
                m.get_parameter(name).copy_(t)
            for name, t in ctx.buffer_layout.unflatten(torch.as_tensor(init.buffers[k])).items():
                m.get_buffer(name).copy_(t)
        o = torch.optim.SGD(m.parameters(), lr=opt["lr"], momentum=opt["momentum"], weight_decay=opt["weight_decay"])
        for t in range(sched.n_steps):
            idx = torch.as_tensor(sched.batch(t))
            o.zero_grad()
            loss_value("cross_entropy", m(x_all[idx]), y_all[idx]).backward()
            o.step()
        ws.append(ctx.layout.flatten(dict(m.named_parameters())).detach())
        bs.append(ctx.buffer_layout.flatten(dict(m.named_buffers())).detach())
    return torch.stack(ws).numpy(), torch.stack(bs).numpy()


def test_ensemble_equals_sequential_torch_batchnorm_float64(trained, data):
    run, traj = trained
    ref_w, ref_b = _sequential(run, data, traj.parent / "init.h5")
    with Trajectory(traj) as tr:
        assert tr.steps[-1] == 20 and tr.n_members == 3
        W, B = tr.weights(tr.n_checkpoints - 1), tr.buffers(tr.n_checkpoints - 1)
        B0 = tr.buffers(0)
        assert tr.buffer_layout.names[:2] == ("bn0.running_mean", "bn0.running_var")
    assert W.dtype == np.float64 and B.shape == ref_b.shape
    assert np.abs(W - ref_w).max() <= 1e-10
    assert np.abs(B - ref_b).max() <= 1e-10
    # the statistics moved, differently per member; the weights moved
    assert np.abs(B - B0).max() > 1e-2 and np.abs(B[1] - B[0]).max() > 1e-6
    assert np.abs(W - tr_init(traj)).max() > 1e-3


def tr_init(traj):
    with h5py.File(traj.parent / "init.h5", "r") as f:
        return f["weights"][()]


def test_copies_start_with_the_baselines_initial_buffers(trained):
    run, traj = trained
    init = load_init(traj.parent / "init.h5")
    assert init.buffers.shape == (3, init.buffer_layout.n_params) and init.buffer_layout.n_params > 0
    mean = np.concatenate([np.asarray(init.buffer_layout.unflatten(torch.as_tensor(b))["bn0.running_mean"])[None]
                           for b in init.buffers])
    assert (mean == 0).all() and (init.buffers == init.buffers[:1]).all()
    assert not (init.weights == init.weights[:1]).all()          # the perturbation acts on parameters
    with Trajectory(traj) as tr:
        assert np.array_equal(tr.buffers(0), init.buffers)
        assert "parameters only" in tr.attrs["buffers"] and "parameters only" in init.attrs["buffers"]


def test_resume_is_bitwise_with_buffers(tmp_path, data):
    """N + N steps with a resume equal 2N straight steps, weights and buffers bit for bit."""
    torch.set_num_threads(1)
    run = tiny_run({**BN, "training": {**BN["training"], "max_steps": 24, "save_state_every": 12,
                                       "checkpoints": {"mode": "every", "every": 4}}})
    ref = train_tiny(tmp_path, run, data, "ref")
    d = tmp_path / "r"
    interrupted_run(run, data, d, stop_after=14)
    st = torch.load(d / "trajectory_state" / "state.pt", weights_only=False)
    assert st["step"] == 12 and st["B"].shape == (3, load_init(d / "init.h5").buffer_layout.n_params)
    summary = train_ensemble(run, d / "init.h5", data, d / "trajectory.h5", threads=1, progress=False)
    assert summary["resumed_from"] == 12
    assert_h5_equal(d / "trajectory.h5", ref)
    with h5py.File(ref, "r") as f:
        B = f["buffers"][()]
    assert B.shape[0] == 7 and (np.abs(np.diff(B, axis=0)).max(axis=(1, 2)) > 0).all()   # every checkpoint moved


def test_bn_refuses_a_fan_in_init_scheme():
    cfg = tiny_config({**BN, "init": {"scheme": "kaiming_normal"}})
    with pytest.raises(ConfigError, match=r"^config: .*init\.scheme: kind resnet with norm batch uses its own init") as e:
        validate(cfg)
    assert "\n" not in str(e.value)


def _module_at(ctx, w, b):
    m = copy.deepcopy(ctx.module)
    with torch.no_grad():
        for name, t in ctx.layout.unflatten(torch.as_tensor(w)).items():
            m.get_parameter(name).copy_(t)
        for name, t in ctx.buffer_layout.unflatten(torch.as_tensor(b)).items():
            m.get_buffer(name).copy_(t)
    return m


def test_metrics_evaluate_in_eval_mode_with_each_members_own_statistics(trained, data, tmp_path):
    from pathdep.stages.metrics import _eval_sets, compute_metrics

    run, traj = trained
    ds = compute_metrics(traj, data, tmp_path / "metrics.nc")
    assert "own running statistics" in ds.attrs["bn"]
    ctx = RunContext.build(run, data, "cpu", load=True)
    x, y = _eval_sets(ctx, run, run["metrics"])["train"]
    with Trajectory(traj) as tr:
        c = tr.n_checkpoints - 1
        W, B, B0 = tr.weights(c), tr.buffers(c), tr.buffers(0)
    for k in range(3):
        with torch.no_grad():
            own = loss_value("cross_entropy", _module_at(ctx, W[k], B[k]).eval()(x), y).item()
            other = loss_value("cross_entropy", _module_at(ctx, W[k], B[(k + 1) % 3]).eval()(x), y).item()
            stale = loss_value("cross_entropy", _module_at(ctx, W[k], B0[k]).eval()(x), y).item()
        got = float(ds["train_loss"].isel(member=k, checkpoint=c))
        assert abs(got - own) <= 1e-10
        assert abs(got - other) > 1e-8 and abs(got - stale) > 1e-4   # another member's / the initial statistics
    assert np.isfinite(ds["test_acc"].values).all() and np.isfinite(ds["fs_l2_logits"].values).all()


def test_geometry_of_a_bn_run_resets_statistics_at_interpolation_points(trained, data, tmp_path):
    import pathdep.stages.geometry as G

    run, traj = trained
    spec = {"lambdas": 5, "checkpoints": [0.0, 1.0], "interp_members": 2, "eval_train": 150, "eval_test": 150,
            "bn_reset": 500}   # geometry.bn_reset: one reset batch (the test's time)
    ds = G.compute_geometry(traj, data, tmp_path / "geometry.nc", spec, threads=1, log=lambda *_: None)
    assert "reset at every interpolation point on 500 training samples" in ds.attrs["interp_bn"]
    assert np.isfinite(ds["interp_loss"].values).all() and np.isfinite(ds["barrier"].values).all()
    assert np.isfinite(ds["ac_out_base"].values).all() and np.isfinite(ds["dist_aligned"].values).all()
    # aligned and raw endpoints agree (the aligned member computes the same function after its reset)
    il = ds["interp_loss"]
    assert np.allclose(il.sel(align="raw", lam=1.0), il.sel(align="aligned", lam=1.0), rtol=0, atol=1e-9)
    assert (ds["dist_aligned"].isel(checkpoint=-1).values[1:] <= ds["dist"].isel(checkpoint=-1).values[1:] + 1e-12).all()
