"""Compiled (numba) kernels of the 2-2-1 study: tangent push and 9x9 QR, one loop over networks.

What it computes: for ``B`` 2-2-1 networks trained by full-batch gradient descent (the
model of :class:`pathdep.analysis.study_model.ClosedForm`: parameters
``W_00, W_01, W_10, W_11, b_0, b_1, v_0, v_1, c``, loss ``1/(2N) sum_n r_n^2``),

* :func:`push`: the step ``W' = W - lr grad L(W)``, the pushed tangent basis
  ``A = J(W) Q`` with the exact Jacobian ``J = I - lr H`` (never stored: each network's
  9x9 ``H`` lives in a small local array), and the loss at ``W``;
* :func:`qr`: the QR decomposition with a positive diagonal of every 9x9 matrix
  (Householder reflections, ``Q`` formed explicitly), as
  :func:`pathdep.analysis.lyapunov_qr.qr_positive`; :func:`push_qr` fuses both (``J Q``
  never leaves the cache);
* :func:`solve_normalize`: one step of Ginelli's backward iteration ``C <- R^{-1} C``
  with unit columns, returning the column norms (starting each column's back
  substitution at its last nonzero: Ginelli's ``C`` is upper triangular);
* :func:`gd` (many plain steps, the loop over steps inside the loop over networks) and
  :func:`loss`.

Why: in eager torch the same step is ~10 batched kernels that each stream the
``(B, 9, 9)`` arrays through memory, and LAPACK's batched QR pays its call overhead per
9x9 matrix: the study step ran at ~130-180k network-steps/s on one thread; these
kernels run it at ~400k (bench/bench_lyapunov.py). The kernels release the GIL, so
``threads`` splits the networks over threads.

Formulas: as :class:`~pathdep.analysis.study_model.ClosedForm` (its docstring derives
``H = 1/N sum_n [g_n g_n^T + r_n d^2 f(x_n)]``); tanh ``s' = 1 - a^2``,
``s'' = -2 a (1 - a^2)``; ReLU ``s' = [z > 0]``, ``s'' = 0`` (autograd's convention).

How it was checked (tests/analysis/test_study_kernels.py, float64): :func:`push` equals
the closed form and ``jacfwd`` of the autograd update map (step, ``J Q`` and loss to
1e-12, tanh and ReLU); :func:`qr` equals LAPACK's Householder QR with positive diagonal
(1e-12) and stays a valid QR of rank-deficient matrices; :func:`solve_normalize` equals
``torch.linalg.solve_triangular`` plus normalisation (triangular and full ``C``);
:func:`gd` equals 25 closed-form steps (1e-11); :func:`push_qr` equals :func:`push` then
:func:`qr`, and any thread count gives the same bits; a whole study with
``backend: numba`` equals ``backend: torch`` to 1e-9 in the losses and FTLEs of every
network, and in the CLVs and final losses of >= 99 % of them (the others are networks
whose outcome depends on rounding: a plateau exit, or the most contracting CLV of a
near-degenerate pair).

Everything is compiled on first use (~5 s; then loaded from numba's disk cache) and runs
on the CPU in the arrays' dtype (float64 or float32); networks are independent, so the
results do not depend on ``B``, on ``threads`` or on the order of the networks.
"""

from __future__ import annotations

