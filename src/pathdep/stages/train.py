"""Ensemble initialisation and training (rule ``train_ensemble``, which writes ``init.h5`` and
``trajectory.h5`` in one job).

What it computes:

* :func:`init_ensemble`: the baseline's initial weights (seeded scheme), N perturbed
  members (perturbed initial weights, batch schedule or one hyperparameter), each member's
  seeds and hyperparameters, into ``init.h5``.
* :func:`train_ensemble`: baseline and members trained as one tensor program (the pure
  update map of :mod:`pathdep.core.dynamics`, vectorised over members), sharing the batch schedule
  unless the perturbation targets it; per-step batch losses, divergence flags, weights at
  the checkpoint steps. The loop itself is :func:`pathdep.core.loop.run_loop` (with its
  :class:`~pathdep.core.loop.LossLog` and :class:`~pathdep.core.loop.StopSignals`); this
  module is its file bookkeeping (:class:`TrainSink`, :class:`ResumeState`). Checkpoints
  and resume states are written by a background thread
  (:class:`pathdep.io.trajectory.BackgroundWriter`), off the loop's critical path.

BatchNorm models (``norm: batch`` ResNets): the state is ``(W, opt_state, B)``, ``B (K, Q)`` each
member's running statistics (init.h5 / trajectory.h5 ``/buffers``, resume files, ``state.pt``);
perturbations act on parameters, every copy starts with its baseline's initial buffers.

Resume: the training state (weights, optimiser state, step, the losses and divergence
flags so far, the index of the next checkpoint; the checkpoints themselves are separate
files) is saved every ``training.save_state_every`` steps and on SIGTERM/SIGUSR1, and a
rerun resumes from it. No random number generator state is saved or needed: training
draws no random numbers (the update map is pure and the batch schedule is a function of
(seed, epoch)), so a run killed at any point and resumed gives a trajectory equal bit for
bit to an uninterrupted one (same machine, same thread count).

How it was checked: ``tests/stages/test_train_bn.py`` (BN ensemble = sequential torch.nn in
float64, resume with buffers bit for bit), ``tests/stages/test_train.py`` (determinism, bitwise resume after
SIGKILL / SIGTERM / an interrupt, diverging members), ``tests/core/test_dynamics.py``
(ensemble vs sequential torch.optim in float64), ``bench/check_refactor_identity.py``
(trajectories bit-identical to the code before the loop was factored out) and the
end-to-end workflow tests.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from pathdep.core.context import RunContext, all_seeds, canonical, n_baselines, run_seeds
from pathdep.core.dynamics import ensemble_optimizer_state
from pathdep.core.fast import ensemble_step_for, member_loop_preferred, uses_groups
from pathdep.core.init import init_params, perturb
from pathdep.core.loop import LoopSink, LoopStopped, LossLog, StopSignals, run_loop
from pathdep.core.resnet import make_ensemble_step_with_buffers
from pathdep.core.schedule import Schedule, augment_batch, checkpoint_steps, swap_pairs
from pathdep.io.provenance import collect
from pathdep.io.trajectory import BackgroundWriter, TrajectoryWriter, load_init, save_init

def _member_init(k: int, run: dict, seeds: dict, ctx: RunContext, w0: torch.Tensor) -> tuple:
    """Member ``k > 0``: ``(initial weights, distance per tensor, info, epsilon, schedule seed, swaps)``."""
    pert, layout, dtype = run["perturbation"], ctx.layout, ctx.dtype
    target, kind = pert.get("target", "init"), pert.get("kind")
    info = {"distance": 0.0, "relative_distance": 0.0}
    sched_seed, swaps, eps_k = seeds["schedule"], [], 0.0
    if target == "init" and kind == "reinit":
        # an independently seeded run (the "global" scale of the spread): a fresh
        # draw of the init scheme and its own batch order
        w = init_params(ctx.module, layout, run["init"]["scheme"], seeds["members_perturb"][k]).to(dtype)
        diff = (w.double() - w0.double())
        info = {"distance": float(diff.norm()), "relative_distance": float(diff.norm() / w0.double().norm())}
        dist = np.array([float(diff[layout.slice(nm)].norm()) for nm in layout.names])
        return w, dist, info, eps_k, seeds["members_schedule"][k], swaps
    if target == "init":
        w, info = perturb(w0, layout, kind, float(pert["epsilon"]), seeds["members_perturb"][k],
                          relative=bool(pert.get("relative", False)), granularity=pert.get("granularity", "tensor"))
        return w.to(dtype), np.asarray(info["distance_per_tensor"], dtype=np.float64), info, float(pert["epsilon"]), \
            sched_seed, swaps
    if target == "schedule" and kind == "shuffle":
        sched_seed = seeds["members_schedule"][k]
    elif target == "schedule" and kind == "swap":
        steps_per_epoch = ctx.meta["n_train"] // int(run["training"]["batch_size"])
        swaps = swap_pairs(seeds["members_perturb"][k], steps_per_epoch, int(pert.get("swaps", 1)))
    elif target == "hyperparameter":
        eps_k = float(pert["epsilon"]) * k / int(pert["members"])
    return w0.clone(), np.zeros(len(layout.names)), info, eps_k, sched_seed, swaps


def _block(run: dict, ctx: RunContext, r: int) -> tuple[list, list, list]:
    """Baseline ``r`` (its own init and batch seeds) and its ``members`` perturbed copies:
    ``(weights, distances per tensor, member records)``."""
    seeds = run_seeds(run, r)
    pert = run["perturbation"]
    w0 = init_params(ctx.module, ctx.layout, run["init"]["scheme"], seeds["init"]).to(ctx.dtype)
    weights, dists, members = [], [], []
    for k in range(int(pert["members"]) + 1):
        if k == 0:
            w, dist, info, eps_k, sched_seed, swaps = (w0, np.zeros(len(ctx.layout.names)),
                                                       {"distance": 0.0, "relative_distance": 0.0}, 0.0,
                                                       seeds["schedule"], [])
        else:
            w, dist, info, eps_k, sched_seed, swaps = _member_init(k, run, seeds, ctx, w0)
        weights.append(w)
        dists.append(dist)
        members.append({
            "role": "baseline" if k == 0 else "member",
            "baseline": r, "copy": k,
            "target": "none" if k == 0 else pert.get("target", "init"),
            "kind": "none" if k == 0 else str(pert.get("kind", "")),
            "epsilon": eps_k,
            "distance": float(info["distance"]),
            "relative_distance": float(info["relative_distance"]),
            "seed_init": int(seeds["init"]),
            "seed_perturb": int(seeds["members_perturb"][k]),
            "seed_schedule": int(sched_seed),
            "swaps": swaps,
            **{f"hp_{h}": float(v) for h, v in ctx.hps[k].items()},
        })
    return weights, dists, members


def init_ensemble(run: dict, data_path: str | Path, out_path: str | Path) -> None:
    """Write ``init.h5``: ``perturbation.baselines`` independent baselines (R, default 1), each
    followed by its ``perturbation.members`` perturbed copies (K = R (members + 1) networks)."""
    ctx = RunContext.build(run, data_path, device="cpu")
    weights, dists, members = [], [], []
    for r in range(n_baselines(run)):
        w, d, m = _block(run, ctx, r)
        weights += w
        dists += d
        members += m
    W = torch.stack(weights).cpu().numpy()
    seeds = all_seeds(run)
    attrs = {"config": canonical(run), "seeds": seeds, "provenance": collect(run, "cpu", seeds)}
    save_init(out_path, W, ctx.layout, members, np.stack(dists), attrs | _buffers_attr(ctx),
              buffers=ctx.initial_buffers(len(W)).cpu().numpy(), buffer_layout=ctx.buffer_layout)


def _buffers_attr(ctx: RunContext) -> dict:
    """The ``buffers`` attribute of models with BatchNorm state (what perturbations do to it)."""
    return {"buffers": ("BatchNorm running statistics: perturbations act on parameters only; every copy starts "
                        "with its baseline's initial buffers (means 0, variances 1), so buffers differ only "
                        "through training")} if ctx.has_buffers else {}


# ----------------------------------------------------------------------------- bookkeeping
class ResumeState:
    """The resume directory ``<trajectory stem>_state/`` next to the output.

    Holds ``state.pt`` (weights, optimiser state, step, losses so far, divergence flags,
    index of the next checkpoint) and one ``ckpt_<i>.npz`` (weights ``(K, P)``, validity
    ``(K,)``) per checkpoint written so far; each file is written to a temporary name and
    renamed. A saved state is used only if it was made from the same config and thread
    count (bitwise reproducibility needs both).
    """

    def __init__(self, out_path: Path):
        self.dir = out_path.parent / (out_path.stem + "_state")
        self.dir.mkdir(parents=True, exist_ok=True)

    def load(self, cfg_key: str, device) -> dict | None:
        path = self.dir / "state.pt"
        if not path.exists():
            return None
        st = torch.load(path, map_location=device, weights_only=False)
        if st.get("config") == cfg_key and st.get("threads") == torch.get_num_threads():
            print(f"resuming from step {int(st['step'])} ({self.dir})", file=sys.stderr)
            return st
        print(f"ignoring saved state in {self.dir} (different config or thread count)", file=sys.stderr)
        return None

    def clear_checkpoints(self) -> None:
        for p in self.dir.glob("ckpt_*"):
            p.unlink()

    def save(self, payload: dict) -> None:
        tmp = self.dir / "state.pt.tmp"
        torch.save(payload, tmp)
        os.replace(tmp, self.dir / "state.pt")

    def save_checkpoint(self, i: int, W: np.ndarray, valid: np.ndarray, B: np.ndarray | None = None) -> None:
        tmp = self.dir / f"ckpt_{i:05d}.npz.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, weights=W, valid=valid, **({} if B is None else {"buffers": B}))
        os.replace(tmp, self.dir / f"ckpt_{i:05d}.npz")

    def load_checkpoint(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(weights (K, P), validity (K,), buffers (K, Q) or None)`` of checkpoint ``i``."""
        with np.load(self.dir / f"ckpt_{i:05d}.npz") as z:
            return z["weights"], z["valid"], (z["buffers"] if "buffers" in z else None)

    def remove(self) -> None:
        for p in self.dir.iterdir():
            p.unlink()
        self.dir.rmdir()


