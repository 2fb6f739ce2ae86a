"""The article's closing equation, written down and solved with uncertainty (chapter 4).

"The city that solves that equation — maximum tokens, minimum cost, domestic chips, zero dependency —
wears the crown." For a *place* (its electricity price and compute vouchers), a *chip mix* (share of
domestic chips by count: all-Nvidia 0, mixed, all-domestic 1) and a *model*, this module gives:

* **cost** per million tokens (CNY/Mtok), for input (prefill), cached input and output (decode), and a
  blend weighted by a traffic mix;
* **tokens** per MW of facility power (output tokens/s per MW);
* **domestic share** of the tokens (the "domestic chips" and, as far as this book can measure it,
  "zero dependency" terms).

The closed form, per chip ``c`` (``d`` domestic, ``n`` Nvidia)::

    H_c  = (price_c x server_mult / (life_years x 8760) + hosting_usd) x cny_per_usd
           + TDP_c / 1000 x load_factor x PUE x electricity_cny_per_kwh          # CNY per chip-hour
    cost = (s H_d (1 - v_d) + (1 - s) H_n (1 - v_n))
           / ((s T_d + (1 - s) T_n) x 3600 x utilisation) x 1e6                  # CNY per Mtok

with ``s`` the domestic share by chip count, ``T_c`` tokens/s per chip from the kernel and ``v_c`` the
voucher discount on the compute bill. ``H_c`` is exactly :func:`tokenlib.cost.chip_hour_cost` (a test
checks it); :func:`chip_hour_cost_closed` restates it as a pure function because the in-browser
what-if (:func:`vega_cost_expr`) must mirror it term by term. For ``s`` in {0, 1} and no voucher the
cost equals :func:`tokenlib.cost.cost_per_mtok`.

The Monte Carlo (:func:`monte_carlo`) draws the uncertain inputs — chip prices, each chip's throughput
within the kernel's validation error, electricity within each place's sourced range, utilisation and
voucher take-up — and evaluates every draw at once through :func:`tokenlib.cost.chip_hour_cost`
(numpy broadcasting), so 10^5 draws take well under a second.

Units: CNY, USD, CNY/kWh, W, tokens/s per chip, CNY per million tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tokenlib import cost as _cost
from tokenlib import fx, kernel, specs
from tokenlib import subsidy
from tokenlib.errors import check_choice, check_number

FloatArray = npt.NDArray[np.float64]

ORIGINS = ("domestic", "nvidia")
"""Chip origins: ``domestic`` = designed in China (chips.csv country CN), ``nvidia`` = the US chip."""

MAD_TO_SIGMA = 0.6744897501960817
"""Median absolute deviation of a standard normal: sigma = median |x| / 0.6745."""


# ----------------------------------------------------------------------------- the closed form


def chip_hour_cost_closed(
    price_usd: Any, tdp_w: Any, electricity_cny_per_kwh: Any, *, cny_per_usd: float, life_years: float,
    server_capex_multiplier: float, hosting_usd_per_chip_hour: float, pue: float, load_factor: float,
) -> Any:
    """CNY per chip-hour: capex amortisation + hosting (USD, converted) + power. Same as ``cost.chip_hour_cost``.

    ``price_usd`` chip price (USD); ``tdp_w`` board power (W); ``electricity_cny_per_kwh`` (CNY/kWh).
    """
    p = check_number("price_usd", price_usd)
    t = check_number("tdp_w", tdp_w)
    e = check_number("electricity_cny_per_kwh", electricity_cny_per_kwh)
    life = float(check_number("life_years", life_years, allow_zero=False))
    out = (p * server_capex_multiplier / (life * _cost.HOURS_PER_YEAR) + hosting_usd_per_chip_hour) * cny_per_usd \
        + t / 1000.0 * load_factor * pue * e
    return float(out) if np.ndim(out) == 0 else out


def fleet_cost_per_mtok(
    hour_cost_domestic: Any, hour_cost_nvidia: Any, tps_domestic: Any, tps_nvidia: Any, domestic_share: Any,
    utilization: Any, *, discount_domestic: Any = 0.0, discount_nvidia: Any = 0.0,
) -> Any:
    """CNY per million tokens of a fleet with ``domestic_share`` of its chips domestic (by count).

    Hour costs in CNY per chip-hour, throughputs in tokens/s per chip, utilisation in (0, 1], discounts
    (vouchers) as shares of the compute bill in [0, 1). Broadcasts over arrays.
    """
    s = check_number("domestic_share", domestic_share, upper=1.0)
    u = check_number("utilization", utilization, allow_zero=False, upper=1.0)
    vd = check_number("discount_domestic", discount_domestic, upper=1.0)
    vn = check_number("discount_nvidia", discount_nvidia, upper=1.0)
    hd, hn = np.asarray(hour_cost_domestic, dtype=float), np.asarray(hour_cost_nvidia, dtype=float)
    td, tn = np.asarray(tps_domestic, dtype=float), np.asarray(tps_nvidia, dtype=float)
    bill = s * hd * (1.0 - vd) + (1.0 - s) * hn * (1.0 - vn)
    tokens = (s * td + (1.0 - s) * tn) * 3600.0 * u
    out = bill / tokens * 1e6
    return float(out) if np.ndim(out) == 0 else out


def tokens_per_mw(tps_domestic: Any, tps_nvidia: Any, power_w_domestic: Any, power_w_nvidia: Any,
                  domestic_share: Any) -> Any:
    """Tokens per second per MW of facility power for a fleet mix (power = TDP x load x PUE, in W)."""
    s = check_number("domestic_share", domestic_share, upper=1.0)
    tok = s * np.asarray(tps_domestic, dtype=float) + (1.0 - s) * np.asarray(tps_nvidia, dtype=float)
    watts = s * np.asarray(power_w_domestic, dtype=float) + (1.0 - s) * np.asarray(power_w_nvidia, dtype=float)
    out = tok / watts * 1e6
    return float(out) if np.ndim(out) == 0 else out


def domestic_token_share(tps_domestic: Any, tps_nvidia: Any, domestic_share: Any) -> Any:
    """Share of the fleet's tokens made on domestic chips, given the share of chips (by count)."""
    s = check_number("domestic_share", domestic_share, upper=1.0)
    td, tn = np.asarray(tps_domestic, dtype=float), np.asarray(tps_nvidia, dtype=float)
    out = s * td / (s * td + (1.0 - s) * tn)
    return float(out) if np.ndim(out) == 0 else out


