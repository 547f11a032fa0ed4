"""Benchmark: pathdep's empirical NTK against neural-tangents, side by side in one run.

Setting: the 784-512-512-10 ReLU MLP (standard parameterisation, P = 669,706) and LeNet-5
(1x28x28 inputs, 10 outputs, P = 61,706), the same weights in both libraries (the
checksum difference is printed), float32 on the CPU, N inputs, the full ``(N, N, 10, 10)``
kernel or its trace over outputs, 1 or 2 threads (CPU affinity, torch threads, XLA's
thread pool; ``OMP_WAIT_POLICY=PASSIVE``: on a shared 2-core machine torch's spinning
OpenMP threads made 2-thread cases up to 15x slower than 1-thread ones). Each case runs in a fresh subprocess and reports wall time of the call
(neural-tangents: jit-compiled beforehand, the compile is not timed), GFLOP/s of the
method's estimated FLOPs (:func:`pathdep.analysis.ntk_empirical.plan`; the neural-tangents
counterpart is given the same count) against the float32 GEMM peak measured in the same run,
and the peak RSS growth during the call (``VmHWM`` minus ``VmRSS`` before it).

Pairs: pathdep ``structured`` vs neural-tangents' implementation 3 (structured derivatives,
its best), pathdep's generic path (``jacobian``/``ntvp`` by its plan, 1 GB budget) vs
implementation 1 (Jacobian contraction). Implementation 1 holds the whole Jacobian
(``N O P`` floats: 6.9 GB for the MLP at N = 256, 27 GB at N = 1024, more than this machine),
so the generic pair runs at N = 256 only (the MLP's at 1 thread only, to keep the bench
within ~15 minutes on a shared 2-core machine).

Run: ``.venv/bin/python bench/bench_ntk.py [--quick]`` (neural-tangents from the ``bench`` extra).
"""
import argparse
import json
import os
import subprocess
import sys
import time
import types

BUDGET_MB = 1024.0


