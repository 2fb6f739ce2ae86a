"""The primary-source share: computed from data/providers.csv's primary column and the data rows, printed by
``python -m tokenlib.data check``, and held at the level reached so it cannot fall silently."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, copy_data
from tokenlib import data
from tokenlib.data import provenance


#: The overall share reached (issue 18: 38 of 794 rows, 4.8 %, before the vendor-page re-sourcing of
#: prices.csv; 173 of 919, 18.8 %, once capability.csv's 2025 LMArena snapshots came from LMArena's own
#: arena-catalog repository, against main's 92 of 873; 262 of 1003, 26.1 %, once eight claims and a lab's
#: headquarters came from the publishers' own pages and two rows from Volcano Engine's own dated Ark model page;
#: 315 of 1003, 31.4 %, once two export_controls rows moved to BIS's and GPO's own pages and 51 rows from a copy
#: of Epoch's hardware CSV, or news reposts of the same figures, to Epoch's own repositories; 260 of 1003,
#: 25.9 %, once Epoch's hardware tables were classed as what they are, a compilation of vendors' and analysts'
#: figures like a price tracker (primary=no), and DataCrunch's table of NVIDIA's specifications as NVIDIA's via
#: DataCrunch); 264 of 1020, 25.9 %, once three Qwen3 models came in with their hidden sizes and head dims
#: read from a training framework's scripts (Qwen's report gives layers, heads and experts only); 298 of 1033,
#: 28.8 %, once OpenAI's cache-hit start and two launch prices, four labs' seats, fifteen display names and
#: eight model fields came from the publishers' own pages, and S.3374's text was classed as read through a copy.
#: 285 of 1033, 27.6 %, once the seed article's 14 claims rows were classed as read through the seed copy (the
#: stored QipaoBuzz page ends after its first ~2,000 characters; 9 of the 14 quotes are only in the copy).
#: Raise it when the share rises; the test fails if it falls below. Lower it only when a classification is
#: corrected or needed rows have no primary page, and say so here.
FLOOR = 0.275


def _by_hand(root: Path) -> dict[str, tuple[int, int]]:
    """The share counted with the csv module alone: table -> (rows, primary rows)."""
    with (root / "providers.csv").open(encoding="utf-8", newline="") as f:
        primary = {r["source_url"]: r["primary"] == "yes" for r in csv.DictReader(f)}
    out = {}
    for path in [*sorted(root.glob("*.csv")), *sorted((root / "sources").glob("*.csv"))]:
        if path.name == "providers.csv":
            continue
        with path.open(encoding="utf-8", newline="") as f:
            urls = [r["source_url"] for r in csv.DictReader(f) if r.get("source_url")]
        name = path.stem if path.parent == root else f"sources/{path.stem}"
        out[name] = (len(urls), sum(primary[u] for u in urls))
    return out


def test_share_matches_a_count_by_hand() -> None:
    df = provenance.primary_share().set_index("table")
    hand = _by_hand(ROOT / "data")
    for name, (rows, prim) in hand.items():
        assert (int(df.loc[name, "rows"]), int(df.loc[name, "primary_rows"])) == (rows, prim), name
    total_rows, total_prim = sum(r for r, _ in hand.values()), sum(p for _, p in hand.values())
    assert int(df.loc[provenance.ALL, "rows"]) == total_rows
    assert df.loc[provenance.ALL, "share"] == pytest.approx(total_prim / total_rows, abs=1e-12)


def test_share_follows_the_primary_column(tmp_path: Path) -> None:
    """Flip one provider from no to yes: the share rises by exactly the rows that cite it."""
    root = copy_data(tmp_path)
    before = provenance.primary_share(root).set_index("table")
    path = root / "providers.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    target = next(r for r in rows if r["primary"] == "no" and not r["via"]
                  and "capability" not in r["source_url"] and "syaoranwe" in r["source_url"])
    target["primary"] = "yes"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    after = provenance.primary_share(root).set_index("table")
    cites = {}
    for path in [*sorted(root.glob("*.csv")), *sorted((root / "sources").glob("*.csv"))]:
        with path.open(encoding="utf-8", newline="") as f:
            name = path.stem if path.parent == root else f"sources/{path.stem}"
            cites[name] = sum(r.get("source_url") == target["source_url"] for r in csv.DictReader(f))
    assert cites["prices"] > 0
    for name, n in cites.items():
        if name != "providers":
            assert int(after.loc[name, "primary_rows"]) == int(before.loc[name, "primary_rows"]) + n, name
    assert int(after.loc[provenance.ALL, "primary_rows"]) == (
        int(before.loc[provenance.ALL, "primary_rows"]) + sum(n for k, n in cites.items() if k != "providers"))


def test_share_does_not_fall_below_the_level_reached() -> None:
    share = provenance.overall_share()
    assert share >= FLOOR, (
        f"only {100 * share:.1f}% of data rows rest on a primary source (floor {100 * FLOOR:.1f}%): a row moved to a "
        "repost or tracker, or a provider lost primary=yes"
    )


def test_a_repost_is_never_primary(tmp_path: Path) -> None:
    root = copy_data(tmp_path)
    path = root / "providers.csv"
    text = path.read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if ",GIGAZINE,no" in ln)
    path.write_text(text.replace(line, line[: -len("no")] + "yes"), encoding="utf-8")
    with pytest.raises(data.DataValidationError, match="never the primary source"):
        provenance.primary_share(root)


def test_a_missing_or_bad_primary_value_is_refused(tmp_path: Path) -> None:
    root = copy_data(tmp_path)
    path = root / "providers.csv"
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[1]
    path.write_text(text.replace(first, first.rsplit(",", 1)[0] + ",maybe"), encoding="utf-8")
    with pytest.raises(data.DataValidationError, match="maybe"):
        data.load_primary(root)


def test_check_prints_the_share(capsys: pytest.CaptureFixture[str]) -> None:
    assert data.main(["check"]) == 0
    out = capsys.readouterr().out
    df = provenance.primary_share()
    overall = float(df.loc[df["table"] == provenance.ALL, "share"].iloc[0])
    assert "primary-source share" in out
    assert f"({100 * overall:.1f}%)" in out
    for name in ("prices", "places", "capability", "sources/chips"):
        assert f"  {name} " in out, name


def test_rows_flag_reads_the_primary_column() -> None:
    prices = data.load("prices")
    primary = data.load_primary()
    prim = prices[prices["source_url"].map(primary)]
    sec = prices[~prices["source_url"].map(primary)]
    assert len(prim) and len(sec)
    assert provenance.rows_flag(prim) == "primary source"
    assert provenance.rows_flag(sec) == "secondary only"
    mixed = pd.concat([prim.head(1), sec.head(2)])
    assert provenance.rows_flag(mixed) == "secondary only for 2 of 3 rows"
    assert provenance.rows_flag(sec.head(1), extra_primary=1) == "secondary only for 1 of 2 rows"
    assert provenance.sourcing_summary({"a": prim, "b": sec}) == "A: primary source; b: secondary only"
    with pytest.raises(ValueError, match="no rows"):
        provenance.rows_flag(prices.head(0))


def _toc_chapters() -> list[Path]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [ROOT / f"{c['file']}.md" for part in toc["parts"] if part["caption"] == "Chapters" for c in part["chapters"]]


@pytest.mark.parametrize("chapter", _toc_chapters(), ids=lambda p: p.stem)
def test_every_chapters_opening_answers_say_how_they_are_sourced(chapter: Path) -> None:
    """Issue 18: every number in a chapter's opening answers rests on a primary source or is flagged
    "secondary only"; the opening (the text before the first code cell) carries the glued sourcing line."""
    text = chapter.read_text(encoding="utf-8")
    body = text.split("---", 2)[2] if text.startswith("---") else text
    opening = body.split("```{code-cell}", 1)[0]
    assert re.search(r"\{glue:text\}`\w+_answers_sourcing`", opening), \
        f"{chapter.name}: the opening answers carry no sourcing line (glue a provenance.sourcing_summary)"
