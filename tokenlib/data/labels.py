"""Reader-facing names of chips, providers and places, from ``data/labels.csv`` (not from chapter cells).

``names("place")`` -> ``{"ulanqab": "Ulanqab 乌兰察布", ...}`` (English, then Chinese where the table has it);
``short_names("chip")`` -> ``{"h100-sxm": "H100", ...}`` for chart marks. Adding a chip, provider or place
to the book adds a row there; an id without a row raises, naming the ids that have one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tokenlib.data import load
from tokenlib.errors import check_choice

__all__ = ["ENTITIES", "names", "short_names", "name"]

ENTITIES = ("chip", "provider", "place")


def _rows(entity: str, root: Path | str | None) -> pd.DataFrame:
    check_choice("entity", entity, ENTITIES)
    df = load("labels", root)
    return df[df["entity"] == entity]


def _text(v: object) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else str(v).strip()


def names(entity: str, root: Path | str | None = None) -> dict[str, str]:
    """id -> reader-facing name: ``name_en``, then ``name_zh`` after a space where given."""
    return {str(r.id): " ".join(x for x in (_text(r.name_en), _text(r.name_zh)) if x)
            for r in _rows(entity, root).itertuples() if _text(r.name_en) or _text(r.name_zh)}


def short_names(entity: str, root: Path | str | None = None) -> dict[str, str]:
    """id -> short label for chart marks (``short``, else ``name_en``)."""
    return {str(r.id): _text(r.short) or _text(r.name_en) for r in _rows(entity, root).itertuples()
            if _text(r.short) or _text(r.name_en)}


def name(entity: str, id_: str, root: Path | str | None = None) -> str:
    """The reader-facing name of one id (:func:`names`); an id without a label raises with the valid ids."""
    table = names(entity, root)
    return table[check_choice(f"{entity} with a label in data/labels.csv", id_, sorted(table))]