def _mem(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024.0


def _torch_model(kind):
    import torch

    from pathdep.core.init import init_params
    from pathdep.core.models import MLP, LeNet5, Layout, make_apply

    m = MLP(784, [512, 512], 10) if kind == "mlp" else LeNet5((1, 28, 28), 10)
    lay = Layout.from_module(m)
    w = init_params(m, lay, "kaiming_normal", 0).to(torch.float32)
    torch.nn.utils.vector_to_parameters(w, m.parameters())     # the module holds w (copied to neural-tangents)
    return m, lay, make_apply(m, lay), w


def _inputs(kind, n):
    import torch

    x = torch.randn(n, 784, generator=torch.Generator().manual_seed(0))
    return x if kind == "mlp" else x.reshape(n, 1, 28, 28)


def _nt_model(kind, module):
    """neural-tangents' stax network with ``module``'s weights."""
    import jax.numpy as jnp
    from neural_tangents import stax

    def dense(n):
        return stax.Dense(n, parameterization="standard")

    def t(p):
        return jnp.asarray(p.detach().numpy())

    fcs = [module.fc0, module.fc1, module.fc2]
    head = [dense(512 if kind == "mlp" else 120), stax.Relu(), dense(512 if kind == "mlp" else 84), stax.Relu(),
            dense(10)]
    head_p = [(t(fcs[0].weight.T), t(fcs[0].bias)), (), (t(fcs[1].weight.T), t(fcs[1].bias)), (),
              (t(fcs[2].weight.T), t(fcs[2].bias))]
    if kind == "mlp":
        return stax.serial(*head)[1], head_p
    dn = ("NCHW", "OIHW", "NCHW")
    pool = stax.AvgPool((2, 2), strides=(2, 2), channel_axis=1)
    layers = [stax.Conv(6, (5, 5), padding="SAME", dimension_numbers=dn, parameterization="standard"), stax.Relu(),
              pool, stax.Conv(16, (5, 5), padding="VALID", dimension_numbers=dn, parameterization="standard"),
              stax.Relu(), pool, stax.Flatten(), *head]
    conv_p = [(t(c.weight), t(c.bias).reshape(1, -1, 1, 1)) for c in (module.conv0, module.conv1)]
    return stax.serial(*layers)[1], [conv_p[0], (), (), conv_p[1], (), (), (), *head_p]


def gemm_peak(threads):
    """float32 GEMM rate of a 2048^2 product, the best of 10 (the machine is shared)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    best = float("inf")
    for _ in range(11):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * 2048 ** 3 / best / 1e9


def one_case(lib, method, kind, n, trace, threads):
    import torch

    from pathdep.analysis import ntk, ntk_empirical

    torch.set_num_threads(threads)
    m, lay, apply, w = _torch_model(kind)
    x = _inputs(kind, n)
    pm = {"structured": "structured", "generic": "generic", "nt3": "structured", "nt1": "jacobian"}[method]
    # implementation 1's count: pathdep's Jacobian plan without blocks
    pl = ntk_empirical.plan(apply, w, x, trace=trace, max_mb=1e9 if method == "nt1" else BUDGET_MB, method=pm)
    if lib == "pathdep":
        def fn():
            return ntk.empirical_ntk(apply, w, x, trace=trace, method=pm, max_jacobian_mb=BUDGET_MB)
        ntk.empirical_ntk(apply, w, x[:2], trace=trace, method=pm, max_jacobian_mb=BUDGET_MB)
    else:
        import jax
        import jax._src.interpreters.ad as ad_src
        import numpy as np
        from neural_tangents import NtkImplementation, empirical_ntk_fn

        # neural-tangents 0.6.5 reads these from jax.interpreters.ad, where jax 0.4.30 no longer has them
        jax.interpreters.ad.source_info_util = ad_src.source_info_util
        jax.interpreters.ad.config = types.SimpleNamespace(jax_enable_checks=False)

        f, params = _nt_model(kind, m)
        impl = NtkImplementation.STRUCTURED_DERIVATIVES if method == "nt3" else NtkImplementation.JACOBIAN_CONTRACTION
        kfn = jax.jit(empirical_ntk_fn(f, trace_axes=(-1,) if trace else (), vmap_axes=0, implementation=impl))
        xj = jax.numpy.asarray(x.numpy())
        comp = kfn.lower(xj, None, params).compile()

        def fn():   # neural-tangents averages over traced axes: times O for the trace
            th = torch.from_numpy(np.asarray(jax.block_until_ready(comp(xj, None, params))))
            return th * 10 if trace else th
    before = _mem("VmRSS:")
    t0 = time.perf_counter()
    th = fn()
    dt = time.perf_counter() - t0
    return {"lib": lib, "method": method, "plan": pl["method"], "kind": kind, "n": n, "trace": trace,
            "threads": threads, "wall_s": dt, "gflops": pl["flops"] / dt / 1e9,
            "peak_mb": _mem("VmHWM:") - before, "checksum": float(th.double().sum())}


def run(*args):
    threads = args[-1]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE",
               XLA_FLAGS=f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                         f"intra_op_parallelism_threads={threads}")
    cmd = ["taskset", "-c", ",".join(str(i) for i in range(threads)), sys.executable, __file__, "--only",
           json.dumps(list(args))]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    ap.add_argument("--quick", action="store_true", help="N = 256 and 1 thread only")
    ap.add_argument("--structured-only", action="store_true", help="only pathdep structured vs implementation 3")
    args = ap.parse_args()
    if args.only:
        a = json.loads(args.only)
        print(json.dumps(gemm_peak(a[1]) if a[0] == "peak" else one_case(*a)))
        return
    try:
        import neural_tangents  # noqa: F401
        has_nt = True
    except ImportError:
        has_nt = False
    threads_list = [1] if args.quick else [1, 2]
    ns = [256] if args.quick else [256, 1024]
    print("| model | N | kernel | threads | pathdep method | pathdep s | GFLOP/s | peak MB | peer | peer s | "
          "GFLOP/s | peak MB | ratio | checksum rel. diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for threads in threads_list:
        peak = json.loads(subprocess.run(["taskset", "-c", ",".join(map(str, range(threads))), sys.executable,
                                          __file__, "--only", json.dumps(["peak", threads])],
                                         capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"| GEMM peak float32 2048^2, {threads} thread(s): {peak:.0f} GFLOP/s |")
        for kind in ("mlp", "lenet5"):
            for n in ns:
                for trace in (True, False):
                    generic = n == 256 and (threads == 1 or kind == "lenet5") and not args.structured_only
                    pairs = [("structured", "nt3")] + ([("generic", "nt1")] if generic else [])
                    for ours, peer in pairs:
                        a = run("pathdep", ours, kind, n, trace, threads)
                        b = run("nt", peer, kind, n, trace, threads) if has_nt else {"error": "not installed"}
                        _row(kind, n, trace, threads, ours, peer, a, b)


def _row(kind, n, trace, threads, ours, peer, a, b):
    name = {"nt3": "NT impl 3", "nt1": "NT impl 1"}[peer]
    left = (f"| {kind} | {n} | {'trace' if trace else 'full'} | {threads} | {ours} ({a.get('plan', '-')}) | "
            + (f"{a['wall_s']:.3f} | {a['gflops']:.1f} | {a['peak_mb']:.0f} |" if "wall_s" in a
               else f"{a.get('error')} | | |"))
    if "wall_s" not in b:
        print(left + f" {name} | {b.get('error')} | | | | |")
        return
    diff = abs(a["checksum"] - b["checksum"]) / abs(b["checksum"]) if "checksum" in a else float("nan")
    ratio = a["wall_s"] / b["wall_s"] if "wall_s" in a else float("nan")
    print(left + f" {name} | {b['wall_s']:.3f} | {b['gflops']:.1f} | {b['peak_mb']:.0f} | {ratio:.2f}x | {diff:.1e} |",
          flush=True)


if __name__ == "__main__":
    main()
