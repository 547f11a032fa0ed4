"""pathdep.core.schedule.augment / augment_batch (training.augment: crop_flip): same seed and step
give the same batch, other seeds or steps other batches, each image's pixels are those of a
window of its zero-padded original (a sub-multiset, the rest zeros), known crops and flips, none
is the identity object; training with none is bit for bit the training without the key, crop_flip
changes training and copies that share a schedule seed see the same augmented batches."""

import numpy as np
import pytest
import torch
from helpers import assert_h5_equal, h5_datasets, make_dataset, tiny_run, train_tiny

from pathdep.config import ConfigError, validate
from pathdep.core.schedule import Schedule, augment, augment_batch, augment_params
from pathdep.io.trajectory import Trajectory


def _x(B=16, C=3, H=8, W=8, seed=0):
    # distinct pixel values (no value twice), none of them zero
    v = torch.randperm(B * C * H * W, generator=torch.Generator().manual_seed(seed)).double() + 1.0
    return v.reshape(B, C, H, W)


def test_same_seed_and_step_same_batch_else_different():
    x = _x()
    a = augment(x, 7, 3)
    assert torch.equal(a, augment(x, 7, 3))
    assert not torch.equal(a, augment(x, 8, 3))
    assert not torch.equal(a, augment(x, 7, 4))
    assert a.shape == x.shape and a.dtype == x.dtype


def test_pixels_are_a_window_of_the_padded_image():
    x = _x(B=64)
    out = augment(x, 11, 0)
    dy, dx, flip = augment_params(11, 0, 64)
    assert flip.any() and (~flip).any() and len(set(dy)) > 3
    for i in range(64):
        got = out[i].flatten()
        nz = got[got != 0]
        orig = set(x[i].flatten().tolist())
        assert set(nz.tolist()) <= orig and len(set(nz.tolist())) == len(nz)    # sub-multiset, no repeats
        # exactly the pixels of the overlapping window survive, per channel
        h = 8 - abs(int(dy[i]) - 4)
        w = 8 - abs(int(dx[i]) - 4)
        assert len(nz) == 3 * h * w and int((got == 0).sum()) == 3 * (64 - h * w)
        assert np.isclose(float(out[i].sum()), float(x[i].sum()) if h == w == 8 else float(nz.sum()))


def test_known_crop_and_flip(monkeypatch):
    import pathdep.core.schedule as S

    x = _x(B=2, C=1, H=4, W=4)
    monkeypatch.setattr(S, "augment_params", lambda seed, t, n, pad=4: (np.array([4, 0]), np.array([4, 5]),
                                                                          np.array([False, True])))
    out = S.augment(x, 0, 0)
    assert torch.equal(out[0], x[0])                         # centred window, no flip: unchanged
    xp = torch.nn.functional.pad(x[1], (4, 4, 4, 4))
    assert torch.equal(out[1], xp[:, 0:4, 5:9].flip(-1))     # window at (0, 5), flipped
    assert torch.equal(out[1, 0, 0], torch.zeros(4))         # first row of the window is padding


def test_none_is_the_identity_object_and_rows_use_their_seed():
    sched = Schedule(100, 10, 1, [5, 5, 9, 9])
    x = _x(B=4 * 10, C=1).reshape(4, 10, 1, 8, 8)
    assert augment_batch(x, sched, 2, False, "none") is x
    out = augment_batch(x, sched, 2, False, "crop_flip")
    for k, s in enumerate([5, 5, 9, 9]):
        assert torch.equal(out[k], augment(x[k], s, 2))
    g = augment_batch(x[:2], sched, 2, True, "crop_flip")      # groups (0, 2) and (2, 4): seeds 5 and 9
    assert torch.equal(g[1], augment(x[1], 9, 2))
    shared = Schedule(100, 10, 1, [5, 5])
    assert torch.equal(augment_batch(x[0], shared, 2, False, "crop_flip"), augment(x[0], 5, 2))
    with pytest.raises(ValueError, match="images"):
        augment(torch.zeros(4, 64), 0, 0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), "digits")


def test_training_with_none_is_unchanged_and_crop_flip_changes_it(tmp_path, data):
    base = {"training": {"max_steps": 8}, "perturbation": {"epsilon": 0.0}}
    ref = train_tiny(tmp_path, tiny_run(base), data, "ref")
    none = train_tiny(tmp_path, tiny_run({**base, "training": {"max_steps": 8, "augment": "none"}}), data, "none")
    assert_h5_equal(ref, none)
    aug = train_tiny(tmp_path, tiny_run({**base, "training": {"max_steps": 8, "augment": "crop_flip"}}), data, "aug")
    a, r = h5_datasets(aug), h5_datasets(ref)
    assert np.array_equal(a["weights"][0], r["weights"][0]) and not np.array_equal(a["weights"][-1], r["weights"][-1])
    with Trajectory(aug) as tr:   # epsilon 0: copies share the schedule seed, hence the augmented batches
        W = tr.weights(tr.n_checkpoints - 1)
        assert all(np.array_equal(W[k], W[0]) for k in range(1, len(W)))


def test_crop_flip_refused_for_vector_inputs():
    from helpers import tiny_config

    with pytest.raises(ConfigError) as e:
        validate(tiny_config({"training": {"augment": "crop_flip"}}, "teacher"))
    assert "training.augment" in str(e.value) and "\n" not in str(e.value)

