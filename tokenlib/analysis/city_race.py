"""The city race with uncertainty: a Monte Carlo over the cost equation of :mod:`tokenlib.analysis.city_cost`.

The Monte Carlo (:func:`monte_carlo`) draws, independently where they are independent: each site's
electricity price (a domestic chip pays the lower of the subsidised and unsubsidised price where a
subsidy names it; elsewhere both origins pay the same drawn tariff), each site's PUE, each site's
utilisation, each chip's price, **one** kernel error per chip (shared by its phases and models, centred on
the kernel's measured bias, wider for a chip with no held-out measurement), and each registration's
voucher take-up, share and cap. It keeps the cost of each origin's chips apart, so vouchers (which follow
registration) and power (which follows the site) combine after the draw. 10^5 draws take a few seconds.

:func:`sensitivity` moves one assumption at a time; :func:`rank_stability` ranks places on a composite
of capacity and cost per draw.

Units: CNY, CNY/kWh, tokens/s per chip, CNY per million tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tokenlib.arrays import FloatArray
from tokenlib.data import places as _places
from tokenlib.model import cost as _cost
from tokenlib.analysis import subsidies as subsidy
from tokenlib.analysis.city_cost import ORIGINS, Serving, _tps, blend, chip_throughputs, fleet_cost_parts
from tokenlib.errors import check_choice, check_number

__all__ = ["MonteCarloResult", "monte_carlo", "sensitivity", "rank_stability", "RangeSpec"]

RangeSpec = tuple[float, float] | Mapping[str, tuple[float, float]]
"""One (low, high) range for every place, or a mapping place -> (low, high)."""


@dataclass
class MonteCarloResult:
    """Draws of the blended cost per Mtok, kept per chip origin: ``part[origin]`` has shape
    (draws, sites, mixes, models) and sums to the resource cost (no vouchers, :attr:`cost`).
    ``discount[origin]`` (draws, registrations) is the voucher a firm registered in each place gets."""

    places: list[str]
    mixes: list[str]
    models: list[str]
    part: dict[str, FloatArray] = field(repr=False)
    registrations: list[str] = field(default_factory=list)
    discount: dict[str, FloatArray] = field(default_factory=dict, repr=False)
    utilization: FloatArray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    draws: dict[str, FloatArray] = field(default_factory=dict, repr=False)

    @property
    def cost(self) -> FloatArray:
        """Resource cost per Mtok (no vouchers), shape (draws, sites, mixes, models)."""
        out: FloatArray = sum(self.part.values())  # type: ignore[assignment]
        return out

    def private_cost(self, registration: str) -> FloatArray:
        """A firm's bill per Mtok if registered in ``registration`` (its vouchers) with servers in each site."""
        r = self.registrations.index(check_choice("registration", registration, self.registrations))
        out: FloatArray = sum(p * (1.0 - self.discount[o][:, r, None, None, None]) for o, p in self.part.items())  # type: ignore[assignment]
        return out

    def voucher_cost(self, *, anywhere: bool) -> FloatArray:
        """A firm's bill per Mtok for each registration and site, shape (draws, registrations, sites, mixes, models).

        ``anywhere=True``: a voucher pays for compute wherever the firm's servers sit; ``False``: only for
        compute in the city of registration (elsewhere the firm pays the resource cost)."""
        out = np.stack([self.private_cost(r) for r in self.registrations], axis=1)
        if not anywhere:
            mask = np.array([[r == s for s in self.places] for r in self.registrations])
            out = np.where(mask[None, :, :, None, None], out, self.cost[:, None])
        return out

    def voucher_winners(self, *, anywhere: bool, model: int = 0) -> pd.DataFrame:
        """For a voucher-claiming firm (each draw: its cheapest registration, site and mix), how often each
        site gives the lowest bill (role ``site``) and, with ``anywhere``, each registration (role
        ``registration``). Columns: role, place, p."""
        best = self.voucher_cost(anywhere=anywhere)[:, :, :, :, model].min(axis=3)  # draws x regs x sites
        idx = np.argmin(best.reshape(best.shape[0], -1), axis=1)
        reg, site = np.unravel_index(idx, best.shape[1:])
        rows = [{"role": "site", "place": p, "p": float(np.mean(site == i))} for i, p in enumerate(self.places)]
        if anywhere:
            rows += [{"role": "registration", "place": p, "p": float(np.mean(reg == i))}
                     for i, p in enumerate(self.registrations)]
        return pd.DataFrame(rows)

    def pairwise(self, reference: str, *, model: int = 0, utilization_ref: float) -> pd.DataFrame:
        """Each site against ``reference`` (best mix each, no vouchers): :meth:`edge` for that one site."""
        return pd.DataFrame([{"place": p, **self.edge([p], reference, model=model, utilization_ref=utilization_ref)}
                             for p in self.places if p != reference])

    def quantiles(self, qs: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95), cost: FloatArray | None = None) -> pd.DataFrame:
        """Cost quantiles (CNY/Mtok) per place, mix and model (of :attr:`cost` unless ``cost`` is given)."""
        c = self.cost if cost is None else cost
        q = np.quantile(c, qs, axis=0)
        rows = []
        for i, p in enumerate(self.places):
            for j, x in enumerate(self.mixes):
                for k, m in enumerate(self.models):
                    rows.append({"place": p, "mix": x, "model": m,
                                 **{f"q{int(round(v * 100)):02d}": float(q[a, i, j, k]) for a, v in enumerate(qs)}})
        return pd.DataFrame(rows)

    def p_cheapest(self, cost: FloatArray | None = None) -> pd.DataFrame:
        """Probability each site is cheapest, per mix and model, and with each site on its cheapest mix ("best mix")."""
        c0 = self.cost if cost is None else cost
        rows = []
        n = c0.shape[0]
        for k, m in enumerate(self.models):
            for j, x in enumerate([*self.mixes, "best mix"]):
                c = c0[:, :, :, k].min(axis=2) if x == "best mix" else c0[:, :, j, k]
                win = np.bincount(np.argmin(c, axis=1), minlength=len(self.places)) / n
                rows += [{"model": m, "mix": x, "place": p, "p_cheapest": float(win[i])}
                         for i, p in enumerate(self.places)]
        return pd.DataFrame(rows)

    def best_mix_share(self) -> pd.DataFrame:
        """Share of draws in which each mix is the cheapest, per place and model."""
        rows = []
        n = self.cost.shape[0]
        c = self.cost
        for k, m in enumerate(self.models):
            best = np.argmin(c[:, :, :, k], axis=2)
            for i, p in enumerate(self.places):
                cnt = np.bincount(best[:, i], minlength=len(self.mixes)) / n
                rows += [{"model": m, "place": p, "mix": x, "p_best": float(cnt[j])} for j, x in enumerate(self.mixes)]
        return pd.DataFrame(rows)

    def edge(self, group: Sequence[str], reference: str, *, model: int = 0, utilization_ref: float) -> dict[str, float]:
        """The cheapest site of ``group`` against ``reference``, each on its best mix, no vouchers.

        ``p_group_cheaper``: share of draws where the group's best site beats the reference at the drawn
        utilisations; ``edge_equal_util``: median cost edge ``1 - group / reference`` with both sites at the
        same utilisation (the place's own advantage); ``breakeven_gap_pts``: the utilisation gap (points) that
        cancels that edge at ``utilization_ref`` for the reference: ``100 x u_ref x edge``.
        """
        gi = [self.places.index(check_choice("place", g, self.places)) for g in group]
        ri = self.places.index(check_choice("place", reference, self.places))
        c = self.cost[:, :, :, model].min(axis=2)
        per_hour = c * self.utilization  # cost at full utilisation: what the site itself contributes
        g_now, r_now = c[:, gi].min(axis=1), c[:, ri]
        g_eq, r_eq = per_hour[:, gi].min(axis=1), per_hour[:, ri]
        e = 1.0 - g_eq / r_eq
        return {"p_group_cheaper": float(np.mean(g_now < r_now)), "edge_equal_util": float(np.median(e)),
                "edge_equal_util_p05": float(np.quantile(e, 0.05)), "edge_equal_util_p95": float(np.quantile(e, 0.95)),
                "edge_at_drawn_util": float(np.median(1.0 - g_now / r_now)),
                "breakeven_gap_pts": float(100.0 * utilization_ref * np.median(e))}


