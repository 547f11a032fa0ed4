"""Lyapunov spectra of a run's training map, their link to the measured divergence, and
the 2-2-1 study's ROC table.

What it computes, for the baseline of one workflow run (rule ``lyapunov``):

* the training map ``x_t -> x_{t+1}`` rebuilt from the recorded config and initial weights
  (DESIGN invariant 6): the pure update map of :mod:`pathdep.core.dynamics` on the baseline's
  batch schedule, with state ``x = (w, optimiser buffers)`` (DESIGN invariant 2; buffers
  that are statically inert, e.g. SGD's momentum buffer at momentum 0, are left out so they
  do not add spurious zero exponents);
* the ``k`` leading Lyapunov exponents by Benettin's algorithm
  (:func:`pathdep.analysis.lyapunov.benettin`: ``torch.func.jvp`` tangents vmapped over the
  ``k`` vectors, QR with positive diagonal every ``qr_every`` steps). The first
  ``transient`` steps only align the random initial basis with the leading directions
  (Benettin et al., Meccanica 15, 9 (1980)); exponents are accumulated over the window
  ``[transient, transient + steps]``. Without the transient the first QRs add the log of a
  random vector's projection on the expanding subspace (about ``-log sqrt(D)/steps``), not
  a property of training. The running estimate over the window is stored so convergence
  can be judged; the error of ``lambda_max`` is the larger of the standard error of the
  leading finite-time exponents over ``steps // window`` windows (``std / sqrt(n)``) and
  half the range of the running estimate over the last half of the window (its drift);
* the measured growth rate of the distance between the perturbed members and the baseline
  (``metrics.nc``): the least-squares slope of ``log mean_k |w_k - w_0|`` against the step
  for the (log-spaced) checkpoints inside the SAME window ``[transient, transient + steps]``,
  with its standard error and the number of checkpoints used. For small relative
  perturbations (the tangent regime, ``eps |w_0|`` with ``eps <~ 1e-4``) the distance
  follows the tangent dynamics, so this rate is what ``lambda_max`` predicts
  (``|dZ(t)| ~ exp(lambda t) |dZ(0)|``, path-dependence-scaling-laws.txt); for large ones
  it saturates and falls below it. :func:`link_table` lists both, their errors and whether
  they agree within two combined standard errors; the ``tangent_experiment`` (an epsilon
  sweep on one baseline) adds one row per epsilon against a single Benettin run of that
  baseline, showing where the tangent regime ends.

For the 2-2-1 study (rule ``lyapunov_study``), :func:`study_roc` adds to
:func:`pathdep.analysis.lyapunov_study.roc_by_time` the Hanley-McNeil standard error of each
AUC (Radiology 143, 29 (1982)) next to the fold spread, and :func:`lyapunov_study` runs the
study, writes both datasets and draws the figures.

How it was checked (tests/stages/test_lyapunov.py, float64): the rebuilt map reproduces the
recorded baseline trajectory (1e-12); for a linear model with MSE loss the exponents equal
``log|1 - lr h_i|`` of the data Hessian; a finite-difference perturbation of relative size
1e-8 along the leading Lyapunov vector (Benettin, k = 1, after a transient) grows like the
accumulated ``log R_11`` (1e-4 over the window); the transient option equals dropping the
first QRs of a longer run; the measured rate recovers a planted exponential only inside the
window; the Hanley-McNeil error matches its closed form and the spread of AUCs of
resampled data.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import pathdep.analysis.lyapunov as ly
from pathdep.core.context import RunContext, canonical
from pathdep.io.atomic import write_csv, write_netcdf
from pathdep.io.provenance import collect
from pathdep.io.trajectory import load_init

#: ``transient`` steps align the basis (not accumulated); ``steps`` are accumulated;
#: ``window`` is the FTLE window (its spread gives the error of lambda_max).
DEFAULTS = {"k": 4, "transient": 100, "steps": 400, "qr_every": 1, "window": 50, "seed": 0}

#: Agreement criterion of the link table: |rate - lambda_max| <= AGREE_SIGMA combined errors.
AGREE_SIGMA = 2.0


def resolve_spec(spec: dict | None) -> dict:
    """Merge the ``lyapunov:`` block over :data:`DEFAULTS` (other keys, e.g. ``experiments``,
    are ignored) and check it.

    Raises:
        ValueError: ``lyapunov.<key>: ...`` for a bad value.
    """
    cfg = dict(DEFAULTS)
    for k_, v in (spec or {}).items():
        if k_ in DEFAULTS:
            cfg[k_] = v
    for k_ in DEFAULTS:
        lo = 0 if k_ in ("transient", "seed") else 1
        if int(cfg[k_]) != cfg[k_] or cfg[k_] < lo:
            raise ValueError(f"lyapunov.{k_}: expected an integer >= {lo}, got {cfg[k_]!r}")
    if cfg["transient"] % cfg["qr_every"] or cfg["steps"] % cfg["qr_every"]:
        raise ValueError(f"lyapunov.qr_every: expected a divisor of transient ({cfg['transient']}) "
                         f"and steps ({cfg['steps']}), got {cfg['qr_every']}")
    if cfg["window"] > cfg["steps"]:
        raise ValueError(f"lyapunov.window: expected <= steps ({cfg['steps']}), got {cfg['window']}")
    return cfg


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
    # with training.fast, the tangent map is the jvp of the hand-written step: the first layer's
    # tangents of all k vectors as one GEMM (pathdep.core.fast; equal to the generic to 1e-12)
    from pathdep.core.fast import make_fast_step, make_tangent_push, supports, supports_hvp

    fast = bool(run["training"].get("fast", False)) and supports(ctx.module) and type(ctx.module).__name__ == "MLP"
    step = make_fast_step(ctx.module, ctx.layout, ctx.loss, opt) if fast else ctx.step()
    sched = ctx.schedule([int(init.members["seed_schedule"].iloc[0])])
    x_all, y_all = ctx.train_tensors()
    hp = ctx.hparams(0)
    w0 = torch.as_tensor(init.weights[0], dtype=dt, device=dev)
    state0 = opt.init(w0)
    inert = _inert(opt)
    active = [i for i in range(1, len(state0)) if i not in inert]
    P = w0.numel()

    def split(x: torch.Tensor):
        """``(w, [buffer or None, ...])``: the weights and live buffers of a flat state (rows
        ``0 .. D-1`` of ``x``: also a ``(D, k)`` tangent basis); ``None`` for inert buffers."""
        parts, off = [], P
        for i in range(1, len(state0)):
            if i in active:
                parts.append(x[off:off + P])
                off += P
            else:
                parts.append(None)
        return x[:P], parts

    def at_step(bufs: list, t: int):
        """The optimiser state at step ``t`` (inert buffers from ``state0``) and the batch."""
        state = (torch.tensor(float(t), dtype=dt, device=dev),
                 *[state0[i + 1] if b is None else b for i, b in enumerate(bufs)])
        idx = torch.as_tensor(sched.batch(t), device=dev)
        return state, x_all[idx], y_all[idx]

    def pack(w: torch.Tensor, bufs, dim: int = 0) -> torch.Tensor:
        """The flat state of ``w`` and the live buffers ``bufs[i - 1]``, ``i`` in ``active``
        (``dim=1``: of ``(k, P)`` tangents, giving ``(k, D)``)."""
        return torch.cat([w, *[bufs[i - 1] for i in active]], dim=dim)

    def F(x: torch.Tensor, t: int) -> torch.Tensor:
        w, bufs = split(x)
        state, xb, yb = at_step(bufs, t)
        w2, s2, _ = step(w, state, xb, yb, hp)
        return pack(w2, s2[1:])

    x0 = torch.cat([w0, *[state0[i] for i in active]])
    info = {"P": P, "D": x0.numel(), "n_steps": sched.n_steps, "device": dev,
            "state": ["weights"] + [opt.state_names[i] for i in active], "dtype": str(dt),
            "push": None, "tangents": "jvp of the generic step"}
    if fast:
        info["tangents"] = "jvp of the hand-written step (pathdep.core.fast.make_fast_step)"
    if fast and supports_hvp(ctx.module):
        # hand-written Hessian-vector products: the k tangents share the primal pass and
        # the first layer's tangent and gradient tangent are one GEMM each (2.7x cheaper
        # than the jvp at k = 8; equal to it to 1e-12 in float64, tests/core/test_fast.py)
        tpush = make_tangent_push(ctx.module, ctx.layout, ctx.loss, opt)

        def push(x: torch.Tensor, Q: torch.Tensor, t: int):
            w, bufs = split(x)
            V, Vs = split(Q)  # (P, k) row blocks of the basis -> (k, P) tangents
            state, xb, yb = at_step(bufs, t)
            w2, s2, Vw, Vb = tpush(w, state, xb, yb, hp, V.t().contiguous(),
                                   [None if v is None else v.t().contiguous() for v in Vs])
            # (k, D) transposed: column-major (D, k), the layout LAPACK's QR reads in place
            return pack(w2, s2[1:]), pack(Vw, Vb, dim=1).t()

        info["push"] = push
        info["tangents"] = ("hand-written Hessian-vector products "
                            "(pathdep.core.fast.make_tangent_push)")
    return F, x0, info


def measured_rate(metrics_path: str | Path, start: float, stop: float) -> tuple[float, float, int]:
    """Exponential growth rate of the member-baseline distance inside a step window.

    Least squares of ``log mean_k dist_k(t)`` (members ``k >= 1`` of ``metrics.nc``'s
    ``dist (member, checkpoint)``) on ``t`` over the checkpoints with
    ``start <= t <= stop``.

    Returns:
        ``(rate per step, its standard error, number of checkpoints used)``; rate and error
        are NaN with fewer than 3 usable checkpoints (the error with fewer than 3).
    """
    ds = xr.load_dataset(metrics_path, engine="h5netcdf")
    step = ds["step"].values.astype(float)
    d = ds["dist"].values[1:]
    with np.errstate(all="ignore"):
        mean = np.nanmean(d, axis=0)
    ok = (step >= start) & (step <= stop) & np.isfinite(mean) & (mean > 0)
    n = int(ok.sum())
    if n < 3:
        return float("nan"), float("nan"), n
    t, y = step[ok], np.log(mean[ok])
    A = np.vstack([t, np.ones_like(t)]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    s2 = float(((y - A @ coef) ** 2).sum()) / (n - 2)
    se = float(np.sqrt(s2 / ((t - t.mean()) ** 2).sum())) if n > 2 else float("nan")
    return float(coef[0]), se, n


def lambda_error(running: np.ndarray, ftle_1: np.ndarray) -> dict:
    """Error of a Benettin ``lambda_max`` from its running estimate and its FTLEs.

    Args:
        running: ``(steps,)`` running estimate of the leading exponent.
        ftle_1: ``(n_windows,)`` leading finite-time exponents over consecutive windows.

    Returns:
        ``{"se": std(ftle_1) / sqrt(n_windows)`` (NaN for one window), ``"drift"``: half the
        range of ``running`` over its last half, ``"err"``: the larger of the two}.
    """
    n = len(ftle_1)
    se = float(np.std(ftle_1, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    tail = running[len(running) // 2:]
    tail = tail[np.isfinite(tail)]
    drift = float(0.5 * (tail.max() - tail.min())) if len(tail) else float("nan")
    return {"se": se, "drift": drift, "err": float(np.nanmax([se, drift]))}


def lyapunov_for_run(run: dict, init_path: str | Path, data_path: str | Path,
                     metrics_path: str | Path | None, out_path: str | Path, spec: dict | None = None,
                     device: str = "cpu", threads: int | None = None) -> xr.Dataset:
    """Benettin spectrum of a run's baseline and the measured divergence rate, as netCDF.

    Args:
        run: the resolved run config (checked against the one recorded in ``init.h5``).
        init_path, data_path: ``init.h5`` and the prepared dataset.
        metrics_path: the run's ``metrics.nc`` (for the measured rate), or None.
        out_path: the netCDF to write (atomically).
        spec: ``lyapunov`` config block: ``k``, ``transient``, ``steps``, ``qr_every``,
            ``window``, ``seed`` (:data:`DEFAULTS`).

    Returns:
        Dataset with ``exponents (exponent)``, ``running (step, exponent)`` (running
        estimate at steps ``transient + 1 .. transient + steps``), ``ftle (window,
        exponent)``, scalars ``lambda_max``, ``lambda_max_se``, ``lambda_max_drift``,
        ``lambda_max_err``, ``measured_rate``, ``measured_rate_se``, ``measured_points``
        and attributes (window, epsilon, config, provenance, timing).
    """
    if threads:
        torch.set_num_threads(int(threads))
    cfg = resolve_spec(spec)
    init = load_init(init_path)
    if canonical(init.config) != canonical(run):
        raise ValueError(f"{init_path}: init file was made from a different config than run "
                         f"{run.get('experiment')}/{run.get('run')}")
    F, x0, info = network_map(run, init_path, data_path, device)
    qr = int(cfg["qr_every"])
    n_steps = int(info["n_steps"])
    transient = min(int(cfg["transient"]), max(n_steps - qr, 0))
    transient -= transient % qr
    steps = min(int(cfg["steps"]), n_steps - transient)
    steps -= steps % qr
    if steps < qr:
        raise ValueError(f"lyapunov.steps: run {run.get('experiment')}/{run.get('run')} has only "
                         f"{n_steps} steps, fewer than transient + qr_every")
    k = min(int(cfg["k"]), int(info["D"]))
    t0 = time.perf_counter()
    res = ly.benettin(F, x0, steps, k, qr_every=qr, transient=transient, seed=int(cfg["seed"]),
                      record=False, push=info["push"])
    secs = time.perf_counter() - t0
    window = max(1, min(int(cfg["window"]) // qr, res.log_r.shape[0]))
    ft = ly.ftle(res.log_r, window, qr_every=qr).cpu().numpy()
    running = res.running.cpu().numpy()
    # lambda_max: the largest of the k exponents. Over a finite window with near-degenerate
    # leading exponents the QR order can lag (column 1's exponent is not yet the largest;
    # seen on the tanh net: lambda_1 = 1.6e-5 < lambda_2 = 1.2e-4 over 400 steps)
    exps = res.exponents.cpu().numpy()
    i_max = int(np.nanargmax(exps))
    err = lambda_error(running[:, i_max], ft[:, i_max])
    start, stop = transient, transient + steps
    if metrics_path:
        rate, se, npts = measured_rate(metrics_path, start, stop)
    else:
        rate, se, npts = float("nan"), float("nan"), 0
    pert = run.get("perturbation") or {}
    ds = xr.Dataset(
        {
            "exponents": (("exponent",), res.exponents.cpu().numpy()),
            "running": (("step", "exponent"), running),
            "ftle": (("window", "exponent"), ft),
            "lambda_max": ((), float(exps[i_max])),
            "lambda_max_se": ((), err["se"]),
            "lambda_max_drift": ((), err["drift"]),
            "lambda_max_err": ((), err["err"]),
            "measured_rate": ((), rate),
            "measured_rate_se": ((), se),
            "measured_points": ((), npts),
        },
        coords={"exponent": np.arange(1, k + 1), "step": np.arange(start + 1, stop + 1),
                "window_end": ("window", start + (np.arange(ft.shape[0]) + 1) * window * qr)},
    )
    ds["running"].attrs["description"] = "running Benettin estimate after each accumulated step"
    ds.attrs.update({"experiment": run.get("experiment", ""), "run": run.get("run", ""),
                     "swept": json.dumps(run.get("swept", {})), "k": k, "steps": steps,
                     "transient": transient, "window_start": start, "window_stop": stop, "lambda_max_index": i_max + 1,
                     "qr_every": qr, "ftle_window": window * qr,
                     "epsilon": float(pert.get("epsilon", float("nan"))),
                     "perturbation": json.dumps(pert, sort_keys=True),
                     "state": json.dumps(info["state"]), "state_size": int(info["D"]), "n_params": int(info["P"]),
                     "benettin_seconds": secs, "seconds_per_step": secs / max(steps + transient, 1),
                     "tangents": info["tangents"],
                     "config": canonical(run), "lyapunov_config": json.dumps(cfg),
                     "provenance": json.dumps(collect(run, info["device"]), default=str)})
    write_netcdf(ds, out_path)
    return ds


def _agree(lam: float, lam_err: float, rate: float, rate_se: float) -> tuple[float, bool]:
    """``(|rate - lam| / combined error, agreement within AGREE_SIGMA)``."""
    comb = math.sqrt(np.nan_to_num(lam_err) ** 2 + np.nan_to_num(rate_se) ** 2)
    if not (np.isfinite(lam) and np.isfinite(rate)) or comb == 0:
        return float("nan"), False
    z = abs(rate - lam) / comb
    return z, bool(z <= AGREE_SIGMA)


def _row(ds: xr.Dataset, experiment: str, run: str, swept: str, epsilon: float,
         rate: float, se: float, npts: int) -> dict:
    lam, lam_err = float(ds["lambda_max"]), float(ds["lambda_max_err"])
    z, ok = _agree(lam, lam_err, rate, se)
    return {"experiment": experiment, "run": run, "swept": swept, "epsilon": epsilon,
            "window_start": int(ds.attrs["window_start"]), "window_stop": int(ds.attrs["window_stop"]),
            "k": int(ds.attrs["k"]), "lambda_max": lam, "lambda_max_err": lam_err,
            "lambda_max_se": float(ds["lambda_max_se"]), "lambda_max_drift": float(ds["lambda_max_drift"]),
            "lambda_2": float(ds["exponents"][1]) if ds.sizes["exponent"] > 1 else np.nan,
            "measured_rate": rate, "measured_rate_se": se, "measured_points": int(npts),
            "z": z, "agree": ok,
            "ratio": rate / lam if lam != 0 else np.nan,
            "seconds_per_step": float(ds.attrs["seconds_per_step"])}


def link_table(paths: list[str | Path], tangent: dict | None = None) -> "pandas.DataFrame":  # noqa: F821
    """The link table: Benettin ``lambda_max`` +- error against the measured rate +- se.

    Args:
        paths: ``lyapunov.nc`` of runs (one row each, with that run's own measured rate).
        tangent: optional epsilon sweep on ONE baseline: ``{"spectrum": lyapunov.nc of one
            of its runs, "metrics": {run name: metrics.nc}, "epsilon": {run name: eps}}``;
            one row per run with the rate measured over the spectrum's window against that
            single ``lambda_max`` (rows of ``paths`` from the same experiment are dropped).

    Returns:
        ``pandas.DataFrame`` with columns ``experiment, run, swept, epsilon, window_start,
        window_stop, k, lambda_max, lambda_max_err, lambda_max_se, lambda_max_drift,
        lambda_2, measured_rate, measured_rate_se, measured_points, z`` (difference in
        combined errors), ``agree`` (``z <= AGREE_SIGMA``), ``ratio``, ``seconds_per_step``, ``tangent`` (row of
        the epsilon sweep).
    """
    import pandas as pd

    rows = []
    skip = None
    if tangent:
        ref = xr.load_dataset(tangent["spectrum"], engine="h5netcdf")
        skip = ref.attrs["experiment"]
        start, stop = int(ref.attrs["window_start"]), int(ref.attrs["window_stop"])
        for name, mpath in tangent["metrics"].items():
            rate, se, npts = measured_rate(mpath, start, stop)
            eps = float(tangent.get("epsilon", {}).get(name, float("nan")))
            rows.append(_row(ref, skip, name, json.dumps({"epsilon": eps}), eps, rate, se, npts)
                        | {"tangent": True})
    for p in paths:
        ds = xr.load_dataset(p, engine="h5netcdf")
        if ds.attrs["experiment"] == skip:
            continue
        rows.append(_row(ds, ds.attrs["experiment"], ds.attrs["run"], ds.attrs["swept"],
                         float(ds.attrs.get("epsilon", np.nan)), float(ds["measured_rate"]),
                         float(ds["measured_rate_se"]), int(ds["measured_points"])) | {"tangent": False})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- 2-2-1 study


def hanley_mcneil_se(auc, n_pos, n_neg):
    """Standard error of an ROC AUC (Hanley & McNeil, Radiology 143, 29 (1982), eq. 2).

    ``SE^2 = [A(1-A) + (n_pos-1)(Q1-A^2) + (n_neg-1)(Q2-A^2)] / (n_pos n_neg)`` with
    ``Q1 = A/(2-A)``, ``Q2 = 2A^2/(1+A)``; broadcasts over arrays; NaN without both classes.
    """
    A = np.asarray(auc, dtype=float)
    p, n = np.asarray(n_pos, dtype=float), np.asarray(n_neg, dtype=float)
    q1, q2 = A / (2 - A), 2 * A ** 2 / (1 + A)
    with np.errstate(all="ignore"):
        v = (A * (1 - A) + (p - 1) * (q1 - A ** 2) + (n - 1) * (q2 - A ** 2)) / (p * n)
        return np.where((p > 0) & (n > 0), np.sqrt(np.maximum(v, 0)), np.nan)


#: Indicators of the study figures (at most four per panel).
STUDY_INDICATORS = ("loss", "ftle", "clv_min_angle", "all")


def study_roc(study: xr.Dataset, indicators=STUDY_INDICATORS, n_folds: int = 5, seed: int = 0) -> xr.Dataset:
    """:func:`pathdep.analysis.lyapunov_study.roc_by_time` plus ``auc_se`` (Hanley-McNeil,
    dims ``(activation, init_range, indicator, time)``), ``n_networks`` and ``max_auc_se``."""
    from pathdep.analysis.lyapunov_study import roc_by_time

    roc = roc_by_time(study, indicators=tuple(indicators), n_folds=n_folds, seed=seed)
    n_pos = roc["n_failed"]
    n_all = study.sizes["network"]
    n_pos = n_pos.broadcast_like(roc["auc"]).transpose(*roc["auc"].dims)  # (activation, init_range) -> auc's dims
    se = hanley_mcneil_se(roc["auc"].values, n_pos.values, n_all - n_pos.values)
    roc["auc_se"] = (roc["auc"].dims, np.asarray(se))
    roc["auc_se"].attrs["description"] = "Hanley-McNeil (1982) standard error of the AUC"
    roc["auc_std"].attrs["description"] = "standard deviation of the AUC over the CV folds"
    roc.attrs["n_networks"] = int(n_all)
    roc.attrs["max_auc_se"] = float(np.nanmax(se)) if np.isfinite(se).any() else float("nan")
    return roc


def _plain_attrs(ds: xr.Dataset) -> xr.Dataset:
    """str subclasses in attributes (torch's TorchVersion, np.str_) as plain str (h5netcdf)."""
    ds.attrs = {k: str(v) if isinstance(v, str) else v for k, v in ds.attrs.items()}
    return ds


def lyapunov_study(spec: dict, study_path: str | Path, roc_path: str | Path,
                   table_path: str | Path | None = None, threads: int | None = None):
    """Run the 2-2-1 study and write ``study.nc``, ``roc.nc`` (with Hanley-McNeil errors) and
    an AUC table (the figures are drawn by :func:`pathdep.plots.lyapunov.plot_study`).

    Args:
        spec: the ``lyapunov.study`` block (:func:`pathdep.analysis.lyapunov_study.resolve_config`).
        study_path, roc_path: netCDF outputs.
        table_path: optional CSV: AUC, fold std and Hanley-McNeil SE per (activation,
            init range, indicator, time).
        threads: torch threads.

    Returns:
        ``(study, roc)`` datasets.
    """
    from pathdep.analysis.lyapunov_study import run_study

    if threads:
        torch.set_num_threads(int(threads))
    study = _plain_attrs(run_study(dict(spec)))
    study.attrs["provenance"] = json.dumps(collect(dict(spec), "cpu"), default=str)
    write_netcdf(study, study_path)
    roc = _plain_attrs(study_roc(study))
    roc.attrs["provenance"] = study.attrs["provenance"]
    write_netcdf(roc, roc_path)
    if table_path:
        df = roc[["auc", "auc_std", "auc_se"]].to_dataframe().reset_index()
        frac = study["failure_fraction"].to_dataframe().reset_index()
        write_csv(df.merge(frac, on=["activation", "init_range"]), table_path)
    return study, roc
