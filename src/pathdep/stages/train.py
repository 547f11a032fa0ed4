"""Ensemble initialisation and training (rules ``init_ensemble`` and ``train_ensemble``).

What it computes:

* :func:`init_ensemble`: the baseline's initial weights (seeded scheme), N perturbed
  members (perturbed initial weights, batch schedule or one hyperparameter), each member's
  seeds and hyperparameters, into ``init.h5``.
* :func:`train_ensemble`: baseline and members trained as one tensor program (the pure
  update map of :mod:`pathdep.core.dynamics` under ``torch.vmap``), sharing the batch schedule
  unless the perturbation targets it; weights streamed to disk at the checkpoint steps,
  per-step batch losses, divergence flags. The full training state (weights, optimiser
  state, step, RNG states, the checkpoints written so far) is saved every
  ``training.save_state_every`` steps and on SIGTERM/SIGUSR1, and a rerun resumes from it;
  because the update map is pure and the schedule is a function of (seed, epoch), a run
  killed at any point and resumed gives a trajectory equal bit for bit to an uninterrupted
  one (same machine, same thread count).

How it was checked: ``tests/test_train.py`` (ensemble vs sequential torch.optim in
float64, determinism, bitwise resume after SIGKILL, diverging members) and the
end-to-end workflow tests.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from pathdep.core.context import DTYPES, build, canonical, dataset_meta, member_hparams, resolve_device, run_seeds
from pathdep.core.dynamics import make_ensemble_step, make_step, task_loss
from pathdep.core.init import init_params, perturb
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import Optimizer, optimizer_from_config
from pathdep.io.provenance import collect
from pathdep.core.schedule import Schedule, checkpoint_steps, swap_pairs
from pathdep.io.trajectory import TrajectoryWriter, load_init, save_init

def init_ensemble(run: dict, data_path: str | Path, out_path: str | Path) -> None:
    """Write ``init.h5``: baseline + ``perturbation.members`` perturbed initial states."""
    meta = dataset_meta(data_path)
    dtype = DTYPES[run["training"]["dtype"]]
    module, layout, _ = build(run, meta, dtype)
    seeds = run_seeds(run)
    pert = run["perturbation"]
    n = int(pert["members"])
    target = pert.get("target", "init")
    w0 = init_params(module, layout, run["init"]["scheme"], seeds["init"]).to(dtype)
    weights, dists, members = [w0], [np.zeros(len(layout.names))], []
    _, hps = member_hparams(run)
    steps_per_epoch = meta["n_train"] // int(run["training"]["batch_size"])
    for k in range(n + 1):
        swaps: list = []
        sched_seed = seeds["schedule"]
        info = {"distance": 0.0, "relative_distance": 0.0}
        eps_k = 0.0
        if k > 0:
            if target == "init":
                w, info = perturb(w0, layout, pert["kind"], float(pert["epsilon"]), seeds["members_perturb"][k],
                                  relative=bool(pert.get("relative", False)),
                                  granularity=pert.get("granularity", "tensor"))
                weights.append(w.to(dtype))
                dists.append(np.asarray(info["distance_per_tensor"], dtype=np.float64))
                eps_k = float(pert["epsilon"])
            else:
                weights.append(w0.clone())
                dists.append(np.zeros(len(layout.names)))
                if target == "schedule" and pert["kind"] == "shuffle":
                    sched_seed = seeds["members_schedule"][k]
                elif target == "schedule" and pert["kind"] == "swap":
                    swaps = swap_pairs(seeds["members_perturb"][k], steps_per_epoch, int(pert.get("swaps", 1)))
                elif target == "hyperparameter":
                    eps_k = float(pert["epsilon"]) * k / n
        members.append({
            "role": "baseline" if k == 0 else "member",
            "target": "none" if k == 0 else target,
            "kind": "none" if k == 0 else str(pert.get("kind", "")),
            "epsilon": eps_k,
            "distance": float(info["distance"]),
            "relative_distance": float(info["relative_distance"]),
            "seed_perturb": int(seeds["members_perturb"][k]),
            "seed_schedule": int(sched_seed),
            "swaps": swaps,
            **{f"hp_{h}": float(v) for h, v in hps[k].items()},
        })
    W = torch.stack(weights).cpu().numpy()
    save_init(out_path, W, layout, members, np.stack(dists),
              {"config": canonical(run), "seeds": seeds, "provenance": collect(run, "cpu", seeds)})


class _Stop(Exception):
    pass


def _save_state(state_dir: Path, payload: dict) -> None:
    tmp = state_dir / "state.pt.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, state_dir / "state.pt")


def _save_ckpt(state_dir: Path, i: int, W: np.ndarray, valid: np.ndarray) -> None:
    tmp = state_dir / f"ckpt_{i:05d}.npz.tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, weights=W, valid=valid)
    os.replace(tmp, state_dir / f"ckpt_{i:05d}.npz")


def train_ensemble(run: dict, init_path: str | Path, data_path: str | Path, out_path: str | Path,
                   threads: int | None = None, device: str | None = None, progress: bool = True,
                   stop_after: int | None = None) -> dict:
    """Train baseline and members together and write ``trajectory.h5``.

    Args:
        run: the resolved run config (must match the one recorded in ``init.h5``).
        init_path, data_path: ``init.h5`` and the prepared dataset.
        out_path: the trajectory file (written as ``.partial``, renamed at the end).
        threads: torch CPU threads (recorded; bitwise reproducibility needs the same count).
        device: ``auto`` | ``cpu`` | ``cuda`` (default: ``run['device']``).
        stop_after: for tests: raise ``KeyboardInterrupt`` after this many steps
            (simulates a kill after the state was saved at the last save point).

    Returns:
        Timing summary ``{"train_seconds", "write_seconds", "steps", "resumed_from"}``.
    """
    from pathdep.data import load_dataset

    t_start = time.perf_counter()
    if threads:
        torch.set_num_threads(int(threads))
    out_path = Path(out_path)
    init = load_init(init_path)
    if canonical(init.config) != canonical(run):
        raise ValueError(f"{init_path}: init file was made from a different config than this run "
                         f"(experiment {run.get('experiment')}, run {run.get('run')}); delete it to re-initialise")
    dev = resolve_device(device or run.get("device", "auto"))
    dtype = DTYPES[run["training"]["dtype"]]
    data = load_dataset(data_path, device=dev)
    meta = {"in_shape": data.in_shape, "out_dim": data.out_dim, "task": data.task, "n_train": len(data.x_train)}
    module, layout, apply = build(run, meta, dtype)
    module.to(dev)
    if layout.to_attrs() != init.layout.to_attrs():
        raise ValueError(f"{init_path}: parameter layout does not match the model of run {run.get('run')}")
    loss_name = task_loss(data.task)
    opt, hps = member_hparams(run)
    x_all = data.x_train.to(dev, dtype)
    y_all = data.y_train.to(dev) if data.task == "classification" else data.y_train.to(dev, dtype)

    mem = init.members
    swaps = [json.loads(s) if isinstance(s, str) else list(s) for s in mem["swaps"]]
    tr = run["training"]
    sched = Schedule(meta["n_train"], int(tr["batch_size"]), int(tr["epochs"]),
                     [int(s) for s in mem["seed_schedule"]], [[tuple(p) for p in s] for s in swaps],
                     tr.get("max_steps"))
    T = sched.n_steps
    ckpts = checkpoint_steps(tr["checkpoints"], T)
    K, P = init.weights.shape

    step = make_step(apply, loss_name, opt)
    ens_step = make_ensemble_step(step, shared_batch=sched.shared)
    hp = {h: torch.tensor([m[h] for m in hps], dtype=dtype, device=dev) for h in hps[0]}

    state_dir = out_path.parent / (out_path.stem + "_state")
    state_dir.mkdir(parents=True, exist_ok=True)
    cfg_key = canonical(run)
    resumed_from = 0
    st_file = state_dir / "state.pt"
    if st_file.exists():
        st = torch.load(st_file, map_location=dev, weights_only=False)
        if st.get("config") == cfg_key and st.get("threads") == torch.get_num_threads():
            W, opt_state, t0 = st["W"], tuple(st["opt_state"]), int(st["step"])
            losses, diverged, next_ck = st["losses"], st["diverged"], int(st["next_ckpt"])
            resumed_from = t0
            print(f"resuming from step {t0} ({state_dir})", file=sys.stderr)
        else:
            print(f"ignoring saved state in {state_dir} (different config or thread count)", file=sys.stderr)
            st = None
    else:
        st = None
    if st is None:
        for p in state_dir.glob("ckpt_*"):
            p.unlink()
        W = torch.as_tensor(init.weights, dtype=dtype, device=dev)
        opt_state = torch.vmap(opt.init)(W)
        t0, next_ck = 0, 0
        losses = np.full((T, K), np.nan, dtype=np.float32)
        diverged = -np.ones(K, dtype=np.int64)

    stop = {"sig": None}

    def handler(signum, frame):  # noqa: ARG001
        stop["sig"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGUSR1)}
    write_s = 0.0
    save_every = int(tr.get("save_state_every", 200))
    buf = torch.empty((min(save_every, max(T, 1)), K), dtype=dtype, device=dev)
    buf_start = t0

    def flush_losses(t_end: int) -> None:
        nonlocal buf_start
        n = t_end - buf_start
        if n > 0:
            vals = buf[:n].float().cpu().numpy()
            losses[buf_start:t_end] = vals
            bad = ~np.isfinite(vals)
            for k in np.where(bad.any(0) & (diverged < 0))[0]:
                diverged[k] = buf_start + int(np.argmax(bad[:, k]))
        buf_start = t_end

    def checkpoint(t: int) -> None:
        nonlocal next_ck, write_s
        while next_ck < len(ckpts) and ckpts[next_ck] == t:
            flush_losses(t)
            tw = time.perf_counter()
            Wn = W.detach().cpu().numpy()
            finite = np.isfinite(Wn).all(axis=1)
            valid = finite & ((diverged < 0) | (diverged >= t))
            _save_ckpt(state_dir, next_ck, Wn, valid)
            write_s += time.perf_counter() - tw
            next_ck += 1

    def save_state(t: int) -> None:
        nonlocal write_s
        flush_losses(t)
        tw = time.perf_counter()
        _save_state(state_dir, {"config": cfg_key, "threads": torch.get_num_threads(), "W": W, "opt_state": list(opt_state),
                                "step": t, "losses": losses, "diverged": diverged, "next_ckpt": next_ck,
                                "rng_torch": torch.get_rng_state(), "rng_numpy": np.random.get_state()})
        write_s += time.perf_counter() - tw

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=T, initial=t0, file=sys.stderr, mininterval=5.0, desc=f"{run.get('experiment')}/{run.get('run')}",
                   unit="step", ascii=True)
    t_loop = time.perf_counter()
    try:
        t = t0
        checkpoint(t)
        while t < T:
            idx = torch.as_tensor(sched.batch(t), device=dev)
            W, opt_state, lv = ens_step(W, opt_state, x_all[idx], y_all[idx], hp)
            buf[t - buf_start] = lv
            t += 1
            if bar is not None:
                bar.update(1)
            checkpoint(t)
            if t - buf_start >= buf.shape[0] or t == T:
                flush_losses(t)
            if t % save_every == 0 and t < T:
                save_state(t)
            if stop["sig"] is not None:
                save_state(t)
                raise _Stop(f"received signal {stop['sig']} at step {t}: state saved to {state_dir}, rerun to resume")
            if stop_after is not None and t - t0 >= stop_after:
                raise KeyboardInterrupt(f"stop_after={stop_after} reached at step {t}")
        flush_losses(T)
    except _Stop as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(75)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if bar is not None:
            bar.close()
    train_s = time.perf_counter() - t_loop

    tw = time.perf_counter()
    seeds = json.loads(init.attrs["seeds"])
    prov = collect(run, dev, seeds)
    prov["threads"] = torch.get_num_threads()
    writer = TrajectoryWriter(out_path, layout, [dict(r) for r in _members_records(init)],
                              _dist_per_tensor(init_path), ckpts, T, sched.steps_per_epoch,
                              np.float32 if dtype == torch.float32 else np.float64,
                              {"config": cfg_key, "seeds": seeds, "provenance": prov, "task": data.task,
                               "loss": loss_name, "device": str(dev)})
    try:
        for i in range(len(ckpts)):
            with np.load(state_dir / f"ckpt_{i:05d}.npz") as z:
                # The loss at w(t) is only known after checkpoint t was saved: a member whose
                # loss first became NaN/inf at step d = ckpts[i] has invalid weights there too.
                valid = z["valid"] & ((diverged < 0) | (ckpts[i] < diverged))
                writer.write_checkpoint(i, z["weights"], valid)
        writer.write_losses(0, losses)
        writer.set_diverged(diverged)
        write_s += time.perf_counter() - tw
        writer.finish({"train_seconds": train_s, "write_seconds": write_s, "resumed_from": resumed_from})
    except BaseException:
        writer.close()
        raise
    for p in state_dir.iterdir():
        p.unlink()
    state_dir.rmdir()
    total = time.perf_counter() - t_start
    print(f"trained {K} members x {T} steps on {dev}: loop {train_s:.2f} s, checkpoint writing {write_s:.2f} s "
          f"({100 * write_s / max(train_s, 1e-9):.1f}% of the loop), total {total:.2f} s", file=sys.stderr)
    return {"train_seconds": train_s, "write_seconds": write_s, "steps": T, "resumed_from": resumed_from}


def _members_records(init) -> list[dict]:
    recs = init.members.to_dict("records")
    out = []
    for r in recs:
        d = {}
        for k, v in r.items():
            if isinstance(v, np.generic):
                v = v.item()
            if k == "swaps" and isinstance(v, str):
                v = json.loads(v)
            d[k] = v
        out.append(d)
    return out


def _dist_per_tensor(init_path) -> np.ndarray:
    with h5py.File(init_path, "r") as f:
        return f["members/distance_per_tensor"][()]
