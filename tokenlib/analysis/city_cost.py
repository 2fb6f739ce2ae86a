"""The cost of a token by city: the article's closing equation, in closed form and at point values.

"The city that solves that equation — maximum tokens, minimum cost, domestic chips, zero dependency —
wears the crown." For a *site* (where the servers sit: its electricity price, PUE and the utilisation a
fleet there reaches), a *registration* (where the firm is registered: its compute vouchers), a *chip
mix* (share of domestic chips by count: all-Nvidia 0, mixed, all-domestic 1) and a *model*, this module
gives:

* **cost** per million tokens (CNY/Mtok), for input (prefill), cached input and output (decode), and a
  blend weighted by a traffic mix; without vouchers (the resource cost of making a token) and with them
  (a firm's private bill);
* **tokens** per MW of facility power (output tokens/s per MW; node power x PUE);
* **domestic share** of the tokens (the "domestic chips" and, as far as this book can measure it,
  "zero dependency" terms).

The closed form, per chip ``c`` (``d`` domestic, ``n`` Nvidia)::

    H_c  = (price_c x server_mult x CRF(wacc, life) / 8760 + hosting_usd) x cny_per_usd
           + node_W_c / 1000 x load_factor x PUE_site x electricity_site,c       # CNY per chip-hour
    cost = (s H_d (1 - v_d,reg) + (1 - s) H_n (1 - v_n,reg))
           / ((s T_d + (1 - s) T_n) x 3600 x utilisation_site) x 1e6              # CNY per Mtok

with ``s`` the domestic share by chip count, ``T_c`` tokens/s per chip from the kernel and ``v_c,reg`` the
voucher discount on the compute bill where the firm is registered
(:func:`tokenlib.analysis.subsidies.voucher_discount`). ``H_c`` is exactly
:func:`tokenlib.model.cost.chip_hour_cost` (a test checks it); :func:`chip_hour_cost_closed` restates it as a
pure function because the in-browser what-if (:func:`tokenlib.analysis.whatif.vega_cost_expr`) must mirror it
term by term.

The draws with uncertainty are :mod:`tokenlib.analysis.city_race`; the in-browser what-if is
:mod:`tokenlib.analysis.whatif`; the voucher rule is :mod:`tokenlib.analysis.subsidies`.

Units: CNY, USD, CNY/kWh, W, tokens/s per chip, CNY per million tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tokenlib.arrays import ArrayLike, FloatArray, FloatOrArray, scalar_or_array
from tokenlib.data import places as _places
from tokenlib.model import cost as _cost
from tokenlib.model import kernel
from tokenlib.analysis import subsidies as subsidy
from tokenlib.errors import check_choice, check_number

__all__ = ["ORIGINS", "MAD_TO_SIGMA", "FloatArray", "chip_hour_cost_closed", "fleet_cost_parts", "fleet_cost_per_mtok",
           "tokens_per_mw", "domestic_token_share", "blend", "electricity_ranges", "capacity_by_place",
           "throughput_error_sigma", "kernel_error", "Serving", "chip_throughputs", "chip_power_w", "equation_table"]

ORIGINS = ("domestic", "nvidia")
"""Chip origins: ``domestic`` = designed in China (chips.csv country CN), ``nvidia`` = the US chip."""

MAD_TO_SIGMA = 0.6744897501960817
"""Median absolute deviation of a standard normal: sigma = median |x| / 0.6745."""


# ----------------------------------------------------------------------------- the closed form


def chip_hour_cost_closed(
    price_usd: ArrayLike, power_w: ArrayLike, electricity_cny_per_kwh: ArrayLike, *, cny_per_usd: float, life_years: float,
    server_capex_multiplier: float, hosting_usd_per_kw_month: float, pue: float, load_factor: float,
    wacc: float = 0.0,
) -> FloatOrArray:
    """CNY per chip-hour: capex recovery + hosting (USD per kW-month of rated power, converted) + power.
    Same as ``cost.chip_hour_cost``.

    ``price_usd`` chip price (USD); ``power_w`` rated power per chip (W: :func:`tokenlib.model.cost.node_power_w`);
    ``electricity_cny_per_kwh`` (CNY/kWh); ``wacc`` cost of capital (0 = straight-line over ``life_years``).
    """
    p = check_number("price_usd", price_usd)
    t = check_number("power_w", power_w)
    e = check_number("electricity_cny_per_kwh", electricity_cny_per_kwh)
    life = float(check_number("life_years", life_years, allow_zero=False))
    crf = float(_cost.capital_recovery_factor(wacc, life))
    host = hosting_usd_per_kw_month * t / 1000.0 / _cost.HOURS_PER_MONTH
    out = (p * server_capex_multiplier * crf / _cost.HOURS_PER_YEAR + host) * cny_per_usd \
        + t / 1000.0 * load_factor * pue * e
    return scalar_or_array(out)


def fleet_cost_parts(
    hour_cost_domestic: ArrayLike, hour_cost_nvidia: ArrayLike, tps_domestic: ArrayLike, tps_nvidia: ArrayLike,
    domestic_share: ArrayLike, utilization: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Each origin's part of a fleet's cost per million tokens (CNY/Mtok), before vouchers: the bill of its
    domestic chips and of its Nvidia chips, each over all the fleet's tokens. The one fleet-cost formula:

    ``part_d = s H_d / ((s T_d + (1 - s) T_n) 3600 u) 1e6`` and ``part_n = (1 - s) H_n / (...) 1e6``.

    Hour costs in CNY per chip-hour, throughputs in tokens/s per chip, ``domestic_share`` ``s`` by chip count,
    utilisation ``u`` in (0, 1]. Broadcasts over arrays (always returns arrays).
    """
    s = check_number("domestic_share", domestic_share, upper=1.0)
    u = check_number("utilization", utilization, allow_zero=False, upper=1.0)
    hd, hn = np.asarray(hour_cost_domestic, dtype=float), np.asarray(hour_cost_nvidia, dtype=float)
    td, tn = np.asarray(tps_domestic, dtype=float), np.asarray(tps_nvidia, dtype=float)
    tokens = (s * td + (1.0 - s) * tn) * 3600.0 * u
    return np.asarray(s * hd / tokens * 1e6, dtype=float), np.asarray((1.0 - s) * hn / tokens * 1e6, dtype=float)


