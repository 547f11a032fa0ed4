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
