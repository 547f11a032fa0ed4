"""The geometry of one run's trajectories: trajectory in, ``geometry.nc`` out; and the
hypersphere theory table.

What it computes (the rules of ``rules/geometry.smk`` call these functions; each reads files,
calls the numerics of :mod:`pathdep.analysis` and writes files):

* :func:`compute_geometry` (rule ``geometry``, one per run) -> ``results/<exp>/<run>/geometry.nc``:

  - ``dist``, ``dist_aligned`` (member x checkpoint): the raw L2 distance to the baseline
    at the same checkpoint and the distance after permutation alignment by weight matching
    (:func:`pathdep.analysis.align.align_to_baseline`, Git Re-Basin; the seed's
    ``d_w^perm``), at every checkpoint (or at ``geometry.align_checkpoints``);
  - ``interp_loss``, ``interp_acc`` (align x split x imember x icheckpoint x lam): loss and
    accuracy along ``(1 - l) w_0 + l w_k`` (baseline to member, raw and after aligning the
    member to the baseline at that checkpoint) on fixed train and test subsets, at the
    ``geometry.checkpoints``; ``barrier`` (linear, Entezari et al. 2022), ``barrier_midpoint``
    (Git Re-Basin code) and ``barrier_integral`` (:mod:`pathdep.analysis.barriers`);
  - ``ac_w_init``, ``ac_w_base``, ``ac_out_init``, ``ac_out_base`` and the ``1/e``
    decorrelation times ``tau_*`` (:func:`pathdep.analysis.autocorr.trajectory_autocorrelations`;
    outputs on the test subset by :func:`pathdep.analysis.autocorr.checkpoint_outputs`);
  - ``sphere_sq_disp``, ``norm_ratio``, ``sphere_theory`` and per member ``sphere_D``
    (:func:`pathdep.analysis.hypersphere.sphere_diffusion`, time in steps).

  BatchNorm models (``norm: batch``): distances, alignment and the sphere fits are on the
  parameters; the outputs of the autocorrelations are in eval mode with each member's own
  running statistics; every interpolation point gets its BatchNorm statistics recomputed on
  a fixed, seeded training subset (:data:`BN_RESET` samples, or ``geometry.bn_reset``, in
  batches of :data:`BN_RESET_BATCH`; the average of unbiased batch statistics estimates the
  population's for any batch size) before it is evaluated (Git Re-Basin, REPAIR; attribute
  ``interp_bn``).

* :func:`hypersphere_theory` (rule ``hypersphere_theory``) -> ``results/hypersphere/theory.nc``:
  simulated Brownian motion on S^{n-1} against the closed forms
  (:func:`pathdep.analysis.hypersphere.theory_curves`).

Configuration: the top-level ``geometry:`` block (:mod:`pathdep.config.geometry`; per
experiment ``geometry.experiments.<exp>``), kept out of the run configs so that changing it
re-runs the geometry, not training. Its checkpoint selections are resolved once, at the
start (:func:`_selection`), and passed to the numerics as indices.

How it was checked: ``tests/stages/test_geometry.py`` (a planted permutation of a trained
member gives aligned distance 0 and equal raw/aligned interpolation endpoints; the
autocorrelations equal metrics.nc's ``cos_init``/``cos_base``; identical members give zero
barriers) and ``tests/test_geometry_workflow.py`` (the rules on the tiny config).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis.quantities import BARRIER_DEFINITION
from pathdep.analysis.replicates import labels, own_baseline
from pathdep.config.geometry import lambda_grid, resolve, select_checkpoints
from pathdep.config.sweeps import learning_rates, sweep_values
from pathdep.io.atomic import write_netcdf

# compute_geometry imports torch and the torch-based modules itself: the theory table and the
# fits (and the figures) then run without importing torch.

__all__ = ["compute_geometry", "hypersphere_theory", "BN_RESET"]

BN_RESET, BN_RESET_BATCH = 1000, 500
"""Training samples (and batch size) on which interpolated BatchNorm networks recompute their statistics."""


@dataclass
class _RunWeights:
    """A trajectory read into memory: ``W (C, K, P)`` in the stored dtype, ``ok (C, K)``
    (valid and finite), steps/epochs ``(C,)``, the member table, config and provenance."""

    run: dict
    steps: np.ndarray
    epochs: np.ndarray
    W: np.ndarray
    ok: np.ndarray
    members: pd.DataFrame
    provenance: dict
    layout: Any
    Z: np.ndarray         # (C, K, P + Q): weights and buffers (BatchNorm statistics); W without buffers


@dataclass
class _Selection:
    """Which checkpoints and members the numerics visit (resolved once from the settings)."""

    align: np.ndarray    # checkpoints with aligned distances
    interp: np.ndarray   # interpolation checkpoints
    members: np.ndarray  # interpolated members (copies 1..n of every baseline)
    base: np.ndarray     # (K,) row of each network's own baseline


def _read_run(traj_path, expected_config: dict | None) -> _RunWeights:
    from pathdep.core.context import canonical
    from pathdep.io.trajectory import Trajectory

    with Trajectory(traj_path) as tr:
        run = tr.config
        if expected_config is not None and canonical(expected_config) != canonical(run):
            raise ValueError(f"{traj_path}: trajectory was made from a different config than the workflow expects "
                             f"for {expected_config.get('experiment')}/{expected_config.get('run')}; rerun training")
        W = np.stack([tr.weights(c) for c in range(tr.n_checkpoints)])  # (C, K, P) in the stored dtype
        Z = np.concatenate([W, np.stack([tr.buffers(c) for c in range(tr.n_checkpoints)])], -1) \
            if tr.buffer_layout.n_params else W
        return _RunWeights(run, tr.steps.astype(np.int64), np.asarray(tr.epochs, dtype=np.float64), W,
                           tr.valid.copy() & np.isfinite(W).all(axis=2), tr.members, tr.provenance, tr.layout, Z)


def _selection(spec: dict, steps: np.ndarray, members: pd.DataFrame) -> _Selection:
    mode = spec["checkpoint_mode"]
    bl, cp = labels(members)
    return _Selection(select_checkpoints(spec["align_checkpoints"], mode, steps),
                      select_checkpoints(spec["checkpoints"], mode, steps),
                      np.flatnonzero((cp >= 1) & (cp <= int(spec["interp_members"]))), own_baseline(bl, cp))


def _eval_sets(ctx, spec: dict, seed: int):
    """The fixed, seeded train and test evaluation subsets on the context's device."""
    from pathdep.core.context import eval_subset

    data = ctx.load_data()
    itr = eval_subset(len(data.x_train), int(spec["eval_train"]), seed)
    ite = eval_subset(len(data.x_test), int(spec["eval_test"]), seed)
    xs = {"train": data.x_train[itr].to(ctx.device, ctx.dtype), "test": data.x_test[ite].to(ctx.device, ctx.dtype)}
    ys = {"train": data.y_train[itr].to(ctx.device), "test": data.y_test[ite].to(ctx.device)}
    if ctx.task != "classification":
        ys = {s: y.to(ctx.dtype) for s, y in ys.items()}
    return xs, ys


