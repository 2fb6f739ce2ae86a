from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenlib.model import cost
from tokenlib.data import places
from tokenlib.errors import UnknownChoiceError

FIX = Path(__file__).parent / "fixtures"
BASE = dict(batch=4096, context=2048, precision="fp8", n_chips=64, root=FIX, cny_per_usd=7.0)


def test_chip_hour_cost_hand_computed():
    # H100 fixture: $33,600 x 1.5 / (5 y x 8760 h) + $0.10 hosting, x 7 CNY/USD; power: the DGX H100's
    # 10.2 kW / 8 GPUs = 1.275 kW per GPU (node basis, the default) x 0.7 load x 1.3 PUE x 0.5 CNY/kWh
    got = cost.chip_hour_cost("h100-sxm", electricity_cny_per_kwh=0.5, cny_per_usd=7.0, root=FIX)
    want = (33600 * 1.5 / (5 * 8760) + 0.10) * 7.0 + 1.275 * 0.7 * 1.3 * 0.5
    assert got == pytest.approx(want)
    chip_only = cost.chip_hour_cost("h100-sxm", electricity_cny_per_kwh=0.5, cny_per_usd=7.0, power_basis="chip", root=FIX)
    # hosting is sold per kW: on the TDP basis the H100 carries 0.7 / 1.275 of its node-basis hosting
    assert chip_only == pytest.approx((33600 * 1.5 / (5 * 8760) + 0.10 * 0.7 / 1.275) * 7.0 + 0.7 * 0.7 * 1.3 * 0.5)
    usd = cost.chip_hour_cost("h100-sxm", electricity_cny_per_kwh=0.5, cny_per_usd=7.0, currency="USD", root=FIX)
    assert usd == pytest.approx(want / 7.0)
    # no price in the table -> DeepSeek's $2/h rental, all-in
    assert cost.chip_hour_cost("h800", electricity_cny_per_kwh=0.5, cny_per_usd=7.0, root=FIX) == pytest.approx(14.0)


def test_owned_or_rented_is_one_parameter():
    # cost_basis="rental" rents every chip at the all-in rate, priced or not; "owned" (default) owns priced chips
    kw = dict(electricity_cny_per_kwh=0.5, cny_per_usd=7.0, root=FIX)
    assert cost.chip_hour_cost("h100-sxm", cost_basis="rental", **kw) == pytest.approx(14.0)
    assert cost.costing_basis("h100-sxm", root=FIX) == "owned" and cost.costing_basis("h800", root=FIX) == "rental"
    assert cost.costing_basis("h100-sxm", cost_basis="rental", root=FIX) == "rental"
    assert cost.costing_basis("h800", capex_usd=30000, root=FIX) == "owned"
    with pytest.raises(ValueError, match="cost_basis"):
        cost.chip_hour_cost("h100-sxm", cost_basis="leased", **kw)


def test_cost_of_capital_and_node_power():
    # capital recovery factor: 10% over 5 years = 0.2638 (annuity), 0% = 1/5
    assert cost.capital_recovery_factor(0.10, 5) == pytest.approx(0.10 / (1 - 1.1 ** -5))
    assert cost.capital_recovery_factor(0.0, 4) == pytest.approx(0.25)
    kw = dict(electricity_cny_per_kwh=0.0, cny_per_usd=7.0, hosting_usd_per_chip_hour=0.0, root=FIX)
    assert cost.chip_hour_cost("h100-sxm", wacc=0.10, **kw) / cost.chip_hour_cost("h100-sxm", **kw) == pytest.approx(
        5 * 0.10 / (1 - 1.1 ** -5))
    # sourced system ratings per accelerator: DGX H100 10.2 kW / 8; CloudMatrix384 559 kW / 384 (estimate)
    assert cost.node_power_w("h100-sxm") == pytest.approx(1275.0)
    assert cost.node_power_w("ascend-910c") == pytest.approx(559_000 / 384)
    assert cost.node_power_w("h20") == pytest.approx(400 * 1275 / 700)  # TDP x the DGX H100's overhead factor
    assert cost.node_power_w("h20", power_basis="chip") == pytest.approx(400)


