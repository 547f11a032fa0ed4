"""Config validation: every check before any job, one line naming the key.

What it computes: :func:`validate` turns a config dict (config.yaml) into the runs the
workflow trains, ``{experiment: [resolved run, ...]}``, or raises a :class:`ConfigError`
whose text is **one line** ``config: <key>: <what was expected>``, where ``<key>`` is where
the value was written (``experiments.lr.optimizer.lr`` or ``defaults.optimizer.lr``); a
problem of one run of a sweep ends with ``(in run <experiment>/<run>)``. ``rules/common.smk``
calls it while Snakemake parses the workflow, so ``snakemake -n`` already reports it. The
passes, in order, each in its own module:

1. structure (:mod:`pathdep.config.expand`): sweep lists (not empty, not lists of mappings,
   list-valued keys swept only with a list of lists); then ``schemas/config.schema.yaml``
   (:mod:`pathdep.config.schema`) on the config with every sweep axis collapsed to its
   first value (unknown keys anywhere, types, ranges, enums);
2. names and datasets (:mod:`pathdep.config.datasets`): experiment and dataset names (they
   become file names and wildcards), every ``datasets.<name>`` block through the ``data``
   registry, and for the datasets runs use, the source's shapes (with ``check_files`` the
   source files themselves, without loading them);
3. runs: each experiment expanded into its runs (:func:`pathdep.config.expand.expand_experiment`:
   defaults, sweeps, run names, derived datasets), each run checked
   (:func:`pathdep.config.runs.check_run`: the schema on every resolved run, so a bad value
   inside a sweep list is named too; model, optimizer, checkpoints, perturbations), and
   ``training.fast: true`` written for a model the fast step does not cover (ResNets,
   transformers) and a ``norm: batch`` ResNet on a dominoes dataset (its per-pattern
   evaluation has no per-member BatchNorm statistics) are refused;
4. the top-level settings blocks (:data:`pathdep.config.blocks.CHECKS`: one ``check`` per
   block, from the block's own ``config/<family>.py``).

Seeds: every random choice derives from ``seed`` through ``numpy.random.SeedSequence``
(:func:`pathdep.core.context.run_seeds`), so the reference initialisation is shared by all
runs of an experiment with the same seed (an epsilon sweep shares its baseline) and recorded
in every output.

``python -m pathdep.config config.yaml`` checks a config file the same way (files too) and
prints one line; unlike Snakemake's own loader it names the line of a YAML syntax error.

How it was checked: ``tests/test_config.py`` (sweep products, names, merge, seeds, model
widths, the sphere radii against ``init_ensemble``) and ``tests/test_bad_input.py`` (every
bad-input case through Snakemake: non-zero exit, one line naming the key, nothing written).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pathdep.config.blocks import check_blocks
from pathdep.config.datasets import RUN_RE, check_datasets, check_names, dataset_info
from pathdep.config.errors import ConfigError
from pathdep.config.expand import check_sweeps, collapse, expand_experiment, origin, top_setting
from pathdep.config.runs import check_run
from pathdep.config.schema import load_config, load_schema, schema_check, value_text

__all__ = ["validate", "main"]


def validate(config: dict, *, check_files: bool = False, data_dir: str | Path | None = None) -> dict[str, list[dict]]:
    """Check a config and return ``{experiment: [resolved run, ...]}``.

    Args:
        config: the config mapping (as Snakemake loaded it). Derived datasets (a run's
            ``data:`` overrides) are added to ``config["datasets"]``.
        check_files: also check the dataset source files (without loading them); the
            workflow turns this on in its main process.
        data_dir: folder of prepared datasets (``results/data``); a dataset prepared there
            from the same spec is not re-checked against its source and gives exact shapes.

    Raises:
        ConfigError: one line, ``config: <key>: <what was expected>``.
    """
    _check_structure(config)
    check_names(config)
    check_datasets(config)
    schema = load_schema()
    run_schema = dict(schema["$defs"]["run"], **{"$defs": schema["$defs"]})
    infos: dict[str, dict] = {}
    out = {exp: _experiment_runs(config, exp, run_schema, infos, check_files, data_dir)
           for exp in config["experiments"]}
    check_blocks(config, out)  # geometry:, lyapunov:, koopman:, ... beyond the schema
    return out


def _check_structure(config: dict) -> None:
    """A mapping; sweep lists that can be meant; the schema on the config with axes collapsed."""
    if not isinstance(config, dict):
        raise ConfigError(f"config: top level: expected a mapping of keys, got {value_text(config)}")
    check_sweeps(config.get("defaults"), "defaults")
    experiments = config.get("experiments")
    if isinstance(experiments, dict):
        for exp, block in experiments.items():
            check_sweeps(block, f"experiments.{exp}")
    collapsed = dict(config)
    if isinstance(experiments, dict):
        collapsed["experiments"] = {k: collapse(v) if v is not None else {} for k, v in experiments.items()}
    if isinstance(config.get("defaults"), dict):
        collapsed["defaults"] = collapse(config["defaults"])
    schema_check(collapsed, load_schema(), lambda p: ".".join(p))


def _experiment_runs(config: dict, exp: str, run_schema: dict, infos: dict, check_files: bool,
                     data_dir: str | Path | None) -> list[dict]:
    """The checked runs of one experiment; ``infos`` caches each used dataset's shapes."""
    datasets = config["datasets"]

    def at(*path: str) -> str:
        return origin(config, exp, *path)

    runs = expand_experiment(config, exp)
    names: set[str] = set()
    for run in runs:
        ds = run.get("dataset")
        if isinstance(ds, str) and ds in datasets and ds not in infos:  # dataset-level errors: no run suffix
            infos[ds] = dataset_info(ds, datasets[ds], check_files=check_files, data_dir=data_dir,
                                     offline=bool(top_setting(config, "offline")), datasets=datasets)
        try:
            check_run(run, run_schema, at, datasets, infos)
            _check_fast(config, exp, run)
            _check_dominoes_bn(run, at, datasets)
        except ConfigError as exc:
            if len(runs) > 1:  # which run of the sweep (a key from defaults may clash with one swept value)
                raise ConfigError(f"{exc} (in run {exp}/{run['run']})") from None
            raise
        _check_run_name(run, exp, names)
        run["dataset_spec"] = datasets[ds]
        run["device"] = top_setting(config, "device")
    return runs


