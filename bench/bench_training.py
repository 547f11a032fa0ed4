"""Benchmark: ensemble training programs side by side, against the measured GEMM peak.

Measures in ONE run (machines are shared and noisy; compare ratios, not absolute times):

1. the float32 GEMM peak of this machine on the same thread count (best of a few
   2048 x 2048 x 2048 matmuls, 2 * 2048^3 FLOPs each);
2. member-steps per second of the default 784-100-10 ReLU MLP, cross entropy, SGD,
   batch B = 64, for K = 1, 11, 32, 128 members, with three programs:

   * ``loop``: K ``nn.Module`` copies with ``torch.optim.SGD`` trained one after the other
     on the same batch (the seed author's approach);
   * ``vmap``: the generic pure update map under ``torch.vmap``
     (``pathdep.core.dynamics.make_ensemble_step``, the reference);
   * ``fast``: the shared-batch step of ``pathdep.core.fast`` (first layer of all members
     as one GEMM forward and backward);

   on 1 and 2 threads. The three programs are timed round-robin (best of ``--rounds``
   rounds of >= ``--seconds`` each), so a burst of load hits all of them alike; on 1
   thread the clock is the process CPU time (time spent descheduled by other workers is
   not counted), on 2 threads the wall clock;
3. optionally (``--write-steps N``) the cost of writing the trajectory on the default
   config's checkpoint schedule relative to the training loop, from ``train_ensemble``'s
   own timers (``write_seconds / train_seconds`` in the trajectory's attributes).

FLOPs counted per member-step (written down): forward
``2 B (784*100 + 100*10)`` = 10.16 MFLOP at B = 64, backward twice that, so
30.5 MFLOP per member-step; "% peak" = member-steps/s * 30.5 MFLOP / GEMM peak. (The
first layer's input gradient is never needed, so the work actually done is ~5/6 of this.)

Usage: ``.venv/bin/python bench/bench_training.py [--threads 1 2] [--ks 1 11 32 128]``.
Prints the machine load and a markdown table (kept in the README).
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pathdep.core.dynamics import make_ensemble_step, make_step
from pathdep.core.fast import make_fast_ensemble_step
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import Optimizer

B = 64
FLOP_FWD = 2 * B * (784 * 100 + 100 * 10)
FLOP_STEP = 3 * FLOP_FWD  # forward + backward (twice the forward)
HP = {"lr": 0.01, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0}


def clock_for(threads: int):
    """The clock of a measurement: on 1 thread the process CPU time (robust to a shared,
    overloaded machine: time spent descheduled is not counted), else the wall clock."""
    return time.process_time if threads == 1 else time.perf_counter


def gemm_peak(n: int = 2048, repeat: int = 5) -> float:
    """Best float32 matmul FLOP/s of an ``n^3`` product on the current thread count."""
    clock = clock_for(torch.get_num_threads())
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t = clock()
        a @ b
        best = min(best, clock() - t)
    return 2 * n ** 3 / best


class Program:
    """One ensemble program; ``run(n)`` does n ensemble steps on fresh random batches."""

    def __init__(self, kind: str, k: int, x: torch.Tensor, y: torch.Tensor):
        self.k, self.x, self.y = k, x, y
        self.gen = torch.Generator().manual_seed(0)
        module = build_model({"kind": "mlp", "hidden": [100]}, (1, 28, 28), 10)
        layout = Layout.from_module(module)
        if kind == "loop":
            self.models = [copy.deepcopy(module) for _ in range(k)]
            self.opts = [torch.optim.SGD(m.parameters(), lr=HP["lr"]) for m in self.models]
            self.one = self._loop
            return
        opt = Optimizer("sgd").specialized([HP])
        if kind == "vmap":
            self.step = make_ensemble_step(make_step(make_apply(module, layout), "cross_entropy", opt),
                                           shared_batch=True)
        else:
            self.step = make_fast_ensemble_step(module, layout, "cross_entropy", opt)
        w0 = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
        self.W = w0 + 0.01 * torch.randn(k, layout.n_params)
        self.st = torch.vmap(opt.init)(self.W)
        self.hp = {h: torch.full((k,), v) for h, v in HP.items()}
        self.one = self._ens

    def _batch(self):
        idx = torch.randint(0, len(self.x), (B,), generator=self.gen)
        return self.x[idx], self.y[idx]

    def _loop(self):
        xb, yb = self._batch()
        for m, o in zip(self.models, self.opts):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(xb), yb).backward()
            o.step()

    def _ens(self):
        xb, yb = self._batch()
        self.W, self.st, _ = self.step(self.W, self.st, xb, yb, self.hp)

    def rate(self, seconds: float) -> float:
        """Member-steps per second over at least ``seconds`` (after 2 warm-up steps)."""
        clock = clock_for(torch.get_num_threads())
        for _ in range(2):
            self.one()
        n, t0 = 0, clock()
        while True:
            self.one()
            n += 1
            dt = clock() - t0
            if dt >= seconds and n >= 3:
                return self.k * n / dt


def write_overhead(threads: int, steps: int) -> tuple[float, float, float]:
    """(train_seconds, write_seconds, ratio) of a real train_ensemble run on the default config
    (Fashion-MNIST if prepared, else synthetic data in the same format)."""
    from pathdep.config import load_config, validate
    from pathdep.data import prepare_dataset
    from pathdep.stages.train import init_ensemble, train_ensemble
    import h5py

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "config.yaml")
    run = copy.deepcopy(validate(cfg)["epsilon"][1])
    run["training"]["max_steps"] = steps
    with tempfile.TemporaryDirectory() as d:
        data = root / "results" / "data" / "fashion_mnist.h5"
        if not data.exists():
            data = Path(d) / "fm.h5"
            prepare_dataset("fashion_mnist", cfg["datasets"]["fashion_mnist"], data)
        init_ensemble(run, data, Path(d) / "init.h5")
        train_ensemble(run, Path(d) / "init.h5", data, Path(d) / "traj.h5", threads=threads, progress=False)
        with h5py.File(Path(d) / "traj.h5") as f:
            tr, wr = float(f.attrs["train_seconds"]), float(f.attrs["write_seconds"])
    return tr, wr, wr / tr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 11, 32, 128])
    ap.add_argument("--seconds", type=float, default=0.6, help="minimum time per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="round-robin rounds (best kept)")
    ap.add_argument("--write-steps", type=int, default=0,
                    help="also time trajectory writing on the default config (0: skip)")
    a = ap.parse_args()
    load = os.getloadavg()
    print(f"torch {torch.__version__}; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(f"784-100-10 ReLU MLP, cross entropy, SGD, batch {B}; FLOPs per member-step counted as "
          f"3 x 2B(784*100+100*10) = {FLOP_STEP / 1e6:.1f} MFLOP\n")
    x = torch.randn(10000, 1, 28, 28)
    y = torch.randint(0, 10, (10000,))
    rows = []
    for th in a.threads:
        torch.set_num_threads(th)
        peak = gemm_peak()
        for k in a.ks:
            progs = {kind: Program(kind, k, x, y) for kind in ("loop", "vmap", "fast")}
            best = {kind: 0.0 for kind in progs}
            for _ in range(a.rounds):
                for kind, p in progs.items():
                    best[kind] = max(best[kind], p.rate(a.seconds))
            peak = max(peak, gemm_peak(repeat=2))
            rows.append((th, k, peak, best))
            print(f"  threads={th} K={k}: " + ", ".join(f"{n} {v:.0f}" for n, v in best.items()), flush=True)
    print("\n| threads | K | GEMM peak GFLOP/s | loop member-steps/s | vmap | fast | vmap / loop "
          "| fast / loop | fast / vmap | fast % peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for th, k, peak, b in rows:
        pct = 100 * b["fast"] * FLOP_STEP / peak
        print(f"| {th} | {k} | {peak / 1e9:.0f} | {b['loop']:.0f} | {b['vmap']:.0f} | {b['fast']:.0f} "
              f"| {b['vmap'] / b['loop']:.2f}x | {b['fast'] / b['loop']:.2f}x | {b['fast'] / b['vmap']:.2f}x "
              f"| {pct:.0f} % |")
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if a.write_steps:
        tr, wr, ratio = write_overhead(max(a.threads), a.write_steps)
        print(f"\ntrajectory writing on the default config ({a.write_steps} steps, 11 members, 40 checkpoints): "
              f"{wr:.2f} s of {tr:.2f} s training loop = {100 * ratio:.1f}%")


if __name__ == "__main__":
    np.random.seed(0)
    main()
