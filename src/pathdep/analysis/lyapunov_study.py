"""Weight dynamics of 2-2-1 networks: early Lyapunov indicators predict the final loss.

What it computes: a reproduction of the study of Sharafi, Martin and Hallerberg, "On the
weight dynamics of learning networks", Phys. Rev. E 111, 054208 (2025), arXiv 2405.00743.
For each activation (tanh, ReLU) and each initialisation range ``U(-a, a)`` it trains
``n_networks`` 2-2-1 networks (9 parameters with biases) *together*, as one vectorised
program (``torch.vmap`` over networks), by full-batch gradient descent. For the first
``lyap_steps`` steps it forms the full 9x9 Jacobian of every network's update map
``w -> w - lr grad L(w)`` (in closed form, :class:`pathdep.analysis.study_model.ClosedForm`, equal to the vmapped
``torch.func.jacfwd`` to 1e-12; with ``backend: numba`` in the compiled per-network
kernels of :mod:`pathdep.analysis.study_kernels`, fused with the QR; through
:func:`pathdep.analysis.lyapunov_clv.clv_batched`),
and records

* finite-time Lyapunov exponents (FTLEs) over the window of ``ftle_window`` steps ending at
  each indicator time ``t`` (``ftle``) and from step 0 to ``t`` (``ftle_cum``), from a
  Benettin run started at initialisation with a random orthonormal basis;
* covariant Lyapunov vectors at each indicator time by Ginelli's method (forward from
  step 0, backward from ``t + warmup_backward``), their growth rates and the angles
  between all 36 pairs (``clv_angle``; ``min_clv_angle``);
* the loss at each indicator time, on a log-spaced set of checkpoints and at the end.

The remaining ``steps - lyap_steps`` steps are plain batched gradient descent. A run
*failed* when its final loss exceeds ``threshold``. :func:`pathdep.analysis.study_roc.roc_by_time` then scores a
Gaussian naive Bayes classifier (``sklearn.naive_bayes.GaussianNB``) that predicts failure
from the indicators at time ``t`` (stratified k-fold cross-validation, out-of-fold
probabilities), giving ROC curves and the AUC as a function of ``t``, as in the paper.

The task (the paper's task details were not available; DESIGN / methods-notes): XOR as a
regression, inputs ``(+-1, +-1)``, targets ``1`` if the signs differ else ``0``, loss
``1/2 mean_i (f(x_i) - y_i)^2`` over the 4 points, lr 0.3. XOR is the classic task of the
2-2-1 network (the smallest network that solves it), and its outcome is bimodal: runs
either reach a global minimum or stay on a plateau / in a local minimum: with the full
configuration the successful runs end below 5e-4 (almost all below 1e-8) and the failed
ones above 1.5e-3 (mostly 1e-2 .. 1e-1; a few tanh runs are still leaving a plateau at
step 3000), so ``threshold = 1e-3`` sits in the gap of the histogram. The two
initialisation ranges are U(-0.5, 0.5) and U(-2, 2) for all 9 parameters. tanh fails in
about 5% and 25% of the runs; ReLU in about 65-75%, above the 5-50% aimed for: with two
ReLU hidden units XOR is solved only when the two units face opposite half-planes, and
every alternative regression task tried (sums of ReLU or tanh ridges on a 5x5 grid,
|x1 + x2|, x1 x2, XOR with 0/1 inputs or +-1 targets) either left ReLU at >= 50% failures
too or removed the failures of tanh, so XOR is kept for both (one task, comparable).

Measured with config/lyapunov_full.yaml (8000 networks per combination, 3000 steps, Jacobians
and CLVs in the first 250, seed 0, float64, ``backend: numba``): 49 s in total on one
thread of a 2-core CPU (15 s for the first combination, which includes loading the
compiled kernels; 10-14 s for the others); the torch path took 232 s. Failure fractions
tanh U(-0.5,0.5) 0.0425, tanh U(-2,2) 0.2308, ReLU U(-0.5,0.5) 0.6548, ReLU U(-2,2)
0.7310 (identical with both backends: they depend only on the initial weights).
Cross-validated AUC at t = 20 / 50 / 100 / 200 steps (loss alone | FTLE window | all =
log loss + FTLEs + CLV angles): tanh U(-0.5,0.5) .55/.62/.72/.93 | .55/.62/.80/.96 |
.57/.67/.85/.96; tanh U(-2,2) .68/.78/.86/.91 | .70/.80/.87/.92 | .75/.83/.88/.90; ReLU
U(-0.5,0.5) .58/.84/.98/1.0 | .77/.94/1.0/1.0 | .78/.93/1.0/1.0; ReLU U(-2,2)
.79/.93/.98/1.0 | .87/.95/.98/.99 | .90/.97/.99/1.0. The FTLEs predict failure earlier
than the loss does; the minimum CLV angle alone is the weakest indicator (AUC
0.52-0.76). Every network gets its own random initial tangent basis (and backward start
``C``): with one basis shared by all networks (tried for speed) the basis-dependent early
indicators of structurally similar networks (dead ReLU units) coincided and the AUCs of
the CLV angles rose by up to 0.19: an artefact of the shared draw, not a signal.

Settings: the ``lyapunov.study`` block, resolved by
:func:`pathdep.config.lyapunov.resolve_study` (defaults
:data:`pathdep.config.lyapunov.STUDY_DEFAULTS`) before :func:`run_study` is called.

How it was checked (tests/analysis/test_lyapunov_study.py, float64): a 200-network study
has the documented dims and finite values; the exponents of networks that reach the
minimum are <= ~0 at late times; the same seed gives identical outputs.
"""

