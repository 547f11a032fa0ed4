"""Known maps for the Lyapunov tests (float64): gradient descent on a quadratic and the Henon map.

Maps are written as ``F(x, t)`` and differentiated by ``torch.func`` (jvp / jacfwd), the
same path as a network's update map; gradient descent is ``w - lr * grad(loss)(w)``.
"""

import torch
from torch.func import grad

DT = torch.float64
H = torch.tensor([1.0, 10.0], dtype=DT)
LR = 0.05
HENON = (0.4193, -1.6233)  # reference values (2e5 steps; methods-notes)


def gd_quadratic(w, t):
    """Plain gradient descent on 1/2 w^T H w: the tangent map is diag(0.95, 0.5)."""
    return w - LR * grad(lambda v: 0.5 * (v * H * v).sum())(w)


def henon(x, t, a=1.4, b=0.3):
    return torch.stack([1 - a * x[..., 0] ** 2 + x[..., 1], b * x[..., 0]], dim=-1)


def henon_points(n, burn=300):
    """``n`` independent points on the attractor (separate orbits from nearby starts)."""
    x = torch.stack([0.1 + 0.001 * torch.arange(n, dtype=DT), torch.full((n,), 0.1, dtype=DT)],
                    dim=-1)
    for i in range(burn):
        x = henon(x, i)
    return x


def henon_jacobian(X, t):
    """Closed-form batched Jacobian of :func:`henon`: ``(J (B, 2, 2), henon(X))``."""
    J = torch.zeros(X.shape[0], 2, 2, dtype=DT)
    J[:, 0, 0], J[:, 0, 1], J[:, 1, 0] = -2 * 1.4 * X[:, 0], 1.0, 0.3
    return J, henon(X, t)


def check_full_spectrum(F, w: torch.Tensor, T: int, transient: int, sum_tol: float):
    """Benettin with k = D equals the dense-Jacobian QR spectrum (1e-10), and the exponents sum
    to the mean log|det J| over the same steps (Liouville, to ``sum_tol``); returns them (numpy)."""
    from pathdep.analysis.lyapunov_benettin import benettin, full_spectrum, jacobian

    a = benettin(F, w, T, w.numel(), seed=3, transient=transient)
    b = full_spectrum(F, w, T, seed=3, transient=transient)
    assert (a.exponents - b.exponents).abs().max() < 1e-10
    x, logdet = w.clone(), []
    for t in range(T + transient):
        J, x_next = jacobian(F, x, t)
        if t >= transient:
            logdet.append(torch.linalg.slogdet(J)[1])
        x = x_next
    assert abs(float(a.exponents.sum()) - float(torch.stack(logdet).mean())) < sum_tol
    return a.exponents.numpy()
