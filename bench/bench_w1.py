"""Benchmark of the W1 distance between eigenvalue sets of unequal size (a script, not a test).

What it measures: :func:`pathdep.analysis.koopman.transport_plan` between two random
complex point sets (standard normal real and imaginary parts, seed 0) of 50 x 40 and
200 x 150 points, by the dense transport linear program (``method="linprog"``, scipy
HiGHS, the implementation before), POT's network simplex called directly
(``ot.emd2``, the peer) and pathdep's default (``method="auto"``: POT's ``ot.emd``
behind the cost matrix and checks); the W1 values of the three agree to 1e-12 (printed).
Times: min and median of ``--repeat`` calls after one warm-up, process CPU time.

Usage::

    PYTHONPATH=src python bench/bench_w1.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

for _key in ("TENSORFLOW", "JAX", "CUPY", "PYTORCH"):   # numpy only: skip POT's backend probes
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_key}", "1")
import ot  # noqa: E402

from pathdep.analysis.koopman import transport_plan  # noqa: E402


def timeit(fn, repeat: int) -> tuple[float, float]:
    """``(min, median)`` process CPU seconds of ``fn()`` after one warm-up call."""
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        ts.append(time.process_time() - t0)
    return min(ts), statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="timed calls per case")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"POT {ot.__version__}, numpy {np.__version__}\n")
    print("| points | method | ms (min) | ms (median) | x POT | W1 - W1(linprog) |")
    print("|---|---|---:|---:|---:|---:|")
    for n, m in ((50, 40), (200, 150)):
        a = rng.normal(size=n) + 1j * rng.normal(size=n)
        b = rng.normal(size=m) + 1j * rng.normal(size=m)
        pa, pb = np.stack([a.real, a.imag], 1), np.stack([b.real, b.imag], 1)

        def pot():
            cost = np.linalg.norm(pa[:, None, :] - pb[None, :, :], axis=2)
            return float(ot.emd2(np.full(n, 1.0 / n), np.full(m, 1.0 / m), cost))

        cases = (("linprog (HiGHS, before)", lambda: transport_plan(a, b, "linprog")[0]),
                 ("POT ot.emd2 (peer)", pot),
                 ("pathdep auto (POT network simplex)", lambda: transport_plan(a, b)[0]))
        ref = cases[0][1]()
        t_pot = timeit(pot, args.repeat)[0]
        for name, fn in cases:
            t, med = timeit(fn, args.repeat)
            print(f"| {n} x {m} | {name} | {t * 1e3:.3f} | {med * 1e3:.3f} | {t / t_pot:.2f} | "
                  f"{fn() - ref:.1e} |")


if __name__ == "__main__":
    main()
