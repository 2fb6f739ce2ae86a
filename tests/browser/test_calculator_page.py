"""The calculator page in headless Chromium: settings in the URL, the numbers against the kernel.

* A URL with settings: the controls show them and every number equals tokenlib's kernel for them; moving
  a control changes the URL; that URL opened in a new page gives the same numbers.
* A URL with values no control can take: a visible note names them, and the page shows the defaults.
* The page's own arithmetic (``window.tokenbookCalc.results``) on a grid of settings, the inverse answers
  included, equals the kernel (``calculator.kernel_cost`` / ``kernel_answers``) within 1e-9.
* With JavaScript off, the page shows the defaults' numbers (the HTML the build wrote).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import open_page

from tokenlib.analysis import calculator as calc
from tokenlib.book import calculator as calcpage

pytestmark = pytest.mark.browser

PAGE = "appendix/calculator.html"
REL = 1e-9
READY = "() => document.querySelector('.tc-calc')?.dataset.ready === 'true'"


def _numbers(page: Any) -> dict[str, float]:
    """The answers' full-precision values (an answer that does not exist at the setting has data-value="")."""
    return page.eval_on_selector_all(
        ".tc-calc [data-out][data-value]",
        "els => Object.fromEntries(els.filter(e => e.dataset.value !== '').map(e => [e.dataset.out, Number(e.dataset.value)]))")


def _texts(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(".tc-calc [data-out]", "els => Object.fromEntries(els.map(e => [e.dataset.out, e.textContent]))")


@functools.lru_cache(maxsize=None)
def _cheapest(model: str, util: float, target: float, speed: float | None) -> Any:
    """The kernel's (place, chip) grid: it depends on the model, utilisation, target and speed only."""
    return calc.kernel_answers(replace(calc.DEFAULTS, model=model, util=util, target=target, speed=speed))["cheapest"]


def _expect(s: calc.Settings) -> dict[str, float]:
    out = calc.kernel_cost(s, "output")
    cheap = _cheapest(s.model, s.util, s.target, s.speed)
    return {"output": out, "input": calc.kernel_cost(s, "input"),
            "breakeven_util": calc.breakeven_utilization(calc.kernel_cost(replace(s, util=1.0)), s.list_price),
            "margin_price": calc.price_for_margin(out, s.margin), "cheapest_cost": float(cheap["cost"].iloc[0]),
            "n_under": float(cheap["under_target"].sum()), "n_total": float(len(cheap))}


def _check(got: dict[str, float], want: dict[str, float], label: str) -> None:
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=REL), f"{label}: {k}"


def test_settings_in_the_url_round_trip(browser: Any, server: str) -> None:
    query = "?model=qwen2.5-72b&chip=ascend-910b&place=ulanqab&speed=10&util=0.6&list=6&target=5&margin=0.4"
    context, page, errors = open_page(browser, f"{server}/{PAGE}{query}")
    page.wait_for_function(READY, timeout=10_000)
    form = {n: page.input_value(f"#tc-calc-{n}") for n in ("model", "chip", "place", "speed", "util", "list", "target", "margin")}
    assert form == {"model": "qwen2.5-72b", "chip": "ascend-910b", "place": "ulanqab", "speed": "10", "util": "0.6", "list": "6",
                    "target": "5", "margin": "0.4"}
    s = replace(calc.DEFAULTS, model="qwen2.5-72b", chip="ascend-910b", place="ulanqab", speed=10.0, util=0.6, list_price=6.0,
                target=5.0, margin=0.4)
    _check(_numbers(page), _expect(s), "from the URL")
    assert not page.is_visible("#tc-calc-state .tc-url-note")

    # move a control: the URL follows
    page.select_option("#tc-calc-place", "zhongwei")
    page.fill("#tc-calc-price", "30000")
    page.wait_for_function("() => new URLSearchParams(location.search).get('price') === '30000'", timeout=5_000)
    q = parse_qs(urlparse(page.url).query)
    assert q["place"] == ["zhongwei"] and q["price"] == ["30000"] and q["util"] == ["0.6"] and q["speed"] == ["10"]
    moved = _numbers(page)
    _check(moved, _expect(replace(s, place="zhongwei", price_usd=30000.0)), "after moving")
    button = page.locator(".tc-copy-link")
    assert button.count() == 1 and button.is_visible()
    url = page.url

    # the same URL in a new page: the same numbers
    context2, page2, errors2 = open_page(browser, url)
    page2.wait_for_function(READY, timeout=10_000)
    assert page2.input_value("#tc-calc-place") == "zhongwei" and page2.input_value("#tc-calc-price") == "30000"
    _check(_numbers(page2), moved, "reopened")
    assert not errors and not errors2, errors + errors2
    context.close()
    context2.close()