def voucher_discount(max_share: Any, take_up: Any, cap_cny: Any, annual_spend_cny: Any) -> Any:
    """Effective discount on a firm's compute bill from a compute voucher (算力券).

    ``min(take_up x max_share x spend, cap) / spend``; ``cap_cny`` NaN = no cap stated. Shares in [0, 1].
    The voucher arithmetic itself is :func:`tokenlib.subsidy.effective_discount`; take-up scales the share.
    """
    m = check_number("max_share", max_share, upper=1.0)
    t = check_number("take_up", take_up, upper=1.0)
    return subsidy.effective_discount(annual_spend_cny, m * t, cap_per_firm_cny=cap_cny)


def blend(costs: Mapping[str, Any], weights: Mapping[str, float]) -> Any:
    """Traffic-weighted cost per Mtok: sum(w_k cost_k) / sum(w_k) over phases ``k``."""
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    out = sum(np.asarray(costs[k], dtype=float) * (w / total) for k, w in weights.items())
    return float(out) if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------- inputs from data


def _basis(df: pd.DataFrame) -> pd.Series:
    return df["basis"].fillna("").astype(str).str.lower()


def electricity_ranges(places_df: pd.DataFrame, *, proxies: Mapping[str, Sequence[str]] | None = None,
                       spread: float = 0.0) -> pd.DataFrame:
    """Sourced electricity range (CNY/kWh) per place and chip origin.

    Rules (documented, mechanical): rows of metric ``electricity_cny_per_kwh`` with a value; a row whose
    basis mentions "domestic chips" (post-subsidy prices for data centres running domestic chips) applies
    to domestic chips only. A (place, origin) with no applicable row takes the pooled rows of the places
    named in ``proxies[place]`` and is labelled a proxy. ``low`` / ``high`` are the min / max of the rows
    widened by ``spread`` (a share; tariff classes and time-of-day spread that the rows do not carry).
    """
    sp = float(check_number("spread", spread, upper=0.9))
    df = places_df[(places_df["metric"] == "electricity_cny_per_kwh") & places_df["value"].notna()].copy()
    df["domestic_only"] = _basis(df).str.contains("domestic chips")
    prox = dict(proxies or {})
    out = []
    for place in sorted(set(df["place"]) | set(prox)):
        for origin in ORIGINS:
            ok = df["domestic_only"] == False if origin == "nvidia" else pd.Series(True, index=df.index)  # noqa: E712
            own = df[(df["place"] == place) & ok]
            basis = "own rows"
            if own.empty:
                src = list(prox.get(place, ()))
                own = df[df["place"].isin(src) & ok]
                basis = "proxy: " + ", ".join(src)
            if own.empty:
                continue
            v = own["value"].to_numpy(dtype=float)
            out.append({"place": place, "origin": origin, "low": float(v.min()) * (1 - sp),
                        "high": float(v.max()) * (1 + sp), "median": float(np.median(v)), "n_rows": int(len(v)),
                        "basis": basis, "subsidised": bool(own["domestic_only"].any())})
    return pd.DataFrame(out)


