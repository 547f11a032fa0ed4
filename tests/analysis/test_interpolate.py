"""Interpolation curves and barriers against closed forms."""

import numpy as np
import pytest
import torch

from pathdep.analysis.interpolate import barrier, interpolation_curve, loss_integral
from pathdep.core.models import MLP, Layout, make_apply

LAM = np.linspace(0, 1, 21)


def _linreg_apply(w, x):
    return (x @ w[:-1] + w[-1]).unsqueeze(-1)  # (B, 1)


def test_linear_regression_parabola():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64)
    y = torch.randn(50, generator=g, dtype=torch.float64)
    w_a = torch.randn(4, generator=g, dtype=torch.float64)
    w_b = torch.randn(4, generator=g, dtype=torch.float64)
    curve = interpolation_curve(_linreg_apply, w_a, w_b, x, y, LAM, loss="mse", batch_size=16)
    r = (_linreg_apply(w_a, x)[:, 0] - y).numpy()
    u = (_linreg_apply(w_b, x) - _linreg_apply(w_a, x))[:, 0].numpy()
    # the training loss 0.5 * (squared error summed over the single output), mean over samples
    expect = 0.5 * (np.mean(r**2) + 2 * LAM * np.mean(r * u) + LAM**2 * np.mean(u**2))
    np.testing.assert_allclose(curve["loss"], expect, rtol=1e-12)
    assert np.all(np.isnan(curve["accuracy"]))
    # convex along the line: linear barrier exactly 0 (attained at the endpoints), all interior <= chord
    assert abs(barrier(curve["loss"], LAM, "linear")) < 1e-12
    L0, L1 = expect[0], expect[-1]
    assert np.all(expect - ((1 - LAM) * L0 + LAM * L1) <= 1e-12)
    np.testing.assert_allclose(barrier(curve["loss"], LAM, "midpoint"), abs(L1 - L0) / 2, rtol=1e-12)
    np.testing.assert_allclose(loss_integral(curve["loss"], LAM), -0.5 * np.mean(u**2) / 6, rtol=1e-2)


def test_deep_linear_symmetric_barrier():
    """y = w1 w2 x between (1,1) and (-1,-1): L(l) = m(x^2) (1 - (1-2l)^2)^2 / 2, barrier m(x^2) / 2."""
    x = torch.linspace(-2, 2, 41, dtype=torch.float64).unsqueeze(-1)
    y = x[:, 0].clone()
    apply = lambda w, xb: xb * w[0] * w[1]
    curve = interpolation_curve(apply, torch.tensor([1.0, 1.0], dtype=torch.float64),
                                torch.tensor([-1.0, -1.0], dtype=torch.float64), x, y, LAM, loss="mse")
    mx2 = float((x**2).mean())
    # w1 w2 along the line is (1 - 2l)^2, the residual (1 - 2l)^2 x - x; half its square, mean over samples
    np.testing.assert_allclose(curve["loss"], 0.5 * mx2 * (1 - (1 - 2 * LAM) ** 2) ** 2, rtol=1e-12, atol=1e-15)
    assert barrier(curve["loss"], LAM) == pytest.approx(0.5 * mx2, rel=1e-12)
    assert barrier(curve["loss"], LAM, "midpoint") == pytest.approx(0.5 * mx2, rel=1e-12)


def test_two_output_mse_by_hand():
    """Two outputs: the loss sums the halved squared errors over outputs (not their mean)."""
    x = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    apply = lambda w, xb: xb * w[None]  # w (2,): outputs (B, 2) = (w0 x, w1 x)
    lam = np.array([0.0, 0.5, 1.0])
    curve = interpolation_curve(apply, torch.tensor([1.0, 1.0], dtype=torch.float64),
                                torch.tensor([3.0, -1.0], dtype=torch.float64), x, y, lam, loss="mse")
    # l=0: w=(1,1): residuals (1,0),(1,2): 0.5*(1+0)=0.5, 0.5*(1+4)=2.5 -> mean 1.5
    # l=.5: w=(2,0): (2,-1),(3,0): 0.5*5=2.5, 0.5*9=4.5 -> 3.5; l=1: w=(3,-1): (3,-2),(5,-2): 6.5, 14.5 -> 10.5
    np.testing.assert_allclose(curve["loss"], [1.5, 3.5, 10.5], rtol=1e-15)
    # argmax of outputs vs of targets: l=0 ties -> index 0 (hits sample 2); l=.5, 1: index 0 for both
    np.testing.assert_allclose(curve["accuracy"], [0.5, 0.5, 0.5])


def test_quadratic_closed_forms():
    a, b, c = 0.3, 0.4, -2.0  # L = a + b l + c l^2, concave
    L = a + b * LAM + c * LAM**2
    assert barrier(L, LAM, "linear") == pytest.approx(-c / 4, rel=1e-12)  # at l = 1/2 (on the grid)
    lstar = -b / (2 * c)  # 0.1, on the grid
    assert barrier(L, LAM, "midpoint") == pytest.approx(a + b * lstar + c * lstar**2 - (2 * a + b + c) / 2, rel=1e-12)
    batched = barrier(np.stack([L, 2 * L]), LAM)
    np.testing.assert_allclose(batched, [-c / 4, -c / 2], rtol=1e-12)
    with pytest.raises(ValueError):
        barrier(L[1:], LAM[1:])


def test_identical_endpoints_and_vmap_matches_loop():
    torch.manual_seed(0)
    m = MLP(6, [5], 3).double()
    layout = Layout.from_module(m)
    apply = make_apply(m, layout)
    w = layout.flatten(dict(m.named_parameters())).detach()
    w2 = w + 0.5 * torch.randn_like(w)
    x = torch.randn(30, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (30,))
    same = interpolation_curve(apply, w, w.clone(), x, y, LAM, batch_size=7)
    assert barrier(same["loss"], LAM) == 0.0 and barrier(same["loss"], LAM, "midpoint") == 0.0
    np.testing.assert_allclose(same["loss"], same["loss"][0])
    c1 = interpolation_curve(apply, w, w2, x, y, LAM, batch_size=7, lambda_chunk=4)
    c2 = interpolation_curve(apply, w, w2, x, y, LAM, batch_size=30, vmap=False)
    np.testing.assert_allclose(c1["loss"], c2["loss"], rtol=1e-12)
    np.testing.assert_allclose(c1["accuracy"], c2["accuracy"])
    ce0 = torch.nn.functional.cross_entropy(apply(w, x), y).item()
    acc1 = (apply(w2, x).argmax(-1) == y).double().mean().item()
    assert c1["loss"][0] == pytest.approx(ce0, rel=1e-12)
    assert c1["accuracy"][-1] == pytest.approx(acc1)