def test_place_prices_follow_the_chip_and_the_place_pue():
    # in a subsidised western place a domestic chip pays the subsidised price, an Nvidia chip does not
    from tokenlib.data import places as pl
    assert pl.electricity_cny_per_kwh("ulanqab", origin="domestic") < pl.electricity_cny_per_kwh("ulanqab")
    a = cost.chip_hour_cost("h100-sxm", place="ulanqab", cny_per_usd=7.0)
    b = cost.chip_hour_cost("h100-sxm", electricity_cny_per_kwh=pl.electricity_cny_per_kwh("ulanqab"),
                            pue=pl.pue("ulanqab"), cny_per_usd=7.0)
    assert a == pytest.approx(b)
    d = cost.chip_hour_cost("ascend-910b", place="ulanqab", cny_per_usd=7.0)
    e = cost.chip_hour_cost("ascend-910b", electricity_cny_per_kwh=pl.electricity_cny_per_kwh("ulanqab", origin="domestic"),
                            pue=pl.pue("ulanqab"), cny_per_usd=7.0)
    assert d == pytest.approx(e)


def test_cost_per_mtok_identity():
    from tokenlib.model import kernel
    e = kernel.efficiencies()
    tps = kernel.throughput("deepseek-v3", "h100-sxm", "decode", efficiencies=e, **{k: v for k, v in BASE.items() if k != "cny_per_usd"})
    hour = cost.chip_hour_cost("h100-sxm", electricity_cny_per_kwh=0.5, cny_per_usd=7.0, root=FIX)
    got = cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", electricity_cny_per_kwh=0.5, utilization=0.5, **BASE)
    assert got == pytest.approx(hour / (tps * 3600 * 0.5) * 1e6)
    cached = cost.cost_per_mtok("deepseek-v3", "h100-sxm", "cached_input", electricity_cny_per_kwh=0.5, **BASE)
    pre = cost.cost_per_mtok("deepseek-v3", "h100-sxm", "prefill", electricity_cny_per_kwh=0.5, **BASE)
    assert cached == pytest.approx(0.1 * pre)


def test_fx_from_table_and_currency():
    cny = cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", **{k: v for k, v in BASE.items() if k != "cny_per_usd"})
    usd = cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", currency="USD",
                             **{k: v for k, v in BASE.items() if k != "cny_per_usd"})
    assert cny / usd == pytest.approx(7.0)  # fixture fx.csv latest month 2025-02 = 7.0


@settings(max_examples=40, deadline=None)
@given(e1=st.floats(0.01, 2), e2=st.floats(0.01, 2), c1=st.floats(1000, 50000), c2=st.floats(1000, 50000),
       u1=st.floats(0.05, 1), u2=st.floats(0.05, 1))
def test_monotone_in_electricity_capex_utilisation(e1, e2, c1, c2, u1, u2):
    f = lambda **kw: cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", **{**BASE, **kw})  # noqa: E731
    lo, hi = sorted((e1, e2))
    assert f(electricity_cny_per_kwh=lo) <= f(electricity_cny_per_kwh=hi)
    lo, hi = sorted((c1, c2))
    assert f(capex_usd=lo, electricity_cny_per_kwh=0.5) <= f(capex_usd=hi, electricity_cny_per_kwh=0.5)
    lo, hi = sorted((u1, u2))
    assert f(utilization=lo, electricity_cny_per_kwh=0.5) >= f(utilization=hi, electricity_cny_per_kwh=0.5)


def test_places_median_rule_and_range():
    assert places.electricity_cny_per_kwh("hangzhou", FIX) == pytest.approx(0.7)
    assert places.electricity_range("hangzhou", FIX) == (0.6, 0.8)
    a = cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", place="hangzhou", **BASE)
    b = cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", electricity_cny_per_kwh=0.7, **BASE)
    assert a == pytest.approx(b)
    arr = cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", place=np.array(["hangzhou", "ulanqab"]), **BASE)
    assert arr.shape == (2,) and arr[1] < arr[0]


