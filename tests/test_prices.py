"""tokenlib.analysis.prices: conversions, series, workload prices, margins and decline fits (hand-computed cases)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenlib
from tokenlib.model import fleet
from tokenlib.analysis import prices as tp


def _prices(**over: object) -> pd.DataFrame:
    row = {"provider": "deepseek", "provider_country": "CN", "model": "m", "tier": "flagship",
           "effective_date": pd.Timestamp("2024-05-23"), "date_basis": "observed", "price_type": "standard",
           "context_tier": None, "input_price": 1.0, "cached_input_price": np.nan, "output_price": 2.0,
           "currency": "CNY", "unit": "per_mtok"}
    row.update(over)
    return pd.DataFrame([row])


FX = pd.DataFrame({"month": ["2024-05", "2025-02"], "cny_per_usd": [7.2327, 7.2734]})


def test_normalise_uses_the_rate_of_the_price_month() -> None:
    df = pd.concat([_prices(), _prices(effective_date=pd.Timestamp("2025-02-06"), currency="USD",
                                       input_price=0.27, output_price=1.10)], ignore_index=True)
    n = tp.normalise(df, FX)
    assert n.loc[0, "input_usd"] == pytest.approx(1.0 / 7.2327)
    assert n.loc[0, "input_cny"] == 1.0
    assert n.loc[1, "input_cny"] == pytest.approx(0.27 * 7.2734)
    assert n.loc[1, "output_usd"] == pytest.approx(1.10)
    assert n.loc[1, "month"] == "2025-02"


def test_per_ktok_is_scaled_to_per_mtok() -> None:
    n = tp.normalise(_prices(unit="per_ktok", input_price=0.0008, output_price=0.002), FX)
    assert n.loc[0, "input_cny"] == pytest.approx(0.8)
    assert n.loc[0, "output_cny"] == pytest.approx(2.0)


def test_missing_fx_month_is_named() -> None:
    with pytest.raises(tp.MissingFXError, match="2023-12"):
        tp.normalise(_prices(effective_date=pd.Timestamp("2023-12-01")), FX)


def test_unknown_unit_raises() -> None:
    with pytest.raises(ValueError, match="per_token"):
        tp.normalise(_prices(unit="per_token"), FX)


def test_convert_round_trip() -> None:
    assert tp.convert(7.2, "CNY", "USD", 7.2) == pytest.approx(1.0)
    assert tp.convert(1.0, "USD", "CNY", 7.2) == pytest.approx(7.2)
    assert tp.convert(3.0, "CNY", "CNY", 7.2) == 3.0
    with pytest.raises(ValueError):
        tp.convert(1.0, "EUR", "USD", 7.2)


def test_blended_price_hand_case() -> None:
    # 75 % input, half of it cache hits at 0.1; output at 2: 0.75*(0.5*1 + 0.5*0.1) + 0.25*2 = 0.9125
    assert tp.blended_price(1.0, 2.0, 0.1, input_share=0.75, cache_hit_share=0.5) == pytest.approx(0.9125)
    # missing cache price: hits pay the input price
    assert tp.blended_price(1.0, 2.0, np.nan, input_share=0.75, cache_hit_share=0.5) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="input_share"):
        tp.blended_price(1.0, 2.0, input_share=1.5)


def test_time_of_day_price() -> None:
    assert tp.time_of_day_price(2.0, 1.0, off_peak_share=0.25) == pytest.approx(1.75)
    assert tp.time_of_day_price(2.0, peak=4.0, peak_share=0.5) == pytest.approx(3.0)
    assert tp.time_of_day_price(2.0, np.nan, off_peak_share=0.5) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="<= 1"):
        tp.time_of_day_price(2.0, 1.0, 3.0, off_peak_share=0.6, peak_share=0.6)


def test_margins_and_day6() -> None:
    assert tp.implied_gross_margin(2.0, 0.5) == pytest.approx(0.75)
    assert tp.implied_gross_margin(1.0, 2.0) == pytest.approx(-1.0)
    # DeepSeek Day-6: $562,027 revenue on $87,072 cost = 545 % markup = 84.5 % gross margin
    markup = fleet.cost_profit_margin(562027, 87072)
    assert round(100 * markup) == 545
    assert tp.markup_to_gross_margin(markup) == pytest.approx((562027 - 87072) / 562027)
    with pytest.raises(ValueError):
        tp.markup_to_gross_margin(-1.0)


def test_cut_and_days() -> None:
    assert tp.cut_pct(20.0, 0.5) == pytest.approx(97.5)
    assert tp.cut_pct(4.0, 0.0) == 100.0
    assert tp.days_since("2024-05-21") == 15.0
    assert list(tp.days_since(np.array(["2024-05-06", "2024-05-23"]))) == [0.0, 17.0]


def test_decline_factor_exact() -> None:
    dates = ["2024-01-01", "2025-01-01", "2026-01-01"]
    factor, r2, n = tp.decline_per_year(dates, [100.0, 25.0, 6.25])  # quartering a year (365/366-day years)
    assert factor == pytest.approx(4.0, rel=2e-3)
    assert r2 == pytest.approx(1.0)
    assert n == 3
    with pytest.raises(ValueError, match="free"):
        tp.decline_per_year(dates, [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="two distinct"):
        tp.decline_per_year(["2024-01-01", "2024-01-01"], [1.0, 2.0])



def test_decline_by_provider_prices_each_date_once_and_skips_what_cannot_be_fitted() -> None:
    rows = pd.DataFrame({
        "provider": ["a", "a", "a", "a", "b", "b", "c", "c"],
        "provider_country": ["CN", "CN", "CN", "CN", "US", "US", "CN", "CN"],
        "effective_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2025-01-01", "2026-01-01",
                                          "2024-06-01", "2025-06-01", "2024-01-01", "2025-01-01"]),
        # a: halves a year, priced at the cheaper of two rows on its first date; b: doubles; c: free then paid
        "workload": [8.0, 4.0, 2.0, 1.0, 1.0, 2.0, 0.0, 3.0],
    })
    fits = tp.decline_by_provider(rows)
    assert list(fits.columns) == list(tp.DECLINE_COLUMNS)
    assert fits["provider"].tolist() == ["a", "b"]  # c has one paid date: no fit
    a = fits.set_index("provider").loc["a"]
    assert a["factor_per_year"] == pytest.approx(2.0, rel=2e-3)
    assert (a["n"], a["first"], a["last"]) == (3, "2024-01", "2026-01")
    assert fits.set_index("provider").loc["b", "factor_per_year"] == pytest.approx(0.5, rel=2e-3)
    assert tp.decline_by_provider(rows[rows["provider"] == "c"]).empty
    with pytest.raises(KeyError, match="workload"):
        tp.decline_by_provider(rows.drop(columns="workload"))

@settings(max_examples=50, deadline=None)
@given(st.floats(0.01, 100), st.floats(0.01, 100), st.floats(0, 1), st.floats(0, 1))
def test_blended_price_between_its_parts(p_in: float, p_out: float, s_in: float, hit: float) -> None:
    p = tp.blended_price(p_in, p_out, 0.1 * p_in, input_share=s_in, cache_hit_share=hit)
    assert min(0.1 * p_in, p_out) - 1e-9 <= p <= max(p_in, p_out) + 1e-9


@settings(max_examples=50, deadline=None)
@given(st.floats(0.5, 20), st.floats(0.01, 50))
def test_decline_recovers_any_constant_rate(factor: float, p0: float) -> None:
    dates = pd.date_range("2024-05-01", periods=4, freq="365D")
    prices = p0 * factor ** (-np.arange(4) * 365 / tp.DAYS_PER_YEAR)
    assert tp.decline_per_year(dates.to_numpy(), prices)[0] == pytest.approx(factor, rel=1e-6)


def test_real_tables_normalise_and_cascade() -> None:
    norm = tp.normalise(tokenlib.load("prices"), tokenlib.load("fx"))
    assert norm[["input_cny", "input_usd", "output_cny", "output_usd"]].notna().all().all()
    moves = tp.cascade_moves(norm).set_index("provider")
    assert moves.loc["deepseek", "after_input_cny"] == 1.0
    assert moves.loc["baidu", "cut_pct"] == 100.0
    series = tp.tier_series(norm)
    assert set(series["tier"]) == {"flagship", "budget"}
    assert not math.isnan(series["input_usd"].iloc[0])


def _series(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"provider": p, "tier": t, "effective_date": pd.Timestamp(d), "input_cny": v}
                         for p, t, d, v in rows])


def test_carry_forward_holds_the_last_price() -> None:
    s = _series([("a", "flagship", "2024-05-01", 10.0), ("a", "flagship", "2024-07-01", 2.0),
                 ("b", "flagship", "2024-06-15", 5.0)])
    cf = tp.carry_forward(s, ["2024-05-31", "2024-06-30", "2024-07-31"], value_cols=["input_cny"])
    got = {(r.provider, r.date.strftime("%Y-%m-%d")): r.input_cny for r in cf.itertuples()}
    # a: 10 until July, then 2; b: absent before its first row, 5 after
    assert got == {("a", "2024-05-31"): 10.0, ("a", "2024-06-30"): 10.0, ("a", "2024-07-31"): 2.0,
                   ("b", "2024-06-30"): 5.0, ("b", "2024-07-31"): 5.0}
    with pytest.raises(ValueError, match="two rows on one date"):
        tp.carry_forward(pd.concat([s, s]), ["2024-07-31"], value_cols=["input_cny"])


def test_median_path_uses_a_fixed_cohort() -> None:
    s = _series([("a", "flagship", "2024-05-10", 30.0), ("b", "flagship", "2024-05-20", 10.0),
                 ("c", "flagship", "2024-05-23", 1.0), ("a", "flagship", "2025-01-01", 2.0),
                 ("late", "flagship", "2024-09-01", 0.1),          # enters after the cohort closes: ignored
                 ("a", "budget", "2024-05-10", 1.0)])
    m = tp.median_path(s, cohort_end="2024-05-31", value_cols=["input_cny"])
    flag = m[m["tier"] == "flagship"]
    assert list(flag["date"].dt.strftime("%Y-%m-%d")) == ["2024-05-31", "2025-01-01"]
    assert list(flag["input_cny"]) == [10.0, 2.0]          # median of (30, 10, 1), then of (2, 10, 1)
    assert list(flag["n_providers"]) == [3, 3]
    assert m[m["tier"] == "budget"]["input_cny"].tolist() == [1.0]
    # end cuts the path
    assert len(tp.median_path(s, cohort_end="2024-05-31", end="2024-12-31", value_cols=["input_cny"])
               .query("tier == 'flagship'")) == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.01, 100), min_size=1, max_size=6))
def test_median_path_starts_at_the_cohort_median(values: list[float]) -> None:
    s = _series([(f"p{i}", "flagship", "2024-05-10", v) for i, v in enumerate(values)])
    m = tp.median_path(s, cohort_end="2024-05-31", value_cols=["input_cny"])
    assert m["input_cny"].iloc[0] == pytest.approx(float(np.median(values)))


def test_real_median_path_and_cascade_before_date() -> None:
    norm = tp.normalise(tokenlib.load("prices"), tokenlib.load("fx"))
    moves = tp.cascade_moves(norm).set_index("provider")
    assert moves.loc["baidu", "before_date"] < moves.loc["baidu", "date"]
    assert pd.isna(moves.loc["bytedance", "before_date"])
    series = tp.tier_series(norm)
    cn = series[series["provider_country"] == "CN"]
    with pytest.raises(tp.MixedLaneError, match="mixes lanes"):     # DeepSeek lists in CNY and in USD
        tp.median_path(cn, cohort_end="2024-05-31")
    med = tp.median_path(cn[cn["lane"] == "mainland_list"], cohort_end="2024-05-31")
    assert (med.groupby("tier")["n_providers"].nunique() == 1).all()   # the cohort never changes size
    assert med["date"].min() == pd.Timestamp("2024-05-31")


def _norm_rows(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(provider, model, tier, date, input CNY per Mtok[, lane, currency, CNY per USD]) -> a normalised-looking
    table (default: the mainland list in CNY at 7 CNY per USD)."""
    out = []
    for r in rows:
        p, m, t, d, v, lane, cur, rate = r if len(r) == 8 else (*r, "mainland_list", "CNY", 7.0)
        out.append({"provider": p, "provider_country": "CN", "model": m, "tier": t, "context_tier": None,
                    "effective_date": pd.Timestamp(d), "date_basis": "announced", "price_type": "standard",
                    "lane": lane, "currency": cur, "input_cny": v, "input_usd": v / rate})
    return pd.DataFrame(out)


