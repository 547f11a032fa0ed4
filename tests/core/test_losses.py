"""The loss definitions against hand computations."""

import math

import pytest
import torch

from pathdep.core.losses import loss_value, sample_losses, task_loss


def test_mse_by_hand():
    out = torch.tensor([[1.0, 2.0], [0.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    # 0.5 * (1 + 4) = 2.5 and 0.5 * (1 + 4) = 2.5
    torch.testing.assert_close(sample_losses("mse", out, y), torch.tensor([2.5, 2.5], dtype=torch.float64))
    assert loss_value("mse", out, y).item() == 2.5


def test_cross_entropy_by_hand_and_batch_mean():
    out = torch.tensor([[0.0, math.log(3.0)], [2.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([1, 0])
    # softmax of (0, ln 3) = (1/4, 3/4); of (2, 2) = (1/2, 1/2)
    expect = torch.tensor([-math.log(0.75), math.log(2.0)], dtype=torch.float64)
    torch.testing.assert_close(sample_losses("cross_entropy", out, y), expect, rtol=0, atol=1e-15)
    torch.testing.assert_close(loss_value("cross_entropy", out, y), expect.mean(), rtol=0, atol=1e-15)
    # leading member axis: labels broadcast
    two = sample_losses("cross_entropy", torch.stack([out, out]), y)
    assert two.shape == (2, 2) and torch.equal(two[0], two[1])


def test_names():
    assert task_loss("classification") == "cross_entropy" and task_loss("regression") == "mse"
    with pytest.raises(ValueError, match="loss"):
        sample_losses("hinge", torch.zeros(1, 1), torch.zeros(1, 1))
    with pytest.raises(ValueError, match="loss"):
        loss_value("hinge", torch.zeros(1, 1), torch.zeros(1, 1))
