"""pathdep.core.flatstate (float64): the flat-state map replays the recorded baseline, its
hand-written tangent push equals the vmapped jvp of the map, split / pack round-trip, and
inert buffers stay out of the state."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from helpers import make_dataset, tiny_run, train_tiny
from torch.func import jvp, vmap

from pathdep.analysis.lyapunov_qr import random_orthonormal
from pathdep.core.context import RunContext
from pathdep.core.flatstate import FlatState, flat_training_map, inert_buffers
from pathdep.core.optim import optimizer_from_config
from pathdep.io.trajectory import load_init


def _baseline_map(run, init_path, data):
    ctx = RunContext.build(run, data, "cpu", load=True)
    init = load_init(init_path)
    sched = ctx.schedule([int(init.members["seed_schedule"].iloc[0])])
    w0 = torch.as_tensor(init.weights[0], dtype=ctx.dtype)
    return flat_training_map(ctx, w0, sched, fast=bool(run["training"]["fast"]))


def test_flat_map_reproduces_the_recorded_baseline(tmp_path):
    """Replaying the map from the baseline's initial weights on the baseline's schedule gives
    the recorded trajectory (float64: the vmapped ensemble and the single map agree to
    rounding); the momentum buffer is part of the state."""
    data = make_dataset(tmp_path)
    run = tiny_run({"training": {"dtype": "float64"}, "optimizer": {"momentum": 0.9}})
    traj = train_tiny(tmp_path, run, data)
    F, x0, info = _baseline_map(run, traj.parent / "init.h5", data)
    assert info["state"] == ["weights", "momentum_buffer"] and info["D"] == 2 * info["P"]
    with h5py.File(traj) as f:
        steps, W = f["steps"][()], f["weights"][:, 0]
    x, c = x0, 1
    for t in range(int(steps[-1])):
        x = F(x, t)
        if t + 1 == steps[c]:
            np.testing.assert_allclose(x[: info["P"]].numpy(), W[c], rtol=0, atol=1e-12)
            c += 1
    assert c == len(steps)


@pytest.mark.parametrize("opt", [{}, {"momentum": 0.9}, {"momentum": 0.9, "weight_decay": 1e-3}])
def test_hand_written_tangent_push_equals_jvp_of_the_map(tmp_path, opt):
    """With fast, tangents go through hand-written Hessian-vector products (info['push']);
    on the flat state (weights + live buffers) they equal the vmapped jvp of the map F to
    1e-12 (float64), for plain SGD, momentum and weight decay (Adam: tests/core/test_fast.py)."""
    data = make_dataset(tmp_path)
    run = tiny_run({"training": {"dtype": "float64", "fast": True}, "optimizer": opt})
    traj = train_tiny(tmp_path, run, data)
    F, x0, info = _baseline_map(run, traj.parent / "init.h5", data)
    assert info["push"] is not None and "Hessian-vector" in info["tangents"]
    x = x0
    for t in range(3):
        x = F(x, t)
    Q = random_orthonormal(info["D"], 5, seed=1)
    y_ref, JQ_ref = vmap(lambda v: jvp(lambda z: F(z, 3), (x,), (v,)), in_dims=1,
                         out_dims=(0, 1))(Q)
    y, JQ = info["push"](x, Q, 3)
    torch.testing.assert_close(y, y_ref[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(JQ, JQ_ref, rtol=0, atol=1e-12)
    assert (JQ - Q).abs().max() > 1e-6  # the Hessian part is not zero


def test_split_pack_round_trip_and_inert_buffers():
    w0 = torch.arange(5, dtype=torch.float64)
    opt, hp = optimizer_from_config({"name": "sgd", "lr": 0.1, "momentum": 0.0})
    plain = opt.specialized([hp])  # momentum 0 for every member: the buffer never changes
    assert inert_buffers(plain) == {plain.state_names.index("momentum_buffer")}
    flat = FlatState.for_optimizer(plain, w0)
    assert flat.active == () and torch.equal(flat.initial(w0), w0)
    opt, hp = optimizer_from_config({"name": "sgd", "lr": 0.1, "momentum": 0.9})
    heavy = opt.specialized([hp])
    flat = FlatState.for_optimizer(heavy, w0)
    x = torch.arange(10, dtype=torch.float64)
    w, bufs = flat.split(x)
    assert torch.equal(w, x[:5]) and torch.equal(bufs[flat.active[0] - 1], x[5:])
    assert torch.equal(flat.pack(w, bufs), x)
    state = flat.optimizer_state(bufs, 7, torch.float64, "cpu")
    assert float(state[0]) == 7.0 and len(state) == len(flat.state0)
