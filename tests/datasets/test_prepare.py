"""pathdep.data.prepare / dataset / registry: atomic writes, load errors, the workflow adapter,
every source's info against its prepared file, and a source registered with no other change."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from pathdep import data as D
from pathdep.data import load_dataset, prepare_dataset
from pathdep.io.atomic import partial_path
from dataset_files import idx_spec, prepared_shapes, write_idx_set


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
    assert set(D.REGISTRY) >= {s["source"] for s in specs.values()}
    for name, spec in specs.items():
        prepare_dataset(name, spec, tmp_path / f"{name}.h5")
        info = D.dataset_info(name, spec, check_files=True)
        got = prepared_shapes(tmp_path / f"{name}.h5")
        if spec["source"] == "torchvision":  # info gives the real MNIST sizes; the fake files are tiny
            assert info["in_shape"] == got["in_shape"] and info["out_dim"] == got["out_dim"], name
            assert info["n_train"] == 60000
            continue
        assert {k: info[k] for k in got} == got, name
        assert info["exact"] is True
        assert D.dataset_info(name, spec, data_dir=tmp_path) == {**got, "exact": True}  # read from the file
    ts = D.REGISTRY["teacher_student"]
    assert prepared_shapes(tmp_path / "teacher_defaults.h5") == {
        "in_shape": (ts.defaults["d_in"],), "out_dim": ts.defaults["d_out"], "n_train": ts.defaults["n_train"]}


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
    assert isinstance(D.REGISTRY["ramp_test"], Ramp)
    prepare_dataset("r", {"source": "ramp_test", "width": 5}, tmp_path / "r.h5")
    assert prepared_shapes(tmp_path / "r.h5") == {"in_shape": (5,), "out_dim": 2, "n_train": 12}
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
