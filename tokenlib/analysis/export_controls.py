"""US export-control metrics for accelerators, and the chip-by-chip comparisons chapter 2 draws from the kernel.

**Total Processing Performance (TPP)**, the metric of ECCN 3A090 (US Export Administration
Regulations), is ``2 x MacTOPS x bit length of the operation``, aggregated over the chip's processing
units. Vendors quote dense tensor peaks in TOPS/TFLOPS, counting a multiply-accumulate as two
operations, so for one precision ``TPP = dense TOPS x bit length`` (e.g. H100: 989.5 dense BF16
TFLOPS x 16 = 15,832; 1,979 dense FP8 TFLOPS x 8 = 15,832). A chip's TPP is the **maximum over its
precisions**. Units: 1 TPP = 1e12 bit-operations per second. **Performance density (PD)** =
TPP / applicable die area in mm2.

Thresholds (:func:`thresholds`, from ``data/control_thresholds.csv``) carry their provenance and a verification status: the 3A090.a text
of the October 2023 rule was read (in a copy of the Commerce Control List); the October 2022 values
come from a news summary of the rule; the lower bounds of 3A090.b were read only in a 2025 Senate
bill that reuses them (the 3A090.b rule text itself was not read: ``status="corroborated"``). The
chapter says so beside every use.

Chip-by-chip comparisons through the cost kernel (how many chips match another, the split of a cost
into capex, power and hosting) are :mod:`tokenlib.analysis.chip_costs`; the labels of chapter 2's
scatters are :mod:`tokenlib.book.chart_labels`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tokenlib.arrays import ArrayLike, FloatArray, FloatOrArray
from tokenlib.data import specs
from tokenlib.data import load, load_sources
from tokenlib.errors import check_choice, check_number


#: Bit length of the operation behind each peak column of ``data/chips.csv``.
BIT_LENGTH: dict[str, int] = {"bf16_tflops": 16, "fp16_tflops": 16, "fp8_tflops": 8, "int8_tops": 8}
PEAK_COLUMNS: tuple[str, ...] = tuple(BIT_LENGTH)

OCT2023_CLASSES: tuple[str, ...] = ("3A090.a", "3A090.b", "not controlled", "undetermined")


@dataclass(frozen=True)
class Threshold:
    """One numeric threshold of a rule, with where it was read and how sure we are of it."""

    rule: str
    name: str
    value: float
    unit: str
    status: str  # "rule text" | "secondary summary" | "corroborated"
    source_url: str
    source_id: str
    note: str


THRESHOLDS_TABLE = "control_thresholds"
"""``data/control_thresholds.csv``: every threshold used, with its source, quote and verification status."""


def thresholds(root: Path | str | None = None) -> dict[str, Threshold]:
    """Every threshold the rules below test, by key, from :data:`THRESHOLDS_TABLE` (quote-checked like all data)."""
    df = load(THRESHOLDS_TABLE, root)
    notes = df["notes"].where(df["notes"].notna(), "")
    return {str(k): Threshold(str(rule), str(name), float(v), str(unit), str(status), str(url), str(rid), str(note))
            for k, rule, name, v, unit, status, url, rid, note in zip(
                df["key"], df["rule"], df["name"], df["value"], df["unit"], df["status"], df["source_url"],
                df["rule_id"], notes)}


def __getattr__(name: str) -> dict[str, Threshold]:
    # THRESHOLDS, the dict earlier versions wrote here, now read from the data on each access
    if name == "THRESHOLDS":
        return thresholds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _t(name: str) -> float:
    return thresholds()[name].value


def thresholds_table() -> pd.DataFrame:
    """:func:`thresholds` as a table (one row per threshold)."""
    return pd.DataFrame([{"key": k, **vars(v)} for k, v in thresholds().items()])


# ----------------------------------------------------------------------------- TPP and density


def tpp(tops: ArrayLike, bit_length: ArrayLike) -> FloatOrArray:
    """TPP of one precision: dense peak (TOPS or TFLOPS, 2 ops per MAC) x bit length of the operation.

    Broadcasts; scalars give a float. ``tpp(989.5, 16) == 15832``.
    """
    t = check_number("tops", tops)
    b = check_number("bit_length", bit_length, allow_zero=False)
    out = t * b
    return float(out) if np.ndim(out) == 0 else out


def tpp_from_peaks(peaks: dict[str, Any]) -> Any:
    """TPP as the maximum over precisions. ``peaks`` maps peak columns (see :data:`BIT_LENGTH`) to
    dense TOPS/TFLOPS (NaN or missing = not published). Returns NaN where no peak is known."""
    out: FloatArray | None = None
    for col, value in peaks.items():
        check_choice("peak column", col, PEAK_COLUMNS)
        v = np.asarray(value, dtype=float)
        if np.any(v[np.isfinite(v)] < 0):
            raise ValueError(f"{col} must be >= 0, got {value!r}")
        cand = np.where(np.isfinite(v), v * BIT_LENGTH[col], -np.inf)
        out = cand if out is None else np.maximum(out, cand)
    if out is None:
        raise ValueError("tpp_from_peaks needs at least one peak")
    res = np.where(np.isfinite(out), out, np.nan)
    return float(res) if np.ndim(res) == 0 else res


def performance_density(tpp_value: ArrayLike, die_area_mm2: ArrayLike) -> FloatOrArray:
    """Performance density = TPP / applicable die area (mm2). NaN area gives NaN."""
    t = np.asarray(tpp_value, dtype=float)
    a = np.asarray(die_area_mm2, dtype=float)
    if np.any(a[np.isfinite(a)] <= 0):
        raise ValueError(f"die_area_mm2 must be > 0, got {die_area_mm2!r}")
    out = t / a
    return float(out) if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------- classification


OCT2022_CLASSES: tuple[str, ...] = ("controlled", "not controlled", "undetermined")
JAN2026_CLASSES: tuple[str, ...] = ("inside", "outside", "undetermined")


def classify_oct2022(tpp_value: ArrayLike, io_gbps: ArrayLike) -> Any:
    """Oct-2022 3A090 class: ``"controlled"`` (TPP >= 4800 **and** chip-to-chip I/O >= 600 GB/s),
    ``"not controlled"`` or ``"undetermined"``.

    An unknown (NaN) I/O figure is not read as 0 GB/s: a chip below the TPP line is not controlled
    whatever its I/O, but one at or above it with no I/O figure is ``"undetermined"``. An unknown TPP
    is undetermined too. Broadcasts; scalars give a str.
    """
    t = np.asarray(tpp_value, dtype=float)
    io = np.asarray(io_gbps, dtype=float)
    above = t >= _t("oct2022_tpp")
    below = t < _t("oct2022_tpp")
    known_io = np.isfinite(io)
    controlled = above & known_io & (io >= _t("oct2022_io_gbps"))
    not_controlled = below | (above & known_io & (io < _t("oct2022_io_gbps")))
    out = np.where(controlled, OCT2022_CLASSES[0], np.where(not_controlled, OCT2022_CLASSES[1], OCT2022_CLASSES[2]))
    return str(out) if np.ndim(out) == 0 else out


def controlled_oct2022(tpp_value: ArrayLike, io_gbps: ArrayLike) -> Any:
    """Oct-2022 3A090: True when TPP >= 4800 **and** chip-to-chip I/O >= 600 GB/s. Returns bool(s).

    Raises ``ValueError`` where the answer is unknown (I/O or TPP missing on a chip the TPP test does not
    already clear): use :func:`classify_oct2022`, which returns ``"undetermined"`` there.
    """
    cls = np.asarray(classify_oct2022(tpp_value, io_gbps))
    if np.any(cls == OCT2022_CLASSES[2]):
        bad = np.broadcast_arrays(np.asarray(tpp_value, dtype=float), np.asarray(io_gbps, dtype=float))
        pairs = [(float(a), float(b)) for a, b, c in zip(bad[0].ravel(), bad[1].ravel(), cls.ravel())
                 if c == OCT2022_CLASSES[2]]
        raise ValueError(f"Oct-2022 test undetermined for (tpp, io_gbps) = {pairs[:5]}: the chip-to-chip I/O is "
                         "unknown; use classify_oct2022, which returns 'undetermined'")
    out = cls == OCT2022_CLASSES[0]
    return bool(out) if np.ndim(out) == 0 else out


def classify_oct2023(tpp_value: ArrayLike, density: ArrayLike) -> Any:
    """Oct-2023 3A090 class: ``"3A090.a"``, ``"3A090.b"``, ``"not controlled"`` or ``"undetermined"``.

    3A090.a: TPP >= 4800, or TPP >= 1600 and PD >= 5.92. 3A090.b (lower bounds corroborated, not
    read in the rule, see :func:`thresholds`): 2400 <= TPP < 4800 and 1.6 <= PD < 5.92, or
    TPP >= 1600 and 3.2 <= PD < 5.92. With an unknown (NaN) density only the TPP tests can decide:
    TPP >= 4800 is 3A090.a, TPP < 1600 is not controlled, anything between is ``"undetermined"``.
    """
    t = np.asarray(tpp_value, dtype=float)
    d = np.asarray(density, dtype=float)
    known = np.isfinite(d)
    dd = np.where(known, d, -np.inf)
    a = (t >= _t("oct2023_a_tpp")) | ((t >= _t("oct2023_a_tpp_dense")) & (dd >= _t("oct2023_a_pd")))
    b1 = (t >= _t("oct2023_b_tpp")) & (t < _t("oct2023_a_tpp")) & (dd >= _t("oct2023_b_pd")) & (dd < _t("oct2023_a_pd"))
    b2 = (t >= _t("oct2023_a_tpp_dense")) & (dd >= _t("oct2023_b2_pd")) & (dd < _t("oct2023_a_pd"))
    undecided = ~known & ~a & (t >= _t("oct2023_a_tpp_dense"))
    out = np.where(a, OCT2023_CLASSES[0], np.where(b1 | b2, OCT2023_CLASSES[1],
                                                   np.where(undecided, OCT2023_CLASSES[3], OCT2023_CLASSES[2])))
    return str(out) if np.ndim(out) == 0 else out


def classify_jan2026(tpp_value: ArrayLike, hbm_tbps: ArrayLike) -> Any:
    """Jan-2026 case-by-case licensing lane for China: ``"inside"`` when TPP < 21,000 and DRAM bandwidth
    < 6,500 GB/s, ``"outside"`` when either limit is reached, ``"undetermined"`` when a figure the
    answer needs is unknown (NaN): a missing bandwidth is not read as 0. Broadcasts; scalars give a str.
    """
    t = np.asarray(tpp_value, dtype=float)
    bw = np.asarray(hbm_tbps, dtype=float) * 1000.0
    out_t = t >= _t("jan2026_tpp")
    out_bw = bw >= _t("jan2026_dram_gbps")
    inside = (t < _t("jan2026_tpp")) & (bw < _t("jan2026_dram_gbps"))
    out = np.where(inside, JAN2026_CLASSES[0], np.where(out_t | out_bw, JAN2026_CLASSES[1], JAN2026_CLASSES[2]))
    return str(out) if np.ndim(out) == 0 else out


def within_jan2026_lane(tpp_value: ArrayLike, hbm_tbps: ArrayLike) -> Any:
    """Jan-2026 case-by-case licensing lane for China: TPP < 21,000 and DRAM bandwidth < 6,500 GB/s.

    Returns bool(s); raises ``ValueError`` where a needed figure is unknown (see :func:`classify_jan2026`).
    """
    cls = np.asarray(classify_jan2026(tpp_value, hbm_tbps))
    if np.any(cls == JAN2026_CLASSES[2]):
        raise ValueError("Jan-2026 lane undetermined: TPP or DRAM bandwidth unknown; use classify_jan2026, "
                         "which returns 'undetermined'")
    out = cls == JAN2026_CLASSES[0]
    return bool(out) if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------- ranges of published figures


def spec_ranges(
    fields: list[str] | tuple[str, ...] | None = None, root: Path | str | None = None, *, rel_tol: float = 0.005,
) -> pd.DataFrame:
    """Every published figure per chip and field: the value used in chips.csv and the low/high of all
    figures for it (chips.csv plus the conflicting rows of data/sources/chips.csv).

    Columns: id, field, used, low, high, n_figures, conflict (True when the figures differ by more
    than ``rel_tol`` of the highest: 989.4 vs 989.5 TFLOPS is rounding, not a conflict).
    Estimated figures (kind=estimate in the sources file) are counted but flagged in ``estimate``.
    """
    chips = specs.chips_table(root).reset_index(drop=True)
    src = load_sources("chips", root)
    cols = list(fields) if fields is not None else [c for c in specs.CHIP_FIELDS if c != "price_usd"] + ["die_area_mm2"]
    tol = float(check_number("rel_tol", rel_tol, upper=1.0))
    rows = []
    for col in cols:
        check_choice("chips field", col, chips.columns)
        for _, r in chips.iterrows():
            used = float(r[col]) if pd.notna(r[col]) else np.nan
            extra = src[(src["item_id"] == r["id"]) & (src["field"] == col)]
            vals = [v for v in [used, *extra["value"].astype(float)] if np.isfinite(v)]
            if not vals:
                continue
            rows.append({
                "id": r["id"], "field": col, "used": used, "low": min(vals), "high": max(vals),
                "n_figures": len(set(vals)) if len(vals) > 0 else 0,
                "conflict": bool(max(vals) - min(vals) > tol * abs(max(vals))),
                "estimate": bool((extra["kind"] == "estimate").any()),
            })
    return pd.DataFrame(rows)


def published_tpp(root: Path | str | None = None) -> pd.Series:
    """Published TPP per chip id from data/sources/chips.csv (field ``tpp``; first figure per chip)."""
    src = load_sources("chips", root)
    s = src[src["field"] == "tpp"].groupby("item_id")["value"].first()
    s.name = "tpp_published"
    return s


def tpp_table(root: Path | str | None = None) -> pd.DataFrame:
    """One row per chip: TPP computed from its dense peaks (and which precision sets it), the published
    TPP where one exists, performance density, the low/high TPP and density implied by conflicting
    published figures, and its class under the Oct-2022, Oct-2023 and Jan-2026 tests (``oct2022_class``,
    ``oct2023_class``, ``jan2026_class``; an unknown input gives ``"undetermined"``, never a pass).

    Ranges: low TPP = the lowest published figure of each bit length (BF16/FP16 pooled, FP8/INT8
    pooled) times its bit length, the larger of the two; high TPP likewise with the highest figures.
    Low density = low TPP / largest published die area; high density = high TPP / smallest area.
    """
    chips = specs.chips_table(root).reset_index(drop=True)
    peaks = {c: chips[c].to_numpy(dtype=float) for c in PEAK_COLUMNS}
    computed = np.asarray(tpp_from_peaks(peaks), dtype=float)
    by_col = np.vstack([np.where(np.isfinite(peaks[c]), peaks[c] * BIT_LENGTH[c], -np.inf) for c in PEAK_COLUMNS])
    arg = np.argmax(by_col, axis=0)
    precision_of = np.array([PEAK_COLUMNS[i].split("_")[0] for i in arg])
    area = chips["die_area_mm2"].to_numpy(dtype=float)
    pd_used = np.asarray(performance_density(computed, area), dtype=float)

    ranges = spec_ranges(list(PEAK_COLUMNS) + ["die_area_mm2"], root)
    lows: dict[tuple[str, str], float] = {
        (str(i), str(f)): float(v) for i, f, v in zip(ranges["id"], ranges["field"], ranges["low"])}
    highs: dict[tuple[str, str], float] = {
        (str(i), str(f)): float(v) for i, f, v in zip(ranges["id"], ranges["field"], ranges["high"])}
    ids = [str(i) for i in chips["id"]]

    src = load_sources("chips", root)
    derived = {(str(i), str(f)) for i, f, k in zip(src["item_id"], src["field"], src["kind"]) if k == "derived"}

    def _pooled(table: dict[tuple[str, str], float], bits: int, pick: Any) -> FloatArray:
        # every published figure of one bit length (BF16 and FP16; FP8 and INT8) is pooled: the
        # domestic chips' sheets give one 16-bit figure that data/chips.csv files under both columns.
        # A peak derived from another (Ascend INT8 = 2 x FP16) adds no range of its own: it is left out,
        # so the published 16-bit spread sets the TPP range (2 x FP16 x 8 bits = FP16 x 16 bits).
        cols = [c for c in PEAK_COLUMNS if BIT_LENGTH[c] == bits]
        vals = [[table[(i, c)] for c in cols if (i, c) in table and (i, c) not in derived] for i in ids]
        return np.array([pick(v) if v else np.nan for v in vals], dtype=float)

    tpp_lo = np.asarray(tpp_from_peaks({"bf16_tflops": _pooled(lows, 16, min), "int8_tops": _pooled(lows, 8, min)}),
                        dtype=float)
    tpp_hi = np.asarray(tpp_from_peaks({"bf16_tflops": _pooled(highs, 16, max), "int8_tops": _pooled(highs, 8, max)}),
                        dtype=float)
    area_lo = np.array([lows.get((i, "die_area_mm2"), np.nan) for i in ids])
    area_hi = np.array([highs.get((i, "die_area_mm2"), np.nan) for i in ids])
    pub = published_tpp(root)
    out = pd.DataFrame({
        "id": chips["id"], "name": chips["name"], "vendor": chips["vendor"], "country": chips["country"],
        "tpp": computed, "tpp_precision": precision_of,
        "tpp_published": chips["id"].map(pub).astype(float),
        "tpp_low": tpp_lo, "tpp_high": tpp_hi,
        "die_area_mm2": area,
        "density": pd_used,
        "density_low": np.asarray(performance_density(tpp_lo, area_hi), dtype=float),
        "density_high": np.asarray(performance_density(tpp_hi, area_lo), dtype=float),
        "interconnect_gbps": chips["interconnect_gbps"].to_numpy(dtype=float),
        "hbm_tbps": chips["hbm_tbps"].to_numpy(dtype=float),
    })
    out["tpp_diff_pct"] = 100.0 * (out["tpp"] - out["tpp_published"]) / out["tpp_published"]
    out["oct2022_class"] = classify_oct2022(out["tpp"].to_numpy(), out["interconnect_gbps"].to_numpy())
    out["oct2022_controlled"] = out["oct2022_class"] == OCT2022_CLASSES[0]  # known to be controlled
    out["oct2023_class"] = classify_oct2023(out["tpp"].to_numpy(), out["density"].to_numpy())
    out["oct2023_class_low"] = classify_oct2023(out["tpp_low"].to_numpy(), out["density_low"].to_numpy())
    out["oct2023_class_high"] = classify_oct2023(out["tpp_high"].to_numpy(), out["density_high"].to_numpy())
    out["jan2026_class"] = classify_jan2026(out["tpp"].to_numpy(), out["hbm_tbps"].to_numpy())
    out["jan2026_lane"] = out["jan2026_class"] == JAN2026_CLASSES[0]  # known to be inside
    return out


# Moved to tokenlib.analysis.chip_costs; re-exported so code written before the move keeps working.
from tokenlib.analysis.chip_costs import (  # noqa: E402
    SWING_KEYS as SWING_KEYS, chips_to_match as chips_to_match, cost_breakdown as cost_breakdown,
    cost_ratio_sensitivity as cost_ratio_sensitivity, kwh_per_mtok as kwh_per_mtok,
)
