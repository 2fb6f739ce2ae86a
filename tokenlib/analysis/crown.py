"""The article's closing equation, written down and solved with uncertainty (chapter 4).

"The city that solves that equation — maximum tokens, minimum cost, domestic chips, zero dependency —
wears the crown." For a *site* (where the servers sit: its electricity price, PUE and the utilisation a
fleet there reaches), a *registration* (where the firm is registered: its compute vouchers), a *chip
mix* (share of domestic chips by count: all-Nvidia 0, mixed, all-domestic 1) and a *model*, this module
gives:

* **cost** per million tokens (CNY/Mtok), for input (prefill), cached input and output (decode), and a
  blend weighted by a traffic mix; without vouchers (the resource cost of making a token) and with them
  (a firm's private bill);
* **tokens** per MW of facility power (output tokens/s per MW; node power x PUE);
* **domestic share** of the tokens (the "domestic chips" and, as far as this book can measure it,
  "zero dependency" terms).

The closed form, per chip ``c`` (``d`` domestic, ``n`` Nvidia)::

    H_c  = (price_c x server_mult x CRF(wacc, life) / 8760 + hosting_usd) x cny_per_usd
           + node_W_c / 1000 x load_factor x PUE_site x electricity_site,c       # CNY per chip-hour
    cost = (s H_d (1 - v_d,reg) + (1 - s) H_n (1 - v_n,reg))
           / ((s T_d + (1 - s) T_n) x 3600 x utilisation_site) x 1e6              # CNY per Mtok

with ``s`` the domestic share by chip count, ``T_c`` tokens/s per chip from the kernel and ``v_c,reg`` the
voucher discount on the compute bill where the firm is registered. ``H_c`` is exactly
:func:`tokenlib.model.cost.chip_hour_cost` (a test checks it); :func:`chip_hour_cost_closed` restates it as a
pure function because the in-browser what-if (:func:`vega_cost_expr`) must mirror it term by term.

The Monte Carlo (:func:`monte_carlo`) draws, independently where they are independent: each site's
electricity price (a domestic chip pays the lower of the subsidised and unsubsidised price where a
subsidy names it; elsewhere both origins pay the same drawn tariff), each site's PUE, each site's
utilisation, each chip's price, **one** kernel error per chip (shared by its phases and models, centred on
the kernel's measured bias, wider for a chip with no held-out measurement), and each registration's
voucher take-up, share and cap. It keeps the cost of each origin's chips apart, so vouchers (which follow
registration) and power (which follows the site) combine after the draw. 10^5 draws take a few seconds.

Units: CNY, USD, CNY/kWh, W, tokens/s per chip, CNY per million tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tokenlib.model import cost as _cost
from tokenlib.data import fx
from tokenlib.model import kernel
from tokenlib.data import places as _places
from tokenlib.data import specs
from tokenlib.analysis import subsidies as subsidy
from tokenlib.errors import check_choice, check_number

FloatArray = npt.NDArray[np.float64]

ORIGINS = ("domestic", "nvidia")
"""Chip origins: ``domestic`` = designed in China (chips.csv country CN), ``nvidia`` = the US chip."""

MAD_TO_SIGMA = 0.6744897501960817
"""Median absolute deviation of a standard normal: sigma = median |x| / 0.6745."""


# ----------------------------------------------------------------------------- the closed form


def chip_hour_cost_closed(
    price_usd: Any, power_w: Any, electricity_cny_per_kwh: Any, *, cny_per_usd: float, life_years: float,
    server_capex_multiplier: float, hosting_usd_per_chip_hour: float, pue: float, load_factor: float,
    wacc: float = 0.0,
) -> Any:
    """CNY per chip-hour: capex recovery + hosting (USD, converted) + power. Same as ``cost.chip_hour_cost``.

    ``price_usd`` chip price (USD); ``power_w`` rated power per chip (W: :func:`tokenlib.model.cost.node_power_w`);
    ``electricity_cny_per_kwh`` (CNY/kWh); ``wacc`` cost of capital (0 = straight-line over ``life_years``).
    """
    p = check_number("price_usd", price_usd)
    t = check_number("power_w", power_w)
    e = check_number("electricity_cny_per_kwh", electricity_cny_per_kwh)
    life = float(check_number("life_years", life_years, allow_zero=False))
    crf = float(_cost.capital_recovery_factor(wacc, life))
    out = (p * server_capex_multiplier * crf / _cost.HOURS_PER_YEAR + hosting_usd_per_chip_hour) * cny_per_usd \
        + t / 1000.0 * load_factor * pue * e
    return float(out) if np.ndim(out) == 0 else out


def fleet_cost_per_mtok(
    hour_cost_domestic: Any, hour_cost_nvidia: Any, tps_domestic: Any, tps_nvidia: Any, domestic_share: Any,
    utilization: Any, *, discount_domestic: Any = 0.0, discount_nvidia: Any = 0.0,
) -> Any:
    """CNY per million tokens of a fleet with ``domestic_share`` of its chips domestic (by count).

    Hour costs in CNY per chip-hour, throughputs in tokens/s per chip, utilisation in (0, 1], discounts
    (vouchers) as shares of the compute bill in [0, 1). Broadcasts over arrays.
    """
    s = check_number("domestic_share", domestic_share, upper=1.0)
    u = check_number("utilization", utilization, allow_zero=False, upper=1.0)
    vd = check_number("discount_domestic", discount_domestic, upper=1.0)
    vn = check_number("discount_nvidia", discount_nvidia, upper=1.0)
    hd, hn = np.asarray(hour_cost_domestic, dtype=float), np.asarray(hour_cost_nvidia, dtype=float)
    td, tn = np.asarray(tps_domestic, dtype=float), np.asarray(tps_nvidia, dtype=float)
    bill = s * hd * (1.0 - vd) + (1.0 - s) * hn * (1.0 - vn)
    tokens = (s * td + (1.0 - s) * tn) * 3600.0 * u
    out = bill / tokens * 1e6
    return float(out) if np.ndim(out) == 0 else out


def tokens_per_mw(tps_domestic: Any, tps_nvidia: Any, power_w_domestic: Any, power_w_nvidia: Any,
                  domestic_share: Any) -> Any:
    """Tokens per second per MW of facility power for a fleet mix (power = node W x load x PUE, in W)."""
    s = check_number("domestic_share", domestic_share, upper=1.0)
    tok = s * np.asarray(tps_domestic, dtype=float) + (1.0 - s) * np.asarray(tps_nvidia, dtype=float)
    watts = s * np.asarray(power_w_domestic, dtype=float) + (1.0 - s) * np.asarray(power_w_nvidia, dtype=float)
    out = tok / watts * 1e6
    return float(out) if np.ndim(out) == 0 else out


def domestic_token_share(tps_domestic: Any, tps_nvidia: Any, domestic_share: Any) -> Any:
    """Share of the fleet's tokens made on domestic chips, given the share of chips (by count)."""
    s = check_number("domestic_share", domestic_share, upper=1.0)
    td, tn = np.asarray(tps_domestic, dtype=float), np.asarray(tps_nvidia, dtype=float)
    out = s * td / (s * td + (1.0 - s) * tn)
    return float(out) if np.ndim(out) == 0 else out


