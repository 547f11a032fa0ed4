"""The ``source: dominoes`` block: its keys, defaults and checks, and its shapes without building it.

What it computes: :func:`check_dominoes` resolves a block (defaults filled in, sides resolved
to another configured dataset or an inline ``{source: synthetic, ...}``, prevalences and
reliabilities in [0, 1] that leave no domino without a side, sizes and class lists);
:func:`dominoes_info` gives the input shape ``(C, 2H, W)``, class count and train size from
the sides' own info, as config validation needs them.

How it was checked: ``tests/datasets/test_dominoes.py`` and ``tests/test_bad_input.py``
(one line naming ``datasets.<name>.<key>`` for each bad block; the info equals the prepared
file's shapes).
"""

from __future__ import annotations

from pathdep.data.dominoes.counts import SIDES, _unit, solve_counts
from pathdep.data.sources.synthetic import SYNTHETIC_KEYS, with_defaults

__all__ = ["EVAL_SETS", "FLAGS", "DOMINO_KEYS", "DOMINO_DEFAULTS", "check_dominoes", "dominoes_info"]

EVAL_SETS = ("both", "top_only", "bottom_only", "top_randomized", "bottom_randomized")
FLAGS = ("top_present", "bottom_present", "top_label", "bottom_label")
DOMINO_KEYS = frozenset({"top", "bottom", "prevalence", "reliability", "classes", "size", "n_train", "n_test",
                         "n_eval", "seed", "replace", "normalize"})
DOMINO_DEFAULTS = {"prevalence": {"top": 1.0, "bottom": 1.0}, "reliability": {"top": 1.0, "bottom": 1.0},
                   "n_train": 2000, "n_test": 500, "n_eval": 500, "seed": 0, "replace": False, "normalize": True}


def _side_ref(name: str, spec: dict, side: str, datasets: dict | None) -> tuple[str, dict]:
    v = spec.get(side)
    if isinstance(v, dict):
        if v.get("source") != "synthetic":
            raise ValueError(f"datasets.{name}.{side}: an inline side must be {{source: synthetic, ...}}, "
                             f"got source {v.get('source')!r}; name another datasets entry instead")
        unknown = sorted(set(v) - SYNTHETIC_KEYS - {"source"})
        if unknown:
            raise ValueError(f"datasets.{name}.{side}.{unknown[0]}: unknown key for an inline synthetic side "
                             f"(allowed: {', '.join(sorted(SYNTHETIC_KEYS))})")
        return f"{name}.{side}", v
    if not isinstance(v, str):
        raise ValueError(f"datasets.{name}.{side}: expected the name of another datasets entry or "
                         f"{{source: synthetic, simplicity: ...}}, got {v!r}")
    if datasets is not None:
        if v not in datasets:
            raise ValueError(f"datasets.{name}.{side}: unknown dataset {v!r} (expected one of: {', '.join(datasets)})")
        if v == name or (datasets[v] or {}).get("source") == "dominoes":
            raise ValueError(f"datasets.{name}.{side}: {v!r} is a dominoes dataset; a side must be a plain dataset")
        return v, datasets[v]
    return v, {}


def _per_side(name: str, spec: dict, key: str) -> dict[str, float]:
    v = spec.get(key, DOMINO_DEFAULTS[key])
    if not isinstance(v, dict) or set(v) - set(SIDES):
        raise ValueError(f"datasets.{name}.{key}: expected {{top: p, bottom: p}}, got {v!r}")
    full = dict(DOMINO_DEFAULTS[key], **v)
    return {s: _unit(f"datasets.{name}.{key}.{s}", full[s]) for s in SIDES}


