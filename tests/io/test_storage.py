"""pathdep.io.storage through TrajectoryWriter/Trajectory: exact round trip of store: deltas
(float32/64, sign changes, NaN/inf, diverged members), the measured error of the lossy
precisions against their documented bound, subsampling, and the default file unchanged."""

import json

import numpy as np
import pytest

from pathdep.core.models import MLP, Layout
from pathdep.io import storage as ST
from pathdep.io.trajectory import Trajectory, TrajectoryError, TrajectoryWriter

R, M = 2, 3                     # baselines, copies each
K = R * (M + 1)


def _members():
    return [{"role": "baseline" if c == 0 else "member", "baseline": r, "copy": c, "epsilon": 1e-6 * c}
            for r in range(R) for c in range(M + 1)]


def _weights(dtype, C=4, eps=1e-6, seed=0):
    """Baselines plus copies at distance ~eps that grows, a sign change and non-finite values."""
    layout = Layout.from_module(MLP(10, [20, 20], 3))
    rng = np.random.default_rng(seed)
    P = layout.n_params
    W = np.empty((C, K, P))
    for c in range(C):
        for r in range(R):
            b = rng.standard_normal(P) * 0.1
            W[c, r * (M + 1)] = b
            for m in range(1, M + 1):
                W[c, r * (M + 1) + m] = b + eps * 10.0 ** c * rng.standard_normal(P)
    W = W.astype(dtype)
    if C >= 4:
        W[1, 1, :5] = -W[1, 0, :5]          # sign changes against the baseline
        W[2, 2, 7] = np.nan                 # a diverged member
        W[2, 3, 8] = np.inf
        W[3, 1] = 1e30 if dtype == np.float32 else 1e300
    return layout, W


def _write(path, layout, W, storage):
    C = len(W)
    w = TrajectoryWriter(path, layout, _members(), np.zeros((K, 2)), np.arange(C), n_steps=C, steps_per_epoch=1,
                         dtype=W.dtype, attrs={"config": json.dumps({"training": {"checkpoints": storage}})})
    for i in range(C):
        w.write_weights(i, W[i])
    w.write_valid(np.ones((C, K), dtype=bool))
    w.finish()


def _same_bits(a, b):
    return a.dtype == b.dtype and np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deltas_exact_round_trip(tmp_path, dtype):
    layout, W = _weights(dtype)
    path = tmp_path / "t.h5"
    _write(path, layout, W, {"store": "deltas"})
    with Trajectory(path) as tr:
        assert "weights" not in tr.f and tr.f["weights_stored"].dtype == np.dtype(f"u{W.itemsize}")
        assert tr.f["weights_base"].shape == (4, R, layout.n_params)
        assert tr.f.attrs["storage_error"] == "exact (bit for bit)"
        for i in range(len(W)):
            assert _same_bits(tr.weights(i), W[i]), i


def test_deltas_smaller_than_full(tmp_path):
    """Copies within ~100 ulps of their baseline (rows longer than gzip's 32 KB window, as in
    real networks): the deltas' high bytes are zero."""
    layout = Layout.from_module(MLP(784, [100], 10))   # 79,510 parameters
    rng = np.random.default_rng(0)
    b = rng.standard_normal((R, layout.n_params)) * 0.1
    W = np.stack([b[r] * (1 + 1e-6 * rng.standard_normal(layout.n_params)) if c else b[r]
                  for r in range(R) for c in range(M + 1)])[None].astype(np.float32)
    sizes = {}
    for s in ("full", "deltas"):
        _write(tmp_path / f"{s}.h5", layout, W, {"store": s})
        with Trajectory(tmp_path / f"{s}.h5") as tr:
            sizes[s] = sum(tr.f[n].id.get_storage_size() for n in ("weights", "weights_stored", "weights_base")
                           if n in tr.f)
            assert _same_bits(tr.weights(0), W[0])
    assert sizes["deltas"] < 0.5 * sizes["full"], sizes