def test_cascade_cuts_hand_case() -> None:
    norm = _norm_rows([
        ("a", "x", "budget", "2024-05-01", 5.0), ("a", "x", "budget", "2024-05-11", 1.0),   # -80 % on day 5
        ("a", "y", "budget", "2024-05-20", 2.0), ("a", "y", "budget", "2024-05-21", 0.0),   # later: not first
        ("b", "p", "budget", "2024-05-20", 4.0), ("b", "p", "budget", "2024-05-21", 0.0),   # same day as q ...
        ("b", "q", "budget", "2024-05-20", 1.0), ("b", "q", "budget", "2024-05-21", 0.0),   # ... smaller fall
        ("c", "r", "budget", "2024-05-23", 1.0),                                          # no earlier price
        ("d", "s", "budget", "2024-05-10", 1.0), ("d", "s", "budget", "2024-05-20", 2.0),   # a rise, not a cut
        ("e", "t", "long_context", "2024-05-10", 9.0), ("e", "t", "long_context", "2024-05-20", 1.0),
        ("f", "u", "budget", "2024-05-10", 9.0), ("f", "u", "budget", "2024-08-01", 1.0),   # after the window
    ])
    cuts = tp.cascade_cuts(norm, start="2024-05-06", end="2024-06-30")
    assert list(cuts["provider"]) == ["a", "b"]
    a, b = cuts.iloc[0], cuts.iloc[1]
    assert (a["model"], a["days_since_start"], a["before_input_cny"], a["after_input_cny"]) == ("x", 5, 5.0, 1.0)
    assert a["cut_pct"] == pytest.approx(80.0)
    assert (b["model"], b["cut_pct"], b["before_date"]) == ("p", 100.0, pd.Timestamp("2024-05-20"))
    # other tiers only when asked for
    assert "e" in set(tp.cascade_cuts(norm, tiers=("long_context",))["provider"])
    with pytest.raises(ValueError):
        tp.cascade_cuts(norm, tiers=("premium",))


