"""Snakemake adapter: aligned distances, interpolation barriers, autocorrelations and
hypersphere fits of one run -> geometry.nc."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.geometry import compute_geometry  # noqa: E402
from pathdep.core.context import resolve_device  # noqa: E402

compute_geometry(
    snakemake.input.trajectory,  # noqa: F821
    snakemake.input.data,  # noqa: F821
    snakemake.output.nc,  # noqa: F821
    spec=snakemake.params.geometry,  # noqa: F821
    expected_config=snakemake.params.run,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    device=str(resolve_device(snakemake.params.device)),  # noqa: F821
)
