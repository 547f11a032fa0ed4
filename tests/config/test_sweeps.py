"""pathdep.config.sweeps: short names of swept values; lr and lr_eff."""

from __future__ import annotations

import math

from pathdep.config.sweeps import learning_rates, sweep_values


def test_sweep_values_names():
    assert sweep_values({"swept": {"optimizer.lr": 0.1, "model.hidden": [25]}}) == {"lr": 0.1, "width": 25}
    assert sweep_values({"swept": {"optimizer.name": "adam", "model.kind": "lenet5",
                                   "perturbation.epsilon": 0.01}}) == {
        "optimizer": "adam", "architecture": "lenet5", "epsilon": 0.01}
    assert sweep_values({"swept": {"model.hidden": [10, 20], "model.bias": False}}) == {"width": "10-20", "bias": "False"}
    assert sweep_values({}) == {}


def test_learning_rates():
    assert learning_rates({"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}) == (0.1, 0.1 / (1 - 0.9))
    assert learning_rates({"optimizer": {"name": "sgd", "lr": 0.1}}) == (0.1, 0.1)
    assert learning_rates({"optimizer": {"name": "adam", "lr": 0.003, "momentum": 0.9}}) == (0.003, 0.003)
    lr, lr_eff = learning_rates({})
    assert math.isnan(lr) and math.isnan(lr_eff)
