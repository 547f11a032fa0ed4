"""Snakemake adapter: draw a Koopman figure (toy, calibration, experiment or windows) from its netCDF file."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.koopman import plot_calibration, plot_spectra, plot_toy, plot_windows  # noqa: E402

draw = {"plot_koopman_toy": plot_toy, "plot_koopman_windows": plot_windows,  # noqa: F821
        "plot_koopman_calibration": plot_calibration}.get(
    snakemake.rule, plot_spectra)  # noqa: F821
draw(snakemake.input.nc, snakemake.output.pdf, snakemake.output.png)  # noqa: F821
