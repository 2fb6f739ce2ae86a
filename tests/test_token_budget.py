"""The national token budget: formulas by hand, conversions of the supply ledger, Monte Carlo checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tokenlib
from tokenlib.model import cost
from tokenlib.model import kernel
from tokenlib.analysis import token_budget as tb

LAYOUT = tb.Layout("fp8", decode_chips=144, prefill_chips=32, prefill_batch=32, context=4989)
DENSE = tb.Layout("fp8", decode_chips=8, prefill_chips=8, prefill_batch=8, context=4096)
CHIPS = ["h20", "ascend-910b", "ascend-910c"]
RANGES = dict(speed_tps=(15, 30), utilization=(0.3, 0.7), output_share=(0.15, 0.35), cache_hit_share=(0.3, 0.6),
              dense_share=(0.0, 0.3), cached_cost_fraction=(0.05, 0.2), ascend_910c_share=(0.3, 0.7),
              pue=(1.2, 1.5), load_factor=(0.6, 0.8))
RATIOS = {"prefill": np.array([0.9, 1.0, 1.1]), "decode": np.array([0.8, 1.0, 1.2])}


@pytest.fixture(scope="module")
def curves() -> dict[tuple[str, str], tb.Curve]:
    out = {}
    for c in CHIPS:
        prec = "fp8" if c == "h20" else "int8"
        out[("deepseek-v3", c)] = tb.speed_curve("deepseek-v3", c, tb.Layout(prec, 144, 32, 32, 4989))
        out[("qwen2.5-72b", c)] = tb.speed_curve("qwen2.5-72b", c, tb.Layout(prec, 8, 8, 8, 4096))
    return out


def test_chip_seconds_per_token_by_hand() -> None:
    # P = 1000 input tok/s, R = 100 output tok/s, o = 0.2, h = 0.5, f = 0.1:
    # 0.8*0.5/1000 + 0.8*0.5*0.1/1000 + 0.2/100 = 0.0004 + 0.00004 + 0.002 = 0.00244 s
    s = tb.chip_seconds_per_token(1000.0, 100.0, 0.2, 0.5, 0.1)
    assert float(s) == pytest.approx(0.00244, rel=1e-9)
    # all output: 1/R; all uncached input: 1/P
    assert float(tb.chip_seconds_per_token(1000.0, 100.0, 1.0, 0.5, 0.1)) == pytest.approx(0.01, rel=1e-9)
    assert float(tb.chip_seconds_per_token(1000.0, 100.0, 0.0, 0.0, 0.1)) == pytest.approx(0.001, rel=1e-9)


def test_split_volume_adds_up() -> None:
    v = tb.split_volume(140e12, 0.2, 0.5)
    assert sum(v.values()) == pytest.approx(140e12, rel=1e-12)
    assert v["output"] == pytest.approx(28e12, rel=1e-12)
    assert v["cached_input"] == pytest.approx(56e12, rel=1e-12)


def test_bad_inputs_named() -> None:
    with pytest.raises(ValueError, match="output_share"):
        tb.chip_seconds_per_token(1, 1, 1.5, 0.5, 0.1)
    with pytest.raises(ValueError, match="utilization"):
        tb.required_chips(1e12, 1e8, 0.0)
    with pytest.raises(ValueError, match="precision"):
        tb.Layout("fp4", 8, 8, 8, 1024)
    assert tb.Layout("W8A8", 8, 8, 8, 1024).precision == "int8"  # the kernel's names, one rule (specs.precision_id)
    with pytest.raises(ValueError, match="ranges is missing"):
        tb.simulate({}, CHIPS, moe_model="deepseek-v3", dense_model="qwen2.5-72b",
                    ranges={"speed_tps": (1, 2)}, ratios=RATIOS)
    with pytest.raises(ValueError, match="low <= high"):
        tb.simulate({}, CHIPS, moe_model="deepseek-v3", dense_model="qwen2.5-72b",
                    ranges={**RANGES, "speed_tps": (30, 15)}, ratios=RATIOS)
    with pytest.raises(ValueError, match="unknown assumptions"):
        tb.simulate({}, CHIPS, moe_model="deepseek-v3", dense_model="qwen2.5-72b",
                    ranges={**RANGES, "speeed": (1, 2)}, ratios=RATIOS)
    with pytest.raises(ValueError, match="decode"):
        tb.error_ratios(pd.DataFrame({"phase": ["prefill"], "ratio": [1.0]}))


def test_required_and_implied_utilisation_round_trip() -> None:
    cap = np.array([1e8, 2e8])
    n = tb.required_chips(1.4e14, cap, 0.5)
    np.testing.assert_allclose(n, [2.8e6, 1.4e6], rtol=1e-12)
    # a supply of exactly the required fleet is busy exactly the utilisation
    np.testing.assert_allclose(tb.implied_utilization(1.4e14, n * cap), [0.5, 0.5], rtol=1e-12)


def test_power_and_energy_by_hand() -> None:
    # 1,000 chips x 400 W x 0.7 x 1.3 = 364,000 W = 0.364 MW; 1 MW all year = 8,760 MWh = 0.00876 TWh
    assert float(tb.power_mw(1000, 400, 0.7, 1.3)) == pytest.approx(0.364, rel=1e-12)
    assert float(tb.twh_per_year(1.0)) == pytest.approx(0.00876, rel=1e-12)


def test_daily_cost_uses_the_cost_kernel() -> None:
    hour = cost.chip_hour_cost("h20", currency="CNY")
    assert float(tb.daily_cost_cny(1000, "h20")) == pytest.approx(1000 * 24 * hour, rel=1e-12)


def test_curve_matches_kernel(curves: dict[tuple[str, str], tb.Curve]) -> None:
    c = curves[("deepseek-v3", "h20")]
    assert c.speed.size > 10 and np.all(np.diff(c.speed) >= 0)
    # each point of the curve is the kernel's throughput at the batch it implies
    i = c.speed.size // 2
    batch = c.decode_tps[i] * LAYOUT.decode_chips / c.speed[i]
    direct = kernel.throughput("deepseek-v3", "h20", "decode", batch=round(batch), context=4989, precision="fp8",
                               n_chips=144)
    assert direct == pytest.approx(c.decode_tps[i], rel=1e-6)
    # faster per-user speed -> fewer tokens per chip; beyond the fastest reachable speed: NaN
    lo, hi = c.decode_at([10.0, 40.0])
    assert lo > hi
    assert np.isnan(c.decode_at(c.speed[-1] * 2))
    assert c.prefill_tps == pytest.approx(kernel.throughput("deepseek-v3", "h20", "prefill", batch=32, context=4989,
                                                            precision="fp8", n_chips=32), rel=1e-9)


def test_simulation_is_monotone_and_seeded(curves: dict[tuple[str, str], tb.Curve]) -> None:
    d1 = tb.simulate(curves, CHIPS, moe_model="deepseek-v3", dense_model="qwen2.5-72b", ranges=RANGES,
                     ratios=RATIOS, n_draws=500, seed=3)
    d2 = tb.simulate(curves, CHIPS, moe_model="deepseek-v3", dense_model="qwen2.5-72b", ranges=RANGES,
                     ratios=RATIOS, n_draws=500, seed=3)
    np.testing.assert_array_equal(d1.capacity["h20"], d2.capacity["h20"])
    assert np.all(d1.capacity["h20"] > 0)
    # a kernel that over-predicts by 2x (ratio 2) halves the tokens a chip really makes
    base = {k: np.array([0.5 * (lo + hi)]) for k, (lo, hi) in RANGES.items()}
    one = tb.capacity(curves, ["h20"], "deepseek-v3", "qwen2.5-72b", base, np.array([1.0]), np.array([1.0]))["h20"]
    two = tb.capacity(curves, ["h20"], "deepseek-v3", "qwen2.5-72b", base, np.array([2.0]), np.array([2.0]))["h20"]
    assert float(two[0]) == pytest.approx(float(one[0]) / 2, rel=1e-9)
    # more output (the expensive phase) -> fewer tokens per chip
    more_out = tb.capacity(curves, ["h20"], "deepseek-v3", "qwen2.5-72b", {**base, "output_share": np.array([0.35])},
                           np.array([1.0]), np.array([1.0]))["h20"]
    assert float(more_out[0]) < float(one[0])


def _ledger() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "b", "c", "d", "e"],
        "vendor": ["nvidia", "huawei", "huawei", "domestic_all", "huawei"],
        "chip_id": ["h20", "", "", "", "ascend-910c"],
        "counted": ["packaged_chips", "packaged_chips", "dies", "packaged_chips", "dies"],
        "value": [10.0, 10.0, 10.0, 10.0, 10.0],
    })


def test_supply_conversion_rules() -> None:
    cap = {"h20": np.array([1.0, 1.0]), "ascend-910b": np.array([2.0, 2.0]), "ascend-910c": np.array([6.0, 6.0])}
    rows, m = tb.supply_capacity(_ledger(), cap, np.array([0.0, 0.5]))
    np.testing.assert_allclose(m[0], [10.0, 10.0])  # 10 H20
    np.testing.assert_allclose(m[1], [20.0, 10 * (0.5 * 2 + 0.5 * 6)])  # packaged mix
    np.testing.assert_allclose(m[2], [20.0, 10 * (0.5 * 2 + 0.5 * 3)])  # dies: a 910C takes two
    assert np.all(np.isnan(m[3])) and not rows["converted"].iloc[3] and "unknown" in rows["reason"].iloc[3]
    np.testing.assert_allclose(m[4], [30.0, 30.0])  # 910C dies: half a package each
    np.testing.assert_allclose(tb.combined_capacity(rows, m, ["a", "e"]), [40.0, 40.0])
    with pytest.raises(ValueError, match="not converted"):
        tb.combined_capacity(rows, m, ["d"])
    with pytest.raises(ValueError, match="unknown ledger row"):
        tb.combined_capacity(rows, m, ["zz"])
    bad = _ledger().assign(chip_id=["b200", "", "", "", ""])
    with pytest.raises(ValueError, match="b200"):
        tb.supply_capacity(bad, cap, np.array([0.5]))


def test_domestic_share_and_consistency() -> None:
    np.testing.assert_allclose(tb.domestic_share_needed(100.0, np.array([50.0, 400.0]), 0.5), [0.75, 0.0])
    assert tb.consistency(np.full(100, 2.0), 0.8) == "inconsistent"
    assert tb.consistency(np.full(100, 0.5), 0.8) == "consistent"
    assert tb.consistency(np.r_[np.full(50, 0.5), np.full(50, 2.0)], 0.8) == "undecided"


def test_sensitivity_sorted_with_kernel_error(curves: dict[tuple[str, str], tb.Curve]) -> None:
    s = tb.one_at_a_time(curves, "h20", moe_model="deepseek-v3", dense_model="qwen2.5-72b", ranges=RANGES,
                         ratios=RATIOS, tokens_per_day=1.4e14)
    assert "kernel_error" in set(s["assumption"]) and "utilization" in set(s["assumption"])
    assert list(s["swing"]) == sorted(s["swing"], reverse=True)
    u = s.set_index("assumption").loc["utilization"]
    # fleet scales as 1/u: at u = 0.3 it is 0.7/0.3 times the fleet at u = 0.7
    assert u["chips_at_low"] / u["chips_at_high"] == pytest.approx(0.7 / 0.3, rel=1e-9)


def test_national_volume_and_ledger_load() -> None:
    v = tb.national_volume(tokenlib.load("usage"))
    assert v.index.is_monotonic_increasing
    assert float(v.iloc[-1]) == pytest.approx(140e12, rel=1e-9)
    led = tokenlib.load("chip_supply")
    assert led["id"].is_unique
    assert {"huawei", "nvidia", "cambricon"} <= set(led["vendor"])
    # conflicting estimates keep a row each: Huawei's 2025 Ascend output from >= 3 publishers
    ascend_2025 = led[(led["vendor"] == "huawei") & (led["year"] == 2025) & (led["counted"] == "packaged_chips")]
    assert ascend_2025["publisher"].nunique() >= 3
