"""tokenlib.analysis.geography: great-circle distance, fibre round-trip time, latency budgets (hand-computed + properties)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenlib.analysis import geography as geo
from tokenlib.errors import UnknownChoiceError

R = geo.EARTH_RADIUS_KM
lat = st.floats(min_value=-90, max_value=90, allow_nan=False)
lon = st.floats(min_value=-180, max_value=180, allow_nan=False)


def test_constants_are_the_documented_ones():
    assert geo.EARTH_RADIUS_KM == 6371.0
    assert geo.SPEED_OF_LIGHT_KM_PER_S == 299_792.458
    assert geo.FIBRE_GROUP_INDEX == 1.467
    assert (geo.ROUTE_FACTOR_RULE_OF_THUMB, geo.ROUTE_FACTOR_BEST_CONDUIT) == (2.1, 1.3)
    for entry in geo.CONSTANTS.values():
        assert entry["source"].startswith("https://") and entry["note"]


def test_haversine_hand_computed():
    # one degree of longitude on the equator = 2 pi R / 360
    assert geo.haversine_km(0, 0, 0, 1) == pytest.approx(2 * math.pi * R / 360)
    # pole to pole = pi R; antipodes on the equator = pi R
    assert geo.haversine_km(90, 0, -90, 0) == pytest.approx(math.pi * R)
    assert geo.haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * R)
    assert geo.haversine_km(30.0, 120.0, 30.0, 120.0) == 0.0
    # 60 degrees of latitude along a meridian
    assert geo.haversine_km(0, 10, 60, 10) == pytest.approx(math.pi * R / 3)


def test_round_trip_hand_computed():
    # 1000 km, straight fibre: 2 x 1000 km / (299792.458 / 1.467 km/s) = 9.7868 ms
    assert geo.round_trip_ms(1000, route_factor=1.0) == pytest.approx(2000 / (299792.458 / 1.467) * 1000)
    assert geo.round_trip_ms(1000, route_factor=1.0) == pytest.approx(9.78677, rel=1e-5)
    # the default route factor is the 2.1 rule of thumb
    assert geo.round_trip_ms(1000) == pytest.approx(2.1 * geo.round_trip_ms(1000, route_factor=1.0))
    assert geo.fibre_speed_km_per_s() == pytest.approx(204357.5, rel=1e-6)
    assert geo.fibre_speed_km_per_s(1.0) == geo.SPEED_OF_LIGHT_KM_PER_S


def test_arrays_and_scalars_agree():
    lats = np.array([39.9, 31.2, 22.5])
    lons = np.array([116.3, 121.5, 114.1])
    arr = geo.haversine_km(41.0, 113.1, lats, lons)
    assert isinstance(arr, np.ndarray) and arr.shape == (3,)
    for i in range(3):
        assert arr[i] == pytest.approx(geo.haversine_km(41.0, 113.1, lats[i], lons[i]))
    assert isinstance(geo.round_trip_ms(100.0), float)


def test_budget_helpers():
    assert geo.network_ms(10.0, round_trips=3) == 30.0
    assert geo.budget_share(25.0, 100.0) == 0.25
    assert geo.budget_share(25.0, np.inf) == 0.0
    assert geo.latency_slack_ms(20.0, compute_ms=500.0, budget_ms=1000.0, round_trips=2) == 460.0
    assert geo.latency_slack_ms(20.0, compute_ms=990.0, budget_ms=1000.0) < 0
    # 64 sequences sharing 4 chips at 400 tok/s per chip: 64 / 1600 s = 40 ms per token
    assert geo.time_per_output_token_ms(400.0, n_chips=4, batch=64) == pytest.approx(40.0)
    assert geo.prefill_time_ms(4096, 2048.0, n_chips=2) == pytest.approx(1000.0)


@pytest.mark.parametrize("call", [
    lambda: geo.haversine_km(91, 0, 0, 0),
    lambda: geo.haversine_km(0, 0, 0, float("nan")),
    lambda: geo.round_trip_ms(-1.0),
    lambda: geo.round_trip_ms(100.0, route_factor=0.9),
    lambda: geo.fibre_speed_km_per_s(0.5),
    lambda: geo.budget_share(1.0, 0.0),
    lambda: geo.time_per_output_token_ms(0.0, n_chips=1, batch=1),
])
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_place_coordinates_and_pairs_from_data():
    coords = geo.place_coordinates()
    assert {"beijing", "shanghai", "ulanqab"} <= set(coords["place"])
    assert coords["lat"].between(15, 55).all() and coords["lon"].between(73, 136).all()  # inside China's box
    pairs = geo.pair_table(["ulanqab"], ["beijing", "ulanqab"])
    assert list(pairs.columns) == ["origin", "destination", "distance_km", "rtt_ms"]
    assert pairs.loc[1, "distance_km"] == 0.0
    assert pairs.loc[0, "rtt_ms"] == pytest.approx(geo.round_trip_ms(pairs.loc[0, "distance_km"]))
    with pytest.raises(UnknownChoiceError, match="beijing"):
        geo.pair_table(["bejing"], ["shanghai"])


@settings(max_examples=60, deadline=None)
@given(lat, lon, lat, lon, lat, lon)
def test_distance_is_a_metric(a1, o1, a2, o2, a3, o3):
    d12 = geo.haversine_km(a1, o1, a2, o2)
    assert d12 >= 0 and d12 <= math.pi * R + 1e-6
    assert d12 == pytest.approx(geo.haversine_km(a2, o2, a1, o1), abs=1e-6)
    d13, d32 = geo.haversine_km(a1, o1, a3, o3), geo.haversine_km(a3, o3, a2, o2)
    assert d12 <= d13 + d32 + 1e-6


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0, max_value=2e4), st.floats(min_value=1, max_value=5), st.floats(min_value=1, max_value=2))
def test_rtt_monotone_and_above_vacuum_floor(d, rf, n):
    rtt = geo.round_trip_ms(d, route_factor=rf, group_index=n)
    floor = 2 * d / geo.SPEED_OF_LIGHT_KM_PER_S * 1000
    assert rtt >= floor - 1e-9
    assert geo.round_trip_ms(d + 1.0, route_factor=rf, group_index=n) > rtt


def test_request_latency_hand_computed():
    # 3 sequential calls, 2 round trips each, RTT 10 ms -> 60 ms network; compute 3 x 200 + 100 x 20 = 2600 ms
    net, comp = geo.request_latency_ms(10.0, ttft_ms=200.0, tpot_ms=20.0, calls=3, round_trips_per_call=2,
                                       output_tokens=100)
    assert (net, comp) == (60.0, 2600.0)


def test_pue_or_takes_the_default_only_where_a_region_has_no_rows(monkeypatch) -> None:
    from tokenlib.data import places as pl
    assert pl.pue_or("beijing", 9.0) == pytest.approx(pl.pue("beijing"), rel=1e-12)
    with pytest.raises(ValueError, match="atlantis"):  # an unknown place is an error, not the default PUE
        pl.pue_or("atlantis", 1.3)
    no_rows = pl.pue_rows().iloc[0:0]
    monkeypatch.setattr(pl, "pue_rows", lambda root=None: no_rows)
    assert pl.pue_or("beijing", 1.3) == 1.3
