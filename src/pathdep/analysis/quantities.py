"""Which divergence curves the fits read, and which file each comes from (``metrics.nc`` or
``geometry.nc``); the copy-averaged curve of each baseline.

``dist_excess`` is derived: ``dist(t) - dist(0)``, the growth of the distance beyond the
perturbation itself (an initial-weight perturbation otherwise dominates ``dist``).

:func:`baseline_curves` averages a quantity over the perturbed copies of each baseline
(:func:`pathdep.analysis.replicates.per_baseline`): the fits see one curve per baseline, the
independent replicate (copies of one baseline are pseudo-replicates), and the mean over
copies is the expected divergence the forms model. :func:`final_values` does the same for the
last checkpoint of any member variable.

How it was checked: ``tests/analysis/test_quantities.py`` (hand-made blocks: the averages of
two baselines' copies, the baseline rows left out, old files without labels as one block).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pathdep.analysis.replicates import labels, per_baseline

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


def baseline_curves(dm: xr.Dataset, dg: xr.Dataset, q: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Quantity ``q`` averaged over the perturbed copies of each baseline.

    Args:
        dm, dg: a run's metrics and geometry datasets (``member x checkpoint``).
        q: a :data:`QUANTITIES` name.

    Returns:
        ``(curves (R, C), copies (R,))``: the mean over copies of baseline r (NaN-aware) and
        how many copies it averages; None if the files lack ``q``.
    """
    vals = quantity_values(dm, dg, q)
    if vals is None:
        return None
    base, copy = labels(dm)
    copies = np.array([int(np.sum((base == r) & (copy > 0))) for r in range(int(base.max()) + 1)])
    return per_baseline(vals, base, copy), copies


def final_values(ds: xr.Dataset, var: str) -> np.ndarray | None:
    """Member variable ``var`` (``member x checkpoint``) at the last checkpoint, averaged over
    the copies of each baseline: ``(R,)``, or None if ``ds`` lacks it."""
    if var not in ds:
        return None
    base, copy = labels(ds)
    return per_baseline(ds[var].values[:, -1], base, copy)
