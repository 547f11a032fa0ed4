"""pathdep.core.dynamics: the vmapped ensemble update map equals K sequential torch.optim runs of
nn.Module copies (float64 to 1e-12; float32 only to ~1e-4, DESIGN trap), per-member batches,
the losses it returns, and the pure single step under jvp."""

import copy

import pytest
import torch
import torch.nn.functional as F

from pathdep.core.dynamics import (loss_value, make_ensemble_eval, make_ensemble_step, make_loss, make_step,
                              task_loss)
from pathdep.core.models import MLP, Layout, make_apply
from pathdep.core.optim import Optimizer

K, STEPS, B = 4, 30, 16


def _data(dtype, n=STEPS * B, d=12, c=5, seed=0, task="classification"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64).to(dtype)
    if task == "classification":
        y = torch.randint(0, c, (n,), generator=g)
    else:
        y = torch.randn(n, c, generator=g, dtype=torch.float64).to(dtype)
    return x, y


def _members(dtype, seed=0):
    torch.manual_seed(seed)
    base = MLP(12, [10, 8], 5, activation="tanh").to(dtype)
    layout = Layout.from_module(base)
    w0 = torch.cat([p.detach().reshape(-1) for p in base.parameters()])
    # distinct initial weights per member
    g = torch.Generator().manual_seed(seed + 1)
    W = torch.stack([w0 + 0.05 * k * torch.randn(w0.shape, generator=g, dtype=torch.float64).to(dtype)
                     for k in range(K)])
    return base, layout, W


def _module_at(base, layout, w):
    m = copy.deepcopy(base)
    with torch.no_grad():
        for name, t in layout.unflatten(w).items():
            m.get_parameter(name).copy_(t)
    return m


SGD_HP = [dict(lr=0.1, momentum=0.0), dict(lr=0.05, momentum=0.9), dict(lr=0.2, momentum=0.5, weight_decay=1e-3),
          dict(lr=0.01, momentum=0.99, dampening=0.1)]
ADAM_HP = [dict(lr=1e-3), dict(lr=1e-2, betas=(0.8, 0.99)), dict(lr=3e-3, betas=(0.9, 0.9), weight_decay=1e-2),
           dict(lr=5e-4, eps=1e-6)]


def _torch_opt(name, params, h):
    if name == "sgd":
        return torch.optim.SGD(params, **h)
    return torch.optim.Adam(params, **h)


def _our_hp(name, hps, dtype):
    opt = Optimizer(name)
    cols = {}
    for h in hps:
        h = dict(h)
        if "betas" in h:
            h["beta1"], h["beta2"] = h.pop("betas")
        for k in opt.hparam_names:
            cols.setdefault(k, []).append(h.get(k, opt.defaults[k]))
    return opt, {k: torch.tensor(v, dtype=dtype) for k, v in cols.items()}


def _sequential(name, hps, base, layout, W, batches, loss="cross_entropy"):
    """K independent torch.optim runs of nn.Module copies; returns final (K, P) and losses (T, K)."""
    finals, losses = [], []
    for k in range(K):
        m = _module_at(base, layout, W[k])
        o = _torch_opt(name, m.parameters(), hps[k])
        lk = []
        for x, y in batches[k]:
            o.zero_grad()
            val = loss_value(loss, m(x), y)
            val.backward()
            o.step()
            lk.append(val.detach())
        finals.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]))
        losses.append(torch.stack(lk))
    return torch.stack(finals), torch.stack(losses, 1)


def _ensemble(name, hps, base, layout, W, batches, shared, loss="cross_entropy"):
    opt, hp = _our_hp(name, hps, W.dtype)
    step = make_step(make_apply(base, layout), loss, opt)
    ens = make_ensemble_step(step, shared_batch=shared)
    state = torch.vmap(opt.init)(W)
    losses = []
    for t in range(len(batches[0])):
        if shared:
            x, y = batches[0][t]
        else:
            x = torch.stack([batches[k][t][0] for k in range(K)])
            y = torch.stack([batches[k][t][1] for k in range(K)])
        W, state, lv = ens(W, state, x, y, hp)
        losses.append(lv)
    return W, torch.stack(losses)


def _shared_batches(dtype, task="classification"):
    x, y = _data(dtype, task=task)
    one = [(x[t * B:(t + 1) * B], y[t * B:(t + 1) * B]) for t in range(STEPS)]
    return [one] * K


@pytest.mark.parametrize("name,hps", [("sgd", SGD_HP), ("adam", ADAM_HP)])
def test_ensemble_equals_sequential_torch_optim_float64(name, hps):
    base, layout, W = _members(torch.float64)
    batches = _shared_batches(torch.float64)
    ref, ref_loss = _sequential(name, hps, base, layout, W, batches)
    got, got_loss = _ensemble(name, hps, base, layout, W.clone(), batches, shared=True)
    assert (got - ref).abs().max() <= 1e-12
    assert (got_loss - ref_loss).abs().max() <= 1e-12
    # the members really moved, and differently
    assert (got - W).norm(dim=1).min() > 1e-3
    assert (got[1] - got[2]).norm() > 1e-3


def test_ensemble_regression_mse_float64():
    base, layout, W = _members(torch.float64)
    batches = _shared_batches(torch.float64, task="regression")
    ref, ref_loss = _sequential("sgd", SGD_HP, base, layout, W, batches, loss="mse")
    got, got_loss = _ensemble("sgd", SGD_HP, base, layout, W.clone(), batches, shared=True, loss="mse")
    assert (got - ref).abs().max() <= 1e-12
    assert (got_loss - ref_loss).abs().max() <= 1e-12


