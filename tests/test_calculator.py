"""The calculator page's arithmetic (tokenlib.analysis.calculator) against the kernel, and its HTML.

``results`` is what the page's script computes from the embedded payload; the kernel
(``cost.cost_per_mtok`` via ``kernel_cost``) is the truth. Also: the inverse answers solve the question
they answer, the defaults give the book's glued numbers, bad input raises, text from data is escaped.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import replace

import pytest

from tokenlib.analysis import calculator as calc
from tokenlib.book import calculator as calcpage
from tokenlib.book import findings

REL = 1e-12  # same floating-point formula on the same inputs: only rounding-order noise allowed


@pytest.fixture(scope="module")
def payload() -> dict:
    return calc.payload()


GRID = [
    dict(model=m, chip=c, place=pl, elec=e, util=u, price_usd=p, speed=v)
    for m, c in (("deepseek-v3", "h20"), ("deepseek-v3", "ascend-910b"), ("deepseek-v3", "h800"),
                 ("qwen2.5-72b", "h100-sxm"), ("qwen2.5-72b", "ascend-910c"))
    for pl, e in (("beijing", None), ("ulanqab", None), ("", None), ("", 0.35))
    for u in (0.3, 0.816)
    for p in (None, 20000.0)
    for v in (None, 10.0)
]


@pytest.mark.parametrize("setting", GRID, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_results_equal_the_kernel(payload: dict, setting: dict) -> None:
    s = replace(calc.DEFAULTS, **setting)
    got = calc.results(payload, s)
    for phase in ("output", "input"):
        assert got[phase] == pytest.approx(calc.kernel_cost(s, phase), rel=REL), phase


def test_inverse_answers_solve_their_questions(payload: dict) -> None:
    s = replace(calc.DEFAULTS, model="deepseek-v3", chip="ascend-910b", margin=0.3, target=3.0, speed=20.0)
    s = replace(s, list_price=2 * calc.kernel_cost(replace(s, util=1.0)))  # breaks even at utilisation 0.5
    got = calc.results(payload, s)
    truth = calc.kernel_answers(s)
    # at the break-even utilisation the kernel's cost is the list price
    assert got["breakeven_util"] == pytest.approx(0.5, rel=1e-12)
    assert calc.kernel_cost(replace(s, util=got["breakeven_util"])) == pytest.approx(s.list_price, rel=1e-9)
    assert got["breakeven_util"] == pytest.approx(truth["breakeven_util"], rel=REL)
    # the margin price leaves exactly that gross margin
    p = got["margin_price"]
    assert (p - got["output"]) / p == pytest.approx(s.margin, rel=1e-12)
    assert p == pytest.approx(truth["margin_price"], rel=REL)
    # cheapest: same order and costs as the kernel's own grid, first is the minimum
    mine, theirs = got["cheapest"], truth["cheapest"]
    assert list(zip(mine["place"], mine["chip"])) == list(zip(theirs["place"], theirs["chip"]))
    assert mine["cost"].tolist() == pytest.approx(theirs["cost"].tolist(), rel=REL)
    assert mine["cost"].is_monotonic_increasing
    assert (mine["under_target"] == (mine["cost"] <= s.target)).all()
    lo, hi = got["worst"]["output"]
    f = payload["error"]["max_factor"]
    assert lo == pytest.approx(got["output"] / f) and hi == pytest.approx(got["output"] * f)
    m = payload["error"]["median_pct"] / 100
    lo, hi = got["band"]["output"]
    assert lo * (1 + m) == pytest.approx(got["output"]) and hi * (1 - m) == pytest.approx(got["output"])


def test_a_speed_no_batch_reaches_leaves_only_the_answers_that_exist(payload: dict) -> None:
    # the reviewer's case: the H20 does not give DeepSeek-V3's users 50 tokens/s; the answers that need output
    # tokens at that speed do not exist (None, shown as "not reachable"), the rest is the setting's own
    s = replace(calc.DEFAULTS, speed=50.0)
    with pytest.raises(ValueError, match="50"):
        calc.kernel_cost(s)
    got, base = calc.results(payload, s), calc.results(payload, calc.DEFAULTS)
    assert got["reachable"] is False and base["reachable"] is True
    for key in ("output", "tps_output", "user_speed", "breakeven_util", "margin_price"):
        assert got[key] is None, key
    for kind in ("band", "worst"):
        assert all(v is None for v in got[kind].values()), kind
    for key in ("hour", "input", "cached", "tps_input"):
        assert got[key] == pytest.approx(base[key], rel=REL), key
    assert got["input"] == pytest.approx(calc.kernel_cost(s, "input"), rel=1e-9)
    # the grid holds exactly the chips that reach the speed (none at 50; the L20 alone misses 30), at the kernel's cost
    for s in (s, replace(s, chip="l20", speed=30.0)):
        got = calc.results(payload, s)
        assert got["reachable"] is False and got["output"] is None
        grid = got["cheapest"]
        reach = {c for c, t in payload["tps"][s.model].items() if t["at_speed"][f"{s.speed:g}"] is not None}
        assert set(grid["chip"]) == reach and len(grid) == len(reach) * len(payload["places"])
        for row in grid.head(3).itertuples():
            k = calc.kernel_cost(replace(s, place=row.place, chip=row.chip))
            assert row.cost == pytest.approx(k, rel=1e-9)
    assert 0 < len(grid) < len(payload["tps"][s.model]) * len(payload["places"])
    with pytest.raises(ValueError, match="offers"):
        calc.results(payload, replace(calc.DEFAULTS, speed=12.0))


def test_html_at_an_unreachable_speed_shows_no_stale_answer(payload: dict) -> None:
    s = replace(calc.DEFAULTS, speed=50.0)
    out = calcpage.html(payload, s)
    for key in ("output", "breakeven_util", "margin_price", "tps_output", "user_speed"):
        m = re.search(rf'data-out="{key}" data-value="([^"]*)">([^<]*)<', out)
        assert m and m.group(1) == "" and m.group(2) == calcpage.UNREACHABLE, (key, m and m.groups())
    # "— (speed not reachable) yuan per million" would read as a price: the unit words hide with the number
    for key in ("output", "margin_price", "tps_output", "user_speed"):
        assert f'<span data-unit="{key}" hidden>' in out, key
    assert '<span data-unit="hour">' in out  # the chip-hour cost needs no speed: its unit stays
    assert re.search(r'class="tc-url-note tc-unreachable" role="status">The [^<]*50 tokens/s', out)
    n = len(calc.results(payload, s)["cheapest"])
    assert f'data-out="n_total" data-value="{n}">{n}<' in out


def test_the_count_of_places_and_chips_is_the_grids(payload: dict) -> None:
    # "of 63 places and chips" was fixed text: Qwen is costed on fewer chips
    for model in payload["tps"]:
        n = len(payload["tps"][model]) * len(payload["places"])
        out = calcpage.html(payload, replace(calc.DEFAULTS, model=model, chip=next(iter(payload["tps"][model]))))
        assert re.search(rf'<span data-out="n_total" data-value="{n}">{n}</span>\s+places and chips', out), model
    assert len(payload["tps"]["qwen2.5-72b"]) != len(payload["tps"]["deepseek-v3"])


@pytest.mark.parametrize("x, digits, text", [
    (1229.262, 3, "1,229"), (3104.350, 3, "3,104"), (9592.442, 3, "9,592"), (12345.6, 3, "12,350"),
    (123.456, 3, "123.5"), (5.3271, 3, "5.327"), (0.01234, 4, "0.0123"), (99.95, 1, "100.0"), (-1229.262, 3, "-1,229"),
])
def test_large_numbers_read_with_separators_and_four_figures(x: float, digits: int, text: str) -> None:
    assert calcpage.number_text(x, digits) == text


def test_utilisation_bands_stop_at_100_percent() -> None:
    assert calcpage.utilisation_band_text(0.108, 0.95) == "10.8\u201395.0%"
    assert calcpage.utilisation_band_text(0.108, 1.029) == "10.8% to never"
    assert calcpage.utilisation_band_text(1.989, 18.99) == "never"
    assert calcpage.utilisation_text(5.303) == "never (above 100%)" and calcpage.utilisation_text(0.333) == "33.3%"


def test_html_shows_no_utilisation_above_100_percent(payload: dict) -> None:
    # a list price so low that the setting never breaks even: every band says "never", none shows 102.9% or 1899.2%
    be0 = calc.results(payload, calc.DEFAULTS)["breakeven_util"]
    s = replace(calc.DEFAULTS, list_price=calc.DEFAULTS.list_price * be0 / 2.0)  # breaks even at utilisation 2: never
    r = calc.results(payload, s)
    assert r["worst"]["breakeven_util"][0] < 1 < r["band"]["breakeven_util"][0]
    out = calcpage.html(payload, s)
    para = re.search(r"Break-even utilisation:(.*?)</p>", out, re.S).group(1)
    shown = [float(v) for v in re.findall(r"([0-9]+(?:\.[0-9]+)?)%", re.sub(r"<[^>]+>", "", para))]
    assert shown and all(v <= 100 for v in shown), para
    assert "never" in para


def test_no_place_reads_as_the_kernel_default(payload: dict) -> None:
    e = payload["k"]["elec_default"]
    s = replace(calc.DEFAULTS, place="")
    assert calcpage.electricity_text(payload, s) == f"kernel default ({e:.3f})"
    assert f'data-show="elec">kernel default ({e:.3f})<' in calcpage.html(payload, s)
    assert calcpage.electricity_text(payload, calc.DEFAULTS).startswith("place's price (")
    assert calcpage.electricity_text(payload, replace(s, elec=0.7)) == "0.700"


def test_large_numbers_on_the_page_read_short(payload: dict) -> None:
    s = replace(calc.DEFAULTS, chip="ascend-910b", price_usd=200_000.0, util=0.05, speed=30.0)
    r = calc.results(payload, s)
    assert r["output"] > 1000
    out = calcpage.html(payload, s)
    m = re.search(r'data-out="output" data-value="([^"]+)">([^<]+)<', out)
    assert float(m.group(1)) == r["output"] and m.group(2) == calcpage.number_text(r["output"]) and "," in m.group(2)
    assert not re.search(r"\d{4}\.\d", re.sub(r'data-[a-z]+="[^"]*"', "", out.split("</script>")[1]))


def test_speed_costs_the_largest_batch_meeting_it(payload: dict) -> None:
    from tokenlib.model import kernel

    s = replace(calc.DEFAULTS, speed=20.0)
    sv = calc.serving_for(s.model, s.chip)
    b = kernel.batch_for_speed(s.model, s.chip, context=4096, tokens_per_s_per_user=20.0, precision="fp8",
                               n_chips=sv["n_chips"])
    tps = kernel.throughput(s.model, s.chip, "decode", batch=b, context=4096, precision="fp8", n_chips=sv["n_chips"])
    assert calc.results(payload, s)["tps_output"] == pytest.approx(tps, rel=1e-12)
    base = calc.results(payload, calc.DEFAULTS)
    assert 20.0 < base["user_speed"] < 30.0  # the setup's batch sits between the two speeds
    assert calc.results(payload, s)["output"] <= base["output"]  # slower users: a bigger batch, cheaper tokens
    assert calc.results(payload, replace(s, speed=30.0))["output"] >= base["output"]


def test_error_band_is_the_held_out_error(payload: dict) -> None:
    cal = json.loads(calc.calibrate.kernel.CALIBRATION_FILE.read_text())["errors"]["validation"]
    assert payload["error"]["max_factor"] == pytest.approx(cal["max_factor_calibrated"], abs=0.005)
    assert payload["error"]["median_pct"] == pytest.approx(cal["median_abs_error_pct_calibrated"], abs=0.05)
    assert payload["error"]["max_factor"] >= 1.0


def test_breakeven_above_one_means_never() -> None:
    assert calc.breakeven_utilization(10.0, 5.0) == 2.0


@pytest.mark.parametrize("call, match", [
    (lambda: calc.breakeven_utilization(1.0, 0.0), "list_price"),
    (lambda: calc.breakeven_utilization(-1.0, 2.0), "cost_at_full_use"),
    (lambda: calc.price_for_margin(1.0, 1.0), "margin"),
    (lambda: calc.price_for_margin(1.0, float("nan")), "margin"),
    (lambda: calc.error_band(1.0, 0.5), "factor"),
    (lambda: calc.kernel_cost(replace(calc.DEFAULTS, model="gpt-9")), "gpt-9"),
])
def test_bad_input_names_the_value(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("change, match", [
    (dict(margin=1.0), "margin"), (dict(margin=1.5), "margin"), (dict(util=0.0), "util"),
    (dict(util=1.2), "util"), (dict(list_price=0.0), "list_price"),
])
def test_page_answers_name_a_bad_setting(payload: dict, change: dict, match: str) -> None:
    # the page's arithmetic checks what the inverse answers check (a margin of 1 divided by zero, 1.5 gave a
    # negative price)
    with pytest.raises(ValueError, match=match):
        calc.results(payload, replace(calc.DEFAULTS, **change))


def test_chips_for_an_unknown_model_names_the_models() -> None:
    with pytest.raises(ValueError, match="deepseek-v3x.*deepseek-v3"):
        calc.chips_for("deepseek-v3x")


def test_unknown_chip_or_place_lists_the_choices(payload: dict) -> None:
    with pytest.raises(ValueError, match="h20"):
        calc.results(payload, replace(calc.DEFAULTS, chip="tpu-v9"))
    with pytest.raises(ValueError, match="beijing"):
        calc.results(payload, replace(calc.DEFAULTS, place="atlantis"))


def _ledger() -> dict[str, float]:
    return {f.name: float(f.value) for f in findings.read() if f.unit != "text" and re.fullmatch(r"[-0-9.e+]+", str(f.value))}


def test_calculator_gives_the_chapters_glued_costs(payload: dict) -> None:
    """Chapter 3's Beijing costs (place semantics) and chapter 2's (0.681 yuan/kWh set by hand, default PUE)."""
    led = _ledger()
    q = replace(calc.DEFAULTS, model="qwen2.5-72b", place="beijing")
    assert calc.results(payload, replace(q, chip="h100-sxm"))["output"] == pytest.approx(led["ch3_cost_h100_ref"], rel=1e-9)
    assert calc.results(payload, replace(q, chip="ascend-910b"))["output"] == pytest.approx(led["ch3_cost_910b_ref"], rel=1e-9)
    elec = led["ch2_elec"]
    for chip, name in (("h100-sxm", "ch2_cost_h100"), ("h20", "ch2_cost_h20"), ("h800", "ch2_cost_h800"),
                       ("ascend-910b", "ch2_cost_910b")):
        got = calc.results(payload, replace(calc.DEFAULTS, model="deepseek-v3", chip=chip, place="", elec=elec))["output"]
        # chapter 2 glues the sum of its table's components, each rounded to 4 decimals: up to 4 x 5e-5 off
        assert got == pytest.approx(led[name], abs=2e-4), name


def test_defaults_are_the_pages_glued_numbers(payload: dict) -> None:
    """Every number the calculator shows at its defaults is a finding of the calculator page."""
    led = _ledger()
    names = {"calc_output": "output", "calc_input": "input", "calc_margin_price": "margin_price"}
    if not all(n in led for n in names):
        pytest.fail("findings.csv has no calc_* findings: build the book and run `make findings`")
    r = calc.results(payload, calc.DEFAULTS)
    for n, key in names.items():
        assert r[key] == pytest.approx(led[n], rel=1e-9), n
    assert 100 * r["breakeven_util"] == pytest.approx(led["calc_breakeven_pct"], rel=1e-9)
    assert float(r["cheapest"]["cost"].iloc[0]) == pytest.approx(led["calc_cheapest_cost"], rel=1e-9)


def test_default_list_price_is_sourced() -> None:
    import tokenlib

    row = calc.default_list_price_row(tokenlib.load("prices"))
    assert float(row["output_price"]) == calc.DEFAULTS.list_price
    assert row["source_url"].startswith("http")


def test_html_escapes_text_from_data(payload: dict) -> None:
    evil = copy.deepcopy(payload)
    bad = '<img src=x onerror=alert(1)>"</script>'
    for c in evil["chips"]:
        c["name"] = bad + c["name"]
    for p in evil["places"]:
        p["name"] = bad
    evil["models"][0]["setup"] = bad
    out = calcpage.html(evil)
    assert "<img" not in out and "</script>\"" not in out
    assert out.count("</script>") == 1  # the payload's own closing tag only
    assert "&lt;img src=x onerror=alert(1)&gt;" in out


def test_html_shows_the_defaults(payload: dict) -> None:
    out = calcpage.html(payload)
    r = calc.results(payload, calc.DEFAULTS)
    for key in ("output", "input", "margin_price"):
        m = re.search(rf'data-out="{key}" data-value="([^"]+)">([^<]+)<', out)
        assert m, key
        assert float(m.group(1)) == r[key] and m.group(2) == calcpage.number_text(r[key])
    assert 'value="deepseek-v3" selected' in out and 'value="h20" selected' in out


def test_every_payload_number_is_finite(payload: dict) -> None:
    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                yield from walk(v)
        elif isinstance(x, list):
            for v in x:
                yield from walk(v)
        elif isinstance(x, float):
            yield x
    assert all(v == v and abs(v) != float("inf") for v in walk(payload))
    assert set(itertools.chain.from_iterable(payload["tps"].values())) <= {c["id"] for c in payload["chips"]}


def test_page_scripts_load_the_calculator_only_where_it_is() -> None:
    from tokenlib.book.sphinxext import BUNDLE_NAME, _page_scripts

    names = ["tokenbook-state.js", BUNDLE_NAME, "tokenbook.js", "tokenbook-site.js", "tokenbook-calc.js"]
    kept = {(charts, calc_): _page_scripts(names, charts, calc_) for charts in (False, True) for calc_ in (False, True)}
    assert kept[(False, False)] == ["tokenbook-site.js"]
    assert kept[(False, True)] == ["tokenbook-state.js", "tokenbook-site.js", "tokenbook-calc.js"]
    assert kept[(True, False)] == [BUNDLE_NAME, "tokenbook.js", "tokenbook-site.js"]  # state: loaded when needed


def test_chip_price_placeholder_credits_only_the_data(payload: dict) -> None:
    # the field's hint is the sourced price, never the reader's own; in words, not a file name
    chip = next(c for c in payload["chips"] if c["id"] == "h20")
    out = calcpage.html(payload, replace(calc.DEFAULTS, chip="h20", price_usd=20000.0))
    assert f'placeholder="{chip["price"]:,.0f} (sourced price)"' in out and "20,000 (sourced price)" not in out
    assert "(chips.csv)" not in out


def test_page_tables_credit_every_input_from_providers(payload: dict) -> None:
    from tokenlib.book import calculator as calcpage

    assumptions = calcpage.assumptions_table()
    chips = calcpage.chips_table(payload)
    places = calcpage.places_table(payload)
    assert len(chips) == len(payload["chips"]) and len(places) == len(payload["places"])
    for table in (assumptions, chips):
        assert not table["credit"].str.startswith("source not in providers.csv").any(), table["credit"].tolist()
    assert set(calcpage.COST_ASSUMPTIONS_SHOWN) <= {a.replace(" ", "_") for a in assumptions["assumption"]}
    answers = calcpage.answers_table(payload, calc.results(payload, calc.DEFAULTS))
    assert (answers["band_low"] <= answers["value"] + 1e-12).all() and (answers["value"] <= answers["band_high"] + 1e-12).all()
    assert calcpage.credit("https://example.org/not-a-source", {}) == "source not in providers.csv: https://example.org/not-a-source"
    rows = calcpage.input_rows(payload)
    assert rows["source_url"].notna().all()
