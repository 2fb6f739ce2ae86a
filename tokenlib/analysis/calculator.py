"""The cost calculator and its inverse questions (the book's calculator page, appendix/calculator).

A reader picks a model, a chip, a place, a utilisation, an electricity price and a chip price; the page
shows the cost per million tokens the kernel gives for that setting and answers three inverse questions:

* **break-even utilisation** for a list price: the utilisation at which cost equals the price,
  ``u* = H x 1e6 / (T x 3600 x price)`` (cost is inversely proportional to utilisation);
* **cheapest place and chip** for a target price: every (place, chip) the calculator knows, costed at
  the chosen model and utilisation, cheapest first, with whether it is under the target;
* **price for a gross margin**: ``price = cost / (1 - margin)`` (gross margin = (price - cost) / price).

Every number is :func:`tokenlib.model.cost.cost_per_mtok` for the setting: ``H`` is the kernel's chip-hour
cost (:func:`tokenlib.model.cost.chip_hour_cost`) and ``T`` its calibrated tokens/s per chip at the serving
setup of :data:`SERVING`. The page computes in the reader's browser from :func:`payload` (the per-chip,
per-place and per-model inputs, computed here at build time) with the closed form of
:func:`results`; a browser test checks it against the kernel on a grid. The error band of every answer
is the calibrated kernel's error on the held-out measurements (:func:`error_band`): throughput off by a
factor ``f`` moves cost, break-even utilisation and the margin price by the same factor.

Place semantics are the kernel's: with a place, its electricity price for the chip's origin and its PUE;
with an electricity price set by hand, the kernel's default PUE (as ``cost_per_mtok`` does when given
``electricity_cny_per_kwh``).

Units: CNY, USD, CNY/kWh, W, tokens/s per chip, CNY per million tokens, utilisation and margin as shares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from tokenlib.analysis.city_cost import chip_hour_cost_closed
from tokenlib.analysis.whatif import whatif_constants
from tokenlib.data import places, specs
from tokenlib.errors import check_choice, check_fraction, check_number
from tokenlib.model import calibrate, cost, frontier, kernel


@dataclass(frozen=True)
class Serving:
    """How a model is served in the calculator: precision, context, group size rule and batch per chip."""

    precision: str
    context: float
    decode_batch_per_chip: float | None = None  # None: the whole group serves ``decode_batch``
    decode_batch: float | None = None
    prefill_batch_per_chip: float = 1.0
    group_chips: int | None = None  # None: the fewest chips that hold the decode batch (kernel.min_chips)
    note: str = ""


SERVING: dict[str, Serving] = {
    "deepseek-v3": Serving("fp8", 4096, decode_batch_per_chip=16, group_chips=32,
                           note="FP8, 4,096 tokens of context, groups of 32 chips, 16 sequences per chip in decode and "
                                "1 prompt per chip in prefill (chapter 2's cost setting)"),
    "qwen2.5-72b": Serving("bf16", 4096, decode_batch=64,
                           note="BF16, 4,096 tokens of context, 64 sequences per group on the fewest chips that hold "
                                "them, 1 prompt per chip in prefill (chapter 3's cost setting)"),
}
"""Serving setup per model (the chapters' own cost settings, so the calculator's numbers are theirs)."""

CHIPS = ("h20", "h100-sxm", "h800", "h200", "a800", "ascend-910b", "ascend-910c", "l20", "mi300x")
"""Chips offered; those that cannot serve a model at its setup (no fit, missing figures) are left out for it."""

PHASES = {"output": "decode", "input": "prefill"}

SPEEDS = (10.0, 20.0, 30.0, 50.0)
"""Speeds per user offered (output tokens/s each user sees; reader's choices, not sourced figures). At a speed,
output tokens are costed at the largest decode batch that still gives every user that speed
(:func:`tokenlib.model.kernel.batch_for_speed`, via ``cost_per_mtok(tokens_per_s_per_user=...)``) on the
setup's group of chips; input tokens do not depend on it."""

#: How many places and chips the cheapest-first answer lists (the page's text and its script)
CHEAPEST_SHOWN = 5

RANGES: dict[str, tuple[float, float]] = {
    "util": (0.05, 1.0), "elec": (0.05, 2.0), "price": (500.0, 200_000.0),
    "list": (0.01, 200.0), "target": (0.01, 200.0), "margin": (0.0, 0.95),
}
"""What the controls accept (a URL value outside falls back to the default, with a note)."""


@dataclass(frozen=True)
class Settings:
    """One calculator setting. ``place=""``: no place (electricity ``elec`` or the kernel's default median);
    ``elec=None``: the place's price; ``price_usd=None``: chips.csv's price (or the rental rate without one)."""

    model: str = "deepseek-v3"
    chip: str = "h20"
    place: str = "beijing"
    util: float = float(cost.ASSUMPTIONS["utilization"]["value"])
    elec: float | None = None
    price_usd: float | None = None
    speed: float | None = None  # None: the setup's batch; else tokens/s per user (one of SPEEDS on the page)
    list_price: float = 8.0
    target: float = 1.0
    margin: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)


