"""Config validation of the trajectory storage keys (training.checkpoints store / precision /
layers / subsample): lossless and relative-delta options accepted, a lossy full-weight precision
refused in one line where it would erase the smallest perturbation, subsampling refused."""

import copy

import pytest

from pathdep.config import ConfigError, validate

BASE = {
    "seed": 3, "device": "cpu",
    "datasets": {"digits": {"source": "sklearn_digits"}},
    "defaults": {
        "dataset": "digits",
        "model": {"kind": "mlp", "hidden": [8]},
        "perturbation": {"target": "init", "kind": "norm", "relative": True, "epsilon": 0.1, "members": 2},
        "optimizer": {"name": "sgd", "lr": 0.05},
        "training": {"epochs": 1, "batch_size": 32, "checkpoints": {"mode": "log", "count": 4}},
    },
    "experiments": {"a": {}},
}


def _cfg(checkpoints: dict, perturbation: dict | None = None):
    c = copy.deepcopy(BASE)
    c["defaults"]["training"]["checkpoints"].update(checkpoints)
    c["defaults"]["perturbation"].update(perturbation or {})
    return c


def _refused(cfg, *words):
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("config: ") and all(w in msg for w in words), msg
    return msg


@pytest.mark.parametrize("ck, pert", [
    ({"store": "deltas"}, {"epsilon": 1e-6}),
    ({"store": "deltas", "precision": "float16"}, {"epsilon": 1e-6}),
    ({"store": "deltas", "precision": "bfloat16"}, {"target": "schedule", "kind": "shuffle"}),
    ({"precision": "float16"}, {"epsilon": 0.1}),                  # 0.1 >= 100 * 2^-11 = 0.049
    ({"precision": "bfloat16"}, {"kind": "reinit"}),
    ({"store": "full", "precision": "exact"}, {}),
])
def test_accepted(ck, pert):
    run = validate(_cfg(ck, pert))["a"][0]
    assert all(run["training"]["checkpoints"][k] == v for k, v in ck.items())


def test_lossy_full_precision_refused_where_it_erases_eps():
    msg = _refused(_cfg({"precision": "float16"}, {"epsilon": 1e-6}), "training.checkpoints.precision",
                   "erase", "1e-06", "0.0488")
    assert "store: deltas" in msg
    _refused(_cfg({"precision": "bfloat16"}, {"epsilon": 0.1}), "erase", "0.391")   # 100 * 2^-8
    _refused(_cfg({"precision": "float16"}, {"relative": False}), "absolute")
    _refused(_cfg({"precision": "float16"}, {"target": "schedule", "kind": "shuffle"}), "schedule", "store: deltas")


@pytest.mark.parametrize("ck, key", [({"layers": ["fc0"]}, "layers"), ({"subsample": 4}, "subsample")])
def test_subsampling_refused(ck, key):
    _refused(_cfg(ck), f"training.checkpoints.{key}", "metrics")


def test_bad_values_are_schema_errors():
    _refused(_cfg({"store": "delta"}), "store")
    _refused(_cfg({"precision": "float8"}), "precision")
