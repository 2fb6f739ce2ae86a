"""A data pull request must not be able to put script on the site.

Every text column of every table (and the schema's descriptions and units) gets a corpus of payloads;
the HTML the book renders from data is written to files -- the generic escaped table the chapters use
(``safehtml.table``), the claims table, the data appendix (its HTML tables and its Markdown headings,
rendered as MyST does, raw HTML allowed), each table as a figure block (spec JSON, sources, data table,
citation) and as the standalone figure download, and the figure index -- and opened in headless
Chromium. No payload may run, no element may carry an event-handler attribute or a ``javascript:``
link, and the figure's embedded JSON must parse back to the very strings that went in.

This test needs no built book; it renders the HTML-producing functions themselves.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import altair as alt
import markdown_it
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from tokenlib import data, safehtml
from tokenlib.book import claims as claims_table
from tokenlib.book import datadoc
from tokenlib.book import figures
from tokenlib.book import sphinxext

pytestmark = pytest.mark.browser

PAYLOADS = [
    '<script>window.__pwn("script")</script>',
    '<img src=x onerror=window.__pwn("img")>',
    '" autofocus onfocus=window.__pwn("dq") x="',
    "' autofocus onfocus=window.__pwn('sq') x='",
    '</script><script>window.__pwn("endscript")</script>',
    '<!--<script>window.__pwn("comment")</script>-->',
    'javascript:window.__pwn("jsurl")',
    '<svg onload=window.__pwn("svg")></svg>',
    '<a href="javascript:window.__pwn(\'link\')" id=pwnlink>x</a>',
    '[md](javascript:window.__pwn("md")) <details open ontoggle=window.__pwn("toggle")>',
]
# URL cells must stay URLs (no spaces, http/https) or the loader refuses them (tested below)
URL_SUFFIXES = [
    '?q="onmouseover="window.__pwn(1)"',
    "#</script><script>window.__pwn(2)</script>",
    "?'><img/src=x/onerror=window.__pwn(3)>",
    "#<!--<script>window.__pwn(4)</script>",
]
REFERENCED = {("chips", "id"): [("deployments", "chip_id"), ("sources/chips", "item_id"),
                               ("scaleup_domains", "chip_id"), ("systems", "chip_id")],
              ("models", "id"): [("deployments", "model_id"), ("sources/models", "item_id")],
              ("export_controls", "id"): [("control_thresholds", "rule_id")]}


def _poison(value: str, i: int) -> str:
    return f"{PAYLOADS[i % len(PAYLOADS)]} {value}" if value else PAYLOADS[i % len(PAYLOADS)]


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n")


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of data/ with payloads in every text cell, URL cell and schema text."""
    root = tmp_path_factory.mktemp("poisoned") / "data"
    shutil.copytree(ROOT / "data", root)
    schema = yaml.safe_load((root / "schema.yaml").read_text(encoding="utf-8"))
    renames: dict[tuple[str, str], dict[str, str]] = {}
    frames = {n: pd.read_csv(root / f"{n}.csv", dtype=str, keep_default_na=False) for n in data.table_names()}
    frames.update({f"sources/{n}": pd.read_csv(root / "sources" / f"{n}.csv", dtype=str, keep_default_na=False)
                   for n in ("chips", "models")})
    for name in data.table_names():
        spec = data.table_spec(name)
        df = frames[name]
        for col in spec.columns:
            if col.type == "str" and col.references is None:
                new = [_poison(v, i) for i, v in enumerate(df[col.name])]
                if (name, col.name) in REFERENCED:
                    renames[(name, col.name)] = dict(zip(df[col.name], new, strict=True))
                df[col.name] = new
            elif col.type == "url":
                df[col.name] = [v + URL_SUFFIXES[i % len(URL_SUFFIXES)] if v else v for i, v in enumerate(df[col.name])]
        named = [c.name for c in spec.columns if c.text_in_quote]
        if named:  # a sourced label's quote writes its names (loader: text_in_quote), so it writes the poisoned ones
            df["quote"] = [" … ".join([q, *(df.at[i, c] for c in named if df.at[i, c])]) for i, q in df["quote"].items()]
        raw = schema["tables"][name]
        raw["description"] = f"{PAYLOADS[0]} {raw.get('description', '')} {PAYLOADS[3]}"
        for i, (cname, cspec) in enumerate(raw["columns"].items()):
            cspec["description"] = f"{PAYLOADS[i % len(PAYLOADS)]} {cspec.get('description', '')}"
            if cspec.get("unit"):
                cspec["unit"] = f"{cspec['unit']} {PAYLOADS[(i + 1) % len(PAYLOADS)]}"
    for (table, _), mapping in renames.items():
        for other, column in REFERENCED[(table, "id")]:
            frames[other][column] = frames[other][column].map(lambda v, m=mapping: m.get(v, v))
    for s in frames["sources/chips"], frames["sources/models"]:
        s["quote"] = [_poison(v, i) for i, v in enumerate(s["quote"])]
        s["source_url"] = [v + URL_SUFFIXES[i % len(URL_SUFFIXES)] for i, v in enumerate(s["source_url"])]
    for name, df in frames.items():
        _write_csv(df, root / f"{name}.csv")
    # credits under figures come from providers.csv: every (poisoned) URL gets a poisoned provider and via
    urls = sorted(data.used_source_urls(root))
    _write_csv(pd.DataFrame({"source_url": urls, "provider": [_poison("Provider", i) for i in range(len(urls))],
                             "via": [_poison("Repost", i + 1) for i in range(len(urls))],
                             "primary": ["no"] * len(urls)}), root / "providers.csv")
    (root / "schema.yaml").write_text(yaml.safe_dump(schema, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


def _page(fragment: str, title: str = "payload test") -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{safehtml.text(title)}</title></head>'
            f"<body>{fragment}</body></html>")


def _chart(df: pd.DataFrame, name: str, root: Path) -> tuple[figures.Figure, alt.Chart]:
    text_cols = [c for c in df.columns if df[c].dtype == object or str(df[c].dtype).startswith("str")][:6]
    shown = df[text_cols].head(12).astype(str)
    chart = alt.Chart(shown).mark_text().encode(
        x=alt.X(f"{text_cols[0]}:N"), text=f"{text_cols[-1]}:N", tooltip=[f"{c}:N" for c in text_cols])
    fig = figures.publish(chart, name=f"fig-01-payload-{name.replace('_', '-')}", title=f"{PAYLOADS[4]} {name}",
                          caption=PAYLOADS[1], sources=figures.sources_from(df, root=root), data=shown,
                          description=PAYLOADS[2], write=False)
    return fig, chart.properties(title=fig.title)


@pytest.fixture(scope="module")
def pages(poisoned: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pages")
    written: dict[str, Path] = {}

    def write(key: str, html_text: str) -> None:
        path = out / f"{key}.html"
        path.write_text(html_text, encoding="utf-8")
        written[key] = path

    md = markdown_it.MarkdownIt("commonmark", {"html": True})
    figs = []
    long = []
    for name in data.table_names(poisoned):
        df = data.load(name, poisoned)
        write(f"table-{name}", _page(safehtml.table(df, classes="tc-table", na_rep="–")))
        write(f"columns-{name}", _page(datadoc.column_table(name, poisoned)))
        write(f"heading-{name}", _page(md.render(datadoc.table_heading(name, poisoned))))
        if not df["source_url"].notna().any():  # a table without one sourced row is never a figure's data
            continue
        fig, _ = _chart(df, name, poisoned)
        figs.append(fig)
        write(f"figure-{name}", _page(fig.html(link_prefix="")))
        long.append(fig.data.melt(var_name="column").assign(table=name))
    # one standalone download (Vega inlined, heavy to load) carrying the text of every table
    every = pd.concat(long, ignore_index=True)
    chart = alt.Chart(every).mark_text().encode(x="table:N", y="column:N", text="value:N", tooltip=["value:N"])
    standalone = figures.publish(chart, name="fig-01-payload-standalone", title=PAYLOADS[4], caption=PAYLOADS[1],
                                 sources=[s for f in figs for s in f.sources][:12], data=every,
                                 description=PAYLOADS[2], units=PAYLOADS[3], write=False)
    write("standalone", figures.standalone_html(standalone, "0.0.0", "2026-12-01"))
    write("overview", _page(datadoc.table_overview(root=poisoned)))
    write("claims", _page(claims_table.claims_html(data.load("claims", poisoned))))
    entries = [{"name": f.name, "page": f.page, "number": f.number, "title": f.title,
                "files": {"svg": f"{f.name}.svg"}} for f in figs]
    write("figure-index", _page(sphinxext._index_html(entries, "")))
    return written


def _visit(browser: Any, path: Path) -> dict[str, Any]:
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script("window.__hits = []; window.__pwn = (x) => window.__hits.push(String(x));")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(150)
    # opening, hovering and focusing everything must run nothing either
    page.evaluate("""() => {
        document.querySelectorAll('details').forEach(d => { d.open = true; });
        for (const el of document.querySelectorAll('body *'))
            for (const t of ['mouseover', 'mouseenter', 'focus', 'toggle', 'load', 'error'])
                el.dispatchEvent(new Event(t));
    }""")
    page.wait_for_timeout(50)
    result = page.evaluate("""() => {
        const handlers = [];
        for (const el of document.querySelectorAll('*'))
            for (const at of el.attributes) if (/^on/i.test(at.name)) handlers.push(el.tagName + '[' + at.name + ']');
        // the page's own favicon is an inline SVG data URI (no request to any host); every other data: link is bad
        const badLinks = [...document.querySelectorAll('[href]:not(link[rel="icon"]),[src],[action],[formaction]')].map(
            el => el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('action') || el.getAttribute('formaction') || ''
        ).filter(u => /^\\s*(javascript|data|vbscript):/i.test(u));
        const scripts = [...document.querySelectorAll('script')]
            .filter(s => /^\\s*window\\.__pwn/.test(s.textContent)).length;  // a script element made of a payload
        const specs = [...document.querySelectorAll('script[type="application/json"]')].map(s => {
            try { return JSON.parse(s.textContent); } catch (e) { return {broken: String(e)}; } });
        return {hits: window.__hits, handlers, badLinks, scripts, specs};
    }""")
    context.close()
    result["dialogs"] = dialogs
    return result


def test_poisoned_data_still_loads(poisoned: Path) -> None:
    """The payloads are valid data (the loader is not the defence against markup in text)."""
    for name in data.table_names(poisoned):
        assert len(data.load(name, poisoned)) > 0


def test_no_payload_runs_in_any_rendered_page(browser: Any, pages: dict[str, Path]) -> None:
    failures = {}
    for key, path in sorted(pages.items()):
        r = _visit(browser, path)
        bad = {k: r[k] for k in ("hits", "handlers", "badLinks", "dialogs") if r[k]}
        if r["scripts"]:
            bad["injected scripts"] = r["scripts"]
        broken = [sp["broken"] for sp in r["specs"] if "broken" in sp]
        if broken:
            bad["embedded JSON cut short"] = broken
        if bad:
            failures[key] = bad
    assert not failures, f"payloads ran or survived as markup: {failures}"


def test_payload_text_reaches_the_page_as_text(browser: Any, pages: dict[str, Path]) -> None:
    """Escaping must keep the text, not drop it: the reader sees the payload characters verbatim."""
    context = browser.new_context()
    page = context.new_page()
    for key in ("table-claims", "claims", "columns-chips", "figure-chips", "heading-prices"):
        page.goto(pages[key].as_uri())
        shown = page.inner_text("body")
        assert any(p in shown for p in PAYLOADS), key
    context.close()


def test_figure_spec_json_round_trips(browser: Any, pages: dict[str, Path]) -> None:
    r = _visit(browser, pages["figure-claims"])
    block = r["specs"][0]  # the chart compiled to Vega, its two layouts sharing one copy of the data
    values = [v for rows in block["data"].values() for row in rows for v in row.values()]
    assert any(PAYLOADS[4] in str(v) for v in values), "the payload text did not survive the round trip"


def test_loader_refuses_script_urls(tmp_path: Path) -> None:
    src = ROOT / "data" / "fx.csv"
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    for bad in ('javascript:window.__pwn(1)', 'data:text/html,<script>1</script>', ' https://x.org/'):
        df.loc[0, "source_url"] = bad
        _write_csv(df, tmp_path / "fx.csv")
        with pytest.raises(data.DataValidationError, match="source_url"):
            data.validate_file("fx", tmp_path / "fx.csv")


def test_safehtml_refuses_unsafe_urls_and_raw_cells() -> None:
    for bad in ("javascript:alert(1)", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "data:text/html,x", "vbscript:x"):
        with pytest.raises(safehtml.UnsafeURLError):
            safehtml.link(bad, "x")
    with pytest.raises(TypeError, match="escape"):
        safehtml.table(pd.DataFrame({"a": ["<b>"]}), escape=False)
