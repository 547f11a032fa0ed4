"""Koopman spectra of trajectories and spectral distances between them (conjugacy tests).

What it computes: the eigenvalues of a finite-dimensional approximation of the Koopman
operator of a discrete dynamical system x_{t+1} = F(x_t), from sampled trajectories, by
exact dynamic mode decomposition (DMD; Tu et al. 2014) on time-delayed (Hankel)
observables, pooled over several initial conditions; and the 1-Wasserstein distance between
two such spectra, used by Redman et al. (NeurIPS 2024, "Identifying equivalent training
dynamics") to call two training dynamics conjugate when it is small. Topologically
conjugate maps (F = h^-1 o G o h) share their Koopman eigenvalues, so the distance is
invariant to a change of coordinates while distances between trajectories are not.

Pieces:

* :func:`delay_embed` and :func:`snapshot_pairs`: Hankel embedding, row t holding
  x_t, x_{t+1}, ..., x_{t+n_delays}; snapshot pairs (z_t, z_{t+1}) pooled over N
  trajectories.
* :func:`koopman_eigenvalues`: exact DMD. With X, Y of shape (n_obs, M) (columns are pairs)
  and the truncated SVD X = U_r S_r V_r^*, the reduced operator is
  A_r = U_r^* Y V_r S_r^-1 (r x r); its eigenvalues are the Koopman eigenvalues and the
  exact modes are Y V_r S_r^-1 w / lambda. The rank r is all numerically nonzero singular
  values (None), a fixed count (int) or the smallest r holding a fraction of the energy
  sum(s^2) (float in (0, 1)).
* :func:`spectral_distance`: W1 between the uniform measures on two eigenvalue sets in the
  complex plane (Euclidean ground metric). Equal counts: the mean cost of the optimal
  assignment (scipy.optimize.linear_sum_assignment); unequal counts: the optimal transport
  with marginals 1/n and 1/m by POT's network simplex (``ot.emd``), equal to the dense
  linear program (scipy.optimize.linprog, kept as ``method="linprog"``) to 1e-12.
* :func:`check_spectrum`: rejects spectra too small, not finite, or collapsed (all
  eigenvalues within ``tol`` of 1, or all of modulus below ``tol``), which would make every
  distance small and any conjugacy claim vacuous.
* :func:`conjugacy_test`: a permutation test between two groups of spectra of independent
  replicates (runs that should be conjugate: different seeds or independent baselines, or
  disjoint subsets of initial conditions, of one setting; perturbed copies of one baseline
  are pseudo-replicates and make any difference significant). Statistic: mean
  between-group W1 minus mean within-group W1; the group labels are permuted, exactly
  (every split) when there are few splits, else at random
  (:mod:`pathdep.analysis.koopman_stats`); the p-value comes with its floor. A small
  p-value says the settings are not conjugate (their spectra differ by more than
  replicates of one setting do). The authors' public
  script instead swaps matched eigenvalues between the two spectra, which leaves the
  optimal assignment cost unchanged (p = 1 always); we do not copy it.
* :func:`window_bounds` and :func:`windowed_spectra`: Redman et al.'s CNN study (LeNet-5,
  sec. 4.3): the evenly sampled series is cut into consecutive windows of training steps
  (fixed size and stride, or one epoch each), one spectrum per window pooled over the N
  trajectories, and the (W, W) matrix of W1 between windows; a change of training regime
  shows as a block structure (small W1 within a regime, large across).

How it was checked: tests/analysis/test_koopman.py: a linear system's eigenvalues are
recovered to 1e-10 (with and without delays, pooled over initial conditions); the map
x1' = a x1, x2' = b x2 + c x1^2 with observables [x1, x2, x1^2] gives exactly {a, b, a^2};
delay-embedding a nonlinear change of coordinates of a linear system (y = x + 0.1 x^3 needs
a dictionary; we use the invariant subspace of a polynomial map and a conjugate map) leaves
the spectrum unchanged while trajectories differ; W1 is 0 on a set with itself, symmetric,
and equals hand-computed values for equal and unequal counts; the permutation test gives
a large p for replicates of one system and a small one for two different systems; a
trajectory switching between two linear maps at a known step gives window spectra equal to
each map's eigenvalues (1e-8), W1 ~ 0 within a regime and W1(eig A, eig B) across.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment, linprog

from pathdep.analysis.koopman_stats import permutation_pvalue


class DegenerateSpectrumError(ValueError):
    """A spectrum that cannot support a conjugacy claim (too few, not finite, collapsed)."""


def delay_embed(trajectories: np.ndarray, n_delays: int = 0) -> np.ndarray:
    """Hankel (time-delay) embedding of each trajectory.

    Args:
        trajectories: (N, T, D) states (N initial conditions, T times, D observables).
        n_delays: extra delayed copies; 0 returns the input.

    Returns:
        (N, T - n_delays, (n_delays + 1) * D): row t of trajectory n holds
        x_t, x_{t+1}, ..., x_{t+n_delays} (each D long, in that order).
    """
    x = np.asarray(trajectories)
    if x.ndim != 3:
        raise ValueError(f"trajectories: expected shape (N, T, D), got {x.shape}")
    n_delays = int(n_delays)
    if n_delays < 0:
        raise ValueError(f"n_delays: expected >= 0, got {n_delays}")
    n, t, d = x.shape
    if t - n_delays < 2:
        raise ValueError(f"trajectories: {t} times leave fewer than 2 rows after {n_delays} delays")
    return np.concatenate([x[:, k:t - n_delays + k, :] for k in range(n_delays + 1)], axis=2)


def snapshot_pairs(trajectories: np.ndarray, n_delays: int = 0,
                   observable: Callable[[np.ndarray], np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Snapshot matrices of the (observed, delay-embedded) trajectories.

    Args:
        trajectories: (N, T, D) states.
        n_delays: delays of :func:`delay_embed`.
        observable: maps an (N, T, D) array to (N, T, D') observables, applied before the
            embedding (None: the state itself).

    Returns:
        X, Y of shape (M, n_obs) with M = N (T - n_delays - 1) pairs pooled over the N
        trajectories (trajectory-major) and n_obs = (n_delays + 1) D': Y[i] follows X[i].
    """
    x = np.asarray(trajectories, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"trajectories: expected shape (N, T, D), got {x.shape}")
    if observable is not None:
        x = np.asarray(observable(x), dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"observable: expected an (N, T, D') result, got shape {x.shape}")
    z = delay_embed(x, n_delays)
    n_obs = z.shape[2]
    return z[:, :-1, :].reshape(-1, n_obs), z[:, 1:, :].reshape(-1, n_obs)


