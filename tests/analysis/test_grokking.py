"""pathdep.analysis.grokking: first steps at a level on known curves, and the grokking delay."""

import numpy as np
import pytest

from pathdep.analysis.grokking import first_step, key_steps

STEPS = np.array([0, 1, 2, 5, 10, 20, 50, 100, 200, 500])


def test_first_step_known_curves():
    acc = np.array([
        [0.0, 0.1, 0.2, 0.5, 0.6, 0.9, 1.0, 1.0, 1.0, 1.0],   # reaches 0.5 at step 5, 0.9 at 20
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4],   # never
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],   # first hit counts even if lost
    ])
    np.testing.assert_array_equal(first_step(acc, STEPS, 0.5), [5, np.nan, 1])
    np.testing.assert_array_equal(first_step(acc, STEPS, 0.9), [20, np.nan, 1])
    # 1 - 1e-12 counts as 100 % (hits / n rounding), 0.99 does not
    assert first_step(np.r_[0.5, 1 - 1e-12, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], STEPS, 1.0) == 1
    assert np.isnan(first_step(np.full(10, 0.99), STEPS, 1.0))
    with pytest.raises(ValueError, match="acc: expected 10 checkpoints"):
        first_step(np.zeros((2, 3)), STEPS, 0.5)


def test_key_steps_delay_of_grokking_and_constrained():
    train = np.array([[0.1, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                      [0.1, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    test = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.6, 0.95, 1.0],    # groks late
                     [0.0, 0.2, 0.6, 0.95, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])   # follows train
    k = key_steps(train, test, STEPS)
    np.testing.assert_array_equal(k["train_1.0"], [2, 2])
    np.testing.assert_array_equal(k["test_0.5"], [100, 2])
    np.testing.assert_array_equal(k["test_0.9"], [200, 5])
    np.testing.assert_allclose(k["delay"], [100.0, 2.5])
