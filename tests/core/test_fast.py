"""pathdep.core.fast: the hand-written shared-batch ensemble step equals the generic vmapped
reference (make_ensemble_step(make_step(...))) in float64 to 1e-12 over 50 steps, for SGD,
SGD + momentum and Adam, MLPs (depth, activation, bias, cross entropy / MSE) and LeNet-5;
float32 agrees only to rounding; the dispatcher picks the fast path only when it applies."""

import pytest
import torch

from pathdep.core.dynamics import make_ensemble_step, make_step
from pathdep.core.fast import ensemble_step_for, fast_gradients, make_fast_ensemble_step, supports
from pathdep.core.models import MLP, Layout, LeNet5, make_apply
from pathdep.core.optim import Optimizer

K, STEPS, B = 3, 50, 8

OPTS = {
    "sgd": ("sgd", [dict(lr=0.1, momentum=0.0), dict(lr=0.05, momentum=0.0), dict(lr=0.2, momentum=0.0)]),
    "momentum": ("sgd", [dict(lr=0.05, momentum=0.9), dict(lr=0.02, momentum=0.5, weight_decay=1e-3),
                         dict(lr=0.05, momentum=0.9, dampening=0.1)]),
    "adam": ("adam", [dict(lr=1e-3), dict(lr=3e-3, beta1=0.8, beta2=0.99), dict(lr=1e-3, weight_decay=1e-2)]),
}


def _setup(module, dtype, opt_key, seed=0):
    torch.manual_seed(seed)
    module = module.to(dtype)
    layout = Layout.from_module(module)
    w0 = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    g = torch.Generator().manual_seed(seed + 1)
    W = torch.stack([w0 + 0.05 * k * torch.randn(w0.shape, generator=g, dtype=torch.float64).to(dtype)
                     for k in range(K)])
    name, hps = OPTS[opt_key]
    base = Optimizer(name)
    full = [{**base.defaults, **h} for h in hps]
    opt = base.specialized(full)
    hp = {n: torch.tensor([h[n] for h in full], dtype=dtype) for n in full[0]}
    return module, layout, W, opt, hp


def _batches(in_shape, out, task, dtype, seed=2):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(STEPS, B, *in_shape, generator=g, dtype=torch.float64).to(dtype)
    if task == "cross_entropy":
        ys = torch.randint(0, out, (STEPS, B), generator=g)
    else:
        ys = torch.randn(STEPS, B, out, generator=g, dtype=torch.float64).to(dtype)
    return xs, ys


def _run(step, W, opt, hp, xs, ys):
    st = torch.vmap(opt.init)(W)
    losses = []
    for x, y in zip(xs, ys):
        W, st, lv = step(W, st, x, y, hp)
        losses.append(lv)
    return W, st, torch.stack(losses)


def _compare(module, in_shape, out, loss, opt_key, dtype):
    module, layout, W, opt, hp = _setup(module, dtype, opt_key)
    xs, ys = _batches(in_shape, out, loss, dtype)
    ref = make_ensemble_step(make_step(make_apply(module, layout), loss, opt), shared_batch=True)
    fast = make_fast_ensemble_step(module, layout, loss, opt)
    Wr, sr, lr_ = _run(ref, W.clone(), opt, hp, xs, ys)
    Wf, sf, lf = _run(fast, W.clone(), opt, hp, xs, ys)
    moved = float((Wr - W).abs().max())
    pairs = [(Wr, Wf), (lr_, lf), *zip(sr, sf)]
    # largest difference relative to the quantity's scale (max(|ref|, 1))
    err = max(float((a - b).abs().max()) / max(float(a.abs().max()), 1.0) for a, b in pairs)
    return err, moved


MLPS = [
    ("relu-1", lambda: MLP(12, [10], 4, "relu"), (12,)),
    ("tanh-2", lambda: MLP(12, [10, 8], 4, "tanh"), (12,)),
    ("gelu-3-nobias", lambda: MLP(12, [9, 7, 6], 4, "gelu", bias=False), (12,)),
    ("sigmoid-2", lambda: MLP(12, [10, 8], 4, "sigmoid"), (12,)),
    ("identity-1-img", lambda: MLP(12, [10], 4, "identity"), (3, 2, 2)),
    ("linear", lambda: MLP(12, [], 4, "relu"), (12,)),
]


@pytest.mark.parametrize("opt_key", list(OPTS))
@pytest.mark.parametrize("name,make,in_shape", MLPS, ids=[m[0] for m in MLPS])
def test_mlp_fast_equals_vmapped_float64(name, make, in_shape, opt_key):
    for loss in ("cross_entropy", "mse"):
        err, moved = _compare(make(), in_shape, 4, loss, opt_key, torch.float64)
        assert moved > 1e-3, (name, loss)  # the weights really changed
        assert err <= 1e-12, (name, loss, err)


@pytest.mark.parametrize("opt_key", list(OPTS))
@pytest.mark.parametrize("shape,bias,act", [((1, 28, 28), True, "relu"), ((3, 32, 32), False, "tanh")])
def test_lenet_fast_equals_vmapped_float64(shape, bias, act, opt_key):
    err, moved = _compare(LeNet5(shape, 10, act, bias), shape, 10, "cross_entropy", opt_key, torch.float64)
    assert moved > 1e-4
    assert err <= 1e-12, err


