"""Compiled 2-2-1 study kernels (pathdep.analysis.study_kernels) against the torch paths,
float64."""

import numpy as np
import pytest
import torch
from torch.func import jacfwd, vmap

from pathdep.analysis import study_kernels as sk
from pathdep.analysis import study_model as st
from pathdep.analysis.lyapunov_clv import solve_normalize
from pathdep.analysis.lyapunov_qr import qr_positive, random_orthonormal
from pathdep.analysis.lyapunov_study import run_study
from pathdep.config.lyapunov import resolve_study

# numba is a dependency of the package (pyproject.toml): these tests run everywhere
assert sk.AVAILABLE, "numba is not installed: pip install -e . installs it"


def _nets(n, a, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 9, generator=g, dtype=torch.float64) * 2 - 1) * a


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_push_equals_closed_form_and_jacfwd(activation):
    W = _nets(300, 2.0)
    Q = torch.randn(300, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    cf = st.ClosedForm(activation, lr=0.3)
    J, Y = cf.jacobian(W)
    F, loss, _ = st.make_update_map(activation, lr=0.3)
    Jad = vmap(jacfwd(lambda w: F(w, 0)))(W)
    Wn, A, L = sk.push(W.numpy(), Q.numpy(), cf.X.numpy(), cf.Y.numpy(), 0.3,
                       activation == "relu")
    assert np.abs(Wn - Y.numpy()).max() < 1e-12
    assert np.abs(A - (J @ Q).numpy()).max() < 1e-12
    assert np.abs(A - (Jad @ Q).numpy()).max() < 1e-12
    assert np.abs(L - vmap(loss)(W).numpy()).max() < 1e-12
    # the loss kernel and the step's loss: the same formula, compiled in two places (FMA
    # contraction may differ by an ulp)
    assert np.abs(sk.loss(W.numpy(), cf.X.numpy(), cf.Y.numpy(), activation == "relu")
                  - L).max() < 1e-14


def test_qr_equals_lapack_and_handles_rank_deficiency():
    A = torch.randn(500, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    Q, R = sk.qr(A.numpy())
    Qt, Rt = qr_positive(A)
    assert np.abs(Q - Qt.numpy()).max() < 1e-12
    assert np.abs(R - Rt.numpy()).max() < 1e-12
    assert np.array_equal(np.triu(R), R) and (np.diagonal(R, axis1=1, axis2=2) >= 0).all()
    # rank-deficient panels (a zero column, two equal columns): still A = Q R, Q orthogonal
    D = A[:3].clone()
    D[0, :, 4] = 0.0
    D[1, :, 7] = D[1, :, 2]
    D[2] = 0.0
    Q, R = sk.qr(D.numpy())
    I = np.eye(9)
    assert np.abs(Q @ R - D.numpy()).max() < 1e-12
    assert np.abs(np.swapaxes(Q, 1, 2) @ Q - I).max() < 1e-12
    assert abs(R[0, 4, 4]) < 1e-12 and abs(R[1, 7, 7]) < 1e-12
    assert (np.diagonal(R, axis1=1, axis2=2) >= 0).all()


def test_solve_normalize_equals_torch():
    g = torch.Generator().manual_seed(3)
    R = qr_positive(torch.randn(400, 9, 9, dtype=torch.float64, generator=g))[1]
    for C in (torch.randn(400, 9, 9, dtype=torch.float64, generator=g).triu(),  # Ginelli's
              torch.randn(400, 9, 9, dtype=torch.float64, generator=g)):      # a full one
        Ct, nt = solve_normalize(R, C)
        Cn, nn = sk.solve_normalize(R.numpy(), C.numpy())
        assert np.abs(Cn - Ct.numpy()).max() < 1e-12
        assert np.abs(nn / nt.numpy() - 1).max() < 1e-12


def test_fused_and_threaded_kernels_are_bitwise_equal():
    W = _nets(1500, 1.0, seed=4).numpy()
    Q = random_orthonormal(9, 9, batch=(1500,), seed=5).numpy()
    cf = st.ClosedForm("tanh", lr=0.3)
    X, Y = cf.X.numpy(), cf.Y.numpy()
    Wn, A, L = sk.push(W, Q, X, Y, 0.3, False)
    Qn, R = sk.qr(A)
    W2, Q2, R2, L2 = sk.push_qr(W, Q, X, Y, 0.3, False)
    for a, b in ((Wn, W2), (Qn, Q2), (R, R2), (L, L2)):
        assert np.array_equal(a, b)
    for a, b in zip(sk.push_qr(W, Q, X, Y, 0.3, False, threads=3), (W2, Q2, R2, L2)):
        assert np.array_equal(a, b)  # networks are independent: any split gives the same
    C = np.triu(R2)
    assert all(np.array_equal(a, b) for a, b in zip(sk.solve_normalize(R2, C, threads=2),
                                                     sk.solve_normalize(R2, C)))


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"study_kernels.qr A: expected shape \(None, 9, 9\)"):
        sk.qr(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="study.backend: expected one of"):
        st.resolve_backend("cuda")


def test_study_numba_backend_equals_torch_backend():
    """The whole study through both backends: forward quantities (losses, FTLEs) agree to
    1e-9 in every network; the CLVs and final losses agree in all but a few networks whose
    outcome is sensitive to rounding (a plateau exit or a near-degenerate contracting pair:
    path dependence at 1e-16), which must stay rare."""
    cfg = {"n_networks": 300, "steps": 200, "lyap_steps": 80, "times": [5, 10, 20, 30],
           "ftle_window": 5, "late_window": 20, "warmup_backward": 30, "max_buffer": 40,
           "n_checkpoints": 8}
    a = run_study(resolve_study({**cfg, "backend": "torch"}))
    b = run_study(resolve_study({**cfg, "backend": "numba", "threads": 2}))
    assert a.attrs["config"] != b.attrs["config"]
    for v in ("loss", "ftle", "ftle_cum", "ftle_end", "w_init"):
        assert np.abs(a[v].values - b[v].values).max() < 1e-9, v
    for v in ("clv_growth", "clv_angle", "final_loss", "w_final"):
        d = np.abs(a[v].values - b[v].values)
        d = d.reshape(*d.shape[:3], -1).max(-1)  # per network
        assert (d < 1e-8).mean() >= 0.99, v


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_gd_equals_repeated_closed_form_steps(activation):
    W = _nets(700, 1.0, seed=6)
    cf = st.ClosedForm(activation, lr=0.3)
    ref = W
    for _ in range(25):
        ref = cf.step(ref)
    out = sk.gd(W.numpy(), cf.X.numpy(), cf.Y.numpy(), 0.3, activation == "relu", 25, threads=2)
    assert np.abs(out - ref.numpy()).max() < 1e-11
    cn = st.ClosedForm(activation, lr=0.3, backend="numba")
    assert np.array_equal(cn.step(W, 25).numpy(), out)
