"""The findings ledger: every number the book glues into its text, with its unit, in ``findings.csv``.

A *finding* is one value a page shows a reader: a ``glue(name, value, display=False)`` key used in the
prose, or the title or caption of a figure (where chapters write numbers with f-strings). After a book
build, myst-nb leaves every page's glue values in ``_build/jupyter_execute/<page>.glue.json`` and the
executed notebook (with each figure's payload) beside it; :func:`collect` reads both. Chapters need no
new API: a plain ``glue(...)`` call becomes a finding.

``findings.csv`` (repo root, committed) has one row per finding: ``chapter,name,unit,value``, in page
then execution order. Floats are written to 12 significant digits, so a re-run on another CPU (another
numpy SIMD path, different 16th digit) rewrites the same file. A change that moves a finding commits the
ledger diff with it; :func:`history` turns the ledger's git history into the book's "What changed" page.

Units: a finding's unit comes from the ledger row already committed for that name (edit the ``unit``
column by hand; regeneration keeps it); for a new name, from :data:`SUFFIX_UNITS` (a rule by name
suffix); text values are ``text``. Anything else gets ``?`` and is flagged: ``make findings`` lists it
and a test fails until someone writes the unit in the ledger.

Tolerance: two values of a finding agree when their relative difference is at most
:data:`REL_TOL` for their unit (:data:`DEFAULT_REL_TOL` = 1e-9 for measured quantities; counts and years
exact). Text findings agree when their words are equal and every number in them agrees at 1e-9.

Command line::

    python -m tokenlib.book.findings write      # rewrite findings.csv from the last build (make findings)
    python -m tokenlib.book.findings check      # compare the last build with findings.csv; exit 1 if moved
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenlib.data import repo_root

LEDGER = "findings.csv"
FIELDS = ("chapter", "name", "unit", "value")
UNKNOWN_UNIT = "?"
TEXT = "text"
#: Relative tolerance for measured quantities: far above float noise (1e-16), far below any rounding
#: a reader sees (the prose shows at most 4 significant digits).
DEFAULT_REL_TOL = 1e-9
#: Per-unit relative tolerance; units not listed use DEFAULT_REL_TOL.
REL_TOL: dict[str, float] = {"count": 0.0, "year": 0.0}
SIGNIFICANT_DIGITS = 12
#: Unit rule by name suffix (first match wins); a unit written in the ledger overrides it.
SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_pct", "%"),
    ("_share", "%"),
    ("_ms", "ms"),
    ("_kms", "km/s"),
    ("_km", "km"),
    ("_s", "s"),
    ("_usd", "USD"),
    ("_cny", "CNY"),
    ("_m", "million CNY"),
    ("_days", "days"),
    ("_years", "years"),
    ("_year", "year"),
    ("_tpp", "TPP"),
    ("_tflops", "TFLOPS"),
    ("_ratio", "ratio"),
    ("_factor", "ratio"),
    ("_x", "ratio"),
    ("_p", "% of draws"),
)
#: Names that count things: ``<prefix>_n_<what>``, ``<prefix>_n``.
COUNT_NAME = re.compile(r"(^|_)n(_|$)")
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_NUMPY_REPR = re.compile(r"^np\.\w+\((.*)\)$", re.S)


@dataclass(frozen=True)
class Finding:
    chapter: str
    name: str
    unit: str
    value: str  # as written in the ledger: a number to 12 significant digits, or the text

    def is_number(self) -> bool:
        return self.unit != TEXT


@dataclass(frozen=True)
class Change:
    """A finding that moved, was added or vanished between two ledgers."""

    kind: str  # "moved" | "added" | "vanished"
    chapter: str
    name: str
    unit: str
    old: str | None
    new: str | None

    def line(self) -> str:
        unit = "" if self.unit in (TEXT, UNKNOWN_UNIT) else f" {self.unit}"
        if self.kind == "moved":
            return f"moved     {self.chapter} {self.name}: {self.old}{unit} -> {self.new}{unit}"
        if self.kind == "added":
            return f"added     {self.chapter} {self.name}: {self.new}{unit}"
        return f"vanished  {self.chapter} {self.name}: was {self.old}{unit}"


# -- values ---------------------------------------------------------------------------------------


def format_value(value: Any) -> tuple[str, bool]:
    """The ledger text of a glued value and whether it is a number."""
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value), True
        if value == int(value) and abs(value) < 1e15:
            return str(int(value)), True
        return f"{value:.{SIGNIFICANT_DIGITS}g}", True
    return str(value), False


def parse_plain(text: str) -> Any:
    """The Python value behind a ``text/plain`` repr (numbers and strings; anything else stays text)."""
    t = text.strip()
    m = _NUMPY_REPR.match(t)
    if m:
        t = m.group(1)
    try:
        return ast.literal_eval(t)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def unit_for(name: str, is_number: bool, known: dict[str, str] | None = None) -> str:
    """A finding's unit: the ledger's, else text, else the suffix rule, else ``?``."""
    if known and known.get(name, UNKNOWN_UNIT) != UNKNOWN_UNIT:
        return known[name]
    if not is_number:
        return TEXT
    if COUNT_NAME.search(name):
        return "count"
    for suffix, unit in SUFFIX_UNITS:
        if name.endswith(suffix):
            return unit
    return UNKNOWN_UNIT


def _numbers(text: str) -> tuple[list[float], list[str]]:
    parts = _NUMBER.split(text)
    nums = [float(n.replace(",", "")) for n in _NUMBER.findall(text) if n.replace(",", "").strip(".+-")]
    return nums, parts


def _close(a: float, b: float, rel: float) -> bool:
    if a == b:
        return True
    if math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= rel * max(abs(a), abs(b))


def agree(old: str, new: str, unit: str) -> bool:
    """Whether two ledger values of a finding agree within the tolerance of its unit."""
    if old == new:
        return True
    rel = REL_TOL.get(unit, DEFAULT_REL_TOL)
    if unit != TEXT:
        try:
            return _close(float(old), float(new), rel)
        except ValueError:
            pass
    (na, pa), (nb, pb) = _numbers(old), _numbers(new)
    return pa == pb and len(na) == len(nb) and all(_close(x, y, DEFAULT_REL_TOL) for x, y in zip(na, nb))


# -- collecting from a build --------------------------------------------------------------------


def executed_dir(root: Path | None = None) -> Path:
    from tokenlib.book.toc import EXECUTED_DIR

    return (root or repo_root()) / EXECUTED_DIR


def figure_payloads(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure payload (:data:`tokenlib.book.figures.PAYLOAD_KEY`) in an executed notebook, in order."""
    from tokenlib.book.figures import PAYLOAD_KEY

    out = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            meta = output.get("metadata", {}) or {}
            if PAYLOAD_KEY in meta:
                payload = meta[PAYLOAD_KEY]
                out.append(json.loads(payload) if isinstance(payload, str) else payload)
    return out


