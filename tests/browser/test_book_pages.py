"""Open every page of the built book in headless Chromium, as a reader would, and check it works.

For each page, at desktop (1280 px) and phone (390 and 360 px) widths: no uncaught error, no console
error, no failed request, no request to any host but the book's own (127.0.0.1), every chart drawn with
marks, every "Cite this figure" permalink resolving to an element on the page. Screenshots go to
``_build/screenshots/``. The weight and speed budget is measured and printed as a table.

The reader's page (``layout.js`` measures it in the browser): chart text renders at 11 CSS px or more
(font size times the chart's on-screen scale), no chart is scaled below the size it was drawn at or
wider than its box, the page is no wider than the viewport, no table cell's content runs into another
cell, no code cell is open and no test marker is in the page, no table is printed as text, chart
controls are touch targets, and the page stays light whatever the reader's colour scheme.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from conftest import BUDGET_TABLE, ROOT, SITE
from tokenlib.book import toc as book

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGE_BUDGET_BYTES = 500_000
DRAW_BUDGET_S = 1.0
VIEWPORTS = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
    "narrow": {"width": 360, "height": 780},
}
#: Smallest chart text a reader can read without zooming (CSS px, as rendered)
MIN_CHART_TEXT_PX = 11.0
#: Narrowest a chart's views may be drawn, as a share of their designed width (tokenbook.js stops at 0.12: a
#: chart there did not fit by narrowing, which at these widths means its box did not follow its views)
MIN_VIEW_FACTOR = 0.2
#: Smallest touch target for a chart control (CSS px; WCAG 2.2 target size, minimum)
MIN_TARGET_PX = 24.0
LAYOUT_JS = (Path(__file__).parent / "layout.js").read_text(encoding="utf-8")
SKIP_DIRS = {"_static", "_sources", "figures", "_images", "data"}


def book_pages() -> list[str]:
    """Every HTML page of the site (the standalone figure downloads are checked elsewhere)."""
    if not SITE.exists():
        return []
    pages = []
    for path in sorted(SITE.rglob("*.html")):
        rel = path.relative_to(SITE)
        if rel.parts[0] in SKIP_DIRS or rel.name == "index.html":
            continue
        pages.append(rel.as_posix())
    return pages


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)
    bytes: int = 0
    requests: int = 0
    draw_s: float = 0.0
    charts: int = 0
    layout: dict[str, Any] = field(default_factory=dict)


def visit(browser: Any, base: str, page_path: str, viewport: str) -> PageReport:
    report = PageReport()
    context = browser.new_context(viewport=VIEWPORTS[viewport], service_workers="block")
    page = context.new_page()

    def on_request(route: Any) -> None:
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            report.errors.append(f"request to another host: {route.request.url}")
            route.abort()

    page.route("**/*", on_request)
    page.on("pageerror", lambda exc: report.errors.append(f"uncaught error: {exc}"))
    page.on(
        "console",
        lambda msg: report.errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
    )
    page.on("requestfailed", lambda req: report.errors.append(f"failed request: {req.url} ({req.failure})"))

    def on_response(resp: Any) -> None:
        report.requests += 1
        if resp.status >= 400:
            report.errors.append(f"HTTP {resp.status}: {resp.url}")

    def on_finished(req: Any) -> None:
        sizes = req.sizes()  # bytes on the wire: compressed body plus headers
        report.bytes += sizes["responseBodySize"] + sizes["responseHeadersSize"]

    page.on("response", on_response)
    page.on("requestfinished", on_finished)
    page.goto(f"{base}/{page_path}", wait_until="load")
    loaded = time.perf_counter()
    report.charts = page.locator(".tc-chart").count()
    if report.charts:
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.tc-chart')].every(e => e.dataset.drawn === 'true')",
                timeout=10_000,
            )
        except Exception:
            undrawn = page.eval_on_selector_all(
                ".tc-chart", "els => els.filter(e => e.dataset.drawn !== 'true').map(e => e.id)"
            )
            report.errors.append(f"charts not drawn: {undrawn}")
        report.draw_s = time.perf_counter() - loaded
        empty = page.eval_on_selector_all(
            ".tc-chart",
            """els => els.filter(e => {
                 const svg = e.querySelector('svg, canvas');
                 if (!svg) return true;
                 if (svg.tagName === 'CANVAS') return false;
                 return svg.querySelectorAll('path, rect, circle, line, text, symbol').length < 3;
               }).map(e => e.id)""",
        )
        if empty:
            report.errors.append(f"charts without marks: {empty}")
    # every cite block's permalink must point at an element of this page
    dangling = page.eval_on_selector_all(
        "a.tc-permalink, a.tc-number",
        "els => els.filter(a => !document.getElementById(a.getAttribute('href').slice(1))).map(a => a.href)",
    )
    if dangling:
        report.errors.append(f"permalinks without a target: {dangling}")
    page.wait_for_load_state("networkidle")
    report.layout = page.evaluate(LAYOUT_JS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = f"{page_path.replace('/', '__').removesuffix('.html')}-{VIEWPORTS[viewport]['width']}"
    page.screenshot(path=str(SCREENSHOTS / f"{stem}.png"), full_page=False)
    if viewport != "desktop":  # the whole page as a phone reader scrolls it
        page.screenshot(path=str(SCREENSHOTS / f"{stem}-full.png"), full_page=True)
    context.close()
    return report


_reports: dict[str, PageReport] = {}


def _report(browser: Any, server: str, page_path: str, viewport: str) -> PageReport:
    key = f"{page_path} ({viewport})"
    if key not in _reports:
        _reports[key] = visit(browser, server, page_path, viewport)
    return _reports[key]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("page_path", book_pages())
def test_page_works_offline(browser: Any, server: str, page_path: str, viewport: str) -> None:
    report = _report(browser, server, page_path, viewport)
    assert not report.errors, f"{page_path} at {viewport} width:\n  " + "\n  ".join(report.errors)


def layout_problems(layout: dict[str, Any]) -> list[str]:
    """What a reader of this page at this width would trip over, from ``layout.js``'s measurements."""
    problems = []
    vw = layout["vw"]
    if layout["scrollWidth"] > vw:
        problems.append(f"page scrolls sideways: {layout['scrollWidth']} px wide in a {vw} px viewport")
    for c in layout["charts"]:
        if c["scale"] < 0.99:
            problems.append(f"{c['id']}: scaled to {c['scale']:.0%} of the {c['drawnW']:.0f} px it was drawn at")
        if c["minFont"] < MIN_CHART_TEXT_PX:
            problems.append(f"{c['id']}: text renders at {c['minFont']:.1f} px (< {MIN_CHART_TEXT_PX}): {c['minText']!r}")
        if c["viewFactor"] < MIN_VIEW_FACTOR:
            problems.append(f"{c['id']}: its views were narrowed to {c['viewFactor']:.0%} of their design "
                            "(the plot is crushed: the chart's box did not follow its views)")
        if c["right"] > c["boxRight"] + 1 or c["right"] > vw:
            problems.append(f"{c['id']}: {c['drawnW']:.0f} px wide, wider than its {c['boxW']:.0f} px box")
    problems += layout["cellSpills"]
    if layout["visibleCode"]:
        problems.append(f"{layout['visibleCode']} code cells shown open (code is one click away, not in the reader's way)")
    if layout["markers"]:
        problems.append("a test marker (NBVAL_...) is in the page")
    problems += [f"a table printed as text: {first!r}" for first in layout["printedTables"]]
    for ctl in layout["controls"]:
        if ctl["w"] < MIN_TARGET_PX or ctl["h"] < MIN_TARGET_PX or ctl["right"] > vw:
            problems.append(f"control {ctl['name']}: {ctl['w']:.0f} x {ctl['h']:.0f} px target, right edge {ctl['right']:.0f}")
    return problems


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("page_path", book_pages())
def test_page_reads_at_every_width(browser: Any, server: str, page_path: str, viewport: str) -> None:
    """Legible charts, no sideways scroll, tables that lay out, code and test markers out of the way."""
    problems = layout_problems(_report(browser, server, page_path, viewport).layout)
    assert not problems, f"{page_path} at {VIEWPORTS[viewport]['width']} px:\n  " + "\n  ".join(problems)


