"""Snakemake adapter: the baseline-vs-member empirical NTK distance over training, per width (NTK 4e)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.ntk import plot_kernel_change  # noqa: E402
from pathdep.stages.ntk import kernel_change  # noqa: E402

sm = snakemake  # noqa: F821
print(kernel_change(sm.params.spec, list(sm.input.trajectories), list(sm.input.data), sm.output.nc, threads=sm.threads))
plot_kernel_change(sm.output.nc, sm.output.pdf, sm.output.png)
