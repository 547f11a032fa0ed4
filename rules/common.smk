# Validation (one call, pathdep.config.validate) and the path/target helpers (get_*): the only
# place in the workflow with `def`. Checks, defaults and name lists live in the package.
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from pathdep.config import ConfigError, top_setting, validate  # noqa: E402
from pathdep.config import figures as figures_config  # noqa: E402
from pathdep.config.datasets import NAME_RE, RUN_RE  # noqa: E402

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


# Targets come from the rules' own `output:` sections (one list of file names per rule),
# expanded over the configured wildcard values; nothing here repeats a file name pattern.
def rule_outputs(name, **wildcards):
    """Every output file of rule `name`, its patterns expanded over `wildcards` (lists)."""
    return expand([str(f) for f in getattr(rules, name).output], **wildcards)


def run_outputs(name, exps):
    """Every output file of per-run rule `name` for every run of experiments `exps`."""
    pairs = [(exp, r["run"]) for exp in exps for r in RUNS[exp]]
    if not pairs:
        return []
    exp_l, run_l = zip(*pairs)
    return expand([str(f) for f in getattr(rules, name).output], zip, exp=exp_l, run=run_l)


# `exp` only matches configured experiments, so figure names of other rules
# (e.g. lyapunov_study_loss.pdf) never parse as `{exp}_loss.pdf`.
wildcard_constraints:
    exp="|".join(sorted(RUNS, key=len, reverse=True)),
    run=RUN_RE.pattern,
    dataset=NAME_RE.pattern,


def get_run(wildcards):
    """The resolved config slice of one run (passed to jobs through params:)."""
    return RUN_INDEX[(wildcards.exp, wildcards.run)]


def get_train_priority(wildcards):
    """Start the longest trainings first (transformers: thousands of full-batch steps; ResNets:
    convolutions): they set the default run's wall time when they are left for the end."""
    return 10 if get_run(wildcards)["model"].get("kind") in ("transformer", "resnet") else 0


def get_dataset_file(wildcards):
    return rule_outputs("prepare_dataset", dataset=get_run(wildcards)["dataset"])[0]


def get_dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


# ---- dominoes (rules/dominoes.smk; pathdep.data.dominoes) ----
def get_dataset_sides(wildcards):
    """The blocks of the datasets a dominoes dataset stacks ({} for other sources): params,
    so a changed side block re-prepares the dominoes."""
    spec = config["datasets"][wildcards.dataset]
    if spec.get("source") != "dominoes":
        return {}
    return {spec[s]: config["datasets"][spec[s]] for s in ("top", "bottom") if isinstance(spec.get(s), str)}


def get_dominoes_experiments():
    """Experiments whose runs train on a `source: dominoes` dataset (derived ones included)."""
    return [e for e, runs in RUNS.items() if runs and runs[0]["dataset_spec"].get("source") == "dominoes"]


def get_pattern_files(wildcards):
    return run_outputs("dominoes_patterns", [wildcards.exp])


def get_dominoes_targets():
    return rule_outputs("plot_dominoes", exp=get_dominoes_experiments()) if get_dominoes_experiments() else []


def get_threads():
    """Torch threads per heavy job: config `threads`, at most this machine's cores."""
    return max(1, min(int(top_setting(config, "threads")), os.cpu_count() or 1))


def get_metrics_files(wildcards):
    return run_outputs("compute_metrics", [wildcards.exp])


# ---- geometry and fits (rules/geometry.smk, rules/fits.smk) ----
def _per_experiment(block, exp):
    """The top-level `block:` with `<block>.experiments.<exp>` merged in (defaults are applied
    inside the job by pathdep.config.<block>.resolve)."""
    from pathdep.config import deep_merge

    spec = dict(config.get(block) or {})
    per_exp = spec.pop("experiments", None) or {}
    return deep_merge(spec, per_exp.get(exp) or {})


def get_geometry_spec(wildcards):
    """The `geometry:` settings of one experiment, without the hypersphere theory's."""
    spec = _per_experiment("geometry", wildcards.exp)
    spec.pop("hypersphere", None)
    return spec


def get_hypersphere_spec():
    return dict((config.get("geometry") or {}).get("hypersphere") or {})


def get_fits_spec(wildcards):
    return _per_experiment("fits", wildcards.exp)


def get_geometry_files(wildcards):
    return run_outputs("geometry", [wildcards.exp])


def get_swept_experiments():
    """Standard experiments with a sweep (two runs or more): the only ones with the sweep
    figures divergence_vs and scaling (pathdep.config.fits.swept_experiments)."""
    from pathdep.config.fits import swept_experiments

    return swept_experiments(RUNS, get_standard_experiments())