def fleet_cost_per_mtok(
    hour_cost_domestic: ArrayLike, hour_cost_nvidia: ArrayLike, tps_domestic: ArrayLike, tps_nvidia: ArrayLike,
    domestic_share: ArrayLike, utilization: ArrayLike, *, discount_domestic: ArrayLike = 0.0,
    discount_nvidia: ArrayLike = 0.0,
) -> FloatOrArray:
    """CNY per million tokens of a fleet with ``domestic_share`` of its chips domestic (by count).

    The parts of :func:`fleet_cost_parts`, each less its voucher discount (a share of the compute bill in
    [0, 1)). Broadcasts over arrays.
    """
    vd = check_number("discount_domestic", discount_domestic, upper=1.0)
    vn = check_number("discount_nvidia", discount_nvidia, upper=1.0)
    part_d, part_n = fleet_cost_parts(hour_cost_domestic, hour_cost_nvidia, tps_domestic, tps_nvidia,
                                      domestic_share, utilization)
    return scalar_or_array(part_d * (1.0 - vd) + part_n * (1.0 - vn))


def tokens_per_mw(tps_domestic: ArrayLike, tps_nvidia: ArrayLike, power_w_domestic: ArrayLike,
                  power_w_nvidia: ArrayLike, domestic_share: ArrayLike) -> FloatOrArray:
    """Tokens per second per MW of facility power for a fleet mix (power = node W x load x PUE, in W)."""
    s = check_number("domestic_share", domestic_share, upper=1.0)
    tok = s * np.asarray(tps_domestic, dtype=float) + (1.0 - s) * np.asarray(tps_nvidia, dtype=float)
    watts = s * np.asarray(power_w_domestic, dtype=float) + (1.0 - s) * np.asarray(power_w_nvidia, dtype=float)
    out = tok / watts * 1e6
    return scalar_or_array(out)


def domestic_token_share(tps_domestic: ArrayLike, tps_nvidia: ArrayLike, domestic_share: ArrayLike) -> FloatOrArray:
    """Share of the fleet's tokens made on domestic chips, given the share of chips (by count)."""
    s = check_number("domestic_share", domestic_share, upper=1.0)
    td, tn = np.asarray(tps_domestic, dtype=float), np.asarray(tps_nvidia, dtype=float)
    out = s * td / (s * td + (1.0 - s) * tn)
    return scalar_or_array(out)


