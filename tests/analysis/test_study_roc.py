"""pathdep.analysis.study_roc: the Hanley-McNeil AUC error (closed form and resampling) and the
ROC table of a small study with an error per AUC from each combination's failure count."""

import numpy as np
import pytest

from pathdep.analysis.lyapunov_study import run_study
from pathdep.analysis.study_roc import hanley_mcneil_se, roc_with_errors
from pathdep.config.lyapunov import resolve_study


def test_hanley_mcneil_matches_closed_form_and_resampling():
    """At AUC 0.5 the formula is (1/4 + (p-1)/12 + (n-1)/12) / (p n); for exponential scores
    (where its Q1, Q2 are exact) its value at the true AUC matches the spread of AUCs over
    resampled data (5 %)."""
    p, n = 40, 160
    assert hanley_mcneil_se(0.5, p, n) == pytest.approx(np.sqrt((0.25 + (p - 1) / 12 + (n - 1) / 12) / (p * n)))
    assert np.isnan(hanley_mcneil_se(0.7, 0, 10))
    rng = np.random.default_rng(0)
    aucs = []
    for _ in range(2000):
        a, b = rng.exponential(3.0, p), rng.exponential(1.0, n)
        aucs.append((a[:, None] > b[None, :]).mean())
    true = 0.75  # P(Exp(rate 1/3) > Exp(rate 1)) = 1 / (1 + 1/3)
    assert np.mean(aucs) == pytest.approx(true, abs=0.005)
    assert np.std(aucs) == pytest.approx(float(hanley_mcneil_se(true, p, n)), rel=0.05)


def test_roc_with_errors_adds_standard_errors():
    """Per (activation, init range) the SE uses that combination's failure count (two
    activations: a (2, 1) count broadcast against (2, 1, indicator, time) AUCs)."""
    study = run_study(resolve_study({"activations": ["tanh", "relu"], "init_ranges": [3.0], "n_networks": 80,
                                     "steps": 300, "lyap_steps": 60, "times": [5, 10], "late_window": 20,
                                     "warmup_backward": 20, "max_buffer": 32}))
    roc = roc_with_errors(study, indicators=("loss", "ftle"))
    for a in range(2):
        n_pos = int(roc["n_failed"].values[a, 0])
        assert 0 < n_pos < 80
        expected = hanley_mcneil_se(roc["auc"].values[a, 0], n_pos, 80 - n_pos)
        np.testing.assert_allclose(roc["auc_se"].values[a, 0], expected)
    assert roc.attrs["max_auc_se"] == pytest.approx(np.nanmax(roc["auc_se"].values))
    assert np.isfinite(roc["auc_std"].values).all()