def get_figure_outputs(figures):
    """Named outputs `<name>_pdf`, `<name>_png` (the PNG in the report, caption
    report/<name>.rst) of `{name: (file stem under results/figures/, report category)}`."""
    out = {}
    for name, (stem, category) in figures.items():
        out[f"{name}_pdf"] = f"results/figures/{stem}.pdf"
        out[f"{name}_png"] = report(f"results/figures/{stem}.png", caption=f"../report/{name}.rst",
                                    category=category, subcategory="{exp}")
    return out


# ---- Lyapunov analyses (rules/lyapunov.smk) ----
def get_lyapunov_spec():
    """The `lyapunov:` block without its `experiments` and `study` entries."""
    spec = dict(config.get("lyapunov") or {})
    spec.pop("experiments", None)
    spec.pop("study", None)
    spec.pop("tangent_experiment", None)
    return spec


def get_lyapunov_experiments():
    """Experiments of `lyapunov.experiments` (validate() checked that they exist)."""
    return list((config.get("lyapunov") or {}).get("experiments") or [])


def get_lyapunov_tangent():
    """`lyapunov.tangent_experiment` (an epsilon sweep on one baseline; validate() checked that
    it exists) or None; its first run gets the one Benettin spectrum, all its runs' metrics
    give the measured rates."""
    return (config.get("lyapunov") or {}).get("tangent_experiment") or None


def get_lyapunov_tangent_metrics():
    name = get_lyapunov_tangent()
    return {r["run"]: f"results/{name}/{r['run']}/metrics.nc" for r in RUNS[name]} if name else {}


def get_lyapunov_tangent_params():
    """{"spectrum": lyapunov.nc of the first run, "epsilon": {run: eps}} or {}."""
    name = get_lyapunov_tangent()
    if not name:
        return {}
    first = RUNS[name][0]["run"]
    return {"spectrum": f"results/{name}/{first}/lyapunov.nc",
            "epsilon": {r["run"]: float((r.get("perturbation") or {}).get("epsilon", "nan")) for r in RUNS[name]}}


def get_lyapunov_files():
    out = run_outputs("lyapunov", get_lyapunov_experiments())
    name = get_lyapunov_tangent()
    if name and name not in get_lyapunov_experiments():
        out.append(get_lyapunov_tangent_params()["spectrum"])
    return out


def get_lyapunov_study_spec():
    return dict((config.get("lyapunov") or {}).get("study") or {})


def get_lyapunov_targets():
    out = []
    if get_lyapunov_experiments():
        out += rule_outputs("lyapunov_link")
    if (config.get("lyapunov") or {}).get("study"):
        out += rule_outputs("lyapunov_study")
    return out


# ---- spread by source (rules/spread.smk) ----
def get_spread_inputs(wildcards):
    """{label: metrics.nc} of the `spread:` block's ensembles (checked by validate())."""
    from pathdep.config import spread

    return {label: f"results/{exp}/{run}/metrics.nc" for label, (exp, run) in spread.resolve(config, RUNS).items()}


def get_spread_targets():
    if not config.get("spread"):
        return []
    return rules.spread.output


# ---- Koopman spectra (rules/koopman.smk) ----
def get_koopman_toy_spec():
    return dict((config.get("koopman") or {}).get("toy") or {})


def get_koopman_calibration_spec():
    return dict((config.get("koopman") or {}).get("calibration") or {})


def get_koopman_experiments():
    """Experiments of `koopman.experiments` (validate() checked that they exist)."""
    return list((config.get("koopman") or {}).get("experiments") or {})


def get_koopman_spec(wildcards):
    """Top-level `koopman:` settings with `koopman.experiments.<exp>` merged in (defaults are
    applied inside the job by pathdep.config.koopman.resolve)."""
    from pathdep.config.koopman import experiment_spec

    return experiment_spec(config.get("koopman"), wildcards.exp)


def get_koopman_trajectories(wildcards):
    return [f for f in run_outputs("train_ensemble", [wildcards.exp]) if f.endswith("trajectory.h5")]


def get_koopman_targets():
    if not config.get("koopman"):
        return []
    out = rule_outputs("plot_koopman_toy") if "toy" in config["koopman"] else []
    out += rule_outputs("plot_koopman_calibration") if "calibration" in config["koopman"] else []
    exps = get_koopman_experiments()
    per_exp = config["koopman"].get("experiments") or {}
    win = [e for e in exps if (per_exp.get(e) or {}).get("windows")]   # window heat maps only when set
    return (out + rule_outputs("koopman_experiment", exp=exps) + rule_outputs("plot_koopman_experiment", exp=exps)
            + rule_outputs("plot_koopman_windows", exp=win))


# ---- neural tangent kernels (rules/ntk.smk; settings, sections: pathdep.config.ntk) ----
from pathdep.config import ntk as ntk_config  # noqa: E402

