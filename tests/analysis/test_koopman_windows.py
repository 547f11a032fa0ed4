"""pathdep.analysis.koopman_windows: the two-block split of a window x window W1 matrix, on a
piecewise-linear system whose map switches at a known window, and on its null (one map)."""

import numpy as np
import pytest

from pathdep.analysis.koopman import window_bounds, windowed_spectra
from pathdep.analysis.koopman_windows import split_contrast, transition_scan


def _system(eigs, seed):
    v = np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))) + 2 * np.eye(len(eigs))
    return v @ np.diag(eigs) @ np.linalg.inv(v)


def _trajectories(switch_at: int | None, T=240, n=4, noise=1e-2, seed=0):
    """(n, T, 4) trajectories of x' = A x + noise, A -> B at step ``switch_at`` (None: A throughout)."""
    a = _system([0.95, 0.9, 0.8, 0.7], 1)
    b = _system([0.99, 0.6, 0.5, 0.3], 2)
    rng = np.random.default_rng(seed)
    x = np.empty((n, T, 4))
    x[:, 0] = rng.standard_normal((n, 4))
    for t in range(1, T):
        m = b if switch_at is not None and t > switch_at else a
        x[:, t] = x[:, t - 1] @ m.T + noise * rng.standard_normal((n, 4))
        x[:, t] *= 1.0 / max(1.0, np.abs(x[:, t]).max() / 10)       # keep the noise-driven state O(1)
    return x


def _w1(x, size=20):
    bounds = window_bounds(np.arange(x.shape[1]), size)
    return windowed_spectra(x, bounds, rank=4)[2]


def test_switching_system_gives_two_blocks_at_the_switch():
    for seed in range(3):
        d = _w1(_trajectories(switch_at=120, seed=seed))      # 12 windows of 20 steps, switch after window 5
        res = transition_scan(d, n_perm=999, seed=0)
        assert res["split"] == 6 and res["note"] == ""
        assert res["contrast"] > 2                            # measured 2.4 .. 3.3 (noise 1e-2)
        assert res["p_value"] <= 0.005 and res["p_min"] == 1e-3   # exact floor 2 / C(12, 6) = 0.0022
        same = (np.arange(12) >= 6)[:, None] == (np.arange(12) >= 6)[None, :]
        assert np.median(d[~same]) > 2 * np.median(d[same & ~np.eye(12, dtype=bool)])   # two blocks


def test_one_system_throughout_gives_no_blocks():
    for seed in range(3):
        res = transition_scan(_w1(_trajectories(switch_at=None, seed=seed)), n_perm=999, seed=0)
        assert res["contrast"] < 1.6                          # measured 1.0 .. 1.4
        assert res["p_value"] > 0.05


def test_contrast_of_a_constant_matrix_and_too_few_windows():
    d = np.ones((6, 6)) - np.eye(6)
    assert all(split_contrast(d, s) == pytest.approx(1.0) for s in range(1, 6))
    d[2] = d[:, 2] = np.nan                                    # a missing window is dropped
    res = transition_scan(d, min_side=2, n_perm=9)
    assert list(res["kept"]) == [0, 1, 3, 4, 5] and res["contrast"] == pytest.approx(1.0)
    assert transition_scan(np.ones((3, 3)) - np.eye(3), min_side=2)["split"] == -1