DEFAULTS = Settings()
"""The page's defaults. ``list_price`` 8 CNY per million output tokens is deepseek-chat's February-2025 list
price (data/prices.csv, the row :func:`default_list_price_row` returns; a test checks they agree); ``target`` (1 CNY) and ``margin``
(50%) are example inputs, not sourced figures."""


def default_list_price_row(prices: pd.DataFrame) -> pd.Series:
    """The prices.csv row behind the default list price: deepseek-chat's standard CNY price effective in
    February 2025 (DeepSeek-V3's price after its promotion ended), the first such row."""
    rows = prices[(prices["model"] == "deepseek-chat") & (prices["price_type"] == "standard")
                  & prices["effective_date"].astype(str).str.startswith("2025-02") & (prices["currency"] == "CNY")]
    if rows.empty:
        raise ValueError("data/prices.csv has no deepseek-chat standard CNY row effective in 2025-02 (the default list price)")
    return rows.sort_values("effective_date").iloc[0]


def serving_for(model: str, chip: str) -> dict[str, float]:
    """Decode and prefill batch and group size of ``model`` on ``chip`` (:data:`SERVING`)."""
    s = SERVING[check_choice("model", model, tuple(SERVING))]
    if s.group_chips is not None:
        n = float(s.group_chips)
        dec = float(s.decode_batch_per_chip or 1) * n if s.decode_batch is None else float(s.decode_batch)
    else:
        dec = float(s.decode_batch if s.decode_batch is not None else 1)
        n = float(kernel.min_chips(model, chip, batch=dec, context=s.context, precision=s.precision))
    return {"n_chips": n, "decode_batch": dec, "prefill_batch": float(s.prefill_batch_per_chip) * n,
            "context": float(s.context)}


def kernel_cost(settings: Settings, phase: str = "output") -> float:
    """The kernel's own cost per Mtok (CNY) for a setting: :func:`tokenlib.model.cost.cost_per_mtok`."""
    ph = PHASES[check_choice("phase", phase, tuple(PHASES))]
    s = SERVING[check_choice("model", settings.model, tuple(SERVING))]
    sv = serving_for(settings.model, settings.chip)
    if settings.speed is not None:
        check_number("speed", settings.speed, allow_zero=False)
    where: dict[str, Any] = ({"electricity_cny_per_kwh": settings.elec} if settings.elec is not None
                             else {"place": settings.place} if settings.place else {})
    at: dict[str, Any] = ({"tokens_per_s_per_user": settings.speed} if ph == "decode" and settings.speed is not None
                          else {"batch": sv["decode_batch" if ph == "decode" else "prefill_batch"]})
    return float(cost.cost_per_mtok(
        settings.model, settings.chip, ph, context=s.context, precision=s.precision, n_chips=sv["n_chips"],
        utilization=settings.util, capex_usd=settings.price_usd, **at, **where))


# ----------------------------------------------------------------------------- the inverse answers


def breakeven_utilization(cost_at_full_use: Any, list_price: Any) -> Any:
    """Utilisation at which cost equals ``list_price``: cost at utilisation 1 / price (> 1: never breaks even).

    Cost per Mtok is the chip-hour cost over tokens served, so it scales as 1 / utilisation.
    """
    c = check_number("cost_at_full_use", cost_at_full_use, allow_zero=False)
    p = check_number("list_price", list_price, allow_zero=False)
    out = c / p
    return float(out) if np.ndim(out) == 0 else out


