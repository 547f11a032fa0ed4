"""NTK experiments of the seed (ntk-gradient-descent-wide-networks), file in / file out.

What it computes (rule family ``rules/ntk.smk``; settings: the ``ntk:`` config block):

* :func:`width_sweep` (4a): NTK-parameterised MLPs of growing width trained by full-batch
  gradient descent on MSE (one-hot targets) at one learning rate for every width,
  ``lr_factor * 2/lambda_0`` of the infinite-width (analytic) NTK; the relative
  Frobenius change from init to the end of the parameters, of the empirical NTK (traced
  over outputs, on ``n_probe`` training inputs) and of the empirical NNGP kernel (the
  read-out layer's input Gram, ``sigma_w^2 phi phi^T / n + sigma_b^2``), with fitted
  exponents ``~ width^a`` over all widths and over ``widths >= tail_min_width``. Measured
  on the defaults (docs/ntk.md): parameters -0.49, NTK -0.86 (tail -0.96), NNGP -0.88:
  ``n^-1/2`` for the parameters, ``~n^-1`` for the kernels (their leading finite-width
  order, Dyer & Gur-Ari 2020; Lee et al.'s ``n^-1/2`` is an upper bound).
* :func:`linearization` (4b): a network and its linearisation ``f_lin`` trained by the same
  pure update map (:func:`pathdep.core.dynamics.make_step` with ``apply`` replaced by
  ``f_lin``) on :func:`pathdep.core.loop.run_loop`, the same SGD-with-momentum
  optimizer and the same batches, for cross-entropy and MSE: RMS logit deviation on test
  inputs over training, vs width.
* :func:`kernel_regression` (4c): on ``n_train`` points with a scalar +-1 target, the
  closed-form mean ``mu_t`` and variance of ``gamma_t`` (Lee et al. 2019) from the
  analytic NTK/NNGP at init, against the mean and variance over an ensemble of
  ``members`` networks trained together (``make_ensemble_step``), and one wide network
  against its own linear prediction (empirical NTK at its init, its own ``f_0``).
* :func:`catapult` (4d): ``lambda_0`` (top eigenvalue of the empirical NTK / D), a
  learning-rate sweep across ``2/lambda_0`` and ``4/lambda_0`` (full-batch GD on MSE): loss
  curves, the top NTK eigenvalue at the end, the catapult classification, the measured
  ``eta_crit`` bracket (largest factor whose loss never rises, smallest one whose loss
  does); the seed's two-scalar ``(f, lambda)`` map on the same grid of ``eta lambda_0``.
  Defaults: eta_crit in [0.95, 1.05] x 2/lambda_0, catapult for 1.1-5 x 2/lambda_0,
  divergence from 6 x 2/lambda_0.
* :func:`kernel_change` (4e): the relative Frobenius distance between the empirical NTK of
  each perturbed member and the baseline's at every checkpoint of the width experiment's
  trajectories, on a fixed seeded subset of test inputs.
* :func:`path_vs_width` (4e): divergence of the perturbed copies vs width, read from the
  ``metrics.nc`` of an existing width experiment, and the permutation-aligned distance and
  the raw/aligned interpolation barriers from its geometry files.

Inputs: a prepared dataset (``results/data/<name>.h5``); images are average-pooled by
``pool`` and every input is scaled to ``|x|^2 = d`` (so ``x x^T / d`` has unit diagonal).
All randomness comes from ``numpy.random.SeedSequence(ntk.seed)``. Settings:
:mod:`pathdep.config.ntk`; numerics: :mod:`pathdep.analysis.ntk` (kernels) and
:mod:`pathdep.analysis.ntk_dynamics` (networks, training loops, summaries).

How it was checked: the numerics are those of tests/analysis/test_ntk.py;
tests/stages/test_ntk.py runs every function on tiny settings and checks invariants
(a linearised network at its init equals the network; the ensemble variance at step 0
matches the NNGP; the catapult labels follow the loss curves).
"""

from __future__ import annotations

import json

import numpy as np
import torch
import xarray as xr

