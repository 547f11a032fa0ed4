"""Function-space distances: hand-computed cases and invariants."""

import numpy as np
import pytest
import torch

from pathdep.analysis.function_space import function_distances

L3 = np.log(3.0)
BASE = np.array([[0.0, 0.0], [L3, 0.0]])      # p = (1/2, 1/2), (3/4, 1/4)
MEMBER = np.array([[L3, 0.0], [0.0, 0.0]])    # q = (3/4, 1/4), (1/2, 1/2)


def test_two_sample_hand_computed():
    d = function_distances(BASE, MEMBER[None])
    assert d["l2_logits"].shape == (1,)
    assert d["l2_logits"][0] == pytest.approx(L3)
    assert d["l2_probs"][0] == pytest.approx(np.sqrt(0.125))
    assert d["disagreement"][0] == 0.0
    assert d["sym_kl"][0] == pytest.approx(L3 / 8)
    kl = (0.5 * np.log(4 / 3) + 0.75 * L3 - np.log(2)) / 2
    assert d["kl_base_member"][0] == pytest.approx(kl)
    assert d["cf_nll"][0] == pytest.approx(-(np.log(0.75) + np.log(0.5)) / 2)


def test_identical_zero_and_symmetry():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 5))
    b = rng.normal(size=(40, 5))
    same = function_distances(a, a[None])
    for k in ("l2_logits", "l2_probs", "disagreement", "sym_kl", "kl_base_member"):
        assert same[k][0] == pytest.approx(0.0, abs=1e-12), k
    ab, ba = function_distances(a, b), function_distances(b, a)
    for k in ("l2_logits", "l2_probs", "disagreement", "sym_kl"):
        assert ab[k] == pytest.approx(ba[k], rel=1e-12), k
        assert ab[k].shape == ()
    # KL against torch
    kl_t = torch.nn.functional.kl_div(torch.log_softmax(torch.tensor(b), -1), torch.log_softmax(torch.tensor(a), -1),
                                      log_target=True, reduction="batchmean").item()
    assert ab["kl_base_member"] == pytest.approx(kl_t, rel=1e-10)
    kl_rev = function_distances(b, a)["kl_base_member"]
    assert ab["sym_kl"] == pytest.approx(0.5 * (ab["kl_base_member"] + kl_rev), rel=1e-12)


def test_disagreement_counts_and_shapes():
    base = np.eye(4)[[0, 1, 2, 3, 0]]                    # argmax 0,1,2,3,0
    m1 = np.eye(4)[[0, 1, 2, 3, 0]]                      # 0 differ
    m2 = np.eye(4)[[1, 1, 2, 0, 0]]                      # 2 differ
    m3 = np.eye(4)[[1, 2, 3, 0, 1]]                      # 5 differ
    stack = np.stack([m1, m2, m3])
    d = function_distances(base, torch.tensor(stack))
    np.testing.assert_allclose(d["disagreement"], [0.0, 0.4, 1.0])
    d2 = function_distances(base, np.stack([stack, stack]))  # (T, K, N, C)
    assert d2["sym_kl"].shape == (2, 3)
    with pytest.raises(ValueError):
        function_distances(base, stack[:, :3])


def test_stable_for_large_logits():
    a = np.array([[1e4, 0.0, -1e4]])
    b = np.array([[0.0, 1e4, -1e4]])
    d = function_distances(a, b[None])
    assert all(np.all(np.isfinite(v)) for v in d.values())
    assert d["sym_kl"][0] == pytest.approx(1e4, rel=1e-9)   # 0.5 * (1e4 + 1e4)
    assert d["l2_probs"][0] == pytest.approx(np.sqrt(2))
