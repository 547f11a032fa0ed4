"""The validation experiment of Redman et al. (NeurIPS 2024): OMD vs OGD vs bisection.

What it computes: three iterative methods on f(x) = sum_i tan(x_i) over the box
[1/T, 1]^d (d = 2), from a grid of initial conditions, and their Koopman spectra (DMD on
``n_delays`` time delays of the raw iterates, full rank):

* OMD, online mirror descent with the log-barrier regulariser R(x) = -sum log x_i:
  grad R(x') = grad R(x) - eta grad f(x), i.e. x' = 1 / (1/x + eta sec^2 x), then the
  Bregman projection onto the box (for a separable R and a box: clipping).
* OGD, online gradient descent in the reparameterised variable u = log x (x = q(u) = e^u):
  u' = u - eta e^u sec^2(e^u), projected (clipped) onto [log(1/T), 0]^d. Ghai, Lu & Hazan
  (2022) show OMD and this OGD are equivalent up to O(eta^2) per step, so their dynamics are
  conjugate (through u = log x) to that order; the observables are x for OMD and u for OGD,
  so their trajectories differ but their spectra should not.
* BM, the bisection method on the root of f (the interval [a, b] halves each step): not
  conjugate to either.

OMD starts at the grid x0 in [0.1, 0.9]^2 and OGD at u0 = log x0 (the same initial
conditions mapped through the conjugacy; the authors' script uses an evenly spaced u grid
on [-2.3, -0.1] instead); BM starts from the authors' brackets a0 in [-4/3, -1/3]^2 and
b0 in [1/7, 8/7]^2. Replicates for the significance test: the initial conditions split
into ``n_groups`` disjoint groups (same split for every method), one spectrum per group.

How it was checked: tests/analysis/test_koopman.py (OMD and OGD iterates agree to O(eta^2)
per step through x = e^u; BM halves its bracket; OMD-OGD W1 is far below W1 to BM and
the permutation test separates BM but not OMD from OGD).
"""

from __future__ import annotations

import numpy as np

from pathdep.analysis.koopman import conjugacy_test, koopman_eigenvalues, spectral_distance

METHODS = ("OMD", "OGD", "BM")


def f_tan(x: np.ndarray) -> np.ndarray:
    """f(x) = sum_i tan(x_i) over the last axis."""
    return np.tan(x).sum(axis=-1)


def _sec2(x: np.ndarray) -> np.ndarray:
    return 1.0 / np.cos(x) ** 2


def omd(x0: np.ndarray, eta: float, T: int) -> np.ndarray:
    """Online mirror descent with the log barrier. x0: (N, d) -> (N, T, d) iterates."""
    lo, hi = 1.0 / T, 1.0
    x = np.empty((x0.shape[0], T, x0.shape[1]))
    x[:, 0] = x0
    for t in range(1, T):
        xp = x[:, t - 1]
        x[:, t] = np.clip(1.0 / (1.0 / xp + eta * _sec2(xp)), lo, hi)
    return x


def ogd(u0: np.ndarray, eta: float, T: int) -> np.ndarray:
    """Online gradient descent on f(e^u). u0: (N, d) -> (N, T, d) iterates in u."""
    lo, hi = np.log(1.0 / T), 0.0
    u = np.empty((u0.shape[0], T, u0.shape[1]))
    u[:, 0] = u0
    for t in range(1, T):
        up = u[:, t - 1]
        e = np.exp(up)
        u[:, t] = np.clip(up - eta * e * _sec2(e), lo, hi)
    return u


def bisection(a0: np.ndarray, b0: np.ndarray, T: int) -> np.ndarray:
    """Bisection on f (vector bracket, f(a) < 0 < f(b)). (N, d) each -> (N, T, d) midpoints."""
    a, b = a0.astype(np.float64).copy(), b0.astype(np.float64).copy()
    if np.any(f_tan(a) >= 0) or np.any(f_tan(b) <= 0):
        raise ValueError("bisection: brackets need f(a) < 0 < f(b)")
    z = np.empty((a.shape[0], T, a.shape[1]))
    z[:, 0] = (a + b) / 2
    for t in range(1, T):
        fz = f_tan(z[:, t - 1])
        neg, pos = fz < 0, fz > 0
        a[neg] = z[neg, t - 1]
        b[pos] = z[pos, t - 1]
        z[:, t] = (a + b) / 2
    return z