def test_bad_values_in_the_url_fall_back_with_a_note(browser: Any, server: str) -> None:
    context, page, errors = open_page(browser, f"{server}/{PAGE}?chip=tpu-v9&util=7&place=%3Cb%3Emars%3C/b%3E&margin=abc&list=-1&speed=50&price=10")
    page.wait_for_function(READY, timeout=10_000)
    note = page.locator("#tc-calc-link-note[role=status]")
    assert note.is_visible()
    text = note.inner_text()
    for bad in ("chip=tpu-v9", "util=7", "margin=abc", "list=-1", "place=<b>mars</b>", "speed=50"):
        assert bad in text, (bad, text)
    assert page.locator("#tc-calc-link-note b").count() == 0  # the URL's text is shown as text, never as HTML
    # at the top of the calculator, above its first control (not under "Copy link", screens below on a phone)
    assert note.bounding_box()["y"] < page.locator("#tc-calc-model").bounding_box()["y"]
    assert not page.is_visible("#tc-calc-state .tc-url-note")
    # choices and defaults by the menus' names, not ids
    p = calc.payload()
    names = {c["id"]: c["name"] for c in p["chips"]}
    assert f"the default {names[calc.DEFAULTS.chip]} is used" in text, text
    assert names["ascend-910b"] in text and "ascend-910b" not in text and "chips.csv" not in text, text
    h20 = next(c for c in p["chips"] if c["id"] == calc.DEFAULTS.chip)
    lo, hi = p["ranges"]["price"]
    assert f"price=10 is outside {lo:,g}\u2013{hi:,g}" in text and f"the default sourced price ({h20['price']:,.0f} USD) is used" in text, text
    assert "default the" not in text and "default (" not in text, text
    _check(_numbers(page), _expect(calc.DEFAULTS), "defaults")
    page.wait_for_function("() => !/tpu-v9|util=7|abc/.test(location.search)", timeout=5_000)  # bad values leave the URL
    assert not errors, errors
    context.close()


def _grid() -> list[calc.Settings]:
    out = []
    for (m, c), (pl, e), u, (price, speed), (lp, mg, tg) in itertools.product(
            (("deepseek-v3", "h20"), ("deepseek-v3", "ascend-910c"), ("deepseek-v3", "h100-sxm"), ("qwen2.5-72b", "h200")),
            (("beijing", None), ("zhongwei", None), ("", None), ("", 0.9)),
            (0.25, 0.9),
            ((None, None), (15000.0, 10.0)),
            ((8.0, 0.5, 1.0), (2.0, 0.8, 4.0))):
        out.append(replace(calc.DEFAULTS, model=m, chip=c, place=pl, elec=e, util=u, price_usd=price, speed=speed,
                           list_price=lp, margin=mg, target=tg))
    return out