def voucher_discount(max_share: Any, take_up: Any, cap_cny: Any, annual_spend_cny: Any) -> Any:
    """Effective discount on a firm's compute bill from a compute voucher (算力券).

    ``min(take_up x max_share x spend, cap) / spend``; ``cap_cny`` NaN = no cap stated. Shares in [0, 1].
    The voucher arithmetic itself is :func:`tokenlib.analysis.subsidies.effective_discount`; take-up scales the share.
    """
    m = check_number("max_share", max_share, upper=1.0)
    t = check_number("take_up", take_up, upper=1.0)
    return subsidy.effective_discount(annual_spend_cny, m * t, cap_per_firm_cny=cap_cny)


def blend(costs: Mapping[str, Any], weights: Mapping[str, float]) -> Any:
    """Traffic-weighted cost per Mtok: sum(w_k cost_k) / sum(w_k) over phases ``k``."""
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    out = sum(np.asarray(costs[k], dtype=float) * (w / total) for k, w in weights.items())
    return float(out) if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------- inputs from data


def electricity_ranges(places_df: pd.DataFrame, *, proxies: Mapping[str, Sequence[str]] | None = None,
                       spread: float = 0.0, stale_before: int | None = None, stale_spread: float | None = None,
                       ) -> pd.DataFrame:
    """Electricity range (CNY/kWh) per place and chip origin, by the rule of :mod:`tokenlib.data.places`.

    Nvidia (any chip a subsidy does not name) pays the place's applicable unsubsidised rows; a domestic chip
    pays the same tariff, or, where a post-subsidy price is reserved for domestic chips, the lower of that
    and the unsubsidised price (columns ``sub_low`` / ``sub_high``; NaN where no subsidy applies). A place
    with no applicable row takes the pooled rows of ``proxies[place]`` (labelled a proxy). ``low`` / ``high``
    widen the rows by ``spread`` (a share), and rows dated before ``stale_before`` (or undated) by
    ``stale_spread``: old tariffs have drifted. For domestic chips in a subsidised place they are the
    range of ``min(subsidised, unsubsidised)``.
    """
    sp = float(check_number("spread", spread, upper=0.9))
    ssp = sp if stale_spread is None else float(check_number("stale_spread", stale_spread, upper=0.9))
    df = places_df[(places_df["metric"] == _places.METRIC) & places_df["value"].notna()]
    prox = dict(proxies or {})

    def widened(rows: pd.DataFrame) -> tuple[float, float, float, int]:
        v = rows["value"].to_numpy(dtype=float)
        yr = rows["year"].astype(float).to_numpy()
        old = ~np.isfinite(yr) | (yr < stale_before) if stale_before is not None else np.zeros(len(v), bool)
        w = np.where(old, ssp, sp)
        return float((v * (1 - w)).min()), float((v * (1 + w)).max()), float(np.median(v)), int(len(v))

    out = []
    for place in sorted(set(df["place"]) | set(prox)):
        own = _places.applicable_rows(df, place, "nvidia")
        basis = "own rows"
        if own.empty:
            src = list(prox.get(place, ()))
            own = pd.concat([_places.applicable_rows(df, p, "nvidia") for p in src]) if src else own
            basis = "proxy: " + ", ".join(src)
        if own.empty:
            continue
        lo, hi, med, n = widened(own)
        kind = "estimate" if (own["kind"] == "estimate").any() else "sourced"
        out.append({"place": place, "origin": "nvidia", "low": lo, "high": hi, "median": med, "n_rows": n,
                    "basis": basis if kind == "sourced" or basis != "own rows" else "own rows (incl. estimate)",
                    "subsidised": False, "sub_low": np.nan, "sub_high": np.nan})
        sub = _places.applicable_rows(df, place, "domestic") if _places._is_subsidised(df[df["place"] == place]).any() \
            else own.iloc[0:0]
        if len(sub):
            slo, shi, smed, sn = widened(sub)
            out.append({"place": place, "origin": "domestic", "low": min(lo, slo), "high": min(hi, shi),
                        "median": min(med, smed), "n_rows": n + sn, "basis": "subsidised rows, or the unsubsidised "
                        "price where lower", "subsidised": True, "sub_low": slo, "sub_high": shi})
        else:
            out.append({**out[-1], "origin": "domestic"})
    return pd.DataFrame(out)


