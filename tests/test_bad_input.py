"""Bad input gets one clear line naming the key or file, before any work, and nothing
already written is lost or left half-written.

Workflow-level cases (config problems, missing or wrong dataset files) go through the
real Snakemake command line, ``snakemake --workflow-profile none -n --cores 1
--configfile bad.yaml -d <tmp>``, and assert: non-zero exit, stderr is exactly one line,
``config: <key>: ...``, equal to the message of ``pathdep.config.validate`` (so the
package and the workflow say the same thing), no traceback, and no ``results/`` folder.

Speed: one Snakemake start costs ~2 CPU-seconds, almost all of it imports (snakemake,
torch), and the machine has 2 cores. So the cases run in a small "fork server": one fresh
Python imports snakemake and pathdep once, then forks one child per case, and each child
calls ``snakemake.cli.main(argv)`` -- the function the ``snakemake`` script runs --
with its own stdout/stderr files; ``sys.exit("message")`` is turned into the exit status
and stderr line exactly as the interpreter does. Three cases also run through the real
``snakemake`` executable, one with and two without ``-n``, to show the two agree and that a
real run writes nothing and leaves an existing ``results/`` tree byte for byte as it was.

File-level cases (a truncated or corrupted trajectory, a trajectory from another config,
an IDX file with a wrong magic number, a failing write) call the package functions and
assert a one-line message naming the file, and that an existing good output survives and
no ``.partial``/``.tmp`` is left.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

from pathdep.config import ConfigError, load_config, validate

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "Snakefile"
SNAKEMAKE_BIN = Path(sys.executable).with_name("snakemake")

BASE: dict[str, Any] = {
    "seed": 1, "device": "cpu", "threads": 1,
    "datasets": {"digits": {"source": "sklearn_digits", "test_fraction": 0.25, "seed": 0}},
    "defaults": {
        "dataset": "digits",
        "model": {"kind": "mlp", "hidden": [16], "activation": "relu", "bias": True},
        "init": {"scheme": "kaiming_normal"},
        "perturbation": {"target": "init", "kind": "gaussian", "epsilon": 0.01, "members": 2},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.0},
        "training": {"epochs": 1, "batch_size": 128, "checkpoints": {"mode": "log", "count": 4}},
        "metrics": {"eval_train": 200, "eval_test": 100, "batch_size": 100},
    },
    "experiments": {"a": {}},
}


def setp(cfg: dict, dotted: str, value: Any) -> dict:
    """Set ``cfg[a][b][c] = value`` for ``dotted = 'a.b.c'`` (creating mappings)."""
    *head, last = dotted.split(".")
    d = cfg
    for k in head:
        d = d.setdefault(k, {})
    d[last] = value
    return cfg


def write_idx(path: Path, arr: np.ndarray, magic: int | None = None) -> None:
    """A uint8 IDX file; ``magic`` overrides the header's magic number."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = (magic if magic is not None else (0x0800 | arr.ndim)).to_bytes(4, "big")
    path.write_bytes(head + b"".join(int(s).to_bytes(4, "big") for s in arr.shape) + arr.tobytes())


