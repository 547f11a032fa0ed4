"""Snakemake adapter: the OMD/OGD/bisection Koopman validation study."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.koopman import toy  # noqa: E402

table = toy(snakemake.params.spec, snakemake.output.nc, snakemake.output.csv)  # noqa: F821
print(table.to_string())
