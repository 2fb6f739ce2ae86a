"""Numbered, cited, downloadable figures: the one place a chart becomes a figure of the book.

A chapter builds an Altair chart and calls :func:`publish`. That:

* gives the figure its number (chapter.order) and its stable id, the figure name ``fig-<chapter>-<slug>``,
  which is also the HTML anchor, the file stem of the downloads and the chart's container id;
* makes every download stand on its own: the SVG and PNG (2x, CJK fonts, rasterised from the SVG) carry
  the title, the units and the credit
  line "Source: <providers> · Chart: Token Capital <version> · CC BY 4.0" with the permalink; the CSV
  header names the sources, units and licence; the standalone HTML is the figure block with Vega
  inlined and no request to any host; the JSON registry entry holds the citations (BibTeX, CSL-JSON,
  RIS) and the embed snippet;
* returns an object that displays, in the book, a ``<figure>`` with the chart, a caption with sources
  and licence, download links, the data table and a "Cite this figure" block (versioned permalink,
  BibTeX/RIS/CSL-JSON with copy buttons, ``<iframe>`` embed), plus the figure's payload (output metadata
  :data:`PAYLOAD_KEY`: everything its download bundle is made from); in JupyterLab, the chart drawn
  by the book's own Vega bundle (sent once per kernel, inline: no request leaves the machine) with its
  caption and sources.

Providers are credited from ``data/providers.csv`` (:func:`sources_from`), never from a URL's host.

Executing a chapter writes no file. The bundle ``<name>.{svg,png,csv,vl.json,html,json}`` (PNG at 2x
with CJK fonts; CSV with a header naming the sources; standalone HTML with Vega inlined; JSON =
registry entry) is written by :func:`write_bundle`, which the book's Sphinx extension
(:mod:`tokenlib.book.sphinxext`) calls at build time on each figure payload found in the executed notebooks
under ``_build/jupyter_execute``; it writes them to ``_build/figures`` and copies them into the site.
So a page served from the execution cache and its downloads always agree, and an interactive run in
JupyterLab changes neither the repository nor the published site.

Why this module is long: it is the book's one figure choke point (the figure model,
numbering, citations in four formats, the HTML block, the download bundle and the registry) and a
shared file that several branches edit at once; it is kept whole so that every rule a figure must pass
sits in one place. Charts' style is :mod:`tokenlib.book.charts`; scatter labels
:mod:`tokenlib.book.chart_labels`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import altair as alt
import pandas as pd
import vl_convert as vlc
import yaml

from tokenlib import safehtml
from tokenlib.book import charts
from tokenlib.data import repo_root
from tokenlib.data.loader import organisation as loader_organisation

NAME_PATTERN = re.compile(r"^fig-(intro|\d{2}|[a-z]+)-[a-z0-9]+(?:-[a-z0-9]+)*$")
BOOK_TITLE = "Token Capital: an executable book on the economics of China's LLM inference"
BOOK_AUTHOR = "Token Capital contributors"
VERSION_PLACEHOLDER = "@@TOKENBOOK_VERSION@@"
DATE_PLACEHOLDER = "@@TOKENBOOK_BUILD_DATE@@"
#: Parts of the build date (filled with the date by :func:`fill_placeholders`): year, month 1-12, day,
#: and the month as a BibTeX macro (``dec``).
YEAR_PLACEHOLDER = "@@TOKENBOOK_BUILD_YEAR@@"
MONTH_PLACEHOLDER = "@@TOKENBOOK_BUILD_MONTH@@"
DAY_PLACEHOLDER = "@@TOKENBOOK_BUILD_DAY@@"
BIBMONTH_PLACEHOLDER = "@@TOKENBOOK_BUILD_BIBMONTH@@"
RISDATE_PLACEHOLDER = "@@TOKENBOOK_BUILD_RISDATE@@"
_BIB_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
#: Licence of the book's text, data and figures (code: CODE_LICENCE, see LICENSE).
LICENCE = "CC BY 4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
CODE_LICENCE = "MIT"
PUBLISHER = "Token Capital"
#: Environment variable the Makefile sets when notebooks are executed for the book (HTML output).
RENDER_ENV = "TOKENBOOK_RENDER"
#: Output metadata key carrying a figure's payload (spec, data, caption, sources) in executed notebooks
#: (metadata, not a mime type: renderers ignore it, and it never shows).
PAYLOAD_KEY = "tokenbook_figure"
#: Rows of a figure's data shown in its page table; the CSV download has every row (each row here is bytes on
#: every page load, and a phone page must stay under 500 KB).
MAX_TABLE_ROWS = 40
#: Sources named in full under a figure; the rest fold into "and N more" (all are in the CSV header).
SOURCES_SHOWN = 3
PNG_SCALE = 2.0
#: The flag a source (and a figure none of whose sources is primary) carries when the page read is not the
#: publisher's own: news, a tracker, a wiki, a repost (``data/providers.csv`` ``primary=no``).
SECONDARY_MARK = "secondary only"
#: The mark a source carries on the page when its page is the publisher's own (``primary=yes``).
PRIMARY_MARK = "primary"
CJK_FONT_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto")

_fonts_registered = False


@dataclass(frozen=True)
class Source:
    """A data provider credited under a figure: the original provider first, then the page.

    ``via`` names the site of the page read when it reposts, mirrors or relays the provider's number
    (``data/providers.csv``); empty when the page is the provider's own. ``primary`` says whether that
    page is the publisher's own (providers.csv ``primary``); ``None`` = not known, which :func:`publish`
    fills from providers.csv where the URL has a row and otherwise counts as not primary.
    """

    provider: str
    title: str
    url: str
    via: str = ""
    primary: bool | None = None

    def organisation(self) -> str:
        """The provider's organisation (:func:`tokenlib.data.loader.organisation`: "DeepSeek, pricing page" ->
        "DeepSeek")."""
        return loader_organisation(self.provider)

    def credit(self) -> str:
        """The provider, and the host it was read on when that is a repost: "X via Y"."""
        return f"{self.provider} via {self.via}" if self.via else self.provider

    def html(self) -> str:
        # on the page only the (few) primary sources are marked: a mark per secondary source would cost a phone
        # page kilobytes; the caption's flag (Figure.sourcing) says which kind the unmarked ones are
        mark = f" ({PRIMARY_MARK})" if self.primary else ""
        return f"{safehtml.text(self.credit())}, {safehtml.link(self.url, self.title)}{mark}"

    def text(self) -> str:
        mark = "" if self.primary else f" [{SECONDARY_MARK}]"
        return f"{self.credit()}, {self.title} ({self.url}){mark}"


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
    #: What the values are measured in, with the currency ("USD per million tokens"); shown under the
    #: title of the SVG and PNG downloads and in the CSV header.
    units: str = ""
    _size: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    # -- citation -----------------------------------------------------------------------------

    def permalink(self, base_url: str | None = None, version: str | None = None) -> str:
        """The figure's address in the version being read: ``<baseurl>/v<version>/<page>.html#<name>``."""
        return f"{version_url(base_url, version)}/{self.page}.html#{self.name}"

    def standalone_url(self, base_url: str | None = None, version: str | None = None) -> str:
        return f"{version_url(base_url, version)}/figures/{self.name}.html"

    def providers(self) -> str:
        """The original providers' organisations, once each ("unknown provider" entries keep their host: "via X")."""
        seen: list[str] = []
        for s in self.sources:
            credit = s.credit() if s.provider.startswith("unknown provider") else s.organisation()
            if credit not in seen:
                seen.append(credit)
        return "; ".join(seen)

    def sourcing(self) -> str:
        """The caption's flag from the sources' ``primary``: empty when every source is the publisher's own page.

        "Sources: secondary only." when none is (every number of the figure, its title's included, was read
        on news, a tracker, a wiki or a repost); "Sources: secondary only for k of n sources (...)" when some are
        (sources, not data rows: a chapter's opening counts rows).
        """
        n = len(self.sources)
        k = sum(1 for s in self.sources if not s.primary)
        if k == 0:
            return ""
        # short: it sits under every figure of a phone page near its byte budget (data appendix explains it)
        if k == n:
            return f"Sources: {SECONDARY_MARK}."
        return f"Sources: {SECONDARY_MARK} for {k} of {n} sources (the others marked {PRIMARY_MARK})."

    def source_line(self, version: str = VERSION_PLACEHOLDER) -> str:
        """The credit line every download carries: "Source: <providers> · Chart: Token Capital <version> · <licence>"."""
        return f"Source: {self.providers()} · Chart: {PUBLISHER} {version} · {LICENCE}"

    def csl_json(self, version: str = VERSION_PLACEHOLDER, date: str = DATE_PLACEHOLDER) -> str:
        """The citation as CSL-JSON (one item in an array), for Zotero and other reference managers."""
        item = {
            "id": self.name.replace("-", "_"),
            "type": "figure",
            "title": f"Figure {self.number}: {self.title}",
            "author": [{"literal": BOOK_AUTHOR}],
            "container-title": BOOK_TITLE,
            "publisher": PUBLISHER,
            "version": version,
            "number": self.number,
            "issued": {"date-parts": [["@Y", "@M", "@D"]]},
            "accessed": {"date-parts": [["@Y", "@M", "@D"]]},
            "URL": self.permalink(),
            "note": f"Data: {self.providers()}. Licence: {LICENCE} ({LICENCE_URL}).",
        }
        text = json.dumps([item], ensure_ascii=False, indent=1)
        text = text.replace('"@Y"', YEAR_PLACEHOLDER).replace('"@M"', MONTH_PLACEHOLDER).replace('"@D"', DAY_PLACEHOLDER)
        return text if date == DATE_PLACEHOLDER else fill_placeholders(text, version, date)

    def ris(self, version: str = VERSION_PLACEHOLDER, date: str = DATE_PLACEHOLDER) -> str:
        """The citation as RIS (``TY - FIGURE``), which Zotero, EndNote and Mendeley import."""
        text = _ris_lines([
            ("TY", "FIGURE"), ("TI", f"Figure {self.number}: {self.title}"), ("AU", BOOK_AUTHOR),
            ("T2", BOOK_TITLE), ("PB", PUBLISHER), ("ET", version), ("PY", YEAR_PLACEHOLDER),
            ("DA", RISDATE_PLACEHOLDER), ("Y2", RISDATE_PLACEHOLDER), ("UR", self.permalink()),
            ("N1", f"Data: {self.providers()}"), ("N1", f"Licence: {LICENCE} ({LICENCE_URL})"),
        ])
        return text if date == DATE_PLACEHOLDER else fill_placeholders(text, version, date)

    def embed_size(self) -> tuple[int, int]:
        """Width and height (CSS px) an ``<iframe>`` needs to show the standalone figure: the chart plus its caption."""
        if self._size is not None:
            return self._size
        width, height = svg_size(render_svg(self.spec))
        caption_chars = len(self.title) + len(self.caption) + len(self.source_line())
        line_chars = max(40, int((width - 24) / 7.5))
        caption_lines = -(-caption_chars // line_chars) + 3  # caption, sources, licence line, downloads
        self._size = (int(round(width)) + 32, int(round(height)) + 32 + 22 * caption_lines + 3 * 30)
        return self._size

    def embed_snippet(self) -> str:
        """An ``<iframe>`` that shows the figure's standalone HTML, sized for it."""
        width, height = self.embed_size()
        return (
            f'<iframe src="{self.standalone_url()}" width="{width}" height="{height}" '
            f'title="{safehtml.text(f"Figure {self.number}: {self.title}")}" loading="lazy" '
            'style="border:0;max-width:100%"></iframe>'
        )

    def citation_short(self) -> str:
        return f"{self.providers()} – with processing by Token Capital (Figure {self.number})"

    def citation_full(self, version: str = VERSION_PLACEHOLDER, date: str = DATE_PLACEHOLDER) -> str:
        return (
            f"{self.providers()}. “{self.title}” [figure {self.number}, data]. With major processing by "
            f"{BOOK_AUTHOR}, {BOOK_TITLE}, version {version}, built {date}. {self.permalink()} ({LICENCE})"
        )

    def bibtex(self, version: str = VERSION_PLACEHOLDER, date: str = DATE_PLACEHOLDER) -> str:
        """A BibTeX/BibLaTeX ``@misc`` entry: the book's contributors as one organisation, year, month, urldate, version."""
        key = self.name.replace("-", "_")
        text = (
            f"@misc{{{key},\n"
            f"  author = {{{{{_bibtex_escape(BOOK_AUTHOR)}}}}},\n"
            f"  title = {{{{Figure {self.number}: {_bibtex_escape(self.title)}}}}},\n"
            f"  howpublished = {{Figure {self.number} in {_bibtex_escape(BOOK_TITLE)}}},\n"
            f"  publisher = {{{PUBLISHER}}},\n"
            f"  year = {{{YEAR_PLACEHOLDER}}},\n"
            f"  month = {BIBMONTH_PLACEHOLDER},\n"
            f"  version = {{{_bibtex_escape(version)}}},\n"
            f"  url = {{{self.permalink()}}},\n"
            f"  urldate = {{{DATE_PLACEHOLDER}}},\n"
            f"  note = {{Data: {_bibtex_escape(self.providers())}. Licence: {LICENCE}}}\n"
            f"}}"
        )
        return text if date == DATE_PLACEHOLDER else fill_placeholders(text, version, date)

    # -- display --------------------------------------------------------------------------------

    def html(self, link_prefix: str | None = None) -> str:
        """The ``<figure>`` block for the book page. ``link_prefix`` leads from the page to the site root."""
        prefix = link_prefix if link_prefix is not None else _relative_root(self.page)
        spec_json = safehtml.script_json(page_vega(self.spec), ensure_ascii=False, sort_keys=True,
                                         separators=(",", ":"))
        downloads = " · ".join(
            f'<a href="{prefix}figures/{self.name}{ext}" download>{label}</a>'
            for label, ext in (("SVG", ".svg"), ("PNG", ".png"), ("CSV (data)", ".csv"),
                               ("Vega-Lite JSON", ".vl.json"), ("Standalone HTML", ".html"))
        )
        e = safehtml.text
        shown, rest = self.sources[:SOURCES_SHOWN], self.sources[SOURCES_SHOWN:]
        sources = "; ".join(s.html() for s in shown)
        # a <details> cannot sit inside a <p>: the folded sources are a block of their own
        more_sources = (
            f'<details class="tc-more-sources"><summary>{len(rest)} more sources</summary>'
            + "; ".join(s.html() for s in rest) + "</details>\n"
            if rest else ""
        )
        title = self.title if self.title.rstrip().endswith((".", "!", "?")) else self.title + "."
        flag = self.sourcing()
        sourcing = f' <span class="tc-sourcing">{e(flag)}</span>' if flag else ""
        return f"""<figure class="tc-figure" id="{self.name}">
<div class="tc-chart" id="{self.name}-chart" data-spec-id="{self.name}-spec" role="img" aria-label="{e(self.description)}"></div>
<script type="application/json" id="{self.name}-spec">{spec_json}</script>
<figcaption>
<p class="tc-caption"><a class="tc-number" href="#{self.name}">Figure {self.number}</a>. <strong>{e(title)}</strong> {e(self.caption)}{sourcing}</p>
<p class="tc-sources">Sources: {sources}. Chart and processing: Token Capital.</p>
{more_sources}<p class="tc-licence">{e(self.source_line())} (<a href="{LICENCE_URL}" rel="license">licence</a>: reuse with credit to the providers and Token Capital).</p>
<p class="tc-downloads">Download: {downloads}</p>
<details class="tc-data"><summary>Data table ({len(self.data)} rows)</summary>{_html_table(self.data)}</details>
<details class="tc-cite"><summary>Cite this figure</summary>
<p>Permalink (this version): <a class="tc-permalink" href="#{self.name}">{e(self.permalink())}</a></p>
<p>Short: {e(self.citation_short())}</p>
<p>Full: {e(self.citation_full())}</p>
{citation_html(self.name, self.bibtex(), self.csl_json(), self.ris())}
<div class="tc-cite-format"><p>Embed <button type="button" class="tc-copy" data-copy="{self.name}-embed">Copy</button></p>
<pre class="tc-embed" id="{self.name}-embed">{e(self.embed_snippet())}</pre></div>
</details>
</figcaption>
</figure>"""

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        if os.environ.get(RENDER_ENV) == "html":
            data = {"text/html": self.html(), "text/plain": f"Figure {self.number}: {self.title}"}
            return data, {PAYLOAD_KEY: self.payload()}
        return {"text/html": self.lab_html(), "text/plain": f"Figure {self.number}: {self.title}"}

    # -- payload (what the build makes the download bundle from) ---------------------------------

    def payload(self) -> dict[str, Any]:
        """Everything :func:`write_bundle` needs, as JSON: the build reads it from the executed notebook."""
        return {
            "name": self.name, "number": self.number, "title": self.title, "caption": self.caption,
            "description": self.description, "page": self.page,
            "sources": [asdict(s) for s in self.sources], "spec": self.spec,
            "data_csv": self.data.to_csv(index=False, lineterminator="\n"), "units": self.units,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Figure:
        import io

        data = pd.read_csv(io.StringIO(payload["data_csv"]), keep_default_na=False, na_values=[""])
        return cls(
            name=payload["name"], number=payload["number"], title=payload["title"], caption=payload["caption"],
            description=payload["description"], sources=[Source(**s) for s in payload["sources"]],
            page=payload["page"], spec=payload["spec"], data=data, units=payload.get("units", ""),
        )

    # -- JupyterLab -------------------------------------------------------------------------------

    def lab_html(self) -> str:
        """The figure for JupyterLab: chart, caption and sources, drawn by the book's Vega bundle.

        JupyterLab 4 renders Vega-Lite v3-v5 only and Altair writes v6, so the figure is HTML whose
        script draws it with the same Vega/Vega-Lite/Vega-Embed bundle the book serves (from
        vl-convert, matching Altair). The bundle travels inline with the first figure a kernel shows
        (JupyterLab runs scripts of outputs made in the session); later figures wait for it.
        """
        global _lab_bundle_sent
        uid = f"{self.name}-{next(_lab_ids)}"
        e = safehtml.text
        spec_json = safehtml.script_json(self.spec, ensure_ascii=False, sort_keys=True)
        sources = "; ".join(s.html() for s in self.sources)
        flag = self.sourcing()
        sourcing = f" <em>{e(flag)}</em>" if flag else ""
        bundle = ""
        if not _lab_bundle_sent:
            bundle = f"<script>{lab_bundle_js()}</script>"
            _lab_bundle_sent = True
        return f"""<div class="tc-lab-figure" id="{uid}-figure">
<div class="tc-chart" id="{uid}" role="img" aria-label="{e(self.description)}"></div>
<p><strong>Figure {e(self.number)}. {e(self.title)}</strong> {e(self.caption)}{sourcing}</p>
<p><small>Sources: {sources}. Chart and processing: Token Capital.</small></p>
</div>{bundle}
<script>(function () {{
  var el = document.getElementById("{uid}");
  var spec = {spec_json};
  function draw() {{
    window.vegaEmbed(el, spec, {{renderer: "svg", actions: false}})
      .then(function () {{ el.setAttribute("data-drawn", "true"); }})
      .catch(function (err) {{ el.setAttribute("data-drawn", "error"); el.textContent = "chart failed: " + err; }});
  }}
  if (typeof window.vegaEmbed === "function") {{ draw(); return; }}
  (window.tokenbookPending = window.tokenbookPending || []).push(draw);
  setTimeout(function () {{
    if (!el.getAttribute("data-drawn")) {{
      el.textContent = "The chart library is not loaded in this browser tab (it is sent with the first figure a " +
        "kernel shows): run tokenlib.book.figures.lab_reset() and re-run this cell, or restart the kernel and run all.";
    }}
  }}, 10000);
}})();</script>"""


_lab_bundle_sent = False
_lab_ids = __import__("itertools").count(1)


def page_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec a book page draws: ``spec`` without the chart title.

    The title is the figure's caption, set as page text that wraps on a phone; inside the chart a
    one-line title would force the chart wider than a phone. The downloads keep it. The widths stay
    the ones the chart was designed at; ``tokenbook.js`` narrows the views of a chart whose box is
    narrower (a phone), so its text is never scaled down.
    """
    return {k: v for k, v in spec.items() if k != "title"}


#: The box width (CSS px) the narrow layout of a page chart is laid out for: a 360 px phone's text column.
#: ``tokenbook.js`` draws the wide layout where it fits its box, else this one, then narrows its views to fit.
NARROW_BOX_PX = 320

_CHANNELS = ("x", "y", "x2", "y2", "color", "fill", "stroke", "size", "shape", "strokeDash", "opacity")


def _wrap_title(text: Any, max_chars: int) -> Any:
    """A title of more than ``max_chars`` as lines of at most about that many (Vega draws a list as lines)."""
    if not isinstance(text, str) or len(text) <= max_chars:
        return text
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(f"{line} {word}") > max_chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def narrow_spec(spec: dict[str, Any], avail: float = NARROW_BOX_PX) -> dict[str, Any]:
    """A narrow layout of a Vega-Lite spec, for a box narrower than the chart's design (a phone): facets and
    side-by-side views stacked, legends in one column, long axis and legend titles on several lines, long
    category labels split at commas and limited. Text keeps its size."""
    max_chars = max(16, int((avail - 24) // 6.8))
    label_limit = int(avail * 0.5)
    label_chars = label_limit // 7
    x_chars, y_chars = max(14, int(avail * 0.45 // 6.8)), 40
    taller_rows = False

    def walk(node: Any) -> None:
        nonlocal taller_rows
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        facet, enc = node.get("facet"), node.get("encoding")
        if isinstance(facet, dict) and facet.get("column") and not facet.get("row"):
            facet["row"] = facet.pop("column")
        if isinstance(enc, dict) and enc.get("column") and not enc.get("row"):
            enc["row"] = enc.pop("column")
        for f in (facet, enc):  # long facet headers on two or more lines
            row = f.get("row") if isinstance(f, dict) else None
            if isinstance(row, dict):
                row["header"] = dict(row.get("header") or {})
                row["header"].setdefault("labelExpr", "split(datum.label, ', ')")
        if "hconcat" in node:
            node["vconcat"] = node.pop("hconcat")
        if (node.get("facet") or node.get("concat")) and isinstance(node.get("columns"), (int, float)):
            node["columns"] = 1
        if isinstance(enc, dict):
            for ch in _CHANNELS:
                d = enc.get(ch)
                if not isinstance(d, dict):
                    continue
                # an x title is centred under the plot, which is narrow now: lines of about half the box
                chars = x_chars if ch in ("x", "x2") else y_chars if ch in ("y", "y2") else max_chars
                if isinstance(d.get("title"), str):
                    d["title"] = _wrap_title(d["title"], chars)
                legend = d.get("legend")
                if isinstance(legend, dict):
                    if legend.get("columns"):
                        legend["columns"] = 1
                    legend["labelLimit"] = min(legend.get("labelLimit") or 1e9, avail - 40)
                    if isinstance(legend.get("title"), str):
                        legend["title"] = _wrap_title(legend["title"], max_chars)
                if ch in ("x", "y") and d.get("type") in ("nominal", "ordinal") and ("axis" not in d or d["axis"] is not None):
                    d["axis"] = dict(d.get("axis") or {})  # long category labels: a line per comma-separated part
                    if "labelExpr" not in d["axis"]:
                        d["axis"]["labelExpr"] = (f"length(datum.label) > {label_chars} ? split(datum.label, ', ') "
                                                  ": datum.label")
                        taller_rows = taller_rows or ch == "y"
                axis = d.get("axis")
                if isinstance(axis, dict):
                    if isinstance(axis.get("title"), str):
                        axis["title"] = _wrap_title(axis["title"], chars)
                    axis["labelLimit"] = min(axis.get("labelLimit") or 1e9, label_limit)
        for key, value in node.items():
            if key not in ("data", "datasets"):
                walk(value)

    out: dict[str, Any] = json.loads(json.dumps(spec))
    walk(out)
    if taller_rows:  # rows whose labels now take two lines get the room for them
        for view in (out, out.get("spec")):
            if isinstance(view, dict) and isinstance(view.get("height"), (int, float)) and not isinstance(view["height"], bool):
                view["height"] = int(view["height"] * 1.6 + 0.5)
    cfg = out.setdefault("config", {})
    # one column per legend, and several legends stacked, not side by side
    cfg["legend"] = {**cfg.get("legend", {}), "columns": 1, "labelLimit": avail - 40,
                     "layout": {"bottom": {"anchor": "start", "direction": "vertical", "margin": 6}}}
    cfg["axis"] = {**cfg.get("axis", {}), "labelLimit": label_limit}
    cfg["header"] = {**cfg.get("header", {}), "labelLimit": avail - 20}
    return out


def to_vega(spec: dict[str, Any]) -> dict[str, Any]:
    """The Vega spec vl-convert compiles a Vega-Lite spec to (what Vega-Lite in the browser would make), laid out
    again on every run: ``tokenbook.js`` narrows a chart by its width signals, and a faceted or concatenated
    chart's box only follows its narrowed views when autosize resizes (else the fit measures a box that never
    shrinks and crushes the views to their minimum)."""
    vg = dict(vlc.vegalite_to_vega(spec, vl_version=vl_version()))
    size = vg.get("autosize")
    vg["autosize"] = {**(size if isinstance(size, dict) else {"type": size or "pad"}), "resize": True}
    return vg


def page_vega(spec: dict[str, Any]) -> dict[str, Any]:
    """What a book page embeds for a chart: its wide (designed) and narrow layouts compiled to Vega, with
    the data they share stored once under ``data`` (each layout's data entries name theirs in
    ``tc_values``).

    Compiling at build time lets the page load Vega alone, without the Vega-Lite compiler (about 100 KB
    of a phone's first load, compressed); the narrow layout is :func:`narrow_spec` at :data:`NARROW_BOX_PX`.
    """
    shared: dict[str, Any] = {}

    def split_data(vg: dict[str, Any]) -> dict[str, Any]:
        for entry in vg.get("data", []):
            if "values" in entry:
                values = entry.pop("values")
                key = f"d{len(shared)}"
                for k, v in shared.items():
                    if v == values:
                        key = k
                        break
                shared[key] = values
                entry["tc_values"] = key
        return vg

    base = page_spec(spec)
    return {"wide": split_data(to_vega(base)), "narrow": split_data(to_vega(narrow_spec(base))), "data": shared}


def lab_bundle_js() -> str:
    """The Vega bundle for JupyterLab: defines ``window.vegaEmbed`` and draws the figures waiting for it."""
    snippet = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
    body = str(vlc.javascript_bundle(snippet, vl_version=vl_version())).replace("</script", "<\\/script")
    return ("(function () {\n" + body + "\n})();\n"
            "(window.tokenbookPending || []).splice(0).forEach(function (draw) { draw(); });")


def lab_reset() -> None:
    """Send the Vega bundle again with the next figure (after reloading the JupyterLab tab)."""
    global _lab_bundle_sent
    _lab_bundle_sent = False


def sources_from(df: pd.DataFrame, limit: int = 12, root: Path | str | None = None) -> list[Source]:
    """Sources to credit under a figure, from the provenance columns of the rows it shows.

    One entry per distinct source URL, most-used first; ``limit`` keeps captions readable (the CSV
    download keeps the row-level sources). The provider (and the host, for a repost) comes from
    ``data/providers.csv`` (of the data folder ``root``, default the book's), never from the URL.
    """
    if not {"source_url", "source_title"} <= set(df.columns):
        raise ValueError("sources_from needs the provenance columns source_url and source_title")
    from tokenlib.data import load_primary, load_providers

    known = load_providers(root)
    counts = df.groupby(["source_url", "source_title"], sort=False).size().sort_values(ascending=False)
    pairs = [(str(k[0]), str(k[1])) for k in counts.head(limit).index]
    missing = [url for url, _ in pairs if url not in known]
    if missing:
        raise ValueError(
            f"no provider for {', '.join(missing)}: add a row (source_url, provider, via) to data/providers.csv"
        )
    primary = load_primary(root)
    return [Source(known[url][0], title, url, known[url][1], primary[url]) for url, title in pairs]


def _with_primary(sources: list[Source]) -> list[Source]:
    """Fill ``primary`` of sources that do not state it from ``data/providers.csv`` (the book's), where the URL has a
    row; a URL with no row stays ``None`` (not known: flagged like a secondary source)."""
    if all(s.primary is not None for s in sources):
        return sources
    from dataclasses import replace

    from tokenlib.data import load_primary

    try:
        known = load_primary()
    except FileNotFoundError:  # an installed tokenlib without the book's data: nothing to fill from
        return sources
    # an invalid providers.csv raises: it must not turn every figure's flag into "secondary only"
    return [replace(s, primary=known[s.url]) if s.primary is None and s.url in known else s for s in sources]


def fill_placeholders(text: str, version: str, date: str) -> str:
    """Fill the version and build-date placeholders of citations (``date`` is ISO ``YYYY-MM-DD``)."""
    try:
        day = dt.date.fromisoformat(date)
    except ValueError as exc:
        raise ValueError(f"build date {date!r} is not an ISO date YYYY-MM-DD") from exc
    filled = {
        VERSION_PLACEHOLDER: version,
        DATE_PLACEHOLDER: day.isoformat(),
        YEAR_PLACEHOLDER: f"{day.year:04d}",
        MONTH_PLACEHOLDER: str(day.month),
        DAY_PLACEHOLDER: str(day.day),
        BIBMONTH_PLACEHOLDER: _BIB_MONTHS[day.month - 1],
        RISDATE_PLACEHOLDER: f"{day:%Y/%m/%d}/",
    }
    for placeholder, value in filled.items():
        text = text.replace(placeholder, value)
    return text


def release_path(version: str | None = None) -> str:
    """The folder a release is published in beside the latest: ``v<version>`` (``v0.1.0``)."""
    return f"v{version if version is not None else _version()}"


def version_url(base_url: str | None = None, version: str | None = None) -> str:
    """The address of one release of the book: ``<baseurl>/v<version>``."""
    base = (base_url if base_url is not None else book_config().get("baseurl", "")).rstrip("/")
    return f"{base}/{release_path(version)}"


def _ris_lines(fields: list[tuple[str, str]]) -> str:
    lines = [f"{tag}  - {' '.join(value.split())}" for tag, value in fields]
    return "\n".join([*lines, "ER  - "]) + "\n"


def book_citation(version: str = VERSION_PLACEHOLDER, date: str = DATE_PLACEHOLDER) -> dict[str, str]:
    """The book's own citation as ``bibtex``, ``csl_json`` and ``ris`` text, for the version being read."""
    url = version_url() + "/"
    bib = (
        "@book{token_capital,\n"
        f"  author = {{{{{BOOK_AUTHOR}}}}},\n"
        f"  title = {{{{{_bibtex_escape(BOOK_TITLE)}}}}},\n"
        f"  publisher = {{{PUBLISHER}}},\n"
        f"  year = {{{YEAR_PLACEHOLDER}}},\n"
        f"  month = {BIBMONTH_PLACEHOLDER},\n"
        f"  version = {{{_bibtex_escape(version)}}},\n"
        f"  url = {{{url}}},\n"
        f"  urldate = {{{DATE_PLACEHOLDER}}},\n"
        f"  note = {{Licence: {LICENCE} (text, data, figures), {CODE_LICENCE} (code)}}\n"
        "}"
    )
    item = {
        "id": "token_capital", "type": "book", "title": BOOK_TITLE, "author": [{"literal": BOOK_AUTHOR}],
        "publisher": PUBLISHER, "version": version, "URL": url,
        "issued": {"date-parts": [["@Y", "@M", "@D"]]}, "accessed": {"date-parts": [["@Y", "@M", "@D"]]},
        "note": f"Licence: {LICENCE} (text, data, figures), {CODE_LICENCE} (code).",
    }
    csl = json.dumps([item], ensure_ascii=False, indent=1)
    csl = csl.replace('"@Y"', YEAR_PLACEHOLDER).replace('"@M"', MONTH_PLACEHOLDER).replace('"@D"', DAY_PLACEHOLDER)
    ris = _ris_lines([
        ("TY", "BOOK"), ("TI", BOOK_TITLE), ("AU", BOOK_AUTHOR), ("PB", PUBLISHER), ("ET", version),
        ("PY", YEAR_PLACEHOLDER), ("DA", RISDATE_PLACEHOLDER), ("Y2", RISDATE_PLACEHOLDER), ("UR", url),
        ("N1", f"Licence: {LICENCE} (text, data, figures), {CODE_LICENCE} (code)"),
    ])
    out = {"bibtex": bib, "csl_json": csl, "ris": ris}
    if date != DATE_PLACEHOLDER:
        out = {k: fill_placeholders(v, version, date) for k, v in out.items()}
    return out


def citation_html(key: str, bibtex: str, csl_json: str, ris: str) -> str:
    """The three machine-readable forms of a citation, each with a copy button (``tokenbook.js`` copies)."""
    e = safehtml.text
    blocks = []
    for label, cls, text in (("BibTeX", "tc-bibtex", bibtex), ("RIS (Zotero, EndNote, Mendeley)", "tc-ris", ris),
                             ("CSL-JSON", "tc-csl", csl_json)):
        block_id = f"{key}-{cls[3:]}"
        blocks.append(
            f'<div class="tc-cite-format"><p>{label} '
            f'<button type="button" class="tc-copy" data-copy="{block_id}">Copy</button></p>'
            f'<pre class="{cls}" id="{block_id}">{e(text)}</pre></div>'
        )
    return "\n".join(blocks)


def _bibtex_escape(text: str) -> str:
    return text.replace("\\", "").replace("{", "").replace("}", "").replace("%", "\\%").replace("&", "\\&")


def _html_table(df: pd.DataFrame) -> str:
    shown = df.head(MAX_TABLE_ROWS)
    table = re.sub(r">\s+<", "><", str(safehtml.table(shown, border=0, classes="tc-table", na_rep="",
                                                       float_format=lambda v: f"{v:,.4g}")))
    # (pandas indents its HTML: bytes on every page load, nothing shown)
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
    """Where figure bundles are written by default: ``_build/figures`` (the build's, never the repo's)."""
    path = repo_root() / "_build" / "figures"
    path.mkdir(parents=True, exist_ok=True)
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
    from tokenlib.book.toc import toc_docnames

    return toc_docnames()


def _relative_root(page: str) -> str:
    depth = page.count("/")
    return "../" * depth


_numbers: dict[str, str] = {}


def _number_for(name: str, page: str) -> str:
    if name in _numbers:
        return _numbers[name]
    chapter = NAME_PATTERN.match(name).group(1)  # type: ignore[union-attr]
    from tokenlib.book.toc import chapter_numbers

    shown = chapter_numbers().get(page)
    label = "0" if chapter == "intro" else str(shown) if shown is not None else chapter
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


def svg_size(svg: str) -> tuple[float, float]:
    """Width and height of an SVG from its root element."""
    match = re.search(r'<svg[^>]*? width="([\d.]+)" height="([\d.]+)"', svg)
    if not match:
        raise ValueError("not an SVG with width and height on its root element")
    return float(match.group(1)), float(match.group(2))


CREDIT_FONT_SIZE = 11


#: Phrases a credit line never breaks inside (a licence name split as "CC BY" / "4.0" reads as two things).
UNBREAKABLE = (LICENCE,)
_GLUE = "\u2060"  # joins the words of an unbreakable phrase while wrapping; never left in the output


def _wrap(text: str, width_px: float, font_size: float) -> list[str]:
    """Greedy word wrap by estimated text width (CJK glyphs one em, others about 0.58 em), never inside
    one of :data:`UNBREAKABLE`."""
    def px(t: str) -> float:
        return sum(font_size if ord(c) > 0x2E80 else 0.58 * font_size for c in t)

    for phrase in UNBREAKABLE:
        text = text.replace(phrase, phrase.replace(" ", _GLUE))
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and px(candidate) > width_px:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [line.replace(_GLUE, " ") for line in ([*lines, current] if current else lines)]


def with_credit_lines(svg: str, lines: list[str], font_size: float = CREDIT_FONT_SIZE) -> str:
    """The SVG with ``lines`` of text added below the chart (wrapped to its width; the canvas grows to fit)."""
    width, height = svg_size(svg)
    pad = 8.0
    wrapped = [w for line in lines for w in _wrap(line, width - 2 * pad, font_size)]
    line_height = font_size * 1.4
    extra = pad + line_height * len(wrapped)
    new_height = height + extra
    w, h, nh = f"{width:g}", f"{height:g}", f"{new_height:g}"
    svg = svg.replace(f'width="{w}" height="{h}" viewBox="0 0 {w} {h}"',
                      f'width="{w}" height="{nh}" viewBox="0 0 {w} {nh}"', 1)
    svg = svg.replace(f'<rect width="{w}" height="{h}" fill="white"/>', f'<rect width="{w}" height="{nh}" fill="white"/>', 1)
    texts = "".join(
        f'<text x="{pad:g}" y="{height + pad + line_height * (i + 0.8):.1f}">{safehtml.text(t)}</text>'
        for i, t in enumerate(wrapped)
    )
    font = safehtml.text(charts.FONT)
    credit = f'<g class="tc-credit" font-family="{font}" font-size="{font_size:g}" fill="#444">{texts}</g>'
    head, sep, tail = svg.rpartition("</svg>")
    if not sep:
        raise ValueError("not an SVG: no closing </svg>")
    return head + credit + sep + tail


def export_spec(fig: Figure) -> dict[str, Any]:
    """The spec the SVG and PNG downloads are drawn from: the chart, with its units under the title."""
    spec: dict[str, Any] = json.loads(json.dumps(fig.spec))
    if fig.units:
        title = spec.get("title", fig.title)
        title = dict(title) if isinstance(title, dict) else {"text": title}
        title["subtitle"] = fig.units
        spec["title"] = title
    return spec


def figure_svg(fig: Figure, version: str, credit: bool = True) -> str:
    """The SVG download: title, units, the chart, and the credit line with source, version and licence."""
    svg = render_svg(export_spec(fig))
    if not credit:
        return svg
    return with_credit_lines(svg, [fig.source_line(version), fig.permalink(version=version)])


def figure_png(fig: Figure, version: str, scale: float = PNG_SCALE, credit: bool = True) -> bytes:
    """The PNG download, rasterised from :func:`figure_svg` (same text, same credit line) at ``scale``."""
    _register_fonts()
    return bytes(vlc.svg_to_png(figure_svg(fig, version, credit), scale=scale))


def _csv_with_header(fig: Figure, version: str = VERSION_PLACEHOLDER) -> str:
    lines = [
        f"# {fig.title}",
        f"# Figure {fig.number} of {BOOK_TITLE}",
        *([f"# Units: {fig.units}"] if fig.units else []),
        "# Sources: " + "; ".join(s.text() for s in fig.sources),
        *([f"# Sourcing: {fig.sourcing()}"] if fig.sourcing() else []),
        f"# {fig.source_line(version)}",
        f"# Licence: {LICENCE} ({LICENCE_URL}); credit the providers above and Token Capital",
        f"# Cite as: {fig.citation_short()}",
        f"# Permalink: {fig.permalink(version=None if version == VERSION_PLACEHOLDER else version)}",
    ]
    return "\n".join(lines) + "\n" + fig.data.to_csv(index=False, lineterminator="\n")


#: vl-convert 1.9's own snippet imports bind ``vega`` to a default export Vega does not have (null), so the
#: page bundle imports Vega's namespace itself, by the vendored module URL (resolved offline, never fetched).
VEGA_MODULE = "https://cdn.jsdelivr.net/npm/vega@6.2.0/+esm.js"


def vega_bundle_js() -> str:
    """The Vega bundle of book pages and standalone figure pages (``window.vega``; charts arrive compiled,
    see :func:`page_vega`), wrapped so its top-level names stay out of the page's scope."""
    return _vega_bundle_js(vl_version())


@lru_cache(maxsize=2)
def _vega_bundle_js(vl: str) -> str:
    snippet = f'import * as vegaModule from "{VEGA_MODULE}"; window.vega = vegaModule;'
    body = vlc.javascript_bundle(snippet, vl_version=vl)
    header = (f"/* Vega, bundled by vl-convert {getattr(vlc, '__version__', 'unknown')}; the charts it draws are "
              f"compiled from Vega-Lite {vl} (Altair's) at build time */\n")
    return header + "(function () {\n" + body + "\n})();\n"


STATIC_DIR = Path(__file__).parent / "static"


def _favicon_href() -> str:
    """The book's favicon as a data URI, so the standalone page makes no request for it."""
    try:
        path = repo_root() / "_static" / "favicon.svg"
    except FileNotFoundError:  # an installed tokenlib, outside a checkout of the book
        return "data:,"
    svg = path.read_text(encoding="utf-8") if path.exists() else ""
    return "data:image/svg+xml," + quote(svg) if svg else "data:,"


def standalone_html(fig: Figure, version: str, date: str) -> str:
    """The standalone HTML download: the figure block (title, caption, sources, licence, downloads, citation)
    with Vega inlined and the favicon as a data URI, so it opens offline with no request to any host."""
    block = fig.html(link_prefix="../")
    css = (STATIC_DIR / "tokenbook.css").read_text(encoding="utf-8")
    loader = "\n".join((STATIC_DIR / f).read_text(encoding="utf-8") for f in ("tokenbook-state.js", "tokenbook.js", "tokenbook-site.js"))
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{safehtml.text(f"Figure {fig.number}: {fig.title}")} – Token Capital</title>
<meta name="description" content="{safehtml.text(fig.description)}">
<link rel="icon" href="{safehtml.text(_favicon_href())}">
<link rel="license" href="{LICENCE_URL}">
<style>
body {{ font-family: {charts.FONT}; margin: 8px 16px; color: #222; background: #fff; }}
{css}
</style>
<script>{vega_bundle_js()}</script>
</head>
<body class="tc-standalone">
{block}
<script>{loader}</script>
</body>
</html>
"""
    return fill_placeholders(page, version, date)


def publish(
    chart: alt.TopLevelMixin,
    *,
    name: str,
    title: str,
    caption: str,
    sources: list[Source] | list[dict[str, Any]],
    data: pd.DataFrame,
    description: str | None = None,
    units: str = "",
    write: bool = False,
) -> Figure:
    """Make ``chart`` a figure of the book: number it, title it and cite it.

    Parameters
    ----------
    name: stable id ``fig-<chapter>-<slug>``; the anchor, file stem and chart id.
    title: the finding, in one sentence (it becomes the chart's title too).
    caption: what is shown and how to read it; assumptions that matter.
    sources: original data providers first (provider, page title, URL); at least one.
    data: the (aggregated) table behind the chart, saved as the figure's CSV.
    description: text alternative for screen readers (defaults to title and caption).
    units: what the values are measured in, with the currency, when the axes do not say it
        (printed under the title of the SVG/PNG downloads and in the CSV header).
    write: also write the bundle files into :func:`figures_dir` now (the book build writes them from
        the executed outputs instead; see the module docstring).
    """
    page = page_for(name)
    if not sources:
        raise ValueError(f"figure {name!r} has no sources: every figure cites where its data come from")
    src = _with_primary([s if isinstance(s, Source) else Source(**s) for s in sources])
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
        units=units,
    )
    if write:
        _write_bundle(fig)
    return fig


def write_bundle(fig: Figure, out: Path) -> None:
    """Write ``fig``'s download bundle into ``out`` (the build calls this on each executed figure)."""
    _write_bundle(fig, out)


def _write_bundle(fig: Figure, out: Path | None = None) -> None:
    out = out if out is not None else figures_dir()
    out.mkdir(parents=True, exist_ok=True)
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
        "svg": figure_svg(fig, version).encode("utf-8"),
        "png": figure_png(fig, version),
        "csv": _csv_with_header(fig, version).encode("utf-8"),
        "vl.json": json.dumps(fig.spec, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"),
        "html": standalone_html(fig, version, today).encode("utf-8"),
    }
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
        "csl_json": fig.csl_json(version, today),
        "ris": fig.ris(version, today),
        "units": fig.units,
        "licence": LICENCE,
        "licence_url": LICENCE_URL,
        "permalink": fig.permalink(version=version),
        "embed": fill_placeholders(fig.embed_snippet(), version, today),
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