def choose_rank(s: np.ndarray, rank: int | float | None, n_rows: int) -> int:
    """Truncation rank from singular values ``s`` (descending).

    Args:
        s: (k,) singular values of the snapshot matrix.
        rank: None (every numerically nonzero value: s > s_0 max(shape) eps), an int (that
            many, capped at the numerical rank) or a float in (0, 1) (smallest r with
            sum(s[:r]^2) >= rank sum(s^2)).
        n_rows: the larger dimension of the snapshot matrix (for the tolerance).

    Returns:
        r >= 1.
    """
    s = np.asarray(s, dtype=np.float64)
    if s.size == 0 or not s[0] > 0:
        raise DegenerateSpectrumError("snapshot matrix is zero: no Koopman spectrum")
    tol = s[0] * max(n_rows, s.size) * np.finfo(np.float64).eps
    numerical = int(np.sum(s > tol))
    if rank is None:
        return numerical
    if isinstance(rank, (bool, np.bool_)):
        raise ValueError(f"rank: expected None, an int >= 1 or a float in (0, 1), got {rank!r}")
    if isinstance(rank, (int, np.integer)):
        if rank < 1:
            raise ValueError(f"rank: expected an int >= 1, got {rank}")
        return min(int(rank), numerical)
    rank = float(rank)
    if not 0.0 < rank < 1.0:
        raise ValueError(f"rank: an energy fraction must lie in (0, 1), got {rank}")
    energy = np.cumsum(s ** 2) / np.sum(s ** 2)
    return min(int(np.searchsorted(energy, rank) + 1), numerical)


