"""pathdep.core.context.RunContext of a BatchNorm ResNet: ``apply`` is pure train mode (batch
statistics, vmappable, the module's buffers untouched) and equals nn.BatchNorm2d in train mode;
``eval_apply`` on ``z = (w, b)`` equals eval mode with those running statistics; ``step()`` (the
Lyapunov / tangent map's update) runs under vmap; models without buffers keep eval_apply = apply."""

import copy

import pytest
import torch
from helpers import make_dataset, tiny_run

from pathdep.core.context import RunContext
from pathdep.core.init import init_params


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), "digits")


def _ctx(data, model):
    run = tiny_run({"model": model, "init": {"scheme": "default"}, "training": {"dtype": "float64"}})
    return RunContext.build(run, data, "cpu", load=True)


def test_bn_context_apply_is_pure_train_mode_and_eval_apply_uses_given_statistics(data):
    ctx = _ctx(data, {"kind": "resnet", "depth": 8, "norm": "batch"})
    assert ctx.has_buffers and ctx.buffer_layout.n_params > 0
    x, y = ctx.train_tensors()
    x, y = x[:32], y[:32]
    W = torch.stack([init_params(ctx.module, ctx.layout, "default", s) for s in range(2)]).double()
    before = {n: t.clone() for n, t in ctx.module.named_buffers()}
    out = torch.vmap(ctx.apply, in_dims=(0, None))(W, x)
    assert all(torch.equal(t, before[n]) for n, t in ctx.module.named_buffers())   # buffers untouched
    B = ctx.initial_buffers(2) + 0.3
    ev = torch.vmap(ctx.eval_apply, in_dims=(0, None))(ctx.z(W, B), x)
    for k in range(2):
        m = copy.deepcopy(ctx.module)
        with torch.no_grad():
            for n, t in ctx.layout.unflatten(W[k]).items():
                m.get_parameter(n).copy_(t)
            for n, t in ctx.buffer_layout.unflatten(B[k]).items():
                m.get_buffer(n).copy_(t)
            assert (m.eval()(x) - ev[k]).abs().max() <= 1e-12     # (before train mode moves m's statistics)
            assert (m.train()(x) - out[k]).abs().max() <= 1e-12
    assert (ev - out).abs().max() > 1e-3                                          # the modes differ
    step = torch.vmap(ctx.step(), in_dims=(0, 0, None, None, 0))
    hp = {h: v[:2] for h, v in ctx.hparams().items()}
    W1, _, lv = step(W, torch.vmap(ctx.opt.init)(W), x, y, hp)
    assert lv.shape == (2,) and (W1 - W).abs().max() > 0


def test_models_without_buffers_keep_apply(data):
    ctx = _ctx(data, {"kind": "resnet", "depth": 8, "norm": "none"})
    assert not ctx.has_buffers and ctx.eval_apply is ctx.apply and ctx.bn_reset([]) is None


def test_bn_tangent_map_of_the_step_by_jvp(data):
    """The Lyapunov tangent map through a BN step (generic forward-mode jvp): u . (J v) equals
    (u J) . v from reverse mode; the buffers do not enter (train mode never reads them)."""
    ctx = _ctx(data, {"kind": "resnet", "depth": 8, "norm": "batch"})
    x, y = ctx.train_tensors()
    x, y = x[:16], y[:16]
    w = init_params(ctx.module, ctx.layout, "default", 1).double()
    st, hp, step = ctx.opt.init(w), ctx.hparams(0), ctx.step()
    g = torch.Generator().manual_seed(0)
    u, v = (torch.randn(w.shape, generator=g, dtype=torch.float64) for _ in range(2))
    _, jv = torch.func.jvp(lambda z: step(z, st, x, y, hp)[0], (w,), (v,))
    _, vjp = torch.func.vjp(lambda z: step(z, st, x, y, hp)[0], w)
    a, b = float((u @ jv).detach()), float((vjp(u)[0] @ v).detach())
    assert abs(a - b) <= 1e-9 * max(1.0, abs(a))
    assert jv.abs().max() > 0
