"""Koopman figures (rules/koopman.smk): read the netCDF files of pathdep.stages.koopman, draw.

* :func:`plot_toy`: Redman et al. (2024) Fig. 2: example iterates of OMD (x), OGD (u = log x)
  and bisection; their losses; the Koopman eigenvalues (whole unit disc, and zoomed on the
  OMD/OGD cluster), with the W1/p-value table in the title.
* :func:`plot_spectra`: pooled Koopman eigenvalues of every run (colour = group), the
  run x run W1 heat map, and the histogram of W1 between independent replicates (one
  spectrum per baseline) within groups against between groups (the paper's FCN histogram,
  the inputs of the test), plus W1 between each copy and its own baseline.
* :func:`plot_calibration`: rejection rate of the conjugacy test against replicates per
  group (null, alternative = power, copies of one baseline as replicates) with
  Clopper-Pearson intervals, and the null p-values' empirical CDF against the uniform.
* :func:`plot_windows`: Redman et al.'s LeNet-5 figure: heat maps of log10 W1 between the
  Koopman spectra of windows of training (one panel per run, up to ``max_runs``, and the
  mean over runs), on one colour scale; drawn only when ``koopman.experiments.<exp>.windows``
  is set.

How it was checked: tests/plots/test_koopman.py (files written, the eigenvalues drawn are
the file's, the window heat map is log10 of the file's W1 with the diagonal masked; every
PNG looked at).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from pathdep.plots.common import colors, load, plt, save

_MARK = {"OMD": ("o", "k"), "OGD": ("^", "tab:red"), "BM": ("*", "tab:blue")}


def _eig(ds, re="eig_real", im="eig_imag"):
    return ds[re].values + 1j * ds[im].values


def _circle(ax):
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(t), np.sin(t), "k--", lw=0.7, alpha=0.6)


def plot_toy(nc: str | Path, pdf: str | Path, png: str | Path, ic: int | None = None):
    """Iterates, losses and spectra of the OMD/OGD/BM toy (one figure, 4 panels)."""
    ds = load([nc])[0]
    table = json.loads(ds.attrs["table"])
    methods = list(ds["algorithm"].values)
    n_ic = ds.sizes["ic"]
    ic = n_ic // 2 + 1 if ic is None else ic
    fig, axs = plt.subplots(1, 4, figsize=(17, 4.2))
    t = np.arange(ds.sizes["t"])
    names = {"OMD": "x", "OGD": "u", "BM": "z"}
    for m in methods:
        mk, c = _MARK.get(m, ("o", None))
        it = ds["iterate"].sel(algorithm=m).values[ic]
        for dmi, ls in zip(range(it.shape[1]), ("-", "--")):
            axs[0].plot(t, it[:, dmi], ls, color=c, label=f"{m}: ${names.get(m, 'x')}_{dmi + 1}$")
        axs[1].plot(t, ds["loss"].sel(algorithm=m).values[ic], color=c, label=m,
                    lw=3.5 if m == "OMD" else 1.5, ls="--" if m == "OGD" else "-")
    axs[0].set(xlabel="iteration", ylabel="state variable", title=f"A. iterates (initial condition {ic})")
    # under the panel: inside it the legend hid the OGD u2 curve
    axs[0].legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.17), frameon=False)
    axs[1].set(xlabel="iteration", ylabel="loss f (|f| for BM)", yscale="log",
               title="B. loss (OMD and OGD overlap)")
    axs[1].legend(fontsize=8)
    for ax, zoom in ((axs[2], False), (axs[3], True)):
        if not zoom:
            _circle(ax)
        for m in methods:
            mk, c = _MARK.get(m, ("o", None))
            ev = _eig(ds.sel(algorithm=m))
            ev = ev[np.isfinite(ev)]
            ax.plot(ev.real, ev.imag, mk, color=c, mfc="none" if m == "OMD" else c, ms=8 if m != "BM" else 10,
                    label=m, alpha=0.85)
        ax.set(xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$")
        if zoom:
            ev = np.concatenate([_eig(ds.sel(algorithm=m)) for m in methods if m != "BM"])
            ev = ev[np.isfinite(ev)]
            lo = min(ev.real.min(), 1.0)
            ax.set_xlim(lo - 0.05, 1.03)
            ax.set_ylim(-0.05, 0.05)
            ax.set_title("D. zoom on OMD/OGD", fontsize=10)
        else:
            ax.set_xlim(-1.15, 1.15)
            ax.set_ylim(-1.15, 1.15)
            ax.set_aspect("equal")
            ax.set_title("C. Koopman eigenvalues", fontsize=10)
        ax.legend(fontsize=8, loc="lower left")
    txt = "; ".join(f"W1({r['a']},{r['b']})={r['w1']:.3g} (p={r['p_value']:.3g})" for r in table)
    floor = f"; p floor {table[0]['p_min']:.3g} ({table[0]['p_method']})" if "p_min" in table[0] else ""
    fig.suptitle(f"OMD vs OGD vs bisection on f = sum tan x: {txt}{floor}", fontsize=10)
    fig.tight_layout()
    return save(fig, pdf, png)


def plot_spectra(nc: str | Path, pdf: str | Path, png: str | Path):
    """Spectra, W1 heat map and W1 histograms of one experiment's runs."""
    ds = load([nc])[0]
    exp = ds.attrs.get("experiment", "")
    runs = [str(r) for r in ds["run"].values]
    groups = [str(g) for g in ds["group"].values]
    ug = list(dict.fromkeys(groups))
    cols = colors(len(ug))
    fig, axs = plt.subplots(1, 4, figsize=(19, 4.4))
    ax = axs[0]
    _circle(ax)
    for i, r in enumerate(runs):
        ev = _eig(ds.isel(run=i))
        ev = ev[np.isfinite(ev)]
        g = ug.index(groups[i])
        ax.plot(ev.real, ev.imag, "o", ms=5, color=cols[g], alpha=0.6,
                label=groups[i] if groups.index(groups[i]) == i else None)
    ax.set(xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$", title=f"A. {exp}: pooled Koopman eigenvalues")
    ax.set_aspect("equal")
    # under the panel: inside the unit disc the legend hid eigenvalues
    ax.legend(fontsize=7, title=ds.attrs.get("group_by") or "run", title_fontsize=7, loc="upper center",
              bbox_to_anchor=(0.5, -0.15), ncol=min(len(ug), 3), frameon=False)
    # zoom near 1, where training modes sit
    ax = axs[1]
    for i, r in enumerate(runs):
        ev = _eig(ds.isel(run=i))
        ev = ev[np.isfinite(ev)]
        ax.plot(ev.real, ev.imag, "o", ms=5, color=cols[ug.index(groups[i])], alpha=0.6)
    ax.set_xlim(0.75, 1.05)
    ax.set_ylim(-0.15, 0.15)
    ax.axvline(1.0, color="k", lw=0.5, ls=":")
    ax.set(xlabel=r"Re $\lambda$", ylabel=r"Im $\lambda$", title=r"B. zoom near $\lambda = 1$ (slow modes)")
    ax = axs[2]
    d = ds["w1_runs"].values
    order = sorted(range(len(runs)), key=lambda i: ug.index(groups[i]))   # runs of a group together
    im = ax.imshow(d[np.ix_(order, order)], cmap="magma")
    ax.set_xticks(range(len(runs)), [runs[i] for i in order], rotation=90, fontsize=6)
    ax.set_yticks(range(len(runs)), [runs[i] for i in order], fontsize=6)
    fig.colorbar(im, ax=ax, fraction=0.046, label="W1 between pooled spectra")
    ax.set_title("C. W1 between runs")
    _distance_histograms(axs[3], ds, groups)
    fig.suptitle(f"Koopman spectra of experiment {exp} (observable: "
                 f"{json.loads(ds.attrs['spec'])['observable']}){_p_summary(ds)}", fontsize=10)
    fig.tight_layout()
    return save(fig, pdf, png)


def _p_summary(ds) -> str:
    """'; min p over N group pairs = x (floor y, method)' or the reason no test ran."""
    table = json.loads(ds.attrs.get("table", "[]"))
    ok = [r for r in table if r.get("p_value") is not None and np.isfinite(r["p_value"])]
    if not ok:
        return ("; no conjugacy test ran (fewer than 2 independent replicates per group, or degenerate "
                "spectra: the CSV's note)") if table else ""
    best = min(ok, key=lambda r: r["p_value"])
    floor = f" (floor {best['p_min']:.3g}, {best['p_method']})" if "p_min" in best else ""
    return f"; min permutation p over {len(table)} group pairs = {best['p_value']:.3g}{floor}"


def _distance_histograms(ax, ds, groups):
    """W1 between independent replicates within / between groups, and copy vs own baseline."""
    if "w1_replicates" in ds:
        d, g, what = ds["w1_replicates"].values, [str(x) for x in ds["replicate_group"].values], "replicates"
    else:                                                # files before replicate baselines: runs
        d, g, what = ds["w1_runs"].values, groups, "runs"
    same = np.array(g)[:, None] == np.array(g)[None, :]
    iu = np.triu_indices(len(g), 1)
    within, between = d[iu][same[iu]], d[iu][~same[iu]]
    bm = ds["w1_baseline_member"].values[:, 1:].ravel()
    bm = bm[bm != 0]                                     # a baseline against itself
    data = [(within, f"{what} within group"), (between, f"{what} between groups"), (bm, "copy vs own baseline")]
    finite = np.concatenate([x[np.isfinite(x)] for x, _ in data] + [np.zeros(1)])
    bins = np.linspace(0, max(finite.max(), 1e-12) * 1.05, 25)
    for (x, lab), c in zip(data, ("tab:blue", "tab:orange", "tab:gray")):
        x = x[np.isfinite(x)]
        if x.size:
            ax.hist(x, bins=bins, alpha=0.55, color=c, label=f"{lab} (n={x.size}, mean {x.mean():.3g})")
    ax.set(xlabel="W1 between Koopman spectra", ylabel="count",
           title="D. distances (test: replicates within vs between)")
    ax.legend(fontsize=7)


_CASE_STYLE = {"null_seeds": ("tab:blue", "o", "null: same setting, independent seeds"),
               "alternative": ("tab:orange", "s", "alternative: shifted eigenvalue pair (power)"),
               "null_copies": ("tab:gray", "^", "null with copies of one baseline as replicates")}


def plot_calibration(nc: str | Path, pdf: str | Path, png: str | Path):
    """Rejection rates of the conjugacy test against replicates per group, and the null p-values."""
    ds = load([nc])[0]
    table = json.loads(ds.attrs["table"])
    spec = json.loads(ds.attrs["spec"])
    alpha = spec["alpha"]
    fig, axs = plt.subplots(1, 2, figsize=(12, 4.4))
    ax = axs[0]
    for case in ds["case"].values:
        rows = [r for r in table if r["case"] == case]
        n = np.array([r["replicates"] for r in rows])
        rate = np.array([r["rate"] for r in rows])
        err = np.array([[r["rate"] - r["rate_lo"] for r in rows], [r["rate_hi"] - r["rate"] for r in rows]])
        c, mk, lab = _CASE_STYLE.get(str(case), (None, "o", str(case)))
        ax.errorbar(n, rate, yerr=err, marker=mk, color=c, capsize=3, label=lab)
    floors = {r["replicates"]: r["p_min"] for r in table}
    for n, f in floors.items():
        if f > alpha:
            ax.axvspan(n - 0.4, n + 0.4, color="0.9", zorder=0)
    ax.axhline(alpha, color="k", ls=":", lw=0.8, label=f"alpha = {alpha:g}")
    ax.axhline(2 * alpha, color="tab:red", ls="--", lw=0.8, label=f"bound on the null rate ({2 * alpha:g})")
    ax.set(xlabel="independent replicates per group", ylabel=f"rejection rate at p <= {alpha:g}",
           ylim=(-0.03, 1.03), xticks=sorted(floors),
           title=f"A. rejections over {spec['repeats']} repeats (grey: exact p floor > alpha)")
    ax.legend(fontsize=7, loc="center right")
    ax = axs[1]
    cols = colors(ds.sizes["replicates"])
    for i, n in enumerate(ds["replicates"].values):
        p = np.sort(ds["p_value"].sel(case="null_seeds").values[i])
        ax.step(p, np.arange(1, len(p) + 1) / len(p), where="post", color=cols[i],
                label=f"{n} vs {n} (floor {floors[int(n)]:.3g})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.7, label="uniform")
    ax.axvline(alpha, color="k", ls=":", lw=0.8)
    ax.set(xlabel="p-value", ylabel="fraction of repeats with p <= x", xlim=(0, 1), ylim=(0, 1),
           title="B. null p-values (valid: on or below the diagonal)")
    ax.legend(fontsize=7, title="replicates per group", title_fontsize=7)
    fig.suptitle(f"Calibration of the Koopman conjugacy test on noisy linear systems "
                 f"(alternative: first angle + {spec['delta']:g} rad)", fontsize=10)
    fig.tight_layout()
    return save(fig, pdf, png)


def _window_labels(ds, i: int, k: int) -> list[str]:
    start, stop = ds["window_start"].values[i, :k], ds["window_stop"].values[i, :k]
    return [f"{a}-{b}" for a, b in zip(start, stop)]


def _split_note(ax, ds, i: int, k: int, title: str) -> str:
    """Lines at a run's best two-block split (``window_split``) and its contrast and p for the
    panel title ('' for the mean panel and files without the transition scan)."""
    if "window_split" not in ds or title.startswith("mean over"):
        return ""
    s, c, p = int(ds["window_split"].values[i]), float(ds["window_contrast"].values[i]), float(ds["window_p"].values[i])
    if s < 0 or s >= k:
        return "\n(no split scanned)"
    for line in (ax.axhline, ax.axvline):
        line(s - 0.5, color="w", lw=1.2, ls="--")
    return (f"\nsplit at step {int(ds['window_start'].values[i, s])}: contrast {c:.2f},"
            f"\np = {p:.3g} (floor {float(ds.attrs.get('window_p_min', np.nan)):.2g})")


def plot_windows(nc: str | Path, pdf: str | Path, png: str | Path, max_runs: int = 4):
    """Heat maps of log10 W1 between the Koopman spectra of windows of training.

    Args:
        nc: a ``koopman_experiment`` netCDF holding ``w1_windows (run, window, window2)``.
        pdf, png: outputs.
        max_runs: panels for the first ``max_runs`` runs (plus one for the mean over all
            runs when there are several).

    Returns:
        The figure; panel images hold log10 W1 (diagonal and missing windows masked).
    """
    ds = load([nc])[0]
    if "w1_windows" not in ds:
        raise ValueError(f"{nc}: no w1_windows (koopman.experiments.<exp>.windows is not set)")
    exp = ds.attrs.get("experiment", "")
    runs = [str(r) for r in ds["run"].values]
    d = ds["w1_windows"].values                                   # (run, W, W)
    shown = list(range(min(len(runs), max_runs)))
    panels = [(runs[i], d[i], i) for i in shown]
    if len(runs) > 1:
        longest = int(np.argmax((ds["window_start"].values >= 0).sum(axis=1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)                 # all-NaN cells stay NaN
            panels.append((f"mean over {len(runs)} runs", np.nanmean(d, axis=0), longest))
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = []
        for _, m, _ in panels:
            lm = np.log10(m)
            lm[np.eye(len(m), dtype=bool)] = np.nan
            lm[~np.isfinite(lm)] = np.nan
            logs.append(lm)
    finite = np.concatenate([x[np.isfinite(x)] for x in logs] + [np.zeros(0)])
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (-1.0, 0.0)
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    n = len(panels)
    fig, axs = plt.subplots(1, n, figsize=(4.3 * n + 1.2, 4.4), squeeze=False)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    spec = json.loads(ds.attrs.get("spec", "{}"))
    for ax, (title, _, i), lm in zip(axs[0], panels, logs):
        valid = ds["window_start"].values[i] >= 0
        k = int(valid.sum())
        im = ax.imshow(lm[:k, :k], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        labels = _window_labels(ds, i, k)
        every = max(1, int(np.ceil(k / 12)))
        ticks = list(range(0, k, every))
        ax.set_xticks(ticks, [labels[t] for t in ticks], rotation=90, fontsize=7)
        ax.set_yticks(ticks, [labels[t] for t in ticks], fontsize=7)
        ax.set_xlabel("window (training steps)")
        ax.set_title(title + _split_note(ax, ds, i, k, title), fontsize=10)
    axs[0][0].set_ylabel("window (training steps)")
    fig.colorbar(im, ax=list(axs[0]), fraction=0.025, pad=0.02, label=r"$\log_{10} W_1$ between window spectra")
    win = spec.get("windows") or {}
    how = "one epoch each" if win.get("per_epoch") else f"{win.get('size')} steps, stride {win.get('stride', win.get('size'))}"
    fig.suptitle(f"Koopman spectra of windows of training, experiment {exp} (observable "
                 f"{spec.get('observable')}, windows: {how}; grey: diagonal / degenerate)", fontsize=10,
                 y=1.0 + 0.1 * ("window_split" in ds))    # above the three-line panel titles
    return save(fig, pdf, png)