def koopman_eigenvalues(trajectories: np.ndarray, n_delays: int = 0,
                        rank: int | float | None = None,
                        observable: Callable[[np.ndarray], np.ndarray] | None = None,
                        return_modes: bool = False):
    """Koopman eigenvalues by exact DMD on time-delayed observables (Redman et al. 2024).

    Args:
        trajectories: (N, T, D) states of N trajectories (initial conditions) sampled at the
            same T steps.
        n_delays: Hankel delays: (n_delays + 1) D' observables per snapshot.
        rank: SVD truncation (see :func:`choose_rank`): None = full numerical rank, int =
            that many modes, float in (0, 1) = energy fraction.
        observable: optional (N, T, D) -> (N, T, D') map applied before the embedding.
        return_modes: also return the exact DMD modes.

    Returns:
        (r,) complex eigenvalues sorted by descending modulus (then by angle); with
        ``return_modes`` also (n_obs, r) complex modes in the same order.
    """
    xm, ym = snapshot_pairs(trajectories, n_delays, observable)
    if not (np.all(np.isfinite(xm)) and np.all(np.isfinite(ym))):
        raise DegenerateSpectrumError("trajectories contain NaN or inf: no Koopman spectrum")
    x, y = xm.T, ym.T                                   # (n_obs, M): columns are snapshots
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    r = choose_rank(s, rank, max(x.shape))
    u, s, v = u[:, :r], s[:r], vh[:r].conj().T
    yv_sinv = (y @ v) / s                               # (n_obs, r)
    a = u.conj().T @ yv_sinv                            # (r, r) reduced Koopman operator
    lam, w = np.linalg.eig(a)
    order = np.lexsort((np.angle(lam), -np.abs(lam)))
    lam, w = lam[order], w[:, order]
    if not return_modes:
        return lam
    with np.errstate(divide="ignore", invalid="ignore"):
        modes = np.where(np.abs(lam) > 0, (yv_sinv @ w) / lam, u @ w)
    return lam, modes


def _points(ev) -> np.ndarray:
    z = np.asarray(ev, dtype=np.complex128).ravel()
    if z.size == 0:
        raise ValueError("spectral_distance: an eigenvalue set is empty")
    return np.stack([z.real, z.imag], axis=1)


def transport_plan(ev_a, ev_b, method: str = "auto") -> tuple[float, np.ndarray]:
    """Optimal transport between uniform measures on two eigenvalue sets.

    Args:
        ev_a: (n,) complex eigenvalues.
        ev_b: (m,) complex eigenvalues.
        method: ``"auto"`` (equal counts: the optimal assignment, scipy's
            ``linear_sum_assignment``; unequal counts: POT's network simplex ``ot.emd``),
            ``"emd"`` (network simplex for any counts) or ``"linprog"`` (the dense
            transport linear program through scipy's HiGHS; n m variables, the slow
            reference). All three give the same W1 to 1e-12 (tests/analysis/test_koopman.py).

    Returns:
        (W1, plan): W1 = sum_ij P_ij |a_i - b_j| and the (n, m) plan P (rows sum to 1/n,
        columns to 1/m).
    """
    if method not in ("auto", "emd", "linprog"):
        raise ValueError(f"method: expected auto, emd or linprog, got {method!r}")
    pa, pb = _points(ev_a), _points(ev_b)
    cost = np.linalg.norm(pa[:, None, :] - pb[None, :, :], axis=2)
    n, m = cost.shape
    if method == "auto" and n == m:
        rows, cols = linear_sum_assignment(cost)
        plan = np.zeros((n, m))
        plan[rows, cols] = 1.0 / n
        return float(cost[rows, cols].mean()), plan
    plan = _linprog_plan(cost) if method == "linprog" else _emd_plan(cost)
    return float(np.sum(plan * cost)), plan


def _emd_plan(cost: np.ndarray) -> np.ndarray:
    """(n, m) optimal plan by the network simplex (POT, Bonneel et al. 2011)."""
    import os

    # POT probes every array backend it can import (TensorFlow, JAX, torch: ~15 s when installed);
    # the solver works on numpy arrays, so those probes are switched off.
    for key in ("POT_BACKEND_DISABLE_TENSORFLOW", "POT_BACKEND_DISABLE_JAX", "POT_BACKEND_DISABLE_CUPY",
                "POT_BACKEND_DISABLE_PYTORCH"):
        os.environ.setdefault(key, "1")
    import ot

    n, m = cost.shape
    plan, log = ot.emd(np.full(n, 1.0 / n), np.full(m, 1.0 / m), np.ascontiguousarray(cost),
                       numItermax=max(100_000, 50 * n * m), log=True)
    if log["result_code"] != 1:
        raise RuntimeError(f"spectral_distance: optimal transport failed ({log['warning']})")
    return plan


