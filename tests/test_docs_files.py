"""docs/files.md documents every output file family: each rule's ``output:`` pattern (read from
the loaded workflow, so families the tiny config does not build, e.g. Koopman, NTK, dominoes,
spread, are covered too) and each file the tiny workflow run wrote has a row, with a writer
function that exists. Logs and benchmarks are not outputs."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from helpers import ROOT, TINY, smk

DOC = ROOT / "docs" / "files.md"
ROW = re.compile(r"^\| `(results/[^`]+)` \|(.*)\|\s*`(pathdep(?:\.\w+)+)` \|")


def documented() -> dict[str, str]:
    """``{path pattern: writer}`` of the table rows of docs/files.md."""
    out = {}
    for line in DOC.read_text().splitlines():
        m = ROW.match(line)
        if m:
            assert m.group(1) not in out, f"docs/files.md: {m.group(1)} has two rows"
            out[m.group(1)] = m.group(3)
    return out


def _regex(pattern: str) -> re.Pattern:
    parts = re.split(r"(\{\w+\})", pattern)
    return re.compile("".join(r"[^/]+" if re.fullmatch(r"\{\w+\}", p) else re.escape(p) for p in parts) + "$")


def undocumented(files: list[str], patterns: list[str]) -> list[str]:
    """The files (paths relative to the workdir, ``results/...``) that match no pattern."""
    regs = [_regex(p) for p in patterns]
    return [f for f in files if not any(r.match(f) for r in regs)]


def rule_outputs(tmp: Path) -> dict[str, list[str]]:
    """``{rule: [output pattern]}`` of the loaded workflow, wildcard constraints removed (a
    Snakefile that includes the real one prints them while Snakemake lists the rules)."""
    wrapper = tmp / "Snakefile"
    wrapper.write_text(f'include: "{ROOT / "Snakefile"}"\n'
                       'import json as _json\n'
                       'print("RULE_OUTPUTS=" + _json.dumps({r.name: [str(f) for f in r.output] for r in workflow.rules}))\n')
    r = smk(["--list-rules", "--configfile", TINY, "-d", tmp, "-s", wrapper], ROOT, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RULE_OUTPUTS="))
    raw = json.loads(line.split("=", 1)[1])
    return {rule: [re.sub(r"\{(\w+),[^{}]*\}", r"{\1}", p) for p in pats] for rule, pats in raw.items()}


def test_every_rule_output_pattern_has_a_row(tmp_path):
    outputs = rule_outputs(tmp_path)
    assert "train_ensemble" in outputs and "ntk_section" in outputs and "spread" in outputs
    docs = documented()
    missing = sorted(f"{rule}: {p}" for rule, pats in outputs.items() for p in pats if p not in docs)
    assert not missing, "output patterns with no row in docs/files.md:\n" + "\n".join(missing)
    every = {p for pats in outputs.values() for p in pats}
    stale = sorted(set(docs) - every)
    assert not stale, "docs/files.md rows that no rule writes:\n" + "\n".join(stale)


def test_every_writer_exists():
    bad = []
    for pattern, writer in documented().items():
        module, func = writer.rsplit(".", 1)
        path = ROOT / "src" / Path(*module.split(".")).with_suffix(".py")
        names = ({n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
                 if path.exists() else set())
        if func not in names:
            bad.append(f"{pattern}: {writer}")
    assert not bad, "writers that do not exist:\n" + "\n".join(bad)


def test_the_check_sees_an_undocumented_family():
    """It can fail: a file of an unknown family, or in another folder, matches no row."""
    pats = list(documented())
    assert undocumented(["results/eps/eps0.1/metrics.nc", "results/figures/eps_divergence.png"], pats) == []
    assert undocumented(["results/eps/eps0.1/weights.npy", "results/figures/eps/divergence.png"], pats) == [
        "results/eps/eps0.1/weights.npy", "results/figures/eps/divergence.png"]


@pytest.mark.xdist_group("tiny_workflow")
def test_every_file_of_the_tiny_run_is_documented(tiny_workflow):
    res = tiny_workflow.results
    files = sorted(str(p.relative_to(tiny_workflow.dir)) for p in res.rglob("*")
                   if p.is_file() and p.relative_to(res).parts[0] not in ("logs", "benchmarks"))
    assert len(files) > 40 and "results/eps/eps0.1/trajectory.h5" in files
    missing = undocumented(files, list(documented()))
    assert not missing, "files of the tiny run with no row in docs/files.md:\n" + "\n".join(missing)
