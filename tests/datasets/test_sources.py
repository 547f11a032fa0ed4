"""Tests for pathdep.data: real file formats written by the tests themselves, no network."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from pathdep import data as D
from pathdep.data import load_dataset, prepare_dataset, read_idx
from pathdep.io.atomic import partial_path

N_TRAIN, N_TEST = 20, 8


# ----------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """IDX encoding: magic 0x0000<code><ndim>, big-endian uint32 sizes, big-endian data."""
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return head + np.ascontiguousarray(arr, dtype=dt).tobytes()


def tiny_mnist(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8), rng.integers(0, 10, N_TRAIN).astype(np.uint8),
            rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8), rng.integers(0, 10, N_TEST).astype(np.uint8))


def write_idx_set(root: Path, arrays, gz: bool | list[bool]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    gzs = gz if isinstance(gz, list) else [gz] * 4
    for name, arr, z in zip(names, arrays, gzs):
        b = idx_bytes(arr)
        if z:
            (root / (name + ".gz")).write_bytes(gzip.compress(b))
        else:
            (root / name).write_bytes(b)
    return root


@pytest.fixture
def mnist_arrays():
    return tiny_mnist()


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


# ----------------------------------------------------------------------------- idx source


def idx_spec(root, **kw):
    return {"source": "idx", "root": str(root), "n_train": None, "n_test": None, "normalize": True, **kw}


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
    with h5py.File(out) as f:  # raw schema: groups, dtypes, contiguous storage
        assert set(f) == {"train", "test"} and set(f["train"]) == {"x", "y"}
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


def test_atomic_write(tmp_path, mnist_arrays, monkeypatch):
    xtr, ytr, xte, yte = mnist_arrays
    # bad labels file: one label short for the test images
    root = write_idx_set(tmp_path / "raw", (xtr, ytr, xte, yte[:-1]), False)
    out = tmp_path / "d.h5"
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*7 labels for 8 images"):
        prepare_dataset("d", idx_spec(root), out)
    assert not out.exists() and not partial_path(out).exists()
    # labels out of range for the declared classes
    root2 = write_idx_set(tmp_path / "raw2", mnist_arrays, False)
    with pytest.raises(ValueError, match=r"labels span .* expected 0\.\.1"):
        prepare_dataset("d", idx_spec(root2, classes=["a", "b"]), out)
    assert not out.exists() and not partial_path(out).exists()
    # a failure midway through writing the HDF5 file: the .tmp is removed, out never appears
    real = h5py.Group.create_dataset

    def failing(self, name, *a, **k):
        if name.startswith("test"):
            assert partial_path(out).exists()  # we really are midway
            raise OSError("disk full (simulated)")
        return real(self, name, *a, **k)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="simulated"):
        prepare_dataset("d", idx_spec(root2), out)
    assert not out.exists() and not partial_path(out).exists()
    monkeypatch.undo()
    # an existing good file survives a failed re-run untouched
    prepare_dataset("d", idx_spec(root2), out)
    before = out.read_bytes()
    with pytest.raises(ValueError):
        prepare_dataset("d", idx_spec(root), out)
    assert out.read_bytes() == before


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.h5: dataset file not found"):
        load_dataset(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ValueError, match=r"text\.h5: not an HDF5 file"):
        load_dataset(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["train/x"] = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"other\.h5: not a pathdep dataset file \(missing train/y, test/x"):
        load_dataset(tmp_path / "other.h5")


# ----------------------------------------------------------------------------- torchvision


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


def write_cifar(root: Path, per_batch: int = 4, n_test: int = 6, seed: int = 0):
    """Tiny CIFAR-10 in the real python-pickle layout: dict with b-less keys after latin1."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)  # rows: R(1024) G(1024) B(1024)
        x[:, :1024] //= 2  # make channels differ so per-channel stats matter
        y = rng.integers(0, 10, per_batch).tolist()
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({"batch_label": f"training batch {i} of 5", "labels": y, "data": x,
                         "filenames": [f"img{i}_{j}.png" for j in range(per_batch)]}, f)
        xs.append(x), ys.extend(y)
    xt = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    yt = rng.integers(0, 10, n_test).tolist()
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": yt, "data": xt,
                     "filenames": [f"t{j}.png" for j in range(n_test)]}, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": per_batch, "label_names": names, "num_vis": 3072}, f)
    return np.concatenate(xs), np.array(ys), xt, np.array(yt), names


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


