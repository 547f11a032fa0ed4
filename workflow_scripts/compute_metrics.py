"""Snakemake adapter: stream a trajectory into metrics.nc (member x checkpoint)."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.metrics import compute_metrics  # noqa: E402

compute_metrics(
    snakemake.input.trajectory,  # noqa: F821
    snakemake.input.data,  # noqa: F821
    snakemake.output.nc,  # noqa: F821
    expected_config=snakemake.params.run,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
