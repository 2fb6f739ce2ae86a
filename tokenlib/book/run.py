"""Re-run one chapter with changed assumptions and print the findings that moved (``make run``).

::

    make run CHAPTER=03 UTILIZATION=0.5
    .venv/bin/python -m tokenlib.book.run CHAPTER=03 UTILIZATION=0.5 BATCH=32

``CHAPTER`` is the number (``03``) or the file stem (``03_city_rivalry``) of a chapter in ``_toc.yml``.
Every other ``NAME=value`` must be a name the chapter's ``parameters`` cell assigns; the value is a
Python literal (``0.5``, ``None``, ``"hohhot"``, ``[1, 2]``), else taken as a string. As papermill does,
the values go into a cell tagged ``injected-parameters`` right after the parameters cell; the chapter
runs top to bottom in a fresh kernel with ``TOKENBOOK_RENDER=html`` (as the book executes it), and its
findings (:mod:`tokenlib.book.findings`) are compared with ``findings.csv``. Nothing in the repository or in
the built book changes: the executed notebook is written to ``_build/runs/<chapter>.ipynb``.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenlib.data import repo_root
from tokenlib.errors import UnknownChoiceError

RUNS_DIR = Path("_build") / "runs"
#: Make variables that may appear on the command line and are not parameters.
NOT_PARAMETERS = {"CHAPTER", "PYTHON"}
_ASSIGN = re.compile(r"^([A-Z][A-Z0-9_]*)\s*(?::[^=]*)?=(?!=)", re.M)


def chapters(root: Path | None = None) -> dict[str, Path]:
    """The chapters ``_toc.yml`` lists, by file stem."""
    from tokenlib.book.toc import toc_notebooks

    return {p.stem: p for p in toc_notebooks(root) if p.parent.name == "chapters"}


def find_chapter(key: str, root: Path | None = None) -> Path:
    found = chapters(root)
    for stem, path in found.items():
        if key == stem or stem.split("_", 1)[0] == key.zfill(2):
            return path
    raise UnknownChoiceError("CHAPTER", key, sorted(found))


def parameter_names(source: str) -> list[str]:
    """Upper-case names a parameters cell assigns at top level."""
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name) and t.id.isupper():
                names.append(t.id)
    return names


def parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_args(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    chapter = None
    values: dict[str, Any] = {}
    for arg in argv:
        name, sep, value = arg.partition("=")
        if not sep:
            raise SystemExit(f"make run: expected NAME=value, got {arg!r}")
        if name == "CHAPTER":
            chapter = value
        elif name not in NOT_PARAMETERS:
            values[name] = parse_value(value)
    if not chapter:
        raise SystemExit("make run: say which chapter, e.g. make run CHAPTER=03 UTILIZATION=0.5")
    return chapter, values


def inject(nb: Any, values: dict[str, Any]) -> Any:
    """A copy of ``nb`` with a cell assigning ``values`` right after the ``parameters`` cell."""
    import nbformat

    out = copy.deepcopy(nb)
    index = next((i for i, c in enumerate(out.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise SystemExit("this chapter has no cell tagged 'parameters'")
    allowed = parameter_names(out.cells[index].source)
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise UnknownChoiceError("parameter", ", ".join(unknown), allowed)
    source = "# Parameters injected by `make run`\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})  # type: ignore[no-untyped-call]
    out.cells.insert(index + 1, cell)
    return out


def execute(path: Path, values: dict[str, Any], root: Path | None = None) -> tuple[Any, Path]:
    """Execute the chapter at ``path`` with ``values`` injected; return the notebook and where it went."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    base = root or repo_root()
    nb = inject(jupytext.read(path, fmt="md:myst"), values)
    os.environ["TOKENBOOK_RENDER"] = "html"
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    target = base / RUNS_DIR / path.relative_to(base).with_suffix(".ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)  # type: ignore[no-untyped-call]
    return nb, target


def run_findings(nb: Any, doc: str, known: dict[str, str]) -> list[Any]:
    from myst_nb.ext.glue import extract_glue_data_cell

    from tokenlib.book.findings import figure_payloads, findings_from_figures, findings_from_glue

    glue: dict[str, Any] = {}
    for cell in copy.deepcopy(nb).cells:
        if cell.cell_type == "code":
            for key, output in extract_glue_data_cell(cell):
                glue[key] = output
    return findings_from_glue(doc, glue, known) + findings_from_figures(doc, figure_payloads(nb))


def main(argv: Sequence[str] | None = None) -> int:
    from tokenlib.book import findings as fl

    base = repo_root()
    key, values = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        path = find_chapter(key, base)
        doc = path.relative_to(base).with_suffix("").as_posix()
        print(f"running {doc} with " + (", ".join(f"{k}={v!r}" for k, v in values.items()) or "its own parameters"))
        nb, target = execute(path, values, base)
    except UnknownChoiceError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    ledger = [f for f in fl.read() if f.chapter == doc]
    new = run_findings(nb, doc, fl.known_units(ledger))
    changes = fl.compare(ledger, new)
    print(f"executed notebook: {target.relative_to(base)}")
    if not changes:
        print(f"no finding of {doc} moved ({len(new)} findings, tolerance: tokenlib.book.findings)")
    else:
        print(f"{len(changes)} findings of {doc} differ from findings.csv (old -> new):")
        for c in changes:
            print("  " + c.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
