"""pathdep.analysis.align / align_resnet on ResNets (options A and B, norm none and batch): a planted
permutation of the residual streams and block channels leaves the function unchanged (float64) and
weight matching recovers it exactly; BatchNorm running statistics permute with their channels;
option A's streams are block-diagonal (padded channels permute among themselves)."""

import numpy as np
import pytest
import torch

from pathdep.analysis.align import apply_permutation, permutation_index, permutation_spec, weight_matching
from pathdep.analysis.align_resnet import resnet_permutation_spec
from pathdep.core.init import init_params
from pathdep.core.models import Layout, build_model
from pathdep.core.resnet import buffer_layout, buffers_of, make_apply_with_buffers


def _net(norm, depth=8, width=1, shortcut="B"):
    m = build_model({"kind": "resnet", "depth": depth, "width": width, "shortcut": shortcut, "norm": norm},
                    (1, 12, 12), 5).double()
    layout = Layout.from_module(m)
    g = torch.Generator().manual_seed(7)
    w = init_params(m, layout, "default", 3).double()
    w = w + 0.1 * torch.randn(w.shape, generator=g, dtype=torch.float64)   # BN weights/biases not 1/0
    return m, layout, w


def _planted(spec, seed=11):
    rng = np.random.default_rng(seed)
    return {p: rng.permutation(n) for p, n in spec.perm_sizes.items()}


def test_spec_structure_resnet8():
    m, layout, _ = _net("none")
    spec = permutation_spec(layout)
    # 3 residual streams + one permutation per block (ResNet-8: one block per stage)
    assert sorted(spec.perm_sizes) == ["P_block0_0", "P_block1_0", "P_block2_0", "P_stream0", "P_stream1", "P_stream2"]
    assert spec.perm_sizes["P_stream2"] == 64 and spec.perm_sizes["P_block1_0"] == 32
    assert spec.axes_to_perm["stages.1.0.short_conv.weight"] == ("P_stream1", "P_stream0", None, None)
    assert spec.axes_to_perm["stages.1.0.conv1.weight"] == ("P_block1_0", "P_stream0", None, None)
    assert spec.axes_to_perm["fc.weight"] == (None, "P_stream2") and spec.axes_to_perm["fc.bias"] == (None,)


@pytest.mark.parametrize("depth,width,shortcut", [(8, 1, "B"), (14, 1, "B"), (8, 1, "A"), (14, 2, "A")])
def test_planted_permutation_norm_none(depth, width, shortcut):
    m, layout, w = _net("none", depth, width, shortcut)
    spec = permutation_spec(layout)
    perms = _planted(spec)
    wp = apply_permutation(w, layout, spec, perms)
    assert (wp - w).abs().max() > 0.1                                      # the weights really moved
    apply_b = make_apply_with_buffers(m, layout)
    x = torch.randn(6, 1, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    e = torch.zeros(0, dtype=torch.float64)
    out, out_p = apply_b(w, e, x, False)[0], apply_b(wp, e, x, False)[0]
    assert (out - out_p).abs().max() <= 1e-12                              # same function
    found = weight_matching(w.numpy(), wp.numpy(), layout, spec)
    back = apply_permutation(wp.numpy(), layout, spec, found)
    assert np.array_equal(back, w.numpy())                                 # recovered exactly
    for p, perm in perms.items():                                          # the inverse of the plant
        assert np.array_equal(perm[found[p]], np.arange(len(perm)))


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_planted_permutation_batchnorm_buffers_follow_their_channels(shortcut):
    m, layout, w = _net("batch", shortcut=shortcut)
    blayout = buffer_layout(m)
    spec, bspec = permutation_spec(layout), resnet_permutation_spec(blayout)
    assert set(bspec.perm_sizes) <= set(spec.perm_sizes)
    b = buffers_of(m, blayout).double() + 0.5 * torch.rand(blayout.n_params, generator=torch.Generator().manual_seed(1),
                                                           dtype=torch.float64)
    perms = _planted(spec)
    wp, bp = apply_permutation(w, layout, spec, perms), apply_permutation(b, blayout, bspec, perms)
    apply_b = make_apply_with_buffers(m, layout, blayout)
    x = torch.randn(6, 1, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for train in (False, True):
        (o, nb), (op, nbp) = apply_b(w, b, x, train), apply_b(wp, bp, x, train)
        assert (o - op).abs().max() <= 1e-12                               # eval and train mode
        assert (apply_permutation(nb, blayout, bspec, perms) - nbp).abs().max() <= 1e-12
    # unpermuted statistics with permuted weights give another function (the test can fail)
    assert (apply_b(wp, b, x, False)[0] - apply_b(w, b, x, False)[0]).abs().max() > 1e-3
    found = weight_matching(w, wp, layout, spec)
    assert torch.equal(apply_permutation(wp, layout, spec, found), w)
    assert torch.equal(apply_permutation(bp, blayout, bspec, found), b)


def test_option_a_streams_are_block_diagonal():
    m, layout, w = _net("none", shortcut="A")
    spec = permutation_spec(layout)
    assert spec.virtual is not None
    assert resnet_permutation_spec(buffer_layout(_net("batch", shortcut="A")[0])).virtual is not None
    # stream 0: 16 channels; stream 1 adds 16 new ones, stream 2 adds 32
    assert {p: n for p, n in spec.perm_sizes.items() if p.startswith("P_stream")} == {"P_stream0": 16, "P_stream1": 16,
                                                                                     "P_stream2": 32}
    assert np.array_equal(np.sort(spec.gather), np.arange(layout.n_params))          # a bijection
    perms = {p: np.arange(n) for p, n in spec.perm_sizes.items()}
    assert np.array_equal(permutation_index(layout, spec, perms), np.arange(layout.n_params))
    perms["P_stream0"] = np.roll(perms["P_stream0"], 1)
    idx = permutation_index(layout, spec, perms).reshape(-1)
    # the head reads stream 2: its first 16 columns move with P_stream0, the other 48 stay
    fc = layout.slice("fc.weight")
    cols = (idx[fc] - fc.start).reshape(5, 64) % 64
    assert np.array_equal(cols[0, :16], np.roll(np.arange(16), 1)) and np.array_equal(cols[0, 16:], np.arange(16, 64))
    # option B has no segments
    assert permutation_spec(_net("none")[1]).virtual is None