def voucher_terms(places_df: pd.DataFrame) -> pd.DataFrame:
    """Compute-voucher terms per place and chip origin: :func:`tokenlib.analysis.subsidies.inference_voucher_terms`.

    The one rule chapters 3 and 4 share (training vouchers, one-year early-stage top-ups, model vouchers and
    figures the policy text does not show are left out; an unsourced cap is the range of the published
    ones). ``cap_cny`` = the midpoint of that range (kept for point values).
    """
    t = subsidy.inference_voucher_terms(places_df)
    t["cap_cny"] = (t["cap_low"] + t["cap_high"]) / 2.0
    return t


def capacity_by_place(places_df: pd.DataFrame) -> pd.DataFrame:
    """Latest stated compute capacity per place (PFLOPS; targets excluded; largest value in the latest year)."""
    df = places_df[(places_df["metric"] == "compute_capacity_pflops") & places_df["value"].notna()].copy()
    df["year"] = df["year"].astype(float)
    df = df.sort_values(["place", "year", "value"]).groupby("place").tail(1)
    return df[["place", "year", "value", "basis", "source_url", "source_title"]].rename(
        columns={"value": "pflops"}).reset_index(drop=True)


def throughput_error_sigma(validation: pd.DataFrame, role: str = "validation") -> float:
    """Log-normal sigma of the kernel's throughput error, from :func:`tokenlib.model.calibrate.validate`.

    sigma = median |ln(calibrated / measured)| over the rows of ``role`` / 0.6745, so that draws have the
    same median absolute log error as the held-out measurements.
    """
    r = validation.loc[validation["role"] == role, "ratio"].to_numpy(dtype=float)
    if len(r) == 0:
        raise ValueError(f"no rows with role {role!r} in the validation table")
    return float(np.median(np.abs(np.log(r))) / MAD_TO_SIGMA)


