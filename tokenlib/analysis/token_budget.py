"""The national token budget: chips needed for a daily token volume, and tokens a chip supply could serve.

Everything here calls only the public kernel and cost API (:func:`tokenlib.model.kernel.throughput`,
:func:`tokenlib.model.cost.chip_hour_cost`, :func:`tokenlib.model.calibrate.validate`), so the numbers move when
the kernel's calibration or the cost assumptions change.

Units and definitions:

* **volume** ``D``: tokens per day (all kinds), split by a *workload mix* into cache-miss input
  ``D (1 - o)(1 - h)``, cache-hit input ``D (1 - o) h`` and output ``D o`` (``o`` = output share of all
  tokens, ``h`` = cache-hit share of input tokens; both assumptions).
* **chip-seconds per token** (seconds of one chip, fully busy, per token of the mix):
  ``s = (1 - o)(1 - h) / P + (1 - o) h f / P + o / R`` where ``P`` is prefill (input) tokens/s per
  chip, ``R`` decode (output) tokens/s per chip at the stated per-user speed, and ``f`` the cost of a
  cache-hit token relative to a computed one (as :mod:`tokenlib.model.cost` prices cached input).
* **capacity** of one chip: ``86,400 / s`` tokens per day when busy all day. A fleet at
  *utilisation* ``u`` (share of its chip-time spent serving at that rate) serves ``u`` times that.
* **required chips** for ``D``: ``D s / (86,400 u)``; **implied utilisation** of a supply of ``N``
  chips: ``D s / (86,400 N)`` (above 1: the supply cannot serve ``D`` at the stated speeds).
* **power**: chips x TDP x load factor x PUE (W, as :func:`tokenlib.model.cost.chip_hour_cost` counts it);
  MW = W / 1e6; TWh/yr = MW x 8,760 / 1e6.
* The kernel's own error: predicted / measured tokens/s ratios of every published deployment
  (:func:`tokenlib.model.calibrate.validate`), resampled per draw and phase; true = predicted / ratio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tokenlib.arrays import FloatArray
from tokenlib.data import specs
from tokenlib.model import cost
from tokenlib.model import kernel
from tokenlib.errors import check_choice, check_number

SECONDS_PER_DAY = 86_400.0
HOURS_PER_YEAR = 8_760.0
ASSUMPTION_NAMES = ("speed_tps", "utilization", "output_share", "cache_hit_share", "dense_share",
                    "cached_cost_fraction", "ascend_910c_share", "pue", "load_factor")
"""Names of the Monte Carlo assumptions (each a (low, high) range, drawn uniformly)."""


@dataclass(frozen=True)
class Layout:
    """How one chip kind serves a model: weight precision, group sizes, prefill batch, context (tokens)."""

    precision: str
    decode_chips: float
    prefill_chips: float
    prefill_batch: float
    context: float

    def __post_init__(self) -> None:
        # the kernel's precision names (W8A8 is int8); not fp4, which the fleet's chips have no dense peak for
        object.__setattr__(self, "precision", check_choice(
            "precision", specs.precision_id(self.precision), [p for p in specs.PRECISIONS if p != "fp4"]))
        for name in ("decode_chips", "prefill_chips", "prefill_batch", "context"):
            check_number(name, getattr(self, name), allow_zero=False)


@dataclass(frozen=True)
class Curve:
    """Kernel throughput of one (model, chip, layout): decode tokens/s per chip vs per-user speed, and prefill."""

    model: str
    chip: str
    speed: FloatArray  # per-user decode speed, tokens/s per sequence (ascending)
    decode_tps: FloatArray  # output tokens/s per chip at that speed
    prefill_tps: float  # input tokens/s per chip

    def decode_at(self, speed: Any) -> FloatArray:
        """Output tokens/s per chip at the largest batch whose per-user speed is >= ``speed``; NaN if unreachable."""
        s = np.asarray(speed, dtype=float)
        if self.speed.size == 0:
            return np.full(s.shape, np.nan)
        out = np.interp(s, self.speed, self.decode_tps)
        result: FloatArray = np.where(s <= self.speed[-1], out, np.nan)
        return result


def speed_curve(model: str, chip: str, layout: Layout, batches: Sequence[float] | None = None,
                missing_link: str = "scale_out") -> Curve:
    """Decode throughput over a batch grid (batches that do not fit are dropped) and prefill throughput.

    Per-user speed = decode tokens/s per chip x decode chips / batch (tokens/s per sequence).
    A chip with no published scale-up link figure (Cambricon's MLU370-X8 in chips.csv) is given the
    scale-out network inside its node (``missing_link="scale_out"``, as chapter 2 does; the chapter
    says so); ``missing_link="raise"`` refuses instead.
    """
    grid = np.unique(np.round(np.geomspace(1, 131_072, 120))) if batches is None else np.asarray(batches, dtype=float)
    tps = np.asarray(kernel.throughput(model, chip, "decode", batch=grid, context=layout.context,
                                       precision=layout.precision, n_chips=layout.decode_chips, on_oom="nan",
                                       missing_link=missing_link),
                     dtype=float)
    ok = np.isfinite(tps) & (tps > 0)
    speed = tps[ok] * layout.decode_chips / grid[ok]
    order = np.argsort(speed)
    prefill = float(kernel.throughput(model, chip, "prefill", batch=layout.prefill_batch, context=layout.context,
                                      precision=layout.precision, n_chips=layout.prefill_chips, on_oom="nan",
                                      missing_link=missing_link))
    return Curve(model=model, chip=chip, speed=speed[order], decode_tps=tps[ok][order], prefill_tps=prefill)


def error_ratios(validation: pd.DataFrame) -> dict[str, FloatArray]:
    """Calibrated / measured tokens/s ratios by phase from :func:`tokenlib.model.calibrate.validate` output."""
    need = {"phase", "ratio"}
    if not need <= set(validation.columns):
        raise ValueError(f"validation table needs columns {sorted(need)}, got {sorted(validation.columns)}")
    out = {str(p): g["ratio"].to_numpy(dtype=float) for p, g in validation.groupby("phase")}
    for p in kernel.PHASES:
        if p not in out or out[p].size == 0:
            raise ValueError(f"validation table has no {p!r} rows to measure the kernel's error")
    return out


def chip_seconds_per_token(prefill_tps: Any, decode_tps: Any, output_share: Any, cache_hit_share: Any,
                           cached_cost_fraction: Any) -> FloatArray:
    """Seconds of one fully busy chip per token of the mix (see module doc). Broadcasts."""
    o = check_number("output_share", output_share, upper=1.0)
    h = check_number("cache_hit_share", cache_hit_share, upper=1.0)
    f = check_number("cached_cost_fraction", cached_cost_fraction, upper=1.0)
    p = np.asarray(prefill_tps, dtype=float)
    r = np.asarray(decode_tps, dtype=float)
    result: FloatArray = (1.0 - o) * (1.0 - h) / p + (1.0 - o) * h * f / p + o / r
    return result


def split_volume(tokens_per_day: float, output_share: float, cache_hit_share: float) -> dict[str, float]:
    """Daily tokens split into ``input_uncached``, ``cached_input`` and ``output`` (tokens/day)."""
    d = float(check_number("tokens_per_day", tokens_per_day))
    o = float(check_number("output_share", output_share, upper=1.0))
    h = float(check_number("cache_hit_share", cache_hit_share, upper=1.0))
    return {"input_uncached": d * (1 - o) * (1 - h), "cached_input": d * (1 - o) * h, "output": d * o}


@dataclass
class Draws:
    """Monte Carlo draws: the assumptions and, per chip, tokens/day one fully busy chip serves."""

    assumptions: dict[str, FloatArray]
    capacity: dict[str, FloatArray]  # chip id -> tokens/day per chip at 100% busy, one value per draw
    n: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _uniform(rng: np.random.Generator, lo_hi: Sequence[float], n: int, name: str) -> FloatArray:
    if len(lo_hi) != 2:
        raise ValueError(f"assumption {name!r} must be a (low, high) pair, got {lo_hi!r}")
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise ValueError(f"assumption {name!r}: need finite low <= high, got {lo_hi!r}")
    return rng.uniform(lo, hi, n)


def capacity(curves: Mapping[tuple[str, str], Curve], chips: Sequence[str], moe_model: str, dense_model: str,
             values: Mapping[str, FloatArray], err_prefill: FloatArray, err_decode: FloatArray) -> dict[str, FloatArray]:
    """Tokens/day one fully busy chip serves, per chip, for per-draw assumption ``values`` and kernel-error ratios.

    The volume is served ``dense_share`` on ``dense_model`` and the rest on ``moe_model`` (token-weighted,
    so chip-seconds per token add).
    """
    out: dict[str, FloatArray] = {}
    for chip in chips:
        secs = np.zeros_like(values["speed_tps"])
        for model, w in ((moe_model, 1.0 - values["dense_share"]), (dense_model, values["dense_share"])):
            c = curves[(model, chip)]
            s = chip_seconds_per_token(c.prefill_tps / err_prefill, c.decode_at(values["speed_tps"]) / err_decode,
                                       values["output_share"], values["cache_hit_share"], values["cached_cost_fraction"])
            secs = secs + w * s
        out[chip] = SECONDS_PER_DAY / secs
    return out


def simulate(curves: Mapping[tuple[str, str], Curve], chips: Sequence[str], *, moe_model: str, dense_model: str,
             ranges: Mapping[str, Sequence[float]], ratios: Mapping[str, FloatArray], n_draws: int = 20_000,
             seed: int = 0) -> Draws:
    """Monte Carlo: draw every assumption in ``ranges`` (uniform) and the kernel error (resampled ratios)."""
    missing = sorted(set(ASSUMPTION_NAMES) - set(ranges))
    if missing:
        raise ValueError(f"ranges is missing {missing}; give a (low, high) pair for each of {list(ASSUMPTION_NAMES)}")
    unknown = sorted(set(ranges) - set(ASSUMPTION_NAMES))
    if unknown:
        raise ValueError(f"unknown assumptions {unknown}; valid: {list(ASSUMPTION_NAMES)}")
    n = int(check_number("n_draws", n_draws, allow_zero=False))
    rng = np.random.default_rng(seed)
    vals = {k: _uniform(rng, ranges[k], n, k) for k in ASSUMPTION_NAMES}
    ep = rng.choice(np.asarray(ratios["prefill"], dtype=float), n)
    ed = rng.choice(np.asarray(ratios["decode"], dtype=float), n)
    vals["err_prefill"], vals["err_decode"] = ep, ed
    cap = capacity(curves, chips, moe_model, dense_model, vals, ep, ed)
    return Draws(assumptions=vals, capacity=cap, n=n)


def required_chips(tokens_per_day: Any, capacity_per_chip: Any, utilization: Any) -> FloatArray:
    """Chips needed to serve ``tokens_per_day`` at ``utilization`` (share of chip-time serving)."""
    u = check_number("utilization", utilization, allow_zero=False, upper=1.0)
    result: FloatArray = np.asarray(tokens_per_day, dtype=float) / (np.asarray(capacity_per_chip, dtype=float) * u)
    return result


def implied_utilization(tokens_per_day: Any, supply_capacity: Any) -> FloatArray:
    """Share of a supply's chip-time that serving ``tokens_per_day`` takes (> 1: it cannot)."""
    result: FloatArray = np.asarray(tokens_per_day, dtype=float) / np.asarray(supply_capacity, dtype=float)
    return result


def power_mw(chips: Any, tdp_w: Any, load_factor: Any, pue: Any) -> FloatArray:
    """Facility power in MW: chips x TDP (W) x load factor x PUE / 1e6."""
    result: FloatArray = (np.asarray(chips, dtype=float) * np.asarray(tdp_w, dtype=float)
                          * np.asarray(load_factor, dtype=float) * np.asarray(pue, dtype=float) / 1e6)
    return result


def twh_per_year(mw: Any) -> FloatArray:
    """Energy in TWh a year of a constant load of ``mw`` megawatts (x 8,760 h / 1e6)."""
    result: FloatArray = np.asarray(mw, dtype=float) * HOURS_PER_YEAR / 1e6
    return result


def daily_cost_cny(chips: Any, chip: str, **cost_kw: Any) -> FloatArray:
    """Yuan a day for ``chips`` chips of kind ``chip`` at :func:`tokenlib.model.cost.chip_hour_cost` (CNY/h x 24)."""
    hour = float(cost.chip_hour_cost(chip, currency="CNY", **cost_kw))
    result: FloatArray = np.asarray(chips, dtype=float) * 24.0 * hour
    return result


CONVERTIBLE_COUNTS = ("packaged_chips", "cards", "dies")


def supply_capacity(ledger: pd.DataFrame, cap: Mapping[str, FloatArray], ascend_910c_share: FloatArray,
                    *, ascend_b: str = "ascend-910b", ascend_c: str = "ascend-910c") -> tuple[pd.DataFrame, FloatArray]:
    """Tokens/day (fully busy) each ledger row's chips could serve, one column per draw.

    Conversion: a row with ``chip_id`` counts that chip (dies of a one-die chip = chips); a Huawei row
    without ``chip_id`` is a mix: packaged chips ``N ((1 - s) C_910B + s C_910C)``, dies
    ``N ((1 - s) C_910B + s C_910C / 2)`` with ``s`` = the 910C share (a 910C packages two dies);
    rows counted in performance-equivalents or with no known mix are not converted (``reason`` says why).
    Returns (rows with ``converted`` and ``reason``, array rows x draws; NaN where not converted).
    """
    need = {"id", "vendor", "chip_id", "counted", "value"}
    if not need <= set(ledger.columns):
        raise ValueError(f"ledger needs columns {sorted(need)}, got {sorted(ledger.columns)}")
    s = np.asarray(ascend_910c_share, dtype=float)
    out = np.full((len(ledger), s.size), np.nan)
    reasons: list[str] = []
    for i, row in enumerate(ledger.to_dict("records")):
        n = float(row["value"])
        chip = "" if pd.isna(row["chip_id"]) else str(row["chip_id"]).strip()
        counted = str(row["counted"])
        if counted not in CONVERTIBLE_COUNTS:
            reasons.append(f"counted in {counted}: no such chip in chips.csv")
            continue
        if chip:
            if chip not in cap:
                raise ValueError(f"ledger row {row['id']!r}: chip {chip!r} has no capacity; simulated: {sorted(cap)}")
            per = cap[chip] / 2.0 if (counted == "dies" and chip == ascend_c) else cap[chip]
            out[i] = n * per
            reasons.append("")
        elif str(row["vendor"]) == "huawei":
            c_die = cap[ascend_c] / 2.0 if counted == "dies" else cap[ascend_c]
            out[i] = n * ((1.0 - s) * cap[ascend_b] + s * c_die)
            reasons.append("")
        else:
            reasons.append("mix of chips unknown")
    rows = ledger.copy()
    rows["converted"] = [r == "" for r in reasons]
    rows["reason"] = reasons
    return rows, out


def quantiles(x: Any, qs: Sequence[float] = (0.05, 0.5, 0.95)) -> list[float]:
    """Quantiles of the finite values of ``x`` (NaN list if none)."""
    a = np.asarray(x, dtype=float).ravel()
    a = a[np.isfinite(a)]
    if a.size == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.quantile(a, qs)]


