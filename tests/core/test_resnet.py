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
