"""Yuan (or dollars) per million tokens, from chip-hour cost and calibrated throughput.

``chip-hour cost = capex x capex multiplier x CRF(wacc, life_years) / 8760 + power + hosting``, where
the capex multiplier depends on what the price in chips.csv buys (``price_basis``): a card price gets the
server multiplier (server, network and storage around a bare card), a per-chip share of a system price only
the cluster-network multiplier (the server is already in the price); ``CRF`` is the capital recovery factor
(``1 / life_years`` when ``wacc`` is 0: straight-line); and
``power = node watts per chip x load factor x PUE x electricity price`` and
``hosting = hosting per kW-month x node kW per chip / 730 h`` (colocation is sold per kW, not per chip). Node
watts per chip are a whole system's rated maximum power shared over its accelerators, from
``data/systems.csv`` (:func:`node_power_w`; chips with no system row get TDP x :func:`node_power_factor`;
``power_basis="chip"`` uses the chip's TDP alone, as the book did before). **Owned or rented, once for the whole book**
(``cost_basis``): a chip with a price (chips.csv or ``capex_usd``) is owned; a chip with none is rented
at an all-in rate (DeepSeek's stated $2/GPU-hour); ``cost_basis="rental"`` rents every chip.
:func:`costing_basis` says which applies, so a figure can label it. With ``place`` given, the
electricity price is the one that place charges the chip (domestic chips get a domestic-chip subsidy
where one exists, :mod:`tokenlib.data.places`) and the PUE is the place's (:func:`tokenlib.data.places.pue`). Then
``cost per Mtok = chip-hour cost / (tokens/s per chip x 3600 x utilisation) x 1e6``, where utilisation is
occupancy, the share of paid chip-hours that serve; its default 1 is DeepSeek's own accounting (nodes out of
service at night do research), so the calibrated throughput, already a production average, is not divided
again.
``phase="cached_input"`` prices cache-hit input tokens as a fixed fraction of prefill cost.

Every assumption is a named parameter whose default sits in :data:`ASSUMPTIONS` with its basis; together they
are one frozen :class:`CostAssumptions` (``cost_per_mtok(..., assumptions=CostAssumptions(wacc=0.1))``), and the
kernel's options one :class:`tokenlib.model.kernel.KernelOptions` (``options=``). The old keywords still work.
``cost_per_mtok(..., tokens_per_s_per_user=20)`` prices output at the largest batch giving users that speed.
Prices are converted with a dated monthly CNY/USD rate from ``data/fx.csv``.

Why this module is long: the chip-hour cost has several sourced bases (owned or rented, node or chip
power, a place's tariff and PUE) whose choice rules sit beside the one formula that uses them, and the typed
assumptions object (:class:`CostAssumptions`) documents each default; the per-token cost itself is short.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from tokenlib.arrays import ArrayLike, FloatArray
from tokenlib.data import fx
from tokenlib.model import kernel
from tokenlib.data import places
from tokenlib.data import specs
from tokenlib.data.loader import load
from tokenlib.errors import (MissingSpecError, check_at_least, check_choice, check_flag, check_fraction, check_number,
                             check_shapes)

Ids = kernel.Ids
PHASES = ("prefill", "cached_input", "decode")
PRICE_BASES = ("card", "system_share")
HOURS_PER_YEAR = 8760.0
D6 = ("https://github.com/deepseek-ai/open-infra-index/blob/3122a25220273cb0806f591e52c4171bd869d8ad/"
      "202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_overview.md")

SYSTEMS_TABLE = "systems"
"""Rated maximum power of whole systems (``data/systems.csv``): node watts per chip, CPUs, switches and optics included."""
FACTOR_SYSTEM = "dgx-h100"
"""The system whose rated power per GPU over its GPU's TDP sets ``node_power_factor`` for chips with no system row."""
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0