from pathdep.analysis import ntk as K
from pathdep.analysis import ntk_dynamics as D
from pathdep.analysis import ntk_empirical as E
from pathdep.analysis.replicates import labels, own_baseline, per_baseline
from pathdep.config.ntk import SECTIONS, resolve
from pathdep.io.atomic import write_netcdf
from pathdep.io.provenance import collect

_EXPONENTS = ("dist", "dist_over_init", "fs_l2_logits", "dist_aligned", "barrier_raw", "barrier_aligned")
_METRICS = ("dist", "dist_rel", "dist_over_init", "fs_l2_logits")


def _dtype(cfg):
    return {"float32": torch.float32, "float64": torch.float64}[cfg.get("dtype", "float32")]


def _net(cfg: dict, dtype) -> dict:
    """Keyword arguments of :func:`pathdep.analysis.ntk_dynamics.ntk_mlp` from the settings."""
    return {"activation": cfg["activation"], "sigma_w": cfg["sigma_w"], "sigma_b": cfg["sigma_b"], "dtype": dtype}


def load_inputs(data_path, n_train: int, n_test: int, pool: int, seed: int, dtype=torch.float32):
    """Seeded subsets ``(x_train (n, d), labels_train, x_test, labels_test, n_classes)``.

    Images ``(C, H, W)`` are average-pooled by ``pool``; every input is rescaled to
    ``|x|^2 = d`` (:func:`pathdep.analysis.ntk_dynamics.normalize_inputs`).
    """
    from pathdep.data import load_dataset

    data = load_dataset(data_path)
    rng = np.random.default_rng([int(seed), 11])
    out = []
    for x, y, n in ((data.x_train, data.y_train, n_train), (data.x_test, data.y_test, n_test)):
        idx = np.sort(rng.choice(len(x), size=min(int(n), len(x)), replace=False))
        xs = D.normalize_inputs(x[torch.as_tensor(idx)].to(torch.float64), pool)
        out += [xs.to(dtype), y[torch.as_tensor(idx)]]
    n_classes = int(max(int(out[1].max()), int(out[3].max())) + 1) if out[1].dtype in (torch.int64, torch.int32) else 1
    return out[0], out[1], out[2], out[3], n_classes


def _attrs(cfg, name, extra, data_path):
    return {"section": name, "ntk_config": json.dumps(cfg), "dataset_file": str(data_path),
            "provenance": json.dumps(collect(cfg, "cpu"), default=str), **extra}


def _add_exponents(ds: xr.Dataset, widths, tail_min_width: float) -> None:
    """Fitted ``~ width^a`` exponents of the 4a changes, over all widths and the tail."""
    tail = np.asarray(widths) >= tail_min_width
    for q in ("dparams", "dntk", "dnngp"):
        a, se = K.fit_exponent(widths, ds[q].values)
        ds[f"exponent_{q}"], ds[f"exponent_{q}_se"] = ((), a), ((), se)
        a, se = K.fit_exponent(np.asarray(widths)[tail], ds[q].values[tail])
        ds[f"exponent_{q}_tail"], ds[f"exponent_{q}_tail_se"] = ((), a), ((), se)


# ----------------------------------------------------------------------------- 4a
def width_sweep(spec: dict, data_path, out_path) -> xr.Dataset:
    """Relative change of parameters, empirical NTK and NNGP from init to end vs width."""
    cfg = resolve(spec)
    s = cfg["width_sweep"]
    dt = _dtype(cfg)
    x, y, _, _, C = load_inputs(data_path, s["n_train"], 1, cfg["pool"], cfg["seed"], dt)
    xp = x[: int(s["n_probe"])]
    widths = [int(v) for v in s["widths"]]
    seeds = D.section_seeds(cfg["seed"], "width_sweep", len(widths))
    # One learning rate for every width: lr_factor * 2 / lambda_0 of the infinite-width NTK
    # (NTK parameterisation: the kernel, hence eta_crit, is width-independent, so a fixed
    # lr at a fixed number of steps is the setting of the width-scaling theory).
    _, th_inf = K.analytic_kernels(x.double().numpy(), depth=int(s["depth"]), sigma_w=cfg["sigma_w"],
                                   sigma_b=cfg["sigma_b"], activation=cfg["activation"])
    lam_inf = K.lambda_max(torch.as_tensor(th_inf))
    lr = float(s["lr_factor"]) * K.eta_crit(lam_inf)
    points = [D.width_point(x, xp, D.onehot(y, C, dt), width, int(s["depth"]), seed, lr, int(s["steps"]),
                            _net(cfg, dt)) for width, seed in zip(widths, seeds)]
    ds = xr.Dataset({k: (("width",), np.asarray([p[k] for p in points], dtype=float)) for k in points[0]},
                    coords={"width": widths})
    _add_exponents(ds, widths, float(s["tail_min_width"]))
    ds["lambda0_infinite"] = ((), lam_inf)
    _, _, apply_w, w_w = D.ntk_mlp(x.shape[1], widths[-1], int(s["depth"]), C, seed=seeds[-1], **_net(cfg, dt))
    ds.attrs.update(_attrs(cfg, "width_sweep", {"n_train": len(x), "n_probe": len(xp), "outputs": C,
                                                "tail_min_width": float(s["tail_min_width"]),
                                                "ntk_method": json.dumps(E.plan(apply_w, w_w, xp, trace=True))},
                           data_path))
    write_netcdf(ds, out_path)
    return ds


