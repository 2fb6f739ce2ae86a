"""Benchmark: 1e5 draws of the city-race Monte Carlo (chapter 5's sizes: one model, three chip mixes).

Prints the median of 3 wall-clock runs and draws per second. The module docstring of
:mod:`tokenlib.analysis.city_race` promises "a few seconds" for 1e5 draws; this is where that is measured
(it used to be a timed unit test). Run: ``python benchmarks/bench_monte_carlo.py`` or ``make bench``.
"""

from __future__ import annotations

import statistics
import time

import tokenlib
from tokenlib.analysis import city_cost, city_race, subsidies
from tokenlib.model import fleet

N = 100_000
CHIPS = {"nvidia": "h20", "domestic": "ascend-910c"}
SERVING = {"deepseek-v3": city_cost.Serving("fp8", 32, 32, 12686, 144, 4989)}
PROXIES = {"hangzhou": ["beijing", "shenzhen"], "shanghai": ["beijing", "shenzhen"]}


def run(n: int = N) -> city_race.MonteCarloResult:
    places = tokenlib.load("places")
    d6 = fleet.DAY6
    weights = {"prefill": d6["input_tokens"] - d6["cached_input_tokens"], "cached_input": d6["cached_input_tokens"],
               "decode": d6["output_tokens"]}
    return city_race.monte_carlo(
        n=n, models=["deepseek-v3"], chips=CHIPS, serving=SERVING,
        mixes={"all-nvidia": 0.0, "mixed": 0.5, "all-domestic": 1.0},
        electricity=city_cost.electricity_ranges(places, proxies=PROXIES, spread=0.1),
        vouchers=subsidies.voucher_terms(places), price_usd={"nvidia": (10000, 13000), "domestic": (17000, 34000)},
        utilization=(0.5, 0.9), take_up=(0.0, 1.0), annual_spend_cny=20e6,
        kernel_errors={"nvidia": {"bias": 1.1, "sigma": 0.4}, "domestic": {"bias": 1.1, "sigma": 0.2}},
        weights=weights, seed=1)


def main() -> None:
    run(1000)  # warm the caches (data, kernel arrays)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"city_race.monte_carlo: {N:,} draws in {med:.2f} s (median of 3), {N / med:,.0f} draws/s")


if __name__ == "__main__":
    main()