def check_dominoes(name: str, spec: dict, datasets: dict | None = None) -> dict:
    """Check a ``source: dominoes`` block; returns the resolved parameters.

    Raises:
        ValueError: ``datasets.<name>.<key>: ...`` (one line): unknown key, a side that is
            not another (non-domino) dataset, prevalences/reliabilities outside [0, 1] or
            leaving dominoes with no side, bad sizes or class lists.
    """
    unknown = sorted(set(spec) - DOMINO_KEYS - {"source"})
    if unknown:
        raise ValueError(f"datasets.{name}.{unknown[0]}: unknown key for source dominoes "
                         f"(allowed: {', '.join(sorted(DOMINO_KEYS))})")
    p = {k: spec.get(k, v) if spec.get(k) is not None else v for k, v in DOMINO_DEFAULTS.items()}
    for s in SIDES:
        if s not in spec:
            raise ValueError(f"datasets.{name}.{s}: required (the name of another datasets entry)")
    p["sides"] = {s: _side_ref(name, spec, s, datasets) for s in SIDES}
    p["prevalence"] = _per_side(name, spec, "prevalence")
    p["reliability"] = _per_side(name, spec, "reliability")
    solve_counts(10, p["prevalence"]["top"], p["prevalence"]["bottom"], where=f"datasets.{name}.prevalence")
    for key in ("n_train", "n_test", "n_eval"):
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"datasets.{name}.{key}: expected an integer >= 1, got {v!r}")
    if isinstance(p["seed"], bool) or not isinstance(p["seed"], int) or p["seed"] < 0:
        raise ValueError(f"datasets.{name}.seed: expected an integer >= 0, got {p['seed']!r}")
    for key in ("replace", "normalize"):
        if not isinstance(p[key], bool):
            raise ValueError(f"datasets.{name}.{key}: expected true or false, got {p[key]!r}")
    size = spec.get("size")
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size)):
        raise ValueError(f"datasets.{name}.size: expected [height, width] of one side, got {size!r}")
    classes = spec.get("classes")
    if classes is not None:
        ok = isinstance(classes, dict) and set(classes) == set(SIDES) and all(
            isinstance(classes[s], list) and len(classes[s]) >= 2
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in classes[s]) for s in SIDES)
        if not ok or len(classes["top"]) != len(classes["bottom"]):
            raise ValueError(f"datasets.{name}.classes: expected {{top: [i, ...], bottom: [j, ...]}}, two lists of "
                             f"the same length >= 2 (classes matched by position), got {classes!r}")
    return p


def dominoes_info(name: str, spec: dict, side_info, datasets: dict | None = None) -> dict:
    """Input shape, classes and train size of a dominoes block, from its sides' info.

    Args:
        name: Dataset name.
        spec: The block.
        side_info: ``side_info(side_name, side_spec) -> {"in_shape", "out_dim", ...}`` of a
            plain dataset (the registry's ``dataset_info``).
        datasets: The config's ``datasets`` mapping (resolves side names).
    """
    p = check_dominoes(name, spec, datasets)
    shapes, ks = [], []
    for s in SIDES:
        sname, sspec = p["sides"][s]
        if sspec.get("source") == "synthetic" and isinstance(spec.get(s), dict):
            q = with_defaults(sspec)
            info = {"in_shape": (q["channels"], q["size"], q["size"]), "out_dim": q["classes"]}
        else:
            info = side_info(sname, sspec)
        shapes.append(tuple(info["in_shape"]))
        ks.append(int(info["out_dim"]))
    classes = spec.get("classes")
    k = len(classes["top"]) if classes else ks[0]
    if not classes and ks[0] != ks[1]:
        raise ValueError(f"datasets.{name}.classes: the sides have {ks[0]} and {ks[1]} classes; "
                         f"choose matching subsets ({{top: [...], bottom: [...]}})")
    if classes:
        for s, ki in zip(SIDES, ks):
            if max(classes[s]) >= ki:
                raise ValueError(f"datasets.{name}.classes.{s}: class {max(classes[s])} but the side has {ki} classes")
    c = max(sh[0] for sh in shapes)
    hw = spec.get("size") or [max(sh[1] for sh in shapes), max(sh[2] for sh in shapes)]
    return {"in_shape": (c, 2 * int(hw[0]), int(hw[1])), "out_dim": k, "n_train": int(p["n_train"]), "exact": True}
