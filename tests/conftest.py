"""Session-wide test settings and the one tiny end-to-end workflow run.

``tiny_workflow`` runs ``snakemake --cores 2 --configfile tests/data/config_tiny.yaml``
(every rule: training, metrics, analyses, fits, Lyapunov, figures) once per test session
in a temporary directory; tests/test_workflow.py and tests/test_geometry_workflow.py assert
on its outputs and must not change them (a report or a dry run beside them is fine).

Once per session, also under ``make test`` (``-n 2``, pytest-xdist): every worker's
session fixture takes a file lock in the directory the workers share
(``basetemp``'s parent); the first runs the workflow and records the outcome, the others
wait and read it. The tests also carry ``@pytest.mark.xdist_group("tiny_workflow")`` and
the Makefile passes ``--dist loadgroup`` so that they land on one worker; with pytest 9.2
and pytest-xdist 3.8 that grouping is a no-op (xdist sets ``item._nodeid``, which pytest 9
no longer reads), hence the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers import ROOT, TINY, smk

torch.set_num_threads(1)
torch.use_deterministic_algorithms(False)


def pytest_configure(config):
    # registered here too, so that `-p no:xdist` runs do not warn about an unknown mark
    config.addinivalue_line("markers", "xdist_group(name): tests pytest-xdist's --dist loadgroup keeps on one worker")


@dataclass(frozen=True)
class WorkflowRun:
    """A finished tiny workflow: its working directory (``results/`` inside), Snakemake's
    return code and output, and the wall time in seconds."""

    dir: Path
    returncode: int
    output: str
    seconds: float

    @property
    def results(self) -> Path:
        return self.dir / "results"


@pytest.fixture(scope="session")
def tiny_workflow(tmp_path_factory) -> WorkflowRun:
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    d, record = shared / "tiny_workflow", shared / "tiny_workflow.json"
    with open(shared / "tiny_workflow.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not record.exists():
            d.mkdir(exist_ok=True)
            t0 = time.perf_counter()
            r = smk(["--cores", "2", "--configfile", TINY, "-d", d], ROOT, timeout=1800)
            record.write_text(json.dumps({"returncode": r.returncode, "output": (r.stdout + r.stderr)[-20000:],
                                          "seconds": time.perf_counter() - t0}))
        rec = json.loads(record.read_text())
    run = WorkflowRun(d, rec["returncode"], rec["output"], rec["seconds"])
    assert run.returncode == 0, run.output[-4000:]
    return run
