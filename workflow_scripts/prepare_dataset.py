"""Snakemake adapter for rule prepare_dataset: one config block -> results/data/<dataset>.h5.

All logic lives in pathdep.data.prepare_dataset; this only unpacks the snakemake object
(params.spec, wildcards.dataset, output.h5, log[0]) and sends stdout/stderr to the log.
"""

import contextlib
import time
import traceback

from pathdep.data import prepare_dataset
from pathdep.io.provenance import collect

spec = dict(snakemake.params.spec)  # noqa: F821 (injected by snakemake)
name, out = snakemake.wildcards.dataset, str(snakemake.output.h5)  # noqa: F821
with open(snakemake.log[0], "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):  # noqa: F821
    try:
        t0 = time.perf_counter()
        sides = dict(getattr(snakemake.params, "datasets", None) or {})  # noqa: F821 (dominoes: its sides)
        prepare_dataset(name, spec, out, provenance=collect(config=spec), datasets=sides or None)
        print(f"prepared dataset {name} ({spec.get('source')}) -> {out} in {time.perf_counter() - t0:.2f} s")
    except BaseException:
        traceback.print_exc()
        raise
