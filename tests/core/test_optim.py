"""pathdep.core.optim: equivalence with torch.optim (float64, 1e-12), vmap, jvp, config errors."""

import inspect

import pytest
import torch
from torch.func import grad, jvp

from pathdep.core.models import MLP, Layout, make_apply
from pathdep.core.optim import OPTIMIZERS, Optimizer, optimizer_from_config

DT = torch.float64
N_STEPS = 50
TOL = 1e-12


def _problem(seed=0, n=32, d_in=6, hidden=(8,), d_out=3):
    torch.manual_seed(seed)
    model = MLP(d_in, list(hidden), d_out, activation="tanh").to(DT)
    x = torch.randn(N_STEPS, n, d_in, dtype=DT)
    y = torch.randint(0, d_out, (N_STEPS, n))
    layout = Layout.from_module(model)
    return model, layout, x, y


def _loss_fn(model, layout):
    apply = make_apply(model, layout)

    def loss(w, x, y):
        return torch.nn.functional.cross_entropy(apply(w, x), y)

    return loss


def _torch_opt(name, params, hp, nesterov=False, centered=False):
    if name == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], dampening=hp["dampening"],
                               weight_decay=hp["weight_decay"], nesterov=nesterov, foreach=False)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                   weight_decay=hp["weight_decay"], foreach=False)
    return torch.optim.RMSprop(params, lr=hp["lr"], alpha=hp["alpha"], eps=hp["eps"],
                               weight_decay=hp["weight_decay"], momentum=hp["momentum"],
                               centered=centered, foreach=False)


def _torch_trajectory(model, x, y, name, hp, **flags):
    params = [p for p in model.parameters()]
    opt = _torch_opt(name, params, hp, **flags)
    traj = []
    for t in range(N_STEPS):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[t]), y[t]).backward()
        opt.step()
        traj.append(torch.cat([p.detach().reshape(-1) for p in params]).clone())
    return traj


CASES = [
    ("sgd", {"lr": 0.1}, {}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}, {}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 1e-2}, {}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-3}, {"nesterov": True}),
    ("sgd", {"lr": 0.1, "dampening": 0.5, "weight_decay": 1e-3}, {}),
    ("adam", {"lr": 1e-2}, {}),
    ("adam", {"lr": 1e-2, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 1e-2}, {}),
    ("adamw", {"lr": 1e-2}, {}),
    ("adamw", {"lr": 1e-2, "beta1": 0.5, "weight_decay": 0.1}, {}),
    ("rmsprop", {"lr": 1e-3}, {}),
    ("rmsprop", {"lr": 1e-3, "alpha": 0.9, "momentum": 0.9, "weight_decay": 1e-2}, {}),
    ("rmsprop", {"lr": 1e-3, "eps": 1e-6}, {"centered": True}),
    ("rmsprop", {"lr": 1e-3, "momentum": 0.5, "weight_decay": 1e-3}, {"centered": True}),
]


@pytest.mark.parametrize("name,hp_over,flags", CASES)
def test_matches_torch_optim(name, hp_over, flags):
    model, layout, x, y = _problem()
    w = layout.flatten(dict(model.named_parameters())).detach().clone()
    opt = Optimizer(name, **flags)
    hp = {**opt.defaults, **hp_over}
    ref = _torch_trajectory(model, x, y, name, hp, **flags)

    g_fn = grad(_loss_fn(model, layout))
    hp_t = {k: torch.tensor(v, dtype=DT) for k, v in hp.items()}
    state = opt.init(w)
    assert [s.shape for s in state] == [torch.Size([])] + [w.shape] * (len(opt.state_names) - 1)
    moved = 0.0
    for t in range(N_STEPS):
        w_prev = w
        w, state = opt.update(w, g_fn(w, x[t], y[t]), state, hp_t)
        assert (w - ref[t]).abs().max().item() <= TOL, f"step {t}"
        moved = max(moved, (w - w_prev).abs().max().item())
    assert moved > 1e-4  # the test is not vacuous
    assert state[0].item() == N_STEPS and state[0].dtype == DT


def test_update_is_pure_and_accepts_floats():
    opt = Optimizer("rmsprop", centered=True)
    w = torch.randn(7, dtype=DT)
    g = torch.randn(7, dtype=DT)
    state = tuple(s + 0.5 for s in opt.init(w))
    copies = [w.clone(), g.clone()] + [s.clone() for s in state]
    w1, s1 = opt.update(w, g, state, {"lr": 0.1, "momentum": 0.9})  # floats, defaults for the rest
    for a, b in zip([w, g, *state], copies):
        assert torch.equal(a, b)
    w2, s2 = opt.update(w, g, state, {k: torch.tensor(v, dtype=DT) for k, v in
                                      {**opt.defaults, "lr": 0.1, "momentum": 0.9}.items()})
    assert torch.equal(w1, w2)
    with pytest.raises(ValueError, match="optimizer.betas"):
        opt.update(w, g, state, {"betas": 0.1})