def test_float32_agrees_to_rounding():
    """Different summation order: float32 fast and generic agree to rounding (1e-5..6e-5 relative
    after 50 steps on this large-lr problem), not bitwise; float64 to 1e-12."""
    torch.manual_seed(0)
    err32, _ = _compare(MLP(784, [100], 10, "relu"), (784,), 10, "cross_entropy", "momentum", torch.float32)
    torch.manual_seed(0)
    err64, _ = _compare(MLP(784, [100], 10, "relu"), (784,), 10, "cross_entropy", "momentum", torch.float64)
    assert err32 <= 1e-3  # as tests/core/test_dynamics.py (DESIGN trap: ~1e-4)
    assert err64 <= 1e-12
    assert err64 < 1e-6 * max(err32, 1e-7)


def test_gradients_match_autograd_one_member():
    torch.manual_seed(3)
    m = MLP(6, [5, 4], 3, "tanh").double()
    layout = Layout.from_module(m)
    W = torch.randn(2, layout.n_params, dtype=torch.float64)
    x = torch.randn(7, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (7,))
    G, lv = fast_gradients(m, layout, "cross_entropy")(W, x, y)
    apply = make_apply(m, layout)
    for k in range(2):
        w = W[k].clone().requires_grad_(True)
        L = torch.nn.functional.cross_entropy(apply(w, x), y)
        (g,) = torch.autograd.grad(L, w)
        assert torch.allclose(g, G[k], atol=1e-14, rtol=0)
        assert abs(float(L.detach()) - float(lv[k])) < 1e-14


def test_dispatch_and_errors():
    m = MLP(4, [3], 2)
    layout = Layout.from_module(m)
    apply = make_apply(m, layout)
    opt = Optimizer("sgd")
    W = torch.randn(2, layout.n_params)
    st = torch.vmap(opt.init)(W)
    hp = {"lr": torch.full((2,), 0.1)}
    x, y = torch.randn(5, 4), torch.randint(0, 2, (5,))
    fast = ensemble_step_for(m, layout, apply, opt, "cross_entropy", shared_batch=True, fast=True)
    gen = ensemble_step_for(m, layout, apply, opt, "cross_entropy", shared_batch=True, fast=False)
    per = ensemble_step_for(m, layout, apply, opt, "cross_entropy", shared_batch=False, fast=True)
    a, b = fast(W, st, x, y, hp), gen(W, st, x, y, hp)
    c = per(W, st, x.expand(2, 5, 4), y.expand(2, 5), hp)
    assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[0], c[0], atol=1e-6)
    # the per-member-batch path is the generic one: it needs (K, B, ...) batches
    with pytest.raises(Exception):
        per(W, st, x, y, hp)
    assert supports(m) and not supports(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="training.fast"):
        make_fast_ensemble_step(torch.nn.Sequential(), layout, "mse", opt)
    with pytest.raises(ValueError, match="loss"):
        make_fast_ensemble_step(m, layout, "hinge", opt)


def test_fast_step_jvp_equals_generic_jvp():
    """Tangents (Hessian-vector products) pushed through the fast single step equal the
    generic step's jvp (float64), with momentum so that the buffers enter too."""
    from torch.func import jvp, vmap

    from pathdep.core.fast import make_fast_step

    torch.manual_seed(4)
    m = MLP(10, [7, 6], 3, "tanh").double()
    layout = Layout.from_module(m)
    opt = Optimizer("sgd")
    hp = {"lr": torch.tensor(0.1, dtype=torch.float64), "momentum": torch.tensor(0.9, dtype=torch.float64)}
    w = torch.randn(layout.n_params, dtype=torch.float64) * 0.3
    st = (torch.tensor(3.0, dtype=torch.float64), torch.randn(layout.n_params, dtype=torch.float64))
    x, y = torch.randn(9, 10, dtype=torch.float64), torch.randint(0, 3, (9,))
    gen = make_step(make_apply(m, layout), "cross_entropy", opt)
    fast = make_fast_step(m, layout, "cross_entropy", opt)
    V = torch.randn(4, 2, layout.n_params, dtype=torch.float64)

    def tangent(step):
        def f(a, b):
            w2, s2, _ = step(a, (st[0], b), x, y, hp)
            return torch.cat([w2, s2[1]])
        return vmap(lambda v: jvp(f, (w, st[1]), (v[0], v[1]))[1])(V)

    a, b = tangent(gen), tangent(fast)
    assert (a - torch.cat([V[:, 0], V[:, 1]], 1)).abs().max() > 1e-3  # H v is not zero
    assert torch.allclose(a, b, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="MLP"):
        make_fast_step(LeNet5((1, 28, 28), 10), Layout.from_module(LeNet5((1, 28, 28), 10)), "mse", opt)


def test_ntk_parameterisation_falls_back_to_the_generic_step():
    """The hand-written backward is the standard parameterisation's: an NTK-parameterised MLP
    is not 'supported', and ensemble_step_for then returns the generic step, which agrees with
    K independent generic steps (float64)."""
    torch.manual_seed(0)
    m = MLP(12, [8], 3, parameterization="ntk").double()
    lay = Layout.from_module(m)
    assert not supports(m)
    opt = Optimizer("sgd")
    step = ensemble_step_for(m, lay, make_apply(m, lay), opt, "cross_entropy", shared_batch=True, fast=True)
    W = torch.randn(3, lay.n_params, dtype=torch.float64)
    x, y = torch.randn(5, 12, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])
    states = tuple(torch.stack([s] * 3) if torch.is_tensor(s) else s for s in opt.init(W[0]))
    hp = {"lr": torch.full((3,), 0.1, dtype=torch.float64)}
    W2, _, _ = step(W, states, x, y, hp)
    one = make_step(make_apply(m, lay), "cross_entropy", opt)
    for k in range(3):
        w2, _, _ = one(W[k], opt.init(W[k]), x, y, {"lr": torch.tensor(0.1, dtype=torch.float64)})
        torch.testing.assert_close(W2[k], w2, rtol=0, atol=1e-12)
