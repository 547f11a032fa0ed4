"""Which divergence curves the fits read, and which file each comes from (``metrics.nc`` or
``geometry.nc``).

``dist_excess`` is derived: ``dist(t) - dist(0)``, the growth of the distance beyond the
perturbation itself (an initial-weight perturbation otherwise dominates ``dist``).
"""

from __future__ import annotations

import numpy as np

# Divergence curves that fit_experiment can fit: where they come from. `dist_excess` is
# derived: dist(t) - dist(0), the growth of the distance beyond the perturbation itself (an
# initial-weight perturbation of size eps sqrt(P) otherwise dominates dist for the whole run).
QUANTITIES = {"dist": "metrics", "dist_aligned": "geometry", "dist_excess": "metrics",
              "fs_l2_logits": "metrics", "fs_l2_probs": "metrics", "fs_sym_kl": "metrics",
              "fs_disagree": "metrics", "dist_rel": "metrics"}


def quantity_values(dm: xr.Dataset, dg: xr.Dataset, q: str) -> np.ndarray | None:
    """The (member, checkpoint) curve of quantity ``q`` from the metrics (``dm``) / geometry
    (``dg``) datasets; None if the file lacks it."""
    if q == "dist_excess":
        d = dm["dist"].values if "dist" in dm else None
        return None if d is None else d - d[:, :1]
    ds = dm if QUANTITIES[q] == "metrics" else dg
    return ds[q].values if q in ds else None



BARRIER_DEFINITION = ("linear (Entezari et al. 2022): max_l [L(l) - ((1 - l) L(0) + l L(1))], "
                      "the height of the loss above the chord between the endpoint losses")


