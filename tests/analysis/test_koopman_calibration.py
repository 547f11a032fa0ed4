"""pathdep.analysis.koopman_calibration: the conjugacy test can fail (issue 18).

Null: two groups of independent seeds of one noisy linear system must be rejected at 0.05 in
at most 0.10 of >= 20 repeats; alternative: a shifted eigenvalue pair must be rejected (power);
copies of one baseline as replicates reject the null (the pseudo-replication the test avoids);
3 vs 3 replicates can never reject (exact floor 1/10).
"""

import numpy as np
import pytest

from pathdep.analysis.koopman import koopman_eigenvalues, spectral_distance
from pathdep.analysis.koopman_calibration import (
    calibrate, clopper_pearson, rotation_system, simulate,
)


def test_simulated_system_has_the_prescribed_spectrum():
    a = rotation_system((0.95, 0.8), (0.2, 0.6))
    want = [0.95 * np.exp(1j * 0.2), 0.95 * np.exp(-1j * 0.2), 0.8 * np.exp(0.6j), 0.8 * np.exp(-0.6j)]
    assert spectral_distance(np.linalg.eigvals(a), want) < 1e-12
    rng = np.random.default_rng(0)
    x = simulate(a, rng.standard_normal((3, 4)), np.zeros((3, 29, 4)), 0.0)
    assert spectral_distance(koopman_eigenvalues(x, rank=4), want) < 1e-8


def test_clopper_pearson():
    assert clopper_pearson(0, 20)[0] == 0.0 and clopper_pearson(20, 20)[1] == 1.0
    lo, hi = clopper_pearson(5, 100)
    assert lo == pytest.approx(0.01643, abs=1e-4) and hi == pytest.approx(0.11284, abs=1e-4)


def test_null_rejection_rate_and_power():
    res = calibrate(replicates=(3, 5), repeats=40, seed=1)
    rows = {(r["case"], r["replicates"]): r for r in res["table"]}
    for n in (3, 5):
        assert rows["null_seeds", n]["rate"] <= 0.10                   # calibrated under the null
        assert rows["null_seeds", n]["p_method"] == "exact"
    assert rows["alternative", 5]["rate"] >= 0.8                  # power against a different setting
    assert rows["alternative", 5]["w1_settings"] > 0 == rows["null_seeds", 5]["w1_settings"]
    assert rows["alternative", 3]["rate"] == 0.0                  # floor 1/10 > 0.05: cannot reject
    assert rows["alternative", 3]["p_min"] == pytest.approx(0.1)
    assert rows["null_copies", 5]["rate"] >= 0.9                  # pseudo-replicates reject a true null
    assert res["p_values"]["null_seeds"].shape == (2, 40)
    p = res["p_values"]["null_seeds"][1]
    assert 0.3 < np.median(p) < 0.7                               # null p-values spread over (0, 1]
