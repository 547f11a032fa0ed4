"""Snakemake adapter: train baseline and members of one run into trajectory.h5 (resumable)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "a")  # noqa: F821  (append: keep the log of a preempted attempt)

from pathdep.stages.train import train_ensemble  # noqa: E402

train_ensemble(
    snakemake.params.run,  # noqa: F821
    snakemake.input.init,  # noqa: F821
    snakemake.input.data,  # noqa: F821
    snakemake.output.h5,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    device=snakemake.params.device,  # noqa: F821
)
