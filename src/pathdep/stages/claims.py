"""The claims ledger (rule ``claims``): every testable claim of the five seeds, decided from
whatever results the config produced.

Reads ``results/`` through the readers of :mod:`pathdep.stages.claims_read` (one per claim
of :data:`pathdep.config.claims.CLAIMS`) and writes, atomically,

* ``results/claims.csv``: ``id, seed, claim, experiment, statistic, value, lo, hi, rule,
  verdict`` (+ ``note``, and ``predicted_lo``/``predicted_hi``: the range the claim predicts
  for the statistic, drawn by the claims figure), one row per claim;
* ``results/claims.md``: the same as a Markdown table between the markers
  ``<!-- claims:start -->`` / ``<!-- claims:end -->`` (the README shows this block).

A claim whose result file is missing is "not run (<config that runs it>)"; one whose file
lacks what the statistic needs, or whose reader fails, is "inconclusive (<reason>)"; the
stage never stops on a missing or old-format file.

Command line (also what README's ledger section says)::

    python -m pathdep.stages.claims results/                      # write claims.csv, claims.md
    python -m pathdep.stages.claims --readme README.md results/   # copy results/claims.md's table into README

How it was checked: ``tests/stages/test_claims.py`` (a synthetic results tree: rows, verdicts,
"not run" naming config/paper.yaml, README rewriting round trip).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import pandas as pd

from pathdep.analysis.claims import INCONCLUSIVE, NOT_RUN, fmt
from pathdep.config.claims import CLAIMS, has, where_run
from pathdep.io.atomic import atomic_write, write_csv
from pathdep.stages import claims_read

COLUMNS = ["id", "seed", "claim", "experiment", "statistic", "value", "lo", "hi", "rule", "verdict", "note",
           "predicted_lo", "predicted_hi"]
START, END = "<!-- claims:start -->", "<!-- claims:end -->"
ROOT = Path(__file__).resolve().parents[3]


def evaluate(claim: dict, results: Path, root: Path = ROOT, config: dict | None = None) -> dict:
    """One ledger row: the claim's reader on ``results``, or not run / inconclusive.

    With ``config`` (the run's config), a claim the config does not enable is not run even
    if an older run left its files in ``results``."""
    row = {k: claim[k] for k in ("id", "seed", "claim", "experiment", "statistic")}
    try:
        if config is not None and not has(config, claim["needs"]):
            raise claims_read.Missing("not in this config")
        out = getattr(claims_read, claim["id"])(Path(results))
        row.update(value=out.value, lo=out.lo, hi=out.hi, rule=out.rule, verdict=out.verdict, note=out.note,
                   predicted_lo=out.predicted[0], predicted_hi=out.predicted[1])
    except claims_read.Missing as exc:
        cfg = where_run(claim["needs"], root) or "no shipped config"
        msg = str(exc)
        note = f"missing {Path(msg).relative_to(results)}" if msg.startswith(str(results)) else msg
        row.update(value=math.nan, lo=math.nan, hi=math.nan, rule="", verdict=f"{NOT_RUN} ({cfg})", note=note)
    except Exception as exc:  # noqa: BLE001 - an unreadable result is a verdict, never a crash
        why = str(exc) if isinstance(exc, claims_read.Unusable) else f"{type(exc).__name__}: {exc}"
        row.update(value=math.nan, lo=math.nan, hi=math.nan, rule="", verdict=f"{INCONCLUSIVE} ({why})", note="")
    return row


def ledger(results: str | Path, root: str | Path = ROOT, config: dict | None = None) -> pd.DataFrame:
    """Every claim of :data:`CLAIMS` decided on ``results`` (columns :data:`COLUMNS`)."""
    return pd.DataFrame([evaluate(c, Path(results), Path(root), config) for c in CLAIMS], columns=COLUMNS)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    """The ledger as a Markdown table between :data:`START` and :data:`END` (rule before
    number, as decided)."""
    lines = [START, "", f"{len(df)} claims: {verdict_counts(df)}.", "",
             "| id | seed | claim | experiment | statistic | decision rule | value [95 % interval] | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        val = "" if not math.isfinite(r.value) else fmt(r.value)
        if math.isfinite(r.lo) and math.isfinite(r.hi):
            val += f" [{fmt(r.lo)}, {fmt(r.hi)}]"
        verdict = r.verdict + (f"; {r.note}" if isinstance(r.note, str) and r.note else "")
        lines.append("| " + " | ".join(_cell(x) for x in (r.id, r.seed, r.claim, r.experiment, r.statistic, r.rule,
                                                             val, f"**{verdict}**")) + " |")
    return "\n".join(lines + ["", END])


def verdict_counts(df: pd.DataFrame) -> str:
    """``"3 supported, 2 contradicted, ..."`` (every kind, reasons dropped)."""
    kinds = df["verdict"].map(lambda v: next((k for k in ("supported", "contradicted", "inconclusive", "not run")
                                              if str(v).startswith(k)), "other"))
    return ", ".join(f"{(kinds == k).sum()} {k}" for k in ("supported", "contradicted", "inconclusive", "not run"))


def markdown(df: pd.DataFrame, results: str | Path) -> str:
    """``claims.md``: a heading, what the verdicts mean, the table."""
    return (f"# Claims ledger ({Path(results).name or results})\n\n"
            "One row per testable claim or prediction of the five seeds (shared/seeds/): the statistic, its 95 % "
            "interval across independent baselines (or the stated source of the interval), the decision rule "
            "written before the number, and the verdict.\n\n" + markdown_table(df) + "\n")


def write_claims(results: str | Path, out_csv: str | Path, out_md: str | Path, root: str | Path = ROOT,
                 config: dict | None = None) -> pd.DataFrame:
    """Decide every claim on ``results`` and write ``out_csv`` and ``out_md`` atomically
    (``config``: the run's config, see :func:`evaluate`)."""
    df = ledger(results, root, config)
    write_csv(df, out_csv)
    with atomic_write(out_md) as tmp:
        Path(tmp).write_text(markdown(df, results))
    return df


def table_block(text: str) -> str:
    """The block from :data:`START` to :data:`END` (inclusive) of a Markdown text."""
    m = re.search(re.escape(START) + r".*?" + re.escape(END), text, flags=re.S)
    if not m:
        raise ValueError(f"no {START} ... {END} block")
    return m.group(0)


def rewrite_readme(readme: str | Path, md: str | Path) -> bool:
    """Replace README's ledger block with ``md``'s; True if README changed."""
    readme = Path(readme)
    old = readme.read_text()
    new = old.replace(table_block(old), table_block(Path(md).read_text()))
    if new != old:
        with atomic_write(readme) as tmp:
            Path(tmp).write_text(new)
    return new != old


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pathdep.stages.claims", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, help="results directory (e.g. results/)")
    ap.add_argument("--readme", type=Path, help="copy <results>/claims.md's table into this README (between "
                    f"{START} and {END}); writes claims.md first if it is missing")
    args = ap.parse_args(argv)
    md = args.results / "claims.md"
    if args.readme is None or not md.exists():
        df = write_claims(args.results, args.results / "claims.csv", md)
        print(df[["id", "verdict"]].to_string(index=False))
    if args.readme is not None:
        print(f"{args.readme}: {'updated' if rewrite_readme(args.readme, md) else 'already up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
