"""pathdep.analysis.align.align_to_baseline with BatchNorm buffers: a planted permutation of a BN
ResNet-8 member (parameters and running statistics) leaves the eval-mode function unchanged in
float64; alignment recovers it exactly and returns the buffer gather that permutes the running
statistics with their channels (options A and B)."""

import numpy as np
import pytest
import torch

from pathdep.analysis.align import align_to_baseline, apply_permutation, permutation_spec
from pathdep.core.init import init_params
from pathdep.core.models import Layout, build_model
from pathdep.core.resnet import buffer_layout, buffers_of, make_apply_with_buffers


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_planted_permutation_with_buffers_is_recovered_by_align_to_baseline(shortcut):
    m = build_model({"kind": "resnet", "depth": 8, "shortcut": shortcut, "norm": "batch"}, (1, 12, 12), 5).double()
    layout, blayout = Layout.from_module(m), buffer_layout(m)
    g = torch.Generator().manual_seed(2)
    w = init_params(m, layout, "default", 4).double()
    w = w + 0.1 * torch.randn(w.shape, generator=g, dtype=torch.float64)
    b = buffers_of(m, blayout).double() + 0.5 * torch.rand(blayout.n_params, generator=g, dtype=torch.float64)
    spec, bspec = permutation_spec(layout), permutation_spec(blayout)
    rng = np.random.default_rng(9)
    perms = {p: rng.permutation(n) for p, n in spec.perm_sizes.items()}
    wp, bp = apply_permutation(w, layout, spec, perms), apply_permutation(b, blayout, bspec, perms)
    apply_b = make_apply_with_buffers(m, layout, blayout)
    x = torch.randn(7, 1, 12, 12, generator=g, dtype=torch.float64)
    out = apply_b(w, b, x, False)[0]
    assert (apply_b(wp, bp, x, False)[0] - out).abs().max() <= 1e-12          # eval mode: the same function
    assert (apply_b(wp, b, x, False)[0] - out).abs().max() > 1e-3             # unless the statistics stay behind
    W = np.stack([w.numpy(), wp.numpy()])[None]                                # (C=1, K=2, P)
    al = align_to_baseline(W, np.ones((1, 2), bool), layout, [0], keep=[(0, 1)], buffer_layout=blayout)
    gw, gb = al.gather[(0, 1)], al.gather_buffers[(0, 1)]
    assert al.dist[1, 0] > 1.0 and al.dist_aligned[1, 0] == 0.0
    assert np.array_equal(wp.numpy()[gw], w.numpy())                          # recovered exactly
    assert np.array_equal(bp.numpy()[gb], b.numpy())                          # statistics follow their channels
    assert (apply_b(torch.as_tensor(wp.numpy()[gw]), torch.as_tensor(bp.numpy()[gb]), x, False)[0] - out).abs().max() == 0
    # without a buffer layout: no buffer gathers (the parameter result is unchanged)
    assert align_to_baseline(W, np.ones((1, 2), bool), layout, [0], keep=[(0, 1)]).gather_buffers == {}
