"""pathdep.analysis.study_model (float64): the vmapped jacfwd Jacobian of the 2-2-1 update
map equals finite differences, and the closed form equals jacfwd, the map and its loss."""

import pytest
import torch

from pathdep.analysis.lyapunov_benettin import batched_jacobian
from pathdep.analysis.study_model import ClosedForm, make_update_map


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_vmapped_jacobian_equals_finite_differences(activation):
    F, loss, layout = make_update_map(activation, lr=0.3)
    assert layout.n_params == 9
    g = torch.Generator().manual_seed(1)
    W = (torch.rand(16, 9, generator=g, dtype=torch.float64) * 2 - 1) * 1.5
    J, Y = batched_jacobian(F, W, 0)
    assert J.shape == (16, 9, 9)
    i, h = 3, 1e-6
    w = W[i]
    fd = torch.stack([(F(w + h * e, 0) - F(w - h * e, 0)) / (2 * h)
                      for e in torch.eye(9, dtype=torch.float64)], dim=1)
    assert torch.allclose(J[i], fd, atol=1e-6, rtol=0)
    assert torch.allclose(Y[i], F(w, 0))
    # I - lr * Hessian is symmetric
    assert torch.allclose(J, J.transpose(1, 2), atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_closed_form_jacobian_equals_jacfwd(activation):
    F, loss, layout = make_update_map(activation, lr=0.3)
    cf = ClosedForm(activation, lr=0.3)
    g = torch.Generator().manual_seed(2)
    W = (torch.rand(300, 9, generator=g, dtype=torch.float64) * 2 - 1) * 2.0
    J, Y = batched_jacobian(F, W, 0)
    Jc, Yc = cf.jacobian(W)
    assert (J - torch.eye(9, dtype=torch.float64)).abs().max() > 1e-2  # not trivial
    assert torch.allclose(Jc, J, atol=1e-12, rtol=0)
    assert torch.allclose(Yc, Y, atol=1e-12, rtol=0)
    assert torch.allclose(cf.step(W), Y, atol=1e-12, rtol=0)
    assert torch.allclose(cf.loss(W), torch.vmap(loss)(W), atol=1e-14, rtol=0)
    with pytest.raises(ValueError, match="study.activations"):
        ClosedForm("gelu")