from __future__ import annotations

import json
import time
from typing import Callable

import numpy as np
import torch
import xarray as xr

from pathdep.analysis.lyapunov_clv import clv_angles, clv_batched
from pathdep.analysis.study_model import PAPER, TASKS, ClosedForm, make_update_map
from pathdep.core.models import Layout

__all__ = ["run_study"]


def _param_names(layout: Layout) -> list[str]:
    out = []
    for n, sh in zip(layout.names, layout.shapes):
        for idx in np.ndindex(*sh):
            out.append(f"{n}[{','.join(str(i) for i in idx)}]")
    return out


def _checkpoints(steps: int, n: int) -> np.ndarray:
    c = np.unique(np.round(np.geomspace(1, steps, n)).astype(int))
    return np.unique(np.concatenate([[0], c, [steps]]))


def _seed_int(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def _lyapunov_window(cfg: dict, F: Callable, cf: ClosedForm, W0: torch.Tensor, seed: int):
    """CLVs over the first ``lyap_steps`` steps, and the losses on the way.

    Returns:
        ``(clv result, loss (B, lyap_steps + 1))``: the loss at steps ``0 .. lyap_steps``.
    """
    losses = []  # L(W_t), t = 0 .. L-1, from the fused steps

    def push_qr(X, Q, t):
        Y, Qn, R, loss_t = cf.push_qr(X, Q)
        losses.append(loss_t)
        return Y, Qn, R

    c = clv_batched(F, W0, cfg["lyap_steps"], k=W0.shape[-1], times=cfg["times"],
                    warmup_backward=cfg["warmup_backward"], seed=seed,
                    mode="jacobian", max_buffer=cfg["max_buffer"], running=False,
                    push=cf.push, qr=cf.qr, solve=cf.solve, push_qr=push_qr)
    losses.append(cf.loss(c.forward.x))
    return c, torch.stack(losses, dim=1)


def _loss_curve(cf: ClosedForm, W: torch.Tensor, loss_lyap: torch.Tensor, steps: int, L: int,
                n_checkpoints: int):
    """Plain gradient descent from step ``L`` to ``steps``, the loss at log-spaced checkpoints.

    Returns:
        ``(checkpoints, loss (B, n), final weights, final loss (B,) with inf for NaN)``.
    """
    ckpt = _checkpoints(steps, n_checkpoints)
    loss_ckpt = np.full((W.shape[0], len(ckpt)), np.nan)
    early = ckpt <= L
    loss_ckpt[:, early] = loss_lyap[:, ckpt[early]].numpy()
    s_prev = L
    with torch.no_grad():
        for j, s in enumerate(ckpt):
            if s > L:  # plain gradient descent from checkpoint to checkpoint
                W = cf.step(W, int(s - s_prev))
                s_prev = s
                loss_ckpt[:, j] = cf.loss(W).numpy()
    final = loss_ckpt[:, -1].copy()
    final[~np.isfinite(final)] = np.inf
    return ckpt, loss_ckpt, W, final


def _exponent_indicators(log_r: torch.Tensor, V: torch.Tensor, times: list[int], w_ftle: int,
                         late_window: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """FTLEs over the window ending at each time and from step 0, over the last
    ``late_window`` steps, and the CLV angles of all pairs, from ``log_r (B, L, 9)`` and
    ``V (B, n_t, 9, 9)``."""
    L, n = log_r.shape[1], V.shape[-1]
    tt = torch.tensor(times)
    csum = torch.cat([torch.zeros_like(log_r[:, :1]), torch.cumsum(log_r, dim=1)], dim=1)
    ang = clv_angles(V)  # (B, n_t, 9, 9)
    iu = torch.triu_indices(n, n, offset=1)
    pairs = ang[..., iu[0], iu[1]]  # (B, n_t, 36)
    return {"ftle": (csum[:, tt] - csum[:, tt - w_ftle]) / w_ftle,  # (B, n_t, 9)
            "ftle_cum": csum[:, tt] / tt.to(dtype).unsqueeze(-1),
            "ftle_end": (csum[:, L] - csum[:, L - late_window]) / late_window,
            "clv_angle": pairs, "min_clv_angle": pairs.min(dim=-1).values}


def _run_combination(cfg: dict, activation: str, a: float, ss: np.random.SeedSequence,
                     dtype: torch.dtype) -> dict[str, np.ndarray]:
    """Train ``n_networks`` networks of one (activation, range) as one vmapped program."""
    B, L = cfg["n_networks"], cfg["lyap_steps"]
    F, _, layout = make_update_map(activation, cfg["task"], float(cfg["lr"]), dtype)
    ss_init, ss_lyap = ss.spawn(2)
    rng = np.random.default_rng(ss_init)
    W0 = torch.as_tensor(rng.uniform(-a, a, size=(B, layout.n_params)), dtype=dtype)
    # closed-form step, loss and 9x9 Jacobian, batched over networks (== vmapped jacfwd
    # of F to 1e-12, tests/analysis/test_study_model.py)
    cf = ClosedForm(activation, cfg["task"], float(cfg["lr"]), dtype, backend=cfg["backend"],
                    threads=cfg["threads"] or torch.get_num_threads())
    c, loss_lyap = _lyapunov_window(cfg, F, cf, W0, _seed_int(ss_lyap))
    ckpt, loss_ckpt, W, final = _loss_curve(cf, c.forward.x, loss_lyap, cfg["steps"], L,
                                            cfg["n_checkpoints"])
    ind = _exponent_indicators(c.forward.log_r, c.V, cfg["times"], cfg["ftle_window"],
                               cfg["late_window"], dtype)
    return {
        "final_loss": final,
        "loss": loss_lyap[:, torch.tensor(cfg["times"])].numpy(),
        "loss_curve": loss_ckpt,
        **{name: v.numpy() for name, v in ind.items()},
        "clv_growth": c.growth.numpy(),
        "w_init": W0.numpy(),
        "w_final": W.numpy(),
        "checkpoints": ckpt,
        "param_names": _param_names(layout),
    }


_DIMS = {
    "final_loss": ("network",),
    "failed": ("network",),
    "loss": ("network", "time"),
    "loss_curve": ("network", "checkpoint"),
    "ftle": ("network", "time", "exponent"),
    "ftle_cum": ("network", "time", "exponent"),
    "ftle_end": ("network", "exponent"),
    "clv_growth": ("network", "time", "exponent"),
    "clv_angle": ("network", "time", "pair"),
    "min_clv_angle": ("network", "time"),
    "w_init": ("network", "param"),
    "w_final": ("network", "param"),
}


def _run_combinations(cfg: dict, dtype: torch.dtype):
    """Every (activation, init range) with its own child seed; ``(results {(i, j): dict},
    runtimes (n_act, n_range), total seconds)``."""
    root = np.random.SeedSequence(int(cfg["seed"]))
    acts, ranges = list(cfg["activations"]), [float(a) for a in cfg["init_ranges"]]
    children = root.spawn(len(acts) * len(ranges))
    results, runtimes = {}, np.zeros((len(acts), len(ranges)))
    threads_before = torch.get_num_threads()
    if cfg["threads"] is not None:
        # the ops are tiny and memory-bound: on a loaded, shared 2-core machine 2
        # OpenMP/MKL threads were 5-7x SLOWER than 1 (MKL's float64 tanh alone 40x);
        # on an idle one 2 threads are ~1.3x faster (bench/bench_lyapunov.py)
        torch.set_num_threads(int(cfg["threads"]))
    t_all = time.perf_counter()
    try:
        for i, act in enumerate(acts):
            for j, a in enumerate(ranges):
                t0 = time.perf_counter()
                results[i, j] = _run_combination(cfg, act, a, children[i * len(ranges) + j],
                                                 dtype)
                runtimes[i, j] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads_before)
    return results, runtimes, time.perf_counter() - t_all


def _study_variables(cfg: dict, results: dict, runtimes: np.ndarray) -> dict:
    """The dataset variables: each result stacked over (activation, init range), plus
    ``failed`` and ``failure_fraction``."""
    n_act, n_range = runtimes.shape
    data = {}
    for name, dims in _DIMS.items():
        if name == "failed":
            continue
        arr = np.stack([np.stack([results[i, j][name] for j in range(n_range)])
                        for i in range(n_act)])
        data[name] = (("activation", "init_range", *dims), arr)
    failed = data["final_loss"][1] > float(cfg["threshold"])
    data["failed"] = (("activation", "init_range", "network"), failed)
    data["failure_fraction"] = (("activation", "init_range"), failed.mean(axis=-1))
    data["runtime_s"] = (("activation", "init_range"), runtimes)
    return data


def _study_dataset(cfg: dict, results: dict, runtimes: np.ndarray, total: float) -> xr.Dataset:
    acts, ranges = list(cfg["activations"]), [float(a) for a in cfg["init_ranges"]]
    data = _study_variables(cfg, results, runtimes)
    frac = data["failure_fraction"][1]
    n = 9
    pair_names = [f"{p}-{q}" for p in range(1, n + 1) for q in range(p + 1, n + 1)]
    coords = {
        "activation": acts, "init_range": ranges, "network": np.arange(cfg["n_networks"]),
        "time": np.array(cfg["times"]), "exponent": np.arange(1, n + 1), "pair": pair_names,
        "checkpoint": results[0, 0]["checkpoints"], "param": results[0, 0]["param_names"],
    }
    summary = "; ".join(f"{act} U(-{a:g},{a:g}): {frac[i, j]:.4f}"
                        for i, act in enumerate(acts) for j, a in enumerate(ranges))
    ds = xr.Dataset(data, coords=coords, attrs={
        "task": TASKS[cfg["task"]]["description"],
        "failure_fraction": summary,
        "threshold": float(cfg["threshold"]),
        "threshold_rule": "failed <=> final loss > threshold (gap of the bimodal histogram)",
        "lr": float(cfg["lr"]),
        "steps": int(cfg["steps"]),
        "config": json.dumps(cfg, sort_keys=True),
        "reference": PAPER,
        "runtime_s": float(total),
        "torch_version": torch.__version__,
    })
    ds["init_range"].attrs["description"] = "half-width a of U(-a, a) for all 9 parameters"
    ds["time"].attrs["units"] = "steps"
    ds["clv_angle"].attrs["units"] = "rad"
    ds["ftle"].attrs["description"] = ("FTLE (per step) over the ftle_window steps ending "
                                       "at time")
    ds["ftle_cum"].attrs["description"] = "FTLE (per step) over steps 0 .. time"
    return ds


def run_study(cfg: dict) -> xr.Dataset:
    """Run the study for every (activation, init range) of ``cfg``.

    Args:
        cfg: the resolved ``lyapunov.study`` settings (:func:`pathdep.config.lyapunov.resolve_study`;
            config/lyapunov_full.yaml holds the paper-sized run): ``n_networks``, ``steps``,
            ``lr``, ``lyap_steps``, ``times``, ``ftle_window``, ``late_window``,
            ``warmup_backward``, ``max_buffer``, ``threshold``, ``activations``,
            ``init_ranges``, ``seed``, ``dtype``, ``threads``, ``backend``.

    Returns:
        ``xarray.Dataset`` with dims ``activation``, ``init_range`` (half-width ``a`` of
        ``U(-a, a)``), ``network``, ``time`` (indicator steps), ``exponent`` (1..9),
        ``pair`` (``"i-j"``, 36), ``checkpoint`` (steps), ``param`` (9); variables (all
        with leading ``activation, init_range``): ``final_loss``, ``failed`` (final loss >
        threshold), ``loss (network, time)``, ``loss_curve (network, checkpoint)``,
        ``ftle`` / ``ftle_cum`` / ``clv_growth (network, time, exponent)``, ``ftle_end
        (network, exponent)`` (last ``late_window`` steps of the Jacobian window),
        ``clv_angle (network, time, pair)`` (radians), ``min_clv_angle (network, time)``,
        ``w_init`` / ``w_final (network, param)``, ``failure_fraction``, ``runtime_s``;
        attrs ``task``, ``failure_fraction`` (text), ``threshold``, ``config`` (JSON),
        ``reference``, ``runtime_s``.
    """
    dtype = torch.float64 if cfg["dtype"] == "float64" else torch.float32
    results, runtimes, total = _run_combinations(cfg, dtype)
    return _study_dataset(cfg, results, runtimes, total)
