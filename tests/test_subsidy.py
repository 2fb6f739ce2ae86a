"""tokenlib.analysis.subsidies: compute vouchers as discounts, and the capex / hosting / power split of the kernel's cost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenlib
from tokenlib.model import cost
from tokenlib.analysis import subsidies as subsidy
from tokenlib.analysis import chip_costs

FIX = Path(__file__).parent / "fixtures"


def test_voucher_hand_computed():
    # 20% of a 5m contract = 1m, under a 2m cap
    assert subsidy.voucher_cny(5e6, 0.2, cap_per_firm_cny=2e6) == pytest.approx(1e6)
    # 20% of 50m = 10m, capped at 2m -> a 4% discount
    assert subsidy.voucher_cny(50e6, 0.2, cap_per_firm_cny=2e6) == pytest.approx(2e6)
    assert subsidy.effective_discount(50e6, 0.2, cap_per_firm_cny=2e6) == pytest.approx(0.04)
    # the programme budget binds below the cap
    assert subsidy.voucher_cny(50e6, 0.6, cap_per_firm_cny=8e6, budget_cny=5e6) == pytest.approx(5e6)
    # no cap published: the share alone
    assert subsidy.effective_discount(50e6, 0.3) == pytest.approx(0.3)
    assert subsidy.effective_discount(50e6, 0.3, cap_per_firm_cny=float("nan")) == pytest.approx(0.3)
    # only half the cost is eligible compute: 30% of 25m = 7.5m on a 50m spend
    assert subsidy.effective_discount(50e6, 0.3, eligible_share=0.5) == pytest.approx(0.15)
    assert subsidy.spend_where_cap_binds_cny(0.2, 2e6) == pytest.approx(10e6)
    assert subsidy.apply_discount(10.0, 0.25) == pytest.approx(7.5)
    assert subsidy.subsidised_electricity(0.8, 0.5) == pytest.approx(0.4)


def test_arrays_broadcast():
    spend = np.array([1e6, 1e7, 1e8])
    got = subsidy.effective_discount(spend, 0.2, cap_per_firm_cny=2e6)
    assert got == pytest.approx([0.2, 0.2, 0.02])
    shares = subsidy.effective_discount(1e7, np.array([0.2, 0.5]), cap_per_firm_cny=np.array([2e6, np.nan]))
    assert shares == pytest.approx([0.2, 0.5])


@pytest.mark.parametrize("call", [
    lambda: subsidy.voucher_cny(-1.0, 0.2),
    lambda: subsidy.voucher_cny(1e6, 1.2),
    lambda: subsidy.voucher_cny(1e6, 0.2, cap_per_firm_cny=-5),
    lambda: subsidy.effective_discount(0.0, 0.2),
    lambda: subsidy.apply_discount(1.0, float("nan")),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_voucher_terms_from_rows():
    rows = pd.DataFrame({
        "place": ["a", "a", "a", "a", "b", "c"],
        "metric": ["voucher_max_share", "voucher_max_share", "voucher_cap_per_firm_cny", "voucher_budget_cny",
                   "voucher_budget_cny", "voucher_max_share"],
        "value": [0.2, 0.6, 8e6, 2.5e8, 1e8, 0.5],
        "basis": ["compute voucher", "compute voucher for domestic chips", "per firm", "programme", "programme",
                  "training voucher"],
        "notes": ["", "", "", "", "", ""],
    })
    t = subsidy.voucher_terms(rows).set_index(["place", "origin"])
    assert t.loc[("a", "domestic"), ["share_low", "share_high", "cap_low", "cap_high", "budget_cny"]].tolist() == [
        0.2, 0.6, 8e6, 8e6, 2.5e8]
    assert t.loc[("a", "nvidia"), "share_high"] == 0.2  # the 60 % names domestic chips only
    places = set(t.index.get_level_values("place"))
    assert "b" not in places  # a budget but no share: no discount can be computed
    assert "c" not in places  # a training voucher pays for no inference token
    per_place = subsidy.place_voucher_terms(rows).set_index("place")
    assert per_place.loc["a", ["share_min", "share_max"]].tolist() == [0.2, 0.6]


def _chapter3_terms(places: pd.DataFrame) -> pd.DataFrame:
    """What chapter 3 (03_city_rivalry.md) calls for its voucher table."""
    return subsidy.place_voucher_terms(places).set_index("place")


def _chapter5_terms(places: pd.DataFrame) -> pd.DataFrame:
    """What chapter 5 (04_crown.md) calls for its equation and draws."""
    return subsidy.voucher_terms(places)


def test_chapters_3_and_5_give_the_same_voucher_terms_for_the_same_city():
    places = tokenlib.load("places")
    ch3, ch5 = _chapter3_terms(places), _chapter5_terms(places)
    assert set(ch3.index) == set(ch5["place"])  # the same cities have vouchers (Shenzhen in neither)
    for city, g in ch5.groupby("place"):
        row = ch3.loc[city]
        assert float(row["share_min"]) == pytest.approx(float(g["share_low"].min()), abs=1e-12), city
        assert float(row["share_max"]) == pytest.approx(float(g["share_high"].max()), abs=1e-12), city
        assert float(row["cap_low"]) == pytest.approx(float(g["cap_low"].min()), rel=1e-12), city
        assert float(row["cap_high"]) == pytest.approx(float(g["cap_high"].max()), rel=1e-12), city
        # the discount each chapter computes from those terms, at full take-up and the same spend
        spend = 20e6
        for share, cap in ((row["share_max"], row["cap_low"]), (row["share_min"], row["cap_high"])):
            ch3_disc = subsidy.effective_discount(spend, float(share), cap_per_firm_cny=float(cap))
            ch5_disc = subsidy.voucher_discount(float(share), 1.0, float(cap), spend)
            assert ch3_disc == pytest.approx(ch5_disc, rel=1e-12), city


def test_cost_components_match_the_kernel_hand_computed():
    # fixture H100: capex $33,600 x 1.5 / (5 x 8760) x 7; hosting $0.10 x 7; power 1.275 kW (DGX H100 / 8) x 0.7 x 1.3 x 0.5
    c = chip_costs.cost_components("h100-sxm", electricity_cny_per_kwh=0.5, cny_per_usd=7.0, root=FIX)
    assert c["capex"] == pytest.approx(33600 * 1.5 / (5 * 8760) * 7.0)
    assert c["hosting"] == pytest.approx(0.70)
    assert c["power"] == pytest.approx(1.275 * 0.7 * 1.3 * 0.5)
    assert c["capex"] + c["hosting"] + c["power"] == pytest.approx(c["total"])
    assert c["total"] == pytest.approx(cost.chip_hour_cost("h100-sxm", electricity_cny_per_kwh=0.5, cny_per_usd=7.0, root=FIX))
    assert c["rental"] is False
    # a chip without a price is rented all-in: no power component to subsidise
    r = chip_costs.cost_components("h800", electricity_cny_per_kwh=0.5, cny_per_usd=7.0, root=FIX)
    assert r["rental"] is True and r["power"] == pytest.approx(0.0) and r["capex"] == pytest.approx(14.0)


def test_cost_components_per_mtok_sum_to_cost_per_mtok():
    kw = dict(batch=4096, context=2048, precision="fp8", n_chips=64, root=FIX, cny_per_usd=7.0)
    per = chip_costs.cost_components_per_mtok("deepseek-v3", "h100-sxm", "decode", electricity_cny_per_kwh=0.5, **kw)
    want = cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", electricity_cny_per_kwh=0.5, **kw)
    assert per["total"] == pytest.approx(want)
    assert per["capex"] + per["hosting"] + per["power"] == pytest.approx(want)


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=1e4, max_value=1e10), st.floats(min_value=0, max_value=1),
       st.floats(min_value=0, max_value=1e9))
def test_discount_bounded_and_falls_with_size_once_capped(spend, share, cap):
    d = subsidy.effective_discount(spend, share, cap_per_firm_cny=cap)
    assert 0.0 <= d <= share + 1e-12
    assert subsidy.effective_discount(spend * 10, share, cap_per_firm_cny=cap) <= d + 1e-12


@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=0, max_value=2), st.floats(min_value=0, max_value=2))
def test_power_share_rises_with_electricity_price(e1, e2):
    lo, hi = sorted((e1, e2))
    a = chip_costs.cost_components("h100-sxm", electricity_cny_per_kwh=lo, cny_per_usd=7.0, root=FIX)["power_share"]
    b = chip_costs.cost_components("h100-sxm", electricity_cny_per_kwh=hi, cny_per_usd=7.0, root=FIX)["power_share"]
    assert 0.0 <= a <= b + 1e-12 < 1.0


def test_unsubsidised_electricity_inverts_the_cut():
    assert subsidy.unsubsidised_electricity(0.4, 0.5) == pytest.approx(0.8)
    assert subsidy.subsidised_electricity(subsidy.unsubsidised_electricity(0.37, 0.3), 0.3) == pytest.approx(0.37)
    with pytest.raises(ValueError):
        subsidy.unsubsidised_electricity(0.4, 1.0)


def test_power_capital_grid_matches_the_kernel_and_moves_the_right_way():
    from tokenlib.model import cost as _cost
    run = dict(batch=64, context=4096, precision="bf16", n_chips={"h100-sxm": 4, "ascend-910b": 4})
    g = subsidy.power_capital_grid("qwen2.5-72b", ["h100-sxm", "ascend-910b"], "decode", reference="beijing",
                                   places=["ulanqab", "guizhou"], waccs=(0.0, 0.12), **run)
    assert len(g) == 2 * 2 * 2 * 2  # bases x waccs x chips x places
    r = g[(g.power_basis == "node") & (g.wacc == 0.12) & (g.chip == "ascend-910b") & (g.place == "ulanqab")].iloc[0]
    kw = dict(batch=64, context=4096, precision="bf16", n_chips=4, wacc=0.12, power_basis="node")
    ref = _cost.cost_per_mtok("qwen2.5-72b", "ascend-910b", "decode", place="beijing", **kw)
    west = _cost.cost_per_mtok("qwen2.5-72b", "ascend-910b", "decode", place="ulanqab", **kw)
    assert r["edge"] == pytest.approx(1 - west / ref, rel=1e-9)
    share = subsidy.cost_components("ascend-910b", place="beijing", wacc=0.12, power_basis="node")["power_share"]
    assert r["power_share"] == pytest.approx(share, rel=1e-9)
    s = g.drop_duplicates(["power_basis", "wacc", "chip"]).set_index(["power_basis", "wacc", "chip"])["power_share"]
    for chip in ("h100-sxm", "ascend-910b"):
        assert s[("node", 0.0, chip)] > s[("chip", 0.0, chip)]  # the server draws more than its accelerators
        assert s[("node", 0.12, chip)] < s[("node", 0.0, chip)]  # capital that costs more shrinks power's share
