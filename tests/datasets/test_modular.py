"""pathdep.data.sources.modular: every equation recomputed with Python integers, division by the
modular inverse without b = 0, the seeded split, the prepared file, errors naming the key."""

import h5py
import numpy as np
import pytest

from pathdep.data import load_dataset
from pathdep.data.prepare import prepare_dataset
from pathdep.data.registry import check_spec, dataset_info
from pathdep.data.sources.modular import equations, is_prime


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_equations_by_python_integers(op):
    p = 11
    a, b, c = equations(p, op)
    pairs = [(x, y) for x in range(p) for y in range(p) if op != "div" or y != 0]
    assert list(zip(a.tolist(), b.tolist())) == pairs
    for x, y, z in zip(a.tolist(), b.tolist(), c.tolist()):
        if op == "add":
            assert z == (x + y) % p
        elif op == "sub":
            assert z == (x - y) % p
        elif op == "mul":
            assert z == (x * y) % p
        else:
            assert (z * y) % p == x      # c = a / b  <=>  c * b = a (mod p)


def test_is_prime():
    assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


def test_prepared_file_split_and_tokens(tmp_path):
    spec = {"source": "modular_arithmetic", "p": 13, "op": "add", "train_fraction": 0.3, "seed": 4}
    info = dataset_info("m", spec)
    prepare_dataset("m", spec, tmp_path / "m.h5")
    d = load_dataset(tmp_path / "m.h5")
    assert info == {"in_shape": (3,), "out_dim": 14, "n_train": round(0.3 * 169), "exact": True}
    assert len(d.x_train) == info["n_train"] and len(d.x_train) + len(d.x_test) == 169
    x = np.concatenate([d.x_train.numpy(), d.x_test.numpy()]).astype(np.int64)
    y = np.concatenate([d.y_train.numpy(), d.y_test.numpy()])
    assert (x[:, 2] == 13).all()                                     # the '=' token
    assert ((x[:, 0] + x[:, 1]) % 13 == y).all()
    assert len({tuple(r) for r in x[:, :2].tolist()}) == 169         # disjoint and covering
    with h5py.File(tmp_path / "m.h5") as f:
        assert int(f.attrs["out_dim"]) == 14 and f["train/x"].dtype == np.uint8
        assert "default_rng(4)" in f.attrs["split"]
    # seeded: the same seed gives the same split, another seed another one
    prepare_dataset("m", dict(spec, seed=5), tmp_path / "m5.h5")
    prepare_dataset("m", spec, tmp_path / "m4.h5")
    assert np.array_equal(load_dataset(tmp_path / "m4.h5").x_train.numpy(), d.x_train.numpy())
    assert not np.array_equal(load_dataset(tmp_path / "m5.h5").x_train.numpy(), d.x_train.numpy())


@pytest.mark.parametrize("bad,key", [({"p": 12}, "p"), ({"op": "pow"}, "op"), ({"train_fraction": 1.5}, "train_fraction"),
                                     ({"normalize": True}, "normalize"), ({"n_train": 5}, "n_train")])
def test_errors_name_the_key(bad, key):
    with pytest.raises(ValueError, match=rf"^datasets\.m\.{key}: "):
        check_spec("m", {"source": "modular_arithmetic", **bad})
