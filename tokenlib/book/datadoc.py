"""HTML descriptions of the data tables for the book's data appendix, generated from the schema and data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tokenlib import data
from tokenlib.safehtml import markdown_text
from tokenlib.safehtml import text as esc
from tokenlib.safehtml import url as esc_url

_DATE_COLUMNS = {"prices": "effective_date", "fx": "month", "export_controls": "date", "usage": "date",
                 "deployments": None, "chips": None, "models": "release_date", "places": None, "claims": None,
                 "capability": "board_date"}


def _span(name: str, df: pd.DataFrame) -> str:
    col = _DATE_COLUMNS.get(name)
    if not col or col not in df or df[col].dropna().empty:
        return ""
    values = df[col].dropna()
    return f"{values.min()!s:.10} to {values.max()!s:.10}"


def _spec_root(root: Path | str | None) -> Path | None:
    return Path(root) if root is not None and (Path(root) / "schema.yaml").exists() else None


def table_overview(link_prefix: str = "", root: Path | str | None = None) -> str:
    """One row per table: rows, kinds of rows, distinct sources, span, and the CSV download link.

    ``root``: another data folder (default the book's ``data/``). Every text is escaped (:mod:`tokenlib.safehtml`).
    """
    rows = []
    for name in data.table_names(_spec_root(root)):
        df = data.load(name, root)
        kinds = df["kind"].value_counts().to_dict()
        kind_text = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
        rows.append(
            "<tr>"
            f'<td><a href="{esc_url(f"{link_prefix}data/{name}.csv")}" download><code>{esc(name)}.csv</code></a></td>'
            f"<td>{esc(data.table_spec(name, _spec_root(root)).description)}</td>"
            f"<td>{len(df)}</td><td>{esc(kind_text)}</td>"
            f"<td>{df['source_url'].nunique()}</td><td>{esc(_span(name, df))}</td>"
            "</tr>"
        )
    head = "<tr><th>File</th><th>What</th><th>Rows</th><th>Kinds</th><th>Sources</th><th>Span</th></tr>"
    return f'<table class="tc-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def table_heading(name: str, root: Path | str | None = None) -> str:
    """Markdown for a table's heading and description (schema text escaped: :func:`safehtml.markdown_text`)."""
    description = data.table_spec(name, _spec_root(root)).description
    return f"### `{name}.csv`\n\n{markdown_text(description)}. {markdown_text(coverage_notes(name, root))}"


def column_table(name: str, root: Path | str | None = None) -> str:
    """The columns of table ``name``: type, unit, whether required, allowed values, meaning (all escaped)."""
    spec = data.table_spec(name, _spec_root(root))
    rows = []
    for c in spec.columns:
        allowed = ", ".join(c.values[:20]) + (" …" if len(c.values) > 20 else "")
        rows.append(
            f"<tr><td><code>{esc(c.name)}</code></td><td>{esc(c.type)}</td><td>{esc(c.unit or '')}</td>"
            f"<td>{'yes' if c.required else ''}</td><td>{esc(allowed)}</td>"
            f"<td>{esc(c.description)}</td></tr>"
        )
    head = "<tr><th>Column</th><th>Type</th><th>Unit</th><th>Required</th><th>Allowed values</th><th>Meaning</th></tr>"
    return f'<table class="tc-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def coverage_notes(name: str, root: Path | str | None = None) -> str:
    """A sentence on what a table covers, computed from its rows."""
    df = data.load(name, root)
    if name == "prices":
        cn = df[df["provider_country"] == "CN"]["provider"].nunique()
        other = df[df["provider_country"] != "CN"]["provider"].nunique()
        return f"{len(df)} price points from {cn} Chinese and {other} other providers, {_span(name, df)}."
    if name == "chips":
        return f"{len(df)} chips, {int((df['country'] == 'CN').sum())} of them Chinese."
    if name == "places":
        return f"{df['place'].nunique()} places, {df['metric'].nunique()} kinds of fact."
    if name == "claims":
        counts = df["verdict"].value_counts().to_dict()
        return "Verdicts: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + "."
    span = _span(name, df)
    return f"{len(df)} rows" + (f", {span}." if span else ".")
