"""pathdep.config.figures: the ``figures:`` block resolved, the standard experiments, and its
cross-key check as one-line ConfigErrors."""

import pytest

from pathdep.config.errors import ConfigError
from pathdep.config.figures import DEFAULTS, check, resolve, standard_experiments


def test_resolve_merges_and_names_the_key():
    assert resolve(None) == DEFAULTS
    assert resolve({"exclude": ["a"]}) == {"exclude": ["a"]}
    with pytest.raises(ValueError, match=r"^figures\.exlude: unknown key"):
        resolve({"exlude": ["a"]})
    with pytest.raises(ValueError, match=r"^figures\.exclude: expected a list of experiment names"):
        resolve({"exclude": "a"})


def test_standard_experiments_keep_the_config_order_minus_exclude():
    config = {"experiments": {"b": {}, "a": {}, "c": {}}, "figures": {"exclude": ["a"]}}
    assert standard_experiments(config) == ["b", "c"]
    assert standard_experiments({"experiments": {"b": {}, "a": {}}}) == ["b", "a"]


def test_check_names_an_unknown_experiment():
    config = {"experiments": {"a": {}, "b": {}}, "figures": {"exclude": ["b"]}}
    check(config, {})
    config["figures"]["exclude"] = ["nope"]
    with pytest.raises(ConfigError, match=r"^config: figures\.exclude: unknown experiment 'nope' "
                                          r"\(expected some of: a, b\)$"):
        check(config, {})
