"""pathdep.stages.train with the trajectory storage options (training.checkpoints store /
precision): the writer takes them from the run, Trajectory.weights reads back the default file's
weights bit for bit for store: deltas, and an interrupted run with an encoded trajectory (and
crop_flip augmentation) resumes bit for bit."""

import numpy as np
import pytest
from helpers import assert_h5_equal, interrupted_run, h5_datasets, make_dataset, tiny_run, train_tiny

from pathdep.io.trajectory import Trajectory


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), "digits")


def test_training_with_store_deltas_reads_back_the_same_weights(tmp_path, data):
    """The train stage passes training.checkpoints to the writer: store deltas gives a file
    without /weights whose Trajectory.weights equal the default file's bit for bit."""
    base = {"training": {"max_steps": 6}, "perturbation": {"epsilon": 1e-3}}
    ref = train_tiny(tmp_path, tiny_run(base), data, "ref")
    run = tiny_run({**base, "training": {"max_steps": 6, "checkpoints": {"mode": "log", "count": 8,
                                                                          "store": "deltas"}}})
    d = train_tiny(tmp_path, run, data, "d")
    with Trajectory(ref) as a, Trajectory(d) as b:
        assert "weights" not in b.f and "weights_stored" in b.f and a.n_checkpoints == b.n_checkpoints
        for c in range(a.n_checkpoints):
            assert np.array_equal(a.weights(c).view(np.uint32), b.weights(c).view(np.uint32))


@pytest.mark.parametrize("ck", [{"store": "deltas"}, {"store": "deltas", "precision": "float16"}])
def test_resume_with_encoded_storage_is_bitwise(tmp_path, data, ck):
    """An interrupted run with an encoded trajectory and crop_flip, resumed, equals the straight run."""
    from pathdep.stages.train import train_ensemble

    run = tiny_run({"optimizer": {"momentum": 0.9}, "perturbation": {"epsilon": 1e-3},
                    "training": {"max_steps": 40, "save_state_every": 5, "augment": "crop_flip",
                                 "checkpoints": {"mode": "log", "count": 8, **ck}}})
    ref = train_tiny(tmp_path, run, data, "ref")
    d = tmp_path / "r"
    interrupted_run(run, data, d, stop_after=23)
    assert train_ensemble(run, d / "init.h5", data, d / "trajectory.h5", threads=1, progress=False)["resumed_from"] == 20
    assert_h5_equal(d / "trajectory.h5", ref)
    assert "weights_stored" in h5_datasets(ref)
