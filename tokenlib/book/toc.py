"""Facts about the book itself: which pages and notebooks ``_toc.yml`` lists.

Command line (used by the Makefile)::

    python -m tokenlib.book notebooks --for-nbval   # the toc's notebooks, as .ipynb files nbval can run
    python -m tokenlib.book fingerprint             # hash of everything a chapter reads (execution cache key)
    python -m tokenlib.book site --built _build/html --site site   # add this build to a versioned site

The published site keeps every release at ``v<version>/`` and the latest release also at its root, with
``versions.json`` at the root listing them (the footer's version switcher reads it). The publish
workflow checks out the site's previous state, runs ``site`` and deploys the result.

Chapters are MyST Markdown notebooks with no stored outputs. The book build executes them and keeps
each executed copy under ``_build/jupyter_execute/``; nbval re-runs that copy, so the outputs it
compares (cells marked ``# NBVAL_CHECK_OUTPUT``) are the ones the book just published, made on this
machine.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tokenlib.data import repo_root

NBVAL_DIR = Path("_build") / "nbval"
EXECUTED_DIR = Path("_build") / "jupyter_execute"


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


def chapter_numbers(root: Path | None = None) -> dict[str, int]:
    """Docname -> the number the book shows for it: its position among the pages of the toc's numbered parts.

    Figures and the claims table number chapters by this, not by a file name's prefix, so a chapter
    inserted into the toc keeps its file (and its figures' stable names) and still reads as the right number.
    """
    base = root or repo_root()
    toc = yaml.safe_load((base / "_toc.yml").read_text(encoding="utf-8"))
    numbered = [str(c["file"]) for part in toc.get("parts", []) if part.get("numbered")
                for c in part.get("chapters", []) if "file" in c]
    return {re.sub(r"\.(md|ipynb)$", "", name): i for i, name in enumerate(numbered, start=1)}


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
    """Paths to hand to nbval, one .ipynb per toc notebook, under ``_build/nbval/``.

    A page the book executed is taken from ``_build/jupyter_execute/`` with its outputs (the reference
    nbval compares against); a page not yet built is converted from its MyST text with no outputs.
    """
    import jupytext
    import nbformat

    base = root or repo_root()
    out = []
    for path in toc_notebooks(base):
        rel = path.relative_to(base).with_suffix(".ipynb")
        target = base / NBVAL_DIR / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        executed = base / EXECUTED_DIR / rel
        if executed.exists():
            nb = nbformat.read(executed, as_version=4)  # type: ignore[no-untyped-call]
        elif path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        else:
            nb = jupytext.read(path, fmt="md:myst")
        nbformat.write(nb, target)  # type: ignore[no-untyped-call]
        out.append(target.relative_to(base))
    return out


VERSIONS_FILE = "versions.json"
_VERSION_DIR = re.compile(r"^v(\d+(?:\.\d+)*)$")


def built_version(built: Path) -> str:
    """The version a built site says it is (its own ``versions.json``, written by the Sphinx extension)."""
    path = built / VERSIONS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {built} is not a book build (run `make book`)")
    return str(json.loads(path.read_text(encoding="utf-8"))["latest"])


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def add_to_site(built: Path, site: Path, version: str | None = None, latest: bool = True) -> dict[str, Any]:
    """Publish the build ``built`` into the versioned ``site``: at ``v<version>/`` and, if ``latest``, at the root.

    Earlier ``v*/`` folders are kept as they are. Returns the ``versions.json`` written at the site root
    (every ``v*/`` folder, newest first).
    """
    version = version or built_version(built)
    if not re.fullmatch(r"\d+(?:\.\d+)*", version):
        raise ValueError(f"version {version!r} must be dotted numbers like 0.2.0")
    site.mkdir(parents=True, exist_ok=True)
    target = site / f"v{version}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(built, target)
    if latest:
        for child in site.iterdir():
            if _VERSION_DIR.match(child.name) or child.name in (".git", ".nojekyll"):
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        for child in built.iterdir():
            dest = site / child.name
            shutil.copytree(child, dest) if child.is_dir() else shutil.copy2(child, dest)
    found = sorted((m.group(1) for d in site.iterdir() if d.is_dir() and (m := _VERSION_DIR.match(d.name))),
                   key=_version_key, reverse=True)
    newest = version if latest else found[0]
    listing = {"latest": newest, "versions": [{"version": v, "path": f"v{v}/"} for v in found]}
    (site / VERSIONS_FILE).write_text(json.dumps(listing, indent=1) + "\n", encoding="utf-8")
    (site / ".nojekyll").touch()
    return listing
#: Everything a chapter reads besides its own cells: the package, every data file, the book's config
#: and the pinned environment. jupyter-cache keys on code cells only, so the Makefile drops the cache
#: when this fingerprint changes.
FINGERPRINT_INPUTS = ("tokenlib", "data", "_config.yml", "_toc.yml", "requirements.lock")
_FINGERPRINT_SKIP = {"__pycache__", ".mypy_cache", "_staging"}


def input_files(root: Path | None = None) -> list[Path]:
    """The files :func:`inputs_fingerprint` hashes, sorted (compiled and scratch files left out)."""
    base = root or repo_root()
    files: list[Path] = []
    for name in FINGERPRINT_INPUTS:
        path = base / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [p for p in path.rglob("*") if p.is_file() and not _FINGERPRINT_SKIP & set(p.relative_to(base).parts)
                      and p.suffix != ".pyc"]
    return sorted(files)


def inputs_fingerprint(root: Path | None = None) -> str:
    """sha256 (first 16 hex digits) over the path and bytes of every input file."""
    import hashlib

    base = root or repo_root()
    h = hashlib.sha256()
    for path in input_files(base):
        h.update(path.relative_to(base).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


#: Where ``make book`` records the fingerprint its executed notebooks were made from.
FINGERPRINT_FILE = Path("_build") / ".inputs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokenlib.book")
    sub = parser.add_subparsers(dest="command", required=True)
    nb = sub.add_parser("notebooks", help="list the notebooks _toc.yml lists")
    nb.add_argument("--for-nbval", action="store_true", required=True,
                    help="paths for nbval (each toc notebook as the book executed it)")
    st = sub.add_parser("site", help="add a built book to a versioned site (v<version>/ plus the latest at the root)")
    st.add_argument("--built", type=Path, default=Path("_build/html"), help="the built book (default _build/html)")
    st.add_argument("--site", type=Path, required=True, help="the site folder (its earlier v*/ folders are kept)")
    st.add_argument("--version", help="version of the build (default: the build's own versions.json)")
    st.add_argument("--not-latest", action="store_true", help="add the version without making it the root's")
    sub.add_parser("fingerprint", help="hash of everything a chapter reads (tokenlib, data/, _config.yml, ...)")
    args = parser.parse_args(argv)
    if args.command == "site":
        listing = add_to_site(args.built, args.site, args.version, latest=not args.not_latest)
        print(f"{args.site}: latest {listing['latest']}; versions " + ", ".join(v["version"] for v in listing["versions"]))
        return 0
    if args.command == "fingerprint":
        print(inputs_fingerprint(repo_root()))
        return 0
    print(" ".join(str(p) for p in nbval_paths(repo_root())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
