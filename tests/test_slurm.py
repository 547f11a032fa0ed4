"""The workflow through a real SLURM cluster with `--profile profiles/slurm`.

Two kinds of tests:

* profile tests (no cluster needed, a few seconds): profiles/slurm/config.yaml renders the
  site settings from PATHDEP_SLURM_* environment variables (YTE), requests one GPU for the GPU
  rules, names only rules the workflow has (parsed from rules/*.smk, the parser checked
  against `snakemake --list-rules`), never sets a resource a rule declares itself (one
  source per resource: rules own mem_mb/runtime), and profiles/default (which Snakemake loads implicitly) does not name an executor,
  so it can never turn a `--profile profiles/slurm` run into a local one.
* `@pytest.mark.slurm` end-to-end tests: need a running single-node cluster, e.g. from
  `bash .ci/slurm-up.sh` (fake GPUs, partitions cpu and gpu, account ci).  They SKIP, with
  the reason, only when `sinfo` is absent or the cluster does not answer / has no usable node
  (and FAIL instead when PATHDEP_REQUIRE_SLURM=1, as in CI).
  A toy workflow (2 GPU jobs, 1 CPU job, 1 local rule; 30-60 s) and the real workflow on
  tests/data/config_tiny.yaml (~15 SLURM jobs; 4-8 min on a busy 2-core machine) are each run as
  `timeout -k 15 N snakemake --profile profiles/slurm ...` and checked by meaning: every
  non-local job was submitted to SLURM and finished COMPLETED according to `sacct` (or
  `scontrol show job` when the cluster has no accounting), the train_ensemble jobs asked for
  a GPU (ReqTRES gres/gpu / TresPerJob gres:gpu, and --gpus in the sbatch call), the GPU
  rules went to the partition named by PATHDEP_SLURM_GPU_PARTITION, and the outputs exist.

Checked by running them against `.ci/slurm-up.sh` with SLURM_CI_ACCOUNTING=1 (sacct) and 0
(squeue + scontrol).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles" / "slurm"
TINY = ROOT / "tests" / "data" / "config_tiny.yaml"

# seconds: the whole snakemake run of each end-to-end test (then SIGTERM, 15 s later SIGKILL)
TOY_TIMEOUT = 300
REAL_TIMEOUT = 900
# Poll SLURM every 2 s at first (the profile's 30/40 s suit a real cluster, not a test); the
# plugin backs off by 10 s per poll without news and resets when a job finishes.
FAST_POLL = ["--seconds-between-status-checks", "2", "--slurm-init-seconds-before-status-checks", "2"]

GPU_RULES = {"train_ensemble", "lyapunov"}  # the 2-2-1 study is CPU-only (numba kernels)


# ----------------------------------------------------------------------------------------
# helpers


def _run(cmd, timeout=30, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _cluster():
    """Return (usable, reason, accounting) for the SLURM cluster this machine talks to."""
    if shutil.which("sinfo") is None:
        return False, "sinfo not found: no SLURM client here (bring a cluster up: bash .ci/slurm-up.sh)", False
    try:
        r = _run(["sinfo", "-h", "-N", "-o", "%N %T"], timeout=15)
    except subprocess.TimeoutExpired:
        return False, "sinfo did not answer within 15 s: slurmctld is not up (bash .ci/slurm-up.sh)", False
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        return False, f"SLURM is not up (sinfo: {msg[-1] if msg else r.returncode}); run bash .ci/slurm-up.sh", False
    states = {line.split()[1].rstrip("*~#$@") for line in r.stdout.splitlines() if len(line.split()) == 2}
    if not states & {"idle", "mixed", "allocated", "completing"}:
        return False, f"SLURM is up but has no usable node (node states: {sorted(states) or 'none'})", False
    return True, "", _accounting_works()


def _accounting_works() -> bool:
    """True when slurmdbd answers sacct (else the plugin must poll with squeue)."""
    try:
        cfg = _run(["scontrol", "show", "config"], timeout=15).stdout
        if "accounting_storage/slurmdbd" not in cfg or shutil.which("sacct") is None:
            return False
        r = _run(["sacct", "-n", "-X", "-S", "now"], timeout=15)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and "disabled" not in (r.stdout + r.stderr)


@pytest.fixture(scope="module")
def slurm_cluster():
    usable, reason, accounting = _cluster()
    if not usable:
        if os.environ.get("PATHDEP_REQUIRE_SLURM") == "1":  # CI (.ci/run): no silent skip
            pytest.fail(f"PATHDEP_REQUIRE_SLURM=1 but {reason}", pytrace=False)
        pytest.skip(reason=reason)
    return {"accounting": accounting}


def _profile_env(**pathdep_vars):
    """The environment a user would have: no SLURM job context, our PATHDEP_SLURM_* only."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SBATCH_", "PATHDEP_SLURM_", "SNAKEMAKE_PROFILE"))}
    env.update({f"PATHDEP_SLURM_{k.upper()}": v for k, v in pathdep_vars.items()})
    return env


