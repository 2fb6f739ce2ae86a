"""Shared fixtures: the book root, the built site served on 127.0.0.1, a headless Chromium."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import http.server
import os
import shutil
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("TOKENBOOK_SITE", ROOT / "_build" / "html"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def copy_data(tmp_path: Path) -> Path:
    """A writable copy of the book's data/ (schema, tables, sources) under ``tmp_path``, for tests that edit one."""
    root = tmp_path / "data"
    shutil.copytree(ROOT / "data", root)
    return root


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    return copy_data(tmp_path)


@pytest.fixture()
def tmp_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Figures written to ``tmp_path`` and numbered afresh (tests that publish a figure)."""
    from tokenlib.book import figures

    monkeypatch.setattr(figures, "figures_dir", lambda: tmp_path)
    monkeypatch.setattr(figures, "_numbers", {})
    return tmp_path


def run_cli(*args: str, in_process: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m tokenlib ARGS``, its exit status and output: run in this process by default (the data load
    once per test session, where a child process spends a second and a half importing them), or with
    ``in_process=False`` as a real child process (tests/test_cli.py keeps one such run; the wheel test runs the
    installed console script)."""
    if not in_process:
        return subprocess.run([sys.executable, "-m", "tokenlib", *args], cwd=ROOT, capture_output=True, text=True)
    from tokenlib import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse's own exits
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["tokenlib", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "intro.html").exists():
        pytest.fail(f"the book is not built at {SITE}: run `make book` first (make test does)")
    return SITE


COMPRESSIBLE = (".html", ".js", ".css", ".json", ".svg", ".csv", ".txt", ".xml", ".map")


class _BookHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, gzip-compressed for text types when the browser asks, as GitHub Pages does.

    The page-weight budget counts bytes on the wire, so the test server compresses like the real host.
    """

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        if (
            path.is_file()
            and path.suffix in COMPRESSIBLE
            and "gzip" in self.headers.get("Accept-Encoding", "")
        ):
            body = gzip.compress(path.read_bytes(), compresslevel=6)
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(str(path)))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)
        return super().send_head()


@pytest.fixture(scope="session")
def server(site: Path) -> Iterator[str]:
    """Serve the built book on 127.0.0.1 (an ephemeral port) for the session."""
    handler = functools.partial(_BookHandler, directory=str(site))
    socketserver.TCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as httpd:
        port = httpd.server_address[1]
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{port}"
        httpd.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (make test does)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )
        yield b
        b.close()



PHONE_VIEWPORT = {"width": 390, "height": 844}


def open_page(browser: Any, url: str, *, viewport: dict[str, int] = PHONE_VIEWPORT, drawn: str | None = None,
              **context_options: Any) -> tuple[Any, Any, list[str]]:
    """Open ``url`` in a fresh browser context (service workers blocked); return (context, page, page errors).

    ``drawn`` names a chart selector to wait for until its ``data-drawn`` is ``"true"``; ``context_options``
    go to ``browser.new_context`` (e.g. ``java_script_enabled=False``). The caller closes the context.
    """
    context = browser.new_context(viewport=viewport, service_workers="block", **context_options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="load")
    if drawn is not None:
        page.wait_for_function(f"() => document.querySelector('{drawn}')?.dataset.drawn === 'true'", timeout=10_000)
    return context, page, errors

BOOK_FIXTURES = {"site", "server", "browser"}
#: nbval compares the outputs of ``# NBVAL_CHECK_OUTPUT`` cells; numbers in them may differ by this much
#: (relative) between the book's execution and nbval's, e.g. in the 16th digit on another CPU's numpy
#: SIMD path. Everything else in the output must be identical (tokenlib.book.findings.agree, unit "text").
NBVAL_REL_TOL = 1e-9
#: Outputs that matched their reference only within NBVAL_REL_TOL (printed in the run's summary).
NBVAL_TOLERATED: list[str] = []


def _tolerate_float_noise(test: list, ref: list) -> list:  # type: ignore[type-arg]
    """``test`` with each text output that agrees with its reference within NBVAL_REL_TOL made equal to it."""
    import copy

    from tokenlib.book import findings

    assert findings.DEFAULT_REL_TOL == NBVAL_REL_TOL
    out = copy.deepcopy(test)
    for t, r in zip(out, ref):
        if t.get("output_type") != r.get("output_type"):
            continue
        if "text" in t and isinstance(t["text"], str) and isinstance(r.get("text"), str):
            if t["text"] != r["text"] and findings.agree(r["text"], t["text"], findings.TEXT):
                NBVAL_TOLERATED.append(_first_difference(r["text"], t["text"]))
                t["text"] = r["text"]
        for key, value in (t.get("data") or {}).items():
            ref_value = (r.get("data") or {}).get(key)
            if isinstance(value, str) and isinstance(ref_value, str) and value != ref_value:
                if findings.agree(ref_value, value, findings.TEXT):
                    NBVAL_TOLERATED.append(f"{key}: " + _first_difference(ref_value, value))
                    t["data"][key] = ref_value
    return out


def _first_difference(a: str, b: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"{a[max(0, i - 30):i + 12]!r} vs {b[max(0, i - 30):i + 12]!r}"


def pytest_configure(config: pytest.Config) -> None:
    """Make nbval compare numbers at NBVAL_REL_TOL instead of to their last digit."""
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:
        return
    if getattr(IPyNbCell.compare_outputs, "_tokenbook", False):
        return
    original = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):  # type: ignore[no-untyped-def]
        return original(self, _tolerate_float_noise(test, ref), ref, skip_compare)

    compare_outputs._tokenbook = True  # type: ignore[attr-defined]
    IPyNbCell.compare_outputs = compare_outputs


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what needs the built book (`make test-fast` leaves it out); remember which notebooks nbval collected.

    Needing the book: nbval's notebooks, everything under tests/browser/, tests that take the site, server or
    browser fixture, and tests marked ``book`` by hand (those that read ``SITE`` directly).
    """
    for item in items:
        path = Path(str(item.fspath))
        if (path.suffix == ".ipynb" or "browser" in path.parts
                or BOOK_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.book)
    config.stash[NBVAL_COLLECTED] = {
        Path(str(item.fspath)).resolve() for item in items if str(item.fspath).endswith(".ipynb")
    }


NBVAL_COLLECTED = pytest.StashKey[set[Path]]()


#: The page weight/speed table the browser test fills; printed in the run's summary.
BUDGET_TABLE: list[str] = []


def pytest_terminal_summary(terminalreporter: object, exitstatus: int, config: pytest.Config) -> None:
    if NBVAL_TOLERATED:
        terminalreporter.write_sep("-", f"nbval: {len(NBVAL_TOLERATED)} outputs equal only within {NBVAL_REL_TOL:g}")  # type: ignore[attr-defined]
        for line in NBVAL_TOLERATED:
            terminalreporter.write_line(line)  # type: ignore[attr-defined]
    if BUDGET_TABLE:
        terminalreporter.write_sep("-", "page weight and speed budget")  # type: ignore[attr-defined]
        for line in BUDGET_TABLE:
            terminalreporter.write_line(line)  # type: ignore[attr-defined]