def test_vmapped_ensemble_equals_sequential_runs():
    K = 4
    lrs = [0.05, 0.1, 0.02, 0.08]
    moms = [0.0, 0.9, 0.5, 0.99]
    model, layout, x, y = _problem(seed=1)
    w0 = layout.flatten(dict(model.named_parameters())).detach().clone()
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = Optimizer("sgd")
    refs = []
    for k in range(K):
        model.load_state_dict(init_state)
        hp = {**opt.defaults, "lr": lrs[k], "momentum": moms[k], "weight_decay": 1e-3}
        refs.append(_torch_trajectory(model, x, y, "sgd", hp))

    g_fn = torch.vmap(grad(_loss_fn(model, layout)), in_dims=(0, None, None))
    hp = {"lr": torch.tensor(lrs, dtype=DT), "momentum": torch.tensor(moms, dtype=DT),
          "dampening": torch.zeros(K, dtype=DT), "weight_decay": torch.full((K,), 1e-3, dtype=DT)}
    W = w0.expand(K, -1).clone()
    state = torch.vmap(opt.init)(W)
    step = torch.vmap(opt.update)
    for t in range(N_STEPS):
        W, state = step(W, g_fn(W, x[t], y[t]), state, hp)
        for k in range(K):
            assert (W[k] - refs[k][t]).abs().max().item() <= TOL, f"member {k} step {t}"


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_vmapped_adaptive_ensemble(name):
    # per-member hyperparameters for the adaptive optimizers, against unbatched updates
    K, P = 3, 11
    torch.manual_seed(2)
    opt = Optimizer(name)
    W = torch.randn(K, P, dtype=DT)
    hp = {k: torch.tensor([v, v * 0.5, v * 0.9], dtype=DT) for k, v in opt.defaults.items()}
    hp["lr"] = torch.tensor([1e-2, 2e-2, 5e-3], dtype=DT)
    S = torch.vmap(opt.init)(W)
    Ws, Ss = [W[k] for k in range(K)], [opt.init(W[k]) for k in range(K)]
    for _ in range(5):
        G = torch.randn(K, P, dtype=DT)
        W, S = torch.vmap(opt.update)(W, G, S, hp)
        for k in range(K):
            Ws[k], Ss[k] = opt.update(Ws[k], G[k], Ss[k], {n: v[k] for n, v in hp.items()})
            assert (W[k] - Ws[k]).abs().max().item() <= TOL


def test_jvp_of_sgd_on_quadratic():
    torch.manual_seed(3)
    P, lr = 6, 0.1
    A = torch.randn(P, P, dtype=DT)
    H = A @ A.T + torch.eye(P, dtype=DT)
    b = torch.randn(P, dtype=DT)
    opt = Optimizer("sgd")
    hp = {"lr": torch.tensor(lr, dtype=DT)}

    def step(w):
        g = grad(lambda u: 0.5 * u @ H @ u - b @ u)(w)
        return opt.update(w, g, opt.init(w), hp)[0]

    w = torch.randn(P, dtype=DT)
    v = torch.randn(P, dtype=DT)
    out, tangent = jvp(step, (w,), (v,))
    expected = v - lr * (H @ v)
    assert torch.allclose(tangent, expected, rtol=0, atol=1e-14)
    assert torch.allclose(out, w - lr * (H @ w - b), rtol=0, atol=1e-14)


def test_jvp_through_state_is_finite_with_dead_coordinates():
    # Adam/RMSprop second moments are exactly 0 where the gradient is always 0 (dead ReLU):
    # the tangent map must stay finite there.
    for name in ("adam", "rmsprop"):
        opt = Optimizer(name, centered=(name == "rmsprop"))
        w = torch.tensor([1.0, 2.0, 3.0], dtype=DT)
        mask = torch.tensor([1.0, 0.0, 1.0], dtype=DT)

        def step(w, state):
            return opt.update(w, mask * w, state, {"lr": 0.01})

        state = opt.init(w)
        tw = torch.ones(3, dtype=DT)
        ts = tuple(torch.zeros_like(s) for s in state)
        (w1, s1), (tw1, ts1) = jvp(step, (w, state), (tw, ts))
        assert torch.isfinite(tw1).all() and all(torch.isfinite(t).all() for t in ts1)
        assert tw1[1].item() == 1.0  # dead coordinate: identity