def test_cascade_reads_cuts_in_the_listed_currency_and_lane() -> None:
    # a USD list price that did not move, converted at two months' rates, is no cut; a mainland CNY price is
    # no "earlier price" of the same model's international USD one
    norm = _norm_rows([("a", "x", "budget", "2024-05-01", 7.2, "international_list", "USD", 7.2),
                       ("a", "x", "budget", "2024-05-20", 7.1, "international_list", "USD", 7.1),
                       ("b", "y", "budget", "2024-05-01", 2.0, "mainland_list", "CNY", 7.2),
                       ("b", "y", "budget", "2024-05-20", 1.4, "international_list", "USD", 7.0)])
    assert tp.cascade_cuts(norm, start="2024-05-06", end="2024-06-30").empty
    moves = tp.cascade_moves(norm, start="2024-05-06", end="2024-06-30").set_index("provider")
    assert np.isnan(moves.loc["a", "cut_pct"]) or moves.loc["a", "cut_pct"] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(moves.loc["b", "cut_pct"])


def test_cascade_cuts_empty() -> None:
    norm = _norm_rows([("a", "x", "budget", "2024-05-23", 1.0)])
    assert tp.cascade_cuts(norm).empty


def test_real_cascade_cuts() -> None:
    norm = tp.normalise(tokenlib.load("prices"), tokenlib.load("fx"))
    cuts = tp.cascade_cuts(norm).set_index("provider")
    assert cuts.loc["baidu", "cut_pct"] == 100.0
    assert (cuts["before_date"] < cuts["date"]).all()
    assert (cuts["after_input_cny"] < cuts["before_input_cny"]).all()