def test_bad_inputs():
    with pytest.raises(UnknownChoiceError, match="ulanqab"):
        cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", place="ulanchab", **BASE)
    with pytest.raises(ValueError, match="utilization"):
        cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", utilization=0, **BASE)
    with pytest.raises(ValueError, match="electricity_cny_per_kwh"):
        cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", electricity_cny_per_kwh=float("nan"), **BASE)
    with pytest.raises(ValueError, match="currency"):
        cost.cost_per_mtok("deepseek-v3", "h100-sxm", "decode", currency="EUR", **BASE)
    with pytest.raises(ValueError, match="phase"):
        cost.cost_per_mtok("deepseek-v3", "h100-sxm", "output", **BASE)


def test_assumptions_are_labelled():
    for name, a in cost.assumptions().items():
        assert a["kind"] in ("sourced", "derived", "assumption"), name
        assert a.get("note"), name
        if a["kind"] == "sourced":
            assert "source" in a or "fx.csv" in a["note"], name


def test_real_data_default_cost_runs():
    v = cost.cost_per_mtok("deepseek-v3", "h800", "decode", batch=12686, context=4989, precision="fp8", n_chips=144)
    assert np.isfinite(v) and v > 0


SYSTEM_SHARE_MULT = (39_680_000 + 1_728_000 + 2_621_440) / 39_680_000  # network on top of a server price


def test_capex_multiplier_follows_the_price_basis():
    # chips.csv: the H100's $33,600 is a per-GPU share of a DGX server price (server already in it), so it gets
    # only the cluster-network factor; the H20's $12,000 is a card price and gets the 1.5 server multiplier.
    # The old model multiplied both by 1.5, counting the H100's server twice. (Power on the TDP basis here, so the
    # hand formulas isolate the capex; node power is tested in test_cost_of_capital_and_node_power.)
    kw = dict(electricity_cny_per_kwh=0.5, cny_per_usd=7.0, power_basis="chip", hosting_usd_per_chip_hour=0.10)
    h100 = cost.chip_hour_cost("h100-sxm", **kw)
    assert h100 == pytest.approx((33600 * SYSTEM_SHARE_MULT / (5 * 8760) + 0.10) * 7.0 + 0.7 * 0.7 * 1.3 * 0.5, rel=1e-9)
    h20 = cost.chip_hour_cost("h20", **kw)
    assert h20 == pytest.approx((12000 * 1.5 / (5 * 8760) + 0.10) * 7.0 + 0.4 * 0.7 * 1.3 * 0.5, rel=1e-9)
    assert cost.ASSUMPTIONS["system_share_capex_multiplier"]["value"] == pytest.approx(1.1096, abs=1e-4)
    # an override price keeps the chip's basis unless told otherwise
    card = cost.chip_hour_cost("h100-sxm", capex_usd=33600, price_basis="card", **kw)
    assert card == pytest.approx((33600 * 1.5 / (5 * 8760) + 0.10) * 7.0 + 0.7 * 0.7 * 1.3 * 0.5, rel=1e-9)
    assert cost.chip_hour_cost("h100-sxm", capex_usd=33600, **kw) == pytest.approx(h100, rel=1e-9)
    # arrays of chips broadcast with their own bases
    both = cost.chip_hour_cost(np.array(["h100-sxm", "h20"]), **kw)
    assert both == pytest.approx([h100, h20], rel=1e-9)
    with pytest.raises(UnknownChoiceError):
        cost.chip_hour_cost("h100-sxm", price_basis="server", **kw)


