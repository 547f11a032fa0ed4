"""The statistics of the claims ledger, one per kind of claim (arrays in, Outcome out).

What it computes. Each function takes the numbers a claim is about (one row per independent
baseline where baselines exist), states its decision rule from its thresholds, computes the
statistic and its 95 % interval, and returns a :class:`pathdep.analysis.claims.Outcome`:

* :func:`form_share` - share of curves whose selected functional form is one of ``forms``
  (exponential-then-linear d_w; hyperspherical diffusion), per baseline, t interval;
* :func:`onset_epochs` - length of the exponential period (median onset t_c, epochs);
* :func:`disagreement_ratio` - function-space equivalence after a large initial perturbation;
* :func:`relative_agreement` - a measured divergence rate against lambda_1;
* :func:`sweep_exponent` - exponent p of a rate ~ x^p along a sweep, per baseline (lr
  correction collapsing slopes: p = 1; slope linear in width: p = 1);
* :func:`endpoint_change` - change of a per-run statistic from the first to the last sweep
  value (difference or log ratio), per baseline, with a predicted sign (momentum, weight
  decay, depth, architecture);
* :func:`level` - a per-baseline statistic against a threshold (adaptive optimisers);
* :func:`source_share` - the batch schedule's share of (schedule + init) spread;
* :func:`weakest_auc` - the least predictive early stability indicator (Lyapunov study);
* :func:`fraction_difference` - difference of two failure fractions (binomial interval);
* :func:`conjugate_pair`, :func:`nonconjugate_pair` - Koopman permutation tests;
* :func:`window_transition` - early vs late change of Koopman spectra between windows;
* :func:`exponent_near` - a fitted exponent against a predicted one (NTK 1/sqrt(n));
* :func:`decreasing` - a fitted exponent below zero (linearised network tracks the network);
* :func:`transition_bracket`, :func:`bracket_contains`, :func:`bracket_above` - catapult edges
  2/lambda_0, 4/lambda_0, and c > 2;
* :func:`onset_difference` - which domino pattern is learned first;
* :func:`reliance_slope` - reliance on a pattern against its prevalence or reliability.

How it was checked: ``tests/analysis/test_claims_stats.py``: each statistic on synthetic
data where the verdict is known, both ways (supported and contradicted), and with one
baseline (no interval: inconclusive).
"""

from __future__ import annotations

import math

import numpy as np

from pathdep.analysis.claims import (CONTRADICTED, INCONCLUSIVE, ONE_BASELINE, SUPPORTED, Outcome,
                                     across_baselines, decide_above, decide_below, decide_within, fmt, region,
                                     loglog_slope, normal_interval)


def _interval(per: np.ndarray, what: str = "baselines") -> tuple[float, float, float, str]:
    """:func:`across_baselines` of one value per baseline (or independent run), and why there
    is no interval when there is none: one replicate, or too few replicates with a value."""
    per = np.asarray(per, dtype=float).reshape(-1)
    m, lo, hi = across_baselines(per)
    n = int(np.isfinite(per).sum())
    if len(per) <= 1:
        why = ONE_BASELINE if what == "baselines" else f"one {what[:-1]}: no interval"
    else:
        why = f"{n} of {len(per)} {what} give a value: no interval"
    return m, lo, hi, why


def _decide(lo: float, hi: float, t: float, direction: str, why: str = ONE_BASELINE) -> str:
    return decide_above(lo, hi, t, why) if direction == "above" else decide_below(lo, hi, t, why)


def _side(direction: str, t: float) -> str:
    other = "below" if direction == "above" else "above"
    return f"supported if the 95 % interval lies {direction} {fmt(t)}, contradicted if it lies {other} {fmt(t)}"


def form_share(selected: np.ndarray, baseline: np.ndarray, forms: tuple[str, ...], threshold: float = 0.5,
               direction: str = "above") -> Outcome:
    """Share of curves whose selected form is one of ``forms``.

    Args:
        selected: ``(n,)`` selected form per curve (e.g. ``exp_linear``); baseline: ``(n,)``
            the independent baseline of each curve.
        forms: the forms that count; threshold, direction: the rule.
    """
    rule = f"share of curves selecting {' or '.join(forms)}: {_side(direction, threshold)}"
    selected, baseline = np.asarray(selected).astype(str), np.asarray(baseline).astype(int)
    if len(selected) == 0:
        return Outcome(math.nan, math.nan, math.nan, rule, f"{INCONCLUSIVE} (no fitted curves)",
                       predicted=region(direction, threshold))
    hit = np.isin(selected, list(forms)).astype(float)
    per = np.array([hit[baseline == r].mean() for r in np.unique(baseline)])
    m, lo, hi, why = _interval(per)
    lo, hi = (max(lo, 0.0), min(hi, 1.0)) if np.isfinite(lo) else (lo, hi)     # a share stays in [0, 1]
    return Outcome(m, lo, hi, rule, _decide(lo, hi, threshold, direction, why), f"{len(selected)} curves",
                   predicted=region(direction, threshold))


