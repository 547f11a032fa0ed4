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