ASSUMPTIONS: dict[str, dict[str, Any]] = {
    "life_years": {"value": 5.0, "kind": "assumption",
                   "note": "Amortisation period of the accelerator and its server (straight-line when wacc is 0)."},
    "wacc": {"value": 0.0, "kind": "assumption",
             "note": "Cost of capital per year for the capital recovery factor; 0 = straight-line, no cost of "
             "capital (no sourced rate for Chinese data-centre capital; the chapters' sensitivity figures try 10%)."},
    "cost_basis": {"value": "owned", "kind": "assumption",
                   "note": "owned: chips with a price are owned (capex + power + hosting), chips without one are rented "
                   "at rental_usd_per_chip_hour; rental: every chip is rented at that rate."},
    "power_basis": {"value": "node", "kind": "assumption",
                    "note": "node: power per chip is the system's rated maximum power per accelerator (data/systems.csv, "
                    "else TDP x node_power_factor); chip: the accelerator's TDP alone."},
    "node_power_factor": {"value": f"rated power per GPU / GPU TDP of {FACTOR_SYSTEM} (data/systems.csv)",
                          "kind": "derived",
                          "note": "Applied to chips with no system row in data/systems.csv (an assumption: their servers "
                          "carry the same overhead share as a DGX H100: 10.2 kW / 8 / 700 W = 1.82)."},
    "server_capex_multiplier": {"value": 1.5, "kind": "assumption",
                                "note": "Server, networking and storage capex per chip as a multiple of a card price "
                                "(price_basis=card in chips.csv); not applied to a per-chip share of a system price."},
    "system_share_capex_multiplier": {
        "value": (39_680_000 + 1_728_000 + 2_621_440) / 39_680_000, "kind": "derived",
        "note": "Capex per chip on top of a per-chip share of a server price (price_basis=system_share): the cluster "
                "network the server price lacks. (node price + switches + cables) / node price for a 128-node H100 "
                "cluster: ($39,680,000 + $1,728,000 + $2,621,440) / $39,680,000 = 1.11, from the 'H100 Freakonomics' "
                "spreadsheet (Aug 2024: 'H100 Node Price', 'Switch Price', 'Infiniband Network Connector & Cable'; its "
                "node price already includes the InfiniBand cards). Storage is not included (not sourced).",
        "source": "https://docs.google.com/spreadsheets/d/1Ft3RbeZ-w43kYSiLfYc1vxO41mK5lmJpcPC9GOYHAWc/edit?usp=sharing"},
    "pue": {"value": 1.3, "kind": "assumption",
            "note": "Data-centre power usage effectiveness when no place is given (with a place: tokenlib.data.places.pue)."},
    "load_factor": {"value": 0.7, "kind": "assumption",
                    "note": "Average power draw as a share of the rated power (node or TDP, see power_basis) while serving."},
    "hosting_usd_per_kw_month": {"value": 0.10 * HOURS_PER_MONTH / 1.275, "kind": "assumption",
                                 "note": "Space, staff, maintenance and bandwidth, excluding power, per kW of rated IT power "
                                 "per month, as colocation is sold (per kW, not per chip): charged on the node power per "
                                 "chip (power_basis). The value keeps the book's former $0.10 per chip-hour for an H100 "
                                 "at its DGX H100 share of 1.275 kW ($57.3 per kW-month); not sourced."},
    "utilization": {"value": 1.0, "kind": "assumption",
                    "note": "Occupancy: share of the chip-hours paid for that serve at the computed throughput. 1 = "
                    "DeepSeek's own Day-6 accounting, which charges only nodes in service (226.75 on average; at night "
                    "'we reduce inference nodes and allocate resources to research and training'), and the calibrated "
                    "throughput is already that day's production average. A fleet idle off-peak pays for its peak: "
                    "226.75 / 278 = 0.816 at DeepSeek's swing (tokenlib.model.fleet.DAY6).", "source": D6},
    "rental_usd_per_chip_hour": {"value": 2.0, "kind": "sourced",
                                 "note": "All-in rate used when chips.csv has no price for the chip: DeepSeek's Day-6 "
                                 "assumption 'the leasing cost of one H800 GPU is $2 per hour'.", "source": D6},
    "cached_input_cost_fraction": {"value": 0.1, "kind": "assumption",
                                   "note": "Cost of a cache-hit input token relative to a computed (prefill) one: "
                                   "loading KV from disk, not recomputing it."},
    "electricity_cny_per_kwh": {"value": "median of every sourced place price in data/places.csv", "kind": "derived",
                                "note": "Used when neither place nor electricity_cny_per_kwh is given."},
    "cny_per_usd": {"value": "latest month in data/fx.csv", "kind": "sourced",
                    "note": "Monthly average CNY per USD (see fx.csv sources)."},
}
"""Every cost assumption with its default and basis (``kind``: sourced / derived / assumption)."""


