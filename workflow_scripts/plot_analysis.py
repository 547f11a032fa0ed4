"""Snakemake adapter: the analysis figures of one experiment (PDF + PNG)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.analysis import plot_analysis  # noqa: E402

plot_analysis(
    snakemake.input.metrics,  # noqa: F821
    snakemake.input.analysis,  # noqa: F821
    snakemake.input.fits,  # noqa: F821
    snakemake.input.scaling,  # noqa: F821
    dict(snakemake.output),  # noqa: F821
    snakemake.wildcards.exp,  # noqa: F821
)
