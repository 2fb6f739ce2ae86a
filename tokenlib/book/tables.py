"""Tables for readers: HTML with units in the headers and numbers at the precision that means something.

A chapter displays a table with :func:`show` instead of printing ``df.to_string()``. The reader gets an
HTML table (headers with units, numbers rounded to what the data can carry, text escaped, a wide table
scrolling inside its own box with its first column kept in view, see ``static/tokenbook.css``). The
plain-text form of the same object is ``df.to_string(index=False)`` of the table as given, so nbval,
which compares a cell's outputs, checks exactly what the printed table used to show.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tokenlib import safehtml

__all__ = ["Table", "show", "format_number"]


def format_number(value: Any, digits: int | None = None) -> str:
    """One number as a reader reads it: thousands separated; ``digits`` decimals, or by magnitude.

    By magnitude: no decimals from 100, one from 10, two from 1, and three significant figures below
    1 (``0.0687``). Missing values are an empty string; integers stay integers.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp):  # a date stays a date; a time only when there is one
        return value.strftime("%Y-%m-%d" if value == value.normalize() else "%Y-%m-%d %H:%M")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            if pd.isna(value):
                return ""
        except (TypeError, ValueError):
            pass
        if hasattr(value, "item"):  # numpy scalars
            return format_number(value.item(), digits)
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if digits is not None:
        return f"{value:,.{digits}f}".replace("-", "−")
    a = abs(value)
    if a == 0:
        text = "0"
    elif a >= 100:
        text = f"{value:,.0f}"
    elif a >= 10:
        text = f"{value:,.1f}"
    elif a >= 1:
        text = f"{value:,.2f}"
    else:
        text = f"{value:.3g}"
        if "e" in text:
            text = f"{value:.2e}"
    return text.replace("-", "−")


#: Tables of this many columns (inclusive) may become cards on a phone (:meth:`Table.as_cards`)
CARD_COLUMNS = (3, 6)
#: A text cell longer than this (characters) makes its table cards on a phone
CARD_TEXT_CHARS = 40


@dataclass
class Table:
    """A displayed table: ``text/html`` for the reader, ``text/plain`` (the plain table) for nbval."""

    data: pd.DataFrame
    headers: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    digits: Mapping[str, int] = field(default_factory=dict)
    caption: str | None = None
    index: bool = False

    def __post_init__(self) -> None:
        cols = [str(c) for c in self.frame().columns]
        for name, mapping in (("headers", self.headers), ("units", self.units), ("digits", self.digits)):
            unknown = sorted(set(mapping) - set(cols))
            if unknown:
                raise ValueError(f"tables.show {name}: no column {unknown}; the columns are {cols}")

    def frame(self) -> pd.DataFrame:
        return self.data.reset_index() if self.index else self.data

    def header(self, column: str) -> str:
        label = self.headers.get(column, column.replace("_", " "))
        unit = self.units.get(column)
        return f"{label} ({unit})" if unit else label

    def as_cards(self) -> bool:
        """True when a phone shows the rows as cards (each value under its header, ``static/tokenbook.css``):
        a table of :data:`CARD_COLUMNS` columns holding a text cell longer than :data:`CARD_TEXT_CHARS`. Such a
        cell makes its row many lines tall at 360 px while the other columns sit off screen; a wider table of
        numbers reads better scrolling in its box."""
        df = self.frame()
        if not CARD_COLUMNS[0] <= len(df.columns) <= CARD_COLUMNS[1]:
            return False
        return any(isinstance(v, str) and len(v) > CARD_TEXT_CHARS for v in df.to_numpy().ravel())

    def to_html(self) -> str:
        df = self.frame()
        e = safehtml.text
        headers = [self.header(str(c)) for c in df.columns]
        head = "".join(f'<th scope="col">{e(h)}</th>' for h in headers)
        cards = self.as_cards()
        rows = []
        for rec in df.itertuples(index=False, name=None):
            cells = []
            for c, v, h in zip(df.columns, rec, headers):
                numeric = isinstance(v, (int, float)) and not isinstance(v, bool) or hasattr(v, "dtype")
                cls = ' class="tc-num"' if numeric else ""
                label = f' data-label="{safehtml.attr(h)}"' if cards else ""
                cells.append(f"<td{cls}{label}>{e(format_number(v, self.digits.get(str(c))))}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{e(self.caption)}</caption>" if self.caption else ""
        kind = "dataframe tc-reader-table" + (" tc-cards" if cards else "")
        return (f'<table class="{kind}">{cap}<thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(rows)}</tbody></table>')

    def to_text(self) -> str:
        text = self.data.to_string(index=self.index)
        return f"{self.caption}\n{text}" if self.caption else text

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.to_html(), "text/plain": self.to_text()}


def show(
    data: pd.DataFrame,
    *,
    headers: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    digits: Mapping[str, int] | None = None,
    caption: str | None = None,
    index: bool = False,
) -> Table:
    """``data`` as a reader's table: ``display(tables.show(df, units={"cost": "CNY/Mtok"}))``.

    headers: column -> header text (default: the column name with spaces for underscores).
    units: column -> unit, shown in the header in brackets.
    digits: column -> decimals (default: by magnitude, see :func:`format_number`).
    caption: a line above the table (also the first line of the plain text).
    index: show the frame's index as the first column(s).
    A name in ``headers``, ``units`` or ``digits`` that is not a column raises ``ValueError``.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"tables.show needs a pandas DataFrame, not {type(data).__name__}")
    return Table(data, dict(headers or {}), dict(units or {}), dict(digits or {}), caption, index)
