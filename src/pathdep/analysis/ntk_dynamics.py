"""Finite-width networks of the NTK experiments, trained by the pure update map on
:func:`pathdep.core.loop.run_loop` (seed: ntk-gradient-descent-wide-networks).

What it computes (tensors in, arrays out; :mod:`pathdep.stages.ntk` reads the dataset and
writes the files):

* inputs and targets: :func:`normalize_inputs` (average-pool images, centre each input and
  scale it to ``|x|^2 = d``, so ``x x^T / d`` has unit diagonal), :func:`onehot`,
  :func:`pm1` (a scalar +-1 target: even vs odd class); :func:`section_seeds` (one seed per
  network from ``SeedSequence([seed, sum(ord(name))])``).
* networks: :func:`ntk_mlp` (an NTK-parameterised MLP, its flat parameters and
  ``apply``) and :func:`empirical_nngp` (``sigma_w^2 phi phi^T / n + sigma_b^2`` of the
  read-out layer's inputs).
* training, every loop on :func:`~pathdep.core.loop.run_loop` with
  :func:`~pathdep.core.dynamics.make_step`: :func:`gradient_descent` (full batch, loss at
  every step), :func:`width_point` (4a: relative change of parameters, NTK and NNGP from
  init to the end of training), :func:`linearization_sweep` (4b: a network and its
  linearisation under the same optimiser and batches, RMS logit deviation on test inputs at
  the checkpoints), :func:`ensemble_and_single` (4c: an ensemble (vmapped update map) and
  one wide network, outputs on test inputs at the checkpoints), :func:`lr_sweep` (4d:
  full-batch GD at learning rates ``factor * 2 / lambda_0``).
* summaries: :func:`catapult_phases` (4d: divergence, catapult and the measured
  ``eta_crit`` bracket from the loss curves), :func:`two_scalar_sweep` (the seed's
  ``(f, lambda)`` map on the same grid), :func:`last_complete` and :func:`mean_std` (4e).

How it was checked: tests/analysis/test_ntk_dynamics.py (gradient descent through the loop
equals a hand-written loop bit for bit; a linearised network at its init equals the
network; the catapult phases of hand-made loss curves) and tests/stages/test_ntk.py (every
section on tiny settings, with the invariants of its experiment).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from pathdep.analysis import ntk as K
from pathdep.core.dynamics import loss_value, make_ensemble_step, make_step
from pathdep.core.init import init_params
from pathdep.core.loop import LoopSink, run_loop
from pathdep.core.models import MLP, Layout, make_apply
from pathdep.core.optim import optimizer_from_config


# ----------------------------------------------------------------------------- inputs, targets, networks
def normalize_inputs(x: Tensor, pool: int) -> Tensor:
    """``(N, d)`` inputs: images ``(N, C, H, W)`` average-pooled by ``pool``, flattened,
    centred per input and scaled to ``|x|^2 = d`` (computed in the dtype of ``x``)."""
    if x.dim() == 4 and pool > 1:
        x = torch.nn.functional.avg_pool2d(x, int(pool))
    x = x.reshape(len(x), -1)
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12) * math.sqrt(x.shape[1])


def onehot(y: Tensor, c: int, dtype) -> Tensor:
    """``(N, c)`` one-hot targets of integer labels."""
    return torch.nn.functional.one_hot(y.long(), c).to(dtype)


def pm1(y: Tensor, dtype) -> Tensor:
    """``(N, 1)`` scalar targets: +1 for an even class, -1 for an odd one."""
    return (2.0 * (y.long() % 2 == 0).to(dtype) - 1.0).unsqueeze(-1)


def section_seeds(seed: int, name: str, n: int) -> list[int]:
    """``n`` seeds of a section: ``SeedSequence([seed, sum(ord(c) for c in name)]).spawn(n)``."""
    ss = np.random.SeedSequence([int(seed), sum(map(ord, name))])
    return [int(s.generate_state(1, dtype=np.uint32)[0]) for s in ss.spawn(n)]


def ntk_mlp(d: int, width: int, depth: int, out: int, activation: str, sigma_w: float, sigma_b: float,
            seed: int, dtype) -> tuple[MLP, Layout, Callable, Tensor]:
    """An NTK-parameterised MLP ``d -> width x depth -> out`` with bias.

    Returns:
        ``(module, layout, apply, w0)``: ``apply(w (P,), x) -> (N, out)`` and the initial
        flat parameters (scheme ``default`` with ``seed``).
    """
    m = MLP(d, [int(width)] * int(depth), out, activation, True, "ntk", sigma_w, sigma_b).to(dtype)
    lay = Layout.from_module(m)
    return m, lay, make_apply(m, lay), init_params(m, lay, "default", int(seed))


def empirical_nngp(module: MLP, w: Tensor, x: Tensor, sigma_w: float, sigma_b: float) -> Tensor:
    """Empirical NNGP ``sigma_w^2 phi(x) phi(x)^T / n + sigma_b^2`` ``(N, N)`` of the
    read-out layer's inputs ``phi`` (width ``n``) at parameters ``w`` (loaded into ``module``)."""
    module.load_state_dict(Layout.from_module(module).unflatten(w.detach()))
    with torch.no_grad():
        f = module.features(x)
    return sigma_w ** 2 * f @ f.T / f.shape[1] + sigma_b ** 2


