"""Snakemake adapter for rule plot_dominoes: patterns.nc files -> summary CSV + figures."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.dominoes import plot_dominoes  # noqa: E402
from pathdep.stages.dominoes import summarize_patterns  # noqa: E402

toy = dict(snakemake.params.toy or {})  # noqa: F821
simp = toy.get("simplicity", {})
summarize_patterns(
    snakemake.input.patterns,  # noqa: F821
    snakemake.output.csv,  # noqa: F821
    simplicity=(float(simp.get("top", 1.0)), float(simp.get("bottom", 1.0))),
    model=toy.get("model", "two_layer"),
)
plot_dominoes(snakemake.input.patterns, snakemake.output.csv, dict(snakemake.output))  # noqa: F821
