"""Prices at fixed capability: threshold crossing, the price-capability frontier, the fall-per-year fit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import tokenlib
from tokenlib.analysis import capability as tc

TOL = 1e-9


def cap_rows(rows: list[tuple[str, str, str, str, str, float]], board: str = "lmarena_text") -> pd.DataFrame:
    """(model, provider, country, served_from, board_version, score) -> a capability-like frame."""
    df = pd.DataFrame(rows, columns=["model", "provider", "provider_country", "served_from", "board_version", "score"])
    df["served_from"] = pd.to_datetime(df["served_from"].replace("", None))
    df["board"] = board
    df["board_model"] = [m or f"anchor-{v}" for m, v in zip(df["model"], df["board_version"], strict=True)]
    df["estimated"] = None
    df["release_date"] = pd.NaT
    return df


def anchored(rows: list[tuple[str, str, str, str, str, float]], anchor_version: str, anchor_score: float,
             name: str = "ANCHOR") -> pd.DataFrame:
    df = cap_rows(rows)
    anchor = cap_rows([("", "openai", "US", "", anchor_version, anchor_score)])
    anchor["board_model"] = name
    return pd.concat([df, anchor], ignore_index=True)


def wp_rows(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(provider, country, model, date, price_cny[, lane]) -> workload prices (USD = CNY / 7; lane defaults
    to the mainland list)."""
    rows = [r if len(r) == 6 else (*r, "mainland_list") for r in rows]
    df = pd.DataFrame(rows, columns=["provider", "provider_country", "model", "effective_date", "price_cny", "lane"])
    df["effective_date"] = pd.to_datetime(df["effective_date"])
    df["price_usd"] = df["price_cny"] / 7.0
    return df


# ---------------------------------------------------------------- threshold crossing

def test_at_or_above_within_one_snapshot() -> None:
    cap = anchored([("a", "deepseek", "CN", "", "v1", 1250.0), ("b", "zhipu", "CN", "", "v1", 1150.0),
                    ("c", "google", "US", "", "v1", 1200.0)], "v1", 1200.0)
    ok = tc.at_or_above(cap, "lmarena_text", "ANCHOR")
    assert "a@" in ok and "c@" in ok, "a model scoring at the anchor's level (tie) or above clears it"
    assert "b@" not in ok


def test_at_or_above_never_compares_scores_across_snapshots() -> None:
    # v2 is on a scale ~300 points higher: y's 1300 beats the anchor's 1200 numerically, but no
    # model links the two snapshots, so y must stay unplaced.
    cap = anchored([("x", "deepseek", "CN", "", "v1", 1250.0), ("y", "moonshot", "CN", "", "v2", 1300.0)],
                   "v1", 1200.0)
    assert "y@" not in tc.at_or_above(cap, "lmarena_text", "ANCHOR")


def test_at_or_above_chains_through_a_shared_model() -> None:
    cap = anchored([("x", "deepseek", "CN", "", "v1", 1250.0),
                    ("x", "deepseek", "CN", "", "v2", 1500.0),      # x again, on the new scale
                    ("y", "moonshot", "CN", "", "v2", 1510.0),      # above x in v2 -> above the anchor
                    ("z", "zhipu", "CN", "", "v2", 1490.0)],        # below x in v2: not known to clear it
                   "v1", 1200.0)
    ok = tc.at_or_above(cap, "lmarena_text", "ANCHOR")
    assert {"x@", "y@"} <= ok
    assert "z@" not in ok


def test_unknown_anchor_names_the_valid_choices() -> None:
    cap = anchored([("x", "deepseek", "CN", "", "v1", 1250.0)], "v1", 1200.0)
    with pytest.raises(ValueError, match="ANCHOR"):
        tc.at_or_above(cap, "lmarena_text", "GPT-9")
    with pytest.raises(ValueError, match="aa_intelligence_index"):
        tc.at_or_above(cap, "arena", "ANCHOR")


