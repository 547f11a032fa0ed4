"""pathdep.data.storage: every source's stored dtype, inputs decoded bit for bit equal to the
float32 normalisation computed directly from the raw arrays, the filters on the written
arrays, and the one-line refusal of a ``pathdep.dataset/1`` file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from pathdep.data import REGISTRY, load_dataset, prepare_dataset, prepared_info
from pathdep.data.dominoes import build_dominoes, load_eval_sets, prepare_dominoes
from pathdep.data.prepare import _channel_stats, _subset
from pathdep.data.storage import (FORMAT, MIN_COMPRESSED_BYTES, decode_inputs, grid_codes, raw_codes,
                                  read_inputs)
from dataset_files import idx_spec, write_cifar, write_idx_set


def _bits(a: np.ndarray) -> np.ndarray:
    assert a.dtype == np.float32
    return a.view(np.uint32)


def _direct(name: str, spec: dict) -> dict[str, np.ndarray]:
    """The float32 inputs computed in one expression from the raw arrays (no stored codes):
    ``float32((float64(raw) - mean_raw) / std_raw)`` with the train split's statistics."""
    src = REGISTRY[spec["source"]]
    raw = src.load(name, spec)
    if src.subset:
        _subset(name, spec, raw)
    x_tr = raw["x_train"]
    c = x_tr.shape[1]
    if spec.get("normalize", src.normalize):
        m, s = _channel_stats(x_tr)
    else:
        m, s = np.zeros(c), np.full(c, float(raw["pixel_scale"]))
    sh = (1, c) + (1,) * (x_tr.ndim - 2)
    return {f"{sp}/x": ((np.asarray(raw[f"x_{sp}"], dtype=np.float64) - m.reshape(sh)) / s.reshape(sh)
                        ).astype(np.float32) for sp in ("train", "test")}


def _sources(tmp_path, mnist_arrays) -> dict[str, tuple[dict, str]]:
    """One block per source: (spec, expected stored dtype of x)."""
    idx_root = write_idx_set(tmp_path / "idx", mnist_arrays, True)
    write_idx_set(tmp_path / "tv" / "FashionMNIST" / "raw", mnist_arrays, False)
    write_cifar(tmp_path / "cifar")
    return {
        "idx": (idx_spec(idx_root), "uint8"),
        "idx_subset_raw": (idx_spec(idx_root, normalize=False, n_train=7, n_test=3, subset_seed=2), "uint8"),
        "tv_fashion": ({"source": "torchvision", "dataset": "fashion_mnist", "root": str(tmp_path / "tv")}, "uint8"),
        "tv_cifar": ({"source": "torchvision", "dataset": "cifar10", "root": str(tmp_path / "cifar")}, "uint8"),
        "digits": ({"source": "sklearn_digits"}, "uint8"),
        "teacher": ({"source": "teacher_student", "d_in": 5, "n_train": 40, "n_test": 10, "seed": 1}, "float32"),
        "teacher_norm": ({"source": "teacher_student", "d_in": 5, "n_train": 40, "n_test": 10, "normalize": True},
                         "float32"),
        "synthetic": ({"source": "synthetic", "classes": 3, "size": 6, "n_train": 30, "n_test": 9}, "float32"),
    }


def test_every_source_decodes_bit_for_bit(tmp_path, mnist_arrays, monkeypatch):
    import torchvision.datasets.cifar as tvcifar

    # tiny CIFAR batches cannot match the real release's md5s: existence check only (as test_torchvision)
    monkeypatch.setattr(tvcifar, "check_integrity", lambda fpath, md5=None: Path(fpath).is_file())
    for name, (spec, stored) in _sources(tmp_path, mnist_arrays).items():
        path = tmp_path / f"{name}.h5"
        prepare_dataset(name, spec, path)
        want = _direct(name, spec)
        ds = load_dataset(path)
        with h5py.File(path) as f:
            assert f.attrs["format"] == FORMAT
            assert f["train/x"].dtype == np.dtype(stored) and f["test/x"].dtype == np.dtype(stored), name
            for key, got in (("train/x", ds.x_train.numpy()), ("test/x", ds.x_test.numpy())):
                assert np.array_equal(_bits(got), _bits(want[key])), f"{name} {key}"
                assert np.array_equal(_bits(read_inputs(f, key)), _bits(want[key])), f"{name} {key}"
            if stored == "uint8":  # the codes are the raw pixels; x_offset / x_scale the raw-unit stats
                a = f.attrs
                np.testing.assert_allclose(a["x_offset"], a["mean"] * a["pixel_scale"], rtol=1e-12)
                np.testing.assert_allclose(a["x_scale"], a["std"] * a["pixel_scale"], rtol=1e-12)
                assert a["x_code_scale"] == 1.0


