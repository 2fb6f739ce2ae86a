"""Electricity prices by place, from ``data/places.csv`` (metric ``electricity_cny_per_kwh``).

A place often has several sourced rows (tariff classes, years, contract vs list prices). The
documented rule: the **median** of that place's rows is the point value, and :func:`electricity_range`
exposes the (min, max) so a chapter can show the spread. ``national`` is a valid place where sourced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tokenlib.data import load
from tokenlib.errors import check_choice

METRIC = "electricity_cny_per_kwh"


def _rows(root: Path | str | None) -> pd.DataFrame:
    df = load("places", root)
    df = df[(df["metric"] == METRIC) & df["value"].notna()]
    return df


def places_with_electricity(root: Path | str | None = None) -> list[str]:
    """Places that have at least one sourced electricity price."""
    return sorted(str(p) for p in _rows(root)["place"].unique())


def electricity_cny_per_kwh(place: str, root: Path | str | None = None) -> float:
    """Median sourced electricity price (CNY/kWh) for ``place``; unknown places raise with the valid ids."""
    df = _rows(root)
    check_choice("place", place, sorted(str(p) for p in df["place"].unique()))
    return float(np.median(df.loc[df["place"] == place, "value"].to_numpy(dtype=float)))


def electricity_range(place: str, root: Path | str | None = None) -> tuple[float, float]:
    """(min, max) of the sourced electricity prices for ``place`` (CNY/kWh)."""
    df = _rows(root)
    check_choice("place", place, sorted(str(p) for p in df["place"].unique()))
    v = df.loc[df["place"] == place, "value"].to_numpy(dtype=float)
    return float(v.min()), float(v.max())


def electricity_table(root: Path | str | None = None) -> pd.DataFrame:
    """One row per place: n rows, median, min, max (CNY/kWh)."""
    g = _rows(root).groupby("place")["value"]
    return pd.DataFrame({"n": g.size(), "median": g.median(), "min": g.min(), "max": g.max()}).reset_index()


#: How each place id is written for readers: English name, then the Chinese (design: Chinese names with
#: their English form on first use). Provinces and regions are named as the data treat them.
PLACE_NAMES: dict[str, str] = {
    "beijing": "Beijing 北京",
    "hangzhou": "Hangzhou 杭州",
    "shanghai": "Shanghai 上海",
    "shenzhen": "Shenzhen 深圳",
    "guangzhou": "Guangzhou 广州",
    "chengdu": "Chengdu 成都",
    "wuhan": "Wuhan 武汉",
    "hefei": "Hefei 合肥",
    "wuhu": "Wuhu 芜湖",
    "ulanqab": "Ulanqab 乌兰察布",
    "hohhot": "Hohhot 呼和浩特",
    "guizhou": "Guizhou 贵州",
    "zhongwei": "Zhongwei 中卫",
    "qingyang": "Qingyang 庆阳",
    "national": "China (national) 全国",
}


def display_name(place: str) -> str:
    """The reader-facing name of a place id, e.g. ``"ulanqab"`` -> ``"Ulanqab 乌兰察布"``."""
    from tokenlib.errors import check_choice

    return PLACE_NAMES[check_choice("place", place, PLACE_NAMES)]
