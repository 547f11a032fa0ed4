"""examples/explore.ipynb runs top to bottom on the tiny workflow's results (nbclient, a
kernel of this interpreter registered in a temporary JUPYTER_PATH: no network, no user
kernels), once as written (no spread table: the tiny config has no ``spread:`` block) and
once with a spread table written by the real stage beside the same runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import ROOT
from nbclient import NotebookClient

NOTEBOOK = ROOT / "examples" / "explore.ipynb"


def _kernel(tmp: Path, monkeypatch) -> str:
    """A kernelspec running this interpreter, in a JUPYTER_PATH of its own."""
    spec = tmp / "jupyter" / "kernels" / "pathdep-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pathdep test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp / "jupyter"))
    monkeypatch.delenv("MPLBACKEND", raising=False)   # the kernel's inline backend draws the figure
    return "pathdep-test"


def _run(results: Path, tmp: Path, monkeypatch) -> list[str]:
    """Execute the notebook on ``results``; the text and the MIME types of every cell's outputs."""
    monkeypatch.setenv("PATHDEP_RESULTS", str(results))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name=_kernel(tmp, monkeypatch), timeout=300,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            out.append("\n".join(o.get("text", "") + " ".join(o.get("data", {})) for o in cell.outputs))
    return out


@pytest.mark.xdist_group("tiny_workflow")
def test_notebook_runs_on_the_tiny_results(tiny_workflow, tmp_path, monkeypatch):
    out = _run(tiny_workflow.results, tmp_path, monkeypatch)
    text = "\n".join(out)
    assert f"results: {tiny_workflow.results}" in text
    assert "experiments: eps, sched" in text
    assert "image/png" in text                         # the redrawn divergence figure
    assert "eps0.01" in text and "eps0.1" in text     # the two runs compared
    # the two runs differ only in epsilon: one baseline, members apart
    assert "baseline: |w(eps0.01) - w(eps0.1)| at the end = 0\n" in text
    assert "member 1: |w(eps0.01) - w(eps0.1)| at the end = 0\n" not in text
    assert "no spread table:" in text and "spread.csv" in text
    assert "no fits table" not in text and "dist_aligned" in text


@pytest.mark.xdist_group("tiny_workflow")
def test_notebook_reads_a_spread_table(tiny_workflow, tmp_path, monkeypatch):
    from pathdep.stages.spread import spread_table

    view = tmp_path / "results"
    view.mkdir()
    for exp in ("eps", "sched"):
        (view / exp).symlink_to(tiny_workflow.results / exp)
    (view / "spread").mkdir()
    df = spread_table({"init": view / "eps" / "eps0.01" / "metrics.nc", "schedule": view / "sched" / "base" / "metrics.nc"},
                      view / "spread" / "spread.nc", view / "spread" / "spread.csv")
    text = "\n".join(_run(view, tmp_path, monkeypatch))
    assert "no spread table" not in text
    assert "eps/eps0.01" in text and "sched/base" in text and list(df["source"]) == ["init", "schedule"]
