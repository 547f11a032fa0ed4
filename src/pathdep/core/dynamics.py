"""The pure update map and its vectorised ensemble form (DESIGN invariant 2).

What it computes: ``step(w, state, x, y, hp) -> (w_new, state_new, loss)``, one optimiser
update of a network whose parameters are the flat vector ``w`` ``(P,)`` on the batch
``(x, y)`` with hyperparameters ``hp`` (a dict of 0-d tensors). It is a pure function of
its arguments, so the same code is

* vmapped over ensemble members (:func:`make_ensemble_step`, invariant 1),
* differentiated with ``torch.func.jvp`` for tangent maps (Lyapunov spectra), and
* replayed from a saved state (preemption-safe resume gives bit-identical results).

The losses themselves are defined once, in :mod:`pathdep.core.losses` (``loss_value`` and
``task_loss`` are importable from here too).

How it was checked: ``tests/test_dynamics.py`` compares the vmapped ensemble with K
sequential ``torch.optim`` runs in float64 (agreement ~1e-15), and float32 runs to
~1e-4 (summation order; DESIGN.md).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.func import grad_and_value

from pathdep.core.evaluate import ensemble_forward
from pathdep.core.losses import LOSSES, loss_value, sample_losses, task_loss

__all__ = ["LOSSES", "loss_value", "task_loss", "make_loss", "make_step", "make_ensemble_step",
           "ensemble_optimizer_state", "make_ensemble_eval"]

def make_loss(apply: Callable, loss: str) -> Callable:
    """``L(w, x, y) -> scalar`` for ``apply(w, x) -> outputs``."""

    def L(w, x, y):
        return loss_value(loss, apply(w, x), y)

    return L


def make_step(apply: Callable, loss: str, optimizer) -> Callable:
    """The pure update map of one network.

    Args:
        apply: ``apply(w, x) -> outputs`` (see :func:`pathdep.core.models.make_apply`).
        loss: ``"cross_entropy"`` or ``"mse"``.
        optimizer: a :class:`pathdep.core.optim.Optimizer`.

    Returns:
        ``step(w, state, x, y, hp) -> (w_new, state_new, batch_loss)``, where
        ``batch_loss`` is the loss at ``w`` (before the update).
    """
    gv = grad_and_value(make_loss(apply, loss))

    def step(w, state, x, y, hp):
        g, value = gv(w, x, y)
        w_new, state_new = optimizer.update(w, g, state, hp)
        return w_new, state_new, value

    return step


def make_ensemble_step(step: Callable, shared_batch: bool = True) -> Callable:
    """Vectorise ``step`` over a leading member axis.

    Args:
        step: the single-network update map from :func:`make_step`.
        shared_batch: all members see the same batch ``x (B, ...)``; otherwise
            ``x`` is ``(K, B, ...)`` (schedule perturbations).

    Returns:
        ``ens_step(W (K,P), states (tuple of (K,...)), x, y, hp {name: (K,)})``.
    """
    b = None if shared_batch else 0
    return torch.vmap(step, in_dims=(0, 0, b, b, 0))


def ensemble_optimizer_state(optimizer, W: torch.Tensor) -> tuple:
    """The optimiser's initial state of every member, ``optimizer.init`` vmapped over ``W (K, P)``."""
    return torch.vmap(optimizer.init)(W)


def make_ensemble_eval(apply: Callable, loss: str) -> Callable:
    """``eval(W (K,P), x (N,...), y) -> (outputs (K,N,C), losses (K,))`` without gradients.

    The losses are the means over the N samples of :func:`pathdep.core.losses.sample_losses`
    (None when ``y`` is None); for chunked evaluation over a data set use
    :func:`pathdep.core.evaluate.evaluate`.
    """
    forward = ensemble_forward(apply)

    def ev(W, x, y=None):
        out = forward(W, x)
        if y is None:
            return out, None
        with torch.no_grad():
            return out, sample_losses(loss, out, y).mean(-1)

    return ev