def _a(name: str) -> float:
    return float(ASSUMPTIONS[name]["value"])


COST_BASES = ("owned", "rental")
POWER_BASES = ("node", "chip")


@dataclass(frozen=True)
class CostAssumptions:
    """Every cost assumption of :func:`cost_per_mtok` and :func:`chip_hour_cost` in one frozen object.

    Numeric defaults are those of :data:`ASSUMPTIONS` (with their basis there). ``None`` means "from the data":
    ``electricity_cny_per_kwh`` (the place's price, else the median of places.csv), ``pue`` (the place's PUE,
    else ``ASSUMPTIONS["pue"]``), ``capex_usd`` and ``price_basis`` (chips.csv), ``cny_per_usd`` (the
    ``fx_month`` rate, else the latest in fx.csv). Every field may be an array (it broadcasts).
    """

    utilization: ArrayLike = _a("utilization")
    life_years: ArrayLike = _a("life_years")
    wacc: ArrayLike = _a("wacc")
    cost_basis: str = str(ASSUMPTIONS["cost_basis"]["value"])
    power_basis: str = str(ASSUMPTIONS["power_basis"]["value"])
    load_factor: ArrayLike = _a("load_factor")
    hosting_usd_per_kw_month: ArrayLike = _a("hosting_usd_per_kw_month")
    hosting_usd_per_chip_hour: ArrayLike | None = None
    server_capex_multiplier: ArrayLike = _a("server_capex_multiplier")
    system_share_capex_multiplier: ArrayLike = _a("system_share_capex_multiplier")
    rental_usd_per_chip_hour: ArrayLike = _a("rental_usd_per_chip_hour")
    cached_input_cost_fraction: ArrayLike = _a("cached_input_cost_fraction")
    electricity_cny_per_kwh: ArrayLike | None = None
    pue: ArrayLike | None = None
    capex_usd: ArrayLike | None = None
    price_basis: str | None = None
    cny_per_usd: float | None = None
    fx_month: str | None = None

    @classmethod
    def of(cls, assumptions: CostAssumptions | None = None, **overrides: Any) -> CostAssumptions:
        """``assumptions`` (default: the defaults) with keyword overrides; ``None`` values keep the base's."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown cost assumption(s) {unknown}; valid: {sorted(names)}")
        base = cls() if assumptions is None else assumptions
        if not isinstance(base, CostAssumptions):
            raise TypeError(f"assumptions must be a CostAssumptions, got {base!r}")
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


COST_FIELDS = tuple(f.name for f in fields(CostAssumptions))
KERNEL_FIELDS = tuple(f.name for f in fields(kernel.KernelOptions))


def capital_recovery_factor(wacc: Any, life_years: Any) -> Any:
    """Share of the capex charged per year: ``r / (1 - (1 + r)^-n)``; ``1 / n`` when ``r`` is 0 (straight-line)."""
    r = check_number("wacc", wacc, upper=1.0)
    n = check_number("life_years", life_years, allow_zero=False)
    safe = np.where(r > 0, r, 1.0)
    out = np.where(r > 0, safe / (1.0 - (1.0 + safe) ** (-n)), 1.0 / n)
    return float(out) if np.ndim(out) == 0 else out


def system_power_w(root: Path | str | None = None) -> dict[str, float]:
    """Rated maximum power per accelerator (W) for every chip with a system in ``data/systems.csv``:
    ``max_power_kw x 1000 / n_chips``. Two systems for one chip raise (the book would have to pick one)."""
    df = load(SYSTEMS_TABLE, root)
    dup = sorted(set(df.loc[df["chip_id"].duplicated(), "chip_id"]))
    if dup:
        raise ValueError(f"data/systems.csv gives more than one system for chip {dup}; keep one per chip")
    kw = df["max_power_kw"].to_numpy(dtype=float)
    n = df["n_chips"].to_numpy(dtype=float)
    return {str(c): float(k * 1000.0 / m) for c, k, m in zip(df["chip_id"], kw, n)}


def node_power_factor(root: Path | str | None = None) -> float:
    """Rated power per GPU over the GPU's TDP for :data:`FACTOR_SYSTEM` (the DGX H100: 1,275 W / 700 W = 1.82)."""
    df = load(SYSTEMS_TABLE, root).set_index("id")
    if FACTOR_SYSTEM not in df.index:
        raise ValueError(f"data/systems.csv has no {FACTOR_SYSTEM!r} row, which sets node_power_factor; "
                         f"systems there: {sorted(df.index)}")
    row = df.loc[[FACTOR_SYSTEM]]
    tdp = float(specs.chip(str(row["chip_id"].iloc[0]), root).tdp_w)
    kw = float(row["max_power_kw"].to_numpy(dtype=float)[0])
    return kw * 1000.0 / float(row["n_chips"].to_numpy(dtype=float)[0]) / tdp


