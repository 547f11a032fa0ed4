"""The machine's limit for bench_resnet.py and bench_transformer.py: FLOPs per member-step and the GEMM peak.

* :func:`step_flops`: the FLOPs of one training step of one ``torch.nn`` model, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` on one forward + backward (cross entropy) of a copy:
  matmuls and convolutions (forward, and the backward's weight and input gradients that autograd
  actually computes); elementwise ops, softmax, normalisation and the optimizer are not counted.
* :func:`peak`: the float32 GEMM peak, best of a few ``2048^3`` matmuls (``2 * 2048^3`` FLOPs each) on the
  current thread count: ``bench_training.gemm_peak`` on a CPU (process CPU time on 1 thread), the same
  product timed after ``torch.cuda.synchronize`` on a GPU.

"% of peak" = member-steps/s * FLOPs per member-step / peak.
"""

from __future__ import annotations

import copy
import os
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_training import gemm_peak  # noqa: E402

from pathdep.core.dynamics import loss_value  # noqa: E402


def step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one forward + backward of ``model`` (a copy, train mode) on ``(x, y)``."""
    m = copy.deepcopy(model).train()
    with FlopCounterMode(display=False) as counter:
        loss_value("cross_entropy", m(x), y).backward()
    return int(counter.get_total_flops())


def peak(device: str = "cpu", n: int = 2048, repeat: int = 5) -> float:
    """Best float32 FLOP/s of an ``n^3`` matmul on ``device`` (the current thread count on a CPU)."""
    if torch.device(device).type == "cpu":
        return gemm_peak(n, repeat)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def columns(rate: float, flops: int, limit: float) -> str:
    """``| member-steps/s | GFLOP/s | % peak`` cells (no closing bar) for ``rate`` member-steps/s."""
    return f"| {rate:.1f} | {rate * flops / 1e9:.2f} | {100 * rate * flops / limit:.1f}"