def make_idx_root(root: Path, bad_magic: bool = False) -> Path:
    """Four tiny IDX files (8x8 images, 64 train / 16 test, 10 classes)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("t10k", 16)):
        write_idx(root / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 8, 8)),
                  magic=0x00000801 if (bad_magic and split == "train") else None)
        write_idx(root / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return root


@dataclass
class Case:
    """One bad config: ``build(cfg, tmp)`` edits a copy of BASE (or returns YAML text)."""

    id: str
    build: Callable[[dict, Path], dict | str]
    key: str  # the key the one-line message must name
    also: tuple[str, ...] = ()  # more text the message must contain


def _with(*edits: tuple[str, Any]) -> Callable[[dict, Path], dict]:
    def build(cfg: dict, tmp: Path) -> dict:
        for k, v in edits:
            setp(cfg, k, v)
        return cfg
    return build


def _no_datasets(cfg, tmp):
    del cfg["datasets"]
    return cfg


def _slash(cfg, tmp):
    cfg["experiments"] = {"a/b": {}}
    return cfg


def _torchvision_empty(cfg, tmp):
    (tmp / "empty").mkdir(exist_ok=True)
    cfg["datasets"]["tv"] = {"source": "torchvision", "dataset": "mnist", "root": str(tmp / "empty"), "download": False}
    cfg["defaults"]["dataset"] = "tv"
    return cfg


def _idx_missing(cfg, tmp):
    cfg["datasets"]["fm"] = {"source": "idx", "root": str(tmp / "no-such-dir")}
    cfg["defaults"]["dataset"] = "fm"
    return cfg


def _idx_bad_magic(cfg, tmp):
    cfg["datasets"]["fm"] = {"source": "idx", "root": str(make_idx_root(tmp / "idx", bad_magic=True))}
    cfg["defaults"]["dataset"] = "fm"
    return cfg


def _yaml_error(cfg, tmp):
    return "datasets:\n  digits: {source: sklearn_digits\ndefaults: {dataset: digits}\nexperiments:\n  a: {}\n"


SPHERE = {"target": "init", "kind": "sphere", "members": 2}

CASES = [
    Case("unknown-top-level-key", _with(("colour", "red")), "colour"),
    Case("unknown-key-in-defaults", _with(("defaults.trainig", {})), "defaults.trainig", ("training",)),
    Case("unknown-key-in-experiment", _with(("experiments.a.optimzer", {})), "experiments.a.optimzer"),
    Case("unknown-nested-key", _with(("experiments.a.optimizer.lrr", 0.1)), "experiments.a.optimizer.lrr", ("lr",)),
    Case("wrong-type-lr", _with(("experiments.a.optimizer.lr", "fast")), "experiments.a.optimizer.lr", ("number",)),
    Case("zero-lr", _with(("experiments.a.optimizer.lr", 0)), "experiments.a.optimizer.lr", ("> 0",)),
    Case("negative-lr-in-defaults", _with(("defaults.optimizer.lr", -0.1)), "defaults.optimizer.lr", ("> 0",)),
    Case("momentum-ge-1", _with(("experiments.a.optimizer.momentum", 1.0)), "experiments.a.optimizer.momentum", ("< 1",)),
    Case("unknown-optimizer", _with(("experiments.a.optimizer.name", "sgdd")), "experiments.a.optimizer.name", ("adam",)),
    Case("unknown-dataset-name", _with(("experiments.a.dataset", "digitz")), "experiments.a.dataset", ("digitz",)),
    Case("unknown-model-kind", _with(("experiments.a.model.kind", "resnet50")), "experiments.a.model.kind", ("mlp",)),
    Case("unknown-init-scheme", _with(("experiments.a.init.scheme", "xavier")), "experiments.a.init.scheme"),
    Case("unknown-dataset-source", _with(("datasets.digits.source", "kaggle")), "datasets.digits.source"),
    Case("unknown-dataset-key", _with(("datasets.digits.roott", "/x")), "datasets.digits.roott"),
    Case("sphere-relative-over-2", _with(("experiments.a.perturbation", dict(SPHERE, relative=True, epsilon=2.5))),
         "experiments.a.perturbation.epsilon", ("<= 2",)),
    Case("sphere-absolute-over-diameter", _with(("experiments.a.perturbation", dict(SPHERE, epsilon=3.0))),
         "experiments.a.perturbation.epsilon", ("diameter", "fc0.bias")),
    Case("sphere-one-element-tensor",
         _with(("datasets.t", {"source": "teacher_student", "d_out": 1, "n_train": 256}), ("experiments.a.dataset", "t"),
               ("experiments.a.perturbation", dict(SPHERE, epsilon=0.01))),
         "experiments.a.perturbation.granularity", ("fc1.bias",)),
    Case("no-integer-width", _with(("experiments.a.model", {"depth": 3, "n_params": 50})), "experiments.a.model.n_params",
         ("depth 3",)),
    Case("model-does-not-fit-dataset", _with(("experiments.a.model.kind", "lenet5")), "experiments.a.model.kind",
         ("digits",)),
    Case("torchvision-missing-offline", _torchvision_empty, "datasets.tv.root", ("download",)),
    Case("idx-missing-directory", _idx_missing, "datasets.fm.root", ("no-such-dir",)),
    Case("idx-wrong-magic", _idx_bad_magic, "datasets.fm.root", ("train-images-idx3-ubyte", "magic")),
    Case("empty-experiments", _with(("experiments", {})), "experiments"),
    Case("no-datasets-section", _no_datasets, "datasets", ("required",)),
    Case("sweep-element-wrong-type", _with(("experiments.a.optimizer.lr", [0.1, "x"])), "experiments.a.optimizer.lr",
         ("'x'",)),
    Case("sweep-element-wrong-type-in-defaults", _with(("defaults.optimizer.lr", [0.1, "x"])), "defaults.optimizer.lr"),
    Case("empty-sweep-list", _with(("experiments.a.optimizer.lr", [])), "experiments.a.optimizer.lr", ("empty",)),
    Case("list-valued-key-mixed-sweep", _with(("experiments.a.model.hidden", [[16], 32])), "experiments.a.model.hidden",
         ("list of lists",)),
    Case("batch-size-over-dataset", _with(("experiments.a.training.batch_size", 5000)), "experiments.a.training.batch_size",
         ("1347",)),
    Case("subset-over-dataset", _with(("datasets.digits.n_train", 5000)), "datasets.digits.n_train"),
    Case("nesterov-without-momentum", _with(("experiments.a.optimizer.nesterov", True)), "experiments.a.optimizer.nesterov",
         ("momentum",)),
    Case("optimizer-key-of-another-optimizer", _with(("experiments.a.optimizer.betas", [0.9, 0.99])),
         "experiments.a.optimizer.betas", ("sgd",)),
    Case("checkpoint-steps-without-steps", _with(("experiments.a.training.checkpoints", {"mode": "steps"})),
         "experiments.a.training.checkpoints.steps"),
    Case("hparam-the-optimizer-lacks",
         _with(("experiments.a.perturbation", {"target": "hyperparameter", "hparam": "beta1", "epsilon": 0.1})),
         "experiments.a.perturbation.hparam", ("beta1", "sgd")),
    Case("hparam-perturbed-past-1",
         _with(("experiments.a.optimizer.momentum", 0.9),
               ("experiments.a.perturbation", {"target": "hyperparameter", "hparam": "momentum", "epsilon": 0.2})),
         "experiments.a.perturbation.epsilon", ("1.08",)),
    Case("swaps-do-not-fit", _with(("experiments.a.perturbation", {"target": "schedule", "kind": "swap", "swaps": 50})),
         "experiments.a.perturbation.swaps"),
    Case("experiment-name-with-slash", _slash, "experiments.a/b"),
    Case("sweep-repeats-a-value", _with(("experiments.a.optimizer.lr", [0.1, 0.1])), "experiments.a", ("lr0.1",)),
    Case("exponent-without-dot", _with(("experiments.a.optimizer.lr", "1e-3")), "experiments.a.optimizer.lr", ("1.0e-3",)),
    # the top-level settings blocks: geometry:, fits:, lyapunov:, figures:
    Case("lyapunov-unknown-key", _with(("lyapunov.stpes", 10)), "lyapunov.stpes", ("did you mean 'steps'", "qr_every")),
    Case("lyapunov-wrong-type", _with(("lyapunov.k", "four")), "lyapunov.k", ("integer",)),
    Case("lyapunov-unknown-experiment", _with(("lyapunov.experiments", ["a", "b"])), "lyapunov.experiments", ("'b'",)),
    Case("lyapunov-unknown-tangent-experiment", _with(("lyapunov.tangent_experiment", "b")),
         "lyapunov.tangent_experiment", ("'b'",)),
    Case("lyapunov-window-past-its-steps", _with(("lyapunov.steps", 10), ("lyapunov.window", 20)), "lyapunov.window",
         ("<= steps (10)",)),
    Case("lyapunov-study-unknown-key", _with(("lyapunov.study", {"n_netwroks": 8})), "lyapunov.study.n_netwroks",
         ("n_networks",)),
    Case("lyapunov-study-window-past-its-steps", _with(("lyapunov.study", {"steps": 100, "lyap_steps": 150})),
         "lyapunov.study.lyap_steps", ("<= steps (100)",)),
    Case("figures-unknown-key", _with(("figures.dpi", 300)), "figures.dpi", ("expected one of: exclude",)),
    Case("geometry-unknown-key", _with(("geometry.lamdbas", 5)), "geometry.lamdbas", ("did you mean 'lambdas'",)),
    Case("geometry-unknown-experiment", _with(("geometry.experiments.b", {"lambdas": 5})), "geometry.experiments.b",
         ("unknown experiment",)),
    Case("geometry-override-without-endpoints", _with(("geometry.experiments.a.lambdas", [0.2, 0.5])),
         "geometry.experiments.a.lambdas", ("0 and 1",)),
    Case("fits-quantity", _with(("fits.quantities", ["dist", "distance"])), "fits.quantities.1",
         ("distance",)),
    Case("fits-unknown-experiment", _with(("fits.experiments.b", {"space": "log"})), "fits.experiments.b",
         ("unknown experiment",)),
    Case("geometry-inside-a-run", _with(("defaults.analysis", {"lambdas": 5})), "defaults.analysis.lambdas",
         ("top-level geometry",)),
    # koopman:, ntk:, spread: (pathdep.config.koopman / ntk / spread .check)
    Case("koopman-unknown-experiment", _with(("koopman.experiments.b", {"rank": 3})), "koopman.experiments.b",
         ("unknown experiment",)),
    Case("koopman-toy-too-many-groups", _with(("koopman.toy", {"grid": 3, "n_groups": 5})), "koopman.toy.n_groups",
         ("grid^2 // 2",)),
    Case("koopman-group-by-not-in-runs", _with(("koopman.experiments.a", {"group_by": "model.depth"})),
         "koopman.group_by", ("'model.depth'",)),
    Case("ntk-unknown-dataset", _with(("ntk.dataset", "digitz")), "ntk.dataset", ("'digitz'", "digits")),
    Case("ntk-unknown-path-experiment", _with(("ntk.path_experiment", "width")), "ntk.path_experiment", ("'width'",)),
    Case("spread-unknown-run", _with(("spread.init", "a/nope")), "spread.init", ("'nope'",)),
    Case("unused-dataset-bad-key", _with(("datasets.spare", {"source": "teacher_student", "d_inn": 3})),
         "datasets.spare.d_inn", ("did you mean 'd_in'",)),
]
YAML_CASE = Case("yaml-syntax-error", _yaml_error, "")


def _argv(cfgfile: Path, workdir: Path, dry: bool = True) -> list[str]:
    return ["--workflow-profile", "none", *(["-n"] if dry else []), "--cores", "1", "--configfile", str(cfgfile),
            "-d", str(workdir), "-s", str(SNAKEFILE)]


def _write_case(case: Case, base: Path) -> tuple[Path, Path, dict | str]:
    tmp = base / case.id
    work = tmp / "work"
    work.mkdir(parents=True)
    built = case.build(copy.deepcopy(BASE), tmp)
    cfgfile = tmp / "bad.yaml"
    cfgfile.write_text(built if isinstance(built, str) else yaml.safe_dump(built, sort_keys=False))
    return cfgfile, work, built


# The fork server: import once, fork one child per job (2 at a time), each running the
# snakemake CLI's main() with its own stdout/stderr files.
FORK_SERVER = textwrap.dedent("""
    import json, os, sys, traceback
    jobs = json.load(open(sys.argv[1]))
    import snakemake.cli
    import jsonschema, torch, pathdep.config, pathdep.data, pathdep.core.init, pathdep.core.models, pathdep.core.optim  # noqa: F401
    import requests, snakemake.api, snakemake.dag, snakemake.parser, snakemake.workflow  # noqa: F401
    snakemake.cli.parse_args(["--workflow-profile", "none", "-n"])  # imports the plugin registries once

    def child(job):
        for fd, name in ((1, job["stdout"]), (2, job["stderr"])):
            f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(f, fd)
            os.close(f)
        try:
            snakemake.cli.main(job["argv"])
            code = 0
        except SystemExit as exc:  # what the interpreter does with sys.exit(value)
            code = exc.code
            if code is None:
                code = 0
            elif not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    running, results = {}, {}
    pending = list(jobs)
    while pending or running:
        while pending and len(running) < 2:
            job = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                child(job)
            running[pid] = job["id"]
        pid, status = os.wait()
        results[running.pop(pid)] = os.waitstatus_to_exitcode(status)
    json.dump(results, open(sys.argv[2], "w"))
