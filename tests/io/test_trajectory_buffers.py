"""pathdep.io.trajectory: BatchNorm buffers (/buffers) in init and trajectory files: round trip
bit for bit through the filters, the dataset's layout, and files without buffers (old files,
norm none) giving (K, 0)."""

import json

import h5py
import numpy as np
import pytest

from pathdep.core.models import MLP, Layout
from pathdep.core.resnet import ResNet, buffer_layout, buffers_of
from pathdep.io.trajectory import (WEIGHT_FILTERS, Trajectory, TrajectoryWriter, load_init, save_init)

K = 3


def _members():
    return [{"role": "baseline" if k == 0 else "member", "epsilon": 0.1 * k} for k in range(K)]


def _bn():
    m = ResNet((1, 8, 8), 3, depth=8, width=1, shortcut="A", norm="batch")
    return Layout.from_module(m), buffer_layout(m), buffers_of(m).numpy()


def _write(path, layout, blayout, B=None, dtype=np.float32):
    steps = np.array([0, 2, 5])
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, K, layout.n_params)).astype(dtype)
    w = TrajectoryWriter(path, layout, _members(), np.zeros((K, len(layout.names))), steps, n_steps=5,
                         steps_per_epoch=5, dtype=dtype, attrs={"config": "{}"}, buffer_layout=blayout)
    for i in range(3):
        w.write_weights(i, W[i])
        if B is not None:
            w.write_buffers(i, B[i])
    w.write_valid(np.ones((3, K), dtype=bool))
    w.finish()
    return W


def test_buffers_round_trip(tmp_path):
    layout, bl, b0 = _bn()
    Q = bl.n_params
    assert Q > 0 and b0.shape == (Q,)
    rng = np.random.default_rng(1)
    B = (rng.standard_normal((3, K, Q)) * 10.0 ** rng.integers(-8, 3, size=(3, K, Q))).astype(np.float32)
    path = tmp_path / "trajectory.h5"
    _write(path, layout, bl, B)
    with Trajectory(path) as tr:
        assert tr.buffer_layout == bl
        for i in range(3):
            b = tr.buffers(i)
            assert b.dtype == np.float32 and b.shape == (K, Q) and np.array_equal(b, B[i])
        d = tr.f["buffers"]
        assert d.chunks == (1, K, Q) and d.compression == WEIGHT_FILTERS["compression"] and d.shuffle
        assert json.loads(tr.f.attrs["buffer_layout"]) == bl.to_attrs()


def test_init_buffers_round_trip(tmp_path):
    layout, bl, b0 = _bn()
    W = np.random.default_rng(2).standard_normal((K, layout.n_params))
    B = np.repeat(b0[None], K, axis=0).astype(np.float64)
    path = tmp_path / "init.h5"
    save_init(path, W, layout, _members(), np.zeros((K, 2)), {"config": "{}"}, buffers=B, buffer_layout=bl)
    ini = load_init(path)
    assert ini.buffer_layout == bl and np.array_equal(ini.buffers, B) and ini.buffers.dtype == np.float64
    with pytest.raises(ValueError, match="buffers have shape"):
        save_init(tmp_path / "bad.h5", W, layout, _members(), np.zeros((K, 2)), {"config": "{}"},
                  buffers=B[:, :-1], buffer_layout=bl)


def test_files_without_buffers(tmp_path):
    """norm none / MLP (empty buffer layout or none given): no /buffers, reads give (K, 0)."""
    layout = Layout.from_module(MLP(4, [3], 2))
    for bl in (None, Layout((), (), ())):
        path = tmp_path / f"t{bl is None}.h5"
        _write(path, layout, bl)
        with Trajectory(path) as tr:
            assert "buffers" not in tr.f and "buffer_layout" not in tr.f.attrs
            assert tr.buffers(1).shape == (K, 0) and tr.buffers(1).dtype == np.float32
            assert tr.buffer_layout.n_params == 0 and tr.buffer_layout.names == ()
        ini = tmp_path / f"i{bl is None}.h5"
        save_init(ini, np.zeros((K, layout.n_params)), layout, _members(), np.zeros((K, 2)), {"config": "{}"},
                  buffer_layout=bl)
        got = load_init(ini)
        assert got.buffers.shape == (K, 0) and got.buffer_layout.n_params == 0


def test_write_buffers_without_layout_fails(tmp_path):
    layout = Layout.from_module(MLP(4, [3], 2))
    w = TrajectoryWriter(tmp_path / "t.h5", layout, _members(), np.zeros((K, 2)), np.array([0]), n_steps=1,
                         steps_per_epoch=1, dtype=np.float32, attrs={"config": "{}"})
    with pytest.raises(ValueError, match="write_buffers needs"):
        w.write_buffers(0, np.zeros((K, 4)))
    w.close()


def test_old_file_written_by_plain_h5py(tmp_path):
    """A trajectory written before /buffers existed (attrs and datasets only) still opens."""
    path = tmp_path / "trajectory.h5"
    layout = Layout.from_module(MLP(4, [3], 2))
    _write(path, layout, None)
    with h5py.File(path, "r+") as f:
        assert "buffers" not in f
    with Trajectory(path) as tr:
        assert tr.weights(0).shape == (K, layout.n_params) and tr.buffers(0).shape == (K, 0)
