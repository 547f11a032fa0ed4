"""The ``dominoes`` source: two other configured datasets stacked (:mod:`pathdep.data.dominoes`).

Its preparation writes more than ``x``/``y`` (flags, evaluation sets, achieved values), so
it has a ``prepare`` hook that :func:`pathdep.data.prepare.prepare_dataset` calls instead
of the generic writer.

How it was checked: ``tests/datasets/test_dominoes.py`` (info equals the prepared file;
validation of the block through the registry).
"""

from __future__ import annotations

from pathdep.data.dominoes import (DOMINO_DEFAULTS, DOMINO_KEYS, build_dominoes, check_dominoes, dominoes_info,
                                   prepare_dominoes)
from pathdep.data.registry import Source, dataset_info, register

__all__ = ["Dominoes"]


@register
class Dominoes(Source):
    """``source: dominoes``: two other datasets stacked (this module's docstring)."""

    name = "dominoes"
    keys = DOMINO_KEYS - {"normalize"}
    defaults = {k: v for k, v in DOMINO_DEFAULTS.items() if k != "normalize"}
    subset = False

    def check(self, name, spec, *, offline=False, datasets=None):
        check_dominoes(name, spec, datasets)

    def info(self, name, spec, *, check_files=False, datasets=None):
        return dominoes_info(name, spec, lambda n, s: dataset_info(n, s, check_files=check_files, datasets=datasets),
                             datasets)

    def load(self, name, spec, *, datasets=None):
        """The train/test dominoes in raw [0, 1] units (flags and evaluation sets: :meth:`prepare`)."""
        b = build_dominoes(name, spec, datasets)
        sp = b["splits"]
        return {"x_train": sp["train"]["x"], "y_train": sp["train"]["label"], "x_test": sp["test"]["x"],
                "y_test": sp["test"]["label"], "classes": b["classes"], "pixel_scale": 1.0,
                "split": f"dominoes {b['attrs']['top']} over {b['attrs']['bottom']}"}

    def prepare(self, name, spec, out_path, *, provenance=None, datasets=None):
        """Write the full file (flags, evaluation sets, achieved values): :func:`prepare_dominoes`."""
        prepare_dominoes(name, spec, out_path, provenance=provenance, datasets=datasets)