def _linprog_plan(cost: np.ndarray) -> np.ndarray:
    """(n, m) optimal plan of min <C, P> with P 1 = 1/n, P^T 1 = 1/m, P >= 0 (HiGHS)."""
    n, m = cost.shape
    a_eq = np.zeros((n + m, n * m))
    for i in range(n):
        a_eq[i, i * m:(i + 1) * m] = 1.0
    for j in range(m):
        a_eq[n + j, j::m] = 1.0
    b_eq = np.concatenate([np.full(n, 1.0 / n), np.full(m, 1.0 / m)])
    res = linprog(cost.ravel(), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"spectral_distance: optimal transport failed ({res.message})")
    return res.x.reshape(n, m)


def spectral_distance(ev_a, ev_b) -> float:
    """1-Wasserstein distance between the uniform measures on two eigenvalue sets.

    Args:
        ev_a: (n,) complex eigenvalues.
        ev_b: (m,) complex eigenvalues (m may differ from n).

    Returns:
        W1 with the Euclidean metric of the complex plane (equal counts: mean cost of the
        optimal one-to-one assignment).
    """
    return transport_plan(ev_a, ev_b)[0]


def check_spectrum(ev, min_count: int = 2, tol: float = 1e-3, name: str = "spectrum") -> np.ndarray:
    """Reject a spectrum that cannot support a conjugacy claim.

    Args:
        ev: (r,) complex eigenvalues.
        min_count: fewest eigenvalues accepted.
        tol: collapse tolerance: all |lambda - 1| < tol (every mode is a near-constant
            observable) or all |lambda| < tol (everything decays in one step) is rejected.
        name: used in the message.

    Returns:
        The eigenvalues as a complex array.

    Raises:
        DegenerateSpectrumError: one line naming ``name`` and the reason.
    """
    z = np.asarray(ev, dtype=np.complex128).ravel()
    if z.size < min_count:
        raise DegenerateSpectrumError(f"{name}: {z.size} eigenvalue(s), fewer than {min_count}")
    if not np.all(np.isfinite(z)):
        raise DegenerateSpectrumError(f"{name}: eigenvalues are not finite")
    if np.all(np.abs(z - 1.0) < tol):
        raise DegenerateSpectrumError(f"{name}: collapsed: all {z.size} eigenvalues within {tol:g} of 1")
    if np.all(np.abs(z) < tol):
        raise DegenerateSpectrumError(f"{name}: collapsed: all {z.size} eigenvalues within {tol:g} of 0")
    return z


def distance_matrix(spectra: Sequence[np.ndarray]) -> np.ndarray:
    """(S, S) symmetric matrix of pairwise W1 between S spectra (zero diagonal)."""
    s = len(spectra)
    d = np.zeros((s, s))
    for i in range(s):
        for j in range(i + 1, s):
            d[i, j] = d[j, i] = spectral_distance(spectra[i], spectra[j])
    return d


def conjugacy_test(spectra_a: Sequence[np.ndarray], spectra_b: Sequence[np.ndarray],
                   n_perm: int = 1000, seed: int = 0, check: bool = True,
                   tol: float = 1e-3) -> dict:
    """Permutation test of conjugacy between two settings, from replicate spectra of each.

    The null distribution of W1 comes from replicates that should be conjugate and are
    independent (different seeds or independent baselines, or disjoint sets of initial
    conditions, of one setting; never perturbed copies of one baseline). Statistic: mean
    between-setting W1 minus mean within-setting W1; its null distribution relabels the
    pooled spectra (:func:`pathdep.analysis.koopman_stats.permutation_pvalue`: every split
    when there are at most ``MAX_EXACT``, p = #{stat_split >= stat} / #splits; else
    ``n_perm`` random ones, p = (1 + #{stat_perm >= stat}) / (1 + n_perm)).

    Args:
        spectra_a: >= 2 spectra (each (r,) complex) of setting A.
        spectra_b: >= 2 spectra of setting B.
        n_perm: random splits when the test is not exact.
        seed: permutation RNG seed.
        check: apply :func:`check_spectrum` to every spectrum first.
        tol: its collapse tolerance.

    Returns:
        dict with ``w1_between`` (mean W1 between settings), ``w1_within_a``,
        ``w1_within_b``, ``w1_within`` (mean over within-setting pairs), ``statistic``,
        ``p_value`` (small: not conjugate), ``p_method`` (exact / monte_carlo), ``p_min``
        (exact: smallest attainable p, e.g. 1/10 for 3 vs 3; Monte Carlo: 1/(1 + n_perm)),
        ``n_perm`` (splits evaluated), ``distances`` ((S, S) matrix, A's spectra first).
    """
    if len(spectra_a) < 2 or len(spectra_b) < 2:
        raise ValueError("conjugacy_test: need >= 2 replicate spectra per setting for a null "
                         f"(got {len(spectra_a)} and {len(spectra_b)})")
    spectra = list(spectra_a) + list(spectra_b)
    if check:
        spectra = [check_spectrum(s, name=f"spectrum {i}", tol=tol) for i, s in enumerate(spectra)]
    d = distance_matrix(spectra)
    na = len(spectra_a)
    t = permutation_pvalue(d, na, n_perm=n_perm, seed=seed)
    iu_a = np.triu_indices(na, 1)
    iu_b = np.triu_indices(len(spectra_b), 1)
    return {"w1_between": t["w1_between"], "w1_within": t["w1_within"],
            "w1_within_a": float(d[:na, :na][iu_a].mean()),
            "w1_within_b": float(d[na:, na:][iu_b].mean()),
            "statistic": t["statistic"], "p_value": t["p_value"], "p_method": t["p_method"],
            "p_min": t["p_min"], "n_perm": t["n_splits"], "distances": d}