def test_teacher_student(tmp_path):
    spec = {"source": "teacher_student", "d_in": 6, "d_out": 2, "teacher_hidden": 16,
            "n_train": 50, "n_test": 20, "noise": 0.0, "seed": 3}
    runs = {}
    for tag, sp in (("a", spec), ("b", spec), ("c", dict(spec, seed=4)), ("n", dict(spec, noise=0.1))):
        prepare_dataset("ts", sp, tmp_path / f"{tag}.h5")
        runs[tag] = load_dataset(tmp_path / f"{tag}.h5")
    a = runs["a"]
    assert a.task == "regression" and a.in_shape == (6,) and a.out_dim == 2
    assert a.x_train.shape == (50, 6) and a.y_train.shape == (50, 2) and a.y_test.shape == (20, 2)
    assert a.x_train.dtype == torch.float32 and a.y_train.dtype == torch.float32
    assert a.attrs["classes"] == [] and a.attrs["mean"] == [0.0] * 6 and a.attrs["std"] == [1.0] * 6
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, k), getattr(runs["b"], k))
        assert not torch.equal(getattr(a, k), getattr(runs["c"], k))
    # y = teacher(x) at zero noise, recomputed independently in float64 from the stored teacher
    with h5py.File(tmp_path / "a.h5") as f:
        t = {k: torch.from_numpy(f["teacher"][k][()]) for k in ("W1", "b1", "W2", "b2")}
    assert t["W1"].shape == (16, 6) and t["W2"].shape == (2, 16)
    for x, y in ((a.x_train, a.y_train), (a.x_test, a.y_test)):
        ref = torch.nn.functional.linear(torch.tanh(torch.nn.functional.linear(x.double(), t["W1"], t["b1"])),
                                         t["W2"], t["b2"])
        torch.testing.assert_close(ref.float(), y, rtol=0, atol=1e-6)
    n = runs["n"]
    assert torch.equal(n.x_train, a.x_train)  # same inputs, only the noise differs
    resid = (n.y_train - a.y_train).double()
    assert 0.05 < resid.std().item() < 0.15
    with pytest.raises(ValueError, match=r"datasets\.ts\.root: unknown key"):
        prepare_dataset("ts", dict(spec, root="/x"), tmp_path / "x.h5")
    with pytest.raises(ValueError, match=r"datasets\.ts\.d_in: expected an integer >= 1"):
        prepare_dataset("ts", dict(spec, d_in=0), tmp_path / "x.h5")


# ----------------------------------------------------------------------------- snakemake adapter


def test_workflow_adapter(tmp_path):
    """workflow_scripts/prepare_dataset.py with a stand-in for the snakemake object."""
    import runpy
    from types import SimpleNamespace

    script = Path(__file__).resolve().parents[2] / "workflow_scripts" / "prepare_dataset.py"
    spec = {"source": "teacher_student", "d_in": 3, "n_train": 10, "n_test": 4, "seed": 0}
    out, log = tmp_path / "data" / "ts.h5", tmp_path / "logs" / "ts.log"
    log.parent.mkdir()
    sm = SimpleNamespace(params=SimpleNamespace(spec=spec), wildcards=SimpleNamespace(dataset="ts"),
                         output=SimpleNamespace(h5=str(out)), log=[str(log)])
    runpy.run_path(str(script), init_globals={"snakemake": sm})
    ds = load_dataset(out)
    assert ds.name == "ts" and ds.attrs["spec"] == spec and isinstance(ds.attrs["provenance"], dict)
    assert ds.attrs["provenance"]  # collect() filled something in
    assert "prepared dataset ts" in log.read_text()
    # a failing run leaves its traceback in the log and raises
    sm.params.spec = dict(spec, bogus=1)
    with pytest.raises(ValueError, match=r"datasets\.ts\.bogus"):
        runpy.run_path(str(script), init_globals={"snakemake": sm})
    assert "datasets.ts.bogus" in log.read_text()


# ----------------------------------------------------------------------------- the registry


def _prepared(path: Path) -> dict:
    ds = load_dataset(path)
    return {"in_shape": tuple(ds.in_shape), "out_dim": ds.out_dim, "n_train": len(ds.x_train)}


