"""Snakemake adapter for rule dominoes_patterns: trajectory + dominoes file -> patterns.nc."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.dominoes import evaluate_patterns  # noqa: E402

evaluate_patterns(
    snakemake.input.trajectory,  # noqa: F821
    snakemake.input.data,  # noqa: F821
    snakemake.output.nc,  # noqa: F821
    expected_config=snakemake.params.run,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
