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

import numpy as np
import pandas as pd

from tokenlib.arrays import ArrayLike, FloatArray, FloatOrArray, scalar_or_array
from tokenlib.errors import check_number

VOUCHER_METRICS = ("voucher_max_share", "voucher_cap_per_firm_cny", "voucher_budget_cny")


def _limit(name: str, value: ArrayLike | None) -> FloatArray:
    """A cap or budget: None/NaN -> +inf (not published, not binding); otherwise finite and >= 0."""
    if value is None:
        return np.asarray(np.inf)
    arr = np.asarray(value, dtype=float)
    arr = np.where(np.isnan(arr), np.inf, arr)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return arr


def voucher_cny(
    annual_compute_spend_cny: ArrayLike, max_share: ArrayLike, *, cap_per_firm_cny: ArrayLike | None = None, budget_cny: ArrayLike | None = None,
) -> FloatOrArray:
    """Voucher a firm receives in a year (CNY): ``min(max_share x spend, cap_per_firm, budget)``."""
    s = check_number("annual_compute_spend_cny", annual_compute_spend_cny)
    share = check_number("max_share", max_share, upper=1.0)
    v = np.minimum(np.minimum(share * s, _limit("cap_per_firm_cny", cap_per_firm_cny)), _limit("budget_cny", budget_cny))
    return scalar_or_array(np.asarray(v, dtype=float))


def effective_discount(
    annual_compute_spend_cny: ArrayLike, max_share: ArrayLike, *, cap_per_firm_cny: ArrayLike | None = None, budget_cny: ArrayLike | None = None,
    eligible_share: ArrayLike = 1.0,
) -> FloatOrArray:
    """Discount on cost per Mtok (share, 0-1) from a compute voucher, for a firm of a stated annual spend.

    ``eligible_share`` is the part of the cost per Mtok bought as voucher-eligible compute (1.0 = the firm
    rents all its compute). The voucher is computed on that eligible spend.
    """
    s = check_number("annual_compute_spend_cny", annual_compute_spend_cny, allow_zero=False)
    e = check_number("eligible_share", eligible_share, upper=1.0)
    v = np.asarray(voucher_cny(s * e, max_share, cap_per_firm_cny=cap_per_firm_cny, budget_cny=budget_cny))
    return scalar_or_array(np.asarray(v / s, dtype=float))


def spend_where_cap_binds_cny(max_share: ArrayLike, cap_per_firm_cny: ArrayLike) -> FloatOrArray:
    """Annual compute spend (CNY) above which the per-firm cap, not the share, sets the voucher: cap / share."""
    share = check_number("max_share", max_share, allow_zero=False, upper=1.0)
    cap = _limit("cap_per_firm_cny", cap_per_firm_cny)
    return scalar_or_array(np.asarray(cap / share, dtype=float))


def apply_discount(cost_per_mtok: ArrayLike, discount: ArrayLike) -> FloatOrArray:
    """Cost per Mtok after a discount share (0-1)."""
    c = check_number("cost_per_mtok", cost_per_mtok)
    d = check_number("discount", discount, upper=1.0)
    return scalar_or_array(np.asarray(c * (1.0 - d), dtype=float))


def subsidised_electricity(price_cny_per_kwh: ArrayLike, cut_share: ArrayLike) -> FloatOrArray:
    """Electricity price after a bill cut of ``cut_share`` (e.g. 0.5 for 'cut by up to 50%')."""
    p = check_number("price_cny_per_kwh", price_cny_per_kwh)
    c = check_number("cut_share", cut_share, upper=1.0)
    return scalar_or_array(np.asarray(p * (1.0 - c), dtype=float))


def unsubsidised_electricity(subsidised_price_cny_per_kwh: ArrayLike, cut_share: ArrayLike) -> FloatOrArray:
    """Price before a bill cut of ``cut_share``: ``subsidised / (1 - cut)`` (an upper bound if the cut is 'up to')."""
    p = check_number("subsidised_price_cny_per_kwh", subsidised_price_cny_per_kwh)
    c = check_number("cut_share", cut_share)
    if np.any(c >= 1.0):
        raise ValueError(f"cut_share must be < 1, got {cut_share!r}")
    return scalar_or_array(np.asarray(p / (1.0 - c), dtype=float))


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


def voucher_terms(places: pd.DataFrame, *, origins: tuple[str, ...] = ("domestic", "nvidia")) -> pd.DataFrame:
    """Inference compute-voucher terms per place and chip origin, by :func:`classify_voucher_rows`.

    Columns: place, origin, share_low, share_high (published shares that apply to the origin), cap_low,
    cap_high (the smallest published per-firm cap of the place; where the place publishes none, the range
    of the caps the other places publish: **unsourced is a range, not infinity**), cap_sourced (bool),
    cap_cny (the midpoint of cap_low and cap_high, for point values), budget_cny (smallest published
    programme budget, NaN if none), n_rows. Places with budgets but no published share (the western hubs)
    get no row: their discount cannot be computed.
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
                            "cap_cny": (lo_cap + hi_cap) / 2.0,
                            "budget_cny": float(bud.min()) if len(bud) else float("nan"), "n_rows": int(len(v))})
    return pd.DataFrame(out, columns=["place", "origin", "share_low", "share_high", "cap_low", "cap_high", "cap_sourced",
                                      "cap_cny", "budget_cny", "n_rows"])


inference_voucher_terms = voucher_terms
"""The name chapters 3 and 5 used before the rule moved here: the same function."""


def place_voucher_terms(places: pd.DataFrame) -> pd.DataFrame:
    """:func:`voucher_terms` per place, over its origins: share_min, share_max (lowest and highest share that
    applies to any origin), cap_low, cap_high, cap_sourced, budget_cny. The table chapter 3 prints."""
    per_origin = voucher_terms(places)
    return per_origin.groupby("place").agg(
        share_min=("share_low", "min"), share_max=("share_high", "max"), cap_low=("cap_low", "min"),
        cap_high=("cap_high", "max"), cap_sourced=("cap_sourced", "all"), budget_cny=("budget_cny", "min"),
    ).reset_index()


def voucher_discount(max_share: ArrayLike, take_up: ArrayLike, cap_cny: ArrayLike,
                     annual_spend_cny: ArrayLike) -> FloatOrArray:
    """Effective discount on a firm's compute bill from a compute voucher (算力券), at a take-up.

    ``min(take_up x max_share x spend, cap) / spend``; ``cap_cny`` NaN = no cap stated. Shares in [0, 1].
    The voucher arithmetic itself is :func:`effective_discount`; take-up scales the share.
    """
    m = check_number("max_share", max_share, upper=1.0)
    t = check_number("take_up", take_up, upper=1.0)
    return effective_discount(annual_spend_cny, m * t, cap_per_firm_cny=cap_cny)


# Moved to tokenlib.analysis.chip_costs (the one cost split); re-exported so older code keeps working.
from tokenlib.analysis.chip_costs import (  # noqa: E402
    cost_components as cost_components, cost_components_per_mtok as cost_components_per_mtok,
    power_capital_grid as power_capital_grid,
)
