"""pathdep.plots.common: the band's statistics against NumPy (NaN-aware), the one meaning of
``members`` (role != baseline, wherever the baseline sits), atomic PDF + PNG saving, labels,
and the shared axes helpers."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from helpers import assert_figure_files, synthetic_metrics

from pathdep.plots import common as C


def _ds(role, swept=None, run="r7", experiment="ex"):
    y = np.arange(len(role) * 3, dtype=float).reshape(len(role), 3)
    return xr.Dataset({"y": (("member", "checkpoint"), y)}, coords={"role": ("member", np.asarray(role))},
                      attrs={"swept": json.dumps(swept or {}), "run": run, "experiment": experiment})


@pytest.mark.parametrize("role", [["baseline", "member", "member"], ["member", "baseline", "member", "member"],
                                  ["member", "member", "baseline"]])
def test_members_excludes_the_baseline_wherever_it_is(role):
    ds = _ds(role)
    b = role.index("baseline")
    got = C.members(ds, "y")
    want = np.delete(ds["y"].values, b, axis=0)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(C.baseline(ds, "y"), ds["y"].values[b])
    assert got.shape == (len(role) - 1, 3)


def test_members_needs_roles():
    ds = _ds(["baseline", "member"]).drop_vars("role")
    with pytest.raises(KeyError, match="role"):
        C.members(ds, "y")
    with pytest.raises(KeyError, match="baseline"):
        C.baseline(_ds(["member", "member"]), "y")


def test_band_is_nan_aware_mean_min_max():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(5, 7))
    y[1, 2:] = np.nan  # a diverged member: masked from checkpoint 2 on
    y[:, 6] = np.nan  # a checkpoint no member reached
    x = np.arange(1.0, 8.0)
    fig, ax = plt.subplots()
    line, fill = C.band(ax, x, y, "C0", "lab")
    m = line.get_ydata()
    np.testing.assert_allclose(m[:6], [np.mean(y[np.isfinite(y[:, j]), j]) for j in range(6)])
    assert np.isnan(m[6]) and line.get_label() == "lab"
    # the band's polygon spans exactly [min, max] of the finite members at every x
    verts = fill.get_paths()[0].vertices
    for j in range(6):
        ys = verts[np.isclose(verts[:, 0], x[j]), 1]
        col = y[np.isfinite(y[:, j]), j]
        assert ys.min() == pytest.approx(col.min()) and ys.max() == pytest.approx(col.max())
    # every finite member value lies inside the band
    lo, hi = C.stats(y)[1:]
    fin = np.isfinite(y)
    assert np.all((y >= lo - 1e-12)[fin]) and np.all((y <= hi + 1e-12)[fin])
    # one row: a line and no band; no rows: NaN without warnings
    assert C.band(ax, x, y[0], "C1")[1] is None
    with np.errstate(all="raise"):
        m0, lo0, hi0 = C.stats(np.empty((0, 7)))
    assert np.isnan(m0).all() and m0.shape == (7,)
    plt.close(fig)


def test_save_writes_pdf_and_png_atomically_and_closes(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [1, 4, 9])
    pdf, png = tmp_path / "sub" / "f.pdf", tmp_path / "sub" / "f.png"
    out = C.save(fig, pdf, png, dpi=50)
    assert out is fig and plt.get_fignums() == []
    w, h = assert_figure_files(pdf, png)
    # 4 x 3 inches at 50 dpi, cropped to the drawn area by bbox_inches="tight"
    assert 100 < w <= 200 and 100 < h <= 150
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["f.pdf", "f.png"]


def test_save_failure_leaves_the_old_file(tmp_path):
    pdf, png = tmp_path / "f.pdf", tmp_path / "f.png"
    pdf.write_bytes(b"old")
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1, 2])
    fig.text(0.5, 0.5, r"$\undefinedmacro$")  # mathtext fails at draw time
    with pytest.raises(ValueError):
        C.save(fig, pdf, png)
    plt.close(fig)
    assert pdf.read_bytes() == b"old" and not png.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["f.pdf"]


def test_run_label():
    assert C.run_label(_ds(["baseline"], {"perturbation.epsilon": 0.01, "optimizer.lr": 0.1})) == "epsilon=0.01, lr=0.1"
    assert C.run_label(_ds(["baseline"])) == "r7"
    assert C.run_label(_ds(["baseline"], {"optimizer.lr": 0.1}), experiment=True) == "ex: lr=0.1"


def test_axes_helpers(tmp_path):
    ds = synthetic_metrics(tmp_path / "m.nc", steps=(0, 3, 10))
    x = C.step_axis(ds)
    assert np.isnan(x[0]) and list(x[1:]) == [3.0, 10.0]
    assert C.n_diverged(ds) == 0
    assert C.n_diverged(synthetic_metrics(tmp_path / "d.nc", diverged={1: 2, 3: 0})) == 2
    cols = C.colors(4)
    assert cols.shape == (4, 4) and len({tuple(c) for c in cols}) == 4
    assert C.colors(12, "tab10").shape == (12, 4)
    fig, ax = plt.subplots()
    C.log_axes(ax, y=False)
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "linear")
    plt.close(fig)
    back = C.load([tmp_path / "m.nc"])[0]
    np.testing.assert_array_equal(back["dist"].values, ds["dist"].values)


def test_sparse_log_ticks_label_few_decades_plainly():
    fig, (a, b) = plt.subplots(1, 2)
    widths = [25, 50, 100, 200, 400]
    a.plot(widths, widths)
    a.set_xscale("log")
    C.sparse_log_ticks(a, widths)
    b.plot([1e-6, 1e-1], [1, 2])  # five decades: left to matplotlib
    b.set_xscale("log")
    fmt = b.xaxis.get_major_formatter()
    C.sparse_log_ticks(b, [1e-6, 1e-1])
    fig.canvas.draw()
    assert [t.get_text() for t in a.get_xticklabels()] == ["25", "50", "100", "200", "400"]
    assert not any(t.get_text() for t in a.get_xticklabels(minor=True))
    assert b.xaxis.get_major_formatter() is fmt
    plt.close(fig)


def test_layout_helpers(tmp_path):
    fig, axes = plt.subplots(1, 3, layout="constrained")
    axes[0].plot([0, 1], [2.799 + 1e-7, 2.799 - 1e-7], label="run a")  # float32 noise of a flat curve
    C.plain_ticks(axes[0])
    C.min_span(axes[0], 1e-3)
    lo, hi = axes[0].get_ylim()
    assert hi - lo == pytest.approx(1e-3 * 2.799, rel=1e-3) and lo < 2.799 < hi
    C.not_defined(axes[1], "not defined for these runs")
    axes[2].set_xscale("symlog", linthresh=1.0)
    axes[2].plot([0, 10, 1000], [1, 2, 3], "o")
    C.pad_x(axes[2], [0, 10, 1000])
    lo, hi = axes[2].get_xlim()
    assert lo < 0 and hi > 1000
    leg = C.figure_legend(fig)
    fig.canvas.draw()
    assert [t.get_text() for t in leg.get_texts()] == ["run a"]
    assert leg.get_window_extent().x0 >= max(ax.get_window_extent().x1 for ax in axes)
    assert axes[0].yaxis.get_offset_text().get_text() == ""
    assert not axes[1].axison and axes[1].texts[0].get_text() == "not defined for these runs"
    assert C.figure_legend(plt.figure()) is None
    plt.close("all")


def test_baseline_band_is_the_t_interval_across_baselines_not_the_copies():
    import matplotlib.pyplot as plt
    import xarray as xr
    from scipy import stats as st

    from pathdep.plots.common import band_text, baseline_band

    # 3 baselines x (baseline + 2 copies), 2 checkpoints; copies of baseline r sit at r + 1 +- 0.1
    vals = np.array([[0, 0], [0.9, 1.9], [1.1, 2.1], [0, 0], [1.9, 2.9], [2.1, 3.1], [0, 0], [3.9, 4.9], [4.1, 5.1]])
    ds = xr.Dataset({"v": (("member", "checkpoint"), vals)},
                    coords={"role": ("member", ["baseline", "member", "member"] * 3),
                            "baseline": ("member", np.repeat([0, 1, 2], 3)), "copy": ("member", [0, 1, 2] * 3)})
    fig, ax = plt.subplots()
    line, fill = baseline_band(ax, np.array([1.0, 2.0]), ds["v"].values, ds, "C0")
    per = np.array([[1, 2], [2, 3], [4, 5]], dtype=float)      # copy means per baseline
    np.testing.assert_allclose(line.get_ydata(), per.mean(0))
    half = st.t.ppf(0.975, 2) * per.std(0, ddof=1) / np.sqrt(3)
    y = fill.get_paths()[0].vertices[:, 1]
    assert y.min() == pytest.approx((per.mean(0) - half).min()) and y.max() == pytest.approx((per.mean(0) + half).max())
    assert "3 independent baselines" in band_text(ds)
    plt.close(fig)
