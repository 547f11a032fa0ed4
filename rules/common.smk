# Validation and the get_* helpers: the only place in the workflow with `def`.
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from pathdep.config import ConfigError, validate  # noqa: E402

try:
    # One line (config: <key>: ...) before any job; the main process also checks the
    # dataset source files, unless results/data/<name>.h5 was prepared from the same spec.
    RUNS = validate(config, check_files=workflow.is_main_process, data_dir="results/data")
except ConfigError as exc:
    sys.exit(str(exc))

# Torch jobs use `threads` intra-op threads each. Locally, `--cores 8` on a 2-core laptop would
# otherwise run 4 two-thread torch jobs at once, and oversubscribed OpenMP threads spin: the
# training throughput fell ~20x in a measurement. So torch jobs also take `cpu_threads`, a
# resource capped at this machine's core count (cluster jobs are not limited by it).
if workflow.local_exec and "cpu_threads" not in workflow.global_resources:
    workflow.register_resource("cpu_threads", os.cpu_count() or 1)

RUN_INDEX = {(r["experiment"], r["run"]): r for runs in RUNS.values() for r in runs}


# `exp` only matches configured experiments, so figure names of other rules
# (e.g. lyapunov_study_loss.pdf) never parse as `{exp}_loss.pdf`.
wildcard_constraints:
    exp="|".join(sorted(RUNS, key=len, reverse=True)),
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
    """Torch threads per heavy job: config `threads`, at most this machine's cores."""
    return max(1, min(int(config.get("threads", 2)), os.cpu_count() or 1))


def get_metrics_files(wildcards):
    return [f"results/{wildcards.exp}/{r['run']}/metrics.nc" for r in RUNS[wildcards.exp]]


def get_figure_names():
    return ["divergence", "loss", "cf"]


# ---- analyses (rules/analysis.smk) ----
_unknown_exps = sorted(set((config.get("analysis") or {}).get("experiments") or {}) - set(RUNS))
if _unknown_exps:
    sys.exit(
        f"config: analysis.experiments.{_unknown_exps[0]}: unknown experiment "
        f"(expected one of: {', '.join(RUNS)})"
    )


def get_analysis_spec(wildcards):
    """The `analysis:` block with `analysis.experiments.<exp>` merged in (defaults in
    pathdep.config.analysis.DEFAULTS are applied inside the job)."""
    from pathdep.config import deep_merge

    spec = dict(config.get("analysis") or {})
    per_exp = spec.pop("experiments", None) or {}
    return deep_merge(spec, per_exp.get(wildcards.exp) or {})


def get_analysis_files(wildcards):
    return [f"results/{wildcards.exp}/{r['run']}/analysis.nc" for r in RUNS[wildcards.exp]]


def get_analysis_figures(exp):
    """Every figure file of rule plot_analysis for experiment `exp`."""
    per_exp = ["aligned", "interpolation", "barriers", "autocorr", "fits", "hypersphere"]
    names = [f"{exp}_{f}" for f in per_exp] + [f"divergence_vs_{exp}", f"scaling_{exp}"]
    return [f"results/figures/{n}.{ext}" for n in names for ext in ("pdf", "png")]


# ---- Lyapunov analyses (rules/lyapunov.smk) ----
def get_lyapunov_spec():
    """The `lyapunov:` block without its `experiments` and `study` entries."""
    spec = dict(config.get("lyapunov") or {})
    spec.pop("experiments", None)
    spec.pop("study", None)
    return spec


def get_lyapunov_experiments():
    exps = (config.get("lyapunov") or {}).get("experiments", [])
    unknown = sorted(set(exps) - set(RUNS))
    if unknown:
        sys.exit(
            f"config: lyapunov.experiments: unknown experiment {unknown[0]!r} "
            f"(expected some of: {', '.join(RUNS)})"
        )
    return list(exps)


def get_lyapunov_files():
    return [
        f"results/{exp}/{r['run']}/lyapunov.nc"
        for exp in get_lyapunov_experiments()
        for r in RUNS[exp]
    ]


def get_lyapunov_study_spec():
    return dict((config.get("lyapunov") or {}).get("study") or {})


def get_lyapunov_targets():
    out = []
    if get_lyapunov_experiments():
        out += [
            "results/lyapunov/link.csv",
            "results/figures/lyapunov_link.pdf",
            "results/figures/lyapunov_spectrum.pdf",
        ]
    if (config.get("lyapunov") or {}).get("study"):
        out += [
            f"results/figures/lyapunov_study_{n}.pdf" for n in ("loss", "ftle", "clv", "roc")
        ]
    return out


def get_all_targets():
    return (
        [
            f"results/figures/{exp}_{fig}.{ext}"
            for exp in RUNS
            for fig in get_figure_names()
            for ext in ("pdf", "png")
        ]
        + [f for exp in RUNS for f in get_analysis_figures(exp)]
        + [
            "results/figures/hypersphere_theory.pdf",
            "results/figures/hypersphere_theory.png",
            "results/fits_summary.csv",
        ]
        + get_lyapunov_targets()
    )