def blend(costs: Mapping[str, ArrayLike], weights: Mapping[str, float]) -> FloatOrArray:
    """Traffic-weighted cost per Mtok: sum(w_k cost_k) / sum(w_k) over phases ``k``."""
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    out = sum(np.asarray(costs[k], dtype=float) * (w / total) for k, w in weights.items())
    return scalar_or_array(out)


# ----------------------------------------------------------------------------- inputs from data


def electricity_ranges(places_df: pd.DataFrame, *, proxies: Mapping[str, Sequence[str]] | None = None,
                       spread: float = 0.0, stale_before: int | None = None, stale_spread: float | None = None,
                       ) -> pd.DataFrame:
    """Electricity range (CNY/kWh) per place and chip origin, by the rule of :mod:`tokenlib.data.places`.

    Nvidia (any chip a subsidy does not name) pays the place's applicable unsubsidised rows; a domestic chip
    pays the same tariff, or, where a post-subsidy price is reserved for domestic chips, the lower of that
    and the unsubsidised price (columns ``sub_low`` / ``sub_high``; NaN where no subsidy applies). A place
    with no applicable row takes the pooled rows of ``proxies[place]`` (labelled a proxy). ``low`` / ``high``
    widen the rows by ``spread`` (a share), and rows dated before ``stale_before`` (or undated) by
    ``stale_spread``: old tariffs have drifted. For domestic chips in a subsidised place they are the
    range of ``min(subsidised, unsubsidised)``.
    """
    sp = float(check_number("spread", spread, upper=0.9))
    ssp = sp if stale_spread is None else float(check_number("stale_spread", stale_spread, upper=0.9))
    df = places_df[(places_df["metric"] == _places.METRIC) & places_df["value"].notna()]
    prox = dict(proxies or {})

    def widened(rows: pd.DataFrame) -> tuple[float, float, float, int]:
        v = rows["value"].to_numpy(dtype=float)
        yr = rows["year"].astype(float).to_numpy()
        old = ~np.isfinite(yr) | (yr < stale_before) if stale_before is not None else np.zeros(len(v), bool)
        w = np.where(old, ssp, sp)
        return float((v * (1 - w)).min()), float((v * (1 + w)).max()), float(np.median(v)), int(len(v))

    out = []
    for place in sorted(set(df["place"]) | set(prox)):
        own = _places.applicable_rows(df, place, "nvidia")
        basis = "own rows"
        if own.empty:
            src = list(prox.get(place, ()))
            own = pd.concat([_places.applicable_rows(df, p, "nvidia") for p in src]) if src else own
            basis = "proxy: " + ", ".join(src)
        if own.empty:
            continue
        lo, hi, med, n = widened(own)
        kind = "estimate" if (own["kind"] == "estimate").any() else "sourced"
        out.append({"place": place, "origin": "nvidia", "low": lo, "high": hi, "median": med, "n_rows": n,
                    "basis": basis if kind == "sourced" or basis != "own rows" else "own rows (incl. estimate)",
                    "subsidised": False, "sub_low": np.nan, "sub_high": np.nan})
        sub = _places.applicable_rows(df, place, "domestic") if _places._is_subsidised(df[df["place"] == place]).any() \
            else own.iloc[0:0]
        if len(sub):
            slo, shi, smed, sn = widened(sub)
            out.append({"place": place, "origin": "domestic", "low": min(lo, slo), "high": min(hi, shi),
                        "median": min(med, smed), "n_rows": n + sn, "basis": "subsidised rows, or the unsubsidised "
                        "price where lower", "subsidised": True, "sub_low": slo, "sub_high": shi})
        else:
            out.append({**out[-1], "origin": "domestic"})
    return pd.DataFrame(out)


def capacity_by_place(places_df: pd.DataFrame) -> pd.DataFrame:
    """Latest stated compute capacity per place (PFLOPS; targets excluded; largest value in the latest year)."""
    df = places_df[(places_df["metric"] == "compute_capacity_pflops") & places_df["value"].notna()].copy()
    df["year"] = df["year"].astype(float)
    df = df.sort_values(["place", "year", "value"]).groupby("place").tail(1)
    return df[["place", "year", "value", "basis", "source_url", "source_title"]].rename(
        columns={"value": "pflops"}).reset_index(drop=True)