def one_at_a_time(curves: Mapping[tuple[str, str], Curve], chip: str, *, moe_model: str, dense_model: str,
                  ranges: Mapping[str, Sequence[float]], ratios: Mapping[str, FloatArray],
                  tokens_per_day: float) -> pd.DataFrame:
    """Sensitivity of the required fleet of ``chip``: each assumption at its low and high end, the others at
    their mid-range, the kernel error at its median ratio (and, as one more row, at its 5th/95th percentile).

    Columns: assumption, low, high, chips_at_low, chips_at_high, swing (|high - low| chips), sorted by swing.
    """
    mid = {k: np.array([0.5 * (float(ranges[k][0]) + float(ranges[k][1]))]) for k in ASSUMPTION_NAMES}
    ep = np.array([float(np.median(ratios["prefill"]))])
    ed = np.array([float(np.median(ratios["decode"]))])

    def fleet(vals: Mapping[str, FloatArray], e_p: FloatArray, e_d: FloatArray) -> float:
        c = capacity(curves, [chip], moe_model, dense_model, vals, e_p, e_d)[chip]
        return float(required_chips(tokens_per_day, c, vals["utilization"])[0])

    rows = []
    for k in ASSUMPTION_NAMES:
        if k in ("pue", "load_factor", "ascend_910c_share"):
            continue  # they do not change the fleet of one chip kind
        lo, hi = float(ranges[k][0]), float(ranges[k][1])
        at = [fleet({**mid, k: np.array([v])}, ep, ed) for v in (lo, hi)]
        rows.append({"assumption": k, "low": lo, "high": hi, "chips_at_low": at[0], "chips_at_high": at[1]})
    qlo = [float(np.quantile(ratios[p], 0.05)) for p in ("prefill", "decode")]
    qhi = [float(np.quantile(ratios[p], 0.95)) for p in ("prefill", "decode")]
    at = [fleet(mid, np.array([q[0]]), np.array([q[1]])) for q in (qlo, qhi)]
    rows.append({"assumption": "kernel_error", "low": qlo[1], "high": qhi[1], "chips_at_low": at[0], "chips_at_high": at[1]})
    df = pd.DataFrame(rows)
    df["swing"] = (df["chips_at_high"] - df["chips_at_low"]).abs()
    return df.sort_values("swing", ascending=False).reset_index(drop=True)


