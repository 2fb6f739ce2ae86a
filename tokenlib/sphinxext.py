"""Sphinx extension that makes the book's figures work offline and citable.

* writes one pinned Vega + Vega-Lite + Vega-Embed bundle (from vl-convert) into the site's ``_static``
  and loads it, with ``tokenbook.js`` that draws every figure, once per page: no CDN;
* keeps every page light: no search index on pages other than the search page, no stylesheets or
  scripts of extensions a page does not use, the icon font cut to the icons the site shows, and no
  colour-mode switch (the charts are drawn for a light page; a switch that darkens the page around
  white charts is a half state);
* fills each page's version and build-date placeholders (figure citations);
* copies ``figures/`` (per-figure bundles), ``data/`` (the CSVs and schema) and ``CITATION.cff``
  into the built site so every download link resolves;
* provides the ``figure-index`` directive (a table of every figure, filled after all pages ran).
"""

from __future__ import annotations

import datetime as dt
import html
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import vl_convert as vlc
from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

from tokenlib import __version__, figures

STATIC_DIR = Path(__file__).parent / "static"
#: Theme templates the book overrides (``theme-switcher.html``: empty, the book has one colour mode)
TEMPLATES_DIR = Path(__file__).parent / "templates"
BUNDLE_NAME = "vega-bundle.js"
LIGHT_MODE_JS = (
    "try{localStorage.setItem('mode','light');localStorage.setItem('theme','light')}catch(e){}"
    "document.documentElement.dataset.mode='light';document.documentElement.dataset.theme='light';"
)
#: Assets a page loads only when it uses them: (tag pattern, what in the page needs it; None: never)
_OPTIONAL_ASSETS: tuple[tuple[re.Pattern[str], re.Pattern[str] | None], ...] = (
    # the theme loads Sphinx's search index on every page for an inline search the book does not turn
    # on; the search box submits to search.html, which loads its own (about 35 KB on the wire a page)
    (re.compile(r'\s*<script src="[^"]*(?:_static/searchtools\.js|_static/language_data\.js|searchindex\.js)"></script>'), None),
    (re.compile(r'\s*<link rel="stylesheet" type="text/css" href="[^"]*_static/sphinx-design\.min\.css[^"]*" />'),
     re.compile(r'class="[^"]*\bsd-')),
    (re.compile(r'\s*<script data-sd-tabs-storage-prefix="[^"]*" src="[^"]*_static/design-tabs\.js[^"]*"></script>'),
     re.compile(r'class="[^"]*\bsd-tab')),
    (re.compile(r'\s*<link rel="stylesheet" type="text/css" href="[^"]*_static/togglebutton\.css[^"]*" />'),
     re.compile(r'class="[^"]*\b(?:toggle|dropdown)\b[^"]*admonition|class="[^"]*admonition[^"]*\bdropdown\b|class="toggle\b')),
    (re.compile(r'\s*<script src="[^"]*_static/togglebutton\.js[^"]*"></script>'),
     re.compile(r'class="[^"]*admonition[^"]*\bdropdown\b|class="toggle\b')),
    (re.compile(r'\s*<link rel="stylesheet" type="text/css" href="[^"]*_static/sphinx-thebe\.css[^"]*" />'), None),
)


def strip_unused_assets(page_html: str, pagename: str) -> str:
    """``page_html`` without the extension assets it does not use (see :data:`_OPTIONAL_ASSETS`)."""
    out = page_html
    for tag, needed_by in _OPTIONAL_ASSETS:
        if pagename == "search" and needed_by is None and "search" in tag.pattern:
            continue
        if needed_by is not None and needed_by.search(page_html):
            continue
        out = tag.sub("", out)
    return out


def vega_bundle_js() -> str:
    """The Vega/Vega-Lite/Vega-Embed bundle, wrapped so its top-level names stay out of the page's scope.

    (A bundle of Vega alone would be 100 KB lighter, but vl-convert 1.9's snippet bundler binds
    ``vega`` to its missing default export, null: only ``vegaEmbed.vega`` reaches the runtime.)
    """
    snippet = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
    body = vlc.javascript_bundle(snippet, vl_version=figures.vl_version())
    header = f"/* Vega, Vega-Lite {figures.vl_version()} and Vega-Embed, bundled by vl-convert {getattr(vlc, '__version__', 'unknown')} */\n"
    return header + "(function () {\n" + body + "\n})();\n"


