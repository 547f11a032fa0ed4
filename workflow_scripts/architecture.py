"""Snakemake adapter: the architecture comparison table, curves and figure."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.architecture import plot_architecture  # noqa: E402
from pathdep.stages.architecture import architecture_table  # noqa: E402

inp, out, spec = snakemake.input, snakemake.output, dict(snakemake.params.spec)  # noqa: F821
metrics = {label: inp[label] for label in spec["runs"]}
print(architecture_table(metrics, spec, out.csv, out.nc).to_string())
plot_architecture(out.nc, out.csv, out.pdf, out.png)
