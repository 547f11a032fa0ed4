"""Snakemake adapter: the claims figure (statistic and interval against each prediction)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.claims import plot_claims  # noqa: E402

out = snakemake.output  # noqa: F821
plot_claims(snakemake.input.csv, out.pdf, out.png)  # noqa: F821
