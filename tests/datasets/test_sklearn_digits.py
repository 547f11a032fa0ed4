"""pathdep.data.sources.sklearn_digits: seeded splits of the bundled digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pathdep.data import load_dataset, prepare_dataset


def test_sklearn_digits(tmp_path):
    spec = {"source": "sklearn_digits", "test_fraction": 0.25, "seed": 0}
    runs = {}
    for tag, seed in (("a", 0), ("b", 0), ("c", 1)):
        prepare_dataset("digits", dict(spec, seed=seed), tmp_path / f"{tag}.h5")
        runs[tag] = load_dataset(tmp_path / f"{tag}.h5")
    a = runs["a"]
    assert a.x_train.shape[1:] == (1, 8, 8) and a.in_shape == (1, 8, 8) and a.out_dim == 10
    assert len(a.x_train) + len(a.x_test) == 1797 and len(a.x_test) == 450  # ceil(0.25 * 1797)
    assert "seed 0" in a.attrs["split"] and "stratified 75/25" in a.attrs["split"]
    # stratified: class proportions in the test split follow the whole data set
    counts = np.bincount(a.y_test.numpy(), minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47
    assert torch.equal(a.x_train, runs["b"].x_train) and torch.equal(a.y_test, runs["b"].y_test)
    assert not torch.equal(a.y_train, runs["c"].y_train)
    assert abs(a.x_train.double().mean().item()) < 1e-6
    # every stored sample is a real digit with the right label
    from sklearn.datasets import load_digits
    d = load_digits()
    raw = (a.x_test[:, 0].double() * a.attrs["std"][0] + a.attrs["mean"][0]) * 16
    flat = {tuple(img.ravel()): int(t) for img, t in zip(d.images, d.target)}
    for img, t in zip(np.rint(raw.numpy()).astype(int), a.y_test.numpy()):
        assert flat[tuple(img.ravel().astype(float))] == t
    with pytest.raises(ValueError, match=r"datasets\.digits\.test_fraction: expected a number in \(0\.0, 1\.0\)"):
        prepare_dataset("digits", dict(spec, test_fraction=1.5), tmp_path / "x.h5")


# ----------------------------------------------------------------------------- teacher-student
