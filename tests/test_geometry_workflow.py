"""Workflow-level tests of the geometry and fits rules (rules/geometry.smk, rules/fits.smk) on
the tiny config: the jobs they plan, and the tiny end-to-end run (the session fixture
``tiny_workflow``, conftest.py, shared with test_workflow.py) whose outputs are checked by
meaning (aligned <= raw distance, barriers >= 0 and 0 between identical networks,
autocorrelations equal to the metrics' cosines, fits and scaling tables complete, every
figure written, the HTML report, a geometry-only config change re-running the geometry and
fits but not training, a fits-only change re-running only the fits)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from helpers import ROOT, TINY, job_counts, smk

FIGS = ["aligned", "interpolation", "barriers", "autocorr", "fits", "hypersphere"]  # the file names


def _figures(exp):
    # the sweep figures only for an experiment that sweeps something (sched does not)
    return [f"{exp}_{f}" for f in FIGS] + ([f"divergence_vs_{exp}", f"scaling_{exp}"] if exp == "eps" else [])


def test_dry_run_plans_geometry_and_fits_jobs(tmp_path):
    r = smk(["-n", "--cores", "1", "--configfile", str(TINY), "-d", str(tmp_path)], ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    c = job_counts(r.stdout)
    # 3 runs (eps: 2 epsilons, sched: 1) in 2 experiments
    assert (c["geometry"], c["plot_geometry"], c["fit_experiment"], c["plot_fits"], c["plot_scaling"]) == (3, 2, 2, 2, 1)
    assert c["hypersphere_theory"] == c["plot_hypersphere_theory"] == c["summarize_fits"] == 1


def test_one_scaling_figure_plans_only_its_experiment(tmp_path):
    r = smk(["-n", "--cores", "1", "--configfile", str(TINY), "-d", str(tmp_path), "results/figures/scaling_eps.pdf"], ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert job_counts(r.stdout) == {"prepare_dataset": 1, "train_ensemble": 2, "compute_metrics": 2,
                                    "geometry": 2, "fit_experiment": 1, "plot_scaling": 1, "total": 9}


def test_one_geometry_figure_plans_no_fits(tmp_path):
    r = smk(["-n", "--cores", "1", "--configfile", str(TINY), "-d", str(tmp_path), "results/figures/eps_barriers.png"],
            ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert job_counts(r.stdout) == {"prepare_dataset": 1, "train_ensemble": 2, "geometry": 2, "plot_geometry": 1,
                                    "total": 6}


def test_unknown_geometry_experiment_is_one_line(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["geometry"]["experiments"] = {"nope": {"lambdas": 3}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = smk(["-n", "--cores", "1", "--configfile", str(path), "-d", str(tmp_path)], ROOT)
    assert r.returncode != 0
    assert "config: geometry.experiments.nope: unknown experiment" in r.stdout + r.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_workflow")
def test_geometry_and_fits_outputs_by_meaning(tiny_workflow):
    res = tiny_workflow.results
    for exp, runs in {"eps": ["eps0.01", "eps0.1"], "sched": ["base"]}.items():
        for run in runs:
            da = xr.load_dataset(res / exp / run / "geometry.nc", engine="h5netcdf")
            dm = xr.load_dataset(res / exp / run / "metrics.nc", engine="h5netcdf")
            K, C = dm["dist"].shape
            assert da["dist_aligned"].shape == (K, C) and bool(da["aligned_checkpoint"].all())
            np.testing.assert_allclose(da["dist"].values, dm["dist"].values, rtol=1e-12)
            assert np.all(da["dist_aligned"].values <= da["dist"].values * (1 + 1e-6) + 1e-7)
            assert np.all(da["dist_aligned"].values[0] == 0)
            # 3 interpolation checkpoints (fractions 0, 0.5, 1), 2 members, 5 lambdas
            assert da["interp_loss"].shape == (2, 2, 2, 3, 5)
            assert list(da["icheckpoint_index"].values[[0, -1]]) == [0, C - 1]
            assert np.isfinite(da["interp_loss"].values).all() and np.all(da["barrier"].values >= 0)
            assert "Entezari" in da["barrier"].attrs["definition"]
            L = da["interp_loss"].values
            np.testing.assert_allclose(L[0, ..., -1], L[1, ..., -1], rtol=1e-4)  # aligning keeps the function
            np.testing.assert_allclose(L[0, ..., 0], L[1, ..., 0], rtol=0)  # same baseline at lambda = 0
            np.testing.assert_allclose(da["ac_w_init"].values, dm["cos_init"].values, atol=1e-6)
            np.testing.assert_allclose(da["ac_w_base"].values, dm["cos_base"].values, atol=1e-6)
            np.testing.assert_allclose(da["sphere_sq_disp"].values, 2 * (1 - da["ac_w_init"].values), atol=1e-6)
            assert np.all(np.isfinite(da["sphere_D"].values)) and np.all(da["sphere_D"].values > 0)
            if exp == "sched":  # schedule perturbation: identical networks at step 0 -> zero barrier
                assert np.all(da["dist"].values[:, 0] == 0)
                np.testing.assert_allclose(da["barrier"].values[..., 0], 0.0, atol=1e-7)
        fits = xr.load_dataset(res / exp / "fits.nc", engine="h5netcdf")
        n_runs = len(runs)
        R = int(dm["baseline"].max()) + 1 if "baseline" in dm.coords else 1
        assert fits.sizes["curve"] == n_runs * R * 3  # runs x baselines (copies averaged) x quantities
        assert set(fits["verdict"].values.astype(str)) <= set(fits["model"].values.astype(str)) | {
            "no form describes it"}
        assert set(fits["quantity"].values.astype(str)) == {"dist", "dist_aligned", "fs_l2_logits"}
        assert set(fits["best_model"].values.astype(str)) <= set(fits["model"].values.astype(str))
        np.testing.assert_allclose(np.nanmin(fits["delta_aic"].values, axis=1), 0.0)
        csv = pd.read_csv(res / exp / "fits.csv")
        assert len(csv) == fits.sizes["curve"] * fits.sizes["model"]
        table = pd.read_csv(res / exp / "scaling.csv")
        hp = "epsilon" if exp == "eps" else "none"
        assert set(table["hparam"]) == {hp} and table["value"].nunique() == n_runs
        assert set(table["n"]) == {R} and {"pl_exponent", "mean", "lo", "hi", "n_best", "pl_note"} <= set(table.columns)
        # two values of epsilon are too few for a power law; sched sweeps nothing (hparam none)
        assert table["pl_exponent"].isna().all()
        assert set(table["pl_note"].fillna("")) == {"too few points" if exp == "eps" else "not numeric"}
        for name in _figures(exp):
            assert (res / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
            assert (res / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert (res / "figures" / "hypersphere_theory.png").read_bytes()[:4] == b"\x89PNG"
    theory = xr.load_dataset(res / "hypersphere" / "theory.nc", engine="h5netcdf")
    assert list(theory["n"].values) == [3, 10] and int(theory.attrs["walkers"]) == 200
    summary = pd.read_csv(res / "fits_summary.csv")
    assert {"best_model", "b_median", "pl_exponent", "pl_exponent_stderr", "frac_described"} <= set(summary.columns)
    assert set(summary["experiment"]) == {"eps", "sched", "all"}


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_workflow")
def test_report_has_every_figure_and_the_config(tiny_workflow, tmp_path):
    out = tmp_path / "report.html"
    r = smk(["--configfile", str(TINY), "-d", str(tiny_workflow.dir), "--report", str(out)], ROOT, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    html = out.read_text(errors="replace")
    for exp in ("eps", "sched"):
        for name in _figures(exp) + [f"{exp}_divergence", f"{exp}_loss", f"{exp}_cf"]:
            assert f"{name}.png" in html, name
    for needle in ("hypersphere_theory.png", "fits_summary.csv", "Entezari", "interp_members", "sklearn_digits"):
        assert needle in html, needle


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_workflow")
def test_geometry_config_change_reruns_geometry_not_training(tiny_workflow, tmp_path):
    text = TINY.read_text()
    assert "  lambdas: 5\n" in text
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("  lambdas: 5\n", "  lambdas: 7\n"))  # same file otherwise (key order too)
    r = smk(["-n", "--cores", "1", "--configfile", str(path), "-d", str(tiny_workflow.dir)], ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    c = job_counts(r.stdout)
    assert "train_ensemble" not in c and "compute_metrics" not in c and "plot_experiment" not in c
    assert "hypersphere_theory" not in c and "plot_hypersphere_theory" not in c
    assert (c["geometry"], c["plot_geometry"], c["fit_experiment"], c["plot_fits"], c["summarize_fits"]) == (
        3, 2, 2, 2, 1)
    assert c["plot_scaling"] == 1
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_workflow")
def test_fits_config_change_reruns_only_the_fits(tiny_workflow, tmp_path):
    text = TINY.read_text()
    assert "fits: {quantities:" in text
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("fits: {quantities:", "fits: {space: linear, quantities:"))
    r = smk(["-n", "--cores", "1", "--configfile", str(path), "-d", str(tiny_workflow.dir)], ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    c = job_counts(r.stdout)
    assert (c["fit_experiment"], c["plot_fits"], c["plot_scaling"], c["summarize_fits"]) == (2, 2, 1, 1)
    assert "geometry" not in c and "plot_geometry" not in c and "train_ensemble" not in c
    shutil.rmtree(tmp_path, ignore_errors=True)
