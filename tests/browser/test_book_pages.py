"""Open every page of the built book in headless Chromium, as a reader would, and check it works.

For each page, at desktop (1280 px) and phone (390 px) widths: no uncaught error, no console error,
no failed request, no request to any host but the book's own (127.0.0.1), every chart drawn with
marks, every "Cite this figure" permalink resolving to an element on the page. Screenshots go to
``_build/screenshots/``. The weight and speed budget is measured and printed as a table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from conftest import BUDGET_TABLE, ROOT, SITE
from tokenlib import book

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGE_BUDGET_BYTES = 1_500_000
DRAW_BUDGET_S = 1.0
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{page_path.replace('/', '__').removesuffix('.html')}-{viewport}.png"
    page.screenshot(path=str(shot), full_page=False)
    context.close()
    return report


_reports: dict[str, PageReport] = {}


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("page_path", book_pages())
def test_page_works_offline(browser: Any, server: str, page_path: str, viewport: str) -> None:
    report = visit(browser, server, page_path, viewport)
    _reports[f"{page_path} ({viewport})"] = report
    assert not report.errors, f"{page_path} at {viewport} width:\n  " + "\n  ".join(report.errors)


def test_every_toc_page_was_built(site: Path) -> None:
    missing = [d for d in book.toc_docnames() if not (site / f"{d}.html").exists()]
    assert not missing, f"pages in _toc.yml with no HTML: {missing}"
    assert book_pages(), "no pages found"


def test_budget_table(browser: Any, server: str) -> None:
    """Weight and draw-time budget per page: printed as a table, failing when a page exceeds it."""
    rows = []
    over = []
    for page_path in book_pages():
        key = f"{page_path} (desktop)"
        report = _reports.get(key) or visit(browser, server, page_path, "desktop")
        rows.append((page_path, report.bytes, report.requests, report.charts, report.draw_s))
        if report.bytes > PAGE_BUDGET_BYTES:
            over.append(f"{page_path}: {report.bytes:,} bytes > {PAGE_BUDGET_BYTES:,}")
        if report.charts and report.draw_s > DRAW_BUDGET_S:
            over.append(f"{page_path}: charts drawn {report.draw_s:.2f} s after load > {DRAW_BUDGET_S} s")
    lines = [
        f"page budget (first load, desktop; budget {PAGE_BUDGET_BYTES:,} bytes, charts drawn <= {DRAW_BUDGET_S} s)",
        f"{'page':45} {'bytes':>12} {'requests':>9} {'charts':>7} {'drawn after load (s)':>21}",
    ]
    lines += [f"{n:45} {size:>12,} {reqs:>9} {c:>7} {draw:>21.2f}" for n, size, reqs, c, draw in rows]
    BUDGET_TABLE[:] = lines  # printed at the end of the run by conftest.pytest_terminal_summary
    print("\n" + "\n".join(lines))
    assert not over, "over budget:\n  " + "\n  ".join(over)
