"""Dataset sweeps: a run's ``data:`` overrides become a named, reusable derived dataset.

What it computes: a dataset parameter becomes a sweep axis through the experiment's
``data:`` block (deep-merged into the named dataset's block); :func:`derive_dataset` names
each distinct resolved block ``<dataset>-<8 hex of its hash>`` and adds it to the config's
``datasets`` so it is prepared once and reused by every run that asks for it.
:data:`DATA_SHORT` gives the swept dominoes parameters short names in run names.

How it was checked: ``tests/datasets/test_dominoes.py`` (derived names distinct and stable;
a bad override names the key under ``data``).
"""

from __future__ import annotations

import copy
import hashlib
import json

from pathdep.data.dominoes.counts import SIDES
from pathdep.data.dominoes.spec import check_dominoes

__all__ = ["DATA_SHORT", "derive_dataset"]

# Short names of swept dataset parameters in run names (pathdep.config adds them to its SHORT).
DATA_SHORT = {("data", k, s): f"{k[0]}{s}" for k in ("prevalence", "reliability") for s in SIDES}
DATA_SHORT.update({("data", s, "simplicity"): f"s{s}" for s in SIDES})


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def derive_dataset(run: dict, datasets: dict) -> dict:
    """Apply a run's ``data:`` overrides: a named, reusable dataset per distinct block.

    If ``run["data"]`` is a non-empty mapping, the run's dataset block is deep-merged with
    it, the result is registered in ``datasets`` as ``<dataset>-<8 hex>`` (first 8 hex
    digits of the SHA-1 of the merged block's sorted JSON: equal blocks share the name,
    and so the prepared file), and ``run["dataset"]`` is set to that name. Called by the
    config's sweep expansion once per run, after the sweep axes have been set.

    Args:
        run: One resolved run (``dataset`` and optional ``data``).
        datasets: The config's ``datasets`` mapping; the derived entry is added to it.

    Returns:
        ``run`` (modified in place).

    Raises:
        ValueError: ``data`` is not a mapping, names no configured dataset, or gives a bad
            dominoes block; the text starts with the key below ``data`` (``.prevalence: ...``)
            or ``: ...``, for the caller to prefix with where ``data`` was written.
    """
    over = run.get("data")
    if not over:
        return run
    if not isinstance(over, dict):
        raise ValueError(f": expected a mapping of dataset keys to override, got {over!r}")
    ds = run.get("dataset")
    if ds not in datasets:
        raise ValueError(f": the run's dataset {ds!r} is not a key of datasets (data: overrides a configured dataset)")
    merged = _merge(datasets[ds], over)
    tag = hashlib.sha1(json.dumps(merged, sort_keys=True, default=str).encode()).hexdigest()[:8]
    derived = f"{ds}-{tag}"
    if merged.get("source") == "dominoes":  # name the key the user wrote, not the derived dataset
        try:
            check_dominoes(derived, merged, datasets)
        except ValueError as exc:
            raise ValueError(str(exc).replace(f"datasets.{derived}", "", 1) + f" (dataset {ds})") from None
    datasets[derived] = merged
    run["dataset"] = derived
    return run
