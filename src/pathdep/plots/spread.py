"""Figure ``spread``: how far apart networks end up when only one source of randomness
differs (initial weights, batch order, a hyperparameter, or everything).

Left: mean prediction disagreement with the baseline over training steps, one line per
source (log x) with its 95 % t interval across replicate baselines (band). Right: the final
standard deviation of test accuracy over each baseline's ensemble, one bar per source (mean
over baselines, error bar: 95 % t interval across them), labelled with its height (pp), its
ratio to the global source's sd, and, named as such, the source's share of the global
disagreement (a different quantity). One baseline: no bands or error bars.
Reads ``spread.nc`` / ``spread.csv`` written by :mod:`pathdep.stages.spread`.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from pathdep.io.atomic import atomic_write  # noqa: E402


def _save(fig, pdf: str, png: str) -> None:
    for path, kw in ((pdf, {}), (png, {"dpi": 120})):
        with atomic_write(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", format=str(path).rsplit(".", 1)[-1], **kw)
    plt.close(fig)


def bar_labels(df: pd.DataFrame) -> list[str]:
    """The right panel's bar labels: first what the bar shows (the sd of final test accuracy,
    in percentage points, and its ratio to the ``global`` source's sd: sqrt of
    ``acc_var_share``), then, named as such, the share of global disagreement."""
    out = []
    for sd, var_share, share in zip(df["acc_sd"].values, df["acc_var_share"].values if "acc_var_share" in df
                                    else np.full(len(df), np.nan), df["disagree_share"].values):
        txt = f"sd {100 * sd:.2f} pp"
        if np.isfinite(var_share) and var_share >= 0:
            txt += f"\n({np.sqrt(var_share):.0%} of global sd)"
        if np.isfinite(share):
            txt += f"\ndisagreement:\n{share:.0%} of global"
        out.append(txt)
    return out


def plot_spread(nc: str, csv: str, pdf: str, png: str):
    """Draw the spread figure; returns the figure's axes (for tests)."""
    ds = xr.load_dataset(nc, engine="h5netcdf")
    df = pd.read_csv(csv)
    srcs = [str(s) for s in ds["source"].values]
    colors = plt.cm.tab10(np.arange(len(srcs)) % 10)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for i, s in enumerate(srcs):
        st = ds["step"].values[i].astype(float)
        y = ds["disagree"].values[i]
        ok = (st > 0) & np.isfinite(y) & (y > 0)
        a.plot(st[ok], y[ok], color=colors[i], label=f"{s} ({ds['run'].values[i]})")
        if "disagree_lo" in ds:
            lo, hi = ds["disagree_lo"].values[i][ok], ds["disagree_hi"].values[i][ok]
            a.fill_between(st[ok], np.where(lo > 0, lo, y[ok] / 10), hi, color=colors[i], alpha=0.15, linewidth=0)
    a.set_xscale("log")
    a.set_yscale("log")  # the sources differ by decades
    a.set_xlabel("step")
    a.set_ylabel("test disagreement with the baseline")
    a.grid(alpha=0.3, which="both")
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    a.set_title("prediction spread over training")
    x = np.arange(len(df))
    err = None
    if "acc_sd_lo" in df and np.isfinite(df["acc_sd_lo"].values).any():
        m = df["acc_sd"].values
        err = 100 * np.vstack([np.clip(m - df["acc_sd_lo"].values, 0, None), df["acc_sd_hi"].values - m])
    b.bar(x, df["acc_sd"].values * 100, color=colors[: len(df)], yerr=err, capsize=4, ecolor="0.3")
    tops = df["acc_sd"].values * 100 + (err[1] if err is not None else 0)
    for xi, txt in enumerate(bar_labels(df)):
        b.annotate(txt, (xi, np.nan_to_num(tops[xi])), xytext=(0, 2), textcoords="offset points",
                   ha="center", va="bottom", fontsize=7)
    b.set_xticks(x)
    b.set_xticklabels(df["source"].values)
    b.set_ylabel("sd of final test accuracy (pp)")
    top = np.nanmax(tops) if len(df) else 1.0
    b.set_ylim(0, (top if np.isfinite(top) and top > 0 else 1.0) * 1.5)
    nb = int(df["baselines"].min()) if "baselines" in df and len(df) else 1
    b.set_title("final spread by source (bar: sd of test accuracy;\n" +
                (f"error bar: 95 % t interval across {nb} baselines)" if nb > 1 else "one baseline: no error bar)"),
                fontsize=9)
    fig.tight_layout()
    _save(fig, pdf, png)
    return (a, b)
