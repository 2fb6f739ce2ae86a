"""Distance and network latency between places: great-circle distance, fibre round-trip time, budgets.

The chain, every step a named, sourced (or labelled) constant:

* great-circle distance by the haversine formula on a sphere of radius :data:`EARTH_RADIUS_KM`
  (the IUGG mean radius; a sphere is within about 0.5% of the ellipsoid);
* fibre route length = great-circle distance x a **route factor** (fibre does not follow the great
  circle): :data:`ROUTE_FACTOR_RULE_OF_THUMB` = 2.1 is the rule of thumb from earlier measurement
  campaigns quoted by Bozkurt et al. (2018), :data:`ROUTE_FACTOR_BEST_CONDUIT` = 1.3 their median for
  shortest paths through the US long-haul conduits. Both are **US** measurements; using them for China
  is our assumption;
* speed of light in fibre = c / n with c exact (SI) and n = :data:`FIBRE_GROUP_INDEX` (standard
  single-mode fibre);
* round-trip time (RTT) = 2 x route length / speed in fibre. Propagation only: no queuing, switching or
  server time, so real RTTs are higher.

Latency budgets (time to first token, time per output token) are **parameters** supplied by the caller,
never constants here: this module only says how much of a budget the network eats.
All functions broadcast over numpy arrays; scalars in give floats out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tokenlib.arrays import FloatArray, scalar_or_array
from tokenlib.data import load
from tokenlib.errors import check_number


EARTH_RADIUS_KM = 6371.0
"""Mean Earth radius (km) for a spherical Earth: IUGG's mean radii are 'all about 6,371 kilometres'."""

SPEED_OF_LIGHT_KM_PER_S = 299_792.458
"""Speed of light in vacuum (km/s), exact by the SI definition of the metre (299,792,458 m/s)."""

FIBRE_GROUP_INDEX = 1.467
"""Refractive (group) index of standard single-mode fibre (SMF-28, G.652): light travels at c / 1.467."""

ROUTE_FACTOR_RULE_OF_THUMB = 2.1
"""Latency-equivalent fibre path / line-of-sight distance, measured rule of thumb (Bozkurt et al. 2018)."""

ROUTE_FACTOR_BEST_CONDUIT = 1.3
"""Median shortest-path conduit length / line-of-sight distance, US long-haul fibre map (Bozkurt et al. 2018)."""

