"""Every caption under report/ renders as the Snakemake report renders it (Jinja with
``trim_blocks``/``lstrip_blocks``, the report's link targets appended, then docutils'
``publish_parts`` to HTML) without a single docutils system message (an undefined
substitution such as ``|w_k - w_0|``, a malformed table, a bad reference ...), which the
report would otherwise print into the page as a red error box.

The Jinja context: the default config (config.yaml), the wildcards the captions use (``exp``),
and, for the landing page (report/workflow.rst), categories holding the claims ledger and
the spread table so that its tables are rendered too, from CSV files in a temporary working
directory (``csv-table`` reads ``:file:`` relative to it): the claims table holds every text
the ledger can write (catalogue claims and statistics, each kind of rule, note and verdict),
since docutils parses each cell as reStructuredText.
"""

from __future__ import annotations

from pathlib import Path
from collections import namedtuple
from types import SimpleNamespace

import docutils.core
import pandas as pd
import docutils.utils
import jinja2
import pytest
import yaml

from pathdep.config.claims import CLAIMS

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = sorted((ROOT / "report").glob("*.rst"))
# what snakemake.report appends to every caption (its link targets), with no results
Category = namedtuple("Category", "name")   # snakemake.report.Category: hashable, .name
LINKS = "\n\n.. _Workflow: javascript:show_panel('workflow')\n.. _Statistics: javascript:show_panel('statistics')\n"


def _config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _messages(text: str) -> list[str]:
    """docutils system messages (any level) of rendering ``text`` to HTML."""
    msgs: list[str] = []

    class Collect:
        def write(self, s):
            msgs.append(s)

    parts = docutils.core.publish_parts(text, writer_name="html",
                                        settings_overrides={"report_level": 2, "halt_level": 5,
                                                            "warning_stream": Collect()})
    assert "body" in parts
    return [m.strip() for m in msgs if m.strip()]


def render(path: Path, categories: list | None = None) -> str:
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    snakemake = SimpleNamespace(config=_config(), wildcards=SimpleNamespace(exp="lr"), params=SimpleNamespace())
    cats = {Category(c): {} for c in (categories or [])}
    return env.from_string(path.read_text() + LINKS).render(snakemake=snakemake, categories=cats, files=[])


def ledger_texts() -> pd.DataFrame:
    """A claims.csv holding every text the ledger can write: each catalogue entry (claim,
    statistic) with the rule and note of a statistic of each kind, and the verdict kinds."""
    import numpy as np

    from pathdep.analysis import claims_stats as S

    one, two = np.ones(3), np.ones((2, 3))
    outs = [S.form_share(np.array(["a"]), np.array([0]), ("a", "b")), S.sweep_exponent(one, two),
            S.endpoint_change(two, "below", log=True), S.level(one, 1.0), S.source_share(one, one),
            S.weakest_auc(one, one, ["ftle tanh U(-1,1) at t=20"] * 3), S.fraction_difference(0.1, 10, 0.2, 10),
            S.conjugate_pair(0.5, one), S.nonconjugate_pair(0.5, 1.0, 2.0), S.window_transition(np.ones((2, 4, 4))),
            S.exponent_near(-0.5, 0.1, -0.5, 0.15), S.decreasing(np.arange(1.0, 4.0), two),
            S.bracket_contains(1.0, 2.0, 2.0, "2/lambda_0"), S.onset_difference(one, one), S.reliance_slope(one, two)]
    verdicts = ["not run (config/paper.yaml)", "inconclusive (one baseline: no interval)", "supported",
                "contradicted", "inconclusive (fits.csv lacks model)"]
    rows = [dict(id=c["id"], seed=c["seed"], claim=c["claim"], experiment=c["experiment"], statistic=c["statistic"],
                 value=1.0, lo=0.5, hi=1.5, rule=outs[i % len(outs)].rule, verdict=verdicts[i % len(verdicts)],
                 note=outs[i % len(outs)].note or "missing weight_decay/<run>/metrics.nc")
            for i, c in enumerate(CLAIMS)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("path", CAPTIONS, ids=[p.name for p in CAPTIONS])
def test_caption_renders_without_system_messages(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "spread").mkdir(parents=True)
    ledger_texts().to_csv(tmp_path / "results" / "claims.csv", index=False)
    (tmp_path / "results" / "spread" / "spread.csv").write_text("source,run,disagree\ninit,e/r,0.1\n")
    text = render(path, categories=["Claims ledger", "Spread by source"])
    assert _messages(text) == []


def test_the_check_sees_an_undefined_substitution():
    assert any("Undefined substitution" in m for m in _messages("The distance |w_k - w_0| grows.\n"))


def test_landing_page_shows_ledger_and_spread_before_the_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "spread").mkdir(parents=True)
    (tmp_path / "results" / "claims.csv").write_text("id,verdict\nx_claim,supported\n")
    (tmp_path / "results" / "spread" / "spread.csv").write_text("source,disagree\nschedule_src,0.4\n")
    html = docutils.core.publish_parts(render(ROOT / "report" / "workflow.rst", ["Claims ledger", "Spread by source"]),
                                       writer_name="html")["html_body"]
    assert html.index("x_claim") < html.index("schedule_src") < html.index("&quot;experiments&quot;")
    bare = render(ROOT / "report" / "workflow.rst", [])          # before a run: no tables, no errors
    assert "csv-table" not in bare and _messages(bare) == []
