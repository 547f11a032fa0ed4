"""pathdep.config.koopman: defaults, resolution, the windows block, group labels, checks."""

import pytest

from pathdep.config import ConfigError
from pathdep.config.koopman import DEFAULTS, check, experiment_spec, group_of, resolve, window_size


def test_resolve_merges_defaults_and_refuses_unknown_keys():
    s = resolve({"rank": 4})
    assert s["rank"] == 4 and s["observable"] == DEFAULTS["experiment"]["observable"]
    assert list(s) == list(DEFAULTS["experiment"])          # key order of the defaults (the files' spec attr)
    assert resolve(None, "toy") == DEFAULTS["toy"] and resolve(None, "toy") is not DEFAULTS["toy"]
    with pytest.raises(ValueError, match=r"^koopman.toy.etaa: unknown key"):
        resolve({"etaa": 1}, "toy")
    assert resolve({"repeats": 30}, "calibration")["repeats"] == 30
    with pytest.raises(ValueError, match=r"^koopman.calibration.repeat: unknown key"):
        resolve({"repeat": 1}, "calibration")
    with pytest.raises(ValueError, match=r"^koopman.calibration.replicates: expected sizes >= 2"):
        resolve({"replicates": [1, 4]}, "calibration")
    with pytest.raises(ValueError, match=r"^koopman.rnak: unknown key"):
        resolve({"rnak": 1})
    with pytest.raises(ValueError, match=r"^koopman.observable: expected one of"):
        resolve({"observable": "activations"})


def test_experiment_spec_merges_the_override():
    block = {"toy": {"T": 10}, "n_perm": 50, "rank": 3, "experiments": {"a": {"rank": 5}, "b": None}}
    assert experiment_spec(block, "a") == {"n_perm": 50, "rank": 5}
    assert experiment_spec(block, "b") == {"n_perm": 50, "rank": 3}


def test_windows_block():
    assert window_size({"size": 20}, 0) == (20, 20)
    assert window_size({"size": 20, "stride": 5}, 0) == (20, 5)
    assert window_size({"per_epoch": True}, 42) == (42, 42)
    for bad, msg in (({"size": 2, "per_epoch": True}, "not both"), ({"stride": 3}, "expected size"),
                     ({"sise": 3}, r"koopman.windows.sise: unknown key"), (5, "expected a mapping")):
        with pytest.raises(ValueError, match=msg):
            window_size(bad, 10)
        with pytest.raises(ValueError, match=msg):
            resolve({"windows": bad})
    with pytest.raises(ValueError, match="per_epoch: the trajectory does not record"):
        window_size({"per_epoch": True}, 0)


def test_group_of():
    run = {"run": "w16", "model": {"width": 16}}
    assert group_of(run, None) == "w16" and group_of(run, "model.width") == "16"
    with pytest.raises(ValueError, match="koopman.group_by: key 'model.depth'"):
        group_of(run, "model.depth")


def test_check_one_line_errors():
    runs = {"a": [{"run": "r0", "model": {"width": 4}}]}
    cfg = {"experiments": {"a": {}}, "koopman": {"experiments": {"a": {"group_by": "model.width"}}}}
    check(cfg, runs)
    for block, msg in (({"experiments": {"b": {}}}, r"^config: koopman.experiments.b: unknown experiment"),
                       ({"toy": {"n_groups": 13}}, r"^config: koopman.toy.n_groups: expected 2 .. grid"),
                       ({"experiments": {"a": {"group_by": "model.depth"}}}, r"^config: koopman.group_by: key"),
                       ({"experiments": {"a": {"windows": {"stride": 2}}}}, r"^config: koopman.windows: expected size")):
        with pytest.raises(ConfigError, match=msg):
            check({"experiments": {"a": {}}, "koopman": block}, runs)


def test_windows_of_weights_need_evenly_spaced_checkpoints():
    def runs(mode):
        return {"r": [{"run": "base", "training": {"checkpoints": {"mode": mode}}}]}

    cfg = {"experiments": {"r": {}}, "koopman": {"experiments": {"r": {"windows": {"size": 20}}}}}
    with pytest.raises(ConfigError, match=r"^config: koopman.experiments.r.windows: expected evenly spaced "
                                          r"checkpoints .* records mode log \(or use observable: loss\)$"):
        check(cfg, runs("log"))
    check(cfg, runs("every"))
    cfg["koopman"]["experiments"]["r"]["observable"] = "loss"          # the per-step loss: any checkpoints
    check(cfg, runs("log"))
    cfg["koopman"]["experiments"]["r"] = {"observable": "weights"}     # no windows: no check
    check(cfg, runs("log"))
