"""Analysis families on ResNets (issue 19 item 5): Lyapunov (generic jvp tangents), the
empirical NTK and the Koopman window heat map, with known answers in float64.

* Lyapunov: on a tiny residual conv net (with and without BatchNorm in train mode) Benettin
  with k = D jvp tangents equals the dense-Jacobian QR (``full_spectrum``), the exponents sum
  to the mean log|det J| of the steps, and they come out ordered; on a ResNet-8 (k = 8) the
  jvp tangents equal central differences (tanh: no ReLU kinks to cross), for norm none and
  norm batch, and the weights-only map of a BN ResNet (train mode, no running statistics)
  equals the weights of the step that carries the running statistics (they never feed back);
  the Lyapunov stage's map of a BN run (``RunContext.apply``) is that weights-only forward.
* NTK: the empirical NTK of a ResNet-8 (norm none, and norm batch in eval mode with the
  member's own statistics) equals a dense per-sample-Jacobian ``J J^T`` of the torch.nn module;
  ``kernel_change`` with buffers is the eval-mode kernel.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from lyapunov_maps import check_full_spectrum
from pathdep.analysis.lyapunov_benettin import benettin
from pathdep.analysis.ntk import empirical_ntk
from pathdep.analysis.ntk_dynamics import kernel_change
from pathdep.core.dynamics import make_step
from pathdep.core.init import init_params
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import Optimizer
from pathdep.core.resnet import buffer_layout, make_apply_with_buffers, make_step_with_buffers

DT = torch.float64


def _hp(lr: float, momentum: float = 0.0) -> dict:
    return {k: torch.tensor(v, dtype=DT) for k, v in (("lr", lr), ("momentum", momentum), ("dampening", 0.0),
                                                      ("weight_decay", 0.0))}


class _TinyRes(nn.Module):
    """A residual conv block on 4x4 images (D = 67 parameters): small enough for dense Jacobians."""

    def __init__(self, bn: bool):
        super().__init__()
        self.c0 = nn.Conv2d(1, 2, 3, padding=1, bias=not bn)
        self.c1 = nn.Conv2d(2, 2, 3, padding=1, bias=not bn)
        self.bn = nn.BatchNorm2d(2) if bn else nn.Identity()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        h = torch.tanh(self.c0(x.reshape(-1, 1, 4, 4)))
        h = torch.tanh(self.bn(self.c1(h)) + h)
        return self.fc(h.mean((-2, -1)))


def _weights_only_module(module: nn.Module) -> nn.Module:
    """A train-mode copy of ``module`` whose BatchNorms use the batch's statistics and keep no
    running ones (``module`` is not modified)."""
    module = copy.deepcopy(module).train()
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
    return module


def _apply(module: nn.Module):
    """The weights-only train-mode apply (identity for models without BN)."""
    return make_apply(_weights_only_module(module), Layout.from_module(module))


def test_the_stage_map_of_a_bn_run_is_the_weights_only_forward(tmp_path):
    """``RunContext.apply`` of a BN ResNet (what the Lyapunov stage differentiates) equals the
    weights-only train-mode forward, values and jvp tangents, bit for bit."""
    from torch.func import jvp

    from helpers import make_dataset, tiny_run
    from pathdep.core.context import RunContext

    run = tiny_run({"model": {"kind": "resnet", "depth": 8, "norm": "batch", "activation": "tanh"},
                    "init": {"scheme": "default"}, "training": {"max_steps": 5, "batch_size": 16, "dtype": "float64"}})
    ctx = RunContext.build(run, make_dataset(tmp_path), "cpu", "float64")
    ref = make_apply(_weights_only_module(ctx.module), ctx.layout)
    g = torch.Generator().manual_seed(0)
    w, v = (torch.randn(ctx.layout.n_params, generator=g, dtype=DT) * s for s in (0.1, 1.0))
    x = torch.randn(16, 64, generator=g, dtype=DT)
    o1, t1 = jvp(lambda u: ctx.apply(u, x), (w,), (v,))
    o2, t2 = jvp(lambda u: ref(u, x), (w,), (v,))
    assert torch.equal(o1, o2) and torch.equal(t1, t2) and t1.abs().max() > 0


def _map(module, w, lr=0.5, n_batches=5, batch=6, shape=(1, 4, 4), classes=3):
    opt = Optimizer("sgd")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n_batches, batch, *shape, generator=g, dtype=DT)
    Y = torch.randint(0, classes, (n_batches, batch), generator=g)
    step = make_step(_apply(module), "cross_entropy", opt)
    st, hp = opt.init(w), _hp(lr)
    return (lambda v, t: step(v, st, X[t % n_batches], Y[t % n_batches], hp)[0]), (X, Y, st, hp, opt)


@pytest.mark.parametrize("bn", [False, True])
def test_lyapunov_jvp_spectrum_equals_dense_jacobian_qr(bn):
    torch.manual_seed(1)
    m = _TinyRes(bn).double()
    assert (buffer_layout(m).n_params > 0) == bn
    w = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
    F, _ = _map(m, w)
    D = w.numel()
    ex = check_full_spectrum(F, w, 60, 20, sum_tol=1e-10)   # = dense QR; sum = mean log|det J| (Liouville)
    rank = np.corrcoef(np.arange(D), np.argsort(np.argsort(-ex)))[0, 1]
    assert rank > 0.9 and ex[-1] == ex.min()       # ordered up to near-degenerate neighbours (0.94, 0.99)
    assert ex[-1] < ex[0] - 0.1                    # a spectrum, not a constant


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_lyapunov_k8_resnet8_jvp_equals_central_differences(norm):
    m = build_model({"kind": "resnet", "depth": 8, "norm": norm, "activation": "tanh"}, (1, 8, 8), 5).double()
    layout = Layout.from_module(m)
    w = init_params(m, layout, "default", 0).double()
    F, _ = _map(m, w, lr=0.1, n_batches=3, batch=8, shape=(1, 8, 8), classes=5)
    h = 1e-6

    def fd_push(x, Q, t):
        return F(x, t), torch.stack([(F(x + h * q, t) - F(x - h * q, t)) / (2 * h) for q in Q.T], 1)

    steps = 6 if norm == "none" else 3
    a = benettin(F, w, steps, 8, seed=1)
    b = benettin(F, w, steps, 8, seed=1, push=fd_push)
    assert a.exponents.shape == (8,) and torch.isfinite(a.exponents).all()
    assert (a.exponents - b.exponents).abs().max() < 1e-8
    assert a.exponents.abs().max() > 1e-6          # the map moves the tangents


def test_bn_weights_only_map_equals_the_step_with_running_statistics():
    """Train mode never reads the running statistics: the weights of the buffered step (from any
    statistics) equal the weights-only map's."""
    m = build_model({"kind": "resnet", "depth": 8, "norm": "batch"}, (1, 8, 8), 5).double()
    layout = Layout.from_module(m)
    w = init_params(m, layout, "default", 0).double()
    F, (X, Y, st, hp, opt) = _map(m, w, lr=0.1, n_batches=2, batch=8, shape=(1, 8, 8), classes=5)
    bl = buffer_layout(m)
    sb = make_step_with_buffers(make_apply_with_buffers(m, layout, bl), "cross_entropy", opt)
    b = torch.rand(bl.n_params, dtype=DT) + 0.5
    w_b, _, b_new, _ = sb(w, st, b, X[0], Y[0], hp)
    assert (w_b - F(w, 0)).abs().max() < 1e-12
    assert (b_new - b).abs().max() > 1e-3          # the statistics did move
    assert not any(isinstance(s, nn.BatchNorm2d) and s.running_mean is None for s in m.modules())