def node_power_w(chip: Any, *, power_basis: str | None = None, root: Path | str | None = None) -> Any:
    """Rated power per chip (W): the system rating per accelerator from ``data/systems.csv``, else TDP x
    :func:`node_power_factor` (``power_basis="node"``, the default); the TDP alone with ``power_basis="chip"``."""
    basis = check_choice("power_basis", str(ASSUMPTIONS["power_basis"]["value"]) if power_basis is None else power_basis,
                         POWER_BASES)
    tdp = np.nan_to_num(specs.chip_fields(chip, root)["tdp_w"])
    if basis == "chip":
        return float(tdp) if np.ndim(tdp) == 0 else tdp
    rated = system_power_w(root)
    ids = np.asarray(chip, dtype=object)
    sourced = np.vectorize(lambda c: rated.get(str(c), np.nan), otypes=[float])(ids)
    out = np.where(np.isfinite(sourced), sourced, tdp * node_power_factor(root))
    return float(out) if np.ndim(out) == 0 else out


def costing_basis(chip: str, *, capex_usd: ArrayLike | None = None, cost_basis: str | None = None,
                  root: Path | str | None = None) -> str:
    """``"owned"`` or ``"rental"``: how the book costs ``chip`` (the one rule, stated once; see the module doc)."""
    basis = check_choice("cost_basis", str(ASSUMPTIONS["cost_basis"]["value"]) if cost_basis is None else cost_basis,
                         COST_BASES)
    if basis == "rental":
        return "rental"
    price = specs.chip(chip, root).price_usd if capex_usd is None else float(np.asarray(capex_usd, dtype=float))
    return "owned" if np.isfinite(price) else "rental"


def _origin(chip: Any, root: Path | str | None) -> Any:
    """``"domestic"`` for chips designed in China (chips.csv country CN), else ``"nvidia"`` (per element)."""
    ids = np.asarray(chip, dtype=object)
    out = np.vectorize(lambda c: "domestic" if specs.chip(str(c), root).country == "CN" else "nvidia",
                       otypes=[object])(ids)
    return str(out) if np.ndim(out) == 0 else out


def default_electricity_cny_per_kwh(root: Path | str | None = None) -> float:
    """Median of all sourced place electricity prices (CNY/kWh): the default when no place is given."""
    df = places._rows(root)
    if df.empty:
        raise ValueError("data/places.csv has no electricity_cny_per_kwh rows; pass electricity_cny_per_kwh")
    return float(np.median(df["value"].to_numpy(dtype=float)))


