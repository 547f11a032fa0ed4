"""The 2-2-1 networks of the weight-dynamics study: task, update map and its closed-form Jacobian.

What it computes, for the study of Sharafi, Martin and Hallerberg, Phys. Rev. E 111,
054208 (2025) (:mod:`pathdep.analysis.lyapunov_study` runs it):

* :data:`TASKS`: the task (XOR as a regression, inputs ``(+-1, +-1)``, targets ``1`` if
  the signs differ else ``0``, loss ``1/2 mean_i (f(x_i) - y_i)^2`` over the 4 points);
* :func:`make_update_map`: the gradient-descent map ``w -> w - lr grad L(w)`` of ONE
  network (:class:`pathdep.core.models.MLP` ``(2, [2], 1)`` with biases, 9 parameters),
  pure and jvp / jacfwd-safe;
* :class:`ClosedForm`: the same step for ``B`` networks with its exact 9x9 Jacobian in
  closed form (two GEMMs), and the three batched operations of a CLV step (push, QR,
  backward solve), optionally by the compiled kernels of
  :mod:`pathdep.analysis.study_kernels` (``backend: numba``, :func:`resolve_backend`).

How it was checked (tests/analysis/test_study_model.py, float64): the vmapped ``jacfwd``
Jacobian of one network equals a central finite-difference Jacobian of its update (1e-6),
and the closed-form Jacobian, step and loss equal ``jacfwd`` / the vmapped map to 1e-12
(tanh and ReLU, 300 networks); the compiled kernels equal the torch closed form
(tests/analysis/test_study_kernels.py).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.func import grad

from pathdep.analysis import study_kernels
from pathdep.analysis.lyapunov_clv import solve_normalize
from pathdep.analysis.lyapunov_qr import qr_positive
from pathdep.core.models import MLP, Layout, make_apply

__all__ = ["PAPER", "TASKS", "ACTIVATIONS", "BACKENDS", "resolve_backend", "make_update_map", "ClosedForm"]

PAPER = ("Sharafi, Martin, Hallerberg, On the weight dynamics of learning networks, "
         "Phys. Rev. E 111, 054208 (2025), arXiv:2405.00743")

TASKS = {
    "xor": {
        "x": [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]],
        "y": [0.0, 1.0, 1.0, 0.0],
        "description": ("XOR regression: inputs (+-1, +-1), target 1 if the signs differ "
                        "else 0; loss 1/2 mean squared error over the 4 points; full-batch "
                        "gradient descent"),
    },
}

ACTIVATIONS = ("tanh", "relu")

BACKENDS = ("auto", "numba", "torch")


def resolve_backend(backend: str) -> str:
    """``"numba"`` or ``"torch"`` for a ``study.backend`` value (``"auto"``: numba when the
    package is importable).

    Raises:
        ValueError: for an unknown value, or ``"numba"`` without numba installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"study.backend: expected one of {list(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "numba" if study_kernels.AVAILABLE else "torch"
    if backend == "numba" and not study_kernels.AVAILABLE:
        raise ValueError("study.backend: 'numba' needs the numba package (pip install numba), "
                         "or use 'torch'")
    return backend


