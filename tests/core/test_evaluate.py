"""Batched ensemble evaluation: known answers, chunking, vmap vs loop."""

import math

import numpy as np
import pytest
import torch

from pathdep.core.evaluate import ensemble_forward, evaluate
from pathdep.core.models import MLP, Layout, make_apply


def _linear(w, x):  # w (3,): outputs (B, 1) = w0 x0 + w1 x1 + w2
    return (x @ w[:2] + w[2]).unsqueeze(-1)


def test_linear_model_mse_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0], [0.0], [1.0]], dtype=torch.float64)
    W = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    ev = evaluate(_linear, W, x, y, "mse", batch_size=2, outputs=True)
    # member 0: outputs (1, 0, 1): residuals 0 -> loss 0; member 1: outputs 1: residuals (0, 1, 0) -> 0.5 / 3
    np.testing.assert_allclose(ev.loss, [0.0, 0.5 / 3], rtol=0, atol=1e-16)
    assert np.all(np.isnan(ev.accuracy))
    assert ev.outputs.shape == (2, 3, 1)


def test_linear_model_cross_entropy_by_hand():
    x = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([1, 0])

    def apply(w, xb):  # logits (0, w x)
        return torch.cat([torch.zeros_like(xb), xb * w[0]], -1)

    W = torch.tensor([[math.log(3.0)], [0.0]], dtype=torch.float64)
    ev = evaluate(apply, W, x, y, "cross_entropy", batch_size=1)
    # member 0: logits (0, ln3) -> p(1) = 3/4; (0, 2 ln3) -> p(0) = 1/10; member 1: p = 1/2 everywhere
    np.testing.assert_allclose(ev.loss, [(-math.log(0.75) - math.log(0.1)) / 2, math.log(2.0)], rtol=1e-15)
    # member 0 predicts class 1 twice, member 1 class 0 (a tie: the first index) twice: one hit each
    np.testing.assert_allclose(ev.accuracy, [0.5, 0.5])


def _ensemble(task):
    torch.manual_seed(0)
    m = MLP(6, [7], 3).double()
    layout = Layout.from_module(m)
    apply = make_apply(m, layout)
    w = layout.flatten(dict(m.named_parameters())).detach()
    W = w[None] + 0.3 * torch.randn(4, w.numel(), dtype=torch.float64)
    x = torch.randn(53, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (53,)) if task == "cross_entropy" else torch.randn(53, 3, dtype=torch.float64)
    return apply, W, x, y


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_chunked_equals_one_batch_and_vmap_equals_loop(loss):
    apply, W, x, y = _ensemble(loss)
    one = evaluate(apply, W, x, y, loss, batch_size=len(x), outputs=True)
    chunked = evaluate(apply, W, x, y, loss, batch_size=10, outputs=True)
    looped = evaluate(apply, W, x, y, loss, batch_size=10, outputs=True, vmap=False)
    for ev in (chunked, looped):
        np.testing.assert_allclose(ev.loss, one.loss, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(ev.accuracy, one.accuracy)
        torch.testing.assert_close(ev.outputs, one.outputs, rtol=0, atol=1e-14)
    # against a direct evaluation per member
    for k in range(W.shape[0]):
        out = apply(W[k], x)
        torch.testing.assert_close(one.outputs[k], out, rtol=0, atol=1e-14)
        if loss == "cross_entropy":
            ref = torch.nn.functional.cross_entropy(out, y).item()
            assert one.accuracy[k] == (out.argmax(-1) == y).double().mean().item()
        else:
            ref = 0.5 * ((out - y) ** 2).sum(-1).mean().item()
        assert one.loss[k] == pytest.approx(ref, rel=1e-13)


def test_float32_outputs_losses_in_float64_or_own_dtype():
    apply, W, x, y = _ensemble("cross_entropy")
    W32, x32 = W.float(), x.float()
    f64 = evaluate(apply, W32, x32, y, "cross_entropy", batch_size=20)
    own = evaluate(apply, W32, x32, y, "cross_entropy", batch_size=20, loss_dtype=None)
    assert f64.loss.dtype == np.float64 and own.loss.dtype == np.float64
    np.testing.assert_allclose(f64.loss, own.loss, rtol=1e-5)
    assert ensemble_forward(apply)(W32, x32).dtype == torch.float32
    with pytest.raises(ValueError, match="loss"):
        evaluate(apply, W, x, y, "hinge")
