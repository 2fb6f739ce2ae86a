"""The one escaping rule for text that travels from the data (or the schema) into HTML.

The book takes contributions: a data pull request must not be able to put script on the site. So every
HTML string built from data goes through this module:

* :func:`text` escapes for element content *and* attribute values (``& < > " '``);
* :func:`url` lets through only ``http``/``https``/``mailto`` addresses and relative links (never
  ``javascript:`` or ``data:``), escaped for an attribute;
* :func:`link` builds ``<a href>`` from a URL and a label;
* :func:`table` renders a DataFrame with every cell escaped, except cells that are :class:`Markup`
  (HTML this module built, such as a :func:`link`);
* :func:`script_json` / :class:`ScriptJSONEncoder` serialise JSON for a ``<script>`` element, with
  ``<``, ``>``, ``&``, ``'`` and the JavaScript line separators written as ``\\uXXXX`` escapes, so
  ``</script>`` and ``<!--`` in a string cannot end or confuse the element.

``Markup`` marks a string as already-safe HTML; nothing else is trusted.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

SAFE_SCHEMES = ("http", "https", "mailto")
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027",
                   "\u2028": "\\u2028", "\u2029": "\\u2029"}
_SCRIPT_RE = re.compile("[<>&'\u2028\u2029]")


class Markup(str):
    """HTML built by this module (escaped already): :func:`table` passes it through unchanged."""

    __slots__ = ()


class UnsafeURLError(ValueError):
    """A URL whose scheme could run script or load data in the reader's browser."""


def text(value: Any) -> Markup:
    """``value`` as text that is safe in element content and in a quoted attribute value."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


attr = text
"""Escaping for attribute values is the same rule as for text."""


def url(value: Any) -> Markup:
    """An ``href``/``src`` value: http(s), mailto or a relative link, escaped; anything else raises."""
    raw = str(value)
    cleaned = "".join(ch for ch in raw if ch >= " " and ch != "\x7f").strip()  # as browsers strip them
    scheme = urlsplit(cleaned).scheme.lower() if ":" in cleaned.split("/", 1)[0] else ""
    if scheme and scheme not in SAFE_SCHEMES:
        raise UnsafeURLError(f"refusing URL {raw!r}: scheme {scheme!r} is not one of {', '.join(SAFE_SCHEMES)}")
    return Markup(html.escape(cleaned, quote=True))


def link(href: Any, label: Any, **attributes: Any) -> Markup:
    """``<a href="...">label</a>`` with the URL checked and everything escaped. ``class_`` gives ``class``."""
    extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{text(v)}"' for k, v in attributes.items()
                    if v is not None and v is not False)
    return Markup(f'<a href="{url(href)}"{extra}>{text(label)}</a>')


def script_json(obj: Any, **json_kwds: Any) -> Markup:
    """JSON text that is safe inside ``<script type="application/json">`` (and inline scripts)."""
    return Markup(escape_script_text(json.dumps(obj, **json_kwds)))


def escape_script_text(json_text: str) -> str:
    """Rewrite the characters that can end or confuse a script element as JSON ``\\u`` escapes.

    In JSON these characters can only occur inside strings, where the escape means the same character.
    """
    return _SCRIPT_RE.sub(lambda m: _SCRIPT_ESCAPES[m.group()], json_text)


class ScriptJSONEncoder(json.JSONEncoder):
    """A ``json.dumps(cls=...)`` encoder giving :func:`script_json`'s output (for Altair's ``json_kwds``)."""

    def encode(self, o: Any) -> str:
        return escape_script_text(super().encode(o))

    def iterencode(self, o: Any, _one_shot: bool = False) -> Any:
        for chunk in super().iterencode(o, _one_shot):
            yield escape_script_text(chunk)


_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def markdown_text(value: Any) -> str:
    """``value`` as literal text inside Markdown (MyST): every ASCII punctuation character is backslashed
    (CommonMark's escape), so neither raw HTML, an entity, nor a ``[link](javascript:...)`` can come out of it."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))


def _is_missing(v: Any) -> bool:
    try:
        return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))
    except TypeError:
        return False


def _cell(na_rep: str, fmt: Callable[[Any], str] | None) -> Callable[[Any], str]:
    def render(v: Any) -> str:
        if isinstance(v, Markup):
            return v
        if _is_missing(v):
            return text(na_rep)
        if fmt is not None and isinstance(v, float):
            return text(fmt(v))
        return text(v)

    return render


def _label(v: Any) -> Any:
    return tuple(text(x) for x in v) if isinstance(v, tuple) else text(v)


def table(df: pd.DataFrame, *, index: bool = False, na_rep: str = "", classes: str | Iterable[str] | None = None,
          float_format: Callable[[Any], str] | None = None, **to_html: Any) -> Markup:
    """``df`` as an HTML table with every header and cell escaped (cells that are :class:`Markup` excepted).

    Other keyword arguments go to :meth:`pandas.DataFrame.to_html` (``border``, ``justify``...);
    ``escape`` and ``formatters`` are this function's job and may not be passed.
    """
    for forbidden in ("escape", "formatters"):
        if forbidden in to_html:
            raise TypeError(f"safehtml.table escapes every cell itself; do not pass {forbidden}=")
    out = df.copy()
    out.columns = pd.Index([_label(c) for c in out.columns], tupleize_cols=True) if out.columns.nlevels > 1 \
        else pd.Index([text(c) for c in out.columns])
    out.index = pd.Index([_label(i) for i in out.index], tupleize_cols=True) if out.index.nlevels > 1 \
        else pd.Index([text(i) for i in out.index], name=None if out.index.name is None else text(out.index.name))
    render = _cell(na_rep, float_format)
    cells = pd.DataFrame({i: out.iloc[:, i] if out.iloc[:, i].dtype.kind in "biuf"  # numbers: pandas formats them
                          else out.iloc[:, i].astype(object).map(render) for i in range(out.shape[1])})
    cells.columns = out.columns
    cells.index = out.index
    options: dict[str, Any] = {"index": index, "escape": False, "classes": classes, "na_rep": str(text(na_rep)),
                               **to_html}
    if float_format is not None:
        options["float_format"] = float_format
    html_text: str = cells.to_html(**options)
    return Markup(html_text)