def _electricity(place: Ids | None, electricity_cny_per_kwh: ArrayLike | None, root: Path | str | None,
                 chip: Ids | None = None) -> FloatArray:
    """The electricity price: given, or the place's price for each chip's origin, or the default median."""
    if electricity_cny_per_kwh is not None:
        if place is not None:
            raise ValueError("give place or electricity_cny_per_kwh, not both")
        return check_number("electricity_cny_per_kwh", electricity_cny_per_kwh)
    if place is None:
        return np.asarray(default_electricity_cny_per_kwh(root))
    origin = np.asarray("nvidia" if chip is None else _origin(chip, root), dtype=object)
    p, o = np.broadcast_arrays(np.asarray(place, dtype=object), origin)
    cache: dict[tuple[str, str], float] = {}

    def price(pl: str, og: str) -> float:
        if (pl, og) not in cache:
            cache[(pl, og)] = places.electricity_cny_per_kwh(str(pl), root, origin=str(og))
        return cache[(pl, og)]
    result: FloatArray = np.vectorize(price, otypes=[float])(p, o)
    return result


def _place_pue(place: Ids, root: Path | str | None) -> FloatArray:
    """The place's PUE (:func:`tokenlib.data.places.pue`); the default ``pue`` where its region has no PUE rows."""
    out: FloatArray = np.vectorize(lambda pl: places.pue_or(str(pl), _a("pue"), root),
                                   otypes=[float])(np.asarray(place, dtype=object))
    return out