def book_version(srcdir: Path) -> str:
    """``git describe`` of the book when it is a git checkout, else the package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--tags", "--always"],
            cwd=srcdir, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__} ({out})" if out else __version__


def _generated_static(app: Sphinx) -> Path:
    return Path(app.srcdir) / "_build" / ".tokenbook_static"


def _on_config_inited(app: Sphinx, config: Any) -> None:
    gen = _generated_static(app)
    gen.mkdir(parents=True, exist_ok=True)
    bundle = gen / BUNDLE_NAME
    stamp = gen / "bundle.version"
    wanted = f"{getattr(vlc, '__version__', 'unknown')} {figures.vl_version()}"
    if not bundle.exists() or not stamp.exists() or stamp.read_text() != wanted:
        bundle.write_text(vega_bundle_js(), encoding="utf-8")
        stamp.write_text(wanted)
    config.html_static_path = list(config.html_static_path) + [str(STATIC_DIR), str(gen)]
    config.templates_path = [str(TEMPLATES_DIR)] + list(config.templates_path)
    # an earlier visit (or another book on this host) may have stored a dark mode: this book is light
    app.add_js_file(None, body=LIGHT_MODE_JS, priority=10)
    app.add_js_file(BUNDLE_NAME, priority=400)
    app.add_js_file("tokenbook.js", priority=401)
    app.add_css_file("tokenbook.css")


def _page_scripts(scripts: list[Any], has_charts: bool) -> list[Any]:
    """The page's scripts, less what a reader should not download.

    * sphinx-thebe: Jupyter Book 1 always loads it; it declares ``THEBE_JS_URL`` twice (an uncaught
      SyntaxError) and points at unpkg.com. Thebe is off in this book.
    * the Vega bundle and chart loader, on pages without a chart.
    """
    kept = []
    for js in scripts:
        body = str(getattr(js, "attributes", {}).get("body", ""))
        name = str(getattr(js, "filename", js) or "").split("?", 1)[0]
        if "THEBE_JS_URL" in body or name.endswith("sphinx-thebe.js") or "unpkg.com" in name:
            continue
        if not has_charts and name.rsplit("/", 1)[-1] in (BUNDLE_NAME, "tokenbook.js"):
            continue
        kept.append(js)
    return kept


RERUN_NOTE = """<div class="admonition tip tc-rerun"><p class="admonition-title">Re-run this chapter</p>
<p>Download <a href="{prefix}_sources/{page}.md" download>the chapter</a> (a MyST Markdown notebook: JupyterLab with jupytext opens it as a notebook), or clone the book's repository
and run <code>make lab</code>: it sets up the pinned environment and opens the chapters in JupyterLab.
Assumptions sit in the parameters cell at the top; the chapter runs top to bottom in seconds.</p></div>"""


def _with_rerun_note(body: str, pagename: str) -> str:
    """Insert the re-run note after a chapter's title (chapters are the notebooks under chapters/)."""
    if not pagename.startswith("chapters/") or "tc-rerun" in body:
        return body
    note = RERUN_NOTE.format(prefix="../" * pagename.count("/"), page=pagename)
    head, sep, rest = body.partition("</h1>")
    return head + sep + note + rest if sep else note + body


def _on_page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    body = context.get("body")
    if isinstance(body, str):
        body = context["body"] = _with_rerun_note(body, pagename)
    if "script_files" in context:
        has_charts = isinstance(body, str) and 'class="tc-chart"' in body
        context["script_files"] = _page_scripts(list(context["script_files"]), has_charts)
    if isinstance(body, str):
        context["body"] = body.replace(figures.VERSION_PLACEHOLDER, app.config.tokenbook_version).replace(
            figures.DATE_PLACEHOLDER, app.config.tokenbook_build_date
        )


_FONTAWESOME_JS = re.compile(r'\s*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>')


