"""Pattern-learning curves: sigmoid fits and a two-feature toy model (dominoes).

What it computes.

* :func:`fit_sigmoid` -- least-squares fit of a learning curve (accuracy or any metric that
  rises once a pattern is learned) to ``y(t) = y0 + (y_inf - y0) / (1 + exp(-k (t - t0)))``:
  onset ``t0`` (the midpoint), rate ``k``, final level ``y_inf`` and start level ``y0``
  (optionally fixed, e.g. to chance 1/K), with standard errors from the Gauss-Newton
  covariance ``s^2 (J^T J)^-1`` (``scipy.optimize.curve_fit``). Time is the step (or log
  step with ``log_time``).
* :func:`toy_moments` / :func:`toy_curves` -- the toy model of the seed (compare
  pattern-learning curves with "the toy model of [2]"): a binary label ``y = +-1`` and two
  features, one per domino side, ``x_i = s_i m_i z_i`` with presence ``m_i ~
  Bernoulli(p_i)`` (prevalence; P(both) = p_1 + p_2 - 1 as in the dominoes), agreement
  ``z_i = y`` with probability ``r_i`` (reliability) else ``-y``, and scale ``s_i``
  (simplicity). The squared loss ``L(w) = E[(y - f(x))^2] / 2`` has moments
  ``b_i = E[x_i y] = s_i p_i (2 r_i - 1)``, ``S_ii = s_i^2 p_i``,
  ``S_12 = s_1 s_2 (p_1 + p_2 - 1)(2 r_1 - 1)(2 r_2 - 1)``. Gradient flow is integrated for

  - ``linear``: ``f = w . x``, ``dw/dt = b - S w`` (closed form ``w* + e^{-S t}(w0 - w*)``);
  - ``two_layer``: a diagonal two-layer linear net ``f = sum_i a_i c_i x_i`` from a small
    balanced initialisation ``a_i = c_i``, for which ``dw_i/dt = 2 |w_i| (b - S w)_i``
    (Saxe et al. 2014): sigmoidal, with onset ``ln(w*/w0 - 1) / (2 b_i)`` for
    uncoupled features.

  The predicted per-pattern output ("margin") on a one-sided input is ``w_i s_i``.
  With ``K`` classes the agreement ``z_i`` is the binary reduction of "shown class =
  label": ``a_i = E[z_i y] = (K r_i - 1) / (K - 1)`` (chance agreement 1/K gives 0; K = 2
  gives the binary ``2 r_i - 1``).
* :func:`half_gain_time` -- the onset used for both the network and the toy: the first
  time a curve reaches half of its final gain over its start level,
  ``y(t) = y0 + (y_final - y0) / 2`` (interpolated in ``log(1 + t)`` between samples;
  NaN when the final gain is below ``min_gain``). Unlike the sigmoid midpoint it stays
  meaningful for curves that are not sigmoids (two-stage rises, a co-learned feature
  riding on the other one's rise, a transient overshoot).
* :func:`fit_accuracy_curves` -- the fits and half-gain onsets of every accuracy curve of a
  domino run (evaluation set x member), start fixed at chance ``1/K``;
  :func:`pattern_summary` -- per pattern (top, bottom) of one run: the measured onsets
  (member-mean curve, standard error over members), the baseline's sigmoid fit, the final
  accuracies and the toy model's prediction; :func:`toy_time_scale` -- the one factor per
  experiment converting the toy's time to steps, ``exp(mean(ln onset - ln toy_onset))``.
* :func:`linear_probe` -- the simplicity of a real side, measured: held-out accuracy of a
  multinomial logistic regression fitted on that side alone; :func:`probe_simplicity`
  maps it to the toy's feature strength ``s = (K q - 1) / (K - 1)`` (a side a linear
  readout classifies with accuracy q acts, for a linear learner, like a unit feature that
  agrees with the class with probability q).

How it was checked: ``tests/analysis/test_patterns.py`` (the fit recovers known onset,
rate and levels within 3 standard errors on noisy synthetic curves, and its standard
errors match the scatter over repeats; the linear toy model equals its closed form; the
two-layer toy model with uncoupled features (p_1 + p_2 = 1) equals the logistic closed
form; more prevalent / reliable / simpler features are learned earlier; equal features
have equal onsets; a feature of reliability 0.5 of 10 classes is learned, later than a
reliable one; the half-gain time equals ``t0`` on a sigmoid and is invariant to the
curve's scale; the probe separates a separable side from pure noise; the per-run fits and
summaries on synthetic sigmoid curves with known onsets).

Known limits of the toy (documented in docs/dominoes.md): squared loss on a linear
readout, so when one feature alone predicts the label perfectly the other's final weight
is ``w* = 0`` (never learned) while a cross-entropy network still learns it; the binary
reduction ignores which wrong class an unreliable side shows; features are orthogonal
directions (no shared pixels).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import curve_fit

__all__ = ["sigmoid", "fit_sigmoid", "half_gain_time", "toy_moments", "toy_curves", "toy_onsets",
           "linear_probe", "probe_simplicity", "agreement", "FIT_VARS", "fit_accuracy_curves", "fitted_curves",
           "pattern_summary", "toy_time_scale"]

PARAMS = ("t0", "rate", "y_inf", "y0")


def sigmoid(t: np.ndarray, t0: float, rate: float, y_inf: float, y0: float) -> np.ndarray:
    """``y0 + (y_inf - y0) / (1 + exp(-rate (t - t0)))`` (overflow-safe)."""
    z = np.clip(-rate * (np.asarray(t, dtype=np.float64) - t0), -700, 700)
    return y0 + (y_inf - y0) / (1.0 + np.exp(z))


def fit_sigmoid(t: np.ndarray, y: np.ndarray, y0: float | None = None, log_time: bool = False) -> dict:
    """Fit one learning curve with :func:`sigmoid`.

    Args:
        t: ``(T,)`` times (steps); with ``log_time`` the fit uses ``log10(1 + t)`` and the
            returned ``t0``/``rate`` are in that unit.
        y: ``(T,)`` values; NaNs are dropped.
        y0: Fix the start level (e.g. chance accuracy); ``None`` fits it.
        log_time: Fit against ``log10(1 + t)``.

    Returns:
        ``{"t0", "rate", "y_inf", "y0", "t0_se", "rate_se", "y_inf_se", "y0_se", "rmse", "ok"}``
        (``ok`` False and NaNs when fewer than 5 points or the fit failed; ``y0_se`` 0
        when fixed).
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if log_time:
        t = np.log10(1.0 + t)
    m = np.isfinite(t) & np.isfinite(y)
    t, y = t[m], y[m]
    nan = {k: np.nan for k in PARAMS} | {f"{k}_se": np.nan for k in PARAMS} | {"rmse": np.nan, "ok": False}
    npar = 3 if y0 is not None else 4
    if len(t) < npar + 1 or np.ptp(t) == 0:
        return nan
    lo_y, hi_y = float(y.min()), float(y.max())
    span = max(hi_y - lo_y, 1e-12)
    trange = np.ptp(t)
    # initial guess: midpoint where y crosses half-way between its first and last values
    y_first, y_last = y[: max(1, len(y) // 10)].mean(), y[-max(1, len(y) // 10):].mean()
    half = 0.5 * (y_first + y_last)
    cross = np.flatnonzero((y - half) * np.sign(y_last - y_first + 1e-300) >= 0)
    t0_guess = t[cross[0]] if len(cross) else t.mean()
    best = None
    for rate_guess in (4.0 / trange, 20.0 / trange, 1.0 / trange):
        p0 = [t0_guess, rate_guess, y_last] + ([] if y0 is not None else [y_first])
        f = (lambda tt, a, b, c: sigmoid(tt, a, b, c, y0)) if y0 is not None else sigmoid
        lo = [t.min() - trange, 0.0, lo_y - span] + ([] if y0 is not None else [lo_y - span])
        hi = [t.max() + trange, 1e3 / trange, hi_y + span] + ([] if y0 is not None else [hi_y + span])
        try:
            popt, pcov = curve_fit(f, t, y, p0=p0, bounds=(lo, hi), maxfev=20000)
        except (RuntimeError, ValueError):
            continue
        rmse = float(np.sqrt(np.mean((f(t, *popt) - y) ** 2)))
        if best is None or rmse < best[2] - 1e-15:
            best = (popt, pcov, rmse)
    if best is None:
        return nan
    popt, pcov, rmse = best
    se = np.sqrt(np.clip(np.diag(pcov), 0, np.inf)) if np.all(np.isfinite(pcov)) else np.full(npar, np.nan)
    out = {"t0": popt[0], "rate": popt[1], "y_inf": popt[2], "y0": popt[3] if y0 is None else float(y0),
           "t0_se": se[0], "rate_se": se[1], "y_inf_se": se[2], "y0_se": se[3] if y0 is None else 0.0,
           "rmse": rmse, "ok": True}
    return {k: (float(v) if k != "ok" else v) for k, v in out.items()}


def half_gain_time(t: np.ndarray, y: np.ndarray, y0: float, final: float | None = None, n_final: int = 2,
                   min_gain: float = 0.02, log_time: bool = True) -> float:
    """First time a rising curve reaches half of its final gain, ``y0 + (y_final - y0) / 2``.

    Args:
        t: ``(T,)`` increasing times (steps), ``>= 0``.
        y: ``(T,)`` values (NaNs dropped).
        y0: Start level (chance accuracy; 0 for a toy margin).
        final: Final level; default the mean of the last ``n_final`` values.
        n_final: Points averaged for the final level.
        min_gain: Below this final gain the pattern counts as not learned: NaN.
        log_time: Interpolate linearly in ``log(1 + t)`` (log-spaced checkpoints) rather than t.

    Returns:
        The crossing time (same unit as ``t``), or NaN.
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = np.isfinite(t) & np.isfinite(y)
    t, y = t[m], y[m]
    if len(t) < 2:
        return float("nan")
    yf = float(np.mean(y[-max(1, int(n_final)):])) if final is None else float(final)
    gain = yf - float(y0)
    if not gain > min_gain:
        return float("nan")
    half = float(y0) + 0.5 * gain
    above = np.flatnonzero(y >= half)
    if not len(above):
        return float("nan")
    j = int(above[0])
    if j == 0:
        return float(t[0])
    u = np.log1p(t) if log_time else t
    frac = (half - y[j - 1]) / (y[j] - y[j - 1])
    uc = u[j - 1] + frac * (u[j] - u[j - 1])
    return float(np.expm1(uc) if log_time else uc)


# ----------------------------------------------------------------------------- toy model


def agreement(reliability, n_classes: int = 2) -> np.ndarray:
    """``a = E[z y] = (K r - 1) / (K - 1)``: a side's label agreement above chance (K classes)."""
    k = int(n_classes)
    if k < 2:
        raise ValueError(f"n_classes: expected >= 2, got {n_classes}")
    r = np.asarray(reliability, dtype=np.float64)
    return (k * r - 1.0) / (k - 1.0)


def toy_moments(prevalence, reliability, simplicity, n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``b = E[x y]`` (2,) and ``S = E[x x^T]`` (2, 2) of the two-feature toy model.

    Args:
        prevalence: ``(p_1, p_2)`` with ``p_1 + p_2 >= 1`` (every sample shows a feature).
        reliability: ``(r_1, r_2)`` in [0, 1].
        simplicity: ``(s_1, s_2)`` feature scales > 0.
        n_classes: ``K``; the agreement is ``a_i = (K r_i - 1) / (K - 1)`` (:func:`agreement`).
    """
    p, s = (np.asarray(v, dtype=np.float64) for v in (prevalence, simplicity))
    if p.sum() < 1 - 1e-12:
        raise ValueError(f"prevalence: {p[0]:g} + {p[1]:g} < 1 leaves samples with no feature")
    a = agreement(reliability, n_classes)
    b = s * p * a
    S = np.diag(s ** 2 * p)
    S[0, 1] = S[1, 0] = s[0] * s[1] * (p.sum() - 1) * a[0] * a[1]
    return b, S


def toy_curves(t: np.ndarray, prevalence, reliability, simplicity, model: str = "two_layer",
               w0: float = 1e-3, n_classes: int = 2) -> np.ndarray:
    """Per-pattern margins ``w_i(t) s_i`` under gradient flow of the toy model.

    Args:
        t: ``(T,)`` times (gradient-flow time = learning rate x steps), increasing, >= 0.
        prevalence, reliability, simplicity, n_classes: per feature, see :func:`toy_moments`.
        model: ``"linear"`` or ``"two_layer"`` (diagonal two-layer linear network).
        w0: Initial effective weight of each feature (``a_i = c_i = sqrt(w0)``).

    Returns:
        ``(T, 2)`` margins; on a one-sided input of feature i the model outputs
        ``margin_i y`` (1 = perfect, 0 = chance).
    """
    b, S = toy_moments(prevalence, reliability, simplicity, n_classes)
    s = np.asarray(simplicity, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    w_init = np.full(2, float(w0))
    if model == "linear":
        lam, V = np.linalg.eigh(S)
        w_star = np.linalg.lstsq(S, b, rcond=None)[0]
        c = V.T @ (w_init - w_star)
        w = w_star[None, :] + (np.exp(-np.outer(t, lam)) * c[None, :]) @ V.T
    elif model == "two_layer":
        sol = solve_ivp(lambda _, w: 2 * np.abs(w) * (b - S @ w), (0.0, float(t.max())), w_init, t_eval=t,
                        method="LSODA", rtol=1e-9, atol=1e-12)
        if not sol.success:  # pragma: no cover - LSODA handles these smooth systems
            raise RuntimeError(f"toy model integration failed: {sol.message}")
        w = sol.y.T
    else:
        raise ValueError(f"model: expected linear or two_layer, got {model!r}")
    return w * s[None, :]


def toy_onsets(prevalence, reliability, simplicity, model: str = "two_layer", w0: float = 1e-3,
               t_max: float | None = None, n: int = 400, n_classes: int = 2) -> dict:
    """Onsets of the toy model's two margin curves: half-gain times and sigmoid fits.

    The onset of feature i is :func:`half_gain_time` of its margin (start 0, final = the
    margin at ``t_max``, by default long enough for the slower feature to converge), the
    definition used for the network's accuracy curves; the sigmoid fit (:func:`fit_sigmoid`,
    y0 = 0) is kept for comparison. A feature whose final margin is below 1 % of the larger
    one (``w* ~ 0``: the other feature explains the label) has onset NaN.

    Returns:
        ``{"t": (n,), "margin": (n, 2), "onset": (2,) half-gain times, "final": (2,)
        final margins, "fits": [sigmoid fit of feature 1, of feature 2]}``.
    """
    b, S = toy_moments(prevalence, reliability, simplicity, n_classes)
    if t_max is None:
        rate = max(float(np.min(np.abs(b[b > 1e-12]))) if np.any(b > 1e-12) else 1.0, 1e-6)
        t_max = 6.0 * (np.log(1.0 / w0) + 4.0) / rate if model == "two_layer" else 10.0 / max(np.linalg.eigvalsh(S).min(), 1e-6)
    t = np.linspace(0.0, t_max, n)
    m = toy_curves(t, prevalence, reliability, simplicity, model=model, w0=w0, n_classes=n_classes)
    final = m[-1].copy()
    top = max(float(np.max(np.abs(final))), 1e-12)
    onset = np.array([half_gain_time(t, m[:, i], 0.0, final=final[i], min_gain=0.01 * top, log_time=False)
                      for i in range(2)])
    fits = [fit_sigmoid(t, m[:, i], y0=0.0) for i in range(2)]
    for i in range(2):  # a feature with no net correlation to the label (b_i <= 0) is never learned
        if b[i] <= 1e-12:
            fits[i] = {k: (np.nan if k != "ok" else False) for k in fits[i]}
            onset[i] = np.nan
    return {"t": t, "margin": m, "onset": onset, "final": final, "fits": fits}


# ----------------------------------------------------------------------------- simplicity of real sides


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 max_train: int = 1000, c: float = 0.1, seed: int = 0) -> float:
    """Held-out accuracy of a multinomial logistic regression on one side's images alone.

    Args:
        x_train, x_test: ``(N, ...)`` side images (flattened inside).
        y_train, y_test: ``(N,)`` the side's own class (not the domino label).
        max_train: Fit on at most this many training samples (a seeded subset).
        c: Inverse L2 strength (sklearn ``C``) on standardised pixels.
        seed: Subset seed.

    Returns:
        Accuracy on ``x_test`` (NaN with fewer than 2 classes or no test samples).
    """
    from sklearn.linear_model import LogisticRegression

    xtr = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    xte = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
    ytr, yte = np.asarray(y_train), np.asarray(y_test)
    if len(np.unique(ytr)) < 2 or not len(yte):
        return float("nan")
    if len(ytr) > max_train:
        idx = np.random.default_rng(seed).choice(len(ytr), size=max_train, replace=False)
        xtr, ytr = xtr[idx], ytr[idx]
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=300)
    clf.fit((xtr - mu) / sd, ytr)
    return float(np.mean(clf.predict((xte - mu) / sd) == yte))


def probe_simplicity(probe_acc: float, n_classes: int) -> float:
    """Toy feature strength of a side from its probe accuracy q: ``(K q - 1) / (K - 1)``, floored at 1e-3."""
    if not np.isfinite(probe_acc):
        return float("nan")
    return float(max(agreement(probe_acc, n_classes), 1e-3))


# ----------------------------------------------------------------------------- per-run fits and summaries

FIT_VARS = ("onset", "rate", "final", "onset_se", "rate_se", "final_se", "fit_rmse")
"""Names of the sigmoid-fit variables of :func:`fit_accuracy_curves` (``t0``, ``rate``, ``y_inf``, errors, RMSE)."""


def fit_accuracy_curves(steps: np.ndarray, acc: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Sigmoid fits and half-gain onsets of accuracy curves, start level fixed at chance ``1/K``.

    Args:
        steps: ``(C,)`` training steps of the checkpoints.
        acc: ``(S, M, C)`` accuracies (evaluation set x member x checkpoint).
        n_classes: ``K``.

    Returns:
        :data:`FIT_VARS` and ``onset_half`` (:func:`half_gain_time`), each ``(S, M)``, and
        ``onset_half_mean`` ``(S,)`` (half-gain time of the member-mean curve).
    """
    steps = np.asarray(steps, dtype=float)
    n_sets, n_members = acc.shape[:2]
    chance = 1.0 / n_classes
    out = {v: np.full((n_sets, n_members), np.nan) for v in FIT_VARS}
    for i in range(n_sets):
        for m in range(n_members):
            f = fit_sigmoid(steps, acc[i, m], y0=chance)
            for v, src in zip(FIT_VARS, ("t0", "rate", "y_inf", "t0_se", "rate_se", "y_inf_se", "rmse")):
                out[v][i, m] = f[src]
    out["onset_half"] = np.array([[half_gain_time(steps, acc[i, m], chance) for m in range(n_members)]
                                  for i in range(n_sets)]).reshape(n_sets, n_members)
    with np.errstate(all="ignore"):
        mean_curve = np.nanmean(acc, axis=1)
    out["onset_half_mean"] = np.array([half_gain_time(steps, mean_curve[i], chance) for i in range(n_sets)])
    return out


def fitted_curves(steps: np.ndarray, fits: dict, n_classes: int, member: int = 0,
                  n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The fitted sigmoids of one member on a log-spaced grid of steps, for drawing.

    Args:
        steps: ``(C,)`` checkpoint steps (the grid spans ``max(first positive step, 1)`` to the last).
        fits: ``onset``, ``rate``, ``final`` ``(S, M)`` (:func:`fit_accuracy_curves`).
        n_classes: ``K`` (start level ``1/K``).
        member: which member's fits (0: the baseline).
        n: grid points.

    Returns:
        ``(grid (n,), curves (S, n))``; NaN where the fit failed.
    """
    x = np.asarray(steps, dtype=float)
    grid = np.geomspace(max(x[x > 0].min(), 1.0), x.max(), n)
    curves = np.stack([sigmoid(grid, fits["onset"][i, member], fits["rate"][i, member], fits["final"][i, member],
                               1.0 / n_classes) for i in range(len(fits["onset"]))])
    return grid, curves


def _toy_for_run(p, r, q, given: dict, n_classes: int, model: str, w0: float):
    simp = tuple(float(given[side]) if side in given else (probe_simplicity(v, n_classes) if np.isfinite(v) else 1.0)
                 for side, v in zip(("top", "bottom"), q))
    try:
        toy = toy_onsets(p, r, simp, model=model, w0=w0, n_classes=n_classes)
    except ValueError:
        toy = {"onset": [np.nan, np.nan], "final": [np.nan, np.nan], "fits": [{"t0": np.nan}, {"t0": np.nan}]}
    return simp, toy


def _onset_spread(half: np.ndarray, baseline: np.ndarray | None) -> dict:
    """``onset_se`` and its replicates: across baselines (each baseline's mean half-gain time
    over its networks) when there are >= 2, else across the networks of one baseline (named)."""
    ok = np.isfinite(half)
    if baseline is not None and len(np.unique(np.asarray(baseline)[ok])) >= 2:
        per = np.array([np.mean(half[ok & (baseline == r)]) for r in np.unique(np.asarray(baseline)[ok])])
        return {"onset_se": float(np.std(per, ddof=1) / np.sqrt(len(per))), "onset_se_over": "baselines",
                "onset_replicates_n": len(per)}
    nv = int(ok.sum())
    return {"onset_se": float(np.nanstd(half, ddof=1) / np.sqrt(nv)) if nv > 1 else np.nan,
            "onset_se_over": "copies of one baseline", "onset_replicates_n": nv}


def pattern_summary(sets: list, fits: dict, acc: np.ndarray, prevalence, reliability, probe_acc, n_classes: int,
                    simplicity=None, model: str = "two_layer", w0: float = 1e-3,
                    baseline: np.ndarray | None = None) -> list[dict]:
    """One row per pattern (top, bottom) of one domino run: measured onsets and the toy's prediction.

    Args:
        sets: names of the evaluation sets (``top_only``, ``bottom_only``, ... ), ``(S,)``.
        fits: :func:`fit_accuracy_curves` of the run (``(S, M)`` and ``(S,)`` arrays).
        acc: ``(S, M, C)`` accuracies (the last checkpoint gives the final accuracies).
        prevalence, reliability, probe_acc: ``(top, bottom)`` achieved values and probe
            accuracies; a non-finite reliability counts as chance ``1/K``.
        n_classes: ``K``.
        simplicity: toy feature strengths per side, a ``(top, bottom)`` pair or a
            ``{side: s}`` dict; a side not given uses :func:`probe_simplicity` of its probe.
        model, w0: the toy model (:func:`toy_onsets`).
        baseline: ``(M,)`` replicate-baseline label of each network (None: one baseline).

    Returns:
        Rows with ``pattern``, ``prevalence``, ``reliability``, ``probe_acc``, ``simplicity``,
        ``onset`` (half-gain time of the member-mean curve), ``onset_se`` (standard error of the
        half-gain time across independent baselines, each the mean over its networks; with one
        baseline across its networks), ``onset_se_over`` (which), ``onset_replicates_n``,
        ``onset_members_n``, the baseline's
        ``sigmoid_onset``, ``rate``, ``final`` (with errors), ``toy_onset``, ``toy_final``,
        ``toy_sigmoid_onset`` and ``acc_<set>`` (member mean at the last checkpoint).
    """
    r = tuple(1.0 / n_classes if not np.isfinite(v) else v for v in reliability)
    q = tuple(float(v) for v in probe_acc)
    given = dict(zip(("top", "bottom"), simplicity)) if isinstance(simplicity, (tuple, list)) else dict(simplicity or {})
    simp, toy = _toy_for_run(prevalence, r, q, given, n_classes, model, w0)
    with np.errstate(all="ignore"):
        last = {s: float(np.nanmean(acc[i, :, -1])) for i, s in enumerate(sets)}
    rows = []
    for i, side in enumerate(("top", "bottom")):
        j = list(sets).index(f"{side}_only")
        half = fits["onset_half"][j]
        nv = int(np.isfinite(half).sum())
        rows.append({"pattern": side, "prevalence": prevalence[i], "reliability": r[i], "probe_acc": q[i],
                     "simplicity": simp[i], "onset": float(fits["onset_half_mean"][j]),
                     **_onset_spread(half, baseline), "onset_members_n": nv,
                     "sigmoid_onset": fits["onset"][j, 0], "sigmoid_onset_se": fits["onset_se"][j, 0],
                     "rate": fits["rate"][j, 0], "rate_se": fits["rate_se"][j, 0], "final": fits["final"][j, 0],
                     "toy_onset": float(toy["onset"][i]), "toy_final": float(toy["final"][i]),
                     "toy_sigmoid_onset": float(toy["fits"][i]["t0"])} | {f"acc_{s}": v for s, v in last.items()})
    return rows


def toy_time_scale(onset, toy_onset) -> float:
    """Steps per toy time unit: ``exp(mean(ln onset - ln toy_onset))`` over the rows where both
    are finite and positive (NaN if none)."""
    onset, toy_onset = np.asarray(onset, dtype=float), np.asarray(toy_onset, dtype=float)
    ok = np.isfinite(onset) & (onset > 0) & np.isfinite(toy_onset) & (toy_onset > 0)
    return float(np.exp(np.mean(np.log(onset[ok]) - np.log(toy_onset[ok])))) if ok.any() else np.nan
