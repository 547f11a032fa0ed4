"""Figure ``claims``: each claim's statistic with its 95 % interval against its prediction.

One small panel per row of ``results/claims.csv`` (:mod:`pathdep.stages.claims`), in ledger
order: the range the claim predicts for its statistic shaded (``predicted_lo`` ..
``predicted_hi``; an open side runs to the panel edge, a predicted value is a vertical
line), the statistic as a dot and its interval as a bar, coloured by verdict (supported
green, contradicted red, inconclusive grey); a claim that was not run says so and names the
config that runs it. Panels have their own x scales (the statistics have different units;
the panel's x label says which). Reads only the CSV.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pathdep.io.atomic import atomic_write  # noqa: E402

COLOURS = {"supported": "tab:green", "contradicted": "tab:red", "inconclusive": "0.45", "not run": "0.7"}


def verdict_kind(verdict: str) -> str:
    """``supported``, ``contradicted``, ``inconclusive`` or ``not run`` (reason dropped)."""
    v = str(verdict)
    return next((k for k in COLOURS if v.startswith(k)), "inconclusive")


def panel_limits(row) -> tuple[float, float] | None:
    """x limits covering the value, its interval and the finite edges of the predicted range
    (None when there is nothing finite to draw)."""
    vals = [row.get(k, math.nan) for k in ("value", "lo", "hi", "predicted_lo", "predicted_hi")]
    vals = [float(v) for v in vals if v is not None and np.isfinite(float(v))]
    if not vals:
        return None
    a, b = min(vals), max(vals)
    pad = max(0.25 * (b - a), 0.1 * max(abs(a), abs(b)), 1e-9) if b > a else max(0.25 * abs(a), 0.5)
    return a - pad, b + pad


def _panel(ax, row) -> None:
    kind = verdict_kind(row["verdict"])
    ax.set_title(f"{row['id']}\n{kind}", fontsize=7, color=COLOURS[kind])
    ax.set_yticks([])
    lim = panel_limits(row)
    if lim is None:
        ax.set_xticks([])
        ax.text(0.5, 0.5, textwrap.fill(str(row["verdict"]), 28), ha="center", va="center", fontsize=6,
                transform=ax.transAxes)
        return
    ax.set_xlim(*lim)
    plo, phi = float(row.get("predicted_lo", math.nan)), float(row.get("predicted_hi", math.nan))
    if np.isfinite(plo) and plo == phi:
        ax.axvline(plo, color="tab:green", lw=1.5, alpha=0.6)
    elif not (math.isnan(plo) and math.isnan(phi)):
        ax.axvspan(max(plo, lim[0]), min(phi, lim[1]), color="tab:green", alpha=0.15, lw=0)
    v, lo, hi = (float(row[k]) for k in ("value", "lo", "hi"))
    if np.isfinite(lo) and np.isfinite(hi):
        ax.plot([lo, hi], [0, 0], color=COLOURS[kind], lw=2)
    if np.isfinite(v):
        ax.plot([v], [0], "o", color=COLOURS[kind], ms=5)
    ax.set_ylim(-1, 1)
    ax.tick_params(axis="x", labelsize=6)
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.set_xlabel(textwrap.fill(str(row["statistic"]), 40), fontsize=5)


def plot_claims(csv: str, pdf: str, png: str, ncols: int = 5) -> None:
    """Draw ``results/figures/claims.pdf`` / ``.png`` from ``results/claims.csv``."""
    df = pd.read_csv(csv)
    n = max(len(df), 1)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 1.9 * nrows), squeeze=False)
    for ax, (_, row) in zip(axes.flat, df.iterrows()):
        _panel(ax, row)
    for ax in list(axes.flat)[len(df):]:
        ax.axis("off")
    fig.suptitle("Claims of the seeds: statistic and 95 % interval (bar) against the predicted range (green)",
                 fontsize=9)
    fig.tight_layout()
    for path, kw in ((pdf, {}), (png, {"dpi": 120})):
        with atomic_write(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", format=str(path).rsplit(".", 1)[-1], **kw)
    plt.close(fig)
