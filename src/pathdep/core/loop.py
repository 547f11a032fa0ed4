"""A generic training loop: any pure step function, bookkeeping delegated to a sink (layer ``core``).

What it computes: ``state_{t+1}, out_t = step(state_t, batch(t))`` for ``t = start ...
n_steps - 1`` (DESIGN invariant 2: the update map is pure, so the same loop drives the
vmapped ensemble, a linearised (NTK) model or any other dynamics whose step has this
signature). Everything that is not the dynamics lives in a :class:`LoopSink`: per-step
outputs (losses, divergence flags), weights at the checkpoint steps, the resume state
every ``save_every`` steps, and stop requests (signals). The loop only decides *when*
each hook runs, in this order after step ``t -> t + 1``:

1. ``sink.record(t, out)`` (the output of the step that left ``t``),
2. ``sink.checkpoint(i, t + 1, state)`` for every checkpoint index ``i`` at step ``t + 1``,
3. ``sink.save(t + 1, state, next_checkpoint)`` when ``(t + 1) % save_every == 0`` and
   ``t + 1 < n_steps``,
4. when ``sink.stop_requested()`` returns a reason: ``sink.save(...)`` then
   :class:`LoopStopped`; when ``stop_after`` steps were taken: ``KeyboardInterrupt``
   (tests use it to simulate a kill).

The checkpoint at ``start`` itself is offered before the first step (index
``next_checkpoint``), so a fresh run records its initial weights and a resumed run
continues at the first checkpoint it had not written.

Two pieces of bookkeeping that sinks share live here too: :class:`LossLog` (per-step
losses gathered on the device and copied to the host in blocks, and each member's first
non-finite step) and :class:`StopSignals` (SIGTERM / SIGUSR1 become a stop request).

How it was checked: ``tests/core/test_loop.py`` (hook order, a resumed loop equals an
uninterrupted one, stop requests, a linear map as the step), ``tests/stages/test_train.py``
(the training stage runs on this loop and its loss log and signals: bitwise determinism
and bitwise resume after SIGKILL / SIGTERM / an interrupt, first divergence steps) and
``bench/check_refactor_identity.py`` (trajectories bit-identical to the loop before it was
factored out).
"""

from __future__ import annotations

import signal
from typing import Any, Callable, Sequence

import numpy as np
import torch


class LoopStopped(Exception):
    """The sink asked the loop to stop (e.g. SIGTERM); the state was saved at ``step``."""

    def __init__(self, reason: str, step: int):
        super().__init__(reason)
        self.step = step


class LoopSink:
    """Callbacks of :func:`run_loop`; every hook is optional (the defaults do nothing)."""

    def record(self, t: int, out: Any) -> None:
        """Output of the step that took the state from ``t`` to ``t + 1`` (e.g. the batch losses)."""

    def checkpoint(self, index: int, t: int, state: Any) -> None:
        """The state at checkpoint ``index`` (training step ``t``)."""

    def save(self, t: int, state: Any, next_checkpoint: int) -> None:
        """A resume point: the state after ``t`` steps; checkpoints ``< next_checkpoint`` are written."""

    def stop_requested(self) -> str | None:
        """A reason to stop now (the loop saves first), or None."""
        return None


def run_loop(step: Callable[[Any, Any], tuple[Any, Any]], state: Any, batch: Callable[[int], Any], n_steps: int,
             sink: LoopSink | None = None, *, start: int = 0, checkpoints: Sequence[int] = (),
             next_checkpoint: int | None = None, save_every: int | None = None,
             stop_after: int | None = None) -> Any:
    """Run ``state <- step(state, batch(t))`` from ``start`` to ``n_steps``, calling the sink's hooks.

    Args:
        step: pure map ``step(state, batch) -> (new_state, out)``; ``state`` is any pytree
            (for the ensemble: ``(W (K, P), optimiser state)``), ``out`` goes to ``sink.record``.
        state: the state after ``start`` steps.
        batch: ``batch(t) -> batch`` of step ``t`` (the schedule is a function of ``t``).
        n_steps: the last step (exclusive upper bound of ``t``).
        sink: bookkeeping hooks (:class:`LoopSink`); None: no bookkeeping.
        start: the step ``state`` belongs to (a resumed run starts after 0).
        checkpoints: sorted steps at which ``sink.checkpoint`` is called.
        next_checkpoint: index of the first checkpoint not yet written (default: the first
            checkpoint at or after ``start``).
        save_every: call ``sink.save`` every this many steps (None: never, except on stop).
        stop_after: raise ``KeyboardInterrupt`` after this many steps (tests: a simulated kill).

    Returns:
        The state after ``n_steps`` steps.

    Raises:
        LoopStopped: the sink requested a stop (after ``sink.save``).
    """
    sink = sink or LoopSink()
    ckpts = np.asarray(checkpoints, dtype=np.int64)
    nxt = int(np.searchsorted(ckpts, start, side="left")) if next_checkpoint is None else int(next_checkpoint)

    def offer(t: int, state: Any) -> None:
        nonlocal nxt
        while nxt < len(ckpts) and ckpts[nxt] == t:
            sink.checkpoint(nxt, t, state)
            nxt += 1

    t = int(start)
    offer(t, state)
    while t < n_steps:
        state, out = step(state, batch(t))
        sink.record(t, out)
        t += 1
        offer(t, state)
        if save_every and t % save_every == 0 and t < n_steps:
            sink.save(t, state, nxt)
        reason = sink.stop_requested()
        if reason is not None:
            sink.save(t, state, nxt)
            raise LoopStopped(f"{reason} at step {t}", t)
        if stop_after is not None and t - start >= stop_after:
            raise KeyboardInterrupt(f"stop_after={stop_after} reached at step {t}")
    return state


class LossLog:
    """Per-step batch losses ``(T, K)`` and each member's first non-finite step.

    Losses are collected on the device in a buffer of ``size`` steps and copied to the host
    in blocks (one device sync per block, not per step); ``diverged[k]`` is the first step
    whose loss was NaN/inf (-1 if none).
    """

    def __init__(self, losses: np.ndarray, diverged: np.ndarray, start: int, size: int, dtype, device):
        self.losses, self.diverged = losses, diverged
        self.buf = torch.empty((size, losses.shape[1]), dtype=dtype, device=device)
        self.start = start

    def record(self, t: int, lv: torch.Tensor) -> None:
        self.buf[t - self.start] = lv
        if t + 1 - self.start >= self.buf.shape[0] or t + 1 == len(self.losses):
            self.flush(t + 1)

    def flush(self, t_end: int) -> None:
        n = t_end - self.start
        if n > 0:
            vals = self.buf[:n].float().cpu().numpy()
            self.losses[self.start:t_end] = vals
            bad = ~np.isfinite(vals)
            for k in np.where(bad.any(0) & (self.diverged < 0))[0]:
                self.diverged[k] = self.start + int(np.argmax(bad[:, k]))
        self.start = t_end


class StopSignals:
    """Context manager: SIGTERM / SIGUSR1 (preemption) set a flag instead of killing the process."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.received = None

    def _handler(self, signum, frame):  # noqa: ARG002
        self.received = signum

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)

    def reason(self) -> str | None:
        return None if self.received is None else f"received signal {self.received}"