@pytest.mark.parametrize("name,hps", [("sgd", SGD_HP), ("adam", ADAM_HP)])
def test_per_member_batches_equal_sequential(name, hps):
    base, layout, W = _members(torch.float64)
    x, y = _data(torch.float64, n=STEPS * B * 2)
    batches = []
    for k in range(K):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(100 + k))[:STEPS * B]
        batches.append([(x[perm[t * B:(t + 1) * B]], y[perm[t * B:(t + 1) * B]]) for t in range(STEPS)])
    ref, ref_loss = _sequential(name, hps, base, layout, W, batches)
    got, got_loss = _ensemble(name, hps, base, layout, W.clone(), batches, shared=False)
    assert (got - ref).abs().max() <= 1e-12
    assert (got_loss - ref_loss).abs().max() <= 1e-12
    # and they differ from the shared-batch run (the batches matter)
    shared, _ = _ensemble(name, hps, base, layout, W.clone(), [batches[0]] * K, shared=True)
    assert (shared[1:] - got[1:]).abs().max() > 1e-6


def test_float32_agrees_only_loosely():
    """DESIGN trap: summation order makes float32 ensembles and sequential loops agree only to ~1e-4."""
    errs = {}
    for dtype in (torch.float32, torch.float64):
        base, layout, W = _members(dtype)
        batches = _shared_batches(dtype)
        ref, _ = _sequential("sgd", SGD_HP, base, layout, W, batches)
        got, _ = _ensemble("sgd", SGD_HP, base, layout, W.clone(), batches, shared=True)
        errs[dtype] = float((got.double() - ref.double()).abs().max())
    assert errs[torch.float32] <= 1e-3
    assert errs[torch.float64] <= 1e-12
    assert errs[torch.float64] <= 1e-6 * max(errs[torch.float32], 1e-7)


def test_step_is_pure_and_loss_before_update():
    base, layout, W = _members(torch.float64)
    opt, hp = _our_hp("sgd", SGD_HP[:1], torch.float64)
    apply = make_apply(base, layout)
    step = make_step(apply, "cross_entropy", opt)
    x, y = _data(torch.float64, n=B)
    w = W[1].clone()
    state = opt.init(w)
    hp1 = {k: v[0] for k, v in hp.items()}
    w_new, st_new, lv = step(w, state, x, y, hp1)
    assert torch.equal(w, W[1])  # input not modified
    assert torch.equal(lv, F.cross_entropy(apply(w, x), y))
    # plain SGD: w - lr * grad
    g = torch.func.grad(make_loss(apply, "cross_entropy"))(w, x, y)
    torch.testing.assert_close(w_new, w - 0.1 * g, rtol=0, atol=1e-15)
    assert int(st_new[0]) == 1
    # the same call twice gives the same result (no hidden state)
    w2, _, _ = step(w, state, x, y, hp1)
    assert torch.equal(w2, w_new)


def test_jvp_of_sgd_step_on_quadratic():
    """Tangent map of one SGD step on L = 0.5 * mean |A w - b|^2 is (I - lr H) v (Lyapunov use)."""
    torch.manual_seed(0)
    P, n = 6, 9
    A = torch.randn(n, P, dtype=torch.float64)
    bvec = torch.randn(n, 1, dtype=torch.float64)

    def apply(w, x):  # x is the design matrix: outputs (n, 1)
        return (x @ w).unsqueeze(-1)

    opt = Optimizer("sgd")
    step = make_step(apply, "mse", opt)
    w = torch.randn(P, dtype=torch.float64)
    v = torch.randn(P, dtype=torch.float64)
    state = opt.init(w)
    hp = {"lr": torch.tensor(0.05, dtype=torch.float64)}
    _, tangent = torch.func.jvp(lambda ww: step(ww, state, A, bvec, hp)[0], (w,), (v,))
    H = A.T @ A / n
    torch.testing.assert_close(tangent, v - 0.05 * H @ v, rtol=0, atol=1e-14)


def test_ensemble_eval_and_losses():
    base, layout, W = _members(torch.float64)
    apply = make_apply(base, layout)
    x, y = _data(torch.float64, n=20)
    ev = make_ensemble_eval(apply, "cross_entropy")
    out, lv = ev(W, x, y)
    assert out.shape == (K, 20, 5)
    for k in range(K):
        torch.testing.assert_close(out[k], apply(W[k], x), rtol=0, atol=1e-14)
        torch.testing.assert_close(lv[k], F.cross_entropy(apply(W[k], x), y), rtol=0, atol=1e-14)
    xr, yr = _data(torch.float64, n=20, task="regression")
    _, lv = make_ensemble_eval(apply, "mse")(W, xr, yr)
    for k in range(K):
        torch.testing.assert_close(lv[k], loss_value("mse", apply(W[k], xr), yr), rtol=0, atol=1e-14)
    # 0.5 * mean over samples of the squared error summed over outputs, by hand
    o = apply(W[0], xr)
    assert torch.allclose(loss_value("mse", o, yr), 0.5 * ((o - yr) ** 2).sum() / 20)
    assert task_loss("classification") == "cross_entropy" and task_loss("regression") == "mse"
    with pytest.raises(ValueError, match="loss"):
        loss_value("hinge", o, yr)


def test_ensemble_optimizer_state_is_per_member_init():
    from pathdep.core.dynamics import ensemble_optimizer_state

    _, _, W = _members(torch.float64)
    for name in ("sgd", "adam"):
        opt = Optimizer(name)
        ens = ensemble_optimizer_state(opt, W)
        for k in range(K):
            for a, b in zip(ens, opt.init(W[k])):
                assert torch.equal(a[k], b)