class TrainSink(LoopSink):
    """The training loop's bookkeeping (:class:`pathdep.core.loop.LoopSink`).

    Per step: the batch losses into :class:`LossLog` (and the progress bar). At checkpoints:
    the weights, copied off the device on the loop's thread, then written by a
    :class:`~pathdep.io.trajectory.BackgroundWriter` to the resume directory and into the
    trajectory's ``.partial`` file. At save points: the resume state, queued behind those
    checkpoints (the writer is FIFO, so a ``state.pt`` on disk never names a checkpoint that
    is not). ``main_write_seconds`` is the writing time spent on the loop's thread (copies,
    waiting for a full queue).
    """

    def __init__(self, cfg_key: str, state: ResumeState, losses: LossLog, writer: BackgroundWriter,
                 traj: TrajectoryWriter, signals: StopSignals, bar=None):
        self.cfg_key, self.state, self.log, self.writer, self.traj = cfg_key, state, losses, writer, traj
        self.signals, self.bar = signals, bar
        self.main_write_seconds = 0.0
        self.valid: dict[int, np.ndarray] = {}

    def record(self, t: int, out) -> None:
        self.log.record(t, out)
        if self.bar is not None:
            self.bar.update(1)

    def checkpoint(self, index: int, t: int, state) -> None:
        self.log.flush(t)
        tw = time.perf_counter()
        W = state[0].detach().cpu().numpy().copy()
        valid = np.isfinite(W).all(axis=1) & ((self.log.diverged < 0) | (self.log.diverged >= t))
        self.valid[index] = valid
        B = state[2].detach().cpu().numpy().copy() if len(state) > 2 else None  # BatchNorm statistics
        self.writer.submit(self.state.save_checkpoint, index, W, valid, B)
        self.writer.submit(self.traj.write_weights, index, W)
        if B is not None:
            self.writer.submit(self.traj.write_buffers, index, B)
        self.main_write_seconds += time.perf_counter() - tw

    def save(self, t: int, state, next_checkpoint: int) -> None:
        self.log.flush(t)
        tw = time.perf_counter()
        W, opt_state = state[:2]
        payload = {"config": self.cfg_key, "threads": torch.get_num_threads(), "W": W.detach().clone(),
                   "opt_state": [s.detach().clone() for s in opt_state], "step": t,
                   "B": state[2].detach().clone() if len(state) > 2 else None,
                   "losses": self.log.losses.copy(), "diverged": self.log.diverged.copy(),
                   "next_ckpt": next_checkpoint}
        self.writer.submit(self.state.save, payload)
        self.main_write_seconds += time.perf_counter() - tw

    def stop_requested(self) -> str | None:
        return self.signals.reason()


