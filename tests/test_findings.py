"""The findings ledger (findings.csv): every glued number of the last build agrees with it.

The build (`make book`, which `make test` runs first) executes the chapters afresh whenever anything
they read changed (tokenlib.book.inputs_fingerprint keys the execution cache). This test compares the
findings of that execution with the committed ledger at each unit's relative tolerance
(tokenlib.book.findings.REL_TOL: 1e-9 for measured quantities, counts and years exact, text with its
numbers at 1e-9) and names every finding that moved, was added or vanished, with old and new values.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from tokenlib.book import toc as book
from tokenlib.book import figures
from tokenlib.book import findings
from tokenlib.book import run
from tokenlib.errors import UnknownChoiceError


def _built_findings() -> list[findings.Finding]:
    stamp = ROOT / book.FINGERPRINT_FILE
    if not (ROOT / book.EXECUTED_DIR).is_dir() or not stamp.exists():
        pytest.fail("the book is not built: run `make book` first (make test does)")
    if stamp.read_text().strip() != book.inputs_fingerprint():
        pytest.fail("tokenlib/, data/ or _config.yml changed since the last build: run `make book` "
                    "(make test does) so the chapters are executed afresh")
    return findings.collect(known=findings.known_units(findings.read()))


@pytest.mark.book
def test_ledger_matches_a_fresh_execution() -> None:
    ledger = findings.read()
    assert ledger, "findings.csv is missing or empty: run `make findings`"
    changes = findings.compare(ledger, _built_findings())
    assert not changes, (
        f"{len(changes)} findings differ from findings.csv (if intended, run `make findings` and commit "
        "the diff with the change):\n" + "\n".join(c.line() for c in changes)
    )


def test_every_finding_has_a_unit() -> None:
    missing = findings.unknown_units(findings.read())
    assert not missing, ("findings with unit '?': write their unit in the unit column of findings.csv: "
                         + ", ".join(f"{f.chapter}:{f.name}" for f in missing))


def test_ledger_is_what_make_findings_writes() -> None:
    text = findings.ledger_path().read_text(encoding="utf-8")
    assert findings.dumps(findings.loads(text)) == text, "findings.csv is not in canonical form: run `make findings`"


def test_glue_values_become_findings_with_units() -> None:
    glue = {
        "ch9_cost_cny": {"data": {"text/plain": "5.781874147185941"}},
        "ch9_n_labs": {"data": {"text/plain": "14"}},
        "ch9_where": {"data": {"text/plain": "'Beijing 北京'"}},
        "ch9_np": {"data": {"text/plain": "np.float64(0.1)"}},
        "ch9_share_pct": {"data": {"text/plain": "45.000000000000014"}},
        "ch9_chart": {"data": {"text/html": "<div></div>"}},
    }
    got = {f.name: f for f in findings.findings_from_glue("chapters/09_x", glue, {"ch9_np": "CNY/kWh"})}
    assert got["ch9_cost_cny"].value == "5.78187414719" and got["ch9_cost_cny"].unit == "CNY"
    assert got["ch9_n_labs"].unit == "count" and got["ch9_where"].unit == "text"
    assert got["ch9_where"].value == "Beijing 北京"
    assert got["ch9_np"].value == "0.1" and got["ch9_np"].unit == "CNY/kWh", "the ledger's unit wins"
    assert got["ch9_share_pct"].value == "45", "float noise in the 16th digit is not written"
    assert "ch9_chart" not in got
    assert findings.unit_for("ch9_mystery", True) == findings.UNKNOWN_UNIT, "unknown units are flagged"


def test_compare_names_moved_added_and_vanished_at_the_stated_tolerance() -> None:
    old = [findings.Finding("c", "a_pct", "%", "10.0000000001"), findings.Finding("c", "b_n", "count", "14"),
           findings.Finding("c", "t", "text", "Beijing hosts 6 of 14"), findings.Finding("c", "gone", "%", "1")]
    same = [findings.Finding("c", "a_pct", "%", "10.0000000002"), findings.Finding("c", "b_n", "count", "14"),
            findings.Finding("c", "t", "text", "Beijing hosts 6 of 14"), findings.Finding("c", "gone", "%", "1")]
    assert findings.compare(old, same) == [], "a 1e-11 relative change is float noise"
    new = [findings.Finding("c", "a_pct", "%", "10.00001"), findings.Finding("c", "b_n", "count", "15"),
           findings.Finding("c", "t", "text", "Beijing hosts 7 of 14"), findings.Finding("c", "new", "%", "2")]
    lines = [c.line() for c in findings.compare(old, new)]
    assert lines == [
        "moved     c a_pct: 10.0000000001 % -> 10.00001 %",
        "moved     c b_n: 14 count -> 15 count",
        "moved     c t: Beijing hosts 6 of 14 -> Beijing hosts 7 of 14",
        "added     c new: 2 %",
        "vanished  c gone: was 1 %",
    ]
    assert not findings.agree("1.0", "1.00000001", "%") and findings.agree("1.0", "1.0000000001", "%")


def test_history_lists_what_moved_per_commit(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    ledger = tmp_path / findings.LEDGER
    ledger.write_text("chapter,name,unit,value\nc,x_pct,%,10\nc,y_n,count,3\n")
    git("add", findings.LEDGER)
    git("commit", "-qm", "first")
    ledger.write_text("chapter,name,unit,value\nc,x_pct,%,12.5\nc,z_n,count,4\n")
    git("commit", "-qam", "data fix moves x")
    revs = findings.history(tmp_path)
    assert [r.subject for r in revs] == ["data fix moves x", "first"]
    assert [c.line() for c in revs[0].changes] == [
        "moved     c x_pct: 10 % -> 12.5 %", "added     c z_n: 4 count", "vanished  c y_n: was 3 count"]
    assert [c.kind for c in revs[1].changes] == ["added", "added"]


def test_fingerprint_covers_everything_a_chapter_reads(tmp_path: Path) -> None:
    for name in ("tokenlib", "data"):
        (tmp_path / name).mkdir()
    (tmp_path / "tokenlib" / "x.py").write_text("A = 1\n")
    (tmp_path / "data" / "places.csv").write_text("id\nbeijing\n")
    (tmp_path / "data" / "claim_ids.txt").write_text("c1\n")
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    first = book.inputs_fingerprint(tmp_path)
    for path in ("data/claim_ids.txt", "_config.yml", "tokenlib/x.py", "data/places.csv"):
        target = tmp_path / path
        before = target.read_text()
        target.write_text(before + "changed\n")
        assert book.inputs_fingerprint(tmp_path) != first, f"{path} is not in the execution cache key"
        target.write_text(before)
    assert book.inputs_fingerprint(tmp_path) == first
    (tmp_path / "tokenlib" / "__pycache__").mkdir()
    (tmp_path / "tokenlib" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert book.inputs_fingerprint(tmp_path) == first, "compiled files must not invalidate the cache"


def test_executing_a_figure_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """publish() in a chapter (book or JupyterLab) writes no file: the build makes the bundles."""
    import altair as alt

    def refuse() -> Path:
        raise AssertionError("publish() wrote a bundle at execution time")

    monkeypatch.setattr(figures, "figures_dir", refuse)
    monkeypatch.setattr(figures, "_numbers", {})
    df = pd.DataFrame({"x": ["a", "b"], "y": [1.5, 2.0]})
    fig = figures.publish(alt.Chart(df).mark_bar().encode(x="x:N", y="y:Q"), name="fig-intro-nowrite",
                          title="t", caption="c", sources=[figures.Source("P", "T", "https://example.org")], data=df)
    monkeypatch.setenv(figures.RENDER_ENV, "html")
    data, meta = fig._repr_mimebundle_()  # type: ignore[misc]
    assert figures.PAYLOAD_KEY not in data, "the payload is metadata, not a displayed mime type"
    payload = meta[figures.PAYLOAD_KEY]
    back = figures.Figure.from_payload(payload)
    assert back.spec == fig.spec and back.title == "t" and back.sources == fig.sources
    pd.testing.assert_frame_equal(back.data, fig.data)


def test_payload_bundle_equals_the_direct_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import altair as alt

    monkeypatch.setattr(figures, "_numbers", {})
    df = pd.DataFrame({"provider": ["豆包 Doubao", "DeepSeek", "NA"], "price": [0.8, 1.0000000000000002, None]})
    chart = alt.Chart(df).mark_bar().encode(x="provider:N", y="price:Q")
    fig = figures.publish(chart, name="fig-intro-roundtrip", title="t", caption="c",
                          sources=[figures.Source("P", "T", "https://example.org")], data=df, units="CNY per Mtok")
    direct, built = tmp_path / "direct", tmp_path / "built"
    titled = chart.properties(title=alt.TitleParams(text="t"), description="t c")
    assert titled.to_dict() == fig.spec
    figures._write_bundle(fig, direct)
    figures.write_bundle(figures.Figure.from_payload(fig.payload()), built)
    for name in ("fig-intro-roundtrip.csv", "fig-intro-roundtrip.vl.json", "fig-intro-roundtrip.svg"):
        assert (built / name).read_bytes() == (direct / name).read_bytes(), name


def test_run_injects_parameters_after_the_parameters_cell() -> None:
    import jupytext

    path = run.find_chapter("03")
    assert path.name == "03_city_rivalry.md"
    nb = jupytext.read(path, fmt="md:myst")
    out = run.inject(nb, {"UTILIZATION": 0.5, "REFERENCE_CITY": "hohhot"})
    i = next(i for i, c in enumerate(out.cells) if "parameters" in c.metadata.get("tags", []))
    assert out.cells[i + 1].metadata["tags"] == ["injected-parameters"]
    assert "UTILIZATION = 0.5\nREFERENCE_CITY = 'hohhot'\n" in out.cells[i + 1].source
    assert len(out.cells) == len(nb.cells) + 1, "the chapter itself is not modified"
    with pytest.raises(UnknownChoiceError, match="UTILISATION.*Did you mean 'UTILIZATION'"):
        run.inject(nb, {"UTILISATION": 0.5})
    with pytest.raises(UnknownChoiceError, match="CHAPTER"):
        run.find_chapter("99")
    assert run.parse_args(["CHAPTER=03", "UTILIZATION=0.5", "WEST_CITY=hohhot", "PYTHON=python3"]) == (
        "03", {"UTILIZATION": 0.5, "WEST_CITY": "hohhot"})
