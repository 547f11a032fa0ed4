"""pathdep.core.loop.run_loop: the hooks run at the documented steps, a resumed loop equals an
uninterrupted one, a stop request saves first, and another step function (a linear map)
runs on the same loop."""

import numpy as np
import pytest

from pathdep.core.loop import LoopSink, LoopStopped, run_loop


class Recorder(LoopSink):
    def __init__(self, stop_at=None):
        self.events, self.stop_at, self.t = [], stop_at, None

    def record(self, t, out):
        self.events.append(("record", t, out))
        self.t = t + 1

    def checkpoint(self, index, t, state):
        self.events.append(("ckpt", index, t, state))

    def save(self, t, state, next_checkpoint):
        self.events.append(("save", t, state, next_checkpoint))

    def stop_requested(self):
        return "stop" if self.stop_at is not None and self.t == self.stop_at else None


def counter(state, batch):
    return state + batch, state  # out: the state before the step


def test_hook_order_and_values():
    sink = Recorder()
    final = run_loop(counter, 0, lambda t: t, 6, sink, checkpoints=[0, 2, 6], save_every=4)
    assert final == sum(range(6))
    assert sink.events == [("ckpt", 0, 0, 0), ("record", 0, 0), ("record", 1, 0), ("ckpt", 1, 2, 1),
                           ("record", 2, 1), ("record", 3, 3), ("save", 4, 6, 2), ("record", 4, 6),
                           ("record", 5, 10), ("ckpt", 2, 6, 15)]  # no save at the last step


def test_resume_equals_uninterrupted_run():
    full = Recorder()
    run_loop(counter, 0, lambda t: t * t, 9, full, checkpoints=[0, 3, 5, 9], save_every=2)
    first = Recorder()
    with pytest.raises(KeyboardInterrupt):
        run_loop(counter, 0, lambda t: t * t, 9, first, checkpoints=[0, 3, 5, 9], save_every=2, stop_after=5)
    _, t, state, nxt = [e for e in first.events if e[0] == "save"][-1]
    assert (t, nxt) == (4, 2)
    rest = Recorder()
    final = run_loop(counter, state, lambda t: t * t, 9, rest, start=t, checkpoints=[0, 3, 5, 9],
                     next_checkpoint=nxt, save_every=2)
    assert final == sum(t * t for t in range(9))
    cut = first.events.index(("save", 4, state, 2)) + 1  # what a kill after step 5 leaves: up to the save
    assert first.events[:cut] + rest.events == full.events


def test_stop_request_saves_then_raises():
    sink = Recorder(stop_at=3)
    with pytest.raises(LoopStopped) as exc:
        run_loop(counter, 0, lambda t: 1, 10, sink, checkpoints=[0, 10])
    assert exc.value.step == 3 and "stop at step 3" in str(exc.value)
    assert sink.events[-1] == ("save", 3, 3, 1)


def test_a_different_step_function_linear_map():
    A = np.array([[0.5, 0.1], [0.0, 0.9]])
    snaps = {}

    class Keep(LoopSink):
        def checkpoint(self, index, t, state):
            snaps[t] = state.copy()

    x = run_loop(lambda x, b: (A @ x + b, None), np.ones(2), lambda t: np.zeros(2), 5, Keep(), checkpoints=[0, 5])
    np.testing.assert_allclose(x, np.linalg.matrix_power(A, 5) @ np.ones(2), rtol=1e-15)
    np.testing.assert_array_equal(snaps[5], x)
    np.testing.assert_array_equal(snaps[0], np.ones(2))


def test_loss_log_blocks_and_first_divergence():
    import os
    import signal

    import torch

    from pathdep.core.loop import LossLog, StopSignals

    losses, diverged = np.full((7, 2), np.nan, dtype=np.float32), -np.ones(2, dtype=np.int64)
    log = LossLog(losses, diverged, 0, 3, torch.float64, "cpu")
    vals = [[1.0, 2.0], [1.0, float("nan")], [1.0, 3.0], [float("inf"), 4.0], [1.0, 5.0], [1.0, 6.0], [2.0, 7.0]]
    for t, v in enumerate(vals):
        log.record(t, torch.tensor(v, dtype=torch.float64))
        if t == 1:  # nothing copied before a block of 3 steps is full
            assert np.isnan(losses[0, 0])
    np.testing.assert_array_equal(losses[:, 1], np.array([2, np.nan, 3, 4, 5, 6, 7], dtype=np.float32))
    assert diverged.tolist() == [3, 1]  # the first non-finite step of each member, kept once set
    with StopSignals() as sig:
        assert sig.reason() is None
        os.kill(os.getpid(), signal.SIGUSR1)
        assert sig.reason() == f"received signal {int(signal.SIGUSR1)}"