def sweep_exponent(x: np.ndarray, rates: np.ndarray, target: float = 1.0, margin: float = 0.2) -> Outcome:
    """Exponent p of ``rate ~ x^p`` along a sweep, fitted per baseline.

    Args:
        x: ``(n,)`` the swept value (lr, width); rates: ``(R, n)`` the late growth rate of
            d_w of each baseline at each swept value.
        target, margin: the rule: p within ``target +- margin``.
    """
    rule = f"exponent p of rate ~ x^p: supported if the 95 % interval lies in [{fmt(target - margin)}, " \
           f"{fmt(target + margin)}], contradicted if it misses that range"
    rates = np.atleast_2d(np.asarray(rates, dtype=float))
    per = np.array([loglog_slope(x, r)[0] for r in rates])
    m, lo, hi, why = _interval(per)
    return Outcome(m, lo, hi, rule, decide_within(lo, hi, target - margin, target + margin, why),
                   predicted=(target - margin, target + margin))


def endpoint_change(values: np.ndarray, direction: str, log: bool = False) -> Outcome:
    """Change of a statistic from the first to the last sweep value, per baseline.

    Args:
        values: ``(R, n)`` the statistic (late exponent, final d_w, ...) of each baseline at
            each swept value, in sweep order.
        direction: ``below`` (predicted decrease) or ``above`` (predicted increase).
        log: the change as ``log(last / first)`` instead of ``last - first``.
    """
    what = "log(last / first)" if log else "last - first"
    rule = f"{what} along the sweep: {_side(direction, 0.0)}"
    v = np.atleast_2d(np.asarray(values, dtype=float))
    if v.shape[1] < 2:
        return Outcome(math.nan, math.nan, math.nan, rule, f"{INCONCLUSIVE} (fewer than 2 sweep values)")
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.log(v[:, -1] / v[:, 0]) if log else v[:, -1] - v[:, 0]
    m, lo, hi, why = _interval(per)
    return Outcome(m, lo, hi, rule, _decide(lo, hi, 0.0, direction, why), predicted=region(direction, 0.0))


