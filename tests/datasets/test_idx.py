"""pathdep.data.sources.idx: IDX files (plain and gzip) read, sniffed and prepared."""

from __future__ import annotations

import gzip
import json
import os

import h5py
import numpy as np
import pytest
import torch

from pathdep import data as D
from pathdep.data import load_dataset, prepare_dataset, read_idx
from pathdep.io.atomic import partial_path
from dataset_files import N_TEST, N_TRAIN, idx_bytes, idx_spec, write_idx_set


# ----------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_roundtrip_dtypes(tmp_path, code):
    dt = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}[code]
    arr = (np.arange(2 * 3 * 5) - (0 if code == 0x08 else 7)).astype(dt).reshape(2, 3, 5)
    p = tmp_path / "a.idx"
    p.write_bytes(idx_bytes(arr, code))
    out = read_idx(p)
    assert out.dtype == dt and out.dtype.isnative and out.shape == (2, 3, 5)
    np.testing.assert_array_equal(out, arr)


def test_read_idx_plain_and_gz(tmp_path, mnist_arrays):
    x = mnist_arrays[0]
    (tmp_path / "p").write_bytes(idx_bytes(x))
    (tmp_path / "g.gz").write_bytes(gzip.compress(idx_bytes(x)))
    np.testing.assert_array_equal(read_idx(tmp_path / "p", expected_magic=0x803), x)
    np.testing.assert_array_equal(read_idx(tmp_path / "g.gz", expected_magic=0x803), x)


def test_read_idx_wrong_magic(tmp_path):
    p = tmp_path / "bad-images"
    p.write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    with pytest.raises(ValueError, match=r"bad-images: not an IDX file \(magic number 0x12345678, expected 0x00000803\)"):
        read_idx(p, expected_magic=0x803)
    # a valid IDX header but the wrong kind (labels where images are expected)
    q = tmp_path / "labels"
    q.write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match=r"labels: unexpected IDX magic number 0x00000801, expected 0x00000803"):
        read_idx(q, expected_magic=0x803)


def test_read_idx_truncated(tmp_path, mnist_arrays):
    b = idx_bytes(mnist_arrays[0])
    p = tmp_path / "short"
    p.write_bytes(b[:-100])
    with pytest.raises(ValueError, match=r"short: truncated IDX file \(header says 20x28x28 uint8 = 15680 data bytes, found 15580\)"):
        read_idx(p)
    q = tmp_path / "short.gz"
    q.write_bytes(gzip.compress(b)[:-30])  # cut gzip stream
    with pytest.raises(ValueError, match=r"short.gz: corrupt or truncated gzip"):
        read_idx(q)
    r = tmp_path / "hdr"
    r.write_bytes(b[:6])  # header itself cut
    with pytest.raises(ValueError, match=r"hdr: truncated IDX file"):
        read_idx(r)