def kernel_error(validation: pd.DataFrame, chip: str, *, unvalidated_sigma: float, min_rows: int = 3,
                 role: str = "validation") -> dict[str, Any]:
    """The kernel's error for ``chip``: ``bias`` (median calibrated / measured), ``sigma`` (log), ``n_rows``.

    A chip with at least ``min_rows`` held-out rows gets its own median ratio as bias and the pooled sigma
    (:func:`throughput_error_sigma`, too few rows per chip for their own); a chip with fewer gets the
    pooled bias and ``unvalidated_sigma`` (an assumption: the kernel was never tested on it).
    """
    v = validation[validation["role"] == role]
    if v.empty:
        raise ValueError(f"no rows with role {role!r} in the validation table")
    pooled = throughput_error_sigma(validation, role)
    own = v.loc[v["chip_id"] == chip, "ratio"].to_numpy(dtype=float)
    if len(own) >= min_rows:
        return {"chip": chip, "bias": float(np.median(own)), "sigma": pooled, "n_rows": int(len(own)), "validated": True}
    s = float(check_number("unvalidated_sigma", unvalidated_sigma))
    return {"chip": chip, "bias": float(np.median(v["ratio"].to_numpy(dtype=float))), "sigma": s,
            "n_rows": int(len(own)), "validated": False}


# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Serving:
    """How one model is served (same for every chip, so chips compare like for like)."""

    precision: str
    prefill_batch: float
    prefill_chips: float
    decode_batch: float
    decode_chips: float
    context: float


def chip_throughputs(models: Sequence[str], chips: Mapping[str, str], serving: Mapping[str, Serving]) -> pd.DataFrame:
    """Calibrated kernel throughput (tokens/s per chip) per model, origin and phase."""
    rows = []
    for m in models:
        cfg = serving[m]
        for origin, chip in chips.items():
            check_choice("origin", origin, ORIGINS)
            for phase, batch, n in (("prefill", cfg.prefill_batch, cfg.prefill_chips),
                                    ("decode", cfg.decode_batch, cfg.decode_chips)):
                tps = kernel.throughput(m, chip, phase, batch=batch, context=cfg.context,
                                        precision=cfg.precision, n_chips=n)
                rows.append({"model": m, "origin": origin, "chip": chip, "phase": phase, "tps": float(tps)})
    return pd.DataFrame(rows)


