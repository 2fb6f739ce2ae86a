"""Figure captions flag "secondary only" from data/providers.csv's primary column, automatically."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import altair as alt
import pandas as pd
import pytest

from conftest import ROOT, copy_data
from tokenlib.book import figures
from tokenlib.book.figures import PRIMARY_MARK, SECONDARY_MARK, Figure, Source, publish, sources_from

PRIMARY_URL = "https://api-docs.deepseek.com/quick_start/pricing"          # DeepSeek's own page: primary=yes
TRACKER_URL = ("https://github.com/syaoranwe/LLM-Price/blob/5da799d29bbab6e2613b958082e37ce7649e6d02/"
               "README.md")                                                   # a tracker: primary=no


def _chart() -> tuple[alt.Chart, pd.DataFrame]:
    df = pd.DataFrame({"provider": ["DeepSeek", "Qwen"], "price": [1.0, 2.0]})
    return alt.Chart(df).mark_bar().encode(x="provider:N", y="price:Q"), df


def _rows(*urls: str) -> pd.DataFrame:
    return pd.DataFrame({"source_url": list(urls), "source_title": [f"title {i}" for i in range(len(urls))]})


def _caption(fig: Figure) -> str:
    m = re.search(r'<p class="tc-caption">(.*?)</p>', fig.html(), re.S)
    assert m, "no caption paragraph"
    return m.group(1)


def test_sources_from_reads_primary_from_providers() -> None:
    by_url = {s.url: s.primary for s in sources_from(_rows(PRIMARY_URL, TRACKER_URL))}
    assert by_url == {PRIMARY_URL: True, TRACKER_URL: False}


def test_caption_flags_a_figure_on_secondary_sources_only(tmp_figures: Path) -> None:
    chart, df = _chart()
    secondary = publish(chart, name="fig-intro-flag-secondary", title="t", caption="c.",
                        sources=sources_from(_rows(TRACKER_URL)), data=df)
    assert f"Sources: {SECONDARY_MARK}." in _caption(secondary)
    assert f"({PRIMARY_MARK})" not in secondary.html()
    assert f"[{SECONDARY_MARK}]" in figures._csv_with_header(secondary), "the CSV marks each secondary source"
    assert f"# Sourcing: {secondary.sourcing()}" in figures._csv_with_header(secondary)
    assert f"Sources: {SECONDARY_MARK}." in secondary.lab_html()

    primary = publish(chart, name="fig-intro-flag-primary", title="t", caption="c.",
                      sources=sources_from(_rows(PRIMARY_URL)), data=df)
    assert primary.sourcing() == "" and SECONDARY_MARK not in primary.html().lower()
    assert f"({PRIMARY_MARK})" in primary.html(), "a primary source is marked on the page"
    assert "# Sourcing:" not in figures._csv_with_header(primary)

    mixed = publish(chart, name="fig-intro-flag-mixed", title="t", caption="c.",
                    sources=sources_from(_rows(PRIMARY_URL, TRACKER_URL)), data=df)
    assert f"Sources: {SECONDARY_MARK} for 1 of 2 sources (" in _caption(mixed)
    assert mixed.html().count(f"({PRIMARY_MARK})") == 1


def test_publish_fills_primary_of_a_hand_made_source(tmp_figures: Path) -> None:
    chart, df = _chart()
    known = publish(chart, name="fig-intro-flag-hand", title="t", caption="c.",
                    sources=[Source("DeepSeek", "Pricing", PRIMARY_URL)], data=df)
    assert known.sources[0].primary is True and known.sourcing() == ""
    unknown = publish(chart, name="fig-intro-flag-unknown", title="t", caption="c.",
                      sources=[Source("P", "T", "https://example.org/not-in-providers")], data=df)
    assert unknown.sources[0].primary is None and f"Sources: {SECONDARY_MARK}." in unknown.sourcing(), \
        "a source not known to be primary is flagged"
    stated = publish(chart, name="fig-intro-flag-stated", title="t", caption="c.",
                     sources=[Source("arXiv", "A paper", "https://arxiv.org/abs/0000.00000", primary=True)], data=df)
    assert stated.sourcing() == ""
    again = Figure.from_payload(stated.payload())
    assert again.sources[0].primary is True, "primary survives the payload (the build's downloads)"


def test_an_invalid_providers_table_is_an_error_not_a_secondary_flag(tmp_figures: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tokenlib import data

    def broken(root: object = None) -> dict[str, bool]:
        raise data.DataValidationError(Path("providers.csv"), ["primary: column missing"])

    monkeypatch.setattr(data, "load_primary", broken)
    chart, df = _chart()
    with pytest.raises(data.DataValidationError, match="primary"):
        publish(chart, name="fig-intro-flag-broken", title="t", caption="c.",
                sources=[Source("DeepSeek", "Pricing", PRIMARY_URL)], data=df)


def test_the_flag_follows_the_primary_column(tmp_path: Path) -> None:
    root = copy_data(tmp_path)
    path = root / "providers.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if r["source_url"] == PRIMARY_URL:
            r["primary"] = "no"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    assert [s.primary for s in sources_from(_rows(PRIMARY_URL), root=root)] == [False]
    assert [s.primary for s in sources_from(_rows(PRIMARY_URL))] == [True]
