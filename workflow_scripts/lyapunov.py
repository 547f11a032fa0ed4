"""Snakemake adapter: Benettin spectrum of one run's baseline + measured divergence rate."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.lyapunov import lyapunov_for_run  # noqa: E402
from pathdep.core.context import resolve_device  # noqa: E402

lyapunov_for_run(
    snakemake.params.run,  # noqa: F821
    snakemake.input.init,  # noqa: F821
    snakemake.input.data,  # noqa: F821
    snakemake.input.metrics,  # noqa: F821
    snakemake.output.nc,  # noqa: F821
    spec=snakemake.params.spec,  # noqa: F821
    device=str(resolve_device(snakemake.params.device)),  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
