"""Citations that survive an editor: parseable references, original providers, self-contained downloads,
a licence, versioned permalinks (issue 15)."""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path
from urllib.parse import urlparse

import altair as alt
import jsonschema
import pandas as pd
import pytest
import yaml
from PIL import Image
from pybtex.database import parse_string

from tokenlib import data
from tokenlib.book import toc as book
from tokenlib.book import figures
from tokenlib.book.figures import Source, publish, sources_from

from conftest import ROOT, SITE, copy_data

CSL_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "csl-data-1.0.schema.json").read_text(encoding="utf-8"))
VERSION, DATE = "0.1.0", "2026-11-28"
RIS_LINE = re.compile(r"^[A-Z][A-Z0-9]  - .*$")


@pytest.fixture()
def fig(monkeypatch: pytest.MonkeyPatch) -> figures.Figure:
    monkeypatch.setattr(figures, "_numbers", {})
    df = pd.DataFrame({"provider": ["豆包 Doubao", "DeepSeek"], "price": [0.8, 1.0]})
    chart = alt.Chart(df).mark_bar().encode(x="provider:N", y="price:Q").properties(width=200, height=120)
    return publish(chart, name="fig-intro-cite-test", title="Prices fell & rose", caption="A caption.",
                   units="USD per million tokens",
                   sources=[Source("National Data Administration", "A page", "https://example.org/p", "NetEase")],
                   data=df, write=False)


def check_bibtex_entry(text: str, *, own: bool = True) -> None:
    """Parse with pybtex; four-digit year, month, urldate, version, and the contributors as one organisation."""
    entries = parse_string(text, "bibtex").entries
    assert len(entries) == 1, text
    entry = next(iter(entries.values()))
    assert re.fullmatch(r"\d{4}", entry.fields["year"]), f"year {entry.fields['year']!r} is not four digits"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry.fields["urldate"]), entry.fields.get("urldate")
    if own:
        assert entry.fields["month"] in ("January", "February", "March", "April", "May", "June", "July", "August",
                                         "September", "October", "November", "December"), entry.fields["month"]
        assert entry.fields["version"], "no version"
        (author,) = entry.persons["author"]
        assert author.first_names == [] and author.last_names == ["{Token Capital contributors}"], (
            f"author parses as a person: {author}")


def check_csl(text: str) -> list[dict[str, object]]:
    items = json.loads(text)
    jsonschema.Draft7Validator(CSL_SCHEMA).validate(items)
    for item in items:
        assert item["author"] == [{"literal": "Token Capital contributors"}]
        parts = item["issued"]["date-parts"][0]  # type: ignore[index]
        assert len(parts) == 3 and 1000 <= parts[0] <= 9999, parts
        assert item["version"] and item["URL"]
    return items  # type: ignore[no-any-return]


def check_ris(text: str) -> dict[str, list[str]]:
    lines = text.rstrip("\n").split("\n")
    assert lines[0].startswith("TY  - ") and lines[-1] == "ER  - ", text
    tags: dict[str, list[str]] = {}
    for line in lines:
        assert RIS_LINE.match(line), f"not an RIS line: {line!r}"
        tags.setdefault(line[:2], []).append(line[6:])
    for tag in ("TI", "AU", "PY", "DA", "Y2", "UR", "ET"):
        assert tag in tags, f"RIS lacks {tag}"
    assert re.fullmatch(r"\d{4}", tags["PY"][0]) and re.fullmatch(r"\d{4}/\d{2}/\d{2}/", tags["DA"][0])
    return tags


# -- 1. references that parse -----------------------------------------------------------------


def test_figure_bibtex_parses_with_year_month_urldate_version_and_organisation(fig: figures.Figure) -> None:
    check_bibtex_entry(fig.bibtex(VERSION, DATE))
    # the page's copy carries placeholders the Sphinx extension fills: filled, it parses the same
    check_bibtex_entry(figures.fill_placeholders(fig.bibtex(), VERSION, DATE))
    entry = next(iter(parse_string(fig.bibtex(VERSION, DATE), "bibtex").entries.values()))
    assert entry.fields["year"] == "2026" and entry.fields["month"] == "November"
    assert entry.fields["url"].endswith("/v0.1.0/intro.html#fig-intro-cite-test"), "permalink is not versioned"


def test_figure_csl_json_validates_and_ris_is_well_formed(fig: figures.Figure) -> None:
    (item,) = check_csl(fig.csl_json(VERSION, DATE))
    assert item["issued"] == {"date-parts": [[2026, 11, 28]]} and item["type"] == "figure"
    tags = check_ris(fig.ris(VERSION, DATE))
    assert tags["AU"] == ["Token Capital contributors"] and tags["ET"] == [VERSION]
    assert check_csl(figures.fill_placeholders(fig.csl_json(), VERSION, DATE))[0]["issued"] == item["issued"]


