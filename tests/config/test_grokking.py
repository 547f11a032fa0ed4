"""pathdep.config.grokking: the `grokking:` block names configured experiments; anything else is
one line naming the key."""

import pytest

from pathdep.config import ConfigError
from pathdep.config.grokking import check, resolve

RUNS = {"grok": [{"run": "a"}], "epsilon": [{"run": "b"}]}


def test_resolves_named_excluded_experiments():
    cfg = {"grokking": {"experiments": ["grok"]}, "figures": {"exclude": ["grok"]}}
    assert resolve(cfg, RUNS) == ["grok"]
    assert resolve({}, RUNS) == []
    assert resolve({"grokking": {"experiments": ["grok"]}}, RUNS) == ["grok"]   # standard figures too: allowed
    check(cfg, RUNS)


@pytest.mark.parametrize("cfg,match", [
    ({"grokking": {"experiments": ["grk"]}, "figures": {"exclude": ["grk"]}}, "unknown experiment 'grk'"),
    ({"grokking": {"experiments": "grok"}}, "expected a list of experiment names"),
    ({"grokking": {"exps": ["grok"]}}, "expected a mapping with key 'experiments'"),
])
def test_errors_are_one_line(cfg, match):
    with pytest.raises(ConfigError, match=r"^config: grokking") as exc:
        check(cfg, RUNS)
    assert match in str(exc.value) and "\n" not in str(exc.value)
