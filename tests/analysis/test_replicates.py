"""Tests of pathdep.analysis.replicates: blocks, own baselines, t and bootstrap intervals."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pathdep.analysis.replicates import bootstrap_interval, interval, labels, own_baseline, per_baseline


def test_labels_and_own_baseline_of_blocks():
    t = pd.DataFrame({"role": ["baseline", "member", "member"] * 2, "baseline": [0, 0, 0, 1, 1, 1],
                      "copy": [0, 1, 2, 0, 1, 2]})
    b, c = labels(t)
    assert own_baseline(b, c).tolist() == [0, 0, 0, 3, 3, 3]


def test_labels_of_old_files_are_one_block():
    b, c = labels(pd.DataFrame({"role": ["baseline", "member", "member"]}))
    assert b.tolist() == [0, 0, 0] and c.tolist() == [0, 1, 2]
    assert own_baseline(b, c).tolist() == [0, 0, 0]


def test_own_baseline_refuses_a_block_without_baseline():
    with pytest.raises(ValueError, match="baseline 1"):
        own_baseline(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 2]))


def test_per_baseline_averages_copies_only():
    v = np.array([[100.0], [1.0], [3.0], [100.0], [5.0], [np.nan]])
    b, c = np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2])
    assert per_baseline(v, b, c)[:, 0].tolist() == [2.0, 5.0]
    assert per_baseline(v, b, c, include_baseline=True)[:, 0].tolist() == pytest.approx([104 / 3, 52.5])


def test_t_interval_matches_scipy():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    m, lo, hi = interval(x)
    elo, ehi = stats.t.interval(0.95, 3, loc=x.mean(), scale=stats.sem(x))
    assert m == pytest.approx(3.5) and lo == pytest.approx(elo) and hi == pytest.approx(ehi)


def test_one_replicate_gives_no_interval():
    m, lo, hi = interval(np.array([[2.0, np.nan], [np.nan, np.nan]]))
    assert m[0] == 2.0 and np.isnan(lo[0]) and np.isnan(hi[0]) and np.isnan(m[1])


def test_t_interval_coverage_on_gaussian_replicates():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(4, 4000))           # 4000 experiments of R = 4 replicates
    _, lo, hi = interval(x)
    cover = np.mean((lo <= 3.0) & (3.0 <= hi))
    assert abs(cover - 0.95) < 0.02


def test_bootstrap_interval_brackets_the_mean_and_is_seeded():
    x = np.array([1.0, 2.0, 4.0, 7.0, 3.0])
    m, lo, hi = bootstrap_interval(x, seed=3)
    assert lo < m < hi and m == pytest.approx(3.4)
    assert bootstrap_interval(x, seed=3)[1] == lo


def test_labels_of_a_bare_dataset_take_row_zero_as_the_baseline():
    import xarray as xr

    ds = xr.Dataset({"a": (("member", "checkpoint"), np.zeros((5, 2))), "b": (("member",), np.zeros(5))})
    b, c = labels(ds)
    assert b.tolist() == [0] * 5 and c.tolist() == [0, 1, 2, 3, 4]