def test_defaults_match_torch():
    sig = {n: inspect.signature(c.__init__).parameters for n, c in
           [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
            ("rmsprop", torch.optim.RMSprop)]}
    for name in OPTIMIZERS:
        d = Optimizer(name).defaults
        p = sig[name]
        for k, v in d.items():
            if k in ("beta1", "beta2"):
                assert v == p["betas"].default[0 if k == "beta1" else 1]
            else:
                assert v == p[k].default, (name, k)


def test_state_and_hparam_names():
    assert Optimizer("sgd").state_names == ("step", "momentum_buffer")
    assert Optimizer("adam").state_names == ("step", "exp_avg", "exp_avg_sq")
    assert Optimizer("rmsprop").state_names == ("step", "square_avg", "momentum_buffer", "grad_avg")
    assert Optimizer("adamw").hparam_names == ("lr", "beta1", "beta2", "eps", "weight_decay")
    assert Optimizer("rmsprop").hparam_names == ("lr", "alpha", "eps", "weight_decay", "momentum")
    assert Optimizer("adamw").defaults["weight_decay"] == 0.01


def test_from_config():
    opt, hp = optimizer_from_config({"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True,
                                     "weight_decay": 0.0})
    assert opt == Optimizer("sgd", nesterov=True)
    assert hp == {"lr": 0.01, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0}
    opt, hp = optimizer_from_config({"name": "adam", "betas": [0.8, 0.95]})
    assert opt.name == "adam" and hp["beta1"] == 0.8 and hp["beta2"] == 0.95 and hp["lr"] == 1e-3
    opt, hp = optimizer_from_config({"name": "rmsprop", "centered": True})
    assert opt.centered and hp == Optimizer("rmsprop").defaults
    assert optimizer_from_config({"name": "adamw"})[1]["weight_decay"] == 0.01


def test_errors():
    with pytest.raises(ValueError, match=r"optimizer.name: expected one of \[.*\], got 'lbfgs'"):
        Optimizer("lbfgs")
    with pytest.raises(ValueError, match=r"optimizer.name: expected one of"):
        optimizer_from_config({"name": "adagrad"})
    with pytest.raises(ValueError, match=r"optimizer.betas"):
        optimizer_from_config({"name": "sgd", "betas": [0.9, 0.99]})
    with pytest.raises(ValueError, match=r"optimizer.learning_rate"):
        optimizer_from_config({"name": "adam", "learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"optimizer.momentum: expected a number"):
        optimizer_from_config({"name": "sgd", "momentum": "high"})
    with pytest.raises(ValueError, match=r"optimizer.lr: expected >= 0"):
        optimizer_from_config({"name": "sgd", "lr": -1})
    with pytest.raises(ValueError, match=r"optimizer.beta2"):
        optimizer_from_config({"name": "adam", "betas": [0.9, 1.0]})
    with pytest.raises(ValueError, match=r"optimizer.nesterov"):
        optimizer_from_config({"name": "sgd", "nesterov": True})
    with pytest.raises(ValueError, match=r"optimizer.nesterov"):
        Optimizer("adam", nesterov=True)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_dtype_preserved(name):
    opt = Optimizer(name)
    w = torch.randn(5)
    state = opt.init(w)
    assert all(s.dtype == torch.float32 for s in state)
    for _ in range(3):
        w, state = opt.update(w, torch.randn(5), state, {k: torch.tensor(v, dtype=DT)
                                                          for k, v in opt.defaults.items()})
    assert w.dtype == torch.float32 and all(s.dtype == torch.float32 for s in state)
    assert state[0].item() == 3


@pytest.mark.parametrize("name,hp", [
    ("sgd", {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0}),
    ("adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}),
    ("adamw", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0}),
])
def test_specialized_zero_hparams_give_identical_updates(name, hp):
    """Skipping exactly-zero weight decay / momentum changes no bit of the trajectory."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(50, generator=gen, dtype=torch.float32)
    general = Optimizer(name)
    fast = general.specialized([hp])
    assert fast.zero  # something was specialised
    sa, sb = general.init(w), fast.init(w)
    wa, wb = w, w
    for _ in range(20):
        g = torch.randn(50, generator=gen, dtype=torch.float32)
        wa, sa = general.update(wa, g, sa, hp)
        wb, sb = fast.update(wb, g, sb, hp)
        assert torch.equal(wa, wb)