def findings_from_glue(chapter: str, glue: dict[str, Any], known: dict[str, str] | None = None) -> list[Finding]:
    """Findings from a myst-nb glue mapping (``name -> output with data/text/plain``)."""
    out = []
    for name, output in glue.items():
        data = output.get("data", {}) if isinstance(output, dict) else {}
        plain = data.get("text/plain")
        if plain is None:
            continue  # a glued chart or table, not a number
        plain = "".join(plain) if isinstance(plain, list) else str(plain)
        text, is_number = format_value(parse_plain(plain))
        out.append(Finding(chapter, name, unit_for(name, is_number, known), text))
    return out


def findings_from_figures(chapter: str, payloads: Iterable[dict[str, Any]]) -> list[Finding]:
    out = []
    for p in payloads:
        out.append(Finding(chapter, f"{p['name']}:title", TEXT, str(p["title"])))
        out.append(Finding(chapter, f"{p['name']}:caption", TEXT, str(p["caption"])))
    return out


def collect(root: Path | None = None, known: dict[str, str] | None = None) -> list[Finding]:
    """Every finding of the last book build, page by page in ``_toc.yml`` order."""
    from tokenlib.book.toc import toc_docnames

    base = root or repo_root()
    exe = executed_dir(base)
    if not exe.is_dir():
        raise FileNotFoundError(f"no executed notebooks in {exe}: run `make book` first")
    found: list[Finding] = []
    for doc in toc_docnames(base):
        glue_file = exe / f"{doc}.glue.json"
        if glue_file.exists():
            found += findings_from_glue(doc, json.loads(glue_file.read_text(encoding="utf-8")), known)
        nb_file = exe / f"{doc}.ipynb"
        if nb_file.exists():
            found += findings_from_figures(doc, figure_payloads(json.loads(nb_file.read_text(encoding="utf-8"))))
    return found