def _run_through_slurm(snakefile: Path, workdir: Path, cluster: dict, timeout: int, extra=(), env=None):
    """`timeout -k 15 N snakemake --profile profiles/slurm ... all`; returns (returncode, output)."""
    cmd = ["timeout", "-k", "15", str(timeout), sys.executable, "-m", "snakemake", "all",
           "--snakefile", str(snakefile), "--directory", str(workdir),
           "--profile", str(PROFILE), "--workflow-profile", "none", "--verbose", *FAST_POLL, *extra]
    if not cluster["accounting"]:
        # sacct is installed but accounting does not answer: the plugin's sacct polling would
        # fail silently and wait forever (docs/slurm.md); squeue works while MinJobAge lasts.
        cmd += ["--slurm-status-command", "squeue"]
    out, code = "", -1
    try:
        r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 60, env=env)
        out, code = r.stdout + r.stderr, r.returncode
    except subprocess.TimeoutExpired as exc:  # timeout(1) itself failed to stop it
        out = "".join(x.decode() if isinstance(x, bytes) else (x or "") for x in (exc.stdout, exc.stderr))
    finally:
        # never leave jobs of a failed or timed-out run queued
        m = re.search(r"SLURM run ID: (\S+)", out)
        if m:
            _run(["scancel", "--name", m.group(1)], timeout=15)
    return code, out


def _submitted(out: str) -> dict[str, list[str]]:
    """rule -> SLURM job ids, from the plugin's 'submitted with SLURM jobid' lines."""
    jobs: dict[str, list[str]] = {}
    for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", out):
        jobs.setdefault(m.group(2), []).append(m.group(1))
    return jobs


def _planned_remote(out: str) -> dict[str, int]:
    """rule -> number of jobs Snakemake sent to the executor ('rule X:', not 'localrule X:')."""
    counts: dict[str, int] = {}
    for m in re.finditer(r"^rule (\w+):$", out, flags=re.M):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def _sbatch_calls(out: str) -> dict[str, list[str]]:
    """rule -> the sbatch command lines the plugin logged (--verbose)."""
    calls: dict[str, list[str]] = {}
    for line in out.splitlines():
        m = re.search(r"sbatch call: (sbatch .*?--comment '?rule_(\w+?)(?:_wildcards_\S*)?'?\s.*?)--wrap", line)
        if m:
            calls.setdefault(m.group(2), []).append(m.group(1))
    return calls


def _scheduler_records(ids: list[str], accounting: bool) -> dict[str, dict[str, str]]:
    """job id -> {State, Partition, Account, Tres}: from sacct, else scontrol show job."""
    recs: dict[str, dict[str, str]] = {}
    if accounting:
        # slurmdbd receives job completion asynchronously: allow a few seconds
        for _ in range(15):
            r = _run(["sacct", "-n", "-X", "-P", "-j", ",".join(ids),
                      "--format=JobIDRaw,State,Partition,Account,ReqTRES"], timeout=30)
            recs = {}
            for line in r.stdout.splitlines():
                jid, state, part, acct, tres = line.split("|")
                recs[jid] = {"State": state, "Partition": part, "Account": acct, "Tres": tres}
            if len(recs) == len(ids) and all(v["State"] == "COMPLETED" for v in recs.values()):
                break
            time.sleep(1)
        return recs
    for jid in ids:
        r = _run(["scontrol", "-o", "show", "job", jid], timeout=30)
        fields = dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)
        if fields:
            recs[jid] = {"State": fields.get("JobState", ""), "Partition": fields.get("Partition", ""),
                         "Account": fields.get("Account", ""),
                         "Tres": fields.get("TresPerJob", "") + " " + fields.get("TRES", "")}
    return recs