def level(values: np.ndarray, threshold: float, direction: str = "above") -> Outcome:
    """A per-baseline statistic against a threshold.

    Args:
        values: ``(R,)`` or ``(R, n)`` (n runs of each baseline, averaged first).
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 2:
        with np.errstate(invalid="ignore"):
            v = np.array([np.nanmean(r) if np.isfinite(r).any() else math.nan for r in v])
    m, lo, hi, why = _interval(v)
    return Outcome(m, lo, hi, _side(direction, threshold), _decide(lo, hi, threshold, direction, why),
                   predicted=region(direction, threshold))


def source_share(schedule: np.ndarray, init: np.ndarray, threshold: float = 0.9) -> Outcome:
    """The batch schedule's share ``s / (s + i)`` of the spread from schedule and init alone.

    Args:
        schedule, init: ``(R,)`` a spread measure (e.g. final test-prediction disagreement)
            when only the batch schedule / only the initial weights differ, per baseline.
        threshold: "almost all": the share's interval above it.
    """
    rule = f"schedule share s / (s + i) of the final disagreement: {_side('above', threshold)}"
    s, i = np.asarray(schedule, dtype=float), np.asarray(init, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = s / (s + i)
    m, lo, hi, why = _interval(per)
    return Outcome(m, lo, hi, rule, decide_above(lo, hi, threshold, why), predicted=region("above", threshold))


def weakest_auc(auc: np.ndarray, se: np.ndarray, labels: list[str]) -> Outcome:
    """The least predictive cell (lowest lower bound) of early ROC AUCs against chance 0.5.

    Args:
        auc, se: ``(m,)`` AUC of each (indicator, activation, init range) cell at the early
            time and its standard error (independent networks); labels: ``(m,)`` names.
    """
    rule = "lowest AUC (+-1.96 se) over the stability indicators at the early time: " + _side("above", 0.5)
    auc, se = np.asarray(auc, dtype=float), np.asarray(se, dtype=float)
    if not np.isfinite(auc).any():
        return Outcome(math.nan, math.nan, math.nan, rule, f"{INCONCLUSIVE} (no AUC)")
    lows = np.where(np.isfinite(se), auc - 1.959964 * se, auc)
    j = int(np.nanargmin(lows))
    v, lo, hi = normal_interval(auc[j], se[j])
    return Outcome(v, lo, hi, rule, decide_above(lo, hi, 0.5, "no standard error"), f"weakest: {labels[j]}",
                   predicted=region("above", 0.5))


def fraction_difference(p_a: float, n_a: int, p_b: float, n_b: int, margin: float = 0.02) -> Outcome:
    """Difference ``p_b - p_a`` of two failure fractions with a normal binomial interval.

    Supported if the interval excludes 0 (the fractions differ), contradicted if it lies in
    ``[-margin, margin]`` (equal within the margin), else inconclusive.
    """
    rule = f"p_b - p_a (binomial 95 % interval): supported if it excludes 0, contradicted if it lies in " \
           f"[{fmt(-margin)}, {fmt(margin)}]"
    d = float(p_b) - float(p_a)
    se = math.sqrt(p_a * (1 - p_a) / max(n_a, 1) + p_b * (1 - p_b) / max(n_b, 1))
    v, lo, hi = normal_interval(d, se)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Outcome(v, lo, hi, rule, f"{INCONCLUSIVE} (no interval)")
    verdict = SUPPORTED if lo > 0 or hi < 0 else CONTRADICTED if -margin <= lo and hi <= margin else INCONCLUSIVE
    return Outcome(v, lo, hi, rule, verdict)


def conjugate_pair(p_same: float, p_other: np.ndarray, alpha: float = 0.05) -> Outcome:
    """A predicted conjugate pair (p_same) and predicted non-conjugate pairs (p_other).

    Supported if the permutation test does not separate the conjugate pair (p >= alpha) and
    separates every other pair (p < alpha); contradicted if it separates the conjugate pair.
    """
    rule = f"permutation p of W1 between Koopman spectra: supported if p(conjugate pair) >= {fmt(alpha)} and " \
           f"p(each pair with the distinct method) < {fmt(alpha)}, contradicted if p(conjugate pair) < {fmt(alpha)}"
    p_other = np.asarray(p_other, dtype=float)
    if not math.isfinite(p_same) or len(p_other) == 0:
        return Outcome(math.nan, math.nan, math.nan, rule, f"{INCONCLUSIVE} (missing pairs)")
    verdict = CONTRADICTED if p_same < alpha else SUPPORTED if np.all(p_other < alpha) else INCONCLUSIVE
    return Outcome(float(p_same), math.nan, math.nan, rule, verdict, predicted=(alpha, 1.0), note=
                   f"p(distinct pairs) = {', '.join(fmt(p) for p in p_other)}")


def nonconjugate_pair(p: float, w1_between: float, w1_within: float, alpha: float = 0.05,
                      p_floor: float = 0.0) -> Outcome:
    """A predicted non-conjugate pair of groups (e.g. narrow vs wide networks).

    Supported if the permutation test separates the groups (p < alpha); contradicted if it
    does not and the between-group W1 is no larger than the within-group W1. A test whose
    smallest attainable p (``p_floor``, e.g. 1/10 for 3 vs 3 replicates) is >= alpha cannot
    separate anything: inconclusive.
    """
    rule = f"permutation p (groups of independent seeds): supported if p < {fmt(alpha)}, contradicted if " \
           f"p >= {fmt(alpha)} and W1 between <= W1 within"
    if not math.isfinite(p):
        return Outcome(math.nan, math.nan, math.nan, rule, f"{INCONCLUSIVE} (no test)")
    verdict = SUPPORTED if p < alpha else CONTRADICTED if w1_between <= w1_within else INCONCLUSIVE
    if p >= alpha and p_floor >= alpha:
        verdict = f"{INCONCLUSIVE} (the test's smallest p is {fmt(p_floor)})"
    return Outcome(float(p), math.nan, math.nan, rule, verdict, predicted=(0.0, alpha), note=
                   f"W1 between {fmt(w1_between)}, within {fmt(w1_within)}")


def window_transition(w1: np.ndarray) -> Outcome:
    """Early transitions: log(mean W1 between consecutive windows in the first third of
    training / the same in the last third), per independent run.

    Args:
        w1: ``(runs, W, W)`` W1 between the Koopman spectra of windows of each run.
    """
    rule = "log(early / late W1 between consecutive windows) per independent run: " + _side("above", 0.0)
    w1 = np.asarray(w1, dtype=float)
    per = []
    for m in w1:
        d = np.array([m[i, i + 1] for i in range(m.shape[0] - 1)])
        d = d[np.isfinite(d) & (d > 0)]
        k = max(1, len(d) // 3)
        per.append(math.log(d[:k].mean() / d[-k:].mean()) if len(d) >= 3 else math.nan)
    m_, lo, hi, why = _interval(np.array(per), "runs")
    return Outcome(m_, lo, hi, rule, decide_above(lo, hi, 0.0, why), predicted=region("above", 0.0))


def exponent_near(p: float, se: float, target: float, margin: float) -> Outcome:
    """A fitted exponent (+-1.96 se) against a predicted one: supported inside
    ``target +- margin``, contradicted if the interval misses that range."""
    rule = f"fitted exponent +-1.96 se: supported if it lies in [{fmt(target - margin)}, {fmt(target + margin)}], " \
           f"contradicted if it misses that range"
    v, lo, hi = normal_interval(p, se)
    return Outcome(v, lo, hi, rule, decide_within(lo, hi, target - margin, target + margin, "no standard error"),
                   predicted=(target - margin, target + margin))


def decreasing(x: np.ndarray, y: np.ndarray) -> Outcome:
    """Exponent of ``y ~ x^p`` pooled over groups (rows of y, each with its own prefactor):
    supported if its 95 % interval lies below 0, contradicted if above.

    Args:
        x: ``(n,)`` e.g. widths; y: ``(g, n)`` e.g. final relative logit deviation per loss.
    """
    rule = "pooled log-log exponent (+-1.96 se): " + _side("below", 0.0)
    y = np.atleast_2d(np.asarray(y, dtype=float))
    lx = np.tile(np.log(np.asarray(x, dtype=float)), (y.shape[0], 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(y)
    ok = np.isfinite(ly)
    cx = np.where(ok, lx - np.nanmean(np.where(ok, lx, np.nan), axis=1, keepdims=True), np.nan)
    cy = np.where(ok, ly - np.nanmean(np.where(ok, ly, np.nan), axis=1, keepdims=True), np.nan)
    cx, cy = cx[ok], cy[ok]
    dof = len(cx) - y.shape[0] - 1
    if dof < 1 or (cx @ cx) == 0:
        return Outcome(math.nan, math.nan, math.nan, rule, f"{INCONCLUSIVE} (too few points)")
    p = float(cx @ cy / (cx @ cx))
    se = math.sqrt(float(((cy - p * cx) ** 2).sum()) / dof / float(cx @ cx))
    v, lo, hi = normal_interval(p, se)
    return Outcome(v, lo, hi, rule, decide_below(lo, hi, 0.0, "no standard error"), predicted=region("below", 0.0))


def transition_bracket(factors: np.ndarray, flag: np.ndarray) -> tuple[float, float]:
    """``(last factor before the first flagged one, first flagged factor)``; NaN if none."""
    f, g = np.asarray(factors, dtype=float), np.asarray(flag).astype(bool)
    order = np.argsort(f)
    f, g = f[order], g[order]
    if not g.any():
        return math.nan, math.nan
    j = int(np.argmax(g))
    return (float(f[j - 1]) if j > 0 else math.nan), float(f[j])


def bracket_contains(lo: float, hi: float, predicted: float, unit: str) -> Outcome:
    """A transition measured between two grid points ``(lo, hi]`` against a predicted value:
    supported if the bracket contains it, contradicted if not."""
    rule = f"measured bracket (lo, hi] of the transition in units of {unit}: supported if it contains " \
           f"{fmt(predicted)}, contradicted if not"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Outcome(hi, lo, hi, rule, f"{INCONCLUSIVE} (transition not bracketed by the grid)")
    return Outcome(hi, lo, hi, rule, SUPPORTED if lo < predicted <= hi else CONTRADICTED,
                   predicted=(predicted, predicted))


def bracket_above(lo: float, hi: float, bound: float, unit: str) -> Outcome:
    """A transition measured between two grid points ``(lo, hi]`` against a lower bound:
    supported if it lies beyond the bound (``lo >= bound``), contradicted if at or below it
    (``hi <= bound``)."""
    rule = f"measured bracket (lo, hi] of the transition in units of {unit}: supported if lo >= {fmt(bound)}, " \
           f"contradicted if hi <= {fmt(bound)}"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Outcome(hi, lo, hi, rule, f"{INCONCLUSIVE} (transition not bracketed by the grid)",
                       predicted=region("above", bound))
    verdict = SUPPORTED if lo >= bound else CONTRADICTED if hi <= bound else INCONCLUSIVE
    return Outcome(hi, lo, hi, rule, verdict, predicted=region("above", bound))


def onset_difference(onset_simple: np.ndarray, onset_other: np.ndarray) -> Outcome:
    """Onset of the simpler pattern minus the other's, per baseline (``(R,)`` each):
    supported if the interval lies below 0 (simpler learned first), contradicted if above."""
    per = np.asarray(onset_simple, dtype=float) - np.asarray(onset_other, dtype=float)
    m, lo, hi, why = _interval(per)
    return Outcome(m, lo, hi, "onset(simpler) - onset(other), steps: " + _side("below", 0.0),
                   decide_below(lo, hi, 0.0, why), predicted=region("below", 0.0))


def reliance_slope(x: np.ndarray, reliance: np.ndarray) -> Outcome:
    """Linear slope of a reliance measure against a swept pattern property, per baseline.

    Args:
        x: ``(n,)`` e.g. the top pattern's prevalence; reliance: ``(R, n)`` e.g. accuracy on
            top-only minus bottom-only dominoes.
    """
    rule = "slope of reliance on the pattern against its property: " + _side("above", 0.0)
    x = np.asarray(x, dtype=float)
    r = np.atleast_2d(np.asarray(reliance, dtype=float))
    per = np.full(r.shape[0], math.nan)
    for i, row in enumerate(r):
        ok = np.isfinite(row) & np.isfinite(x)
        if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
            per[i] = np.polyfit(x[ok], row[ok], 1)[0]
    m, lo, hi, why = _interval(per)
    return Outcome(m, lo, hi, rule, decide_above(lo, hi, 0.0, why), predicted=region("above", 0.0))


def onset_epochs(t_c: np.ndarray, steps_per_epoch: float, baseline: np.ndarray) -> Outcome:
    """Length of the exponential period: the median onset ``t_c`` (steps) of the
    exponential-then-linear fits, in epochs, per baseline; supported if its interval lies
    below one epoch, contradicted if above.

    Args:
        t_c: ``(n,)`` fitted onsets of the curves that selected exp_linear; baseline: ``(n,)``.
    """
    rule = "median onset t_c of the exponential period, epochs: " + _side("below", 1.0)
    t, b = np.asarray(t_c, dtype=float) / float(steps_per_epoch), np.asarray(baseline).astype(int)
    if not np.isfinite(t).any():
        return Outcome(math.nan, math.nan, math.nan, rule, f"{INCONCLUSIVE} (no exp_linear fit)",
                       predicted=region("below", 1.0))
    per = np.array([np.nanmedian(t[b == r]) if np.isfinite(t[b == r]).any() else math.nan for r in np.unique(b)])
    m, lo, hi, why = _interval(per)
    return Outcome(m, lo, hi, rule, decide_below(lo, hi, 1.0, why), f"{np.isfinite(t).sum()} curves",
                   predicted=region("below", 1.0))


def relative_agreement(diff: float, lo: float, hi: float, scale: float, margin: float = 0.5,
                       resolved: bool = True) -> Outcome:
    """A measured rate against a predicted one: ``(measured - predicted) / |predicted|`` with
    its interval, supported inside ``+-margin``, contradicted if the interval misses it;
    inconclusive when the predicted exponent is not resolved."""
    rule = f"(measured rate - lambda_1) / |lambda_1|: supported if the 95 % interval lies in " \
           f"[{fmt(-margin)}, {fmt(margin)}], contradicted if it misses that range"
    s = abs(float(scale))
    v, l, h = (float(x) / s if s > 0 else math.nan for x in (diff, lo, hi))
    if not resolved:
        return Outcome(v, l, h, rule, f"{INCONCLUSIVE} (lambda_1 not resolved)", predicted=(-margin, margin))
    return Outcome(v, l, h, rule, decide_within(l, h, -margin, margin), predicted=(-margin, margin))


def disagreement_ratio(perturbed: np.ndarray, independent: np.ndarray, threshold: float = 0.25) -> Outcome:
    """Function-space equivalence: final test-prediction disagreement of the largest initial
    perturbation over that of independently trained networks, per baseline ``(R,)`` each;
    supported if the interval lies below ``threshold``, contradicted if above."""
    rule = "disagreement(largest eps) / disagreement(independent runs): " + _side("below", threshold)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.asarray(perturbed, dtype=float) / np.asarray(independent, dtype=float)
    m, lo, hi, why = _interval(per)
    return Outcome(m, lo, hi, rule, decide_below(lo, hi, threshold, why), predicted=region("below", threshold))