def _dense_ntk(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Theta (N, N, O, O) from per-sample Jacobians of the torch.nn module by reverse mode."""
    params = list(module.parameters())
    rows = []
    for i in range(len(x)):
        out = module(x[i:i + 1])[0]
        rows.append(torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(o, params, retain_graph=True)])
                                 for o in out]))
    J = torch.stack(rows)                                       # (N, O, P)
    return torch.einsum("aop,bqp->aboq", J, J)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_empirical_ntk_of_a_resnet_equals_dense_jjt(norm):
    m = build_model({"kind": "resnet", "depth": 8, "norm": norm}, (1, 8, 8), 5).double()
    layout = Layout.from_module(m)
    w = init_params(m, layout, "default", 0).double()
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=DT)
    ref = copy.deepcopy(m).eval()
    for name, t in layout.unflatten(w).items():
        ref.get_parameter(name).data.copy_(t)
    if norm == "batch":   # the member's own running statistics, not the initial 0 / 1
        bl = buffer_layout(m)
        g = torch.Generator().manual_seed(4)    # means ~ 0.1 N(0, 1), variances in [0.5, 1.5]
        b = torch.cat([0.1 * torch.randn(n, generator=g, dtype=DT) if name.endswith("mean")
                       else torch.rand(n, generator=g, dtype=DT) + 0.5
                       for name, n in zip(bl.names, (int(np.prod(s)) for s in bl.shapes))])
        for name, t in bl.unflatten(b).items():
            ref.get_buffer(name).copy_(t)
        apply_b = make_apply_with_buffers(m, layout, bl)
        apply = lambda v, xx: apply_b(v, b, xx, False)[0]   # noqa: E731
    else:
        apply = make_apply(m, layout)
    th = empirical_ntk(apply, w, x)
    dense = _dense_ntk(ref, x)
    assert th.shape == (4, 4, 5, 5)
    assert (th - dense).abs().max() <= 1e-10 * dense.abs().max()
    head_bias_only = torch.eye(5, dtype=DT).expand(4, 4, 5, 5)    # the kernel if every feature were dead
    assert (dense - head_bias_only).abs().max() > 0.1 * dense.abs().max()
    if norm == "batch":   # kernel_change with buffers is the eval-mode kernel: zero for an identical copy,
        W, B = torch.stack([w, w, w * 1.01]), torch.stack([b, b, b])           # > 0 for a moved one
        d, _ = kernel_change(None, [W], x, buffers=[B], apply_b=apply_b)
        assert np.isnan(d[0, 0]) and d[0, 1] < 1e-12 and d[0, 2] > 1e-3