def test_page_arithmetic_equals_the_kernel_on_a_grid(browser: Any, server: str) -> None:
    context, page, errors = open_page(browser, f"{server}/{PAGE}")
    page.wait_for_function(READY, timeout=10_000)
    grid = _grid()
    js = page.evaluate(
        """(grid) => grid.map(s => { const r = window.tokenbookCalc.results(s);
             return {output: r.output, input: r.input, breakeven_util: r.breakeven_util, margin_price: r.margin_price,
                     cheapest_cost: r.cheapest[0].cost, n_under: r.n_under, n_total: r.n_total,
                     order: r.cheapest.map(g => g.place + '/' + g.chip)}; })""",
        [{"model": s.model, "chip": s.chip, "place": s.place, "elec": s.elec, "util": s.util, "price": s.price_usd, "speed": s.speed,
          "list": s.list_price, "margin": s.margin, "target": s.target} for s in grid])
    assert len(js) == len(grid) >= 100
    for s, got in zip(grid, js):
        truth = _cheapest(s.model, s.util, s.target, s.speed)
        _check(got, _expect(s), str(s))
        assert got["order"] == [f"{p}/{c}" for p, c in zip(truth["place"], truth["chip"])]
    assert not errors, errors
    context.close()


def test_without_javascript_the_defaults_show(browser: Any, server: str) -> None:
    context, page, errors = open_page(browser, f"{server}/{PAGE}", java_script_enabled=False)
    got = _numbers(page)
    _check(got, _expect(calc.DEFAULTS), "no JavaScript")
    assert page.locator("table.tc-reader-table").count() >= 2  # the defaults' tables, rendered at build time
    context.close()


def _page_results(page: Any, s: calc.Settings) -> Any:
    return page.evaluate(
        "(s) => window.tokenbookCalc.results(s)",
        {"model": s.model, "chip": s.chip, "place": s.place, "elec": s.elec, "util": s.util, "price": s.price_usd,
         "speed": s.speed, "list": s.list_price, "margin": s.margin, "target": s.target})


def test_page_arithmetic_at_an_unreachable_speed_equals_the_twin(browser: Any, server: str) -> None:
    context, page, errors = open_page(browser, f"{server}/{PAGE}")
    page.wait_for_function(READY, timeout=10_000)
    p = calc.payload()
    for s in (replace(calc.DEFAULTS, speed=50.0), replace(calc.DEFAULTS, speed=50.0, model="qwen2.5-72b", chip="l20" if "l20" in
              p["tps"]["qwen2.5-72b"] else next(iter(p["tps"]["qwen2.5-72b"])), place="zhongwei", util=0.3)):
        want = calc.results(p, s)
        got = _page_results(page, s)
        assert got["reachable"] == want["reachable"]
        for key in ("output", "breakeven_util", "margin_price", "tps_output", "user_speed", "hour", "input", "cached"):
            if want[key] is None:
                assert got[key] is None, key
            else:
                assert got[key] == pytest.approx(want[key], rel=REL), key
        assert [f"{g['place']}/{g['chip']}" for g in got["cheapest"]] == [f"{a}/{b}" for a, b in zip(want["cheapest"]["place"], want["cheapest"]["chip"])]
        assert got["n_total"] == len(want["cheapest"])
    # the page's number format is calculator.number_text's
    xs = [1229.262, 3104.35, 9592.442, 12345.6, 123.456, 5.3271, 0.5, 99.95, -1229.262]
    assert page.evaluate("(xs) => xs.map(x => window.tokenbookCalc.num(x, 3))", xs) == [calcpage.number_text(x, 3) for x in xs]
    assert not errors, errors
    context.close()


