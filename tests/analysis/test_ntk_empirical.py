"""The empirical NTK's methods (structured, sample-blocked Jacobians, NTK-vector products)
against the per-sample-gradient loop in float64, the plan's choice, and the memory budget."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from pathdep.analysis import ntk, ntk_empirical, ntk_structured
from pathdep.core.init import init_params
from pathdep.core.models import MLP, LeNet5, Layout, make_apply

DT = torch.float64
MODELS = {
    "mlp_bias_standard": (lambda: MLP(4, [5, 6], 3, "tanh", True, "standard"), (4,)),
    "mlp_nobias_standard": (lambda: MLP(4, [5, 6], 3, "relu", False, "standard"), (4,)),
    "mlp_bias_ntk": (lambda: MLP(4, [5, 6], 3, "gelu", True, "ntk", 1.3, 0.7), (4,)),
    "mlp_nobias_ntk": (lambda: MLP(4, [7], 2, "tanh", False, "ntk", 1.5, 0.2), (4,)),
    "lenet5": (lambda: LeNet5((1, 16, 16), 3, "tanh"), (1, 16, 16)),
    "lenet5_nobias": (lambda: LeNet5((2, 16, 16), 2, "relu", bias=False), (2, 16, 16)),
}


def model(name, seed=0):
    make, shape = MODELS[name]
    torch.manual_seed(seed)
    m = make().to(DT)
    lay = Layout.from_module(m)
    w = init_params(m, lay, "kaiming_normal", seed).to(DT)
    g = torch.Generator().manual_seed(seed + 1)
    x1 = torch.randn(5, *shape, generator=g, dtype=DT)
    x2 = torch.randn(3, *shape, generator=g, dtype=DT)
    return make_apply(m, lay), w, x1, x2


def loop_kernel(apply, w, x1, x2, trace):
    J1 = ntk.per_sample_gradient_loop(apply, w, x1)
    J2 = ntk.per_sample_gradient_loop(apply, w, x2)
    th = torch.einsum("nop,mqp->nmoq", J1, J2)
    return th.diagonal(dim1=2, dim2=3).sum(-1) if trace else th


def close(a, b):
    scale = float(b.abs().max())
    assert a.shape == b.shape
    assert float((a - b).abs().max()) <= 1e-10 * scale, (float((a - b).abs().max()), scale)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("trace", [False, True])
@pytest.mark.parametrize("method", ["structured", "jacobian", "ntvp"])
def test_methods_equal_per_sample_loop(name, trace, method):
    apply, w, x1, x2 = model(name)
    for xb in (x2, None):
        ref = loop_kernel(apply, w, x1, x1 if xb is None else xb, trace)
        whole, p = ntk.empirical_ntk(apply, w, x1, xb, trace=trace, method=method, return_plan=True)
        assert p["method"] == method
        close(whole, ref)
        # a budget of a few kB forces blocks of one or two inputs
        blocked, pb = ntk.empirical_ntk(apply, w, x1, xb, trace=trace, method=method, max_jacobian_mb=2e-3,
                                        return_plan=True)
        assert pb["block"] < p["block"]
        close(blocked, ref)


@pytest.mark.parametrize("name", ["mlp_bias_ntk", "lenet5"])
def test_structured_blocked_over_x2_equals_unblocked(name):
    apply, w, x1, x2 = model(name)
    for trace in (False, True):
        ref = ntk_structured.structured_ntk(apply.module, apply.layout, w, x1, x2, trace)
        for block in (1, 2):
            got = ntk_structured.structured_ntk(apply.module, apply.layout, w, x1, x2, trace, block=block)
            torch.testing.assert_close(got, ref, rtol=1e-13, atol=1e-13)


def test_plan_picks_structured_for_registry_models_and_generic_otherwise():
    apply, w, x1, x2 = model("mlp_bias_standard")
    assert ntk_empirical.plan(apply, w, x1, x2)["method"] == "structured"

    def opaque(v, x):                       # no module attached: the generic path
        return apply(v, x)

    p = ntk_empirical.plan(opaque, w, x1, x2)
    assert p["method"] in ("jacobian", "ntvp") and p["flops"] > 0
    with pytest.raises(ValueError, match="method: structured covers"):
        ntk_empirical.plan(opaque, w, x1, x2, method="structured")
    with pytest.raises(ValueError, match="method: expected one of"):
        ntk_empirical.plan(apply, w, x1, x2, method="fast")
    # the generic choice is the cheaper estimate among those that fit
    plans = ntk_empirical._generic_plans(64, 64, True, 10, 10_000, 2e4, 100.0, True, 8, 2 ** 30)
    assert plans["jacobian"]["flops"] < plans["ntvp"]["flops"]      # trace, all fits: one contraction
    plans = ntk_empirical._generic_plans(64, 64, True, 50, 10_000, 2e4, 100.0, False, 8, 2 ** 30)
    assert plans["ntvp"]["flops"] < plans["jacobian"]["flops"]      # full, many outputs: O^2 contraction


def test_generic_equals_structured_on_opaque_apply():
    apply, w, x1, _ = model("lenet5")
    th, p = ntk.empirical_ntk(lambda v, x: apply(v, x), w, x1, return_plan=True)
    assert p["method"] in ("jacobian", "ntvp")
    close(th, ntk.empirical_ntk(apply, w, x1, method="structured"))


_PEAK = textwrap.dedent("""
    import json, sys, torch
    from pathdep.analysis import ntk
    from pathdep.core.models import MLP, Layout, make_apply
    from pathdep.core.init import init_params
    torch.set_num_threads(1)
    def rss(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    m = MLP(784, [128, 128], 10)
    lay = Layout.from_module(m)
    w = init_params(m, lay, "kaiming_normal", 0)
    x = torch.randn(64, 784, generator=torch.Generator().manual_seed(0))
    ntk.empirical_ntk(make_apply(m, lay), w, x[:2], method=sys.argv[1], max_jacobian_mb=float(sys.argv[2]))
    before = rss("VmRSS:")
    th = ntk.empirical_ntk(make_apply(m, lay), w, x, method=sys.argv[1], max_jacobian_mb=float(sys.argv[2]))
    print(json.dumps({"growth_mb": rss("VmHWM:") - before, "out_mb": th.numel() * 4 / 2 ** 20,
                      "full_jacobian_mb": 64 * 10 * lay.n_params * 4 / 2 ** 20}))
""")


@pytest.mark.parametrize("method", ["jacobian", "ntvp"])
def test_peak_rss_stays_within_budget(method):
    """Peak RSS growth of a call (fresh process, VmHWM) <= budget + output + 50 MB
    (allocator slack, the model and one forward pass); the full Jacobian would be 289 MB."""
    budget = 64.0
    out = subprocess.run([sys.executable, "-c", _PEAK, method, str(budget)], check=True, capture_output=True,
                         text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["full_jacobian_mb"] > 280
    assert r["growth_mb"] <= budget + r["out_mb"] + 50.0, r


def test_kernel_change_known_answers():
    """Relative Frobenius NTK distance from member 0: 0 for a copy, the direct value for a
    perturbed member, NaN for non-finite weights; a linear model's NTK never changes."""
    from pathdep.analysis.ntk_dynamics import kernel_change

    apply, w, x1, _ = model("mlp_bias_ntk")
    w2 = w + 0.1 * torch.randn(w.shape, generator=torch.Generator().manual_seed(3), dtype=DT)
    bad = torch.full_like(w, float("nan"))
    d, plan = kernel_change(apply, [torch.stack([w, w, w2, bad])] * 2, x1)
    t0, t2 = ntk.ntk_naive(apply, w, x1), ntk.ntk_naive(apply, w2, x1)
    assert d.shape == (2, 4) and plan["method"] == "structured"   # one column per network, NaN for the baseline
    assert np.isnan(d[0, 0]) and d[0, 1] == 0.0 and np.isnan(d[0, 3])
    assert abs(d[1, 2] - float((t2 - t0).norm() / t0.norm())) < 1e-12
    lin = torch.nn.Linear(4, 2).to(DT)
    lay = Layout.from_module(lin)
    W = torch.randn(2, lay.n_params, dtype=DT)
    assert np.allclose(kernel_change(make_apply(lin, lay), [W], x1)[0][:, 1:], 0.0, atol=1e-15)


@pytest.mark.parametrize("name", ["mlp_bias_standard", "lenet5"])
def test_jacobian_rows_filled_in_sub_blocks_equal_one_call(name):
    """A block's Jacobian filled a few inputs at a time equals the per-sample loop's rows."""
    apply, w, x1, x2 = model(name)
    x = torch.cat([x1, x2])                                  # 8 inputs
    ref = ntk.per_sample_gradient_loop(apply, w, x)
    for sub in (1, 3, 8, 100):
        close(ntk_empirical.jacobian_rows(apply, w, x, sub=sub), ref)