def _tps(table: pd.DataFrame, model: str, origin: str, phase: str) -> float:
    sel = table[(table["model"] == model) & (table["origin"] == origin) & (table["phase"] == phase)]
    return float(sel["tps"].iloc[0])


def chip_power_w(chip: str, *, pue: float | None = None, load_factor: float | None = None,
                 power_basis: str | None = None) -> float:
    """Facility watts per chip while serving: rated power (node, :func:`tokenlib.model.cost.node_power_w`) x load x PUE."""
    lf = float(_cost.ASSUMPTIONS["load_factor"]["value"]) if load_factor is None else load_factor
    p = float(_cost.ASSUMPTIONS["pue"]["value"]) if pue is None else pue
    return float(_cost.node_power_w(chip, power_basis=power_basis)) * lf * p


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


def _range_for(spec: Any, place: str, what: str) -> tuple[float, float]:
    """``spec`` is one (low, high) for every place or a mapping place -> (low, high)."""
    r = spec[place] if isinstance(spec, Mapping) else spec
    lo, hi = float(r[0]), float(r[1])
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise ValueError(f"{what} range for {place!r} must be finite with low <= high, got {r!r}")
    return lo, hi


def monte_carlo(
    *, n: int, models: Sequence[str], chips: Mapping[str, str], serving: Mapping[str, Serving],
    mixes: Mapping[str, float], electricity: pd.DataFrame, vouchers: pd.DataFrame,
    price_usd: Mapping[str, tuple[float, float]], utilization: Any, take_up: tuple[float, float],
    annual_spend_cny: float, kernel_errors: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float],
    pue: Any = None, seed: int = 0, hour_kwargs: Mapping[str, Any] | None = None,
) -> MonteCarloResult:
    """Draw every uncertain input ``n`` times and evaluate the equation for all sites x mixes x models.

    Independent draws: electricity per site ~ U(low, high) of ``electricity`` (Nvidia); a domestic chip pays
    the same draw, or ``min(U(sub_low, sub_high), that draw)`` where a subsidy names domestic chips; PUE per
    site ~ U(``pue[site]``) (default :func:`tokenlib.data.places.pue_range`); utilisation per site ~
    U(``utilization``, one range or a mapping site -> range); chip price per origin ~ U(price_usd[origin]);
    one throughput multiplier per chip ~ LogNormal(-ln bias, sigma) from ``kernel_errors[origin]`` (keys
    ``bias``, ``sigma``: :func:`kernel_error`), shared by its phases and models; per registration (the
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
        disc[o] = np.asarray(voucher_discount(share, take, cap, annual_spend_cny), dtype=float)
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
            tokens = (s * td + (1.0 - s) * tn) * 3600.0 * u3
            if "domestic" in origins:
                per["domestic"][phase] = s * hour["domestic"][:, :, None] / tokens * 1e6
            if "nvidia" in origins:
                per["nvidia"][phase] = (1.0 - s) * hour["nvidia"][:, :, None] / tokens * 1e6
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


def tornado_chart(sens: pd.DataFrame, metric: str, *, title: str, scale: float = 100.0, width: int = 300) -> Any:
    """Altair bars of ``sens`` (from :func:`sensitivity`) for one metric: one row per changed assumption
    ("assumption: label"), a bar from the base value to the changed one, rows grouped by assumption and sorted
    by the largest move, coloured by direction; values times ``scale`` (100: shares as per cent)."""
    import altair as alt

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


# ----------------------------------------------------------------------------- the in-browser what-if


WHATIF_FIELDS = ("tps_d", "tps_n", "price_n", "watts_d", "watts_n", "frac")
"""Per-row constants the what-if chart carries (throughputs, Nvidia price, rated W per chip, phase cost fraction)."""


def whatif_constants() -> dict[str, float]:
    """Kernel cost defaults the what-if uses (FX rate, life, cost of capital, server multiplier, hosting, PUE, load)."""
    a = _cost.ASSUMPTIONS
    return {"fx": float(fx.cny_per_usd()[0]), "life": float(a["life_years"]["value"]), "wacc": float(a["wacc"]["value"]),
            "mult": float(a["server_capex_multiplier"]["value"]), "host": float(a["hosting_usd_per_chip_hour"]["value"]),
            "pue": float(a["pue"]["value"]), "load": float(a["load_factor"]["value"])}


def whatif_cost(*, electricity: float, utilization: float, price_domestic_usd: float, domestic_share: float,
                tps_d: float, tps_n: float, price_n: float, watts_d: float, watts_n: float, frac: float = 1.0,
                constants: Mapping[str, float] | None = None) -> float:
    """The what-if's cost per Mtok (CNY) in Python, term for term what :func:`vega_cost_expr` computes."""
    k = dict(whatif_constants() if constants is None else constants)
    kw = dict(cny_per_usd=k["fx"], life_years=k["life"], server_capex_multiplier=k["mult"],
              hosting_usd_per_chip_hour=k["host"], pue=k["pue"], load_factor=k["load"], wacc=k.get("wacc", 0.0))
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
    hd = f"(({pd_} * {amort} + {k['host']!r}) * {k['fx']!r} + datum.watts_d * {power} * {e})"
    hn = f"((datum.price_n * {amort} + {k['host']!r}) * {k['fx']!r} + datum.watts_n * {power} * {e})"
    return (f"({s} * {hd} + (1 - {s}) * {hn}) / (({s} * datum.tps_d + (1 - {s}) * datum.tps_n) * 3600 * {u})"
            f" * 1000000 * datum.frac")


