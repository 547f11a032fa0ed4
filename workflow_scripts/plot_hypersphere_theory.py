"""Snakemake adapter: the hypersphere theory figure, drawn from theory.nc."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.geometry import plot_hypersphere_theory  # noqa: E402

plot_hypersphere_theory(snakemake.input.nc, snakemake.output.pdf, snakemake.output.png)  # noqa: F821