def relative_change(a: Tensor, b: Tensor) -> float:
    """``|b - a|_F / |a|_F``."""
    return float((b - a).norm() / a.norm())


def log_checkpoints(steps: int, n: int) -> np.ndarray:
    """Up to ``n`` distinct steps in ``[0, steps]``, log-spaced (``geomspace(1, steps + 1) - 1``)."""
    return np.unique(np.round(np.geomspace(1, steps + 1, int(n)) - 1).astype(int))


def linear_checkpoints(steps: int, n: int) -> np.ndarray:
    """Up to ``n`` distinct steps in ``[0, steps]``, evenly spaced."""
    return np.unique(np.round(np.linspace(0, steps, int(n))).astype(int))


def batch_order(n: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """Sample indices of ``steps`` mini-batches: concatenated permutations of ``range(n)``
    (epochs without replacement); batch ``t`` is ``order[t B:(t + 1) B]``."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(n) for _ in range(steps * batch_size // n + 1)])


def kernel_theory(x: Tensor, xt: Tensor, Y: Tensor, times: np.ndarray, lr_factor: float, depth: int,
                  sigma_w: float, sigma_b: float, activation: str) -> tuple[dict, float, float]:
    """4c theory: analytic NTK / NNGP on training and test inputs, ``lambda_0``, the
    learning rate ``lr_factor * 2 / lambda_0`` and :func:`pathdep.analysis.ntk.mse_dynamics`.

    Returns:
        ``(prediction {mean, var, ...} at ``times``, lambda_0, lr)``.
    """
    D = x.shape[0]
    nngp, th = K.analytic_kernels(torch.cat([x, xt]).numpy(), depth=int(depth), sigma_w=sigma_w,
                                  sigma_b=sigma_b, activation=activation)
    lam0 = K.lambda_max(torch.as_tensor(th[:D, :D]))
    lr = float(lr_factor) * K.eta_crit(lam0)
    pred = K.mse_dynamics(th[:D, :D], th[D:, :D], Y.numpy(), times, lr, k_XX=nngp[:D, :D], k_xX=nngp[D:, :D],
                          k_xx=nngp[D:, D:])
    return pred, lam0, lr


def own_linear_prediction(apply: Callable, w: Tensor, x: Tensor, xt: Tensor, y: Tensor, times: np.ndarray,
                          lr: float) -> dict:
    """A network's own linear model: :func:`pathdep.analysis.ntk.mse_dynamics` with its
    empirical NTK at ``w`` and its outputs ``f_0`` (scalar output, targets ``y (D,)``)."""
    D = x.shape[0]
    xall = torch.cat([x, xt])
    th = K.empirical_ntk(apply, w, xall, trace=True).numpy()
    with torch.no_grad():
        f0 = apply(w, xall)[:, 0].numpy()
    return K.mse_dynamics(th[:D, :D], th[D:, :D], y.numpy(), times, lr, f0_X=f0[:D], f0_x=f0[D:])


def rms_output(apply: Callable, w: Tensor, x: Tensor) -> float:
    """Root mean square of the outputs ``apply(w, x)``."""
    with torch.no_grad():
        return float(np.sqrt(np.mean(apply(w, x).numpy() ** 2)))


# ----------------------------------------------------------------------------- loops
class _Losses(LoopSink):
    def __init__(self, steps: int):
        self.losses = np.empty(steps + 1)

    def record(self, t: int, out) -> None:
        self.losses[t] = float(out)


def _sgd(lr: float, momentum: float = 0.0):
    return optimizer_from_config({"name": "sgd", "lr": float(lr), "momentum": float(momentum)})


def gradient_descent(apply: Callable, w: Tensor, x: Tensor, y: Tensor, lr: float, steps: int,
                     loss: str = "mse") -> tuple[Tensor, np.ndarray]:
    """Full-batch gradient descent through the pure update map on :func:`run_loop`.

    Returns:
        ``(w after steps, losses (steps + 1,))``: the loss before each step, then at the end.
    """
    opt, hp = _sgd(lr)
    step = make_step(apply, loss, opt)
    hpt = {k: torch.tensor(v, dtype=w.dtype) for k, v in hp.items()}

    def one(state, batch):
        w2, s2, lv = step(state[0], state[1], batch[0], batch[1], hpt)
        return (w2, s2), lv

    sink = _Losses(steps)
    w, _ = run_loop(one, (w, opt.init(w)), lambda t: (x, y), steps, sink)
    sink.losses[steps] = float(loss_value(loss, apply(w, x), y))
    return w, sink.losses


def width_point(x: Tensor, xp: Tensor, Y: Tensor, width: int, depth: int, seed: int, lr: float, steps: int,
                net: dict) -> dict:
    """4a at one width: full-batch GD on MSE, change of parameters, traced NTK (on ``xp``)
    and NNGP from init to the end.

    Args:
        x: ``(D, d)`` training inputs; ``xp``: probe inputs; ``Y``: ``(D, C)`` targets.
        net: ``activation``, ``sigma_w``, ``sigma_b``, ``dtype`` of :func:`ntk_mlp`.

    Returns:
        dict with dparams, dntk, dnngp, lambda0 (top eigenvalue of the traced NTK / C / D),
        lr, loss0, loss_end, seconds.
    """
    t0 = time.perf_counter()
    C = Y.shape[1]
    m, _, apply, w0 = ntk_mlp(x.shape[1], width, depth, C, seed=seed, **net)
    th0 = K.empirical_ntk(apply, w0, xp, trace=True)
    thx = K.empirical_ntk(apply, w0, x, trace=True)
    lam0 = K.lambda_max(thx / C)  # traced kernel / O = the per-output kernel at large width
    k0 = empirical_nngp(m, w0, xp, net["sigma_w"], net["sigma_b"])
    w1, losses = gradient_descent(apply, w0.clone(), x, Y, lr, steps)
    th1 = K.empirical_ntk(apply, w1, xp, trace=True)
    k1 = empirical_nngp(m, w1, xp, net["sigma_w"], net["sigma_b"])
    return {"dparams": relative_change(w0, w1), "dntk": relative_change(th0, th1),
            "dnngp": relative_change(k0, k1), "lambda0": lam0, "lr": lr, "loss0": losses[0],
            "loss_end": losses[-1], "seconds": time.perf_counter() - t0}


class _Deviation(LoopSink):
    """At each checkpoint: RMS deviation of the network's and the linearisation's test
    outputs, absolute and relative to the network's own change since init."""

    def __init__(self, apply, f_lin, w0, xt, n):
        self.apply, self.f_lin, self.w0, self.xt = apply, f_lin, w0, xt
        self.dev, self.rel = np.full(n, np.nan), np.full(n, np.nan)

    def checkpoint(self, index: int, t: int, state) -> None:
        (w_net, w_lin), _ = state
        with torch.no_grad():
            o_net, o_lin = self.apply(w_net, self.xt), self.f_lin(w_lin, self.xt)
        self.dev[index] = float((o_net - o_lin).pow(2).mean().sqrt())
        moved = float((o_net - self.apply(self.w0, self.xt).detach()).pow(2).mean().sqrt())
        self.rel[index] = self.dev[index] / max(moved, 1e-30)


def _network_vs_linearized(apply, w0, batch, xt, yt, loss, opt, hpt, steps, checkpoints):
    f_lin = K.linearize(apply, w0)
    steppers = (make_step(apply, loss, opt), make_step(f_lin, loss, opt))

    def one(state, b):
        ws, ss = state
        (wa, sa, _), (wb, sb, _) = (steppers[k](ws[k], ss[k], b[0], b[1], hpt) for k in range(2))
        return ((wa, wb), (sa, sb)), None

    sink = _Deviation(apply, f_lin, w0, xt, len(checkpoints))
    (w_net, w_lin), _ = run_loop(one, ((w0.clone(), w0.clone()), (opt.init(w0), opt.init(w0))), batch, steps,
                                 sink, checkpoints=checkpoints)
    with torch.no_grad():
        acc = [float((apply(w_net, xt).argmax(1) == yt).double().mean()),
               float((f_lin(w_lin, xt).argmax(1) == yt).double().mean())]
    return sink.dev, sink.rel, acc


def linearization_sweep(x: Tensor, y: Tensor, xt: Tensor, yt: Tensor, n_classes: int, widths: Sequence[int],
                        seeds: Sequence[int], losses: Sequence[str], lrs: dict, momentum: float, depth: int,
                        steps: int, batch_size: int, order: np.ndarray, checkpoints: np.ndarray,
                        net: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4b: for every loss and width, a network and its linearisation ``f_lin`` trained by
    SGD with momentum on the same batches (``order[t B:(t + 1) B]`` at step ``t``).

    Returns:
        ``logit_deviation`` and ``relative_deviation`` ``(loss, width, checkpoint)``, and
        ``test_accuracy`` ``(loss, width, 2)`` (network, linearised).
    """
    dt = net["dtype"]
    dev = np.full((len(losses), len(widths), len(checkpoints)), np.nan)
    rel = np.full_like(dev, np.nan)
    acc = np.full((len(losses), len(widths), 2), np.nan)
    for i, loss in enumerate(losses):
        target = (lambda v: v.long()) if loss == "cross_entropy" else (lambda v: onehot(v, n_classes, dt))

        def batch(t):
            b = torch.as_tensor(order[t * batch_size:(t + 1) * batch_size])
            return x[b], target(y[b])

        opt, hp = _sgd(lrs[loss], momentum)
        hpt = {k: torch.tensor(v, dtype=dt) for k, v in hp.items()}
        for j, (width, seed) in enumerate(zip(widths, seeds)):
            _, _, apply, w0 = ntk_mlp(x.shape[1], width, depth, n_classes, seed=seed, **net)
            dev[i, j], rel[i, j], acc[i, j] = _network_vs_linearized(apply, w0, batch, xt, yt, loss, opt, hpt,
                                                                     steps, checkpoints)
    return dev, rel, acc


class _Outputs(LoopSink):
    def __init__(self, vapply, apply1, xt, n_ck, members):
        self.vapply, self.apply1, self.xt = vapply, apply1, xt
        self.ens, self.single = np.empty((n_ck, members, len(xt))), np.empty((n_ck, len(xt)))

    def checkpoint(self, index: int, t: int, state) -> None:
        W, _, w1, _ = state
        with torch.no_grad():
            self.ens[index] = self.vapply(W, self.xt)[..., 0].numpy()
            self.single[index] = self.apply1(w1, self.xt)[:, 0].numpy()


def ensemble_and_single(apply: Callable, W: Tensor, apply1: Callable, w1: Tensor, x: Tensor, Y: Tensor,
                        xt: Tensor, lr: float, steps: int, checkpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4c: full-batch GD on MSE of an ensemble ``W (K, P)`` (one vmapped update map) and of
    one network ``w1`` side by side; their scalar outputs on ``xt`` at the checkpoints.

    Returns:
        ``(ensemble (checkpoint, K, N_test), single (checkpoint, N_test))``.
    """
    Kn, dt = W.shape[0], W.dtype
    opt, hp = _sgd(lr)
    ens = make_ensemble_step(make_step(apply, "mse", opt))
    step1 = make_step(apply1, "mse", opt)
    hpt = {k: torch.full((Kn,), v, dtype=dt) for k, v in hp.items()}
    hp1 = {k: torch.tensor(v, dtype=dt) for k, v in hp.items()}

    def one(state, b):
        W_, S_, w_, s_ = state
        W_, S_, _ = ens(W_, S_, x, Y, hpt)
        w_, s_, _ = step1(w_, s_, x, Y, hp1)
        return (W_, S_, w_, s_), None

    states = tuple(torch.stack([t_] * Kn) for t_ in opt.init(W[0]))
    sink = _Outputs(torch.vmap(apply, in_dims=(0, None)), apply1, xt, len(checkpoints), Kn)
    run_loop(one, (W, states, w1, opt.init(w1)), lambda t: None, steps, sink, checkpoints=checkpoints)
    return sink.ens, sink.single


def lr_sweep(apply: Callable, w0: Tensor, x: Tensor, Y: Tensor, lam0: float, factors: np.ndarray,
             steps: int) -> tuple[np.ndarray, np.ndarray]:
    """4d: full-batch GD on MSE at ``eta = factor * 2 / lambda_0`` for every factor.

    Returns:
        ``loss (factor, steps + 1)`` (inf after an overflow, NaN rows where the update map
        raised) and the top NTK eigenvalue at the end ``(factor,)`` (NaN unless the final
        loss is finite and below 1e6).
    """
    loss = np.full((len(factors), steps + 1), np.nan)
    lam_end = np.full(len(factors), np.nan)
    for i, fac in enumerate(factors):
        try:
            w, ls = gradient_descent(apply, w0.clone(), x, Y, fac * 2.0 / lam0, steps)
        except RuntimeError:
            continue
        ls[~np.isfinite(ls)] = np.inf
        loss[i] = ls
        if np.isfinite(ls[-1]) and ls[-1] < 1e6:
            lam_end[i] = K.lambda_max(K.empirical_ntk(apply, w, x, trace=True))
    return loss, lam_end


# ----------------------------------------------------------------------------- summaries
def catapult_phases(loss: np.ndarray, factors: np.ndarray) -> dict:
    """Phases of the learning-rate sweep from its loss curves ``(factor, steps + 1)``.

    Returns:
        dict with ``diverged`` (the final loss is not finite or not below the initial one),
        ``catapult`` (not diverged and the peak exceeds 1.5 x the initial loss),
        ``loss_rose`` (the loss rises at some step, relative tolerance 1e-9), the first
        catapult and divergence factors (NaN if none) and the measured ``eta_crit`` bracket:
        the largest factor whose loss never rises and the smallest one whose loss does.
    """
    peak = np.nanmax(np.where(np.isfinite(loss), loss, np.inf), axis=1)
    diverged = ~(np.isfinite(loss[:, -1]) & (loss[:, -1] < loss[:, 0]))
    catapulted = (~diverged) & (peak > 1.5 * loss[:, 0])
    with np.errstate(invalid="ignore"):
        rose = np.array([bool(np.any(~np.isfinite(r)) or np.any(np.diff(r) > 1e-9 * np.abs(r[:-1])))
                         for r in loss])
    first = int(np.argmax(rose)) if rose.any() else len(factors)
    return {"diverged": diverged, "catapult": catapulted, "loss_rose": rose,
            "onset": factors[np.argmax(catapulted)] if catapulted.any() else np.nan,
            "divergence": factors[np.argmax(diverged)] if diverged.any() else np.nan,
            "crit_lo": float(factors[first - 1]) if first > 0 else np.nan,
            "crit_hi": float(factors[first]) if first < len(factors) else np.nan}


def two_scalar_sweep(f_init: float, factors: np.ndarray, width: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pathdep.analysis.ntk.catapult_map` with ``lambda_0 = 1`` at ``eta = 2 factor``.

    Returns:
        ``(f, lambda)`` each ``(factor, steps + 1)``.
    """
    f_map = np.full((len(factors), steps + 1), np.nan)
    l_map = np.full_like(f_map, np.nan)
    for i, fac in enumerate(factors):
        f_map[i], l_map[i] = K.catapult_map(f_init, 1.0, 2.0 * fac, float(width), steps)
    return f_map, l_map


def last_complete(values: np.ndarray) -> int:
    """Index of the last column of ``values (K, C)`` finite for every row (-1 if none)."""
    return int(np.nanmax(np.where(np.isfinite(values).all(0), np.arange(values.shape[1]), -1)))


def at_last_complete(values: np.ndarray) -> np.ndarray:
    """Column :func:`last_complete` of ``values (K, C)`` (all NaN if no column is complete)."""
    i = last_complete(values)
    return values[:, i] if i >= 0 else np.full(values.shape[0], np.nan)


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """NaN-ignoring mean and standard deviation (``ddof = 0``)."""
    return float(np.nanmean(values)), float(np.nanstd(values))


def kernel_change(apply: Callable, weights, x: Tensor, max_mb: float = 256.0,
                  base: np.ndarray | None = None, buffers=None, apply_b: Callable | None = None
                  ) -> tuple[np.ndarray, dict]:
    """Relative Frobenius distance of each perturbed member's empirical NTK from its own
    baseline's at every checkpoint: ``|Theta_k - Theta_b|_F / |Theta_b|_F`` of the full
    ``(N, N, O, O)`` kernels on the inputs ``x``.

    Args:
        apply: the run's ``apply(w, x)``. weights: iterable of ``(K, P)`` tensors, one per
            checkpoint. x: ``(N, ...)`` inputs. max_mb: the NTK's memory budget.
        base: ``(K,)`` own-baseline rows (:func:`pathdep.analysis.replicates.own_baseline`);
            default 0 (one baseline).
        buffers: for models with BatchNorm statistics, an iterable of ``(K, Q)`` tensors
            aligned with ``weights``; the kernel is then that of the eval-mode function with
            each member's own statistics, ``apply_b(w, b_k, x, False)``, differentiated in
            the parameters ``w`` only (the statistics are held fixed).
        apply_b: ``apply_b(w, b, x, train) -> (out, b_new)`` (with ``buffers``).

    Returns:
        ``((C, K) distances, NaN for the baselines' own rows and where a member's weights are
        not finite; the plan of the first kernel)``.
    """
    rows, plan = [], None
    Bs = iter(buffers) if buffers is not None else None
    for W in weights:
        B = next(Bs) if Bs is not None else None

        def f(k: int) -> Callable:
            if B is None:
                return apply
            return lambda w, xx, b=B[k]: apply_b(w, b, xx, False)[0]

        b = np.zeros(W.shape[0], dtype=int) if base is None else np.asarray(base, dtype=int)
        row = np.full(W.shape[0], np.nan)
        for r in np.unique(b):
            if not bool(torch.isfinite(W[r]).all()):
                continue
            th0, p = K.empirical_ntk(f(r), W[r], x, max_jacobian_mb=max_mb, return_plan=True)
            plan = plan or p
            n0 = float(th0.double().norm())
            for k in np.flatnonzero((b == r) & (np.arange(len(b)) != r)):
                if bool(torch.isfinite(W[k]).all()):
                    thk = K.empirical_ntk(f(k), W[k], x, max_jacobian_mb=max_mb)
                    row[k] = float((thk - th0).double().norm()) / n0
        rows.append(row)
    return np.stack(rows), plan or {}
