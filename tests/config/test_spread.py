"""pathdep.config.spread: the spread block's one-line errors."""

import pytest

from pathdep.config import ConfigError
from pathdep.config.spread import check, resolve


def test_spread_block_errors():
    runs = {"epsilon": [{"run": "eps0.0001"}], "schedule": [{"run": "base"}]}
    assert resolve({"spread": {"init": "epsilon/eps0.0001"}}, runs) == {"init": ("epsilon", "eps0.0001")}
    with pytest.raises(ConfigError, match=r"^config: spread.init: experiment 'epsilon' has no run 'eps1'"):
        resolve({"spread": {"init": "epsilon/eps1"}}, runs)
    with pytest.raises(ConfigError, match=r"^config: spread.x: unknown experiment 'nope'"):
        resolve({"spread": {"x": "nope/base"}}, runs)
    with pytest.raises(ConfigError, match=r"^config: spread.x: expected '<experiment>/<run>'"):
        resolve({"spread": {"x": "schedule"}}, runs)
    with pytest.raises(ConfigError, match=r"^config: spread.x: unknown experiment 'nope'"):
        check({"spread": {"x": "nope/base"}}, runs)
    assert check({"spread": {"init": "epsilon/eps0.0001"}}, runs) is None
