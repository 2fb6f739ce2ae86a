"""Labels for the points of a log-log scatter (chapter 2's chip charts): where each goes, and the Altair layers.

Points whose log coordinates nearly agree share one label; a per-label nudge moves a label off its
neighbours. Presentation only: no numbers are computed here.
"""

from __future__ import annotations

from typing import Literal, cast

import altair as alt
import numpy as np
import pandas as pd

from tokenlib.errors import check_choice

__all__ = ["DEFAULT_NUDGE", "ALIGNS", "label_positions", "point_labels"]


#: Default label offset for :func:`label_positions`: (dx, dy) in pixels and the text alignment.
DEFAULT_NUDGE: tuple[int, int, str] = (6, -8, "left")
ALIGNS: tuple[str, ...] = ("left", "center", "right")
Align = Literal["left", "center", "right"]


def label_positions(
    df: pd.DataFrame, x: str, y: str, *, text: str = "chip",
    nudge: dict[str, tuple[int, int, str]] | None = None, decimals: int = 2,
) -> pd.DataFrame:
    """One label per spot of a scatter: points whose log10 coordinates agree to ``decimals`` places
    (within about 2% on a log axis) share one label (their texts joined by " / ", in row order). ``nudge`` maps a (joined)
    label to its (dx, dy, align) offset in pixels; others get :data:`DEFAULT_NUDGE`.

    Returns columns ``x``, ``y``, ``text`` (named as given) and ``dx``, ``dy``, ``align``.
    ``x`` and ``y`` must be > 0 (log scales).
    """
    for col in (x, y, text):
        check_choice("column", col, [str(c) for c in df.columns])
    for col in (x, y):
        v = df[col].to_numpy(dtype=float)
        if np.any(~np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{col} must be finite and > 0 on a log scale")
    key = (np.log10(df[x].astype(float)).round(decimals).astype(str) + "|"
           + np.log10(df[y].astype(float)).round(decimals).astype(str))

    def join(s: pd.Series) -> str:
        return " / ".join(str(v) for v in s)

    lab = df.assign(_k=key).groupby("_k", sort=False).agg({x: "first", y: "first", text: join}).reset_index(drop=True)
    pos = [(nudge or {}).get(str(t), DEFAULT_NUDGE) for t in lab[text]]
    for p in pos:
        check_choice("align", p[2], ALIGNS)
    lab["dx"] = [p[0] for p in pos]
    lab["dy"] = [p[1] for p in pos]
    lab["align"] = [p[2] for p in pos]
    return lab


def point_labels(
    df: pd.DataFrame, x: str, y: str, xscale: alt.Scale, yscale: alt.Scale, *, text: str = "chip",
    nudge: dict[str, tuple[int, int, str]] | None = None, font_size: int = 11,
) -> alt.LayerChart:
    """Altair text layers naming the points of a scatter (positions from :func:`label_positions`),
    on the scatter's own scales so they layer onto it."""
    lab = label_positions(df, x, y, text=text, nudge=nudge)
    spots = list(dict.fromkeys(zip(lab["dx"].astype(int), lab["dy"].astype(int), lab["align"].astype(str))))
    layers: list[alt.Chart] = []
    for dx, dy, align in spots:
        g = lab[(lab["dx"] == dx) & (lab["dy"] == dy) & (lab["align"] == align)]
        layers.append(
            alt.Chart(g[[x, y, text]]).mark_text(align=cast(Align, align), dx=dx, dy=dy, fontSize=font_size).encode(
                x=alt.X(f"{x}:Q", scale=xscale), y=alt.Y(f"{y}:Q", scale=yscale), text=f"{text}:N"))
    return alt.LayerChart(layer=layers)
