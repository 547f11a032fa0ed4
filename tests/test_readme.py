"""README.md's command blocks, run as a reader would type them, wherever that is cheap.

Every line of every ```bash block of README.md is one of:

* ``make <target>``: the target exists (``make -n <target>`` plans it);
* ``export NAME=value ...``: the variables are set for the commands after it in the block;
* a Snakemake command (``snakemake`` or ``.venv/bin/snakemake``): run as a dry run (``-n``)
  in a temporary directory, with the README's own arguments; commands on the default
  config need Fashion-MNIST on disk (``make data``; CI has it), so without it they run on
  the tiny config instead (same flags and targets, experiment names mapped);
  the one-figure command is also run for real on the tiny config: it must build that one
  figure (PDF and PNG) and nothing beyond what the figure needs;
* a pytest command: the named tests are collected (``--collect-only``).

A line of any other kind fails the test, so a new command in README.md needs a case here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, TINY, job_counts

README = (ROOT / "README.md").read_text()
FASHION_IDX = Path("/usr/share/datasets/fashion-mnist")
# as typed: the workflow profile (profiles/default) applies unless the command says otherwise
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
TINY_EXPS = list(yaml.safe_load(Path(TINY).read_text())["experiments"])


def _lines() -> list[tuple[int, str, dict]]:
    """(block number, command, environment exported before it in its block) of every command."""
    out = []
    for b, block in enumerate(re.findall(r"```bash\n(.*?)```", README, re.S)):
        env: dict[str, str] = {}
        for raw in block.splitlines():
            line = raw.split(" #")[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                env.update(dict(w.split("=", 1) for w in shlex.split(line)[1:]))
                continue
            out.append((b, line, dict(env)))
    return out


COMMANDS = _lines()


def _kind(cmd: str) -> str:
    words = shlex.split(cmd)
    if words[0] == "make":
        return "make"
    if Path(words[0]).name == "snakemake":
        return "snakemake"
    if "pytest" in words[:3]:
        return "pytest"
    return "unknown"


def _snakemake_args(cmd: str, workdir: Path, tiny: bool) -> list[str]:
    """The README command's Snakemake arguments, as a dry run in ``workdir`` (on the tiny
    config when ``tiny``; a figure target of an experiment that config lacks is renamed to
    its first experiment)."""
    args = shlex.split(cmd)[1:]
    if "--configfile" in args:
        i = args.index("--configfile")
        if tiny or not (ROOT / args[i + 1]).exists():
            args[i + 1] = str(TINY)
    else:  # the Snakefile's own default, config.yaml, named since the run is in workdir
        args += ["--configfile", str(TINY if tiny else ROOT / "config.yaml")]
    if tiny:
        args = [_tiny_target(a) for a in args]
    return [*args, "-n", "-d", str(workdir)]


def _tiny_target(arg: str) -> str:
    m = re.match(r"^results/figures/([A-Za-z0-9]+)_(\w+)\.(pdf|png)$", arg)
    if m and m.group(1) not in TINY_EXPS:
        return f"results/figures/{TINY_EXPS[0]}_{m.group(2)}.{m.group(3)}"
    return arg


def _run(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})


def test_readme_has_the_commands_users_need():
    kinds = [_kind(c) for _, c, _ in COMMANDS]
    assert "unknown" not in kinds, [c for _, c, _ in COMMANDS if _kind(c) == "unknown"]
    cmds = [c for _, c, _ in COMMANDS]
    assert "make run" in cmds and "make test" in cmds
    assert any("--profile profiles/slurm" in c and "--workflow-profile none" in c for c in cmds), \
        "the SLURM command must pass --workflow-profile none (docs/slurm.md)"
    assert any("results/figures/" in c for c in cmds), "a one-figure target"


@pytest.mark.parametrize("block,cmd,env", COMMANDS, ids=[c for _, c, _ in COMMANDS])
def test_readme_command(block, cmd, env, tmp_path):
    kind = _kind(cmd)
    if kind == "make":
        r = _run(["make", "-n", *shlex.split(cmd)[1:]], env)
    elif kind == "pytest":
        words = shlex.split(cmd)
        tests = [w for w in words if w.startswith("tests/")]
        r = _run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *tests], env)
    elif kind == "snakemake":
        tiny = not FASHION_IDX.is_dir()
        r = _run([*SNAKEMAKE, *_snakemake_args(cmd, tmp_path, tiny)], env)
    else:
        pytest.fail(f"README command of unknown kind (add a case to tests/test_readme.py): {cmd}")
    assert r.returncode == 0, f"{cmd}\n{(r.stdout + r.stderr)[-3000:]}"


@pytest.mark.slow
def test_readme_one_figure_target_builds_only_that_figure(tmp_path):
    """The README's one-figure command, for real on the tiny config: the PDF and PNG are
    written and only the jobs the figure needs ran."""
    cmd = next(c for _, c, _ in COMMANDS if _kind(c) == "snakemake" and "results/figures/" in c)
    args = [a for a in _snakemake_args(cmd, tmp_path, tiny=True) if a != "-n"]
    target = next(a for a in args if a.startswith("results/figures/"))
    r = _run([*SNAKEMAKE, *args], {}, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    pdf = tmp_path / target
    assert pdf.stat().st_size > 1000 and pdf.read_bytes()[:4] == b"%PDF"
    png = pdf.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figures = sorted(p.name for p in (tmp_path / "results" / "figures").iterdir())
    exp = Path(target).name.split("_")[0]
    assert all(f.startswith(exp + "_") for f in figures), figures
    from pathdep.config import validate

    n = len(validate(yaml.safe_load(Path(TINY).read_text()))[exp])
    counts = job_counts(r.stdout + r.stderr)
    assert counts == {"prepare_dataset": 1, "train_ensemble": n, "compute_metrics": n, "plot_experiment": 1,
                      "total": 2 * n + 2}, counts
