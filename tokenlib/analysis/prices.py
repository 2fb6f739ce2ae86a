"""API list prices: normalisation to CNY and USD per million tokens, series, workload mixes, margins.

Prices in ``data/prices.csv`` keep the provider's own currency and unit. Everything here converts
them with the **dated** monthly CNY/USD rate of the price's own month (``data/fx.csv``): a price of
May 2024 is converted at May 2024's rate, never at today's. A price whose month has no rate raises
:class:`MissingFXError`, naming the month.

Units: prices are currency per million tokens (``per_mtok``); ``per_ktok`` rows are multiplied by
1,000. Shares are fractions in [0, 1]. Margins are fractions (0.845 = 84.5 %).

Two margin definitions are kept apart on purpose:

* gross margin ``(price - cost) / price`` (:func:`implied_gross_margin`), what most companies report;
* cost-profit margin ``(revenue - cost) / cost`` (:func:`tokenlib.model.fleet.cost_profit_margin`), the
  markup DeepSeek's Day-6 post calls "cost profit margin" (545 %). :func:`markup_to_gross_margin`
  converts one into the other.

Why this module is long: it is the one place a price row becomes comparable (lanes, units, currency at
the row's own month, blended workload price) and the fits chapter 1 draws on read those same normalised
columns; the fixed-capability series is :mod:`tokenlib.analysis.capability`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from tokenlib.arrays import FloatArray
from tokenlib.data import table_spec
from tokenlib.errors import check_choice, check_number


UNITS_PER_MTOK: dict[str, float] = {"per_mtok": 1.0, "per_ktok": 1000.0}
"""Multiplier from the published unit to 'per million tokens'."""

CURRENCIES = ("CNY", "USD")
DAYS_PER_YEAR = 365.25

DEEPSEEK_V2_RELEASE = "2024-05-06"
"""Release date of DeepSeek-V2, the first move of the May 2024 cascade: '2024.05.06: We released the
DeepSeek-V2.' (deepseek-ai/DeepSeek-V2 README, News section)."""
DEEPSEEK_V2_SOURCE = (
    "https://github.com/deepseek-ai/DeepSeek-V2/blob/07245dbf855936dce8dcec6977d3c0dc255b823d/README.md"
)

PRICE_COLUMNS = ("input_price", "cached_input_price", "output_price")


class MissingFXError(ValueError):
    """A price's month has no CNY/USD rate in ``data/fx.csv``."""

    def __init__(self, month: str, available: Iterable[str]) -> None:
        months = sorted(available)
        span = f"{months[0]}..{months[-1]}" if months else "none"
        super().__init__(
            f"no CNY/USD rate for month {month} in data/fx.csv (rates available: {span}); "
            "add that month's rate with its source before converting prices dated in it"
        )
        self.month = month


def _month(value: Any) -> str:
    """'YYYY-MM' of a date, Timestamp, Period or 'YYYY-MM[-DD]' string."""
    if isinstance(value, pd.Period):
        return value.strftime("%Y-%m")
    return pd.Timestamp(value).strftime("%Y-%m")


def fx_rates(fx: pd.DataFrame) -> dict[str, float]:
    """``{'YYYY-MM': CNY per USD}`` from the loaded fx table (columns ``month``, ``cny_per_usd``)."""
    return {_month(m): float(r) for m, r in zip(fx["month"], fx["cny_per_usd"], strict=True)}


def rate_for(month: str, rates: Mapping[str, float]) -> float:
    """CNY per USD for ``month`` ('YYYY-MM'); raises :class:`MissingFXError` naming the month."""
    if month not in rates:
        raise MissingFXError(month, rates.keys())
    return float(rates[month])


