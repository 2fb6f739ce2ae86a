"""Reader's tables (tokenlib.book.tables) and the page-side helpers of the reader's view (figures, sphinxext)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from tokenlib.book import figures
from tokenlib.book import tables
from tokenlib.book.sphinxext import strip_test_markers, used_icons


def test_format_number_by_magnitude_and_digits() -> None:
    assert tables.format_number(87072.4) == "87,072"
    assert tables.format_number(45.26) == "45.3"
    assert tables.format_number(2.638) == "2.64"
    assert tables.format_number(0.06873) == "0.0687"
    assert tables.format_number(-32.606, digits=0) == "−33"
    assert tables.format_number(1.2e-7) == "1.20e−07"
    assert tables.format_number(float("nan")) == "" and tables.format_number(None) == ""
    assert tables.format_number(18) == "18" and tables.format_number("H20") == "H20"
    assert tables.format_number(pd.Timestamp("2024-12-31")) == "2024-12-31"


def test_show_gives_html_with_units_and_the_plain_table_for_nbval() -> None:
    df = pd.DataFrame({"chip": ["H20", "<b>910B</b>"], "cost_cny": [0.123456, 12.3456]})
    t = tables.show(df, headers={"cost_cny": "cost"}, units={"cost_cny": "CNY/Mtok"})
    bundle = t._repr_mimebundle_()
    assert bundle["text/plain"] == df.to_string(index=False), "nbval must compare what the printed table showed"
    html = bundle["text/html"]
    assert "<th scope=\"col\">cost (CNY/Mtok)</th>" in html and "<th scope=\"col\">chip</th>" in html
    assert "0.123" in html and "12.3" in html and "0.123456" not in html
    assert "&lt;b&gt;910B&lt;/b&gt;" in html and "<b>" not in html, "text from data is escaped"


def test_show_refuses_unknown_columns_and_non_frames() -> None:
    df = pd.DataFrame({"a": [1.0]})
    with pytest.raises(ValueError, match=r"no column \['b'\]; the columns are \['a'\]"):
        tables.show(df, units={"b": "%"})
    with pytest.raises(TypeError, match="DataFrame"):
        tables.show([1, 2])  # type: ignore[arg-type]


def test_show_with_index_and_caption() -> None:
    df = pd.DataFrame({"x": [1.5]}, index=pd.Index(["H20"], name="chip"))
    t = tables.show(df, index=True, caption="Chips")
    assert t.to_text().startswith("Chips\n") and "<caption>Chips</caption>" in t.to_html()
    assert "<th scope=\"col\">chip</th>" in t.to_html()


def test_page_spec_has_no_chart_title() -> None:
    chart = alt.Chart(pd.DataFrame({"x": [1, 2], "y": [3, 4]})).mark_line().encode(x="x:Q", y="y:Q").properties(
        width=500, height=200, title="A long finding that would not fit a phone")
    spec = figures.page_spec(chart.to_dict())
    assert "vega-lite" in spec["$schema"]
    assert "title" not in spec and spec["width"] == 500, "the page draws the designed width; the JS narrows it"


def test_test_markers_are_stripped_from_shown_code() -> None:
    src = "# NBVAL_CHECK_OUTPUT\nx = 1  # NBVAL in a comment stays\n  # NBVAL_IGNORE_OUTPUT\ny = 2\n"
    assert strip_test_markers(src) == "x = 1  # NBVAL in a comment stays\ny = 2\n"


def test_used_icons_keeps_the_pages_icons_and_the_themes_own() -> None:
    css = ('.fa-bars:before,.fa-navicon:before{content:"\\f0c9"}.fa-moon:before{content:"\\f186"}'
           '.admonition-title:after{content:"\\f0eb"}html{--pst-icon-download:"\uf019"}')
    got = used_icons(css, ['<i class="fa-solid fa-bars"></i>'])
    assert got == {0xF0C9, 0xF0EB, 0xF019}, "unused .fa-moon dropped; theme rules and variables kept"


def test_unused_icon_rules_are_stripped() -> None:
    from tokenlib.book.sphinxext import strip_unused_icon_rules

    css = ('.a{color:red}.fa-bars:before,.fa-navicon:before{content:"\\f0c9"}.fa-moon:before{content:"\\f186"}'
           '.fa-solid{font-weight:900}')
    out = strip_unused_icon_rules(css, ['<i class="fa-solid fa-bars"></i>'])
    assert out == '.a{color:red}.fa-bars:before,.fa-navicon:before{content:"\\f0c9"}.fa-solid{font-weight:900}'


def test_a_table_with_a_long_text_column_becomes_cards_on_a_phone() -> None:
    long = "x" * (tables.CARD_TEXT_CHARS + 1)
    cards = tables.show(pd.DataFrame({"name": ["a"], "value": [1.0], "basis": [long]}))
    assert cards.as_cards() and 'class="dataframe tc-reader-table tc-cards"' in cards.to_html()
    assert '<td data-label="basis">' in cards.to_html()
    short = tables.show(pd.DataFrame({"name": ["a"], "value": [1.0], "basis": ["short"]}))
    assert not short.as_cards() and "data-label" not in short.to_html()
    wide = tables.show(pd.DataFrame({f"c{i}": [long] for i in range(tables.CARD_COLUMNS[1] + 1)}))
    assert not wide.as_cards(), "a table wider than CARD_COLUMNS scrolls in its box instead"


def test_card_labels_are_escaped() -> None:
    t = tables.show(pd.DataFrame({"name": ["a"], 'x"><script>alert(1)</script>': ["y" * 60], "v": [1]}))
    html = t.to_html()
    assert "<script>" not in html and 'data-label="x&quot;&gt;&lt;script&gt;' in html
