"""Calibration of the Koopman conjugacy test: rejection rate under the null, power, floors.

What it computes: a cheap case with a known answer for the test of
:func:`pathdep.analysis.koopman.conjugacy_test` (Redman et al., NeurIPS 2024). A setting is
a noisy linear system x_{t+1} = A x_t + sigma xi_t in R^4 whose map A = V diag-blocks V^-1
has the eigenvalues rho_k exp(+-i theta_k) (two rotation-contractions, V fixed). One
replicate (an independent "seed") draws ``n_traj`` initial conditions x_0 ~ N(0, I) and its
own noise, runs ``T`` steps and gives one spectrum by exact DMD (rank 4) pooled over its
trajectories, as one baseline's members are pooled in the workflow. Per repeat:

* ``null_seeds``: two groups of ``n`` replicates of the same setting, different seeds: a valid
  test rejects at level alpha in at most alpha of the repeats (plus binomial noise);
* ``alternative``: the second group from a setting whose first angle is theta_1 + delta
  (a different dynamics): the rejection rate is the power;
* ``null_copies``: the same setting, but each group holds perturbed copies of ONE seed (the
  same noise, initial conditions moved by a relative ``copy_eps``): the pseudo-replication
  of issue 18; its "null" rejects almost always, which is why copies are never replicates.

:func:`calibrate` returns, per case and replicates per group n, the number of rejections
at ``alpha`` over ``repeats`` repeats, the rate with its Clopper-Pearson 95 % interval, the
test's method and p floor (exact: 1/10 for 3 vs 3, so n = 3 can never reject at 0.05), and
every p-value.

How it was checked: tests/analysis/test_koopman_calibration.py (with >= 20 repeats the null
rejects at 0.05 in at most 0.10 of repeats for every n, the alternative is rejected in
>= 0.8 of repeats at n = 5 and never at n = 3 (its floor 1/10 > 0.05), copies of one
baseline as replicates reject the null in >= 0.9 of repeats; the simulated system's DMD
spectrum converges to the prescribed eigenvalues without noise).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from pathdep.analysis.koopman import conjugacy_test, koopman_eigenvalues, spectral_distance

CASES = ("null_seeds", "alternative", "null_copies")


def rotation_system(rho: tuple[float, float], theta: tuple[float, float], seed: int = 12345) -> np.ndarray:
    """(4, 4) map with eigenvalues rho_k exp(+-i theta_k), in coordinates V (fixed by ``seed``)."""
    blocks = np.zeros((4, 4))
    for k, (r, t) in enumerate(zip(rho, theta)):
        blocks[2 * k:2 * k + 2, 2 * k:2 * k + 2] = r * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    v = np.random.default_rng(seed).standard_normal((4, 4)) + 2 * np.eye(4)
    return v @ blocks @ np.linalg.inv(v)


def simulate(a: np.ndarray, x0: np.ndarray, noise: np.ndarray, sigma: float) -> np.ndarray:
    """Trajectories of x_{t+1} = A x_t + sigma xi_t.

    Args:
        a: (D, D) map.
        x0: (N, D) initial conditions.
        noise: (N, T - 1, D) standard normal xi.
        sigma: noise scale.

    Returns:
        (N, T, D) states.
    """
    n, t1, d = noise.shape
    x = np.empty((n, t1 + 1, d))
    x[:, 0] = x0
    for t in range(t1):
        x[:, t + 1] = x[:, t] @ a.T + sigma * noise[:, t]
    return x


def replicate_spectrum(a: np.ndarray, rng: np.random.Generator, n_traj: int, T: int, sigma: float,
                       copy_eps: float = 0.0, base: tuple | None = None) -> tuple[np.ndarray, tuple]:
    """One replicate's DMD spectrum (rank 4); with ``base`` a perturbed copy of that draw.

    Args:
        a: (4, 4) map.
        rng: draws the initial conditions and noise (a fresh seed) unless ``base`` is given.
        n_traj, T, sigma: trajectories, steps, noise scale.
        copy_eps: relative size of a copy's initial-condition perturbation.
        base: ``(x0, noise)`` of the baseline this replicate copies (same noise).

    Returns:
        ((4,) complex eigenvalues, (x0, noise) used).
    """
    if base is None:
        x0, xi = rng.standard_normal((n_traj, 4)), rng.standard_normal((n_traj, T - 1, 4))
    else:
        x0, xi = base
        d = rng.standard_normal(x0.shape)
        x0 = x0 + copy_eps * np.linalg.norm(x0) * d / np.linalg.norm(d)
    return koopman_eigenvalues(simulate(a, x0, xi, sigma), rank=4), (x0, xi)


def _group(a, rng, n, s, copies: bool) -> list[np.ndarray]:
    if not copies:
        return [replicate_spectrum(a, rng, s["n_traj"], s["T"], s["sigma"])[0] for _ in range(n)]
    _, base = replicate_spectrum(a, rng, s["n_traj"], s["T"], s["sigma"])
    return [replicate_spectrum(a, rng, s["n_traj"], s["T"], s["sigma"], s["copy_eps"], base)[0] for _ in range(n)]


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials."""
    lo = stats.beta.ppf((1 - level) / 2, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(0.5 + level / 2, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def calibrate(replicates=(3, 4, 5, 6), repeats: int = 200, alpha: float = 0.05, rho=(0.95, 0.8),
              theta=(0.2, 0.6), delta: float = 0.1, sigma: float = 0.5, n_traj: int = 2, T: int = 100,
              copy_eps: float = 1e-3, n_perm: int = 1000, seed: int = 0) -> dict:
    """Rejection rates of the conjugacy test under the null, the alternative and pseudo-replication.

    Args:
        replicates: replicates per group n to calibrate.
        repeats: independent repeats per case and n.
        alpha: test level.
        rho, theta: moduli and angles of the null setting's eigenvalue pairs.
        delta: the alternative adds this to theta_1.
        sigma, n_traj, T: per-replicate noise, trajectories and steps.
        copy_eps: relative initial-condition perturbation of a copy (``null_copies``).
        n_perm, seed: random splits (only when the exact test is too large) and the RNG.

    Returns:
        dict with ``table`` (rows: case, replicates, repeats, alpha, rejections, rate,
        rate_lo, rate_hi, p_method, p_min, p_median, w1_settings: W1 between the exact
        spectra of the two groups' settings, 0 under the null) and ``p_values`` {case:
        (len(replicates), repeats)}.
    """
    s = {"n_traj": int(n_traj), "T": int(T), "sigma": float(sigma), "copy_eps": float(copy_eps)}
    a0 = rotation_system(rho, theta)
    a1 = rotation_system(rho, (theta[0] + delta, theta[1]))
    rng = np.random.default_rng(seed)
    setting_b = {"null_seeds": (a0, False), "alternative": (a1, False), "null_copies": (a0, True)}
    pv = {c: np.full((len(replicates), repeats), np.nan) for c in CASES}
    meta = {}
    for i, n in enumerate(replicates):
        for j in range(repeats):
            for case in CASES:
                b, copies = setting_b[case]
                t = conjugacy_test(_group(a0, rng, n, s, copies), _group(b, rng, n, s, copies),
                                   n_perm=n_perm, seed=seed + j)
                pv[case][i, j] = t["p_value"]
                meta[case, n] = (t["p_method"], t["p_min"])
    w1 = {c: (spectral_distance(np.linalg.eigvals(a0), np.linalg.eigvals(setting_b[c][0])) if c == "alternative"
              else 0.0) for c in CASES}
    table = []
    for case in CASES:
        for i, n in enumerate(replicates):
            k = int(np.sum(pv[case][i] <= alpha))
            lo, hi = clopper_pearson(k, repeats)
            table.append({"case": case, "replicates": int(n), "repeats": int(repeats), "alpha": alpha,
                          "rejections": k, "rate": k / repeats, "rate_lo": lo, "rate_hi": hi,
                          "p_method": meta[case, n][0], "p_min": meta[case, n][1],
                          "p_median": float(np.median(pv[case][i])), "w1_settings": w1[case]})
    return {"table": table, "p_values": pv}
