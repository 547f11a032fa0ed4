"""Neural tangent kernels: empirical, analytic, linearised models, kernel-regression
dynamics and the catapult map (seed: ntk-gradient-descent-wide-networks).

What it computes:

* :func:`empirical_ntk` - ``Theta(x, x') = J(x) J(x')^T`` of any ``apply(w, x)`` at flat
  parameters ``w`` (Jacot et al. 2018), full ``(N1, N2, O, O)`` or traced over outputs
  ``(N1, N2)``, by the method :mod:`pathdep.analysis.ntk_empirical` plans: structured
  derivatives (:mod:`pathdep.analysis.ntk_structured`, Novak et al. 2022) for the
  registry's MLPs and LeNet-5, else sample-blocked Jacobian contraction or NTK-vector
  products, whichever has fewer estimated FLOPs within the ``max_jacobian_mb`` budget;
  the parameter-sliced Jacobians (:func:`jacobian`, :func:`auto_chunk_params`) when
  ``chunk_params`` is given.
* :func:`analytic_kernels` - the infinite-width NNGP and NTK of a fully connected network
  with neural-tangents' ``stax.serial(Dense, act, ..., Dense)`` conventions: the first
  Dense is normalised by the input dimension, ``depth`` hidden layers, a Dense read-out.
  Closed forms for ReLU (arc-cosine kernels, Cho & Saul 2009), erf (Williams 1997) and GELU;
  a variance-robust composite quadrature for other activations (tanh, sigmoid). It lives in
  :mod:`pathdep.analysis.ntk_analytic` and is re-exported here.
* :func:`linearize` - ``f_lin(w, x) = f(w0, x) + J(w0, x) (w - w0)`` via ``torch.func.jvp``
  (Lee et al. 2019, "Wide neural networks of any depth evolve as linear models").
* :func:`mse_dynamics` - mean and covariance of the linearised network trained by gradient
  flow (or gradient descent) on MSE (Lee et al. 2019, eqs. 9-16): ``mu_t(x)`` and the
  covariance of ``gamma_t(x)`` given the NNGP ``K`` of ``f_0``.
* :func:`lambda_max`, :func:`eta_crit` - top eigenvalue of the NTK Gram matrix in the
  normalisation of a mean-reduced loss, and ``2 / lambda_0``.
* :func:`catapult_map` - the two-scalar ``(f, lambda)`` map of Lewkowycz et al. 2020 as
  written in the seed.

How it was checked (tests/analysis/test_ntk.py): the empirical NTK equals explicit
per-sample gradients of a tiny float64 MLP (1e-12) and ``X X^T + 1`` for a linear model;
the trace variant equals the trace of the full kernel; chunked equals unchunked; the
analytic kernels equal adaptive quadrature (tests/analysis/test_ntk_analytic.py: <= 1e-8
relative at pre-activation variances 1, 37 and 400) and Monte Carlo over wide random
networks within 4 standard errors; the analytic
NTK equals the empirical NTK of a width-2048 NTK-parameterised network within a few %;
the linearised model equals the network at ``w0`` and its gradient there equals ``J``;
``mse_dynamics`` equals gradient descent on the linear model.

Measured: bench/bench_ntk.py (pathdep's methods against neural-tangents in one run; the
table is in README).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor
from torch.func import jacrev, jvp

# The analytic (infinite-width) kernels live in ntk_analytic; re-exported here.
from pathdep.analysis.ntk_analytic import (  # noqa: E402,F401
    ACTIVATIONS, CLOSED_FORM, analytic_kernels, gaussian_expectations)


# ----------------------------------------------------------------------------- empirical NTK
def jacobian(apply: Callable, w: Tensor, x: Tensor, start: int = 0, stop: int | None = None,
             chunk_samples: int = 64) -> Tensor:
    """Per-sample Jacobian ``d apply(w, x_n)_o / d w_p`` for ``p`` in ``[start, stop)``.

    Args:
        apply: ``apply(w (P,), x (B, ...)) -> (B, O)``.
        w: ``(P,)`` flat parameters.
        x: ``(N, ...)`` inputs.
        start, stop: the parameter slice (default: all ``P``).
        chunk_samples: inputs per vmapped ``jacrev`` call.

    Returns:
        ``(N, O, stop - start)``.
    """
    P = w.shape[0]
    stop = P if stop is None else stop
    w = w.detach()
    head, tail = w[:start], w[stop:]

    def f(ws, xi):
        return apply(torch.cat([head, ws, tail]), xi.unsqueeze(0))[0]

    jf = torch.vmap(jacrev(f), in_dims=(None, 0))
    ws = w[start:stop]
    out = None
    a = 0
    for xc in torch.split(x, max(1, int(chunk_samples))):
        jc = jf(ws, xc)
        if out is None:  # filled in place: no list of chunks next to their concatenation
            out = torch.empty((x.shape[0], *jc.shape[1:]), dtype=jc.dtype, device=jc.device)
        out[a:a + len(xc)] = jc
        a += len(xc)
        del jc
    return out


def auto_chunk_params(P: int, n_rows: int, itemsize: int = 4, max_jacobian_mb: float = 1024.0) -> int:
    """Largest parameter slice whose stored Jacobians (``n_rows = (N1 [+ N2]) * O`` rows of
    ``itemsize`` bytes) fit in ``max_jacobian_mb``; ``P`` (one slice) whenever they all fit."""
    cp = int(max_jacobian_mb * 2 ** 20 // max(1, n_rows * itemsize))
    return max(1, min(int(P), cp))


def empirical_ntk(apply: Callable, w: Tensor, x1: Tensor, x2: Tensor | None = None, trace: bool = False,
                  chunk_samples: int = 64, chunk_params: int | None = None,
                  max_jacobian_mb: float = 1024.0, method: str = "auto", return_plan: bool = False):
    """Empirical NTK ``Theta(x, x') = sum_p J_p(x) J_p(x')^T`` (Jacot et al. 2018).

    The method (:mod:`pathdep.analysis.ntk_empirical`): ``structured`` derivatives (Novak
    et al. 2022) for the MLPs and LeNet-5 of :func:`pathdep.core.models.make_apply`, else
    the cheaper of sample-blocked Jacobian contraction (``jacobian``) and NTK-vector products
    (``ntvp``) by estimated FLOPs within the memory budget; ``sliced`` (parameter slices,
    each repeating the Jacobian passes) only when ``chunk_params`` is given.

    Args:
        apply: ``apply(w (P,), x (B, ...)) -> (B, O)``; any model of the registry.
        w: ``(P,)`` parameters (a checkpoint).
        x1: ``(N1, ...)`` inputs.
        x2: ``(N2, ...)`` inputs, or None for ``x2 = x1`` (its factors are reused).
        trace: return ``sum_o Theta_oo`` ``(N1, N2)`` instead of ``(N1, N2, O, O)``.
        chunk_samples: inputs per vmapped ``jacrev`` call of the ``sliced`` method.
        chunk_params: parameters per slice; given, it selects the ``sliced`` method.
        max_jacobian_mb: working-memory budget (MB) beside the output: sets the block sizes
            (bench/bench_ntk.py measures the peak RSS against it).
        method: ``auto``, ``structured``, ``jacobian``, ``ntvp`` or ``sliced``.
        return_plan: also return the plan (method, estimated FLOPs, block, bytes).

    Returns:
        ``(N1, N2, O, O)`` or ``(N1, N2)`` in ``w``'s dtype; with ``return_plan``,
        ``(kernel, plan dict)``.
    """
    from pathdep.analysis import ntk_empirical

    if chunk_params or method == "sliced":
        th = _sliced_ntk(apply, w, x1, x2, trace, chunk_samples, chunk_params, max_jacobian_mb)
        return (th, {"method": "sliced", "max_mb": float(max_jacobian_mb)}) if return_plan else th
    th, plan = ntk_empirical.compute(apply, w, x1, x2, trace, max_jacobian_mb, method)
    return (th, plan) if return_plan else th


def _sliced_ntk(apply, w, x1, x2, trace, chunk_samples, chunk_params, max_jacobian_mb) -> Tensor:
    """Parameter-sliced Jacobians: every slice repeats the per-sample passes."""
    P = int(w.shape[0])
    if chunk_params:
        cp = max(1, int(chunk_params))
    else:
        with torch.no_grad():
            O = int(apply(w.detach(), x1[:1]).shape[-1])
        rows = (len(x1) + (0 if x2 is None else len(x2))) * O
        cp = auto_chunk_params(P, rows, w.element_size(), max_jacobian_mb)
    out = None
    for a in range(0, P, cp):
        b = min(P, a + cp)
        j1 = jacobian(apply, w, x1, a, b, chunk_samples)
        j2 = j1 if x2 is None else jacobian(apply, w, x2, a, b, chunk_samples)
        n1, o, p = j1.shape
        n2 = j2.shape[0]
        if trace:  # (N1, O p) @ (O p, N2): one GEMM on views
            part = j1.reshape(n1, o * p) @ j2.reshape(n2, o * p).T
        else:      # (N1 O, p) @ (p, N2 O) -> (N1, O, N2, O) -> (N1, N2, O, O), a view
            part = (j1.reshape(n1 * o, p) @ j2.reshape(n2 * o, p).T).reshape(n1, o, n2, o).permute(0, 2, 1, 3)
        if out is None:
            out = part.contiguous()
        else:
            out += part
        del j1, j2, part
    return out


def per_sample_gradient_loop(apply: Callable, w: Tensor, x: Tensor) -> Tensor:
    """Naive reference: one ``torch.autograd.grad`` per sample and output, ``(N, O, P)``."""
    rows = []
    for n in range(x.shape[0]):
        wv = w.detach().clone().requires_grad_(True)
        out = apply(wv, x[n:n + 1])[0]
        rows.append(torch.stack([torch.autograd.grad(out[o], wv, retain_graph=o < out.shape[0] - 1)[0]
                                 for o in range(out.shape[0])]))
    return torch.stack(rows)


def ntk_naive(apply: Callable, w: Tensor, x: Tensor) -> Tensor:
    """The (N, N, O, O) NTK from :func:`per_sample_gradient_loop` (benchmark baseline)."""
    J = per_sample_gradient_loop(apply, w, x)
    return torch.einsum("nop,mqp->nmoq", J, J)


def flatten_kernel(theta: Tensor) -> Tensor:
    """``(N1, N2, O, O) -> (N1 O, N2 O)`` (sample-major), a 2-D kernel is returned as is."""
    if theta.dim() == 2:
        return theta
    n1, n2, o1, o2 = theta.shape
    return theta.permute(0, 2, 1, 3).reshape(n1 * o1, n2 * o2)


# ----------------------------------------------------------------------------- linearisation
def linearize(apply: Callable, w0: Tensor) -> Callable:
    """First-order Taylor expansion of ``apply`` about ``w0`` (Lee et al. 2019).

    Returns:
        ``f_lin(w, x) = apply(w0, x) + J(w0, x) (w - w0)``, computed with one
        ``torch.func.jvp`` (no Jacobian is stored); pure, so it trains through
        :func:`pathdep.core.dynamics.make_step` like the network itself.
    """
    w0 = w0.detach()

    def f_lin(w, x):
        f0, df = jvp(lambda v: apply(v, x), (w0,), (w - w0,))
        return f0 + df

    return f_lin


# ----------------------------------------------------------------------------- MSE dynamics
def _decay(evals: np.ndarray, t: float, lr: float, n_train: int, discrete: bool) -> np.ndarray:
    rate = lr * evals / n_train
    if discrete:
        return (1.0 - rate) ** t
    return np.exp(-rate * t)


def mse_dynamics(theta_XX, theta_xX, y, times, lr: float = 1.0, *, f0_X=None, f0_x=None,
                 k_XX=None, k_xX=None, k_xx=None, discrete: bool = True) -> dict:
    """Outputs of the linearised network trained on MSE with a fixed NTK (Lee et al. 2019).

    The loss is ``L = 1/(2D) sum_a |f(x_a) - y_a|^2`` (pathdep's ``mse``), so gradient
    descent with learning rate ``lr`` acts on the training outputs as
    ``f <- f - (lr / D) Theta (f - y)`` and, with ``A_t = Theta_xX Theta^{-1} (I - E_t)``,
    ``E_t = (I - lr Theta / D)^t`` (``discrete``) or ``exp(-lr Theta t / D)`` (flow):

        mu_t(x) = A_t y,    gamma_t(x) = f_0(x) - A_t f_0(X),    f_t(x) = mu_t(x) + gamma_t(x).

    With ``f_0 ~ GP(0, K)`` (the NNGP), ``gamma_t`` is Gaussian with mean 0 and covariance
    ``K_xx - A_t K_Xx - K_xX A_t^T + A_t K_XX A_t^T`` (Lee et al. 2019, eq. 16).

    Args:
        theta_XX: ``(D, D)`` NTK on the training inputs. theta_xX: ``(M, D)``.
        y: ``(D,)`` or ``(D, O)`` targets. times: steps (discrete) or ``lr``-free times.
        lr: learning rate. f0_X, f0_x: initial outputs ``(D[, O])``, ``(M[, O])`` (optional).
        k_XX, k_xX, k_xx: NNGP blocks, for the covariance (optional).
        discrete: gradient descent (True) or gradient flow (False).

    Returns:
        ``{"mean": (T, M[, O]), "f": (T, M[, O]) if f0 given, "var": (T, M) and
        "cov": (T, M, M) if the NNGP is given, "train_mean": (T, D[, O])}``.
    """
    th = np.asarray(theta_XX, dtype=np.float64)
    txX = np.asarray(theta_xX, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    D = th.shape[0]
    ev, U = np.linalg.eigh(0.5 * (th + th.T))
    ev = np.maximum(ev, 1e-300)
    proj = txX @ U / ev                                     # Theta_xX Theta^{-1} in the eigenbasis (M, D)
    out = {"mean": [], "train_mean": []}
    if f0_x is not None:
        out["f"] = []
    cov = k_XX is not None
    if cov:
        out["cov"], out["var"] = [], []
    for t in np.atleast_1d(times):
        g = 1.0 - _decay(ev, float(t), lr, D, discrete)    # (D,)
        A = (proj * g) @ U.T                                # (M, D)
        At = (U * g) @ U.T                                  # training set: Theta Theta^{-1}(I - E)
        out["mean"].append(A @ y)
        out["train_mean"].append(At @ y)
        if f0_x is not None:
            out["f"].append(A @ y + np.asarray(f0_x) - A @ np.asarray(f0_X))
        if cov:
            kxX = np.asarray(k_xX)
            c = np.asarray(k_xx) - A @ kxX.T - kxX @ A.T + A @ np.asarray(k_XX) @ A.T
            out["cov"].append(c)
            out["var"].append(np.diag(c).copy())
    return {k: np.stack(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- large learning rates
def lambda_max(theta, n_train: int | None = None) -> float:
    """Top eigenvalue ``lambda_0`` of the NTK Gram matrix divided by the number of training
    points ``D`` (the curvature of pathdep's mean-reduced MSE in function space).

    Args:
        theta: ``(D, D)`` or ``(D, D, O, O)`` NTK on the training inputs.
        n_train: ``D`` (default: ``theta.shape[0]``).
    """
    t = torch.as_tensor(theta) if not isinstance(theta, Tensor) else theta
    D = int(t.shape[0]) if n_train is None else int(n_train)
    m = flatten_kernel(t).double()
    return float(torch.linalg.eigvalsh(0.5 * (m + m.T))[-1]) / D


def eta_crit(lam0: float) -> float:
    """``2 / lambda_0``: the largest stable learning rate of the linearised model."""
    return 2.0 / float(lam0)


def catapult_map(f0: float, lam0: float, eta: float, n: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed's two-scalar model (Lewkowycz et al. 2020, a width-``n`` two-layer net on
    one example)::

        f_{t+1} = (1 - eta lambda_t + eta^2 f_t^2 / n) f_t
        lambda_{t+1} = lambda_t + eta f_t^2 / n (eta lambda_t - 4)

    Lazy for ``eta < 2/lambda_0``, catapult (``|f|`` grows, ``lambda`` falls below
    ``2/eta``, then ``f`` converges) for ``2/lambda_0 < eta < 4/lambda_0``, divergent above.

    Returns:
        ``(f (steps + 1,), lam (steps + 1,))``; entries after an overflow are ``inf``/``nan``.
    """
    f = np.empty(steps + 1)
    lam = np.empty(steps + 1)
    f[0], lam[0] = f0, lam0
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            ft, lt = f[t], lam[t]
            f[t + 1] = (1.0 - eta * lt + eta * eta * ft * ft / n) * ft
            lam[t + 1] = lt + eta * ft * ft / n * (eta * lt - 4.0)
    return f, lam


def fit_exponent(widths, values) -> tuple[float, float]:
    """Least-squares slope and its standard error of ``log values`` against ``log widths``."""
    x = np.log(np.asarray(widths, dtype=np.float64))
    yv = np.log(np.asarray(values, dtype=np.float64))
    ok = np.isfinite(yv)
    x, yv = x[ok], yv[ok]
    if x.size < 2:
        return float("nan"), float("nan")
    A = np.stack([x, np.ones_like(x)], 1)
    coef, *_ = np.linalg.lstsq(A, yv, rcond=None)
    if x.size > 2:
        r = yv - A @ coef
        s2 = (r @ r) / (x.size - 2)
        se = math.sqrt(s2 / ((x - x.mean()) ** 2).sum())
    else:
        se = float("nan")
    return float(coef[0]), se
