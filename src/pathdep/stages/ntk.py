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
  ``f_lin``; pathdep has no separate loop module yet), the same SGD-with-momentum
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
* :func:`path_vs_width` (4e): divergence of the perturbed copies vs width, read from the
  ``metrics.nc`` of an existing width experiment, and the permutation-aligned distance and
  the raw/aligned interpolation barriers from its ``analysis.nc``.

Inputs: a prepared dataset (``results/data/<name>.h5``); images are average-pooled by
``pool`` and every input is scaled to ``|x|^2 = d`` (so ``x x^T / d`` has unit diagonal).
All randomness comes from ``numpy.random.SeedSequence(ntk.seed)``.

How it was checked: the numerics are those of tests/analysis/test_ntk.py;
tests/stages/test_ntk.py runs every function on tiny settings and checks invariants
(a linearised network at its init equals the network; the ensemble variance at step 0
matches the NNGP; the catapult labels follow the loss curves).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from pathdep.analysis import ntk as K
from pathdep.core.dynamics import loss_value, make_ensemble_step, make_step
from pathdep.core.init import init_params
from pathdep.core.models import MLP, Layout, make_apply
from pathdep.core.optim import optimizer_from_config
from pathdep.io.atomic import write_netcdf
from pathdep.io.provenance import collect

DEFAULTS = {
    "seed": 0, "dataset": None, "pool": 4, "activation": "relu", "sigma_w": 1.4142135623730951,
    "sigma_b": 0.1, "dtype": "float32",
    "width_sweep": {"widths": [16, 32, 64, 128, 256, 512, 1024], "depth": 1, "n_train": 128, "n_probe": 16,
                    "steps": 100, "lr_factor": 0.5, "tail_min_width": 128},
    "linearization": {"widths": [64, 256, 1024], "depth": 1, "n_train": 512, "n_test": 128, "steps": 150,
                      "batch_size": 64, "lr": {"cross_entropy": 0.5, "mse": 0.1}, "momentum": 0.9, "losses": ["cross_entropy", "mse"],
                      "checkpoints": 16},
    "kernel_regression": {"width": 256, "single_width": 2048, "depth": 1, "n_train": 128, "n_test": 32,
                          "members": 100, "steps": 200, "lr_factor": 0.5, "checkpoints": 21},
    "catapult": {"width": 512, "depth": 1, "n_train": 128, "steps": 300,
                 "eta_factors": [0.5, 0.9, 0.95, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]},
    "path_experiment": "width",
}
SECTIONS = ("width_sweep", "linearization", "kernel_regression", "catapult")


