"""The chapter-4 what-if: sliders recompute cost per Mtok in the reader's browser, equal to tokenlib's.

Opens the built chapter in headless Chromium, moves the Altair/Vega sliders (electricity price,
utilisation, domestic chip price, domestic share, model) to several settings, reads the numbers the
chart draws and compares them with :mod:`tokenlib` (kernel throughput, ``cost.chip_hour_cost`` and
``city_cost.fleet_cost_per_mtok``) within 0.5%.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import open_page

import tokenlib
from tokenlib.model import cost
from tokenlib.analysis import city_cost

pytestmark = pytest.mark.browser

PAGE = "chapters/04_crown.html"
CHART = "#fig-04-whatif-chart"
CHIPS = {"nvidia": "h20", "domestic": "ascend-910c"}
LABEL = re.compile(r"^(input|output): ¥([0-9.]+) per Mtok$")
# (model, electricity CNY/kWh, utilisation, domestic chip price USD, domestic share): on the sliders' steps
SETTINGS = [
    ("deepseek-v3", 0.35, 0.60, 20000, 0.0),
    ("deepseek-v3", 0.80, 0.90, 40000, 1.0),
    ("deepseek-v3", 0.50, 0.45, 30500, 0.55),
    ("qwen2.5-72b", 1.10, 0.25, 8000, 0.3),
]


SPEED_TPS = 20.0  # chapter 5's parameters cell: every chip serves decode at 20 tokens/s per user


def _serving() -> dict[str, city_cost.Serving]:
    d6 = tokenlib.load("deployments").set_index("id")
    pre, dec = d6.loc["deepseek-day6-prefill-h800"], d6.loc["deepseek-day6-decode-h800"]
    return {
        "deepseek-v3": city_cost.Serving("fp8", float(pre["batch"]), float(pre["n_chips"]), float(dec["batch"]),
                                     float(dec["n_chips"]), float(dec["context"]), tokens_per_s_per_user=SPEED_TPS),
        "qwen2.5-72b": city_cost.Serving("bf16", 8, 8, 128, 8, 4096, tokens_per_s_per_user=SPEED_TPS),
    }


def expected(model: str, elec: float, util: float, price_d: float, share: float) -> dict[str, float]:
    """tokenlib's cost per Mtok (CNY) for input and output at this setting."""
    tps = city_cost.chip_throughputs([model], CHIPS, _serving()).set_index(["origin", "phase"])["tps"]
    price_n = float(tokenlib.load("chips").set_index("id").loc[CHIPS["nvidia"], "price_usd"])
    hd = cost.chip_hour_cost(CHIPS["domestic"], electricity_cny_per_kwh=elec, capex_usd=price_d)
    hn = cost.chip_hour_cost(CHIPS["nvidia"], electricity_cny_per_kwh=elec, capex_usd=price_n)
    return {label: float(city_cost.fleet_cost_per_mtok(hd, hn, tps[("domestic", ph)], tps[("nvidia", ph)], share, util))
            for label, ph in (("input", "prefill"), ("output", "decode"))}


def _set(page: Any, name: str, value: Any) -> None:
    page.eval_on_selector(
        f"{CHART} [name='{name}']",
        """(el, v) => { el.value = String(v);
                         el.dispatchEvent(new Event('input', {bubbles: true}));
                         el.dispatchEvent(new Event('change', {bubbles: true})); }""",
        value,
    )


def _read(page: Any) -> dict[str, float]:
    texts = page.eval_on_selector_all(f"{CHART} svg text", "els => els.map(e => e.textContent)")
    out = {}
    for t in texts:
        m = LABEL.match(t.strip())
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_whatif_matches_tokenlib(browser: Any, server: str) -> None:
    context, page, errors = open_page(browser, f"{server}/{PAGE}", viewport={"width": 1280, "height": 900}, drawn=CHART)
    for name in ("elec", "util", "dprice", "dshare", "wmodel"):
        assert page.locator(f"{CHART} [name='{name}']").count() >= 1, f"slider/menu {name!r} missing"
    checked = 0
    for model, elec, util, price, share in SETTINGS:
        _set(page, "wmodel", model)
        _set(page, "elec", elec)
        _set(page, "util", util)
        _set(page, "dprice", price)
        _set(page, "dshare", share)
        page.evaluate(f"() => window.tokenbookViews['{CHART[1:]}'].runAsync().then(() => true)")
        want = expected(model, elec, util, price, share)
        got = _read_matching(page, want)
        assert set(got) == {"input", "output"}, f"labels not found, got {got}"
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=0.005), f"{model} e={elec} u={util} p={price} s={share}: {k}"
        checked += 1
    assert checked >= 3
    assert not errors, errors
    context.close()


# ----------------------------------------------------------------------------- the settings in the URL


