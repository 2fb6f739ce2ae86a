"""Facts about the book itself: which pages and notebooks ``_toc.yml`` lists.

Command line (used by the Makefile)::

    python -m tokenlib.book notebooks --ipynb       # .ipynb chapters listed in _toc.yml
    python -m tokenlib.book notebooks --for-nbval   # the same, plus MyST notebooks converted for nbval
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tokenlib.data import repo_root

NBVAL_DIR = Path("_build") / "nbval"


def toc_docnames(root: Path | None = None) -> list[str]:
    """Every page ``_toc.yml`` lists, as Sphinx docnames (root first, no file suffix)."""
    base = root or repo_root()
    toc = yaml.safe_load((base / "_toc.yml").read_text(encoding="utf-8"))
    names: list[str] = [str(toc["root"])]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                names.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [re.sub(r"\.(md|ipynb)$", "", n) for n in names]


def toc_files(root: Path | None = None) -> list[Path]:
    """Every source file ``_toc.yml`` lists (root first), resolved to an existing .md or .ipynb."""
    base = root or repo_root()
    files = []
    for name in toc_docnames(base):
        stem = base / name
        candidates = [stem.with_suffix(".ipynb"), stem.with_suffix(".md")]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise FileNotFoundError(f"_toc.yml lists {name!r} but no .ipynb or .md file exists for it")
        files.append(found)
    return files


def is_myst_notebook(path: Path) -> bool:
    """A Markdown page with a kernelspec in its front matter is executed like a notebook."""
    if path.suffix != ".md":
        return False
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return False
    front = text.split("---", 2)[1]
    return "kernelspec" in (yaml.safe_load(front) or {})


def toc_notebooks(root: Path | None = None) -> list[Path]:
    """The executable pages of the book: .ipynb files and MyST Markdown notebooks in the toc."""
    return [p for p in toc_files(root) if p.suffix == ".ipynb" or is_myst_notebook(p)]


def nbval_paths(root: Path | None = None) -> list[Path]:
    """Paths to hand to nbval: .ipynb as they are; MyST notebooks converted (jupytext) under _build/nbval/."""
    import jupytext

    base = root or repo_root()
    out = []
    for path in toc_notebooks(base):
        if path.suffix == ".ipynb":
            out.append(path.relative_to(base))
            continue
        target = base / NBVAL_DIR / path.relative_to(base).with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(jupytext.read(path, fmt="md:myst"), target)
        out.append(target.relative_to(base))
    return out


def tidy_notebook(path: Path) -> None:
    """Drop per-cell execution timestamps so re-running an unchanged chapter changes no stored bytes."""
    import nbformat

    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokenlib.book")
    sub = parser.add_subparsers(dest="command", required=True)
    nb = sub.add_parser("notebooks", help="list the notebooks _toc.yml lists")
    group = nb.add_mutually_exclusive_group(required=True)
    group.add_argument("--ipynb", action="store_true", help=".ipynb files only")
    group.add_argument("--for-nbval", action="store_true", help="paths for nbval (MyST notebooks converted)")
    tidy = sub.add_parser("tidy", help="drop execution timestamps from notebooks")
    tidy.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "tidy":
        for path in args.paths:
            tidy_notebook(path)
        return 0
    base = repo_root()
    if args.ipynb:
        paths = [p.relative_to(base) for p in toc_notebooks(base) if p.suffix == ".ipynb"]
    else:
        paths = nbval_paths(base)
    print(" ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
