"""The ``sklearn_digits`` source: ``sklearn.datasets.load_digits`` (bundled, no network).

What it reads: 1797 8x8 grey images of 10 digits (pixel codes 0..16, ``pixel_scale`` 16),
split by ``test_fraction`` with ``seed`` through sklearn's ``train_test_split`` (stratified
by class unless ``stratify: false``); both index sets are sorted, so the samples keep their
original order.

How it was checked: ``tests/datasets/test_sklearn_digits.py`` (seeded determinism, split sizes
``n_test = ceil(test_fraction * 1797)``, the ``info`` that validation sees equals the file).
"""

from __future__ import annotations

import math

import numpy as np

from pathdep.data.registry import Source, _bool, _float, _int, register

__all__ = ["SklearnDigits"]

_DIGITS_N = 1797  # sklearn.datasets.load_digits: 1797 8x8 images of 10 digits


@register
class SklearnDigits(Source):
    """``sklearn.datasets.load_digits`` (bundled), split by ``test_fraction`` with ``seed``."""

    name = "sklearn_digits"
    keys = frozenset({"test_fraction", "seed", "stratify"})
    defaults = {"test_fraction": 0.25, "seed": 0, "stratify": True}

    def check(self, name, spec, *, offline=False, datasets=None):
        _float(name, spec, "test_fraction", self.defaults["test_fraction"], 0.0, 1.0, open_lo=True)
        _int(name, spec, "seed", self.defaults["seed"], minimum=0)
        _bool(name, spec, "stratify", self.defaults["stratify"])

    def info(self, name, spec, *, check_files=False, datasets=None):
        # sklearn's train_test_split: n_test = ceil(test_fraction * n), n_train = the rest
        frac = float(self.param(spec, "test_fraction"))
        return {"in_shape": (1, 8, 8), "out_dim": 10, "n_train": _DIGITS_N - math.ceil(frac * _DIGITS_N),
                "exact": True}

    def load(self, name, spec, *, datasets=None):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        frac = float(self.param(spec, "test_fraction"))
        seed = int(self.param(spec, "seed"))
        stratify = bool(self.param(spec, "stratify"))
        d = load_digits()
        x, y = d.images.astype(np.float64)[:, None], d.target.astype(np.int64)
        idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=frac, random_state=seed,
                                          shuffle=True, stratify=y if stratify else None)
        idx_tr, idx_te = np.sort(idx_tr), np.sort(idx_te)
        pct = round(100 * frac)
        kind = "stratified" if stratify else "random"
        return dict(x_train=x[idx_tr], y_train=y[idx_tr], x_test=x[idx_te], y_test=y[idx_te],
                    classes=[str(int(c)) for c in d.target_names], pixel_scale=16.0,
                    split=f"seeded {kind} {100 - pct}/{pct} split of {len(y)} samples "
                          f"(sklearn train_test_split, test_fraction {frac}, seed {seed})")
