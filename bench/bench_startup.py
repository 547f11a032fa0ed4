"""Benchmark: the start-up cost of the default run's jobs (a script, not a test).

Every Snakemake ``script:`` job is a fresh Python process that imports Snakemake's script
preamble (``snakemake.script``) and then the pathdep modules its adapter in
``workflow_scripts/`` imports, before it does any work. This script measures, for each
rule, the CPU time (user + sys) of a process that does exactly those imports (the
``from pathdep...`` lines of the rule's adapter, found with ``ast``; min of ``--repeat``
runs), multiplies it by the rule's job count in the default DAG (``snakemake -n
--forceall all``, parsed from its job table) and prints the sum: the part of the default
run's CPU time spent starting jobs rather than computing.

Usage: ``.venv/bin/python bench/bench_startup.py [--repeat 3]`` from the repository root.
"""

from __future__ import annotations

import argparse
import ast
import re
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def job_counts() -> dict[str, int]:
    """``{rule: jobs}`` of the default DAG from a forced dry run."""
    out = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--forceall",
                          "all"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    counts: dict[str, int] = {}
    table = out.split("Job stats:")[1]
    for line in table.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def rule_scripts() -> dict[str, str]:
    """``{rule: adapter file name}`` from the ``script:`` directives in ``rules/``."""
    out = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        rule = None
        for line in smk.read_text().splitlines():
            m = re.match(r"^rule (\w+):", line)
            if m:
                rule = m.group(1)
            m = re.search(r'"\.\./workflow_scripts/(\w+\.py)"', line)
            if m and rule:
                out[rule] = m.group(1)
    return out


def imports_of(script: Path) -> list[str]:
    """The ``import`` statements of an adapter (any depth), as source lines."""
    tree = ast.parse(script.read_text())
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            lines.append(ast.unparse(node))
    return lines


def cpu_seconds(code: str, repeat: int) -> float:
    """Min over ``repeat`` runs of the CPU time of ``python -c code``."""
    best = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    counts = job_counts()
    scripts = rule_scripts()
    base = cpu_seconds("import snakemake.script", a.repeat)
    bare = cpu_seconds("pass", a.repeat)
    print(f"bare interpreter: {bare:.2f} CPU-s; + snakemake.script: {base:.2f} CPU-s\n")
    print("| rule | jobs | start-up CPU-s per job | total CPU-s |")
    print("|---|---:|---:|---:|")
    total, jobs = 0.0, 0
    cache: dict[str, float] = {}
    for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if rule not in scripts:
            continue  # the target rule 'all' runs nothing
        code = "\n".join(["import snakemake.script", *imports_of(ROOT / "workflow_scripts" / scripts[rule])])
        if code not in cache:
            cache[code] = cpu_seconds(code, a.repeat)
        t = cache[code]
        total += n * t
        jobs += n
        print(f"| {rule} | {n} | {t:.2f} | {n * t:.0f} |")
    print(f"\n{jobs} jobs: {total:.0f} CPU-s ({total / 60:.1f} CPU-min) of start-up in all")


if __name__ == "__main__":
    main()
