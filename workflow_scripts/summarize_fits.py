"""Snakemake adapter: one table of preferred forms and exponents over all experiments."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.fits import summarize_fits  # noqa: E402

summarize_fits(snakemake.input.scaling, snakemake.input.fits, snakemake.output.csv)  # noqa: F821