def make_update_map(activation: str, task: str = "xor", lr: float = 0.3,
                    dtype: torch.dtype = torch.float64
                    ) -> tuple[Callable, Callable, Layout]:
    """The gradient-descent update map of ONE 2-2-1 network.

    The network is :class:`pathdep.core.models.MLP` ``(2, [2], 1)`` with biases, evaluated on
    a flat ``(9,)`` vector by :func:`pathdep.core.models.make_apply` (parameter order
    ``fc0.weight (2, 2), fc0.bias (2), fc1.weight (1, 2), fc1.bias (1)``).

    Args:
        activation: ``"tanh"`` or ``"relu"``.
        task: a key of :data:`TASKS`.
        lr: learning rate.
        dtype: floating dtype of the data.

    Returns:
        ``(F, loss, layout)``: ``F(w (9,), t) -> w - lr grad loss(w)`` (pure; vmap / jvp /
        jacfwd-safe), ``loss(w) -> ()`` and the parameter layout.
    """
    model = MLP(2, [2], 1, activation=activation, bias=True)
    layout = Layout.from_module(model)
    apply = make_apply(model, layout)
    X = torch.tensor(TASKS[task]["x"], dtype=dtype)
    Y = torch.tensor(TASKS[task]["y"], dtype=dtype)

    def loss(w: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((apply(w, X).squeeze(-1) - Y) ** 2).mean()

    g = grad(loss)

    def F(w: torch.Tensor, t: int) -> torch.Tensor:
        return w - lr * g(w)

    return F, loss, layout


class ClosedForm:
    """One gradient-descent step of ``B`` 2-2-1 networks with its exact Jacobian, in closed form.

    For the network ``f(x) = sum_j v_j s(W_j . x + b_j) + c`` (parameters in the layout
    order ``W_00, W_01, W_10, W_11, b_0, b_1, v_0, v_1, c``), the loss
    ``L = 1/(2N) sum_n r_n^2`` with residuals ``r_n = f(x_n) - y_n``, and the map
    ``F(w) = w - lr grad L``, the Jacobian is ``J = I - lr H`` with the Hessian

        ``H = 1/N sum_n [g_n g_n^T + r_n d^2 f(x_n)]``,  ``g_n = grad_w f(x_n)``.

    ``g_n = E_n e_n`` with a constant ``(9, 5)`` matrix ``E_n`` (it holds the inputs
    ``x_n``) and ``e_n = (v_0 s'(z_0), v_1 s'(z_1), a_0, a_1, 1)``, so
    ``vec(g_n g_n^T) = (E_n (x) E_n) vec(e_n e_n^T)``. ``d^2 f`` is block sparse: for unit
    ``j`` with hidden parameters ``(W_j0, W_j1, b_j)`` and features ``u = (x_0, x_1, 1)``
    it is ``v_j s''(z_j) u u^T`` on that block and ``s'(z_j) u`` in the ``v_j`` row and
    column (tanh: ``s' = 1 - a^2``, ``s'' = -2 a (1 - a^2)``; ReLU: ``s' = [z > 0]``,
    ``s'' = 0``, the derivatives autograd uses). Hence every entry of ``J`` is linear in
    ``N * 25 + 4 N`` per-network coefficients, and the ``(B, 81)`` Jacobians are ONE
    ``addmm`` with a constant ``(4*25 + 16, 81)`` matrix; the step is another GEMM.

    Checked against ``jacfwd`` of :func:`make_update_map` to 1e-12
    (``tests/analysis/test_study_model.py``).

    Args:
        activation: ``"tanh"`` or ``"relu"``.
        task: a key of :data:`TASKS`.
        lr: learning rate.
        dtype: floating dtype.
    """

    def __init__(self, activation: str, task: str = "xor", lr: float = 0.3,
                 dtype: torch.dtype = torch.float64, backend: str = "torch", threads: int = 1):
        if activation not in ACTIVATIONS:
            raise ValueError(f"study.activations: expected entries in {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.backend = resolve_backend(backend)
        self.threads = int(threads)
        self.lr = float(lr)
        X = torch.tensor(TASKS[task]["x"], dtype=torch.float64)  # (N, 2)
        self.X = X.to(dtype)
        self.Y = torch.tensor(TASKS[task]["y"], dtype=dtype)  # (N,)
        N = X.shape[0]
        self.N = N
        U = torch.cat([X, torch.ones(N, 1, dtype=torch.float64)], dim=1)  # (N, 3)
        E = torch.zeros(N, 9, 5, dtype=torch.float64)
        for j in range(2):
            E[:, 2 * j, j], E[:, 2 * j + 1, j] = X[:, 0], X[:, 1]
            E[:, 4 + j, j] = 1.0
            E[:, 6 + j, 2 + j] = 1.0
        E[:, 8, 4] = 1.0
        gram = torch.einsum("nia,nkb->nabik", E, E).reshape(N * 25, 81)
        hid = [[0, 1, 4], [2, 3, 5]]
        cpl = torch.zeros(N, 2, 9, 9, dtype=torch.float64)  # coefficient r_n s'(z_nj)
        blk = torch.zeros(N, 2, 9, 9, dtype=torch.float64)  # coefficient r_n v_j s''(z_nj)
        for j, idx in enumerate(hid):
            for m, i in enumerate(idx):
                cpl[:, j, 6 + j, i] += U[:, m]
                cpl[:, j, i, 6 + j] += U[:, m]
                for l, k in enumerate(idx):
                    blk[:, j, i, k] += U[:, m] * U[:, l]
        self.T = torch.cat([gram, cpl.reshape(N * 2, 81), blk.reshape(N * 2, 81)]).to(dtype)
        self.Et = E.transpose(1, 2).reshape(N * 5, 9).to(dtype)  # stacked E_n^T
        self.I = torch.eye(9, dtype=dtype).reshape(1, 81)
        self._Xn = self.X.numpy()
        self._Yn = self.Y.numpy()

    def _forward(self, W: torch.Tensor):
        B = W.shape[0]
        Wh = W[:, 0:4].reshape(B, 2, 2)
        z = torch.einsum("bjm,nm->bnj", Wh, self.X) + W[:, None, 4:6]  # (B, N, 2)
        if self.activation == "tanh":
            a = torch.tanh(z)
            s1 = 1 - a * a
            s2 = -2 * a * s1
        else:
            a = torch.relu(z)
            s1 = (z > 0).to(z.dtype)
            s2 = None
        v = W[:, 6:8]
        r = (a * v[:, None, :]).sum(-1) + W[:, 8:9] - self.Y  # (B, N)
        e = torch.cat([s1 * v[:, None, :], a, torch.ones_like(r).unsqueeze(-1)], dim=-1)  # (B, N, 5)
        return r, e, s1, s2, v

    def loss(self, W: torch.Tensor) -> torch.Tensor:
        """``(B,)`` losses ``1/(2N) sum_n r_n^2`` of ``W (B, 9)``."""
        if self.backend == "numba" and W.device.type == "cpu":
            return torch.from_numpy(study_kernels.loss(W.numpy(), self._Xn, self._Yn,
                                                       self.activation == "relu", self.threads))
        r = self._forward(W)[0]
        return 0.5 * (r * r).mean(-1)

    def _step(self, W, r, e):
        B = W.shape[0]
        return torch.addmm(W, (r.unsqueeze(-1) * e).reshape(B, -1), self.Et, alpha=-self.lr / self.N)

    def step(self, W: torch.Tensor, n: int = 1) -> torch.Tensor:
        """``(B, 9)``: ``n`` steps ``W <- W - lr grad L(W)``."""
        if self.backend == "numba" and W.device.type == "cpu":
            return torch.from_numpy(study_kernels.gd(W.numpy(), self._Xn, self._Yn, self.lr,
                                                     self.activation == "relu", n,
                                                     self.threads))
        for _ in range(n):
            r, e, _, _, _ = self._forward(W)
            W = self._step(W, r, e)
        return W

    def jacobian(self, W: torch.Tensor, t: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(J (B, 9, 9), F(W) (B, 9))``, the signature of
        :func:`pathdep.analysis.lyapunov_benettin.batched_jacobian` (``t`` is ignored: full batch)."""
        B = W.shape[0]
        r, e, s1, s2, v = self._forward(W)
        outer = (e.unsqueeze(-1) * e.unsqueeze(-2)).reshape(B, -1)  # (B, N*25)
        c1 = (r.unsqueeze(-1) * s1).reshape(B, -1)  # (B, 2N)
        if s2 is None:
            c2 = torch.zeros_like(c1)
        else:
            c2 = (r.unsqueeze(-1) * v.unsqueeze(1) * s2).reshape(B, -1)
        coef = torch.cat([outer, c1, c2], dim=1)
        J = torch.addmm(self.I, coef, self.T, alpha=-self.lr / self.N).reshape(B, 9, 9)
        return J, self._step(W, r, e)

    # the three batched operations of a CLV step, for lyapunov_clv.clv_batched(push=, qr=,
    # solve=): compiled kernels (pathdep.analysis.study_kernels) for backend "numba"

    def push(self, W: torch.Tensor, Q: torch.Tensor, t: int = 0
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F(W) (B, 9), J(W) Q (B, 9, k))`` for tangent vectors ``Q (B, 9, k)``."""
        if self.backend == "numba" and Q.shape[-1] == 9 and W.device.type == "cpu":
            Y, A, _ = study_kernels.push(W.numpy(), Q.numpy(), self._Xn, self._Yn, self.lr,
                                         self.activation == "relu", self.threads)
            return torch.from_numpy(Y), torch.from_numpy(A)
        J, Y = self.jacobian(W)
        return Y, J @ Q

    def push_qr(self, W: torch.Tensor, Q: torch.Tensor, t: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`push` and :meth:`qr` fused: ``(F(W), Q', R, L(W))`` with
        ``Q' R = J(W) Q`` (positive diagonal) for ``Q (B, 9, 9)``."""
        if self.backend == "numba" and Q.shape[-1] == 9 and W.device.type == "cpu":
            out = study_kernels.push_qr(W.numpy(), Q.numpy(), self._Xn, self._Yn, self.lr,
                                        self.activation == "relu", self.threads)
            return tuple(torch.from_numpy(a) for a in out)
        Y, A = self.push(W, Q)
        Qn, R = self.qr(A)
        return Y, Qn, R, self.loss(W)

    def qr(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`pathdep.analysis.lyapunov_qr.qr_positive` of ``A (B, 9, 9)``."""
        if self.backend == "numba" and A.shape[-2:] == (9, 9) and A.device.type == "cpu":
            Q, R = study_kernels.qr(A.numpy(), self.threads)
            return torch.from_numpy(Q), torch.from_numpy(R)
        return qr_positive(A)

    def solve(self, R: torch.Tensor, C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`pathdep.analysis.lyapunov_clv.solve_normalize` of ``(B, 9, 9)`` systems."""
        if self.backend == "numba" and R.shape[-2:] == (9, 9) and R.device.type == "cpu":
            C, n = study_kernels.solve_normalize(R.numpy(), C.numpy(), self.threads)
            return torch.from_numpy(C), torch.from_numpy(n)
        return solve_normalize(R, C)
