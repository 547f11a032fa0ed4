"""Snakemake adapter: one NTK experiment section (pathdep.stages.ntk) and its figure."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.ntk import plot_section  # noqa: E402
from pathdep.stages.ntk import run_section  # noqa: E402

sm = snakemake  # noqa: F821
name = sm.wildcards.section
ds = run_section(name, dict(sm.params.spec), sm.input.data, sm.output.nc, threads=sm.threads)
print(ds)
plot_section(name, sm.output.nc, sm.output.pdf, sm.output.png)
