"""pathdep.core.resnet: parameter counts against closed forms (ResNet-20 A/B, ResNet-18), forward
shapes on 1x28x28 and 3x32x32, the flat layout's functional_call equals the module, depth errors."""

import pytest
import torch

from pathdep.core.models import Layout, build_model, count_params, make_apply
from pathdep.core.resnet import ResNet, buffer_layout


def cifar_count(n: int, k: int = 1, c: int = 3, classes: int = 10, shortcut: str = "A", norm: str = "batch") -> int:
    """Closed form of a CIFAR ResNet-(6n+2): 3x3 convolutions without bias (BN: 2 per channel)
    or with bias (norm none), stages of 16k/32k/64k channels, option A adds nothing, option B a
    1x1 convolution (+ BN) at the two stage transitions, head 64k*classes + classes."""
    a, b_, d = 16 * k, 32 * k, 64 * k
    per = 2 if norm == "batch" else 1            # BN weight+bias, or one conv bias per channel
    conv = lambda ci, co, ks=3: ks * ks * ci * co + per * co   # noqa: E731
    total = conv(c, a)                                           # stem (+ bn0)
    for ci, co in ((a, a), (a, b_), (b_, d)):
        total += conv(ci, co) + conv(co, co)                     # first block of the stage
        total += (n - 1) * 2 * conv(co, co)                      # the other n - 1 blocks
        if shortcut == "B" and ci != co:
            total += conv(ci, co, 1)
    return total + d * classes + classes


def test_resnet20_option_a_has_0_27m_parameters():
    m = build_model({"kind": "resnet", "depth": 20, "width": 1, "shortcut": "A", "norm": "batch"}, (3, 32, 32), 10)
    # stem 432 + 32, stage 1: 3 * (2 * 2304 + 64), stage 2: 4608 + 9216 + 128 + 2 * (2 * 9216 + 128),
    # stage 3: 18432 + 36864 + 256 + 2 * (2 * 36864 + 256), head 650
    assert count_params(m) == 269722 == cifar_count(3)
    assert round(count_params(m) / 1e6, 2) == 0.27     # He et al. 2016, Table 6


def test_resnet20_option_b_and_norm_none_counts():
    mb = build_model({"kind": "resnet", "depth": 20, "shortcut": "B"}, (3, 32, 32), 10)
    # option B adds 1x1 16->32 and 32->64 projections with BN: 512 + 64 + 2048 + 128
    assert count_params(mb) == 272474 == cifar_count(3, shortcut="B") == 269722 + 2752
    mn = build_model({"kind": "resnet", "depth": 20, "norm": "none"}, (3, 32, 32), 10)
    assert count_params(mn) == cifar_count(3, norm="none")
    assert len(buffer_layout(mn).names) == 0 and buffer_layout(mb).n_params == 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64 + 32 + 64)


