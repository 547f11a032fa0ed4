"""Lyapunov spectra of a run's training map, and their link to the measured divergence.

What it computes, for the baseline of one workflow run (rule ``lyapunov``):

* the training map ``x_t -> x_{t+1}`` rebuilt from the recorded config and initial weights
  (DESIGN invariant 6): the pure update map of :mod:`pathdep.core.dynamics` on the baseline's
  batch schedule, with state ``x = (w, optimiser buffers)`` (DESIGN invariant 2; buffers
  that are statically inert, e.g. SGD's momentum buffer at momentum 0, are left out so they
  do not add spurious zero exponents);
* the ``k`` leading Lyapunov exponents by Benettin's algorithm
  (:func:`pathdep.analysis.lyapunov.benettin`: ``torch.func.jvp`` tangents vmapped over the ``k``
  vectors, QR with positive diagonal every ``qr_every`` steps), their running averages and
  finite-time exponents (FTLEs) over windows;
* the measured early growth rate of the distance between the perturbed members and the
  baseline (``metrics.nc``): the slope of ``log mean_k |w_k - w_0|`` against the step over
  the same window, which is what the maximal exponent predicts for infinitesimal
  perturbations (``|dZ(t)| ~ exp(lambda t) |dZ(0)|``, path-dependence-scaling-laws.txt).

How it was checked: the map code path is the one of the known-answer tests
(tests/analysis/test_lyapunov.py: quadratic GD, Henon); tests/stages/test_lyapunov.py checks that the
rebuilt map reproduces the recorded trajectory of the baseline bit for bit (same update
function, same schedule) and that for a linear model with MSE loss the exponents equal
``log|1 - lr h_i|`` of the data Hessian.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import pathdep.analysis.lyapunov as ly
from pathdep.core.context import RunContext, canonical
from pathdep.io.atomic import write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import load_init

DEFAULTS = {"k": 8, "steps": 200, "qr_every": 1, "window": 25, "seed": 0}


def _inert(opt) -> set[int]:
    """Indices (into the state tuple) of buffers that never change for this optimiser."""
    names = opt.state_names
    out = set()
    if opt.name == "sgd" and "momentum" in opt.zero:
        out.add(names.index("momentum_buffer"))
    if opt.name == "rmsprop":
        if "momentum" in opt.zero:
            out.add(names.index("momentum_buffer"))
        if not opt.centered:
            out.add(names.index("grad_avg"))
    return out


def network_map(run: dict, init_path: str | Path, data_path: str | Path, device: str = "cpu",
                dtype: str | None = None):
    """The baseline's training map as a flat-state map ``F(x, t)`` for :mod:`pathdep.analysis.lyapunov`.

    Returns:
        ``(F, x0, info)`` where ``x0 (D,)`` is the baseline's initial state and ``info`` has
        ``P`` (weights), ``D`` (state size), ``n_steps``, ``to_weights(x) -> w``.
    """
    ctx = RunContext.build(run, data_path, device, dtype, load=True)
    dev, dt, opt = ctx.device, ctx.dtype, ctx.opt
    init = load_init(init_path)
    step = ctx.step()
    sched = ctx.schedule([int(init.members["seed_schedule"].iloc[0])])
    x_all, y_all = ctx.train_tensors()
    hp = ctx.hparams(0)
    w0 = torch.as_tensor(init.weights[0], dtype=dt, device=dev)
    state0 = opt.init(w0)
    inert = _inert(opt)
    active = [i for i in range(1, len(state0)) if i not in inert]
    P = w0.numel()

    def F(x: torch.Tensor, t: int) -> torch.Tensor:
        w = x[:P]
        bufs, off = [], P
        for i in range(1, len(state0)):
            if i in active:
                bufs.append(x[off:off + P])
                off += P
            else:
                bufs.append(state0[i])
        state = (torch.tensor(float(t), dtype=dt, device=dev), *bufs)
        idx = torch.as_tensor(sched.batch(t), device=dev)
        w2, s2, _ = step(w, state, x_all[idx], y_all[idx], hp)
        return torch.cat([w2, *[s2[i] for i in active]])

    x0 = torch.cat([w0, *[state0[i] for i in active]])
    info = {"P": P, "D": x0.numel(), "n_steps": sched.n_steps, "device": dev,
            "state": ["weights"] + [opt.state_names[i] for i in active], "dtype": str(dt)}
    return F, x0, info


def measured_rate(metrics_path: str | Path, max_step: int) -> tuple[float, float]:
    """Early exponential growth rate of the member-baseline distance (per step) and its
    standard error: least squares of ``log mean_k dist_k(t)`` on ``t`` for checkpoints with
    ``0 <= t <= max_step`` (members only; NaN when fewer than 3 usable checkpoints)."""
    ds = xr.load_dataset(metrics_path, engine="h5netcdf")
    step = ds["step"].values.astype(float)
    d = ds["dist"].values[1:]
    with np.errstate(all="ignore"):
        mean = np.nanmean(d, axis=0)
    ok = (step <= max_step) & np.isfinite(mean) & (mean > 0)
    if ok.sum() < 3:
        return float("nan"), float("nan")
    t, y = step[ok], np.log(mean[ok])
    A = np.vstack([t, np.ones_like(t)]).T
    coef, res, *_ = np.linalg.lstsq(A, y, rcond=None)
    n = len(t)
    s2 = float(((y - A @ coef) ** 2).sum()) / max(n - 2, 1)
    se = float(np.sqrt(s2 / ((t - t.mean()) ** 2).sum()))
    return float(coef[0]), se


def lyapunov_for_run(run: dict, init_path: str | Path, data_path: str | Path,
                     metrics_path: str | Path | None, out_path: str | Path, spec: dict | None = None,
                     device: str = "cpu", threads: int | None = None) -> xr.Dataset:
    """Benettin spectrum of a run's baseline and the measured divergence rate, as netCDF.

    Args:
        run: the resolved run config (checked against the one recorded in ``init.h5``).
        init_path, data_path: ``init.h5`` and the prepared dataset.
        metrics_path: the run's ``metrics.nc`` (for the measured rate), or None.
        out_path: the netCDF to write (``.partial`` then renamed).
        spec: ``lyapunov`` config block: ``k``, ``steps``, ``qr_every``, ``window``, ``seed``.

    Returns:
        Dataset with ``exponents (exponent)``, ``running (step, exponent)``,
        ``ftle (window, exponent)``, scalars ``lambda_max``, ``measured_rate``,
        ``measured_rate_se`` and attributes (config, provenance, sizes, timing).
    """
    import time

    if threads:
        torch.set_num_threads(int(threads))
    cfg = dict(DEFAULTS)
    for k_, v in (spec or {}).items():
        if k_ in DEFAULTS:
            cfg[k_] = v
    init = load_init(init_path)
    if canonical(init.config) != canonical(run):
        raise ValueError(f"{init_path}: init file was made from a different config than run "
                         f"{run.get('experiment')}/{run.get('run')}")
    F, x0, info = network_map(run, init_path, data_path, device)
    steps = min(int(cfg["steps"]), int(info["n_steps"]))
    qr = int(cfg["qr_every"])
    steps -= steps % qr
    k = min(int(cfg["k"]), int(info["D"]))
    t0 = time.perf_counter()
    res = ly.benettin(F, x0, steps, k, qr_every=qr, seed=int(cfg["seed"]), record=False)
    secs = time.perf_counter() - t0
    window = max(1, min(int(cfg["window"]) // qr, res.log_r.shape[0]))
    ft = ly.ftle(res.log_r, window, qr_every=qr).cpu().numpy()
    rate, se = measured_rate(metrics_path, steps) if metrics_path else (float("nan"), float("nan"))
    ds = xr.Dataset(
        {
            "exponents": (("exponent",), res.exponents.cpu().numpy()),
            "running": (("step", "exponent"), res.running.cpu().numpy()),
            "ftle": (("window", "exponent"), ft),
            "lambda_max": ((), float(res.exponents[0])),
            "measured_rate": ((), rate),
            "measured_rate_se": ((), se),
        },
        coords={"exponent": np.arange(1, k + 1), "step": np.arange(1, steps + 1),
                "window_end": ("window", (np.arange(ft.shape[0]) + 1) * window * qr)},
    )
    ds.attrs.update({"experiment": run.get("experiment", ""), "run": run.get("run", ""),
                     "swept": json.dumps(run.get("swept", {})), "k": k, "steps": steps, "qr_every": qr,
                     "state": json.dumps(info["state"]), "state_size": int(info["D"]), "n_params": int(info["P"]),
                     "benettin_seconds": secs, "seconds_per_step": secs / max(steps, 1),
                     "config": canonical(run), "lyapunov_config": json.dumps(cfg),
                     "provenance": json.dumps(collect(run, info["device"]), default=str)})
    write_netcdf(ds, out_path)
    return ds


def link_table(paths: list[str | Path]) -> "pandas.DataFrame":  # noqa: F821
    """One row per run: the Benettin maximal exponent vs the measured early divergence rate."""
    import pandas as pd

    rows = []
    for p in paths:
        ds = xr.load_dataset(p, engine="h5netcdf")
        rows.append({"experiment": ds.attrs["experiment"], "run": ds.attrs["run"],
                     "swept": ds.attrs["swept"], "steps": int(ds.attrs["steps"]), "k": int(ds.attrs["k"]),
                     "lambda_max": float(ds["lambda_max"]), "lambda_2": float(ds["exponents"][1]) if ds.sizes["exponent"] > 1 else np.nan,
                     "measured_rate": float(ds["measured_rate"]), "measured_rate_se": float(ds["measured_rate_se"]),
                     "ratio": float(ds["measured_rate"]) / float(ds["lambda_max"]) if float(ds["lambda_max"]) != 0 else np.nan,
                     "seconds_per_step": float(ds.attrs["seconds_per_step"])})
    return pd.DataFrame(rows)
