"""Config checks of the ``datasets:`` block and of names that become files: the data registry answers.

What it computes: experiment and dataset names are letters, digits, ``_`` and ``-`` (they
become folders, file names and wildcards); every ``datasets.<name>`` block goes through
the ``data`` registry (:func:`pathdep.data.registry.check_spec`: the source's keys and value
types, used by a run or not, no files); :func:`dataset_info` gives a dataset's input shape,
class count and training-set size for the run checks (``check_files=True``: the source
files themselves, without loading them: an ``idx`` root must hold the four IDX files with
the right magic numbers; a ``torchvision`` root with ``download: false`` the files
torchvision looks for). Nothing about a source is known here: a new source is one
registration in ``data/``. A dataset already prepared in ``data_dir`` from the same spec is
not re-checked (a SLURM job re-parses the workflow on a node that may lack the raw files).

How it was checked: ``tests/test_config.py`` (IDX headers read, prepared files preferred)
and ``tests/test_bad_input.py`` (a bad dataset block or name gives one line naming the key).
"""

from __future__ import annotations

import re
from pathlib import Path

from pathdep.config.errors import ConfigError
from pathdep.config.expand import top_setting
from pathdep.config.schema import value_text

__all__ = ["NAME_RE", "RUN_RE", "check_names", "check_datasets", "dataset_info"]

# Experiment and dataset names become directory names and wildcards (rules/common.smk).
NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
RUN_RE = re.compile(r"[A-Za-z0-9_.+-]+")


def check_names(config: dict) -> None:
    """Dataset and experiment names fit in file names and wildcards.

    Raises:
        ConfigError: ``config: datasets.<name>: ...`` or ``config: experiments.<name>: ...``.
    """
    for name in config["datasets"]:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ConfigError(f"config: datasets.{name}: dataset names are strings of letters, digits, '_' "
                              f"and '-' (the name becomes results/data/<name>.h5), got {value_text(name)}")
    for exp in config["experiments"]:
        if not isinstance(exp, str) or not NAME_RE.fullmatch(exp):
            raise ConfigError(f"config: experiments.{exp}: experiment names are strings of letters, digits, "
                              f"'_' and '-' (the name becomes the folder results/<name>/), got {value_text(exp)}")


def check_datasets(config: dict) -> None:
    """Every ``datasets.<name>`` block's keys and value types (no files), used by a run or not.

    Raises:
        ConfigError: ``config: datasets.<name>.<key>: ...``.
    """
    from pathdep.data.registry import check_spec  # imports the sources (torch, h5py): only when validating

    datasets = config["datasets"]
    for name, spec in datasets.items():
        try:
            check_spec(name, spec, offline=bool(top_setting(config, "offline")), datasets=datasets)
        except ValueError as exc:
            raise ConfigError(f"config: {exc}") from None


def dataset_info(name: str, spec: dict, *, check_files: bool = False, data_dir: str | Path | None = None,
                 offline: bool = False, datasets: dict | None = None) -> dict:
    """Input shape, class/output count and training-set size of a configured dataset.

    The ``data`` registry answers (:func:`pathdep.data.registry.dataset_info`): a prepared
    file in ``data_dir`` made from the same spec is read for its attributes; otherwise the
    source's ``info`` (``check_files``: IDX headers and label files, the torchvision files).

    Returns:
        ``{"in_shape": tuple, "out_dim": int, "n_train": int | None, "exact": bool}``
        (``exact`` False when the class count of an ``idx`` source is assumed).

    Raises:
        ConfigError: a bad spec, or (``check_files``) missing or wrong source files.
    """
    from pathdep.data.registry import dataset_info as _info

    try:
        return _info(name, spec, check_files=check_files, data_dir=data_dir, offline=offline, datasets=datasets)
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
