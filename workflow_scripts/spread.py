"""Snakemake adapter: spread by source of randomness (table + figure)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.spread import plot_spread  # noqa: E402
from pathdep.stages.spread import spread_table  # noqa: E402

inp, out = snakemake.input, snakemake.output  # noqa: F821
df = spread_table({k: v for k, v in inp.items()}, out.nc, out.csv)
print(df.to_string())
plot_spread(out.nc, out.csv, out.pdf, out.png)
