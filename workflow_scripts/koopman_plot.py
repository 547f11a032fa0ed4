"""Snakemake adapter: draw a Koopman figure (toy or experiment) from its netCDF file."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.koopman import plot_experiment, plot_toy  # noqa: E402

draw = plot_toy if snakemake.rule == "plot_koopman_toy" else plot_experiment  # noqa: F821
draw(snakemake.input.nc, snakemake.output.pdf, snakemake.output.png)  # noqa: F821
