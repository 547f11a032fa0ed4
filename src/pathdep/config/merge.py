"""Deep merge of config mappings (``defaults`` <- experiment block, ``analysis`` <- its
per-experiment override): nested mappings merge key by key, anything else replaces."""

from __future__ import annotations

import copy


def deep_merge(base: dict, over: dict) -> dict:
    """A new mapping: ``base`` with ``over`` merged in (deep copies; inputs untouched)."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