def resolve(spec: dict | None) -> dict:
    """``DEFAULTS`` with the config's ``ntk:`` block merged in (one level of sections)."""
    cfg = json.loads(json.dumps(DEFAULTS))
    for k, v in (spec or {}).items():
        if k in SECTIONS and isinstance(v, dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def _dtype(cfg):
    return {"float32": torch.float32, "float64": torch.float64}[cfg.get("dtype", "float32")]


def load_inputs(data_path, n_train: int, n_test: int, pool: int, seed: int, dtype=torch.float32):
    """Seeded subsets ``(x_train (n, d), labels_train, x_test, labels_test, n_classes)``.

    Images ``(C, H, W)`` are average-pooled by ``pool``; every input is rescaled to
    ``|x|^2 = d``.
    """
    from pathdep.data import load_dataset

    data = load_dataset(data_path)
    rng = np.random.default_rng([int(seed), 11])
    out = []
    for x, y, n in ((data.x_train, data.y_train, n_train), (data.x_test, data.y_test, n_test)):
        idx = np.sort(rng.choice(len(x), size=min(int(n), len(x)), replace=False))
        xs = x[torch.as_tensor(idx)].to(torch.float64)
        if xs.dim() == 4 and pool > 1:
            xs = torch.nn.functional.avg_pool2d(xs, int(pool))
        xs = xs.reshape(len(xs), -1)
        xs = xs - xs.mean(1, keepdim=True)
        xs = xs / xs.norm(dim=1, keepdim=True).clamp_min(1e-12) * math.sqrt(xs.shape[1])
        out += [xs.to(dtype), y[torch.as_tensor(idx)]]
    n_classes = int(max(int(out[1].max()), int(out[3].max())) + 1) if out[1].dtype in (torch.int64, torch.int32) else 1
    return out[0], out[1], out[2], out[3], n_classes


def _net(d, width, depth, out, cfg, seed, dtype):
    m = MLP(d, [int(width)] * int(depth), out, cfg["activation"], True, "ntk", cfg["sigma_w"],
            cfg["sigma_b"]).to(dtype)
    lay = Layout.from_module(m)
    return m, lay, make_apply(m, lay), init_params(m, lay, "default", int(seed))


def _seeds(cfg, name, n):
    ss = np.random.SeedSequence([int(cfg["seed"]), sum(map(ord, name))])
    return [int(s.generate_state(1, dtype=np.uint32)[0]) for s in ss.spawn(n)]


def _onehot(y, c, dtype):
    return torch.nn.functional.one_hot(y.long(), c).to(dtype)


def _pm1(y, dtype):
    return (2.0 * (y.long() % 2 == 0).to(dtype) - 1.0).unsqueeze(-1)


def _nngp_emp(m, w, x, sw, sb):
    """Empirical NNGP: ``sigma_w^2 phi(x) phi(x')^T / n + sigma_b^2`` of the read-out's inputs."""
    m.load_state_dict(Layout.from_module(m).unflatten(w.detach()))
    with torch.no_grad():
        f = m.features(x)
    return sw ** 2 * f @ f.T / f.shape[1] + sb ** 2


def _gd(apply, w, x, y, lr, steps, loss="mse", record=None):
    """Full-batch gradient descent through the pure update map; returns (w, losses)."""
    opt, hp = optimizer_from_config({"name": "sgd", "lr": float(lr), "momentum": 0.0})
    step = make_step(apply, loss, opt)
    hpt = {k: torch.tensor(v, dtype=w.dtype) for k, v in hp.items()}
    state = opt.init(w)
    losses = np.empty(steps + 1)
    for t in range(steps):
        if record is not None:
            record(t, w)
        w, state, lv = step(w, state, x, y, hpt)
        losses[t] = float(lv)
    losses[steps] = float(loss_value(loss, apply(w, x), y))
    if record is not None:
        record(steps, w)
    return w, losses


def _attrs(cfg, name, extra, data_path):
    return {"section": name, "ntk_config": json.dumps(cfg), "dataset_file": str(data_path),
            "provenance": json.dumps(collect(cfg, "cpu"), default=str), **extra}


# ----------------------------------------------------------------------------- 4a
def width_sweep(spec: dict, data_path, out_path) -> xr.Dataset:
    """Relative change of parameters, empirical NTK and NNGP from init to end vs width."""
    cfg = resolve(spec)
    s = cfg["width_sweep"]
    dt = _dtype(cfg)
    x, y, _, _, C = load_inputs(data_path, s["n_train"], 1, cfg["pool"], cfg["seed"], dt)
    Y = _onehot(y, C, dt)
    xp = x[: int(s["n_probe"])]
    widths = [int(v) for v in s["widths"]]
    seeds = _seeds(cfg, "width_sweep", len(widths))
    # One learning rate for every width: lr_factor * 2 / lambda_0 of the infinite-width NTK
    # (NTK parameterisation: the kernel, hence eta_crit, is width-independent, so a fixed
    # lr at a fixed number of steps is the setting of the width-scaling theory).
    _, th_inf = K.analytic_kernels(x.double().numpy(), depth=int(s["depth"]), sigma_w=cfg["sigma_w"],
                                   sigma_b=cfg["sigma_b"], activation=cfg["activation"])
    lam_inf = K.lambda_max(torch.as_tensor(th_inf))
    lr = float(s["lr_factor"]) * K.eta_crit(lam_inf)
    res = {k: [] for k in ("dparams", "dntk", "dnngp", "lambda0", "lr", "loss0", "loss_end", "seconds")}
    for width, seed in zip(widths, seeds):
        t0 = time.perf_counter()
        m, lay, apply, w0 = _net(x.shape[1], width, s["depth"], C, cfg, seed, dt)
        th0 = K.empirical_ntk(apply, w0, xp, trace=True, chunk_samples=8, chunk_params=None)
        thx = K.empirical_ntk(apply, w0, x, trace=True, chunk_samples=16, chunk_params=None)
        lam0 = K.lambda_max(thx / C)  # traced kernel / O = the per-output kernel at large width
        k0 = _nngp_emp(m, w0, xp, cfg["sigma_w"], cfg["sigma_b"])
        w1, losses = _gd(apply, w0.clone(), x, Y, lr, int(s["steps"]))
        th1 = K.empirical_ntk(apply, w1, xp, trace=True, chunk_samples=8, chunk_params=None)
        k1 = _nngp_emp(m, w1, xp, cfg["sigma_w"], cfg["sigma_b"])
        rel = lambda a, b: float((b - a).norm() / a.norm())  # noqa: E731
        for k_, v in (("dparams", rel(w0, w1)), ("dntk", rel(th0, th1)), ("dnngp", rel(k0, k1)),
                      ("lambda0", lam0), ("lr", lr), ("loss0", losses[0]), ("loss_end", losses[-1]),
                      ("seconds", time.perf_counter() - t0)):
            res[k_].append(v)
    ds = xr.Dataset({k: (("width",), np.asarray(v, dtype=float)) for k, v in res.items()},
                    coords={"width": widths})
    tail = np.asarray(widths) >= float(s["tail_min_width"])
    for q in ("dparams", "dntk", "dnngp"):
        a, se = K.fit_exponent(widths, res[q])
        ds[f"exponent_{q}"] = ((), a)
        ds[f"exponent_{q}_se"] = ((), se)
        a, se = K.fit_exponent(np.asarray(widths)[tail], np.asarray(res[q])[tail])
        ds[f"exponent_{q}_tail"] = ((), a)
        ds[f"exponent_{q}_tail_se"] = ((), se)
    ds["lambda0_infinite"] = ((), lam_inf)
    ds.attrs.update(_attrs(cfg, "width_sweep", {"n_train": len(x), "n_probe": len(xp), "outputs": C,
                                                "tail_min_width": float(s["tail_min_width"])}, data_path))
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
    ck = np.unique(np.round(np.geomspace(1, steps + 1, int(s["checkpoints"])) - 1).astype(int))
    lrs = s["lr"] if isinstance(s["lr"], dict) else {q: s["lr"] for q in losses}
    missing = [q for q in losses if q not in lrs]
    if missing:
        raise ValueError(f"ntk.linearization.lr: no learning rate for loss {missing[0]!r}")
    rng = np.random.default_rng(_seeds(cfg, "linearization", 1)[0])
    order = np.concatenate([rng.permutation(len(x)) for _ in range(steps * bs // len(x) + 1)])
    dev = np.full((len(losses), len(widths), len(ck)), np.nan)
    rel = np.full_like(dev, np.nan)
    acc = np.full((len(losses), len(widths), 2), np.nan)  # test accuracy: network, linearised
    seeds = _seeds(cfg, "linearization_init", len(widths))
    for i, loss in enumerate(losses):
        target = (lambda v: v.long()) if loss == "cross_entropy" else (lambda v: _onehot(v, C, dt))
        opt, hp = optimizer_from_config({"name": "sgd", "lr": float(lrs[loss]), "momentum": float(s["momentum"])})
        hpt = {k: torch.tensor(v, dtype=dt) for k, v in hp.items()}
        for j, (width, seed) in enumerate(zip(widths, seeds)):
            _, _, apply, w0 = _net(x.shape[1], width, s["depth"], C, cfg, seed, dt)
            f_lin = K.linearize(apply, w0)
            steppers = [make_step(apply, loss, opt), make_step(f_lin, loss, opt)]
            ws = [w0.clone(), w0.clone()]
            states = [opt.init(w0), opt.init(w0)]
            c = 0
            for t in range(steps + 1):
                if c < len(ck) and t == ck[c]:
                    with torch.no_grad():
                        o_net, o_lin = apply(ws[0], xt), f_lin(ws[1], xt)
                    dev[i, j, c] = float((o_net - o_lin).pow(2).mean().sqrt())
                    rel[i, j, c] = dev[i, j, c] / max(float((o_net - apply(w0, xt).detach()).pow(2).mean().sqrt()), 1e-30)
                    c += 1
                if t == steps:
                    break
                b = torch.as_tensor(order[t * bs:(t + 1) * bs])
                xb, yb = x[b], target(y[b])
                for k in range(2):
                    ws[k], states[k], _ = steppers[k](ws[k], states[k], xb, yb, hpt)
            with torch.no_grad():
                acc[i, j, 0] = float((apply(ws[0], xt).argmax(1) == yt).double().mean())
                acc[i, j, 1] = float((f_lin(ws[1], xt).argmax(1) == yt).double().mean())
    ds = xr.Dataset({"logit_deviation": (("loss", "width", "checkpoint"), dev),
                     "relative_deviation": (("loss", "width", "checkpoint"), rel),
                     "test_accuracy": (("loss", "width", "model"), acc)},
                    coords={"loss": losses, "width": widths, "step": ("checkpoint", ck), "model": ["network", "linearized"],
                            "lr": ("loss", [float(lrs[q]) for q in losses])})
    ds.attrs.update(_attrs(cfg, "linearization", {"loop": "pathdep.core.dynamics.make_step (no core.loop yet)",
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
    Y = _pm1(y, dt)
    D, d = x.shape
    kw = dict(depth=int(s["depth"]), sigma_w=cfg["sigma_w"], sigma_b=cfg["sigma_b"], activation=cfg["activation"])
    xa = torch.cat([x, xt]).numpy()
    nngp, th = K.analytic_kernels(xa, **kw)
    lam0 = K.lambda_max(torch.as_tensor(th[:D, :D]))
    lr = float(s["lr_factor"]) * K.eta_crit(lam0)
    steps = int(s["steps"])
    ck = np.unique(np.round(np.linspace(0, steps, int(s["checkpoints"]))).astype(int))
    pred = K.mse_dynamics(th[:D, :D], th[D:, :D], Y.numpy(), ck, lr, k_XX=nngp[:D, :D], k_xX=nngp[D:, :D],
                          k_xx=nngp[D:, D:])
    # Ensemble of `members` networks of width `width`, one vmapped update map.
    Kn = int(s["members"])
    seeds = _seeds(cfg, "kernel_regression", Kn + 1)
    nets = [_net(d, s["width"], s["depth"], 1, cfg, sd, dt) for sd in seeds[:Kn]]
    apply = nets[0][2]
    W = torch.stack([n_[3] for n_ in nets])
    opt, hp = optimizer_from_config({"name": "sgd", "lr": lr, "momentum": 0.0})
    ens = make_ensemble_step(make_step(apply, "mse", opt))
    states = tuple(torch.stack([t_] * Kn) for t_ in opt.init(W[0]))
    hpt = {k: torch.full((Kn,), v, dtype=dt) for k, v in hp.items()}
    vapply = torch.vmap(apply, in_dims=(0, None))
    # One wide network and its own linear prediction (empirical NTK at its init).
    _, _, apply1, w1 = _net(d, s["single_width"], s["depth"], 1, cfg, seeds[Kn], dt)
    xall = torch.cat([x, xt])
    th1 = K.empirical_ntk(apply1, w1, xall, trace=True, chunk_samples=16,
                          chunk_params=None).numpy()
    with torch.no_grad():
        f0 = apply1(w1, xall)[:, 0].numpy()
    own = K.mse_dynamics(th1[:D, :D], th1[D:, :D], Y[:, 0].numpy(), ck, lr, f0_X=f0[:D], f0_x=f0[D:])
    opt1 = make_step(apply1, "mse", opt)
    st1 = opt.init(w1)
    hp1 = {k: torch.tensor(v, dtype=dt) for k, v in hp.items()}
    ens_out = np.empty((len(ck), Kn, len(xt)))
    single = np.empty((len(ck), len(xt)))
    c = 0
    for t in range(steps + 1):
        if c < len(ck) and t == ck[c]:
            with torch.no_grad():
                ens_out[c] = vapply(W, xt)[..., 0].numpy()
                single[c] = apply1(w1, xt)[:, 0].numpy()
            c += 1
        if t == steps:
            break
        W, states, _ = ens(W, states, x, Y, hpt)
        w1, st1, _ = opt1(w1, st1, x, Y, hp1)
    ds = xr.Dataset({
        "theory_mean": (("checkpoint", "point"), pred["mean"][..., 0]),
        "theory_var": (("checkpoint", "point"), pred["var"]),
        "ensemble_mean": (("checkpoint", "point"), ens_out.mean(1)),
        "ensemble_var": (("checkpoint", "point"), ens_out.var(1, ddof=1)),
        "single": (("checkpoint", "point"), single),
        "single_linear": (("checkpoint", "point"), own["f"]),
        "target": (("point",), _pm1(yt, dt)[:, 0].numpy()),
        "lambda0": ((), lam0), "lr": ((), lr),
    }, coords={"step": ("checkpoint", ck), "point": np.arange(len(xt))})
    ds.attrs.update(_attrs(cfg, "kernel_regression", {"members": Kn, "n_train": D}, data_path))
    write_netcdf(ds, out_path)
    return ds


# ----------------------------------------------------------------------------- 4d
def catapult(spec: dict, data_path, out_path) -> xr.Dataset:
    """Learning-rate sweep across 2/lambda_0 and 4/lambda_0, and the two-scalar map."""
    cfg = resolve(spec)
    s = cfg["catapult"]
    dt = torch.float64
    x, y, _, _, _ = load_inputs(data_path, s["n_train"], 1, cfg["pool"], cfg["seed"], dt)
    Y = _pm1(y, dt)
    D, d = x.shape
    seed = _seeds(cfg, "catapult", 1)[0]
    _, _, apply, w0 = _net(d, s["width"], s["depth"], 1, cfg, seed, dt)
    th0 = K.empirical_ntk(apply, w0, x, trace=True, chunk_samples=16, chunk_params=None)
    lam0 = K.lambda_max(th0)
    factors = np.sort(np.asarray(s["eta_factors"], dtype=float))   # eta / (2 / lambda_0), ascending
    steps = int(s["steps"])
    loss = np.full((len(factors), steps + 1), np.nan)
    lam_end = np.full(len(factors), np.nan)
    for i, fac in enumerate(factors):
        eta = fac * 2.0 / lam0
        try:
            w, ls = _gd(apply, w0.clone(), x, Y, eta, steps)
        except RuntimeError:
            continue
        ls[~np.isfinite(ls)] = np.inf
        loss[i] = ls
        if np.isfinite(ls[-1]) and ls[-1] < 1e6:
            lam_end[i] = K.lambda_max(K.empirical_ntk(apply, w, x, trace=True, chunk_samples=16, chunk_params=None))
    peak = np.nanmax(np.where(np.isfinite(loss), loss, np.inf), axis=1)
    diverged = ~(np.isfinite(loss[:, -1]) & (loss[:, -1] < loss[:, 0]))
    catapulted = (~diverged) & (peak > 1.5 * loss[:, 0])
    # the seed's two-scalar map with n = width, on the same eta lambda_0 grid (lambda_0 = 1)
    f_map = np.full((len(factors), steps + 1), np.nan)
    l_map = np.full_like(f_map, np.nan)
    with torch.no_grad():
        f_init = float(np.sqrt(np.mean(apply(w0, x).numpy() ** 2)))
    for i, fac in enumerate(factors):
        f_map[i], l_map[i] = K.catapult_map(f_init, 1.0, 2.0 * fac, float(s["width"]), steps)
    onset = factors[np.argmax(catapulted)] if catapulted.any() else np.nan
    div = factors[np.argmax(diverged)] if diverged.any() else np.nan
    # measured eta_crit: bracketed by the largest factor whose loss never rises and the
    # smallest one whose loss rises at some step (relative tolerance 1e-9)
    with np.errstate(invalid="ignore"):
        rose = np.array([bool(np.any(~np.isfinite(r)) or np.any(np.diff(r) > 1e-9 * np.abs(r[:-1])))
                         for r in loss])
    first = int(np.argmax(rose)) if rose.any() else len(factors)
    crit_lo = float(factors[first - 1]) if first > 0 else np.nan
    crit_hi = float(factors[first]) if first < len(factors) else np.nan
    ds = xr.Dataset({
        "loss": (("eta_factor", "step"), loss),
        "lambda_end": (("eta_factor",), lam_end),
        "kernel_change": (("eta_factor",), lam_end / lam0 - 1.0),
        "catapult": (("eta_factor",), catapulted.astype(int)),
        "diverged": (("eta_factor",), diverged.astype(int)),
        "map_f": (("eta_factor", "step"), f_map), "map_lambda": (("eta_factor", "step"), l_map),
        "lambda0": ((), lam0), "eta_crit": ((), 2.0 / lam0),
        "loss_rose": (("eta_factor",), rose.astype(int)),
        "catapult_onset_factor": ((), float(onset)), "divergence_factor": ((), float(div)),
        "eta_crit_measured_lo_factor": ((), crit_lo), "eta_crit_measured_hi_factor": ((), crit_hi),
    }, coords={"eta_factor": factors, "eta": ("eta_factor", factors * 2.0 / lam0), "step": np.arange(steps + 1)})
    ds.attrs.update(_attrs(cfg, "catapult", {"n_train": D, "width": int(s["width"])}, data_path))
    write_netcdf(ds, out_path)
    return ds


# ----------------------------------------------------------------------------- 4e
def _run_width(attrs_config: str) -> int:
    run = json.loads(attrs_config)
    return int(run["model"]["hidden"][0]) if run["model"].get("hidden") else int(run["model"]["width"])


def path_vs_width(metrics_paths, out_path, analysis_paths=None) -> xr.Dataset:
    """Path dependence vs hidden width from a width experiment (member 0 is the baseline).

    From each run's ``metrics.nc``: the final weight distance ``dist``, ``dist_rel``,
    ``dist_over_init`` and the function-space ``fs_l2_logits`` of the perturbed members
    (mean and std over members). From its ``analysis.nc`` (optional, same order): the
    permutation-aligned distance ``dist_aligned`` at the last aligned checkpoint and the
    linear interpolation barrier (Entezari et al. 2022) on the test subset at the last
    interpolation checkpoint, raw and after alignment (``barrier_raw``,
    ``barrier_aligned``). Exponents ``~ width^a`` are fitted to the means.
    """
    analysis_paths = list(analysis_paths or [])
    if analysis_paths and len(analysis_paths) != len(metrics_paths):
        raise ValueError("ntk.path_experiment: one analysis.nc per metrics.nc expected")
    rows = []
    for i, p in enumerate(metrics_paths):
        with xr.open_dataset(p) as m:
            width = _run_width(m.attrs["config"])
            pert = m.isel(member=slice(1, None))
            last = int(np.nanmax(np.where(np.isfinite(pert["dist"].values).all(0), np.arange(m.sizes["checkpoint"]), -1)))
            vals = {q: pert[q].isel(checkpoint=last).values for q in ("dist", "dist_rel", "dist_over_init", "fs_l2_logits")}
            final_step = int(m["step"].values[last])
        if analysis_paths:
            with xr.open_dataset(analysis_paths[i]) as an:
                if _run_width(an.attrs["config"]) != width:
                    raise ValueError(f"{analysis_paths[i]}: width differs from {p}")
                da = an["dist_aligned"].isel(member=slice(1, None)).values
                ok = np.where(np.isfinite(da).all(0))[0]
                vals["dist_aligned"] = da[:, ok[-1]] if ok.size else np.full(da.shape[0], np.nan)
                bar = an["barrier"].sel(split="test").isel(icheckpoint=-1)
                vals["barrier_raw"] = bar.sel(align="raw").values
                vals["barrier_aligned"] = bar.sel(align="aligned").values
        rows.append((width, {q: (float(np.nanmean(v)), float(np.nanstd(v))) for q, v in vals.items()}, final_step))
    rows.sort(key=lambda r: r[0])
    widths = [r[0] for r in rows]
    data = {}
    for q in rows[0][1]:
        data[q] = (("width",), np.array([r[1][q][0] for r in rows]))
        data[f"{q}_std"] = (("width",), np.array([r[1][q][1] for r in rows]))
    ds = xr.Dataset(data, coords={"width": widths, "final_step": ("width", [r[2] for r in rows])})
    for q in ("dist", "dist_over_init", "fs_l2_logits", "dist_aligned", "barrier_raw", "barrier_aligned"):
        if q in ds:
            a, se = K.fit_exponent(widths, ds[q].values)
            ds[f"exponent_{q}"] = ((), a)
            ds[f"exponent_{q}_se"] = ((), se)
    ds.attrs.update({"section": "path_vs_width", "sources": json.dumps([str(p) for p in metrics_paths]),
                     "analysis_sources": json.dumps([str(p) for p in analysis_paths]),
                     "provenance": json.dumps(collect({}, "cpu"), default=str)})
    write_netcdf(ds, out_path)
    return ds


RUNNERS = {"width_sweep": width_sweep, "linearization": linearization, "kernel_regression": kernel_regression,
           "catapult": catapult}


def run_section(name: str, spec: dict, data_path, out_path, threads: int | None = None) -> xr.Dataset:
    if threads:
        torch.set_num_threads(int(threads))
    if name not in RUNNERS:
        raise ValueError(f"ntk: unknown section {name!r} (expected one of {list(RUNNERS)})")
    return RUNNERS[name](spec, data_path, out_path)