def _check_slurm_run(out: str, cluster: dict, expect_remote: dict[str, int], gpu_partition: str | None,
                     account: str | None) -> dict[str, list[str]]:
    """Every non-local job went through SLURM, COMPLETED, and GPU rules asked for a GPU."""
    assert "SLURM run ID:" in out, "snakemake did not use the slurm executor:\n" + out[-3000:]
    planned = _planned_remote(out)
    submitted = _submitted(out)
    assert planned == expect_remote, f"jobs sent to the executor {planned}, expected {expect_remote}"
    assert {r: len(v) for r, v in submitted.items()} == expect_remote, \
        f"jobs submitted to SLURM {submitted}, expected counts {expect_remote}"

    # the sbatch command lines: --gpus for GPU rules only
    calls = _sbatch_calls(out)
    for rule, lines in calls.items():
        for line in lines:
            if rule in GPU_RULES:
                assert re.search(r"--gpus=(\w+:)?1\b", line), f"{rule} submitted without --gpus: {line}"
            else:
                assert "--gpus" not in line and "--gres" not in line, f"{rule} asked for a GPU: {line}"
    assert set(calls) == set(expect_remote), f"sbatch calls logged for {sorted(calls)}"

    # what SLURM itself recorded
    ids = [j for v in submitted.values() for j in v]
    recs = _scheduler_records(ids, cluster["accounting"])
    source = "sacct" if cluster["accounting"] else "scontrol show job"
    assert set(recs) == set(ids), f"{source} knows jobs {sorted(recs)}, submitted {sorted(ids)}"
    for rule, jids in submitted.items():
        for jid in jids:
            rec = recs[jid]
            assert rec["State"] == "COMPLETED", f"{rule} job {jid}: {source} state {rec['State']}"
            if rule in GPU_RULES:
                assert "gres/gpu" in rec["Tres"] or "gres:gpu" in rec["Tres"], \
                    f"{rule} job {jid} has no GPU in {source}: {rec['Tres']}"
                if gpu_partition:
                    assert rec["Partition"] == gpu_partition, f"{rule} job {jid} ran in {rec['Partition']}"
            else:
                assert "gpu" not in rec["Tres"], f"{rule} job {jid} got a GPU: {rec['Tres']}"
            if account and cluster["accounting"]:
                assert rec["Account"] == account, f"{rule} job {jid} charged to {rec['Account']}"
    return submitted


# ----------------------------------------------------------------------------------------
# profile tests (no cluster)


def _render(profile_dir: Path, env: dict[str, str]) -> dict:
    """Render a profile exactly as `snakemake --profile` does, under the given environment."""
    code = (
        "import json, sys\n"
        "from snakemake.profiles import ProfileConfigFileParser\n"
        "with open(sys.argv[1]) as f:\n"
        "    print(json.dumps(ProfileConfigFileParser().parse(f)))\n"
    )
    r = _run([sys.executable, "-c", code, str(profile_dir / "config.yaml")], timeout=60, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    return json.loads(r.stdout)


def _per_rule(args: dict) -> dict[str, dict[str, str]]:
    """The rendered profile's set-resources as {rule: {resource: value}}."""
    res: dict[str, dict[str, str]] = {}
    for rule, kv in (a.split(":", 1) for a in args["set-resources"]):
        k, v = kv.split("=", 1)
        res.setdefault(rule, {})[k] = v
    return res


def _workflow_rules() -> dict[str, dict]:
    """rule -> {"local": bool, "resources": {declared resource names}}, parsed from the
    Snakefile and rules/*.smk (checked against `snakemake --list-rules` below)."""
    rules, local = {}, set()
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        text = path.read_text()
        for m in re.finditer(r"^localrules:(.*\n(?:[ \t]+.*\n)*)", text, flags=re.M):
            local |= set(re.findall(r"\w+", m.group(1)))
        for m in re.finditer(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|[ \t]*\n)*)", text, flags=re.M):
            block = re.search(r"^    resources:\n((?:        .*\n)*)", m.group(2), flags=re.M)
            declared = set(re.findall(r"^        (\w+)\s*=", block.group(1), flags=re.M)) if block else set()
            rules[m.group(1)] = {"resources": declared}
    for name, rule in rules.items():
        rule["local"] = name in local or name == "all"
    return rules


