"""optimizer.constrain_norm (pathdep.core.optim): the weight norm stays at its initial value, the
update equals torch.optim followed by the same rescaling (float64), it runs through the fast
shared-batch path and under jvp, and the config key is read."""

import copy

import pytest
import torch

from pathdep.core.dynamics import loss_value, make_ensemble_step, make_step
from pathdep.core.fast import ensemble_step_for
from pathdep.core.models import MLP, Layout, build_model, make_apply
from pathdep.core.optim import Optimizer, optimizer_from_config

STEPS = 25


def _flat(m):
    return torch.cat([p.detach().reshape(-1) for p in m.parameters()])


def _setup():
    torch.manual_seed(0)
    m = build_model({"kind": "transformer", "n_layer": 1, "n_head": 2, "d_model": 8, "d_mlp": 16,
                     "layernorm": "none"}, (3,), 7).double()
    x = torch.randint(0, 7, (STEPS, 10, 3)).double()
    y = torch.randint(0, 7, (STEPS, 10))
    return m, Layout.from_module(m), x, y


def test_equals_torch_adamw_then_rescale_and_keeps_the_norm():
    m, layout, x, y = _setup()
    w0 = _flat(m)
    ref = copy.deepcopy(m)
    o = torch.optim.AdamW(ref.parameters(), lr=1e-2, betas=(0.9, 0.98), weight_decay=1.0)
    opt, hp = optimizer_from_config({"name": "adamw", "lr": 1e-2, "betas": [0.9, 0.98], "weight_decay": 1.0,
                                     "constrain_norm": True})
    assert opt.constrain_norm
    step = make_ensemble_step(make_step(make_apply(m, layout), "cross_entropy", opt))
    W = torch.stack([w0, 2 * w0])
    state = torch.vmap(opt.init)(W)
    hpt = {k: torch.full((2,), v, dtype=torch.float64) for k, v in hp.items()}
    for t in range(STEPS):
        o.zero_grad()
        loss_value("cross_entropy", ref(x[t]), y[t]).backward()
        before = _flat(ref).norm()
        o.step()
        with torch.no_grad():
            scale = before / _flat(ref).norm()
            for p in ref.parameters():
                p.mul_(scale)
        W, state, _ = step(W, state, x[t], y[t], hpt)
    assert (W[0] - _flat(ref)).abs().max() <= 1e-12
    assert torch.allclose(W.norm(dim=1), torch.stack([w0.norm(), 2 * w0.norm()]), rtol=1e-13, atol=0)
    # without the constraint weight decay 1 shrinks the norm
    free = Optimizer("adamw")
    Wf, sf = w0[None].clone(), torch.vmap(free.init)(w0[None])
    fstep = make_ensemble_step(make_step(make_apply(m, layout), "cross_entropy", free))
    for t in range(STEPS):
        Wf, sf, _ = fstep(Wf, sf, x[t], y[t], {k: v[:1] for k, v in hpt.items()})
    assert Wf.norm() < 0.9 * w0.norm()


def test_fast_path_plain_sgd_keeps_the_constraint():
    torch.manual_seed(1)
    m = MLP(6, [5], 3).double()
    layout = Layout.from_module(m)
    opt = Optimizer("sgd", constrain_norm=True).specialized([{"lr": 0.5}])
    W = torch.stack([_flat(m), 1.5 * _flat(m)])
    x, y = torch.randn(8, 6, dtype=torch.float64), torch.randint(0, 3, (8,))
    hp = {"lr": torch.full((2,), 0.5, dtype=torch.float64)}
    fast = ensemble_step_for(m, layout, make_apply(m, layout), opt, "cross_entropy", True, fast=True)
    ref = ensemble_step_for(m, layout, make_apply(m, layout), opt, "cross_entropy", True, fast=False)
    st = torch.vmap(opt.init)(W)
    W1, _, _ = fast(W, st, x, y, hp)
    W2, _, _ = ref(W, st, x, y, hp)
    assert (W1 - W2).abs().max() <= 1e-12
    assert torch.allclose(W1.norm(dim=1), W.norm(dim=1), rtol=1e-14, atol=0)
    assert (W1 - W).abs().max() > 1e-3


def test_jvp_of_the_constrained_step_is_tangent_to_the_sphere():
    m, layout, x, y = _setup()
    opt = Optimizer("sgd", constrain_norm=True)
    step = make_step(make_apply(m, layout), "cross_entropy", opt)
    w0 = _flat(m)
    st = opt.init(w0)
    hp = {"lr": torch.tensor(0.1, dtype=torch.float64)}

    def F(w):
        return step(w, st, x[0], y[0], hp)[0]

    v = torch.randn_like(w0)
    v = v - (v @ w0) / (w0 @ w0) * w0            # tangent to the sphere at w0
    w1, dw = torch.func.jvp(F, (w0,), (v,))
    assert abs(float(dw @ w1)) <= 1e-10 * float(dw.norm() * w1.norm())   # stays tangent at w1
    h = 1e-6
    fd = (F(w0 + h * v) - F(w0 - h * v)) / (2 * h)
    assert torch.allclose(dw, fd, atol=1e-7, rtol=0)


def test_config_key():
    opt, _ = optimizer_from_config({"name": "sgd", "lr": 0.1, "constrain_norm": True})
    assert opt.constrain_norm and opt != Optimizer("sgd")
    with pytest.raises(ValueError, match=r"^optimizer\.constrain_norm: expected true or false"):
        optimizer_from_config({"name": "adam", "constrain_norm": 1})
