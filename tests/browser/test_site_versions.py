"""Versions that stay, downloads that open on their own (issue 15), in headless Chromium.

Two releases are assembled into one site the way the publish workflow does it (``tokenlib.book site``):
the built book, and a copy of it relabelled as an earlier release. Both resolve at ``v<version>/``, the
root serves the latest, and every page's footer switcher lists both. The standalone figure downloads
open with no failed request (no favicon 404) and draw their chart, also inside their embed snippet.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import SITE, _BookHandler
from tokenlib import __version__
from tokenlib.book import toc as book
from tokenlib.book import figures

pytestmark = pytest.mark.browser

OLD = "0.0.9"
PAGES = ("intro.html", "chapters/01_price_war.html", "appendix/cite.html")


def _relabel(built: Path, target: Path, old: str, new: str) -> None:
    """A copy of the build that says it is release ``new`` (as a build of that release would)."""
    shutil.copytree(built, target)
    for page in target.rglob("*.html"):
        if "_static" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        text = text.replace(f"/v{old}/", f"/v{new}/").replace(f'data-version="{old}"', f'data-version="{new}"')
        page.write_text(text.replace(f"Version {old}", f"Version {new}"), encoding="utf-8")
    (target / book.VERSIONS_FILE).write_text(json.dumps({"latest": new, "versions": [{"version": new, "path": ""}]}))


@pytest.fixture(scope="module")
def versioned_site(tmp_path_factory: pytest.TempPathFactory, site: Path) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("versions")
    _relabel(site, tmp / "old-build", __version__, OLD)
    out = tmp / "site"
    book.add_to_site(tmp / "old-build", out)
    book.add_to_site(site, out)
    handler = functools.partial(_BookHandler, directory=str(out))
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
        httpd.shutdown()


def _open(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught error: {exc}"))
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: errors.append(f"failed request: {r.url}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    return context, page, errors


@pytest.mark.parametrize("prefix", ["", f"v{__version__}/", f"v{OLD}/"])
@pytest.mark.parametrize("path", PAGES)
def test_every_version_resolves_and_its_switcher_lists_them(browser: Any, versioned_site: str, prefix: str,
                                                            path: str) -> None:
    context, page, errors = _open(browser, f"{versioned_site}/{prefix}{path}")
    page.wait_for_selector(".tc-version-switcher a", timeout=10_000)
    links = page.eval_on_selector_all(".tc-version-switcher a", "els => els.map(a => [a.textContent, a.href])")
    labels = [label for label, _ in links]
    assert labels == [f"latest ({__version__})", __version__, OLD], labels
    current = page.eval_on_selector(".tc-version-switcher a[aria-current]", "a => a.textContent")
    assert current == (OLD if prefix == f"v{OLD}/" else __version__)
    for label, href in links:
        assert href.endswith(path), f"{label} does not link to the same page: {href}"
        status = page.evaluate("url => fetch(url).then(r => r.status)", href)
        assert status == 200, f"{label}: {href} -> HTTP {status}"
    page.wait_for_load_state("networkidle")
    context.close()
    assert not errors, "\n".join(errors)


def test_a_cited_permalink_names_the_version_read(browser: Any, versioned_site: str) -> None:
    context, page, errors = _open(browser, f"{versioned_site}/v{OLD}/chapters/01_price_war.html")
    permalinks = page.eval_on_selector_all("a.tc-permalink", "els => els.map(a => a.textContent)")
    context.close()
    assert permalinks and all(f"/v{OLD}/chapters/01_price_war.html#fig-01-" in p for p in permalinks), permalinks
    assert not errors, "\n".join(errors)


def _standalone_names() -> list[str]:
    return [e["name"] for e in figures.registry(SITE / "figures")] if (SITE / "figures").is_dir() else []


@pytest.mark.parametrize("name", _standalone_names()[:3] + [n for n in _standalone_names() if n == "fig-01-long-fall"])
def test_standalone_download_opens_with_no_failed_request(browser: Any, server: str, name: str) -> None:
    context, page, errors = _open(browser, f"{server}/figures/{name}.html")
    page.wait_for_function("() => document.querySelector('.tc-chart')?.dataset.drawn === 'true'", timeout=10_000)
    title = page.title()
    page.wait_for_load_state("networkidle")
    context.close()
    assert title.startswith("Figure ") and "Token Capital" in title, title
    assert not errors, "\n".join(errors)


def test_standalone_download_controls_write_the_link(browser: Any, server: str) -> None:
    # a standalone download carries the URL-state script inline: moving a control writes the setting into the
    # address, with no request for a script that is not next to the file
    context, page, errors = _open(browser, f"{server}/figures/fig-04-whatif.html")
    page.wait_for_function("() => document.querySelector('.tc-chart')?.dataset.drawn === 'true'", timeout=10_000)
    page.eval_on_selector(".tc-chart input[type=range]", """el => { el.value = el.max;
        el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); }""")
    page.wait_for_function("() => /=/.test(location.search)", timeout=10_000)
    page.wait_for_load_state("networkidle")
    context.close()
    assert not errors, "\n".join(errors)


def test_embed_snippet_shows_the_figure(browser: Any, server: str) -> None:
    name = "fig-intro-daily-tokens"
    meta = json.loads((SITE / "figures" / f"{name}.json").read_text(encoding="utf-8"))
    snippet = re.sub(r'src="[^"]+"', f'src="{server}/figures/{name}.html"', meta["embed"])
    host = SITE / "_embed_test.html"
    host.write_text(f"<!DOCTYPE html><html><head><link rel=icon href='data:,'></head><body>{snippet}</body></html>")
    try:
        context, page, errors = _open(browser, f"{server}/_embed_test.html")
        frame = page.frame_locator("iframe")
        frame.locator(".tc-chart[data-drawn='true']").wait_for(timeout=10_000)
        fits = page.evaluate("""() => {
            const f = document.querySelector('iframe');
            const d = f.contentDocument.documentElement;
            return [d.scrollWidth <= f.clientWidth + 1, f.width, f.height]; }""")
        context.close()
    finally:
        host.unlink()
    assert fits[0], f"the figure is wider than its embed size {fits[1]}x{fits[2]}"
    assert not errors, "\n".join(errors)


def test_copy_button_copies_the_citation(browser: Any, server: str) -> None:
    context = browser.new_context(service_workers="block")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page = context.new_page()
    page.goto(f"{server}/appendix/cite.html", wait_until="load")
    bibtex = page.text_content("#token-capital-bibtex")
    page.click("button[data-copy='token-capital-bibtex']")
    page.wait_for_function("() => document.querySelector(\"button[data-copy='token-capital-bibtex']\").textContent === 'Copied'",
                           timeout=5_000)
    copied = page.evaluate("() => navigator.clipboard.readText()")
    context.close()
    assert copied == bibtex and copied.startswith("@book{token_capital,")