def voucher_terms(places_df: pd.DataFrame) -> pd.DataFrame:
    """Compute-voucher terms per place and chip origin: max share range and per-firm cap (CNY, NaN = none).

    Excluded by rule: training vouchers (训力券, not inference), one-year early-stage top-ups, rows whose
    notes flag a CONFLICT with the policy text, and model vouchers (模型券). A basis naming domestic
    compute applies to domestic chips only; one naming other / non-domestic compute to Nvidia only.
    """
    b = _basis(places_df)
    notes = places_df["notes"].fillna("").astype(str)
    bad = b.str.contains("training") | b.str.contains("max 1 year") | b.str.contains("model voucher") \
        | notes.str.startswith("CONFLICT")
    shares = places_df[(places_df["metric"] == "voucher_max_share") & ~bad & places_df["value"].notna()]
    caps = places_df[(places_df["metric"] == "voucher_cap_per_firm_cny") & ~bad & places_df["value"].notna()]
    out = []
    for place in sorted(set(shares["place"])):
        rows = shares[shares["place"] == place]
        rb = _basis(rows)
        nv_only = rb.str.contains("non-domestic") | rb.str.contains("other")
        dom_only = rb.str.contains("domestic") & ~nv_only
        cap_rows = caps.loc[caps["place"] == place, "value"]
        cap = float(cap_rows.min()) if len(cap_rows) else float("nan")
        for origin in ORIGINS:
            keep = ~nv_only if origin == "domestic" else ~dom_only
            v = rows.loc[keep, "value"].to_numpy(dtype=float)
            if len(v):
                out.append({"place": place, "origin": origin, "share_low": float(v.min()),
                            "share_high": float(v.max()), "cap_cny": cap, "n_rows": int(len(v))})
    return pd.DataFrame(out, columns=["place", "origin", "share_low", "share_high", "cap_cny", "n_rows"])


def capacity_by_place(places_df: pd.DataFrame) -> pd.DataFrame:
    """Latest stated compute capacity per place (PFLOPS; targets excluded; largest value in the latest year)."""
    df = places_df[(places_df["metric"] == "compute_capacity_pflops") & places_df["value"].notna()].copy()
    df["year"] = df["year"].astype(float)
    df = df.sort_values(["place", "year", "value"]).groupby("place").tail(1)
    return df[["place", "year", "value", "basis", "source_url", "source_title"]].rename(
        columns={"value": "pflops"}).reset_index(drop=True)


def throughput_error_sigma(validation: pd.DataFrame, role: str = "validation") -> float:
    """Log-normal sigma of the kernel's throughput error, from :func:`tokenlib.calibrate.validate`.

    sigma = median |ln(calibrated / measured)| over the rows of ``role`` / 0.6745, so that draws have the
    same median absolute log error as the held-out measurements.
    """
    r = validation.loc[validation["role"] == role, "ratio"].to_numpy(dtype=float)
    if len(r) == 0:
        raise ValueError(f"no rows with role {role!r} in the validation table")
    return float(np.median(np.abs(np.log(r))) / MAD_TO_SIGMA)


# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Serving:
    """How one model is served (same for every chip, so chips compare like for like)."""

    precision: str
    prefill_batch: float
    prefill_chips: float
    decode_batch: float
    decode_chips: float
    context: float


def chip_throughputs(models: Sequence[str], chips: Mapping[str, str], serving: Mapping[str, Serving]) -> pd.DataFrame:
    """Calibrated kernel throughput (tokens/s per chip) per model, origin and phase."""
    rows = []
    for m in models:
        cfg = serving[m]
        for origin, chip in chips.items():
            check_choice("origin", origin, ORIGINS)
            for phase, batch, n in (("prefill", cfg.prefill_batch, cfg.prefill_chips),
                                    ("decode", cfg.decode_batch, cfg.decode_chips)):
                tps = kernel.throughput(m, chip, phase, batch=batch, context=cfg.context,
                                        precision=cfg.precision, n_chips=n)
                rows.append({"model": m, "origin": origin, "chip": chip, "phase": phase, "tps": float(tps)})
    return pd.DataFrame(rows)


def _tps(table: pd.DataFrame, model: str, origin: str, phase: str) -> float:
    sel = table[(table["model"] == model) & (table["origin"] == origin) & (table["phase"] == phase)]
    return float(sel["tps"].iloc[0])


def chip_power_w(chip: str, *, pue: float | None = None, load_factor: float | None = None) -> float:
    """Facility watts per chip while serving: TDP x load factor x PUE (kernel cost defaults)."""
    c = specs.chip(chip)
    lf = float(_cost.ASSUMPTIONS["load_factor"]["value"]) if load_factor is None else load_factor
    p = float(_cost.ASSUMPTIONS["pue"]["value"]) if pue is None else pue
    return float(c.tdp_w) * lf * p


