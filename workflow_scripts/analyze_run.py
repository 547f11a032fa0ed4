"""Snakemake adapter: aligned distances, interpolation barriers, autocorrelations and
hypersphere fits of one run -> analysis.nc."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.analysis import analyze_run  # noqa: E402
from pathdep.core.context import resolve_device  # noqa: E402

analyze_run(
    snakemake.input.trajectory,  # noqa: F821
    snakemake.input.data,  # noqa: F821
    snakemake.output.nc,  # noqa: F821
    spec=snakemake.params.analysis,  # noqa: F821
    expected_config=snakemake.params.run,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    device=str(resolve_device(snakemake.params.device)),  # noqa: F821
)
