"""Fleet economics: daily cost, revenue and margin of an inference fleet (DeepSeek Day-6 style).

``cost = chips x hours x chip-hour cost``; ``revenue = cache-hit input x hit price + cache-miss
input x miss price + output x output price``; ``cost-profit margin = (revenue - cost) / cost``.
Defaults are DeepSeek's stated Day-6 inputs (rows of ``data/fleet_reports.csv``, each with its quote), so ``fleet_economics()`` reproduces its overview:
cost $87,072/day exactly; revenue $562,100 from the rounded token counts the post gives
(608B input, 342B cache hits, 168B output) vs $562,027 stated (0.013% apart: the post's token counts
are rounded to the billion); margin 545% (546% from the rounded counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from tokenlib.data import load
from tokenlib.errors import check_number

SOURCE = ("https://github.com/deepseek-ai/open-infra-index/blob/3122a25220273cb0806f591e52c4171bd869d8ad/"
          "202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_overview.md")

REPORT = "deepseek-day6"
"""The ``report`` of ``data/fleet_reports.csv`` whose rows are DeepSeek's Day-6 inputs (each with its quote)."""


def day6(root: Path | str | None = None) -> dict[str, float]:
    """DeepSeek's Day-6 stated inputs, metric -> value, from ``data/fleet_reports.csv`` (:data:`SOURCE`)."""
    df = load("fleet_reports", root)
    rows = df[df["report"] == REPORT]
    if rows.empty:
        raise ValueError(f"data/fleet_reports.csv has no rows for report {REPORT!r}")
    return {str(m): float(v) for m, v in zip(rows["metric"], rows["value"])}


def __getattr__(name: str) -> dict[str, float]:
    # DAY6, the dict earlier versions defined here, now read from the data on each access
    if name == "DAY6":
        return day6()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FleetEconomics(NamedTuple):
    """Daily fleet economics (currency of the prices and chip-hour cost given), a named tuple of floats."""

    chips: float
    """Chips in service (nodes x chips per node), averaged over the day."""
    cost: float
    """Chip-hours x the cost per chip-hour, for the day."""
    revenue: float
    """All tokens of the day at list prices: the three parts below."""
    profit: float
    """``revenue - cost``."""
    cost_profit_margin: float
    """``(revenue - cost) / cost``, e.g. 5.45 for DeepSeek's stated 545 %."""
    revenue_input_cache_hit: float
    """Input tokens served from the context cache x the cache-hit price."""
    revenue_input_cache_miss: float
    """The other input tokens x the cache-miss price."""
    revenue_output: float
    """Output tokens x the output price."""

    def as_dict(self) -> dict[str, float]:
        """Plain dict of the fields."""
        return dict(self._asdict())


def fleet_economics(
    *, average_nodes: float | None = None, chips_per_node: float | None = None,
    chip_hour_cost_usd: float | None = None, hours: float | None = None, input_tokens: float | None = None,
    cached_input_tokens: float | None = None, cache_hit_share: float | None = None,
    output_tokens: float | None = None, price_cache_hit_usd_per_mtok: float | None = None,
    price_cache_miss_usd_per_mtok: float | None = None, price_output_usd_per_mtok: float | None = None,
) -> FleetEconomics:
    """Daily cost, revenue and margin. Give ``cache_hit_share`` instead of ``cached_input_tokens`` if preferred.

    Every input left out (None) is DeepSeek's Day-6 figure (:func:`day6`). Prices and chip-hour cost may be in
    any one currency (names say USD because DeepSeek's are).
    """
    d = day6()

    def given(name: str, value: float | None) -> float:
        return d[name] if value is None else value

    average_nodes, chips_per_node = given("average_nodes", average_nodes), given("chips_per_node", chips_per_node)
    chip_hour_cost_usd, hours = given("chip_hour_cost_usd", chip_hour_cost_usd), given("hours", hours)
    input_tokens, output_tokens = given("input_tokens", input_tokens), given("output_tokens", output_tokens)
    if cache_hit_share is None:
        cached_input_tokens = given("cached_input_tokens", cached_input_tokens)
    price_cache_hit_usd_per_mtok = given("price_cache_hit_usd_per_mtok", price_cache_hit_usd_per_mtok)
    price_cache_miss_usd_per_mtok = given("price_cache_miss_usd_per_mtok", price_cache_miss_usd_per_mtok)
    price_output_usd_per_mtok = given("price_output_usd_per_mtok", price_output_usd_per_mtok)
    vals: dict[str, Any] = {k: float(check_number(k, v)) for k, v in dict(
        average_nodes=average_nodes, chips_per_node=chips_per_node, chip_hour_cost_usd=chip_hour_cost_usd,
        hours=hours, input_tokens=input_tokens, output_tokens=output_tokens,
        price_cache_hit_usd_per_mtok=price_cache_hit_usd_per_mtok,
        price_cache_miss_usd_per_mtok=price_cache_miss_usd_per_mtok,
        price_output_usd_per_mtok=price_output_usd_per_mtok).items()}
    if cache_hit_share is not None:
        share = float(check_number("cache_hit_share", cache_hit_share, upper=1.0))
        hit = share * vals["input_tokens"]
    else:
        hit = float(check_number("cached_input_tokens", 0.0 if cached_input_tokens is None else cached_input_tokens))
    if hit > vals["input_tokens"]:
        raise ValueError(f"cached_input_tokens ({hit}) must not exceed input_tokens ({vals['input_tokens']})")
    chips = vals["average_nodes"] * vals["chips_per_node"]
    cost = chips * vals["hours"] * vals["chip_hour_cost_usd"]
    r_hit = hit / 1e6 * vals["price_cache_hit_usd_per_mtok"]
    r_miss = (vals["input_tokens"] - hit) / 1e6 * vals["price_cache_miss_usd_per_mtok"]
    r_out = vals["output_tokens"] / 1e6 * vals["price_output_usd_per_mtok"]
    revenue = r_hit + r_miss + r_out
    margin = (revenue - cost) / cost if cost > 0 else float("inf")
    return FleetEconomics(chips=chips, cost=cost, revenue=revenue, profit=revenue - cost,
                          cost_profit_margin=margin, revenue_input_cache_hit=r_hit,
                          revenue_input_cache_miss=r_miss, revenue_output=r_out)


def cost_profit_margin(revenue: float, cost: float) -> float:
    """(revenue - cost) / cost; DeepSeek's stated $562,027 and $87,072 give 5.4548 (545%)."""
    r = float(check_number("revenue", revenue))
    c = float(check_number("cost", cost, allow_zero=False))
    return (r - c) / c
