"""Snakemake adapter for rule plot_dominoes: patterns.nc files + patterns_summary.csv -> figures."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.dominoes import plot_dominoes  # noqa: E402

plot_dominoes(snakemake.input.patterns, snakemake.input.csv, dict(snakemake.output))  # noqa: F821
