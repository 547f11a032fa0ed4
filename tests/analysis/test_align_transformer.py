"""pathdep.analysis.align_transformer: planted permutations of MLP units, whole heads and the
residual stream leave a transformer's function unchanged (float64) and weight matching
recovers them exactly; the spec's sizes; a non-transformer parameter is refused."""

import numpy as np
import pytest
import torch

from pathdep.analysis.align import apply_permutation, aligned_distance, permutation_spec, weight_matching
from pathdep.analysis.align_transformer import is_transformer, transformer_permutation_spec
from pathdep.core.init import init_params
from pathdep.core.models import Layout, build_model, make_apply


def _net(layernorm, tied):
    m = build_model({"kind": "transformer", "n_layer": 2, "n_head": 4, "d_model": 16, "d_mlp": 24,
                     "layernorm": layernorm, "tied": tied}, (5,), 13).double()
    layout = Layout.from_module(m)
    w = init_params(m, layout, "default", 3).double()
    # LayerNorm gains/shifts away from 1/0, so their permutation matters
    w = w + 0.1 * torch.randn(w.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return m, layout, w


@pytest.mark.parametrize("layernorm,tied", [("none", False), ("pre", False), ("pre", True), ("none", True)])
def test_planted_permutation_function_unchanged_and_recovered(layernorm, tied):
    m, layout, w = _net(layernorm, tied)
    spec = permutation_spec(layout)
    assert is_transformer(layout)
    assert spec.perm_sizes == {"P_res": 16, "P_heads0": 4, "P_mlp0": 24, "P_heads1": 4, "P_mlp1": 24}
    rng = np.random.default_rng(0)
    planted = {p: rng.permutation(n) for p, n in spec.perm_sizes.items()}
    w2 = apply_permutation(w, layout, spec, planted)
    assert (w2 - w).abs().max() > 0.1                      # the weights really moved
    apply = make_apply(m, layout)
    x = torch.randint(0, 13, (7, 5)).double()
    assert (apply(w2, x) - apply(w, x)).abs().max() <= 1e-12
    perms = weight_matching(w, w2, layout, spec)
    assert aligned_distance(w, w2, layout, spec) <= 1e-12
    back = apply_permutation(w2, layout, spec, perms)
    assert (back - w).abs().max() <= 1e-12
    for p in spec.perm_sizes:                              # the inverse of every planted permutation
        np.testing.assert_array_equal(planted[p][perms[p]], np.arange(spec.perm_sizes[p]))


def test_independent_networks_aligned_distance_at_most_raw():
    m, layout, w = _net("pre", False)
    w_other = init_params(m, layout, "default", 9).double()
    assert aligned_distance(w, w_other, layout) <= float((w - w_other).norm()) + 1e-12


def test_unknown_parameter_is_refused():
    m, layout, w = _net("none", False)
    bad = Layout(layout.names + ("blocks.0.attn.extra",), layout.shapes + ((3,),), layout.offsets + (layout.n_params,))
    with pytest.raises(ValueError, match=r"^layout: parameter 'blocks.0.attn.extra' is not part of"):
        transformer_permutation_spec(bad)
