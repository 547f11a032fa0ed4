# Validation and the get_* helpers: the only place in the workflow with `def`.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from pathdep.config import ConfigError, validate  # noqa: E402

try:
    RUNS = validate(config)
except ConfigError as exc:
    sys.exit(str(exc))

RUN_INDEX = {(r["experiment"], r["run"]): r for runs in RUNS.values() for r in runs}


wildcard_constraints:
    exp="[A-Za-z0-9_-]+",
    run="[A-Za-z0-9_.+-]+",
    dataset="[A-Za-z0-9_-]+",


def get_run(wildcards):
    """The resolved config slice of one run (passed to jobs through params:)."""
    return RUN_INDEX[(wildcards.exp, wildcards.run)]


def get_dataset_file(wildcards):
    return f"results/data/{get_run(wildcards)['dataset']}.h5"


def get_dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def get_threads():
    return int(config.get("threads", 2))


def get_metrics_files(wildcards):
    return [f"results/{wildcards.exp}/{r['run']}/metrics.nc" for r in RUNS[wildcards.exp]]


def get_figure_names():
    return ["divergence", "loss", "cf"]


def get_all_targets():
    return [
        f"results/figures/{exp}_{fig}.{ext}"
        for exp in RUNS
        for fig in get_figure_names()
        for ext in ("pdf", "png")
    ]