def convert(amount: Any, from_currency: str, to_currency: str, cny_per_usd: Any) -> Any:
    """Convert an amount (scalar or array) between CNY and USD at ``cny_per_usd`` (CNY per USD)."""
    check_choice("currency", from_currency, CURRENCIES)
    check_choice("currency", to_currency, CURRENCIES)
    rate = check_number("cny_per_usd", cny_per_usd, allow_zero=False)
    amt = np.asarray(amount, dtype=float)
    if from_currency == to_currency:
        out = amt
    elif from_currency == "USD":
        out = amt * rate
    else:
        out = amt / rate
    return float(out) if np.ndim(out) == 0 else out


def normalise(prices: pd.DataFrame, fx: pd.DataFrame) -> pd.DataFrame:
    """Prices in both currencies per million tokens, each at the rate of its own month.

    Adds ``month``, ``cny_per_usd`` and, for each of input/cached_input/output,
    ``<name>_cny`` and ``<name>_usd`` (currency per Mtok). Keeps every original column.
    """
    rates = fx_rates(fx)
    out = prices.copy()
    out["month"] = [_month(d) for d in out["effective_date"]]
    out["cny_per_usd"] = [rate_for(m, rates) for m in out["month"]]
    for unit in out["unit"].unique():
        check_choice("unit", unit, UNITS_PER_MTOK)
    mult = out["unit"].map(UNITS_PER_MTOK).to_numpy(dtype=float)
    is_usd = (out["currency"] == "USD").to_numpy()
    rate = out["cny_per_usd"].to_numpy(dtype=float)
    for col in PRICE_COLUMNS:
        per_mtok = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float) * mult
        name = col.removesuffix("_price")
        out[f"{name}_cny"] = np.where(is_usd, per_mtok * rate, per_mtok)
        out[f"{name}_usd"] = np.where(is_usd, per_mtok, per_mtok / rate)
    return out


LIST_LANES = ("mainland_list", "international_list")
"""The list-price lanes (``data/prices.csv`` column ``lane``): the mainland-China list and the
international list. Off-peak, peak, batch and promotional prices are other lanes."""

VENDOR_DATED_BASES = frozenset({"effective", "announced"})
"""The ``date_basis`` values whose date the vendor gave (its effective date or its announcement); the others
(``tracker_change``, ``observed``) date a price by when someone saw it, an upper bound on when it took effect."""

DATE_BASIS_WORDS = {"effective": "took effect", "announced": "announced", "observed": "seen on a page",
                    "tracker_change": "tracker update (upper bound)"}
"""Each ``date_basis`` value in words, for tables a reader sees."""

SERIES_KEYS = ("provider", "model", "lane", "price_type", "context_tier", "currency")
"""What identifies one price series in ``data/prices.csv``: a price moves only against an earlier
price with the same keys (never from a CNY mainland list to a USD international list)."""


class MixedLaneError(ValueError):
    """A series holds prices of more than one lane (e.g. mainland CNY list and international USD list)."""


def check_one_lane(series: pd.DataFrame, keys: Iterable[str]) -> None:
    """Raise :class:`MixedLaneError` if any group of ``series`` by ``keys`` holds more than one ``lane``.

    A frame without a ``lane`` column, or with ``lane`` among ``keys``, passes. The error names the
    group and the lanes it mixes.
    """
    keys = list(keys)
    if "lane" not in series.columns or "lane" in keys or series.empty:
        return
    lanes = series.groupby(keys, sort=True, dropna=False)["lane"].agg(lambda s: sorted(set(map(str, s))))
    mixed = lanes[lanes.map(len) > 1]
    if len(mixed):
        key, which = mixed.index[0], mixed.iloc[0]
        raise MixedLaneError(f"series {key!r} (keys {keys}) mixes lanes {which}: select one lane "
                             f"(valid lanes: {', '.join(table_spec('prices').column('lane').values)}) "
                             "or key the series by lane")


