"""The claims table: the article's claims (``data/claims.csv``) as one readable HTML table, with its CSS.

The one renderer of the claims: the appendix lists them all, each chapter the ones it tests. Verdicts
and sections come from the data (``data/schema.yaml`` enums; the article's section titles are
:data:`CLAIM_SECTIONS`). All text from data is escaped (:mod:`tokenlib.safehtml`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tokenlib import safehtml as h
from tokenlib.book.toc import chapter_numbers
from tokenlib.data import table_spec
from tokenlib.errors import check_choice

__all__ = ["CLAIM_VERDICTS", "CLAIM_SECTIONS", "short_host", "claims_html"]


CLAIM_VERDICTS: tuple[str, ...] = table_spec("claims").column("verdict").values
"""The verdicts of ``data/claims.csv``, in the order the book lists them (the schema's enum, in its order)."""

CLAIM_SECTIONS = {"intro": "Introduction", "price_war": "The great token price war", "cities": "Beijing vs. Hangzhou",
                  "compute": "The compute bottleneck", "meaning": "What the trending headline means",
                  "bottom_line": "The bottom line"}
"""The article's sections (``section`` column of ``data/claims.csv``) as the article titles them."""

_VERDICT_COLOURS = {"supported": "#009E73", "partly": "#E69F00", "contradicted": "#D55E00",
                    "unverifiable": "#999999", "opinion": "#56B4E9"}  # Okabe-Ito; the word carries the meaning

_CLAIMS_CSS = (
    "table.tc-claims{width:100%;table-layout:fixed!important;border-collapse:collapse;font-size:.85rem;line-height:1.4;"
    "margin:.5rem 0 1rem}"  # the theme sets table-layout:auto on output tables
    ".tc-claims th,.tc-claims td{text-align:left;vertical-align:top;padding:.35rem .4rem;"
    "border-bottom:1px solid rgba(128,128,128,.35);overflow-wrap:break-word}"
    # the verdict column is sized for its longest label ("unverifiable", bold): in em, not a share of
    # the width, so the label never runs into the evidence column
    ".tc-claims th:nth-child(1){width:34%}.tc-claims th:nth-child(2){width:8.6em}"
    ".tc-claims th:nth-child(4){width:16%}"
    ".tc-claims .tc-claim-id{display:block;font-size:.75rem;opacity:.75}"
    ".tc-claims .tc-verdict{display:inline-block;padding:0 .3rem;border-left:.3rem solid;font-weight:600;"
    "white-space:nowrap}.tc-claims td{overflow-wrap:anywhere}"
    + "".join(f".tc-claims .tc-{v}{{border-color:{c}}}" for v, c in _VERDICT_COLOURS.items())
    # on a phone the header row leaves the eye, not the screen reader (as tokenbook.css's cards)
    + "@media (max-width:700px){.tc-claims thead{position:absolute;width:1px;height:1px;overflow:hidden;"
    "clip-path:inset(50%)}"
    "table.tc-claims,.tc-claims tbody,.tc-claims tr,.tc-claims td{display:block;width:100%}"
    ".tc-claims tr{padding:.5rem 0;border-bottom:2px solid rgba(128,128,128,.5)}"
    ".tc-claims td{border:0;padding:.15rem 0}"
    ".tc-claims td[data-label]::before{content:attr(data-label) \": \";font-weight:600}}"
)

_SECOND_LEVEL = {"com", "gov", "org", "net", "edu", "ac", "co"}


def short_host(url: str) -> str:
    """The registrable part of a URL's host, as a short link text.

    ``"https://english.shanghai.gov.cn/x"`` -> ``"shanghai.gov.cn"``, ``"https://www.bg3.co/a"`` ->
    ``"bg3.co"``; an empty or unparsable URL gives ``""``.
    """
    from urllib.parse import urlparse

    host = (urlparse(url).hostname or "") if url else ""
    labels = [x for x in host.split(".") if x]
    if len(labels) <= 2:
        return ".".join(labels)
    keep = 3 if labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2 else 2
    return ".".join(labels[-keep:])


def _chapter_label(docname: str) -> str:
    """``"chapters/04_crown"`` -> ``"Ch. 5"`` (its number in the toc); other pages keep their last path part."""
    number = chapter_numbers().get(docname)
    return f"Ch. {number}" if number is not None else docname.rsplit("/", 1)[-1].replace("_", " ")


def claims_html(claims: pd.DataFrame, *, sections: Mapping[str, str] | None = None,
                link_chapter: bool = True, root: str = "..") -> str:
    """The claims of ``data/claims.csv`` as one readable HTML table (desktop: columns; phone: cards).

    Columns: the claim (with its id and section, named by ``sections``, default :data:`CLAIM_SECTIONS`), the verdict, the one-line evidence, and short links
    (the source's host; ``Ch. N``, the chapter that tests it, when ``link_chapter``). ``root`` is the
    relative path from the page to the book's root. All text is HTML-escaped. A page-scoped style block
    comes with it, so the table wraps on a 390 px phone instead of scrolling sideways.
    """
    need = {"id", "section", "article_text", "verdict", "evidence", "source_url", "source_title", "chapter"}
    missing = sorted(need - set(claims.columns))
    if missing:
        raise ValueError(f"claims table lacks columns {missing}")
    sections = dict(CLAIM_SECTIONS if sections is None else sections)

    def text(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)

    body = []
    for r in claims.itertuples(index=False):
        verdict = text(r.verdict)
        check_choice("verdict", verdict, CLAIM_VERDICTS)
        sec = sections.get(text(r.section), text(r.section))
        claim = (f'<span class="tc-claim-id">{h.text(text(r.id))}'
                 f'{" · " + h.text(sec) if sec else ""}</span>{h.text(text(r.article_text))}')
        links = []
        url = text(r.source_url)
        if url:
            links.append(h.link(url, short_host(url) or "source", title=text(r.source_title)))
        ch = text(r.chapter).strip()
        if link_chapter and ch:
            links.append(h.link(f"{root}/{ch}.html", _chapter_label(ch)))
        body.append(
            "<tr>"
            f"<td>{claim}</td>"
            f'<td data-label="Verdict"><span class="tc-verdict tc-{h.text(verdict)}">{h.text(verdict)}</span></td>'
            f'<td data-label="Evidence">{h.text(text(r.evidence))}</td>'
            f'<td data-label="Links">{" · ".join(links)}</td>'
            "</tr>")
    head = "<thead><tr><th>Claim</th><th>Verdict</th><th>Evidence</th><th>Links</th></tr></thead>"
    return f'<style>{_CLAIMS_CSS}</style><table class="tc-claims">{head}<tbody>{"".join(body)}</tbody></table>'