def test_book_citation_parses_in_all_three_forms() -> None:
    c = figures.book_citation(VERSION, DATE)
    check_bibtex_entry(c["bibtex"])
    check_csl(c["csl_json"])
    check_ris(c["ris"])


def test_references_bib_parses() -> None:
    text = (ROOT / "references.bib").read_text(encoding="utf-8")
    db = parse_string(text, "bibtex")
    assert db.entries
    for key, entry in db.entries.items():
        assert re.fullmatch(r"\d{4}", entry.fields["year"]), key
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry.fields.get("urldate", "")), f"{key}: no urldate"


def test_fill_placeholders_refuses_a_bad_date() -> None:
    with pytest.raises(ValueError, match="'28/11/2026' is not an ISO date"):
        figures.fill_placeholders("x", VERSION, "28/11/2026")


# -- 2. original providers from data ------------------------------------------------------------


def _host(url: str) -> str:
    return (urlparse(url).hostname or "").removeprefix("www.")


def test_every_provider_in_data_is_a_name_not_a_host() -> None:
    providers = data.load_providers()
    assert data.used_source_urls() <= set(providers), "a source_url has no provider"
    for url, (provider, _via) in providers.items():
        assert provider.strip(), url
        assert not data.is_host_name(provider), f"{url}: provider {provider!r} is a host name"
        organisation = data.loader.organisation(provider)
        assert not data.is_host_name(organisation), f"{url}: organisation of {provider!r} is a host name"
        assert provider.lower() not in (_host(url), "www." + _host(url)), f"{url}: provider is the URL's host"


def test_sources_from_credits_the_original_provider_via_the_host() -> None:
    places = data.load("places")
    rows = places[places["source_url"].str.contains("baitongwang|szb.nxrb", regex=True)]
    usage = data.load("usage")
    rows = pd.concat([rows, usage[usage["source_url"].str.contains("163.com|udn.com", regex=True)]])
    credits = {s.url: s for s in sources_from(rows)}
    shanghai = next(s for u, s in credits.items() if "baitongwang" in u)
    assert shanghai.provider.startswith("Shanghai Municipal Commission") and shanghai.via
    assert "via" in shanghai.text() and shanghai.via in shanghai.html()
    for url, s in credits.items():
        assert not data.is_host_name(s.provider), f"{url}: credited to the host {s.provider!r}"
    assert {s.provider for u, s in credits.items() if "163.com" in u or "udn.com" in u} == {
        "National Data Administration (国家数据局)"}


def test_unknown_provider_keeps_its_host_in_the_short_credit(fig: figures.Figure) -> None:
    fig.sources = [Source("unknown provider", "T", "https://example.org/a", "example blog"), Source("IDC", "T", "u")]
    assert fig.providers() == "unknown provider via example blog; IDC"
    fig.sources = [Source("DeepSeek", "T", "a"), Source("DeepSeek, pricing page", "T", "b", "BenchLM")]
    assert fig.providers() == "DeepSeek", "one organisation is credited once in the short line"


def test_a_comma_inside_brackets_does_not_cut_the_organisation(fig: figures.Figure) -> None:
    # "llm-prices-cn price tracker (szp2005, llmabacus)" was credited as "llm-prices-cn price tracker (szp2005"
    fig.sources = [Source("llm-prices-cn price tracker (szp2005, llmabacus)", "T", "a"),
                   Source("Huawei, CANN guide (A2, A3)", "T", "b")]
    assert fig.providers() == "llm-prices-cn price tracker (szp2005, llmabacus); Huawei"


def test_load_providers_refuses_a_host_name_and_a_missing_url(tmp_path: Path) -> None:
    root = copy_data(tmp_path)
    path = root / "providers.csv"
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[1]
    url = first.split(",", 1)[0]
    path.write_text(text.replace(first, f"{url},henan.baitongwang.com,,no"), encoding="utf-8")
    with pytest.raises(data.DataValidationError, match="is a host name, not a provider"):
        data.load_providers(root)
    path.write_text(text.replace(first + "\n", ""), encoding="utf-8")
    with pytest.raises(data.DataValidationError, match=f"no row for {re.escape(url)}"):
        data.load_providers(root)


def test_sources_from_refuses_an_url_with_no_provider() -> None:
    df = pd.DataFrame({"source_url": ["https://example.org/unlisted"], "source_title": ["T"]})
    with pytest.raises(ValueError, match="no provider for https://example.org/unlisted: add a row"):
        sources_from(df)


# -- 3. self-contained downloads ------------------------------------------------------------------


