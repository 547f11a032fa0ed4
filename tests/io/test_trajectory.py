"""pathdep.io.trajectory: init/trajectory HDF5 round trips, the .partial protocol, and one-line
errors for incomplete, truncated and corrupted files."""

import json
import os

import h5py
import numpy as np
import pytest

from pathdep.core.models import MLP, Layout
from pathdep.io.trajectory import (SCHEMA_VERSION, WEIGHT_FILTERS, BackgroundWriter, Trajectory, TrajectoryError,
                                TrajectoryWriter, load_init, save_init)

K = 3


def _layout():
    return Layout.from_module(MLP(4, [3], 2))


def _members():
    return [{"role": "baseline" if k == 0 else "member", "target": "none" if k == 0 else "init",
             "kind": "none" if k == 0 else "gaussian", "epsilon": 0.0 if k == 0 else 0.1,
             "distance": 0.1 * k, "relative_distance": 0.01 * k, "seed_perturb": 1000 + k,
             "seed_schedule": 42, "swaps": [] if k < 2 else [[0, 3]], "hp_lr": 0.01 * (k + 1),
             "hp_momentum": 0.0} for k in range(K)]


def _write(path, finish=True, dtype=np.float64, seed=0):
    layout = _layout()
    P = layout.n_params
    rng = np.random.default_rng(seed)
    steps = np.array([0, 1, 4, 10])
    W = rng.standard_normal((len(steps), K, P)).astype(dtype)
    valid = np.ones((len(steps), K), dtype=bool)
    valid[3, 2] = False
    loss = rng.random((10, K)).astype(np.float32)
    dpt = rng.random((K, len(layout.names)))
    cfg = {"experiment": "e", "run": "r", "training": {"dtype": "float64"}}
    w = TrajectoryWriter(path, layout, _members(), dpt, steps, n_steps=10, steps_per_epoch=5, dtype=dtype,
                         attrs={"config": json.dumps(cfg), "seeds": {"root": 1}, "provenance": {"torch": "x"},
                                "task": "classification"})
    for i in range(len(steps)):
        w.write_weights(i, W[i])
    w.write_valid(valid)
    w.write_losses(0, loss[:6])
    w.write_losses(6, loss[6:])
    w.set_diverged(np.array([-1, -1, 7]))
    if finish:
        w.finish({"train_seconds": 1.5})
    else:
        w.flush()
        w.close()
    return dict(layout=layout, steps=steps, W=W, valid=valid, loss=loss, dpt=dpt, cfg=cfg, writer=w)


def _one_line(exc, path):
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    return msg


def test_round_trip(tmp_path):
    path = tmp_path / "trajectory.h5"
    ref = _write(path)
    with Trajectory(path) as tr:
        assert tr.layout == ref["layout"]
        assert tr.n_checkpoints == 4 and tr.n_members == K
        assert np.array_equal(tr.steps, ref["steps"])
        assert np.array_equal(tr.epochs, ref["steps"] / 5)
        for i in range(4):
            w = tr.weights(i)
            assert w.dtype == np.float64 and np.array_equal(w, ref["W"][i])
        assert np.array_equal(tr.valid, ref["valid"])
        assert np.array_equal(tr.loss(), ref["loss"])
        assert tr.diverged_step.tolist() == [-1, -1, 7]
        assert tr.config == ref["cfg"]
        assert tr.provenance == {"torch": "x"}
        m = tr.members
        assert list(m["role"]) == ["baseline", "member", "member"]
        assert list(m["seed_perturb"]) == [1000, 1001, 1002]
        assert np.allclose(m["hp_lr"], [0.01, 0.02, 0.03])
        assert [json.loads(s) for s in m["swaps"]] == [[], [], [[0, 3]]]
        a = tr.attrs
        assert a["complete"] and a["n_steps"] == 10 and a["steps_per_epoch"] == 5 and a["train_seconds"] == 1.5
        assert a["schema_version"] == SCHEMA_VERSION and a["kind"] == "trajectory"
    # the file is readable with plain h5py (documented schema)
    with h5py.File(path, "r") as f:
        assert f["weights"].shape == (4, K, ref["layout"].n_params)
        assert f["weights"].chunks == (1, K, ref["layout"].n_params)
        assert np.array_equal(f["members/distance_per_tensor"][()], ref["dpt"])
        assert json.loads(f.attrs["layout"])["names"] == list(ref["layout"].names)