CONSTANTS: dict[str, dict[str, Any]] = {
    "earth_radius_km": {
        "value": EARTH_RADIUS_KM, "kind": "sourced",
        "note": "IUGG recommends three mean radii (R1, R2, R3); 'All three values are about 6,371 kilometres'.",
        "source": "https://handwiki.org/wiki/Astronomy:Earth_radius_(unit)",
    },
    "speed_of_light_km_per_s": {
        "value": SPEED_OF_LIGHT_KM_PER_S, "kind": "sourced",
        "note": "Exact by definition: 'precisely 299,792,458 meters per second'.",
        "source": "https://pingdo.net/tools/refractive-index/",
    },
    "fibre_group_index": {
        "value": FIBRE_GROUP_INDEX, "kind": "sourced",
        "note": "'for standard single-mode fibre (SMF-28), n ≈ 1.467, giving v = c / n ≈ 204,400 km/s' "
        "(engineering glossary; the manufacturer's data sheet was not read).",
        "source": "https://duckkit.dev/glossary/speed-of-light-fibre",
    },
    "route_factor_rule_of_thumb": {
        "value": ROUTE_FACTOR_RULE_OF_THUMB, "kind": "sourced",
        "note": "'Previous measurement campaigns suggest the following rule of thumb for estimating Internet "
        "latency: multiply line-of-sight distance by 2.1, then divide by the speed of light in fiber.' "
        "US measurements; applying them to China's backbone is our assumption.",
        "source": "https://arxiv.org/abs/1811.10737",
    },
    "route_factor_best_conduit": {
        "value": ROUTE_FACTOR_BEST_CONDUIT, "kind": "sourced",
        "note": "'the conversion factor for all pairs of the 120 largest population centers in the U.S. could be "
        "reduced from 2.1 to 1.3, in the median' (shortest paths through the InterTubes conduit map).",
        "source": "https://arxiv.org/abs/1811.10737",
    },
}
"""Every constant of the latency chain with its source and the exact wording it rests on."""


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any, *, radius_km: float = EARTH_RADIUS_KM) -> Any:
    """Great-circle distance (km) between points given in decimal degrees (haversine formula)."""
    la1, lo1, la2, lo2 = (np.asarray(v, dtype=float) for v in (lat1, lon1, lat2, lon2))
    for name, v, bound in (("lat1", la1, 90.0), ("lat2", la2, 90.0), ("lon1", lo1, 180.0), ("lon2", lo2, 180.0)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite, got {v!r}")
        if np.any(np.abs(v) > bound):
            raise ValueError(f"{name} must be within [-{bound:g}, {bound:g}] degrees, got {v!r}")
    r = check_number("radius_km", radius_km, allow_zero=False)
    p1, p2 = np.radians(la1), np.radians(la2)
    dphi, dlmb = p2 - p1, np.radians(lo2 - lo1)
    h = np.sin(dphi / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2.0) ** 2
    d: FloatArray = 2.0 * r * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return scalar_or_array(d)


def fibre_speed_km_per_s(group_index: Any = FIBRE_GROUP_INDEX) -> Any:
    """Speed of light in fibre (km/s) = c / n."""
    n = check_number("group_index", group_index, allow_zero=False)
    if np.any(n < 1.0):
        raise ValueError(f"group_index must be >= 1 (light is not faster than c), got {group_index!r}")
    return scalar_or_array(SPEED_OF_LIGHT_KM_PER_S / n)


def round_trip_ms(
    distance_km: Any, *, route_factor: Any = ROUTE_FACTOR_RULE_OF_THUMB, group_index: Any = FIBRE_GROUP_INDEX,
) -> Any:
    """Propagation round-trip time (ms) over fibre for a great-circle ``distance_km``.

    ``RTT = 2 x distance x route_factor / (c / n)``; ``route_factor >= 1`` (fibre is never shorter than
    the great circle). Excludes queuing, switching and server time.
    """
    d = check_number("distance_km", distance_km)
    rf = check_number("route_factor", route_factor, allow_zero=False)
    if np.any(rf < 1.0):
        raise ValueError(f"route_factor must be >= 1 (a fibre route is not shorter than the great circle), got {route_factor!r}")
    v = np.asarray(fibre_speed_km_per_s(group_index), dtype=float)
    return scalar_or_array(2.0 * d * rf / v * 1000.0)


def place_coordinates(root: Path | str | None = None) -> pd.DataFrame:
    """One row per place with both a latitude and a longitude in ``data/places.csv``: place, lat, lon."""
    df = load("places", root)
    df = df[df["metric"].isin(["latitude", "longitude"]) & df["value"].notna()]
    wide = df.pivot_table(index="place", columns="metric", values="value", aggfunc="first")
    wide = wide.dropna(subset=["latitude", "longitude"]).reset_index()
    out = wide.rename(columns={"latitude": "lat", "longitude": "lon"})[["place", "lat", "lon"]]
    out["place"] = out["place"].astype(str)
    return out.sort_values("place").reset_index(drop=True)


def pair_table(
    origins: list[str], destinations: list[str], *, route_factor: float = ROUTE_FACTOR_RULE_OF_THUMB,
    group_index: float = FIBRE_GROUP_INDEX, root: Path | str | None = None,
) -> pd.DataFrame:
    """Every origin x destination pair: great-circle km and fibre RTT (ms), from the sourced coordinates.

    Columns: origin, destination, distance_km, rtt_ms. Unknown places raise with the valid ids.
    """
    from tokenlib.errors import check_choice

    coords = place_coordinates(root).set_index("place")
    valid = list(coords.index)
    for p in [*origins, *destinations]:
        check_choice("place with coordinates", p, valid)
    o = np.repeat(np.asarray(origins, dtype=object), len(destinations))
    d = np.tile(np.asarray(destinations, dtype=object), len(origins))
    dist = haversine_km(coords.loc[o, "lat"].to_numpy(), coords.loc[o, "lon"].to_numpy(),
                        coords.loc[d, "lat"].to_numpy(), coords.loc[d, "lon"].to_numpy())
    rtt = round_trip_ms(dist, route_factor=route_factor, group_index=group_index)
    return pd.DataFrame({"origin": o.astype(str), "destination": d.astype(str),
                         "distance_km": np.asarray(dist, dtype=float), "rtt_ms": np.asarray(rtt, dtype=float)})


def time_per_output_token_ms(tokens_per_s_per_chip: Any, *, n_chips: Any, batch: Any) -> Any:
    """Time between two output tokens of one sequence (ms) when ``batch`` sequences share ``n_chips`` chips.

    Each engine step emits one token per sequence, so a sequence sees
    ``batch / (tokens/s per chip x n_chips)`` seconds per token.
    """
    tps = check_number("tokens_per_s_per_chip", tokens_per_s_per_chip, allow_zero=False)
    n = check_number("n_chips", n_chips, allow_zero=False)
    b = check_number("batch", batch, allow_zero=False)
    return scalar_or_array(b / (tps * n) * 1000.0)


def prefill_time_ms(prompt_tokens: Any, tokens_per_s_per_chip: Any, *, n_chips: Any) -> Any:
    """Time to process a prompt of ``prompt_tokens`` on an ``n_chips`` group running prefill alone (ms)."""
    p = check_number("prompt_tokens", prompt_tokens)
    tps = check_number("tokens_per_s_per_chip", tokens_per_s_per_chip, allow_zero=False)
    n = check_number("n_chips", n_chips, allow_zero=False)
    return scalar_or_array(p / (tps * n) * 1000.0)


def network_ms(rtt_ms: Any, *, round_trips: Any = 1) -> Any:
    """Network time (ms) a request pays: ``round_trips`` x RTT (e.g. sequential agent calls, handshakes)."""
    r = check_number("rtt_ms", rtt_ms)
    k = check_number("round_trips", round_trips)
    return scalar_or_array(r * k)


def budget_share(used_ms: Any, budget_ms: Any) -> Any:
    """Share of a latency budget that ``used_ms`` consumes (1.0 = the whole budget; inf budget gives 0)."""
    u = check_number("used_ms", used_ms)
    b = np.asarray(budget_ms, dtype=float)
    if np.any(np.isnan(b)) or np.any(b <= 0):
        raise ValueError(f"budget_ms must be > 0 (use inf for 'no latency budget'), got {budget_ms!r}")
    return scalar_or_array(u / b)


def latency_slack_ms(
    rtt_ms: Any, *, compute_ms: Any, budget_ms: Any, round_trips: Any = 1,
) -> Any:
    """Budget left (ms) after compute and ``round_trips`` network round trips; negative = budget missed."""
    c = check_number("compute_ms", compute_ms)
    b = np.asarray(budget_ms, dtype=float)
    if np.any(np.isnan(b)) or np.any(b <= 0):
        raise ValueError(f"budget_ms must be > 0 (use inf for 'no latency budget'), got {budget_ms!r}")
    used = np.asarray(network_ms(rtt_ms, round_trips=round_trips), dtype=float) + c
    return scalar_or_array(b - used)


def request_latency_ms(
    rtt_ms: Any, *, ttft_ms: Any, tpot_ms: Any, calls: Any = 1, round_trips_per_call: Any = 1,
    output_tokens: Any = 0,
) -> tuple[Any, Any]:
    """(network ms, compute ms) of a request made of ``calls`` sequential model calls.

    ``network = calls x round_trips_per_call x RTT`` (a streamed answer pays the RTT once per call, not
    per token: tokens are pipelined); ``compute = calls x ttft_ms + output_tokens x tpot_ms``.
    """
    n = check_number("calls", calls)
    k = check_number("round_trips_per_call", round_trips_per_call)
    t1 = check_number("ttft_ms", ttft_ms)
    tp = check_number("tpot_ms", tpot_ms)
    out = check_number("output_tokens", output_tokens)
    net = np.asarray(network_ms(rtt_ms, round_trips=n * k), dtype=float)
    comp = n * t1 + out * tp
    return scalar_or_array(net), scalar_or_array(np.asarray(comp, dtype=float))