import importlib.util
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: whether numba is installed (a dependency of the package; the torch path is the
#: fallback and the GPU path). It is imported, and the kernels compiled (or loaded from
#: numba's disk cache), at the first call, not at import: config validation imports this
#: module in every job, and ``import numba`` alone costs ~0.3 s.
AVAILABLE = importlib.util.find_spec("numba") is not None

#: size of the study's state and tangent panels (9 parameters, 9 exponents); a module
#: constant, so the compiled loops have fixed trip counts and are unrolled (~2x faster)
P = 9

# the compiled functions, inner ones first (numba resolves the globals an outer kernel
# calls when it compiles it)
_KERNELS = ("_hidden", "_reflect", "_push_work", "_qr_work", "_push_one", "_qr_one", "_push",
            "_qr", "_push_qr", "_solve_normalize", "_loss", "_gd")
_INLINE = ("_hidden", "_reflect", "_push_work", "_qr_work")
_compiled = False


def _ensure_compiled() -> None:
    """Replace the kernels' Python definitions by numba dispatchers (once)."""
    global _compiled
    if _compiled:
        return
    if not AVAILABLE:  # pragma: no cover - numba is a dependency
        raise RuntimeError("study.backend: 'numba' needs the numba package (pip install numba)")
    import numba
    g = globals()
    for name in _KERNELS:
        # 'contract' lets LLVM fuse a*b+c into FMAs (1.5x on the QR); no reassociation, so
        # the summation order is the written one and results are reproducible bit for bit.
        # The small helpers are inlined at numba's IR level (as separate functions the
        # fused step measured 1.3-1.8x slower)
        inline = "always" if name in _INLINE else "never"
        g[name] = numba.njit(cache=True, fastmath={"contract"}, nogil=True,
                             inline=inline)(g[name])
    _compiled = True


def _hidden(w, x0, x1, relu):  # pragma: no cover - compiled
    """The two hidden units at input ``(x0, x1)``: activations ``a``, ``s'`` and ``s''``."""
    z0 = w[0] * x0 + w[1] * x1 + w[4]
    z1 = w[2] * x0 + w[3] * x1 + w[5]
    if relu:
        a0 = z0 if z0 > 0.0 else 0.0
        a1 = z1 if z1 > 0.0 else 0.0
        d0 = 1.0 if z0 > 0.0 else 0.0
        d1 = 1.0 if z1 > 0.0 else 0.0
        return a0, a1, d0, d1, 0.0 * d0, 0.0 * d1
    a0 = math.tanh(z0)
    a1 = math.tanh(z1)
    d0 = 1.0 - a0 * a0
    d1 = 1.0 - a1 * a1
    return a0, a1, d0, d1, -2.0 * a0 * d0, -2.0 * a1 * d1


def _push_one(w, Q, X, Y, lr, relu, w_out, A_out, H, g, grad, u):  # pragma: no cover
    """One network: ``w_out = w - lr grad L``, ``A_out = J Q``; returns ``L(w)``."""
    N = X.shape[0]
    for i in range(P):
        grad[i] = 0.0
        for j in range(P):
            H[i, j] = 0.0
    sq = 0.0
    v0 = w[6]
    v1 = w[7]
    for n in range(N):
        x0 = X[n, 0]
        x1 = X[n, 1]
        a0, a1, d0, d1, e0, e1 = _hidden(w, x0, x1, relu)
        r = v0 * a0 + v1 * a1 + w[8] - Y[n]
        sq += r * r
        # g_n = grad_w f(x_n)
        g[0] = v0 * d0 * x0
        g[1] = v0 * d0 * x1
        g[2] = v1 * d1 * x0
        g[3] = v1 * d1 * x1
        g[4] = v0 * d0
        g[5] = v1 * d1
        g[6] = a0
        g[7] = a1
        g[8] = 1.0
        for i in range(P):
            grad[i] += r * g[i]
            gi = g[i]
            for j in range(P):
                H[i, j] += gi * g[j]
        # r_n d^2 f(x_n): hidden block of each unit and its coupling to v_j
        u[0] = x0
        u[1] = x1
        u[2] = 1.0
        c0 = r * v0 * e0
        c1 = r * v1 * e1
        for p in range(3):
            ip0 = 0 if p == 0 else (1 if p == 1 else 4)
            ip1 = 2 if p == 0 else (3 if p == 1 else 5)
            for q in range(3):
                iq0 = 0 if q == 0 else (1 if q == 1 else 4)
                iq1 = 2 if q == 0 else (3 if q == 1 else 5)
                H[ip0, iq0] += c0 * u[p] * u[q]
                H[ip1, iq1] += c1 * u[p] * u[q]
            H[6, ip0] += r * d0 * u[p]
            H[ip0, 6] += r * d0 * u[p]
            H[7, ip1] += r * d1 * u[p]
            H[ip1, 7] += r * d1 * u[p]
    scale = lr / N
    for i in range(P):
        w_out[i] = w[i] - scale * grad[i]
    # A = (I - lr H / N) Q
    for i in range(P):
        for m in range(P):
            acc = 0.0
            for j in range(P):
                acc += H[i, j] * Q[j, m]
            A_out[i, m] = Q[i, m] - scale * acc
    return 0.5 * sq / N


def _reflect(V, j, beta, M, c0):  # pragma: no cover - compiled
    """Apply the reflection ``H_j = I - beta v_j v_j^T`` (``v_j`` = row ``j`` of ``V``, zero
    before entry ``j``) to the columns ``c0 ..`` of a matrix stored by rows in ``M``."""
    for c in range(c0, P):
        s = 0.0
        for i in range(j, P):
            s += V[j, i] * M[c, i]
        s *= beta
        for i in range(j, P):
            M[c, i] -= s * V[j, i]


def _qr_one(A, Q_out, R_out, V, Rw, Qt, beta, sgn):  # pragma: no cover - compiled
    """Householder QR with positive diagonal of one 9x9 ``A`` (rows of the work arrays
    are columns, so the inner loops run over contiguous memory)."""
    for i in range(P):
        for j in range(P):
            Rw[j, i] = A[i, j]
    for j in range(P):
        nrm2 = 0.0
        for i in range(j, P):
            nrm2 += Rw[j, i] * Rw[j, i]
        nrm = math.sqrt(nrm2)
        x0 = Rw[j, j]
        alpha = -nrm if x0 >= 0.0 else nrm  # R_jj = alpha, v = x - alpha e_j
        for i in range(j, P):
            V[j, i] = Rw[j, i]
        V[j, j] = x0 - alpha
        vnorm2 = nrm2 - x0 * x0 + V[j, j] * V[j, j]
        beta[j] = 2.0 / vnorm2 if vnorm2 > 0.0 else 0.0
        Rw[j, j] = alpha
        _reflect(V, j, beta[j], Rw, j + 1)  # H_j on the remaining columns
        sgn[j] = -1.0 if alpha < 0.0 else 1.0
    # Q = H_0 ... H_{P-1} I, then the signs that make R_jj >= 0
    for c in range(P):
        for i in range(P):
            Qt[c, i] = 1.0 if i == c else 0.0
    for j in range(P - 1, -1, -1):
        _reflect(V, j, beta[j], Qt, j)
    for i in range(P):
        for j in range(P):
            Q_out[i, j] = Qt[j, i] * sgn[j]
    for i in range(P):
        for j in range(P):
            R_out[i, j] = Rw[j, i] * sgn[i] if j >= i else 0.0


def _push_work(like):  # pragma: no cover - compiled
    """Workspace of :func:`_push_one` (``H``, ``g``, ``grad``, ``u``) in ``like``'s dtype."""
    dt = like.dtype
    return np.empty((P, P), dtype=dt), np.empty(P, dtype=dt), np.empty(P, dtype=dt), \
        np.empty(3, dtype=dt)


def _qr_work(like):  # pragma: no cover - compiled
    """Workspace of :func:`_qr_one` (``V``, ``Rw``, ``Qt``, ``beta``, ``sgn``)."""
    dt = like.dtype
    return np.empty((P, P), dtype=dt), np.empty((P, P), dtype=dt), \
        np.empty((P, P), dtype=dt), np.empty(P, dtype=dt), np.empty(P, dtype=dt)


def _push(W, Q, X, Y, lr, relu, W_out, A_out, loss_out):  # pragma: no cover - compiled
    H, g, grad, u = _push_work(W)
    for b in range(W.shape[0]):
        loss_out[b] = _push_one(W[b], Q[b], X, Y, lr, relu, W_out[b], A_out[b], H, g, grad, u)


def _qr(A, Q_out, R_out):  # pragma: no cover - compiled
    V, Rw, Qt, beta, sgn = _qr_work(A)
    for b in range(A.shape[0]):
        _qr_one(A[b], Q_out[b], R_out[b], V, Rw, Qt, beta, sgn)


def _push_qr(W, Q, X, Y, lr, relu, W_out, Q_out, R_out, loss_out):  # pragma: no cover
    H, g, grad, u = _push_work(W)
    V, Rw, Qt, beta, sgn = _qr_work(W)
    A = np.empty((P, P), dtype=W.dtype)  # J Q of one network, never leaves the cache
    for b in range(W.shape[0]):
        loss_out[b] = _push_one(W[b], Q[b], X, Y, lr, relu, W_out[b], A, H, g, grad, u)
        _qr_one(A, Q_out[b], R_out[b], V, Rw, Qt, beta, sgn)


def _solve_normalize(R, C, C_out, n_out):  # pragma: no cover - compiled
    B = R.shape[0]
    x = np.empty(P, dtype=R.dtype)
    inv = np.empty(P, dtype=R.dtype)
    for b in range(B):
        for i in range(P):
            inv[i] = 1.0 / R[b, i, i]
        for c in range(P):
            # rows below the last nonzero of column c stay exactly zero (R^{-1} is upper
            # triangular; Ginelli's C is), so the substitution starts there
            top = P - 1
            while top > 0 and C[b, top, c] == 0.0:
                x[top] = 0.0
                top -= 1
            for i in range(top, -1, -1):
                s = C[b, i, c]
                for j in range(i + 1, top + 1):
                    s -= R[b, i, j] * x[j]
                x[i] = s * inv[i]
            nrm2 = 0.0
            for i in range(P):
                nrm2 += x[i] * x[i]
            nrm = math.sqrt(nrm2)
            n_out[b, c] = nrm
            r = 1.0 / nrm
            for i in range(P):
                C_out[b, i, c] = x[i] * r


def _loss(W, X, Y, relu, out):  # pragma: no cover - compiled
    B = W.shape[0]
    N = X.shape[0]
    for b in range(B):
        sq = 0.0
        for n in range(N):
            a0, a1, _, _, _, _ = _hidden(W[b], X[n, 0], X[n, 1], relu)
            r = W[b, 6] * a0 + W[b, 7] * a1 + W[b, 8] - Y[n]
            sq += r * r
        out[b] = 0.5 * sq / N


def _gd(W, X, Y, lr, relu, n_steps, W_out):  # pragma: no cover - compiled
    """``n_steps`` plain gradient-descent steps of every network (the loop over steps is
    inside the loop over networks: each network's 9 parameters stay in registers)."""
    N = X.shape[0]
    scale = lr / N
    w = np.empty(P, dtype=W.dtype)
    grad = np.empty(P, dtype=W.dtype)
    for b in range(W.shape[0]):
        for i in range(P):
            w[i] = W[b, i]
        for _ in range(n_steps):
            for i in range(P):
                grad[i] = 0.0
            for n in range(N):
                x0 = X[n, 0]
                x1 = X[n, 1]
                a0, a1, d0, d1, _, _ = _hidden(w, x0, x1, relu)
                r = w[6] * a0 + w[7] * a1 + w[8] - Y[n]
                q0 = r * w[6] * d0
                q1 = r * w[7] * d1
                grad[0] += q0 * x0
                grad[1] += q0 * x1
                grad[2] += q1 * x0
                grad[3] += q1 * x1
                grad[4] += q0
                grad[5] += q1
                grad[6] += r * a0
                grad[7] += r * a1
                grad[8] += r
            for i in range(P):
                w[i] -= scale * grad[i]
        for i in range(P):
            W_out[b, i] = w[i]


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _run(kernel, threads: int, args: tuple, batched: tuple) -> None:
    """Run ``kernel(*args)`` on ``threads`` contiguous slices of the networks at once.

    The kernels release the GIL (``nogil``) and every network is independent, so each
    thread gets a slice of the leading (network) axis of the ``batched`` arguments; the
    results do not depend on ``threads``.
    """
    B = next(a.shape[0] for a, bt in zip(args, batched) if bt)
    threads = max(1, min(int(threads), B // 256 or 1))
    if threads == 1:
        kernel(*args)
        return
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="study")
    edges = np.linspace(0, B, threads + 1).astype(int)
    futs = [pool.submit(kernel, *[a[lo:hi] if bt else a for a, bt in zip(args, batched)])
            for lo, hi in zip(edges[:-1], edges[1:])]
    for f in futs:
        f.result()


def _check(name: str, a: np.ndarray, shape: tuple) -> np.ndarray:
    if a.ndim != len(shape) or any(s is not None and d != s for d, s in zip(a.shape, shape)):
        raise ValueError(f"study_kernels.{name}: expected shape {shape} (None: any), "
                         f"got {a.shape}")
    return np.ascontiguousarray(a)


def push(W: np.ndarray, Q: np.ndarray, X: np.ndarray, Y: np.ndarray, lr: float,
         relu: bool, threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One gradient-descent step of ``B`` 2-2-1 networks with its tangent push.

    Args:
        W: ``(B, 9)`` parameters (float64 or float32).
        Q: ``(B, 9, 9)`` tangent vectors.
        X: ``(N, 2)`` inputs; Y: ``(N,)`` targets (``W``'s dtype).
        lr: learning rate.
        relu: ReLU hidden units (else tanh).
        threads: threads sharing the networks.

    Returns:
        ``(W' (B, 9), A (B, 9, 9), loss (B,))``: ``W - lr grad L(W)``, ``J(W) Q`` and
        ``L(W)``.
    """
    _ensure_compiled()
    W = _check("push W", W, (None, P))
    Q = _check("push Q", Q, (W.shape[0], P, P))
    W_out = np.empty_like(W)
    A_out = np.empty_like(Q)
    loss = np.empty(W.shape[0], dtype=W.dtype)
    X = np.ascontiguousarray(X, dtype=W.dtype)
    Y = np.ascontiguousarray(Y, dtype=W.dtype)
    _run(_push, threads, (W, Q, X, Y, W.dtype.type(lr), bool(relu), W_out, A_out, loss),
         (True, True, False, False, False, False, True, True, True))
    return W_out, A_out, loss


def push_qr(W: np.ndarray, Q: np.ndarray, X: np.ndarray, Y: np.ndarray, lr: float,
            relu: bool, threads: int = 1
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`push` and :func:`qr` of its ``J Q`` in one pass (``J Q`` never leaves the
    cache).

    Returns:
        ``(W' (B, 9), Q' (B, 9, 9), R (B, 9, 9), loss (B,))`` with ``Q' R = J(W) Q`` and
        ``loss = L(W)``.
    """
    _ensure_compiled()
    W = _check("push_qr W", W, (None, P))
    Q = _check("push_qr Q", Q, (W.shape[0], P, P))
    W_out, Q_out, R_out = np.empty_like(W), np.empty_like(Q), np.empty_like(Q)
    loss = np.empty(W.shape[0], dtype=W.dtype)
    X = np.ascontiguousarray(X, dtype=W.dtype)
    Y = np.ascontiguousarray(Y, dtype=W.dtype)
    _run(_push_qr, threads,
         (W, Q, X, Y, W.dtype.type(lr), bool(relu), W_out, Q_out, R_out, loss),
         (True, True, False, False, False, False, True, True, True, True))
    return W_out, Q_out, R_out, loss


def qr(A: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Householder QR with ``R_ii >= 0`` of every 9x9 matrix of ``A (B, 9, 9)``
    (on ``threads`` threads).

    Returns:
        ``Q (B, 9, 9)`` orthogonal, ``R (B, 9, 9)`` upper triangular with ``Q R = A``.
    """
    _ensure_compiled()
    A = _check("qr A", A, (None, P, P))
    Q = np.empty_like(A)
    R = np.empty_like(A)
    _run(_qr, threads, (A, Q, R), (True, True, True))
    return Q, R


def solve_normalize(R: np.ndarray, C: np.ndarray, threads: int = 1
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``C' = R^{-1} C`` (back substitution per network) with unit columns.

    Args:
        R: ``(B, 9, 9)`` upper triangular with a nonzero diagonal.
        C: ``(B, 9, 9)``.
        threads: threads sharing the networks.

    Returns:
        ``(C' (B, 9, 9), norms (B, 9))``: the normalised columns and the column norms of
        ``R^{-1} C`` before normalisation.
    """
    _ensure_compiled()
    R = _check("solve_normalize R", R, (None, P, P))
    C = _check("solve_normalize C", C, (R.shape[0], P, P))
    out = np.empty_like(C)
    n = np.empty(C.shape[:2], dtype=C.dtype)
    _run(_solve_normalize, threads, (R, C, out, n), (True, True, True, True))
    return out, n


def loss(W: np.ndarray, X: np.ndarray, Y: np.ndarray, relu: bool, threads: int = 1
         ) -> np.ndarray:
    """``(B,)`` losses ``1/(2N) sum_n r_n^2`` of ``W (B, 9)`` (as :func:`push`'s third
    output)."""
    _ensure_compiled()
    W = _check("loss W", W, (None, P))
    out = np.empty(W.shape[0], dtype=W.dtype)
    _run(_loss, threads, (W, np.ascontiguousarray(X, dtype=W.dtype),
                          np.ascontiguousarray(Y, dtype=W.dtype), bool(relu), out),
         (True, False, False, False, True))
    return out


def gd(W: np.ndarray, X: np.ndarray, Y: np.ndarray, lr: float, relu: bool, steps: int,
       threads: int = 1) -> np.ndarray:
    """``steps`` plain gradient-descent steps ``w <- w - lr grad L(w)`` of ``W (B, 9)``
    (as ``steps`` calls of :func:`push`'s first output; equal to rounding)."""
    _ensure_compiled()
    W = _check("gd W", W, (None, P))
    out = np.empty_like(W)
    _run(_gd, threads, (W, np.ascontiguousarray(X, dtype=W.dtype),
                        np.ascontiguousarray(Y, dtype=W.dtype), W.dtype.type(lr), bool(relu),
                        int(steps), out),
         (True, False, False, False, False, False, True))
    return out
