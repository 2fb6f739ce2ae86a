"""Subsidies and what they act on: compute vouchers (算力券) and power, as discounts on cost per Mtok.

Two levers a city pulls, and the part of the cost each one touches:

* a **compute voucher** pays ``max_share`` of a firm's compute contract, up to ``cap_per_firm`` a year,
  and never more than the programme's ``budget``. For a firm spending ``S`` yuan a year on compute,
  ``voucher = min(max_share x S, cap, budget)`` and the effective discount on its compute bill is
  ``voucher / S``. If only a share ``eligible_share`` of the cost per Mtok is bought as eligible
  compute (the rest being, say, own staff), the discount on cost per Mtok is scaled by it;
* a **power subsidy** cuts the electricity price, so it acts only on the power component of the
  chip-hour cost. :func:`cost_components` splits the kernel's chip-hour cost
  (:func:`tokenlib.model.cost.chip_hour_cost`) into capex, hosting and power by evaluating it with parts
  switched off, so the split always matches the kernel's own formula and assumptions.

Caps and budgets that a programme does not publish are passed as ``None`` (or NaN in arrays) and mean
"not binding". All functions broadcast over numpy arrays; scalars in give floats out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tokenlib.model import cost
from tokenlib.errors import check_number

FloatArray = npt.NDArray[np.float64]

VOUCHER_METRICS = ("voucher_max_share", "voucher_cap_per_firm_cny", "voucher_budget_cny")


def _out(x: FloatArray) -> Any:
    return float(x) if np.ndim(x) == 0 else x


def _limit(name: str, value: Any) -> FloatArray:
    """A cap or budget: None/NaN -> +inf (not published, not binding); otherwise finite and >= 0."""
    if value is None:
        return np.asarray(np.inf)
    arr = np.asarray(value, dtype=float)
    arr = np.where(np.isnan(arr), np.inf, arr)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return arr


def voucher_cny(
    annual_compute_spend_cny: Any, max_share: Any, *, cap_per_firm_cny: Any = None, budget_cny: Any = None,
) -> Any:
    """Voucher a firm receives in a year (CNY): ``min(max_share x spend, cap_per_firm, budget)``."""
    s = check_number("annual_compute_spend_cny", annual_compute_spend_cny)
    share = check_number("max_share", max_share, upper=1.0)
    v = np.minimum(np.minimum(share * s, _limit("cap_per_firm_cny", cap_per_firm_cny)), _limit("budget_cny", budget_cny))
    return _out(np.asarray(v, dtype=float))


def effective_discount(
    annual_compute_spend_cny: Any, max_share: Any, *, cap_per_firm_cny: Any = None, budget_cny: Any = None,
    eligible_share: Any = 1.0,
) -> Any:
    """Discount on cost per Mtok (share, 0-1) from a compute voucher, for a firm of a stated annual spend.

    ``eligible_share`` is the part of the cost per Mtok bought as voucher-eligible compute (1.0 = the firm
    rents all its compute). The voucher is computed on that eligible spend.
    """
    s = check_number("annual_compute_spend_cny", annual_compute_spend_cny, allow_zero=False)
    e = check_number("eligible_share", eligible_share, upper=1.0)
    v = np.asarray(voucher_cny(s * e, max_share, cap_per_firm_cny=cap_per_firm_cny, budget_cny=budget_cny))
    return _out(np.asarray(v / s, dtype=float))


def spend_where_cap_binds_cny(max_share: Any, cap_per_firm_cny: Any) -> Any:
    """Annual compute spend (CNY) above which the per-firm cap, not the share, sets the voucher: cap / share."""
    share = check_number("max_share", max_share, allow_zero=False, upper=1.0)
    cap = _limit("cap_per_firm_cny", cap_per_firm_cny)
    return _out(np.asarray(cap / share, dtype=float))


def apply_discount(cost_per_mtok: Any, discount: Any) -> Any:
    """Cost per Mtok after a discount share (0-1)."""
    c = check_number("cost_per_mtok", cost_per_mtok)
    d = check_number("discount", discount, upper=1.0)
    return _out(np.asarray(c * (1.0 - d), dtype=float))


def subsidised_electricity(price_cny_per_kwh: Any, cut_share: Any) -> Any:
    """Electricity price after a bill cut of ``cut_share`` (e.g. 0.5 for 'cut by up to 50%')."""
    p = check_number("price_cny_per_kwh", price_cny_per_kwh)
    c = check_number("cut_share", cut_share, upper=1.0)
    return _out(np.asarray(p * (1.0 - c), dtype=float))


def unsubsidised_electricity(subsidised_price_cny_per_kwh: Any, cut_share: Any) -> Any:
    """Price before a bill cut of ``cut_share``: ``subsidised / (1 - cut)`` (an upper bound if the cut is 'up to')."""
    p = check_number("subsidised_price_cny_per_kwh", subsidised_price_cny_per_kwh)
    c = check_number("cut_share", cut_share)
    if np.any(c >= 1.0):
        raise ValueError(f"cut_share must be < 1, got {cut_share!r}")
    return _out(np.asarray(p / (1.0 - c), dtype=float))


def voucher_terms(places: pd.DataFrame) -> pd.DataFrame:
    """Voucher terms per place from rows of ``data/places.csv`` (pass the rows you accept as compute vouchers).

    One row per place that has any voucher metric: ``share_min``, ``share_max`` (the published shares of a
    contract; several schemes give a range), ``cap_per_firm_cny`` (the smallest published per-firm cap,
    NaN when none) and ``budget_cny`` (the smallest published programme budget, NaN when none), ``n_rows``.
    """
    df = places[places["metric"].isin(VOUCHER_METRICS) & places["value"].notna()]
    rows = []
    for place, g in df.groupby("place", observed=True, sort=True):
        def pick(metric: str, how: str, g: pd.DataFrame = g) -> float:
            v = g.loc[g["metric"] == metric, "value"].to_numpy(dtype=float)
            return float(getattr(np, how)(v)) if v.size else float("nan")
        rows.append({
            "place": str(place),
            "share_min": pick("voucher_max_share", "min"),
            "share_max": pick("voucher_max_share", "max"),
            "cap_per_firm_cny": pick("voucher_cap_per_firm_cny", "min"),
            "budget_cny": pick("voucher_budget_cny", "min"),
            "n_rows": int(len(g)),
        })
    return pd.DataFrame(rows, columns=["place", "share_min", "share_max", "cap_per_firm_cny", "budget_cny", "n_rows"])


VOUCHER_EXCLUSIONS: tuple[tuple[str, str], ...] = (
    ("training", "training voucher (训力券): pays for training compute, not inference"),
    ("max 1 year", "one-year top-up for early-stage small firms, not the general rate"),
    ("model voucher", "model voucher (模型券), not a compute voucher"),
    ("not a compute voucher", "not a compute voucher"),
)
"""Rows of ``data/places.csv`` that are not an inference compute voucher, by a phrase in their basis, and why.
Rows whose notes start with ``CONFLICT`` (a figure the policy text read does not show) are excluded too."""


def classify_voucher_rows(places: pd.DataFrame) -> pd.DataFrame:
    """The voucher rows of ``places`` with two added columns, the one rule chapters 3 and 4 share:

    ``use`` = ``"compute"`` for an inference compute-voucher term, else the reason it is left out
    (:data:`VOUCHER_EXCLUSIONS`, or a CONFLICT note); ``origin`` = ``"domestic"`` for a term that names
    domestic compute, ``"nvidia"`` for one that names other (non-domestic) compute, ``"any"`` otherwise.
    """
    df = places[places["metric"].isin(VOUCHER_METRICS) & places["value"].notna()].copy()
    b = df["basis"].fillna("").astype(str).str.lower() if "basis" in df else pd.Series("", index=df.index)
    notes = df["notes"].fillna("").astype(str) if "notes" in df else pd.Series("", index=df.index)
    use = pd.Series("compute", index=df.index, dtype=object)
    for phrase, why in VOUCHER_EXCLUSIONS:
        use[(use == "compute") & b.str.contains(phrase, regex=False)] = why
    use[(use == "compute") & notes.str.startswith("CONFLICT")] = "figure not in the policy text read (CONFLICT note)"
    nv = b.str.contains("non-domestic") | b.str.contains("other")
    dom = b.str.contains("domestic") & ~nv
    df["use"] = use
    df["origin"] = np.where(nv, "nvidia", np.where(dom, "domestic", "any"))
    return df


def inference_voucher_terms(places: pd.DataFrame, *, origins: tuple[str, ...] = ("domestic", "nvidia")) -> pd.DataFrame:
    """Inference compute-voucher terms per place and chip origin, by :func:`classify_voucher_rows`.

    Columns: place, origin, share_low, share_high (published shares that apply to the origin), cap_low,
    cap_high (the smallest published per-firm cap of the place; where the place publishes none, the range
    of the caps the other places publish: **unsourced is a range, not infinity**), cap_sourced (bool),
    budget_cny (smallest published programme budget, NaN if none), n_rows. Places with budgets but no
    published share (the western hubs) get no row: their discount cannot be computed.
    """
    df = classify_voucher_rows(places)
    df = df[df["use"] == "compute"]
    shares = df[df["metric"] == "voucher_max_share"]
    caps = df[df["metric"] == "voucher_cap_per_firm_cny"]
    budgets = df[df["metric"] == "voucher_budget_cny"]
    own_cap = caps.groupby("place")["value"].min()
    out = []
    for place in sorted(set(shares["place"])):
        rows = shares[shares["place"] == place]
        if place in own_cap.index:
            lo_cap = hi_cap = float(own_cap[place])
        else:
            others = own_cap.drop(place, errors="ignore")
            lo_cap, hi_cap = (float(others.min()), float(others.max())) if len(others) else (float("inf"), float("inf"))
        bud = budgets.loc[budgets["place"] == place, "value"]
        for origin in origins:
            v = rows.loc[rows["origin"].isin(["any", origin]), "value"].to_numpy(dtype=float)
            if len(v):
                out.append({"place": place, "origin": origin, "share_low": float(v.min()), "share_high": float(v.max()),
                            "cap_low": lo_cap, "cap_high": hi_cap, "cap_sourced": place in own_cap.index,
                            "budget_cny": float(bud.min()) if len(bud) else float("nan"), "n_rows": int(len(v))})
    return pd.DataFrame(out, columns=["place", "origin", "share_low", "share_high", "cap_low", "cap_high", "cap_sourced",
                                      "budget_cny", "n_rows"])


def cost_components(
    chip: Any, *, electricity_cny_per_kwh: Any = None, place: Any = None, currency: str = "CNY",
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
    return {"capex": _out(capex), "hosting": _out(hosting), "power": _out(power), "total": _out(total),
            "power_share": _out(np.asarray(power / total, dtype=float)),
            "rental": bool(rental) if np.ndim(rental) == 0 else rental}


def cost_components_per_mtok(
    model: Any, chip: Any, phase: str, *, batch: Any, context: Any, precision: str = "bf16", n_chips: Any = 1,
    electricity_cny_per_kwh: Any = None, place: Any = None, utilization: Any = None, currency: str = "CNY",
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
    out: dict[str, Any] = {k: _out(np.asarray(comp[k], dtype=float) * scale) for k in ("capex", "hosting", "power")}
    out["total"] = _out(per_mtok)
    out["power_share"] = comp["power_share"]
    out["rental"] = comp["rental"]
    return out


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
