"""pathdep.config.geometry: defaults, per-experiment overrides, one-line errors, checkpoint
selection."""

from __future__ import annotations

import numpy as np
import pytest

from pathdep.config.errors import ConfigError
from pathdep.config.geometry import DEFAULTS, check, lambda_grid, resolve, select_checkpoints


def test_select_checkpoints():
    steps = np.array([0, 1, 2, 4, 8, 16, 32, 64])
    assert select_checkpoints([0.0, 0.5, 1.0], "fraction", steps).tolist() == [0, 6, 7]
    assert select_checkpoints([0.1], "fraction", steps).tolist() == [4]  # 6.4 -> step 8
    assert select_checkpoints([0, -1, 3], "index", steps).tolist() == [0, 3, 7]
    assert select_checkpoints([5, 100], "step", steps).tolist() == [3, 7]
    assert select_checkpoints("all", "fraction", steps).tolist() == list(range(8))
    with pytest.raises(ValueError, match="geometry.checkpoints: fraction 1.5"):
        select_checkpoints([1.5], "fraction", steps)
    with pytest.raises(ValueError, match="index 9 out of range"):
        select_checkpoints([9], "index", steps)


def test_resolve_defaults_overrides_and_errors():
    s = resolve(None)
    assert s["lambdas"] == DEFAULTS["lambdas"] and s["hypersphere"] == DEFAULTS["hypersphere"]
    s = resolve({"lambdas": 5, "hypersphere": {"walkers": 10}, "experiments": {"a": {"lambdas": 7}}}, "a")
    assert s["lambdas"] == 7 and s["hypersphere"]["walkers"] == 10 and s["hypersphere"]["dims"]
    assert resolve({"lambdas": 5, "experiments": {"a": {"lambdas": 7}}}, "b")["lambdas"] == 5
    assert resolve(None)["bn_reset"] == 1000 and resolve({"experiments": {"a": {"bn_reset": 300}}}, "a")["bn_reset"] == 300
    for bad, key in [({"lamdas": 3}, "geometry.lamdas"), ({"lambdas": [0.2, 1.0]}, "geometry.lambdas"),
                     ({"checkpoint_mode": "percent"}, "geometry.checkpoint_mode"),
                     ({"interp_members": -1}, "geometry.interp_members"), ({"fits": {}}, "geometry.fits"),
                     ({"bn_reset": 0}, "geometry.bn_reset")]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")) as e:
            resolve(bad)
        assert "\n" not in str(e.value)


def test_lambda_grid():
    np.testing.assert_allclose(lambda_grid(resolve({"lambdas": 3})), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(lambda_grid(resolve({"lambdas": [1.0, 0.0, 0.25]})), [0.0, 0.25, 1.0])


def test_check_names_the_key_where_it_was_written():
    config = {"experiments": {"a": {}, "b": {}}, "geometry": {"lambdas": 5, "experiments": {"a": {"lambdas": [0.5]}}}}
    with pytest.raises(ConfigError, match=r"^config: geometry\.experiments\.a\.lambdas: "):
        check(config, {})
    config["geometry"]["experiments"] = {"c": {}}
    with pytest.raises(ConfigError, match=r"^config: geometry\.experiments\.c: unknown experiment"):
        check(config, {})
    check({"experiments": {"a": {}}, "geometry": {"lambdas": 5}}, {})
