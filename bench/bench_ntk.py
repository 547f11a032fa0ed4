"""Benchmark: chunked vmapped empirical NTK vs a naive per-sample-gradient loop.

Setting: N = 256 inputs, 10 outputs, the 784-100-10 ReLU MLP (79,510
parameters), float32 on the CPU, side by side in one run; the chunked NTK with its default automatic
parameter slicing (one slice whenever the Jacobians fit in ``max_jacobian_mb`` = 1 GB). Each case runs in a fresh
subprocess (so freed-but-retained allocator memory of one case cannot hide the next one's),
reporting wall time, CPU time (user + sys) and the peak growth of the resident set size
above the level before the call (sampled every 2 ms, and ``ru_maxrss`` minus that level);
then the ratios. Finally the peak memory of the chunked NTK for N = 1000 inputs, both the
full ``(N, N, 10, 10)`` kernel (400 MB of output alone) and its trace over outputs.

Run: ``.venv/bin/python bench/bench_ntk.py [--threads 1] [--n 256] [--big 1000]``.
"""
import argparse
import json
import resource
import subprocess
import sys
import threading
import time

import psutil
import torch

from pathdep.analysis.ntk import empirical_ntk, ntk_naive
from pathdep.core.init import init_params
from pathdep.core.models import MLP, Layout, make_apply

CHUNK_SAMPLES, CHUNK_PARAMS, MAX_JACOBIAN_MB = 32, None, 1024


class PeakRSS:
    """Peak resident set size above the level at entry, sampled every 2 ms."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *a):
        self.stop = True
        self.t.join()
        self.peak = max(self.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        self.mb = (self.peak - self.base) / 2 ** 20


def one_case(case: str, n: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    m = MLP(784, [100], 10)
    lay = Layout.from_module(m)
    w = init_params(m, lay, "kaiming_normal", 0)
    apply = make_apply(m, lay)
    x = torch.randn(n, 784, generator=torch.Generator().manual_seed(0))
    if case == "naive":
        fn = lambda: ntk_naive(apply, w, x)  # noqa: E731
        ntk_naive(apply, w, x[:2])
    else:
        trace = case == "trace"
        fn = lambda: empirical_ntk(apply, w, x, trace=trace, chunk_samples=CHUNK_SAMPLES,  # noqa: E731
                                   chunk_params=CHUNK_PARAMS, max_jacobian_mb=MAX_JACOBIAN_MB)
        empirical_ntk(apply, w, x[:2], trace=trace, chunk_samples=2, chunk_params=CHUNK_PARAMS)  # warm-up
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    with PeakRSS() as pk:
        t0 = time.perf_counter()
        th = fn()
        dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return {"case": case, "n": n, "P": lay.n_params, "wall_s": dt, "cpu_s": cpu, "peak_mb": pk.mb,
            "out_mb": th.numel() * th.element_size() / 2 ** 20, "checksum": float(th.double().sum()),
            "absmax": float(th.abs().max())}


def run(case, n, threads):
    out = subprocess.run([sys.executable, __file__, "--only", case, "--n", str(n), "--threads", str(threads)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--big", type=int, default=1000)
    ap.add_argument("--only", choices=["chunked", "naive", "trace"])
    args = ap.parse_args()
    if args.only:
        print(json.dumps(one_case(args.only, args.n, args.threads)))
        return
    print(f"784-100-10 MLP, O = 10, float32, CPU, threads = {args.threads}, "
          f"chunk_samples = {CHUNK_SAMPLES}, chunk_params = {CHUNK_PARAMS} (auto within {MAX_JACOBIAN_MB} MB)")
    res = {c: run(c, args.n, args.threads) for c in ("chunked", "naive")}
    for r in res.values():
        print(f"N = {r['n']:5d} {r['case']:8s}: wall {r['wall_s']:7.2f} s, cpu {r['cpu_s']:7.2f} s, "
              f"peak RSS +{r['peak_mb']:7.1f} MB (output {r['out_mb']:.1f} MB)")
    c, nv = res["chunked"], res["naive"]
    print(f"ratio naive/chunked: wall {nv['wall_s'] / c['wall_s']:.1f}x, cpu {nv['cpu_s'] / c['cpu_s']:.1f}x, "
          f"peak memory {nv['peak_mb'] / max(c['peak_mb'], 1e-9):.2f}x; "
          f"|checksum difference| / |checksum| = {abs(c['checksum'] - nv['checksum']) / abs(nv['checksum']):.1e}")
    for case in ("chunked", "trace"):
        r = run(case, args.big, args.threads)
        print(f"N = {r['n']:5d} {case:8s} (P = {r['P']}): wall {r['wall_s']:7.2f} s, cpu {r['cpu_s']:7.2f} s, "
              f"peak RSS +{r['peak_mb']:7.1f} MB (output {r['out_mb']:.1f} MB; Jacobian slices <= "
              f"{MAX_JACOBIAN_MB} MB; the full Jacobian would be "
              f"{r['n'] * 10 * r['P'] * 4 / 2 ** 20:.0f} MB)")


if __name__ == "__main__":
    main()
