"""The calculator page's HTML: the controls, the answers at their defaults and the inputs as data.

:func:`html` writes the block the page's script (``static/tokenbook-calc.js``) makes live: every control
holds its default, every answer its value at the defaults (so the page reads without JavaScript), and
the payload of :func:`tokenlib.analysis.calculator.payload` sits in a ``<script type="application/json">``
(escaped with :func:`tokenlib.safehtml.script_json`). Every text that comes from data (chip, model and
place names, setup notes, credits) is escaped with :func:`tokenlib.safehtml.text`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from tokenlib import safehtml
from tokenlib.analysis import calculator as calc
from tokenlib.data import fx, load, load_providers, load_sources, specs
from tokenlib.model import cost

ID = "tc-calc"
CSS = '.tc-calc fieldset { border: 1px solid #ccc; border-radius: 4px; margin: 0.6rem 0; padding: 0.4rem 0.7rem; min-width: 0; } .tc-calc legend { font-weight: 600; font-size: 0.95rem; padding: 0 0.3rem; } .tc-calc .tc-field { display: flex; flex-wrap: wrap; align-items: center; gap: 0.2rem 0.6rem; margin: 0.35rem 0; } .tc-calc .tc-field label { flex: 0 0 13rem; font-weight: 600; font-size: 0.9rem; } .tc-calc .tc-field select, .tc-calc .tc-field input[type="number"] { min-height: 2rem; font-size: 0.9rem; max-width: 100%; } .tc-calc .tc-field input[type="range"] { flex: 1 1 8rem; min-width: 8rem; max-width: 18rem; height: 2rem; } .tc-calc output { font-variant-numeric: tabular-nums; min-width: 4rem; } .tc-calc .tc-answer { font-size: 1rem; margin: 0.3rem 0; } .tc-calc .tc-answer strong { font-variant-numeric: tabular-nums; } .tc-calc .tc-assumed { font-size: 0.8rem; color: #444; margin: 0.1rem 0 0.5rem; overflow-wrap: anywhere; } @media (max-width: 600px) { .tc-calc .tc-field label { flex: 1 0 100%; } } .tc-calc input[type="checkbox"] { width: 1.5rem; height: 1.5rem; margin: 0.25rem 0; }'
"""The calculator's layout (inline in its block, so pages without it do not download it)."""


UNREACHABLE = "\u2014 (speed not reachable)"
"""What the page shows for an answer that needs output tokens at a speed per user the chip cannot give."""


def number_text(x: float, digits: int = 3) -> str:
    """A number as the page shows it (the script's ``num`` is its twin): below 100, ``digits`` decimals; from
    100 up, 4 significant figures, with thousands separators from 1,000 (1229.262 -> "1,229", 123.46 -> "123.5")."""
    v = float(x)
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a < 100.0:
        return f"{v:.{digits}f}"
    if a < 1000.0:
        return f"{v:.1f}"
    n = int(math.floor(math.log10(a))) + 1  # integer digits (4 or more)
    step = 10.0 ** (n - 4)
    return f"{round(v / step) * step:,.0f}"


def utilisation_text(u: float) -> str:
    """A break-even utilisation (a share) as the page shows it: a percentage up to 100 %, else "never"."""
    return f"{100 * float(u):.1f}%" if u <= 1.0 else "never (above 100%)"


def utilisation_band_text(lo: float, hi: float) -> str:
    """A band of break-even utilisations, capped at 100 %: "10.8–95.0%", "10.8% to never", or "never"."""
    if lo > 1.0:
        return "never"
    if hi > 1.0:
        return f"{100 * float(lo):.1f}% to never"
    return f"{100 * float(lo):.1f}\u2013{100 * float(hi):.1f}%"


def electricity_text(p: Mapping[str, Any], s: calc.Settings) -> str:
    """The electricity readout: the price set by hand, the place's price, or the kernel's default (no place)."""
    if s.elec is not None:
        return f"{float(s.elec):.3f}"
    e = calc.electricity_and_pue(p, s.chip, s.place, None)[0]
    return f"place's price ({e:.3f})" if s.place else f"kernel default ({e:.3f})"