def throughput_error_sigma(validation: pd.DataFrame, role: str = "validation") -> float:
    """Log-normal sigma of the kernel's throughput error, from :func:`tokenlib.model.calibrate.validate`.

    sigma = median |ln(calibrated / measured)| over the rows of ``role`` / 0.6745, so that draws have the
    same median absolute log error as the held-out measurements.
    """
    r = validation.loc[validation["role"] == role, "ratio"].to_numpy(dtype=float)
    if len(r) == 0:
        raise ValueError(f"no rows with role {role!r} in the validation table")
    return float(np.median(np.abs(np.log(r))) / MAD_TO_SIGMA)


def kernel_error(validation: pd.DataFrame, chip: str, *, unvalidated_sigma: float, min_rows: int = 3,
                 role: str = "validation") -> dict[str, Any]:
    """The kernel's error for ``chip``: ``bias`` (median calibrated / measured), ``sigma`` (log), ``n_rows``.

    A chip with at least ``min_rows`` held-out rows gets its own median ratio as bias and the pooled sigma
    (:func:`throughput_error_sigma`, too few rows per chip for their own); a chip with fewer gets the
    pooled bias and ``unvalidated_sigma`` (an assumption: the kernel was never tested on it).
    """
    v = validation[validation["role"] == role]
    if v.empty:
        raise ValueError(f"no rows with role {role!r} in the validation table")
    pooled = throughput_error_sigma(validation, role)
    own = v.loc[v["chip_id"] == chip, "ratio"].to_numpy(dtype=float)
    if len(own) >= min_rows:
        return {"chip": chip, "bias": float(np.median(own)), "sigma": pooled, "n_rows": int(len(own)), "validated": True}
    s = float(check_number("unvalidated_sigma", unvalidated_sigma))
    return {"chip": chip, "bias": float(np.median(v["ratio"].to_numpy(dtype=float))), "sigma": s,
            "n_rows": int(len(own)), "validated": False}


# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Serving:
    """How one model is served (same for every chip, so chips compare like for like). With
    ``tokens_per_s_per_user`` set, decode runs on each chip at the largest batch that still gives every user
    that speed (:func:`tokenlib.model.kernel.throughput`), and ``decode_batch`` is not used."""

    precision: str
    prefill_batch: float
    prefill_chips: float
    decode_batch: float
    decode_chips: float
    context: float
    tokens_per_s_per_user: float | None = None


def chip_throughputs(models: Sequence[str], chips: Mapping[str, str], serving: Mapping[str, Serving]) -> pd.DataFrame:
    """Calibrated kernel throughput (tokens/s per chip) per model, origin and phase."""
    rows = []
    for m in models:
        cfg = serving[m]
        for origin, chip in chips.items():
            check_choice("origin", origin, ORIGINS)
            for phase, batch, n in (("prefill", cfg.prefill_batch, cfg.prefill_chips),
                                    ("decode", cfg.decode_batch, cfg.decode_chips)):
                if phase == "decode" and cfg.tokens_per_s_per_user is not None:
                    tps = kernel.throughput(m, chip, phase, context=cfg.context, precision=cfg.precision, n_chips=n,
                                            tokens_per_s_per_user=cfg.tokens_per_s_per_user)
                else:
                    tps = kernel.throughput(m, chip, phase, batch=batch, context=cfg.context,
                                            precision=cfg.precision, n_chips=n)
                rows.append({"model": m, "origin": origin, "chip": chip, "phase": phase, "tps": float(tps)})
    return pd.DataFrame(rows)


def _tps(table: pd.DataFrame, model: str, origin: str, phase: str) -> float:
    sel = table[(table["model"] == model) & (table["origin"] == origin) & (table["phase"] == phase)]
    return float(sel["tps"].iloc[0])


def chip_power_w(chip: str, *, pue: float | None = None, load_factor: float | None = None,
                 power_basis: str | None = None) -> float:
    """Facility watts per chip while serving: rated power (node, :func:`tokenlib.model.cost.node_power_w`) x load x PUE."""
    lf = float(_cost.ASSUMPTIONS["load_factor"]["value"]) if load_factor is None else load_factor
    p = float(_cost.ASSUMPTIONS["pue"]["value"]) if pue is None else pue
    return float(_cost.node_power_w(chip, power_basis=power_basis)) * lf * p


