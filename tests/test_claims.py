"""data/claims.csv covers every checkable claim of the article, with valid verdicts and sources."""

from __future__ import annotations

from pathlib import Path

import pytest

import tokenlib
from tokenlib.book import toc as book

ROOT = Path(__file__).resolve().parents[1]
VERDICTS = {"supported", "contradicted", "partly", "unverifiable", "opinion"}


@pytest.fixture(scope="module")
def claims():  # type: ignore[no-untyped-def]
    return tokenlib.load("claims")


def test_every_claim_id_is_covered(claims) -> None:  # type: ignore[no-untyped-def]
    ids = [x.strip() for x in (ROOT / "data" / "claim_ids.txt").read_text().splitlines() if x.strip()]
    assert ids, "data/claim_ids.txt is empty"
    missing = sorted(set(ids) - set(claims["id"]))
    assert not missing, f"claim ids with no row in data/claims.csv: {missing}"
    assert claims["id"].is_unique


def test_verdicts_valid(claims) -> None:  # type: ignore[no-untyped-def]
    bad = claims.loc[~claims["verdict"].isin(VERDICTS), ["id", "verdict"]]
    assert bad.empty, f"invalid verdicts: {bad.to_dict('records')}"
    assert claims["evidence"].fillna("").str.strip().ne("").all(), "every claim needs one line of evidence"


def test_non_opinion_claims_have_sources(claims) -> None:  # type: ignore[no-untyped-def]
    facts = claims[claims["verdict"] != "opinion"]
    for col in ("source_url", "source_title", "quote"):
        empty = facts.loc[facts[col].fillna("").astype(str).str.strip() == "", "id"].tolist()
        assert not empty, f"claims without {col}: {empty}"
    assert facts["source_url"].str.match(r"^https?://").all()


def test_checkable_claims_are_not_opinions(claims) -> None:  # type: ignore[no-untyped-def]
    ids = {x.strip() for x in (ROOT / "data" / "claim_ids.txt").read_text().splitlines() if x.strip()}
    op = claims[claims["id"].isin(ids) & (claims["verdict"] == "opinion")]["id"].tolist()
    assert not op, f"claims listed as checkable facts but judged opinion: {op}"


def test_chapter_links_resolve(claims) -> None:  # type: ignore[no-untyped-def]
    listed = set(book.toc_docnames())
    chapters = claims["chapter"].dropna()
    chapters = chapters[chapters.astype(str).str.strip() != ""]
    bad = sorted(set(chapters) - listed)
    assert not bad, f"claims point at chapters not in _toc.yml: {bad}"


def test_short_host() -> None:
    from tokenlib.book.claims import short_host

    assert short_host("https://english.shanghai.gov.cn/en/x.html") == "shanghai.gov.cn"
    assert short_host("https://www.bg3.co/a/b") == "bg3.co"
    assert short_host("https://global.chinadaily.com.cn/a") == "chinadaily.com.cn"
    assert short_host("https://github.com/o/r") == "github.com"
    assert short_host("") == ""


def test_claims_html_is_escaped_and_phone_friendly(claims) -> None:  # type: ignore[no-untyped-def]
    from tokenlib.book.claims import claims_html

    out = claims_html(claims, sections={"intro": "Introduction"})
    assert out.count("<tr>") == len(claims) + 1  # header + one row per claim
    assert "@media (max-width:700px)" in out and 'data-label="Verdict"' in out
    assert 'href="../chapters/04_crown.html">Ch. 5</a>' in out
    row = claims.iloc[:1].copy()
    row["article_text"] = "<script>alert(1)</script>"
    one = claims_html(row, link_chapter=False)
    assert "<script>" not in one and "&lt;script&gt;" in one
    assert "Ch. " not in one
    assert "The great token price war" in claims_html(claims)  # sections named by default
    assert set(claims["section"]) <= set(__import__("tokenlib.book.claims", fromlist=["CLAIM_SECTIONS"]).CLAIM_SECTIONS)
    bad = row.assign(verdict="maybe")
    with pytest.raises(ValueError):
        claims_html(bad)
