"""pathdep.data.sources.torchvision, dataset cifar100: tiny files in the real ``cifar-100-python``
pickle layout (written here, never downloaded) load through torchvision.datasets.CIFAR100
(download=False) with the 100 fine labels, per-channel normalisation from the training split,
and feed a ResNet."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from pathdep.core.models import build_model
from pathdep.data import load_dataset, prepare_dataset
from pathdep.data.registry import dataset_info

FINE = [f"class_{i:02d}" for i in range(100)]


def write_cifar100(root, n_train=30, n_test=8, seed=0):
    """Tiny CIFAR-100 as the real release: ``cifar-100-python/{train,test,meta}`` pickles holding
    ``data`` (N, 3072) uint8 rows R(1024) G(1024) B(1024), ``fine_labels``, ``coarse_labels``."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        x[:, 2048:] //= 4          # a darker blue channel: per-channel statistics differ
        y = rng.integers(0, 100, n).tolist()
        with open(d / split, "wb") as f:
            pickle.dump({"filenames": [f"{split}{j}.png" for j in range(n)], "batch_label": f"{split} batch",
                         "fine_labels": y, "coarse_labels": [v // 5 for v in y], "data": x}, f, protocol=2)
        out += [x, np.array(y)]
    with open(d / "meta", "wb") as f:
        pickle.dump({"fine_label_names": FINE, "coarse_label_names": [f"super_{i}" for i in range(20)]}, f)
    return out


def test_cifar100_loads_through_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tvcifar

    xtr, ytr, xte, yte = write_cifar100(tmp_path / "c")
    spec = {"source": "torchvision", "dataset": "cifar100", "root": str(tmp_path / "c"), "download": False}
    info = dataset_info("c100", spec, check_files=True)
    assert info["in_shape"] == (3, 32, 32) and info["out_dim"] == 100 and info["n_train"] == 50000
    # torchvision checks the md5 of the real release; tiny files cannot match it (as for CIFAR-10)
    with pytest.raises(ValueError, match="not found under"):
        prepare_dataset("c100", spec, tmp_path / "c.h5")
    monkeypatch.setattr(tvcifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    prepare_dataset("c100", spec, tmp_path / "c.h5")
    ds = load_dataset(tmp_path / "c.h5")
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.x_test.shape == (8, 3, 32, 32) and ds.out_dim == 100
    assert ds.attrs["classes"] == FINE
    np.testing.assert_array_equal(ds.y_train.numpy(), ytr)
    np.testing.assert_array_equal(ds.y_test.numpy(), yte)
    raw = xtr.reshape(-1, 3, 32, 32).astype(np.float64) / 255
    m, s = raw.mean(axis=(0, 2, 3)), raw.std(axis=(0, 2, 3))
    np.testing.assert_allclose(ds.attrs["mean"], m, rtol=1e-12)
    np.testing.assert_allclose(ds.attrs["std"], s, rtol=1e-12)
    assert m[2] < 0.2 < m[0]           # per channel, not one global statistic
    x = ds.x_train.double()
    np.testing.assert_allclose(x.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-6)
    np.testing.assert_allclose(x.std(dim=(0, 2, 3), unbiased=False).numpy(), 1, atol=1e-6)
    # the test split uses the training statistics
    np.testing.assert_allclose(ds.x_test.numpy(), (xte.reshape(-1, 3, 32, 32) / 255 - m[:, None, None])
                               / s[:, None, None], atol=1e-5)
    net = build_model({"kind": "resnet", "depth": 8, "norm": "batch"}, ds.in_shape, ds.out_dim)
    assert net(ds.x_train[:4].float()).shape == (4, 100)


def test_cifar100_missing_files_is_one_line(tmp_path):
    spec = {"source": "torchvision", "dataset": "cifar100", "root": str(tmp_path / "none"), "download": False}
    with pytest.raises(ValueError) as e:
        dataset_info("c100", spec, check_files=True)
    assert "cifar-100-python" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"^datasets\.c100\.root: cifar100 not found under"):
        prepare_dataset("c100", spec, tmp_path / "x.h5")
