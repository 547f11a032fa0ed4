"""The ``synthetic`` source: a side whose difficulty is one number (Gaussian classes ``s`` sigma apart).

What it draws: class ``c`` has mean ``mu_c = (s / sqrt 2) v_c`` with ``v_c`` orthonormal
random directions in pixel space (so ``|mu_c - mu_c'| = s`` for every pair), samples
``z = mu_c + e``, ``e ~ N(0, I)``, stored as raw pixels ``0.5 + 0.15 z`` (about [0, 1]; a
blank side's 0 stays distinct). Used alone (``source: synthetic``) or inline as a domino
side (``top: {source: synthetic, simplicity: ...}``, :mod:`pathdep.data.dominoes`).

How it was checked: ``tests/datasets/test_dominoes.py`` (class means ``s`` apart, seeded
determinism, a synthetic side inside dominoes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pathdep.data.registry import Source, register

__all__ = ["SYNTHETIC_KEYS", "SYNTHETIC_DEFAULTS", "synthetic_side", "synthetic_params", "with_defaults", "Synthetic"]

SYNTHETIC_KEYS = frozenset({"simplicity", "classes", "size", "channels", "n_train", "n_test", "seed", "normalize"})
SYNTHETIC_DEFAULTS = {"simplicity": 3.0, "classes": 10, "size": 28, "channels": 1, "n_train": 6000,
                      "n_test": 1000, "seed": 0}


def with_defaults(spec: dict) -> dict[str, Any]:
    """``SYNTHETIC_DEFAULTS`` with the block's non-null values (unchecked)."""
    return dict(SYNTHETIC_DEFAULTS, **{k: v for k, v in spec.items() if v is not None and k != "source"})


def synthetic_params(spec: dict, name: str = "synthetic") -> dict[str, Any]:
    """The block's values with defaults, checked: ``simplicity`` >= 0, integer sizes and seed.

    Raises:
        ValueError: ``datasets.<name>.<key>: expected ..., got ...`` (one line).
    """
    p = {k: spec.get(k, v) if spec.get(k) is not None else v for k, v in SYNTHETIC_DEFAULTS.items()}
    s = p["simplicity"]
    if isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0:
        raise ValueError(f"datasets.{name}.simplicity: expected a number >= 0, got {s!r}")
    for key in ("classes", "size", "channels", "n_train", "n_test", "seed"):
        v = p[key]
        lo = {"classes": 2, "seed": 0}.get(key, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"datasets.{name}.{key}: expected an integer >= {lo}, got {v!r}")
    return p


def synthetic_side(spec: dict, name: str = "synthetic") -> dict:
    """A side source whose difficulty is one number: Gaussian classes ``s`` sigma apart.

    Class ``c`` has mean ``mu_c = (s / sqrt 2) v_c`` with ``v_c`` orthonormal random
    directions in pixel space (so ``|mu_c - mu_c'| = s`` for every pair), and samples
    ``z = mu_c + e``, ``e ~ N(0, I)``; the stored raw pixels are ``0.5 + 0.15 z`` (about
    [0, 1], blank 0 stays distinct). The Bayes-optimal pairwise error is ``Phi(-s/2)``:
    ``s = 0`` carries no signal, ``s >= 6`` is trivially separable by a linear read-out.

    Args:
        spec: ``simplicity`` (s >= 0), ``classes`` (k), ``size`` (H = W), ``channels``,
            ``n_train``, ``n_test``, ``seed``.
        name: Dataset name for errors.

    Returns:
        The raw-arrays dict of a source: ``x_train`` (n, C, H, W) float64, ``y_train``,
        ``x_test``, ``y_test``, ``classes``, ``pixel_scale`` 1.0, ``split``, and ``means``.
    """
    p = synthetic_params(spec, name)
    s = p["simplicity"]
    ints = {key: p[key] for key in ("classes", "size", "channels", "n_train", "n_test", "seed")}
    k, h, c = ints["classes"], ints["size"], ints["channels"]
    d = c * h * h
    if k > d:
        raise ValueError(f"datasets.{name}.classes: at most {d} (pixels) classes, got {k}")
    s_dir, s_tr, s_te = np.random.SeedSequence(ints["seed"]).spawn(3)
    q, _ = np.linalg.qr(np.random.default_rng(s_dir).standard_normal((d, k)))
    means = (float(s) / np.sqrt(2.0)) * q.T  # (k, d)
    out = {}
    for split, n, ss in (("train", ints["n_train"], s_tr), ("test", ints["n_test"], s_te)):
        rng = np.random.default_rng(ss)
        y = rng.permutation(np.arange(n) % k).astype(np.int64)
        z = means[y] + rng.standard_normal((n, d))
        out[f"x_{split}"] = (0.5 + 0.15 * z).reshape(n, c, h, h)
        out[f"y_{split}"] = y
    return dict(out, classes=[str(i) for i in range(k)], pixel_scale=1.0, means=means,
                split=f"independent draws, simplicity {float(s):g} (class means {float(s):g} sigma apart), "
                      f"seed {ints['seed']}")


@register
class Synthetic(Source):
    """``source: synthetic``: Gaussian classes ``simplicity`` sigma apart (:func:`synthetic_side`)."""

    name = "synthetic"
    keys = SYNTHETIC_KEYS - {"normalize"}
    defaults = dict(SYNTHETIC_DEFAULTS)
    subset = False

    def check(self, name, spec, *, offline=False, datasets=None):
        synthetic_params(spec, name)

    def info(self, name, spec, *, check_files=False, datasets=None):
        q = with_defaults(spec)
        return {"in_shape": (q["channels"], q["size"], q["size"]), "out_dim": q["classes"], "n_train": q["n_train"],
                "exact": True}

    def load(self, name, spec, *, datasets=None):
        raw = synthetic_side(spec, name)
        raw.pop("means")
        return raw
