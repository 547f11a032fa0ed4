"""Snakemake adapter: simulated Brownian motion on spheres against the theory -> theory.nc."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.geometry import hypersphere_theory  # noqa: E402

hypersphere_theory(snakemake.output.nc, dict(snakemake.params.hypersphere))  # noqa: F821