def price_for_margin(cost_per_mtok: Any, margin: Any) -> Any:
    """List price at which ``cost_per_mtok`` leaves gross margin ``margin`` ((price - cost) / price, in [0, 1))."""
    c = check_number("cost_per_mtok", cost_per_mtok, allow_zero=False)
    m = check_fraction("margin", margin, closed_low=True, closed_high=False)
    out = c / (1.0 - m)
    return float(out) if np.ndim(out) == 0 else out


def cheapest(costs: pd.DataFrame, target: float) -> pd.DataFrame:
    """``costs`` (columns place, chip, cost) cheapest first, with ``under_target`` = cost <= ``target``."""
    t = float(check_number("target", target, allow_zero=False))
    missing = {"place", "chip", "cost"} - set(costs.columns)
    if missing:
        raise ValueError(f"cheapest needs columns place, chip and cost; missing {sorted(missing)}")
    out = costs.sort_values(["cost", "place", "chip"], kind="mergesort").reset_index(drop=True)
    out["under_target"] = out["cost"] <= t
    return out


def error_band(value: Any, factor: float) -> tuple[Any, Any]:
    """(low, high) = (value / factor, value x factor): the range a throughput error of up to ``factor`` allows."""
    f = float(check_number("factor", factor, allow_zero=False))
    if f < 1.0:
        raise ValueError(f"factor must be >= 1 (a ratio either way), got {f!r}")
    return value / f, value * f


def typical_band(value: Any, median_pct: float) -> tuple[Any, Any]:
    """(low, high) of a quantity inversely proportional to throughput when throughput is off by the median
    held-out error ``m`` either way: (value / (1 + m), value / (1 - m))."""
    m = float(check_number("median_pct", median_pct, upper=99.0)) / 100.0
    return value / (1.0 + m), value / (1.0 - m)


def kernel_error() -> dict[str, float]:
    """The calibrated kernel's error on the held-out measurements (``role == "validation"`` rows):
    median absolute % error of tokens/s per chip, worst factor either way, number of cases."""
    s = calibrate.summary(calibrate.validate())["validation"]
    return {"median_pct": float(s["median_abs_error_pct_calibrated"]), "max_factor": float(s["max_factor_calibrated"]),
            "n": float(s["n"])}


def kernel_answers(settings: Settings) -> dict[str, Any]:
    """The three inverse answers computed with the kernel itself (the truth the page is tested against)."""
    out_cost = kernel_cost(settings, "output")
    full = kernel_cost(replace(settings, util=1.0), "output")
    grid = []
    chips = chips_for(settings.model)
    for place in places.places_with_electricity():
        for chip in chips:
            try:
                c = kernel_cost(replace(settings, place=place, chip=chip, elec=None, price_usd=None))
            except ValueError:  # no batch reaches the speed on this chip: it cannot serve the question
                continue
            grid.append({"place": place, "chip": chip, "cost": c})
    return {"output": out_cost, "input": kernel_cost(settings, "input"),
            "breakeven_util": breakeven_utilization(full, settings.list_price),
            "margin_price": price_for_margin(out_cost, settings.margin),
            "cheapest": cheapest(pd.DataFrame(grid), settings.target)}


# ----------------------------------------------------------------------------- the page's inputs


def chips_for(model: str) -> list[str]:
    """The chips of :data:`CHIPS` the kernel can cost ``model`` on at its :data:`SERVING` setup."""
    check_choice("model", model, tuple(SERVING))  # a bad model is an error, not a model no chip serves
    out = []
    for chip in CHIPS:
        try:
            kernel_cost(replace(DEFAULTS, model=model, chip=chip, place="", elec=0.5), "output")
            kernel_cost(replace(DEFAULTS, model=model, chip=chip, place="", elec=0.5), "input")
        except ValueError:  # the chip cannot hold or serve the model at its setup
            continue
        out.append(chip)
    return out


