# pathdep: how much does a trained network depend on its path through weight space?
# The DAG: prepare_dataset -> train_ensemble (init.h5, trajectory.h5) -> compute_metrics -> figures,
# trajectory -> geometry (geometry.nc) -> plot_geometry; metrics + geometry -> fit_experiment ->
# plot_fits, fits_summary.csv.
# All logic lives in the pathdep package (src/pathdep); rules only pass config slices.
from snakemake.utils import min_version

min_version("8.0")


# `--configfile X` replaces the shipped default instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/metrics.smk"
include: "rules/figures.smk"
include: "rules/geometry.smk"
include: "rules/fits.smk"
include: "rules/lyapunov.smk"
include: "rules/spread.smk"
include: "rules/koopman.smk"
include: "rules/dominoes.smk"
include: "rules/ntk.smk"
include: "rules/grokking.smk"
include: "rules/architecture.smk"
include: "rules/claims.smk"


rule all:
    input:
        get_all_targets(),
        rules.claims.output,
        rules.plot_claims.output,
    default_target: True
