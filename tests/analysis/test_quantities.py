"""pathdep.analysis.quantities: copy-averaged curves per baseline (hand-made blocks)."""

import numpy as np
import xarray as xr

from pathdep.analysis.quantities import baseline_curves, final_values


def _ds(with_labels=True):
    # 2 baselines x (baseline + 2 copies): dist of copy c of baseline r = (r + 1) * c * t
    t = np.arange(4.0)
    base, copy = np.repeat([0, 1], 3), np.tile([0, 1, 2], 2)
    dist = ((base + 1) * copy)[:, None] * t[None]
    coords = {"role": ("member", np.where(copy == 0, "baseline", "member"))}
    if with_labels:
        coords.update(baseline=("member", base), copy=("member", copy))
    return xr.Dataset({"dist": (("member", "checkpoint"), dist)}, coords=coords)


def test_baseline_curves_average_copies_only():
    dm = _ds()
    curves, copies = baseline_curves(dm, xr.Dataset(), "dist")
    np.testing.assert_allclose(curves, [1.5 * np.arange(4.0), 3.0 * np.arange(4.0)])
    assert list(copies) == [2, 2]
    np.testing.assert_allclose(final_values(dm, "dist"), [4.5, 9.0])
    assert baseline_curves(dm, xr.Dataset(), "dist_aligned") is None and final_values(dm, "nope") is None


def test_old_files_are_one_block():
    # files written before replicate baselines: member 0 is the baseline, the rest its copies
    t = np.arange(4.0)
    dm = xr.Dataset({"dist": (("member", "checkpoint"), np.arange(4.0)[:, None] * t[None])},
                    coords={"role": ("member", ["baseline", "member", "member", "member"])})
    curves, copies = baseline_curves(dm, xr.Dataset(), "dist")
    assert curves.shape == (1, 4) and list(copies) == [3]
    np.testing.assert_allclose(curves[0], 2.0 * t)
