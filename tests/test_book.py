"""The book as a whole: every toc notebook is executed by nbval; the built site is self-contained."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import NBVAL_COLLECTED, ROOT, SITE
from tokenlib.book import toc as book
from tokenlib.book import figures

TAG = re.compile(r"<(?:script|link|img|iframe|source|video|audio)\b[^>]*>", re.I)
REMOTE = re.compile(r"""(?:src|href)=["'](?:https?:)?//(?!127\.0\.0\.1)[^"']+["']""", re.I)


def _remote_assets(html: str) -> list[str]:
    """Tags that make the browser fetch from another host (a canonical link fetches nothing)."""
    return [t for t in TAG.findall(html) if REMOTE.search(t) and 'rel="canonical"' not in t]


@pytest.mark.book
def test_nbval_collects_every_toc_notebook(request: pytest.FixtureRequest) -> None:
    collected = request.config.stash.get(NBVAL_COLLECTED, set())
    expected = {(ROOT / p).resolve() for p in book.nbval_paths()}
    missing = sorted(str(p.relative_to(ROOT)) for p in expected - collected)
    assert not missing, f"notebooks in _toc.yml that nbval did not collect: {missing}"


def test_toc_lists_only_existing_pages() -> None:
    files = book.toc_files()
    assert files[0].name.startswith("intro")
    assert all(f.exists() for f in files)


def _site_pages() -> list[Path]:
    if not (SITE / "intro.html").exists():
        pytest.fail("the book is not built: run `make book` first (make test does)")
    return [p for p in SITE.rglob("*.html") if "figures" not in p.relative_to(SITE).parts]


@pytest.mark.book
def test_built_pages_load_nothing_from_other_hosts() -> None:
    offenders = {}
    for page in _site_pages():
        found = _remote_assets(page.read_text(encoding="utf-8"))
        if found:
            offenders[str(page.relative_to(SITE))] = found[0][:160]
    assert not offenders, f"pages that load assets from other hosts: {offenders}"


@pytest.mark.book
def test_vega_bundle_is_served_locally_and_matches_altair() -> None:
    bundle = SITE / "_static" / "vega-bundle.js"
    assert bundle.exists() and bundle.stat().st_size > 100_000
    assert figures.vl_version() in bundle.read_text(encoding="utf-8")[:200]
    intro = (SITE / "intro.html").read_text(encoding="utf-8")
    assert intro.count("_static/vega-bundle.js") == 1, "the bundle must load exactly once per chart page"
    assert "cdn.jsdelivr" not in intro and "require.js" not in intro


@pytest.mark.book
def test_data_and_citation_files_are_published() -> None:
    for name in ("prices", "fx", "chips", "models", "deployments", "export_controls", "places", "usage", "claims"):
        assert (SITE / "data" / f"{name}.csv").exists(), name
    assert (SITE / "data" / "schema.yaml").exists()
    assert (SITE / "CITATION.cff").exists()


def test_chapters_are_text_notebooks_without_stored_outputs() -> None:
    # outputs belong to the build (_build/jupyter_execute), not to git: a stored .ipynb makes every
    # re-run a 10,000-line diff and can disagree with what the book publishes
    stored = [str(p.relative_to(ROOT)) for p in book.toc_files() if p.suffix == ".ipynb"]
    assert not stored, f"toc pages stored as .ipynb (convert with `jupytext --to md:myst`): {stored}"
    assert all(book.is_myst_notebook(p) for p in book.toc_files() if p.parts[-2] == "chapters")


def test_toc_notebooks_open_as_myst_notebooks_without_a_format_hint() -> None:
    # JupyterLab (jupytext's contents manager) reads a .md without being told its format: the front
    # matter must say extension .md and format myst, or the chapter opens as two text cells
    import jupytext

    for path in book.toc_notebooks():
        if path.suffix != ".md":
            continue
        guessed = jupytext.read(path)
        told = jupytext.read(path, fmt="md:myst")
        assert [c.cell_type for c in guessed.cells] == [c.cell_type for c in told.cells], (
            f"{path.relative_to(ROOT)}: jupytext does not detect MyST; add `extension: .md` under "
            "jupytext.text_representation in its front matter")


def test_nbval_compares_numbers_at_a_stated_tolerance_not_the_last_digit() -> None:
    from nbval.plugin import IPyNbCell

    from conftest import NBVAL_REL_TOL, NBVAL_TOLERATED, _tolerate_float_noise

    logged = len(NBVAL_TOLERATED)
    assert getattr(IPyNbCell.compare_outputs, "_tokenbook", False), "nbval's comparison is not patched"
    ref = [{"output_type": "stream", "name": "stdout", "text": "US factor 1.4090312490551082, n=14\n"},
           {"output_type": "execute_result", "data": {"text/plain": "1.4090312490551082"}}]
    other_cpu = [{"output_type": "stream", "name": "stdout", "text": "US factor 1.4090312490551085, n=14\n"},
                 {"output_type": "execute_result", "data": {"text/plain": "1.4090312490551085"}}]
    assert _tolerate_float_noise(other_cpu, ref) == ref, "a 16th-digit difference (another SIMD path) must pass"
    moved = 1.4090312490551082 * (1 + 10 * NBVAL_REL_TOL)
    changed = [{"output_type": "stream", "name": "stdout", "text": f"US factor {moved!r}, n=14\n"},
               {"output_type": "execute_result", "data": {"text/plain": "1.4090312490551082"}}]
    assert _tolerate_float_noise(changed, ref)[0] != ref[0], "a real change must still fail"
    words = [{"output_type": "stream", "name": "stdout", "text": "EU factor 1.4090312490551085, n=14\n"}]
    assert _tolerate_float_noise(words, ref[:1]) != ref[:1], "text around the numbers must match exactly"
    del NBVAL_TOLERATED[logged:]  # the summary lists notebook outputs only


def test_chapters_are_numbered_by_their_place_in_the_toc(monkeypatch: pytest.MonkeyPatch) -> None:
    # the token-budget chapter (file 05_) sits before the crown (file 04_) in the toc: readers see it as
    # chapter 4, so its figures are 4.x and the crown's 5.x, while the files and figure names stay stable
    numbers = book.chapter_numbers()
    assert numbers["chapters/05_token_budget"] == 4 and numbers["chapters/04_crown"] == 5
    monkeypatch.setattr(figures, "_numbers", {})
    assert figures._number_for("fig-05-ledger", "chapters/05_token_budget") == "4.1"
    assert figures._number_for("fig-04-equation", "chapters/04_crown") == "5.1"