def _range_for(spec: RangeSpec, place: str, what: str) -> tuple[float, float]:
    """``spec`` is one (low, high) for every place or a mapping place -> (low, high)."""
    r = spec[place] if isinstance(spec, Mapping) else spec
    lo, hi = float(r[0]), float(r[1])
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise ValueError(f"{what} range for {place!r} must be finite with low <= high, got {r!r}")
    return lo, hi


def monte_carlo(
    *, n: int, models: Sequence[str], chips: Mapping[str, str], serving: Mapping[str, Serving],
    mixes: Mapping[str, float], electricity: pd.DataFrame, vouchers: pd.DataFrame,
    price_usd: Mapping[str, tuple[float, float]], utilization: RangeSpec, take_up: tuple[float, float],
    annual_spend_cny: float, kernel_errors: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float],
    pue: RangeSpec | None = None, seed: int = 0, hour_kwargs: Mapping[str, Any] | None = None,
) -> MonteCarloResult:
    """Draw every uncertain input ``n`` times and evaluate the equation for all sites x mixes x models.

    Independent draws: electricity per site ~ U(low, high) of ``electricity`` (Nvidia); a domestic chip pays
    the same draw, or ``min(U(sub_low, sub_high), that draw)`` where a subsidy names domestic chips; PUE per
    site ~ U(``pue[site]``) (default :func:`tokenlib.data.places.pue_range`); utilisation per site ~
    U(``utilization``, one range or a mapping site -> range); chip price per origin ~ U(price_usd[origin]);
    one throughput multiplier per chip ~ LogNormal(-ln bias, sigma) from ``kernel_errors[origin]`` (keys
    ``bias``, ``sigma``: :func:`tokenlib.analysis.city_cost.kernel_error`), shared by its phases and models; per registration (the
    places of ``vouchers``): take-up ~ U(take_up), share ~ U(share_low, share_high), cap ~ U(cap_low,
    cap_high), capped per firm at ``annual_spend_cny``. ``weights`` (prefill, cached_input, decode) blend the
    phases. ``hour_kwargs`` go to :func:`tokenlib.model.cost.chip_hour_cost` (wacc, life_years, power_basis...).
    Sites are the places of ``electricity`` with a price for every origin and a PUE.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    origins = list(chips)
    for o in origins:
        check_choice("origin", o, ORIGINS)
    ok = electricity.groupby("place")["origin"].apply(lambda s: set(origins) | {"nvidia"} <= set(s))
    places = sorted(str(p) for p in ok[ok].index)
    if pue is None:
        pue = {p: _places.pue_range(p) for p in places}
    mix_names, shares = list(mixes), np.array([float(mixes[x]) for x in mixes])
    S = len(places)
    draws: dict[str, FloatArray] = {}
    e = electricity.set_index(["place", "origin"])
    nv = e.xs("nvidia", level="origin").loc[places]
    elec = {"nvidia": rng.uniform(nv["low"].to_numpy(float), nv["high"].to_numpy(float), size=(n, S))}
    dm = e.xs("domestic", level="origin").loc[places] if "domestic" in origins else None
    if dm is not None:
        sub = dm["subsidised"].to_numpy(bool)
        lo = np.where(sub, dm["sub_low"].to_numpy(float), 0.0)
        hi = np.where(sub, dm["sub_high"].to_numpy(float), 0.0)
        sub_draw = rng.uniform(lo, hi, size=(n, S))
        elec["domestic"] = np.where(sub[None, :], np.minimum(sub_draw, elec["nvidia"]), elec["nvidia"])
    for o in origins:
        draws[f"electricity_{o}"] = elec[o]
    pue_lo, pue_hi = zip(*(_range_for(pue, p, "pue") for p in places))
    pue_d = rng.uniform(np.array(pue_lo), np.array(pue_hi), size=(n, S))
    u_lo, u_hi = zip(*(_range_for(utilization, p, "utilization") for p in places))
    if min(u_lo) <= 0 or max(u_hi) > 1:
        raise ValueError(f"utilization ranges must lie in (0, 1], got {utilization!r}")
    util = rng.uniform(np.array(u_lo), np.array(u_hi), size=(n, S))
    draws["pue"], draws["utilization"] = pue_d, util
    hk = dict(hour_kwargs or {})
    hour, mult = {}, {}
    for o in origins:
        price = rng.uniform(*price_usd[o], size=(n, 1))
        draws[f"price_{o}"] = price[:, 0]
        chip_ids = np.full((n, 1), chips[o])
        hour[o] = np.asarray(_cost.chip_hour_cost(chip_ids, electricity_cny_per_kwh=elec[o], capex_usd=price, pue=pue_d,
                                                  **hk), dtype=float)
        ke = kernel_errors[o]
        bias = float(check_number("bias", ke["bias"], allow_zero=False))
        sigma = float(check_number("sigma", ke["sigma"]))
        mult[o] = np.exp(-np.log(bias) + sigma * rng.standard_normal((n, 1, 1)))
        draws[f"tps_multiplier_{o}"] = mult[o][:, 0, 0]
    regs = sorted(str(p) for p in vouchers["place"].unique())
    take = rng.uniform(*take_up, size=(n, len(regs)))
    draws["take_up"] = take
    disc: dict[str, FloatArray] = {}
    for o in origins:
        v = vouchers[vouchers["origin"] == o].set_index("place").reindex(regs)
        lo_s = np.nan_to_num(v["share_low"].to_numpy(dtype=float))
        hi_s = np.nan_to_num(v["share_high"].to_numpy(dtype=float))
        share = rng.uniform(lo_s, hi_s, size=(n, len(regs)))
        cap_lo = np.nan_to_num(v["cap_low"].to_numpy(dtype=float), nan=0.0)
        cap_hi = np.nan_to_num(v["cap_high"].to_numpy(dtype=float), nan=0.0)
        cap = rng.uniform(np.minimum(cap_lo, 1e15), np.minimum(cap_hi, 1e15), size=(n, len(regs)))
        disc[o] = np.asarray(subsidy.voucher_discount(share, take, cap, annual_spend_cny), dtype=float)
    tps_table = chip_throughputs(models, chips, serving)
    frac = float(_cost.ASSUMPTIONS["cached_input_cost_fraction"]["value"])
    part = {o: np.empty((n, S, len(mix_names), len(models))) for o in origins}
    s = shares[None, None, :]
    u3 = util[:, :, None]
    for k, m in enumerate(models):
        per: dict[str, dict[str, FloatArray]] = {o: {} for o in origins}
        for phase in ("prefill", "decode"):
            t = {o: _tps(tps_table, m, o, phase) * mult[o] for o in origins}
            td = t.get("domestic", 0.0 * t[origins[0]])
            tn = t.get("nvidia", 0.0 * t[origins[0]])
            hd = hour["domestic"][:, :, None] if "domestic" in origins else 0.0
            hn = hour["nvidia"][:, :, None] if "nvidia" in origins else 0.0
            part_d, part_n = fleet_cost_parts(hd, hn, td, tn, s, u3)
            if "domestic" in origins:
                per["domestic"][phase] = part_d
            if "nvidia" in origins:
                per["nvidia"][phase] = part_n
        for o in origins:
            per[o]["cached_input"] = per[o]["prefill"] * frac
            part[o][:, :, :, k] = blend(per[o], weights)
    return MonteCarloResult(places=places, mixes=mix_names, models=list(models), part=part, registrations=regs,
                            discount=disc, utilization=util, draws=draws)


def sensitivity(run: Callable[..., dict[str, float]], base: Mapping[str, Any],
                variants: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]]) -> pd.DataFrame:
    """One-at-a-time sensitivity: ``run(**base)`` and ``run(**{**base, **change})`` for each variant.

    ``variants`` maps an assumption's name to its (label, change) pairs (typically a low and a high end).
    ``run`` returns named metrics. Rows: assumption, label, metric, value, base, delta (value - base).
    """
    b = run(**base)
    rows = []
    for name, changes in variants.items():
        for label, change in changes:
            got = run(**{**base, **change})
            rows += [{"assumption": name, "label": label, "metric": k, "value": float(got[k]), "base": float(b[k]),
                      "delta": float(got[k] - b[k])} for k in b]
    return pd.DataFrame(rows, columns=["assumption", "label", "metric", "value", "base", "delta"])


def rank_stability(cost_draws: FloatArray, places: Sequence[str], capacity: Mapping[str, float],
                   weights: Sequence[float]) -> pd.DataFrame:
    """Composite index = w x tokens score + (1 - w) x cost score, ranked per draw, for each weight ``w``.

    tokens score = ln(capacity / max capacity); cost score = ln(min cost / cost) per draw (both <= 0, 0 = best).
    ``cost_draws`` has shape (draws, places). Places without a capacity are left out. Returns, per weight
    and place, the median rank (1 = best) and the probability of rank 1.
    """
    keep = [i for i, p in enumerate(places) if p in capacity and np.isfinite(capacity[p])]
    names = [places[i] for i in keep]
    c = np.asarray(cost_draws, dtype=float)[:, keep]
    cap = np.array([capacity[p] for p in names], dtype=float)
    tok = np.log(cap / cap.max())[None, :]
    cst = np.log(c.min(axis=1, keepdims=True) / c)
    rows = []
    for w in weights:
        wv = float(check_number("weight", w, upper=1.0))
        score = wv * tok + (1.0 - wv) * cst
        rank = (-score).argsort(axis=1).argsort(axis=1) + 1
        for i, p in enumerate(names):
            rows.append({"weight_tokens": wv, "place": p, "median_rank": float(np.median(rank[:, i])),
                         "p_first": float(np.mean(rank[:, i] == 1))})
    return pd.DataFrame(rows)
