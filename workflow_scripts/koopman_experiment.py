"""Snakemake adapter: Koopman spectra, W1 and conjugacy tests of one experiment's runs."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.koopman import experiment  # noqa: E402

table = experiment(
    snakemake.params.runs,  # noqa: F821
    list(snakemake.input.trajectories),  # noqa: F821
    snakemake.params.spec,  # noqa: F821
    snakemake.wildcards.exp,  # noqa: F821
    snakemake.output.nc,  # noqa: F821
    snakemake.output.csv,  # noqa: F821
    snakemake.output.windows_csv,  # noqa: F821
)
print(table.to_string())
