"""pathdep.config.lyapunov: defaults merged and checked for the spectra and the 2-2-1 study,
and the cross-key checks of the ``lyapunov:`` block as one-line ConfigErrors."""

import pytest

from pathdep.config.errors import ConfigError
from pathdep.config.lyapunov import DEFAULTS, STUDY_DEFAULTS, check, resolve, resolve_study


def test_resolve_merges_and_names_the_key():
    assert resolve(None) == DEFAULTS
    assert resolve({"experiments": ["lr"], "steps": 300})["steps"] == 300
    with pytest.raises(ValueError, match="lyapunov.transient"):
        resolve({"transient": -1})
    assert resolve({"baselines": 2})["baselines"] == 2 and DEFAULTS["baselines"] == 0  # 0: every baseline
    with pytest.raises(ValueError, match="lyapunov.baselines"):
        resolve({"baselines": -1})
    with pytest.raises(ValueError, match="lyapunov.window"):
        resolve({"steps": 10, "window": 20})
    with pytest.raises(ValueError, match="lyapunov.qr_every"):
        resolve({"steps": 10, "window": 5, "transient": 3, "qr_every": 2})


def test_resolve_study_merges_and_names_the_key():
    cfg = resolve_study({"n_networks": 8})
    assert cfg["n_networks"] == 8 and set(cfg) == set(STUDY_DEFAULTS)
    assert cfg["backend"] in ("numba", "torch")  # "auto" resolved
    with pytest.raises(ValueError, match="study.times"):
        resolve_study({"times": [5, 50], "lyap_steps": 60, "warmup_backward": 30})
    with pytest.raises(ValueError, match="study.bogus"):
        resolve_study({"bogus": 1})
    with pytest.raises(ValueError, match="study.activations"):
        resolve_study({"activations": ["gelu"]})
    with pytest.raises(ValueError, match=r"study.lyap_steps: expected <= steps \(100\)"):
        resolve_study({"steps": 100, "lyap_steps": 150})


@pytest.mark.parametrize("block, key", [
    ({"experiments": ["a", "b"]}, "lyapunov.experiments"),
    ({"tangent_experiment": "nope"}, "lyapunov.tangent_experiment"),
    ({"steps": 10, "window": 20}, "lyapunov.window"),
    ({"study": {"steps": 100, "lyap_steps": 150}}, "lyapunov.study.lyap_steps"),
])
def test_check_raises_one_line_naming_the_key(block, key):
    config = {"experiments": {"a": {}}, "lyapunov": block}
    with pytest.raises(ConfigError, match=rf"^config: {key}: ") as exc:
        check(config, {"a": []})
    assert "\n" not in str(exc.value)


def test_check_accepts_a_good_block():
    check({"experiments": {"a": {}}, "lyapunov": {"experiments": ["a"], "tangent_experiment": "a",
                                                  "k": 2, "study": {"n_networks": 4}}}, {"a": []})
