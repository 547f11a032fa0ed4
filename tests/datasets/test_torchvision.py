"""pathdep.data.sources.torchvision: the real torchvision loaders on tiny files in their raw layouts."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from pathdep.data import load_dataset, prepare_dataset
from dataset_files import idx_spec, write_cifar, write_idx_set


@pytest.mark.parametrize("which,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_mnist_matches_idx(tmp_path, mnist_arrays, which, folder):
    # torchvision.datasets.MNIST._check_exists only tests that the *uncompressed* raw
    # files exist under <root>/<ClassName>/raw (check_integrity without an md5).
    write_idx_set(tmp_path / "tv" / folder / "raw", mnist_arrays, False)
    idx_root = write_idx_set(tmp_path / "idx", mnist_arrays, True)
    prepare_dataset("a", {"source": "torchvision", "dataset": which, "root": str(tmp_path / "tv"),
                          "download": False}, tmp_path / "a.h5")
    prepare_dataset("b", idx_spec(idx_root), tmp_path / "b.h5")
    a, b = load_dataset(tmp_path / "a.h5"), load_dataset(tmp_path / "b.h5")
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k
    assert a.attrs["mean"] == b.attrs["mean"] and a.attrs["std"] == b.attrs["std"]
    assert a.attrs["source"] == "torchvision" and a.out_dim == 10
    if which == "fashion_mnist":
        assert a.attrs["classes"][0] == "T-shirt/top" and a.attrs["classes"][9] == "Ankle boot"
    else:
        assert a.attrs["classes"][0] == "0 - zero"


def test_torchvision_missing_offline(tmp_path):
    for which, hint in (("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
                        ("cifar10", "cifar-10-batches-py")):
        spec = {"source": "torchvision", "dataset": which, "root": str(tmp_path / "empty"), "download": False}
        with pytest.raises(ValueError) as e:
            prepare_dataset("img", spec, tmp_path / "x.h5")
        msg = str(e.value)
        assert msg.startswith(f"datasets.img.root: {which} not found under {tmp_path / 'empty'} and download is false; "
                              "set download: true or point root at")
        assert hint in msg and "\n" not in msg
    with pytest.raises(ValueError, match=r"datasets\.img\.dataset: expected one of mnist, fashion_mnist, cifar10"):
        prepare_dataset("img", {"source": "torchvision", "dataset": "svhn"}, tmp_path / "x.h5")
    with pytest.raises(ValueError, match=r"datasets\.img\.n_tset: unknown key"):
        prepare_dataset("img", {"source": "torchvision", "dataset": "mnist", "n_tset": 3}, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_torchvision_cifar10(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tvcifar

    xtr, ytr, xte, yte, names = write_cifar(tmp_path / "c")
    spec = {"source": "torchvision", "dataset": "cifar10", "root": str(tmp_path / "c"), "download": False}
    # torchvision's CIFAR10 verifies every batch file against the md5 of the real release;
    # tiny synthetic batches cannot match those md5s, so the integrity check is replaced by
    # an existence check (the same check MNIST uses). Without the patch it refuses them:
    with pytest.raises(ValueError, match="not found under"):
        prepare_dataset("cifar", spec, tmp_path / "c.h5")
    monkeypatch.setattr(tvcifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    prepare_dataset("cifar", spec, tmp_path / "c.h5")
    ds = load_dataset(tmp_path / "c.h5")
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (6, 3, 32, 32)
    assert ds.in_shape == (3, 32, 32) and ds.out_dim == 10 and ds.attrs["classes"] == names
    np.testing.assert_array_equal(ds.y_train.numpy(), ytr)
    np.testing.assert_array_equal(ds.y_test.numpy(), yte)
    # the CIFAR row layout is channel-major: reshape(N, 3, 32, 32) gives (N, C, H, W)
    raw = xtr.reshape(-1, 3, 32, 32).astype(np.float64) / 255
    m, s = raw.mean(axis=(0, 2, 3)), raw.std(axis=(0, 2, 3))
    np.testing.assert_allclose(ds.attrs["mean"], m, rtol=1e-12)
    np.testing.assert_allclose(ds.attrs["std"], s, rtol=1e-12)
    assert m[0] < 0.3 < m[1]  # red channel halved: per-channel, not global
    x = ds.x_train.double()
    np.testing.assert_allclose(x.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-6)
    np.testing.assert_allclose(x.std(dim=(0, 2, 3), unbiased=False).numpy(), 1, atol=1e-6)
    np.testing.assert_allclose(ds.x_test.numpy(), (xte.reshape(-1, 3, 32, 32) / 255 - m[:, None, None])
                               / s[:, None, None], atol=1e-5)


# ----------------------------------------------------------------------------- sklearn digits