def test_info_of_every_source_matches_the_prepared_file(tmp_path, mnist_arrays):
    """What config validation learns from a source without loading it (``info``) is what
    the prepared file holds; teacher-student defaults come from the one table."""
    write_idx_set(tmp_path / "tv" / "MNIST" / "raw", mnist_arrays, False)
    specs = {
        "idx": idx_spec(write_idx_set(tmp_path / "idx", mnist_arrays, [True, False, False, True])),
        "idx_sub": idx_spec(tmp_path / "idx", n_train=7),
        "tv": {"source": "torchvision", "dataset": "mnist", "root": str(tmp_path / "tv")},
        "digits": {"source": "sklearn_digits", "test_fraction": 0.1},
        "digits_sub": {"source": "sklearn_digits", "n_train": 100, "subset_seed": 3},
        "teacher": {"source": "teacher_student", "d_in": 4, "n_train": 50, "n_test": 10},
        "teacher_defaults": {"source": "teacher_student"},
    }
    assert set(D.SOURCES) >= {s["source"] for s in specs.values()}
    for name, spec in specs.items():
        prepare_dataset(name, spec, tmp_path / f"{name}.h5")
        info = D.dataset_info(name, spec, check_files=True)
        got = _prepared(tmp_path / f"{name}.h5")
        if spec["source"] == "torchvision":  # info gives the real MNIST sizes; the fake files are tiny
            assert info["in_shape"] == got["in_shape"] and info["out_dim"] == got["out_dim"], name
            assert info["n_train"] == 60000
            continue
        assert {k: info[k] for k in got} == got, name
        assert info["exact"] is True
        assert D.dataset_info(name, spec, data_dir=tmp_path) == {**got, "exact": True}  # read from the file
    ts = D.SOURCES["teacher_student"]
    assert _prepared(tmp_path / "teacher_defaults.h5") == {
        "in_shape": (ts.defaults["d_in"],), "out_dim": ts.defaults["d_out"], "n_train": ts.defaults["n_train"]}


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


def test_a_registered_source_needs_no_other_change(tmp_path, monkeypatch):
    """Adding a source is one registration: config validation and preparation both find it."""
    from pathdep.config import ConfigError, validate
    from pathdep.data.registry import REGISTRY, Source, register

    class Ramp(Source):
        name = "ramp_test"
        keys = frozenset({"n", "width"})
        defaults = {"n": 12, "width": 3}
        subset = False

        def check(self, name, spec, *, offline=False, datasets=None):
            from pathdep.data.registry import _int
            _int(name, spec, "width", 3)

        def info(self, name, spec, *, check_files=False, datasets=None):
            return {"in_shape": (self.param(spec, "width"),), "out_dim": 2, "n_train": self.param(spec, "n"),
                    "exact": True}

        def load(self, name, spec, *, datasets=None):
            n, w = self.param(spec, "n"), self.param(spec, "width")
            x = np.arange(n * w, dtype=np.float64).reshape(n, w)
            y = np.arange(n) % 2
            return dict(x_train=x, y_train=y, x_test=x[:4], y_test=y[:4], classes=["even", "odd"],
                        pixel_scale=1.0, split="ramp")

    monkeypatch.setitem(REGISTRY, "ramp_test", None)  # removed again after the test
    register(Ramp)
    assert isinstance(D.SOURCES["ramp_test"], Ramp)
    prepare_dataset("r", {"source": "ramp_test", "width": 5}, tmp_path / "r.h5")
    assert _prepared(tmp_path / "r.h5") == {"in_shape": (5,), "out_dim": 2, "n_train": 12}
    cfg = {"datasets": {"r": {"source": "ramp_test", "width": 5}},
           "defaults": {"dataset": "r", "model": {"hidden": [4]}, "perturbation": {"members": 1},
                        "training": {"batch_size": 4}},
           "experiments": {"a": {}}}
    (run,) = validate(cfg)["a"]
    assert run["dataset_spec"] == {"source": "ramp_test", "width": 5}
    cfg["datasets"]["r"]["widht"] = 2
    with pytest.raises(ConfigError, match=r"^config: datasets\.r\.widht: unknown key for source ramp_test "
                                          r"\(did you mean 'width'\?\)"):
        validate(cfg)
