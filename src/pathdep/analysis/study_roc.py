"""Early indicators of failed 2-2-1 runs: cross-validated ROC curves, AUCs and their errors.

What it computes, from the dataset of :func:`pathdep.analysis.lyapunov_study.run_study`:

* :func:`roc_by_time`: for every (activation, init range, indicator, indicator time) a
  Gaussian naive Bayes classifier (``sklearn.naive_bayes.GaussianNB``) predicts ``failed``
  from the indicator's features at that time; stratified k-fold cross-validation gives
  out-of-fold probabilities, the ROC curve (on a uniform false-positive grid), its AUC and
  the AUC's spread over the folds (as in Sharafi, Martin, Hallerberg, Phys. Rev. E 111,
  054208 (2025));
* :func:`hanley_mcneil_se`: the standard error of an AUC (Hanley & McNeil, Radiology 143,
  29 (1982)), and :func:`roc_with_errors`: :func:`roc_by_time` plus that error per AUC.

How it was checked (tests/analysis/test_study_roc.py): the Hanley-McNeil error matches its
closed form at AUC 0.5 and the spread of AUCs of resampled exponential scores (5 %); each
(activation, init range) uses its own failure count; a small study gives finite AUCs in
[0, 1] (tests/analysis/test_lyapunov_study.py).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from pathdep.analysis.study_model import PAPER

__all__ = ["INDICATORS", "STUDY_INDICATORS", "roc_by_time", "hanley_mcneil_se", "roc_with_errors"]

INDICATORS = ("loss", "ftle", "ftle_cum", "clv_growth", "clv_min_angle", "clv_angles", "all")

#: Indicators of the study figures (at most four per panel).
STUDY_INDICATORS = ("loss", "ftle", "clv_min_angle", "all")


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


def _cross_validated(X: np.ndarray, y: np.ndarray, folds: list, grid: np.ndarray):
    """``(AUC of the out-of-fold probabilities, std of the fold AUCs, TPR on grid)`` of a
    Gaussian naive Bayes classifier of ``y`` from ``X`` (non-finite features clipped to +-1e6)."""
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.naive_bayes import GaussianNB

    X = np.clip(np.nan_to_num(X, nan=0.0, posinf=1e6, neginf=-1e6), -1e6, 1e6)
    p = np.zeros(len(y))
    fold_auc = []
    for tr, te in folds:
        clf = GaussianNB().fit(X[tr], y[tr])
        p[te] = clf.predict_proba(X[te])[:, 1]
        fold_auc.append(roc_auc_score(y[te], p[te]))
    fpr, tp, _ = roc_curve(y, p)
    return roc_auc_score(y, p), float(np.std(fold_auc)), np.interp(grid, fpr, tp)


def roc_by_time(ds: xr.Dataset, *, indicators=INDICATORS, n_folds: int = 5, seed: int = 0,
                n_fpr: int = 101) -> xr.Dataset:
    """Cross-validated ROC curves of a naive Bayes failure predictor, per indicator time.

    Args:
        ds: output of :func:`pathdep.analysis.lyapunov_study.run_study`.
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
    from sklearn.model_selection import StratifiedKFold

    acts, ranges, times = ds["activation"].values, ds["init_range"].values, ds["time"].values
    grid = np.linspace(0.0, 1.0, n_fpr)
    shape = (len(acts), len(ranges), len(indicators), len(times))
    auc, auc_std = np.full(shape, np.nan), np.full(shape, np.nan)
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
                    auc[i, j, m, n], auc_std[i, j, m, n], tpr[i, j, m, n] = _cross_validated(X, y, folds, grid)
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


def hanley_mcneil_se(auc, n_pos, n_neg):
    """Standard error of an ROC AUC (Hanley & McNeil, Radiology 143, 29 (1982), eq. 2).

    ``SE^2 = [A(1-A) + (n_pos-1)(Q1-A^2) + (n_neg-1)(Q2-A^2)] / (n_pos n_neg)`` with
    ``Q1 = A/(2-A)``, ``Q2 = 2A^2/(1+A)``; broadcasts over arrays; NaN without both classes.
    """
    A = np.asarray(auc, dtype=float)
    p, n = np.asarray(n_pos, dtype=float), np.asarray(n_neg, dtype=float)
    q1, q2 = A / (2 - A), 2 * A ** 2 / (1 + A)
    with np.errstate(all="ignore"):
        v = (A * (1 - A) + (p - 1) * (q1 - A ** 2) + (n - 1) * (q2 - A ** 2)) / (p * n)
        return np.where((p > 0) & (n > 0), np.sqrt(np.maximum(v, 0)), np.nan)


def roc_with_errors(study: xr.Dataset, indicators=STUDY_INDICATORS, n_folds: int = 5,
                    seed: int = 0) -> xr.Dataset:
    """:func:`roc_by_time` plus ``auc_se`` (Hanley-McNeil, dims ``(activation, init_range,
    indicator, time)``, from each (activation, init range)'s own failure count) and the attrs
    ``n_networks`` and ``max_auc_se``."""
    roc = roc_by_time(study, indicators=tuple(indicators), n_folds=n_folds, seed=seed)
    n_pos = roc["n_failed"]
    n_all = study.sizes["network"]
    n_pos = n_pos.broadcast_like(roc["auc"]).transpose(*roc["auc"].dims)  # (activation, init_range) -> auc's dims
    se = hanley_mcneil_se(roc["auc"].values, n_pos.values, n_all - n_pos.values)
    roc["auc_se"] = (roc["auc"].dims, np.asarray(se))
    roc["auc_se"].attrs["description"] = "Hanley-McNeil (1982) standard error of the AUC"
    roc["auc_std"].attrs["description"] = "standard deviation of the AUC over the CV folds"
    roc.attrs["n_networks"] = int(n_all)
    roc.attrs["max_auc_se"] = float(np.nanmax(se)) if np.isfinite(se).any() else float("nan")
    return roc