def _open_trajectory(out_path: Path, init, init_path, ctx: RunContext, ckpts, sched: Schedule, attrs: dict):
    np_dtype = np.float32 if ctx.dtype == torch.float32 else np.float64
    return TrajectoryWriter(out_path, ctx.layout, [dict(r) for r in _members_records(init)],
                            _dist_per_tensor(init_path), ckpts, sched.n_steps, sched.steps_per_epoch, np_dtype,
                            attrs | _buffers_attr(ctx), buffer_layout=ctx.buffer_layout)


def _initial_state(ctx: RunContext, init, st: dict | None, T: int):
    """``(state, t0, next_ckpt, losses, diverged)`` from a saved state or from ``init.h5``; the state
    is ``(W, opt_state)``, plus the buffers ``B (K, Q)`` for models with BatchNorm statistics."""
    if st is not None:
        return ((st["W"], tuple(st["opt_state"])) + ((st["B"],) if ctx.has_buffers else ()), int(st["step"]),
                int(st["next_ckpt"]), st["losses"], st["diverged"])
    K = init.weights.shape[0]
    W = torch.as_tensor(init.weights, dtype=ctx.dtype, device=ctx.device)
    state = (W, ensemble_optimizer_state(ctx.opt, W))
    if ctx.has_buffers:
        have = init.buffers is not None and init.buffers.shape[1] == ctx.buffer_layout.n_params
        state += (torch.as_tensor(init.buffers, dtype=ctx.dtype, device=ctx.device) if have
                  else ctx.initial_buffers(K),)
    return state, 0, 0, np.full((T, K), np.nan, dtype=np.float32), -np.ones(K, dtype=np.int64)


