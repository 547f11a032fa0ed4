"""Session-wide test settings and the one tiny end-to-end workflow run.

``tiny_workflow`` runs ``snakemake --cores 2 --configfile tests/data/config_tiny.yaml``
(every rule: training, metrics, analyses, fits, Lyapunov, figures) once per session in a
temporary directory; tests/test_workflow.py and tests/test_analysis_workflow.py assert on
its outputs and must not change them (a report or a dry run beside them is fine). Tests
using it carry ``@pytest.mark.xdist_group("tiny_workflow")`` so that under ``make test``
(``-n 2 --dist loadgroup``) they share one worker and the run happens once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers import TINY, ROOT, smk

torch.set_num_threads(1)
torch.use_deterministic_algorithms(False)


@dataclass(frozen=True)
class WorkflowRun:
    """A finished tiny workflow: its working directory (``results/`` inside), Snakemake's
    output and the wall time in seconds."""

    dir: Path
    stdout: str
    seconds: float

    @property
    def results(self) -> Path:
        return self.dir / "results"


@pytest.fixture(scope="session")
def tiny_workflow(tmp_path_factory) -> WorkflowRun:
    d = tmp_path_factory.mktemp("tiny_workflow")
    t0 = time.perf_counter()
    r = smk(["--cores", "2", "--configfile", TINY, "-d", d], ROOT, timeout=1800)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    return WorkflowRun(d, out, time.perf_counter() - t0)
