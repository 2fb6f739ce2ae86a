"""The in-browser what-if of the city cost (chapter 5's sliders): a Vega expression and its Python twin.

:func:`vega_cost_expr` writes :func:`tokenlib.analysis.city_cost.fleet_cost_per_mtok` (with
:func:`tokenlib.analysis.city_cost.chip_hour_cost_closed`) as a Vega expression over slider params; the
book-wide constants (:func:`whatif_constants`) are the cost kernel's sourced defaults. :func:`whatif_cost`
computes the same in Python, so a test can check the two agree term by term.
"""

from __future__ import annotations

from collections.abc import Mapping

from tokenlib.data import fx
from tokenlib.model import cost as _cost
from tokenlib.analysis.city_cost import chip_hour_cost_closed, fleet_cost_per_mtok

__all__ = ["WHATIF_FIELDS", "whatif_constants", "whatif_cost", "vega_cost_expr"]


WHATIF_FIELDS = ("tps_d", "tps_n", "price_n", "watts_d", "watts_n", "frac")
"""Per-row constants the what-if chart carries (throughputs, Nvidia price, rated W per chip, phase cost fraction)."""


def whatif_constants() -> dict[str, float]:
    """Kernel cost defaults the what-if uses (FX rate, life, cost of capital, server multiplier, hosting, PUE, load)."""
    a = _cost.ASSUMPTIONS
    return {"fx": float(fx.cny_per_usd()[0]), "life": float(a["life_years"]["value"]), "wacc": float(a["wacc"]["value"]),
            "mult": float(a["server_capex_multiplier"]["value"]), "host": float(a["hosting_usd_per_kw_month"]["value"]),
            "pue": float(a["pue"]["value"]), "load": float(a["load_factor"]["value"])}


def whatif_cost(*, electricity: float, utilization: float, price_domestic_usd: float, domestic_share: float,
                tps_d: float, tps_n: float, price_n: float, watts_d: float, watts_n: float, frac: float = 1.0,
                constants: Mapping[str, float] | None = None) -> float:
    """The what-if's cost per Mtok (CNY) in Python, term for term what :func:`vega_cost_expr` computes."""
    k = dict(whatif_constants() if constants is None else constants)
    kw = dict(cny_per_usd=k["fx"], life_years=k["life"], server_capex_multiplier=k["mult"],
              hosting_usd_per_kw_month=k["host"], pue=k["pue"], load_factor=k["load"], wacc=k.get("wacc", 0.0))
    hd = chip_hour_cost_closed(price_domestic_usd, watts_d, electricity, **kw)
    hn = chip_hour_cost_closed(price_n, watts_n, electricity, **kw)
    return float(fleet_cost_per_mtok(hd, hn, tps_d, tps_n, domestic_share, utilization)) * frac


def vega_cost_expr(*, electricity: str, utilization: str, price_domestic: str, domestic_share: str,
                   constants: Mapping[str, float] | None = None) -> str:
    """Vega expression for the what-if cost per Mtok; argument values are the names of the Vega params.

    Row constants come from ``datum`` (:data:`WHATIF_FIELDS`); book-wide constants are inlined (the capital
    recovery factor as one number).
    """
    k = dict(whatif_constants() if constants is None else constants)
    e, u, pd_, s = electricity, utilization, price_domestic, domestic_share
    crf = float(_cost.capital_recovery_factor(k.get("wacc", 0.0), k["life"]))
    amort = f"({k['mult']!r} * {crf!r} / {_cost.HOURS_PER_YEAR!r})"
    power = f"({k['load']!r} * {k['pue']!r} / 1000)"
    host = f"({k['host']!r} / 1000 / {_cost.HOURS_PER_MONTH!r})"
    hd = f"(({pd_} * {amort} + datum.watts_d * {host}) * {k['fx']!r} + datum.watts_d * {power} * {e})"
    hn = f"((datum.price_n * {amort} + datum.watts_n * {host}) * {k['fx']!r} + datum.watts_n * {power} * {e})"
    return (f"({s} * {hd} + (1 - {s}) * {hn}) / (({s} * datum.tps_d + (1 - {s}) * datum.tps_n) * 3600 * {u})"
            f" * 1000000 * datum.frac")
