"""Benchmark: vectorised ensemble training vs a sequential loop, and trajectory-writing cost.

Measures in ONE run (machines are shared and noisy; compare ratios, not absolute times):

1. member-steps per second of K separate ``torch.optim.SGD`` models trained one after the
   other (the seed author's approach) vs the vmapped pure update map for K = 1, 11, 32,
   for the default 784-100-10 MLP on batches of 64;
2. the cost of writing the trajectory on the default config's checkpoint schedule
   (40 log-spaced checkpoints) relative to the training loop, from ``train_ensemble``'s own
   timers (``write_seconds / train_seconds`` in the trajectory's attributes).

Usage: ``.venv/bin/python bench/bench_training.py [--threads 2] [--steps 200]``. Prints a
markdown table (kept in the README).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from pathdep.core.dynamics import make_ensemble_step, make_step
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import Optimizer


def member_steps_sequential(k: int, steps: int, x, y) -> float:
    models = [build_model({"kind": "mlp", "hidden": [100]}, (1, 28, 28), 10) for _ in range(k)]
    opts = [torch.optim.SGD(m.parameters(), lr=0.01) for m in models]
    n = len(x)
    gen = torch.Generator().manual_seed(0)

    def one(i):
        idx = torch.randint(0, n, (64,), generator=gen)
        xb, yb = x[idx], y[idx]
        for m, o in zip(models, opts):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(xb), yb).backward()
            o.step()

    for i in range(3):
        one(i)
    t = time.perf_counter()
    for i in range(steps):
        one(i)
    return k * steps / (time.perf_counter() - t)


def member_steps_vmapped(k: int, steps: int, x, y) -> float:
    module = build_model({"kind": "mlp", "hidden": [100]}, (1, 28, 28), 10)
    layout = Layout.from_module(module)
    hp_one = {"lr": 0.01, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0}
    opt = Optimizer("sgd").specialized([hp_one])
    ens = make_ensemble_step(make_step(make_apply(module, layout), "cross_entropy", opt), shared_batch=True)
    W = 0.03 * torch.randn(k, layout.n_params)
    st = torch.vmap(opt.init)(W)
    hp = {h: torch.full((k,), v) for h, v in hp_one.items()}
    n = len(x)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        idx = torch.randint(0, n, (64,), generator=gen)
        W, st, _ = ens(W, st, x[idx], y[idx], hp)
    t = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, n, (64,), generator=gen)
        W, st, _ = ens(W, st, x[idx], y[idx], hp)
    return k * steps / (time.perf_counter() - t)


def write_overhead(threads: int, steps: int) -> tuple[float, float, float]:
    """(train_seconds, write_seconds, ratio) of a real train_ensemble run on the default config
    (Fashion-MNIST if prepared, else synthetic data in the same format)."""
    from pathdep.config import load_config, validate
    from pathdep.data import prepare_dataset
    from pathdep.stages.train import init_ensemble, train_ensemble

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
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--write-steps", type=int, default=1874)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.randn(10000, 1, 28, 28)
    y = torch.randint(0, 10, (10000,))
    rows = []
    seq = member_steps_sequential(11, a.steps, x, y)
    rows.append(("sequential torch.optim, K=11", seq, 1.0))
    for k in (1, 11, 32):
        v = member_steps_vmapped(k, a.steps, x, y)
        rows.append((f"vmapped ensemble, K={k}", v, v / seq))
    print(f"threads={a.threads}, {a.steps} steps, 784-100-10 MLP, batch 64\n")
    print("| program | member-steps/s | vs sequential |\n|---|---|---|")
    for name, v, r in rows:
        print(f"| {name} | {v:.0f} | {r:.2f}x |")
    tr, wr, ratio = write_overhead(a.threads, a.write_steps)
    print(f"\ntrajectory writing on the default config ({a.write_steps} steps, 11 members, 40 checkpoints): "
          f"{wr:.2f} s of {tr:.2f} s training loop = {100 * ratio:.1f}%")


if __name__ == "__main__":
    np.random.seed(0)
    main()
