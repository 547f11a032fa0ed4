"""Weight dynamics of 2-2-1 networks: early Lyapunov indicators predict the final loss.

What it computes: a reproduction of the study of Sharafi, Martin and Hallerberg, "On the
weight dynamics of learning networks", Phys. Rev. E 111, 054208 (2025), arXiv 2405.00743.
For each activation (tanh, ReLU) and each initialisation range ``U(-a, a)`` it trains
``n_networks`` 2-2-1 networks (9 parameters with biases) *together*, as one vectorised
program (``torch.vmap`` over networks), by full-batch gradient descent. For the first
``lyap_steps`` steps it forms the full 9x9 Jacobian of every network's update map
``w -> w - lr grad L(w)`` (in closed form, :class:`ClosedForm`, equal to the vmapped
``torch.func.jacfwd`` to 1e-12; with ``backend: numba`` in the compiled per-network
kernels of :mod:`pathdep.analysis.study_kernels`, fused with the QR; through
:func:`pathdep.analysis.lyapunov.clv_batched`),
and records

* finite-time Lyapunov exponents (FTLEs) over the window of ``ftle_window`` steps ending at
  each indicator time ``t`` (``ftle``) and from step 0 to ``t`` (``ftle_cum``), from a
  Benettin run started at initialisation with a random orthonormal basis;
* covariant Lyapunov vectors at each indicator time by Ginelli's method (forward from
  step 0, backward from ``t + warmup_backward``), their growth rates and the angles
  between all 36 pairs (``clv_angle``; ``min_clv_angle``);
* the loss at each indicator time, on a log-spaced set of checkpoints and at the end.

The remaining ``steps - lyap_steps`` steps are plain batched gradient descent. A run
*failed* when its final loss exceeds ``threshold``. :func:`roc_by_time` then scores a
Gaussian naive Bayes classifier (``sklearn.naive_bayes.GaussianNB``) that predicts failure
from the indicators at time ``t`` (stratified k-fold cross-validation, out-of-fold
probabilities), giving ROC curves and the AUC as a function of ``t``, as in the paper.

The task (the paper's task details were not available; DESIGN / methods-notes): XOR as a
regression, inputs ``(+-1, +-1)``, targets ``1`` if the signs differ else ``0``, loss
``1/2 mean_i (f(x_i) - y_i)^2`` over the 4 points, lr 0.3. XOR is the classic task of the
2-2-1 network (the smallest network that solves it), and its outcome is bimodal: runs
either reach a global minimum or stay on a plateau / in a local minimum: with the full
configuration the successful runs end below 5e-4 (almost all below 1e-8) and the failed
ones above 1.5e-3 (mostly 1e-2 .. 1e-1; a few tanh runs are still leaving a plateau at
step 3000), so ``threshold = 1e-3`` sits in the gap of the histogram. The two
initialisation ranges are U(-0.5, 0.5) and U(-2, 2) for all 9 parameters. tanh fails in
about 5% and 25% of the runs; ReLU in about 65-75%, above the 5-50% aimed for: with two
ReLU hidden units XOR is solved only when the two units face opposite half-planes, and
every alternative regression task tried (sums of ReLU or tanh ridges on a 5x5 grid,
|x1 + x2|, x1 x2, XOR with 0/1 inputs or +-1 targets) either left ReLU at >= 50% failures
too or removed the failures of tanh, so XOR is kept for both (one task, comparable).

Measured with :data:`FULL_CONFIG` (8000 networks per combination, 3000 steps, Jacobians
and CLVs in the first 250, seed 0, float64, ``backend: numba``): 49 s in total on one
thread of a 2-core CPU (15 s for the first combination, which includes loading the
compiled kernels; 10-14 s for the others); the torch path took 232 s. Failure fractions
tanh U(-0.5,0.5) 0.0425, tanh U(-2,2) 0.2308, ReLU U(-0.5,0.5) 0.6548, ReLU U(-2,2)
0.7310 (identical with both backends: they depend only on the initial weights).
Cross-validated AUC at t = 20 / 50 / 100 / 200 steps (loss alone | FTLE window | all =
log loss + FTLEs + CLV angles): tanh U(-0.5,0.5) .55/.62/.72/.93 | .55/.62/.80/.96 |
.57/.67/.85/.96; tanh U(-2,2) .68/.78/.86/.91 | .70/.80/.87/.92 | .75/.83/.88/.90; ReLU
U(-0.5,0.5) .58/.84/.98/1.0 | .77/.94/1.0/1.0 | .78/.93/1.0/1.0; ReLU U(-2,2)
.79/.93/.98/1.0 | .87/.95/.98/.99 | .90/.97/.99/1.0. The FTLEs predict failure earlier
than the loss does; the minimum CLV angle alone is the weakest indicator (AUC
0.52-0.76). Every network gets its own random initial tangent basis (and backward start
``C``): with one basis shared by all networks (tried for speed) the basis-dependent early
indicators of structurally similar networks (dead ReLU units) coincided and the AUCs of
the CLV angles rose by up to 0.19: an artefact of the shared draw, not a signal.

How it was checked (tests/analysis/test_lyapunov_study.py, float64): a 200-network study
has the documented dims and finite values; the vmapped ``jacfwd`` Jacobian of one network
equals a central finite-difference Jacobian of its update (1e-6), and the closed-form
:class:`ClosedForm` Jacobian, step and loss equal ``jacfwd`` / the vmapped map to 1e-12
(tanh and ReLU, 300 networks); the exponents of networks that
reach the minimum are <= ~0 at late times; the same seed gives identical outputs.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable

import numpy as np
import torch
import xarray as xr
from torch.func import grad, vmap

import pathdep.analysis.lyapunov as ly
from pathdep.analysis import study_kernels
from pathdep.core.models import MLP, Layout, make_apply

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

DEFAULT_CONFIG: dict[str, Any] = {
    "task": "xor",
    "activations": ["tanh", "relu"],
    "init_ranges": [0.5, 2.0],      # U(-a, a) for every weight and bias
    "n_networks": 256,              # per (activation, init range)
    "steps": 1000,                  # training steps (final loss after these)
    "lr": 0.3,
    "lyap_steps": 150,              # steps with full Jacobians / CLVs (from step 0)
    "times": [5, 10, 20, 30, 50, 75, 100],  # indicator times (steps)
    "ftle_window": 5,
    "late_window": 50,              # window of ``ftle_end`` (last steps of lyap_steps)
    "warmup_backward": 50,          # Ginelli backward warm-up
    "max_buffer": 64,               # R matrices held at once (memory cap)
    "threshold": 1e-3,              # failed <=> final loss > threshold
    "n_checkpoints": 24,            # log-spaced loss checkpoints
    "seed": 0,
    "dtype": "float64",
    "threads": 1,                   # CPU threads during the run (None: torch's setting)
    # "numba": compiled per-network kernels (study_kernels; ~2.5x the torch path per
    # thread, and they split the networks over ``threads``); "torch": the batched closed
    # form (any device); "auto": numba when it is installed
    "backend": "auto",
}

#: The full-size study (>= 8000 networks per combination, as in the paper).
FULL_CONFIG: dict[str, Any] = {
    **DEFAULT_CONFIG,
    "n_networks": 8000,
    "steps": 3000,
    "lyap_steps": 250,
    "times": [5, 10, 20, 30, 50, 75, 100, 150, 200],
}

ACTIVATIONS = ("tanh", "relu")



# --------------------------------------------------------------------------- config


def resolve_config(config: dict | None) -> dict:
    """Merge ``config`` over :data:`DEFAULT_CONFIG` and check it.

    Raises:
        ValueError: naming the key and what was expected.
    """
    cfg = dict(DEFAULT_CONFIG)
    for k, v in (config or {}).items():
        if k not in DEFAULT_CONFIG:
            raise ValueError(f"study.{k}: unknown key (expected one of {sorted(DEFAULT_CONFIG)})")
        cfg[k] = v
    if cfg["task"] not in TASKS:
        raise ValueError(f"study.task: expected one of {sorted(TASKS)}, got {cfg['task']!r}")
    for a in cfg["activations"]:
        if a not in ACTIVATIONS:
            raise ValueError(f"study.activations: expected entries in {ACTIVATIONS}, got {a!r}")
    for a in cfg["init_ranges"]:
        if not float(a) > 0:
            raise ValueError(f"study.init_ranges: expected positive half-widths, got {a!r}")
    for k in ("n_networks", "steps", "lyap_steps", "ftle_window", "late_window",
              "warmup_backward", "max_buffer", "n_checkpoints"):
        if int(cfg[k]) != cfg[k] or cfg[k] < 1:
            raise ValueError(f"study.{k}: expected a positive integer, got {cfg[k]!r}")
    if cfg["lyap_steps"] > cfg["steps"]:
        raise ValueError(f"study.lyap_steps: expected <= steps ({cfg['steps']}), "
                         f"got {cfg['lyap_steps']}")
    if cfg["late_window"] > cfg["lyap_steps"]:
        raise ValueError(f"study.late_window: expected <= lyap_steps ({cfg['lyap_steps']}), "
                         f"got {cfg['late_window']}")
    if cfg["max_buffer"] <= cfg["warmup_backward"]:
        raise ValueError(f"study.max_buffer: expected > warmup_backward "
                         f"({cfg['warmup_backward']}), got {cfg['max_buffer']}")
    times = [int(t) for t in cfg["times"]]
    hi = cfg["lyap_steps"] - cfg["warmup_backward"]
    if not times or sorted(set(times)) != times or times[0] < cfg["ftle_window"] or times[-1] > hi:
        raise ValueError(f"study.times: expected increasing steps in [ftle_window "
                         f"({cfg['ftle_window']}), lyap_steps - warmup_backward ({hi})], "
                         f"got {cfg['times']}")
    cfg["times"] = times
    if cfg["dtype"] not in ("float64", "float32"):
        raise ValueError(f"study.dtype: expected 'float64' or 'float32', got {cfg['dtype']!r}")
    th = cfg["threads"]
    if th is not None and (int(th) != th or th < 1):
        raise ValueError(f"study.threads: expected None or a positive integer, got {th!r}")
    if not float(cfg["lr"]) > 0:
        raise ValueError(f"study.lr: expected > 0, got {cfg['lr']!r}")
    cfg["backend"] = resolve_backend(cfg["backend"])
    return cfg


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


# --------------------------------------------------------------------------- the map


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
    (``tests/analysis/test_lyapunov_study.py``).

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
        :func:`pathdep.analysis.lyapunov.batched_jacobian` (``t`` is ignored: full batch)."""
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

    # the three batched operations of a CLV step, for lyapunov.clv_batched(push=, qr=,
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
        """:func:`pathdep.analysis.lyapunov.qr_positive` of ``A (B, 9, 9)``."""
        if self.backend == "numba" and A.shape[-2:] == (9, 9) and A.device.type == "cpu":
            Q, R = study_kernels.qr(A.numpy(), self.threads)
            return torch.from_numpy(Q), torch.from_numpy(R)
        return ly.qr_positive(A)

    def solve(self, R: torch.Tensor, C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`pathdep.analysis.lyapunov.solve_normalize` of ``(B, 9, 9)`` systems."""
        if self.backend == "numba" and R.shape[-2:] == (9, 9) and R.device.type == "cpu":
            C, n = study_kernels.solve_normalize(R.numpy(), C.numpy(), self.threads)
            return torch.from_numpy(C), torch.from_numpy(n)
        return ly.solve_normalize(R, C)


def _param_names(layout: Layout) -> list[str]:
    out = []
    for n, sh in zip(layout.names, layout.shapes):
        for idx in np.ndindex(*sh):
            out.append(f"{n}[{','.join(str(i) for i in idx)}]")
    return out


def _checkpoints(steps: int, n: int) -> np.ndarray:
    c = np.unique(np.round(np.geomspace(1, steps, n)).astype(int))
    return np.unique(np.concatenate([[0], c, [steps]]))


def _seed_int(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, dtype=np.uint32)[0])


# --------------------------------------------------------------------------- study


def _run_combination(cfg: dict, activation: str, a: float, ss: np.random.SeedSequence,
                     dtype: torch.dtype) -> dict[str, np.ndarray]:
    """Train ``n_networks`` networks of one (activation, range) as one vmapped program."""
    B, steps, L = cfg["n_networks"], cfg["steps"], cfg["lyap_steps"]
    times, w_ftle = cfg["times"], cfg["ftle_window"]
    F, loss, layout = make_update_map(activation, cfg["task"], float(cfg["lr"]), dtype)
    ss_init, ss_lyap = ss.spawn(2)
    rng = np.random.default_rng(ss_init)
    W0 = torch.as_tensor(rng.uniform(-a, a, size=(B, layout.n_params)), dtype=dtype)
    # closed-form step, loss and 9x9 Jacobian, batched over networks (== vmapped jacfwd
    # of F to 1e-12, tests/analysis/test_lyapunov_study.py)
    cf = ClosedForm(activation, cfg["task"], float(cfg["lr"]), dtype, backend=cfg["backend"],
                    threads=cfg["threads"] or torch.get_num_threads())
    batched_loss = cf.loss
    losses = []  # L(W_t), t = 0 .. L-1, from the fused steps

    def push_qr(X, Q, t):
        Y, Qn, R, loss_t = cf.push_qr(X, Q)
        losses.append(loss_t)
        return Y, Qn, R

    c = ly.clv_batched(F, W0, L, k=layout.n_params, times=times,
                       warmup_backward=cfg["warmup_backward"], seed=_seed_int(ss_lyap),
                       mode="jacobian", max_buffer=cfg["max_buffer"], running=False,
                       push=cf.push, qr=cf.qr, solve=cf.solve, push_qr=push_qr)
    log_r = c.forward.log_r  # (B, L, 9): step t -> t+1 in row t
    losses.append(batched_loss(c.forward.x))
    loss_lyap = torch.stack(losses, dim=1)  # (B, L + 1): loss at steps 0..L

    ckpt = _checkpoints(steps, cfg["n_checkpoints"])
    loss_ckpt = np.full((B, len(ckpt)), np.nan)
    early = ckpt <= L
    loss_ckpt[:, early] = loss_lyap[:, ckpt[early]].numpy()
    W = c.forward.x
    s_prev = L
    with torch.no_grad():
        for j, s in enumerate(ckpt):
            if s > L:  # plain gradient descent from checkpoint to checkpoint
                W = cf.step(W, int(s - s_prev))
                s_prev = s
                loss_ckpt[:, j] = batched_loss(W).numpy()
    final = loss_ckpt[:, -1].copy()
    final[~np.isfinite(final)] = np.inf

    tt = torch.tensor(times)
    csum = torch.cat([torch.zeros_like(log_r[:, :1]), torch.cumsum(log_r, dim=1)], dim=1)
    ftle_win = (csum[:, tt] - csum[:, tt - w_ftle]) / w_ftle  # (B, n_t, 9)
    ftle_cum = csum[:, tt] / tt.to(dtype).unsqueeze(-1)
    lw = cfg["late_window"]
    ftle_end = (csum[:, L] - csum[:, L - lw]) / lw
    ang = ly.clv_angles(c.V)  # (B, n_t, 9, 9)
    iu = torch.triu_indices(layout.n_params, layout.n_params, offset=1)
    pairs = ang[..., iu[0], iu[1]]  # (B, n_t, 36)
    return {
        "final_loss": final,
        "loss": loss_lyap[:, tt].numpy(),
        "loss_curve": loss_ckpt,
        "ftle": ftle_win.numpy(),
        "ftle_cum": ftle_cum.numpy(),
        "ftle_end": ftle_end.numpy(),
        "clv_growth": c.growth.numpy(),
        "clv_angle": pairs.numpy(),
        "min_clv_angle": pairs.min(dim=-1).values.numpy(),
        "w_init": W0.numpy(),
        "w_final": W.numpy(),
        "checkpoints": ckpt,
        "param_names": _param_names(layout),
    }


_DIMS = {
    "final_loss": ("network",),
    "failed": ("network",),
    "loss": ("network", "time"),
    "loss_curve": ("network", "checkpoint"),
    "ftle": ("network", "time", "exponent"),
    "ftle_cum": ("network", "time", "exponent"),
    "ftle_end": ("network", "exponent"),
    "clv_growth": ("network", "time", "exponent"),
    "clv_angle": ("network", "time", "pair"),
    "min_clv_angle": ("network", "time"),
    "w_init": ("network", "param"),
    "w_final": ("network", "param"),
}


def run_study(config: dict | None = None) -> xr.Dataset:
    """Run the study for every (activation, init range) of ``config``.

    Args:
        config: overrides of :data:`DEFAULT_CONFIG` (see :data:`FULL_CONFIG` for the
            paper-sized run): ``n_networks``, ``steps``, ``lr``, ``lyap_steps``, ``times``,
            ``ftle_window``, ``late_window``, ``warmup_backward``, ``max_buffer``,
            ``threshold``, ``activations``, ``init_ranges``, ``seed``, ``dtype`` ...

    Returns:
        ``xarray.Dataset`` with dims ``activation``, ``init_range`` (half-width ``a`` of
        ``U(-a, a)``), ``network``, ``time`` (indicator steps), ``exponent`` (1..9),
        ``pair`` (``"i-j"``, 36), ``checkpoint`` (steps), ``param`` (9); variables (all
        with leading ``activation, init_range``): ``final_loss``, ``failed`` (final loss >
        threshold), ``loss (network, time)``, ``loss_curve (network, checkpoint)``,
        ``ftle`` / ``ftle_cum`` / ``clv_growth (network, time, exponent)``, ``ftle_end
        (network, exponent)`` (last ``late_window`` steps of the Jacobian window),
        ``clv_angle (network, time, pair)`` (radians), ``min_clv_angle (network, time)``,
        ``w_init`` / ``w_final (network, param)``, ``failure_fraction``, ``runtime_s``;
        attrs ``task``, ``failure_fraction`` (text), ``threshold``, ``config`` (JSON),
        ``reference``, ``runtime_s``.
    """
    cfg = resolve_config(config)
    dtype = torch.float64 if cfg["dtype"] == "float64" else torch.float32
    root = np.random.SeedSequence(int(cfg["seed"]))
    acts, ranges = list(cfg["activations"]), [float(a) for a in cfg["init_ranges"]]
    children = root.spawn(len(acts) * len(ranges))
    results, runtimes = {}, np.zeros((len(acts), len(ranges)))
    threads_before = torch.get_num_threads()
    if cfg["threads"] is not None:
        # the ops are tiny and memory-bound: on a loaded, shared 2-core machine 2
        # OpenMP/MKL threads were 5-7x SLOWER than 1 (MKL's float64 tanh alone 40x);
        # on an idle one 2 threads are ~1.3x faster (bench/bench_lyapunov.py)
        torch.set_num_threads(int(cfg["threads"]))
    t_all = time.perf_counter()
    try:
        for i, act in enumerate(acts):
            for j, a in enumerate(ranges):
                t0 = time.perf_counter()
                results[i, j] = _run_combination(cfg, act, a, children[i * len(ranges) + j],
                                                 dtype)
                runtimes[i, j] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads_before)
    total = time.perf_counter() - t_all

    first = results[0, 0]
    data = {}
    for name, dims in _DIMS.items():
        if name == "failed":
            continue
        arr = np.stack([np.stack([results[i, j][name] for j in range(len(ranges))])
                        for i in range(len(acts))])
        data[name] = (("activation", "init_range", *dims), arr)
    failed = data["final_loss"][1] > float(cfg["threshold"])
    data["failed"] = (("activation", "init_range", "network"), failed)
    frac = failed.mean(axis=-1)
    data["failure_fraction"] = (("activation", "init_range"), frac)
    data["runtime_s"] = (("activation", "init_range"), runtimes)
    n = 9
    pair_names = [f"{p}-{q}" for p in range(1, n + 1) for q in range(p + 1, n + 1)]
    coords = {
        "activation": acts, "init_range": ranges, "network": np.arange(cfg["n_networks"]),
        "time": np.array(cfg["times"]), "exponent": np.arange(1, n + 1), "pair": pair_names,
        "checkpoint": first["checkpoints"], "param": first["param_names"],
    }
    summary = "; ".join(f"{act} U(-{a:g},{a:g}): {frac[i, j]:.4f}"
                        for i, act in enumerate(acts) for j, a in enumerate(ranges))
    ds = xr.Dataset(data, coords=coords, attrs={
        "task": TASKS[cfg["task"]]["description"],
        "failure_fraction": summary,
        "threshold": float(cfg["threshold"]),
        "threshold_rule": "failed <=> final loss > threshold (gap of the bimodal histogram)",
        "lr": float(cfg["lr"]),
        "steps": int(cfg["steps"]),
        "config": json.dumps(cfg, sort_keys=True),
        "reference": PAPER,
        "runtime_s": float(total),
        "torch_version": torch.__version__,
    })
    ds["init_range"].attrs["description"] = "half-width a of U(-a, a) for all 9 parameters"
    ds["time"].attrs["units"] = "steps"
    ds["clv_angle"].attrs["units"] = "rad"
    ds["ftle"].attrs["description"] = ("FTLE (per step) over the ftle_window steps ending "
                                       "at time")
    ds["ftle_cum"].attrs["description"] = "FTLE (per step) over steps 0 .. time"
    return ds


# --------------------------------------------------------------------------- classifier


def _features(ds: xr.Dataset, name: str, sel: dict) -> np.ndarray:
    """``(network, n_features)`` for indicator ``name`` at one (activation, range, time)."""
    d = ds.isel(sel)
    if name == "loss":
        return np.log10(np.maximum(d["loss"].values, 1e-300))[:, None]
    if name == "ftle":
        return d["ftle"].values
    if name == "ftle_cum":
        return d["ftle_cum"].values
    if name == "clv_growth":
        return d["clv_growth"].values
    if name == "clv_min_angle":
        return d["min_clv_angle"].values[:, None]
    if name == "clv_angles":
        return d["clv_angle"].values
    if name == "all":
        return np.concatenate([_features(ds, n, sel) for n in ("loss", "ftle", "clv_angles")],
                              axis=1)
    raise ValueError(f"study.indicators: unknown indicator {name!r}")


INDICATORS = ("loss", "ftle", "ftle_cum", "clv_growth", "clv_min_angle", "clv_angles", "all")


def roc_by_time(ds: xr.Dataset, *, indicators=INDICATORS, n_folds: int = 5, seed: int = 0,
                n_fpr: int = 101) -> xr.Dataset:
    """Cross-validated ROC curves of a naive Bayes failure predictor, per indicator time.

    For every (activation, init range, indicator, time) a Gaussian naive Bayes classifier
    (``sklearn.naive_bayes.GaussianNB``) predicts ``failed`` from the indicator's
    features at that time; stratified ``n_folds``-fold cross-validation gives out-of-fold
    probabilities, from which the ROC curve (interpolated on a uniform false-positive
    grid) and its AUC are computed. Non-finite features are clipped to +-1e6.

    Args:
        ds: output of :func:`run_study`.
        indicators: names from :data:`INDICATORS`: ``loss`` (log10 loss at t), ``ftle``
            (9), ``ftle_cum`` (9), ``clv_growth`` (9), ``clv_min_angle`` (1),
            ``clv_angles`` (36), ``all`` (log loss + FTLEs + CLV angles).
        n_folds: folds (reduced to the minority class size; NaN below 2).
        seed: shuffling seed of the folds.
        n_fpr: points of the false-positive-rate grid.

    Returns:
        ``xarray.Dataset`` with ``auc`` and ``auc_std`` (std over folds) of dims
        ``(activation, init_range, indicator, time)``, ``tpr (..., time, fpr)``,
        ``n_failed (activation, init_range)``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.model_selection import StratifiedKFold
    from sklearn.naive_bayes import GaussianNB

    acts, ranges, times = ds["activation"].values, ds["init_range"].values, ds["time"].values
    grid = np.linspace(0.0, 1.0, n_fpr)
    shape = (len(acts), len(ranges), len(indicators), len(times))
    auc = np.full(shape, np.nan)
    auc_std = np.full(shape, np.nan)
    tpr = np.full(shape + (n_fpr,), np.nan)
    n_failed = np.zeros((len(acts), len(ranges)), dtype=int)
    for i in range(len(acts)):
        for j in range(len(ranges)):
            y = ds["failed"].values[i, j].astype(int)
            n_failed[i, j] = y.sum()
            k = min(n_folds, int(y.sum()), int((1 - y).sum()))
            if k < 2:
                continue
            folds = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(y, y))
            for m, name in enumerate(indicators):
                for n in range(len(times)):
                    X = _features(ds, name, {"activation": i, "init_range": j, "time": n})
                    X = np.clip(np.nan_to_num(X, nan=0.0, posinf=1e6, neginf=-1e6), -1e6, 1e6)
                    p = np.zeros(len(y))
                    fold_auc = []
                    for tr, te in folds:
                        clf = GaussianNB().fit(X[tr], y[tr])
                        p[te] = clf.predict_proba(X[te])[:, 1]
                        fold_auc.append(roc_auc_score(y[te], p[te]))
                    auc[i, j, m, n] = roc_auc_score(y, p)
                    auc_std[i, j, m, n] = float(np.std(fold_auc))
                    fpr, tp, _ = roc_curve(y, p)
                    tpr[i, j, m, n] = np.interp(grid, fpr, tp)
    dims = ("activation", "init_range", "indicator", "time")
    return xr.Dataset(
        {"auc": (dims, auc), "auc_std": (dims, auc_std), "tpr": (dims + ("fpr",), tpr),
         "n_failed": (("activation", "init_range"), n_failed)},
        coords={"activation": acts, "init_range": ranges, "indicator": list(indicators),
                "time": times, "fpr": grid},
        attrs={"classifier": "sklearn.naive_bayes.GaussianNB", "n_folds": int(n_folds),
               "cv": "StratifiedKFold(shuffle=True), out-of-fold probabilities",
               "seed": int(seed), "threshold": float(ds.attrs.get("threshold", math.nan)),
               "reference": PAPER})