def test_no_half_dark_mode(browser: Any, server: str) -> None:
    """A reader whose system (or an earlier visit) asks for dark mode gets one coherent, light page."""
    page_path = "chapters/04_crown.html"
    context = browser.new_context(viewport=VIEWPORTS["phone"], color_scheme="dark", service_workers="block")
    context.add_init_script("try { localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark'); } catch (e) {}")
    page = context.new_page()
    page.goto(f"{server}/{page_path}", wait_until="load")
    page.wait_for_function("() => [...document.querySelectorAll('.tc-chart')].every(e => e.dataset.drawn === 'true')",
                           timeout=10_000)
    layout = page.evaluate(LAYOUT_JS)
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    context.close()
    assert layout["themeSwitches"] == 0, "a theme switch is offered but the charts do not follow it"
    assert layout["theme"] == "light", f"page in {layout['theme']!r} mode; the charts are drawn for a light page"
    assert background in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), f"page background {background}"


def test_every_toc_page_was_built(site: Path) -> None:
    missing = [d for d in book.toc_docnames() if not (site / f"{d}.html").exists()]
    assert not missing, f"pages in _toc.yml with no HTML: {missing}"
    assert book_pages(), "no pages found"


def test_budget_table(browser: Any, server: str) -> None:
    """Weight and draw-time budget per page: printed as a table, failing when a page exceeds it."""
    rows = []
    over = []
    for page_path in book_pages():
        report = _report(browser, server, page_path, "phone")
        rows.append((page_path, report.bytes, report.requests, report.charts, report.draw_s))
        if report.bytes > PAGE_BUDGET_BYTES:
            over.append(f"{page_path}: {report.bytes:,} bytes > {PAGE_BUDGET_BYTES:,}")
        if report.charts and report.draw_s > DRAW_BUDGET_S:
            over.append(f"{page_path}: charts drawn {report.draw_s:.2f} s after load > {DRAW_BUDGET_S} s")
    lines = [
        f"page budget (first load at 390 px; budget {PAGE_BUDGET_BYTES:,} bytes, charts drawn <= {DRAW_BUDGET_S} s)",
        f"{'page':45} {'bytes':>12} {'requests':>9} {'charts':>7} {'drawn after load (s)':>21}",
    ]
    lines += [f"{n:45} {size:>12,} {reqs:>9} {c:>7} {draw:>21.2f}" for n, size, reqs, c, draw in rows]
    BUDGET_TABLE[:] = lines  # printed at the end of the run by conftest.pytest_terminal_summary
    print("\n" + "\n".join(lines))
    assert not over, "over budget:\n  " + "\n  ".join(over)
