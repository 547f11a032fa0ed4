"""pathdep.config.grokking: the `grokking:` block names configured experiments; anything else is
one line naming the key."""

import pytest

from pathdep.config import ConfigError
from pathdep.config.grokking import check, resolve

RUNS = {"grok": [{"run": "a"}], "epsilon": [{"run": "b"}]}
EVERY = {"training": {"checkpoints": {"mode": "every", "every": 1}}}
KRUNS = {"k": [{"run": f"c{c}", "optimizer": {"constrain_norm": c}, **EVERY} for c in (False, True)],
         "eps": [{"run": f"eps{e}", "swept": {"perturbation.epsilon": e}} for e in (1e-6, 1e-2)]}


def test_koopman_and_path_blocks():
    from pathdep.config.grokking import KOOPMAN_DEFAULTS, koopman_spec, path_spec

    cfg = {"grokking": {"koopman": {"experiments": ["k"], "rank": 6}, "path": {"experiments": ["eps"]}}}
    check(cfg, KRUNS)
    s = koopman_spec(cfg, KRUNS)
    assert s["rank"] == 6 and s["observables"] == KOOPMAN_DEFAULTS["observables"] and s["steps"] == 100
    assert path_spec(cfg, KRUNS)["experiments"] == ["eps"]
    assert koopman_spec({}, KRUNS)["experiments"] == [] and path_spec({}, KRUNS)["n_perm"] == 10000
    one_group = {"k": [dict(KRUNS["k"][0], run="x")]}
    with pytest.raises(ConfigError, match=r"1 group\(s\) of optimizer.constrain_norm, need >= 2"):
        check({"grokking": {"koopman": {"experiments": ["k"]}}}, one_group)
    with pytest.raises(ConfigError, match="key 'model.width' not in the runs"):
        check({"grokking": {"koopman": {"experiments": ["k"], "group_by": "model.width"}}}, KRUNS)


def test_resolves_named_excluded_experiments():
    cfg = {"grokking": {"experiments": ["grok"]}, "figures": {"exclude": ["grok"]}}
    assert resolve(cfg, RUNS) == ["grok"]
    assert resolve({}, RUNS) == []
    assert resolve({"grokking": {"experiments": ["grok"]}}, RUNS) == ["grok"]   # standard figures too: allowed
    check(cfg, RUNS)


@pytest.mark.parametrize("cfg,match", [
    ({"grokking": {"experiments": ["grk"]}, "figures": {"exclude": ["grk"]}}, "unknown experiment 'grk'"),
    ({"grokking": {"experiments": "grok"}}, "expected a list of experiment names"),
    ({"grokking": {"exps": ["grok"]}}, "expected a mapping with keys"),
    ({"grokking": {"koopman": {"experiments": ["grk"]}}}, "grokking.koopman.experiments: unknown experiment"),
    ({"grokking": {"koopman": {"rnak": 3}}}, "grokking.koopman.rnak: unknown key"),
    ({"grokking": {"koopman": {"observables": ["loss"]}}}, "grokking.koopman.observables"),
    ({"grokking": {"koopman": {"steps": 2}}}, "grokking.koopman.steps"),
    ({"grokking": {"koopman": {"experiments": ["grok"]}}}, "must record every step"),
    ({"grokking": {"path": {"experiments": ["epsilon"]}}}, "does not sweep perturbation.epsilon"),
    ({"grokking": {"path": "x"}}, "grokking.path: expected a mapping"),
])
def test_errors_are_one_line(cfg, match):
    with pytest.raises(ConfigError, match=r"^config: grokking") as exc:
        check(cfg, RUNS)
    assert match in str(exc.value) and "\n" not in str(exc.value)