def _schedule(ctx: RunContext, init) -> Schedule:
    """The members' shared (or per-member) batch schedule recorded in ``init.h5``."""
    mem = init.members
    swaps = [json.loads(s) if isinstance(s, str) else list(s) for s in mem["swaps"]]
    return ctx.schedule([int(s) for s in mem["seed_schedule"]], [[tuple(p) for p in s] for s in swaps])


def _check_init(init, init_path, ctx: RunContext, run: dict) -> None:
    if canonical(init.config) != canonical(run):
        raise ValueError(f"{init_path}: init file was made from a different config than this run "
                         f"(experiment {run.get('experiment')}, run {run.get('run')}); delete it to re-initialise")
    if ctx.layout.to_attrs() != init.layout.to_attrs():
        raise ValueError(f"{init_path}: parameter layout does not match the model of run {run.get('run')}")


def _progress(run: dict, T: int, t0: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=T, initial=t0, file=sys.stderr, mininterval=5.0, desc=f"{run.get('experiment')}/{run.get('run')}",
                unit="step", ascii=True)


# ----------------------------------------------------------------------------- train_ensemble
@dataclass
class _Start:
    """Where the loop starts: fresh from ``init.h5`` or resumed from a saved state."""

    resume: ResumeState
    cfg_key: str
    state: tuple
    t0: int
    next_checkpoint: int
    log: LossLog
    save_every: int