def national_volume(usage: pd.DataFrame) -> pd.Series:
    """National daily tokens by date (tokens/day) from ``data/usage.csv`` (largest figure per date)."""
    d = usage[(usage["subject"] == "national") & (usage["metric"] == "daily_tokens")]
    if d.empty:
        raise ValueError("usage table has no national daily_tokens rows")
    s: pd.Series = d.groupby("date")["value"].max().sort_index()
    return s


def combined_capacity(rows: pd.DataFrame, cap_matrix: FloatArray, ids: Sequence[str]) -> FloatArray:
    """Sum of the capacities (tokens/day per draw) of ledger rows ``ids``, as returned by :func:`supply_capacity`.

    Raises naming the id when it is not in the ledger or its row could not be converted to tokens.
    """
    index = {str(i): k for k, i in enumerate(rows["id"])}
    total = np.zeros(cap_matrix.shape[1])
    for i in ids:
        if i not in index:
            raise ValueError(f"unknown ledger row {i!r}; valid: {sorted(index)}")
        k = index[i]
        if not bool(rows["converted"].iloc[k]):
            raise ValueError(f"ledger row {i!r} is not converted to tokens: {rows['reason'].iloc[k]}")
        total = total + cap_matrix[k]
    return total


def domestic_share_needed(tokens_per_day: Any, nvidia_capacity: Any, utilization: Any) -> FloatArray:
    """Share of ``tokens_per_day`` left for non-Nvidia chips when the Nvidia fleet (fully busy capacity
    ``nvidia_capacity``, tokens/day) serves at ``utilization``: ``clip(1 - capacity x u / D, 0, 1)``."""
    u = check_number("utilization", utilization, allow_zero=False, upper=1.0)
    d = np.asarray(check_number("tokens_per_day", tokens_per_day, allow_zero=False), dtype=float)
    result: FloatArray = np.clip(1.0 - np.asarray(nvidia_capacity, dtype=float) * u / d, 0.0, 1.0)
    return result


VERDICTS = ("inconsistent", "consistent", "undecided")


def consistency(implied_util: Any, max_utilization: float, p: float = 0.95) -> str:
    """``inconsistent`` if the implied utilisation exceeds ``max_utilization`` in at least share ``p`` of
    the draws (no reasonable assumption lets the supply serve the volume), ``consistent`` if it is below
    in at least ``p``, else ``undecided``."""
    m = float(check_number("max_utilization", max_utilization, allow_zero=False))
    q = float(check_number("p", p, allow_zero=False, upper=1.0))
    a = np.asarray(implied_util, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        raise ValueError("implied_util has no finite draws")
    over = float(np.mean(a > m))
    if over >= q:
        return VERDICTS[0]
    if 1.0 - over >= q:
        return VERDICTS[1]
    return VERDICTS[2]