""")


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    work: Path
    expected: str | None  # the message of pathdep.config.validate for the same config


def _real_jobs(base: Path) -> tuple[dict[str, tuple[list[str], Path]], dict]:
    """The real ``snakemake`` executable: a dry run and two real runs."""
    from pathdep.data import prepare_dataset

    runs = {}
    # 1. dry run, unknown nested key
    f1, w1, _ = _write_case(_case("unknown-nested-key"), base)
    runs["dry"] = (_argv(f1, w1, dry=True), w1)
    # 2. real run over an existing results tree: sphere chord too big (needs the actual init radii)
    f2, w2, built = _write_case(_case("sphere-absolute-over-diameter"), base)
    prepare_dataset("digits", built["datasets"]["digits"], w2 / "results" / "data" / "digits.h5", provenance={})
    old = w2 / "results" / "a" / "eps3" / "metrics.nc"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"an earlier result that must survive")
    runs["real-existing"] = (_argv(f2, w2, dry=False), w2)
    # 3. real run, missing dataset directory, empty workdir
    f3, w3, _ = _write_case(_case("idx-missing-directory"), base)
    runs["real-missing-data"] = (_argv(f3, w3, dry=False), w3)
    return runs, _tree(w2 / "results")


def _case(cid: str) -> Case:
    return next(c for c in CASES if c.id == cid)


def _run_all(base: Path) -> dict:
    """Every Snakemake run of this file, started together: the fork server's cases and
    the real executable's. Returns plain JSON data."""
    jobs, meta = [], {}
    for case in [*CASES, YAML_CASE]:
        cfgfile, work, built = _write_case(case, base / "fork")
        expected = None
        if isinstance(built, dict):
            with pytest.raises(ConfigError) as info:
                validate(built, check_files=True, data_dir=work / "results" / "data")
            expected = str(info.value)
        jobs.append({"id": case.id, "argv": _argv(cfgfile, work), "stdout": str(cfgfile.parent / "stdout"),
                     "stderr": str(cfgfile.parent / "stderr")})
        meta[case.id] = (work, expected, cfgfile.parent)
    # the good config as a control: the harness must be able to succeed
    ok = base / "control"
    (ok / "work").mkdir(parents=True)
    (ok / "good.yaml").write_text(yaml.safe_dump(BASE))
    jobs.append({"id": "control", "argv": _argv(ok / "good.yaml", ok / "work"), "stdout": str(ok / "stdout"),
                 "stderr": str(ok / "stderr")})
    meta["control"] = (ok / "work", None, ok)
    # a broken config.yaml read by the Snakefile's own configfile: directive (no --configfile)
    dflt = base / "default-configfile"
    (dflt / "work").mkdir(parents=True)
    (dflt / "work" / "config.yaml").write_text(_yaml_error({}, dflt))
    jobs.append({"id": "yaml-default-configfile", "stdout": str(dflt / "stdout"), "stderr": str(dflt / "stderr"),
                 "argv": ["--workflow-profile", "none", "-n", "--cores", "1", "-d", str(dflt / "work"),
                          "-s", str(SNAKEFILE)]})
    meta["yaml-default-configfile"] = (dflt / "work", None, dflt)
    (base / "jobs.json").write_text(json.dumps(jobs))
    real, before = _real_jobs(base / "real")
    server = subprocess.Popen([sys.executable, "-c", FORK_SERVER, str(base / "jobs.json"), str(base / "codes.json")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    procs = {k: subprocess.Popen([str(SNAKEMAKE_BIN), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, (argv, _) in real.items()}
    real_out = {}
    for k, p in procs.items():
        so, se = p.communicate(timeout=600)
        real_out[k] = [p.returncode, so, se, str(real[k][1]), None]
    out, _ = server.communicate(timeout=600)
    assert server.returncode == 0, out
    codes = json.loads((base / "codes.json").read_text())
    fork_out = {cid: [codes[cid], (d / "stdout").read_text(), (d / "stderr").read_text(), str(work), expected]
                for cid, (work, expected, d) in meta.items()}
    return {"fork": fork_out, "real": real_out, "before": before}


@pytest.fixture(scope="module")
def all_runs(tmp_path_factory):
    """The Snakemake runs, once per test session. Under pytest-xdist this module's tests
    may land on several workers, so the first one to get here runs the batch (under a
    file lock in the session's shared temporary folder) and the others read its results."""
    import fcntl

    assert SNAKEMAKE_BIN.exists(), f"{SNAKEMAKE_BIN}: snakemake must be installed next to this Python (make venv)"
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # pytest-of-<user>/pytest-<N>/, common to this session's workers
    done = shared / "bad_input_runs.json"
    with open(shared / "bad_input_runs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            done.write_text(json.dumps(_run_all(shared / "bad_input_runs")))
    data = json.loads(done.read_text())
    res = {group: {k: Result(v[0], v[1], v[2], Path(v[3]), v[4]) for k, v in data[group].items()}
           for group in ("fork", "real")}
    before = {k: tuple(v) for k, v in data["before"].items()}
    return res["fork"], res["real"], before


@pytest.fixture(scope="module")
def snakemake_results(all_runs) -> dict[str, Result]:
    return all_runs[0]


@pytest.fixture(scope="module")
def real_runs(all_runs):
    return all_runs[1], all_runs[2]


def assert_one_line(r: Result, key: str, also: tuple[str, ...] = ()) -> str:
    """Non-zero exit, stderr exactly one line ``config: <key>: ...``, no traceback, nothing written."""
    assert r.rc != 0, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith(f"config: {key}: "), line
    for text in also:
        assert text in line, (text, line)
    assert "Traceback" not in r.stdout + r.stderr
    assert not (r.work / "results").exists(), sorted(p.name for p in (r.work / "results").rglob("*"))
    return line


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_config_gets_one_line_before_any_job(snakemake_results, case):
    r = snakemake_results[case.id]
    line = assert_one_line(r, case.key, case.also)
    assert line == r.expected  # the workflow prints exactly the package's message


def test_at_least_twenty_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 20
    # the message names a different key for most of them
    assert len({c.key for c in CASES}) >= 20


def test_control_config_passes(snakemake_results):
    r = snakemake_results["control"]
    assert r.rc == 0, r.stdout + r.stderr
    assert "train_ensemble" in r.stdout
    assert not (r.work / "results").exists()  # -n writes nothing


def test_yaml_syntax_error(snakemake_results, tmp_path):
    """Snakemake parses --configfile itself, before the workflow runs: its own message, not
    one line and without the file name (a Snakemake limitation), but nothing is written.
    ``pathdep.config.load_config`` / ``python -m pathdep.config`` name the file and line."""
    for cid in (YAML_CASE.id, "yaml-default-configfile"):
        r = snakemake_results[cid]
        assert r.rc != 0
        assert "not valid JSON or YAML" in r.stdout + r.stderr
        assert "Traceback" not in r.stdout + r.stderr
        assert not (r.work / "results").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(_yaml_error({}, tmp_path))
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{bad}: not valid YAML at line 3"), msg


def test_check_command_prints_one_line(tmp_path, capsys):
    """``python -m pathdep.config FILE`` (run in-process here: its main())."""
    from pathdep.config import main

    good, bad, broken = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "broken.yaml"
    good.write_text(yaml.safe_dump(BASE))
    bad.write_text(yaml.safe_dump(setp(copy.deepcopy(BASE), "defaults.optimizer.lrr", 0.1)))
    broken.write_text(_yaml_error({}, tmp_path))
    assert main([str(good), "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{good}: ok, 1 experiment(s), 1 run(s)\n"
    assert main([str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "config: defaults.optimizer.lrr: unknown key (did you mean 'lr'?) (expected one of: alpha, betas, centered, "
        "constrain_norm, dampening, eps, lr, momentum, name, nesterov, weight_decay)"]
    assert main([str(broken)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"{broken}: not valid YAML at line 3, column "), err


# ----------------------------------------------------------------------------- real snakemake


def _tree(path: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``path``: (sha256, mtime in ns)."""
    import hashlib

    return {str(p.relative_to(path)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_real_snakemake_dry_run_matches(real_runs, snakemake_results):
    out, _ = real_runs
    r = out["dry"]
    line = assert_one_line(r, "experiments.a.optimizer.lrr")
    assert line == snakemake_results["unknown-nested-key"].stderr.strip()


def test_real_run_leaves_existing_results_untouched(real_runs):
    out, before = real_runs
    r = out["real-existing"]
    assert r.rc != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config: experiments.a.perturbation.epsilon: sphere chord 3"), r.stderr
    assert _tree(r.work / "results") == before  # same files, bytes and mtimes: nothing written, nothing removed


def test_real_run_with_missing_data_writes_nothing(real_runs):
    out, _ = real_runs
    assert_one_line(out["real-missing-data"], "datasets.fm.root", ("no-such-dir",))


# ----------------------------------------------------------------------------- file level


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished run: dataset, init.h5, trajectory.h5, metrics.nc."""
    from pathdep.data import prepare_dataset
    from pathdep.stages.metrics import compute_metrics
    from pathdep.stages.train import init_ensemble, train_ensemble

    d = tmp_path_factory.mktemp("trained")
    cfg = copy.deepcopy(BASE)
    run = validate(cfg)["a"][0]
    data = d / "digits.h5"
    prepare_dataset("digits", cfg["datasets"]["digits"], data, provenance={})
    init_ensemble(run, data, d / "init.h5")
    train_ensemble(run, d / "init.h5", data, d / "trajectory.h5", threads=1, progress=False)
    compute_metrics(d / "trajectory.h5", data, d / "metrics.nc", expected_config=run, threads=1)
    return {"dir": d, "run": run, "data": data, "traj": d / "trajectory.h5", "metrics": d / "metrics.nc"}


def _one_line(exc: BaseException, *texts: str) -> str:
    msg = str(exc)
    assert "\n" not in msg, msg
    for t in texts:
        assert t in msg, (t, msg)
    return msg


def _corrupt_copies(traj: Path, out: Path) -> dict[str, Path]:
    raw = traj.read_bytes()
    variants = {
        "truncated-half": raw[: len(raw) // 2],
        "truncated-10pct": raw[: len(raw) // 10],
        "truncated-to-header": raw[:512],
        "empty": b"",
        "superblock-zeroed": b"\0" * 64 + raw[64:],
        "not-hdf5": b"this is not an HDF5 file\n" * 100,
    }
    paths = {}
    for name, data in variants.items():
        p = out / f"{name}.h5"
        p.write_bytes(data)
        paths[name] = p
    return paths


def test_corrupted_trajectory_one_line_and_existing_metrics_survive(trained, tmp_path):
    from pathdep.stages.metrics import compute_metrics

    good = trained["metrics"]
    before = (good.read_bytes(), good.stat().st_mtime_ns)
    for name, bad in _corrupt_copies(trained["traj"], tmp_path).items():
        with pytest.raises(ValueError) as info:
            compute_metrics(bad, trained["data"], good, expected_config=trained["run"], threads=1)
        _one_line(info.value, str(bad))
        assert (good.read_bytes(), good.stat().st_mtime_ns) == before, name
        assert not good.with_name(good.name + ".partial").exists()


def test_trajectory_from_another_config_is_refused(trained, tmp_path):
    from pathdep.stages.metrics import compute_metrics

    other = copy.deepcopy(trained["run"])
    other["optimizer"]["lr"] = 0.5
    out = tmp_path / "metrics.nc"
    with pytest.raises(ValueError) as info:
        compute_metrics(trained["traj"], trained["data"], out, expected_config=other, threads=1)
    _one_line(info.value, str(trained["traj"]), "different config")
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_init_from_another_config_is_refused(trained, tmp_path):
    from pathdep.stages.train import train_ensemble

    other = copy.deepcopy(trained["run"])
    other["perturbation"]["epsilon"] = 0.5
    out = tmp_path / "trajectory.h5"
    with pytest.raises(ValueError) as info:
        train_ensemble(other, trained["dir"] / "init.h5", trained["data"], out, threads=1, progress=False)
    _one_line(info.value, "init.h5", "different config")
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_failing_metrics_write_keeps_the_old_file(trained, monkeypatch):
    """A write that dies half-way leaves the previous metrics.nc and no .partial."""
    import xarray as xr

    from pathdep.stages.metrics import compute_metrics

    good = trained["metrics"]
    before = good.read_bytes()

    def half_write(self, path, *a, **k):
        Path(path).write_bytes(b"half a netCDF")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_write)
    with pytest.raises(OSError):
        compute_metrics(trained["traj"], trained["data"], good, expected_config=trained["run"], threads=1)
    assert good.read_bytes() == before
    assert not good.with_name(good.name + ".partial").exists()


def test_sphere_chord_too_big_in_init_writes_nothing(trained, tmp_path):
    """Past validation (a run edited by hand), init_ensemble checks every member before writing."""
    from pathdep.stages.train import init_ensemble

    run = copy.deepcopy(trained["run"])
    run["perturbation"].update(kind="sphere", epsilon=3.0)
    out = tmp_path / "init.h5"
    out.write_bytes(b"earlier init")
    with pytest.raises(ValueError) as info:
        init_ensemble(run, trained["data"], out)
    _one_line(info.value, "perturbation.epsilon", "diameter")
    assert out.read_bytes() == b"earlier init"
    assert not out.with_name(out.name + ".partial").exists()
    # validation names the same tensor with the same diameter, before any job
    cfg = setp(copy.deepcopy(BASE), "experiments.a.perturbation", dict(SPHERE, epsilon=3.0))
    with pytest.raises(ConfigError) as vinfo:
        validate(cfg)
    diameter = str(info.value).split("2|w0| = ")[1].split()[0]
    assert f"2|w0| = {float(diameter):.6g} of tensor 'fc0.bias'" in str(vinfo.value)


def test_idx_wrong_magic_names_the_file_and_keeps_existing_output(tmp_path):
    from pathdep.data import prepare_dataset, read_idx

    root = make_idx_root(tmp_path / "idx", bad_magic=True)
    bad = root / "train-images-idx3-ubyte"
    with pytest.raises(ValueError) as info:
        read_idx(bad, expected_magic=0x00000803)
    _one_line(info.value, str(bad), "magic")
    out = tmp_path / "fm.h5"
    out.write_bytes(b"earlier dataset")
    with pytest.raises(ValueError) as info:
        prepare_dataset("fm", {"source": "idx", "root": str(root)}, out)
    _one_line(info.value, str(bad))
    assert out.read_bytes() == b"earlier dataset"
    assert not Path(str(out) + ".tmp").exists()


def test_prepared_dataset_skips_the_raw_file_check(tmp_path):
    """A dataset already prepared (same spec) in data_dir needs no raw files: a SLURM job
    re-parses the workflow on a node that may not have them."""
    from pathdep.data import prepare_dataset

    root = make_idx_root(tmp_path / "idx")
    cfg = setp(copy.deepcopy(BASE), "datasets.fm", {"source": "idx", "root": str(root)})
    setp(cfg, "defaults.dataset", "fm")
    setp(cfg, "defaults.training.batch_size", 16)
    data_dir = tmp_path / "results" / "data"
    prepare_dataset("fm", cfg["datasets"]["fm"], data_dir / "fm.h5", provenance={})
    for p in root.iterdir():
        p.unlink()
    root.rmdir()
    runs = validate(cfg, check_files=True, data_dir=data_dir)
    assert [r["run"] for r in runs["a"]] == ["base"]
    with pytest.raises(ConfigError) as info:
        validate(cfg, check_files=True)
    _one_line(info.value, "datasets.fm.root", "not a directory")
    # a changed spec is checked again
    setp(cfg, "datasets.fm.n_train", 32)
    with pytest.raises(ConfigError):
        validate(cfg, check_files=True, data_dir=data_dir)


def test_config_error_is_always_one_line():
    assert str(ConfigError("config: x: a\nb\r\n  c")) == "config: x: a b c"


def test_validate_does_not_touch_its_input_or_the_torch_rng():
    import torch

    cfg = setp(copy.deepcopy(BASE), "experiments.a.perturbation", dict(SPHERE, epsilon=0.5))
    frozen = copy.deepcopy(cfg)
    state = torch.get_rng_state()
    validate(cfg)
    assert cfg == frozen
    assert torch.equal(torch.get_rng_state(), state)