def _grid(lo: float, hi: float, n: int) -> np.ndarray:
    g1, g2 = np.meshgrid(np.linspace(lo, hi, n), np.linspace(lo, hi, n))
    return np.stack([g1.ravel(), g2.ravel()], axis=1)


def toy_trajectories(eta: float = 1e-2, T: int = 100, grid: int = 5) -> dict[str, np.ndarray]:
    """The three methods' iterates from a grid x grid set of initial conditions.

    Returns:
        {"OMD": (grid^2, T, 2) x, "OGD": (grid^2, T, 2) u, "BM": (grid^2, T, 2) z,
         "loss_OMD", "loss_OGD", "loss_BM": (grid^2, T) f (|f| for BM)}.
    """
    x0 = _grid(0.1, 0.9, grid)
    out = {"OMD": omd(x0, eta, T), "OGD": ogd(np.log(x0), eta, T),
           "BM": bisection(_grid(-4 / 3, -1 / 3, grid), _grid(1 / 7, 8 / 7, grid), T)}
    out["loss_OMD"] = f_tan(out["OMD"])
    out["loss_OGD"] = f_tan(np.exp(out["OGD"]))
    out["loss_BM"] = np.abs(f_tan(out["BM"]))
    return out


def toy_study(eta: float = 1e-2, T: int = 100, grid: int = 5, n_delays: int = 4,
              rank: int | float | None = None, n_groups: int = 5, n_perm: int = 2000,
              seed: int = 0) -> dict:
    """Spectra, pairwise W1 and permutation tests of OMD, OGD and BM.

    Args:
        eta, T, grid: the experiment (Redman et al.: 1e-2, 100, 5).
        n_delays, rank: DMD settings (4 delays, full rank).
        n_groups: disjoint groups of initial conditions, one replicate spectrum each.
        n_perm, seed: permutation test (random splits only when the exact test has more
            than :data:`pathdep.analysis.koopman_stats.MAX_EXACT` splits).

    Returns:
        dict with ``trajectories`` (see :func:`toy_trajectories`), ``eigenvalues``
        {method: (r,) from all initial conditions}, ``group_eigenvalues`` {method:
        (n_groups, r)}, ``groups`` (n_ics,) group index of each initial condition, and
        ``table``: list of rows {a, b, w1 (all ICs), w1_between, w1_within, p_value,
        p_method, p_min (the p floor: exact, 1/126 for 5 vs 5 groups), n_a, n_b}.
    """
    traj = toy_trajectories(eta, T, grid)
    n_ic = grid * grid
    if not 2 <= n_groups <= n_ic // 2:
        raise ValueError(f"n_groups: expected 2..{n_ic // 2} for {n_ic} initial conditions, got {n_groups}")
    groups = np.random.default_rng(seed).permutation(np.arange(n_ic) % n_groups)
    eig = {m: koopman_eigenvalues(traj[m], n_delays=n_delays, rank=rank) for m in METHODS}
    geig = {}
    for m in METHODS:
        spectra = [koopman_eigenvalues(traj[m][groups == g], n_delays=n_delays, rank=rank)
                   for g in range(n_groups)]
        r = min(len(s) for s in spectra)
        geig[m] = np.stack([s[:r] for s in spectra])
    table = []
    for i, a in enumerate(METHODS):
        for b in METHODS[i + 1:]:
            test = conjugacy_test(list(geig[a]), list(geig[b]), n_perm=n_perm, seed=seed)
            table.append({"a": a, "b": b, "w1": spectral_distance(eig[a], eig[b]),
                          "w1_between": test["w1_between"], "w1_within": test["w1_within"],
                          "p_value": test["p_value"], "p_method": test["p_method"], "p_min": test["p_min"],
                          "n_a": len(geig[a]), "n_b": len(geig[b])})
    return {"trajectories": traj, "eigenvalues": eig, "group_eigenvalues": geig,
            "groups": groups, "table": table}
