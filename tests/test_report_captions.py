"""Every caption under report/ renders as the Snakemake report renders it (Jinja with
``trim_blocks``/``lstrip_blocks``, the report's link targets appended, then docutils'
``publish_parts`` to HTML) without a single docutils system message (an undefined
substitution such as ``|w_k - w_0|``, a malformed table, a bad reference ...), which the
report would otherwise print into the page as a red error box.

The Jinja context: the default config (config.yaml), the wildcards the captions use (``exp``),
and, for the landing page (report/workflow.rst), categories holding the claims ledger and
the spread table so that its tables are rendered too (from small CSV files in a temporary
working directory: ``csv-table`` reads ``:file:`` relative to the working directory).
"""

from __future__ import annotations

import os
from pathlib import Path
from collections import namedtuple
from types import SimpleNamespace

import docutils.core
import docutils.utils
import jinja2
import pytest
import yaml

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


@pytest.mark.parametrize("path", CAPTIONS, ids=[p.name for p in CAPTIONS])
def test_caption_renders_without_system_messages(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "spread").mkdir(parents=True)
    (tmp_path / "results" / "claims.csv").write_text(
        "id,seed,claim,experiment,statistic,value,lo,hi,rule,verdict,note\n"
        'a,scaling,"""q""",lr,s,1.0,0.5,1.5,"supported if ...",supported,\n')
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
    os.chdir(ROOT)
