"""pathdep.analysis.ntk_dynamics: inputs, the loops on core.loop, and the summaries."""

import numpy as np
import torch

from pathdep.analysis import ntk_dynamics as D
from pathdep.core.dynamics import loss_value, make_step
from pathdep.core.optim import optimizer_from_config

NET = {"activation": "relu", "sigma_w": 2 ** 0.5, "sigma_b": 0.1, "dtype": torch.float64}


def _data(n=12, d=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = D.normalize_inputs(torch.randn(n, d, generator=g, dtype=torch.float64), 1)
    y = torch.arange(n) % c
    return x, y


def test_normalize_inputs_and_targets():
    x = D.normalize_inputs(torch.randn(4, 1, 8, 8, dtype=torch.float64), 2)
    assert x.shape == (4, 16)
    torch.testing.assert_close(x.pow(2).sum(1), torch.full((4,), 16.0, dtype=torch.float64))
    torch.testing.assert_close(x.mean(1), torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0)
    y = torch.tensor([0, 1, 2])
    assert D.onehot(y, 3, torch.float64).tolist() == np.eye(3).tolist()
    assert D.pm1(y, torch.float64)[:, 0].tolist() == [1.0, -1.0, 1.0]
    assert D.section_seeds(0, "a", 3) == D.section_seeds(0, "a", 3) != D.section_seeds(1, "a", 3)


def test_gradient_descent_on_the_loop_equals_a_plain_loop():
    x, y = _data()
    Y = D.onehot(y, 3, torch.float64)
    _, _, apply, w0 = D.ntk_mlp(x.shape[1], 16, 1, 3, seed=1, **NET)
    w, losses = D.gradient_descent(apply, w0.clone(), x, Y, 0.3, 7)
    opt, hp = optimizer_from_config({"name": "sgd", "lr": 0.3, "momentum": 0.0})
    step, hpt = make_step(apply, "mse", opt), {k: torch.tensor(v, dtype=w0.dtype) for k, v in hp.items()}
    v, st, ref = w0.clone(), opt.init(w0), []
    for _ in range(7):
        v, st, lv = step(v, st, x, Y, hpt)
        ref.append(float(lv))
    ref.append(float(loss_value("mse", apply(v, x), Y)))
    assert torch.equal(w, v) and losses.tolist() == ref
    assert losses[-1] < losses[0]


def test_linearization_starts_at_the_network():
    x, y = _data(n=16)
    order = D.batch_order(len(x), 6, 4, 0)
    assert sorted(order[:16].tolist()) == list(range(16))
    ck = D.log_checkpoints(6, 4)
    assert ck[0] == 0 and ck[-1] == 6
    dev, rel, acc = D.linearization_sweep(x, y, x[:6], y[:6], 3, [8, 64], [1, 2], ["mse", "cross_entropy"],
                                          {"mse": 0.1, "cross_entropy": 0.5}, 0.9, 1, 6, 4, order, ck, NET)
    assert dev.shape == (2, 2, len(ck)) and acc.shape == (2, 2, 2)
    assert np.all(dev[:, :, 0] == 0) and np.all(dev[:, :, -1] > 0)
    assert np.all((acc >= 0) & (acc <= 1))


def test_ensemble_and_single_record_the_outputs():
    x, y = _data(n=10)
    Y = D.pm1(y, torch.float64)
    nets = [D.ntk_mlp(x.shape[1], 8, 1, 1, seed=s, **NET) for s in (1, 2)]
    W = torch.stack([n[3] for n in nets])
    _, _, apply1, w1 = D.ntk_mlp(x.shape[1], 32, 1, 1, seed=3, **NET)
    ens, single = D.ensemble_and_single(nets[0][2], W, apply1, w1, x, Y, x[:4], 0.2, 5, np.array([0, 5]))
    assert ens.shape == (2, 2, 4) and single.shape == (2, 4)
    with torch.no_grad():
        np.testing.assert_allclose(ens[0, 1], nets[1][2](W[1], x[:4])[:, 0].numpy(), rtol=0, atol=1e-14)
        w_end, _ = D.gradient_descent(apply1, w1.clone(), x, Y, 0.2, 5)
        np.testing.assert_allclose(single[1], apply1(w_end, x[:4])[:, 0].numpy(), rtol=0, atol=1e-14)


def test_catapult_phases_of_hand_made_curves():
    factors = np.array([0.5, 1.5, 3.0])
    loss = np.array([[1.0, 0.5, 0.25, 0.1],        # lazy: falls monotonically
                     [1.0, 2.0, 0.5, 0.2],         # catapult: rises (peak 2 > 1.5) then falls below the start
                     [1.0, 10.0, np.inf, np.inf]])  # diverges
    ph = D.catapult_phases(loss, factors)
    assert ph["diverged"].tolist() == [False, False, True]
    assert ph["catapult"].tolist() == [False, True, False]
    assert ph["loss_rose"].tolist() == [False, True, True]
    assert (ph["onset"], ph["divergence"], ph["crit_lo"], ph["crit_hi"]) == (1.5, 3.0, 0.5, 1.5)
    f, lam = D.two_scalar_sweep(0.1, factors, 100.0, 20)
    assert f.shape == lam.shape == (3, 21) and np.all(lam[:, 0] == 1.0)


def test_width_summaries():
    v = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    assert D.last_complete(v) == 1 and D.at_last_complete(v).tolist() == [2.0, 4.0]
    assert np.isnan(D.at_last_complete(np.full((2, 2), np.nan))).all()
    assert D.mean_std(np.array([1.0, 3.0, np.nan])) == (2.0, 1.0)


def test_kernel_change_measures_each_copy_against_its_own_baseline():
    import pytest
    import torch

    from pathdep.analysis.ntk_dynamics import kernel_change

    def apply(w, x):                      # f = s x.v at v = 0: NTK = s^2 x x^T, relative change s'^2/s^2 - 1
        return (x @ w[:4].reshape(4, 1)) * w[4]

    x = torch.randn(5, 4, dtype=torch.float64)
    W = torch.zeros(4, 5, dtype=torch.float64)
    W[:, 4] = 1.0
    W[1, 4], W[2, 4], W[3, 4] = 1.1, 2.0, 2.2          # baselines rows 0 and 2; copies 1 (of 0) and 3 (of 2)
    d, _ = kernel_change(apply, [W], x, base=np.array([0, 0, 2, 2]))
    assert np.isnan(d[0, [0, 2]]).all()
    assert d[0, 1] == pytest.approx(0.21, rel=1e-9) and d[0, 3] == pytest.approx(0.21, rel=1e-9)  # 1.1^2 - 1
