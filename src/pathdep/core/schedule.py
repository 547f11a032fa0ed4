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

Augmentation (``training.augment: crop_flip``; default ``none``) is part of the schedule:
:func:`augment` pads each image of step ``t``'s batch with ``pad`` = 4 zero pixels per side
(zero of the normalised inputs, i.e. the training set's channel mean: He et al. 2016 pad
mean-subtracted images with zeros), crops a random ``H x W`` window (offsets uniform in
``0..2*pad``) and flips it horizontally with probability 1/2. Its random numbers come from
``numpy.random.default_rng(SeedSequence([schedule_seed, t]))``, so members that share a
schedule seed see the same augmented batch (baseline and copies, unless the perturbation
targets the schedule: ``shuffle`` gives a member its own seed and hence its own crops).
:func:`augment_batch` applies it per row of a grouped / per-member batch with that row's
seed; ``none`` returns the batch object unchanged (training is bit for bit as before).

How it was checked: ``tests/core/test_schedule.py`` (each epoch is a permutation, swapped
schedules differ in exactly 2*swaps positions of epoch 0, log-spaced checkpoints are
sorted, unique, start at 0 and end at T) and ``tests/core/test_augment.py`` (same seed and
step give the same batch, other seeds or steps other batches, each augmented image's
pixels are a sub-multiset of its padded original with every remaining pixel zero, flips
and crops at known offsets, ``none`` is the identity object, training with ``none``
unchanged bit for bit).
"""

from __future__ import annotations

import numpy as np
import torch

AUGMENTATIONS = ("none", "crop_flip")


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


def augment_params(seed: int, t: int, n: int, pad: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets ``dy, dx`` (n,) in ``0..2*pad`` and flips (n,) bool of step ``t``'s batch of ``n``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(t)]))
    off = rng.integers(0, 2 * pad + 1, size=(2, n))
    return off[0], off[1], rng.random(n) < 0.5


def augment(x: torch.Tensor, seed: int, t: int, pad: int = 4) -> torch.Tensor:
    """Random ``pad``-pixel zero-pad crop and horizontal flip of a batch of images.

    Args:
        x: images ``(B, C, H, W)`` (normalised; padding uses 0).
        seed: the schedule seed of the members that see this batch.
        t: the training step.
        pad: pixels of zero padding per side (4: He et al. 2016 for CIFAR).

    Returns:
        ``(B, C, H, W)``: image ``i`` is ``pad(x_i)[:, dy_i:dy_i+H, dx_i:dx_i+W]``, its last axis
        reversed where ``flip_i`` (:func:`augment_params`), on ``x``'s device and dtype.
    """
    if x.ndim != 4:
        raise ValueError(f"training.augment: crop_flip needs images (B, C, H, W), got a batch of shape {tuple(x.shape)}")
    B, _, H, W = x.shape
    dy, dx, flip = augment_params(seed, t, B, pad)
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dev = x.device
    rows = torch.as_tensor(dy, device=dev)[:, None] + torch.arange(H, device=dev)                 # (B, H)
    cols = torch.as_tensor(dx, device=dev)[:, None] + torch.arange(W, device=dev)                 # (B, W)
    cols = torch.where(torch.as_tensor(flip, device=dev)[:, None], cols.flip(1), cols)
    out = xp[torch.arange(B, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def augment_batch(x: torch.Tensor, sched: Schedule, t: int, grouped: bool, kind: str = "none") -> torch.Tensor:
    """``x`` of step ``t`` augmented with each row's schedule seed: ``(B, ...)`` shared (seed of
    member 0), ``(G, B, ...)`` grouped (seed of each group's first member) or ``(K, B, ...)`` per
    member. ``kind`` ``none`` returns ``x`` itself."""
    if kind == "none":
        return x
    if kind not in AUGMENTATIONS:
        raise ValueError(f"training.augment: expected one of {list(AUGMENTATIONS)}, got {kind!r}")
    if sched.shared and not grouped:
        return augment(x, sched.seeds[0], t)
    seeds = [sched.seeds[a] for a, _ in sched.groups] if grouped else sched.seeds
    return torch.stack([augment(x[r], seeds[r], t) for r in range(len(seeds))])
