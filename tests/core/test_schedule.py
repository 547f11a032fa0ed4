"""pathdep.core.schedule: epochs are permutations, shared schedules, swapped batches, checkpoint steps."""

import numpy as np
import pytest

from pathdep.core.schedule import Schedule, checkpoint_steps, epoch_order, swap_pairs


def _epoch(s: Schedule, e: int) -> np.ndarray:
    """All batches of epoch e: (steps_per_epoch, B) shared or (K, steps_per_epoch, B)."""
    rows = [s.batch(e * s.steps_per_epoch + i) for i in range(s.steps_per_epoch)]
    return np.stack(rows, axis=-2)


def test_each_epoch_is_a_permutation():
    n, b = 100, 10
    s = Schedule(n, b, epochs=3, seeds=[5, 6, 7])
    assert not s.shared and s.steps_per_epoch == 10 and s.n_steps == 30
    for e in range(3):
        ep = _epoch(s, e)
        assert ep.shape == (3, 10, 10)
        for k in range(3):
            assert np.array_equal(np.sort(ep[k].ravel()), np.arange(n))
            assert np.array_equal(ep[k].ravel(), epoch_order([5, 6, 7][k], e, n))
    # epochs differ from each other, members differ from each other
    assert not np.array_equal(_epoch(s, 0)[0], _epoch(s, 1)[0])
    assert not np.array_equal(_epoch(s, 0)[0], _epoch(s, 0)[1])


def test_incomplete_last_batch_dropped():
    s = Schedule(103, 10, epochs=2, seeds=[1])
    assert s.steps_per_epoch == 10 and s.n_steps == 20
    ep = _epoch(s, 0)
    assert ep.shape == (10, 10) and len(np.unique(ep)) == 100
    assert np.array_equal(ep.ravel(), epoch_order(1, 0, 103)[:100])
    with pytest.raises(ValueError, match="batch_size"):
        Schedule(5, 10, 1, [0])


def test_shared_when_seeds_equal():
    s = Schedule(64, 8, epochs=2, seeds=[3, 3, 3])
    assert s.shared
    for t in range(s.n_steps):
        assert s.batch(t).shape == (8,)
    # the same as a single-member schedule with that seed, and as the unshared form
    one = Schedule(64, 8, epochs=2, seeds=[3])
    mixed = Schedule(64, 8, epochs=2, seeds=[3, 3, 4])
    assert not mixed.shared
    for t in range(s.n_steps):
        assert np.array_equal(s.batch(t), one.batch(t))
        assert np.array_equal(mixed.batch(t)[0], s.batch(t))
        assert np.array_equal(mixed.batch(t)[1], s.batch(t))


def test_max_steps_truncates():
    s = Schedule(64, 8, epochs=5, seeds=[0], max_steps=13)
    assert s.n_steps == 13
    assert Schedule(64, 8, epochs=1, seeds=[0], max_steps=1000).n_steps == 8


@pytest.mark.parametrize("swaps", [1, 2, 4])
def test_swap_changes_exactly_2_swaps_positions_in_epoch_0(swaps):
    n, b, spe = 120, 6, 20
    pairs = swap_pairs(seed=9, steps_per_epoch=spe, swaps=swaps)
    assert len(pairs) == swaps
    flat = [p for pr in pairs for p in pr]
    assert len(set(flat)) == 2 * swaps and all(0 <= p < spe for p in flat)
    s = Schedule(n, b, epochs=3, seeds=[11, 11], swaps=[[], pairs])
    assert not s.shared
    for e in range(3):
        ep = _epoch(s, e)  # (2, spe, b)
        differ = [i for i in range(spe) if not np.array_equal(ep[0, i], ep[1, i])]
        if e == 0:
            assert len(differ) == 2 * swaps
            assert sorted(differ) == sorted(flat)
            for i, j in pairs:
                assert np.array_equal(ep[1, i], ep[0, j]) and np.array_equal(ep[1, j], ep[0, i])
        else:
            assert differ == []
    # swap_pairs is seeded
    assert swap_pairs(9, spe, swaps) == pairs
    with pytest.raises(ValueError, match="perturbation.swaps"):
        swap_pairs(0, 5, 3)


@pytest.mark.parametrize("spec,T", [
    ({"mode": "every", "every": 7}, 50),
    ({"mode": "every", "every": 10}, 50),
    ({"mode": "log", "count": 40}, 1874),
    ({"mode": "log", "count": 8}, 42),
    ({"mode": "log", "count": 50}, 20),
    ({"mode": "steps", "steps": [30, 5, 5, 1000, 12]}, 100),
    ({"mode": "steps", "steps": [0]}, 10),
])
def test_checkpoint_steps_sorted_unique_with_ends(spec, T):
    s = checkpoint_steps(spec, T)
    assert s.dtype == np.int64
    assert s[0] == 0 and s[-1] == T
    assert np.all(np.diff(s) > 0)
    assert s.min() >= 0 and s.max() <= T
    if spec["mode"] == "every":
        assert set(range(0, T + 1, spec["every"])) <= set(s.tolist())
        assert len(s) == len(range(0, T + 1, spec["every"])) + (T % spec["every"] != 0)
    if spec["mode"] == "steps":
        assert set(s.tolist()) == {0, T} | {v for v in spec["steps"] if v <= T}


def test_log_checkpoints_dense_early():
    T = 1874
    s = checkpoint_steps({"mode": "log", "count": 40}, T)
    assert len(s) <= 40 and len(s) >= 30
    assert {0, 1, 2, 3} <= set(s.tolist())
    # more than half of the checkpoints in the first 5% of training
    assert (s <= 0.05 * T).sum() > len(s) / 2
    # gaps grow: log-spaced
    gaps = np.diff(s)
    assert gaps[:5].max() < gaps[-5:].min()
    # default mode is log
    assert np.array_equal(checkpoint_steps({}, T), checkpoint_steps({"mode": "log", "count": 40}, T))


def test_checkpoint_steps_errors_and_degenerate():
    with pytest.raises(ValueError, match="training.checkpoints.mode"):
        checkpoint_steps({"mode": "linear"}, 10)
    assert checkpoint_steps({"mode": "log", "count": 5}, 1).tolist() == [0, 1]