def tier_series(
    norm: pd.DataFrame, tiers: Iterable[str] = ("flagship", "budget"), *, price_type: str = "standard",
    agg: str = "min", lanes: Iterable[str] = LIST_LANES,
) -> pd.DataFrame:
    """One price per provider, tier, lane and date: the series of a provider's flagship / budget tier.

    Where a provider lists several models (or context bands) in one tier, lane and date, ``agg``
    picks ``min`` (the cheapest entry point, default) or ``median``. Only rows of ``price_type``
    (default list prices, ``standard``) in ``lanes`` (default the two list lanes) are used, and each
    lane is its own series: a provider that lists in CNY on its Chinese page and in USD on its
    international page has two series, never one that jumps between them. Returns columns
    provider, provider_country, tier, lane, effective_date, date_basis (the bases of the rows
    aggregated, joined), input_cny, output_cny, input_usd, output_usd, models.
    """
    check_choice("agg", agg, ("min", "median"))
    tiers, lanes = list(tiers), list(lanes)
    valid_lanes = table_spec("prices").column("lane").values
    for lane in lanes:
        check_choice("lane", lane, valid_lanes)
    sub = norm[norm["tier"].isin(tiers) & (norm["price_type"] == price_type)]
    if "lane" in sub.columns:
        sub = sub[sub["lane"].isin(lanes)]
    else:
        sub = sub.assign(lane="")
    keys = ["provider", "provider_country", "tier", "lane", "effective_date"]
    value_cols = ["input_cny", "output_cny", "input_usd", "output_usd"]
    grouped = sub.groupby(keys, sort=True)
    values = grouped[value_cols].agg(agg)
    models = grouped["model"].agg(lambda s: ", ".join(sorted(set(map(str, s)))))
    out = values.join(models.rename("models"))
    if "date_basis" in sub.columns:
        out = out.join(grouped["date_basis"].agg(lambda s: ", ".join(sorted(set(map(str, s))))))
    return out.reset_index()


def blended_price(
    input_price: Any, output_price: Any, cached_input_price: Any = None, *, input_share: Any,
    cache_hit_share: Any = 0.0,
) -> Any:
    """Price per million tokens of a workload mix (all tokens, input and output together).

    ``input_share`` = input tokens / all tokens; ``cache_hit_share`` = share of input tokens billed at
    the cache-hit price. Where the cache-hit price is missing (NaN or None) hits pay the full input
    price. Same currency in, same currency out; broadcasts over arrays.
    """
    s_in = check_number("input_share", input_share, upper=1.0)
    hit = check_number("cache_hit_share", cache_hit_share, upper=1.0)
    p_in = np.asarray(input_price, dtype=float)
    p_out = np.asarray(output_price, dtype=float)
    p_hit = p_in if cached_input_price is None else np.asarray(cached_input_price, dtype=float)
    p_hit = np.where(np.isnan(p_hit), p_in, p_hit)
    for name, arr in (("input_price", p_in), ("output_price", p_out), ("cached_input_price", p_hit)):
        if np.any(arr[~np.isnan(arr)] < 0):
            raise ValueError(f"{name} must be >= 0")
    out = s_in * ((1.0 - hit) * p_in + hit * p_hit) + (1.0 - s_in) * p_out
    return float(out) if np.ndim(out) == 0 else out


def time_of_day_price(standard: Any, off_peak: Any = None, peak: Any = None, *, off_peak_share: Any = 0.0,
                      peak_share: Any = 0.0) -> Any:
    """Average price when ``off_peak_share`` of tokens pay ``off_peak`` and ``peak_share`` pay ``peak``.

    The rest pays ``standard``. A missing band (None/NaN) falls back to ``standard``. Shares must sum
    to at most 1.
    """
    op = check_number("off_peak_share", off_peak_share, upper=1.0)
    pk = check_number("peak_share", peak_share, upper=1.0)
    if np.any(op + pk > 1.0 + 1e-12):
        raise ValueError("off_peak_share + peak_share must be <= 1")
    std = np.asarray(standard, dtype=float)

    def band(p: Any) -> FloatArray:
        arr = std if p is None else np.asarray(p, dtype=float)
        return np.where(np.isnan(arr), std, arr)

    out = (1.0 - op - pk) * std + op * band(off_peak) + pk * band(peak)
    return float(out) if np.ndim(out) == 0 else out