def _check_fast(config: dict, exp: str, run: dict) -> None:
    """``training.fast: true`` written in an experiment whose model the hand-written fast step
    does not cover (it is an MLP step; :mod:`pathdep.core.fast`) is refused; inherited from
    ``defaults`` (the default config sets it for its MLPs) it falls back to the generic step."""
    block = ((config.get("experiments") or {}).get(exp) or {}).get("training") or {}
    kind = (run.get("model") or {}).get("kind", "mlp")
    if isinstance(block, dict) and block.get("fast") is True and kind in ("resnet", "transformer"):
        raise ConfigError(f"config: experiments.{exp}.training.fast: expected false or absent for model kind "
                          f"{kind} (the fast step is written for MLPs; the generic step trains {kind}s)")


def _check_dominoes_bn(run: dict, at, datasets: dict) -> None:
    """The per-pattern evaluation of dominoes (:mod:`pathdep.stages.dominoes`) runs the plain
    ``apply``, which has no per-member BatchNorm statistics: ``norm: batch`` is refused there."""
    model = run.get("model") or {}
    source = (datasets.get(run.get("dataset")) or {}).get("source")
    if source == "dominoes" and model.get("kind") == "resnet" and model.get("norm", "batch") == "batch":
        raise ConfigError(f"config: {at('model', 'norm')}: expected none for a dominoes dataset (the per-pattern "
                          f"evaluation has no per-member BatchNorm statistics), got batch")


def _check_run_name(run: dict, exp: str, names: set[str]) -> None:
    """A run name fits in a folder name and is unique in its experiment (added to ``names``)."""
    if not RUN_RE.fullmatch(run["run"]):
        raise ConfigError(f"config: experiments.{exp}: run name {run['run']!r} (from the swept values "
                          f"{', '.join(run['swept'])}) may hold letters, digits and '_.+-' only")
    if run["run"] in names:
        raise ConfigError(f"config: experiments.{exp}: two runs share the name {run['run']!r} "
                          f"(a sweep list repeats a value?)")
    names.add(run["run"])


def main(argv: list[str] | None = None) -> int:
    """``python -m pathdep.config FILE [--data-dir DIR]``: check a config file, print one line."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pathdep.config", description="Check a pathdep config file.")
    ap.add_argument("file")
    ap.add_argument("--data-dir", default="results/data", help="prepared datasets (default: results/data)")
    args = ap.parse_args(argv)
    try:
        runs = validate(load_config(args.file), check_files=True, data_dir=args.data_dir)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"{args.file}: ok, {len(runs)} experiment(s), {sum(len(r) for r in runs.values())} run(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
