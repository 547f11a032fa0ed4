"""Batch schedules and checkpoint steps.

What it computes: the batch schedule ``b = {b(t)}`` of the seed's formalism (which training
examples step ``t`` sees) for every ensemble member, and the steps at which weights are
checkpointed. Epoch ``e`` of a schedule with seed ``s`` is the permutation
``numpy.random.default_rng([s, e]).permutation(N)`` cut into ``N // B`` batches (the last
incomplete batch is dropped so every step has the same batch size). Members share the
baseline's schedule unless the perturbation targets it:

* ``shuffle``: member k uses its own seed (``run_seeds(...)["members_schedule"][k]``);
* ``swap``: member k's schedule is the baseline's with ``swaps`` random pairs of batches of
  the first epoch exchanged (a minimal, countable change of the batch order).

Replicate baselines (``perturbation.baselines``) each have their own seed; their copies share
it, so the members fall into contiguous groups with one batch per group (:attr:`Schedule.groups`,
:meth:`Schedule.group_batch`).

How it was checked: ``tests/test_schedule.py`` (each epoch is a permutation, swapped
schedules differ in exactly 2*swaps positions of epoch 0, log-spaced checkpoints are
sorted, unique, start at 0 and end at T).
"""

from __future__ import annotations

import numpy as np


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


class Schedule:
    """Batch indices for every (member, step).

    Args:
        n_train: training set size N.
        batch_size: B.
        epochs: number of epochs.
        seeds: per-member shuffle seeds, length K (member 0 is the baseline).
        swaps: per-member list of (i, j) batch-position pairs of epoch 0 to exchange.
        max_steps: truncate the schedule to this many steps.
    """

    def __init__(self, n_train: int, batch_size: int, epochs: int, seeds: list[int],
                 swaps: list[list[tuple[int, int]]] | None = None, max_steps: int | None = None):
        if batch_size > n_train:
            raise ValueError(f"training.batch_size: {batch_size} exceeds the training set size {n_train}")
        self.n, self.b, self.epochs = int(n_train), int(batch_size), int(epochs)
        self.steps_per_epoch = self.n // self.b
        total = self.steps_per_epoch * self.epochs
        self.n_steps = min(total, int(max_steps)) if max_steps else total
        self.seeds = [int(s) for s in seeds]
        self.swaps = swaps or [[] for _ in seeds]
        self.shared = len(set(self.seeds)) == 1 and all(len(s) == 0 for s in self.swaps)
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        keys = [(sd, tuple(map(tuple, sw))) for sd, sw in zip(self.seeds, self.swaps)]
        starts = [0] + [k for k in range(1, len(keys)) if keys[k] != keys[k - 1]]
        self.groups: list[tuple[int, int]] = [(a, b) for a, b in zip(starts, starts[1:] + [len(keys)])]
        """Contiguous runs ``[(start, stop), ...]`` of members with the same schedule (one group when
        shared; R groups for R replicate baselines whose copies share their baseline's batches)."""

    @property
    def k(self) -> int:
        return len(self.seeds)

    def _epoch_batches(self, member: int, epoch: int) -> np.ndarray:
        key = (member, epoch)
        if key not in self._cache:
            if len(self._cache) > 4 * self.k:
                self._cache.clear()
            order = epoch_order(self.seeds[member], epoch, self.n)[: self.steps_per_epoch * self.b]
            batches = order.reshape(self.steps_per_epoch, self.b)
            if epoch == 0 and self.swaps[member]:
                batches = batches.copy()
                for i, j in self.swaps[member]:
                    batches[[i, j]] = batches[[j, i]]
            self._cache[key] = batches
        return self._cache[key]

    def batch(self, step: int) -> np.ndarray:
        """Indices of step ``step``: ``(B,)`` when shared, else ``(K, B)``."""
        e, i = divmod(int(step), self.steps_per_epoch)
        if self.shared:
            return self._epoch_batches(0, e)[i]
        return np.stack([self._epoch_batches(m, e)[i] for m in range(self.k)])

    def group_batch(self, step: int) -> np.ndarray:
        """Indices of step ``step`` per group of :attr:`groups`: ``(G, B)`` (group g's members
        all see row g; equal to the rows of :meth:`batch` of each group's members)."""
        e, i = divmod(int(step), self.steps_per_epoch)
        return np.stack([self._epoch_batches(a, e)[i] for a, _ in self.groups])


def swap_pairs(seed: int, steps_per_epoch: int, swaps: int) -> list[tuple[int, int]]:
    """``swaps`` disjoint random pairs of batch positions in an epoch."""
    if 2 * swaps > steps_per_epoch:
        raise ValueError(f"perturbation.swaps: {swaps} swaps need {2 * swaps} batches per epoch, "
                         f"have {steps_per_epoch}")
    pos = np.random.default_rng(seed).choice(steps_per_epoch, size=2 * swaps, replace=False)
    return [(int(pos[2 * i]), int(pos[2 * i + 1])) for i in range(swaps)]


def checkpoint_steps(spec: dict, n_steps: int) -> np.ndarray:
    """Steps (0 = initial weights, ``n_steps`` = final) at which weights are saved.

    Modes: ``every`` (every N steps), ``log`` (``count`` log-spaced steps so the first
    epoch is sampled densely), ``steps`` (explicit; clipped to ``n_steps``). 0 and
    ``n_steps`` are always included.
    """
    mode = spec.get("mode", "log")
    if mode == "every":
        s = np.arange(0, n_steps + 1, int(spec["every"]))
    elif mode == "log":
        count = int(spec.get("count", 40))
        s = np.unique(np.round(np.logspace(0, np.log10(max(n_steps, 1)), max(count - 1, 1))).astype(np.int64))
    elif mode == "steps":
        s = np.asarray([v for v in spec["steps"] if v <= n_steps], dtype=np.int64)
    else:
        raise ValueError(f"training.checkpoints.mode: expected every, log or steps, got {mode!r}")
    return np.unique(np.concatenate([[0], s, [n_steps]])).astype(np.int64)