def equation_table(
    *, models: Sequence[str], chips: Mapping[str, str], serving: Mapping[str, Serving], mixes: Mapping[str, float],
    electricity: pd.DataFrame, vouchers: pd.DataFrame, price_usd: Mapping[str, float], utilization: float,
    take_up: float, annual_spend_cny: float, weights: Mapping[str, float],
) -> pd.DataFrame:
    """The equation at point values: one row per place x mix x model, vouchers of the same place.

    Electricity = the median of the place's applicable rows (for each origin); PUE = the place's
    (:func:`tokenlib.data.places.pue`); voucher share = midpoint of its range times ``take_up``, cap = midpoint
    of its range. Columns: place, mix, model, domestic_share (chips), input / cached_input / output /
    blended cost (CNY/Mtok), tokens_per_mw (output tokens/s per MW at the place's PUE),
    domestic_token_share (of output tokens), power_share (share of the fleet's chip-hour cost that is
    electricity), pue, electricity_basis.
    """
    origins = list(chips)
    ok = electricity.groupby("place")["origin"].apply(lambda s: set(origins) <= set(s))
    places = sorted(str(p) for p in ok[ok].index)
    tps = chip_throughputs(models, chips, serving)
    frac = float(_cost.ASSUMPTIONS["cached_input_cost_fraction"]["value"])
    rows = []
    for place in places:
        pue = _places.pue_or(place, float(_cost.ASSUMPTIONS["pue"]["value"]))
        power = {o: chip_power_w(chips[o], pue=pue) for o in origins}
        hour, pw, disc, basis = {}, {}, {}, []
        for o in origins:
            e = electricity[(electricity["place"] == place) & (electricity["origin"] == o)].iloc[0]
            basis.append(f"{o}: {e['basis']}")
            hour[o] = float(_cost.chip_hour_cost(chips[o], electricity_cny_per_kwh=float(e["median"]),
                                                 capex_usd=float(price_usd[o]), pue=pue))
            pw[o] = power[o] / 1000.0 * float(e["median"])
            v = vouchers[(vouchers["place"] == place) & (vouchers["origin"] == o)]
            disc[o] = 0.0 if v.empty else float(subsidy.voucher_discount(
                (float(v["share_low"].iloc[0]) + float(v["share_high"].iloc[0])) / 2, take_up,
                float(v["cap_cny"].iloc[0]), annual_spend_cny))
        hd, hn = hour.get("domestic", 0.0), hour.get("nvidia", 0.0)
        for mix, s in mixes.items():
            for m in models:
                t = {ph: {o: _tps(tps, m, o, ph) for o in origins} for ph in ("prefill", "decode")}
                c = {ph: float(fleet_cost_per_mtok(hd, hn, t[ph].get("domestic", 0.0), t[ph].get("nvidia", 0.0), s,
                                                   utilization, discount_domestic=disc.get("domestic", 0.0),
                                                   discount_nvidia=disc.get("nvidia", 0.0)))
                     for ph in ("prefill", "decode")}
                c["cached_input"] = c["prefill"] * frac
                rows.append({
                    "place": place, "mix": mix, "model": m, "domestic_share": s,
                    "input": c["prefill"], "cached_input": c["cached_input"], "output": c["decode"],
                    "blended": float(blend(c, weights)),
                    "tokens_per_mw": float(tokens_per_mw(t["decode"].get("domestic", 1.0), t["decode"].get("nvidia", 1.0),
                                                         power.get("domestic", 1.0), power.get("nvidia", 1.0), s)),
                    "domestic_token_share": float(domestic_token_share(t["decode"].get("domestic", 0.0),
                                                                       t["decode"].get("nvidia", 0.0), s)),
                    "power_share": (s * pw.get("domestic", 0.0) + (1 - s) * pw.get("nvidia", 0.0)) / (s * hd + (1 - s) * hn),
                    "voucher_domestic": disc.get("domestic", 0.0), "voucher_nvidia": disc.get("nvidia", 0.0),
                    "pue": pue, "electricity_basis": "; ".join(basis),
                })
    return pd.DataFrame(rows)
