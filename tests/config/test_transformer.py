"""Config validation of transformer runs on token datasets: a valid grokking run resolves, and a
bad model key, a bad value or a transformer on images gives one line naming the key."""

import copy

import pytest

from pathdep.config import ConfigError, validate

BASE = {
    "seed": 3, "device": "cpu",
    "datasets": {"mod": {"source": "modular_arithmetic", "p": 7, "op": "add", "train_fraction": 0.5},
                 "digits": {"source": "sklearn_digits"}},
    "defaults": {
        "dataset": "mod",
        "model": {"kind": "transformer", "n_layer": 1, "n_head": 2, "d_model": 8, "d_mlp": 16,
                  "layernorm": "none", "tied": False},
        "init": {"scheme": "default"},
        "perturbation": {"epsilon": 0.01, "members": 2},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1.0, "betas": [0.9, 0.98]},
        "training": {"epochs": 3, "batch_size": 24, "checkpoints": {"mode": "log", "count": 4}},
    },
    "experiments": {"a": {}},
}


def _cfg(**model):
    c = copy.deepcopy(BASE)
    c["experiments"]["a"] = {"model": model} if model else {}
    return c


def test_transformer_run_resolves():
    run = validate(_cfg())["a"][0]
    assert run["model"]["kind"] == "transformer" and run["model"]["d_model"] == 8


@pytest.mark.parametrize("model,pattern", [
    ({"n_heads": 2}, r"experiments\.a\.model\.n_heads"),
    ({"layernorm": "post"}, r"experiments\.a\.model\.layernorm"),
    ({"n_head": 3}, r"experiments\.a\.model\.n_head: expected a divisor of d_model"),
    ({"context": 2}, r"experiments\.a\.model\.context: expected >= the sequence length 3"),
])
def test_bad_transformer_keys_give_one_line(model, pattern):
    with pytest.raises(ConfigError, match=r"^config: " + pattern) as exc:
        validate(_cfg(**model))
    assert "\n" not in str(exc.value)


def test_transformer_on_images_is_refused():
    c = _cfg()
    c["experiments"]["a"] = {"dataset": "digits", "training": {"batch_size": 16}}
    with pytest.raises(ConfigError, match=r"^config: .*model\.kind: transformer needs token sequences") as exc:
        validate(c)
    assert "\n" not in str(exc.value)



def test_transformer_refuses_a_fan_in_init_scheme_in_one_line():
    c = _cfg()
    c["experiments"]["a"] = {"init": {"scheme": "kaiming_normal"}}
    with pytest.raises(ConfigError, match=r"^config: experiments\.a\.init\.scheme: kind transformer uses its own init"):
        validate(c)
