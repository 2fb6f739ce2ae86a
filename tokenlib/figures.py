"""Numbered, cited, downloadable figures: the one place a chart becomes a figure of the book.

A chapter builds an Altair chart and calls :func:`publish`. That:

* gives the figure its number (chapter.order) and its stable id, the figure name ``fig-<chapter>-<slug>``,
  which is also the HTML anchor, the file stem of the downloads and the chart's container id;
* writes the bundle ``figures/<name>.{svg,png,csv,vl.json,html,json}`` (PNG at 2x with CJK fonts;
  CSV with a header naming the sources; standalone HTML with Vega inlined; JSON = registry entry);
* returns an object that displays, in the book, a ``<figure>`` with the chart, a caption with sources,
  download links, the data table and a "Cite this figure" block; in Jupyter, the chart itself.

The book's Sphinx extension (:mod:`tokenlib.sphinxext`) draws the charts from the page's own Vega
bundle, fills in the version and build date, copies ``figures/`` into the site and builds the figure
index from the registry files.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import vl_convert as vlc
import yaml

from tokenlib import charts
from tokenlib.data import repo_root

NAME_PATTERN = re.compile(r"^fig-(intro|\d{2}|[a-z]+)-[a-z0-9]+(?:-[a-z0-9]+)*$")
BOOK_TITLE = "Token Capital: an executable book on the economics of China's LLM inference"
BOOK_AUTHOR = "Token Capital contributors"
VERSION_PLACEHOLDER = "@@TOKENBOOK_VERSION@@"
DATE_PLACEHOLDER = "@@TOKENBOOK_BUILD_DATE@@"
#: Environment variable the Makefile sets when notebooks are executed for the book (HTML output).
RENDER_ENV = "TOKENBOOK_RENDER"
MAX_TABLE_ROWS = 300
#: Sources named in full under a figure; the rest fold into "and N more" (all are in the CSV header).
SOURCES_SHOWN = 3
PNG_SCALE = 2.0
CJK_FONT_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto")

_fonts_registered = False


@dataclass(frozen=True)
class Source:
    """A data provider credited under a figure: the original provider first, then the page."""

    provider: str
    title: str
    url: str

    def html(self) -> str:
        return (
            f'{html.escape(self.provider)}, <a href="{html.escape(self.url)}">{html.escape(self.title)}</a>'
        )

    def text(self) -> str:
        return f"{self.provider}, {self.title} ({self.url})"


@dataclass
class Figure:
    """A published figure. Displays as the book's ``<figure>`` block (or the bare chart in Jupyter)."""

    name: str
    number: str
    title: str
    caption: str
    description: str
    sources: list[Source]
    page: str
    spec: dict[str, Any] = field(repr=False)
    data: pd.DataFrame = field(repr=False)
    files: dict[str, str] = field(default_factory=dict)

    # -- citation -----------------------------------------------------------------------------

    def permalink(self, base_url: str | None = None) -> str:
        base = (base_url if base_url is not None else book_config().get("baseurl", "")).rstrip("/")
        return f"{base}/{self.page}.html#{self.name}"

    def providers(self) -> str:
        seen: list[str] = []
        for s in self.sources:
            if s.provider not in seen:
                seen.append(s.provider)
        return "; ".join(seen)

    def citation_short(self) -> str:
        return f"{self.providers()} – with processing by Token Capital (Figure {self.number})"

    def citation_full(self, version: str = VERSION_PLACEHOLDER, date: str = DATE_PLACEHOLDER) -> str:
        return (
            f"{self.providers()}. “{self.title}” [figure {self.number}, data]. With major processing by "
            f"{BOOK_AUTHOR}, {BOOK_TITLE}, version {version}, built {date}. {self.permalink()}"
        )

    def bibtex(self, version: str = VERSION_PLACEHOLDER, date: str = DATE_PLACEHOLDER) -> str:
        key = self.name.replace("-", "_")
        return (
            f"@misc{{{key},\n"
            f"  title = {{{{{_bibtex_escape(self.title)}}}}},\n"
            f"  author = {{{_bibtex_escape(BOOK_AUTHOR)}}},\n"
            f"  note = {{Figure {self.number}. Data: {_bibtex_escape(self.providers())}. Version {version}, built {date}}},\n"
            f"  howpublished = {{\\url{{{self.permalink()}}}}},\n"
            f"  year = {{{date[:4] if date[:4].isdigit() else '????'}}}\n"
            f"}}"
        )

    # -- display --------------------------------------------------------------------------------

    def html(self, link_prefix: str | None = None) -> str:
        """The ``<figure>`` block for the book page. ``link_prefix`` leads from the page to the site root."""
        prefix = link_prefix if link_prefix is not None else _relative_root(self.page)
        spec_json = json.dumps(page_spec(self.spec), ensure_ascii=False, sort_keys=True,
                               separators=(",", ":")).replace("</", "<\\/")
        downloads = " · ".join(
            f'<a href="{prefix}figures/{self.name}{ext}" download>{label}</a>'
            for label, ext in (("SVG", ".svg"), ("PNG", ".png"), ("CSV (data)", ".csv"),
                               ("Vega-Lite JSON", ".vl.json"), ("Standalone HTML", ".html"))
        )
        e = html.escape
        shown, rest = self.sources[:SOURCES_SHOWN], self.sources[SOURCES_SHOWN:]
        sources = "; ".join(s.html() for s in shown)
        # a <details> cannot sit inside a <p>: the folded sources are a block of their own
        more_sources = (
            f'<details class="tc-more-sources"><summary>{len(rest)} more sources</summary>'
            + "; ".join(s.html() for s in rest) + "</details>\n"
            if rest else ""
        )
        title = self.title if self.title.rstrip().endswith((".", "!", "?")) else self.title + "."
        return f"""<figure class="tc-figure" id="{self.name}">
<div class="tc-chart" id="{self.name}-chart" data-spec-id="{self.name}-spec" role="img" aria-label="{e(self.description)}"></div>
<script type="application/json" id="{self.name}-spec">{spec_json}</script>
<figcaption>
<p class="tc-caption"><a class="tc-number" href="#{self.name}">Figure {self.number}</a>. <strong>{e(title)}</strong> {e(self.caption)}</p>
<p class="tc-sources">Sources: {sources}. Chart and processing: Token Capital.</p>
{more_sources}<p class="tc-downloads">Download: {downloads}</p>
<details class="tc-data"><summary>Data table ({len(self.data)} rows)</summary>{_html_table(self.data)}</details>
<details class="tc-cite"><summary>Cite this figure</summary>
<p>Permalink: <a class="tc-permalink" href="#{self.name}">{e(self.permalink())}</a></p>
<p>Short: {e(self.citation_short())}</p>
<p>Full: {e(self.citation_full())}</p>
<pre class="tc-bibtex">{e(self.bibtex())}</pre>
</details>
</figcaption>
</figure>"""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        if os.environ.get(RENDER_ENV) == "html":
            return {"text/html": self.html(), "text/plain": f"Figure {self.number}: {self.title}"}
        bundle = {
            "application/vnd.vegalite.v6+json": self.spec,
            "text/plain": f"Figure {self.number}: {self.title}",
        }
        return bundle


