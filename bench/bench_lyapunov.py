"""Benchmark of the Lyapunov machinery (a script, not a test).

What it measures:

1. For a 784-100-10 ReLU MLP (79,510 parameters, float32) on a batch of 64: the time of
   one plain SGD step ``w - lr grad L(w)`` on the flat vector (written inline with
   ``torch.func.grad`` over ``pathdep.core.models.make_apply``), and the time per step of
   Benettin's method with k = 1, 8, 32 tangent vectors (vmapped ``torch.func.jvp`` of
   that step, i.e. forward-over-reverse, plus the QR), relative to the plain step; the
   QR alone is timed too.
2. The throughput of the 2-2-1 study (pathdep.analysis.lyapunov_study): 8000 networks (float64)
   with full 9x9 Jacobians (vmapped ``jacfwd``), batched QR and the Ginelli CLV buffer,
   in network-steps per second; plus Benettin without CLVs and plain vmapped gradient
   descent for comparison.

Prints a markdown table. Usage::

    PYTHONPATH=src python bench/bench_lyapunov.py [--steps 20] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.func import grad, vmap

from pathdep.analysis import lyapunov as ly
from pathdep.analysis import lyapunov_study as st
from pathdep.core.models import MLP, Layout, make_apply


def timeit(fn, repeat: int) -> tuple[float, float]:
    """``(min, median)`` wall time of ``fn()`` in seconds after one warm-up call.

    On a shared machine the minimum is the robust estimate of the cost; the median shows
    the contention.
    """
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def bench_mlp(steps: int, repeat: int) -> list[tuple[str, float, float, float]]:
    torch.manual_seed(0)
    model = MLP(784, [100], 10, activation="relu")
    layout = Layout.from_module(model)
    apply = make_apply(model, layout)
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    x = torch.randn(64, 784)
    y = torch.randint(0, 10, (64,))
    lr = 0.01

    def loss(v):
        return torch.nn.functional.cross_entropy(apply(v, x), y)

    g = grad(loss)

    def F(v, t):
        return v - lr * g(v)

    def plain():
        v = w
        for _ in range(steps):
            v = F(v, 0)
        return v

    t_plain, m_plain = (t / steps for t in timeit(plain, repeat))
    rows = [("plain SGD step", t_plain, m_plain, 1.0)]
    for k in (1, 8, 32):
        t, m = (v / steps for v in timeit(
            lambda: ly.benettin(F, w, steps, k, record=False, running=False), repeat))
        Q = ly.random_orthonormal(w.numel(), k, dtype=w.dtype)
        t_qr, m_qr = timeit(lambda: ly.qr_positive(Q), max(repeat, 5) * steps)
        rows.append((f"Benettin k={k} (jvp + QR)", t, m, t / t_plain))
        rows.append((f"  of which QR (D x {k})", t_qr, m_qr, t_qr / t_plain))
    return rows


def bench_study(n: int, steps: int, repeat: int) -> list[tuple[str, float, float]]:
    F, loss, layout = st.make_update_map("tanh", lr=0.3, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    W = (torch.rand(n, 9, generator=g, dtype=torch.float64) * 2 - 1) * 0.5
    wb = max(1, steps // 2)
    times = [0, steps - wb]
    step = vmap(lambda v: F(v, 0))

    def clv():
        ly.clv_batched(F, W, steps, times=times, warmup_backward=wb, running=False,
                       max_buffer=wb + 1)

    def ben():
        ly.benettin_batched(F, W, steps, running=False)

    def plain():
        V = W
        for _ in range(steps):
            V = step(V)

    out = []
    for name, fn in (("2-2-1 study step: 9x9 jacfwd + QR + CLV", clv),
                     ("2-2-1 Benettin: 9x9 jacfwd + QR", ben),
                     ("2-2-1 plain vmapped GD", plain)):
        t, m = timeit(fn, repeat)
        out.append((name, n * steps / t, n * steps / m))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="steps per timed run")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs (min and median)")
    ap.add_argument("--networks", type=int, default=8000, help="2-2-1 networks")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| 784-100-10 MLP, batch 64, float32 | ms / step (min) | (median) | x plain step |")
    print("|---|---:|---:|---:|")
    for name, t, m, rel in bench_mlp(args.steps, args.repeat):
        print(f"| {name} | {t * 1e3:.2f} | {m * 1e3:.2f} | {rel:.1f} |")
    print(f"\n| {args.networks} networks 2-2-1, float64 | network-steps / s (best) | (median) |")
    print("|---|---:|---:|")
    for name, thr, thr_m in bench_study(args.networks, args.steps, max(2, args.repeat // 2)):
        print(f"| {name} | {thr:,.0f} | {thr_m:,.0f} |")


if __name__ == "__main__":
    main()
