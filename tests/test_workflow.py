"""Workflow-level tests: the DAG the tiny config plans, lint, one-figure targets, and the
tiny end-to-end run (the session fixture ``tiny_workflow``, conftest.py) checked by meaning
(shapes, finite values, attributes, figures, a rerun that does nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from helpers import ROOT, TINY, job_counts, smk


def test_dry_run_counts_jobs(tmp_path):
    r = smk(["-n", "--cores", "1", "--configfile", str(TINY), "-d", str(tmp_path)], ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    counts = job_counts(r.stdout)
    # tiny config: experiment eps sweeps 2 epsilons, experiment sched has one run -> 3 runs,
    # one dataset, one figure job per experiment; geometry: one per run and its figures per
    # experiment; fits and their figure per experiment, the sweep figures (plot_scaling) for eps
    # only (sched sweeps nothing), one hypersphere-theory table and
    # figure and one summary table; Lyapunov:
    # one spectrum per run of the eps experiment (lyapunov.experiments), one link table and
    # one 2-2-1 study; the claims ledger and its figure.
    assert counts == {"prepare_dataset": 1, "train_ensemble": 3, "compute_metrics": 3,
                      "plot_experiment": 2, "geometry": 3, "plot_geometry": 2, "fit_experiment": 2,
                      "plot_fits": 2, "plot_scaling": 1, "hypersphere_theory": 1, "plot_hypersphere_theory": 1,
                      "summarize_fits": 1, "lyapunov": 2, "lyapunov_link": 1, "lyapunov_study": 1, "claims": 1,
                      "plot_claims": 1, "all": 1, "total": 29}


FASHION_IDX = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION_IDX.is_dir(),
                    reason="the default config reads Fashion-MNIST from Debian's dataset-fashion-mnist "
                           "(installed by `make data`, which .ci/run calls); validation checks the files exist")
def test_dry_run_default_config_plans_every_sweep(tmp_path):
    r = smk(["-n", "--cores", "1", "--configfile", str(ROOT / "config.yaml"), "-d", str(tmp_path)], ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    counts = job_counts(r.stdout)
    import yaml

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    from pathdep.config import validate

    n_runs = sum(len(v) for v in validate(cfg).values())
    assert counts["train_ensemble"] == n_runs
    excluded = set((cfg.get("figures") or {}).get("exclude") or [])  # trained for another family only
    assert counts["plot_experiment"] == len(set(cfg["experiments"]) - excluded)


def test_one_figure_target_plans_only_what_it_needs(tmp_path):
    r = smk(["-n", "--cores", "1", "--configfile", str(TINY), "-d", str(tmp_path), "results/figures/sched_divergence.pdf"], ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    counts = job_counts(r.stdout)
    assert counts == {"prepare_dataset": 1, "train_ensemble": 1, "compute_metrics": 1,
                      "plot_experiment": 1, "total": 4}


def test_lint_is_clean():
    # The tiny config needs no dataset on disk, so lint runs on any machine.
    r = smk(["--lint", "--configfile", str(TINY)], ROOT, timeout=300)
    assert r.returncode == 0
    out = (r.stdout + r.stderr).strip()
    lines = [ln for ln in out.splitlines() if ln.strip() and "Congratulations" not in ln
             and not ln.startswith("Using workflow specific profile")]
    assert lines == [], out


@pytest.mark.slow
@pytest.mark.xdist_group("tiny_workflow")
def test_tiny_end_to_end(tiny_workflow):
    res = tiny_workflow.results
    for exp in ("eps", "sched"):
        for kind in ("divergence", "loss", "cf"):
            pdf, png = res / "figures" / f"{exp}_{kind}.pdf", res / "figures" / f"{exp}_{kind}.png"
            assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:4] == b"\x89PNG"
    runs = {"eps": ["eps0.01", "eps0.1"], "sched": ["base"]}
    for exp, names in runs.items():
        for run in names:
            d = res / exp / run
            with h5py.File(d / "trajectory.h5") as f:
                assert bool(f.attrs["complete"])
                C, K, P = f["weights"].shape
                assert K == 4 and P == 64 * 16 + 16 + 16 * 10 + 10
                assert f["steps"][0] == 0 and f["steps"][-1] == f.attrs["n_steps"]
                assert np.isfinite(f["weights"][()]).all() and np.isfinite(f["loss"][()]).all()
                prov = json.loads(f.attrs["provenance"])
                for key in ("git_commit", "torch", "cuda", "device", "config", "seeds", "numpy"):
                    assert key in prov
                cfg = json.loads(f.attrs["config"])
                assert cfg["experiment"] == exp and cfg["run"] == run
            ds = xr.load_dataset(d / "metrics.nc", engine="h5netcdf")
            assert ds["dist"].dims == ("member", "checkpoint") and ds["dist"].shape == (K, C)
            assert np.all(ds["dist"].values[0] == 0)  # baseline to itself
            assert np.isfinite(ds["test_loss"].values).all()
            assert np.all(ds["test_cf_acc"].values[0] == 1.0)
            if exp == "eps":
                # initial-weight perturbation: members start apart from the baseline
                assert np.all(ds["dist"].values[1:, 0] > 0)
            else:
                # schedule perturbation: same start, different paths
                assert np.all(ds["dist"].values[1:, 0] == 0) and np.all(ds["dist"].values[1:, -1] > 0)
            assert "provenance" in ds.attrs and json.loads(ds.attrs["config"])["run"] == run
    # rerun is a no-op (idempotent)
    r2 = smk(["-n", "--cores", "1", "--configfile", str(TINY), "-d", str(tiny_workflow.dir)], ROOT)
    assert "Nothing to be done" in r2.stdout + r2.stderr