def chip_hour_cost(
    chip: Ids, *, electricity_cny_per_kwh: ArrayLike | None = None, place: Ids | None = None, currency: str = "CNY",
    capex_usd: ArrayLike | None = None, life_years: ArrayLike | None = None, pue: ArrayLike | None = None, load_factor: ArrayLike | None = None,
    hosting_usd_per_chip_hour: ArrayLike | None = None, server_capex_multiplier: ArrayLike | None = None,
    rental_usd_per_chip_hour: ArrayLike | None = None, cny_per_usd: float | None = None, fx_month: str | None = None,
    wacc: ArrayLike | None = None, cost_basis: str | None = None, power_basis: str | None = None,
    root: Path | str | None = None, system_share_capex_multiplier: ArrayLike | None = None, price_basis: str | None = None,
    hosting_usd_per_kw_month: ArrayLike | None = None,
    assumptions: CostAssumptions | None = None,
) -> Any:
    """Cost of one chip for one hour (capex recovery + power + hosting), in ``currency``.

    ``capex_usd`` overrides chips.csv ``price_usd``; chips with neither, or every chip with
    ``cost_basis="rental"``, use the rental rate (all-in). With ``place`` and no ``pue``, the place's PUE.
    The capex multiplier follows the price's basis: ``server_capex_multiplier`` for a card price,
    ``system_share_capex_multiplier`` for a per-chip share of a system price. ``price_basis``
    (``"card"`` or ``"system_share"``) says what ``capex_usd`` is; without it an override keeps the
    chip's own basis from chips.csv, or counts as a card price where the chip has none. A chip whose
    chips.csv price has no recorded basis raises. Hosting is charged per kW of the chip's rated power
    (``hosting_usd_per_kw_month`` x node kW / 730 h), as colocation is sold; ``hosting_usd_per_chip_hour``,
    where given, overrides it with a flat rate per chip. ``assumptions``: a :class:`CostAssumptions` (the
    keywords, where given, override its fields).
    """
    if assumptions is not None:
        a = CostAssumptions.of(assumptions, electricity_cny_per_kwh=electricity_cny_per_kwh, capex_usd=capex_usd,
                               life_years=life_years, pue=pue, load_factor=load_factor,
                               hosting_usd_per_chip_hour=hosting_usd_per_chip_hour,
                               hosting_usd_per_kw_month=hosting_usd_per_kw_month,
                               server_capex_multiplier=server_capex_multiplier,
                               rental_usd_per_chip_hour=rental_usd_per_chip_hour, cny_per_usd=cny_per_usd,
                               fx_month=fx_month, wacc=wacc, cost_basis=cost_basis, power_basis=power_basis,
                               system_share_capex_multiplier=system_share_capex_multiplier, price_basis=price_basis)
        return chip_hour_cost(chip, place=place, currency=currency, root=root, **_hour_kw(a))
    check_choice("currency", currency, ("CNY", "USD"))
    rate = fx.cny_per_usd(fx_month, root)[0] if cny_per_usd is None else float(
        check_number("cny_per_usd", cny_per_usd, allow_zero=False))
    life = check_number("life_years", _a("life_years") if life_years is None else life_years, allow_zero=False)
    if pue is None and place is not None and electricity_cny_per_kwh is None:
        p = _place_pue(place, root)
    else:
        p = check_at_least("pue", _a("pue") if pue is None else pue, 1.0)
    r = check_number("wacc", _a("wacc") if wacc is None else wacc, upper=1.0)
    basis = check_choice("cost_basis", str(ASSUMPTIONS["cost_basis"]["value"]) if cost_basis is None else cost_basis,
                         COST_BASES)
    lf = check_fraction("load_factor", _a("load_factor") if load_factor is None else load_factor)
    mult = check_number("server_capex_multiplier",
                        _a("server_capex_multiplier") if server_capex_multiplier is None else server_capex_multiplier)
    sys_mult = check_number("system_share_capex_multiplier", _a("system_share_capex_multiplier")
                            if system_share_capex_multiplier is None else system_share_capex_multiplier)
    rent = check_number("rental_usd_per_chip_hour",
                        _a("rental_usd_per_chip_hour") if rental_usd_per_chip_hour is None else rental_usd_per_chip_hour)
    elec = _electricity(place, electricity_cny_per_kwh, root, chip)
    ch = specs.chip_fields(chip, root)
    price = ch["price_usd"] if capex_usd is None else np.broadcast_to(check_number("capex_usd", capex_usd), ch["price_usd"].shape)
    owned_chip = np.isfinite(price)
    if np.any(owned_chip & ~(np.isfinite(ch["tdp_w"]) & (ch["tdp_w"] > 0))):
        shape = np.broadcast_shapes(np.shape(chip), np.shape(price))
        no_tdp = np.broadcast_to(owned_chip & ~np.isfinite(ch["tdp_w"]), shape)
        raise MissingSpecError("chip", [str(x) for x in np.broadcast_to(np.asarray(chip), shape)[no_tdp].ravel()],
                               "tdp_w", "chips", "Its power cost needs the TDP.")
    watts = np.asarray(node_power_w(chip, power_basis=power_basis, root=root), dtype=float)
    if hosting_usd_per_chip_hour is not None:  # a flat rate per chip overrides the per-kW rule
        host = check_number("hosting_usd_per_chip_hour", hosting_usd_per_chip_hour)
    else:
        per_kw = check_number("hosting_usd_per_kw_month", _a("hosting_usd_per_kw_month")
                              if hosting_usd_per_kw_month is None else hosting_usd_per_kw_month)
        host = per_kw * watts / 1000.0 / HOURS_PER_MONTH
    crf = np.asarray(capital_recovery_factor(r, life), dtype=float)
    if price_basis is None:
        system = ch["price_is_system_share"]
    else:
        check_choice("price_basis", price_basis, PRICE_BASES)
        system = np.full(np.shape(ch["price_is_system_share"]), 1.0 if price_basis == "system_share" else 0.0)
    if capex_usd is not None:  # an override price on a chip with no recorded basis is taken as a card price
        system = np.where(np.isfinite(system), system, 0.0)
    missing = np.isfinite(price) & ~np.isfinite(system)
    if np.any(missing):
        bad = sorted({str(c) for c in np.broadcast_to(np.asarray(chip), np.shape(missing))[missing]})
        raise ValueError(f"chip {bad} has a price but no price_basis in chips.csv; give price_basis, one of {list(PRICE_BASES)}")
    capex_mult = np.where(np.nan_to_num(system) > 0, sys_mult, mult)
    owned = (price * capex_mult * crf / HOURS_PER_YEAR + host) * rate + watts / 1000.0 * lf * p * elec
    if basis == "rental":
        price = np.full(np.shape(price), np.nan)
    cost_cny = np.where(np.isfinite(price), owned, rent * rate + 0.0 * elec * p)
    out = cost_cny if currency == "CNY" else cost_cny / rate
    return float(out) if np.ndim(out) == 0 else out


