"""pathdep.data.sources.teacher_student: seeded draws, y == teacher(x) at zero noise."""

from __future__ import annotations

import h5py
import pytest
import torch

from pathdep.data import load_dataset, prepare_dataset


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
