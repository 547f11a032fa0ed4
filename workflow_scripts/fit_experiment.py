"""Snakemake adapter: fit every divergence curve of an experiment; fits + scaling tables."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.fits import fit_experiment  # noqa: E402

out = snakemake.output  # noqa: F821
fit_experiment(
    snakemake.input.metrics,  # noqa: F821
    snakemake.input.geometry,  # noqa: F821
    out.fits_nc,
    out.fits_csv,
    out.scaling_nc,
    out.scaling_csv,
    spec=snakemake.params.fits,  # noqa: F821
    experiment=snakemake.wildcards.exp,  # noqa: F821
)
