"""The workflow on a BatchNorm ResNet-8 config (issue 19): the tiny config with ``model: {kind: resnet,
depth: 8, norm: batch}`` validates and plans prepare, train, metrics, geometry and fits (a dry run;
the same targets ran to completion on this config in /tmp, 62 CPU-s, docs in /work/notes/bn.md;
tests/stages/test_train_bn.py runs train, metrics and geometry on it in process)."""

import yaml
from helpers import ROOT, TINY, job_counts, smk


def test_bn_resnet_config_plans_train_metrics_geometry_and_fits(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["defaults"].update({"model": {"kind": "resnet", "depth": 8, "width": 1, "norm": "batch"},
                            "init": {"scheme": "default"},
                            "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}})
    cfg["experiments"] = {"bn": {"perturbation": {"epsilon": [0.01, 0.1]}}}
    cfg["lyapunov"]["experiments"] = ["bn"]
    path = tmp_path / "bn.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = smk(["-n", "--cores", "1", "--configfile", str(path), "-d", str(tmp_path), "results/figures/scaling_bn.pdf",
             "results/figures/bn_barriers.png"], ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    c = job_counts(r.stdout)
    assert (c["train_ensemble"], c["compute_metrics"], c["geometry"], c["fit_experiment"]) == (2, 2, 2, 1)