# ----------------------------------------------------------------------------- 4b
def linearization(spec: dict, data_path, out_path) -> xr.Dataset:
    """Network vs linearisation, same optimizer and batches: logit deviation vs width."""
    cfg = resolve(spec)
    s = cfg["linearization"]
    dt = _dtype(cfg)
    x, y, xt, yt, C = load_inputs(data_path, s["n_train"], s["n_test"], cfg["pool"], cfg["seed"], dt)
    widths = [int(v) for v in s["widths"]]
    losses = list(s["losses"])
    steps, bs = int(s["steps"]), int(s["batch_size"])
    ck = D.log_checkpoints(steps, s["checkpoints"])
    lrs = s["lr"] if isinstance(s["lr"], dict) else {q: s["lr"] for q in losses}
    order = D.batch_order(len(x), steps, bs, D.section_seeds(cfg["seed"], "linearization", 1)[0])
    seeds = D.section_seeds(cfg["seed"], "linearization_init", len(widths))
    dev, rel, acc = D.linearization_sweep(x, y, xt, yt, C, widths, seeds, losses, {q: float(lrs[q]) for q in losses},
                                          float(s["momentum"]), int(s["depth"]), steps, bs, order, ck, _net(cfg, dt))
    ds = xr.Dataset({"logit_deviation": (("loss", "width", "checkpoint"), dev),
                     "relative_deviation": (("loss", "width", "checkpoint"), rel),
                     "test_accuracy": (("loss", "width", "model"), acc)},
                    coords={"loss": losses, "width": widths, "step": ("checkpoint", ck), "model": ["network", "linearized"],
                            "lr": ("loss", [float(lrs[q]) for q in losses])})
    ds.attrs.update(_attrs(cfg, "linearization", {"loop": "pathdep.core.loop.run_loop (pathdep.core.dynamics.make_step)",
                                                  "momentum": float(s["momentum"]), "batch_size": bs},
                           data_path))
    write_netcdf(ds, out_path)
    return ds