def test_default_writes_classic_weights(tmp_path):
    layout, W = _weights(np.float32)
    _write(tmp_path / "t.h5", layout, W, {"mode": "log", "count": 4})
    with Trajectory(tmp_path / "t.h5") as tr:
        assert "weights" in tr.f and "weights_stored" not in tr.f and "storage" not in tr.f.attrs
        assert _same_bits(tr.weights(2), W[2])


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_lossy_full_within_bound(tmp_path, precision):
    layout, W = _weights(np.float32)
    W = W[:, :, :][[0]]
    u = ST.UNIT_ROUNDOFF[precision]
    _write(tmp_path / "t.h5", layout, W, {"precision": precision})
    with Trajectory(tmp_path / "t.h5") as tr:
        back = tr.weights(0).astype(np.float64)
    w = W[0].astype(np.float64)
    err = np.abs(back - w)
    bound = u * np.abs(w) + (ST.FLOAT16_FLOOR if precision == "float16" else 0.0)
    assert np.all(err <= bound * (1 + 1e-6)), (err / np.maximum(bound, 1e-300)).max()
    assert err.max() > 0.1 * (u * np.abs(w)).max()          # it is lossy: the bound is nearly reached
    assert np.median(err / np.abs(w)) > u / 10


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_lossy_deltas_relative_to_distance(tmp_path, precision):
    """Error relative to |w_k - w_base|, whatever eps is (1e-6 here), baselines exact."""
    layout, W = _weights(np.float64, eps=1e-6)
    W[~np.isfinite(W)] = 0.0
    W[3, 1] = W[3, 0] + 1e-6
    _write(tmp_path / "t.h5", layout, W, {"store": "deltas", "precision": precision})
    u = ST.UNIT_ROUNDOFF[precision] + (ST.FLOAT16_FLOOR * np.sqrt(layout.n_params) if precision == "float16" else 0)
    with Trajectory(tmp_path / "t.h5") as tr:
        for i in range(len(W)):
            back = tr.weights(i)
            base = W[i][ST.baseline_rows(_members())]
            for k in range(K):
                d = np.linalg.norm(W[i, k] - base[k])
                err = np.linalg.norm(back[k] - W[i, k])
                if d == 0:
                    assert _same_bits(back[k], W[i, k])
                else:
                    assert err <= u * d, (i, k, err / d, u)
                    assert abs(np.linalg.norm(back[k] - base[k]) / d - 1) <= u


def test_subsample_layers(tmp_path):
    layout, W = _weights(np.float32)
    name = layout.layers()[-1]
    _write(tmp_path / "t.h5", layout, W, {"store": "deltas", "layers": [name], "subsample": 2})
    sl = layout.slice(layout.names[-2])
    idx = np.concatenate([np.arange(layout.n_params)[layout.slice(n)] for n in layout.names
                          if n.rsplit(".", 1)[0] == name])[::2]
    assert idx[0] == sl.start
    with Trajectory(tmp_path / "t.h5") as tr:
        assert np.array_equal(tr.stored_index, idx)
        assert _same_bits(tr.stored_weights(1), np.ascontiguousarray(W[1][:, idx]))
        with pytest.raises(TrajectoryError) as e:
            tr.weights(1)
    assert "\n" not in str(e.value) and "stored_weights" in str(e.value)
    with pytest.raises(ValueError, match="unknown layer"):
        ST.stored_index(layout, ST.spec_of({"layers": ["conv9"]}))


def test_bfloat16_rounding_known_values():
    x = np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, -2.5, np.inf, 3e38], dtype=np.float32)
    back = ST.dequantise(ST.quantise(x, "bfloat16"), "bfloat16")
    assert back[:5].tolist() == [1.0, 1.0, 1.0 + 2 ** -6, -2.5, np.inf]   # ties to even
    assert np.isnan(ST.dequantise(ST.quantise(np.array([np.nan], np.float32), "bfloat16"), "bfloat16")[0])
