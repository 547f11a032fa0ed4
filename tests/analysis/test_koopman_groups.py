"""pathdep.analysis.koopman_groups: segment finder, padding, W1 between runs, group tests."""

import numpy as np

from pathdep.analysis.koopman_groups import (
    group_pair_tests, pad_runs, pad_spectra, run_spectra, uniform_segment, w1_between_runs,
)


def test_uniform_segment():
    assert uniform_segment(np.array([0, 1, 2, 4, 8, 10, 12, 14, 16])) == slice(4, 9)
    assert uniform_segment(np.arange(0, 50, 5)) == slice(0, 10)
    assert uniform_segment(np.array([3])) == slice(0, 1)


def test_pad_spectra_and_runs():
    p = pad_spectra([np.array([0.5 + 0.1j]), None, np.array([0.9, 0.1])], 3)
    assert p.shape == (3, 3) and p[0, 0] == 0.5 + 0.1j and np.isnan(p[0, 1:]).all() and np.isnan(p[1]).all()
    pr, mr, mw = pad_runs([np.array([0.9, 0.1]), None], [[np.array([0.9]), None], [None]], [[0.0, np.nan], [np.nan]])
    assert pr.shape == (2, 2) and mr.shape == (2, 2, 2) and mw.shape == (2, 2)
    assert np.isnan(mr[1]).all() and mr[0, 0, 0] == 0.9


def _linear(eigs, seed, k=4, t=30):
    d = len(eigs)
    v = np.random.default_rng(100).standard_normal((d, d)) + 2 * np.eye(d)
    a = v @ np.diag(eigs) @ np.linalg.inv(v)
    rng = np.random.default_rng(seed)
    y = np.empty((k, t, d))
    y[:, 0] = rng.standard_normal((k, d))
    for i in range(1, t):
        y[:, i] = y[:, i - 1] @ a.T + 1e-3 * rng.standard_normal((k, d))
    return y


def test_run_spectra_w1_matrix_and_group_tests():
    eig_a, eig_b = [0.95, 0.8, 0.6, 0.3], [0.9, 0.5, -0.3, 0.1]
    blocks = (np.repeat([0, 1], 2), np.tile([0, 1], 2))          # 2 baselines x (baseline + 1 copy)
    res = [run_spectra(_linear(e, s), 0, 4, 1e-3, f"r{s}", *blocks) for e, s in
           [(eig_a, 0), (eig_a, 1), (eig_a, 2), (eig_b, 3), (eig_b, 4), (eig_b, 5)]]
    assert res[0]["member_w1"][0] == 0.0 and res[0]["member_w1"][2] == 0.0 and res[0]["member_w1"][1] > 0
    assert all(r["note"] == "" for r in res) and all(len(r["replicates"]) == 2 for r in res)
    pooled = [r["pooled"] for r in res]
    d = w1_between_runs(pooled)
    np.testing.assert_allclose(d, d.T, atol=1e-12)
    assert np.all(np.diag(d) == 0)
    reps = [r["replicates"] for r in res]
    rows = group_pair_tests(list("AAABBB"), reps, n_perm=200, seed=0, tol=1e-3)
    assert len(rows) == 1 and (rows[0]["n_a"], rows[0]["n_b"]) == (6, 6)      # 3 runs x 2 baselines
    assert rows[0]["w1_between"] > 5 * rows[0]["w1_within"]
    assert rows[0]["p_method"] == "exact" and rows[0]["p_value"] == rows[0]["p_min"] == 2 / 924
    # each run a group, its baselines the replicates: 2 vs 2 (floor 1/3), same system -> large p
    rows = group_pair_tests(["r0", "r1"], reps[:2], n_perm=200, seed=0, tol=1e-3)
    assert rows[0]["p_value"] > 0.05 and rows[0]["p_min"] == 1 / 3
    # one baseline per run: copies are no replicates, so there is no test
    one = [run_spectra(_linear(e, s), 0, 4, 1e-3, f"r{s}") for e, s in [(eig_a, 0), (eig_b, 3)]]
    assert len(one[0]["replicates"]) == 1
    rows = group_pair_tests(["r0", "r3"], [r["replicates"] for r in one], n_perm=200, seed=0, tol=1e-3)
    assert np.isnan(rows[0]["p_value"]) and "one baseline: no test" in rows[0]["note"]


def test_diverged_member_drops_out():
    y = _linear([0.9, 0.5], 0)
    y[2, 5:] = np.nan
    r = run_spectra(y, 0, 2, 1e-3, "x")
    assert r["members"][2] is None and np.isnan(r["member_w1"][2]) and r["pooled"] is not None
    assert w1_between_runs([r["pooled"], None])[0, 1] != w1_between_runs([r["pooled"], None])[0, 1]   # NaN