def _open(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    return open_page(browser, url, drawn=CHART)


def _read_matching(page: Any, want: dict[str, float]) -> dict[str, float]:
    got: dict[str, float] = {}
    for _ in range(50):  # the view re-renders asynchronously
        got = _read(page)
        if got and all(abs(got.get(k, -1) / v - 1) <= 0.005 for k, v in want.items()):
            break
        page.wait_for_timeout(100)
    return got


def _slider(page: Any, name: str) -> str:
    return str(page.eval_on_selector(f"{CHART} [name='{name}']", "el => el.value"))


def test_whatif_settings_round_trip_through_the_url(browser: Any, server: str) -> None:
    query = "?wmodel=qwen2.5-72b&elec=0.8&util=0.9&dprice=40000&dshare=1"
    context, page, errors = _open(browser, f"{server}/{PAGE}{query}#fig-04-whatif")
    assert {n: _slider(page, n) for n in ("wmodel", "elec", "util", "dprice", "dshare")} == {
        "wmodel": "qwen2.5-72b", "elec": "0.8", "util": "0.9", "dprice": "40000", "dshare": "1"}
    want = expected("qwen2.5-72b", 0.8, 0.9, 40000, 1.0)
    got = _read_matching(page, want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=0.005), k
    assert not page.is_visible("#fig-04-whatif-state .tc-url-note")

    _set(page, "util", 0.45)  # the reader moves a slider: the URL follows
    page.wait_for_function("() => new URLSearchParams(location.search).get('util') === '0.45'", timeout=5_000)
    assert "elec=0.8" in page.url and page.url.endswith("#fig-04-whatif")
    moved = _read_matching(page, expected("qwen2.5-72b", 0.8, 0.45, 40000, 1.0))
    assert page.locator("#fig-04-whatif-state .tc-copy-link").is_visible()

    context2, page2, errors2 = _open(browser, page.url)
    again = _read_matching(page2, moved)
    assert again == moved and _slider(page2, "util") == "0.45"
    assert not errors and not errors2, errors + errors2
    context.close()
    context2.close()


def test_whatif_bad_url_values_fall_back_with_a_note(browser: Any, server: str) -> None:
    context, page, errors = _open(browser, f"{server}/{PAGE}?elec=5&util=abc&wmodel=gpt-9&dprice=30250")
    note = page.locator("#fig-04-whatif-state .tc-url-note")
    assert note.is_visible()
    text = note.inner_text()
    assert "elec=5" in text and "util=abc" in text and "wmodel=gpt-9" in text, text
    assert "dprice=30250" in text and "30500 is used" in text, text  # between the slider's steps: put on the nearest
    spec = page.evaluate("() => JSON.parse(document.getElementById('fig-04-whatif-spec').textContent)")
    vg = spec.get("wide", spec)  # the chart compiled to Vega (wide layout), or a Vega-Lite spec
    defaults = {p["name"]: p["value"] for p in vg.get("signals", vg.get("params", [])) if p.get("bind")}
    assert _slider(page, "wmodel") == defaults["wmodel"]
    assert float(_slider(page, "elec")) == pytest.approx(defaults["elec"])
    assert float(_slider(page, "util")) == pytest.approx(defaults["util"])
    assert _slider(page, "dprice") == "30500"
    want = expected(defaults["wmodel"], defaults["elec"], defaults["util"], 30500, defaults["dshare"])
    got = _read_matching(page, want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=0.005), k
    assert not errors, errors
    context.close()


def test_whatif_url_follows_a_slider_on_a_plain_link(browser: Any, server: str) -> None:
    """Without settings in the link the URL code loads only when the reader moves a slider, then writes it."""
    context, page, errors = _open(browser, f"{server}/{PAGE}")
    assert page.evaluate("() => !window.tokenbookState")  # not loaded up front: the page stays light
    assert page.locator("#fig-04-whatif-state .tc-copy-link").is_visible()
    _set(page, "dshare", 0.25)
    page.wait_for_function("() => new URLSearchParams(location.search).get('dshare') === '0.25'", timeout=5_000)
    assert not errors, errors
    context.close()


def test_whatif_settings_in_the_fragment_move_to_the_query_and_can_be_undone(browser: Any, server: str) -> None:
    # a link with its settings in the fragment only: moving one control keeps the others (now in the query) and
    # moving it back to the default leaves it in neither part of the address (it once stayed in the fragment)
    spec_defaults = "() => Object.fromEntries(JSON.parse(document.getElementById('fig-04-whatif-spec').textContent)" \
                    ".wide.signals.filter(s => s.bind).map(s => [s.name, s.value]))"
    context, page, errors = _open(browser, f"{server}/{PAGE}#fig-04-whatif&util=0.9&elec=0.8")
    defaults = page.evaluate(spec_defaults)
    assert _slider(page, "util") == "0.9" and _slider(page, "elec") == "0.8"
    _set(page, "util", defaults["util"])
    page.wait_for_function("() => !/util=/.test(location.href) && /elec=0.8/.test(location.search)", timeout=5_000)
    assert page.url.endswith("#fig-04-whatif"), page.url
    assert not errors, errors
    context.close()