def equation_table(
    *, models: Sequence[str], chips: Mapping[str, str], serving: Mapping[str, Serving], mixes: Mapping[str, float],
    electricity: pd.DataFrame, vouchers: pd.DataFrame, price_usd: Mapping[str, float], utilization: float,
    take_up: float, annual_spend_cny: float, weights: Mapping[str, float],
) -> pd.DataFrame:
    """The equation at point values: one row per place x mix x model, vouchers of the same place.

    Electricity = the median of the place's applicable rows (for each origin); PUE = the place's
    (:func:`tokenlib.data.places.pue`); voucher share = midpoint of its range times ``take_up``, cap = midpoint
    of its range. Columns: place, mix, model, domestic_share (chips), input / cached_input / output /
    blended cost (CNY/Mtok), tokens_per_mw (output tokens/s per MW at the place's PUE),
    domestic_token_share (of output tokens), power_share (share of the fleet's chip-hour cost that is
    electricity), pue, electricity_basis.
    """
    origins = list(chips)
    ok = electricity.groupby("place")["origin"].apply(lambda s: set(origins) <= set(s))
    places = sorted(str(p) for p in ok[ok].index)
    tps = chip_throughputs(models, chips, serving)
    frac = float(_cost.ASSUMPTIONS["cached_input_cost_fraction"]["value"])
    rows = []
    for place in places:
        try:
            pue = _places.pue(place)
        except ValueError:
            pue = float(_cost.ASSUMPTIONS["pue"]["value"])
        power = {o: chip_power_w(chips[o], pue=pue) for o in origins}
        hour, pw, disc, basis = {}, {}, {}, []
        for o in origins:
            e = electricity[(electricity["place"] == place) & (electricity["origin"] == o)].iloc[0]
            basis.append(f"{o}: {e['basis']}")
            hour[o] = float(_cost.chip_hour_cost(chips[o], electricity_cny_per_kwh=float(e["median"]),
                                                 capex_usd=float(price_usd[o]), pue=pue))
            pw[o] = power[o] / 1000.0 * float(e["median"])
            v = vouchers[(vouchers["place"] == place) & (vouchers["origin"] == o)]
            disc[o] = 0.0 if v.empty else float(voucher_discount(
                (float(v["share_low"].iloc[0]) + float(v["share_high"].iloc[0])) / 2, take_up,
                float(v["cap_cny"].iloc[0]), annual_spend_cny))
        hd, hn = hour.get("domestic", 0.0), hour.get("nvidia", 0.0)
        for mix, s in mixes.items():
            for m in models:
                t = {ph: {o: _tps(tps, m, o, ph) for o in origins} for ph in ("prefill", "decode")}
                c = {ph: float(fleet_cost_per_mtok(hd, hn, t[ph].get("domestic", 0.0), t[ph].get("nvidia", 0.0), s,
                                                   utilization, discount_domestic=disc.get("domestic", 0.0),
                                                   discount_nvidia=disc.get("nvidia", 0.0)))
                     for ph in ("prefill", "decode")}
                c["cached_input"] = c["prefill"] * frac
                rows.append({
                    "place": place, "mix": mix, "model": m, "domestic_share": s,
                    "input": c["prefill"], "cached_input": c["cached_input"], "output": c["decode"],
                    "blended": float(blend(c, weights)),
                    "tokens_per_mw": float(tokens_per_mw(t["decode"].get("domestic", 1.0), t["decode"].get("nvidia", 1.0),
                                                         power.get("domestic", 1.0), power.get("nvidia", 1.0), s)),
                    "domestic_token_share": float(domestic_token_share(t["decode"].get("domestic", 0.0),
                                                                       t["decode"].get("nvidia", 0.0), s)),
                    "power_share": (s * pw.get("domestic", 0.0) + (1 - s) * pw.get("nvidia", 0.0)) / (s * hd + (1 - s) * hn),
                    "voucher_domestic": disc.get("domestic", 0.0), "voucher_nvidia": disc.get("nvidia", 0.0),
                    "pue": pue, "electricity_basis": "; ".join(basis),
                })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the claims table

