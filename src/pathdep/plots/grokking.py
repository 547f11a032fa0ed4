"""Figure ``<experiment>_grokking``: train and test accuracy and loss of a grokking experiment.

Left: accuracy against the training step (log x), train solid and test dashed, one colour
per run (e.g. ``constrain_norm=False`` and ``=True``); the baseline of each run is the line
and the other networks of the run are thin lines of the same colour; the first recorded
steps at train 100 % (circle) and test 90 % (square) of each run's first baseline are marked
(from ``grokking.csv``). Middle: the losses the same way (log y). Right: the test loss over
the first 100 steps on a linear axis (where the two runs' early dynamics look alike).
Reads the runs' ``metrics.nc`` and ``grokking.csv`` (:mod:`pathdep.stages.grokking`).
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pandas as pd

from pathdep.plots.common import colors, figure_legend, load, log_axes, plt, run_label, save, step_axis

__all__ = ["plot_grokking", "plot_grokking_koopman", "plot_grokking_path"]


def _curves(ax, ds, var_train: str, var_test: str, color, label: str) -> None:
    x = step_axis(ds)
    base = np.asarray(ds["role"].values) == "baseline"
    for k in range(ds.sizes["member"]):
        lw, alpha = (1.6, 1.0) if base[k] else (0.6, 0.5)
        first = k == int(np.argmax(base))
        ax.plot(x, ds[var_train].values[k], color=color, lw=lw, alpha=alpha,
                label=f"{label}: train" if first else None)
        ax.plot(x, ds[var_test].values[k], color=color, lw=lw, alpha=alpha, ls="--",
                label=f"{label}: test" if first else None)


def _marks(ax, df: pd.DataFrame, run: str, color) -> None:
    rows = df[(df["run"] == run) & (df["copy"] == 0)]
    if rows.empty:
        return
    r = rows.iloc[0]
    if np.isfinite(r["train_1.0"]) and r["train_1.0"] > 0:
        ax.plot(r["train_1.0"], 1.0, "o", color=color, ms=6, mfc="none")
    if np.isfinite(r["test_0.9"]) and r["test_0.9"] > 0:
        ax.plot(r["test_0.9"], 0.9, "s", color=color, ms=6, mfc="none")


def plot_grokking(metrics: Sequence[str], csv: str, pdf: str, png: str):
    """Draw the grokking figure of one experiment; returns the (closed) figure."""
    dss = load(metrics)
    df = pd.read_csv(csv)
    cols = colors(len(dss), "tab10")
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    for ds, col in zip(dss, cols):
        lab = run_label(ds)
        _curves(a, ds, "train_acc", "test_acc", col, lab)
        _marks(a, df, str(ds.attrs.get("run", "")), col)
        _curves(b, ds, "train_loss", "test_loss", col, lab)
        s = ds["step"].values.astype(float)
        early = s <= 100
        for k in range(ds.sizes["member"]):
            c.plot(s[early], ds["test_loss"].values[k][early], color=col, lw=1.0, alpha=0.8)
    log_axes(a, x=True, y=False)
    a.set_ylim(-0.02, 1.02)
    a.set_xlabel("step")
    a.set_ylabel("accuracy")
    a.set_title("accuracy (o: train 100 %, s: test 90 %)", fontsize=9)
    log_axes(b)
    b.set_xlabel("step")
    b.set_ylabel("cross-entropy loss")
    b.set_title("loss", fontsize=9)
    c.grid(alpha=0.3)
    c.set_xlabel("step")
    c.set_ylabel("test loss")
    c.set_title("test loss, first 100 steps", fontsize=9)
    exp = str(dss[0].attrs.get("experiment", "")) if dss else ""
    fig.suptitle(f"{exp}: grokking (solid: train, dashed: test; thick: baselines)", fontsize=10)
    figure_legend(fig, a)
    return save(fig, pdf, png)


_MARKERS = ("o", "x", "s", "+")


def _unit_circle(ax, ds, obs: str, groups: list[str], cols, row) -> None:
    """Eigenvalues of every replicate spectrum of one observable, one colour per group."""
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(t), np.sin(t), color="0.6", lw=0.8)
    sub = ds.sel(observable=obs)
    markers = _MARKERS
    for gi, g in enumerate(groups):
        runs = [r for r, gr in zip(ds["run"].values, ds["group"].values) if str(gr) == g]
        re = sub["eig_real"].sel(run=runs).values.ravel()
        im = sub["eig_imag"].sel(run=runs).values.ravel()
        ax.scatter(re, im, s=14, color=cols[gi], marker=markers[gi % 4], alpha=0.7,
                   label=f"{ds.attrs.get('group_by', 'group')}={g}", linewidths=0.9,
                   facecolors="none" if markers[gi % 4] in ("o", "s") else None)
    z = sub["eig_real"].values + 1j * sub["eig_imag"].values
    z = z[np.isfinite(z)]
    if z.size:                                      # zoom on the eigenvalues (they crowd near 1)
        half = 0.6 * max(np.ptp(z.real), np.ptp(z.imag), 0.05)     # a square window around them
        cx, cy = (z.real.min() + z.real.max()) / 2, (z.imag.min() + z.imag.max()) / 2
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy - half, cy + half)
    ax.set_aspect("equal", adjustable="box")
    ax.axhline(0, color="0.85", lw=0.5)
    ax.axvline(0, color="0.85", lw=0.5)
    ax.set_xlabel("Re $\\lambda$")
    ax.set_ylabel("Im $\\lambda$")
    txt = (f"W1 between {row['w1_between']:.3g}, within {row['w1_within']:.3g}\n"
           f"p = {row['p_value']:.3g} ({row['p_method']}, floor {row['p_min']:.3g}; {int(row['n_a'])} vs "
           f"{int(row['n_b'])})" if row is not None and np.isfinite(row["p_value"]) else "no test")
    ax.set_title(f"observable: {obs} (zoomed; grey: unit circle)\n{txt}", fontsize=8)


def plot_grokking_koopman(nc: str, csv: str, metrics: Sequence[str], pdf: str, png: str):
    """The seed's figure: test loss over the first steps, and the Koopman eigenvalues of both groups."""
    ds = load([nc])[0]
    df = pd.read_csv(csv)
    groups = list(dict.fromkeys(str(g) for g in ds["group"].values))
    cols = colors(max(len(groups), 2), "tab10")
    obs = [str(o) for o in ds["observable"].values]
    fig, axes = plt.subplots(1, 1 + len(obs), figsize=(4.2 * (1 + len(obs)), 4.2), layout="constrained")
    a = axes[0]
    steps = int(json.loads(ds.attrs.get("spec", "{}")).get("steps", 100))
    for m in load(metrics):
        g = str(ds["group"].sel(run=str(m.attrs.get("run", ""))).values)
        s = m["step"].values
        keep = s <= steps
        for k in np.flatnonzero(np.asarray(m["copy"].values) == 0):
            a.plot(s[keep], m["test_loss"].values[k][keep], color=cols[groups.index(g)], lw=0.9, alpha=0.8)
    for gi, g in enumerate(groups):                 # one legend: line (loss) and marker (eigenvalues)
        a.plot([], [], color=cols[gi], marker=_MARKERS[gi % 4], mfc="none",
               label=f"{ds.attrs.get('group_by', 'group')}={g}")
    a.set_xlabel("step")
    a.set_ylabel("test loss")
    a.set_title(f"test loss, first {steps} steps\n(one line per independent baseline)", fontsize=8)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    for ax, o in zip(axes[1:], obs):
        rows = df[(df["observable"] == o)]
        _unit_circle(ax, ds, o, groups, cols, rows.iloc[0] if len(rows) else None)
    fig.suptitle(f"{ds.attrs.get('experiment', '')}: Koopman eigenvalues over the first {steps} steps "
                 "(one spectrum per independent baseline)", fontsize=10)
    return save(fig, pdf, png)