def _options(items: Sequence[tuple[str, str]], selected: str) -> str:
    e = safehtml.text
    return "".join(f'<option value="{e(v)}"{" selected" if v == selected else ""}>{e(label)}</option>'
                   for v, label in items)


def _number(name: str, label: str, value: float, bounds: Sequence[float], step: str, unit: str,
            placeholder: str = "") -> str:
    e = safehtml.text
    lo, hi = bounds
    ph = f' placeholder="{e(placeholder)}"' if placeholder else ""
    shown = "" if value != value else f"{value:g}"  # NaN: empty (the sourced price or the rental rate)
    return (f'<div class="tc-field"><label for="{ID}-{name}">{e(label)}</label>'
            f'<input type="number" id="{ID}-{name}" name="{name}" value="{shown}" min="{lo:g}" max="{hi:g}" '
            f'step="{step}"{ph} inputmode="decimal"> <span>{e(unit)}</span></div>'
            f'<p class="tc-url-note tc-field-note" data-note="{name}" role="status" hidden></p>')


def _range(name: str, label: str, value: float, bounds: Sequence[float], step: str, shown: str) -> str:
    e = safehtml.text
    lo, hi = bounds
    return (f'<div class="tc-field"><label for="{ID}-{name}">{e(label)}</label>'
            f'<input type="range" id="{ID}-{name}" name="{name}" value="{value!r}" min="{lo:g}" max="{hi:g}" '
            f'step="{step}"><output for="{ID}-{name}" data-show="{name}">{e(shown)}</output></div>')


def _answer(key: str, value: float | None, digits: int, before: str, after: str, tag: str = "strong") -> str:
    """An answer (``value`` None: it does not exist at this setting, the speed per user is not reachable).

    Its unit words (``after``) sit in their own span, hidden while there is no number to carry them."""
    e = safehtml.text
    unit = f'<span data-unit="{key}"{" hidden" if value is None else ""}>{e(after)}</span>' if after else ""
    if value is None:
        return f'{e(before)}<{tag} data-out="{key}" data-value="">{e(UNREACHABLE)}</{tag}>{unit}'
    return f'{e(before)}<{tag} data-out="{key}" data-value="{float(value)!r}">{e(number_text(value, digits))}</{tag}>{unit}'


def _band(key: str, band: tuple[float, float] | None, digits: int, kind: str = "band") -> str:
    if band is None:
        return f'<span data-{kind}="{key}" data-low="" data-high="">\u2014</span>'
    lo, hi = float(band[0]), float(band[1])
    text = (utilisation_band_text(lo, hi) if key == "breakeven_util"
            else f"{number_text(lo, digits)}\u2013{number_text(hi, digits)}")
    return f'<span data-{kind}="{key}" data-low="{lo!r}" data-high="{hi!r}">{safehtml.text(text)}</span>'


def _bands(key: str, r: Mapping[str, Any], digits: int) -> str:
    """The typical and worst kernel-error bands of an answer (break-even utilisation: as shares, shown capped)."""
    return (f"kernel error: typically {_band(key, r['band'][key], digits)}, "
            f"at worst {_band(key, r['worst'][key], digits, 'worst')}")