def _dynamics(run: dict, init, init_path, data_path, device) -> tuple:
    """``(ctx, schedule, checkpoint steps, step, batch)``: the run's update map and batches."""
    ctx = RunContext.build(run, data_path, device or run.get("device", "auto"), load=True)
    _check_init(init, init_path, ctx, run)
    x_all, y_all = ctx.train_tensors()
    sched = _schedule(ctx, init)
    ckpts = checkpoint_steps(run["training"]["checkpoints"], sched.n_steps)
    # training.fast (default true, set in run resolution): the hand-written shared-batch step
    # of pathdep.core.fast when it applies; otherwise the generic vmapped reference.
    # replicate baselines: one shared batch per baseline's group, the fast step per group
    fast = bool(run["training"]["fast"])
    ens_step = ensemble_step_for(ctx.module, ctx.layout, ctx.apply, ctx.opt, ctx.loss, sched.shared,
                                 fast=fast, groups=sched.groups)
    grouped = uses_groups(ctx.module, sched.shared, fast, sched.groups)
    hp = ctx.hparams()

    def step(state, batch):
        W, opt_state, lv = ens_step(state[0], state[1], batch[0], batch[1], hp)
        return (W, opt_state), lv

    if ctx.has_buffers:   # BatchNorm: the state (W, opt_state, B), B the members' running statistics
        ens_b = make_ensemble_step_with_buffers(ctx.apply_b, ctx.loss, ctx.opt, sched.shared,
                                                loop=member_loop_preferred(ctx.module))

        def step(state, batch):  # noqa: F811
            W, opt_state, B, lv = ens_b(*state, batch[0], batch[1], hp)
            return (W, opt_state, B), lv

    def batch(t):
        idx = torch.as_tensor(sched.group_batch(t) if grouped else sched.batch(t), device=ctx.device)
        return augment_batch(x_all[idx], sched, t, grouped, run["training"].get("augment", "none")), y_all[idx]

    return ctx, sched, ckpts, step, batch


def _start(run: dict, out_path: Path, ctx: RunContext, init, T: int) -> _Start:
    """The initial state: the saved resume state if it matches this config, else ``init.h5``."""
    cfg_key = canonical(run)
    resume = ResumeState(out_path)
    st = resume.load(cfg_key, ctx.device)
    if st is None:
        resume.clear_checkpoints()
    state, t0, next_ck, losses, diverged = _initial_state(ctx, init, st, T)
    save_every = int(run["training"].get("save_state_every", 200))
    log = LossLog(losses, diverged, t0, min(save_every, max(T, 1)), ctx.dtype, ctx.device)
    return _Start(resume, cfg_key, state, t0, next_ck, log, save_every)


def _open_outputs(run: dict, out_path: Path, init, init_path, ctx: RunContext, sched: Schedule, ckpts,
                  start: _Start) -> tuple[TrajectoryWriter, dict, float]:
    """Open the trajectory (``.partial``) and copy in the checkpoints a resumed run already wrote.

    Returns ``(writer, {checkpoint index: validity (K,)}, seconds spent)``."""
    tw = time.perf_counter()
    seeds = json.loads(init.attrs["seeds"])
    prov = collect(run, ctx.device, seeds)
    prov["threads"] = torch.get_num_threads()
    traj = _open_trajectory(out_path, init, init_path, ctx, ckpts, sched,
                            {"config": start.cfg_key, "seeds": seeds, "provenance": prov, "task": ctx.task,
                             "loss": ctx.loss, "device": str(ctx.device)})
    valid_prev = {}
    for i in range(start.next_checkpoint):  # a resumed run: the checkpoints written before the interruption
        Wi, valid_prev[i], Bi = start.resume.load_checkpoint(i)
        traj.write_weights(i, Wi)
        if Bi is not None:
            traj.write_buffers(i, Bi)
    return traj, valid_prev, time.perf_counter() - tw


def _train(step, batch, T: int, ckpts, start: _Start, traj: TrajectoryWriter, writer: BackgroundWriter, bar,
           valid_prev: dict, stop_after: int | None) -> tuple[TrainSink, float, float]:
    """Run the loop to ``T`` with :class:`TrainSink`; ``(sink, loop seconds, writing seconds on its thread)``."""
    with StopSignals() as signals:
        sink = TrainSink(start.cfg_key, start.resume, start.log, writer, traj, signals, bar)
        sink.valid.update(valid_prev)
        t_loop = time.perf_counter()
        run_loop(step, start.state, batch, T, sink, start=start.t0, checkpoints=ckpts,
                 next_checkpoint=start.next_checkpoint, save_every=start.save_every, stop_after=stop_after)
        start.log.flush(T)
        tw = time.perf_counter()
        writer.close()
        train_s = tw - t_loop  # the loop's wall time, writes on its thread included (as before)
        return sink, train_s, sink.main_write_seconds + time.perf_counter() - tw


def _finish(traj: TrajectoryWriter, sink: TrainSink, log: LossLog, ckpts) -> float:
    """Write validity, losses and divergence steps into the trajectory; the seconds it took."""
    tw = time.perf_counter()
    # The loss at w(t) is only known after checkpoint t was saved: a member whose loss
    # first became NaN/inf at step d = ckpts[i] has invalid weights there too.
    valid = np.stack([sink.valid[i] for i in range(len(ckpts))])
    valid &= (log.diverged[None, :] < 0) | (ckpts[:, None] < log.diverged[None, :])
    traj.write_valid(valid)
    traj.write_losses(0, log.losses)
    traj.set_diverged(log.diverged)
    return time.perf_counter() - tw


