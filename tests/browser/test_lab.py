"""Charts draw in JupyterLab, offline: a chapter opened as a notebook, run in full, every figure drawn.

Starts JupyterLab on 127.0.0.1 (no token, temporary config, data, runtime and settings folders, the
settings ``make lab`` writes), opens chapter 3 (MyST Markdown, through jupytext) in headless Chromium,
runs all cells with the kernel the chapter names, then checks that every figure the chapter publishes
drew SVG marks, that no request left 127.0.0.1, and that the run wrote nothing into the repository.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from conftest import ROOT
from tokenlib.book import lab

pytestmark = pytest.mark.browser

CHAPTER = "chapters/03_city_rivalry.md"
RUN_TIMEOUT_MS = 240_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _repo_state() -> str:
    """What git sees, plus whether an execution left figure bundles in the repository (figures/)."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    return status + f"figures/ exists: {(ROOT / 'figures').exists()}"


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("lab")
    settings = tmp / "app-settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps(lab.overrides()))
    env = {k: v for k, v in os.environ.items() if k != "TOKENBOOK_RENDER"}  # as `make lab`: not the book's HTML mode
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "user-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                     ("JUPYTER_DATA_DIR", "data"), ("IPYTHONDIR", "ipython")):
        (tmp / sub).mkdir()
        env[var] = str(tmp / sub)
    port = _free_port()
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={ROOT}", f"--LabServerApp.app_settings_dir={settings}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
         "--ServerApp.open_browser=False", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("JupyterLab exited:\n" + (tmp / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start:\n" + (tmp / "lab.log").read_text()[-3000:])
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _figure_count() -> int:
    return len(re.findall(r"\bpublish\(", (ROOT / CHAPTER).read_text(encoding="utf-8")))


def test_chapter_charts_draw_in_jupyterlab_offline(browser: Any, jupyterlab: str) -> None:
    before = _repo_state()
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
    outside: list[str] = []
    errors: list[str] = []

    def on_request(route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", on_request)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{jupyterlab}/lab/tree/{CHAPTER}", wait_until="load")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                           "window.jupyterapp.shell.currentWidget.content && "
                           "window.jupyterapp.shell.currentWidget.content.widgets", timeout=120_000)
    kind = page.evaluate("() => window.jupyterapp.shell.currentWidget.constructor.name + ' ' + "
                         "(window.jupyterapp.shell.currentWidget.content.widgets || []).length")
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext?.session?.kernel", timeout=120_000)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.ready")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    expected = _figure_count()
    assert expected >= 3, f"{CHAPTER} publishes {expected} figures"
    # every code cell ran and the kernel is idle again ...
    page.wait_for_function(
        """() => { const nb = window.jupyterapp.shell.currentWidget;
                   const code = nb.content.widgets.filter(w => w.model.type === 'code');
                   return code.length > 0 && code.every(w => w.model.executionCount !== null)
                          && nb.sessionContext.session.kernel.status === 'idle'; }""",
        timeout=RUN_TIMEOUT_MS,
    )
    errored = page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
                 .filter(w => w.model.type === 'code')
                 .filter(w => w.model.outputs.toJSON().some(o => o.output_type === 'error')).length""")
    assert errored == 0, f"{errored} cells raised an error in JupyterLab"
    # ... then the charts have a moment to draw
    try:
        page.wait_for_function(
            "n => document.querySelectorAll('.tc-lab-figure .tc-chart[data-drawn]').length >= n",
            arg=expected, timeout=20_000,
        )
    except Exception:  # noqa: BLE001 - the assertions below say what is missing
        pass
    charts = page.eval_on_selector_all(
        ".tc-lab-figure .tc-chart",
        """els => els.map(el => ({id: el.id, drawn: el.getAttribute('data-drawn'),
                                  marks: el.querySelectorAll('svg g.role-mark > *').length}))""",
    )
    assert len(charts) == expected, f"{kind}: {len(charts)} figures shown, {expected} published: {charts}"
    not_drawn = [c for c in charts if c["drawn"] != "true" or c["marks"] == 0]
    assert not not_drawn, f"figures that drew no marks in JupyterLab: {not_drawn}"
    # what a researcher sees, kept with the book's page screenshots (_build/ is ignored by git)
    page.locator(".tc-lab-figure").first.scroll_into_view_if_needed()
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"lab-{Path(CHAPTER).stem}.png"))
    assert not outside, f"requests to other hosts: {sorted(set(outside))[:10]}"
    assert not errors, f"uncaught errors in JupyterLab: {errors[:5]}"
    context.close()
    assert _repo_state() == before, "running the chapter in JupyterLab changed files in the repository"
