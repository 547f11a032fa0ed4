"""pathdep.config.ntk: defaults, the one-level merge, sections, datasets and one-line checks."""

import pytest

from pathdep.config import ConfigError
from pathdep.config.ntk import DEFAULTS, SECTIONS, check, dataset, path_experiment, resolve, sections

CFG = {"datasets": {"digits": {}, "fm": {}}, "defaults": {"dataset": "digits"}, "experiments": {"width": {}}}
RUNS = {"width": [{"run": "w16"}]}


def test_resolve_merges_one_level_of_sections():
    cfg = resolve({"pool": 1, "catapult": {"steps": 5}, "linearization": None})
    assert cfg["pool"] == 1 and cfg["catapult"]["steps"] == 5
    assert cfg["catapult"]["width"] == DEFAULTS["catapult"]["width"]
    assert cfg["linearization"] is None
    assert DEFAULTS["catapult"]["steps"] == 300                   # the defaults are not touched
    assert list(resolve(None)) == list(DEFAULTS)
    with pytest.raises(ValueError, match=r"^ntk.linearization.lr: no learning rate for loss 'mse'"):
        resolve({"linearization": {"lr": {"cross_entropy": 0.1}}})


def test_sections_dataset_path_experiment():
    assert sections({}) == list(SECTIONS)
    assert sections({"ntk": {"catapult": None}}) == [s for s in SECTIONS if s != "catapult"]
    assert dataset(CFG) == "digits" and dataset({**CFG, "ntk": {"dataset": "fm"}}) == "fm"
    assert path_experiment({"ntk": {}}, RUNS) == "width"
    assert path_experiment({"ntk": {"path_experiment": None}}, RUNS) is None
    assert path_experiment({"ntk": {}}, {"other": []}) is None      # the default names no experiment


def test_check_one_line_errors():
    check({**CFG, "ntk": {"seed": 0}}, RUNS)
    check({**CFG, "experiments": {"a": {}}, "ntk": {"seed": 0}}, {"a": []})   # default path_experiment absent: fine
    for spec, msg in (({"dataset": "digitz"}, r"^config: ntk.dataset: unknown dataset 'digitz' \(expected one of: "
                                              r"digits, fm\)$"),
                      ({"path_experiment": "wdth"}, r"^config: ntk.path_experiment: unknown experiment 'wdth'"),
                      ({"linearization": {"lr": {"mse": 0.1}}}, r"^config: ntk.linearization.lr: no learning rate")):
        with pytest.raises(ConfigError, match=msg):
            check({**CFG, "ntk": spec}, RUNS)