def _shift_panel(ax, df: pd.DataFrame) -> None:
    """Mean shift of the grokking step (t interval across baselines) against eps, per level."""
    for i, (lev, mk) in enumerate((("test_0.5", "o"), ("test_0.9", "s"))):
        d = df[df["level"] == lev].sort_values("epsilon")
        if d.empty:
            continue
        x = d["epsilon"].values * (1.0 + 0.12 * (2 * i - 1))            # side by side
        err = np.vstack([d["shift"] - d["shift_lo"], d["shift_hi"] - d["shift"]])
        col = f"C{i}"
        ax.errorbar(x, d["shift"], yerr=np.where(np.isfinite(err), err, 0.0), fmt=mk, color=col, capsize=3,
                    mfc="none", label=f"{lev}: copy vs own baseline")
        ax.axhline(d["independent_spread"].iloc[0], color=col, ls=":", lw=1.0,
                   label=f"{lev}: independent baselines")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.set_xlabel("relative init perturbation eps")
    ax.set_ylabel("|grokking step - own baseline's| (steps)")
    p = df.groupby("level")["trend_p"].first()
    ax.set_title("shift of the grokking step (95 % t interval)\ntrend over eps: "
                 + ", ".join(f"{lev} p={v:.2g}" for lev, v in p.items()), fontsize=8)
    ax.legend(fontsize=6.5)


