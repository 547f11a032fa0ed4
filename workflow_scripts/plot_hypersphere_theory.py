"""Snakemake adapter: simulated Brownian motion on spheres against the theory."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.analysis import plot_hypersphere_theory  # noqa: E402

plot_hypersphere_theory(snakemake.output.pdf, snakemake.output.png, dict(snakemake.params.hypersphere))  # noqa: F821
