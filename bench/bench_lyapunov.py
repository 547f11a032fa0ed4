"""Benchmark of the Lyapunov machinery (a script, not a test).

What it measures:

1. For a 784-100-10 ReLU MLP (79,510 parameters, float32) on a batch of 64: the time of
   one plain SGD step ``w - lr grad L(w)`` on the flat vector (written inline with
   ``torch.func.grad`` over ``pathdep.core.models.make_apply``: the unit), and the time
   per step of Benettin's method with k = 1, 8, 32 tangent vectors relative to it:
   before (vmapped ``torch.func.jvp`` of that generic step + Householder QR) and after
   (jvp of :func:`pathdep.core.fast.make_fast_step`, or the hand-written Hessian-vector
   products of :func:`pathdep.core.tangents.make_tangent_push` (what the lyapunov stage uses),
   whose first-layer tangents of all k vectors are one GEMM, with ``qr="auto"``: CholeskyQR2
   :func:`pathdep.analysis.lyapunov.qr_cholesky` for k >= 16, else LAPACK; also with a QR
   every 4 steps); the QRs alone are timed too.
2. The tangent push alone (no QR) at k = 8, generic against hand-written: on the MLP the
   hand-written push vs the vmapped ``jvp`` of the generic step, a loop of k jvps and the
   batched double-vjp; on LeNet-5 (no hand-written push) the same generic variants in units
   of its plain step (``--compile`` adds ``torch.compile`` of the vmapped jvp).
3. The throughput of the 2-2-1 study (pathdep.analysis.lyapunov_study): 8000 networks
   (float64) with full 9x9 Jacobians (closed form, :class:`~pathdep.analysis.study_model.ClosedForm`,
   vs the vmapped ``jacfwd`` used before), batched QR and the Ginelli CLV buffer, in
   network-steps per second, including the loss at every step; the compiled per-network
   kernels (:mod:`pathdep.analysis.study_kernels`, numba: fused step + tangent push + 9x9
   Householder QR, and the backward solve) on 1 thread (CPU time) and 2 threads (wall
   clock); plus Benettin without CLVs and plain gradient descent.

Prints a markdown table. Usage::

    PYTHONPATH=src python bench/bench_lyapunov.py [--steps 20] [--threads N] [--only push] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode
from torch.func import grad, jvp, vmap

from pathdep.analysis import lyapunov as ly
from pathdep.analysis import study_model as st
from pathdep.core.fast import make_fast_step
from pathdep.core.models import MLP, LeNet5, Layout, make_apply
from pathdep.core.optim import Optimizer
from pathdep.core.tangents import make_tangent_push


def timeit(fn, repeat: int, wall: bool = False) -> tuple[float, float]:
    """``(min, median)`` wall time of ``fn()`` in seconds after one warm-up call.

    On a shared machine the minimum is the robust estimate of the cost; the median shows
    the contention.
    """
    # on 1 thread the process CPU time (robust on a shared, overloaded machine)
    clock = time.process_time if torch.get_num_threads() == 1 and not wall else time.perf_counter
    fn()
    ts = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        ts.append(clock() - t0)
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

    opt = Optimizer("sgd").specialized([{"lr": lr}])
    fstep = make_fast_step(model, layout, "cross_entropy", opt)
    hp = {"lr": torch.tensor(lr)}
    st0 = opt.init(w)

    def F_fast(v, t):
        return fstep(v, st0, x, y, hp)[0]

    tpush = make_tangent_push(model, layout, "cross_entropy", opt)
    no_bufs = [None] * (len(st0) - 1)

    def push_hand(v, Q, t):  # hand-written Hessian-vector products (the stage's push)
        w2, _, Vw, _ = tpush(v, st0, x, y, hp, Q.t().contiguous(), no_bufs)
        return w2, Vw.t()

    def plain(Fm):
        def run():
            v = w
            for _ in range(steps):
                v = Fm(v, 0)
            return v
        return run

    t_plain, m_plain = (t / steps for t in timeit(plain(F), repeat))
    t_pf, m_pf = (t / steps for t in timeit(plain(F_fast), repeat))
    rows = [("plain SGD step (generic, the unit)", t_plain, m_plain, 1.0),
            ("plain SGD step (fast gradient)", t_pf, m_pf, t_pf / t_plain)]
    for k in (1, 8, 32):
        for label, Fm, pm, qr, qe in (
                ("generic jvp + Householder QR (before)", F, None, "householder", 1),
                ("fast jvp + auto QR", F_fast, None, "auto", 1),
                ("fast jvp + auto QR every 4", F_fast, None, "auto", 4),
                ("hand-written HVP + auto QR", F, push_hand, "auto", 1),
                ("hand-written HVP + auto QR every 4", F, push_hand, "auto", 4)):
            if qe > 1 and k == 1:
                continue
            t, m = (v / steps for v in timeit(
                lambda: ly.benettin(Fm, w, steps - steps % qe, k, record=False, running=False,
                                    qr=qr, qr_every=qe, push=pm), repeat))
            rows.append((f"Benettin k={k}: {label}", t, m, t / t_plain))
        Q = ly.random_orthonormal(w.numel(), k, dtype=w.dtype)
        for qr in ("householder", "cholesky"):
            fn = ly.QR_METHODS[qr]
            t_qr, m_qr = timeit(lambda: fn(Q), max(repeat, 5) * 2)
            rows.append((f"  QR alone (D x {k}), {qr}", t_qr, m_qr, t_qr / t_plain))
    return rows


def bench_push(k: int, repeat: int, compiled: bool) -> list[tuple[str, float, float, float]]:
    """Tangent push alone (no QR), ``k`` tangents, generic against hand-written.

    MLP 784-100-10: the hand-written Hessian-vector products (``make_tangent_push``) vs the
    generic vmapped ``jvp`` of the torch.func step, a loop of ``k`` jvps, and the double-vjp
    trick (``J v`` as the vjp of ``u -> J^T u``, batched over ``v`` by autograd's
    ``is_grads_batched``), optionally ``torch.compile`` of the vmapped jvp. LeNet-5 (no
    hand-written push exists): the same generic variants against ``k`` plain steps and
    against the MLP's hand-written push in units of its own plain step. Each row's last
    column is its time over the row marked as the reference; the generic variants'
    ``J Q`` agree to float32 rounding (printed).
    """
    rows = []
    for name, model in (("784-100-10 MLP", MLP(784, [100], 10, activation="relu")),
                        ("LeNet-5", LeNet5((1, 28, 28), 10))):
        torch.manual_seed(0)
        layout = Layout.from_module(model)
        apply = make_apply(model, layout)
        w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        x, y, lr = torch.randn(64, 784), torch.randint(0, 10, (64,)), 0.01
        g = grad(lambda v: torch.nn.functional.cross_entropy(apply(v, x), y))

        def F(v):
            return v - lr * g(v)

        Q = torch.linalg.qr(torch.randn(w.numel(), k))[0]
        vjvp = lambda w_, Q_: vmap(lambda v: jvp(F, (w_,), (v,)), in_dims=1, out_dims=(0, 1))(Q_)  # noqa: E731

        def dvjp():
            xw = w.detach().requires_grad_(True)
            yv = F(xw)
            u = torch.zeros_like(yv, requires_grad=True)
            (gx,) = torch.autograd.grad(yv, xw, u, create_graph=True)
            return yv.detach(), torch.autograd.grad(gx, u, Q.t(), is_grads_batched=True)[0].t()

        cases = [("plain step", lambda: F(w)),
                 ("generic: vmapped jvp", lambda: vjvp(w, Q)),
                 ("generic: loop of k jvps", lambda: [jvp(F, (w,), (Q[:, j],)) for j in range(k)]),
                 ("generic: double vjp, batched", dvjp)]
        ref = "plain step"
        if isinstance(model, MLP):
            opt = Optimizer("sgd").specialized([{"lr": lr}])
            tp, st0, hp = make_tangent_push(model, layout, "cross_entropy", opt), opt.init(w), {"lr": torch.tensor(lr)}
            cases.append(("hand-written HVP push", lambda: tp(w, st0, x, y, hp, Q.t().contiguous(), [])))
            ref = "hand-written HVP push"
        if compiled:
            cvjvp = torch.compile(vjvp)
            t0 = time.perf_counter()
            cvjvp(w, Q)
            print(f"{name}: torch.compile of the vmapped jvp took {time.perf_counter() - t0:.0f} s")
            cases.append(("generic: torch.compile(vmapped jvp)", lambda: cvjvp(w, Q)))
        err = float((vjvp(w, Q)[1] - dvjp()[1]).abs().max())
        print(f"{name}: |vmapped jvp - double vjp| = {err:.1e}")
        times = {label: timeit(fn, repeat) for label, fn in cases}
        for label, fn in cases:
            with FlopCounterMode(display=False) as fc:
                fn()
            t, m = times[label]
            rows.append((f"{name}, k={k}: {label}", t, m, t / times[ref][0], fc.get_total_flops() / t / 1e9))
    return rows


def gemm_peak(n: int = 1024) -> float:
    """GFLOP/s of an ``n x n`` float32 matrix product (min time of 10)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / timeit(lambda: a @ b, 10)[0] / 1e9