# ----------------------------------------------------------------------------- 4c
def kernel_regression(spec: dict, data_path, out_path) -> xr.Dataset:
    """Closed-form MSE dynamics vs an ensemble and vs one wide network."""
    cfg = resolve(spec)
    s = cfg["kernel_regression"]
    dt = torch.float64
    x, y, xt, yt, _ = load_inputs(data_path, s["n_train"], s["n_test"], cfg["pool"], cfg["seed"], dt)
    Y = D.pm1(y, dt)
    steps = int(s["steps"])
    ck = D.linear_checkpoints(steps, s["checkpoints"])
    pred, lam0, lr = D.kernel_theory(x, xt, Y, ck, s["lr_factor"], s["depth"], cfg["sigma_w"], cfg["sigma_b"],
                                     cfg["activation"])
    # An ensemble of `members` networks of width `width` (one vmapped update map), and one
    # wide network against its own linear prediction (empirical NTK at its init).
    Kn = int(s["members"])
    seeds = D.section_seeds(cfg["seed"], "kernel_regression", Kn + 1)
    nets = [D.ntk_mlp(x.shape[1], s["width"], s["depth"], 1, seed=sd, **_net(cfg, dt)) for sd in seeds[:Kn]]
    _, _, apply1, w1 = D.ntk_mlp(x.shape[1], s["single_width"], s["depth"], 1, seed=seeds[Kn], **_net(cfg, dt))
    own = D.own_linear_prediction(apply1, w1, x, xt, Y[:, 0], ck, lr)
    ens, single = D.ensemble_and_single(nets[0][2], torch.stack([n_[3] for n_ in nets]), apply1, w1, x, Y, xt, lr,
                                        steps, ck)
    ds = xr.Dataset({
        "theory_mean": (("checkpoint", "point"), pred["mean"][..., 0]),
        "theory_var": (("checkpoint", "point"), pred["var"]),
        "ensemble_mean": (("checkpoint", "point"), ens.mean(1)),
        "ensemble_var": (("checkpoint", "point"), ens.var(1, ddof=1)),
        "single": (("checkpoint", "point"), single),
        "single_linear": (("checkpoint", "point"), own["f"]),
        "target": (("point",), D.pm1(yt, dt)[:, 0].numpy()),
        "lambda0": ((), lam0), "lr": ((), lr),
    }, coords={"step": ("checkpoint", ck), "point": np.arange(len(xt))})
    method = E.plan(apply1, w1, torch.cat([x, xt]), trace=True)  # the single network's own NTK
    ds.attrs.update(_attrs(cfg, "kernel_regression", {"members": Kn, "n_train": len(x),
                                                      "ntk_method": json.dumps(method)}, data_path))
    write_netcdf(ds, out_path)
    return ds


# ----------------------------------------------------------------------------- 4d
def catapult(spec: dict, data_path, out_path) -> xr.Dataset:
    """Learning-rate sweep across 2/lambda_0 and 4/lambda_0, and the two-scalar map."""
    cfg = resolve(spec)
    s = cfg["catapult"]
    dt = torch.float64
    x, y, _, _, _ = load_inputs(data_path, s["n_train"], 1, cfg["pool"], cfg["seed"], dt)
    seed = D.section_seeds(cfg["seed"], "catapult", 1)[0]
    _, _, apply, w0 = D.ntk_mlp(x.shape[1], s["width"], s["depth"], 1, seed=seed, **_net(cfg, dt))
    th0, plan = K.empirical_ntk(apply, w0, x, trace=True, return_plan=True)
    lam0 = K.lambda_max(th0)
    factors = np.sort(np.asarray(s["eta_factors"], dtype=float))   # eta / (2 / lambda_0), ascending
    steps = int(s["steps"])
    loss, lam_end = D.lr_sweep(apply, w0, x, D.pm1(y, dt), lam0, factors, steps)
    ph = D.catapult_phases(loss, factors)
    # the seed's two-scalar map with n = width, on the same eta lambda_0 grid (lambda_0 = 1)
    f_map, l_map = D.two_scalar_sweep(D.rms_output(apply, w0, x), factors, s["width"], steps)
    ds = xr.Dataset({
        "loss": (("eta_factor", "step"), loss),
        "lambda_end": (("eta_factor",), lam_end),
        "kernel_change": (("eta_factor",), lam_end / lam0 - 1.0),
        "catapult": (("eta_factor",), ph["catapult"].astype(int)),
        "diverged": (("eta_factor",), ph["diverged"].astype(int)),
        "map_f": (("eta_factor", "step"), f_map), "map_lambda": (("eta_factor", "step"), l_map),
        "lambda0": ((), lam0), "eta_crit": ((), 2.0 / lam0),
        "loss_rose": (("eta_factor",), ph["loss_rose"].astype(int)),
        "catapult_onset_factor": ((), float(ph["onset"])), "divergence_factor": ((), float(ph["divergence"])),
        "eta_crit_measured_lo_factor": ((), ph["crit_lo"]), "eta_crit_measured_hi_factor": ((), ph["crit_hi"]),
    }, coords={"eta_factor": factors, "eta": ("eta_factor", factors * 2.0 / lam0), "step": np.arange(steps + 1)})
    ds.attrs.update(_attrs(cfg, "catapult", {"n_train": len(x), "width": int(s["width"]),
                                             "ntk_method": json.dumps(plan)}, data_path))
    write_netcdf(ds, out_path)
    return ds