@dataclass
class MonteCarloResult:
    """Draws of the blended cost per Mtok, shape (draws, places, mixes, models), and the inputs drawn."""

    places: list[str]
    mixes: list[str]
    models: list[str]
    cost: FloatArray
    draws: dict[str, FloatArray] = field(repr=False)

    def quantiles(self, qs: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> pd.DataFrame:
        """Cost quantiles (CNY/Mtok) per place, mix and model."""
        q = np.quantile(self.cost, qs, axis=0)
        rows = []
        for i, p in enumerate(self.places):
            for j, x in enumerate(self.mixes):
                for k, m in enumerate(self.models):
                    rows.append({"place": p, "mix": x, "model": m,
                                 **{f"q{int(round(v * 100)):02d}": float(q[a, i, j, k]) for a, v in enumerate(qs)}})
        return pd.DataFrame(rows)

    def p_cheapest(self) -> pd.DataFrame:
        """Probability each place is cheapest, per mix and model, and with each place on its cheapest mix ("best mix")."""
        rows = []
        n = self.cost.shape[0]
        for k, m in enumerate(self.models):
            for j, x in enumerate([*self.mixes, "best mix"]):
                c = self.cost[:, :, :, k].min(axis=2) if x == "best mix" else self.cost[:, :, j, k]
                win = np.bincount(np.argmin(c, axis=1), minlength=len(self.places)) / n
                rows += [{"model": m, "mix": x, "place": p, "p_cheapest": float(win[i])}
                         for i, p in enumerate(self.places)]
        return pd.DataFrame(rows)

    def best_mix_share(self) -> pd.DataFrame:
        """Share of draws in which each mix is the cheapest, per place and model."""
        rows = []
        n = self.cost.shape[0]
        for k, m in enumerate(self.models):
            best = np.argmin(self.cost[:, :, :, k], axis=2)
            for i, p in enumerate(self.places):
                cnt = np.bincount(best[:, i], minlength=len(self.mixes)) / n
                rows += [{"model": m, "place": p, "mix": x, "p_best": float(cnt[j])} for j, x in enumerate(self.mixes)]
        return pd.DataFrame(rows)


def monte_carlo(
    *, n: int, models: Sequence[str], chips: Mapping[str, str], serving: Mapping[str, Serving],
    mixes: Mapping[str, float], electricity: pd.DataFrame, vouchers: pd.DataFrame,
    price_usd: Mapping[str, tuple[float, float]], utilization: tuple[float, float], take_up: tuple[float, float],
    annual_spend_cny: float, sigma: float, weights: Mapping[str, float], seed: int = 0,
) -> MonteCarloResult:
    """Draw every uncertain input ``n`` times and evaluate the equation for all places x mixes x models.

    Distributions (independent): chip price per origin ~ U(price_usd[origin]); electricity per place and
    origin ~ U(low, high) of ``electricity``; utilisation ~ U(utilization) (one fleet, same in every place);
    throughput multiplier per origin and phase ~ LogNormal(0, sigma); voucher take-up per place ~ U(take_up)
    times a max share ~ U(share_low, share_high), capped per firm at ``annual_spend_cny``. ``weights``
    (keys prefill, cached_input, decode) blend the phases. Places are those of ``electricity`` that have
    rows for every origin in ``chips``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    origins = list(chips)
    ok = electricity.groupby("place")["origin"].apply(lambda s: set(origins) <= set(s))
    places = sorted(str(p) for p in ok[ok].index)
    mix_names, shares = list(mixes), np.array([float(mixes[x]) for x in mixes])
    elec = {}
    draws: dict[str, FloatArray] = {}
    for o in origins:
        e = electricity[electricity["origin"] == o].set_index("place").loc[places]
        elec[o] = rng.uniform(e["low"].to_numpy(), e["high"].to_numpy(), size=(n, len(places)))
        draws[f"electricity_{o}"] = elec[o]
    util = rng.uniform(*utilization, size=(n, 1))
    draws["utilization"] = util[:, 0]
    take = rng.uniform(*take_up, size=(n, len(places)))
    draws["take_up"] = take
    hour, disc = {}, {}
    for o in origins:
        price = rng.uniform(*price_usd[o], size=(n, 1))
        draws[f"price_{o}"] = price[:, 0]
        chip_ids = np.full((n, 1), chips[o])
        hour[o] = np.asarray(_cost.chip_hour_cost(chip_ids, electricity_cny_per_kwh=elec[o], capex_usd=price), dtype=float)
        v = vouchers[vouchers["origin"] == o].set_index("place").reindex(places)
        lo = np.nan_to_num(v["share_low"].to_numpy(dtype=float))
        hi = np.nan_to_num(v["share_high"].to_numpy(dtype=float))
        share = rng.uniform(lo, hi, size=(n, len(places)))
        disc[o] = np.asarray(voucher_discount(share, take, v["cap_cny"].to_numpy(dtype=float), annual_spend_cny))
    tps_table = chip_throughputs(models, chips, serving)
    frac = float(_cost.ASSUMPTIONS["cached_input_cost_fraction"]["value"])
    out = np.empty((n, len(places), len(mix_names), len(models)))
    s = shares[None, None, :]
    for k, m in enumerate(models):
        per_phase: dict[str, FloatArray] = {}
        for phase in ("prefill", "decode"):
            t = {o: _tps(tps_table, m, o, phase) * np.exp(sigma * rng.standard_normal((n, 1, 1))) for o in origins}
            for o in origins:
                draws[f"tps_{m}_{o}_{phase}"] = t[o][:, 0, 0]
            hd = hour.get("domestic", hour[origins[0]])[:, :, None]
            hn = hour.get("nvidia", hour[origins[0]])[:, :, None]
            td = t.get("domestic", t[origins[0]])
            tn = t.get("nvidia", t[origins[0]])
            dd = disc.get("domestic", disc[origins[0]])[:, :, None]
            dn = disc.get("nvidia", disc[origins[0]])[:, :, None]
            bill = s * hd * (1.0 - dd) + (1.0 - s) * hn * (1.0 - dn)
            per_phase[phase] = bill / ((s * td + (1.0 - s) * tn) * 3600.0 * util[:, :, None]) * 1e6
        per_phase["cached_input"] = per_phase["prefill"] * frac
        out[:, :, :, k] = blend(per_phase, weights)
    return MonteCarloResult(places=places, mixes=mix_names, models=list(models), cost=out, draws=draws)


def rank_stability(cost_draws: FloatArray, places: Sequence[str], capacity: Mapping[str, float],
                   weights: Sequence[float]) -> pd.DataFrame:
    """Composite index = w x tokens score + (1 - w) x cost score, ranked per draw, for each weight ``w``.

    tokens score = ln(capacity / max capacity); cost score = ln(min cost / cost) per draw (both <= 0, 0 = best).
    ``cost_draws`` has shape (draws, places). Places without a capacity are left out. Returns, per weight
    and place, the median rank (1 = best) and the probability of rank 1.
    """
    keep = [i for i, p in enumerate(places) if p in capacity and np.isfinite(capacity[p])]
    names = [places[i] for i in keep]
    c = np.asarray(cost_draws, dtype=float)[:, keep]
    cap = np.array([capacity[p] for p in names], dtype=float)
    tok = np.log(cap / cap.max())[None, :]
    cst = np.log(c.min(axis=1, keepdims=True) / c)
    rows = []
    for w in weights:
        wv = float(check_number("weight", w, upper=1.0))
        score = wv * tok + (1.0 - wv) * cst
        rank = (-score).argsort(axis=1).argsort(axis=1) + 1
        for i, p in enumerate(names):
            rows.append({"weight_tokens": wv, "place": p, "median_rank": float(np.median(rank[:, i])),
                         "p_first": float(np.mean(rank[:, i] == 1))})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the in-browser what-if


WHATIF_FIELDS = ("tps_d", "tps_n", "price_n", "tdp_d", "tdp_n", "frac")
"""Per-row constants the what-if chart carries (throughputs, Nvidia price, TDPs, phase cost fraction)."""


def whatif_constants() -> dict[str, float]:
    """Kernel cost defaults the what-if uses (FX rate, life, server multiplier, hosting, PUE, load factor)."""
    a = _cost.ASSUMPTIONS
    return {"fx": float(fx.cny_per_usd()[0]), "life": float(a["life_years"]["value"]),
            "mult": float(a["server_capex_multiplier"]["value"]), "host": float(a["hosting_usd_per_chip_hour"]["value"]),
            "pue": float(a["pue"]["value"]), "load": float(a["load_factor"]["value"])}


def whatif_cost(*, electricity: float, utilization: float, price_domestic_usd: float, domestic_share: float,
                tps_d: float, tps_n: float, price_n: float, tdp_d: float, tdp_n: float, frac: float = 1.0,
                constants: Mapping[str, float] | None = None) -> float:
    """The what-if's cost per Mtok (CNY) in Python, term for term what :func:`vega_cost_expr` computes."""
    k = dict(whatif_constants() if constants is None else constants)
    kw = dict(cny_per_usd=k["fx"], life_years=k["life"], server_capex_multiplier=k["mult"],
              hosting_usd_per_chip_hour=k["host"], pue=k["pue"], load_factor=k["load"])
    hd = chip_hour_cost_closed(price_domestic_usd, tdp_d, electricity, **kw)
    hn = chip_hour_cost_closed(price_n, tdp_n, electricity, **kw)
    return float(fleet_cost_per_mtok(hd, hn, tps_d, tps_n, domestic_share, utilization)) * frac


def vega_cost_expr(*, electricity: str, utilization: str, price_domestic: str, domestic_share: str,
                   constants: Mapping[str, float] | None = None) -> str:
    """Vega expression for the what-if cost per Mtok; argument values are the names of the Vega params.

    Row constants come from ``datum`` (:data:`WHATIF_FIELDS`); book-wide constants are inlined.
    """
    k = dict(whatif_constants() if constants is None else constants)
    e, u, pd_, s = electricity, utilization, price_domestic, domestic_share
    amort = f"({k['mult']!r} / ({k['life']!r} * {_cost.HOURS_PER_YEAR!r}))"
    power = f"({k['load']!r} * {k['pue']!r} / 1000)"
    hd = f"(({pd_} * {amort} + {k['host']!r}) * {k['fx']!r} + datum.tdp_d * {power} * {e})"
    hn = f"((datum.price_n * {amort} + {k['host']!r}) * {k['fx']!r} + datum.tdp_n * {power} * {e})"
    return (f"({s} * {hd} + (1 - {s}) * {hn}) / (({s} * datum.tps_d + (1 - {s}) * datum.tps_n) * 3600 * {u})"
            f" * 1000000 * datum.frac")


def equation_table(
    *, models: Sequence[str], chips: Mapping[str, str], serving: Mapping[str, Serving], mixes: Mapping[str, float],
    electricity: pd.DataFrame, vouchers: pd.DataFrame, price_usd: Mapping[str, float], utilization: float,
    take_up: float, annual_spend_cny: float, weights: Mapping[str, float],
) -> pd.DataFrame:
    """The equation at point values: one row per place x mix x model.

    Electricity = the median of the place's applicable rows; voucher share = midpoint of its range times
    ``take_up``. Columns: place, mix, model, domestic_share (chips), input / cached_input / output / blended
    cost (CNY/Mtok), tokens_per_mw (output tokens/s per MW), domestic_token_share (of output tokens),
    power_share (share of the fleet's chip-hour cost that is electricity), electricity_basis.
    """
    origins = list(chips)
    ok = electricity.groupby("place")["origin"].apply(lambda s: set(origins) <= set(s))
    places = sorted(str(p) for p in ok[ok].index)
    tps = chip_throughputs(models, chips, serving)
    frac = float(_cost.ASSUMPTIONS["cached_input_cost_fraction"]["value"])
    power = {o: chip_power_w(chips[o]) for o in origins}
    rows = []
    for place in places:
        hour, pw, disc, basis = {}, {}, {}, []
        for o in origins:
            e = electricity[(electricity["place"] == place) & (electricity["origin"] == o)].iloc[0]
            basis.append(f"{o}: {e['basis']}")
            hour[o] = float(_cost.chip_hour_cost(chips[o], electricity_cny_per_kwh=float(e["median"]),
                                                 capex_usd=float(price_usd[o])))
            pw[o] = power[o] / 1000.0 * float(e["median"])
            v = vouchers[(vouchers["place"] == place) & (vouchers["origin"] == o)]
            disc[o] = 0.0 if v.empty else float(voucher_discount(
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
                    "electricity_basis": "; ".join(basis),
                })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the claims table

CLAIM_VERDICTS = ("supported", "partly", "contradicted", "unverifiable", "opinion")
"""The verdicts of ``data/claims.csv``, in the order the book lists them."""

CLAIM_SECTIONS = {"intro": "Introduction", "price_war": "The great token price war", "cities": "Beijing vs. Hangzhou",
                  "compute": "The compute bottleneck", "meaning": "What the trending headline means",
                  "bottom_line": "The bottom line"}
"""The article's sections (``section`` column of ``data/claims.csv``) as the article titles them."""

_VERDICT_COLOURS = {"supported": "#009E73", "partly": "#E69F00", "contradicted": "#D55E00",
                    "unverifiable": "#999999", "opinion": "#56B4E9"}  # Okabe-Ito; the word carries the meaning

_CLAIMS_CSS = (
    "table.tc-claims{width:100%;table-layout:fixed!important;border-collapse:collapse;font-size:.85rem;line-height:1.4;"
    "margin:.5rem 0 1rem}"  # the theme sets table-layout:auto on output tables
    ".tc-claims th,.tc-claims td{text-align:left;vertical-align:top;padding:.35rem .4rem;"
    "border-bottom:1px solid rgba(128,128,128,.35);overflow-wrap:break-word}"
    # the verdict column is sized for its longest label ("unverifiable", bold): in em, not a share of
    # the width, so the label never runs into the evidence column
    ".tc-claims th:nth-child(1){width:34%}.tc-claims th:nth-child(2){width:8.6em}"
    ".tc-claims th:nth-child(4){width:16%}"
    ".tc-claims .tc-claim-id{display:block;font-size:.75rem;opacity:.75}"
    ".tc-claims .tc-verdict{display:inline-block;padding:0 .3rem;border-left:.3rem solid;font-weight:600;"
    "white-space:nowrap}.tc-claims td{overflow-wrap:anywhere}"
    + "".join(f".tc-claims .tc-{v}{{border-color:{c}}}" for v, c in _VERDICT_COLOURS.items())
    + "@media (max-width:700px){.tc-claims thead{display:none}"
    "table.tc-claims,.tc-claims tbody,.tc-claims tr,.tc-claims td{display:block;width:100%}"
    ".tc-claims tr{padding:.5rem 0;border-bottom:2px solid rgba(128,128,128,.5)}"
    ".tc-claims td{border:0;padding:.15rem 0}"
    ".tc-claims td[data-label]::before{content:attr(data-label) \": \";font-weight:600}}"
)

_SECOND_LEVEL = {"com", "gov", "org", "net", "edu", "ac", "co"}


def short_host(url: str) -> str:
    """The registrable part of a URL's host, as a short link text.

    ``"https://english.shanghai.gov.cn/x"`` -> ``"shanghai.gov.cn"``, ``"https://www.bg3.co/a"`` ->
    ``"bg3.co"``; an empty or unparsable URL gives ``""``.
    """
    from urllib.parse import urlparse

    host = (urlparse(url).hostname or "") if url else ""
    labels = [x for x in host.split(".") if x]
    if len(labels) <= 2:
        return ".".join(labels)
    keep = 3 if labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2 else 2
    return ".".join(labels[-keep:])


def _chapter_label(docname: str) -> str:
    """``"chapters/04_crown"`` -> ``"Ch. 4"``; other pages keep their last path part."""
    last = docname.rsplit("/", 1)[-1]
    head = last.split("_", 1)[0]
    return f"Ch. {int(head)}" if head.isdigit() else last.replace("_", " ")


def claims_html(claims: pd.DataFrame, *, sections: Mapping[str, str] | None = None,
                link_chapter: bool = True, root: str = "..") -> str:
    """The claims of ``data/claims.csv`` as one readable HTML table (desktop: columns; phone: cards).

    Columns: the claim (with its id and section, named by ``sections``, default :data:`CLAIM_SECTIONS`), the verdict, the one-line evidence, and short links
    (the source's host; ``Ch. N``, the chapter that tests it, when ``link_chapter``). ``root`` is the
    relative path from the page to the book's root. All text is HTML-escaped. A page-scoped style block
    comes with it, so the table wraps on a 390 px phone instead of scrolling sideways.
    """
    import html

    need = {"id", "section", "article_text", "verdict", "evidence", "source_url", "source_title", "chapter"}
    missing = sorted(need - set(claims.columns))
    if missing:
        raise ValueError(f"claims table lacks columns {missing}")
    sections = dict(CLAIM_SECTIONS if sections is None else sections)

    def text(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)

    body = []
    for r in claims.itertuples(index=False):
        verdict = text(r.verdict)
        check_choice("verdict", verdict, CLAIM_VERDICTS)
        sec = sections.get(text(r.section), text(r.section))
        claim = (f'<span class="tc-claim-id">{html.escape(text(r.id))}'
                 f'{" · " + html.escape(sec) if sec else ""}</span>{html.escape(text(r.article_text))}')
        links = []
        url = text(r.source_url)
        if url:
            links.append(f'<a href="{html.escape(url)}" title="{html.escape(text(r.source_title))}">'
                         f'{html.escape(short_host(url) or "source")}</a>')
        ch = text(r.chapter).strip()
        if link_chapter and ch:
            links.append(f'<a href="{html.escape(root)}/{html.escape(ch)}.html">{html.escape(_chapter_label(ch))}</a>')
        body.append(
            "<tr>"
            f"<td>{claim}</td>"
            f'<td data-label="Verdict"><span class="tc-verdict tc-{verdict}">{verdict}</span></td>'
            f'<td data-label="Evidence">{html.escape(text(r.evidence))}</td>'
            f'<td data-label="Links">{" · ".join(links)}</td>'
            "</tr>")
    head = "<thead><tr><th>Claim</th><th>Verdict</th><th>Evidence</th><th>Links</th></tr></thead>"
    return f'<style>{_CLAIMS_CSS}</style><table class="tc-claims">{head}<tbody>{"".join(body)}</tbody></table>'