def test_an_unreachable_speed_leaves_no_stale_readout(browser: Any, server: str) -> None:
    """The reviewer's walk at 360 px: 50 tokens/s (not reached), then another place, then the other model."""
    p = calc.payload()
    place, chip_name = {q["id"]: q for q in p["places"]}, {c["id"]: c["name"] for c in p["chips"]}
    context, page, errors = open_page(browser, f"{server}/{PAGE}", viewport={"width": 360, "height": 800})
    page.wait_for_function(READY, timeout=10_000)
    page.select_option("#tc-calc-speed", "50")
    s = replace(calc.DEFAULTS, speed=50.0)
    assert calc.results(p, s)["reachable"] is False  # the H20 does not reach 50 tokens/s for DeepSeek-V3
    assert page.is_visible(".tc-unreachable")
    t = _texts(page)
    for key in ("output", "breakeven_util", "margin_price"):
        assert t[key] == calcpage.UNREACHABLE, (key, t[key])
    for key in ("output", "margin_price", "tps_output", "user_speed"):  # no unit words after the dash
        assert not page.is_visible(f'[data-unit="{key}"]'), key
    assert page.is_visible('[data-unit="hour"]')
    assert page.get_attribute('[data-out="breakeven_util"]', "data-value") == ""

    def agrees(s: calc.Settings) -> None:
        want, got = calc.results(p, s), _numbers(page)
        for key in ("hour", "input", "cached"):
            assert got[key] == pytest.approx(want[key], rel=REL), key
        if len(want["cheapest"]):
            first = want["cheapest"].iloc[0]
            assert _texts(page)["cheapest"] == f"{place[first.place]['name']}, {chip_name[first.chip]}"
            assert got["cheapest_cost"] == pytest.approx(float(first.cost), rel=REL)
        else:  # no chip reaches the speed (DeepSeek-V3 at 50 tokens/s): no stale place and chip either
            assert _texts(page)["cheapest"] == "no place and chip reaches this speed per user"
            assert "cheapest_cost" not in got and _texts(page)["cheapest_cost"] == calcpage.UNREACHABLE
        assert got["n_total"] == len(want["cheapest"]) and got["n_under"] == int(want["cheapest"]["under_target"].sum())
        e = calc.electricity_and_pue(p, s.chip, s.place, None)[0]
        assert page.text_content('[data-show="elec"]') == calcpage.electricity_text(p, s)
        assert float(page.input_value("#tc-calc-elec")) == pytest.approx(e, abs=1e-3)  # the slider's step

    agrees(s)
    page.select_option("#tc-calc-place", "zhongwei")  # the readout follows the place (it stayed at the old one)
    s = replace(s, place="zhongwei")
    agrees(s)
    page.select_option("#tc-calc-model", "qwen2.5-72b")  # the cheapest follows the model's own chips
    s = replace(s, model="qwen2.5-72b", chip=page.input_value("#tc-calc-chip"))
    agrees(s)
    n = len(calc.results(p, s)["cheapest"])
    assert page.text_content('[data-out="n_total"]') == str(n) and n <= len(p["tps"]["qwen2.5-72b"]) * len(p["places"])
    page.select_option("#tc-calc-speed", "setup")
    assert page.text_content('[data-out="n_total"]') == str(len(p["tps"]["qwen2.5-72b"]) * len(p["places"]))
    page.select_option("#tc-calc-place", "none")
    assert page.text_content('[data-show="elec"]') == f"kernel default ({p['k']['elec_default']:.3f})"
    assert not errors, errors
    context.close()


def test_a_typed_price_out_of_range_says_which_is_used(browser: Any, server: str) -> None:
    context, page, errors = open_page(browser, f"{server}/{PAGE}")
    page.wait_for_function(READY, timeout=10_000)
    note = page.locator('[data-note="price"]')
    assert not note.is_visible()
    page.fill("#tc-calc-price", "10")
    page.wait_for_function("() => !document.querySelector('[data-note=price]').hidden", timeout=5_000)
    h20 = next(c for c in calc.payload()["chips"] if c["id"] == calc.DEFAULTS.chip)
    text = note.inner_text()
    assert "10 is outside 500" in text and f"sourced price ({h20['price']:,.0f} USD) is used" in text, text
    assert page.input_value("#tc-calc-price") == "10"
    _check(_numbers(page), _expect(calc.DEFAULTS), "price out of range: the sourced price")
    page.fill("#tc-calc-price", "30000")
    page.wait_for_function("() => document.querySelector('[data-note=price]').hidden", timeout=5_000)
    assert page.get_attribute("#tc-calc-price", "placeholder") == f"{h20['price']:,.0f} (sourced price)"
    assert not errors, errors
    context.close()