def test_rule_parser_finds_every_workflow_rule(tmp_path):
    """The parser the profile tests rely on sees exactly the rules Snakemake sees."""
    r = _run([sys.executable, "-m", "snakemake", "--list-rules", "--workflow-profile", "none",
              "--configfile", str(TINY), "-d", str(tmp_path), "-s", str(ROOT / "Snakefile")], timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    listed = {line.strip() for line in r.stdout.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}
    parsed = _workflow_rules()
    assert set(parsed) == listed, (sorted(parsed), sorted(listed))
    assert parsed["train_ensemble"]["resources"] >= {"mem_mb", "runtime"}
    assert parsed["plot_experiment"]["local"] and not parsed["train_ensemble"]["local"]


def test_figure_and_summary_rules_are_local():
    """docs/slurm.md: figure, table and summary rules run in the Snakemake process."""
    rules = _workflow_rules()
    named = [r for r in rules if r.startswith("plot_")] + ["summarize_fits", "spread", "lyapunov_link",
                                                           "hypersphere_theory", "dominoes_summary", "ntk_path_width"]
    assert [r for r in named if not rules[r]["local"]] == []
    text = (ROOT / "docs" / "slurm.md").read_text()
    assert all(f"`{r}`" in text for r in named if not r.startswith("plot_")), "docs/slurm.md names each of them"


def test_slurm_profile_names_only_workflow_rules():
    """A per-rule entry for a rule that does not exist is silently ignored by Snakemake:
    fail instead (the profile once sized rules that had been renamed)."""
    rules = _workflow_rules()
    per_rule = _per_rule(_render(PROFILE, _profile_env(partition="p", gpu_partition="g", gpu_model="m")))
    unknown = sorted(set(per_rule) - set(rules))
    assert not unknown, f"profiles/slurm names rules the workflow does not have: {unknown}"
    local = sorted(r for r in per_rule if rules[r]["local"])
    assert not local, f"profiles/slurm sizes localrules (they never reach SLURM): {local}"


def test_each_resource_has_one_source():
    """The rules declare mem_mb/runtime; the profile adds only cluster settings, never a
    resource the rule declares (it would silently override it on SLURM)."""
    rules = _workflow_rules()
    per_rule = _per_rule(_render(PROFILE, _profile_env()))
    for rule, res in per_rule.items():
        both = sorted(set(res) & rules[rule]["resources"])
        assert not both, f"{rule}: {both} set both in rules/*.smk and profiles/slurm"
    # the jobs of the core pipeline are sized by their rules, not by the profile's default
    # (a rule that declares nothing gets default-resources: 1 CPU, 2 GB, 30 min)
    for rule in ("prepare_dataset", "train_ensemble", "compute_metrics", "geometry",
                 "fit_experiment", "lyapunov", "lyapunov_study"):
        assert not rules[rule]["local"], rule
        assert {"mem_mb", "runtime"} <= rules[rule]["resources"], f"{rule} declares no mem_mb/runtime"


def test_slurm_profile_without_site_variables():
    args = _render(PROFILE, _profile_env())
    assert args["executor"] == "slurm"
    assert args["slurm-requeue"] in ("True", "true", True)
    assert args["slurm-status-command"] == "sacct"
    defaults = dict(a.split("=", 1) for a in args["default-resources"])
    assert "slurm_partition" not in defaults and "slurm_account" not in defaults  # cluster defaults
    assert {"mem_mb", "runtime", "cpus_per_task"} <= set(defaults)
    res = _per_rule(args)
    rules = _workflow_rules()
    for rule in GPU_RULES:
        assert res[rule]["gpu"] == "1", rule
        assert "cpus_per_task" in res[rule], rule
        assert {"mem_mb", "runtime"} <= rules[rule]["resources"], rule  # sized by the rule
        assert "slurm_partition" not in res[rule] and "gpu_model" not in res[rule]
    gpu = sorted(r for r, v in res.items() if "gpu" in v)
    assert gpu == sorted(GPU_RULES), gpu
    for rule in ("compute_metrics", "geometry"):
        assert "gpu" not in res[rule] and res[rule]["cpus_per_task"] == "2"


def test_slurm_profile_takes_site_settings_from_environment():
    env = _profile_env(partition="compute", gpu_partition="gpu-a100", account="proj42", gpu_model="a100")
    args = _render(PROFILE, env)
    assert "slurm_partition=compute" in args["default-resources"]
    assert "slurm_account=proj42" in args["default-resources"]
    for rule in GPU_RULES:
        assert f"{rule}:slurm_partition=gpu-a100" in args["set-resources"]
        assert f"{rule}:gpu_model=a100" in args["set-resources"]
    assert not any(a.startswith("compute_metrics:slurm_partition") for a in args["set-resources"])
    # the GPU partition falls back to the general one
    args = _render(PROFILE, _profile_env(partition="compute"))
    assert "train_ensemble:slurm_partition=compute" in args["set-resources"]


def test_default_profile_names_no_executor():
    """profiles/default is loaded implicitly and overrides --profile key by key: an
    `executor: local` there silently runs `--profile profiles/slurm` jobs locally."""
    args = _render(ROOT / "profiles" / "default", _profile_env())
    assert "executor" not in args, "profiles/default must not set executor (see its header)"
    assert args["cores"] == "8"


# ----------------------------------------------------------------------------------------
# end-to-end through SLURM

TOY_SNAKEFILE = """
localrules: all, figure

rule all:
    input: "results/figure.txt"

rule train_ensemble:
    output: "results/train/{seed}.txt"
    shell: "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES SLURM_JOB_ID=$SLURM_JOB_ID > {output}"

rule compute_metrics:
    input: expand("results/train/{seed}.txt", seed=[0, 1])
    output: "results/metrics.txt"
    shell: "cat {input} > {output}; echo CPU SLURM_JOB_ID=$SLURM_JOB_ID CUDA=${{CUDA_VISIBLE_DEVICES:-none}} >> {output}"

rule figure:
    input: "results/metrics.txt"
    output: "results/figure.txt"
    shell: "cat {input} > {output}; echo LOCAL SLURM_JOB_ID=${{SLURM_JOB_ID:-none}} >> {output}"
"""


@pytest.mark.slurm
def test_toy_workflow_through_slurm(slurm_cluster, tmp_path):
    """2 GPU jobs + 1 CPU job through SLURM, 1 local rule; ~30-60 s."""
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    account = "ci" if slurm_cluster["accounting"] else None
    env = _profile_env(gpu_partition="gpu", gpu_model="fake", **({"account": account} if account else {}))
    code, out = _run_through_slurm(tmp_path / "Snakefile", tmp_path, slurm_cluster, TOY_TIMEOUT, env=env)
    assert code == 0, f"snakemake exit {code} (124/137: ran past {TOY_TIMEOUT} s)\n" + out[-4000:]
    submitted = _check_slurm_run(out, slurm_cluster, {"train_ensemble": 2, "compute_metrics": 1},
                                 gpu_partition="gpu", account=account)
    # inside the jobs: SLURM bound one (fake) GPU to each training job, none to the CPU job
    for seed in (0, 1):
        text = (tmp_path / "results" / "train" / f"{seed}.txt").read_text()
        m = re.match(r"CUDA_VISIBLE_DEVICES=(\d+) SLURM_JOB_ID=(\d+)", text)
        assert m, text
        assert m.group(2) in submitted["train_ensemble"]
    metrics = (tmp_path / "results" / "metrics.txt").read_text()
    assert f"CPU SLURM_JOB_ID={submitted['compute_metrics'][0]} CUDA=none" in metrics
    assert "LOCAL SLURM_JOB_ID=none" in (tmp_path / "results" / "figure.txt").read_text()
    assert "--gpus=fake:1" in out  # PATHDEP_SLURM_GPU_MODEL reached sbatch


@pytest.mark.slurm
def test_workflow_tiny_config_through_slurm(slurm_cluster, tmp_path):
    """The real workflow on tests/data/config_tiny.yaml through SLURM (~15 jobs; minutes)."""
    assert (ROOT / "Snakefile").is_file() and TINY.is_file(), "Snakefile or tests/data/config_tiny.yaml missing"
    env = _profile_env(gpu_partition="gpu")
    code, out = _run_through_slurm(ROOT / "Snakefile", tmp_path, slurm_cluster, REAL_TIMEOUT,
                                   extra=["--configfile", str(TINY)], env=env)
    assert code == 0, f"snakemake exit {code} (124/137: ran past {REAL_TIMEOUT} s)\n" + out[-4000:]
    planned = _planned_remote(out)
    assert planned.get("train_ensemble", 0) >= 1 and "plot_experiment" not in planned, planned
    _check_slurm_run(out, slurm_cluster, planned, gpu_partition="gpu", account=None)
    figures = sorted(p.name for p in (tmp_path / "results" / "figures").glob("*"))
    assert figures and all((tmp_path / "results" / "figures" / f).stat().st_size > 0 for f in figures), figures
    n_runs = planned["train_ensemble"]
    assert len(list(tmp_path.glob("results/*/*/trajectory.h5"))) == n_runs
    assert len(list(tmp_path.glob("results/*/*/metrics.nc"))) == n_runs