def payload() -> dict[str, Any]:
    """Everything the page's script needs, as plain JSON-able data (computed once, at build time).

    ``tps``: calibrated tokens/s per chip per model, chip and phase at the :data:`SERVING` setup; ``chips``:
    price (null = rented), capex multiplier for its price basis, node watts per chip, origin; ``places``:
    electricity per origin and PUE; ``k``: the cost constants of :mod:`tokenlib.model.cost`.
    """
    a = cost.ASSUMPTIONS
    # the what-if's constants (fx, life, wacc, mult for a card price, host per kW-month, pue, load) plus the calculator's own
    k = dict(whatif_constants())
    k.update({"crf": float(cost.capital_recovery_factor(k["wacc"], k["life"])), "hours": cost.HOURS_PER_YEAR,
              "hours_month": cost.HOURS_PER_MONTH, "rent": float(a["rental_usd_per_chip_hour"]["value"]),
              "cached": float(a["cached_input_cost_fraction"]["value"]),
              "elec_default": float(cost.default_electricity_cny_per_kwh()),
              "mult_system": float(a["system_share_capex_multiplier"]["value"])})
    models: list[dict[str, Any]] = []
    tps: dict[str, dict[str, dict[str, Any]]] = {}
    used: set[str] = set()
    for m in SERVING:
        cs = chips_for(m)
        used.update(cs)
        models.append({"id": m, "name": specs.model(m).name, "setup": SERVING[m].note})
        tps[m] = {}
        for c in cs:
            sv = serving_for(m, c)
            s = SERVING[m]
            tps[m][c] = {
                ph: float(kernel.throughput(m, c, kph, batch=sv["decode_batch" if kph == "decode" else "prefill_batch"],
                                            context=s.context, precision=s.precision, n_chips=sv["n_chips"]))
                for ph, kph in PHASES.items()}
            tps[m][c]["n_chips"] = sv["n_chips"]
            fr = frontier.frontier(m, c, context=s.context, precision=s.precision, n_chips=sv["n_chips"],
                                   batches=[sv["decode_batch"]])
            tps[m][c]["user_speed"] = float(fr["tokens_per_s_per_user"].iloc[0])
            at: dict[str, float | None] = {}
            for v in SPEEDS:
                t = float(kernel.throughput(m, c, "decode", tokens_per_s_per_user=v, context=s.context,
                                            precision=s.precision, n_chips=sv["n_chips"], on_oom="nan"))
                at[f"{v:g}"] = t if math.isfinite(t) else None
            tps[m][c]["at_speed"] = at
    chips = []
    for c in CHIPS:
        if c not in used:
            continue
        ch = specs.chip(c)
        price = float(ch.price_usd)
        system = ch.price_basis == "system_share"
        chips.append({"id": c, "name": ch.name, "origin": "domestic" if ch.country == "CN" else "nvidia",
                      "price": price if math.isfinite(price) else None,
                      "mult": k["mult_system"] if system else k["mult"],
                      "basis": ch.price_basis or "card", "watts": float(cost.node_power_w(c))})
    plist = []
    for p in places.places_with_electricity():
        pue = places.pue_or(p, k["pue"])
        plist.append({"id": p, "name": places.display_name(p), "pue": pue,
                      "elec": {o: float(places.electricity_cny_per_kwh(p, origin=o)) for o in places.ORIGINS}})
    d = asdict(DEFAULTS)
    d.pop("extra")
    return {"k": k, "models": models, "chips": chips, "places": plist, "tps": tps, "error": kernel_error(),
            "defaults": d, "ranges": {n: list(r) for n, r in RANGES.items()}, "speeds": list(SPEEDS),
            "cheapest_shown": CHEAPEST_SHOWN}


def _find(items: Sequence[Mapping[str, Any]], key: str, what: str) -> Mapping[str, Any]:
    for it in items:
        if it["id"] == key:
            return it
    raise ValueError(f"unknown {what} {key!r}; choose one of {[str(i['id']) for i in items]}")


def electricity_and_pue(p: Mapping[str, Any], chip: str, place: str, elec: float | None) -> tuple[float, float]:
    """(CNY/kWh, PUE) a setting prices power at, from the payload: a price set by hand with the kernel's default
    PUE; else the place's price for the chip's origin and the place's PUE; with no place, the kernel's defaults."""
    k = p["k"]
    if elec is not None:
        return float(elec), float(k["pue"])
    if place:
        pl = _find(p["places"], place, "place")
        return float(pl["elec"][_find(p["chips"], chip, "chip")["origin"]]), float(pl["pue"])
    return float(k["elec_default"]), float(k["pue"])


