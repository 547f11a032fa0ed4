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
