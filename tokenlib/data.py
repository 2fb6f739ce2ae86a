"""Load and validate the book's sourced data tables.

Every table in ``data/`` is described in ``data/schema.yaml``. :func:`load` reads a CSV, checks it
against that schema with pandera (types, allowed values, bounds, required cells) and with the book's
provenance rules (every row has a source URL, title, verbatim quote and access date; estimates say
how they were made; each number is visible in its quote), then returns a typed DataFrame.

A bad file raises :class:`DataValidationError` listing every problem as ``file:line: column: value``.

Command line::

    python -m tokenlib.data check                      # every table in data/
    python -m tokenlib.data check --table prices --file path/to/prices.csv
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import yaml

from tokenlib.errors import UnknownChoiceError

PROVENANCE_COLUMNS = ("source_url", "source_title", "quote", "accessed", "kind", "method", "notes")
SOURCE_KEY_COLUMNS = ("item_id", "field", "value")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_NUMBER_IN_TEXT = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


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
        installed = Path(__file__).resolve().parent / "_data"
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
    unit: str | None = None
    number_in_quote: bool = False
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


@lru_cache(maxsize=8)
def _read_schema(path: str) -> dict[str, Any]:
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
        unit=spec.get("unit"),
        number_in_quote=bool(spec.get("number_in_quote", False)),
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


def _numbers_in(text: str) -> list[float]:
    cleaned = re.sub(r"(?<=\d)[,，'](?=\d{3}\b)", "", text)
    cleaned = re.sub(r"(?<=\d) (?=\d{3}\b)", "", cleaned)
    return [float(m) for m in _NUMBER_IN_TEXT.findall(cleaned)]


def number_shown(value: float, text: str) -> bool:
    """True if ``value`` appears in ``text`` at some power of 1000 (2.039 matches "2039000000000").

    Thousands separators are ignored; a relative tolerance of 1e-6 absorbs float noise. Percentages
    written as fractions are *not* matched: such rows must be labelled ``derived``.
    """
    if value == 0:
        return any(n == 0 for n in _numbers_in(text)) or "free" in text.lower() or "免费" in text
    for n in _numbers_in(text):
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


def _read_raw(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError(path, [f"{path}: cannot parse as UTF-8 CSV: {exc}"]) from exc


def _line(index: Any) -> int:
    return int(index) + 2  # header is line 1


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


def _duplicate_problems(path: Path, raw: pd.DataFrame, spec: TableSpec) -> list[str]:
    if not spec.key:
        return []
    dup = raw.duplicated(subset=list(spec.key), keep="first")
    return [
        f"{path}:{_line(i)}: {'/'.join(spec.key)}: duplicate key {tuple(raw.loc[i, list(spec.key)])}"
        for i in raw.index[dup]
    ]


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
    df = raw.copy()
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
    problems += _quote_problems(path, raw, spec, extra)
    if problems:
        raise DataValidationError(path, problems)
    return _coerce(raw, spec)


def _validated_sources(path: Path, root: Path | None) -> pd.DataFrame:
    spec = sources_spec(root)
    raw = _read_raw(path)
    problems = _format_check_names(_schema_problems(path, raw, spec))
    if not problems:
        problems += _provenance_problems(path, raw, spec)
        problems += _quote_problems(path, raw, spec, None)
    if problems:
        raise DataValidationError(path, problems)
    return raw


def load(name: str, root: Path | str | None = None) -> pd.DataFrame:
    """Load table ``name`` from ``root`` (default: the book's ``data/``), validated and typed.

    ``root`` may point at another data folder (tests use corrupted copies); it uses its own
    ``schema.yaml`` if it has one, else the book's. Results for the book's own folder are cached;
    treat the returned frame as read-only (it is a copy).
    """
    root_path = Path(root) if root is not None else default_data_dir()
    spec_root = root_path if (root_path / "schema.yaml").exists() else None
    table_spec(name, spec_root)  # raise UnknownChoiceError before touching the disk
    return _load_cached(name, str(root_path.resolve()), _mtime(root_path / f"{name}.csv")).copy()


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@lru_cache(maxsize=64)
def _load_cached(name: str, root: str, _mtime: float) -> pd.DataFrame:
    root_path = Path(root)
    spec_root = root_path if (root_path / "schema.yaml").exists() else None
    return validate_file(name, root_path / f"{name}.csv", spec_root)


def load_sources(name: str, root: Path | str | None = None) -> pd.DataFrame:
    """Per-number extra sources for ``name`` (chips, models): conflicting figures sit here too."""
    root_path = Path(root) if root is not None else default_data_dir()
    path = root_path / "sources" / f"{name}.csv"
    spec = sources_spec(root_path if (root_path / "schema.yaml").exists() else None)
    if not path.exists():
        return pd.DataFrame(columns=spec.column_names)
    return _coerce(_validated_sources(path, None), spec)


def check_all(root: Path | None = None) -> dict[str, int]:
    """Validate every table the schema lists; return row counts. Raises on the first bad table."""
    root_path = root if root is not None else default_data_dir()
    counts = {}
    for name in table_names(root_path if (root_path / "schema.yaml").exists() else None):
        counts[name] = len(load(name, root_path))
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokenlib.data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate data files against data/schema.yaml")
    check.add_argument("--table", help="table name (default: every table)")
    check.add_argument("--file", help="a CSV to validate as --table (default: data/<table>.csv)")
    args = parser.parse_args(argv)
    tables = [args.table] if args.table else table_names()
    failed = False
    for name in tables:
        path = Path(args.file) if args.file else default_data_dir() / f"{name}.csv"
        try:
            df = validate_file(name, path)
        except (DataValidationError, FileNotFoundError, UnknownChoiceError) as exc:
            failed = True
            print(f"FAIL {name}: {exc}")
        else:
            print(f"ok   {name}: {len(df)} rows ({path})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
