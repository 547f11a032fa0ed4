"""Config validation of ResNet runs (model kind resnet): a valid run resolves with its own depth and
width, norm batch resolves (a fan-in init with it is refused), and a bad depth, shortcut, norm, n_params
or a ResNet on flat inputs is one line naming the key."""

import copy

import pytest

from pathdep.config import ConfigError, validate

BASE = {
    "seed": 3, "device": "cpu",
    "datasets": {"digits": {"source": "sklearn_digits"},
                 "ts": {"source": "teacher_student", "n_train": 64, "n_test": 32, "d_in": 4, "d_out": 2}},
    "defaults": {
        "dataset": "digits",
        "model": {"kind": "resnet", "depth": 8, "width": 1, "shortcut": "A", "norm": "none"},
        "init": {"scheme": "default"},
        "perturbation": {"epsilon": 0.01, "members": 2},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        "training": {"epochs": 1, "batch_size": 32, "checkpoints": {"mode": "log", "count": 4}},
    },
    "experiments": {"a": {}},
}


def _cfg(**model):
    c = copy.deepcopy(BASE)
    c["experiments"]["a"] = {"model": model} if model else {}
    return c


def test_resnet_run_resolves_with_its_own_depth_and_width():
    run = validate(_cfg(depth=20, width=2, shortcut="B"))["a"][0]
    m = run["model"]
    assert m["kind"] == "resnet" and m["depth"] == 20 and m["width"] == 2 and m["norm"] == "none"


@pytest.mark.parametrize("model", [{"norm": "batch"}, {"norm": None}])
def test_norm_batch_resolves_and_refuses_a_fan_in_init(model):
    """norm batch trains (its statistics travel with each member, pathdep.stages.train); the
    fan-in init schemes cannot initialise a BatchNorm weight: one line naming init.scheme."""
    c = _cfg()
    if model["norm"] is None:
        del c["defaults"]["model"]["norm"]      # the default norm is batch
    else:
        c["experiments"]["a"] = {"model": model}
    assert validate(copy.deepcopy(c))["a"][0]["model"].get("norm", "batch") == "batch"
    c["defaults"]["init"] = {"scheme": "kaiming_normal"}
    with pytest.raises(ConfigError, match=r"^config: .*init\.scheme: kind resnet with norm batch uses its own init") as e:
        validate(c)
    assert "\n" not in str(e.value)
    c["defaults"]["model"]["norm"] = "none"     # without BatchNorm the fan-in schemes apply
    c["experiments"]["a"] = {}
    assert validate(c)["a"][0]["init"]["scheme"] == "kaiming_normal"


@pytest.mark.parametrize("model,pattern", [
    ({"depth": 19}, r"^config: experiments\.a\.model\.depth: expected 6n\+2 .* or 18 \| 34 for kind resnet, got 19"),
    ({"depth": 12}, r"^config: experiments\.a\.model\.depth: expected 6n\+2"),
    ({"shortcut": "C"}, r"^config: experiments\.a\.model\.shortcut"),
    ({"norm": "layer"}, r"^config: experiments\.a\.model\.norm"),
    ({"n_params": 1000}, r"^config: experiments\.a\.model\.n_params: kind resnet is sized by depth and width"),
])
def test_bad_resnet_keys_are_one_line(model, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        validate(_cfg(**model))
    assert "\n" not in str(e.value)


def test_resnet_on_flat_inputs_is_refused():
    c = _cfg()
    c["experiments"]["a"]["dataset"] = "ts"
    with pytest.raises(ConfigError, match=r"resnet needs image inputs") as e:
        validate(c)
    assert "\n" not in str(e.value)
