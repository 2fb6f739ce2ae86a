"""Prices at fixed capability: what the same quality costs over time, and the price-capability frontier.

Capability scores come from ``data/capability.csv``: published leaderboard snapshots (LMArena text Elo,
the Artificial Analysis Intelligence Index), one row per model, board and snapshot. Boards change
their scales between versions, so **scores are compared only within one** ``board_version``. A
threshold is an *anchor model* (e.g. GPT-4 of March 2023), not a number: a model is at or above it
when some snapshot shows it scoring at least as high as the anchor, or at least as high as a model
already known to clear the anchor (an ordinal chain through models two snapshots share; never a
score carried from one snapshot to another).

Prices are the chapter's workload prices: :func:`tokenlib.analysis.prices.normalise` converts each list price
to CNY and USD per million tokens at the rate of its own month (``data/fx.csv``), and
:func:`tokenlib.analysis.prices.blended_price` blends input, cache-hit input and output at a workload mix.

Units: prices in currency per million tokens (all tokens of the mix); scores in board points (Elo
for ``lmarena_text``, index points 0-100 for ``aa_intelligence_index``); fall factors per year
(4.0 = four times cheaper each year).

Why this module is long: the threshold test, the prices in force and the cheapest-model series share
one notion of 'a price holds until the model's next row on its lane'; the fall-per-year fit that reads
that series sits with it so that its change points follow the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tokenlib.arrays import FloatArray
from tokenlib.analysis import prices as tp
from tokenlib.errors import check_choice, check_number

BoolArray = npt.NDArray[np.bool_]

BOARDS = ("lmarena_text", "aa_intelligence_index")
CURRENCIES = ("CNY", "USD")


def capability_key(model: Any, served_from: Any, board_model: Any) -> str:
    """Identity of a priced model across snapshots: ``model@served_from``; ``anchor:<name>`` if unpriced.

    An unpriced anchor's name is lower-cased, so one board's snapshots that write it differently
    (``GPT-4-0314`` and ``gpt-4-0314``) still share it.

    ``served_from`` separates the models one API id served over time (deepseek-chat was DeepSeek-V2,
    then V3, then V3.2); it is empty for an id that served one model.
    """
    if isinstance(model, str) and model:
        when = "" if served_from is None or pd.isna(served_from) else pd.Timestamp(served_from).strftime("%Y-%m-%d")
        return f"{model}@{when}"
    return f"anchor:{str(board_model).lower()}"


def with_keys(cap: pd.DataFrame) -> pd.DataFrame:
    """``cap`` (the loaded capability table) with a ``key`` column (:func:`capability_key`)."""
    out = cap.copy()
    out["key"] = [capability_key(m, s, b) for m, s, b in zip(out["model"], out["served_from"], out["board_model"],
                                                              strict=True)]
    return out


def _board_rows(cap: pd.DataFrame, board: str) -> pd.DataFrame:
    check_choice("board", board, BOARDS)
    rows = cap[cap["board"] == board]
    if "key" not in rows:
        rows = with_keys(rows)
    return rows


def at_or_above(cap: pd.DataFrame, board: str, anchor: str) -> set[str]:
    """Keys of the models known to score at or above ``anchor`` (a ``board_model`` name) on ``board``.

    Works snapshot by snapshot: in each ``board_version`` that holds the anchor, or a model already
    known to clear it, every model scoring at least the lowest such score clears it too. Repeats until
    nothing changes, so a 2026 snapshot that no longer lists the anchor still places the models it
    shares with an earlier one. Scores of different snapshots are never compared. Raises
    ``ValueError`` naming the anchor and the valid names when the board does not list it.
    """
    rows = _board_rows(cap, board)
    check_choice("anchor", anchor, sorted(set(map(str, rows["board_model"]))))
    known = set(rows.loc[rows["board_model"] == anchor, "key"])
    changed = True
    while changed:
        changed = False
        for _version, snap in rows.groupby("board_version", sort=True):
            inside = snap[snap["key"].isin(known)]
            if inside.empty:
                continue
            floor = float(inside["score"].min())
            new = set(snap.loc[snap["score"] >= floor, "key"]) - known
            if new:
                known |= new
                changed = True
    return known


def workload_prices(norm: pd.DataFrame, *, input_share: float, cache_hit_share: float) -> pd.DataFrame:
    """One workload price per provider, model, list lane and price date (standard list prices only).

    ``norm`` is :func:`tokenlib.analysis.prices.normalise`'s output. Input, cache-hit input and output prices
    are blended with :func:`tokenlib.analysis.prices.blended_price` (``input_share`` of tokens are input,
    ``cache_hit_share`` of those hit the cache); where a model has several rows on one date and lane
    (context bands, two sources) the cheapest is kept. Only the list lanes
    (:data:`tokenlib.analysis.prices.LIST_LANES`) count: a batch or off-peak price buys another service.
    Returns provider, provider_country, model, lane, effective_date, price_cny and price_usd (per million
    tokens of the mix).
    """
    std = norm[(norm["price_type"] == "standard") & norm["lane"].isin(tp.LIST_LANES)].copy()
    for cur in ("cny", "usd"):
        std[f"price_{cur}"] = tp.blended_price(std[f"input_{cur}"], std[f"output_{cur}"], std[f"cached_input_{cur}"],
                                               input_share=input_share, cache_hit_share=cache_hit_share)
    keys = ["provider", "provider_country", "model", "lane", "effective_date"]
    return std.groupby(keys, as_index=False, sort=True)[["price_cny", "price_usd"]].min()


def _served_index(cap_rows: pd.DataFrame) -> dict[tuple[str, str], list[tuple[pd.Timestamp, str]]]:
    """``{(provider, model): [(served_from, key), ...]}`` sorted by served_from (empty = the earliest)."""
    index: dict[tuple[str, str], list[tuple[pd.Timestamp, str]]] = {}
    priced = cap_rows[cap_rows["model"].fillna("").astype(str) != ""]
    for provider, model, served, key in zip(priced["provider"], priced["model"], priced["served_from"],
                                            priced["key"], strict=True):
        when = pd.Timestamp.min if pd.isna(served) else pd.Timestamp(served)
        entries = index.setdefault((str(provider), str(model)), [])
        if (when, str(key)) not in entries:
            entries.append((when, str(key)))
    for entries in index.values():
        entries.sort()
    return index


def _key_on(entries: list[tuple[pd.Timestamp, str]] | None, when: pd.Timestamp) -> str | None:
    """The key whose served_from is the latest on or before ``when``; None if there is none."""
    if not entries:
        return None
    key = None
    for start, k in entries:
        if start <= when:
            key = k
    return key


def in_force(wp: pd.DataFrame, cap: pd.DataFrame, dates: Iterable[Any],
             boards: Iterable[str] = BOARDS) -> pd.DataFrame:
    """Each priced model's workload price and capability keys in force on each of ``dates``.

    A price holds until the model's next dated row on the same lane (as
    :func:`tokenlib.analysis.prices.carry_forward`; a mainland CNY row does not end the international USD
    price, which still holds); on each board the capability is the entry whose ``served_from`` is the latest
    on or before the date (None where the board has no entry for the model). Returns date, provider,
    provider_country, model, lane, price_date, price_cny, price_usd and one ``key_<board>`` column per board
    (a model on two lanes has two rows a date).
    """
    boards = list(boards)
    indexes = {b: _served_index(_board_rows(cap, b)) for b in boards}
    grid = pd.DatetimeIndex(pd.to_datetime(list(dates))).sort_values()
    out: list[dict[str, Any]] = []
    for (provider, country, model, lane), grp in wp.sort_values("effective_date").groupby(
            ["provider", "provider_country", "model", "lane"], sort=True):
        when = grp["effective_date"].to_numpy()
        idx = np.searchsorted(when, grid.to_numpy(), side="right") - 1
        price_date = grp["effective_date"].to_list()
        cny = grp["price_cny"].to_numpy(dtype=float)
        usd = grp["price_usd"].to_numpy(dtype=float)
        for d, i in zip(grid, idx, strict=True):
            if i < 0:
                continue
            rec: dict[str, Any] = {"date": d, "provider": provider, "provider_country": country, "model": model,
                                   "lane": lane, "price_date": price_date[int(i)], "price_cny": float(cny[int(i)]),
                                   "price_usd": float(usd[int(i)])}
            for b in boards:
                rec[f"key_{b}"] = _key_on(indexes[b].get((str(provider), str(model))), d)
            out.append(rec)
    cols = ["date", "provider", "provider_country", "model", "lane", "price_date", "price_cny", "price_usd",
            *[f"key_{b}" for b in boards]]
    return pd.DataFrame(out, columns=cols)


def cheapest_at_or_above(wp: pd.DataFrame, cap: pd.DataFrame, anchors: Mapping[str, str], *,
                         currency: str = "CNY", dates: Iterable[Any] | None = None,
                         start: Any = None) -> pd.DataFrame:
    """The cheapest workload price of any model at or above a threshold, per date and country group.

    ``anchors`` maps a board to the threshold's anchor model on it (``{"lmarena_text": "GPT-4-0314",
    "aa_intelligence_index": "GPT-4"}``); a model clears the threshold when any of those boards places
    it at or above its anchor (:func:`at_or_above`; each board judged within its own snapshots).
    ``dates`` defaults to every price date in ``wp`` on or after ``start``. On each date the cheapest
    qualifying model in ``currency`` wins for each ``provider_country``. Free prices (0) cannot enter a
    log-linear fit and are left out. Returns date, provider_country, provider, model, price_cny,
    price_usd, n_models (how many cleared the threshold that date).
    """
    check_choice("currency", currency, CURRENCIES)
    if not anchors:
        raise ValueError(f"anchors is empty: give at least one board ({', '.join(BOARDS)}) and its anchor model")
    ok = {board: at_or_above(cap, board, anchor) for board, anchor in anchors.items()}
    if dates is None:
        all_dates = pd.DatetimeIndex(sorted(wp["effective_date"].unique()))
        if start is not None:
            all_dates = all_dates[all_dates >= pd.Timestamp(start)]
        dates = list(all_dates)
    live = in_force(wp, cap, dates, boards=list(anchors))
    col = f"price_{currency.lower()}"
    clears = np.zeros(len(live), dtype=bool)
    for board, keys in ok.items():
        clears |= live[f"key_{board}"].isin(keys).to_numpy()
    live = live[clears & (live[col] > 0).to_numpy()]
    cols = ["date", "provider_country", "provider", "model", "price_cny", "price_usd", "n_models"]
    if live.empty:
        return pd.DataFrame(columns=cols)
    # a model sold on two lanes is one model
    n = live.drop_duplicates(["date", "provider_country", "provider", "model"]).groupby(
        ["date", "provider_country"]).size().rename("n_models")
    best = live.sort_values([col, "provider", "model"]).groupby(["date", "provider_country"], as_index=False).first()
    best = best.merge(n.reset_index(), on=["date", "provider_country"])
    return best[cols].sort_values(["provider_country", "date"]).reset_index(drop=True)


#: The columns a price step must move in: a price is listed in one currency and converted to the other at
#: its month's rate, so the converted one moves whenever the rate does; the listed one only when the price does
PRICE_COLUMNS = ("price_cny", "price_usd")


def change_points(series: pd.DataFrame, value: str | Sequence[str] = PRICE_COLUMNS) -> pd.DataFrame:
    """The rows of a step series (one group, sorted by date) where every column of ``value`` differs from
    the previous row.

    The first row is always kept. These are the observations a fall-per-year fit uses: repeating an
    unchanged price on every later date would inflate n without adding information, and so would a price
    re-observed in another month whose conversion moved with the exchange rate (hence both currencies by
    default, :data:`PRICE_COLUMNS`).
    """
    s = series.sort_values("date")
    names = [value] if isinstance(value, str) else list(value)
    missing = [n for n in names if n not in s.columns]
    if missing:
        raise ValueError(f"change_points: column(s) {missing} not in the series (columns: {list(s.columns)})")
    keep = np.ones(len(s), dtype=bool)
    if len(s) > 1:
        for name in names:
            v = s[name].to_numpy(dtype=float)
            keep[1:] &= ~np.isclose(v[1:], v[:-1], rtol=1e-9, atol=0.0)
    return s[keep]


@dataclass(frozen=True)
class FallFit:
    """A fitted fall per year of a price at fixed capability.

    ``factor`` = exp(-slope) of log(price) on years (2.0 = halved each year; below 1 = got dearer);
    ``low``/``high`` = the bootstrap percentile interval (``level``, e.g. 0.9); ``n`` = observations;
    ``first``/``last`` = their date span (YYYY-MM-DD).
    """

    factor: float
    low: float
    high: float
    n: int
    r2: float
    level: float
    first: str
    last: str


def fall_per_year(dates: Any, prices: Any, *, n_boot: int = 2000, level: float = 0.9, seed: int = 0) -> FallFit:
    """Fit :func:`tokenlib.analysis.prices.decline_per_year` and a pairs-bootstrap interval for its factor.

    Resamples the (date, price) pairs with replacement ``n_boot`` times (resamples with fewer than two
    distinct dates are skipped) and reports the ``level`` percentile interval. Prices must be > 0
    (currency per million tokens); needs at least three observations on two or more dates.
    """
    check_number("level", level, allow_zero=False, upper=0.999)
    if n_boot < 100:
        raise ValueError(f"n_boot must be >= 100 for a percentile interval, got {n_boot}")
    d = pd.to_datetime(pd.Series(np.asarray(dates, dtype=object).ravel()))
    p = np.asarray(prices, dtype=float).ravel()
    if len(p) < 3:
        raise ValueError(f"need at least 3 observations to fit a fall per year with an interval, got {len(p)}")
    factor, r2, n = tp.decline_per_year(d.to_numpy(), p)
    years = ((d - d.min()).dt.days.to_numpy(dtype=float)) / tp.DAYS_PER_YEAR
    y = np.log(p)
    rng = np.random.default_rng(seed)
    draws: list[float] = []
    for _ in range(n_boot):
        i = rng.integers(0, len(p), size=len(p))
        if len(np.unique(years[i])) < 2:
            continue
        b = np.polyfit(years[i], y[i], 1)[0]
        draws.append(float(np.exp(-b)))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(draws), [tail, 1.0 - tail])
    return FallFit(factor=factor, low=float(low), high=float(high), n=n, r2=r2, level=level,
                   first=d.min().strftime("%Y-%m-%d"), last=d.max().strftime("%Y-%m-%d"))


def fixed_capability_fits(cheapest: pd.DataFrame, *, currency: str = "CNY", n_boot: int = 2000,
                          level: float = 0.9, seed: int = 0) -> dict[str, FallFit]:
    """One :class:`FallFit` per ``provider_country`` of :func:`cheapest_at_or_above`'s output.

    Fits over the series' price steps (:func:`change_points` in both currencies); a group with fewer than three
    change points on two dates has no fit and is left out.
    """
    check_choice("currency", currency, CURRENCIES)
    col = f"price_{currency.lower()}"
    fits: dict[str, FallFit] = {}
    for country, grp in cheapest.groupby("provider_country", sort=True):
        pts = change_points(grp)
        if len(pts) < 3 or pts["date"].nunique() < 2:
            continue
        fits[str(country)] = fall_per_year(pts["date"].to_numpy(), pts[col].to_numpy(), n_boot=n_boot,
                                           level=level, seed=seed)
    return fits


def pareto_frontier(capability: Any, price: Any) -> BoolArray:
    """True for the points no other point beats: none has capability >= and price <=, one strictly.

    ``capability`` in board points (higher is better), ``price`` per million tokens (lower is
    better); arrays of one length, finite. Ties (same capability and price) are all on the front.
    """
    c = np.asarray(capability, dtype=float).ravel()
    p = np.asarray(price, dtype=float).ravel()
    if c.shape != p.shape:
        raise ValueError(f"capability ({c.size}) and price ({p.size}) differ in length")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(p))):
        raise ValueError("capability and price must be finite")
    better_or_equal = (c[None, :] >= c[:, None]) & (p[None, :] <= p[:, None])
    strictly = (c[None, :] > c[:, None]) | (p[None, :] < p[:, None])
    dominated = np.any(better_or_equal & strictly, axis=1)
    return np.asarray(~dominated, dtype=np.bool_)


def frontier_at(wp: pd.DataFrame, cap: pd.DataFrame, board: str, date: Any, *, currency: str = "CNY",
                board_version: str | None = None) -> pd.DataFrame:
    """Every priced model in force on ``date`` with its score on one board version, front marked.

    ``board_version`` picks the snapshot; it may be omitted only when the board has one version (the
    error lists them otherwise: scores of two versions do not share a scale). Returns the
    :func:`in_force` columns plus board_model, score, estimated and ``on_front`` (Pareto-efficient in
    score against the ``currency`` price). Free prices are kept but cannot sit on a log axis.
    """
    check_choice("currency", currency, CURRENCIES)
    rows = _board_rows(cap, board)
    versions = sorted(set(map(str, rows["board_version"])))
    if board_version is None:
        if len(versions) != 1:
            raise ValueError(f"board {board!r} has {len(versions)} versions; pick one with board_version= "
                             f"(valid: {', '.join(versions)})")
        board_version = versions[0]
    check_choice("board_version", board_version, versions)
    snap = rows[rows["board_version"] == board_version]
    live = in_force(wp, cap, [date], boards=[board]).rename(columns={f"key_{board}": "key"})
    col = f"price_{currency.lower()}"
    live = live.sort_values([col, "lane"]).drop_duplicates(["provider", "model"])  # a model's cheaper lane
    merged = live.merge(snap[["key", "board_model", "score", "estimated"]].drop_duplicates("key"), on="key",
                        how="inner")
    merged["on_front"] = pareto_frontier(merged["score"], merged[col]) if len(merged) else np.array([], dtype=bool)
    return merged.sort_values("score").reset_index(drop=True)


def best_of(cap: pd.DataFrame, board: str, board_version: str, country: str,
            released: tuple[str, str] | None = None) -> pd.Series:
    """The highest-scoring row of ``country`` in one snapshot (optionally released in [from, to])."""
    rows = _board_rows(cap, board)
    check_choice("board_version", board_version, sorted(set(map(str, rows["board_version"]))))
    snap = rows[(rows["board_version"] == board_version) & (rows["provider_country"] == country)]
    if released is not None:
        lo, hi = pd.Timestamp(released[0]), pd.Timestamp(released[1])
        snap = snap[(snap["release_date"] >= lo) & (snap["release_date"] <= hi)]
    if snap.empty:
        raise ValueError(f"no {country} row on {board} {board_version!r} in that window")
    return snap.sort_values("score").iloc[-1]


def thresholds_table(wp: pd.DataFrame, cap: pd.DataFrame, thresholds: Mapping[str, Mapping[str, str]], *,
                     currency: str = "CNY", start: Any = None, n_boot: int = 2000, level: float = 0.9,
                     seed: int = 0) -> pd.DataFrame:
    """Fall per year at each threshold, board and country: factor, interval, n, span, first/last price.

    ``thresholds`` maps a label to ``{board: anchor board_model}``; each threshold is evaluated on all
    its boards together (``board == "any"``: a model clears it on any board) and, where it has more
    than one, on each board alone, with :func:`cheapest_at_or_above` and :func:`fixed_capability_fits`. A country with too few change
    points keeps a row with NaN factor so the table shows the gap.
    """
    out: list[dict[str, Any]] = []
    col = f"price_{currency.lower()}"
    for label, per_board in thresholds.items():
        variants: list[tuple[str, Mapping[str, str]]] = [("any", per_board)]
        if len(per_board) > 1:
            variants += [(b, {b: a}) for b, a in per_board.items()]
        for board, anchors in variants:
            anchor = " / ".join(anchors.values())
            ch = cheapest_at_or_above(wp, cap, anchors, currency=currency, start=start)
            fits = fixed_capability_fits(ch, currency=currency, n_boot=n_boot, level=level, seed=seed)
            for country, grp in ch.groupby("provider_country", sort=True):
                f = fits.get(str(country))
                g = grp.sort_values("date")
                out.append({"threshold": label, "board": board, "anchor": anchor, "country": country,
                            "factor": f.factor if f else np.nan, "low": f.low if f else np.nan,
                            "high": f.high if f else np.nan, "n": f.n if f else len(change_points(g)),
                            "first_date": g["date"].iloc[0], "last_date": g["date"].iloc[-1],
                            "first_price": float(g[col].iloc[0]), "last_price": float(g[col].iloc[-1]),
                            "last_model": str(g["model"].iloc[-1])})
    return pd.DataFrame(out)


def best_within_budget(front: pd.DataFrame, budget: float, *, country: str, currency: str = "CNY") -> pd.Series:
    """The highest-scoring model of ``country`` whose workload price is at most ``budget``.

    ``front`` is :func:`frontier_at`'s output (one date, one board version); ``budget`` in
    ``currency`` per million tokens. Raises ``ValueError`` when no model of ``country`` fits.
    """
    check_choice("currency", currency, CURRENCIES)
    b = float(check_number("budget", budget, allow_zero=False))
    col = f"price_{currency.lower()}"
    fits = front[(front["provider_country"] == country) & (front[col] <= b)]
    if fits.empty:
        raise ValueError(f"no {country} model priced at or below {b:g} {currency} per million tokens on that date")
    return fits.sort_values(["score", col], ascending=[True, False]).iloc[-1]
