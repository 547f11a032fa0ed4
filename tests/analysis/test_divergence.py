"""Divergence metrics at one checkpoint against hand computations."""

import math

import numpy as np
import pytest
import torch

from pathdep.analysis.divergence import (baseline_as_truth, checkpoint_metrics, differences_to_baseline,
                                         layer_distances, layer_sizes_and_norms, output_distances, weight_metrics)
from pathdep.core.evaluate import Evaluation


def test_weight_metrics_by_hand():
    W0 = np.array([[1.0, 0.0], [1.0, 1.0]])
    Wc = np.array([[2.0, 0.0], [0.0, 2.0]])
    m = weight_metrics(Wc, W0)
    np.testing.assert_allclose(m["dist"], [0.0, math.sqrt(8)])
    np.testing.assert_allclose(m["dist_rel"], [0.0, math.sqrt(8)])  # |w_0(0)| = 1
    assert np.isnan(m["dist_over_init"][0]) and m["dist_over_init"][1] == pytest.approx(math.sqrt(8))
    np.testing.assert_allclose(m["norm"], [2.0, 2.0])
    np.testing.assert_allclose(m["norm_ratio"], [2.0, 2.0 / math.sqrt(2)])
    np.testing.assert_allclose(m["cos_base"], [1.0, 0.0], atol=1e-16)
    np.testing.assert_allclose(m["cos_init"], [1.0, 2.0 / (2.0 * math.sqrt(2))])
    np.testing.assert_allclose(m["dist_init"], [1.0, math.sqrt(2)])


def test_layer_distances_add_up():
    rng = np.random.default_rng(0)
    Wc = rng.normal(size=(3, 7))
    layer_of = np.array([0, 0, 1, 1, 1, 2, 2])
    d = layer_distances(Wc, layer_of, 3)
    np.testing.assert_allclose(np.sqrt((d ** 2).sum(1)), weight_metrics(Wc, Wc)["dist"], rtol=1e-14)
    sizes, norms = layer_sizes_and_norms(layer_of, 3, Wc[0])
    assert sizes.tolist() == [2, 3, 2] and sizes.dtype == np.int64
    np.testing.assert_allclose(norms, [np.linalg.norm(Wc[0, :2]), np.linalg.norm(Wc[0, 2:5]),
                                       np.linalg.norm(Wc[0, 5:])])


def test_baseline_as_truth_by_hand():
    out = torch.tensor([[[0.0, math.log(3.0)], [1.0, 0.0]],
                        [[0.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)  # (K=2, N=2, C=2)
    loss, acc = baseline_as_truth(out, "classification")
    # baseline labels (1, 0); baseline: -ln(3/4) and -ln(e/(1+e)); member 1: ln 2 and -ln(1/(1+e))
    np.testing.assert_allclose(loss, [(-math.log(0.75) - math.log(math.e / (1 + math.e))) / 2,
                                      (math.log(2) + math.log(1 + math.e)) / 2], rtol=1e-14)
    np.testing.assert_allclose(acc, [1.0, 0.0])  # member 1: tie -> 0 (miss), then 1 (miss)
    loss, acc = baseline_as_truth(out, "regression")
    # member 1 - baseline: (0, -ln3), (-1, 1): 0.5 * (ln3^2) and 0.5 * 2, mean
    np.testing.assert_allclose(loss, [0.0, (0.5 * math.log(3.0) ** 2 + 1.0) / 2], rtol=1e-14)
    assert np.all(np.isnan(acc))


def test_checkpoint_metrics_and_differences():
    W0 = np.array([[1.0, 0.0], [1.0, 1.0]])
    out = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=torch.float64)
    ev = Evaluation(np.array([0.5, 0.7]), np.array([1.0, 0.0]), out)
    m, dl = checkpoint_metrics(W0, W0, np.array([0, 1]), 2, {"train": ev, "test": ev}, "classification")
    assert set(m) >= {"train_loss", "test_cf_acc", "fs_sym_kl", "dist"} and dl.shape == (2, 2)
    np.testing.assert_allclose(m["test_cf_acc"], [1.0, 0.0])
    np.testing.assert_allclose(dl[1], [0.0, 1.0])
    m_reg, _ = checkpoint_metrics(W0, W0, np.array([0, 1]), 2, {"train": ev, "test": ev}, "regression")
    assert "fs_sym_kl" not in m_reg and "fs_l2_logits" in m_reg
    res = {k: np.stack([v, v], 1) for k, v in m.items()}
    d = differences_to_baseline(res, 4)
    np.testing.assert_allclose(d["d_train_loss"][:, 0], [0.0, 0.2], atol=1e-15)
    np.testing.assert_allclose(d["dist_rms"], res["dist"] / 2)


def test_output_distances_are_the_function_space_implementation():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(3, 50, 4, generator=g, dtype=torch.float64) * 3
    d = output_distances(out, "classification")
    o = out.double()
    lp = torch.log_softmax(o, -1)
    p = lp.exp()
    np.testing.assert_allclose(d["fs_l2_logits"], torch.sqrt(((o - o[0]) ** 2).sum(-1).mean(-1)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(d["fs_l2_probs"], torch.sqrt(((p - p[0]) ** 2).sum(-1).mean(-1)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(d["fs_disagree"], (o.argmax(-1) != o[0].argmax(-1)).double().mean(-1).numpy())
    sym = (0.5 * ((p[0] * (lp[0] - lp)).sum(-1) + (p * (lp - lp[0])).sum(-1))).mean(-1)
    np.testing.assert_allclose(d["fs_sym_kl"], sym.numpy(), rtol=1e-10, atol=1e-15)
    assert d["fs_l2_logits"][0] == 0 and d["fs_sym_kl"][0] == 0


