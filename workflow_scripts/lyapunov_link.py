"""Snakemake adapter: tables + figures linking Benettin exponents and measured divergence."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.io.atomic import write_csv  # noqa: E402
from pathdep.plots.lyapunov import plot_link, plot_spectrum  # noqa: E402
from pathdep.stages.lyapunov import link_tables  # noqa: E402

out, params = snakemake.output, snakemake.params  # noqa: F821
tangent = None
if params.tangent:
    tangent = dict(params.tangent)
    tangent["metrics"] = dict(zip(params.tangent_runs, snakemake.input.tangent_metrics))  # noqa: F821
table, baselines = link_tables(list(snakemake.input.spectra), tangent=tangent)  # noqa: F821
write_csv(table, out.csv)
write_csv(baselines, out.baselines)
print(table.to_string())
plot_link(table, baselines, out.link_pdf, out.link_png)
plot_spectrum(list(snakemake.input.spectra), out.spectrum_pdf, out.spectrum_png)  # noqa: F821
