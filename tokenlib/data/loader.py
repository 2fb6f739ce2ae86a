"""Load and validate the book's sourced data tables.

Every table in ``data/`` is described in ``data/schema.yaml``. :func:`load` reads a CSV, checks it
against that schema with pandera (types, allowed values, bounds, required cells) and with the book's
provenance rules (every row has a source URL, title, verbatim quote and access date; estimates say
how they were made; each number is visible in its quote), then returns a typed DataFrame.

A bad file raises :class:`DataValidationError` listing every problem as ``file:line: column: value``.

Command line (:mod:`tokenlib.data.check`)::

    python -m tokenlib.data check                      # every table in data/
    python -m tokenlib.data check --table prices --file path/to/prices.csv

Why this module is long: it is the one place the provenance rules live (schema model,
reading, pandera types, quote-shows-number, keys, bounds, references, the providers table), and
each check reports every problem of a file at once; splitting the checks from the loader would leave
two modules that only work together. The typed views of the data are in the other modules of
:mod:`tokenlib.data`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import yaml

from tokenlib.errors import UnknownChoiceError

__all__ = [
    "PROVENANCE_COLUMNS",
    "SOURCE_KEY_COLUMNS",
    "repo_root",
    "DATA_ENV",
    "default_data_dir",
    "Column",
    "TableSpec",
    "DataValidationError",
    "schema_path",
    "data_stamp",
    "table_names",
    "load_primary",
    "table_spec",
    "sources_spec",
    "number_shown",
    "validate_file",
    "load",
    "load_sources",
    "PROVIDERS_FILE",
    "providers_spec",
    "is_host_name",
    "used_source_urls",
    "load_providers",
    "check_all",
]

PROVENANCE_COLUMNS = ("source_url", "source_title", "quote", "accessed", "kind", "method", "notes")
SOURCE_KEY_COLUMNS = ("item_id", "field", "value")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
# A number stands on its own: not inside an identifier (letters on both sides: a22b, x8b), not part
# of a dotted version (0.6.1); dates are read as dates first (see _numbers_in). Table text that lost
# its cell breaks ("Flash0.2 RMB1 RMB") still counts.
_NUMBER_IN_TEXT = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?!\d|\.\d)")
_DATE_IN_TEXT = re.compile(
    r"(?<![\d.])(\d{4})(?:[-/.](\d{1,2})[-/.](\d{1,2})|-(\d{2})(?![\d-])|年(\d{1,2})月(?:(\d{1,2})日)?)(?![\d.])"
)


def repo_root() -> Path:
    """The book's root folder (the one holding ``_config.yml``), found from this file's location."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent, *here.parents):
        if (candidate / "data" / "schema.yaml").exists():
            return candidate
    raise FileNotFoundError("cannot find the book root (a folder with data/schema.yaml) above tokenlib")


DATA_ENV = "TOKENLIB_DATA"


def default_data_dir() -> Path:
    """Where the tables are read from, in this order.

    1. The folder named by the environment variable ``TOKENLIB_DATA``, if set (it must hold
       ``schema.yaml``).
    2. ``data/`` at the book root, when tokenlib runs from a checkout of the book.
    3. The copy of ``data/`` installed with the package (``tokenlib/_data``), for ``pip install``.
    """
    named = os.environ.get(DATA_ENV)
    if named:
        path = Path(named).expanduser()
        if not (path / "schema.yaml").exists():
            raise FileNotFoundError(f"{DATA_ENV}={named!r} has no schema.yaml: point it at a copy of the book's data/ folder")
        return path
    try:
        return repo_root() / "data"
    except FileNotFoundError:
        installed = Path(__file__).resolve().parents[1] / "_data"
        if (installed / "schema.yaml").exists():
            return installed
        raise FileNotFoundError(
            "no data found: run from a checkout of the book, install the tokenlib wheel (it ships data/), "
            f"or set {DATA_ENV} to a data/ folder"
        ) from None


