"""Snakemake adapter: the fit figures of one experiment (PDF + PNG)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.fits import plot_fits  # noqa: E402

plot_fits(
    snakemake.input.metrics,  # noqa: F821
    snakemake.input.geometry,  # noqa: F821
    snakemake.input.fits,  # noqa: F821
    snakemake.input.scaling,  # noqa: F821
    dict(snakemake.output),  # noqa: F821
    snakemake.wildcards.exp,  # noqa: F821
)