CLAIM_VERDICTS = ("supported", "partly", "contradicted", "unverifiable", "opinion")
"""The verdicts of ``data/claims.csv``, in the order the book lists them."""

CLAIM_SECTIONS = {"intro": "Introduction", "price_war": "The great token price war", "cities": "Beijing vs. Hangzhou",
                  "compute": "The compute bottleneck", "meaning": "What the trending headline means",
                  "bottom_line": "The bottom line"}
"""The article's sections (``section`` column of ``data/claims.csv``) as the article titles them."""

_VERDICT_COLOURS = {"supported": "#009E73", "partly": "#E69F00", "contradicted": "#D55E00",
                    "unverifiable": "#999999", "opinion": "#56B4E9"}  # Okabe-Ito; the word carries the meaning

_CLAIMS_CSS = (
    "table.tc-claims{width:100%;table-layout:fixed!important;border-collapse:collapse;font-size:.85rem;line-height:1.4;"
    "margin:.5rem 0 1rem}"  # the theme sets table-layout:auto on output tables
    ".tc-claims th,.tc-claims td{text-align:left;vertical-align:top;padding:.35rem .4rem;"
    "border-bottom:1px solid rgba(128,128,128,.35);overflow-wrap:break-word}"
    # the verdict column is sized for its longest label ("unverifiable", bold): in em, not a share of
    # the width, so the label never runs into the evidence column
    ".tc-claims th:nth-child(1){width:34%}.tc-claims th:nth-child(2){width:8.6em}"
    ".tc-claims th:nth-child(4){width:16%}"
    ".tc-claims .tc-claim-id{display:block;font-size:.75rem;opacity:.75}"
    ".tc-claims .tc-verdict{display:inline-block;padding:0 .3rem;border-left:.3rem solid;font-weight:600;"
    "white-space:nowrap}.tc-claims td{overflow-wrap:anywhere}"
    + "".join(f".tc-claims .tc-{v}{{border-color:{c}}}" for v, c in _VERDICT_COLOURS.items())
    + "@media (max-width:700px){.tc-claims thead{display:none}"
    "table.tc-claims,.tc-claims tbody,.tc-claims tr,.tc-claims td{display:block;width:100%}"
    ".tc-claims tr{padding:.5rem 0;border-bottom:2px solid rgba(128,128,128,.5)}"
    ".tc-claims td{border:0;padding:.15rem 0}"
    ".tc-claims td[data-label]::before{content:attr(data-label) \": \";font-weight:600}}"
)

