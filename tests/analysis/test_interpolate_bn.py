"""Interpolation of BatchNorm networks (issue 19 item 4): RunContext.bn_reset recomputes the BN
statistics at every interpolation point; interpolation_curve with it equals torch.nn modules whose
BatchNorm2d statistics are reset (momentum=None, train mode over the same batches) and then
evaluated in eval mode, in float64 at every lambda; interpolating the running statistics instead
gives other losses."""

import copy

import numpy as np
import pytest
import torch
from helpers import make_dataset, tiny_run

from pathdep.analysis.interpolate import interpolation_curve
from pathdep.core.context import RunContext
from pathdep.core.dynamics import loss_value
from pathdep.core.init import init_params


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    data = make_dataset(tmp_path_factory.mktemp("data"), "digits")
    run = tiny_run({"model": {"kind": "resnet", "depth": 8, "norm": "batch"}, "init": {"scheme": "default"},
                    "training": {"dtype": "float64"}})
    return RunContext.build(run, data, "cpu", load=True)


def _reference(ctx, w, xs, x, y):
    """torch.nn: load w, reset the BatchNorm statistics on xs (cumulative average), eval on x."""
    m = copy.deepcopy(ctx.module)
    with torch.no_grad():
        for name, t in ctx.layout.unflatten(w).items():
            m.get_parameter(name).copy_(t)
        for bn in m.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.momentum = None
                bn.num_batches_tracked = torch.tensor(0)
                bn.reset_running_stats()
        m.train()
        for xb in xs:
            m(xb)
        m.eval()
        return loss_value("cross_entropy", m(x), y).item()


def test_bn_reset_interpolation_equals_torch_batchnorm_reset(ctx):
    x_all, y_all = ctx.train_tensors()
    xs = [x_all[i:i + 40] for i in range(0, 120, 40)]
    x, y = x_all[200:300], y_all[200:300]
    wa, wb = (init_params(ctx.module, ctx.layout, "default", s).double() for s in (1, 2))
    wa, wb = wa + 0.2 * torch.sin(torch.arange(len(wa), dtype=torch.float64)), wb   # BN weights not all 1
    lam = np.linspace(0, 1, 5)
    prepare = ctx.bn_reset(xs)
    cur = interpolation_curve(ctx.eval_apply, wa, wb, x, y, lam, batch_size=30, prepare=prepare)
    ref = [_reference(ctx, (1 - l) * wa + l * wb, xs, x, y) for l in lam]
    assert np.abs(cur["loss"] - np.array(ref)).max() <= 1e-10
    # the same curve in lambda chunks of 2 (the reset runs per chunk under vmap)
    cur2 = interpolation_curve(ctx.eval_apply, wa, wb, x, y, lam, batch_size=100, prepare=prepare, lambda_chunk=2)
    assert np.abs(cur2["loss"] - cur["loss"]).max() <= 1e-12
    # interpolating the (initial) running statistics instead: other losses
    B0 = ctx.initial_buffers(1)[0]
    naive = interpolation_curve(ctx.eval_apply, torch.cat([wa, B0]), torch.cat([wb, B0]), x, y, lam, batch_size=100)
    assert np.abs(naive["loss"] - cur["loss"]).max() > 1e-3
    assert ctx.bn_reset(xs) is not None and prepare(wa[None]).shape == (1, ctx.layout.n_params + ctx.buffer_layout.n_params)
