"""Snakemake adapter: the geometry figures of one experiment (PDF + PNG)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.geometry import plot_geometry  # noqa: E402

plot_geometry(snakemake.input.geometry, dict(snakemake.output), snakemake.wildcards.exp)  # noqa: F821
