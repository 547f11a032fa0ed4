"""Snakemake adapter: path dependence of the grokking step of one eps experiment, table and figure."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.grokking import plot_grokking_path  # noqa: E402
from pathdep.stages.grokking import grokking_path  # noqa: E402

inp, out, par = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
print(grokking_path(list(inp.metrics), list(inp.geometry), dict(par.spec), snakemake.wildcards.exp,  # noqa: F821
                    out.nc, out.csv).to_string())
plot_grokking_path(out.nc, out.csv, out.pdf, out.png)
