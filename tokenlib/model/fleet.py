"""Fleet economics: daily cost, revenue and margin of an inference fleet (DeepSeek Day-6 style).

``cost = chips x hours x chip-hour cost``; ``revenue = cache-hit input x hit price + cache-miss
input x miss price + output x output price``; ``cost-profit margin = (revenue - cost) / cost``.
Defaults are DeepSeek's stated Day-6 inputs, so ``fleet_economics()`` reproduces its overview:
cost $87,072/day exactly; revenue $562,100 from the rounded token counts the post gives
(608B input, 342B cache hits, 168B output) vs $562,027 stated (0.013% apart: the post's token counts
are rounded to the billion); margin 545% (546% from the rounded counts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tokenlib.errors import check_number

SOURCE = ("https://github.com/deepseek-ai/open-infra-index/blob/3122a25220273cb0806f591e52c4171bd869d8ad/"
          "202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_overview.md")

DAY6: dict[str, float] = {
    "average_nodes": 226.75,        # "average occupancy of 226.75 nodes"
    "peak_nodes": 278.0,            # "the combined peak node occupancy for V3 and R1 inference services reached 278"
    "chips_per_node": 8,            # "each node contains 8 H800 GPUs"
    "chip_hour_cost_usd": 2.0,      # "leasing cost of one H800 GPU is $2 per hour"
    "hours": 24.0,                  # 24-hour window
    "input_tokens": 608e9,          # "Total input tokens: 608B"
    "cached_input_tokens": 342e9,   # "of which 342B tokens (56.3%) hit the on-disk KV cache"
    "output_tokens": 168e9,         # "Total output tokens: 168B"
    "price_cache_hit_usd_per_mtok": 0.14,
    "price_cache_miss_usd_per_mtok": 0.55,
    "price_output_usd_per_mtok": 2.19,
}
"""DeepSeek's Day-6 stated inputs (quoted in the comments), from :data:`SOURCE`."""


@dataclass(frozen=True)
class FleetEconomics:
    """Daily fleet economics (currency of the prices and chip-hour cost given)."""

    chips: float
    cost: float
    revenue: float
    profit: float
    cost_profit_margin: float  # (revenue - cost) / cost, e.g. 5.45 for 545%
    revenue_input_cache_hit: float
    revenue_input_cache_miss: float
    revenue_output: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict of the fields."""
        return asdict(self)


def fleet_economics(
    *, average_nodes: float = DAY6["average_nodes"], chips_per_node: float = DAY6["chips_per_node"],
    chip_hour_cost_usd: float = DAY6["chip_hour_cost_usd"], hours: float = DAY6["hours"],
    input_tokens: float = DAY6["input_tokens"], cached_input_tokens: float | None = DAY6["cached_input_tokens"],
    cache_hit_share: float | None = None, output_tokens: float = DAY6["output_tokens"],
    price_cache_hit_usd_per_mtok: float = DAY6["price_cache_hit_usd_per_mtok"],
    price_cache_miss_usd_per_mtok: float = DAY6["price_cache_miss_usd_per_mtok"],
    price_output_usd_per_mtok: float = DAY6["price_output_usd_per_mtok"],
) -> FleetEconomics:
    """Daily cost, revenue and margin. Give ``cache_hit_share`` instead of ``cached_input_tokens`` if preferred.

    Prices and chip-hour cost may be in any one currency (names say USD because DeepSeek's are).
    """
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
