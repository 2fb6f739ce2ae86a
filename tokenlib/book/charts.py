"""The book's chart style: one Altair theme, one colour-blind-safe palette, CJK-capable fonts.

Charts are built in the chapters with plain Altair and the helpers here; :mod:`tokenlib.book.figures`
turns a finished chart into a numbered, cited, downloadable figure.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd

#: Okabe & Ito's colour-blind-safe palette (Color Universal Design project, 2002; republished by Wong,
#: Nature Methods 2011), blue first and black last. Hex codes as listed at
#: https://vizcept.com/blog/okabe-ito-palette-guide (read 2026-11-28).
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

#: Font stack: Noto Sans CJK SC renders both Latin and Chinese; the generic fallbacks keep phones happy.
FONT = "Noto Sans CJK SC, Noto Sans SC, PingFang SC, Microsoft YaHei, Helvetica, Arial, sans-serif"

THEME_NAME = "tokenbook"


def theme_config() -> dict[str, Any]:
    """The Vega-Lite config every figure uses."""
    return {
        "config": {
            "font": FONT,
            "background": "white",
            "view": {"stroke": None, "continuousWidth": 560, "continuousHeight": 320},
            "range": {"category": list(PALETTE)},
            "mark": {"color": PALETTE[0]},
            "axis": {"labelFontSize": 12, "titleFontSize": 12, "grid": True, "gridColor": "#e5e5e5"},
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom", "columns": 3},
            # facet headers default to 10-11 px: the book's floor for chart text is 11 CSS px
            "header": {"labelFontSize": 12, "titleFontSize": 12},
            "text": {"fontSize": 12},
            "title": {"fontSize": 15, "anchor": "start", "subtitleFontSize": 12, "subtitleColor": "#555"},
        }
    }


@alt.theme.register(THEME_NAME, enable=True)
def _tokenbook_theme() -> alt.theme.ThemeConfig:
    config: alt.theme.ThemeConfig = theme_config()  # type: ignore[assignment]
    return config


def enable() -> None:
    """Make the book's theme the active Altair theme (importing tokenlib.book.charts already does)."""
    alt.theme.enable(THEME_NAME)


def color_scale(domain: list[str], shown: list[str] | None = None) -> alt.Scale:
    """A categorical colour scale with a fixed colour per category, in palette order.

    ``shown``: the categories one chart draws, when it draws only some of ``domain``; the legend then
    lists only those, each keeping the colour ``domain`` gives it, so sibling charts agree.
    Raises ``ValueError`` when there are more categories than distinguishable colours, or when
    ``shown`` names a category ``domain`` lacks.
    """
    if len(domain) > len(PALETTE):
        raise ValueError(
            f"{len(domain)} categories but only {len(PALETTE)} colour-blind-safe colours: "
            "facet or aggregate first"
        )
    colour = dict(zip(domain, PALETTE))
    if shown is None:
        return alt.Scale(domain=list(domain), range=[colour[c] for c in domain])
    unknown = sorted(set(shown) - set(colour))
    if unknown:
        raise ValueError(f"categories {unknown} are not in the colour domain {list(domain)}")
    kept = [c for c in domain if c in set(shown)]
    return alt.Scale(domain=kept, range=[colour[c] for c in kept])


def tornado_chart(sens: pd.DataFrame, metric: str, *, title: str, scale: float = 100.0, width: int = 300) -> Any:
    """Altair bars of ``sens`` (from :func:`tokenlib.analysis.city_race.sensitivity`) for one metric: one row per changed assumption
    ("assumption: label"), a bar from the base value to the changed one, rows grouped by assumption and sorted
    by the largest move, coloured by direction; values times ``scale`` (100: shares as per cent)."""
    d = sens[sens["metric"] == metric].copy()
    d["value_s"], d["base_s"] = d["value"] * scale, d["base"] * scale
    # a change that leaves the metric where it was (e.g. a utilisation gap, for an edge taken at equal
    # utilisation) still gets its row a visible mark, so the reader sees "no change", not a missing bar
    still = np.isclose(d["value"], d["base"], rtol=1e-9, atol=1e-12)
    d["direction"] = np.where(still, "no change", np.where(d["value"] > d["base"], "raises it", "lowers it"))
    d["row"] = d["assumption"] + ": " + d["label"]
    rank = d.assign(a=d["delta"].abs()).groupby("assumption")["a"].max().sort_values(ascending=False)
    d["_g"] = d["assumption"].map({a: i for i, a in enumerate(rank.index)})
    order = list(d.sort_values(["_g", "value"])["row"])
    directions = ["lowers it", "raises it"] + (["no change"] if still.any() else [])
    base = alt.Chart(d.drop(columns="_g")).encode(
        y=alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=240)),
        color=alt.Color("direction:N", title=None, scale=alt.Scale(domain=directions,
                                                                     range=["#D55E00", "#0072B2", "#666666"]),
                        legend=alt.Legend(orient="bottom")),
        tooltip=["assumption", "label", alt.Tooltip("value_s:Q", format=".1f", title="value"),
                 alt.Tooltip("base_s:Q", format=".1f", title="base")])
    bars = base.mark_bar(height=12).encode(x=alt.X("base_s:Q", title=title), x2="value_s:Q")
    ends = base.mark_point(filled=True, size=40, opacity=1).encode(x="value_s:Q")
    rule = alt.Chart(pd.DataFrame({"x": [float(d["base_s"].iloc[0])]})).mark_rule(color="#000").encode(x="x:Q")
    return alt.layer(bars, ends, rule).properties(width=width, height=max(120, 20 * len(d)))