@dataclass(frozen=True)
class Column:
    """One column of a table, as the schema file describes it."""

    name: str
    type: str
    required: bool = False
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    max_column: str | None = None
    range_if: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    references: str | None = None
    unit: str | None = None
    number_in_quote: bool = False
    text_in_quote: bool = False
    text_in_quote_unless: str | None = None
    description: str = ""
    required_if: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class TableSpec:
    """A table's schema: ordered columns, unique key and special rules."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    sources_table: bool = False
    provenance_exempt_if: dict[str, Any] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise UnknownChoiceError(f"column of {self.name}", name, self.column_names)


class DataValidationError(ValueError):
    """A data file broke its schema. ``problems`` holds one ``file:line: column: message`` string each."""

    def __init__(self, path: Path | str, problems: Sequence[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"{self.path}: {len(self.problems)} problem(s)\n  {shown}{more}")


def schema_path(root: Path | None = None) -> Path:
    """The schema file: ``<root>/schema.yaml`` if present, else the book's ``data/schema.yaml``."""
    if root is not None and (Path(root) / "schema.yaml").exists():
        return Path(root) / "schema.yaml"
    return default_data_dir() / "schema.yaml"


def _file_stamp(path: Path) -> tuple[int, int]:
    """(mtime in ns, size) of a file, (0, -1) if absent: a cache key that changes when the file does."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return (0, -1)
    return (st.st_mtime_ns, st.st_size)


def data_stamp(root: Path | str | None = None) -> tuple[tuple[str, int, int], ...]:
    """A key that changes whenever any file of a data folder changes (its CSVs, ``sources/``, schema).

    Every cache built from the data (tables here, chip and model arrays in :mod:`tokenlib.data.specs`) is keyed
    on it, so an edited file is seen by the next call in the same process.
    """
    root_path = Path(root) if root is not None else default_data_dir()
    files = sorted([*root_path.glob("*.csv"), *root_path.glob("sources/*.csv"), schema_path(root_path)])
    return tuple((str(f), *_file_stamp(f)) for f in files)


def _read_schema(path: str) -> dict[str, Any]:
    return _read_schema_cached(path, _file_stamp(Path(path)))


@lru_cache(maxsize=8)
def _read_schema_cached(path: str, _stamp: tuple[int, int]) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


def _column_from(name: str, spec: dict[str, Any]) -> Column:
    return Column(
        name=name,
        type=str(spec["type"]),
        required=bool(spec.get("required", False)),
        values=tuple(str(v) for v in spec.get("values", ())),
        min=spec.get("min"),
        max=spec.get("max"),
        max_column=spec.get("max_column"),
        range_if={str(k): {str(v): (float(r[0]), float(r[1])) for v, r in vs.items()}
                  for k, vs in spec.get("range_if", {}).items()},
        references=spec.get("references"),
        unit=spec.get("unit"),
        number_in_quote=bool(spec.get("number_in_quote", False)),
        text_in_quote=bool(spec.get("text_in_quote", False)),
        text_in_quote_unless=spec.get("text_in_quote_unless"),
        description=str(spec.get("description", "")),
        required_if={str(k): tuple(str(v) for v in vs) for k, vs in spec.get("required_if", {}).items()},
    )


def table_names(root: Path | None = None) -> list[str]:
    """Names of the tables the schema describes."""
    return list(_read_schema(str(schema_path(root)))["tables"])


def table_spec(name: str, root: Path | None = None) -> TableSpec:
    """The schema of table ``name`` (provenance columns included)."""
    schema = _read_schema(str(schema_path(root)))
    tables = schema["tables"]
    if name not in tables:
        raise UnknownChoiceError("table", name, tables)
    raw = tables[name]
    columns = [_column_from(n, s) for n, s in raw["columns"].items()]
    columns += [_column_from(n, s) for n, s in schema["provenance"].items()]
    return TableSpec(
        name=name,
        description=str(raw.get("description", "")),
        columns=tuple(columns),
        key=tuple(raw.get("key", ())),
        sources_table=bool(raw.get("sources_table", False)),
        provenance_exempt_if=dict(raw.get("provenance_exempt_if", {})),
    )


def sources_spec(root: Path | None = None) -> TableSpec:
    """Schema of the per-number source tables ``data/sources/<table>.csv``."""
    schema = _read_schema(str(schema_path(root)))
    columns = [
        Column("item_id", "str", required=True),
        Column("field", "str", required=True),
        Column("value", "float", required=True, number_in_quote=True),
    ]
    columns += [_column_from(n, s) for n, s in schema["provenance"].items()]
    return TableSpec(name="sources", description="per-number sources", columns=tuple(columns), key=())


# ---------------------------------------------------------------------------------------------
# Cell-level checks (strings in, booleans out), used as pandera element-wise checks.


def _is_float(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


def _is_int(s: str) -> bool:
    return re.fullmatch(r"-?\d+", s) is not None


def _is_date(s: str) -> bool:
    if not _DATE.match(s):
        return False
    try:
        pd.Timestamp(s)
    except ValueError:
        return False
    return True


def _is_month(s: str) -> bool:
    return bool(_MONTH.match(s)) and 1 <= int(s[5:7]) <= 12


_TYPE_CHECKS = {
    "str": lambda s: True,
    "float": _is_float,
    "int": _is_int,
    "date": _is_date,
    "month": _is_month,
    "url": lambda s: _URL.match(s) is not None,
    "enum": lambda s: True,
    "bool": lambda s: s in ("true", "false"),
}


def _dates_and_rest(text: str) -> tuple[list[float], str]:
    """Years of the dates in ``text`` (2024-05-23, 2024/5/23, 2024-05, 2024年5月) and the text without them.

    A date's month and day are not numbers the quote shows; its year is (launch years are quoted so).
    """
    years = [float(m.group(1)) for m in _DATE_IN_TEXT.finditer(text)]
    return years, _DATE_IN_TEXT.sub(" ", text)


def _numbers_in(text: str) -> list[float]:
    years, rest = _dates_and_rest(text)
    cleaned = re.sub(r"(?<=\d)[,，'](?=\d{3}\b)", "", rest)
    cleaned = re.sub(r"(?<=\d) (?=\d{3}\b)", "", cleaned)
    def inside_identifier(m: re.Match[str]) -> bool:
        before = cleaned[m.start() - 1] if m.start() > 0 else ""
        after = cleaned[m.end()] if m.end() < len(cleaned) else ""
        return before.isascii() and before.isalpha() and after.isascii() and after.isalpha()

    return years + [float(m.group()) for m in _NUMBER_IN_TEXT.finditer(cleaned) if not inside_identifier(m)]


def number_shown(value: float, text: str) -> bool:
    """True if ``value`` appears in ``text`` at some power of 1000 (2.039 matches "2039000000000").

    Thousands separators are ignored; a relative tolerance of 1e-6 absorbs float noise. Percentages
    written as fractions are *not* matched: such rows must be labelled ``derived``.
    """
    if value == 0:
        return any(n == 0 for n in _numbers_in(text)) or "free" in text.lower() or "免费" in text
    years, rest = _dates_and_rest(text)
    if any(math.isclose(y, value, rel_tol=1e-9) for y in years):  # a year matches only as itself
        return True
    for n in _numbers_in(rest):
        for power in range(-5, 6):
            if math.isclose(n, value * 1000.0**power, rel_tol=1e-6):
                return True
    return False


def _pandera_schema(spec: TableSpec) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    for col in spec.columns:
        checks = [
            pa.Check(
                lambda s, c=col: s.eq("") | s.map(_TYPE_CHECKS[c.type]),
                element_wise=False,
                error=f"not a valid {col.type}",
                name=f"type:{col.type}",
            )
        ]
        if col.values:
            checks.append(
                pa.Check(
                    lambda s, c=col: s.eq("") | s.isin(c.values),
                    error=f"not one of the allowed values: {', '.join(col.values)}",
                    name="allowed_values",
                )
            )
        if col.min is not None:
            checks.append(
                pa.Check(
                    lambda s, c=col: s.map(
                        lambda v: v == "" or not _is_float(v) or float(v) >= float(c.min)
                    ),
                    error=f"below the minimum {col.min}",
                    name="minimum",
                )
            )
        # provenance presence is checked row by row in _provenance_problems (some tables exempt rows)
        if col.required and col.name not in PROVENANCE_COLUMNS:
            checks.append(pa.Check(lambda s: s.str.strip().ne(""), error="required cell is empty", name="required"))
        columns[col.name] = pa.Column(str, checks=checks, nullable=False)
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name=spec.name)


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 text of a data file (a byte-order mark is dropped); a bad byte is named by line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        good = data[start:exc.start].decode("utf-8", errors="replace")
        line = good.count("\n") + 1
        col = len(good) - (good.rfind("\n") + 1) + 1
        raise DataValidationError(path, [
            f"{path}:{line}:{col}: byte 0x{data[exc.start]:02x} is not UTF-8 ({exc.reason}); save the file as UTF-8"
        ]) from None


def _read_raw(path: Path) -> pd.DataFrame:
    """Read a data CSV as strings, refusing what pandas would silently repair.

    Refused, naming file and line: an empty file, a header with no rows, a row with fewer or more cells
    than the header, a blank line, a bad byte, a malformed quote. BOM and CRLF line ends are fine. The
    frame's index is the physical line of each row minus 2, so ``_line(index)`` is the row's first line.
    """
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    text = _decode(path, path.read_bytes())
    if not text.strip():
        raise DataValidationError(path, [f"{path}:1: file is empty (expected a header and at least one row)"])
    problems: list[str] = []
    records: list[list[str]] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    blanks: list[int] = []
    start = 1
    try:
        for rec in reader:
            if rec:
                records.append(rec)
                lines.append(start)
            else:
                blanks.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataValidationError(path, [f"{path}:{reader.line_num}: cannot parse as CSV: {exc}"]) from None
    problems += [f"{path}:{b}: blank line inside the table" for b in blanks if b < lines[-1]]
    header, rows = records[0], records[1:]
    if not rows:
        problems.append(f"{path}:2: no data rows (the file has only its header)")
    for rec, line in zip(rows, lines[1:], strict=True):
        if len(rec) != len(header):
            what = "fewer" if len(rec) < len(header) else "more"
            problems.append(f"{path}:{line}: row has {len(rec)} cells, {what} than the header's {len(header)} "
                            "(a missing or extra comma, or an unquoted comma in a cell)")
    if problems:
        raise DataValidationError(path, problems)
    return pd.DataFrame(rows, columns=header, index=[ln - 2 for ln in lines[1:]], dtype=str)


def _line(index: Any) -> int:
    return int(index) + 2  # header is line 1; _read_raw sets index = physical line - 2


def _provenance_problems(path: Path, raw: pd.DataFrame, spec: TableSpec) -> list[str]:
    problems: list[str] = []
    exempt_col = spec.provenance_exempt_if.get("column")
    exempt_values = set(spec.provenance_exempt_if.get("values", ()))
    for idx, row in raw.iterrows():
        exempt = exempt_col is not None and row.get(exempt_col, "") in exempt_values
        if not exempt:
            for name in ("source_url", "source_title", "quote", "accessed", "kind"):
                if not str(row[name]).strip():
                    problems.append(f"{path}:{_line(idx)}: {name}: missing (every row needs its source)")
        if row["kind"] in ("estimate", "derived") and not str(row["method"]).strip():
            problems.append(f"{path}:{_line(idx)}: method: missing for a {row['kind']} row (say how it was obtained)")
    return problems


def _conditional_problems(path: Path, raw: pd.DataFrame, spec: TableSpec) -> list[str]:
    """Cells required only on some rows (schema ``required_if``)."""
    problems: list[str] = []
    for col in spec.columns:
        for other, values in col.required_if.items():
            need = raw[other].isin(values) & raw[col.name].str.strip().eq("")
            problems += [f"{path}:{_line(i)}: {col.name}: required cell is empty when {other} is {raw.loc[i, other]}"
                         for i in raw.index[need]]
    return problems


def _quote_problems(
    path: Path, raw: pd.DataFrame, spec: TableSpec, extra_sources: pd.DataFrame | None
) -> list[str]:
    problems: list[str] = []
    checked = [c for c in spec.columns if c.number_in_quote]
    for idx, row in raw.iterrows():
        if row["kind"] != "reported":
            continue
        for col in checked:
            cell = row[col.name]
            if cell == "" or not _is_float(cell):
                continue
            value = float(cell)
            if number_shown(value, row["quote"]):
                continue
            if extra_sources is not None and spec.sources_table:
                match = extra_sources[
                    (extra_sources["item_id"] == row["id"])
                    & (extra_sources["field"] == col.name)
                    & (extra_sources["value"].map(lambda v: _is_float(v) and math.isclose(float(v), value, rel_tol=1e-6)))
                ]
                if len(match):
                    continue
            where = f" or in data/sources/{spec.name}.csv" if spec.sources_table else ""
            problems.append(
                f"{path}:{_line(idx)}: {col.name}: value {cell} is not shown in the row's quote{where}"
            )
    return problems


def name_parts(text: str) -> list[str]:
    """The names a label cell writes: ``"ByteDance (Doubao)"`` -> ``["ByteDance", "Doubao"]`` (company, brand)."""
    return [p.strip() for p in re.split(r"[()]", text) if p.strip()]


def _text_quote_problems(path: Path, raw: pd.DataFrame, spec: TableSpec) -> list[str]:
    """Schema ``text_in_quote``: each name a cell writes appears verbatim in the quote of a sourced row."""
    problems: list[str] = []
    checked = [c for c in spec.columns if c.text_in_quote]
    if not checked:  # most tables have no such column: do not walk their rows
        return problems
    exempt_col = spec.provenance_exempt_if.get("column")
    exempt_values = set(spec.provenance_exempt_if.get("values", ()))
    for idx, row in raw.iterrows():
        if exempt_col is not None and row.get(exempt_col, "") in exempt_values:
            continue
        quote = " ".join(str(row["quote"]).split())
        for col in checked:
            if col.text_in_quote_unless and str(row[col.text_in_quote_unless]).strip():
                continue
            missing = [p for p in name_parts(str(row[col.name])) if " ".join(p.split()) not in quote]
            if missing:
                problems.append(f"{path}:{_line(idx)}: {col.name}: {missing} not written in the row's quote")
    return problems


def _normal_key(value: str) -> str:
    return " ".join(value.split()).casefold()


def _duplicate_problems(path: Path, raw: pd.DataFrame, spec: TableSpec) -> list[str]:
    """Keys must be unique after folding case and whitespace (``H800`` and ``h800 `` are one id),
    and key cells may not carry leading or trailing spaces."""
    if not spec.key:
        return []
    problems = []
    for col in spec.key:
        padded = raw[col].ne(raw[col].str.strip())
        problems += [f"{path}:{_line(i)}: {col}: key cell {raw.loc[i, col]!r} has leading or trailing spaces"
                     for i in raw.index[padded]]
    folded = raw[list(spec.key)].map(_normal_key)
    first: dict[tuple[str, ...], Any] = {}
    for i, key in zip(raw.index, folded.itertuples(index=False, name=None), strict=True):
        if key in first:
            problems.append(f"{path}:{_line(i)}: {'/'.join(spec.key)}: duplicate key "
                            f"{tuple(raw.loc[i, list(spec.key)])} (same as line {_line(first[key])} once case "
                            "and spaces are ignored)")
        else:
            first[key] = i
    return problems


def _today() -> dt.date:
    return dt.date.today()


def _range_problems(path: Path, raw: pd.DataFrame, spec: TableSpec) -> list[str]:
    """Upper bounds (``max``, ``max_column``, ``range_if``) and no ``accessed`` date after today."""
    problems: list[str] = []
    num = {c.name: pd.to_numeric(raw[c.name].where(raw[c.name].map(_is_float), None), errors="coerce")
           for c in spec.columns if c.type in ("float", "int")}
    for col in spec.columns:
        if col.name not in num:
            continue
        v = num[col.name]
        if col.max is not None:
            problems += [f"{path}:{_line(i)}: {col.name}: value {raw.loc[i, col.name]} is above the maximum {col.max:g}"
                         for i in raw.index[v > float(col.max)]]
        if col.max_column is not None:
            other = num[col.max_column]
            problems += [f"{path}:{_line(i)}: {col.name}: value {raw.loc[i, col.name]} exceeds {col.max_column} "
                         f"{raw.loc[i, col.max_column]} on the same row" for i in raw.index[v > other]]
        for other_col, ranges in col.range_if.items():
            for when, (lo, hi) in ranges.items():
                out = raw[other_col].eq(when) & ((v < lo) | (v > hi))
                problems += [f"{path}:{_line(i)}: {col.name}: value {raw.loc[i, col.name]} is outside [{lo:g}, {hi:g}] "
                             f"for {other_col} {when}" for i in raw.index[out]]
    if "accessed" in raw.columns:
        today = _today().isoformat()
        late = raw["accessed"].map(lambda d: _is_date(d) and d > today)
        problems += [f"{path}:{_line(i)}: accessed: date {raw.loc[i, 'accessed']} is in the future (today is {today})"
                     for i in raw.index[late]]
    return problems


def _reference_problems(path: Path, raw: pd.DataFrame, spec: TableSpec, root: Path | None) -> list[str]:
    """Cells that name a row of another table (schema ``references: table.column``) must name one."""
    problems: list[str] = []
    for col in spec.columns:
        if not col.references:
            continue
        table, _, column = col.references.partition(".")
        other_path = path.parent / f"{table}.csv"
        if not other_path.exists():
            other_path = default_data_dir() / f"{table}.csv"
        valid = set(_read_raw(other_path)[column or "id"])
        for i in raw.index[~raw[col.name].isin(valid) & raw[col.name].ne("")]:
            hint = UnknownChoiceError(f"{table} id", raw.loc[i, col.name], valid).suggestion
            problems.append(f"{path}:{_line(i)}: {col.name}: unknown id {raw.loc[i, col.name]!r}, not in "
                            f"{other_path.name}{f' (did you mean {hint!r}?)' if hint else ''}")
    return problems


def _schema_problems(path: Path, raw: pd.DataFrame, spec: TableSpec) -> list[str]:
    expected = spec.column_names
    found = list(raw.columns)
    if found != expected:
        missing = [c for c in expected if c not in found]
        unknown = [c for c in found if c not in expected]
        detail = []
        if missing:
            detail.append(f"missing columns {missing}")
        if unknown:
            detail.append(f"unknown columns {unknown}")
        if not detail:
            detail.append("columns out of order")
        return [f"{path}:1: header: {'; '.join(detail)}; expected {expected}"]
    try:
        _pandera_schema(spec).validate(raw, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        out = []
        for _, case in cases.iterrows():
            index = case.get("index")
            line = _line(index) if index is not None and not pd.isna(index) else 1
            check = str(case.get("check"))
            out.append(f"{path}:{line}: {case.get('column')}: value {case.get('failure_case')!r} {check}")
        return out
    return []


def _coerce(raw: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    df = raw.reset_index(drop=True)
    for col in spec.columns:
        s = df[col.name]
        if col.type == "float":
            df[col.name] = pd.to_numeric(s.replace("", None), errors="raise").astype("float64")
        elif col.type == "int":
            df[col.name] = pd.to_numeric(s.replace("", None), errors="raise").astype("Int64")
        elif col.type == "date":
            df[col.name] = pd.to_datetime(s.replace("", None), format="%Y-%m-%d")
        elif col.type == "month":
            df[col.name] = pd.PeriodIndex(s.replace("", None), freq="M")
        elif col.type == "bool":
            df[col.name] = s.map({"true": True, "false": False, "": None})
        else:
            df[col.name] = s.replace("", None)
    return df


def _format_check_names(problems: Iterable[str]) -> list[str]:
    """Turn pandera check names into the human messages registered on the checks."""
    messages = {
        "required": "is empty but required",
        "allowed_values": "is not an allowed value",
        "minimum": "is below the column's minimum",
    }
    out = []
    for p in problems:
        for key, msg in messages.items():
            if p.endswith(" " + key):
                p = p[: -len(key)] + msg
        p = re.sub(r" type:(\w+)$", r" is not a valid \1", p)
        out.append(p)
    return out


def validate_file(name: str, path: Path, root: Path | None = None) -> pd.DataFrame:
    """Validate ``path`` as table ``name`` and return the typed DataFrame, or raise."""
    spec = table_spec(name, root)
    raw = _read_raw(path)
    problems = _schema_problems(path, raw, spec)
    if problems:
        raise DataValidationError(path, _format_check_names(problems))
    extra = None
    if spec.sources_table:
        extra_path = path.parent / "sources" / f"{name}.csv"
        if extra_path.exists():
            extra = _validated_sources(extra_path, root)
            unknown_items = sorted(set(extra["item_id"]) - set(raw["id"]))
            if unknown_items:
                problems.append(f"{extra_path}: item_id: unknown ids {unknown_items}; valid: {sorted(raw['id'])}")
    problems += _provenance_problems(path, raw, spec)
    problems += _conditional_problems(path, raw, spec)
    problems += _duplicate_problems(path, raw, spec)
    problems += _range_problems(path, raw, spec)
    problems += _reference_problems(path, raw, spec, root)
    problems += _quote_problems(path, raw, spec, extra)
    problems += _text_quote_problems(path, raw, spec)
    if problems:
        raise DataValidationError(path, problems)
    return _coerce(raw, spec)


def _validated_sources(path: Path, root: Path | None) -> pd.DataFrame:
    spec = sources_spec(root)
    raw = _read_raw(path)
    problems = _format_check_names(_schema_problems(path, raw, spec))
    if not problems:
        problems += _provenance_problems(path, raw, spec)
        problems += _range_problems(path, raw, spec)
        problems += _quote_problems(path, raw, spec, None)
    if problems:
        raise DataValidationError(path, problems)
    return raw


def load(name: str, root: Path | str | None = None) -> pd.DataFrame:
    """Load table ``name`` from ``root`` (default: the book's ``data/``), validated and typed.

    ``root`` may point at another data folder (tests use corrupted copies); it uses its own
    ``schema.yaml`` if it has one, else the book's. Results are cached until any file of the folder
    (or its schema) changes (:func:`data_stamp`); the returned frame is a copy.
    """
    root_path = Path(root) if root is not None else default_data_dir()
    spec_root = root_path if (root_path / "schema.yaml").exists() else None
    table_spec(name, spec_root)  # raise UnknownChoiceError before touching the disk
    return _load_cached(name, str(root_path.resolve()), data_stamp(root_path)).copy()


@lru_cache(maxsize=64)
def _load_cached(name: str, root: str, _stamp: tuple[tuple[str, int, int], ...]) -> pd.DataFrame:
    root_path = Path(root)
    spec_root = root_path if (root_path / "schema.yaml").exists() else None
    return validate_file(name, root_path / f"{name}.csv", spec_root)


def load_sources(name: str, root: Path | str | None = None) -> pd.DataFrame:
    """Per-number extra sources for ``name`` (chips, models): conflicting figures sit here too."""
    root_path = Path(root) if root is not None else default_data_dir()
    path = root_path / "sources" / f"{name}.csv"
    spec_root = root_path if (root_path / "schema.yaml").exists() else None
    spec = sources_spec(spec_root)
    if not path.exists():
        return pd.DataFrame(columns=spec.column_names)
    return _coerce(_validated_sources(path, spec_root), spec)


PROVIDERS_FILE = "providers.csv"
_HOST_NAME = re.compile(r"^(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)+$", re.IGNORECASE)


def providers_spec(root: Path | None = None) -> TableSpec:
    """Schema of ``data/providers.csv`` (the ``providers`` block of the schema file): who published each source."""
    schema = _read_schema(str(schema_path(root)))
    columns = tuple(_column_from(n, s) for n, s in schema["providers"].items())
    return TableSpec(name="providers", description="original provider of each source_url", columns=columns,
                     key=("source_url",))


def is_host_name(text: str) -> bool:
    """True when ``text`` is a bare host name ("henan.baitongwang.com", "163.com"), which is never a provider."""
    return _HOST_NAME.match(text.strip()) is not None


def organisation(provider: str) -> str:
    """A provider's organisation: its name without the detail after the first comma outside brackets
    ("DeepSeek, pricing page" -> "DeepSeek"; "llm-prices-cn price tracker (szp2005, llmabacus)" stays whole).
    Figure credits name sources by it; the providers check holds it to a name, not a host."""
    depth = 0
    for i, ch in enumerate(provider):
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and provider.startswith(", ", i):
            return provider[:i]
    return provider


def used_source_urls(root: Path | str | None = None) -> set[str]:
    """Every ``source_url`` in the data tables and their per-number source tables."""
    root_path = Path(root) if root is not None else default_data_dir()
    spec_root = root_path if (root_path / "schema.yaml").exists() else None
    urls: set[str] = set()
    for path in [*(root_path / f"{n}.csv" for n in table_names(spec_root)), *sorted((root_path / "sources").glob("*.csv"))]:
        if path.exists():
            urls |= {u for u in _read_raw(path).get("source_url", pd.Series(dtype=str)) if u}
    return urls


def load_providers(root: Path | str | None = None) -> dict[str, tuple[str, str]]:
    """``source_url -> (provider, via)`` from ``data/providers.csv``, validated.

    Raises :class:`DataValidationError` when the file breaks its schema, repeats a URL, names a bare host
    as a provider, or misses a ``source_url`` that a data table uses (the message names the URL to add).
    """
    root_path = Path(root) if root is not None else default_data_dir()
    path = root_path / PROVIDERS_FILE
    spec = providers_spec(root_path if (root_path / "schema.yaml").exists() else None)
    raw = _read_raw(path)
    problems = _format_check_names(_schema_problems(path, raw, spec))
    if problems:
        raise DataValidationError(path, problems)
    problems += _duplicate_problems(path, raw, spec)
    for idx, row in raw.iterrows():
        if is_host_name(row["provider"]) or is_host_name(organisation(str(row["provider"]))):
            problems.append(
                f"{path}:{_line(idx)}: provider: value {row['provider']!r} is a host name, not a provider: name the "
                "agency, vendor, paper or tracker, or write 'unknown provider' and put the host in via"
            )
        if "primary" in raw.columns and row["primary"] == "yes" and str(row["via"]).strip():
            problems.append(
                f"{path}:{_line(idx)}: primary: value 'yes' with via {row['via']!r}: a page read through a repost, "
                "mirror or tracker is never the primary source; write primary=no, or cite the publisher's own page"
            )
    missing = sorted(used_source_urls(root_path) - set(raw["source_url"]))
    problems += [f"{path}: source_url: no row for {u} (add its provider and, for a repost, via)" for u in missing]
    if problems:
        raise DataValidationError(path, problems)
    return {str(r.source_url): (str(r.provider), str(r.via)) for r in raw.itertuples(index=False)}


def load_primary(root: Path | str | None = None) -> dict[str, bool]:
    """``source_url -> primary`` from ``data/providers.csv`` (validated as :func:`load_providers` does).

    True when the page read is the original publisher's own (vendor page or notice, agency or grid document,
    the paper, the official repository); False for news, trackers, wikis and reposts (schema ``providers``).
    """
    root_path = Path(root) if root is not None else default_data_dir()
    load_providers(root_path)
    raw = _read_raw(root_path / PROVIDERS_FILE)
    if "primary" not in raw.columns:
        raise DataValidationError(root_path / PROVIDERS_FILE, ["primary: column missing (yes/no for every source_url)"])
    return {str(u): p == "yes" for u, p in zip(raw["source_url"], raw["primary"])}


def check_all(root: Path | None = None) -> dict[str, int]:
    """Validate every table the schema lists; return row counts. Raises on the first bad table."""
    root_path = root if root is not None else default_data_dir()
    counts = {}
    for name in table_names(root_path if (root_path / "schema.yaml").exists() else None):
        counts[name] = len(load(name, root_path))
    if (root_path / PROVIDERS_FILE).exists():
        counts["providers"] = len(load_providers(root_path))
    return counts
