"""Benchmark: one ResNet ensemble step against a loop of torch models, side by side in one run.

Measures seconds per step of K members (default: issue 19 item 8's ResNet-20, width 1,
K = 8, batch 128, CIFAR shape 3x32x32, ``norm: batch``, cross entropy, SGD with momentum 0.9
and weight decay 5e-4, float32) with several programs, timed round-robin (best of
``--rounds`` rounds, process CPU time on 1 thread so time spent descheduled by other
workers is not counted, wall clock otherwise), and prints member-steps/s and the ratio
``loop / ensemble`` (>= 1: the ensemble is not slower than the loop):

* ``loop``: K ``nn.Module`` copies in train mode with ``torch.optim.SGD``, one after the
  other on the same batch;
* ``ensemble``: the update map training uses (``pathdep.stages.train``): the automatic path
  choice of ``pathdep.core.fast.member_loop_preferred`` (member loop for ResNets on a CPU,
  vmap elsewhere), with per-member BatchNorm statistics for ``norm: batch``
  (``pathdep.core.resnet.make_ensemble_step_with_buffers``) or ``ensemble_step_for`` for
  ``norm: none``;
* ``vmap``: the pure update map under ``torch.vmap``: for ``norm: none`` the generic
  ``pathdep.core.dynamics.make_ensemble_step`` (the fast path refuses ResNets), for
  ``norm: batch`` ``pathdep.core.resnet.make_step_with_buffers`` (running statistics per
  member);
* ``pure loop``: the same pure single-network step called member by member and the results
  stacked (the same map as ``vmap``, one member at a time: on a CPU the vmapped
  convolutions become grouped convolutions, whose backward is slower than K small ones).

On a GPU (``--device cuda``) the clock is the wall clock after ``torch.cuda.synchronize``.

The machine's limit (``bench/roofline.py``): FLOPs per member-step counted by FlopCounterMode on one
forward + backward of one torch.nn model (convolutions and the head; not BatchNorm, ReLU or the
optimizer) and the float32 GEMM peak (bench_training's 2048^3 matmul, the best of before and after the
timings); the table gives GFLOP/s and % of that peak for ``loop`` and ``ensemble``.

``vmap`` and ``pure loop`` run with ``--programs loop ensemble vmap "pure loop"``.
On cuda the peak GPU memory of the ensemble step is printed too.

Usage: ``.venv/bin/python bench/bench_resnet.py [--depth 20] [--k 8] [--batch 128]
[--shape 3 32 32] [--norm batch] [--threads 1] [--device cpu]``. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from roofline import columns, peak, step_flops

from pathdep.core.dynamics import loss_value, make_ensemble_step, make_step
from pathdep.core.fast import ensemble_step_for, member_loop_preferred
from pathdep.core.init import init_params
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import Optimizer
from pathdep.core.resnet import (buffer_layout, buffers_of, make_apply_with_buffers, make_ensemble_step_with_buffers,
                                 make_step_with_buffers)

HP = dict(lr=0.05, momentum=0.9, weight_decay=5e-4)


def _clock(device: str, threads: int) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time() if threads == 1 else time.perf_counter()


def programs(depth: int, width: int, norm: str, K: int, B: int, shape, device: str):
    """``{"loop": fn, "vmap": fn}``: each call runs one training step of all K members."""
    m = build_model({"kind": "resnet", "depth": depth, "width": width, "norm": norm}, shape, 10).to(device)
    layout = Layout.from_module(m)
    W = torch.stack([init_params(m, layout, "default", s) for s in range(K)]).to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, *shape, generator=g).to(device)
    y = torch.randint(0, 10, (B,), generator=g).to(device)
    mods = []
    for k in range(K):
        mk = copy.deepcopy(m).train()
        with torch.no_grad():
            for name, t in layout.unflatten(W[k]).items():
                mk.get_parameter(name).copy_(t)
        mods.append((mk, torch.optim.SGD(mk.parameters(), **HP)))

    def loop():
        for mk, o in mods:
            o.zero_grad()
            loss_value("cross_entropy", mk(x), y).backward()
            o.step()

    opt = Optimizer("sgd")
    hp = {h: torch.full((K,), float(HP.get(h, opt.defaults[h])), device=device) for h in opt.hparam_names}
    state = {"W": W.clone(), "s": torch.vmap(opt.init)(W)}
    if norm == "none":
        one = make_step(make_apply(m, layout), "cross_entropy", opt)
        ens = make_ensemble_step(one)
        auto = ensemble_step_for(m, layout, make_apply(m, layout), opt, "cross_entropy", True, fast=True)

        def vmap():
            state["W"], state["s"], _ = ens(state["W"], state["s"], x, y, hp)

        def ensemble():
            state["W"], state["s"], _ = auto(state["W"], state["s"], x, y, hp)

        def pure_loop():
            outs = [one(state["W"][k], tuple(t[k] for t in state["s"]), x, y, {h: v[k] for h, v in hp.items()})
                    for k in range(K)]
            state["W"] = torch.stack([o[0] for o in outs])
            state["s"] = tuple(torch.stack(t) for t in zip(*(o[1] for o in outs)))
    else:
        blayout = buffer_layout(m)
        state["b"] = torch.stack([buffers_of(m, blayout)] * K).to(device)
        ens = torch.vmap(make_step_with_buffers(make_apply_with_buffers(m, layout, blayout), "cross_entropy", opt),
                         in_dims=(0, 0, 0, None, None, 0))

        def vmap():
            state["W"], state["s"], state["b"], _ = ens(state["W"], state["s"], state["b"], x, y, hp)

        auto = make_ensemble_step_with_buffers(make_apply_with_buffers(m, layout, blayout), "cross_entropy", opt,
                                               loop=member_loop_preferred(m))

        def ensemble():
            state["W"], state["s"], state["b"], _ = auto(state["W"], state["s"], state["b"], x, y, hp)

        one = make_step_with_buffers(make_apply_with_buffers(m, layout, blayout), "cross_entropy", opt)

        def pure_loop():
            outs = [one(state["W"][k], tuple(t[k] for t in state["s"]), state["b"][k], x, y,
                        {h: v[k] for h, v in hp.items()}) for k in range(K)]
            state["W"], state["b"] = torch.stack([o[0] for o in outs]), torch.stack([o[2] for o in outs])
            state["s"] = tuple(torch.stack(t) for t in zip(*(o[1] for o in outs)))
    return {"loop": loop, "ensemble": ensemble, "vmap": vmap, "pure loop": pure_loop}, layout.n_params


def _time(progs: dict, rounds: int, steps: int, device: str, threads: int) -> dict:
    """Best seconds per step of each program, timed round-robin after one warm-up step each."""
    for f in progs.values():
        f()
    best = {n: float("inf") for n in progs}
    for _ in range(rounds):
        for n, f in progs.items():
            t0 = _clock(device, threads)
            for _ in range(steps):
                f()
            best[n] = min(best[n], (_clock(device, threads) - t0) / steps)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--width", type=int, default=1)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--shape", type=int, nargs=3, default=[3, 32, 32])
    ap.add_argument("--norm", nargs="+", default=["batch"])
    ap.add_argument("--programs", nargs="+", default=["loop", "ensemble"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    limit = peak(a.device)
    print(f"ResNet-{a.depth} width {a.width}, K = {a.k}, batch {a.batch}, input {tuple(a.shape)}, "
          f"{a.device}, {a.threads} thread(s); best of {a.rounds} rounds of {a.steps} steps")
    print("| norm | params | path | " + " | ".join(f"{n} s/step" for n in a.programs)
          + " | MFLOP/member-step | loop member-steps/s | GFLOP/s | % peak | ensemble member-steps/s | GFLOP/s "
          + "| % peak | loop / ensemble |\n|" + "---|" * (11 + len(a.programs)))
    for norm in a.norm:
        progs, P = programs(a.depth, a.width, norm, a.k, a.batch, tuple(a.shape), a.device)
        m = build_model({"kind": "resnet", "depth": a.depth, "width": a.width, "norm": norm}, tuple(a.shape), 10).to(a.device)
        path = "member loop" if member_loop_preferred(m) else "vmap"
        best = _time({n: progs[n] for n in a.programs}, a.rounds, a.steps, a.device, a.threads)
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(a.batch, *a.shape, generator=g).to(a.device), torch.randint(0, 10, (a.batch,)).to(a.device)
        fl, limit = step_flops(m, x, y), max(limit, peak(a.device, repeat=2))
        print(f"| {norm} | {P} | {path} | " + " | ".join(f"{best[n]:.3f}" for n in a.programs)
              + f" | {fl / 1e6:.0f} " + columns(a.k / best["loop"], fl, limit) + " "
              + columns(a.k / best["ensemble"], fl, limit) + f" | {best['loop'] / best['ensemble']:.2f} |")
        print(f"float32 GEMM peak (2048^3, {a.device}): {limit / 1e9:.1f} GFLOP/s")
        if a.device == "cuda":
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
