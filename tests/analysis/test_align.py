"""Weight matching (Git Re-Basin): planted permutations are recovered exactly."""

import numpy as np
import pytest
import torch

from pathdep.analysis.align import (align_ensemble, aligned_distance, apply_permutation,
                                    permutation_spec, weight_matching)
from pathdep.core.models import MLP, LeNet5, Layout, make_apply


def _net(kind, seed):
    torch.manual_seed(seed)
    if kind == "mlp":
        m = MLP(784, [32, 16], 10).double()
        x = torch.randn(7, 784, dtype=torch.float64)
    else:
        m = LeNet5((1, 28, 28), 10).double()
        x = torch.randn(5, 1, 28, 28, dtype=torch.float64)
    layout = Layout.from_module(m)
    w = layout.flatten(dict(m.named_parameters())).detach().clone()
    # random biases so bias rows also carry information
    return m, layout, w, x


def test_spec_mlp():
    m, layout, _, _ = _net("mlp", 0)
    spec = permutation_spec(layout)
    assert spec.perm_sizes == {"P_fc0": 32, "P_fc1": 16}
    assert set(spec.perm_to_axes["P_fc0"]) == {("fc0.weight", 0), ("fc0.bias", 0), ("fc1.weight", 1)}
    assert spec.axes_to_perm["fc2.weight"] == (None, "P_fc1")
    assert spec.axes_to_perm["fc1.weight"] == ("P_fc1", "P_fc0")


def test_spec_lenet():
    m, layout, _, _ = _net("lenet", 0)
    spec = permutation_spec(layout)
    assert spec.perm_sizes == {"P_conv0": 6, "P_conv1": 16, "P_fc0": 120, "P_fc1": 84}
    assert spec.view_shapes["fc0.weight"] == (120, 16, 25)
    assert spec.axes_to_perm["fc0.weight"] == ("P_fc0", "P_conv1", None)
    assert spec.axes_to_perm["conv1.weight"] == ("P_conv1", "P_conv0", None, None)


@pytest.mark.parametrize("kind", ["mlp", "lenet"])
def test_planted_permutation_recovered(kind):
    m, layout, w, x = _net(kind, 1)
    spec = permutation_spec(layout)
    apply = make_apply(m, layout)
    rng = np.random.default_rng(3)
    planted = {p: rng.permutation(n) for p, n in spec.perm_sizes.items()}
    w_perm = apply_permutation(w, layout, spec, planted)
    assert isinstance(w_perm, torch.Tensor)
    assert float((w_perm - w).norm()) > 1.0
    with torch.no_grad():
        torch.testing.assert_close(apply(w_perm, x), apply(w, x), atol=1e-5, rtol=0)
    perms = weight_matching(w, w_perm, layout, spec)
    for p in spec.perm_sizes:
        np.testing.assert_array_equal(perms[p], np.argsort(planted[p]))  # the inverse
    back = apply_permutation(w_perm, layout, spec, perms)
    torch.testing.assert_close(back, w, atol=0, rtol=0)
    assert aligned_distance(w, w_perm, layout, spec) < 1e-10


def test_flatten_order_conv_to_fc():
    """Permuting conv1 channels must move fc0 columns in (C, H, W) blocks: outputs unchanged."""
    m, layout, w, x = _net("lenet", 2)
    spec = permutation_spec(layout)
    apply = make_apply(m, layout)
    perms = {p: np.arange(n) for p, n in spec.perm_sizes.items()}
    perms["P_conv1"] = np.roll(np.arange(16), 3)
    w_perm = apply_permutation(w, layout, spec, perms)
    with torch.no_grad():
        torch.testing.assert_close(apply(w_perm, x), apply(w, x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("kind", ["mlp", "lenet"])
def test_independent_nets_aligned_not_larger(kind):
    _, layout, w_a, _ = _net(kind, 4)
    _, _, w_b, _ = _net(kind, 5)
    spec = permutation_spec(layout)
    raw = float((w_a - w_b).norm())
    al = aligned_distance(w_a, w_b, layout, spec)
    assert al <= raw + 1e-12
    assert al < raw  # random nets: some permutation always helps


def test_align_ensemble_and_numpy():
    m, layout, w, _ = _net("mlp", 6)
    spec = permutation_spec(layout)
    rng = np.random.default_rng(0)
    members = []
    for _ in range(3):
        planted = {p: rng.permutation(n) for p, n in spec.perm_sizes.items()}
        members.append(apply_permutation(w.numpy(), layout, spec, planted))
    aligned, dist, perms = align_ensemble(w, np.stack(members), layout, spec)
    assert aligned.shape == (3, layout.n_params) and len(perms) == 3
    np.testing.assert_allclose(dist, 0, atol=1e-10)


def test_align_to_baseline_planted_permutation_gives_zero():
    from pathdep.analysis.align import align_to_baseline

    m, layout, w, _ = _net("mlp", 2)
    spec = permutation_spec(layout)
    rng = np.random.default_rng(5)
    w = w.numpy()
    other = _net("mlp", 3)[2].numpy()
    C = 3
    W = np.empty((C, 4, w.size))
    for c in range(C):
        base = w * (1 + 0.1 * c)
        planted = {p: rng.permutation(n) for p, n in spec.perm_sizes.items()}
        W[c] = [base, apply_permutation(base, layout, spec, planted), base, other]
    ok = np.ones((C, 4), dtype=bool)
    ok[2, 2] = False
    res = align_to_baseline(W, ok, layout, checkpoints=[0, 2], keep=[(1, 1)])
    assert res.aligned.tolist() == [True, False, True]
    np.testing.assert_allclose(res.dist_aligned[1, [0, 2]], 0.0, atol=1e-12)  # the planted permutation undone
    assert np.all(res.dist[1] > 1.0) and np.all(np.isnan(res.dist_aligned[:, 1]))
    assert np.isnan(res.dist[2, 2]) and np.isnan(res.dist_aligned[2, 2]) and res.dist_aligned[2, 0] == 0
    assert np.all(res.dist_aligned[3, [0, 2]] <= res.dist[3, [0, 2]]) and np.all(res.dist_aligned[0, [0, 2]] == 0)
    assert set(res.gather) == {(1, 1)}  # kept although checkpoint 1 is not reported
    np.testing.assert_allclose(W[1, 1][res.gather[(1, 1)]], W[1, 0], atol=1e-12)
