"""pathdep.core.init: seeded schemes (known answers, norms, statistics) and perturbations (exact
sphere geometry incl. the Householder trap, uniformity, Gaussian scale, errors)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from pathdep.core.init import SCHEMES, fan_in, init_params, perturb
from pathdep.core.models import MLP, LeNet5, Layout


def _mlp(dims=(20, [16, 8], 3), dtype=torch.float32):
    m = MLP(dims[0], dims[1], dims[2]).to(dtype)
    return m, Layout.from_module(m)


# ---------------------------------------------------------------- init_params
def test_default_reproduces_construction_under_manual_seed():
    for seed in (0, 7, 12345):
        torch.manual_seed(seed)
        ref = MLP(20, [16, 8], 3)
        ref_flat = torch.cat([p.detach().reshape(-1) for p in ref.parameters()])
        torch.manual_seed(999)  # the global state must not matter, nor be changed
        other = MLP(20, [16, 8], 3)
        before = [p.detach().clone() for p in other.parameters()]
        rng_state = torch.get_rng_state()
        w = init_params(other, Layout.from_module(other), "default", seed)
        assert torch.equal(w, ref_flat)
        assert torch.equal(torch.get_rng_state(), rng_state)
        assert all(torch.equal(a, b) for a, b in zip(before, other.parameters()))  # not modified
    # order of nn.Linear construction, by hand
    torch.manual_seed(3)
    layers = [nn.Linear(20, 16), nn.Linear(16, 8), nn.Linear(8, 3)]
    by_hand = torch.cat([t.detach().reshape(-1) for l in layers for t in (l.weight, l.bias)])
    m, lay = _mlp()
    assert torch.equal(init_params(m, lay, "default", 3), by_hand)


def test_default_lenet_and_float64():
    torch.manual_seed(5)
    ref = LeNet5((1, 28, 28), 10)
    ref_flat = torch.cat([p.detach().reshape(-1) for p in ref.parameters()])
    m = LeNet5((1, 28, 28), 10).double()
    w = init_params(m, Layout.from_module(m), "default", 5)
    assert w.dtype == torch.float64 and torch.equal(w, ref_flat.double())


def test_default_is_kaiming_uniform_a_sqrt5():
    m, lay = _mlp(((784, [100], 10)))
    w = init_params(m, lay, "default", 0)
    W = lay.unflatten(w)["fc0.weight"]
    bound = 1 / math.sqrt(784)
    assert W.abs().max() <= bound and W.abs().max() > 0.99 * bound


def test_hyperspherical_norms():
    for m in (_mlp()[0], LeNet5((1, 28, 28), 10)):
        lay = Layout.from_module(m)
        w = init_params(m, lay, "hyperspherical", 11)
        assert w.dtype == torch.float32 and w.shape == (lay.n_params,)
        for name, t in lay.unflatten(w).items():
            D = t.numel()
            target = math.sqrt(D) * math.sqrt(2 / fan_in(lay, name))
            assert abs(t.double().norm().item() / target - 1) < 1e-6, name


def test_fan_in():
    lay = Layout.from_module(LeNet5((1, 28, 28), 10))
    assert fan_in(lay, "conv0.weight") == 25 and fan_in(lay, "conv0.bias") == 25
    assert fan_in(lay, "conv1.weight") == 6 * 25 and fan_in(lay, "fc1.bias") == 120


@pytest.mark.parametrize("scheme", ["kaiming_normal", "kaiming_uniform"])
def test_kaiming_std(scheme):
    m, lay = _mlp((784, [100], 10))
    w = lay.unflatten(init_params(m, lay, scheme, 1))
    target = math.sqrt(2 / 784)
    assert abs(w["fc0.weight"].double().std().item() / target - 1) < 0.05
    assert abs(w["fc1.weight"].double().std().item() / math.sqrt(2 / 100) - 1) < 0.05
    allb = torch.cat([init_params(m, lay, scheme, s)[lay.slice("fc0.bias")] for s in range(10)])
    assert abs(allb.double().std().item() / target - 1) < 0.1  # biases: same sigma as the weight
    if scheme == "kaiming_uniform":
        assert w["fc0.weight"].abs().max().item() <= math.sqrt(6 / 784)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_seeds(scheme):
    m, lay = _mlp()
    a, b, c = (init_params(m, lay, scheme, s) for s in (4, 4, 5))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(0)
    d = init_params(m, lay, scheme, 4)
    assert torch.equal(a, d)  # independent of torch's global RNG


def test_init_errors():
    m, lay = _mlp()
    with pytest.raises(ValueError, match="init.scheme"):
        init_params(m, lay, "xavier", 0)
    with pytest.raises(ValueError, match="seed"):
        init_params(m, lay, "kaiming_normal", -1)
    with pytest.raises(ValueError, match="layout"):
        init_params(m, _mlp((21, [16, 8], 3))[1], "kaiming_normal", 0)


# ------------------------------------------------------------------- perturb
def _check_sphere(w0, w, lay, eps, relative, granularity, tol=1e-6):
    w0d, wd = w0.double(), w.double()
    groups = ([(n, lay.slice(n)) for n in lay.names] if granularity == "tensor"
              else [("all", slice(0, lay.n_params))])
    for name, sl in groups:
        r = w0d[sl].norm().item()
        c = eps * r if relative else eps
        assert abs(wd[sl].norm().item() / r - 1) < tol, name
        assert abs((wd[sl] - w0d[sl]).norm().item() / c - 1) < tol, name


@pytest.mark.parametrize("granularity", ["tensor", "global"])
@pytest.mark.parametrize("relative", [False, True])
def test_sphere_exact(granularity, relative):
    m, lay = _mlp()
    w0 = init_params(m, lay, "hyperspherical", 0)
    eps = 0.3 if relative else 0.5  # smallest tensor norm here ~ sqrt(3*2/8) = 0.87
    for seed in range(20):
        w, info = perturb(w0, lay, "sphere", eps, seed, relative=relative, granularity=granularity)
        assert w.dtype == torch.float32 and w.shape == w0.shape
        _check_sphere(w0, w, lay, eps, relative, granularity)
        assert abs(info["distance"] - (w.double() - w0.double()).norm().item()) < 1e-12
        assert len(info["distance_per_tensor"]) == len(lay.names)
        assert abs(info["relative_distance"] - info["distance"] / w0.double().norm().item()) < 1e-12


@pytest.mark.parametrize("granularity", ["tensor", "global"])
def test_sphere_householder_trap(granularity):
    # w0 = -e_D exactly, and close to -e_D, in every tensor (the seed's reflection degenerates)
    lay = Layout(("a.weight", "b.weight"), ((4, 5), (7,)), (0, 20))
    for delta in (0.0, 1e-9, 1e-4):
        parts = []
        for d in lay.sizes:
            e = torch.zeros(d, dtype=torch.float64)
            e[-1] = -1.0
            e[0] += delta
            parts.append(e)
        w0 = torch.cat(parts).float()
        for relative, eps in ((False, 0.7), (True, 0.4), (False, 1e-2)):
            for seed in range(10):
                w, _ = perturb(w0, lay, "sphere", eps, seed, relative=relative, granularity=granularity)
                assert torch.isfinite(w).all()
                _check_sphere(w0, w, lay, eps, relative, granularity, tol=1e-6 if eps > 0.1 else 1e-4)
        w, _ = perturb(w0.double(), lay, "sphere", 1e-3, 0, granularity=granularity)
        _check_sphere(w0.double(), w, lay, 1e-3, False, granularity, tol=1e-9)


def test_sphere_along_component_is_minus_c2_over_2r():
    lay = Layout(("w",), ((50,),), (0,))
    w0 = torch.randn(50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    r = w0.norm().item()
    n = w0 / r
    for c in (0.01, 0.5 * r, r, 1.9 * r, 2 * r):
        w, _ = perturb(w0, lay, "sphere", c, 3)
        assert abs(((w - w0) @ n).item() - (-c * c / (2 * r))) < 1e-12 * max(1, r * r)
        assert abs((w - w0).norm().item() - c) < 1e-12 * max(1.0, c)
        assert abs(w.norm().item() - r) < 1e-12 * r
    w, _ = perturb(w0, lay, "sphere", 2 * r, 3)
    assert torch.allclose(w, -w0, atol=1e-12)


def test_sphere_direction_uniform():
    D = 5
    lay = Layout(("w",), ((D,),), (0,))
    w0 = torch.tensor([0.3, -1.2, 0.5, 2.0, -0.7], dtype=torch.float64)
    n = w0 / w0.norm()
    P = torch.eye(D, dtype=torch.float64) - torch.outer(n, n)
    dirs = []
    for seed in range(2000):
        w, _ = perturb(w0, lay, "sphere", 0.8, seed)
        d = P @ (w - w0)
        dirs.append(d / d.norm())
    U = torch.stack(dirs)
    assert U.mean(0).abs().max().item() < 0.07  # each component has std 1/2/sqrt(2000) = 0.011
    cov = U.T @ U / len(U)  # uniform on the unit sphere of the 4-d complement: P / 4
    assert (cov - P / (D - 1)).abs().max().item() < 0.04


def test_gaussian_relative_scale():
    # E|delta_p|^2 = eps^2 |w0_p|^2 exactly; E|delta_p| / |w0_p| ~ eps for large tensors
    m, lay = _mlp((100, [50], 10))
    w0 = init_params(m, lay, "kaiming_normal", 0)
    eps = 0.2
    for granularity in ("tensor", "global"):
        groups = ([lay.slice(n) for n in lay.names] if granularity == "tensor"
                  else [slice(0, lay.n_params)])
        sizes = np.array([sl.stop - sl.start for sl in groups])
        mean, msq = np.zeros(len(groups)), np.zeros(len(groups))
        n_draws = 400
        for seed in range(n_draws):
            w, _ = perturb(w0, lay, "gaussian", eps, seed, relative=True, granularity=granularity)
            for i, sl in enumerate(groups):
                q = (w[sl] - w0[sl]).double().norm().item() / w0[sl].double().norm().item()
                mean[i] += q / n_draws
                msq[i] += q * q / n_draws
        assert np.all(np.abs(np.sqrt(msq) / eps - 1) < 0.05), np.sqrt(msq)
        big = sizes >= 50
        assert big.any() and np.all(np.abs(mean[big] / eps - 1) < 0.05), mean


def test_gaussian_absolute_is_iid_eps():
    m, lay = _mlp((100, [50], 10))
    w0 = init_params(m, lay, "kaiming_normal", 0)
    w, info = perturb(w0, lay, "gaussian", 0.01, 1)
    d = (w - w0).double()
    assert abs(d.std().item() / 0.01 - 1) < 0.05 and abs(d.mean().item()) < 1e-3
    assert abs(info["distance"] / (0.01 * math.sqrt(lay.n_params)) - 1) < 0.05


@pytest.mark.parametrize("relative", [False, True])
def test_norm_kind_has_exact_global_size(relative):
    """kind norm: |delta| = eps (absolute) or eps |w0| (relative) exactly, over six decades,
    in float64; per tensor with granularity tensor; direction isotropic (mean ~ 0)."""
    m, lay = _mlp((100, [50], 10), torch.float64)
    w0 = init_params(m, lay, "kaiming_normal", 0).double()
    n0 = w0.norm().item()
    for eps in (1e-6, 1e-4, 1e-2, 1e-1):
        w, info = perturb(w0, lay, "norm", eps, 3, relative=relative, granularity="global")
        want = eps * n0 if relative else eps
        assert abs((w - w0).norm().item() / want - 1) < 1e-9
        assert abs(info["relative_distance"] * n0 / want - 1) < 1e-9
    w, _ = perturb(w0, lay, "norm", 0.1, 3, relative=relative, granularity="tensor")
    for name in lay.names:
        sl = lay.slice(name)
        want = 0.1 * w0[sl].norm().item() if relative else 0.1
        assert abs((w[sl] - w0[sl]).norm().item() / want - 1) < 1e-9
    mean = sum(perturb(w0, lay, "norm", 1.0, s, granularity="global")[0] - w0 for s in range(200)) / 200
    assert mean.abs().max().item() < 0.02  # each coordinate ~ N(0, 1/(200 P)), P = 5560: 4 sd ~ 0.004


def test_perturb_seeds_and_zero():
    m, lay = _mlp()
    w0 = init_params(m, lay, "kaiming_normal", 0)
    for kind in ("gaussian", "sphere", "norm"):
        a, _ = perturb(w0, lay, kind, 0.1, 1, relative=True)
        b, _ = perturb(w0, lay, kind, 0.1, 1, relative=True)
        c, _ = perturb(w0, lay, kind, 0.1, 2, relative=True)
        assert torch.equal(a, b) and not torch.equal(a, c)
        z, info = perturb(w0, lay, kind, 0.0, 1)
        assert torch.equal(z, w0) and z is not w0 and info["distance"] == 0.0


def test_perturb_errors():
    lay = Layout(("a.weight", "a.bias"), ((3, 2), (3,)), (0, 6))
    w0 = torch.ones(9)
    with pytest.raises(ValueError, match="perturbation.epsilon"):
        perturb(w0, lay, "gaussian", -0.1, 0)
    with pytest.raises(ValueError, match="perturbation.kind"):
        perturb(w0, lay, "uniform", 0.1, 0)
    with pytest.raises(ValueError, match="perturbation.granularity"):
        perturb(w0, lay, "sphere", 0.1, 0, granularity="layer")
    r = math.sqrt(3)  # |a.bias|
    msg = (r"perturbation.epsilon: sphere perturbation chord 3.5 exceeds the diameter "
           r"2\|w0\| = 3.46\d* of tensor 'a.bias'")
    with pytest.raises(ValueError, match=msg):
        perturb(w0, lay, "sphere", 3.5, 0)
    with pytest.raises(ValueError, match="exceeds the diameter"):
        perturb(w0, lay, "sphere", 2.01, 0, relative=True)
    w0z = w0.clone()
    w0z[6:] = 0
    with pytest.raises(ValueError, match=r"\|w0\| = 0"):
        perturb(w0z, lay, "sphere", 0.1, 0)
    perturb(w0z, lay, "sphere", 0.1, 0, granularity="global")  # fine as one sphere
    lay1 = Layout(("a.weight", "a.bias"), ((1, 2), (1,)), (0, 2))
    with pytest.raises(ValueError, match="perturbation.granularity"):
        perturb(torch.ones(3), lay1, "sphere", 0.1, 0)