def _hour_kw(a: CostAssumptions) -> dict[str, Any]:
    """The chip-hour keywords of an assumptions object."""
    return {f: getattr(a, f) for f in COST_FIELDS if f not in ("utilization", "cached_input_cost_fraction")}


def cost_per_mtok(
    model: Ids, chip: Ids, phase: str, *, batch: ArrayLike | None = None, context: ArrayLike, precision: str = "bf16",
    n_chips: ArrayLike = 1, place: Ids | None = None, currency: str = "CNY", root: Path | str | None = None,
    tokens_per_s_per_user: ArrayLike | None = None, assumptions: CostAssumptions | None = None,
    options: kernel.KernelOptions | None = None, **legacy: Any,
) -> Any:
    """Cost per million tokens (``currency`` per Mtok) for input (``prefill``), ``cached_input`` or output (``decode``).

    The scenario: model, chip, phase, ``batch`` (or, for decode, ``tokens_per_s_per_user``: the cost at the
    largest batch that still gives each user that speed, :func:`tokenlib.model.kernel.batch_for_speed`),
    context, precision, n_chips, place. The assumptions: ``assumptions`` (a :class:`CostAssumptions`, defaults
    in :data:`ASSUMPTIONS`) and ``options`` (a :class:`tokenlib.model.kernel.KernelOptions`: calibrated,
    speculative, attention, expert_parallel, kv_reads, on_oom...). Every field of either may also be given as
    a keyword (``utilization=0.6``, ``kv_reads=...``, ``calibrated=False``), as before these objects existed;
    keywords override the objects' fields. All arguments broadcast (model, chip and place may be arrays of
    ids). Scalars in give a float. Batches that do not fit raise (or give NaN with ``on_oom="nan"``), as in
    :func:`tokenlib.model.kernel.throughput`.
    """
    check_choice("phase", phase, PHASES)
    unknown = sorted(set(legacy) - set(COST_FIELDS) - set(KERNEL_FIELDS))
    if unknown:
        raise TypeError(f"cost_per_mtok got unknown keyword(s) {unknown}; cost assumptions: {sorted(COST_FIELDS)}; "
                        f"kernel options: {sorted(KERNEL_FIELDS)}")
    a = CostAssumptions.of(assumptions, **{k: v for k, v in legacy.items() if k in COST_FIELDS})
    o = kernel.KernelOptions.of(options, **{k: v for k, v in legacy.items() if k in KERNEL_FIELDS})
    util = check_fraction("utilization", a.utilization)
    frac = check_fraction("cached_input_cost_fraction", a.cached_input_cost_fraction, closed_low=True)
    check_shapes(model=np.asarray(model), chip=np.asarray(chip), batch=np.asarray(batch), context=np.asarray(context),
                 n_chips=np.asarray(n_chips), place=np.asarray(place), utilization=util)
    kphase = "decode" if phase == "decode" else "prefill"
    if tokens_per_s_per_user is not None and phase != "decode":
        raise ValueError(f"tokens_per_s_per_user prices output tokens at a speed; phase {phase!r} needs batch")
    tps = kernel.throughput(model, chip, kphase, batch=batch, context=context, precision=precision,
                            n_chips=n_chips, root=root, tokens_per_s_per_user=tokens_per_s_per_user, options=o)
    hour = chip_hour_cost(chip, place=place, currency=currency, root=root, **_hour_kw(a))
    out = np.asarray(hour) / (np.asarray(tps) * (3600.0 * util)) * 1e6
    if phase == "cached_input":
        out = out * frac
    return float(out) if np.ndim(out) == 0 else out


def assumptions() -> dict[str, dict[str, Any]]:
    """Kernel and cost assumptions together (what the CLI prints)."""
    return {**{f"kernel.{k}": v for k, v in kernel.ASSUMPTIONS.items()}, **{f"cost.{k}": v for k, v in ASSUMPTIONS.items()}}
