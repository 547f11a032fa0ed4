"""Snakemake adapter: write init.h5 (baseline + perturbed initial states) for one run."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.train import init_ensemble  # noqa: E402

init_ensemble(snakemake.params.run, snakemake.input.data, snakemake.output.h5)  # noqa: F821
