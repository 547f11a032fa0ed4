"""pathdep.stages.claims on a synthetic results tree it writes itself: one row per claim,
verdicts from replicate baselines, "not run" naming the config that runs the experiment,
"inconclusive" for an old or broken file (never a crash), the Markdown block and README
rewriting; and README's ledger block against the catalogue (and against results/claims.md
when a run has written one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pathdep.config.claims import CLAIMS, where_run
from pathdep.stages import claims as stage
from pathdep.stages import claims_read

ROOT = Path(__file__).resolve().parents[2]


def _metrics(path: Path, swept: dict, curves: np.ndarray, steps: np.ndarray) -> None:
    """metrics.nc of R baselines x (1 + M) networks; curves: (R, M, C) distances of the copies."""
    R, M, C = curves.shape
    dist = np.zeros((R * (M + 1), C))
    for r in range(R):
        dist[r * (M + 1) + 1:(r + 1) * (M + 1)] = curves[r]
    ds = xr.Dataset({"dist": (("member", "checkpoint"), dist), "dist_rel": (("member", "checkpoint"), dist / 10),
                     "fs_disagree": (("member", "checkpoint"), dist)},
                    coords={"member": np.arange(len(dist)), "step": ("checkpoint", steps),
                            "role": ("member", ["baseline" if k % (M + 1) == 0 else "perturbed" for k in range(len(dist))]),
                            "baseline": ("member", np.repeat(np.arange(R), M + 1)),
                            "copy": ("member", np.tile(np.arange(M + 1), R))},
                    attrs={"swept": json.dumps(swept)})
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, engine="h5netcdf")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    res = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    steps = np.linspace(0, 2000, 30)
    for mom, gain in ((0.0, 1.0), (0.9, 3.0)):           # large momentum: 3x the final distance
        curves = gain * 1e-4 * steps[None, None, :] * (1 + 0.02 * rng.standard_normal((3, 2, 1)))
        _metrics(res / "momentum" / f"momentum{mom:g}" / "metrics.nc", {"optimizer.momentum": mom}, curves, steps)
    for lr in (0.01, 0.1):                                 # one baseline: no interval
        _metrics(res / "lr" / f"lr{lr:g}" / "metrics.nc", {"optimizer.lr": lr},
                 lr * steps[None, None, :] * np.ones((1, 2, 1)), steps)
    (res / "epsilon").mkdir()
    pd.DataFrame({"quantity": "dist", "run": "e", "member": [1, 2, 3], "model": ["exp_linear"] * 3,
                  "best": [True] * 3}).to_csv(res / "epsilon" / "fits.csv", index=False)
    for run, level in (("epsilon/e1", 0.01), ("schedule/base", 0.4)):   # spread sources: 3 baselines each
        _metrics(res / run / "metrics.nc", {}, level * (1 + 0.02 * rng.standard_normal((3, 2, 1))) * np.ones((1, 1, 30)),
                 steps)
    (res / "spread").mkdir()
    xr.Dataset(coords={"source": ["init", "schedule"], "run": ("source", ["epsilon/e1", "schedule/base"])}).to_netcdf(
        res / "spread" / "spread.nc", engine="h5netcdf")
    (res / "koopman").mkdir()
    pd.DataFrame({"x": [1]}).to_csv(res / "koopman" / "toy.csv", index=False)   # old/broken: no p_value
    return res


@pytest.fixture(scope="module")
def table(results) -> pd.DataFrame:
    out = results.parent / "out"
    out.mkdir(exist_ok=True)
    return stage.write_claims(results, out / "claims.csv", out / "claims.md").set_index("id")


def test_every_claim_has_a_reader_and_a_row(table):
    assert list(table.index) == [c["id"] for c in CLAIMS]
    assert all(callable(getattr(claims_read, c["id"], None)) for c in CLAIMS)
    assert {c["seed"] for c in CLAIMS} == {"scaling", "lyapunov", "koopman", "ntk", "dominoes"}


def test_csv_columns(results, table):  # `table` writes out/claims.csv (each xdist worker builds its own)
    df = pd.read_csv(results.parent / "out" / "claims.csv")
    assert list(df.columns[:10]) == ["id", "seed", "claim", "experiment", "statistic", "value", "lo", "hi", "rule",
                                     "verdict"]


def test_verdicts_from_the_synthetic_tree(table):
    assert table.loc["momentum_divergence", "verdict"] == "supported"        # 3 baselines, 3x distance
    assert table.loc["momentum_divergence", "value"] == pytest.approx(np.log(3), abs=0.05)
    assert table.loc["lr_collapse", "verdict"] == "inconclusive (one baseline: no interval)"
    assert table.loc["lr_collapse", "value"] == pytest.approx(1.0, abs=1e-6)  # slope proportional to lr
    assert table.loc["dw_exp_linear", "value"] == 1.0
    assert table.loc["schedule_variance", "value"] == pytest.approx(0.4 / 0.41, rel=0.01)
    assert table.loc["schedule_variance", "verdict"] == "supported"


def test_missing_results_name_the_config(table):
    assert table.loc["weight_decay_shrinks", "verdict"] == "not run (config/paper.yaml)"
    assert table.loc["early_transitions", "verdict"] == "not run (config.yaml)"      # koopman windows of resnet
    assert table.loc["grokking_nonconjugate", "verdict"] == "not run (config.yaml)"
    assert table.loc["ntk_param_change", "verdict"] == "not run (config.yaml)"


def test_broken_file_is_inconclusive_not_a_crash(table):
    v = table.loc["omd_ogd_conjugate", "verdict"]
    assert v.startswith("inconclusive (") and "p_value" in v


def test_where_run_on_shipped_configs():
    assert where_run(("experiment", "weight_decay"), ROOT) == "config/paper.yaml"
    assert where_run(("experiment", "momentum"), ROOT) == "config.yaml"
    assert where_run(("experiment", "no_such_experiment"), ROOT) is None


def test_markdown_block_and_readme_rewrite(results, table, tmp_path):  # `table` writes out/claims.*
    md = results.parent / "out" / "claims.md"
    block = stage.table_block(md.read_text())
    assert block.count("\n| ") == len(CLAIMS) + 1 and "**supported**" in block
    counts = pd.read_csv(results.parent / "out" / "claims.csv")["verdict"]
    assert f"{len(CLAIMS)} claims: {(counts == 'supported').sum()} supported, " in block
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{stage.START}\nold\n{stage.END}\n\nafter\n")
    assert stage.rewrite_readme(readme, md) is True
    text = readme.read_text()
    assert stage.table_block(text) == block and text.startswith("# x\n\nbefore") and text.endswith("after\n")
    assert stage.rewrite_readme(readme, md) is False


def test_cli_writes_then_rewrites(results, tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    readme = tmp_path / "README.md"
    readme.write_text(f"{stage.START}\n{stage.END}\n")
    assert stage.main(["--readme", str(readme), str(res)]) == 0
    assert (res / "claims.csv").exists() and stage.table_block(readme.read_text()) == \
        stage.table_block((res / "claims.md").read_text())


def test_readme_ledger_block():
    """README's ledger lists every claim of the catalogue, in order, with a valid verdict; after
    a run (results/claims.md present) it must be exactly the table the rule wrote."""
    text = (ROOT / "README.md").read_text()
    block = stage.table_block(text)
    rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| id ")]
    assert [r.split(" | ")[0][2:] for r in rows] == [c["id"] for c in CLAIMS]
    verdicts = [r.rsplit(" | ", 1)[1] for r in rows]
    assert all(v.startswith(("**supported", "**contradicted", "**inconclusive", "**not run")) for v in verdicts)
    written = ROOT / "results" / "claims.md"
    if written.exists():
        assert block == stage.table_block(written.read_text()), \
            "README's ledger differs from results/claims.md: python -m pathdep.stages.claims --readme README.md results/"


def test_config_without_the_experiment_is_not_run_despite_old_files(results, tmp_path):
    cfg = {"experiments": {"lr": {}}}                        # momentum files exist, but not in this config
    df = stage.write_claims(results, tmp_path / "c.csv", tmp_path / "c.md", config=cfg).set_index("id")
    assert df.loc["momentum_divergence", "verdict"] == "not run (config.yaml)"
    assert df.loc["momentum_divergence", "note"] == "not in this config"
    assert df.loc["lr_collapse", "verdict"].startswith("inconclusive")


def test_out_of_sample_fits_format(tmp_path):
    """fits.csv with out-of-sample selection: one selected form per curve (oos_model), 'none'
    where no form describes the curve; in-sample best rows are ignored."""
    (tmp_path / "epsilon").mkdir()
    rows = []
    for b in range(3):
        for curve, (oos, desc) in enumerate([("exp_linear", True), ("exp_linear", False), ("sqrt", True)]):
            for model in ("power_law", "exp_linear", "sqrt"):
                rows.append(dict(quantity="dist", run="e", baseline=b, curve=curve, model=model,
                                 best=model == "power_law", oos_model=oos, described=desc, t_c=100.0 + b))
    pd.DataFrame(rows).to_csv(tmp_path / "epsilon" / "fits.csv", index=False)
    forms, base = claims_read.selected_forms(tmp_path, "epsilon")
    assert list(forms) == ["exp_linear", "none", "sqrt"] * 3 and list(base) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    out = claims_read.dw_exp_linear(tmp_path)
    assert out.value == pytest.approx(1 / 3) and out.verdict == "contradicted"


def _patterns(path: Path, ptop: float, rng) -> None:
    """patterns.nc of 3 baselines x 2 networks: the top pattern (probe 0.95, simpler) starts
    learning at step ~5, the bottom one (probe 0.8) at ~9; reliance on top grows with ptop."""
    R, M = 3, 2
    half = np.stack([9 + 0.2 * rng.standard_normal(R * M), np.zeros(R * M), 5 + 0.2 * rng.standard_normal(R * M)])
    acc_top, acc_bot = 0.3 + 0.6 * ptop, 0.8 - 0.4 * ptop
    last = np.stack([np.full(R * M, acc_bot), np.full(R * M, 0.9), np.full(R * M, acc_top)])
    last = last + 0.01 * rng.standard_normal(last.shape)
    ds = xr.Dataset({"onset_half": (("set", "member"), half),
                     "acc": (("set", "member", "checkpoint"), np.stack([last * 0.5, last], axis=-1))},
                    coords={"set": ["bottom_only", "both", "top_only"], "member": np.arange(R * M),
                            "role": ("member", ["baseline", "perturbed"] * R),
                            "baseline": ("member", np.repeat(np.arange(R), M)), "copy": ("member", np.tile([0, 1], R))},
                    attrs={"achieved_prevalence_top": ptop, "achieved_prevalence_bottom": 1.0,
                           "achieved_reliability_top": 1.0, "achieved_reliability_bottom": 0.9,
                           "probe_acc_top": 0.95, "probe_acc_bottom": 0.8})
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, engine="h5netcdf")


def test_dominoes_readers_with_baselines(tmp_path):
    rng = np.random.default_rng(1)
    for p in (0.2, 0.5, 1.0):
        _patterns(tmp_path / "dominoes_prevalence" / f"ptop{p:g}" / "patterns.nc", p, rng)
    first = claims_read.simple_pattern_first(tmp_path)
    assert first.verdict == "supported" and first.value == pytest.approx(-4, abs=0.5)
    assert first.note == "run ptop1: simpler = top"
    rel = claims_read.reliance_prevalence(tmp_path)
    assert rel.verdict == "supported" and rel.value == pytest.approx(1.0, abs=0.1)


def test_grokking_nonconjugate_reader_both_ways(tmp_path):
    """Rule grokking_koopman's csv decides the claim: separated groups support it, overlapping
    ones contradict it, a 3 vs 3 test (smallest p 0.1) cannot decide; no file: not run."""
    with pytest.raises(claims_read.Missing):
        claims_read.grokking_nonconjugate(tmp_path)
    d = tmp_path / "grokking_koopman"
    d.mkdir()

    def write(p, between, within, p_min, n=5):
        pd.DataFrame({"experiment": "grokking_koopman", "observable": ["weights", "output_weights"],
                      "a": False, "b": True, "n_a": n, "n_b": n, "w1_between": between, "w1_within": within,
                      "p_value": p, "p_min": p_min}).to_csv(d / "grokking_koopman.csv", index=False)
        return claims_read.grokking_nonconjugate(tmp_path)

    out = write(1 / 126, 0.0046, 0.0014, 1 / 126)
    assert out.verdict == "supported" and out.value == pytest.approx(1 / 126) and "5 vs 5" in out.note
    assert write(0.6, 0.001, 0.002, 1 / 126).verdict == "contradicted"
    assert write(0.1, 0.001, 0.002, 0.1, n=3).verdict.startswith("inconclusive")


def test_config_slice_keeps_every_need_of_the_shipped_configs():
    """The rule's params (config_slice) must hold every block a claim needs, or the ledger would
    call a claim 'not run' that the config runs (grokking.koopman was once left out)."""
    import yaml
    from pathdep.config.claims import config_slice, has
    for path in [ROOT / "config.yaml", *sorted((ROOT / "config").glob("*.yaml"))]:
        cfg = yaml.safe_load(path.read_text()) or {}
        for c in CLAIMS:
            assert has(config_slice(cfg), c["needs"]) == has(cfg, c["needs"]), (path.name, c["id"])
