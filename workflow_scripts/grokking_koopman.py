"""Snakemake adapter: Koopman spectra of a grokking experiment's groups over the first steps, table and figure."""
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):   # one BLAS thread: the SVDs are
    os.environ.setdefault(_var, "1")                                       # small; 2 threads doubled CPU-s
sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.grokking import plot_grokking_koopman  # noqa: E402
from pathdep.stages.grokking import grokking_koopman  # noqa: E402

inp, out, par = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
print(grokking_koopman(list(par.runs), list(inp.trajectories), dict(par.spec), snakemake.wildcards.exp,  # noqa: F821
                       out.nc, out.csv).to_string())
plot_grokking_koopman(out.nc, out.csv, list(inp.metrics), out.pdf, out.png)
