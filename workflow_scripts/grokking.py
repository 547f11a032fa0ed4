"""Snakemake adapter: the grokking table and figure of one experiment."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.grokking import plot_grokking  # noqa: E402
from pathdep.stages.grokking import grokking_table  # noqa: E402

inp, out = snakemake.input, snakemake.output  # noqa: F821
print(grokking_table(list(inp.metrics), out.csv).to_string())
plot_grokking(list(inp.metrics), out.csv, out.pdf, out.png)