def test_served_from_switches_the_model_an_id_buys() -> None:
    # one API id: below the threshold until 2025-02-06, above it from then on (an upgrade behind the id)
    cap = anchored([("chat", "deepseek", "CN", "2024-05-23", "v1", 1100.0),
                    ("chat", "deepseek", "CN", "2025-02-06", "v1", 1300.0),
                    ("big", "zhipu", "CN", "", "v1", 1250.0),
                    ("mini", "openai", "US", "", "v1", 1210.0)], "v1", 1200.0)
    wp = wp_rows([("deepseek", "CN", "chat", "2024-05-23", 1.0), ("deepseek", "CN", "chat", "2025-02-06", 2.0),
                  ("zhipu", "CN", "big", "2024-05-23", 10.0), ("zhipu", "CN", "free-one", "2024-05-23", 0.0),
                  ("openai", "US", "mini", "2024-06-01", 3.0)])
    ch = tc.cheapest_at_or_above(wp, cap, {"lmarena_text": "ANCHOR"})
    cn = ch[ch["provider_country"] == "CN"].set_index("date")
    assert cn.loc["2024-05-23", "model"] == "big", "before its upgrade the cheap id is below the threshold"
    assert cn.loc["2025-02-06", "model"] == "chat" and cn.loc["2025-02-06", "price_cny"] == pytest.approx(2.0, abs=TOL)
    assert cn.loc["2025-02-06", "n_models"] == 2
    us = ch[ch["provider_country"] == "US"]
    assert us["date"].min() == pd.Timestamp("2024-06-01"), "a model enters on its first price date"
    assert "free-one" not in set(ch["model"])


def test_any_board_clears_and_empty_anchors_raise() -> None:
    lm = anchored([("a", "deepseek", "CN", "", "v1", 1250.0)], "v1", 1200.0)
    aa = cap_rows([("b", "zhipu", "CN", "", "aa-v4", 30.0), ("", "openai", "US", "", "aa-v4", 20.0)],
                  board="aa_intelligence_index")
    aa.loc[aa["model"] == "", "board_model"] = "GPT-4"
    cap = pd.concat([lm, aa], ignore_index=True)
    wp = wp_rows([("deepseek", "CN", "a", "2024-06-01", 5.0), ("zhipu", "CN", "b", "2024-06-01", 4.0)])
    only_lm = tc.cheapest_at_or_above(wp, cap, {"lmarena_text": "ANCHOR"})
    both = tc.cheapest_at_or_above(wp, cap, {"lmarena_text": "ANCHOR", "aa_intelligence_index": "GPT-4"})
    assert list(only_lm["model"]) == ["a"]
    assert list(both["model"]) == ["b"], "b clears the threshold on the other board and is cheaper"
    with pytest.raises(ValueError, match="anchors"):
        tc.cheapest_at_or_above(wp, cap, {})


# ---------------------------------------------------------------- frontier

def test_pareto_frontier_hand_case() -> None:
    capability = [10, 20, 20, 30, 15, 30]
    price = [1.0, 2.0, 3.0, 10.0, 2.0, 10.0]
    front = tc.pareto_frontier(capability, price)
    # 0: cheapest; 1: best at 2.0; 2: dominated by 1; 3 and 5 tie at the top: both kept; 4: dominated by 1
    assert front.tolist() == [True, True, False, True, False, True]


def test_pareto_frontier_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="length"):
        tc.pareto_frontier([1, 2], [1.0])
    with pytest.raises(ValueError, match="finite"):
        tc.pareto_frontier([1, np.nan], [1.0, 2.0])


def test_frontier_at_needs_one_board_version() -> None:
    cap = anchored([("a", "deepseek", "CN", "", "v1", 1250.0), ("a", "deepseek", "CN", "", "v2", 1400.0)],
                   "v1", 1200.0)
    wp = wp_rows([("deepseek", "CN", "a", "2024-06-01", 5.0)])
    with pytest.raises(ValueError, match="v1, v2"):
        tc.frontier_at(wp, cap, "lmarena_text", "2024-07-01")
    one = tc.frontier_at(wp, cap, "lmarena_text", "2024-07-01", board_version="v2")
    assert one["score"].tolist() == [1400.0] and bool(one["on_front"].iloc[0])


def test_best_within_budget() -> None:
    front = pd.DataFrame({"provider_country": ["CN", "CN", "US"], "model": ["cheap", "dear", "us"],
                          "price_cny": [1.0, 5.0, 0.5], "score": [10.0, 30.0, 50.0]})
    assert tc.best_within_budget(front, 1.5, country="CN")["model"] == "cheap"
    assert tc.best_within_budget(front, 5.0, country="CN")["model"] == "dear"
    with pytest.raises(ValueError, match="no CN model"):
        tc.best_within_budget(front, 0.5, country="CN")


# ---------------------------------------------------------------- fit

def test_fall_per_year_recovers_an_exact_exponential() -> None:
    dates = pd.to_datetime(["2024-01-01", "2024-07-01", "2025-01-01", "2025-07-01", "2026-01-01"])
    years = (dates - dates[0]).days / 365.25
    prices = 10.0 * 4.0 ** (-years.to_numpy())
    fit = tc.fall_per_year(dates, prices, n_boot=500)
    assert fit.factor == pytest.approx(4.0, rel=1e-9)
    assert fit.low == pytest.approx(4.0, rel=1e-6) and fit.high == pytest.approx(4.0, rel=1e-6)
    assert fit.n == 5 and fit.first == "2024-01-01" and fit.last == "2026-01-01"