def page_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec a book page draws: ``spec`` without the chart title.

    The title is the figure's caption, set as page text that wraps on a phone; inside the chart a
    one-line title would force the chart wider than a phone. The downloads keep it. The widths stay
    the ones the chart was designed at; ``tokenbook.js`` narrows the views of a chart whose box is
    narrower (a phone), so its text is never scaled down.
    """
    return {k: v for k, v in spec.items() if k != "title"}


def _host_name(url: str) -> str:
    from urllib.parse import urlparse

    host = urlparse(url).hostname or url
    host = host.removeprefix("www.")
    if host == "github.com":
        parts = urlparse(url).path.strip("/").split("/")
        return "/".join(parts[:2]) + " (GitHub)" if len(parts) >= 2 else host
    return host


def sources_from(df: pd.DataFrame, limit: int = 12) -> list[Source]:
    """Sources to credit under a figure, from the provenance columns of the rows it shows.

    One entry per distinct source URL, most-used first; ``limit`` keeps captions readable (the CSV
    download keeps the row-level sources). The provider is the publishing site or repository.
    """
    if not {"source_url", "source_title"} <= set(df.columns):
        raise ValueError("sources_from needs the provenance columns source_url and source_title")
    counts = df.groupby(["source_url", "source_title"], sort=False).size().sort_values(ascending=False)
    pairs = [(str(k[0]), str(k[1])) for k in counts.head(limit).index]
    return [Source(_host_name(url), title, url) for url, title in pairs]


def _bibtex_escape(text: str) -> str:
    return text.replace("\\", "").replace("{", "").replace("}", "").replace("%", "\\%").replace("&", "\\&")


def _html_table(df: pd.DataFrame) -> str:
    shown = df.head(MAX_TABLE_ROWS)
    table = shown.to_html(index=False, border=0, classes="tc-table", na_rep="", float_format=lambda v: f"{v:,.4g}")
    table = re.sub(r">\s+<", "><", table)  # pandas indents its HTML: bytes on every page load, nothing shown
    if len(df) > MAX_TABLE_ROWS:
        table += f"<p>First {MAX_TABLE_ROWS} of {len(df)} rows; the CSV has them all.</p>"
    return table


def book_config() -> dict[str, Any]:
    """The ``html:`` and top-level settings of ``_config.yml`` that figures need (base URL, title)."""
    path = repo_root() / "_config.yml"
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f) or {}
    html_cfg = cfg.get("html", {}) or {}
    return {"baseurl": html_cfg.get("baseurl", ""), "title": cfg.get("title", BOOK_TITLE)}


def figures_dir() -> Path:
    """Where figure bundles are written (``figures/`` at the book root, not under version control)."""
    path = repo_root() / "figures"
    path.mkdir(exist_ok=True)
    return path


def page_for(name: str) -> str:
    """The page (Sphinx docname) a figure belongs to, from the chapter part of its name and ``_toc.yml``."""
    match = NAME_PATTERN.match(name)
    if not match:
        raise ValueError(
            f"figure name {name!r} must look like fig-<chapter>-<slug> (e.g. fig-01-cascade): "
            "lower-case letters, digits and hyphens"
        )
    chapter = match.group(1)
    docs = _toc_docnames()
    if chapter == "intro":
        return "intro"
    for doc in docs:
        stem = doc.rsplit("/", 1)[-1]
        if stem.startswith(f"{chapter}_") or stem == chapter:
            return doc
    raise ValueError(f"figure {name!r}: no page for chapter {chapter!r} in _toc.yml; pages: {', '.join(docs)}")


def _toc_docnames() -> list[str]:
    from tokenlib.book import toc_docnames

    return toc_docnames()


def _relative_root(page: str) -> str:
    depth = page.count("/")
    return "../" * depth


_numbers: dict[str, str] = {}


def _number_for(name: str, page: str) -> str:
    if name in _numbers:
        return _numbers[name]
    chapter = NAME_PATTERN.match(name).group(1)  # type: ignore[union-attr]
    label = "0" if chapter == "intro" else str(int(chapter)) if chapter.isdigit() else chapter
    count = sum(1 for n in _numbers if n.split("-")[1] == chapter) + 1
    _numbers[name] = f"{label}.{count}"
    return _numbers[name]


def _register_fonts() -> None:
    global _fonts_registered
    if _fonts_registered:
        return
    for d in CJK_FONT_DIRS:
        if Path(d).is_dir():
            vlc.register_font_directory(d)
    _fonts_registered = True


def vl_version() -> str:
    """The Vega-Lite version (``v<major>.<minor>``) Altair writes, used for every conversion and the bundle."""
    major, minor, *_ = alt.VEGALITE_VERSION.split(".")
    return f"v{major}.{minor}"


def render_svg(spec: dict[str, Any]) -> str:
    """SVG text of a Vega-Lite spec, with the CJK fonts registered."""
    _register_fonts()
    return str(vlc.vegalite_to_svg(spec, vl_version=vl_version()))


def render_png(spec: dict[str, Any], scale: float = PNG_SCALE) -> bytes:
    """PNG bytes of a Vega-Lite spec at ``scale`` times its CSS size, with the CJK fonts registered."""
    _register_fonts()
    return bytes(vlc.vegalite_to_png(spec, vl_version=vl_version(), scale=scale))


def _csv_with_header(fig: Figure) -> str:
    lines = [
        f"# {fig.title}",
        f"# Figure {fig.number} of {BOOK_TITLE}",
        "# Sources: " + "; ".join(s.text() for s in fig.sources),
        f"# Cite as: {fig.citation_short()}",
        f"# Permalink: {fig.permalink()}",
    ]
    return "\n".join(lines) + "\n" + fig.data.to_csv(index=False, lineterminator="\n")


def publish(
    chart: alt.TopLevelMixin,
    *,
    name: str,
    title: str,
    caption: str,
    sources: list[Source] | list[dict[str, str]],
    data: pd.DataFrame,
    description: str | None = None,
    write: bool = True,
) -> Figure:
    """Make ``chart`` a figure of the book: number it, title it, cite it and write its bundle.

    Parameters
    ----------
    name: stable id ``fig-<chapter>-<slug>``; the anchor, file stem and chart id.
    title: the finding, in one sentence (it becomes the chart's title too).
    caption: what is shown and how to read it; assumptions that matter.
    sources: original data providers first (provider, page title, URL); at least one.
    data: the (aggregated) table behind the chart, saved as the figure's CSV.
    description: text alternative for screen readers (defaults to title and caption).
    write: write the bundle files (tests may switch it off).
    """
    page = page_for(name)
    if not sources:
        raise ValueError(f"figure {name!r} has no sources: every figure cites where its data come from")
    src = [s if isinstance(s, Source) else Source(**s) for s in sources]
    if data.empty:
        raise ValueError(f"figure {name!r}: the data behind the chart is empty")
    desc = description or f"{title} {caption}"
    titled = chart.properties(title=alt.TitleParams(text=title), description=desc)
    spec = titled.to_dict()
    fig = Figure(
        name=name,
        number=_number_for(name, page),
        title=title,
        caption=caption,
        description=desc,
        sources=src,
        page=page,
        spec=spec,
        data=data.reset_index(drop=True),
    )
    if write:
        _write_bundle(fig, titled)
    return fig


def _write_bundle(fig: Figure, chart: alt.TopLevelMixin) -> None:
    out = figures_dir()
    version = _version()
    today = dt.date.today().isoformat()
    stem = out / fig.name
    files = {
        "svg": stem.with_suffix(".svg"),
        "png": stem.with_suffix(".png"),
        "csv": stem.with_suffix(".csv"),
        "vl.json": out / f"{fig.name}.vl.json",
        "html": stem.with_suffix(".html"),
    }
    # Write to temporary names first so a failed render leaves no half-written bundle behind.
    rendered: dict[str, bytes] = {
        "svg": render_svg(fig.spec).encode("utf-8"),
        "png": render_png(fig.spec),
        "csv": _csv_with_header(fig).encode("utf-8"),
        "vl.json": json.dumps(fig.spec, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"),
    }
    tmp_html = out / f".{fig.name}.html.tmp"
    chart.save(str(tmp_html), format="html", inline=True)
    rendered["html"] = tmp_html.read_bytes()
    tmp_html.unlink()
    for key, path in files.items():
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(rendered[key])
        tmp.replace(path)
    fig.files = {k: p.name for k, p in files.items()}
    meta = {
        "name": fig.name,
        "number": fig.number,
        "title": fig.title,
        "caption": fig.caption,
        "description": fig.description,
        "page": fig.page,
        "sources": [asdict(s) for s in fig.sources],
        "files": fig.files,
        "citation_short": fig.citation_short(),
        "citation_full": fig.citation_full(version, today),
        "bibtex": fig.bibtex(version, today),
        "rows": len(fig.data),
    }
    (out / f"{fig.name}.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")


def _version() -> str:
    from tokenlib import __version__

    return __version__


def registry(directory: Path | None = None) -> list[dict[str, Any]]:
    """Every published figure's registry entry, in page then number order."""
    d = directory or figures_dir()
    entries = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(d.glob("fig-*.json")) if not p.name.endswith(".vl.json")]

    def order(e: dict[str, Any]) -> tuple[int, ...]:
        return tuple(int(x) for x in str(e["number"]).split(".") if x.isdigit())

    return sorted(entries, key=order)
