"""Benchmark: chunked vmapped empirical NTK vs a naive per-sample-gradient loop.

Setting of issue 11: N = 256 inputs, 10 outputs, the 784-100-10 ReLU MLP (79510
parameters), float32 on the CPU, side by side in one run. Reports wall time and peak
Python-heap memory (tracemalloc; torch's CPU allocator goes through malloc, which
tracemalloc does not see, so peak RSS growth from ``resource`` is reported as well) and
the ratios; and the peak memory of the chunked NTK for N = 1000 (trace over outputs).

Run: ``.venv/bin/python bench/bench_ntk.py [--threads 1] [--n 256] [--big 1000]``.
"""
import argparse
import gc
import resource
import threading
import time

import psutil
import torch

from pathdep.analysis.ntk import empirical_ntk, ntk_naive
from pathdep.core.init import init_params
from pathdep.core.models import MLP, Layout, make_apply


class PeakRSS:
    """Peak resident set size above the level at entry, sampled every 5 ms."""

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
            time.sleep(0.005)

    def __exit__(self, *a):
        self.stop = True
        self.t.join()
        self.mb = (self.peak - self.base) / 2 ** 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--big", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = MLP(784, [100], 10)
    lay = Layout.from_module(m)
    w = init_params(m, lay, "kaiming_normal", 0)
    apply = make_apply(m, lay)
    x = torch.randn(args.n, 784, generator=torch.Generator().manual_seed(0))
    print(f"P = {lay.n_params}, N = {args.n}, O = 10, threads = {args.threads}, max RSS so far "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    res = {}
    for name, fn in (("chunked", lambda: empirical_ntk(apply, w, x, chunk_samples=32, chunk_params=20000)),
                     ("naive", lambda: ntk_naive(apply, w, x))):
        fn() if name == "chunked" else None  # warm-up of the vmapped path
        gc.collect()
        with PeakRSS() as pk:
            t0 = time.perf_counter()
            th = fn()
            dt = time.perf_counter() - t0
        res[name] = (dt, pk.mb, th)
        print(f"{name:8s}: {dt:7.2f} s, peak RSS +{pk.mb:7.1f} MB")
    err = float((res["chunked"][2] - res["naive"][2]).abs().max() / res["naive"][2].abs().max())
    print(f"speed-up naive/chunked = {res['naive'][0] / res['chunked'][0]:.1f}x; "
          f"memory ratio naive/chunked = {res['naive'][1] / max(res['chunked'][1], 1e-9):.2f}; "
          f"max relative difference {err:.1e}")
    xb = torch.randn(args.big, 784, generator=torch.Generator().manual_seed(1))
    gc.collect()
    with PeakRSS() as pk:
        t0 = time.perf_counter()
        empirical_ntk(apply, w, xb, chunk_samples=32, chunk_params=8000)
        dt = time.perf_counter() - t0
    full_j = args.big * 10 * lay.n_params * 4 / 2 ** 20
    print(f"N = {args.big} full (N,N,10,10) NTK, chunk_samples=32, chunk_params=8000: {dt:.1f} s, "
          f"peak RSS +{pk.mb:.0f} MB (the full Jacobian alone would be {full_j:.0f} MB)")


if __name__ == "__main__":
    main()
