"""Snakemake adapter for rule dominoes_summary: patterns.nc files -> patterns_summary.csv.

params.toy is the config's `dominoes.toy` block: {model: two_layer|linear, simplicity:
{top: s, bottom: s}}; a side without a configured simplicity uses the one its linear probe
measured (pathdep.stages.dominoes.summarize_patterns).
"""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.dominoes import summarize_patterns  # noqa: E402

toy = dict(snakemake.params.toy or {})  # noqa: F821
simp = toy.get("simplicity") or {}
summarize_patterns(
    snakemake.input.patterns,  # noqa: F821
    snakemake.output.csv,  # noqa: F821
    simplicity={side: float(simp[side]) for side in ("top", "bottom") if side in simp} or None,
    model=toy.get("model", "two_layer"),
)