def test_float32_round_trip(tmp_path):
    ref = _write(tmp_path / "t.h5", dtype=np.float32)
    with Trajectory(tmp_path / "t.h5") as tr:
        assert tr.weights(2).dtype == np.float32 and np.array_equal(tr.weights(2), ref["W"][2])


def _weights_like_training(shape, dtype, seed=0):
    """Weights of a trained-looking network (N(0, 0.05)) with the special values a run can hold."""
    W = (0.05 * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)
    flat = W.reshape(-1)
    flat[:6] = [np.nan, np.inf, -np.inf, -0.0, np.finfo(dtype).tiny / 4, np.finfo(dtype).max]
    return W


@pytest.mark.parametrize("dtype,uint", [(np.float32, np.uint32), (np.float64, np.uint64)])
def test_compressed_weights_round_trip_bit_for_bit(tmp_path, dtype, uint):
    """Checkpoints written on a BackgroundWriter thread through shuffle + gzip read back bit for
    bit (NaN, inf, -0.0 and subnormals included), through Trajectory and plain h5py, and compress."""
    layout = Layout.from_module(MLP(40, [50], 10))
    P, steps = layout.n_params, np.array([0, 1, 2, 5, 9])
    W = _weights_like_training((len(steps), K, P), dtype)
    path = tmp_path / "trajectory.h5"
    w = TrajectoryWriter(path, layout, _members(), np.zeros((K, len(layout.names))), steps, n_steps=10,
                         steps_per_epoch=5, dtype=dtype, attrs={"config": "{}"})
    with BackgroundWriter(maxsize=2) as bg:
        for i in range(len(steps)):
            bg.submit(w.write_weights, i, W[i].copy())
    w.write_valid(np.ones((len(steps), K), dtype=bool))
    w.finish()
    with Trajectory(path) as tr:
        for i in range(len(steps)):
            assert tr.weights(i).dtype == dtype
            assert np.array_equal(tr.weights(i).view(uint), W[i].view(uint)), i
    with h5py.File(path, "r") as f:
        d = f["weights"]
        assert np.array_equal(d[()].view(uint), W.view(uint))
        assert d.chunks == (1, K, P) and d.compression == "gzip" and d.compression_opts == 1 and d.shuffle
        assert d.id.get_storage_size() < 0.92 * d.nbytes  # shuffle + gzip really saves (~14 % on weights)


def test_init_weights_compressed_bit_for_bit(tmp_path):
    layout = _layout()
    W = _weights_like_training((K, layout.n_params), np.float32)
    save_init(tmp_path / "init.h5", W, layout, _members(), np.zeros((K, len(layout.names))), {"config": "{}"})
    assert np.array_equal(load_init(tmp_path / "init.h5").weights.view(np.uint32), W.view(np.uint32))
    with h5py.File(tmp_path / "init.h5", "r") as f:
        d = f["weights"]
        assert d.chunks == (1, layout.n_params) and d.compression == WEIGHT_FILTERS["compression"] and d.shuffle


def test_partial_renamed_only_at_finish(tmp_path):
    path = tmp_path / "trajectory.h5"
    partial = tmp_path / "trajectory.h5.partial"
    ref = _write(path, finish=False)
    assert partial.exists() and not path.exists()
    # an unfinished file is refused (complete=False), even under the final name
    with pytest.raises(TrajectoryError) as exc:
        Trajectory(partial)
    assert "incomplete" in _one_line(exc, partial)
    os.replace(partial, path)
    with pytest.raises(TrajectoryError) as exc:
        Trajectory(path)
    assert "incomplete" in _one_line(exc, path)
    # finishing renames .partial -> path
    os.replace(path, partial)
    w = TrajectoryWriter(path, ref["layout"], _members(), ref["dpt"], ref["steps"], 10, 5, np.float64,
                         {"config": "{}"}, resume=True)
    assert partial.exists() and not path.exists()
    w.finish()
    assert path.exists() and not partial.exists()
    with Trajectory(path) as tr:
        assert np.array_equal(tr.weights(1), ref["W"][1])  # resume kept what was written


def test_missing_and_wrong_kind(tmp_path):
    with pytest.raises(TrajectoryError) as exc:
        Trajectory(tmp_path / "nope.h5")
    _one_line(exc, tmp_path / "nope.h5")
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["x"] = 1
    with pytest.raises(TrajectoryError) as exc:
        Trajectory(p)
    _one_line(exc, p)


