"""Snakemake adapter: the claims ledger (results/claims.csv, results/claims.md)."""
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.stages.claims import write_claims  # noqa: E402

out = snakemake.output  # noqa: F821
df = write_claims(Path(out.csv).parent, out.csv, out.md, root=snakemake.scriptdir + "/..",  # noqa: F821
                  config=snakemake.params.config)  # noqa: F821
print(df[["id", "value", "lo", "hi", "verdict"]].to_string(index=False))
