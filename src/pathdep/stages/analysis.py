"""Orchestration of the analyses: trajectory / metrics files in, netCDF and CSV out.

What it computes (the rules of ``rules/analysis.smk`` call these functions; each reads
files and writes files, the numerics live in the sibling modules):

* :func:`analyze_run` (rule ``analyze_run``, one per run) -> ``results/<exp>/<run>/analysis.nc``:

  - ``dist``, ``dist_aligned`` (member x checkpoint): the raw L2 distance to the baseline
    at the same checkpoint and the distance after permutation alignment by weight matching
    (:mod:`.align`, Git Re-Basin; the seed's ``d_w^perm``), at every checkpoint (or at
    ``analysis.align_checkpoints``);
  - ``interp_loss``, ``interp_acc`` (align x split x imember x icheckpoint x lam): loss and
    accuracy along ``(1 - l) w_0 + l w_k`` (baseline to member, raw and after aligning the
    member to the baseline at that checkpoint) on fixed train and test subsets
    (:mod:`.interpolate`), at the ``analysis.checkpoints``; ``barrier`` is the *linear*
    barrier of Entezari et al. (2022) ``max_l [L(l) - ((1 - l) L(0) + l L(1))]`` and
    ``barrier_midpoint`` the Git Re-Basin code's ``max_l L(l) - (L(0) + L(1)) / 2``;
  - ``ac_w_init`` = <w_k(0) . w_k(t)> / (|w_k(0)| |w_k(t)|), ``ac_w_base`` = <w_k(t) . w_0(t)>
    / (...), and ``ac_out_init``, ``ac_out_base`` the same for the test-subset outputs
    (logits flattened over samples and classes) (:mod:`.autocorr`), with the
    ``1/e`` decorrelation times ``tau_*``;
  - ``sphere_sq_disp`` = |u_t - u_0|^2 of the direction ``u = w / |w|``, ``norm_ratio`` =
    |w_t| / |w_0|, and per member the angular diffusion constant ``sphere_D`` of
    Brownian motion on the unit sphere fitted to it (:func:`.hypersphere.fit_diffusion`,
    time in steps), with ``sphere_theory`` = 2 (1 - exp(-D (P-1) t)).

* :func:`fit_experiment` (rule ``fit_experiment``, one per experiment) ->
  ``results/<exp>/fits.nc`` + ``fits.csv`` (every divergence curve of every perturbed
  member: raw and aligned weight distance, function-space distances; every form of
  :mod:`.fits` with standard errors, AIC, BIC, the AIC-best form) and
  ``results/<exp>/scaling.nc`` + ``scaling.csv`` (per swept hyperparameter: the fitted
  parameters per value, mean / std / sem / median over curves, how often each form was
  AIC-best, and power laws of each parameter against the hyperparameter, :mod:`.scaling`;
  the hypersphere ``D`` is tabulated as quantity ``direction``, form ``sphere_walk``).
* :func:`summarize_fits` (rule ``summarize_fits``) -> ``results/fits_summary.csv``: one
  row per experiment, quantity and parameter: the AIC-preferred form, the median time
  exponent ``b`` of the power-law fits ``a t^b``, and the scaling exponents.

Configuration: the top-level ``analysis:`` block of the config (keys in :data:`DEFAULTS`;
``analysis.experiments.<exp>`` overrides it per experiment), kept out of the run configs
so that changing an analysis setting re-runs analyses, not training.
``analysis.checkpoints`` and ``analysis.align_checkpoints`` are read in
``analysis.checkpoint_mode``: ``fraction`` (of the training steps, the nearest
checkpoint), ``index`` (checkpoint index, negative from the end) or ``step``.

How it was checked: ``tests/stages/test_analysis.py`` (a planted permutation of a trained
member gives aligned distance 0 and equal raw/aligned interpolation endpoints; the
autocorrelations equal metrics.nc's ``cos_init``/``cos_base``; identical members give zero
barriers; power laws planted in synthetic metrics are recovered by ``fit_experiment``) and
``tests/test_analysis_workflow.py`` (the rules on the tiny config, outputs by meaning).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pathdep.analysis import fits as FT
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.analysis import scaling as SC
from pathdep.analysis.quantities import BARRIER_DEFINITION, QUANTITIES, quantity_values
from pathdep.config.analysis import DEFAULTS, lambda_grid, resolve_spec, select_checkpoints

# analyze_run imports torch and the torch-based modules itself: fit_experiment and
# summarize_fits (and the figures) then run without importing torch.

__all__ = ["analyze_run", "fit_experiment", "summarize_fits", "sweep_values"]

def _lr_info(run: dict) -> tuple[float, float]:
    """(lr, effective lr) of a run: SGD with heavy-ball momentum m moves lr / (1 - m) per step
    in a steady gradient; for the adaptive optimizers the nominal lr."""
    opt = run.get("optimizer", {})
    lr = float(opt.get("lr", np.nan))
    if opt.get("name", "sgd") == "sgd":
        return lr, lr / (1.0 - float(opt.get("momentum", 0.0) or 0.0))
    return lr, lr


def sweep_values(run: dict) -> dict[str, Any]:
    """Swept hyperparameters of a run as ``{short name: value}`` for tables and axes.

    ``model.hidden`` sweeps become ``width`` (a single hidden layer) or the joined widths;
    ``model.depth`` stays ``depth``; names are the last key (``optimizer.lr`` -> ``lr``,
    ``optimizer.name`` -> ``optimizer``, ``model.kind`` -> ``architecture``).
    """
    out = {}
    for key, v in (run.get("swept") or {}).items():
        short = key.split(".")[-1]
        if key == "model.hidden":
            short = "width"
            v = v[0] if isinstance(v, list) and len(v) == 1 else "-".join(str(x) for x in v)
        elif key == "optimizer.name":
            short = "optimizer"
        elif key == "model.kind":
            short = "architecture"
        elif key == "perturbation.epsilon":
            short = "epsilon"
        if isinstance(v, bool):
            v = str(v)
        elif isinstance(v, list):
            v = "-".join(str(x) for x in v)
        out[short] = v
    return out


# ----------------------------------------------------------------------------- analyze_run
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

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.W.shape


def _read_run(traj_path, expected_config: dict | None) -> _RunWeights:
    from pathdep.core.context import canonical
    from pathdep.io.trajectory import Trajectory

    with Trajectory(traj_path) as tr:
        run = tr.config
        if expected_config is not None and canonical(expected_config) != canonical(run):
            raise ValueError(f"{traj_path}: trajectory was made from a different config than the workflow expects "
                             f"for {expected_config.get('experiment')}/{expected_config.get('run')}; rerun training")
        W = np.stack([tr.weights(c) for c in range(tr.n_checkpoints)])  # (C, K, P) in the stored dtype
        return _RunWeights(run, tr.steps.astype(np.int64), np.asarray(tr.epochs, dtype=np.float64), W,
                           tr.valid.copy() & np.isfinite(W).all(axis=2), tr.members, tr.provenance, tr.layout)


def _distances(rw: _RunWeights, spec: dict, imembers: np.ndarray, interp_idx: np.ndarray):
    """Raw and permutation-aligned distances to the baseline (weight matching).

    Returns:
        ``(dist (K, C), dist_aligned (K, C), aligned_mask (C,), perm_cache)``; ``perm_cache``
        maps ``(checkpoint, member)`` at the interpolation checkpoints to the flat gather
        index that aligns the member to the baseline.
    """
    from pathdep.analysis import align as A

    C, K, _ = rw.shape
    pspec = A.permutation_spec(rw.layout)
    dist = np.full((K, C), np.nan)
    dist_al = np.full((K, C), np.nan)
    align_idx = select_checkpoints(spec["align_checkpoints"], spec["checkpoint_mode"], rw.steps)
    perm_cache: dict[tuple[int, int], np.ndarray] = {}
    need_perm = {(int(c), int(k)) for c in interp_idx for k in imembers}
    for c in range(C):
        Wc = rw.W[c].astype(np.float64)
        dist[:, c] = np.linalg.norm(Wc - Wc[0], axis=1)
    for c in sorted(set(align_idx.tolist()) | {c for c, _ in need_perm}):
        Wc = rw.W[c].astype(np.float64)
        if not rw.ok[c, 0]:
            continue
        dist_al[0, c] = 0.0
        for k in range(1, K):
            if not rw.ok[c, k]:
                continue
            perms = A.weight_matching(Wc[0], Wc[k], rw.layout, pspec, max_iter=spec["align_max_iter"], seed=0)
            idx = A.permutation_index(rw.layout, pspec, perms)
            dist_al[k, c] = float(np.linalg.norm(Wc[0] - Wc[k][idx]))
            if (c, k) in need_perm:
                perm_cache[(c, k)] = idx
    aligned_mask = np.zeros(C, dtype=bool)
    aligned_mask[align_idx] = True
    dist_al[:, ~aligned_mask] = np.nan
    dist[~rw.ok.T] = np.nan
    return dist, dist_al, aligned_mask, perm_cache


def _interpolation(rw: _RunWeights, ctx, xs: dict, ys: dict, lam: np.ndarray, spec: dict, imembers: np.ndarray,
                   interp_idx: np.ndarray, perm_cache: dict) -> tuple[np.ndarray, np.ndarray]:
    """Loss and accuracy along ``(1 - l) w_0 + l w_k``, raw and aligned, on the train and test subsets.

    Returns:
        ``(loss, accuracy)``, each ``(align=2, split=2, imember, icheckpoint, lam)``.
    """
    import torch

    from pathdep.analysis import interpolate as IP

    kind = "cross_entropy" if ctx.loss == "cross_entropy" else "mse"
    shape = (2, 2, len(imembers), len(interp_idx), len(lam))
    iloss, iacc = np.full(shape, np.nan), np.full(shape, np.nan)
    for ci, c in enumerate(interp_idx):
        if not rw.ok[c, 0]:
            continue
        wa = torch.as_tensor(rw.W[c, 0], dtype=ctx.dtype, device=ctx.device)
        for mi, k in enumerate(imembers):
            if not rw.ok[c, k]:
                continue
            for ai, aligned in enumerate((False, True)):
                wk = rw.W[c, k][perm_cache[(int(c), int(k))]] if aligned else rw.W[c, k]
                wb = torch.as_tensor(np.ascontiguousarray(wk), dtype=ctx.dtype, device=ctx.device)
                for si, split in enumerate(("train", "test")):
                    cur = IP.interpolation_curve(ctx.apply, wa, wb, xs[split], ys[split], lam, loss=kind,
                                                 batch_size=int(spec["batch_size"]))
                    iloss[ai, si, mi, ci] = cur["loss"]
                    iacc[ai, si, mi, ci] = cur["accuracy"]
    return iloss, iacc


def _autocorrelations(rw: _RunWeights, ctx, x_test, batch_size: int) -> tuple[dict, dict]:
    """Weight and test-output autocorrelations (to the member's own start and to the baseline)
    ``(K, C)`` and their ``1/e`` decorrelation times ``(K,)``."""
    import torch

    from pathdep.analysis import autocorr as AC
    from pathdep.core.dynamics import make_ensemble_eval

    ev = make_ensemble_eval(ctx.apply, ctx.loss)
    bs = int(batch_size)

    def outputs(c: int) -> np.ndarray:
        Wt = torch.as_tensor(rw.W[c], dtype=ctx.dtype, device=ctx.device)
        outs = [ev(Wt, x_test[i:i + bs])[0] for i in range(0, len(x_test), bs)]
        return torch.cat(outs, 1).double().cpu().numpy()  # (K, N, out)

    C, K, _ = rw.shape
    ac = {n: np.full((K, C), np.nan) for n in ("ac_w_init", "ac_w_base", "ac_out_init", "ac_out_base")}
    W0 = rw.W[0].astype(np.float64)
    O0 = outputs(0)
    for c in range(C):
        Wc = rw.W[c].astype(np.float64)
        ac["ac_w_init"][:, c] = AC.autocorrelation(Wc[None], ref=W0[None])[0]
        ac["ac_w_base"][:, c] = AC.autocorrelation(Wc[None], ref="baseline")[0]
        Oc = O0 if c == 0 else outputs(c)
        ac["ac_out_init"][:, c] = AC.output_autocorrelation(Oc[None], ref=O0[None])[0]
        ac["ac_out_base"][:, c] = AC.output_autocorrelation(Oc[None], ref="baseline")[0]
    for v in ac.values():
        v[~rw.ok.T] = np.nan
    taus = {f"tau_{n[3:]}": AC.decorrelation_time(rw.steps, ac[n].T) for n in ac}
    return ac, taus


def _hypersphere(rw: _RunWeights, log) -> dict[str, np.ndarray]:
    """Angular diffusion of each member's weight direction ``u = w / |w|`` on the unit sphere.

    Returns:
        ``sphere_sq_disp``, ``norm_ratio``, ``sphere_theory`` ``(K, C)`` and ``sphere_D``,
        ``sphere_D_stderr``, ``sphere_rate`` ``(K,)``.
    """
    from pathdep.analysis import hypersphere as HS

    C, K, _ = rw.shape
    sq, nr = np.full((K, C), np.nan), np.full((K, C), np.nan)
    sD, sDse, srate = np.full(K, np.nan), np.full(K, np.nan), np.full(K, np.nan)
    for k in range(K):
        good = rw.ok[:, k]
        if good.sum() < 3:
            continue
        wk = rw.W[good, k].astype(np.float64)
        u = wk / np.linalg.norm(wk, axis=1, keepdims=True)
        sq[k, good] = np.sum((u - u[:1]) ** 2, axis=1)
        try:
            fit = HS.fit_diffusion(rw.steps[good].astype(np.float64), wk)
        except (RuntimeError, ValueError) as exc:  # a flat curve: no diffusion to fit
            log(f"member {k}: hypersphere fit failed ({str(exc).splitlines()[0]})")
            continue
        nr[k, good] = fit.norm_ratio
        sD[k], sDse[k], srate[k] = fit.D, fit.D_stderr, fit.rate
    tau = (rw.steps - rw.steps[0]).astype(np.float64)
    theory = -2.0 * np.expm1(-srate[:, None] * tau[None, :])
    return {"sphere_sq_disp": sq, "norm_ratio": nr, "sphere_theory": theory,
            "sphere_D": sD, "sphere_D_stderr": sDse, "sphere_rate": srate}


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


def analyze_run(traj_path, data_path, out_path, spec: dict | None = None, expected_config: dict | None = None,
                threads: int | None = None, device: str = "cpu", log=print) -> xr.Dataset:
    """Aligned distances, interpolation barriers, autocorrelations and hypersphere fits of one run.

    Steps: :func:`_read_run` (trajectory into memory), :func:`_distances` (raw and aligned),
    :func:`_interpolation` (+ barriers), :func:`_autocorrelations`, :func:`_hypersphere`,
    :func:`_analysis_dataset` (assembly, attributes), then an atomic write.

    Args:
        traj_path: ``trajectory.h5`` of the run.
        data_path: the prepared dataset.
        out_path: ``analysis.nc`` to write (atomically).
        spec: the analysis settings (resolved with :func:`resolve_spec` here).
        expected_config: the run config the workflow expects (a trajectory made from a
            different config is refused).
        threads: torch threads.
        device: torch device for the forward passes.
        log: progress messages (timings per stage).

    Returns:
        The dataset written to ``out_path`` (variables documented in the module docstring).
    """
    import torch

    from pathdep.analysis import interpolate as IP
    from pathdep.core.context import RunContext

    if threads:
        torch.set_num_threads(int(threads))
    spec = resolve_spec(spec)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rw = _read_run(traj_path, expected_config)
    timings["read"] = time.perf_counter() - t0
    ctx = RunContext.build(rw.run, data_path, device, load=True)
    if ctx.layout.to_attrs() != rw.layout.to_attrs():
        raise ValueError(f"{traj_path}: parameter layout does not match the model of run {rw.run.get('run')}")
    C, K, _ = rw.shape

    t1 = time.perf_counter()
    interp_idx = select_checkpoints(spec["checkpoints"], spec["checkpoint_mode"], rw.steps)
    n_im = min(int(spec["interp_members"]), K - 1)
    imembers = np.arange(1, n_im + 1)
    dist, dist_al, aligned_mask, perm_cache = _distances(rw, spec, imembers, interp_idx)
    timings["align"] = time.perf_counter() - t1
    log(f"aligned {K - 1} members at {int(aligned_mask.sum())} checkpoints in {timings['align']:.2f} s")

    t2 = time.perf_counter()
    xs, ys = _eval_sets(ctx, spec, int(rw.run.get("seed", 0)))
    lam = lambda_grid(spec)
    iloss, iacc = _interpolation(rw, ctx, xs, ys, lam, spec, imembers, interp_idx, perm_cache)
    bars = {"barrier": IP.barrier(iloss, lam, "linear"), "barrier_midpoint": IP.barrier(iloss, lam, "midpoint"),
            "barrier_integral": IP.loss_integral(iloss, lam, subtract_linear=True)}
    timings["interpolate"] = time.perf_counter() - t2
    log(f"interpolated {n_im} members at {len(interp_idx)} checkpoints x {len(lam)} lambdas in "
        f"{timings['interpolate']:.2f} s")

    t3 = time.perf_counter()
    ac, taus = _autocorrelations(rw, ctx, xs["test"], spec["batch_size"])
    timings["autocorr"] = time.perf_counter() - t3
    t4 = time.perf_counter()
    sphere = _hypersphere(rw, log)
    timings["hypersphere"] = time.perf_counter() - t4
    timings["total"] = time.perf_counter() - t0

    mc = ("member", "checkpoint")
    ii = ("align", "split", "imember", "icheckpoint")
    data_vars = {
        "dist": (mc, dist), "dist_aligned": (mc, dist_al),
        "interp_loss": (ii + ("lam",), iloss), "interp_acc": (ii + ("lam",), iacc),
        **{n: (ii, v) for n, v in bars.items()},
        **{n: (mc, v) for n, v in ac.items()},
        **{n: (("member",), v) for n, v in taus.items()},
        **{n: (mc if v.ndim == 2 else ("member",), v) for n, v in sphere.items()},
    }
    coords = {"aligned_checkpoint": ("checkpoint", aligned_mask), "icheckpoint": np.arange(len(interp_idx)),
              "icheckpoint_index": ("icheckpoint", interp_idx), "icheckpoint_step": ("icheckpoint", rw.steps[interp_idx]),
              "imember": imembers, "lam": lam}
    ds = _analysis_dataset(rw, ctx, data_vars, coords, spec, timings,
                           {"train": len(xs["train"]), "test": len(xs["test"])})
    write_netcdf(ds, out_path)
    log("timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    return ds


def _analysis_dataset(rw: _RunWeights, ctx, data_vars: dict, extra_coords: dict, spec: dict, timings: dict,
                      n_eval: dict) -> xr.Dataset:
    """``analysis.nc``: the variables with their coordinates, descriptions and provenance."""
    from pathdep.core.context import canonical
    from pathdep.io.provenance import collect

    run = rw.run
    C, K, P = rw.shape
    lr, lr_eff = _lr_info(run)
    coords = {
        "member": np.arange(K), "checkpoint": np.arange(C),
        "step": ("checkpoint", rw.steps), "epoch": ("checkpoint", rw.epochs),
        "role": ("member", rw.members["role"].astype(str).values),
        "epsilon": ("member", rw.members["epsilon"].values.astype(float)),
        **extra_coords,
        "align": ["raw", "aligned"], "split": ["train", "test"],
    }
    ds = xr.Dataset(data_vars, coords=coords)
    kind = "cross_entropy" if ctx.loss == "cross_entropy" else "mse"
    ds["dist_aligned"].attrs["description"] = "|w_0(t) - P(w_k(t))| after weight matching (Ainsworth et al. 2023)"
    ds["barrier"].attrs["definition"] = BARRIER_DEFINITION
    ds["barrier_midpoint"].attrs["definition"] = "midpoint (Git Re-Basin code): max_l L(l) - (L(0) + L(1)) / 2"
    ds["barrier_integral"].attrs["definition"] = "integral over l in [0, 1] of L(l) - chord (trapezoid rule)"
    ds["interp_loss"].attrs["description"] = (f"mean {kind} loss of (1 - lam) w_0 + lam w_k on fixed "
                                              f"subsets (train {n_eval['train']}, test {n_eval['test']} samples)")
    ds["sphere_D"].attrs["description"] = ("angular diffusion constant per step on the unit sphere, fitted to "
                                           "|u_t - u_0|^2 = 2 (1 - exp(-D (P - 1) t)), u = w / |w|")
    ds["sphere_theory"].attrs["description"] = "2 (1 - exp(-D (P - 1) t)) with the member's fitted D"
    ds.attrs.update({
        "experiment": run.get("experiment", ""), "run": run.get("run", ""),
        "swept": json.dumps(run.get("swept", {})), "sweep_values": json.dumps(sweep_values(run)),
        "task": ctx.task, "n_params": int(P), "lr": lr, "lr_eff": lr_eff,
        "optimizer": str(run.get("optimizer", {}).get("name", "sgd")),
        "barrier_definition": BARRIER_DEFINITION, "analysis_spec": json.dumps(spec),
        "timings": json.dumps({k: round(v, 4) for k, v in timings.items()}),
        "config": canonical(run), "trajectory_provenance": json.dumps(rw.provenance),
        "provenance": json.dumps(collect(run, ctx.device), default=str),
    })
    return ds


# ----------------------------------------------------------------------------- fit_experiment
def _curves(metrics_files: Sequence, analysis_files: Sequence, quantities: Sequence[str]):
    """Yield (run attrs, quantity, member, steps, values) for every perturbed member."""
    for mf, af in zip(metrics_files, analysis_files):
        dm = xr.load_dataset(mf, engine="h5netcdf")
        da = xr.load_dataset(af, engine="h5netcdf")
        roles = dm["role"].values.astype(str)
        steps = dm["step"].values.astype(np.float64)
        for q in quantities:
            vals = quantity_values(dm, da, q)
            if vals is None:
                continue
            for k in np.flatnonzero(roles != "baseline"):
                yield dm, da, q, int(k), steps, vals[k]


def _run_attrs(dm: xr.Dataset, da: xr.Dataset) -> dict:
    run = json.loads(dm.attrs["config"])
    sv = sweep_values(run)
    lr, lr_eff = _lr_info(run)
    return {"run": str(dm.attrs.get("run", run.get("run", ""))), "lr": lr, "lr_eff": lr_eff,
            "sweep": sv, "optimizer": str(run.get("optimizer", {}).get("name", "sgd"))}


def fit_experiment(metrics_files: Sequence, analysis_files: Sequence, out_fits_nc, out_fits_csv,
                   out_scaling_nc, out_scaling_csv, spec: dict | None = None, experiment: str = "",
                   log=print) -> tuple[xr.Dataset, pd.DataFrame]:
    """Fit every divergence curve of an experiment and tabulate the fits against its sweeps.

    Args:
        metrics_files, analysis_files: the runs' ``metrics.nc`` and ``analysis.nc``, in
            the same order.
        out_fits_nc, out_fits_csv: per-curve fits (all forms; dims ``curve x model x param``
            with coordinates ``quantity``, ``run``, ``member`` and one per swept
            hyperparameter).
        out_scaling_nc, out_scaling_csv: the scaling table (see :func:`scaling_frame`).
        spec: analysis settings (``fits.models``, ``fits.space``, ``fits.quantities``).
        experiment: its name (table column and attributes).

    Returns:
        ``(fits dataset, scaling table)``.
    """
    if len(metrics_files) != len(analysis_files):
        raise ValueError(f"fit_experiment: {len(metrics_files)} metrics files but {len(analysis_files)} analysis files")
    spec = resolve_spec(spec)
    fs = spec["fits"]
    t0 = time.perf_counter()
    results, co = [], {"quantity": [], "run": [], "member": [], "lr": [], "lr_eff": []}
    sweep_rows, run_info = [], {}
    for dm, da, q, k, steps, vals in _curves(metrics_files, analysis_files, fs["quantities"]):
        info = run_info.setdefault(str(dm.attrs.get("run")), _run_attrs(dm, da))
        results.append(FT.fit_all(steps, vals, fs["models"], space=fs["space"]))
        co["quantity"].append(q)
        co["run"].append(info["run"])
        co["member"].append(k)
        co["lr"].append(info["lr"])
        co["lr_eff"].append(info["lr_eff"])
        sweep_rows.append(info["sweep"])
    hp_names = sorted({h for r in sweep_rows for h in r})
    for h in hp_names:
        vals = [r.get(h) for r in sweep_rows]
        co[h] = _column(vals)
    if not results:
        raise ValueError(f"fit_experiment {experiment}: no divergence curves found in the metrics/analysis files")
    ds = FT.fits_to_dataset(results, co, dim="curve")
    ds.attrs.update({"experiment": experiment, "hparams": json.dumps(hp_names), "time": "training step",
                     "fit_space": fs["space"], "models": json.dumps(fs["models"]),
                     "note": "t = 0 (the perturbation itself) is left out of every fit"})
    log(f"fitted {len(results)} curves x {len(fs['models'])} forms in {time.perf_counter() - t0:.1f} s")
    write_netcdf(ds, out_fits_nc)
    df = FT.dataset_to_frame(ds)
    df.insert(0, "experiment", experiment)
    write_csv(df, out_fits_csv)

    sphere = []
    for af in analysis_files:
        da = xr.load_dataset(af, engine="h5netcdf")
        info = run_info.get(str(da.attrs.get("run"))) or {"sweep": json.loads(da.attrs.get("sweep_values", "{}")),
                                                           "run": str(da.attrs.get("run")),
                                                           "lr": da.attrs.get("lr"), "lr_eff": da.attrs.get("lr_eff")}
        for k in np.flatnonzero(da["role"].values.astype(str) != "baseline"):
            sphere.append({"run": info["run"], "member": int(k), "lr": info["lr"], "lr_eff": info["lr_eff"],
                           **info["sweep"], "quantity": "direction", "model": "sphere_walk", "best": True,
                           "D": float(da["sphere_D"].values[k]), "D_stderr": float(da["sphere_D_stderr"].values[k])})
    table = scaling_frame(df, pd.DataFrame(sphere), hp_names, experiment,
                          lr_sweep=("lr" in hp_names or "momentum" in hp_names))
    write_csv(table, out_scaling_csv)
    tds = xr.Dataset.from_dataframe(table.reset_index(drop=True).rename_axis("row"))
    for c in tds.data_vars:
        if tds[c].dtype == object:
            tds[c] = tds[c].astype(str)
    tds.attrs.update({"experiment": experiment, "hparams": json.dumps(hp_names),
                      "description": "fitted parameters of each form against each swept hyperparameter; "
                                     "pl_*: power law param = pl_prefactor * value ** pl_exponent (positive values)"})
    write_netcdf(tds, out_scaling_nc)
    return ds, table


def _column(vals: list):
    """A coordinate column: floats when every value is numeric, else strings."""
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in vals):
        return np.asarray(vals, dtype=np.float64)
    return np.asarray([str(v) for v in vals])


def scaling_frame(fits_df: pd.DataFrame, sphere_df: pd.DataFrame, hparams: Sequence[str], experiment: str = "",
                  lr_sweep: bool = False) -> pd.DataFrame:
    """The scaling table of one experiment (long format).

    One row per (hparam, value, quantity, model, param) with ``n`` curves, ``n_best`` (how
    many of them chose this form by AIC), ``mean``, ``std``, ``sem``, ``median`` and
    ``fit_stderr`` (mean standard error of the individual fits) over the perturbed members,
    and the power law of the per-value means against the hyperparameter (``pl_exponent``,
    ``pl_exponent_stderr``, ``pl_prefactor``, ``pl_points``; over the positive values of a
    numeric hyperparameter, NaN otherwise). ``hparam`` is ``none`` for an experiment that
    sweeps nothing (value: the run name). With ``lr_sweep`` the table also has
    ``hparam = lr_eff`` (lr / (1 - momentum) for SGD), the learning-rate-corrected view.
    """
    frames = [fits_df]
    if sphere_df is not None and len(sphere_df):
        frames.append(sphere_df)
    df = pd.concat(frames, ignore_index=True, sort=False)
    hps = list(hparams) or ["none"]
    if not hparams:
        df["none"] = df["run"]
    if lr_sweep and "lr_eff" not in hps:
        hps.append("lr_eff")
    rows = []
    for h in hps:
        for (q, m), sub in df.groupby(["quantity", "model"], sort=False):
            params = list(FT.MODELS[m].params) if m in FT.MODELS else ["D"]
            params = [p for p in params if p in sub.columns]
            if sub[h].isna().all():
                continue
            tab = _scaling_table(sub, h, params)
            numeric = pd.api.types.is_numeric_dtype(tab.index)
            pos = tab[np.asarray(tab.index, dtype=np.float64) > 0] if numeric else tab.iloc[:0]
            pl = SC.table_power_laws(pos, params) if len(pos) >= 2 else None
            for val, r in tab.iterrows():
                for p in params:
                    row = {"experiment": experiment, "hparam": h, "value": val, "quantity": q, "model": m,
                           "param": p, "n": int(r["n"]), "n_best": int(r["n_best"]), "mean": r[p],
                           "std": r[f"{p}_std"], "sem": r[f"{p}_sem"], "median": r[f"{p}_median"],
                           "fit_stderr": r.get(f"{p}_fit_stderr", np.nan),
                           "pl_exponent": np.nan, "pl_exponent_stderr": np.nan, "pl_prefactor": np.nan,
                           "pl_points": int(np.sum(np.isfinite(pos[p].to_numpy(float)) & (pos[p].to_numpy(float) > 0)))
                           if len(pos) else 0}
                    if pl is not None:
                        row.update(pl_exponent=pl.loc[p, "exponent"], pl_exponent_stderr=pl.loc[p, "stderr"],
                                   pl_prefactor=pl.loc[p, "prefactor"])
                    rows.append(row)
    cols = ["experiment", "hparam", "value", "quantity", "model", "param", "n", "n_best", "mean", "std", "sem",
            "median", "fit_stderr", "pl_exponent", "pl_exponent_stderr", "pl_prefactor", "pl_points"]
    out = pd.DataFrame(rows, columns=cols)
    if len(out) and not pd.api.types.is_numeric_dtype(out["value"]):
        out["value"] = out["value"].astype(str)
    return out


def _scaling_table(sub: pd.DataFrame, h: str, params: list) -> pd.DataFrame:
    """:func:`pathdep.analysis.scaling.scaling_table` for one form, plus ``n_best``."""
    model = str(sub["model"].iloc[0])
    tab = SC.scaling_table(sub, h, model=model, params=params)
    best = sub.groupby(h, sort=True)["best"].sum() if "best" in sub else 0
    tab["n_best"] = best.reindex(tab.index).fillna(0).astype(int) if isinstance(best, pd.Series) else 0
    return tab


# ----------------------------------------------------------------------------- summary
def summarize_fits(scaling_csvs: Sequence, fits_csvs: Sequence, out_csv, log=print) -> pd.DataFrame:
    """One summary table over experiments: preferred forms and exponents.

    Rows: ``experiment, hparam, quantity, best_model`` (the form most often AIC-best over
    the curves of that quantity), ``best_share``, ``b_median``/``b_q25``/``b_q75`` (time
    exponent of the ``power_law`` fits ``d = a t^b`` over all curves), then ``param`` and
    its scaling exponent against the hyperparameter (``pl_exponent`` +- ``pl_exponent_stderr``)
    for the parameters of the preferred form and of ``power_law``.
    """
    rows = []
    for sc, fc in zip(scaling_csvs, fits_csvs):
        tab = pd.read_csv(sc)
        fits = pd.read_csv(fc)
        if tab.empty:
            continue
        exp = str(tab["experiment"].iloc[0]) if "experiment" in tab else Path(sc).parent.name
        for q, fq in fits.groupby("quantity", sort=False):
            best_counts = fq[fq["best"]].groupby("model").size().sort_values(ascending=False)
            n_curves = int(fq[["run", "member"]].drop_duplicates().shape[0])
            best = str(best_counts.index[0]) if len(best_counts) else ""
            share = float(best_counts.iloc[0] / n_curves) if len(best_counts) else np.nan
            b = fq.loc[(fq["model"] == "power_law") & fq["success"], "b"] if "b" in fq else pd.Series(dtype=float)
            for h, th in tab[tab["quantity"] == q].groupby("hparam", sort=False):
                for m in dict.fromkeys([best, "power_law"]):
                    for p, tp in th[th["model"] == m].groupby("param", sort=False):
                        rows.append({"experiment": exp, "hparam": h, "quantity": q, "best_model": best,
                                     "best_share": share, "n_curves": n_curves,
                                     "b_median": b.median(), "b_q25": b.quantile(0.25), "b_q75": b.quantile(0.75),
                                     "model": m, "param": p, "values": int(tp["value"].nunique()),
                                     "param_mean": float(tp["mean"].mean()),
                                     "pl_exponent": tp["pl_exponent"].iloc[0],
                                     "pl_exponent_stderr": tp["pl_exponent_stderr"].iloc[0]})
        sph = tab[tab["quantity"] == "direction"]
        for h, th in sph.groupby("hparam", sort=False):
            rows.append({"experiment": exp, "hparam": h, "quantity": "direction", "best_model": "sphere_walk",
                         "best_share": np.nan, "n_curves": int(th["n"].sum()), "model": "sphere_walk", "param": "D",
                         "values": int(th["value"].nunique()), "param_mean": float(th["mean"].mean()),
                         "pl_exponent": th["pl_exponent"].iloc[0], "pl_exponent_stderr": th["pl_exponent_stderr"].iloc[0]})
    out = pd.DataFrame(rows)
    write_csv(out, out_csv)
    log(f"summary: {len(out)} rows over {len(scaling_csvs)} experiments")
    return out