def _svg_lines(svg: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def _svg_text(svg: str) -> str:
    return " ".join(_svg_lines(svg))


def test_credit_wrap_never_splits_the_licence_name() -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 200 100"></svg>'
    credit = "Source: A provider with a long name · Chart: Token Capital v0.1.0 · CC BY 4.0"
    for width in range(120, 420, 7):  # every place the wrap could fall
        narrow = svg.replace("200", str(width))
        lines = _svg_lines(figures.with_credit_lines(narrow, [credit]))
        assert len(lines) > 1 or width > 300
        assert any("CC BY 4.0" in line for line in lines), f"licence split at width {width}: {lines}"
        assert " ".join(lines) == credit


def test_svg_download_carries_title_units_source_and_licence(fig: figures.Figure) -> None:
    text = _svg_text(figures.figure_svg(fig, VERSION))
    for needle in ("Prices fell & rose", "USD per million tokens", "Source: National Data Administration",
                   f"Chart: Token Capital {VERSION}", "CC BY 4.0", "/v0.1.0/intro.html#fig-intro-cite-test"):
        assert needle in text, f"{needle!r} not in the SVG's text: {text}"
    assert "CC BY 4.0" not in _svg_text(figures.figure_svg(fig, VERSION, credit=False))


def test_png_download_is_the_svg_with_its_credit_line(fig: figures.Figure) -> None:
    with_credit = Image.open(io.BytesIO(figures.figure_png(fig, VERSION))).convert("L")
    without = Image.open(io.BytesIO(figures.figure_png(fig, VERSION, credit=False))).convert("L")
    _, svg_h = figures.svg_size(figures.figure_svg(fig, VERSION))
    _, bare_h = figures.svg_size(figures.figure_svg(fig, VERSION, credit=False))
    assert with_credit.size[1] == pytest.approx(2 * svg_h, abs=2), "PNG is not the 2x raster of the credited SVG"
    assert with_credit.size[1] - without.size[1] == pytest.approx(2 * (svg_h - bare_h), abs=2)
    band = with_credit.crop((0, without.size[1], with_credit.size[0], with_credit.size[1]))
    assert sum(1 for p in band.tobytes() if p < 128) > 200, "the credit band of the PNG has no text"


def test_standalone_html_and_csv_carry_title_caption_sources_and_licence(fig: figures.Figure) -> None:
    page = figures.standalone_html(fig, VERSION, DATE)
    assert "<title>Figure 0.1: Prices fell &amp; rose – Token Capital</title>" in page
    assert "A caption." in page and "National Data Administration via NetEase" in page and "CC BY 4.0" in page
    assert re.search(r'<link rel="icon" href="data:image/svg\+xml,', page), "favicon must not be a request"
    assert "@@TOKENBOOK" not in page and "cdn.jsdelivr" not in page
    csv = figures._csv_with_header(fig, VERSION)
    header = [line for line in csv.splitlines() if line.startswith("#")]
    assert "# Units: USD per million tokens" in header
    assert f"# Source: National Data Administration · Chart: Token Capital {VERSION} · CC BY 4.0" in header
    assert any(line.startswith("# Licence: CC BY 4.0") for line in header)


# -- 4. a licence -----------------------------------------------------------------------------------


def test_licences_are_stated_everywhere() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "CC BY 4.0" in (ROOT / "LICENSE-CC-BY-4.0.md").read_text(encoding="utf-8")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert set(cff["license"]) == {"CC-BY-4.0", "MIT"}
    from tokenlib import __version__

    assert cff["version"] == __version__, "CITATION.cff's version is not the package's"
    assert 'license = {text = "MIT"}' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


# -- 5/6. versioned permalinks, embed ---------------------------------------------------------------


def test_embed_snippet_points_at_the_versioned_standalone_page_with_its_size(fig: figures.Figure) -> None:
    snippet = figures.fill_placeholders(fig.embed_snippet(), VERSION, DATE)
    m = re.fullmatch(r'<iframe src="([^"]+)" width="(\d+)" height="(\d+)" title="[^"]+" loading="lazy" '
                     r'style="border:0;max-width:100%"></iframe>', snippet)
    assert m, snippet
    assert m.group(1) == "https://token-capital.github.io/book/v0.1.0/figures/fig-intro-cite-test.html"
    width, height = figures.svg_size(figures.render_svg(fig.spec))
    assert int(m.group(2)) > width and int(m.group(3)) > height


def _fake_build(path: Path, version: str) -> Path:
    path.mkdir(parents=True)
    (path / "intro.html").write_text(f"<p>{version}</p>", encoding="utf-8")
    (path / "versions.json").write_text(json.dumps({"latest": version, "versions": [{"version": version, "path": ""}]}))
    return path


def test_site_keeps_every_release_beside_the_latest(tmp_path: Path) -> None:
    site = tmp_path / "site"
    book.add_to_site(_fake_build(tmp_path / "b1", "0.1.0"), site)
    listing = book.add_to_site(_fake_build(tmp_path / "b2", "0.2.0"), site)
    assert listing == {"latest": "0.2.0", "versions": [{"version": "0.2.0", "path": "v0.2.0/"},
                                                       {"version": "0.1.0", "path": "v0.1.0/"}]}
    assert (site / "v0.1.0" / "intro.html").read_text() == "<p>0.1.0</p>", "an earlier release changed"
    assert (site / "intro.html").read_text() == "<p>0.2.0</p>", "the root is not the latest"
    assert json.loads((site / "versions.json").read_text()) == listing
    with pytest.raises(ValueError, match="'0.2-beta' must be dotted numbers"):
        book.add_to_site(tmp_path / "b2", site, version="0.2-beta")


# -- the built book -----------------------------------------------------------------------------------


def _built() -> Path:
    if not (SITE / "intro.html").exists():
        pytest.fail("the book is not built: run `make book` first (make test does)")
    return SITE


def _pages() -> list[Path]:
    pages = [p for p in _built().rglob("*.html") if p.relative_to(SITE).parts[0] not in ("_static", "figures")]
    return [p for p in pages if "<body" in p.read_text(encoding="utf-8")]  # not the index.html redirect


@pytest.mark.book
def test_built_pages_citations_parse_and_carry_the_licence() -> None:
    blocks = 0
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        rel = page.relative_to(SITE)
        assert "@@TOKENBOOK" not in text, f"{rel}: unfilled placeholder"
        assert "CC BY 4.0" in text and "MIT" in text, f"{rel}: no licence in the footer"
        for bib in re.findall(r'<pre class="tc-bibtex"[^>]*>(.*?)</pre>', text, re.S):
            check_bibtex_entry(html.unescape(bib))
            blocks += 1
        for csl in re.findall(r'<pre class="tc-csl"[^>]*>(.*?)</pre>', text, re.S):
            check_csl(html.unescape(csl))
        for ris in re.findall(r'<pre class="tc-ris"[^>]*>(.*?)</pre>', text, re.S):
            check_ris(html.unescape(ris))
    assert blocks > len(figures.registry(SITE / "figures")), "fewer BibTeX blocks than figures plus the book"
    assert 'class="tc-book-cite"' in (SITE / "appendix" / "cite.html").read_text(encoding="utf-8")


@pytest.mark.book
def test_built_figures_credit_providers_and_carry_source_and_licence() -> None:
    entries = figures.registry(_built() / "figures")
    assert entries
    for e in entries:
        name = e["name"]
        check_bibtex_entry(e["bibtex"])
        check_csl(e["csl_json"])
        check_ris(e["ris"])
        for s in e["sources"]:
            assert not data.is_host_name(s["provider"]), f"{name}: credits the host {s['provider']!r}"
        assert e["licence"] == "CC BY 4.0"
        svg_lines = _svg_lines((SITE / "figures" / f"{name}.svg").read_text(encoding="utf-8"))
        svg_text = " ".join(svg_lines)
        assert "Source: " in svg_text and e["title"] in svg_text, name
        assert any("CC BY 4.0" in line for line in svg_lines), f"{name}: the licence name is split across lines"
        page = (SITE / "figures" / f"{name}.html").read_text(encoding="utf-8")
        assert f"<title>{html.escape('Figure ' + e['number'] + ': ' + e['title'])}" in page, name
        assert html.escape(e["caption"]) in page and "CC BY 4.0" in page and 'rel="icon"' in page, name
        csv = (SITE / "figures" / f"{name}.csv").read_text(encoding="utf-8")
        assert "\n# Source: " in csv and "\n# Licence: CC BY 4.0" in csv, name
    by_name = {e["name"]: e for e in entries}
    long_fall = _svg_text((SITE / "figures" / "fig-01-long-fall.svg").read_text(encoding="utf-8"))
    assert re.search(r"(CNY|USD) per million tokens", long_fall), "Fig 1.2's download does not say its currency"
    # Figure 4.1's headline (the chip mix moves cost) rests on the chip prices: their sources are credited
    prices = data.load_sources("chips").query("field == 'price_usd' and item_id in ['h20', 'ascend-910b']")
    credited = {s["url"] for s in by_name["fig-04-equation"]["sources"]}
    assert set(prices["source_url"]) <= credited, "Figure 4.1 credits no chip-price source"


@pytest.mark.book
def test_built_facets_split_their_data_by_panel() -> None:
    """A faceted figure whose inner view carries a dataset of its own draws every row in every panel (Fig 2.7
    once showed two identical panels): the facet's data must reach the panels."""
    _built()
    bad = []
    for path in sorted((SITE / "figures").glob("*.vl.json")):
        spec = json.loads(path.read_text(encoding="utf-8"))
        if "facet" in spec and isinstance(spec.get("spec"), dict) and "data" in spec["spec"]:
            bad.append(path.name)
    assert not bad, f"faceted figures whose panels ignore the facet's data: {bad}"
