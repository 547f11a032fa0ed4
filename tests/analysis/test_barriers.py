"""Interpolation grids between the baseline and its members, and their barriers."""

import numpy as np
import torch

from pathdep.analysis.align import apply_permutation, permutation_index, permutation_spec
from pathdep.analysis.barriers import barriers, interpolation_grid
from pathdep.analysis.interpolate import interpolation_curve
from pathdep.core.models import MLP, Layout, make_apply


def test_grid_planted_permutation_and_copy():
    torch.manual_seed(0)
    m = MLP(5, [8], 3).double()
    layout = Layout.from_module(m)
    apply = make_apply(m, layout)
    spec = permutation_spec(layout)
    rng = np.random.default_rng(0)
    W = np.empty((2, 3, layout.n_params))
    gather = {}
    for c in range(2):
        w0 = rng.standard_normal(layout.n_params)
        planted = {p: rng.permutation(n) for p, n in spec.perm_sizes.items()}
        W[c] = [w0, apply_permutation(w0, layout, spec, planted), w0]
        inverse = {p: np.argsort(v) for p, v in planted.items()}
        gather[(c, 1)] = permutation_index(layout, spec, inverse)
        gather[(c, 2)] = np.arange(layout.n_params)
    ok = np.ones((2, 3), dtype=bool)
    xs = {s: torch.randn(20, 5, dtype=torch.float64) for s in ("train", "test")}
    ys = {s: torch.randint(0, 3, (20,)) for s in ("train", "test")}
    lam = np.linspace(0, 1, 5)
    loss, acc = interpolation_grid(apply, W, ok, gather, [1, 2], [0, 1], xs, ys, lam, "cross_entropy", 7,
                                   torch.float64, "cpu")
    assert loss.shape == acc.shape == (2, 2, 2, 2, 5)
    flat = loss[1]  # aligned: every curve is the baseline's loss
    np.testing.assert_allclose(flat, flat[..., :1] * np.ones_like(flat), rtol=1e-12)
    np.testing.assert_allclose(loss[0, :, 1], loss[1, :, 1], rtol=1e-12)  # the copy: raw = aligned
    np.testing.assert_allclose(loss[0, ..., [0, -1]], loss[1, ..., [0, -1]], rtol=1e-10)  # same endpoints
    b = barriers(loss, lam)
    np.testing.assert_allclose(b["barrier"][1], 0.0, atol=1e-12)
    np.testing.assert_allclose(b["barrier_midpoint"][1], 0.0, atol=1e-12)
    assert np.all(b["barrier"] >= 0)
    assert np.ptp(loss[0, :, 0], axis=-1).min() > 1e-3  # raw, between permuted copies: not flat
    cur = interpolation_curve(apply, torch.as_tensor(W[1, 0]), torch.as_tensor(W[1, 1]), xs["test"], ys["test"],
                              lam, loss="cross_entropy", batch_size=7)
    np.testing.assert_array_equal(loss[0, 1, 0, 1], cur["loss"])
    np.testing.assert_array_equal(acc[0, 1, 0, 1], cur["accuracy"])
    ok[1, 2] = False
    loss2, _ = interpolation_grid(apply, W, ok, gather, [1, 2], [0, 1], xs, ys, lam, "cross_entropy", 7,
                                  torch.float64, "cpu")
    assert np.isnan(loss2[:, :, 1, 1]).all() and np.isfinite(loss2[:, :, 1, 0]).all()