def _bn_reset(ctx, spec: dict, run: dict):
    """``prepare`` of the interpolation curves: BatchNorm statistics recomputed per point on a fixed,
    seeded training subset in batches of :data:`BN_RESET_BATCH` (None without BatchNorm)."""
    from pathdep.core.context import eval_subset

    if not ctx.has_buffers:
        return None, 0
    x = ctx.load_data().x_train
    idx = eval_subset(len(x), int(spec.get("bn_reset", BN_RESET)), int(run.get("seed", 0)) + 1)
    bs = BN_RESET_BATCH
    starts = range(0, max(len(idx) - bs, 0) + 1, bs)   # full batches (one batch when the subset is smaller)
    xs = [x[idx[i:i + bs]].to(ctx.device, ctx.dtype) for i in starts]
    return ctx.bn_reset(xs), sum(len(b) for b in xs)


def _context(rw: _RunWeights, traj_path, data_path, device: str):
    """The run's :class:`~pathdep.core.context.RunContext`; refuses a trajectory of another model."""
    from pathdep.core.context import RunContext

    ctx = RunContext.build(rw.run, data_path, device, load=True)
    if ctx.layout.to_attrs() != rw.layout.to_attrs():
        raise ValueError(f"{traj_path}: parameter layout does not match the model of run {rw.run.get('run')}")
    return ctx


def _loss_kind(ctx) -> str:
    return "cross_entropy" if ctx.loss == "cross_entropy" else "mse"


@contextmanager
def _clock(timings: dict, name: str):
    """Wall seconds of the ``with`` block into ``timings[name]``."""
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0


