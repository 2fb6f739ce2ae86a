"""TPP, performance density and the 3A090 classes (tokenlib.analysis.export_controls), with hand-computed cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenlib.analysis import export_controls as controls
from tokenlib.analysis import chip_costs
from tokenlib.book import chart_labels
from tokenlib.data import specs
from tokenlib.data import load_sources


def test_tpp_of_h100_from_specs_matches_published_value():
    h100 = specs.chip("h100-sxm")
    computed = controls.tpp_from_peaks({c: getattr(h100, c) for c in controls.PEAK_COLUMNS})
    # by hand: 989.5 dense BF16 TFLOPS x 16 bits = 15,832 = 1,979 dense FP8 TFLOPS x 8 bits
    assert computed == 989.5 * 16 == 1979 * 8 == 15832
    src = load_sources("chips")
    published = src[(src["item_id"] == "h100-sxm") & (src["field"] == "tpp")]["value"]
    assert len(published) >= 1
    assert all(abs(computed - float(p)) <= 1.0 for p in published)  # within rounding


def test_published_tpp_agrees_except_the_910c():
    t = controls.tpp_table().set_index("id")
    known = t.dropna(subset=["tpp_published"])
    off = known[known["tpp_diff_pct"].abs() > 0.1].index.tolist()
    # Epoch's 910C TPP (12,800) implies 800 TFLOPS; chips.csv uses the paper's 752 (752 x 16 = 12,032)
    assert off == ["ascend-910c"]
    assert t.loc["ascend-910c", "tpp"] == 752 * 16


def test_tpp_helpers_hand_cases():
    assert controls.tpp(148, 16) == 2368  # H20 BF16
    assert controls.tpp_from_peaks({"bf16_tflops": 312, "int8_tops": 624}) == 4992  # A100: both give 4992
    assert controls.tpp_from_peaks({"bf16_tflops": 330, "int8_tops": 660.6}) == pytest.approx(5284.8)  # INT8 wins
    assert np.isnan(controls.tpp_from_peaks({"bf16_tflops": np.nan}))
    assert controls.performance_density(2368, 814) == pytest.approx(2.909, abs=1e-3)
    with pytest.raises(ValueError, match="tops"):
        controls.tpp(-1, 16)
    with pytest.raises(ValueError, match="die_area_mm2"):
        controls.performance_density(100, 0)
    with pytest.raises(ValueError, match="peak column"):
        controls.tpp_from_peaks({"tf32": 1.0})


def test_oct2022_needs_both_tests():
    assert controls.controlled_oct2022(4992, 600)  # A100
    assert not controls.controlled_oct2022(4988.8, 400)  # A800: NVLink cut to 400 GB/s
    assert not controls.controlled_oct2022(15832, 400)  # H800: NVLink cut
    assert not controls.controlled_oct2022(2368, 900)  # H20: TPP below
    assert not controls.controlled_oct2022(2368, np.nan)  # TPP below: the I/O does not matter


def test_oct2022_unknown_io_is_undetermined_not_zero():
    # a missing link figure used to be read as 0 GB/s, which put the B200 and MI300X "not controlled"
    assert controls.classify_oct2022(20000, np.nan) == "undetermined"
    assert controls.classify_oct2022(np.nan, 900) == "undetermined"
    assert controls.classify_oct2022(2368, np.nan) == "not controlled"
    assert controls.classify_oct2022(4992, 600) == "controlled"
    assert controls.classify_oct2022(15832, 400) == "not controlled"
    with pytest.raises(ValueError, match="undetermined"):
        controls.controlled_oct2022(20000, np.nan)
    t = controls.tpp_table().set_index("id")
    for chip in ("b200", "mi300x"):  # no sourced link figure in chips.csv
        assert np.isnan(t.loc[chip, "interconnect_gbps"])
        assert t.loc[chip, "oct2022_class"] == "undetermined"
        assert not t.loc[chip, "oct2022_controlled"]
    assert t.loc["a100-sxm", "oct2022_class"] == "controlled" and t.loc["a800", "oct2022_class"] == "not controlled"


@pytest.mark.parametrize(
    "tpp,density,expected",
    [
        (15832, 19.45, "3A090.a"),  # H100
        (4988.8, 6.04, "3A090.a"),  # A800: TPP alone
        (2000, 6.0, "3A090.a"),  # small but dense: a.2
        (2368, 2.91, "not controlled"),  # H20
        (1912, 3.14, "not controlled"),  # L20: just under 3.2
        (3000, 2.0, "3A090.b"),  # band 1
        (1700, 4.0, "3A090.b"),  # band 2
        (2000, 2.0, "not controlled"),  # under both bands
        (1500, 30.0, "not controlled"),  # TPP under 1600
        (4480, np.nan, "undetermined"),  # density unknown
        (6016, np.nan, "3A090.a"),  # TPP decides
    ],
)
def test_oct2023_classes(tpp, density, expected):
    assert controls.classify_oct2023(tpp, density) == expected


def test_boundaries_are_inclusive_lower():
    assert controls.classify_oct2023(4800, 1.0) == "3A090.a"
    assert controls.classify_oct2023(1600, 5.92) == "3A090.a"
    assert controls.classify_oct2023(2400, 1.6) == "3A090.b"
    assert controls.classify_oct2023(1600, 3.2) == "3A090.b"
    assert controls.classify_oct2023(2399.9, 3.19) == "not controlled"


def test_jan2026_lane():
    assert controls.within_jan2026_lane(15832, 4.8)  # H200
    assert not controls.within_jan2026_lane(36000, 7.7)  # B200
    assert not controls.within_jan2026_lane(15832, 6.5)  # bandwidth at the limit is outside
    # unknown bandwidth: undetermined below the TPP limit, outside above it (TPP alone decides)
    assert controls.classify_jan2026(4480, np.nan) == "undetermined"
    assert controls.classify_jan2026(36000, np.nan) == "outside"
    assert controls.classify_jan2026(15832, 4.8) == "inside"
    with pytest.raises(ValueError, match="undetermined"):
        controls.within_jan2026_lane(4480, np.nan)


def test_table_shapes_the_story():
    t = controls.tpp_table().set_index("id")
    assert t.loc["h20", "oct2023_class"] == "not controlled"
    assert t.loc["a800", "oct2023_class"] == "3A090.a" and not t.loc["a800", "oct2022_controlled"]
    assert t.loc["h100-sxm", "oct2022_controlled"]
    # conflicting 910B figures (220-400 TFLOPS FP16) span both classes
    assert t.loc["ascend-910b", "tpp_low"] == 220 * 16 and t.loc["ascend-910b", "tpp_high"] == 400 * 16
    assert t.loc["ascend-910b", "oct2023_class_low"] == "3A090.b"
    assert (t["tpp_low"] <= t["tpp"] + 1e-9).all() and (t["tpp"] <= t["tpp_high"] + 1e-9).all()


def test_thresholds_carry_provenance():
    tab = controls.thresholds_table()
    assert set(tab["status"]) <= {"rule text", "secondary summary", "corroborated"}
    assert tab["source_url"].str.startswith("http").all()
    assert (tab.loc[tab["key"].str.startswith("oct2023_b"), "status"] == "corroborated").all()


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 40000), st.floats(0.01, 40), st.floats(1.0, 3.0))
def test_more_compute_never_lowers_the_class(tpp, density, factor):
    rank = {"not controlled": 0, "3A090.b": 1, "3A090.a": 2}
    lo = controls.classify_oct2023(tpp, density)
    hi = controls.classify_oct2023(tpp * factor, density)
    # at fixed density, more TPP never moves a chip to a less controlled class
    assert rank[hi] >= rank[lo]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 5000), min_size=1, max_size=4))
def test_tpp_is_max_over_precisions(values):
    cols = list(controls.PEAK_COLUMNS)[: len(values)]
    got = controls.tpp_from_peaks(dict(zip(cols, values)))
    assert got == pytest.approx(max(v * controls.BIT_LENGTH[c] for c, v in zip(cols, values)))


def test_chips_to_match_and_cost_breakdown():
    kw = dict(batch_per_chip=16, context=2048, precision="fp8", n_chips=32)
    one = chip_costs.chips_to_match("deepseek-v3", "h100-sxm", "h100-sxm", "decode", **kw)
    assert one == pytest.approx(1.0)
    parts = chip_costs.cost_breakdown("deepseek-v3", "h20", "decode", batch=16 * 32, context=2048, precision="fp8",
                                    n_chips=32, electricity_cny_per_kwh=0.5)
    assert parts["total"] == pytest.approx(parts["capex"] + parts["power"] + parts["hosting"] + parts["rental"])
    assert parts["rental"] == 0 and parts["power"] > 0
    rented = chip_costs.cost_breakdown("deepseek-v3", "h800", "decode", batch=16 * 32, context=2048,
                                     precision="fp8", n_chips=32, electricity_cny_per_kwh=0.5)
    assert rented["rental"] == pytest.approx(rented["total"]) and rented["capex"] == 0
    kwh = chip_costs.kwh_per_mtok("deepseek-v3", "h20", "decode", batch=16 * 32, context=2048, precision="fp8",
                                n_chips=32)
    assert kwh == pytest.approx(parts["power"] / 0.5)


def test_label_positions_share_a_label_at_one_spot_and_apply_nudges():
    import pandas as pd

    df = pd.DataFrame({"chip": ["H100", "H800", "H20", "A100"],
                       "tpp": [15832.0, 15832.0, 2368.0, 4992.0], "density": [19.4, 19.4, 2.9, 6.04]})
    lab = chart_labels.label_positions(df, "tpp", "density", nudge={"H20": (-8, 10, "right")})
    assert lab["chip"].tolist() == ["H100 / H800", "H20", "A100"]  # same spot: one joined label, row order kept
    assert lab.set_index("chip").loc["H20", ["dx", "dy", "align"]].tolist() == [-8, 10, "right"]
    assert lab.set_index("chip").loc["A100", ["dx", "dy", "align"]].tolist() == list(chart_labels.DEFAULT_NUDGE)
    # within ~2 % on a log axis counts as the same spot; 10 % apart does not
    near = chart_labels.label_positions(pd.DataFrame({"chip": ["a", "b", "c"], "tpp": [1000.0, 1004.0, 1100.0],
                                                  "density": [1.0, 1.0, 1.0]}), "tpp", "density")
    assert near["chip"].tolist() == ["a / b", "c"]
    with pytest.raises(ValueError, match="align"):
        chart_labels.label_positions(df, "tpp", "density", nudge={"H20": (0, 0, "middle")})
    with pytest.raises(ValueError, match="log scale"):
        chart_labels.label_positions(df.assign(tpp=0.0), "tpp", "density")


def test_point_labels_layers_one_text_mark_per_offset():
    import altair as alt
    import pandas as pd

    df = pd.DataFrame({"chip": ["H100", "H20", "A100"], "tpp": [15832.0, 2368.0, 4992.0], "density": [19.4, 2.9, 6.04]})
    xs, ys = alt.Scale(type="log"), alt.Scale(type="log")
    chart = chart_labels.point_labels(df, "tpp", "density", xs, ys, nudge={"H20": (-8, 10, "right")})
    spec = chart.to_dict()
    marks = [layer["mark"] for layer in spec["layer"]]
    assert len(marks) == 2 and {m["align"] for m in marks} == {"left", "right"}
    assert all(m["type"] == "text" for m in marks)


def test_spec_ranges_flags_conflicts_not_rounding():
    r = controls.spec_ranges(["bf16_tflops"]).set_index("id")
    # H100: 989.4 and 989.5 are the same figure rounded; the 910B's 220-400 TFLOPS are a real conflict
    assert r.loc["h100-sxm", "high"] - r.loc["h100-sxm", "low"] < 1 and not r.loc["h100-sxm", "conflict"]
    assert r.loc["ascend-910b", "conflict"]
    strict = controls.spec_ranges(["bf16_tflops"], rel_tol=0.0).set_index("id")
    assert strict.loc["h100-sxm", "conflict"]


def test_cost_ratio_sensitivity_hand_checks():
    from tokenlib.model import cost

    kw = dict(batch_per_chip=16, context=4096, precision="fp8", n_chips=32, electricity_cny_per_kwh=0.6)
    one = lambda chip, **x: cost.cost_per_mtok("deepseek-v3", chip, "decode", batch=16 * 32, context=4096,  # noqa: E731
                                              precision="fp8", n_chips=32, electricity_cny_per_kwh=0.6, **x)
    swings = {"kernel error": [("2x faster", {"chip_throughput_factor": 2.0})],
              "910B price": [("20k", {"chip": {"capex_usd": 20000}})],
              "nothing": [("same", {})]}
    t = chip_costs.cost_ratio_sensitivity("deepseek-v3", "ascend-910b", "h100-sxm", "decode", swings=swings, **kw)
    base = one("ascend-910b") / one("h100-sxm")
    assert t["base_ratio"].iloc[0] == pytest.approx(base, rel=1e-9)
    r = t.set_index("assumption")["ratio"]
    assert r["kernel error"] == pytest.approx(base / 2, rel=1e-9)
    assert r["910B price"] == pytest.approx(one("ascend-910b", capex_usd=20000) / one("h100-sxm"), rel=1e-9)
    assert t["assumption"].iloc[0] == "kernel error" and t.set_index("assumption").loc["nothing", "swing"] == 0
    with pytest.raises(Exception, match="swing key"):
        chip_costs.cost_ratio_sensitivity("deepseek-v3", "ascend-910b", "h100-sxm", "decode",
                                        swings={"x": [("y", {"chips": {}})]}, **kw)