@pytest.mark.parametrize("gz", [False, True, [True, False, False, True]])
def test_idx_prepare_and_load(tmp_path, mnist_arrays, gz):
    root = write_idx_set(tmp_path / "raw", mnist_arrays, gz)
    out = tmp_path / "out" / "tiny.h5"
    prepare_dataset("tiny", idx_spec(root), out, provenance={"who": "test"})
    assert out.is_file() and not partial_path(out).exists()
    ds = load_dataset(out)
    xtr, ytr, xte, yte = mnist_arrays
    assert ds.name == "tiny" and ds.task == "classification"
    assert ds.x_train.shape == (N_TRAIN, 1, 28, 28) and ds.x_test.shape == (N_TEST, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.in_shape == (1, 28, 28) and ds.out_dim == 1 + max(ytr.max(), yte.max())
    np.testing.assert_array_equal(ds.y_train.numpy(), ytr)
    np.testing.assert_array_equal(ds.y_test.numpy(), yte)
    # normalisation: train mean 0 / std 1, computed from the train split and applied to both
    x64 = xtr.astype(np.float64) / 255
    m, s = x64.mean(), x64.std()
    assert abs(ds.x_train.double().mean().item()) < 1e-6
    assert abs(ds.x_train.double().std(unbiased=False).item() - 1) < 1e-6
    np.testing.assert_allclose(ds.x_test.numpy()[:, 0], (xte / 255 - m) / s, rtol=1e-6, atol=1e-6)
    a = ds.attrs
    assert a["mean"] == pytest.approx([m], rel=1e-12) and a["std"] == pytest.approx([s], rel=1e-12)
    assert a["source"] == "idx" and a["n_train"] == N_TRAIN and a["n_test"] == N_TEST
    assert a["split"] == "official train/test" and a["format"] == D.FORMAT
    assert a["spec"] == idx_spec(root) and a["provenance"] == {"who": "test"}
    assert a["classes"] == [str(i) for i in range(ds.out_dim)]
    with h5py.File(out) as f:  # raw schema: groups, the pixels as uint8 codes, small arrays contiguous
        assert set(f) == {"train", "test"} and set(f["train"]) == {"x", "y"}
        assert f["train/x"].dtype == np.uint8 and np.array_equal(f["train/x"][()][:, 0], xtr)
        assert f["train/x"].chunks is None and f["train/x"].compression is None
        assert json.loads(f.attrs["spec"]) == idx_spec(root)


def test_idx_no_normalize_classes_and_subsets(tmp_path, mnist_arrays):
    root = write_idx_set(tmp_path / "raw", mnist_arrays, False)
    names = [f"c{i}" for i in range(10)]
    out = tmp_path / "a.h5"
    prepare_dataset("t", idx_spec(root, normalize=False, n_train=5, n_test=3, classes=names), out)
    ds = load_dataset(out)
    np.testing.assert_array_equal(ds.x_train.numpy()[:, 0], mnist_arrays[0][:5] / np.float32(255))
    np.testing.assert_array_equal(ds.y_test.numpy(), mnist_arrays[3][:3])
    assert ds.out_dim == 10 and ds.attrs["classes"] == names
    assert ds.attrs["mean"] == [0.0] and ds.attrs["std"] == [1.0]
    assert "first 5 of 20 train" in ds.attrs["split"]
    # seeded random subset: deterministic, kept in original order, depends on the seed
    picks = []
    for seed in (0, 0, 1):
        prepare_dataset("t", idx_spec(root, n_train=6, subset_seed=seed), out)
        picks.append(load_dataset(out).y_train.numpy())
        assert "subset_seed" in load_dataset(out).attrs["split"]
    np.testing.assert_array_equal(picks[0], picks[1])
    ss = np.random.SeedSequence(0).spawn(2)[0]
    idx = np.sort(np.random.default_rng(ss).choice(N_TRAIN, 6, replace=False))
    np.testing.assert_array_equal(picks[0], mnist_arrays[1][idx])
    with pytest.raises(ValueError, match=r"datasets\.t\.n_train: expected <= 20"):
        prepare_dataset("t", idx_spec(root, n_train=21), out)


def test_idx_errors(tmp_path, mnist_arrays):
    root = write_idx_set(tmp_path / "raw", mnist_arrays, False)
    out = tmp_path / "a.h5"
    with pytest.raises(ValueError, match=r"datasets\.fm\.colour: unknown key"):
        prepare_dataset("fm", idx_spec(root, colour=True), out)
    with pytest.raises(ValueError, match=r"datasets\.fm\.source: expected one of"):
        prepare_dataset("fm", {"source": "imagenet"}, out)
    with pytest.raises(ValueError, match=r"datasets\.fm\.normalize: expected true or false"):
        prepare_dataset("fm", idx_spec(root, normalize="yes"), out)
    with pytest.raises(ValueError, match=r"datasets\.fm\.root: .* has no t10k-images-idx3-ubyte"):
        os.remove(root / "t10k-images-idx3-ubyte")
        prepare_dataset("fm", idx_spec(root), out)
    (root / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x07" + bytes(64))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: unexpected IDX magic number 0x00000807, expected 0x00000803"):
        prepare_dataset("fm", idx_spec(root), out)
    (root / "t10k-images-idx3-ubyte").write_bytes(b"GIF89a" + bytes(64))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: not an IDX file \(magic number 0x47494638"):
        prepare_dataset("fm", idx_spec(root), out)
    assert not out.exists()


def test_idx_header_sniffing_errors(tmp_path, mnist_arrays):
    root = write_idx_set(tmp_path / "raw", mnist_arrays, False)
    spec = idx_spec(root)
    # a truncated image file: the header is fine, the size is not (found without loading it)
    p = root / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"^datasets\.fm\.root: .*train-images-idx3-ubyte: truncated IDX file"):
        D.dataset_info("fm", spec, check_files=True)
    assert D.dataset_info("fm", spec)["exact"] is False  # no file check asked: 10 classes assumed
    # labels as images: wrong magic number
    (root / "train-images-idx3-ubyte").write_bytes(idx_bytes(mnist_arrays[1]))
    with pytest.raises(ValueError, match=r"magic number 0x00000801, expected 0x00000803"):
        D.dataset_info("fm", spec, check_files=True)
    with pytest.raises(ValueError, match=r"^datasets\.fm\.root: .* is not a directory"):
        D.dataset_info("fm", idx_spec(tmp_path / "nowhere"), check_files=True)
    with pytest.raises(ValueError, match=r"^datasets\.tv\.root: mnist not found under .* download is false"):
        D.dataset_info("tv", {"source": "torchvision", "dataset": "mnist", "root": str(tmp_path)}, check_files=True)
    with pytest.raises(ValueError, match=r"^datasets\.tv\.download: true, but the config says offline"):
        D.dataset_info("tv", {"source": "torchvision", "dataset": "mnist", "download": True}, offline=True)
    with pytest.raises(ValueError, match=r"^datasets\.x\.source: expected one of idx, torchvision"):
        D.check_spec("x", {"source": "kaggle"})