def compute_geometry(traj_path, data_path, out_path, spec: dict | None = None, expected_config: dict | None = None,
                     threads: int | None = None, device: str = "cpu", log=print) -> xr.Dataset:
    """Aligned distances, interpolation barriers, autocorrelations and hypersphere fits of one run.

    Args:
        traj_path: ``trajectory.h5`` of the run; ``data_path``: the prepared dataset.
        out_path: ``geometry.nc`` to write (atomically).
        spec: the geometry settings (resolved with :func:`pathdep.config.geometry.resolve`).
        expected_config: the run config the workflow expects (another config's trajectory is refused).
        threads: torch threads; ``device``: torch device of the forward passes; ``log``: progress.

    Returns:
        The dataset written to ``out_path`` (variables documented in the module docstring).
    """
    import torch

    from pathdep.analysis import align, autocorr, barriers, hypersphere

    if threads:
        torch.set_num_threads(int(threads))
    spec, timings, t0 = resolve(spec), {}, time.perf_counter()
    with _clock(timings, "read"):
        rw = _read_run(traj_path, expected_config)
    ctx, sel = _context(rw, traj_path, data_path, device), _selection(spec, rw.steps, rw.members)
    with _clock(timings, "align"):
        al = align.align_to_baseline(rw.W, rw.ok, rw.layout, sel.align, [(c, k) for c in sel.interp for k in sel.members],
                                     spec["align_max_iter"], base=sel.base)
    (xs, ys), (prepare, n_reset) = _eval_sets(ctx, spec, int(rw.run.get("seed", 0))), _bn_reset(ctx, spec, rw.run)
    lam, kind = lambda_grid(spec), _loss_kind(ctx)
    with _clock(timings, "interpolate"):
        iloss, iacc = barriers.interpolation_grid(ctx.eval_apply, rw.W, rw.ok, al.gather, sel.members, sel.interp, xs,
                                                  ys, lam, kind, spec["batch_size"], ctx.dtype, ctx.device, sel.base,
                                                  prepare=prepare)
    with _clock(timings, "autocorr"):   # eval mode, each member's own running statistics (Z = (W, B))
        outputs = autocorr.checkpoint_outputs(ctx.eval_apply, rw.Z, xs["test"], ys["test"], kind, spec["batch_size"],
                                              ctx.dtype, ctx.device)
        ac, taus = autocorr.trajectory_autocorrelations(rw.W, rw.ok, rw.steps, outputs, sel.base)
    with _clock(timings, "hypersphere"):
        sphere, failed = hypersphere.sphere_diffusion(rw.steps, rw.W, rw.ok)
    for k, why in failed.items():
        log(f"member {k}: hypersphere fit failed ({why})")
    timings["total"] = time.perf_counter() - t0
    values = {"dist": al.dist, "dist_aligned": al.dist_aligned, "interp_loss": iloss, "interp_acc": iacc,
              **barriers.barriers(iloss, lam), **ac, **taus, **sphere}
    ds = _geometry_dataset(rw, ctx, values, _coords(rw, al.aligned, sel, lam), spec, timings,
                           {s: len(x) for s, x in xs.items()} | {"bn_reset": n_reset})
    write_netcdf(ds, out_path)
    log(f"aligned at {int(al.aligned.sum())} checkpoints; interpolated at {len(sel.interp)} x {len(lam)} lambdas\n"
        + "timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    return ds


def _coords(rw: _RunWeights, aligned: np.ndarray, sel: _Selection, lam: np.ndarray) -> dict:
    C, K, _ = rw.W.shape
    return {"member": np.arange(K), "checkpoint": np.arange(C),
            "step": ("checkpoint", rw.steps), "epoch": ("checkpoint", rw.epochs),
            "role": ("member", rw.members["role"].astype(str).values),
            "baseline": ("member", labels(rw.members)[0]), "copy": ("member", labels(rw.members)[1]),
            "epsilon": ("member", rw.members["epsilon"].values.astype(float)),
            "aligned_checkpoint": ("checkpoint", aligned), "icheckpoint": np.arange(len(sel.interp)),
            "icheckpoint_index": ("icheckpoint", sel.interp), "icheckpoint_step": ("icheckpoint", rw.steps[sel.interp]),
            "imember": sel.members, "lam": lam, "align": ["raw", "aligned"], "split": ["train", "test"]}


def _dims(name: str, v: np.ndarray) -> tuple[str, ...]:
    ii = ("align", "split", "imember", "icheckpoint")
    if name.startswith("interp_"):
        return ii + ("lam",)
    if name.startswith("barrier"):
        return ii
    return ("member", "checkpoint") if v.ndim == 2 else ("member",)


def _geometry_dataset(rw: _RunWeights, ctx, values: dict, coords: dict, spec: dict, timings: dict,
                      n_eval: dict) -> xr.Dataset:
    """``geometry.nc``: the variables with their coordinates, descriptions and provenance."""
    from pathdep.core.context import canonical
    from pathdep.io.provenance import collect

    run = rw.run
    lr, lr_eff = learning_rates(run)
    ds = xr.Dataset({n: (_dims(n, v), v) for n, v in values.items()}, coords=coords)
    ds["dist_aligned"].attrs["description"] = "|w_0(t) - P(w_k(t))| after weight matching (Ainsworth et al. 2023)"
    ds["barrier"].attrs["definition"] = BARRIER_DEFINITION
    ds["barrier_midpoint"].attrs["definition"] = "midpoint (Git Re-Basin code): max_l L(l) - (L(0) + L(1)) / 2"
    ds["barrier_integral"].attrs["definition"] = "integral over l in [0, 1] of L(l) - chord (trapezoid rule)"
    ds["interp_loss"].attrs["description"] = (f"mean {_loss_kind(ctx)} loss of (1 - lam) w_0 + lam w_k on fixed "
                                              f"subsets (train {n_eval['train']}, test {n_eval['test']} samples)")
    ds["sphere_D"].attrs["description"] = ("angular diffusion constant per step on the unit sphere, fitted to "
                                           "|u_t - u_0|^2 = 2 (1 - exp(-D (P - 1) t)), u = w / |w|")
    ds["sphere_theory"].attrs["description"] = "2 (1 - exp(-D (P - 1) t)) with the member's fitted D"
    ds.attrs.update({
        "experiment": run.get("experiment", ""), "run": run.get("run", ""),
        "swept": json.dumps(run.get("swept", {})), "sweep_values": json.dumps(sweep_values(run)),
        "task": ctx.task, "n_params": int(rw.W.shape[2]), "lr": lr, "lr_eff": lr_eff,
        "optimizer": str(run.get("optimizer", {}).get("name", "sgd")),
        "barrier_definition": BARRIER_DEFINITION, "geometry_spec": json.dumps(spec),
        "timings": json.dumps({k: round(v, 4) for k, v in timings.items()}),
        "config": canonical(run), "trajectory_provenance": json.dumps(rw.provenance),
        "provenance": json.dumps(collect(run, ctx.device), default=str),
    })
    if n_eval.get("bn_reset"):
        ds.attrs["interp_bn"] = (f"BatchNorm statistics reset at every interpolation point on {n_eval['bn_reset']} "
                                 "training samples (Git Re-Basin, REPAIR; Jordan et al. 2022); outputs in eval mode "
                                 "with each member's own running statistics")
    return ds


def hypersphere_theory(out_path, spec: dict | None = None, log=print) -> xr.Dataset:
    """Simulated Brownian motion on spheres S^{n-1} against the closed forms -> ``theory.nc``.

    Args:
        out_path: ``theory.nc`` to write (atomically).
        spec: ``geometry.hypersphere`` settings (:data:`pathdep.config.geometry.DEFAULTS`):
            ``dims``, ``R``, ``D``, ``rate_dt``, ``t_max_rate``, ``walkers``, ``seed``.

    Returns:
        The dataset: ``cos``, ``cos_sem``, ``sq``, ``sq_sem`` at times ``x`` (dims ``n x
        point``) and the closed forms ``cos_line``, ``sq_line`` at ``x_line`` (``n x
        line``); times in units of ``D (n-1) t / R^2``.
    """
    from pathdep.analysis.hypersphere import theory_curves
    from pathdep.config.geometry import DEFAULTS
    from pathdep.io.provenance import collect

    s = {**DEFAULTS["hypersphere"], **(spec or {})}
    t0 = time.perf_counter()
    cur = theory_curves(s["dims"], s["R"], s["D"], s["rate_dt"], s["t_max_rate"], s["walkers"], s["seed"])
    ds = xr.Dataset({k: (("n", "line" if k.endswith("_line") else "point"), v) for k, v in cur.items()},
                    coords={"n": [int(n) for n in s["dims"]]})
    ds.attrs.update({k: s[k] for k in ("R", "D", "rate_dt", "t_max_rate", "walkers", "seed")})
    ds.attrs["description"] = ("Brownian motion on S^{n-1}(R): simulated mean cosine and mean squared displacement "
                               "(+- sem) and the closed forms exp(-x), 2 R^2 (1 - exp(-x)), x = D (n-1) t / R^2")
    ds.attrs["provenance"] = json.dumps(collect({"hypersphere": s}, "cpu"), default=str)
    write_netcdf(ds, out_path)
    log(f"simulated {len(s['dims'])} spheres x {s['walkers']} walkers in {time.perf_counter() - t0:.1f} s")
    return ds