def test_truncated_file(tmp_path):
    path = tmp_path / "trajectory.h5"
    _write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TrajectoryError) as exc:
        with Trajectory(path) as tr:
            for i in range(tr.n_checkpoints):
                tr.weights(i)
    _one_line(exc, path)


def test_corrupted_file(tmp_path):
    path = tmp_path / "trajectory.h5"
    _write(path)
    n = path.stat().st_size
    path.write_bytes(np.random.default_rng(0).bytes(n))
    with pytest.raises(TrajectoryError) as exc:
        Trajectory(path)
    assert "corrupted" in _one_line(exc, path)


def test_empty_file(tmp_path):
    path = tmp_path / "trajectory.h5"
    path.write_bytes(b"")
    with pytest.raises(TrajectoryError) as exc:
        Trajectory(path)
    _one_line(exc, path)


def test_init_round_trip_and_errors(tmp_path):
    layout = _layout()
    W = np.random.default_rng(1).standard_normal((K, layout.n_params)).astype(np.float32)
    dpt = np.random.default_rng(2).random((K, len(layout.names)))
    path = tmp_path / "init.h5"
    save_init(path, W, layout, _members(), dpt, {"config": json.dumps({"a": 1}), "seeds": {"init": 5}})
    assert not (tmp_path / "init.h5.partial").exists()
    init = load_init(path)
    assert np.array_equal(init.weights, W) and init.weights.dtype == np.float32
    assert init.layout == layout and init.config == {"a": 1}
    assert json.loads(init.attrs["seeds"]) == {"init": 5}
    assert list(init.members["hp_lr"]) == pytest.approx([0.01, 0.02, 0.03])
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["members/distance_per_tensor"][()], dpt)
    # an init file is not a trajectory and vice versa
    with pytest.raises(TrajectoryError) as exc:
        Trajectory(path)
    _one_line(exc, path)
    _write(tmp_path / "t.h5")
    with pytest.raises(TrajectoryError) as exc:
        load_init(tmp_path / "t.h5")
    _one_line(exc, tmp_path / "t.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TrajectoryError) as exc:
        load_init(path)
    _one_line(exc, path)


def test_corrupted_bytes_inside_give_trajectory_error_or_read(tmp_path):
    """Random bytes written over part of a valid file: reading either works (raw data hit; HDF5
    has no checksums here) or fails with a one-line TrajectoryError naming the file, never
    another exception (seed 21 breaks the root attributes' heap: OSError from h5py; 105, 177
    and 284 break the members group: RuntimeError from h5py)."""
    path = tmp_path / "trajectory.h5"
    _write(path)
    good = path.read_bytes()
    n = len(good)
    failures = 0
    for seed in [*range(30), 105, 177, 284]:
        rng = np.random.default_rng(seed)
        a, length = int(rng.integers(100, n - 100)), int(rng.integers(16, 512))
        b = bytearray(good)
        b[a:a + length] = rng.bytes(min(length, n - a))
        path.write_bytes(bytes(b))
        try:
            with Trajectory(path) as tr:
                for i in range(tr.n_checkpoints):
                    tr.weights(i)
                tr.loss()
        except TrajectoryError as exc:
            failures += 1
            assert "\n" not in str(exc) and str(path) in str(exc)
    assert failures > 0


# --------------------------------------------------------------------------- BackgroundWriter
def test_background_writer_runs_writes_in_order_and_bounds_its_queue(tmp_path):
    import threading

    from pathdep.io.trajectory import BackgroundWriter

    done, gate = [], threading.Event()
    w = BackgroundWriter(maxsize=2)
    w.submit(gate.wait)  # blocks the thread: the queue fills up
    for i in range(2):
        w.submit(done.append, i)
    t = threading.Thread(target=w.submit, args=(done.append, 2))
    t.start()
    t.join(timeout=0.3)
    assert t.is_alive() and done == []  # a third queued write waits for room
    gate.set()
    t.join(timeout=5)
    w.flush()
    assert done == [0, 1, 2]
    w.close()
    with pytest.raises(RuntimeError):
        w.submit(done.append, 3)


def test_background_writer_reraises_a_failed_write_and_skips_later_ones(tmp_path):
    from pathdep.io.trajectory import BackgroundWriter

    done = []
    w = BackgroundWriter()

    def boom():
        raise OSError("disk full")

    w.submit(boom)
    w.submit(done.append, 1)
    with pytest.raises(OSError, match="disk full"):
        w.flush()
    w.close()
    assert done == []  # nothing written after the failure
