"""Benchmark: the transformer ensemble step against a loop of torch models, one run, with the machine's limit.

The default grokking model (1 layer, d_model 64, 4 heads, d_mlp 256, no LayerNorm, untied;
pathdep.core.transformer) on the full training batch of a + b (mod 59) at 30 % (1044 token
sequences of length 3), AdamW (lr 4e-3, wd 3, betas (0.9, 0.98)), float32, K members:

* ``loop``: K ``nn.Module`` copies with ``torch.optim.AdamW``, stepped one after the other;
* ``ensemble``: the update map training uses (``pathdep.core.fast.ensemble_step_for``, the
  automatic path choice of ``member_loop_preferred``: on a CPU the member loop with the
  torch.autograd step, ``pathdep.core.resnet.make_member_loop`` / ``make_autograd_step``);
* ``vmap``: the generic pure update map under ``torch.vmap``
  (``pathdep.core.dynamics.make_ensemble_step``; the transformer has no fast path, so this was
  what ``training.fast: true`` fell back to before the member loop, and still does off the CPU).

Timed round-robin (best of ``--rounds`` rounds of >= ``--seconds`` each, process CPU time on
one thread: time descheduled by other workers is not counted). Prints the machine load, the
FLOPs per member-step and the float32 GEMM peak (``bench/roofline.py``: FlopCounterMode on one
forward + backward of one torch.nn model; bench_training's 2048^3 matmul), and a markdown table
of member-steps per second, GFLOP/s, % of the GEMM peak and loop / program per program.

Usage: ``.venv/bin/python bench/bench_transformer.py [--ks 1 8] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from roofline import columns, peak, step_flops

from pathdep.core.dynamics import make_ensemble_step, make_step
from pathdep.core.fast import ensemble_step_for, member_loop_preferred
from pathdep.core.init import init_params
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import optimizer_from_config
from pathdep.data.sources.modular import equations

SPEC = {"kind": "transformer", "n_layer": 1, "n_head": 4, "d_model": 64, "d_mlp": 256, "layernorm": "none"}
OPT = {"name": "adamw", "lr": 4e-3, "weight_decay": 3.0, "betas": [0.9, 0.98]}


def _data(p: int = 59, frac: float = 0.3):
    a, b, c = equations(p, "add")
    idx = np.sort(np.random.default_rng(0).permutation(len(c))[:round(frac * len(c))])
    x = torch.tensor(np.stack([a, b, np.full_like(a, p)], 1)[idx], dtype=torch.float32)
    return x, torch.tensor(c[idx]), p + 1


def _programs(K: int):
    x, y, vocab = _data()
    m = build_model(SPEC, (3,), vocab)
    layout = Layout.from_module(m)
    W = torch.stack([init_params(m, layout, "default", k) for k in range(K)])
    copies = []
    for k in range(K):
        mk = copy.deepcopy(m)
        with torch.no_grad():
            for name, t in layout.unflatten(W[k]).items():
                mk.get_parameter(name).copy_(t)
        copies.append((mk, torch.optim.AdamW(mk.parameters(), lr=4e-3, weight_decay=3.0, betas=(0.9, 0.98))))

    def loop():
        for mk, o in copies:
            o.zero_grad()
            F.cross_entropy(mk(x), y).backward()
            o.step()

    opt, hp = optimizer_from_config(OPT)
    opt = opt.specialized([hp])
    ens = make_ensemble_step(make_step(make_apply(m, layout), "cross_entropy", opt))
    auto = ensemble_step_for(m, layout, make_apply(m, layout), opt, "cross_entropy", True, fast=True)
    hpt = {h: torch.full((K,), v) for h, v in hp.items()}
    state = {name: [W.clone(), torch.vmap(opt.init)(W)] for name in ("ensemble", "vmap")}

    def ensemble():
        s = state["ensemble"]
        s[0], s[1], _ = auto(s[0], s[1], x, y, hpt)

    def vmap():
        s = state["vmap"]
        s[0], s[1], _ = ens(s[0], s[1], x, y, hpt)

    info = {"P": layout.n_params, "flops": step_flops(m, x, y), "path": "member loop" if member_loop_preferred(m)
            else "vmap"}
    return {"loop": loop, "ensemble": ensemble, "vmap": vmap}, info


def _rate(fn, seconds: float) -> float:
    fn()                                         # warm-up
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        fn()
        n += 1
    return n / (time.process_time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}, {args.threads} thread(s)")
    limit = peak()
    rows = []
    for K in args.ks:
        progs, info = _programs(K)
        best = {name: 0.0 for name in progs}
        for _ in range(args.rounds):
            for name, fn in progs.items():
                best[name] = max(best[name], _rate(fn, args.seconds))
        rows.append((K, info, {name: r * K for name, r in best.items()}))
    limit = max(limit, peak(repeat=2))               # the best of before and after
    print(f"float32 GEMM peak (2048^3): {limit / 1e9:.1f} GFLOP/s; P = {info['P']}, "
          f"{info['flops'] / 1e6:.2f} MFLOP per member-step (FlopCounterMode, forward + backward)")
    print("| K | program | path | member-steps/s | GFLOP/s | % GEMM peak | loop / program |")
    print("|---|---|---|---|---|---|---|")
    for K, info, rate in rows:
        for name, r in rate.items():
            path = info["path"] if name == "ensemble" else name
            print(f"| {K} | {name} | {path} " + columns(r, info["flops"], limit) + f" | {rate['loop'] / r:.2f} |")


if __name__ == "__main__":
    main()