def test_priced_chip_without_basis_raises(tmp_path):
    import shutil

    for f in FIX.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    text = (FIX / "chips.csv").read_text(encoding="utf-8").replace(",33600,card,", ",33600,,")
    (tmp_path / "chips.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="price_basis"):
        cost.chip_hour_cost("h100-sxm", electricity_cny_per_kwh=0.5, cny_per_usd=7.0, root=tmp_path)


def test_node_power_comes_from_the_systems_table(tmp_path):
    import shutil
    # data/systems.csv: DGX B200 14.3 kW / 8 (NVIDIA's user guide), not the B200's TDP x the DGX H100 factor
    assert cost.node_power_w("b200") == pytest.approx(14_300 / 8)
    assert cost.node_power_factor() == pytest.approx(10_200 / 8 / 700)
    # the factor follows the data: a DGX H100 rated 12 kW moves every chip without a system row
    shutil.copytree(FIX, tmp_path / "d")
    p = tmp_path / "d" / "systems.csv"
    p.write_text(p.read_text().replace(",8,10.2,vendor_rating,https://www.nvidia.com", ",8,12,vendor_rating,https://www.nvidia.com")
                 .replace("~10.2kW max", "~12kW max"))
    assert cost.node_power_w("h100-sxm", root=tmp_path / "d") == pytest.approx(1500)
    assert cost.node_power_w("a100-sxm", root=tmp_path / "d") == pytest.approx(400 * 1500 / 700)
    # one system per chip, or the book would have to pick one silently
    rows = p.read_text().splitlines()
    p.write_text("\n".join(rows + [rows[1].replace("dgx-h100,", "dgx-h100-bis,", 1)]) + "\n")
    with pytest.raises(ValueError, match="more than one system for chip"):
        cost.node_power_w("h100-sxm", root=tmp_path / "d")


def test_hosting_is_charged_per_kw_of_rated_power():
    # colocation is sold per kW: two chips' hosting per chip-hour stand in the ratio of their rated node power
    kw = dict(electricity_cny_per_kwh=0.0, cny_per_usd=7.0, currency="USD", capex_usd=30000.0, root=FIX)
    def hosting(chip):
        return (cost.chip_hour_cost(chip, hosting_usd_per_kw_month=100.0, **kw)
                - cost.chip_hour_cost(chip, hosting_usd_per_kw_month=0.0, **kw))
    assert hosting("h100-sxm") == pytest.approx(100.0 * 1.275 / (8760 / 12))
    assert hosting("a100-sxm") / hosting("h100-sxm") == pytest.approx(400 / 700)  # TDP x the same DGX factor
    # a flat rate per chip is still available and, where given, overrides the per-kW rule
    assert (cost.chip_hour_cost("h100-sxm", hosting_usd_per_chip_hour=0.3, hosting_usd_per_kw_month=100.0, **kw)
            - cost.chip_hour_cost("h100-sxm", hosting_usd_per_chip_hour=0.0, **kw)) == pytest.approx(0.3)


def test_default_occupancy_is_deepseeks_own_accounting():
    # DeepSeek's Day-6 cost charges only the nodes in service ($2/h x 226.75 nodes x 8 x 24 h = $87,072), and the
    # kernel is calibrated to that day's production average per GPU in service. So by default a token costs the
    # chip-hour over the tokens the chip makes in that hour, with no second division by average / peak nodes.
    from tokenlib.model import fleet, kernel
    d6 = dict(batch=12686, context=4989, precision="fp8", n_chips=144)
    per_mtok = cost.cost_per_mtok("deepseek-v3", "h800", "decode", cost_basis="rental", currency="USD", **d6)
    tps = kernel.throughput("deepseek-v3", "h800", "decode", **d6)
    assert per_mtok == pytest.approx(2.0 / (tps * 3600) * 1e6, rel=1e-9)
    day = fleet.fleet_economics()
    assert day.cost / (day.chips * 24) == pytest.approx(2.0)  # the same $2 per GPU-hour in service
    # an operator whose off-peak chips sit idle pays for the peak: pass the occupancy
    peak = fleet.DAY6["average_nodes"] / fleet.DAY6["peak_nodes"]
    assert cost.cost_per_mtok("deepseek-v3", "h800", "decode", cost_basis="rental", currency="USD", utilization=peak,
                              **d6) == pytest.approx(per_mtok * 278 / 226.75, rel=1e-9)
