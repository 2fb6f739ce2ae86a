"""Electricity prices and PUE by place, from ``data/places.csv`` (metrics ``electricity_cny_per_kwh``, ``pue``).

A place often has several sourced rows (tariff classes, years, contract vs list prices). The
documented rules, applied everywhere in the book (chapters 2-4 and the cost kernel):

* **Who pays which price.** A row whose basis says it is a *post-subsidy* price for data centres
  running *domestic chips* (the FT's report of Gansu, Guizhou and Inner Mongolia) applies to domestic
  chips only. In a place that has such a row, the subsidy's source also states today's unsubsidised
  level ("about 30 per cent cheaper" than the east), so the place's rows dated before the subsidy year
  (or undated) are superseded, and a chip the subsidy does not name (Nvidia) pays the place's remaining
  rows: the unsubsidised estimate and any later sourced price. A subsidy is an option, never a penalty:
  a domestic chip pays the lower of the subsidised and the unsubsidised price
  (:func:`electricity_cny_per_kwh` with ``origin="domestic"``).
* **Point value and range.** The **median** of the applicable rows is the point value;
  :func:`electricity_range` gives their (min, max).
* **PUE.** :func:`pue_range` pools the PUE rows of the place's region (:data:`REGION`): western hubs
  the reported and target PUEs of western hubs; eastern cities the eastern hub-cluster target and the
  national 2025 target (targets are caps: existing sites may run higher, which the national 2020
  average row shows and the chapters' sensitivity figures test). :func:`pue` is the midpoint.

``national`` is a valid place where sourced. ``origin`` is ``"nvidia"`` (any chip the subsidy does not
name; the default) or ``"domestic"`` (chips designed in China, chips.csv country CN).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tokenlib.data import labels, load
from tokenlib.errors import check_choice

METRIC = "electricity_cny_per_kwh"
PUE_METRIC = "pue"
ORIGINS = ("nvidia", "domestic")
"""Who buys power: ``nvidia`` = any chip a domestic-chip subsidy does not name; ``domestic`` = chips.csv country CN."""

REGION: dict[str, str] = {
    "beijing": "east", "shanghai": "east", "hangzhou": "east", "shenzhen": "east", "guangzhou": "east",
    "hefei": "east", "wuhu": "east", "wuhan": "east", "chengdu": "east", "national": "east",
    "ulanqab": "west", "hohhot": "west", "guizhou": "west", "zhongwei": "west", "qingyang": "west",
}
"""East (coastal and central cities) or west (the "East Data, West Computing" hubs of Inner Mongolia,
Guizhou, Ningxia and Gansu). Used only to pool PUE rows; Chengdu and Wuhan count as east (no PUE rows)."""


def _all_rows(root: Path | str | None, metric: str = METRIC) -> pd.DataFrame:
    df = load("places", root)
    return df[(df["metric"] == metric) & df["value"].notna()]


def _basis(df: pd.DataFrame) -> pd.Series:
    return df["basis"].fillna("").astype(str).str.lower()


def _is_subsidised(df: pd.DataFrame) -> pd.Series:
    b = _basis(df)
    return b.str.contains("post-subsidy") & b.str.contains("domestic chips")


def applicable_rows(df: pd.DataFrame, place: str, origin: str = "nvidia") -> pd.DataFrame:
    """The electricity rows of ``df`` (rows of ``data/places.csv``) that apply to ``origin`` in ``place``.

    For ``origin="domestic"`` in a subsidised place these are the subsidised rows only (combine them with
    the unsubsidised ones by taking the lower price: :func:`electricity_cny_per_kwh`).
    """
    check_choice("origin", origin, ORIGINS)
    df = df[(df["metric"] == METRIC) & df["value"].notna() & (df["place"] == place)]
    sub = _is_subsidised(df)
    if not sub.any():
        return df
    if origin == "domestic":
        return df[sub]
    first = float(df.loc[sub, "year"].astype(float).min())
    year = df["year"].astype(float)
    return df[~sub & year.notna() & (year >= first)]


def _rows(root: Path | str | None) -> pd.DataFrame:
    """Every electricity row that applies to some chip (superseded rows dropped): the kernel's default pool."""
    df = _all_rows(root)
    keep = [applicable_rows(df, str(p), o) for p in df["place"].unique() for o in ORIGINS]
    return pd.concat(keep).drop_duplicates() if keep else df


def is_subsidised(place: str, root: Path | str | None = None) -> bool:
    """Whether ``place`` has a post-subsidy price reserved for data centres running domestic chips."""
    df = _all_rows(root)
    return bool(_is_subsidised(df[df["place"] == place]).any())


def places_with_electricity(root: Path | str | None = None) -> list[str]:
    """Places that have at least one sourced electricity price."""
    return sorted(str(p) for p in _all_rows(root)["place"].unique())