def _run_to_end(step, batch, T: int, ckpts, start: _Start, traj: TrajectoryWriter, bar, valid_prev: dict,
                write_s: float, stop_after: int | None) -> dict:
    """Train, finish the trajectory, and return the timings; on a stop request save and exit 75."""
    writer = BackgroundWriter(maxsize=16)  # up to 16 checkpoints queued: the loop rarely waits on compression
    finished = False
    try:
        sink, train_s, loop_write_s = _train(step, batch, T, ckpts, start, traj, writer, bar, valid_prev, stop_after)
        write_s += loop_write_s + _finish(traj, sink, start.log, ckpts)
        timings = {"train_seconds": train_s, "write_seconds": write_s, "write_thread_seconds": writer.seconds,
                   "resumed_from": start.t0}
        traj.finish(timings)
        finished = True
    except LoopStopped as exc:
        print(f"{exc}: state saved to {start.resume.dir}, rerun to resume", file=sys.stderr)
        raise SystemExit(75)
    finally:
        if bar is not None:
            bar.close()
        if not finished:
            try:
                writer.close()  # pending checkpoints and the resume state reach the disk
            finally:
                traj.close()
    return timings | {"steps": T}


def train_ensemble(run: dict, init_path: str | Path, data_path: str | Path, out_path: str | Path,
                   threads: int | None = None, device: str | None = None, progress: bool = True,
                   stop_after: int | None = None) -> dict:
    """Train baseline and members together and write ``trajectory.h5``.

    The dynamics run in :func:`pathdep.core.loop.run_loop` (the vmapped pure update map);
    the bookkeeping (losses, checkpoints, resume state, signals) is :class:`TrainSink`.

    Args:
        run: the resolved run config (must match the one recorded in ``init.h5``).
        init_path, data_path: ``init.h5`` and the prepared dataset.
        out_path: the trajectory file (written as ``.partial``, renamed at the end).
        threads: torch CPU threads (recorded; bitwise reproducibility needs the same count).
        device: ``auto`` | ``cpu`` | ``cuda`` (default: ``run['device']``).
        progress: show a progress bar on stderr.
        stop_after: for tests: raise ``KeyboardInterrupt`` after this many steps
            (simulates a kill after the state was saved at the last save point).

    Returns:
        Timing summary ``{"train_seconds", "write_seconds", "write_thread_seconds", "steps",
        "resumed_from"}``: ``write_seconds`` is the writing time on the training thread
        (checkpoint copies, queue waits, the final assembly), ``write_thread_seconds`` the
        time the background writer spent writing (overlapping the loop).

    Raises:
        SystemExit(75): on SIGTERM/SIGUSR1, after saving the state (rerun to resume).
    """
    t_start = time.perf_counter()
    if threads:
        torch.set_num_threads(int(threads))
    out_path = Path(out_path)
    init = load_init(init_path)
    ctx, sched, ckpts, step, batch = _dynamics(run, init, init_path, data_path, device)
    start = _start(run, out_path, ctx, init, sched.n_steps)
    traj, valid_prev, write_s = _open_outputs(run, out_path, init, init_path, ctx, sched, ckpts, start)
    bar = _progress(run, sched.n_steps, start.t0, progress)
    t = _run_to_end(step, batch, sched.n_steps, ckpts, start, traj, bar, valid_prev, write_s, stop_after)
    start.resume.remove()
    print(f"trained {init.weights.shape[0]} members x {t['steps']} steps on {ctx.device}: loop "
          f"{t['train_seconds']:.2f} s, writing on the loop's thread {t['write_seconds']:.2f} s "
          f"({100 * t['write_seconds'] / max(t['train_seconds'], 1e-9):.1f}% of the loop; background writer "
          f"{t['write_thread_seconds']:.2f} s), total {time.perf_counter() - t_start:.2f} s", file=sys.stderr)
    return {k: t[k] for k in ("train_seconds", "write_seconds", "write_thread_seconds", "steps", "resumed_from")}


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