def test_fall_per_year_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    dates = pd.date_range("2024-01-01", periods=12, freq="60D")
    years = (dates - dates[0]).days / 365.25
    prices = 10.0 * 3.0 ** (-years.to_numpy()) * np.exp(rng.normal(0, 0.3, len(dates)))
    fit = tc.fall_per_year(dates, prices, n_boot=1000, level=0.9)
    assert fit.low < fit.factor < fit.high
    assert fit.low < 3.0 < fit.high, "a 90 % interval on 12 noisy points should hold the true factor here"
    again = tc.fall_per_year(dates, prices, n_boot=1000, level=0.9)
    assert again == fit, "same seed, same interval"


def test_fall_per_year_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        tc.fall_per_year(pd.to_datetime(["2024-01-01", "2025-01-01"]), [2.0, 1.0])
    with pytest.raises(ValueError, match="> 0"):
        tc.fall_per_year(pd.to_datetime(["2024-01-01", "2024-06-01", "2025-01-01"]), [2.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="n_boot"):
        tc.fall_per_year(pd.to_datetime(["2024-01-01", "2024-06-01", "2025-01-01"]), [2.0, 1.5, 1.0], n_boot=10)


def test_change_points_drop_repeated_prices() -> None:
    s = pd.DataFrame({"date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]),
                      "price_cny": [5.0, 5.0, 2.0, 2.0]})
    assert tc.change_points(s, "price_cny")["date"].dt.strftime("%m").tolist() == ["01", "03"]


# ---------------------------------------------------------------- the table itself

def test_capability_table_matches_prices_and_covers_both_countries() -> None:
    cap = tokenlib.load("capability")
    prices = tokenlib.load("prices")
    priced = set(zip(prices["provider"], prices["model"], strict=True))
    named = cap[cap["model"].fillna("") != ""]
    missing = sorted({(p, m) for p, m in zip(named["provider"], named["model"], strict=True)} - priced)
    assert not missing, f"capability rows whose (provider, model) is not in prices.csv: {missing}"
    for board, grp in cap.groupby("board"):
        assert set(grp["provider_country"]) >= {"CN", "US"}, f"{board} must score Chinese and Western models"
    both = named.groupby(["provider", "model"])["board"].nunique()
    assert (both >= 2).sum() >= 15, "at least 15 priced models carry scores on both yardsticks"
    lm = cap[cap["board"] == "lmarena_text"]
    assert lm["board_version"].nunique() >= 3, "LMArena is held at several dated snapshots"
    for anchor in ("GPT-4-0314", "DeepSeek-V3"):
        assert anchor in set(lm["board_model"]), anchor


def test_a_price_reobserved_under_another_exchange_rate_is_not_a_step() -> None:
    # a USD list price seen again a month later: its CNY conversion moved with the rate, the price did not
    s = pd.DataFrame({"date": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"]),
                      "price_usd": [1.0, 1.0, 0.5, 0.5], "price_cny": [7.2, 7.1, 3.6, 3.6]})
    assert tc.change_points(s)["date"].dt.strftime("%m").tolist() == ["01", "03"]
    assert tc.change_points(s, "price_cny")["date"].dt.strftime("%m").tolist() == ["01", "02", "03"]
    with pytest.raises(ValueError, match="price_eur"):
        tc.change_points(s, "price_eur")


def test_a_price_holds_until_the_next_row_on_its_own_lane() -> None:
    # a model listed in USD (international) and later in CNY (mainland): the later CNY row does not end the
    # USD price, so the cheapest way to buy it stays the USD one, and it is still one model
    cap = anchored([("chat", "deepseek", "CN", "", "v1", 1300.0)], "v1", 1200.0)
    wp = wp_rows([("deepseek", "CN", "chat", "2025-01-01", 0.8, "international_list"),
                  ("deepseek", "CN", "chat", "2025-03-01", 1.0, "mainland_list")])
    ch = tc.cheapest_at_or_above(wp, cap, {"lmarena_text": "ANCHOR"}).set_index("date")
    assert ch.loc["2025-03-01", "price_cny"] == pytest.approx(0.8, abs=TOL)
    assert ch.loc["2025-03-01", "n_models"] == 1
    front = tc.frontier_at(wp, cap, "lmarena_text", "2025-03-01")
    assert len(front) == 1 and front["price_cny"].iloc[0] == pytest.approx(0.8, abs=TOL)
