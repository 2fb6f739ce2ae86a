"""tokenlib's layers point down only, and nothing imports in a circle (ARCHITECTURE.md draws them).

Every module's imports are read with :mod:`ast` (imports inside functions and under ``TYPE_CHECKING``
count too: a lazy import is still an arrow). A module's layer is the folder it sits in:

    0 base      tokenlib/errors.py, tokenlib/safehtml.py, tokenlib/arrays.py
    1 data      tokenlib/data/      (loading, schema, typed views of chips, models, places, FX)
    2 model     tokenlib/model/     (kernel, cost, calibration, fleet)
    3 analysis  tokenlib/analysis/  (what the chapters compute)
    4 book      tokenlib/book/      (charts, figures, tables and their HTML, the Sphinx extension)
    5 top       tokenlib/cli.py, tokenlib/__main__.py, tokenlib/__init__.py (the lazy facade)

A module may import its own layer and the layers below. The root package ``tokenlib`` is loaded before
any of its modules anyway, so ``from tokenlib import __version__`` is no arrow; a facade name
(``from tokenlib import load``) is, and counts as the top layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT

PKG = ROOT / "tokenlib"
LAYERS = {"base": 0, "data": 1, "model": 2, "analysis": 3, "book": 4, "top": 5}
SUBPACKAGE_LAYER = {"data": "data", "model": "model", "analysis": "analysis", "book": "book"}
BASE = {"tokenlib.errors", "tokenlib.safehtml", "tokenlib.arrays"}  # no tokenlib imports: errors, escaping, type aliases
ROOT_NAMES_NOT_ARROWS = {"__version__"}


def module_name(path: Path, pkg: Path) -> str:
    rel = path.relative_to(pkg.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(pkg: Path = PKG) -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(p, pkg): p for p in sorted(pkg.rglob("*.py"))}


def layer_of(name: str) -> str:
    """The layer of a tokenlib module (or package) name; ValueError for a module outside every layer."""
    parts = name.split(".")
    if name in BASE:
        return "base"
    if len(parts) >= 2 and parts[1] in SUBPACKAGE_LAYER:
        return SUBPACKAGE_LAYER[parts[1]]
    if name in {"tokenlib", "tokenlib.cli", "tokenlib.__main__"}:
        return "top"
    raise ValueError(f"{name} sits in no layer: put it in one of tokenlib/{{data,model,analysis,book}}/, "
                     f"or add it to BASE in tests/test_layers.py with a reason")


def imports(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported tokenlib module, line) for every import in the file, lazy ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "tokenlib" or a.name.startswith("tokenlib."):
                    yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            if not (src == "tokenlib" or src.startswith("tokenlib.")):
                continue
            for a in node.names:
                sub = f"{src}.{a.name}"
                if sub in known:
                    yield sub, node.lineno
                elif src == "tokenlib" and a.name in ROOT_NAMES_NOT_ARROWS:
                    continue
                else:
                    yield src, node.lineno


def graph(pkg: Path = PKG) -> dict[str, list[tuple[str, int]]]:
    mods = modules(pkg)
    known = set(mods)
    return {m: [(t, line) for t, line in imports(m, p, known) if t != m] for m, p in mods.items()}


def upward_imports(pkg: Path = PKG) -> list[str]:
    bad = []
    mods = modules(pkg)
    for m, edges in graph(pkg).items():
        for target, line in edges:
            if LAYERS[layer_of(target)] > LAYERS[layer_of(m)]:
                rel = mods[m].relative_to(pkg.parent)
                bad.append(f"{rel}:{line}: {m} ({layer_of(m)}) imports {target} ({layer_of(target)}), a higher layer")
    return bad


def cycles(pkg: Path = PKG) -> list[list[str]]:
    """Import cycles among modules (a package's ``__init__`` importing its own modules is no cycle unless
    one of them imports the package back)."""
    g = {m: sorted({t for t, _ in e}) for m, e in graph(pkg).items()}
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in g.get(m, []):
            if state.get(t) == 1:
                found.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    return found


def test_every_module_sits_in_a_layer() -> None:
    for m in modules():
        layer_of(m)


def test_imports_point_down_only() -> None:
    bad = upward_imports()
    assert not bad, "imports from a lower layer into a higher one:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    found = cycles()
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / "tokenlib"
    for rel, text in files.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    for d in ["", "data", "model", "analysis", "book"]:
        (pkg / d).mkdir(parents=True, exist_ok=True)
        (pkg / d / "__init__.py").touch()
    return pkg


@pytest.mark.parametrize("text", ["from tokenlib.book import figures\n",
                                  "def f():\n    from tokenlib.book.figures import publish\n",
                                  "from ..book import figures\n",
                                  "import tokenlib.book.figures\n"])
def test_an_upward_import_is_caught_and_named(tmp_path: Path, text: str) -> None:
    pkg = _fake_package(tmp_path, {"book/figures.py": "X = 1\n", "model/kernel.py": text})
    bad = upward_imports(pkg)
    assert len(bad) == 1
    assert "tokenlib/model/kernel.py" in bad[0] and "tokenlib.book" in bad[0] and "(model)" in bad[0]


def test_a_cycle_is_caught(tmp_path: Path) -> None:
    pkg = _fake_package(tmp_path, {"data/a.py": "from tokenlib.data import b\n",
                                   "data/b.py": "def f():\n    from tokenlib.data.a import x\n"})
    assert cycles(pkg) == [["tokenlib.data.a", "tokenlib.data.b", "tokenlib.data.a"]]


def test_version_from_the_root_is_no_arrow(tmp_path: Path) -> None:
    pkg = _fake_package(tmp_path, {"data/a.py": "from tokenlib import __version__\n"})
    assert upward_imports(pkg) == []


def test_old_module_paths_still_import_and_say_where_things_went() -> None:
    import importlib
    import subprocess
    import sys

    import tokenlib

    # in a fresh interpreter, so the warning is not swallowed by an earlier import in this session
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            "try:\n    import tokenlib.crown\nexcept DeprecationWarning as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "tokenlib.analysis.crown" in out
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crown = importlib.import_module("tokenlib.analysis.crown")
        old_controls = importlib.import_module("tokenlib.controls")
    from tokenlib.analysis import chip_costs, city_cost, city_race, subsidies, whatif
    from tokenlib.book import claims

    assert crown.monte_carlo is city_race.monte_carlo and crown.equation_table is city_cost.equation_table
    assert crown.vega_cost_expr is whatif.vega_cost_expr and crown.claims_html is claims.claims_html
    assert crown.voucher_terms is subsidies.voucher_terms and old_controls.cost_breakdown is chip_costs.cost_breakdown
    for old, new in tokenlib.MOVED.items():
        assert new in tokenlib.SPLIT or importlib.util.find_spec(new) is not None, (old, new)


#: A module longer than this says why in its docstring (issue 21: a newcomer should find each rule quickly)
LONG_MODULE_LINES = 400
LONG_REASON = "Why this module is long:"


def test_long_modules_say_why_in_their_docstring() -> None:
    unexplained = []
    for path in sorted(PKG.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        n = text.count("\n")
        if n > LONG_MODULE_LINES and LONG_REASON not in (ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{path.relative_to(ROOT)} ({n} lines)")
    assert not unexplained, (f"modules over {LONG_MODULE_LINES} lines whose docstring has no {LONG_REASON!r} "
                             f"paragraph (split them or say why they stay whole): {unexplained}")
