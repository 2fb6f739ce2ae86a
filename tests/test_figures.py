"""Figures: bundles, citations, Chinese glyphs, palette; the built book's figure files."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import altair as alt
import jsonschema
import pandas as pd
import pytest
import yaml
from PIL import Image
from pybtex.database import parse_string

from tokenlib.book import toc as book
from tokenlib.book import charts
from tokenlib.book import figures
from tokenlib.book.figures import Source, publish

from conftest import ROOT, SITE
BUNDLE_SUFFIXES = (".svg", ".png", ".csv", ".vl.json", ".html")


def _text_png(text: str, font: str = charts.FONT) -> Image.Image:
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "data": {"values": [{"t": text}]},
        "mark": {"type": "text", "fontSize": 40, "font": font},
        "encoding": {"text": {"field": "t"}},
        "width": 120,
        "height": 60,
        "config": {"view": {"stroke": None}},
    }
    return Image.open(io.BytesIO(figures.render_png(spec, scale=1))).convert("L")


def test_chinese_glyphs_are_not_tofu() -> None:
    """豆 and 包 must render as two different glyphs, and neither as the missing-glyph box.

    A missing glyph draws the same box whatever the character, so two identical renders, or a render
    identical to that of a private-use code point (which no font has), mean tofu.
    """
    dou, bao, missing = _text_png("豆"), _text_png("包"), _text_png("\ue000")
    assert dou.tobytes() != bao.tobytes(), "豆 and 包 render identically: CJK glyphs are missing"
    assert dou.tobytes() != missing.tobytes(), "豆 renders as the missing-glyph box"
    assert sum(1 for p in dou.tobytes() if p < 128) > 50, "豆 drew almost nothing"


def _sample_chart() -> tuple[alt.Chart, pd.DataFrame]:
    df = pd.DataFrame({"provider": ["豆包 Doubao", "DeepSeek"], "price": [0.8, 1.0]})
    return alt.Chart(df).mark_bar().encode(x="provider:N", y="price:Q").properties(width=200, height=120), df


def test_publish_writes_the_bundle(tmp_figures: Path) -> None:
    chart, df = _sample_chart()
    fig = publish(chart, name="fig-intro-bundle-test", title="A title", caption="A caption.",
                  sources=[Source("Provider", "Page", "https://example.org/p")], data=df, write=True)
    for suffix in BUNDLE_SUFFIXES:
        path = tmp_figures / f"{fig.name}{suffix}"
        assert path.exists() and path.stat().st_size > 0, path
    svg = (tmp_figures / f"{fig.name}.svg").read_text()
    width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    png = Image.open(tmp_figures / f"{fig.name}.png")
    assert png.size[0] == pytest.approx(2 * width, abs=2), "PNG is not exported at 2x"
    csv_text = (tmp_figures / f"{fig.name}.csv").read_text()
    assert csv_text.startswith("# A title") and "# Sources: Provider, Page (https://example.org/p)" in csv_text
    data = pd.read_csv(tmp_figures / f"{fig.name}.csv", comment="#")
    assert list(data["provider"]) == ["豆包 Doubao", "DeepSeek"]
    html = (tmp_figures / f"{fig.name}.html").read_text()
    assert "cdn.jsdelivr" not in html and "window.vega=" in html, "standalone HTML must inline Vega"
    meta = json.loads((tmp_figures / f"{fig.name}.json").read_text())
    assert meta["number"] == "0.1" and meta["page"] == "intro"
    assert not list(tmp_figures.glob(".*.tmp")), "temporary files left behind"


def test_figure_block_has_caption_downloads_and_citation(tmp_figures: Path) -> None:
    chart, df = _sample_chart()
    fig = publish(chart, name="fig-intro-block-test", title="Prices fell", caption="Shown in CNY.",
                  sources=[Source("DeepSeek", "Pricing", "https://api-docs.deepseek.com/")], data=df, write=False)
    block = fig.html()
    assert f'id="{fig.name}"' in block and f'id="{fig.name}-chart"' in block
    for suffix in BUNDLE_SUFFIXES:
        assert f'href="figures/{fig.name}{suffix}"' in block
    assert "Cite this figure" in block and 'aria-label="' in block
    assert "<strong>Prices fell.</strong> Shown in CNY." in block, "title and caption must read as sentences"
    many = [Source(f"P{i}", f"T{i}", f"https://example.org/{i}") for i in range(5)]
    folded = publish(chart, name="fig-intro-block-many", title="t", caption="c", sources=many, data=df, write=False)
    assert "2 more sources" in folded.html() and "https://example.org/4" in folded.html()
    assert not re.search(r"<p[^>]*>(?:(?!</p>).)*<details", folded.html(), re.S), "no <details> inside a <p>"
    assert fig.citation_short().startswith("DeepSeek"), "original provider must come first"
    entry = parse_string(fig.bibtex(version="0.1.0", date="2026-11-28"), "bibtex")
    assert list(entry.entries) == ["fig_intro_block_test"]


def test_publish_refuses_bad_figures(tmp_figures: Path) -> None:
    chart, df = _sample_chart()
    src = [Source("P", "T", "https://example.org")]
    with pytest.raises(ValueError, match="fig-<chapter>-<slug>"):
        publish(chart, name="Figure 1", title="t", caption="c", sources=src, data=df, write=False)
    with pytest.raises(ValueError, match="no sources"):
        publish(chart, name="fig-intro-x", title="t", caption="c", sources=[], data=df, write=False)
    with pytest.raises(ValueError, match="empty"):
        publish(chart, name="fig-intro-x", title="t", caption="c", sources=src, data=df.iloc[:0], write=False)
    with pytest.raises(ValueError, match="no page for chapter '99'"):
        publish(chart, name="fig-99-x", title="t", caption="c", sources=src, data=df, write=False)


def test_palette_is_fixed_and_colour_blind_safe() -> None:
    # Okabe & Ito's eight colours (Color Universal Design), in a fixed order
    assert charts.PALETTE == ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
    assert charts.theme_config()["config"]["range"]["category"] == list(charts.PALETTE)
    with pytest.raises(ValueError, match="colour-blind-safe"):
        charts.color_scale([str(i) for i in range(9)])


def test_a_chart_drawing_some_categories_lists_only_those_in_their_sibling_colours() -> None:
    full = charts.color_scale(["a", "b", "c", "d"]).to_dict()
    part = charts.color_scale(["a", "b", "c", "d"], shown=["d", "b", "d"]).to_dict()
    assert part["domain"] == ["b", "d"]
    assert part["range"] == [full["range"][1], full["range"][3]]
    with pytest.raises(ValueError, match=r"\['e'\].*not in the colour domain"):
        charts.color_scale(["a", "b"], shown=["a", "e"])


def test_citation_cff_is_valid() -> None:
    schema = json.loads((ROOT / "tests" / "schemas" / "cff-1.2.0.schema.json").read_text())
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    cff = json.loads(json.dumps(cff, default=str))
    jsonschema.validate(cff, schema, format_checker=jsonschema.FormatChecker())


def _figure_names_in_book() -> list[str]:
    names: list[str] = []
    for path in book.toc_notebooks():
        names += re.findall(r'name=\\?"(fig-[a-z0-9-]+)\\?"', path.read_text(encoding="utf-8"))
    return sorted(set(names))


@pytest.mark.book
def test_every_figure_in_the_book_has_its_bundle() -> None:
    if not (SITE / "intro.html").exists():
        pytest.fail("the book is not built: run `make book` first (make test does)")
    names = _figure_names_in_book()
    assert names, "no figures found in the chapters"
    for name in names:
        for suffix in BUNDLE_SUFFIXES:
            path = SITE / "figures" / f"{name}{suffix}"
            assert path.exists() and path.stat().st_size > 0, f"missing or empty: {path}"
        meta = json.loads((SITE / "figures" / f"{name}.json").read_text())
        svg = (SITE / "figures" / f"{name}.svg").read_text()
        width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
        png = Image.open(SITE / "figures" / f"{name}.png")
        png.load()
        assert png.size[0] == pytest.approx(2 * width, abs=2), f"{name}.png is not 2x its SVG"
        parse_string(meta["bibtex"], "bibtex")
        page = SITE / f"{meta['page']}.html"
        assert f'id="{name}"' in page.read_text(encoding="utf-8"), f"{name} is not on {page}"


@pytest.mark.book
def test_figure_index_lists_every_figure() -> None:
    index = (SITE / "appendix" / "figures.html").read_text(encoding="utf-8")
    for name in _figure_names_in_book():
        assert f'id="index-{name}"' in index, f"{name} missing from the figures index"


def test_page_charts_arrive_compiled_in_two_layouts_with_their_data_once() -> None:
    """A page embeds Vega (not Vega-Lite): the designed layout and a phone layout, sharing one copy of the data."""
    df = pd.DataFrame({"place, province": ["Ulanqab, Inner Mongolia", "Beijing"], "cost": [1.0, 2.0]})
    left = alt.Chart(df).mark_bar().encode(y="place, province:N", x=alt.X("cost:Q", title="cost per million tokens, "
                                                                                     "CNY, at the base utilisation"))
    spec = alt.hconcat(left, left.mark_point(), data=df).properties(title="t").to_dict()
    block = figures.page_vega(spec)
    assert set(block) == {"wide", "narrow", "data"}
    for layout in ("wide", "narrow"):
        vg = block[layout]
        assert vg["$schema"].startswith("https://vega.github.io/schema/vega/"), "not compiled to Vega"
        refs = [d["tc_values"] for d in vg["data"] if "tc_values" in d]
        assert refs and all("values" not in d for d in vg["data"]) and set(refs) <= set(block["data"])
    assert len(block["data"]) == 1, "both layouts should share one copy of the data"
    assert "title" not in block["wide"] or not block["wide"]["title"], "the page sets the title as text"
    narrow = figures.narrow_spec(figures.page_spec(spec))
    assert "vconcat" in narrow and "hconcat" not in narrow, "side-by-side views are stacked on a phone"
    x_title = narrow["vconcat"][0]["encoding"]["x"]["title"]
    assert isinstance(x_title, list) and all(len(line) <= 40 for line in x_title), x_title
    assert "split(datum.label" in narrow["vconcat"][0]["encoding"]["y"]["axis"]["labelExpr"]
    assert narrow["config"]["legend"]["columns"] == 1


def test_page_bundle_is_vega_alone() -> None:
    bundle = figures.vega_bundle_js()
    assert bundle.rstrip().endswith("})();") and "window.vega=" in bundle
    assert "vegaEmbed" not in bundle and len(bundle) < 700_000, "the page bundle carries Vega-Lite or Vega-Embed"
