"""pathdep.core.tangents (float64): the hand-written Hessian-vector products equal the
forward-over-reverse jvp of the gradient, and the tangent push equals the vmapped jvp of the
hand-written step, to 1e-12."""

import pytest
import torch

from pathdep.core.fast import make_fast_step
from pathdep.core.models import MLP, Layout, make_apply
from pathdep.core.optim import Optimizer
from pathdep.core.tangents import make_fast_hvp, make_tangent_push


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("hidden", [[], [7], [6, 5]])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_hand_written_hvp_equals_forward_over_reverse(act, hidden, loss):
    """make_fast_hvp (Pearlmutter's R-operator written out) against jvp of grad, float64."""
    from torch.func import grad, jvp, vmap

    torch.manual_seed(len(hidden) + len(act))
    for bias in (True, False):
        m = MLP(12, hidden, 4, activation=act, bias=bias).double()
        lay = Layout.from_module(m)
        apply = make_apply(m, lay)
        w = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
        x = torch.randn(9, 12, dtype=torch.float64)
        y = (torch.randint(0, 4, (9,)) if loss == "cross_entropy"
             else torch.randn(9, 4, dtype=torch.float64))

        def L(v):
            out = apply(v, x)
            if loss == "cross_entropy":
                return torch.nn.functional.cross_entropy(out, y)
            return 0.5 * ((out - y) ** 2).sum(-1).mean()

        V = torch.randn(3, w.numel(), dtype=torch.float64)
        HV_ref = vmap(lambda v: jvp(grad(L), (w,), (v,))[1])(V)
        g, HV, val = make_fast_hvp(m, lay, loss)(w, V, x, y)
        assert HV_ref.abs().max() > 1e-3  # a real Hessian, not zero
        torch.testing.assert_close(g, grad(L)(w), rtol=0, atol=1e-12)
        torch.testing.assert_close(HV, HV_ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(val, L(w), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,hps", [("sgd", {"lr": 0.1}),
                                      ("sgd", {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}),
                                      ("adam", {"lr": 1e-3})])
def test_tangent_push_equals_jvp_of_the_fast_step(name, hps):
    """make_tangent_push on the state (w, buffers) equals the vmapped jvp of make_fast_step
    (what Benettin used before) to 1e-12, float64, after 3 steps (non-zero buffers)."""
    from torch.func import jvp, vmap

    torch.manual_seed(0)
    m = MLP(20, [8], 5, activation="tanh").double()
    lay = Layout.from_module(m)
    P = lay.n_params
    w = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
    x, y = torch.randn(16, 20, dtype=torch.float64), torch.randint(0, 5, (16,))
    opt = Optimizer(name).specialized([hps])
    hp = {k: torch.tensor(v, dtype=torch.float64) for k, v in hps.items()}
    fs = make_fast_step(m, lay, "cross_entropy", opt)
    st = opt.init(w)
    for _ in range(3):
        w, st, _ = fs(w, st, x, y, hp)
    # plain SGD's momentum buffer never changes: held constant (no tangent), as the stage does
    live = [i for i in range(len(st) - 1) if not (name == "sgd" and "momentum" not in hps)]

    def F(z):
        bufs = list(st[1:])
        for j, i in enumerate(live):
            bufs[i] = z[P * (j + 1):P * (j + 2)]
        w2, s2, _ = fs(z[:P], (st[0], *bufs), x, y, hp)
        return torch.cat([w2, *[s2[1 + i] for i in live]])

    z = torch.cat([w, *[st[1 + i] for i in live]])
    Q = torch.randn(z.numel(), 4, dtype=torch.float64)
    Y_ref, JQ_ref = vmap(lambda v: jvp(F, (z,), (v,)), in_dims=1, out_dims=(0, 1))(Q)
    Vs = [None] * (len(st) - 1)
    for j, i in enumerate(live):
        Vs[i] = Q[P * (j + 1):P * (j + 2)].t().contiguous()
    w2, s2, Vw, Vb = make_tangent_push(m, lay, "cross_entropy", opt)(
        w, st, x, y, hp, Q[:P].t().contiguous(), Vs)
    torch.testing.assert_close(torch.cat([w2, *[s2[1 + i] for i in live]]), Y_ref[0], rtol=0, atol=1e-12)
    JQ = torch.cat([Vw, *[Vb[i] for i in live]], dim=1).t()
    torch.testing.assert_close(JQ, JQ_ref, rtol=0, atol=1e-12)
    assert int(s2[0]) == int(st[0]) + 1
