"""Snakemake adapter: the divergence, loss and cf. figures of one experiment."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.experiment import plot_experiment  # noqa: E402

plot_experiment(snakemake.input.metrics, dict(snakemake.output), snakemake.wildcards.exp)  # noqa: F821
