"""pathdep.core.fast path choice for transformers: on a CPU the ensemble step is the member loop with
a torch.autograd step (pathdep.core.resnet.make_member_loop / make_autograd_step); it equals the
vmapped pure step and K sequential torch.nn copies under torch.optim.AdamW (with and without
optimizer.constrain_norm: AdamW then the rescaling to the step's starting norm) in float64 over 20
steps to 1e-10, for shared and per-member batches; the choice per model kind and device."""

import copy

import pytest
import torch

from pathdep.core.dynamics import loss_value, make_ensemble_step, make_step
from pathdep.core.fast import ensemble_step_for, member_loop_preferred
from pathdep.core.init import init_params
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import Optimizer

K, STEPS, B, T, V = 3, 20, 12, 3, 11
HPS = [dict(lr=1e-2, betas=(0.9, 0.98), weight_decay=1.0), dict(lr=3e-3, betas=(0.9, 0.999), weight_decay=0.1),
       dict(lr=1e-3, betas=(0.8, 0.98), weight_decay=0.0, eps=1e-6)]


def _model(layernorm="none", dtype=torch.float64):
    spec = {"kind": "transformer", "n_layer": 1, "n_head": 2, "d_model": 8, "d_mlp": 16, "layernorm": layernorm}
    return build_model(spec, (T,), V).to(dtype)


def _flat(m):
    return torch.cat([p.detach().reshape(-1) for p in m.parameters()])


def _sequential(base, layout, W, x, y, constrain):
    """K torch.nn copies, torch.optim.AdamW (then the rescaling to the pre-step norm when ``constrain``)."""
    ref, losses = [], []
    for k in range(K):
        m = copy.deepcopy(base)
        with torch.no_grad():
            for name, t in layout.unflatten(W[k]).items():
                m.get_parameter(name).copy_(t)
        o = torch.optim.AdamW(m.parameters(), **HPS[k])
        lk = []
        for t in range(STEPS):
            o.zero_grad()
            xt, yt = (x[t], y[t]) if x.dim() == 3 else (x[t, k], y[t, k])
            val = loss_value("cross_entropy", m(xt), yt)
            val.backward()
            before = _flat(m).norm()
            o.step()
            if constrain:
                with torch.no_grad():
                    scale = before / _flat(m).norm()
                    for p in m.parameters():
                        p.mul_(scale)
            lk.append(val.detach())
        ref.append(_flat(m))
        losses.append(torch.stack(lk))
    return torch.stack(ref), torch.stack(losses, 1)


def _hp():
    hp = {"lr": [h["lr"] for h in HPS], "beta1": [h["betas"][0] for h in HPS],
          "beta2": [h["betas"][1] for h in HPS], "weight_decay": [h["weight_decay"] for h in HPS],
          "eps": [h.get("eps", 1e-8) for h in HPS]}
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in hp.items()}


def _run(step, W, opt, x, y, hp):
    Wt, state, losses = W.clone(), torch.vmap(opt.init)(W), []
    for t in range(STEPS):
        Wt, state, lv = step(Wt, state, x[t], y[t], hp)
        losses.append(lv)
    return Wt, torch.stack(losses)


@pytest.mark.parametrize("constrain,shared,layernorm", [(False, True, "none"), (True, True, "none"),
                                                        (False, False, "pre"), (True, False, "pre")])
def test_member_loop_equals_vmap_and_sequential_adamw_float64(constrain, shared, layernorm):
    base = _model(layernorm)
    layout = Layout.from_module(base)
    g = torch.Generator().manual_seed(2)
    W = torch.stack([init_params(base, layout, "default", s) for s in range(K)])
    lead = (STEPS,) if shared else (STEPS, K)
    x = torch.randint(0, V, (*lead, B, T), generator=g).double()
    y = torch.randint(0, V, (*lead, B), generator=g)
    ref, ref_loss = _sequential(base, layout, W, x, y, constrain)
    opt, hp = Optimizer("adamw", constrain_norm=constrain), _hp()
    apply = make_apply(base, layout)
    assert member_loop_preferred(base)
    auto = ensemble_step_for(base, layout, apply, opt, "cross_entropy", shared, fast=True)
    assert "make_member_loop" in auto.__qualname__          # the path training takes on a CPU
    vmapped = make_ensemble_step(make_step(apply, "cross_entropy", opt), shared_batch=shared)
    Wa, la = _run(auto, W, opt, x, y, hp)
    Wv, lv = _run(vmapped, W, opt, x, y, hp)
    for Wt, lt in ((Wa, la), (Wv, lv)):
        assert (Wt - ref).abs().max() <= 1e-10
        assert (lt - ref_loss).abs().max() <= 1e-10
    assert (Wa - Wv).abs().max() <= 1e-10
    assert (Wa - W).norm(dim=1).min() > 1e-2                 # they trained
    norms_kept = torch.allclose(Wa.norm(dim=1), W.norm(dim=1), rtol=1e-12, atol=0)
    assert norms_kept == constrain                            # the constraint holds, and only with it


def test_path_choice_per_model_kind_and_device():
    tr = _model()
    res = build_model({"kind": "resnet", "depth": 8, "norm": "none"}, (3, 8, 8), 10)
    mlp = build_model({"kind": "mlp", "hidden": [8]}, (16,), 3)
    lenet = build_model({"kind": "lenet5"}, (1, 28, 28), 10)
    assert member_loop_preferred(tr) and member_loop_preferred(res)
    assert member_loop_preferred(tr, "cpu") and member_loop_preferred(res, torch.device("cpu"))
    assert not member_loop_preferred(tr, "cuda") and not member_loop_preferred(res, "cuda:0")
    assert not member_loop_preferred(mlp) and not member_loop_preferred(lenet)
    assert not member_loop_preferred(mlp, "cpu")
    # a model whose parameters are off the CPU (meta: no cuda needed) vmaps
    meta = copy.deepcopy(tr).to("meta")
    assert not member_loop_preferred(meta)
    opt = Optimizer("adamw")
    step = ensemble_step_for(meta, Layout.from_module(meta), make_apply(meta, Layout.from_module(meta)), opt,
                             "cross_entropy", True, fast=True)
    assert "make_member_loop" not in step.__qualname__
    # MLPs keep their own fast path on a CPU
    fast = ensemble_step_for(mlp, Layout.from_module(mlp), make_apply(mlp, Layout.from_module(mlp)), opt,
                             "cross_entropy", True, fast=True)
    assert "make_fast_ensemble_step" in fast.__qualname__