def implied_gross_margin(price: Any, cost: Any) -> Any:
    """Gross margin ``(price - cost) / price`` (fraction; negative = selling below cost)."""
    p = check_number("price", price, allow_zero=False)
    c = check_number("cost", cost)
    out = (p - c) / p
    return float(out) if np.ndim(out) == 0 else out


def markup_to_gross_margin(cost_profit_margin: Any) -> Any:
    """Convert a cost-profit margin (markup, ``(R - C) / C``) to a gross margin ``(R - C) / R``."""
    m = np.asarray(cost_profit_margin, dtype=float)
    if np.any(~np.isfinite(m)) or np.any(m <= -1.0):
        raise ValueError(f"cost_profit_margin must be finite and > -1, got {cost_profit_margin!r}")
    out = m / (1.0 + m)
    return float(out) if np.ndim(out) == 0 else out


def cut_pct(before: Any, after: Any) -> Any:
    """Price cut in percent, ``100 x (1 - after / before)`` (negative = a rise)."""
    b = check_number("before", before, allow_zero=False)
    a = check_number("after", after)
    out = 100.0 * (1.0 - a / b)
    return float(out) if np.ndim(out) == 0 else out


def days_since(dates: Any, anchor: str = DEEPSEEK_V2_RELEASE) -> Any:
    """Whole days from ``anchor`` (default: DeepSeek-V2's release) to each date."""
    d = pd.to_datetime(pd.Series(np.atleast_1d(np.asarray(dates, dtype=object))))
    out = (d - pd.Timestamp(anchor)).dt.days.to_numpy(dtype=float)
    return float(out[0]) if np.ndim(dates) == 0 else out


