"""pathdep.core.models: functional apply == module forward, Layout round trips, parameter counts,
width_for_param_count against the built model, LeNet-5 shapes, MLP without bias."""

import pytest
import torch
from torch import nn

from pathdep.core.models import (MLP, LeNet5, Layout, build_model, count_params, make_apply, mlp_param_count,
                            width_for_param_count)


def _flat(module):
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


@pytest.mark.parametrize("make,x_shape", [
    (lambda: MLP(20, [16, 8], 3, activation="tanh"), (5, 20)),
    (lambda: MLP(12, [7], 4, activation="gelu", bias=False), (3, 12)),
    (lambda: MLP(3 * 4 * 4, [9], 2), (6, 3, 4, 4)),  # images are flattened
    (lambda: LeNet5((1, 28, 28), 10), (2, 1, 28, 28)),
    (lambda: LeNet5((3, 32, 32), 10, activation="tanh"), (2, 3, 32, 32)),
])
def test_make_apply_equals_forward(make, x_shape):
    torch.manual_seed(0)
    m = make().double()
    layout = Layout.from_module(m)
    x = torch.randn(*x_shape, dtype=torch.float64)
    apply = make_apply(m, layout)
    w = _flat(m)
    assert torch.equal(apply(w, x), m(x))
    # a different flat vector: the module's own forward with those parameters loaded
    w2 = torch.randn_like(w)
    m2 = make().double()
    with torch.no_grad():
        for name, t in layout.unflatten(w2).items():
            m2.get_parameter(name).copy_(t)
    assert torch.equal(apply(w2, x), m2(x))
    assert not torch.allclose(apply(w2, x), apply(w, x))
    # vmap over an ensemble == one call per member
    W = torch.stack([w, w2, -w])
    out = torch.vmap(apply, in_dims=(0, None))(W, x)
    for k in range(3):
        torch.testing.assert_close(out[k], apply(W[k], x), rtol=1e-12, atol=1e-12)


def test_layout_round_trip_and_offsets():
    torch.manual_seed(1)
    m = LeNet5((1, 28, 28), 10)
    layout = Layout.from_module(m)
    names = [n for n, _ in m.named_parameters()]
    assert list(layout.names) == names
    assert layout.names[:2] == ("conv0.weight", "conv0.bias")
    assert layout.layers() == ["conv0", "conv1", "fc0", "fc1", "fc2"]
    assert layout.layer_index() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for i in range(len(layout.names) - 1):
        assert layout.offsets[i + 1] == layout.offsets[i] + layout.sizes[i]
    assert layout.n_params == count_params(m)
    w = _flat(m)
    tensors = layout.unflatten(w)
    for n, p in m.named_parameters():
        assert torch.equal(tensors[n], p.detach())
        assert torch.equal(w[layout.slice(n)], p.detach().reshape(-1))
    assert torch.equal(layout.flatten(tensors), w)
    # flatten(unflatten(v)) == v for an arbitrary vector; unflatten keeps leading axes
    v = torch.randn(layout.n_params)
    assert torch.equal(layout.flatten(layout.unflatten(v)), v)
    V = torch.randn(3, layout.n_params)
    ut = layout.unflatten(V)
    assert ut["fc0.weight"].shape == (3, *dict(m.named_parameters())["fc0.weight"].shape)
    assert torch.equal(ut["fc2.bias"][1], layout.unflatten(V[1])["fc2.bias"])
    # attrs round trip (what trajectory files store)
    assert Layout.from_attrs(layout.to_attrs()) == layout


@pytest.mark.parametrize("m", [MLP(784, [100], 10), MLP(5, [3, 4, 6], 2, bias=False),
                               LeNet5((1, 28, 28), 10), LeNet5((3, 32, 32), 7)])
def test_count_params(m):
    assert count_params(m) == sum(p.numel() for p in m.parameters())
    assert Layout.from_module(m).n_params == count_params(m)


def test_known_parameter_counts():
    assert count_params(MLP(784, [100], 10)) == 784 * 100 + 100 + 100 * 10 + 10 == 79510
    # LeNet-5 on 28x28 with padding 2: 156 + 2416 + 48120 + 10164 + 850
    assert count_params(LeNet5((1, 28, 28), 10)) == 61706
    assert count_params(LeNet5((3, 32, 32), 10)) == 456 + 2416 + 48120 + 10164 + 850


@pytest.mark.parametrize("in_dim,depth,out_dim,target,bias", [
    (784, 1, 10, 79510, True),      # exactly width 100
    (784, 3, 10, 200000, True),
    (64, 2, 10, 5000, False),
    (10, 5, 1, 123456, True),
    (784, 4, 10, 50000, True),
])
def test_width_for_param_count_is_closest(in_dim, depth, out_dim, target, bias):
    w = width_for_param_count(in_dim, depth, out_dim, target, bias=bias)
    count = lambda v: count_params(MLP(in_dim, [v] * depth, out_dim, bias=bias))  # noqa: E731
    assert mlp_param_count(in_dim, w, depth, out_dim, bias) == count(w)
    best = abs(count(w) - target)
    for v in (w - 1, w + 1):
        if v >= 1:
            assert best <= abs(count(v) - target), (w, v)
    if target == 79510:
        assert w == 100 and count(w) == target


def test_width_for_param_count_impossible():
    # depth 1 of a 784 -> 10 MLP has at least 795 + 11 parameters: 50 is out of reach
    with pytest.raises(ValueError) as exc:
        width_for_param_count(784, 1, 10, 50)
    msg = str(exc.value)
    assert "\n" not in msg and "n_params" in msg
    with pytest.raises(ValueError, match="depth"):
        width_for_param_count(784, 0, 10, 1000)


@pytest.mark.parametrize("in_shape", [(1, 28, 28), (3, 32, 32)])
def test_lenet5_runs(in_shape):
    torch.manual_seed(0)
    m = build_model({"kind": "lenet5"}, in_shape, 10)
    assert isinstance(m, LeNet5)
    x = torch.randn(4, *in_shape)
    out = m(x)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    # the flat batch (B, C*H*W) is reshaped to images
    assert torch.equal(m(x.reshape(4, -1)), out)
    assert m.fc0.in_features == 16 * 5 * 5


def test_build_model_errors():
    with pytest.raises(ValueError, match="model.kind"):
        build_model({"kind": "lenet5"}, (10,), 2)
    with pytest.raises(ValueError, match="model.kind"):
        build_model({"kind": "resnet"}, (10,), 2)
    with pytest.raises(ValueError, match="model.activation"):
        MLP(3, [2], 1, activation="swish")
    with pytest.raises(ValueError, match="model.activation"):  # was a bare KeyError
        build_model({"kind": "lenet5", "activation": "swish"}, (1, 28, 28), 10)


def test_mlp_without_bias():
    m = build_model({"kind": "mlp", "hidden": [7, 5], "bias": False}, (1, 3, 3), 4)
    layout = Layout.from_module(m)
    assert layout.names == ("fc0.weight", "fc1.weight", "fc2.weight")
    assert all(getattr(m, f"fc{i}").bias is None for i in range(3))
    assert count_params(m) == 9 * 7 + 7 * 5 + 5 * 4
    # without bias the network is homogeneous: f(0) = 0
    assert torch.equal(m(torch.zeros(2, 9)), torch.zeros(2, 4))
    assert isinstance(m.act, nn.ReLU)
