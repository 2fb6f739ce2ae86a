"""The standing cross-check of ``data/prices.csv`` against a maintained peer: pydantic's genai-prices.

genai-prices (PyPI, pinned in ``pyproject.toml`` and ``requirements.lock``) keeps USD price
histories per provider and model, with start dates and time-of-day bands. For every book row that
both price -- same provider, a model id genai-prices matches, the row's date, and the same lane --
the two must agree within ``REL_TOL``, or the book row's ``notes`` must explain the difference with
the marker ``genai-prices:`` followed by the reason (e.g. "genai-prices: tracker stale, vendor page
shows ..."; "genai-prices: no history before ...; carries today's price back"). A new unexplained
disagreement fails, naming the row and both prices.

Lanes: genai-prices prices in USD only, so only the book's USD lanes are compared
(``international_list``, ``off_peak``, ``peak``); its CNY-origin providers (``zhipuai``: mainland
prices converted to USD) are a different lane and are not compared. ``promotional`` and ``batch``
rows are not compared (genai-prices does not model them). Each lane is read at a time of day that
falls in it: list prices at 12:00 UTC (inside DeepSeek's 2025 standard window 00:30-16:30 UTC and
outside its 2026 peak windows 01:00-04:00 and 06:00-10:00 UTC), off-peak at 20:00 UTC, peak at
02:00 UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

import tokenlib

# pinned in the test extra and the lock: a missing package fails the run, it does not skip the check
from genai_prices import data as gp_data

REL_TOL = 0.01
"""Two prices agree when they differ by at most 1 % of the larger (rounded quotes such as $0.0028
vs $0.003 are not agreements: 7 % apart)."""

MARKER = "genai-prices:"

PROVIDERS = {"deepseek": "deepseek", "openai": "openai", "anthropic": "anthropic", "google": "google",
             "moonshot": "moonshotai", "minimax": "minimax", "zhipu": "zai"}
"""Book provider id -> genai-prices provider id (``zai`` is Z.AI's international USD platform)."""

LANE_TIME = {"international_list": time(12, 0), "off_peak": time(20, 0), "peak": time(2, 0)}

FIELDS = (("input_price", "input_mtok"), ("output_price", "output_mtok"), ("cached_input_price", "cache_read_mtok"))


@dataclass(frozen=True)
class Comparison:
    row: int
    provider: str
    model: str
    date: str
    lane: str
    book: dict[str, float]
    peer: dict[str, float]
    explained: bool

    @property
    def agrees(self) -> bool:
        return all(_close(self.book[k], self.peer[k]) for k in self.book if k in self.peer)

    def describe(self) -> str:
        pairs = ", ".join(f"{k} book {self.book[k]:g} vs genai-prices {self.peer[k]:g}"
                          for k in self.book if k in self.peer and not _close(self.book[k], self.peer[k]))
        return f"prices.csv row {self.row} ({self.provider} {self.model} {self.date} {self.lane}): {pairs}"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def _base(price: Any) -> float | None:
    """A genai-prices price as a float: the base tier of a tiered price, None where absent."""
    if price is None:
        return None
    if isinstance(price, Decimal | int | float):
        return float(price)
    base = getattr(price, "base", None)
    return float(base) if base is not None else None


def _providers() -> dict[str, Any]:
    return {p.id: p for p in gp_data.providers}


def _find(provider: Any, model: str) -> Any:
    for ref in dict.fromkeys([model, model.lower(), model.lower().replace(" ", "-")]):
        found = provider.find_model(ref)
        if found is not None:
            return found
    return None


def comparisons() -> list[Comparison]:
    prices = tokenlib.load("prices")
    gp = _providers()
    out: list[Comparison] = []
    for idx, r in prices.iterrows():
        lane = str(r["lane"])
        if r["currency"] != "USD" or lane not in LANE_TIME or r["provider"] not in PROVIDERS:
            continue
        ctx = r["context_tier"]
        if isinstance(ctx, str) and ctx and not ctx.startswith("<="):
            continue                     # a higher length band: genai-prices' base tier is the lowest one
        info = _find(gp[PROVIDERS[str(r["provider"])]], str(r["model"]))
        if info is None:
            continue
        when = datetime.combine(pd.Timestamp(r["effective_date"]).date(), LANE_TIME[lane], tzinfo=UTC)
        peer_price = info.get_prices(when)
        mult = 1000.0 if r["unit"] == "per_ktok" else 1.0
        book = {k: float(r[k]) * mult for k, _ in FIELDS if pd.notna(r[k])}
        peer = {k: v for k, g in FIELDS if (v := _base(getattr(peer_price, g, None))) is not None}
        notes = str(r["notes"]) if pd.notna(r["notes"]) else ""
        out.append(Comparison(int(idx) + 2, str(r["provider"]), str(r["model"]),
                              pd.Timestamp(r["effective_date"]).strftime("%Y-%m-%d"), lane, book, peer,
                              MARKER in notes))
    return out


def test_the_cross_check_compares_enough_rows() -> None:
    got = comparisons()
    # if the model matching broke, the test below would pass by comparing nothing
    assert len(got) >= 20, f"only {len(got)} book rows matched a genai-prices model"
    assert {c.provider for c in got} >= {"deepseek", "openai", "anthropic", "google"}


def test_every_disagreement_with_genai_prices_is_explained() -> None:
    bad = [c.describe() for c in comparisons() if not c.agrees and not c.explained]
    assert not bad, (f"{len(bad)} unexplained disagreement(s) with genai-prices; check the vendor page and "
                     f"either fix the row or explain it in notes with '{MARKER} <why>':\n" + "\n".join(bad))


def test_the_cross_check_flags_a_new_disagreement() -> None:
    """The check itself: a row moved off the peer's price, without a note, is caught."""
    got = [c for c in comparisons() if c.agrees]
    assert got, "no agreeing row to perturb"
    c = got[0]
    moved = Comparison(c.row, c.provider, c.model, c.date, c.lane,
                       {k: v * 1.5 for k, v in c.book.items()}, c.peer, explained=False)
    assert not moved.agrees and not moved.explained