def hour_cost(p: Mapping[str, Any], chip: str, place: str, elec: float | None, price_usd: float | None) -> float:
    """Chip-hour cost (CNY) from the payload: the closed form of :func:`tokenlib.model.cost.chip_hour_cost`."""
    k = p["k"]
    ch = _find(p["chips"], chip, "chip")
    price = ch["price"] if price_usd is None else float(price_usd)
    mult = ch["mult"] if price_usd is None or ch["price"] is not None else k["mult"]
    e, pue = electricity_and_pue(p, chip, place, elec)
    if price is None:
        return float(k["rent"] * k["fx"])
    # the one closed form the what-if also uses (the page's script is its JavaScript twin)
    return float(chip_hour_cost_closed(price, ch["watts"], e, cny_per_usd=k["fx"], life_years=k["life"], wacc=k["wacc"],
                                       server_capex_multiplier=mult, hosting_usd_per_kw_month=k["host"],
                                       pue=pue, load_factor=k["load"]))


def results(p: Mapping[str, Any], s: Settings) -> dict[str, Any]:
    """What the page shows for setting ``s``, from payload ``p`` alone: the formulas the page's script runs."""
    tps = p["tps"][check_choice("model", s.model, tuple(p["tps"]))]
    if s.chip not in tps:
        raise ValueError(f"chip {s.chip!r} cannot serve {s.model!r} at the calculator's setup; choose one of {sorted(tps)}")
    check_fraction("util", s.util)  # a share of hours serving, in (0, 1]
    h = hour_cost(p, s.chip, s.place, s.elec, s.price_usd)
    f, med = float(p["error"]["max_factor"]), float(p["error"]["median_pct"])

    def out_tps(chip: str) -> float | None:
        if s.speed is None:
            return float(tps[chip]["output"])
        key = f"{float(s.speed):g}"
        if key not in tps[chip]["at_speed"]:
            raise ValueError(f"speed {s.speed!r} tokens/s per user is not one the page offers: {list(p['speeds'])}")
        v = tps[chip]["at_speed"][key]
        return None if v is None else float(v)

    t_out = out_tps(s.chip)

    def per_mtok(hour: float, t: float, u: float) -> float:
        return hour / (t * 3600.0 * u) * 1e6

    inp = per_mtok(h, tps[s.chip]["input"], s.util)
    speeds = {c: out_tps(c) for c in tps}
    grid = [{"place": pl["id"], "chip": c, "cost": per_mtok(hour_cost(p, c, pl["id"], None, None), t, s.util)}
            for pl in p["places"] for c, t in speeds.items() if t is not None]
    common = {"hour": h, "input": inp, "cached": inp * p["k"]["cached"], "tps_input": tps[s.chip]["input"],
              "cheapest": cheapest(pd.DataFrame(grid, columns=["place", "chip", "cost"]), s.target)}
    if t_out is None:  # no batch gives every user that speed: the answers that need output tokens do not exist
        return {**common, "reachable": False, "output": None, "tps_output": None, "user_speed": None,
                "breakeven_util": None, "margin_price": None,
                "band": {"output": None, "breakeven_util": None, "margin_price": None},
                "worst": {"output": None, "breakeven_util": None, "margin_price": None}}
    out = per_mtok(h, t_out, s.util)
    be = breakeven_utilization(per_mtok(h, t_out, 1.0), s.list_price)
    mp = price_for_margin(out, s.margin)
    return {**common, "reachable": True, "output": out,
            "user_speed": float(tps[s.chip]["user_speed"]) if s.speed is None else float(s.speed),
            "tps_output": t_out, "breakeven_util": be, "margin_price": mp,
            "band": {"output": typical_band(out, med), "breakeven_util": typical_band(be, med),
                     "margin_price": typical_band(mp, med)},
            "worst": {"output": error_band(out, f), "breakeven_util": error_band(be, f), "margin_price": error_band(mp, f)}}