# ----------------------------------------------------------------------------- 4e
def _run_width(attrs_config: str) -> int:
    run = json.loads(attrs_config)
    if run["model"].get("kind") == "resnet":   # channel multiplier (an inherited MLP `hidden` is ignored)
        return int(run["model"].get("width", 1))
    return int(run["model"]["hidden"][0]) if run["model"].get("hidden") else int(run["model"]["width"])


def _replicates(values, bl, cp):
    """The values to summarise: each replicate baseline's copies averaged, ``(R,)``; with one
    baseline, its copies' own values (no interval across baselines exists)."""
    values = np.asarray(values)
    return values[cp > 0] if bl.max() < 1 else per_baseline(values, bl, cp)


def _geometry_values(path, width: int, metrics_path) -> dict:
    """Perturbed copies' last aligned distance and the last test barriers of one geometry file."""
    with xr.open_dataset(path) as an:
        if _run_width(an.attrs["config"]) != width:
            raise ValueError(f"{path}: width differs from {metrics_path}")
        bar = an["barrier"].sel(split="test").isel(icheckpoint=-1)
        bl, cp = labels(an)
        rows = an["imember"].values.astype(int)
        return {"dist_aligned": _replicates(D.at_last_complete(an["dist_aligned"].values), bl, cp),
                "barrier_raw": _replicates(bar.sel(align="raw").values, bl[rows], cp[rows]),
                "barrier_aligned": _replicates(bar.sel(align="aligned").values, bl[rows], cp[rows])}


def _width_row(metrics_path, geometry_path=None) -> tuple[int, dict, int]:
    """(width, {quantity: (mean, std)}, final step) of one run: each replicate baseline's copies
    averaged, then mean and std across baselines (one baseline: across its copies)."""
    with xr.open_dataset(metrics_path) as m:
        width = _run_width(m.attrs["config"])
        bl, cp = labels(m)
        last = D.last_complete(m["dist"].values)
        vals = {q: _replicates(m[q].isel(checkpoint=last).values, bl, cp) for q in _METRICS}
        final_step = int(m["step"].values[last])
    if geometry_path is not None:
        vals.update(_geometry_values(geometry_path, width, metrics_path))
    return width, {q: D.mean_std(v) for q, v in vals.items()}, final_step


def path_vs_width(metrics_paths, out_path, geometry_paths=None) -> xr.Dataset:
    """Path dependence vs hidden width from a width experiment.

    From each run's ``metrics.nc``: the final weight distance ``dist``, ``dist_rel``,
    ``dist_over_init`` and the function-space ``fs_l2_logits`` of the perturbed copies
    (each replicate baseline's copies averaged; mean and std across the baselines, or across
    the copies of a run with one baseline). From its geometry file (optional, same order): the
    permutation-aligned distance ``dist_aligned`` at the last aligned checkpoint and the
    linear interpolation barrier (Entezari et al. 2022) on the test subset at the last
    interpolation checkpoint, raw and after alignment (``barrier_raw``,
    ``barrier_aligned``). Exponents ``~ width^a`` are fitted to the means.
    """
    geometry_paths = list(geometry_paths or [])
    if geometry_paths and len(geometry_paths) != len(metrics_paths):
        raise ValueError("ntk.path_experiment: one geometry.nc per metrics.nc expected")
    rows = sorted((_width_row(p, geometry_paths[i] if geometry_paths else None) for i, p in enumerate(metrics_paths)),
                  key=lambda r: r[0])
    widths = [r[0] for r in rows]
    data = {}
    for q in rows[0][1]:
        data[q] = (("width",), np.array([r[1][q][0] for r in rows]))
        data[f"{q}_std"] = (("width",), np.array([r[1][q][1] for r in rows]))
    ds = xr.Dataset(data, coords={"width": widths, "final_step": ("width", [r[2] for r in rows])})
    for q in [q for q in _EXPONENTS if q in ds]:
        a, se = K.fit_exponent(widths, ds[q].values)
        ds[f"exponent_{q}"], ds[f"exponent_{q}_se"] = ((), a), ((), se)
    ds.attrs.update({"section": "path_vs_width", "sources": json.dumps([str(p) for p in metrics_paths]),
                     "analysis_sources": json.dumps([str(p) for p in geometry_paths]),
                     "provenance": json.dumps(collect({}, "cpu"), default=str)})
    write_netcdf(ds, out_path)
    return ds


