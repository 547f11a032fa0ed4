"""Snakemake adapter: calibration of the Koopman conjugacy test (rejection rates, power)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.koopman import calibration  # noqa: E402

table = calibration(snakemake.params.spec, snakemake.output.nc, snakemake.output.csv)  # noqa: F821
print(table.to_string())
