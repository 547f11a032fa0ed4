"""pathdep.config.architecture: the `architecture:` block names configured runs that differ in the
model only; anything else is one line naming the key. The default config's comparison is at
matched parameter count (the counts pinned)."""

from pathlib import Path

import pytest
import yaml

from pathdep.config import ConfigError, validate
from pathdep.config.architecture import check, resolve

ROOT = Path(__file__).resolve().parents[2]


def _run(exp, run, lr=0.01, model="mlp"):
    return {"experiment": exp, "run": run, "dataset": "fm", "model": {"kind": model},
            "perturbation": {"target": "init", "kind": "norm", "epsilon": 1e-4, "relative": True},
            "optimizer": {"name": "sgd", "lr": lr}, "training": {"batch_size": 64, "epochs": 1, "max_steps": 100,
                                                                  "dtype": "float32"}}


RUNS = {"a": [_run("a", "base")], "b": [_run("b", "base", model="lenet5")],
        "c": [_run("c", "x", model="resnet"), _run("c", "y", lr=0.1, model="resnet")]}


def test_resolves_with_defaults():
    spec = resolve({"architecture": {"runs": {"mlp": "a/base", "cnn": "b/base"}}}, RUNS)
    assert spec["runs"] == {"mlp": ("a", "base"), "cnn": ("b", "base")}
    assert spec["reference"] == "mlp" and spec["window"] == [0, 50] and spec["late_fraction"] == 0.5
    check({"architecture": {"runs": {"mlp": "a/base", "cnn": "b/base", "res": "c/x"}}}, RUNS)


@pytest.mark.parametrize("block,match", [
    ({"runs": {"mlp": "a/base", "cnn": "z/base"}}, "runs.cnn: unknown experiment 'z'"),
    ({"runs": {"mlp": "a/base", "cnn": "b/nope"}}, "runs.cnn: experiment 'b' has no run 'nope'"),
    ({"runs": {"mlp": "a/base"}}, "expected a mapping of >= 2 labels"),
    ({"runs": {"mlp": "a/base", "cnn": "b/base"}, "reference": "x"}, "reference: expected one of"),
    ({"runs": {"mlp": "a/base", "cnn": "b/base"}, "window": [50, 10]}, "window: expected [t0, t1]"),
    ({"runs": {"mlp": "a/base", "cnn": "b/base"}, "late_fraction": 0}, "late_fraction: expected a number"),
    ({"runs": {"mlp": "a/base", "cnn": "b/base"}, "windw": [0, 1]}, "expected a mapping with keys"),
    ({"runs": {"mlp": "a/base", "res": "c/y"}}, "differs from the reference 'mlp' in optimizer"),
])
def test_errors_are_one_line(block, match):
    with pytest.raises(ConfigError, match=r"^config: architecture") as exc:
        check({"architecture": block}, RUNS)
    assert match in str(exc.value) and "\n" not in str(exc.value)


def test_default_config_compares_at_matched_parameter_count():
    """MLP, LeNet-5 and ResNet-8 of config.yaml: the counts pinned, the MLP within 10 % of each."""
    from pathdep.core.models import build_model

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    runs = validate(cfg, check_files=False)
    spec = resolve(cfg, runs)
    index = {(r["experiment"], r["run"]): r for rs in runs.values() for r in rs}
    counts = {label: sum(p.numel() for p in build_model(index[key]["model"], (1, 28, 28), 10).parameters())
              for label, key in spec["runs"].items()}
    assert counts == {"mlp": 68380, "lenet5": 61706, "resnet": 75002}
    assert all(abs(n / counts["mlp"] - 1) <= 0.10 for n in counts.values())