_SECOND_LEVEL = {"com", "gov", "org", "net", "edu", "ac", "co"}


def short_host(url: str) -> str:
    """The registrable part of a URL's host, as a short link text.

    ``"https://english.shanghai.gov.cn/x"`` -> ``"shanghai.gov.cn"``, ``"https://www.bg3.co/a"`` ->
    ``"bg3.co"``; an empty or unparsable URL gives ``""``.
    """
    from urllib.parse import urlparse

    host = (urlparse(url).hostname or "") if url else ""
    labels = [x for x in host.split(".") if x]
    if len(labels) <= 2:
        return ".".join(labels)
    keep = 3 if labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2 else 2
    return ".".join(labels[-keep:])


def _chapter_label(docname: str) -> str:
    """``"chapters/04_crown"`` -> ``"Ch. 5"`` (its number in the toc); other pages keep their last path part."""
    from tokenlib.book.toc import chapter_numbers

    number = chapter_numbers().get(docname)
    return f"Ch. {number}" if number is not None else docname.rsplit("/", 1)[-1].replace("_", " ")


def claims_html(claims: pd.DataFrame, *, sections: Mapping[str, str] | None = None,
                link_chapter: bool = True, root: str = "..") -> str:
    """The claims of ``data/claims.csv`` as one readable HTML table (desktop: columns; phone: cards).

    Columns: the claim (with its id and section, named by ``sections``, default :data:`CLAIM_SECTIONS`), the verdict, the one-line evidence, and short links
    (the source's host; ``Ch. N``, the chapter that tests it, when ``link_chapter``). ``root`` is the
    relative path from the page to the book's root. All text is HTML-escaped. A page-scoped style block
    comes with it, so the table wraps on a 390 px phone instead of scrolling sideways.
    """
    from tokenlib import safehtml as h

    need = {"id", "section", "article_text", "verdict", "evidence", "source_url", "source_title", "chapter"}
    missing = sorted(need - set(claims.columns))
    if missing:
        raise ValueError(f"claims table lacks columns {missing}")
    sections = dict(CLAIM_SECTIONS if sections is None else sections)

    def text(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)

    body = []
    for r in claims.itertuples(index=False):
        verdict = text(r.verdict)
        check_choice("verdict", verdict, CLAIM_VERDICTS)
        sec = sections.get(text(r.section), text(r.section))
        claim = (f'<span class="tc-claim-id">{h.text(text(r.id))}'
                 f'{" · " + h.text(sec) if sec else ""}</span>{h.text(text(r.article_text))}')
        links = []
        url = text(r.source_url)
        if url:
            links.append(h.link(url, short_host(url) or "source", title=text(r.source_title)))
        ch = text(r.chapter).strip()
        if link_chapter and ch:
            links.append(h.link(f"{root}/{ch}.html", _chapter_label(ch)))
        body.append(
            "<tr>"
            f"<td>{claim}</td>"
            f'<td data-label="Verdict"><span class="tc-verdict tc-{h.text(verdict)}">{h.text(verdict)}</span></td>'
            f'<td data-label="Evidence">{h.text(text(r.evidence))}</td>'
            f'<td data-label="Links">{" · ".join(links)}</td>'
            "</tr>")
    head = "<thead><tr><th>Claim</th><th>Verdict</th><th>Evidence</th><th>Links</th></tr></thead>"
    return f'<style>{_CLAIMS_CSS}</style><table class="tc-claims">{head}<tbody>{"".join(body)}</tbody></table>'