def decline_per_year(dates: Any, prices: Any) -> tuple[float, float, int]:
    """Fit ``log(price) = a + b x years`` by least squares; return (factor per year, r², n).

    The factor is ``exp(-b)``: 4.0 means prices fell four-fold per year; 0.5 means they doubled.
    Needs at least two distinct dates and strictly positive prices (a free tier has no logarithm:
    drop it and say so).
    """
    p = np.asarray(prices, dtype=float).ravel()
    if np.any(~np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("prices must be finite and > 0 to fit a log-linear decline (drop free tiers)")
    d = pd.to_datetime(pd.Series(np.asarray(dates, dtype=object).ravel()))
    if len(d) != len(p):
        raise ValueError(f"dates ({len(d)}) and prices ({len(p)}) differ in length")
    years = ((d - d.min()).dt.days.to_numpy(dtype=float)) / DAYS_PER_YEAR
    if len(np.unique(years)) < 2:
        raise ValueError("need prices on at least two distinct dates to fit a decline")
    y = np.log(p)
    b, a = np.polyfit(years, y, 1)
    resid = y - (a + b * years)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else 1.0
    return float(np.exp(-b)), r2, int(len(p))


DECLINE_COLUMNS = ("provider", "country", "factor_per_year", "r2", "n", "first", "last")
"""The columns of :func:`decline_by_provider`'s table."""


def decline_by_provider(rows: pd.DataFrame, value: str = "workload") -> pd.DataFrame:
    """Each provider's yearly price-fall factor (:func:`decline_per_year`) over its dated rows.

    A provider is priced once per date, at its lowest ``value`` that day (several flagship rows on one date
    count as the cheapest of them). Non-positive prices (free tiers) have no logarithm and are dropped; a
    provider left with fewer than two dates has no fit and is left out. ``rows`` needs ``provider``,
    ``provider_country``, ``effective_date`` and ``value``. Returns :data:`DECLINE_COLUMNS` (``first`` and
    ``last`` as YYYY-MM), sorted by country, then from the fastest fall to the steepest rise.
    """
    needed = ["provider", "provider_country", "effective_date", value]
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise KeyError(f"decline_by_provider needs columns {missing}; the rows have {sorted(map(str, rows.columns))}")
    daily = rows.groupby(["provider", "provider_country", "effective_date"], as_index=False)[value].min()
    out = []
    for (provider, country), g in daily.groupby(["provider", "provider_country"]):
        g = g[g[value] > 0]
        if g["effective_date"].nunique() < 2:
            continue
        factor, r2, n = decline_per_year(g["effective_date"].to_numpy(), g[value].to_numpy())
        dates = pd.to_datetime(g["effective_date"])
        out.append({"provider": provider, "country": country, "factor_per_year": factor, "r2": r2, "n": n,
                    "first": dates.min().strftime("%Y-%m"), "last": dates.max().strftime("%Y-%m")})
    table = pd.DataFrame(out, columns=list(DECLINE_COLUMNS))
    return table.sort_values(["country", "factor_per_year"], ascending=[True, False]).reset_index(drop=True)


def _listed(rows: pd.DataFrame, part: str) -> np.ndarray:
    """``part`` ("input", "output") of each row per Mtok in the currency the row is listed in."""
    cny = rows[f"{part}_cny"].to_numpy(dtype=float)
    usd = rows[f"{part}_usd"].to_numpy(dtype=float)
    return np.where(rows["currency"].to_numpy() == "CNY", cny, usd)


def cascade_moves(norm: pd.DataFrame, start: str = DEEPSEEK_V2_RELEASE, end: str = "2024-06-30",
                  country: str = "CN") -> pd.DataFrame:
    """Each provider's position in a price cascade, from normalised standard list prices.

    For every ``country`` provider with a price row dated in [``start``, ``end``]: the cheapest model
    (input price, CNY per Mtok) at the provider's first dated row after ``start``, that row's date
    and date basis, the same model's previous price where the data hold one (dated before the move),
    and its date, the cut in percent, and the provider's dearest flagship input price on the same first date
    (a flagship that stayed high = the provider held its top tier). Rows are ordered by date.
    """
    check_choice("country", country, sorted(set(map(str, norm["provider_country"]))))
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    std = norm[(norm["price_type"] == "standard") & (norm["provider_country"] == country)
               & norm["lane"].isin(LIST_LANES)]
    rows: list[dict[str, Any]] = []
    for provider, grp in std.groupby("provider", sort=True):
        window = grp[(grp["effective_date"] >= t0) & (grp["effective_date"] <= t1)]
        if window.empty:
            continue
        # the move: the date on which the provider's cheapest in-window input price first appears
        cheapest = window.sort_values(["input_cny", "effective_date"]).iloc[0]
        # the same model's earlier price on the same lane and in the same currency (another lane is another price)
        earlier = grp[(grp["model"] == cheapest["model"]) & (grp["lane"] == cheapest["lane"])
                      & (grp["currency"] == cheapest["currency"]) & (grp["effective_date"] < cheapest["effective_date"])]
        prev = earlier.sort_values("effective_date").iloc[-1] if not earlier.empty else None
        before = float(prev["input_cny"]) if prev is not None else np.nan
        flag = window[window["tier"] == "flagship"]
        if not flag.empty:
            flag = flag[flag["input_cny"] == flag["input_cny"].max()]
        rows.append({
            "provider": provider,
            "date": cheapest["effective_date"],
            "date_basis": cheapest["date_basis"],
            "days_since_start": int((cheapest["effective_date"] - t0).days),
            "cheapest_model": cheapest["model"],
            "before_date": prev["effective_date"] if prev is not None else pd.NaT,
            "before_input_cny": before,
            "after_input_cny": float(cheapest["input_cny"]),
            # in the listed currency, as cascade_cuts: the exchange rate alone moves a converted price
            "cut_pct": (cut_pct(float(_listed(prev.to_frame().T, "input")[0]),
                                float(_listed(cheapest.to_frame().T, "input")[0]))
                        if prev is not None and np.isfinite(before) and before > 0 else np.nan),
            "flagship_model": ", ".join(sorted(map(str, flag["model"]))) if not flag.empty else "",
            "flagship_input_cny": float(flag["input_cny"].max()) if not flag.empty else np.nan,
        })
    return pd.DataFrame(rows).sort_values(["date", "provider"]).reset_index(drop=True)


def cascade_cuts(norm: pd.DataFrame, start: str = DEEPSEEK_V2_RELEASE, end: str = "2024-06-30",
                 country: str = "CN", tiers: Iterable[str] = ("flagship", "budget")) -> pd.DataFrame:
    """Each provider's first input-price cut dated in [``start``, ``end``], where the data hold the price before it.

    A cut is a pair of consecutive standard list prices of one series (same model, ``lane``,
    ``context_tier`` and currency, :data:`SERIES_KEYS`) in a
    ``tiers`` tier whose later input price (CNY per Mtok) is lower and dated in the window; the
    earlier price may be dated before ``start``. Per provider the earliest cut is kept; among cuts on
    the same date, the largest in percent, then the largest fall in yuan. Returns ``provider``,
    ``model``, ``tier``, ``before_date``, ``before_input_cny``, ``date``, ``date_basis``,
    ``days_since_start``, ``after_input_cny`` and ``cut_pct`` (percent), ordered by date. A provider
    with no price before its first move in the data has no row.
    """
    check_choice("country", country, sorted(set(map(str, norm["provider_country"]))))
    tiers = list(tiers)
    for t in tiers:
        check_choice("tier", t, table_spec("prices").column("tier").values)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    std = norm[(norm["price_type"] == "standard") & (norm["provider_country"] == country)
               & norm["tier"].isin(tiers) & norm["lane"].isin(LIST_LANES)].copy()
    std["context_tier"] = std["context_tier"].fillna("")
    # one series per SERIES_KEYS: a cut is never read from a CNY mainland list to a USD international list
    series_keys = [k for k in SERIES_KEYS if k in std.columns and k != "price_type"]
    cuts: list[dict[str, Any]] = []
    for key, grp in std.groupby(series_keys, sort=True):
        provider, model = key[0], key[1]
        # one price per date (the lowest, if two sources disagree on a date)
        g = grp.sort_values(["effective_date", "input_cny"]).drop_duplicates("effective_date")
        when = pd.DatetimeIndex(g["effective_date"])
        price = g["input_cny"].to_numpy(dtype=float)
        # a cut is a fall of the price as listed (the series' own currency): a USD price converted at each
        # row's month moves in CNY with the exchange rate alone
        listed = _listed(g, "input")
        tier = g["tier"].astype(str).to_list()
        basis = g["date_basis"].astype(str).to_list()
        for i in range(1, len(g)):
            in_window = bool(t0 <= when[i] <= t1)
            if in_window and listed[i - 1] > 0 and listed[i] < listed[i - 1]:
                cuts.append({
                    "provider": provider, "model": model, "tier": tier[i],
                    "before_date": when[i - 1], "before_input_cny": float(price[i - 1]),
                    "date": when[i], "date_basis": basis[i],
                    "days_since_start": int((when[i] - t0).days),
                    "after_input_cny": float(price[i]),
                    "cut_pct": cut_pct(float(price[i - 1]), float(price[i])),
                })
    columns = ["provider", "model", "tier", "before_date", "before_input_cny", "date", "date_basis",
               "days_since_start", "after_input_cny", "cut_pct"]
    if not cuts:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(cuts, columns=columns)
    out["drop_cny"] = out["before_input_cny"] - out["after_input_cny"]
    out = out.sort_values(["provider", "date", "cut_pct", "drop_cny"], ascending=[True, True, False, False])
    out = out.drop_duplicates("provider").drop(columns="drop_cny")
    return out.sort_values(["date", "provider"]).reset_index(drop=True)


VALUE_COLUMNS = ("input_cny", "output_cny", "input_usd", "output_usd")


def carry_forward(series: pd.DataFrame, dates: Any, *, keys: Iterable[str] = ("provider", "tier"),
                  value_cols: Iterable[str] = VALUE_COLUMNS) -> pd.DataFrame:
    """The price in force on each of ``dates``: a series' latest row dated on or before the date.

    ``series`` has one row per ``keys`` and ``effective_date`` (e.g. :func:`tier_series`). A price
    holds until the series' next dated row, however long the gap (a tracker that stopped recording
    a provider keeps its last price). A group with no row yet on a date is left out for that date.
    Returns ``keys``, ``date`` and ``value_cols``, one row per group and date. A group that holds
    more than one ``lane`` raises :class:`MixedLaneError` (key the series by lane, or select one).
    """
    keys, value_cols = list(keys), list(value_cols)
    check_one_lane(series, keys)
    grid = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(dates, dtype=object)))).sort_values()
    out: list[pd.DataFrame] = []
    for key, grp in series.sort_values("effective_date").groupby(keys, sort=True):
        when = pd.DatetimeIndex(grp["effective_date"])
        if when.has_duplicates:
            raise ValueError(f"series {key!r} has two rows on one date: aggregate first (tier_series)")
        idx = np.searchsorted(when.to_numpy(), grid.to_numpy(), side="right") - 1
        ok = idx >= 0
        frame = grp.iloc[idx[ok]][value_cols].reset_index(drop=True)
        frame.insert(0, "date", grid[ok])
        for k, v in zip(keys, key if isinstance(key, tuple) else (key,), strict=True):
            frame.insert(0, k, [v] * len(frame))
        out.append(frame)
    cols = [*keys, "date", *value_cols]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def median_path(series: pd.DataFrame, *, cohort_end: str, end: Any = None,
                value_cols: Iterable[str] = VALUE_COLUMNS) -> pd.DataFrame:
    """Median price across a fixed cohort of providers, per tier, on every date a member's price moved.

    The cohort of a tier = the providers with a row in that tier dated on or before ``cohort_end``
    (fixed, so providers entering later cannot move the median by arriving). Each member's price is
    carried forward (:func:`carry_forward`); the path starts on ``cohort_end`` and has a point on
    every later date on which a member has a row, up to ``end`` (default: the last such date).
    Returns tier, date, n_providers and the median of each of ``value_cols`` (free tiers count as 0).
    Each provider's series in a tier must be of one ``lane`` (:class:`MixedLaneError` otherwise):
    select the lane first, e.g. ``series[series["lane"] == "mainland_list"]``.
    """
    value_cols = list(value_cols)
    check_one_lane(series, ("tier", "provider"))
    t0 = pd.Timestamp(cohort_end)
    t1 = pd.Timestamp(end) if end is not None else None
    parts: list[pd.DataFrame] = []
    for tier, grp in series.groupby("tier", sort=True):
        members = grp.loc[grp["effective_date"] <= t0, "provider"].unique()
        if len(members) == 0:
            continue
        sub = grp[grp["provider"].isin(members)]
        later = sub.loc[sub["effective_date"] > t0, "effective_date"]
        if t1 is not None:
            later = later[later <= t1]
        dates = pd.DatetimeIndex([t0, *sorted(later.unique())])
        cf = carry_forward(sub, dates, keys=("provider",), value_cols=value_cols)
        med = cf.groupby("date")[value_cols].median()
        med.insert(0, "n_providers", cf.groupby("date").size())
        med.insert(0, "tier", tier)
        parts.append(med.reset_index())
    cols = ["tier", "date", "n_providers", *value_cols]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