def window_bounds(steps: np.ndarray, size: int, stride: int | None = None, need: int = 3
                  ) -> list[tuple[int, int, int, int]]:
    """Consecutive windows of training steps over an evenly sampled series.

    Window j covers the training steps [s_0 + j stride, s_0 + j stride + size) (half-open,
    s_0 = ``steps[0]``); it is kept only if the series reaches its last step (complete
    windows) and it holds at least ``need`` samples.

    Args:
        steps: (T,) increasing training steps of the samples.
        size: window length in training steps (>= 1).
        stride: step between window starts (None: ``size``, non-overlapping windows).
        need: fewest samples in a window.

    Returns:
        One (i0, i1, start_step, stop_step) per window: samples ``i0:i1`` of the series,
        training steps [start_step, stop_step).
    """
    steps = np.asarray(steps)
    size = int(size)
    stride = size if stride is None else int(stride)
    if size < 1 or stride < 1:
        raise ValueError(f"koopman.windows: size and stride must be >= 1 steps, got {size}, {stride}")
    if steps.ndim != 1 or steps.size == 0:
        raise ValueError("koopman.windows: no samples to cut into windows")
    out, start = [], int(steps[0])
    while start + size - 1 <= int(steps[-1]):
        i0, i1 = np.searchsorted(steps, [start, start + size], side="left")
        if i1 - i0 >= need:
            out.append((int(i0), int(i1), start, start + size))
        start += stride
    return out


def windowed_spectra(trajectories: np.ndarray, bounds: Sequence[tuple[int, int]], n_delays: int = 0,
                     rank: int | float | None = None, tol: float = 1e-3, name: str = "window"
                     ) -> tuple[list[np.ndarray | None], list[str], np.ndarray]:
    """One Koopman spectrum per window of time, pooled over trajectories, and W1 between windows.

    Args:
        trajectories: (N, T, D) evenly sampled observables of N trajectories (e.g. the
            members of one run).
        bounds: (W,) windows as (i0, i1, ...) index ranges into the T axis (extra items,
            such as the step range of :func:`window_bounds`, are ignored).
        n_delays, rank: as in :func:`koopman_eigenvalues`.
        tol: collapse tolerance of :func:`check_spectrum`.
        name: prefix of the notes.

    Returns:
        (spectra, notes, d): W complex eigenvalue arrays (None where the window's spectrum
        is degenerate, with the reason in ``notes``), and the (W, W) symmetric matrix of W1
        between window spectra (0 on the diagonal, NaN where a spectrum is missing).
    """
    x = np.asarray(trajectories, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"trajectories: expected shape (N, T, D), got {x.shape}")
    spectra, notes = [], []
    for j, b in enumerate(bounds):
        i0, i1 = int(b[0]), int(b[1])
        try:
            ev = koopman_eigenvalues(x[:, i0:i1], n_delays=n_delays, rank=rank)
            spectra.append(check_spectrum(ev, tol=tol, name=f"{name} {j}"))
            notes.append("")
        except (DegenerateSpectrumError, ValueError) as exc:
            spectra.append(None)
            notes.append(str(exc))
    w = len(spectra)
    d = np.full((w, w), np.nan)
    for i in range(w):
        if spectra[i] is None:
            continue
        d[i, i] = 0.0
        for j in range(i + 1, w):
            if spectra[j] is not None:
                d[i, j] = d[j, i] = spectral_distance(spectra[i], spectra[j])
    return spectra, notes, d