def test_deepseek_v32_cut_dated_when_it_took_effect():
    # DeepSeek's Change Log: deepseek-chat/-reasoner became V3.2-Exp on 2025-09-29, with the >50% cut;
    # the table once dated the cut 2026-04-13 (a blog's date), keeping the V3.1 price 6.5 months too long
    import tokenlib

    p = tokenlib.load("prices")
    v32 = p[(p["provider"] == "deepseek") & (p["model"] == "deepseek-chat") & (p["currency"] == "USD")
            & (p["price_type"] == "standard") & (p["input_price"] == 0.28)]
    assert len(v32) == 1
    assert str(v32["effective_date"].iloc[0].date()) == "2025-09-29" and v32["date_basis"].iloc[0] == "effective"
    assert "api-docs.deepseek.com/updates" in v32["notes"].iloc[0]


def _lane_rows() -> pd.DataFrame:
    """One provider, one tier, one date, two lanes: the CNY mainland list and the USD international list."""
    base = {"provider": "deepseek", "provider_country": "CN", "model": "deepseek-chat", "tier": "flagship",
            "effective_date": pd.Timestamp("2025-02-09"), "date_basis": "effective", "price_type": "standard",
            "context_tier": None, "unit": "per_mtok", "cached_input_price": None}
    return pd.DataFrame([
        {**base, "lane": "mainland_list", "currency": "CNY", "input_price": 2.0, "output_price": 8.0},
        {**base, "lane": "international_list", "currency": "USD", "input_price": 0.27, "output_price": 1.10},
    ])