@pytest.mark.parametrize("depth,k,c", [(8, 1, 1), (32, 2, 3), (56, 1, 3), (110, 1, 3)])
def test_cifar_counts_match_the_closed_form(depth, k, c):
    m = ResNet((c, 32, 32), 10, depth, k)
    assert count_params(m) == cifar_count((depth - 2) // 6, k, c)


def test_resnet18_count_with_the_cifar_stem():
    m = build_model({"kind": "resnet", "depth": 18}, (3, 32, 32), 10)
    # torchvision resnet18: 11,689,512 for 1000 classes; 10 classes: - 990 * 513;
    # 3x3 stem instead of 7x7: - (49 - 9) * 3 * 64
    assert count_params(m) == 11689512 - 990 * 513 - 40 * 3 * 64 == 11173962
    assert m.shortcut == "B"
    assert count_params(build_model({"kind": "resnet", "depth": 34}, (3, 32, 32), 10)) == 21797672 - 990 * 513 - 40 * 3 * 64


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("spec", [{"depth": 8, "norm": "none"}, {"depth": 20, "shortcut": "B", "width": 2},
                                  {"depth": 18, "norm": "batch"}])
def test_forward_shapes_and_flat_apply(shape, spec):
    torch.manual_seed(0)
    m = build_model({"kind": "resnet", **spec}, shape, 7).double().eval()
    layout = Layout.from_module(m)
    x = torch.randn(3, *shape, dtype=torch.float64)
    out = m(x)
    assert out.shape == (3, 7)
    assert m.features(x).shape == (3, 64 * spec.get("width", 1) * (8 if spec["depth"] == 18 else 1))
    w = layout.flatten(dict(m.named_parameters()))
    assert torch.equal(make_apply(m, layout)(w, x), out)
    # a different flat vector changes the output (apply really reads w)
    assert (make_apply(m, layout)(w * 1.1, x) - out).abs().max() > 1e-6


def test_option_a_pads_new_channels_with_zeros_after_the_input():
    m = ResNet((1, 8, 8), 3, 8, 1, "A", "none")
    blk = m.stages[1][0]
    x = torch.randn(2, 16, 8, 8)
    s = blk._short(x)
    assert s.shape == (2, 32, 4, 4)
    assert torch.equal(s[:, :16], x[:, :, ::2, ::2]) and torch.equal(s[:, 16:], torch.zeros(2, 16, 4, 4))


@pytest.mark.parametrize("depth", [19, 6, 2, 51, 16, True])
def test_bad_depth_is_a_one_line_error(depth):
    with pytest.raises(ValueError, match=r"^model\.depth: expected 6n\+2 .*18 \| 34") as e:
        build_model({"kind": "resnet", "depth": depth}, (3, 32, 32), 10)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("spec,key", [({"shortcut": "C"}, "shortcut"), ({"norm": "group"}, "norm"),
                                      ({"width": 0}, "width")])
def test_bad_keys(spec, key):
    with pytest.raises(ValueError, match=rf"^model\.{key}: "):
        build_model({"kind": "resnet", **spec}, (3, 32, 32), 10)
    with pytest.raises(ValueError, match=r"^model\.kind: resnet needs image inputs"):
        build_model({"kind": "resnet"}, (784,), 10)


# --------------------------------------------------------------------------- training (norm none / batch)

import copy  # noqa: E402

from pathdep.core.dynamics import loss_value, make_ensemble_step, make_step  # noqa: E402
from pathdep.core.fast import _Spec, ensemble_step_for, supports  # noqa: E402
from pathdep.core.init import init_params  # noqa: E402
from pathdep.core.optim import Optimizer  # noqa: E402
from pathdep.core.resnet import buffers_of, make_apply_with_buffers, make_step_with_buffers  # noqa: E402

K, STEPS, B, SHAPE = 3, 20, 8, (1, 12, 12)
HPS = [dict(lr=0.05, momentum=0.9, weight_decay=5e-4), dict(lr=0.1, momentum=0.5, weight_decay=1e-3),
       dict(lr=0.02, momentum=0.9, weight_decay=0.0)]


def _resnet8(norm):
    return build_model({"kind": "resnet", "depth": 8, "width": 1, "norm": norm}, SHAPE, 5).double()


def _load(m, layout, w, blayout=None, b=None):
    m = copy.deepcopy(m)
    with torch.no_grad():
        for name, t in layout.unflatten(w).items():
            m.get_parameter(name).copy_(t)
        if b is not None:
            for name, t in blayout.unflatten(b).items():
                m.get_buffer(name).copy_(t)
    return m


def _batches():
    g = torch.Generator().manual_seed(3)
    return (torch.randn(STEPS, B, *SHAPE, generator=g, dtype=torch.float64),
            torch.randint(0, 5, (STEPS, B), generator=g))


def _hp(opt):
    return {k: torch.tensor([float(h.get(k, opt.defaults[k])) for h in HPS], dtype=torch.float64)
            for k in opt.hparam_names}


def _sequential(base, layout, W, x, y, blayout=None, Bf=None):
    """K torch.nn copies in train mode under torch.optim.SGD; final weights, buffers, losses."""
    ws, bs, ls = [], [], []
    for k in range(K):
        m = _load(base, layout, W[k], blayout, None if Bf is None else Bf[k]).train()
        o = torch.optim.SGD(m.parameters(), **HPS[k])
        lk = []
        for t in range(STEPS):
            o.zero_grad()
            val = loss_value("cross_entropy", m(x[t]), y[t])
            val.backward()
            o.step()
            lk.append(val.detach())
        ws.append(layout.flatten(dict(m.named_parameters())).detach())
        bs.append(None if Bf is None else blayout.flatten(dict(m.named_buffers())))
        ls.append(torch.stack(lk))
    return torch.stack(ws), (None if Bf is None else torch.stack(bs)), torch.stack(ls, 1)


def test_norm_none_ensemble_equals_sequential_sgd_float64():
    base = _resnet8("none")
    layout = Layout.from_module(base)
    W = torch.stack([init_params(base, layout, "default", s) for s in range(K)])
    x, y = _batches()
    ref, _, ref_loss = _sequential(base, layout, W, x, y)
    opt = Optimizer("sgd")
    hp = _hp(opt)
    ens = ensemble_step_for(base, layout, make_apply(base, layout), opt, "cross_entropy", True, fast=True)
    Wt, st, losses = W.clone(), torch.vmap(opt.init)(W), []
    for t in range(STEPS):
        Wt, st, lv = ens(Wt, st, x[t], y[t], hp)
        losses.append(lv)
    assert (Wt - ref).abs().max() <= 1e-10
    assert (torch.stack(losses) - ref_loss).abs().max() <= 1e-10
    assert (Wt - W).norm(dim=1).min() > 1e-3 and (ref[0] - ref[1]).norm() > 1e-3   # they moved, differently


def test_the_fast_path_refuses_resnets_cleanly():
    base = _resnet8("none")
    layout = Layout.from_module(base)
    assert not supports(base) and not supports(_resnet8("batch"))
    with pytest.raises(ValueError, match=r"^training\.fast: no fast ensemble step for ResNet"):
        _Spec(base, layout)
    step = ensemble_step_for(base, layout, make_apply(base, layout), Optimizer("sgd"), "cross_entropy", True, fast=True)
    generic = make_ensemble_step(make_step(make_apply(base, layout), "cross_entropy", Optimizer("sgd")))
    assert type(step) is type(generic)


def _bn_members():
    base = _resnet8("batch")
    layout, blayout = Layout.from_module(base), buffer_layout(base)
    W = torch.stack([init_params(base, layout, "default", s) for s in range(K)])
    g = torch.Generator().manual_seed(5)   # distinct running statistics per member
    b0 = buffers_of(base, blayout).double()
    Bf = torch.stack([b0 + 0.3 * torch.rand(b0.shape, generator=g, dtype=torch.float64) for _ in range(K)])
    return base, layout, blayout, W, Bf


@pytest.mark.parametrize("train", [True, False])
def test_apply_with_buffers_equals_batchnorm_modules(train):
    base, layout, blayout, W, Bf = _bn_members()
    apply_b = make_apply_with_buffers(base, layout, blayout)
    x = _batches()[0][0]
    outs, bufs = [], []
    for k in range(K):
        m = _load(base, layout, W[k], blayout, Bf[k]).train(train)
        assert isinstance(m.bn0, torch.nn.BatchNorm2d)
        with torch.no_grad():
            outs.append(m(x))
        bufs.append(blayout.flatten(dict(m.named_buffers())))
    ref_out, ref_buf = torch.stack(outs), torch.stack(bufs)
    one_out, one_buf = apply_b(W[1], Bf[1], x, train)                      # one member
    assert (one_out - ref_out[1]).abs().max() <= 1e-12 and (one_buf - ref_buf[1]).abs().max() <= 1e-12
    v_out, v_buf = torch.vmap(apply_b, in_dims=(0, 0, None, None))(W, Bf, x, train)   # the ensemble
    assert (v_out - ref_out).abs().max() <= 1e-12 and (v_buf - ref_buf).abs().max() <= 1e-12
    assert ((v_buf - Bf).abs().max() > 1e-3) == train                      # train mode moves the statistics
    assert torch.equal(Bf, _bn_members()[4])                               # the inputs are not modified
    # train and eval mode differ (batch vs running statistics)
    other = torch.vmap(apply_b, in_dims=(0, 0, None, None))(W, Bf, x, not train)[0]
    assert (other - v_out).abs().max() > 1e-3


def test_batchnorm_ensemble_step_equals_sequential_sgd_float64():
    base, layout, blayout, W, Bf = _bn_members()
    x, y = _batches()
    ref_w, ref_b, ref_loss = _sequential(base, layout, W, x, y, blayout, Bf)
    opt = Optimizer("sgd")
    hp = _hp(opt)
    step = torch.vmap(make_step_with_buffers(make_apply_with_buffers(base, layout, blayout), "cross_entropy", opt),
                      in_dims=(0, 0, 0, None, None, 0))
    Wt, st, Bt, losses = W.clone(), torch.vmap(opt.init)(W), Bf.clone(), []
    for t in range(STEPS):
        Wt, st, Bt, lv = step(Wt, st, Bt, x[t], y[t], hp)
        losses.append(lv)
    assert (Wt - ref_w).abs().max() <= 1e-10
    assert (Bt - ref_b).abs().max() <= 1e-10
    assert (torch.stack(losses) - ref_loss).abs().max() <= 1e-10
    assert (Bt - Bf).abs().max() > 1e-2 and (Wt - W).norm(dim=1).min() > 1e-3


def test_bn_reset_equals_cumulative_batchnorm_statistics():
    """make_bn_reset equals nn.BatchNorm2d with momentum=None (cumulative average) over the same
    batches, for one member and vmapped; the old statistics are not read."""
    from pathdep.core.resnet import make_bn_reset

    base, layout, blayout, W, Bf = _bn_members()
    xs = _batches()[0][:3]
    ref = []
    for k in range(K):
        m = _load(base, layout, W[k], blayout, Bf[k]).train()
        with torch.no_grad():
            for bn in m.modules():
                if isinstance(bn, torch.nn.BatchNorm2d):
                    bn.num_batches_tracked = torch.tensor(0)
                    bn.momentum = None
                    bn.reset_running_stats()
            for x in xs:
                m(x)
        ref.append(torch.cat([t.reshape(-1) for n, t in m.named_buffers() if n in blayout.names]))
    ref = torch.stack(ref)
    reset = make_bn_reset(base, layout, blayout)
    assert (reset(W[0], Bf[0], xs) - ref[0]).abs().max() <= 1e-12
    got = torch.vmap(reset, in_dims=(0, 0, None))(W, torch.full_like(Bf, float("nan")), xs)
    assert (got - ref).abs().max() <= 1e-12
    assert (got - Bf).abs().max() > 1e-2 and (got[0] - got[1]).abs().max() > 1e-3
    # b = None under a vmap over weights (interpolation points): the same statistics
    assert (torch.vmap(reset, in_dims=(0, None, None))(W, None, xs) - ref).abs().max() <= 1e-12


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_member_loop_equals_the_vmapped_step(norm):
    from pathdep.core.resnet import make_member_loop

    opt = Optimizer("sgd")
    hp = _hp(opt)
    x, y = _batches()
    if norm == "none":
        base = _resnet8("none")
        layout = Layout.from_module(base)
        W = torch.stack([init_params(base, layout, "default", s) for s in range(K)])
        one, dims, args = make_step(make_apply(base, layout), "cross_entropy", opt), (0, 0, None, None, 0), [W]
    else:
        base, layout, blayout, W, Bf = _bn_members()
        one = make_step_with_buffers(make_apply_with_buffers(base, layout, blayout), "cross_entropy", opt)
        dims, args = (0, 0, 0, None, None, 0), [W, None, Bf]
    state = torch.vmap(opt.init)(W)
    a = b = args[:1] + [state] + args[2:]
    vm, lp = torch.vmap(one, in_dims=dims), make_member_loop(one, dims)
    for t in range(3):
        ra, rb = vm(*a, x[t], y[t], hp), lp(*b, x[t], y[t], hp)
        a, b = list(ra[:-1]), list(rb[:-1])
    for u, v in zip(ra, rb):
        for p, q in zip(torch.utils._pytree.tree_leaves(u), torch.utils._pytree.tree_leaves(v)):
            assert p.shape == q.shape and (p - q).abs().max() <= 1e-12
    assert (ra[0] - W).abs().max() > 1e-3


def test_tangent_map_of_the_step_by_generic_jvp():
    """Lyapunov's generic tangents (forward-over-reverse jvp of the pure step, vmapped over k = 8
    tangents) work through a ResNet-8 (norm none): u . (J v) from forward mode equals (u J) . v
    from reverse mode (central differences cross ReLU kinks on this net, so they are no reference)."""
    base = build_model({"kind": "resnet", "depth": 8, "norm": "none"}, (1, 8, 8), 5).double()
    layout = Layout.from_module(base)
    opt = Optimizer("sgd")
    w = init_params(base, layout, "default", 0).double()
    hp = {k: torch.tensor(v, dtype=torch.float64) for k, v in (("lr", 0.05), ("momentum", 0.9), ("dampening", 0.0),
                                                                ("weight_decay", 5e-4))}
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 5, (4,), generator=g)
    state = tuple(s + 0.01 for s in opt.init(w))                 # a live momentum buffer
    step = make_step(make_apply(base, layout), "cross_entropy", opt)
    F = lambda v: step(v, state, x, y, hp)[0]                     # noqa: E731
    V = torch.randn(8, w.numel(), generator=g, dtype=torch.float64)
    JV = torch.vmap(lambda v: torch.func.jvp(F, (w,), (v,))[1])(V)
    U = torch.randn(8, w.numel(), generator=g, dtype=torch.float64)
    _, pull = torch.func.vjp(F, w)
    UJ = torch.stack([pull(u)[0] for u in U])
    fwd, rev = (U * JV).sum(-1), (UJ * V).sum(-1)
    assert ((fwd - rev).abs() <= 1e-10 * (U.abs() * JV.abs()).sum(-1)).all()
    assert (JV - V).abs().max() > 1e-4                            # the map is not the identity
