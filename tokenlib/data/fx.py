"""Dated CNY/USD rates from ``data/fx.csv`` (monthly averages); every conversion in the book uses these."""

from __future__ import annotations

from pathlib import Path

from tokenlib.data import load
from tokenlib.errors import check_choice


def cny_per_usd(month: str | None = None, root: Path | str | None = None) -> tuple[float, str]:
    """(rate, month) for ``month`` ('YYYY-MM'); the latest month in the table when ``month`` is None."""
    df = load("fx", root)
    months = [str(m)[:7] if not hasattr(m, "strftime") else m.strftime("%Y-%m") for m in df["month"]]
    df = df.assign(_m=months).sort_values("_m")
    if month is None:
        row = df.iloc[-1]
    else:
        check_choice("month", month, df["_m"])
        row = df[df["_m"] == month].iloc[-1]
    return float(row["cny_per_usd"]), str(row["_m"])