def test_tier_series_keeps_each_lane_its_own_series() -> None:
    fx = pd.DataFrame({"month": ["2025-02"], "cny_per_usd": [7.2]})
    norm = tp.normalise(_lane_rows(), fx)
    series = tp.tier_series(norm)
    # two series, not one taking the cheaper of a CNY mainland price and a converted USD price
    assert sorted(series["lane"]) == ["international_list", "mainland_list"]
    got = series.set_index("lane")["input_cny"]
    assert got["mainland_list"] == pytest.approx(2.0)
    assert got["international_list"] == pytest.approx(0.27 * 7.2, rel=1e-9)
    only = tp.tier_series(norm, lanes=("mainland_list",))
    assert list(only["lane"]) == ["mainland_list"]
    with pytest.raises(ValueError, match="lane"):
        tp.tier_series(norm, lanes=("domestic",))


def test_series_that_mix_lanes_are_refused() -> None:
    fx = pd.DataFrame({"month": ["2025-02"], "cny_per_usd": [7.2]})
    series = tp.tier_series(tp.normalise(_lane_rows(), fx))
    with pytest.raises(tp.MixedLaneError, match="mixes lanes"):
        tp.median_path(series, cohort_end="2025-02-28")
    with pytest.raises(tp.MixedLaneError, match="international_list"):
        tp.carry_forward(series, ["2025-02-28"], keys=("provider", "tier"))
    # keyed by lane, the same rows are two clean series
    cf = tp.carry_forward(series, ["2025-02-28"], keys=("provider", "tier", "lane"))
    assert len(cf) == 2


def test_no_chart_series_in_the_data_mixes_lanes() -> None:
    """Every series the price chapter draws (tier_series keyed by provider, tier, lane) is of one lane,
    and every price series of the table (SERIES_KEYS) is of one currency and one price type."""
    prices = tokenlib.load("prices")
    norm = tp.normalise(prices, tokenlib.load("fx"))
    series = tp.tier_series(norm)
    tp.check_one_lane(series, ("provider", "tier", "lane"))
    cn_mainland = series[(series["provider_country"] == "CN") & (series["lane"] == "mainland_list")]
    tp.check_one_lane(cn_mainland, ("tier", "provider"))
    assert set(cn_mainland["lane"]) == {"mainland_list"}
    keyed = prices.assign(context_tier=prices["context_tier"].fillna(""))
    per_series = keyed.groupby(list(tp.SERIES_KEYS))["lane"].nunique()
    assert (per_series == 1).all()


def test_date_basis_words_and_vendor_dates_cover_the_schema() -> None:
    values = set(tokenlib.data.table_spec("prices").column("date_basis").values)
    assert set(tp.DATE_BASIS_WORDS) == values
    assert tp.VENDOR_DATED_BASES <= values