def _strip_fontawesome_js(outdir: Path) -> None:
    """Remove pydata-sphinx-theme's ``fontawesome.js`` (1.5 MB of icons as JavaScript) from every page,
    and the assets of extensions a page does not use (:func:`strip_unused_assets`).

    The theme's stylesheet already ships the same icons as a web font, so nothing is lost; the
    script tag comes from a theme template, not from ``script_files``, hence the post-processing.
    """
    for page in outdir.rglob("*.html"):
        if "_static" in page.parts or "figures" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        stripped = strip_unused_assets(_FONTAWESOME_JS.sub("", text), page.relative_to(outdir).with_suffix("").as_posix())
        if stripped != text:
            page.write_text(stripped, encoding="utf-8")


ICON_FONT = Path("_static") / "vendor" / "fontawesome" / "webfonts" / "fa-solid-900.woff2"
_ICON_RULE = re.compile(r'((?:\.fa-[a-z0-9-]+:{1,2}before,?)+)\{content:"([^"]*)"\}')
_ICON_CLASS = re.compile(r"\bfa-[a-z0-9-]+")
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{4,6})")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def _codepoints(css_string: str) -> set[int]:
    """The private-use code points (icons) of a CSS string, written as characters or ``\\f0c9`` escapes."""
    text = _CSS_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), css_string)
    return {ord(c) for c in _PRIVATE_USE.findall(text)}


def strip_unused_icon_rules(css: str, pages: list[str]) -> str:
    """``css`` without the ``.fa-NAME:before`` rules of icons no page or script names (the theme's
    stylesheet carries all 1,900 of Font Awesome's: a third of its bytes)."""
    classes = {c for page in pages for c in _ICON_CLASS.findall(page)}

    def keep(m: re.Match[str]) -> str:
        names = re.findall(r"\.(fa-[a-z0-9-]+):", m.group(1))
        return m.group(0) if any(n in classes for n in names) else ""

    return _ICON_RULE.sub(keep, css)


def used_icons(css: str, pages: list[str]) -> set[int]:
    """Icon code points the site can show: the ``fa-*`` classes its pages and scripts name, and every
    icon the theme's own stylesheets put in ``content:`` or ``--pst-icon-*`` (admonitions, links)."""
    classes = {c for page in pages for c in _ICON_CLASS.findall(page)}
    wanted: set[int] = set()
    for names, content in _ICON_RULE.findall(css):
        if any(n in classes for n in re.findall(r"\.(fa-[a-z0-9-]+):", names)):
            wanted |= _codepoints(content)
    rest = _ICON_RULE.sub("", css)  # what is left: the theme's own rules
    for m in re.finditer(r'(?:content:|--pst-icon-[a-z-]+:)\s*"([^"]*)"', rest):
        wanted |= _codepoints(m.group(1))
    return wanted


def _subset_icon_font(outdir: Path) -> None:
    """Cut the theme's solid icon font (150 KB, every page loads it) to the icons the site uses, and
    the theme's stylesheet to the icon rules of those icons."""
    font = outdir / ICON_FONT
    if not font.exists():
        return
    from fontTools import subset

    static = outdir / "_static"
    css = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in static.rglob("*.css"))
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in outdir.rglob("*.html")
             if "figures" not in p.parts and "_sources" not in p.parts]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in static.rglob("*.js")
              if p.name != BUNDLE_NAME]
    unicodes = used_icons(css, texts)
    if not unicodes:
        return
    for sheet in static.rglob("pydata-sphinx-theme.css"):
        text = sheet.read_text(encoding="utf-8")
        sheet.write_text(strip_unused_icon_rules(text, texts), encoding="utf-8")
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    f = subset.load_font(str(font), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(unicodes))
    subsetter.subset(f)
    tmp = font.with_name(font.name + ".tmp")
    subset.save_font(f, str(tmp), options)
    tmp.replace(font)
    ttf = font.with_suffix(".ttf")  # the fallback the stylesheet names after the woff2
    if ttf.exists():
        options.flavor = None
        g = subset.load_font(str(ttf), options)
        s2 = subset.Subsetter(options)
        s2.populate(unicodes=sorted(unicodes))
        s2.subset(g)
        subset.save_font(g, str(ttf), options)


