"""Snakemake adapter: path dependence vs width from a width experiment's metrics (NTK 4e)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.ntk import plot_path_width  # noqa: E402
from pathdep.stages.ntk import path_vs_width  # noqa: E402

sm = snakemake  # noqa: F821
print(path_vs_width(list(sm.input.metrics), sm.output.nc, list(sm.input.geometry)))
plot_path_width(sm.output.nc, sm.output.pdf, sm.output.png)
