"""Snakemake adapter: write init.h5 (baseline + perturbed initial states), then train baseline
and members of one run into trajectory.h5 (resumable: a preempted job resumes from its saved
state; init.h5 is deterministic, so rewriting it changes nothing)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "a")  # noqa: F821  (append: keep the log of a preempted attempt)

from pathdep.stages.train import init_ensemble, train_ensemble  # noqa: E402

run, data = snakemake.params.run, snakemake.input.data  # noqa: F821
init_ensemble(run, data, snakemake.output.init)  # noqa: F821
train_ensemble(
    run,
    snakemake.output.init,  # noqa: F821
    data,
    snakemake.output.h5,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    device=snakemake.params.device,  # noqa: F821
)
