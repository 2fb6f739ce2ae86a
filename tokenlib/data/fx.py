"""Dated CNY/USD rates from ``data/fx.csv`` (monthly averages); every conversion in the book uses these."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tokenlib.data import load
from tokenlib.errors import check_choice


def row(month: str | None = None, root: Path | str | None = None) -> pd.Series:
    """The data/fx.csv row for ``month`` ('YYYY-MM'; the latest month when None), with its source, kind and
    method; ``row(...)["month"]`` is the 'YYYY-MM' string."""
    df = load("fx", root)
    months = [str(m)[:7] if not hasattr(m, "strftime") else m.strftime("%Y-%m") for m in df["month"]]
    df = df.assign(month=months).sort_values("month", kind="mergesort")
    if month is None:
        return df.iloc[-1]
    check_choice("month", month, df["month"])
    return df[df["month"] == month].iloc[-1]


def cny_per_usd(month: str | None = None, root: Path | str | None = None) -> tuple[float, str]:
    """(rate, month) for ``month`` ('YYYY-MM'); the latest month in the table when ``month`` is None."""
    r = row(month, root)
    return float(r["cny_per_usd"]), str(r["month"])