def bench_study(n: int, steps: int, repeat: int) -> list[tuple[str, float, float]]:
    F, loss, layout = st.make_update_map("tanh", lr=0.3, dtype=torch.float64)
    cf = st.ClosedForm("tanh", lr=0.3, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    W = (torch.rand(n, 9, generator=g, dtype=torch.float64) * 2 - 1) * 0.5
    wb = max(1, steps // 2)
    times = [0, steps - wb]
    step = vmap(lambda v: F(v, 0))

    def clv(jac, qr):
        return lambda: ly.clv_batched(F, W, steps, times=times, warmup_backward=wb, running=False,
                                      max_buffer=wb + 1, jacobian_fn=jac, qr=qr,
                                      observe=lambda X, t: cf.loss(X))

    def clv_numba(threads):
        cn = st.ClosedForm("tanh", lr=0.3, dtype=torch.float64, backend="numba", threads=threads)
        def push_qr(X, Q, t):  # the study's step: fused push + QR, loss recorded
            Y, Qn, R, _ = cn.push_qr(X, Q)
            return Y, Qn, R
        return lambda: ly.clv_batched(F, W, steps, times=times, warmup_backward=wb, running=False,
                                      max_buffer=wb + 1, push=cn.push, qr=cn.qr, solve=cn.solve,
                                      push_qr=push_qr)

    def ben():
        ly.benettin_batched(F, W, steps, running=False, jacobian_fn=cf.jacobian)

    def plain(fn):
        def run():
            V = W
            for _ in range(steps):
                V = fn(V)
        return run

    out = []
    numba_rows = []
    if st.study_kernels.AVAILABLE:
        numba_rows = [("2-2-1 study step, compiled kernels (numba) + CLV, 1 thread", clv_numba(1)),
                      ("2-2-1 study step, compiled kernels (numba) + CLV, 2 threads (wall)",
                       clv_numba(2))]
    for name, fn in (*numba_rows, ("2-2-1 study step, closed-form 9x9 J + Householder QR + CLV", clv(cf.jacobian, "householder")),
                     ("2-2-1 study step, closed-form 9x9 J + CholeskyQR2 + CLV", clv(cf.jacobian, "cholesky")),
                     ("2-2-1 study step, vmapped jacfwd + Householder QR + CLV (before)", clv(None, "householder")),
                     ("2-2-1 Benettin: closed-form J + QR", ben),
                     ("2-2-1 plain GD, closed form", plain(cf.step)),
                     ("2-2-1 plain GD, vmapped grad (before)", plain(step))):
        t, m = timeit(fn, repeat, wall="2 threads" in name)
        out.append((name, n * steps / t, n * steps / m))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="steps per timed run")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs (min and median)")
    ap.add_argument("--networks", type=int, default=8000, help="2-2-1 networks")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--only", choices=("mlp", "push", "study"), default=None, help="one part")
    ap.add_argument("--compile", action="store_true", help="also torch.compile the generic push (minutes)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import os
    la = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average "
          f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} CPUs\n")
    if args.only in (None, "push"):
        print(f"float32 GEMM peak: {gemm_peak():.1f} GFLOP/s\n")
        print("| tangent push alone, batch 64, float32 | ms (min) | (median) | x reference | GFLOP/s |")
        print("|---|---:|---:|---:|---:|")
        for name, t, m, rel, gf in bench_push(8, args.repeat, args.compile):
            print(f"| {name} | {t * 1e3:.2f} | {m * 1e3:.2f} | {rel:.2f} | {gf:.1f} |")
        print()
    if args.only == "push":
        return
    if args.only != "study":
        print("| 784-100-10 MLP, batch 64, float32 | ms / step (min) | (median) | x plain step |")
        print("|---|---:|---:|---:|")
        for name, t, m, rel in bench_mlp(args.steps, args.repeat):
            print(f"| {name} | {t * 1e3:.2f} | {m * 1e3:.2f} | {rel:.1f} |")
    if args.only == "mlp":
        return
    print(f"\n| {args.networks} networks 2-2-1, float64 | network-steps / s (best) | (median) |")
    print("|---|---:|---:|")
    # the study's Jacobian window is 150-250 steps: time >= 48 so that the one-off random
    # starts (initial bases, Ginelli's backward C) weigh as little as they do there
    for name, thr, thr_m in bench_study(args.networks, max(args.steps, 48), max(2, args.repeat // 2)):
        print(f"| {name} | {thr:,.0f} | {thr_m:,.0f} |")


if __name__ == "__main__":
    main()
