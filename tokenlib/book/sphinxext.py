"""Sphinx extension that makes the book's figures work offline and citable.

* writes one pinned Vega + Vega-Lite + Vega-Embed bundle (from vl-convert) into the site's ``_static``
  and loads it, with ``tokenbook.js`` that draws every figure, once per page: no CDN;
* keeps every page light: no search index on pages other than the search page, no stylesheets or
  scripts of extensions a page does not use, the icon font cut to the icons the site shows, and no
  colour-mode switch (the charts are drawn for a light page; a switch that darkens the page around
  white charts is a half state);
* fills each page's version and build-date placeholders (figure citations);
* writes each figure's download bundle (SVG, PNG, CSV, Vega-Lite JSON, standalone HTML, registry JSON)
  from the figure outputs of the executed notebooks in ``_build/jupyter_execute`` (so the site's
  downloads always match its pages, cached execution or not; nothing is written into the repository)
  and copies them, ``data/`` (the CSVs and schema) and ``CITATION.cff`` into the built site;
* provides the ``figure-index`` directive (a table of every figure, filled after all pages ran), the
  ``book-citation`` directive (the book's BibTeX, RIS and CSL-JSON for the version being built) and the
  ``findings-changes`` directive (the findings that moved, from the git history of ``findings.csv``);
* puts the licence, the version and a version switcher in every page's footer, and writes
  ``versions.json`` (the versions the switcher lists; the publish workflow rewrites it for the whole site).

Why this module is long: a Sphinx extension is one ``setup`` with its hooks, and each hook
here (the Vega bundle, page weight, placeholders, download bundles, the figure index) is short; they
share the build's state, so they stay in one module.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import vl_convert as vlc
from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

from tokenlib import __version__, safehtml
from tokenlib.book import figures

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
    """The Vega bundle every page loads (Vega alone: charts arrive compiled from Vega-Lite at build time,
    :func:`tokenlib.book.figures.page_vega`, which keeps about 100 KB of Vega-Lite off a phone's first load)."""
    return figures.vega_bundle_js()


VERSIONS_FILE = "versions.json"


def footer_html(version: str, date: str) -> str:
    """The footer line of every page: licences, the version being read and the version switcher."""
    return (
        f'<p class="tc-licence-footer">Text, data and figures: <a href="{figures.LICENCE_URL}" rel="license">'
        f'{figures.LICENCE}</a>, crediting the original data providers named under each figure. '
        f'Code: {figures.CODE_LICENCE}. See <code>LICENSE</code> in the repository.</p>'
        f'<p class="tc-version-footer">Version {safehtml.text(version)}, built {safehtml.text(date)}. '
        f'<span class="tc-versions" data-version="{safehtml.text(__version__)}" '
        f'data-path="{safehtml.text(figures.release_path())}/">Other versions are listed once published.</span></p>'
    )


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
    wanted = f"{getattr(vlc, '__version__', 'unknown')} {figures.vl_version()} {figures.VEGA_MODULE}"  # what the bundle is made of
    if not bundle.exists() or not stamp.exists() or stamp.read_text() != wanted:
        bundle.write_text(vega_bundle_js(), encoding="utf-8")
        stamp.write_text(wanted)
    config.html_static_path = list(config.html_static_path) + [str(STATIC_DIR), str(gen)]
    config.templates_path = [str(TEMPLATES_DIR)] + list(config.templates_path)
    # an earlier visit (or another book on this host) may have stored a dark mode: this book is light
    app.add_js_file(None, body=LIGHT_MODE_JS, priority=10)
    app.add_js_file(BUNDLE_NAME, priority=400)
    app.add_js_file("tokenbook.js", priority=401)
    app.add_js_file("tokenbook-site.js", priority=402)
    app.add_js_file("tokenbook-state.js", priority=399)  # what-if settings in the URL (the calculator's page)
    app.add_js_file("tokenbook-calc.js", priority=403)  # the calculator page's script
    app.add_css_file("tokenbook.css")


def _on_config_footer(app: Sphinx, config: Any) -> None:
    """Licence, version and version switcher in the theme's footer (after the version is known)."""
    options = dict(config.html_theme_options or {})
    footer = footer_html(config.tokenbook_version, config.tokenbook_build_date)
    options["extra_footer"] = (str(options.get("extra_footer") or "") + footer)
    config.html_theme_options = options


def _page_scripts(scripts: list[Any], has_charts: bool, has_calculator: bool = False) -> list[Any]:
    """The page's scripts, less what a reader should not download.

    * sphinx-thebe: Jupyter Book 1 always loads it; it declares ``THEBE_JS_URL`` twice (an uncaught
      SyntaxError) and points at unpkg.com. Thebe is off in this book.
    * the Vega bundle and chart loader, on pages without a chart; the calculator's script on pages without
      the calculator, and the URL-state script too (chart pages load it only when needed, see tokenbook.js).
    """
    kept = []
    for js in scripts:
        body = str(getattr(js, "attributes", {}).get("body", ""))
        name = str(getattr(js, "filename", js) or "").split("?", 1)[0]
        if "THEBE_JS_URL" in body or name.endswith("sphinx-thebe.js") or "unpkg.com" in name:
            continue
        base = name.rsplit("/", 1)[-1]
        if not has_charts and base in (BUNDLE_NAME, "tokenbook.js"):
            continue
        if not has_calculator and base == "tokenbook-calc.js":
            continue
        if not has_calculator and base == "tokenbook-state.js":  # chart pages load it when needed (tokenbook.js)
            continue
        kept.append(js)
    return kept


RERUN_NOTE = """<div class="admonition tip tc-rerun"><p class="admonition-title">Re-run this chapter</p>
<p>Download <a href="{prefix}_notebooks/{page}.ipynb" download>this chapter as an executed notebook</a>
(with the outputs shown here) or <a href="{prefix}_sources/{page}.md" download>its MyST source</a>.
The chapter calls the book's <code>tokenlib</code> package and reads its <code>data/</code>, so run it from a clone of the
<a href="{repo}">book's repository</a>: <code>make lab</code> sets up the pinned environment and opens the chapters
in JupyterLab; <code>make run CHAPTER={chapter} NAME=value</code> re-runs it with a changed assumption and prints the
findings that moved. Assumptions sit in the parameters cell at the top; the chapter runs top to bottom in seconds.</p></div>"""


def _repository_url(srcdir: Path) -> str:
    """``repository.url`` of ``_config.yml`` (where a reader clones the book to re-run a chapter)."""
    import yaml

    path = srcdir / "_config.yml"
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    return str(((cfg or {}).get("repository") or {}).get("url", "") or "")


def _with_rerun_note(body: str, pagename: str, repo_url: str = "") -> str:
    """Insert the re-run note after a chapter's title (chapters are the notebooks under chapters/)."""
    if not pagename.startswith("chapters/") or "tc-rerun" in body:
        return body
    stem = pagename.rsplit("/", 1)[-1]
    note = RERUN_NOTE.format(prefix="../" * pagename.count("/"), page=pagename, repo=safehtml.text(repo_url),
                             chapter=stem.split("_", 1)[0])
    head, sep, rest = body.partition("</h1>")
    return head + sep + note + rest if sep else note + body


def _on_page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    body = context.get("body")
    if isinstance(body, str):
        repo = _repository_url(Path(app.srcdir))
        body = context["body"] = _with_rerun_note(body, pagename, repo)
    if "script_files" in context:
        has_charts = isinstance(body, str) and 'class="tc-chart"' in body
        has_calculator = isinstance(body, str) and 'class="tc-calc"' in body
        context["script_files"] = _page_scripts(list(context["script_files"]), has_charts, has_calculator)
    if isinstance(body, str):
        context["body"] = figures.fill_placeholders(body, app.config.tokenbook_version, app.config.tokenbook_build_date)


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


def _executed_dir(app: Sphinx) -> Path:
    """Where myst-nb writes each page's executed notebook (``_build/jupyter_execute``)."""
    return Path(app.outdir).parent / "jupyter_execute"


def _figures_build_dir(app: Sphinx) -> Path:
    return Path(app.outdir).parent / "figures"


def _restore_cached_outputs(app: Sphinx, doc: str, target: Path) -> None:
    """Write ``doc``'s executed notebook, with its outputs, to ``target`` (``_build/jupyter_execute``).

    myst-nb 1.4 writes the notebook *without outputs* there when it takes them from the execution
    cache (it saves the notebook it read, not the one merged with the cache). The figure bundles,
    nbval's reference outputs and the page's notebook download all need the outputs, so they are
    merged from the cache here exactly as myst-nb does for the page.
    """
    import nbformat
    from jupyter_cache import get_cache
    from myst_nb.core.read import create_nb_reader

    env = app.env
    if env.mystnb_config.execution_mode != "cache":  # type: ignore[attr-defined]
        return
    path = Path(env.doc2path(doc))
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    reader = create_nb_reader(str(path), env.myst_config, env.mystnb_config, text)  # type: ignore[attr-defined]
    if reader is None:
        return  # a plain Markdown page
    notebook = reader.read(text)
    cache = get_cache(env.mystnb_config.execution_cache_path or ".jupyter_cache")  # type: ignore[attr-defined]
    try:
        _, merged = cache.merge_match_into_notebook(notebook)
    except KeyError:
        return  # not executed (or failed): leave what myst-nb wrote
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(nbformat.writes(merged), encoding="utf-8")  # type: ignore[no-untyped-call]


def _on_env_updated(app: Sphinx, env: Any) -> list[str]:
    """Write every figure's bundle from the executed notebooks, once all pages have been read.

    The bundles come from the figure outputs the pages show (output metadata ``figures.PAYLOAD_KEY``), so a
    page from the execution cache and its downloads cannot disagree, and an interactive run in
    JupyterLab (which writes nothing) cannot change them.
    """
    from tokenlib.book.toc import toc_docnames
    from tokenlib.book.findings import figure_payloads

    if app.builder.format != "html":
        return []
    out = _figures_build_dir(app)
    if out.is_dir():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for doc in toc_docnames(Path(app.srcdir)):
        nb = _executed_dir(app) / f"{doc}.ipynb"
        _restore_cached_outputs(app, doc, nb)
        if not nb.exists():
            continue
        notebook = json.loads(nb.read_text(encoding="utf-8"))
        for payload in figure_payloads(notebook):
            fig = figures.Figure.from_payload(payload)
            figures.write_bundle(fig, out)
        # the executed notebook, for the page's download link (glue outputs and figure payloads kept)
        target = Path(app.outdir) / "_notebooks" / f"{doc}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(nb, target)
    return []


def _on_build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src = Path(app.srcdir)
    out = Path(app.outdir)
    if _figures_build_dir(app).is_dir():
        if (out / "figures").is_dir():
            shutil.rmtree(out / "figures")
        _copy_tree(_figures_build_dir(app), out / "figures", ("fig-*",))
    _copy_tree(src / "data", out / "data", ("*.csv", "schema.yaml", "sources/*.csv"))
    _strip_fontawesome_js(out)
    _subset_icon_font(out)
    for name in ("CITATION.cff", "LICENSE", "LICENSE-CC-BY-4.0.md"):
        if (src / name).exists():
            shutil.copy2(src / name, out / name)
    # this build alone; the publish workflow lists every published version (tokenlib.book site)
    versions = {"latest": __version__, "versions": [{"version": __version__, "path": ""}]}
    (out / VERSIONS_FILE).write_text(json.dumps(versions, indent=1) + "\n", encoding="utf-8")


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
        name = safehtml.text(e["name"])
        page = safehtml.text(e["page"])
        downloads = " · ".join(
            f'<a href="{prefix}figures/{safehtml.text(f)}">{safehtml.text(k.upper())}</a>'
            for k, f in e["files"].items()
        )
        rows.append(
            f'<tr id="index-{name}"><td><a href="{prefix}{page}.html#{name}">'
            f'<img class="tc-index-thumb" loading="lazy" src="{prefix}figures/{name}.svg" alt="{safehtml.text(e["title"])}"></a></td>'
            f'<td><a href="{prefix}{page}.html#{name}">Figure {safehtml.text(str(e["number"]))}</a>: '
            f'{safehtml.text(e["title"])}<br><small>{page} · {downloads}</small></td></tr>'
        )
    return '<table class="tc-figure-index"><thead><tr><th>Figure</th><th>Title, page, downloads</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>"


class BookCitation(Directive):  # type: ignore[misc]
    """``.. book-citation::`` — the book's BibTeX, RIS and CSL-JSON, each with a copy button."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        c = figures.book_citation()
        block = figures.citation_html("token-capital", c["bibtex"], c["csl_json"], c["ris"])
        return [nodes.raw("", f'<div class="tc-book-cite">{block}</div>', format="html")]


def _on_doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for node in list(doctree.findall(figure_index_node)):
        prefix = "../" * docname.count("/")
        built = _figures_build_dir(app)
        entries = figures.registry(built) if built.is_dir() else []
        node.replace_self(nodes.raw("", _index_html(entries, prefix), format="html"))
    for node in list(doctree.findall(findings_changes_node)):
        node.replace_self(nodes.raw("", _changes_html(Path(app.srcdir)), format="html"))


class findings_changes_node(nodes.General, nodes.Element):  # type: ignore[misc]
    """Placeholder replaced by the table of findings that moved, from the ledger's git history."""


class FindingsChanges(Directive):  # type: ignore[misc]
    """``.. findings-changes::`` — for each commit that changed ``findings.csv``, what moved."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        return [findings_changes_node()]


def _changes_html(srcdir: Path) -> str:
    from tokenlib.book.findings import history

    revisions = history(srcdir)
    if not revisions:
        return "<p>No history of <code>findings.csv</code> is available (not a git checkout of the book).</p>"
    e = safehtml.text
    parts = []
    for rev in revisions:
        moved = [c for c in rev.changes if c.kind == "moved"]
        added = [c for c in rev.changes if c.kind == "added"]
        gone = [c for c in rev.changes if c.kind == "vanished"]
        head = (f'<h2 id="rev-{e(rev.commit[:10])}">{e(rev.date)} · <code>{e(rev.commit[:10])}</code></h2>'
                f"<p>{e(rev.subject)}</p>")
        summary = f"<p>{len(moved)} moved, {len(added)} added, {len(gone)} removed.</p>"
        rows = "".join(
            f"<tr><td>{e(c.chapter)}</td><td><code>{e(c.name)}</code></td><td>{e(c.old or '')}</td>"
            f"<td>{e(c.new or '')}</td><td>{e(c.unit)}</td></tr>" for c in moved
        )
        table = ('<table class="tc-findings-changes"><thead><tr><th>Chapter</th><th>Finding</th><th>Before</th>'
                 f"<th>After</th><th>Unit</th></tr></thead><tbody>{rows}</tbody></table>") if moved else ""
        lists = ""
        if added:
            lists += "<details><summary>Added</summary><ul>" + "".join(
                f"<li><code>{e(c.name)}</code> ({e(c.chapter)}): {e(c.new or '')}</li>" for c in added) + "</ul></details>"
        if gone:
            lists += "<details><summary>Removed</summary><ul>" + "".join(
                f"<li><code>{e(c.name)}</code> ({e(c.chapter)}): was {e(c.old or '')}</li>" for c in gone) + "</ul></details>"
        parts.append(head + summary + table + lists)
    return "\n".join(parts)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("tokenbook_version", __version__, "html")
    app.add_config_value("tokenbook_build_date", dt.date.today().isoformat(), "html")
    app.add_node(figure_index_node)
    app.add_directive("figure-index", FigureIndex)
    app.add_directive("book-citation", BookCitation)
    app.add_node(findings_changes_node)
    app.add_directive("findings-changes", FindingsChanges)
    app.connect("env-updated", _on_env_updated)
    app.connect("config-inited", _on_config_inited)
    app.connect("config-inited", lambda a, c: setattr(c, "tokenbook_version", book_version(Path(a.srcdir))))
    app.connect("config-inited", _on_config_footer, priority=600)
    # early: emit_firstresult stops at the first handler that returns a template name
    app.connect("html-page-context", _on_page_context, priority=100)
    app.connect("doctree-read", _on_doctree_read)
    app.connect("doctree-resolved", _on_doctree_resolved)
    app.connect("build-finished", _on_build_finished)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
