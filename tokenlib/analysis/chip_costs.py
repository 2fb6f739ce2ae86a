"""What a chip's tokens cost, part by part and against another chip, read off the cost kernel.

The one split of the kernel's cost (:func:`tokenlib.model.cost.chip_hour_cost`,
:func:`tokenlib.model.cost.cost_per_mtok`) into capex, hosting and power is :func:`cost_components`: it
evaluates the kernel with parts switched off, so the split always matches the kernel's own formula and
assumptions; :func:`cost_components_per_mtok` scales it to a million tokens and :func:`cost_breakdown`
reports rented chips apart. :func:`chips_to_match` (how many chips of one kind deliver the tokens of
another), :func:`kwh_per_mtok` and :func:`cost_ratio_sensitivity` are comparisons through the kernel.
None of them re-derives a kernel formula.

Units: CNY (or ``currency``) per chip-hour and per million tokens, kWh per million tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tokenlib.arrays import ArrayLike, FloatArray, FloatOrArray, IdLike, scalar_or_array
from tokenlib.model import cost
from tokenlib.model import kernel
from tokenlib.errors import check_choice, check_number

__all__ = ["cost_components", "cost_components_per_mtok", "chips_to_match", "cost_breakdown", "kwh_per_mtok",
           "SWING_KEYS", "cost_ratio_sensitivity"]


# ----------------------------------------------------------------------------- the one cost split


def cost_components(
    chip: IdLike, *, electricity_cny_per_kwh: ArrayLike | None = None, place: ArrayLike | None = None, currency: str = "CNY",
    root: Path | str | None = None, **assumptions: Any,
) -> dict[str, Any]:
    """Split the kernel's chip-hour cost into ``capex``, ``hosting`` and ``power`` (currency per chip-hour).

    Evaluates :func:`tokenlib.model.cost.chip_hour_cost` three times: as given; with electricity at zero; with
    electricity and hosting at zero. So ``capex + hosting + power == total`` exactly as the kernel
    computes it. For a chip with no published price the kernel uses an all-in rental rate: then
    ``capex`` holds the rental and ``power`` and ``hosting`` are zero (``rental`` is True).
    ``assumptions`` are passed on (pue, load_factor, life_years, capex_usd, cny_per_usd...).
    """
    total = np.asarray(cost.chip_hour_cost(chip, electricity_cny_per_kwh=electricity_cny_per_kwh, place=place,
                                           currency=currency, root=root, **assumptions), dtype=float)
    shape = np.shape(total)
    no_power = np.asarray(cost.chip_hour_cost(chip, electricity_cny_per_kwh=np.zeros(shape), currency=currency,
                                              root=root, **assumptions), dtype=float)
    no_power_host_args = {**assumptions, "hosting_usd_per_chip_hour": 0.0}
    capex = np.asarray(cost.chip_hour_cost(chip, electricity_cny_per_kwh=np.zeros(shape), currency=currency,
                                           root=root, **no_power_host_args), dtype=float)
    power = total - no_power
    hosting = no_power - capex
    rental = np.isclose(power, 0.0) & np.isclose(hosting, 0.0)
    return {"capex": scalar_or_array(capex), "hosting": scalar_or_array(hosting), "power": scalar_or_array(power), "total": scalar_or_array(total),
            "power_share": scalar_or_array(np.asarray(power / total, dtype=float)),
            "rental": bool(rental) if np.ndim(rental) == 0 else rental}


def cost_components_per_mtok(
    model: IdLike, chip: IdLike, phase: str, *, batch: ArrayLike, context: ArrayLike, precision: str = "bf16", n_chips: ArrayLike = 1,
    electricity_cny_per_kwh: ArrayLike | None = None, place: ArrayLike | None = None, utilization: ArrayLike | None = None, currency: str = "CNY",
    root: Path | str | None = None, **assumptions: Any,
) -> dict[str, Any]:
    """:func:`cost_components` scaled to cost per million tokens (currency per Mtok), via the kernel.

    ``total`` equals :func:`tokenlib.model.cost.cost_per_mtok` for the same arguments; each component is its
    chip-hour share of it.
    """
    per_mtok = np.asarray(cost.cost_per_mtok(model, chip, phase, batch=batch, context=context, precision=precision,
                                             n_chips=n_chips, electricity_cny_per_kwh=electricity_cny_per_kwh,
                                             place=place, utilization=utilization, currency=currency, root=root,
                                             **assumptions), dtype=float)
    hour_args = {k: v for k, v in assumptions.items() if k not in ("cached_input_cost_fraction", "on_oom")}
    comp = cost_components(chip, electricity_cny_per_kwh=electricity_cny_per_kwh, place=place, currency=currency,
                           root=root, **hour_args)
    scale = per_mtok / np.asarray(comp["total"], dtype=float)
    out: dict[str, Any] = {k: scalar_or_array(np.asarray(comp[k], dtype=float) * scale) for k in ("capex", "hosting", "power")}
    out["total"] = scalar_or_array(per_mtok)
    out["power_share"] = comp["power_share"]
    out["rental"] = comp["rental"]
    return out


# ----------------------------------------------------------------------------- comparisons through the kernel


def chips_to_match(
    model: str, chip: IdLike, reference: str, phase: str, *, batch_per_chip: ArrayLike, context: ArrayLike,
    precision: str = "bf16", n_chips: ArrayLike = 1, calibrated: bool = True, root: Path | str | None = None,
    missing_link: str = "raise",
) -> FloatOrArray:
    """How many ``chip`` deliver the tokens/s of one ``reference`` chip (kernel throughput ratio).

    Both run ``model`` in groups of ``n_chips`` with ``batch_per_chip`` sequences per chip. NaN where
    either does not fit in memory.
    """
    b = check_number("batch_per_chip", batch_per_chip, allow_zero=False)
    n = check_number("n_chips", n_chips, allow_zero=False)
    kw: dict[str, Any] = dict(batch=b * n, context=context, precision=precision, n_chips=n_chips,
                              calibrated=calibrated, on_oom="nan", root=root, missing_link=missing_link)
    ref = np.asarray(kernel.throughput(model, reference, phase, **kw), dtype=float)
    other = np.asarray(kernel.throughput(model, chip, phase, **kw), dtype=float)
    out = ref / other
    return float(out) if np.ndim(out) == 0 else out


def cost_breakdown(
    model: str, chip: IdLike, phase: str, *, batch: ArrayLike, context: ArrayLike, precision: str = "bf16", n_chips: ArrayLike = 1,
    electricity_cny_per_kwh: ArrayLike, utilization: ArrayLike | None = None, capex_usd: ArrayLike | None = None, currency: str = "CNY",
    root: Path | str | None = None,
) -> dict[str, Any]:
    """Split :func:`tokenlib.model.cost.cost_per_mtok` into capex, power and hosting (currency per Mtok).

    The split itself is :func:`cost_components_per_mtok` (each part is the kernel's
    cost with the other inputs switched off); batches that do not fit give NaN. Chips without a price
    are costed by the kernel at its all-in rental rate: their whole cost is reported as ``rental`` and
    the other parts are 0. Returns arrays (or floats) under keys ``total``, ``capex``, ``power``,
    ``hosting``, ``rental``.
    """
    extra: dict[str, Any] = {} if capex_usd is None else {"capex_usd": capex_usd}
    comp = cost_components_per_mtok(
        model, chip, phase, batch=batch, context=context, precision=precision, n_chips=n_chips,
        electricity_cny_per_kwh=electricity_cny_per_kwh, utilization=utilization, currency=currency,
        root=root, on_oom="nan", **extra,
    )
    total = np.asarray(comp["total"], dtype=float)
    rented = np.asarray(comp["rental"], dtype=bool) & np.isfinite(total)
    parts = {
        "total": total,
        "capex": np.where(rented, 0.0, np.asarray(comp["capex"], dtype=float)),
        "power": np.where(rented, 0.0, np.asarray(comp["power"], dtype=float)),
        "hosting": np.where(rented, 0.0, np.asarray(comp["hosting"], dtype=float)),
        "rental": np.where(rented, total, 0.0),
    }
    scalar = all(np.ndim(x) == 0 for x in (chip, batch, context, n_chips))
    return {k: float(v) if scalar else v for k, v in parts.items()}


def kwh_per_mtok(
    model: str, chip: IdLike, phase: str, *, batch: ArrayLike, context: ArrayLike, precision: str = "bf16", n_chips: ArrayLike = 1,
    utilization: ArrayLike | None = None, root: Path | str | None = None,
) -> FloatOrArray:
    """Electricity (kWh at the meter, PUE included) per million tokens, read off the kernel's cost:
    the power part of the cost at 1 CNY/kWh. Chips costed at the rental rate give NaN."""
    parts = cost_breakdown(model, chip, phase, batch=batch, context=context, precision=precision,
                           n_chips=n_chips, electricity_cny_per_kwh=1.0, utilization=utilization, root=root)
    power = np.asarray(parts["power"], dtype=float)
    out = np.where(np.asarray(parts["rental"]) > 0, np.nan, power)
    return float(out) if np.ndim(out) == 0 else out


SWING_KEYS: tuple[str, ...] = ("chip", "reference", "both", "chip_throughput_factor")


def cost_ratio_sensitivity(
    model: str, chip: str, reference: str, phase: str, *, batch_per_chip: float, context: float,
    swings: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]], precision: str = "bf16", n_chips: float = 1,
    electricity_cny_per_kwh: float, root: Path | str | None = None,
) -> pd.DataFrame:
    """One-at-a-time sensitivity of ``cost(chip) / cost(reference)`` per million tokens (the kernel's cost).

    ``swings`` maps an assumption's name to its settings, each ``(label, changes)``; ``changes`` may hold
    ``"chip"``, ``"reference"`` or ``"both"`` (keyword arguments of :func:`tokenlib.model.cost.cost_per_mtok` for
    that side, e.g. ``{"capex_usd": 20000}``) and ``"chip_throughput_factor"`` (the chip's tokens/s times this
    factor, e.g. the kernel's error band). A ratio above 1 means ``reference`` is cheaper per token.

    Returns one row per setting: ``assumption``, ``setting``, ``ratio``, ``base_ratio`` and ``swing`` (max - min
    ratio over the assumption's settings and the base), sorted by swing, largest first.
    """
    b = float(check_number("batch_per_chip", batch_per_chip, allow_zero=False))
    n = float(check_number("n_chips", n_chips, allow_zero=False))
    common: dict[str, Any] = dict(batch=b * n, context=context, precision=precision, n_chips=n,
                                  electricity_cny_per_kwh=electricity_cny_per_kwh, root=root)

    def one(which: str, kw: Mapping[str, Any]) -> float:
        return float(cost.cost_per_mtok(model, which, phase, **{**common, **kw}))

    base = one(chip, {}) / one(reference, {})
    rows = []
    for name, settings in swings.items():
        if not settings:
            raise ValueError(f"swing {name!r} has no settings")
        for label, changes in settings:
            for k in changes:
                check_choice("swing key", k, SWING_KEYS)
            both = dict(changes.get("both", {}))
            factor = float(check_number("chip_throughput_factor", changes.get("chip_throughput_factor", 1.0),
                                        allow_zero=False))
            r = one(chip, {**both, **dict(changes.get("chip", {}))}) / factor / one(
                reference, {**both, **dict(changes.get("reference", {}))})
            rows.append({"assumption": name, "setting": label, "ratio": r, "base_ratio": base})
    out = pd.DataFrame(rows)
    g = out.groupby("assumption")["ratio"]
    swing = {str(k): max(float(hi), base) - min(float(lo), base) for k, hi, lo in zip(g.max().index, g.max(), g.min())}
    out["swing"] = [swing[str(a)] for a in out["assumption"]]
    return out.sort_values(["swing", "assumption"], ascending=[False, True], kind="stable").reset_index(drop=True)


def power_capital_grid(
    model: str, chips: list[str], phase: str, *, reference: str, places: list[str],
    power_bases: tuple[str, ...] = cost.POWER_BASES, waccs: tuple[float, ...] = (0.0, 0.08, 0.12),
    root: Path | str | None = None, **run: Any,
) -> pd.DataFrame:
    """How the power share and the place verdicts move with the power basis and the cost of capital.

    For every power basis (``"chip"``: TDP only; ``"node"``: the system's rated power per chip), cost of capital
    ``wacc`` and chip: the power share of the chip-hour cost at ``reference``, and for each place in ``places``
    the cost edge ``1 - cost at place / cost at reference`` per Mtok, each place charging its own electricity
    price for the chip's origin and its own PUE, at equal utilisation. ``run`` goes to
    :func:`tokenlib.model.cost.cost_per_mtok` (batch, context, precision, n_chips per chip as a dict...).
    One row per (power_basis, wacc, chip, place).
    """
    rows = []
    n_chips = run.pop("n_chips", 1)
    chip_col = np.asarray(chips, dtype=object)[:, None]
    n_col = np.asarray([float(n_chips[c]) if isinstance(n_chips, dict) else float(n_chips) for c in chips])[:, None]
    place_row = np.asarray(places, dtype=object)[None, :]
    for basis in power_bases:
        for wacc in waccs:
            kw = dict(run, power_basis=basis, wacc=wacc, root=root)
            ref = cost_components_per_mtok(model, chip_col, phase, place=reference, n_chips=n_col, **kw)
            at = np.asarray(cost.cost_per_mtok(model, chip_col, phase, place=place_row, n_chips=n_col, **kw), dtype=float)
            share = np.broadcast_to(np.asarray(ref["power_share"], dtype=float), at.shape)
            total = np.broadcast_to(np.asarray(ref["total"], dtype=float), at.shape)
            for i, chip in enumerate(chips):
                for j, place in enumerate(places):
                    rows.append({"power_basis": basis, "wacc": float(wacc), "chip": chip, "place": place,
                                 "power_share": float(share[i, j]), "cost_reference": float(total[i, j]),
                                 "cost_place": float(at[i, j]), "edge": 1.0 - float(at[i, j] / total[i, j])})
    return pd.DataFrame(rows)
