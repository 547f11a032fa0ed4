"""pathdep.core.resnet / core.fast: the BatchNorm ensemble step on both paths (member loop with
torch.autograd, vmap with torch.func) equals K sequential torch.nn ResNet-8s with nn.BatchNorm2d in
train mode under torch.optim.SGD (momentum, weight decay; different per member) in float64 over 20
steps, weights AND running statistics, for a shared batch and per-member batches; the automatic
path choice (member loop for ResNets on a CPU, vmap for other models)."""

import copy

import pytest
import torch

from pathdep.core.dynamics import loss_value, make_ensemble_step, make_step
from pathdep.core.fast import ensemble_step_for, member_loop_preferred
from pathdep.core.init import init_params
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import Optimizer
from pathdep.core.resnet import buffer_layout, buffers_of, make_apply_with_buffers, make_ensemble_step_with_buffers

K, STEPS, B, SHAPE = 3, 20, 8, (1, 12, 12)
HPS = [dict(lr=0.05, momentum=0.9, weight_decay=5e-4), dict(lr=0.1, momentum=0.5, weight_decay=1e-3),
       dict(lr=0.02, momentum=0.9, weight_decay=0.0)]


def _net(norm):
    m = build_model({"kind": "resnet", "depth": 8, "width": 1, "norm": norm}, SHAPE, 5).double()
    layout = Layout.from_module(m)
    return m, layout, torch.stack([init_params(m, layout, "default", s) for s in range(K)])


def _data(shared):
    g = torch.Generator().manual_seed(4)
    lead = (STEPS,) if shared else (STEPS, K)
    return torch.randn(*lead, B, *SHAPE, generator=g, dtype=torch.float64), torch.randint(0, 5, (*lead, B), generator=g)


def _hp(opt):
    return {h: torch.tensor([float(p.get(h, opt.defaults[h])) for p in HPS], dtype=torch.float64)
            for h in opt.hparam_names}


def _sequential(m, layout, blayout, W, x, y, shared):
    ws, bs = [], []
    for k in range(K):
        mk = copy.deepcopy(m).train()
        with torch.no_grad():
            for name, t in layout.unflatten(W[k]).items():
                mk.get_parameter(name).copy_(t)
        o = torch.optim.SGD(mk.parameters(), **HPS[k])
        for t in range(STEPS):
            o.zero_grad()
            xb, yb = (x[t], y[t]) if shared else (x[t, k], y[t, k])
            loss_value("cross_entropy", mk(xb), yb).backward()
            o.step()
        ws.append(layout.flatten(dict(mk.named_parameters())).detach())
        bs.append(blayout.flatten(dict(mk.named_buffers())).detach())
    return torch.stack(ws), torch.stack(bs)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("loop", [True, False])
def test_bn_ensemble_equals_sequential_torch_nn_float64(loop, shared):
    m, layout, W = _net("batch")
    blayout = buffer_layout(m)
    x, y = _data(shared)
    ref_w, ref_b = _sequential(m, layout, blayout, W, x, y, shared)
    opt = Optimizer("sgd")
    hp = _hp(opt)
    step = make_ensemble_step_with_buffers(make_apply_with_buffers(m, layout, blayout), "cross_entropy", opt,
                                           shared_batch=shared, loop=loop)
    Wt, st, Bt = W.clone(), torch.vmap(opt.init)(W), buffers_of(m, blayout).double().repeat(K, 1)
    for t in range(STEPS):
        Wt, st, Bt, lv = step(Wt, st, Bt, x[t], y[t], hp)
    assert lv.shape == (K,)
    assert (Wt - ref_w).abs().max() <= 1e-10 and (Bt - ref_b).abs().max() <= 1e-10
    assert (Bt[0] - Bt[1]).abs().max() > 1e-3 and (Wt - W).norm(dim=1).min() > 1e-3   # moved, differently


def test_path_choice_member_loop_for_resnets_on_cpu_vmap_otherwise():
    m, layout, W = _net("none")
    mlp = build_model({"kind": "mlp", "hidden": [8]}, (64,), 3).double()
    assert member_loop_preferred(m) and member_loop_preferred(_net("batch")[0]) and not member_loop_preferred(mlp)
    opt = Optimizer("sgd")
    hp = _hp(opt)
    x, y = _data(True)
    auto = ensemble_step_for(m, layout, make_apply(m, layout), opt, "cross_entropy", True, fast=True)
    ref = make_ensemble_step(make_step(make_apply(m, layout), "cross_entropy", opt))
    a = b = (W.clone(), torch.vmap(opt.init)(W))
    for t in range(5):
        ra, rb = auto(*a, x[t], y[t], hp), ref(*b, x[t], y[t], hp)
        a, b = ra[:2], rb[:2]
    assert (ra[0] - rb[0]).abs().max() <= 1e-12 and (ra[2] - rb[2]).abs().max() <= 1e-12
    assert (ra[0] - W).abs().max() > 1e-3