def html(payload: Mapping[str, Any], settings: calc.Settings | None = None) -> safehtml.Markup:
    """The calculator block at ``settings`` (default: the page's defaults)."""
    s = settings or calc.DEFAULTS
    r = calc.results(payload, s)
    e = safehtml.text
    err = payload["error"]
    rg = payload["ranges"]
    models = [(m["id"], m["name"]) for m in payload["models"]]
    names = {c["id"]: c["name"] for c in payload["chips"]}
    chips = [(c, names[c]) for c in payload["tps"][s.model]]
    places = [(p["id"], p["name"]) for p in payload["places"]] + [("none", "No place: the kernel's default PUE")]
    speeds = [("setup", "the setup's batch")] + [(f"{v:g}", f"{v:g} tokens/s or faster") for v in payload["speeds"]]
    speed_key = "setup" if s.speed is None else f"{s.speed:g}"
    setup = next(m["setup"] for m in payload["models"] if m["id"] == s.model)
    chip = next(c for c in payload["chips"] if c["id"] == s.chip)
    elec_shown = electricity_text(payload, s)
    band_pct = f"{err['median_pct']:g}"
    top = r["cheapest"].head(payload["cheapest_shown"])
    pname = {p["id"]: p["name"] for p in payload["places"]}
    cheap_rows = "".join(f"<li>{e(pname[row.place])}, {e(names[row.chip])}: {e(number_text(row.cost))}</li>"
                         for row in top.itertuples())
    n_under = int(r["cheapest"]["under_target"].sum())
    n_total = len(r["cheapest"])
    if n_total:
        first = r["cheapest"].iloc[0]
        cheapest_text = f"{pname[first.place]}, {names[first.chip]}"
        cheapest_cost = _answer("cheapest_cost", float(first.cost), 3, " at ", " yuan per million", tag="span")
    else:
        cheapest_text, cheapest_cost = "no place and chip reaches this speed per user", _answer(
            "cheapest_cost", None, 3, " at ", " yuan per million", tag="span")
    be = r["breakeven_util"]
    be_text = UNREACHABLE if be is None else utilisation_text(be)
    unreachable = ("" if r["reachable"] else
                   f"The {chip['name']} does not reach {s.speed:g} tokens/s per user for this model at its setup (at most "
                   f"{payload['tps'][s.model][s.chip]['user_speed']:.1f} at the setup's batch; fewer sequences per chip are "
                   "not enough). Choose a lower speed or another chip.")
    data = safehtml.script_json(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return safehtml.Markup(f"""<style>{CSS}</style>
<div class="tc-calc" id="{ID}" data-payload-id="{ID}-data">
<script type="application/json" id="{ID}-data">{data}</script>
<noscript><p class="tc-url-note">JavaScript is off: the controls below show the defaults and every answer is the
value at those defaults (the same numbers as the table after the calculator).</p></noscript>
<form class="tc-calc-form" autocomplete="off">
<p class="tc-url-note tc-link-note" id="{ID}-link-note" role="status" hidden></p>
<fieldset><legend>Setting</legend>
<div class="tc-field"><label for="{ID}-model">Model</label><select id="{ID}-model" name="model">{_options(models, s.model)}</select></div>
<p class="tc-assumed" data-show="setup">{e(setup)}.</p>
<div class="tc-field"><label for="{ID}-chip">Chip</label><select id="{ID}-chip" name="chip">{_options(chips, s.chip)}</select></div>
<div class="tc-field"><label for="{ID}-place">Place (power price and PUE)</label><select id="{ID}-place" name="place">{_options(places, s.place or "none")}</select></div>
<div class="tc-field"><label for="{ID}-speed">Speed per user</label><select id="{ID}-speed" name="speed">{_options(speeds, speed_key)}</select></div>
{_range("util", "Utilisation (share of hours serving)", s.util, rg["util"], "any", f"{s.util:.3f}")}
<div class="tc-field"><label for="{ID}-elecset">Set the electricity price</label><input type="checkbox" id="{ID}-elecset" name="elecset"{" checked" if s.elec is not None else ""}></div>
{_range("elec", "Electricity, CNY/kWh", s.elec if s.elec is not None else calc.electricity_and_pue(payload, s.chip, s.place, None)[0], rg["elec"], "0.001", elec_shown)}
{_number("price", "Chip price", float("nan") if s.price_usd is None else s.price_usd, rg["price"], "any", "USD",
         placeholder=(f"{chip['price']:,.0f} (sourced price)" if chip["price"] is not None
                      else f"rented: ${payload['k']['rent']:g}/chip-hour"))}
</fieldset>
<p class="tc-url-note tc-unreachable" role="status"{"" if unreachable else " hidden"}>{e(unreachable)}</p>
<div class="tc-results" aria-live="polite">
<p class="tc-answer">{_answer("output", r["output"], 3, "Output tokens: ", " yuan per million")}
({_bands("output", r, 3)})</p>
<p class="tc-answer">{_answer("input", r["input"], 3, "Input tokens: ", " yuan per million")};
cache hits {_answer("cached", r["cached"], 4, "", "")}</p>
<p class="tc-assumed">Chip-hour cost {_answer("hour", r["hour"], 3, "", " yuan")}; calibrated throughput
{_answer("tps_output", r["tps_output"], 1, "", " output tokens/s")} and {_answer("tps_input", r["tps_input"], 1, "", " input tokens/s")}
per chip; each user sees {_answer("user_speed", r["user_speed"], 1, "", " tokens/s", tag="span")}. Kernel error: on the {err['n']:g} held-out measurements the calibrated kernel's throughput was off by
{band_pct}% (median) and at worst by a factor {err['max_factor']:g}; cost, break-even utilisation and the margin price
move inversely with throughput, by the same amounts.</p>
</div>
<fieldset><legend>Inverse questions</legend>
{_number("list", "List price, output tokens", s.list_price, rg["list"], "any", "CNY per million")}
<p class="tc-answer">Break-even utilisation: <strong data-out="breakeven_util" data-value="{"" if be is None else repr(float(be))}">{e(be_text)}</strong>
({_bands("breakeven_util", r, 1)})</p>
<p class="tc-assumed" data-show="assumed-breakeven">The utilisation at which the output cost of this setting equals the list price.</p>
{_number("target", "Target cost, output tokens", s.target, rg["target"], "any", "CNY per million")}
<p class="tc-answer">Cheapest: <strong data-out="cheapest">{e(cheapest_text)}</strong>{cheapest_cost};
<span data-out="n_under" data-value="{n_under}">{n_under}</span> of <span data-out="n_total" data-value="{n_total}">{n_total}</span>
places and chips are under the target.</p>
<ol class="tc-cheapest" data-out="cheapest_list">{cheap_rows}</ol>
<p class="tc-assumed">Every place's own power price and PUE, each chip at its sourced price (or rented), at this model and
utilisation and speed; chips that cannot reach the speed are left out. Each cost carries the kernel's error
(typically ±{band_pct}%), so costs closer than that are not told apart by the kernel.</p>
{_range("margin", "Gross margin", s.margin, rg["margin"], "0.01", f"{100 * s.margin:.0f}%")}
<p class="tc-answer">{_answer("margin_price", r["margin_price"], 3, "Price for that margin: ", " yuan per million output tokens")}
({_bands("margin_price", r, 3)})</p>
<p class="tc-assumed">Gross margin = (price − cost) / price, over this setting's serving cost only.</p>
</fieldset>
</form>
</div>""")


# ----------------------------------------------------------------------------- the page's tables of inputs

COST_ASSUMPTIONS_SHOWN = ("life_years", "wacc", "server_capex_multiplier", "system_share_capex_multiplier", "pue",
                          "load_factor", "hosting_usd_per_kw_month", "utilization", "rental_usd_per_chip_hour",
                          "cached_input_cost_fraction")
"""The cost assumptions the page lists, in its order (node power comes after them, per system)."""


def credit(url: Any, providers: Mapping[str, tuple[str, str]]) -> str:
    """The provider a table row credits for ``url`` (data/providers.csv), or why there is none."""
    if not isinstance(url, str) or not url:
        return "assumption (no source)"
    return providers[url][0] if url in providers else "source not in providers.csv: " + url


def assumptions_table(providers: Mapping[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """One row per cost assumption, node power per system, the FX rate and the default list price, each credited."""
    known = load_providers() if providers is None else providers
    rows: list[dict[str, Any]] = []

    def add(assumption: str, value: str, kind: Any, basis: Any, url: Any) -> None:
        rows.append({"assumption": assumption, "value": value, "kind": kind, "basis": basis, "credit": credit(url, known)})

    for name in COST_ASSUMPTIONS_SHOWN:
        a = cost.ASSUMPTIONS[name]
        add(name.replace("_", " "), f"{float(a['value']):.4g}", a["kind"], a["note"], a.get("source"))
    a = cost.ASSUMPTIONS["node_power_factor"]
    add("node power factor (chips with no system row)", f"{cost.node_power_factor():.3g}", a["kind"], a["note"],
        a.get("source"))
    systems: list[dict[Any, Any]] = load("systems").to_dict("records")
    for s in systems:
        add(f"node power per chip, {specs.chip(str(s['chip_id'])).name} in {s['name']} (W)",
            f"{1000 * float(s['max_power_kw']) / float(s['n_chips']):.0f}", s["kind"],
            f"{float(s['max_power_kw']):g} kW for {s['n_chips']} chips ({str(s['basis']).replace('_', ' ')})",
            s["source_url"])
    fxrow = fx.row()  # the latest month, the rate the calculator uses
    add(f"CNY per USD ({fxrow['month']})", f"{float(fxrow['cny_per_usd']):.4f}", fxrow["kind"],
        "monthly average, the latest month in data/fx.csv", fxrow["source_url"])
    lp = calc.default_list_price_row(load("prices"))
    add("default list price (CNY per million output tokens)", f"{float(lp['output_price']):g}", lp["kind"],
        f"{lp['provider']} {lp['model']}, {lp['price_type']}, from {lp['effective_date']}", lp["source_url"])
    return pd.DataFrame(rows)


def chips_table(payload: Mapping[str, Any], providers: Mapping[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """The payload's chips: price (NaN = rented), its basis, capex multiplier, node watts per chip, credit."""
    known = load_providers() if providers is None else providers
    source = load("chips").set_index("id")["source_url"]
    return pd.DataFrame([{"chip": c["name"], "price_usd": c["price"] if c["price"] is not None else float("nan"),
                          "price_basis": c["basis"] if c["price"] is not None else "rented", "capex_multiplier": c["mult"],
                          "node_watts_per_chip": c["watts"], "credit": credit(source[c["id"]], known)}
                         for c in payload["chips"]])


def places_table(payload: Mapping[str, Any]) -> pd.DataFrame:
    """The payload's places: electricity price per chip origin (CNY/kWh) and PUE."""
    return pd.DataFrame([{"place": p["name"], "electricity_nvidia": p["elec"]["nvidia"],
                          "electricity_domestic": p["elec"]["domestic"], "pue": p["pue"]} for p in payload["places"]])


def input_rows(payload: Mapping[str, Any]) -> pd.DataFrame:
    """The data rows behind the page's inputs (chips and their prices, places' power and PUE, the FX month,
    the default list price, the calibration's deployments): what the page's source line credits."""
    chip_ids = [c["id"] for c in payload["chips"]]
    chips, chip_sources, place_rows = load("chips"), load_sources("chips"), load("places")
    prices = load("prices")
    return pd.concat([
        chips[chips["id"].isin(chip_ids)],
        chip_sources[chip_sources["item_id"].isin(chip_ids) & (chip_sources["field"] == "price_usd")],
        place_rows[place_rows["metric"].isin(["electricity_cny_per_kwh", "pue"])],
        fx.row().to_frame().T,
        prices.loc[[calc.default_list_price_row(prices).name]],
        load("deployments"),
    ])


def answers_table(payload: Mapping[str, Any], res: Mapping[str, Any]) -> pd.DataFrame:
    """The answers of ``res`` (:func:`tokenlib.analysis.calculator.results`) with their units and typical error
    bands (the held-out median miss; the chip-hour cost and the user's speed carry no kernel error)."""
    med = payload["error"]["median_pct"]
    rows = [
        ("Output tokens", res["output"], "CNY per million", res["band"]["output"]),
        ("Input tokens", res["input"], "CNY per million", calc.typical_band(res["input"], med)),
        ("Cache-hit input tokens", res["cached"], "CNY per million", calc.typical_band(res["cached"], med)),
        ("Chip-hour cost", res["hour"], "CNY", (res["hour"], res["hour"])),
        ("Speed each user sees", res["user_speed"], "output tokens/s", (res["user_speed"], res["user_speed"])),
        ("Break-even utilisation at the list price", 100 * res["breakeven_util"], "%",
         tuple(100 * x for x in res["band"]["breakeven_util"])),
        ("Price for the gross margin", res["margin_price"], "CNY per million output tokens", res["band"]["margin_price"]),
    ]
    return pd.DataFrame([{"answer": a, "value": v, "unit": u, "band_low": lo, "band_high": hi}
                         for a, v, u, (lo, hi) in rows])