# -- the ledger file ------------------------------------------------------------------------------


def ledger_path(root: Path | None = None) -> Path:
    return (root or repo_root()) / LEDGER


def dumps(findings: Iterable[Finding]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FIELDS)
    for f in findings:
        w.writerow([f.chapter, f.name, f.unit, f.value])
    return buf.getvalue()


def loads(text: str) -> list[Finding]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and set(FIELDS) - set(rows[0]):
        raise ValueError(f"ledger columns must be {', '.join(FIELDS)}; got {', '.join(rows[0])}")
    return [Finding(r["chapter"], r["name"], r["unit"], r["value"]) for r in rows]


def read(path: Path | None = None) -> list[Finding]:
    p = path or ledger_path()
    return loads(p.read_text(encoding="utf-8")) if p.exists() else []


def known_units(findings: Iterable[Finding]) -> dict[str, str]:
    return {f.name: f.unit for f in findings if f.unit != UNKNOWN_UNIT}


def compare(old: Sequence[Finding], new: Sequence[Finding]) -> list[Change]:
    """Findings that moved (beyond their unit's tolerance), were added, or vanished."""
    before = {f.name: f for f in old}
    after = {f.name: f for f in new}
    changes = []
    for f in new:
        o = before.get(f.name)
        if o is None:
            changes.append(Change("added", f.chapter, f.name, f.unit, None, f.value))
        elif not agree(o.value, f.value, o.unit if o.unit != UNKNOWN_UNIT else f.unit):
            changes.append(Change("moved", f.chapter, f.name, o.unit, o.value, f.value))
    for f in old:
        if f.name not in after:
            changes.append(Change("vanished", f.chapter, f.name, f.unit, f.value, None))
    return changes


def unknown_units(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.unit == UNKNOWN_UNIT]


# -- history ("What changed") -------------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    commit: str
    date: str
    subject: str
    changes: list[Change]


def history(root: Path | None = None, limit: int = 50) -> list[Revision]:
    """The ledger's git history, newest first: for each commit that changed it, what moved.

    Outside a git checkout (a tarball of the book) the list is empty.
    """
    base = root or repo_root()
    try:
        log = subprocess.run(
            ["git", "log", f"-n{limit}", "--format=%H%x09%cs%x09%s", "--", LEDGER],
            cwd=base, capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    revisions = []
    for line in log.splitlines():
        commit, date, subject = (line.split("\t", 2) + ["", ""])[:3]
        new = loads(_show(base, f"{commit}:{LEDGER}"))
        old = loads(_show(base, f"{commit}^:{LEDGER}"))
        revisions.append(Revision(commit, date, subject, compare(old, new)))
    return revisions


def _show(base: Path, spec: str) -> str:
    try:
        return subprocess.run(["git", "show", spec], cwd=base, capture_output=True, text=True,
                              timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


# -- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokenlib.book.findings", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("write", help="rewrite findings.csv from the last build and print what moved")
    sub.add_parser("check", help="compare the last build with findings.csv; exit 1 when a finding moved")
    args = parser.parse_args(argv)
    path = ledger_path()
    old = read(path)
    new = collect(known=known_units(old))
    changes = compare(old, new)
    for c in changes:
        print(c.line())
    if args.command == "write":
        path.write_text(dumps(new), encoding="utf-8")
        print(f"{path.name}: {len(new)} findings, {len(changes)} changed")
        missing = unknown_units(new)
        if missing:
            print(f"{len(missing)} findings have no unit ('{UNKNOWN_UNIT}'): write it in the unit column of "
                  f"{path.name}: " + ", ".join(f.name for f in missing))
        return 0
    if changes:
        print(f"{len(changes)} findings differ from {path.name}: if intended, run `make findings` and commit it")
        return 1
    print(f"{len(new)} findings agree with {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