def _run_kernel_change(traj_path, data_path, n_inputs: int, seed: int, max_mb: float):
    """(width, steps, (C, K) distances (NaN for the baselines), plan) of one width-experiment trajectory."""
    from pathdep.core.context import RunContext
    from pathdep.data import load_dataset
    from pathdep.io.trajectory import Trajectory

    with Trajectory(traj_path) as tr:
        ctx = RunContext.build(tr.config, data_path, device="cpu")
        xt = load_dataset(data_path).x_test
        idx = np.sort(np.random.default_rng([int(seed), 17]).choice(len(xt), min(int(n_inputs), len(xt)), False))
        x = xt[torch.as_tensor(idx)].to(ctx.dtype)
        weights = (torch.as_tensor(tr.weights(c)).to(ctx.dtype) for c in range(tr.n_checkpoints))
        bufs = None
        if getattr(ctx, "has_buffers", False):  # BN: eval mode with each member's own running statistics
            bufs = (torch.as_tensor(tr.buffers(c)).to(ctx.dtype) for c in range(tr.n_checkpoints))
        dist, plan = D.kernel_change(ctx.apply, weights, x, max_mb, own_baseline(*labels(tr.members)),
                                     buffers=bufs, apply_b=getattr(ctx, "apply_b", None))
        return _run_width(json.dumps(tr.config)), tr.steps.astype(np.int64), dist, plan


def kernel_change(spec: dict, trajectory_paths, data_paths, out_path, max_mb: float = 256.0,
                  threads: int | None = None) -> xr.Dataset:
    """Relative Frobenius distance of each perturbed member's empirical NTK from the
    baseline's over training, per width (the width experiment's trajectories; the same
    seeded ``kernel_change_inputs`` test inputs for every width; the NTK's plan per width in
    the ``ntk_method`` attribute)."""
    if threads:
        torch.set_num_threads(int(threads))
    cfg = resolve(spec)
    rows = sorted((_run_kernel_change(t, d, cfg["kernel_change_inputs"], cfg["seed"], max_mb)
                   for t, d in zip(trajectory_paths, data_paths)), key=lambda r: r[0])
    C = max(len(r[1]) for r in rows)
    M = max(r[2].shape[1] for r in rows)
    dist = np.full((len(rows), C, M), np.nan)
    steps = np.full((len(rows), C), -1, dtype=np.int64)
    for i, (_, st, d, _) in enumerate(rows):
        dist[i, :d.shape[0], :d.shape[1]] = d
        steps[i, :len(st)] = st
    ds = xr.Dataset({"kernel_change": (("width", "checkpoint", "member"), dist),
                     "step": (("width", "checkpoint"), steps)},
                    coords={"width": [r[0] for r in rows], "member": np.arange(M)})
    ds.attrs.update({"section": "kernel_change", "n_inputs": int(cfg["kernel_change_inputs"]),
                     "ntk_method": json.dumps([r[3] for r in rows]), "ntk_config": json.dumps(cfg),
                     "sources": json.dumps([str(p) for p in trajectory_paths]),
                     "provenance": json.dumps(collect(cfg, "cpu"), default=str)})
    write_netcdf(ds, out_path)
    return ds


RUNNERS = {"width_sweep": width_sweep, "linearization": linearization, "kernel_regression": kernel_regression,
           "catapult": catapult}


def run_section(name: str, spec: dict, data_path, out_path, threads: int | None = None) -> xr.Dataset:
    """Run NTK section ``name`` (one of :data:`pathdep.config.ntk.SECTIONS`) with ``threads`` torch threads."""
    if threads:
        torch.set_num_threads(int(threads))
    if name not in RUNNERS:
        raise ValueError(f"ntk: unknown section {name!r} (expected one of: {', '.join(SECTIONS)})")
    return RUNNERS[name](spec, data_path, out_path)
