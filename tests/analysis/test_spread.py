"""pathdep.analysis.spread: hand-computed spread measures and variance shares."""

import numpy as np

from pathdep.analysis.spread import fraction_of_global, spread_curves


def test_spread_curves_hand_computed():
    # 3 networks (baseline + 2 members), 2 checkpoints
    dist = np.array([[0, 0], [0.1, 0.3], [0.3, np.nan]])      # a diverged member is NaN
    dis = np.array([[0, 0], [0.02, 0.1], [0.04, 0.2]])
    acc = np.array([[0.5, 0.8], [0.5, 0.9], [0.5, 0.7]])
    loss = np.array([[1.0, 0.5], [1.0, 0.4], [1.0, 0.6]])
    c = spread_curves(dist, dis, acc, loss)
    np.testing.assert_allclose(c["dist_rel"], [0.2, 0.3])
    np.testing.assert_allclose(c["disagree"], [0.03, 0.15])
    np.testing.assert_allclose(c["acc_sd"], [0.0, 0.1], atol=1e-15)
    np.testing.assert_allclose(c["loss_sd"], [0.0, 0.1], atol=1e-15)


def test_fraction_of_global():
    final = {"init": {"acc_sd": 0.01, "disagree": 0.05}, "global": {"acc_sd": 0.02, "disagree": 0.1}}
    f = fraction_of_global(final)
    assert f["init"] == {"acc_var_share": 0.25, "disagree_share": 0.5}
    assert f["global"] == {"acc_var_share": 1.0, "disagree_share": 1.0}
    assert np.isnan(fraction_of_global({"a": final["init"]})["a"]["acc_var_share"])


def test_block_spread_equals_each_block_cut_out_by_hand_and_shares_pair_blocks():
    from pathdep.analysis.spread import block_shares, block_spread, spread_curves

    rng = np.random.default_rng(0)
    arrs = [rng.random((6, 4)) for _ in range(4)]
    for a in arrs[:2]:
        a[[0, 3]] = 0.0                                   # the baselines' own distance / disagreement
    b, c = np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2])
    blocks = block_spread(*arrs, b, c)
    for r, rows in enumerate(([0, 1, 2], [3, 4, 5])):
        one = spread_curves(*(a[rows] for a in arrs))
        for m, v in one.items():
            np.testing.assert_allclose(blocks[m][r], v)
    ref = {m: 2 * v for m, v in blocks.items()}
    sh = block_shares(blocks, ref)
    np.testing.assert_allclose(sh["acc_var_share"], 0.25)
    np.testing.assert_allclose(sh["disagree_share"], 0.5)