def _dist_panel(ax, ds, cols) -> None:
    """Weight distance of every copy to its baseline, the copy's test-0.9 step marked."""
    steps = ds["step"].values.astype(float)
    x = np.where(steps > 0, steps, np.nan)
    for i in range(ds.sizes["run"]):
        copies = np.flatnonzero(ds["copy"].values[i] > 0)
        for k in copies:
            y = ds["dist"].values[i, k]
            ax.plot(x, y, color=cols[i], lw=0.8, alpha=0.8,
                    label=f"eps={ds['epsilon'].values[i]:.0e}" if k == copies[0] else None)
            s9 = ds["test_0.9"].values[i, k]
            if np.isfinite(s9) and s9 in steps:
                ax.plot(s9, y[int(np.flatnonzero(steps == s9)[0])], "s", color=cols[i], ms=5, mfc="none")
    log_axes(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("|w_copy - w_baseline|")
    ax.set_title("weight distance to own baseline\n(s: the copy's test-90 % step)", fontsize=8)
    ax.legend(fontsize=6.5)


def _barrier_panel(ax, ds, cols) -> None:
    """Raw test-loss interpolation barrier of each interpolated copy against the checkpoint step."""
    x = ds["icheckpoint_step"].values.astype(float)
    for i in range(ds.sizes["run"]):
        for j in range(ds.sizes["imember"]):
            ax.plot(np.where(x > 0, x, np.nan), ds["barrier_raw_test"].values[i, j], "-o", color=cols[i], ms=3,
                    lw=0.8, alpha=0.8)
    base9 = ds["test_0.9"].values[ds["copy"].values == 0]
    if np.isfinite(base9).any():
        ax.axvspan(np.nanmin(base9), np.nanmax(base9), color="0.85", zorder=0, label="baselines' test-90 % steps")
        ax.legend(fontsize=6.5)
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.set_xlabel("step of the interpolation checkpoint")
    ax.set_ylabel("test-loss barrier (raw)")
    ax.set_title("linear-interpolation barrier, copy to own baseline", fontsize=8)


def plot_grokking_path(nc: str, csv: str, pdf: str, png: str):
    """Path dependence of grokking: step shift against eps, distance curves, barriers."""
    ds = load([nc])[0]
    df = pd.read_csv(csv)
    cols = colors(ds.sizes["run"], "viridis")
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4.2), layout="constrained")
    _shift_panel(a, df)
    _dist_panel(b, ds, cols)
    _barrier_panel(c, ds, cols)
    fig.suptitle(f"{ds.attrs.get('experiment', '')}: how much the grokking step depends on the initial weights "
                 f"({int(df['n_baselines'].max())} independent baselines per eps)", fontsize=10)
    return save(fig, pdf, png)