def test_idx_codes_are_the_file_pixels(tmp_path, mnist_arrays):
    root = write_idx_set(tmp_path / "idx", mnist_arrays, False)
    prepare_dataset("m", idx_spec(root), tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as f:
        assert np.array_equal(f["train/x"][()][:, 0], mnist_arrays[0])
        assert np.array_equal(f["test/x"][()][:, 0], mnist_arrays[2])


def _dominoes_direct(b: dict) -> dict[str, np.ndarray]:
    x_tr = b["splits"]["train"]["x"].astype(np.float64)
    m, s = x_tr.mean(axis=(0, 2, 3)), x_tr.std(axis=(0, 2, 3))
    s = np.where(s > 0, s, 1.0)
    sh = (1, -1, 1, 1)
    return {k: ((v["x"] - m.reshape(sh)) / s.reshape(sh)).astype(np.float32) for k, v in b["splits"].items()}


@pytest.mark.parametrize("bottom,stored,code_scale", [("mnist", "uint8", 255.0), ("syn", "float32", 1.0)])
def test_dominoes_decode_bit_for_bit(tmp_path, bottom, stored, code_scale):
    """8-bit sides at their own size: uint8 codes of the composed image (blank 0); a float side: float32."""
    rng = np.random.default_rng(3)  # every class in both splits
    arrays = (rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), np.arange(40, dtype=np.uint8) % 10,
              rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20, dtype=np.uint8) % 10)
    root = write_idx_set(tmp_path / "idx", arrays, False)
    datasets = {"mnist": idx_spec(root), "syn": {"source": "synthetic", "classes": 10, "size": 28,
                                                 "n_train": 60, "n_test": 30}}
    spec = {"source": "dominoes", "top": "mnist", "bottom": bottom, "prevalence": {"top": 0.7, "bottom": 0.8},
            "n_train": 30, "n_test": 10, "n_eval": 6, "replace": True}
    datasets["dom"] = spec
    path = tmp_path / "dom.h5"
    prepare_dominoes("dom", spec, path, datasets=datasets)
    want = _dominoes_direct(build_dominoes("dom", spec, datasets))
    with h5py.File(path) as f:
        assert f.attrs["x_code_scale"] == code_scale
        for key in want:
            assert f[f"{key}/x"].dtype == np.dtype(stored), key
            assert np.array_equal(_bits(read_inputs(f, f"{key}/x")), _bits(want[key])), key
        if stored == "uint8":  # blank sides are code 0
            tp = f["train/top_present"][()]
            assert np.all(f["train/x"][()][~tp, :, :28] == 0) and (~tp).any()
    ds = load_dataset(path)
    assert np.array_equal(_bits(ds.x_train.numpy()), _bits(want["train"]))
    sets = load_eval_sets(path)
    for e in ("both", "top_only", "bottom_randomized", "test"):
        assert np.array_equal(_bits(sets[e]["x"]), _bits(want[e if e == "test" else f"eval/{e}"])), e


def test_filters_on_written_arrays(tmp_path):
    spec = {"source": "synthetic", "classes": 4, "size": 12, "n_train": 400, "n_test": 20}
    path = tmp_path / "s.h5"
    prepare_dataset("s", spec, path)
    with h5py.File(path) as f:
        big, small = f["train/x"], f["test/y"]
        assert big.nbytes >= MIN_COMPRESSED_BYTES and small.nbytes < MIN_COMPRESSED_BYTES
        assert big.compression == "gzip" and big.shuffle and big.chunks[1:] == big.shape[1:]
        assert big.id.get_storage_size() < big.nbytes  # it compressed
        assert small.compression is None and small.chunks is None


def test_old_format_refused_in_one_line(tmp_path):
    spec = {"source": "teacher_student", "d_in": 3, "n_train": 10, "n_test": 4}
    path = tmp_path / "old.h5"
    prepare_dataset("old", spec, path)
    assert prepared_info(path, spec) is not None
    with h5py.File(path, "r+") as f:
        f.attrs["format"] = "pathdep.dataset/1"
    for call in (lambda: load_dataset(path), lambda: read_inputs(h5py.File(path), "train/x")):
        with pytest.raises(ValueError) as e:
            call()
        msg = str(e.value)
        assert "\n" not in msg and "old.h5" in msg and "pathdep.dataset/1" in msg and "prepare it again" in msg
    assert prepared_info(path, spec) is None  # an old file's attributes are not trusted either


def test_code_detection():
    assert raw_codes([np.array([[0.0, 16.0]]), np.array([[3.0, 255.0]])])[0].dtype == np.uint8
    assert raw_codes([np.array([[0.0, 256.0]])]) is None          # out of uint8
    assert raw_codes([np.array([[0.5, 1.0]])]) is None            # not integers
    assert raw_codes([np.array([[-0.0, 1.0]])]) is None           # -0.0 would decode as +0.0
    assert raw_codes([np.array([[-3, 1]], dtype=np.int16)])[0].dtype == np.int16  # integers keep their dtype
    k = np.arange(256, dtype=np.float64)
    x = (k / 255).astype(np.float32)[None]
    assert np.array_equal(grid_codes([x])[0][0], k.astype(np.uint8))
    y = x.copy()
    y[0, 7] = np.nextafter(y[0, 7], np.float32(1))                # one ulp off the grid
    assert grid_codes([y]) is None
    assert grid_codes([x.astype(np.float64)]) is None


def test_decode_identity_and_code_scale():
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    assert decode_inputs(x, np.zeros(3), np.ones(3)) is x
    codes = np.array([[[[0, 128, 255]]]], dtype=np.uint8)
    out = decode_inputs(codes, [0.25], [0.5], 255.0)
    want = ((np.array([0, 128, 255]) / 255.0).astype(np.float32).astype(np.float64) - 0.25) / 0.5
    assert np.array_equal(_bits(out[0, 0, 0]), _bits(want.astype(np.float32)))