NTK_SECTIONS = list(ntk_config.SECTIONS)


def get_ntk_spec():
    return dict(config.get("ntk") or {})


def get_ntk_dataset_file():
    """The prepared dataset the NTK sections read (validate() checked that it exists)."""
    return f"results/data/{ntk_config.dataset(config)}.h5"


def get_ntk_path_experiment():
    """The experiment sweeping model width for the path-vs-width figure, or None."""
    return ntk_config.path_experiment(config, RUNS)


def get_ntk_path_metrics():
    exp = get_ntk_path_experiment()
    return [f"results/{exp}/{r['run']}/metrics.nc" for r in RUNS[exp]] if exp else []


def get_ntk_path_geometry():
    exp = get_ntk_path_experiment()
    return run_outputs("geometry", [exp]) if exp else []


def get_ntk_path_trajectories():
    exp = get_ntk_path_experiment()
    return [f for f in run_outputs("train_ensemble", [exp]) if f.endswith("trajectory.h5")] if exp else []


def get_ntk_path_datasets():
    """The prepared dataset of every run of the width experiment (same order as its trajectories)."""
    exp = get_ntk_path_experiment()
    return [rule_outputs("prepare_dataset", dataset=r["dataset"])[0] for r in RUNS[exp]] if exp else []


def get_ntk_targets():
    if "ntk" not in config:
        return []
    out = rule_outputs("ntk_section", section=ntk_config.sections(config))
    if get_ntk_path_experiment():
        out += rule_outputs("ntk_path_width") + rule_outputs("ntk_kernel_change")
    return out


# ---- grokking (rules/grokking.smk; pathdep.config.grokking) ----
def get_grokking_targets():
    """The tables and figures of the `grokking:` block (rules grokking, grokking_koopman, grokking_path)."""
    from pathdep.config import grokking as grokking_config

    out = []   # the block is checked by validate() (config.blocks.CHECKS)
    for rule_name, exps in (("grokking", grokking_config.resolve(config, RUNS)),
                            ("grokking_koopman", grokking_config.koopman_spec(config, RUNS)["experiments"]),
                            ("grokking_path", grokking_config.path_spec(config, RUNS)["experiments"])):
        out += rule_outputs(rule_name, exp=exps) if exps else []
    return out


# ---- architecture comparison (rules/architecture.smk; pathdep.config.architecture) ----
def get_architecture_spec():
    """The resolved `architecture:` block with `runs` as {label: metrics.nc} ({} without one)."""
    from pathdep.config import architecture as architecture_config

    if not config.get("architecture"):
        return {}
    spec = architecture_config.resolve(config, RUNS)   # checked by validate() (config.blocks.CHECKS)
    return {**spec, "runs": {k: f"results/{e}/{r}/metrics.nc" for k, (e, r) in spec["runs"].items()}}


def get_architecture_inputs(wildcards):
    return get_architecture_spec().get("runs", {})


def get_architecture_targets():
    return rule_outputs("architecture") if config.get("architecture") else []


# ---- claims ledger (rules/claims.smk; pathdep.stages.claims) ----
def get_claims_inputs():
    """What the ledger reads: every family's tables (the default targets minus figures), the
    standard experiments' metrics and fits, and the dominoes summaries."""
    exps = get_standard_experiments()
    fits = [f for f in rule_outputs("fit_experiment", exp=exps) if f.endswith("fits.csv")]
    dominoes = rule_outputs("dominoes_summary", exp=get_dominoes_experiments()) if get_dominoes_experiments() else []
    tables = [f for f in get_all_targets() if not f.startswith("results/figures/")]
    return sorted(set(tables + run_outputs("compute_metrics", exps) + fits + dominoes))


def get_claims_config():
    from pathdep.config.claims import config_slice

    return config_slice(config)


def get_standard_experiments():
    """Experiments with the standard path-dependence figures and analyses (all but
    `figures.exclude`: pathdep.config.figures)."""
    return figures_config.standard_experiments(config)


def get_all_targets():
    """Everything the default target builds (the outputs of the last rules of each family)."""
    exps = get_standard_experiments()
    return (
        rule_outputs("plot_experiment", exp=exps)
        + rule_outputs("plot_geometry", exp=exps)
        + rule_outputs("plot_fits", exp=exps)
        + rule_outputs("plot_scaling", exp=get_swept_experiments())
        + rule_outputs("plot_hypersphere_theory")
        + rule_outputs("summarize_fits")
        + get_lyapunov_targets()
        + get_spread_targets()
        + get_koopman_targets()
        + get_dominoes_targets()
        + get_ntk_targets()
        + get_grokking_targets()
        + get_architecture_targets()
    )