def _copy_tree(src: Path, dst: Path, patterns: tuple[str, ...]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for pattern in patterns:
        for path in src.glob(pattern):
            if path.is_file():
                target = dst / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


def _on_build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src = Path(app.srcdir)
    out = Path(app.outdir)
    if (src / "figures").is_dir():
        _copy_tree(src / "figures", out / "figures", ("fig-*",))
    _copy_tree(src / "data", out / "data", ("*.csv", "schema.yaml", "sources/*.csv"))
    _strip_fontawesome_js(out)
    _subset_icon_font(out)
    if (src / "CITATION.cff").exists():
        shutil.copy2(src / "CITATION.cff", out / "CITATION.cff")


#: A test marker line in a code cell (nbval's ``# NBVAL_CHECK_OUTPUT`` and kin): for nbval, not readers
_TEST_MARKER = re.compile(r"^[ \t]*#[ \t]*NBVAL_[A-Z_]+[ \t]*\n?", re.M)


def strip_test_markers(source: str) -> str:
    """``source`` without its nbval marker lines (the notebook and its download keep them)."""
    return _TEST_MARKER.sub("", source)


def _on_doctree_read(app: Sphinx, doctree: nodes.document) -> None:
    """Drop nbval's marker lines from the code a reader can show; nbval runs the executed notebook."""
    for block in list(doctree.findall(nodes.literal_block)):
        parent = block.parent
        if parent is None or "cell_input" not in parent.get("classes", []):
            continue
        text = block.astext()
        if not _TEST_MARKER.search(text):
            continue
        stripped = strip_test_markers(text)
        new = nodes.literal_block(stripped, stripped, **{k: v for k, v in block.attributes.items() if k != "ids"})
        new["ids"] = block["ids"]
        block.replace_self(new)


class figure_index_node(nodes.General, nodes.Element):  # type: ignore[misc]
    """Placeholder replaced by the figure table once every page has been executed."""


class FigureIndex(Directive):  # type: ignore[misc]
    """``.. figure-index::`` — a table of every figure in the book with thumbnail and downloads."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        return [figure_index_node()]


def _index_html(entries: list[dict[str, Any]], prefix: str) -> str:
    if not entries:
        return "<p>No figures have been built yet.</p>"
    rows = []
    for e in entries:
        name = html.escape(e["name"])
        page = html.escape(e["page"])
        downloads = " · ".join(
            f'<a href="{prefix}figures/{html.escape(f)}">{html.escape(k.upper())}</a>'
            for k, f in e["files"].items()
        )
        rows.append(
            f'<tr id="index-{name}"><td><a href="{prefix}{page}.html#{name}">'
            f'<img class="tc-index-thumb" loading="lazy" src="{prefix}figures/{name}.svg" alt="{html.escape(e["title"])}"></a></td>'
            f'<td><a href="{prefix}{page}.html#{name}">Figure {html.escape(str(e["number"]))}</a>: '
            f'{html.escape(e["title"])}<br><small>{page} · {downloads}</small></td></tr>'
        )
    return '<table class="tc-figure-index"><thead><tr><th>Figure</th><th>Title, page, downloads</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>"


def _on_doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for node in list(doctree.findall(figure_index_node)):
        prefix = "../" * docname.count("/")
        entries = figures.registry(Path(app.srcdir) / "figures") if (Path(app.srcdir) / "figures").is_dir() else []
        node.replace_self(nodes.raw("", _index_html(entries, prefix), format="html"))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("tokenbook_version", __version__, "html")
    app.add_config_value("tokenbook_build_date", dt.date.today().isoformat(), "html")
    app.add_node(figure_index_node)
    app.add_directive("figure-index", FigureIndex)
    app.connect("config-inited", _on_config_inited)
    app.connect("config-inited", lambda a, c: setattr(c, "tokenbook_version", book_version(Path(a.srcdir))))
    # early: emit_firstresult stops at the first handler that returns a template name
    app.connect("html-page-context", _on_page_context, priority=100)
    app.connect("doctree-read", _on_doctree_read)
    app.connect("doctree-resolved", _on_doctree_resolved)
    app.connect("build-finished", _on_build_finished)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