def _unsubsidised_values(place: str, root: Path | str | None) -> np.ndarray:
    """Prices of the rows that apply to a chip no subsidy names (the base every origin starts from)."""
    df = _all_rows(root)
    check_choice("place", place, sorted(str(p) for p in df["place"].unique()))
    v = applicable_rows(df, place, "nvidia")["value"].to_numpy(dtype=float)
    if len(v) == 0:
        raise ValueError(f"place {place!r} has only subsidised (domestic-chip) electricity rows: "
                         "no price applies to other chips; add an unsubsidised row or pass electricity_cny_per_kwh")
    return v


def electricity_cny_per_kwh(place: str, root: Path | str | None = None, *, origin: str = "nvidia") -> float:
    """Median applicable electricity price (CNY/kWh) for ``place`` and ``origin``; unknown places raise.

    ``origin="domestic"`` in a subsidised place: the lower of the subsidised median and the unsubsidised one.
    """
    check_choice("origin", origin, ORIGINS)
    med = float(np.median(_unsubsidised_values(place, root)))
    if origin == "domestic" and is_subsidised(place, root):
        sub = applicable_rows(_all_rows(root), place, "domestic")["value"].to_numpy(dtype=float)
        med = min(med, float(np.median(sub)))
    return med


def electricity_range(place: str, root: Path | str | None = None, *, origin: str = "nvidia") -> tuple[float, float]:
    """(min, max) of the applicable electricity prices for ``place`` and ``origin`` (CNY/kWh)."""
    check_choice("origin", origin, ORIGINS)
    v = _unsubsidised_values(place, root)
    lo, hi = float(v.min()), float(v.max())
    if origin == "domestic" and is_subsidised(place, root):
        sub = applicable_rows(_all_rows(root), place, "domestic")["value"].to_numpy(dtype=float)
        lo, hi = min(lo, float(sub.min())), min(hi, float(sub.max()))
    return lo, hi


def electricity_table(root: Path | str | None = None) -> pd.DataFrame:
    """One row per place: n rows, median, min, max (CNY/kWh) of the price a non-subsidised (Nvidia) chip pays,
    and the domestic-chip median where a subsidy applies (``median_domestic``; equal to ``median`` elsewhere)."""
    rows = []
    for p in places_with_electricity(root):
        try:
            v = _unsubsidised_values(p, root)
        except ValueError:
            continue
        rows.append({"place": p, "n": int(len(v)), "median": float(np.median(v)), "min": float(v.min()),
                     "max": float(v.max()), "median_domestic": electricity_cny_per_kwh(p, root, origin="domestic"),
                     "subsidised": is_subsidised(p, root)})
    return pd.DataFrame(rows, columns=["place", "n", "median", "min", "max", "median_domestic", "subsidised"])


def pue_rows(root: Path | str | None = None) -> pd.DataFrame:
    """Every sourced PUE row (metric ``pue``)."""
    return _all_rows(root, PUE_METRIC)


def _pue_pool(place: str, root: Path | str | None) -> pd.DataFrame:
    region = REGION[check_choice("place", place, REGION)]
    df = pue_rows(root)
    same = df["place"].map(REGION) == region
    if region == "east":  # eastern cities: hub-cluster and national targets (caps), not the old national average
        same &= _basis(df).str.contains("target")
    return df[same]


def pue_range(place: str, root: Path | str | None = None) -> tuple[float, float]:
    """(min, max) PUE for a data centre in ``place``: the pooled PUE rows of its region (see the module doc)."""
    v = _pue_pool(place, root)["value"].to_numpy(dtype=float)
    if len(v) == 0:
        raise ValueError(f"no PUE rows for the region of place {place!r}")
    return float(v.min()), float(v.max())


def pue(place: str, root: Path | str | None = None) -> float:
    """Point PUE for ``place``: the midpoint of :func:`pue_range`."""
    lo, hi = pue_range(place, root)
    return (lo + hi) / 2.0


def pue_or(place: str, default: float, root: Path | str | None = None) -> float:
    """:func:`pue` for ``place``, or ``default`` where its region has no PUE rows; an unknown place raises."""
    if _pue_pool(place, root).empty:
        return float(default)
    return pue(place, root)


def __getattr__(attr: str) -> dict[str, str]:
    # PLACE_NAMES, the dict earlier versions kept here, now read from data/labels.csv on each access
    if attr == "PLACE_NAMES":
        return labels.names("place")
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def display_name(place: str) -> str:
    """The reader-facing name of a place id, e.g. ``"ulanqab"`` -> ``"Ulanqab 乌兰察布"`` (``data/labels.csv``:
    English name, then the Chinese, as the design asks on first use)."""
    return labels.name("place", place)
