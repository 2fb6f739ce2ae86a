"""Fit the kernel's named efficiencies and decode latency once, globally, and check them on held-out measurements.

The calibrated layer (see :mod:`tokenlib.model.kernel`) predicts, per chip and per engine step,
``time = L * tau + (t_compute + t_memory) / eff[phase] + t_network / eff["network"]`` (``L * tau``
in decode only: ``tau`` = ``decode_layer_latency_s``). Per token that is linear in
``x = (1/eff_prefill, 1/eff_decode, 1/eff_network, tau)``, so the fit is an exact bounded
least-squares problem: minimise the sum over the ``role == "calibration"`` rows of
``(predicted time / measured time - 1) ** 2`` subject to ``1/eff >= 1`` (every efficiency <= 1, which
keeps calibrated <= ideal) and ``tau >= 0``; it is solved exactly by enumerating which bounds are
active. A parameter no calibration row can identify stays at its bound (efficiency 1, tau 0). Rows
with ``role == "validation"`` are never used to fit; :func:`validate` reports the error on both.

Run ``python -m tokenlib.model.calibrate`` to refit and rewrite ``tokenlib/model/calibration.json`` (runtime
never fits). ``python -m tokenlib.model.calibrate --check`` exits non-zero if the committed file is stale.

Why this module is long: the fit, the held-out validation and the per-row explanation must turn a
deployment row into kernel arguments in exactly the same way (``row_options``, ``_predict``); kept in one
module, a row cannot be read one way when fitting and another when judging the fit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from tokenlib.model import kernel
from tokenlib.data import load, specs
from tokenlib.errors import check_choice, check_flag

FloatArray = kernel.FloatArray


N_PARAMS = 4  # 1/eff prefill, 1/eff decode, 1/eff network, decode_layer_latency_s
LOWER = np.array([1.0, 1.0, 1.0, 0.0])
SMALL_BATCH_GRID = (1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)
"""Values of 1 / decode_small_batch tried by the fit (1 = no small-batch penalty)."""
OVERLAP_GRID = tuple(round(0.1 * i, 1) for i in range(11))
"""Values of the compute-network overlap share tried by the fit."""


def _cell(r: dict[str, Any], name: str, default: str) -> str:
    v = r.get(name)
    return default if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) in ("", "nan", "None") else str(v)


def _kv_precision(r: dict[str, Any]) -> str:
    return _cell(r, "kv_precision", "bf16")


def _is_static(r: dict[str, Any]) -> bool:
    return _cell(r, "metric", "steady_state") == "static_batch_end_to_end"


def _common(r: dict[str, Any], root: Path | str | None) -> dict[str, Any]:
    return dict(batch=float(r["batch"]), precision=str(r["precision"]), n_chips=float(r["n_chips"]),
                kv_precision=_kv_precision(r), kv_reads=_cell(r, "kv_reads", "once_per_kv_head"), root=root)


Part = tuple[bool, float, float, float, float, float]
"""One pass of a row per measured token: (decode?, compute+memory s, weight-streaming s, network s, layers, weight)."""


def _row_parts(r: dict[str, Any], root: Path | str | None) -> list[Part]:
    """The row's passes at every parameter = 1, each weighted by (times run) / (output tokens per chip)."""
    steps, tokens = _row_steps(r, root)
    out: list[Part] = []
    for phase, step, count in steps:
        for terms, times in step.parts:
            out.append((phase == "decode", float(terms["compute"] + terms["memory"]), float(terms["weights"]),
                        float(terms["network"]), float(terms["layers"]), count * times / tokens))
    return out


def _row_steps(r: dict[str, Any], root: Path | str | None) -> tuple[list[tuple[str, Any, float]], float]:
    """The engine steps of a measured run as the fit, the validation and :func:`explain` all read it:
    ``[(phase, step, times it runs)]`` and the output tokens per chip of the run (a static-batch row: one
    prefill step, then the decode step ``decode_steps`` times; a steady-state row: one engine step)."""
    kw = _common(r, root)
    opts, _, _ = row_options(r, root)
    o = kernel.KernelOptions.of(kv_precision=kw.pop("kv_precision"), kv_reads=kw.pop("kv_reads"), **opts)
    model, chip = str(r["model_id"]), str(r["chip_id"])
    if _is_static(r):
        t = kernel.static_batch_times(model, chip, input_len=float(r["input_tokens"]),
                                      output_len=float(r["output_tokens"]), options=o, **kw)
        return [("prefill", t["prefill"], 1.0), ("decode", t["decode"], float(t["decode_steps"]))], float(t["tokens"])
    phase = str(r["phase"])
    st = kernel.engine_step(model, chip, phase, context=float(r["context"]), options=o, **kw)
    return [(phase, st, 1.0)], float(st.tokens)


def _predict_parts(parts: list[Part], x: FloatArray, u: float, om: float) -> float:
    """Seconds per token of one row at parameters ``x`` (1/eff prefill, decode, network; tau), 1/decode_small_batch
    ``u`` and overlap ``om`` (the calibrated layer of the kernel, written out)."""
    total = 0.0
    for decode, cm, w, net, layers, weight in parts:
        xx = cm * (x[1] if decode else x[0])
        if decode:
            xx = max(xx, w * u)
        y = net * x[2]
        total += weight * (layers * x[3] + xx + y - om * min(xx, y))
    return total


def _linear_rows(parts_list: list[list[Part]], x: FloatArray, u: float, om: float) -> tuple[FloatArray, FloatArray]:
    """Each row's seconds per token as ``a @ x + b`` with the branches (floor, shorter term) of ``x`` held fixed."""
    a = np.zeros((len(parts_list), N_PARAMS))
    b = np.zeros(len(parts_list))
    for i, parts in enumerate(parts_list):
        for decode, cm, w, net, layers, weight in parts:
            j = 1 if decode else 0
            floor = decode and w * u > cm * x[1]
            xx = w * u if floor else cm * x[j]
            y = net * x[2]
            fx, fy = (1.0 - om, 1.0) if xx <= y else (1.0, 1.0 - om)
            a[i, 3] += weight * layers
            if floor:
                b[i] += weight * fx * w * u
            else:
                a[i, j] += weight * fx * cm
            a[i, 2] += weight * fy * net
    return a, b


def _bounded_lstsq(m: FloatArray, rhs: FloatArray) -> FloatArray:
    """min |m x - rhs|^2 with x >= LOWER, exactly, by enumerating the active bounds."""
    best: tuple[float, FloatArray] | None = None
    for free in itertools.product((False, True), repeat=N_PARAMS):
        x = LOWER.copy()
        idx = [j for j in range(N_PARAMS) if free[j] and np.any(m[:, j] > 0)]
        fixed = [j for j in range(N_PARAMS) if j not in idx]
        if idx:
            sol, *_ = np.linalg.lstsq(m[:, idx], rhs - m[:, fixed] @ x[fixed], rcond=None)
            if np.any(sol < LOWER[idx] - 1e-12):
                continue
            x[idx] = sol
        loss = float(np.sum((m @ x - rhs) ** 2))
        if best is None or loss < best[0] - 1e-15:
            best = (loss, x)
    assert best is not None  # the all-at-bounds set is always feasible
    return best[1]


def _params_to_dict(x: FloatArray, u: float = 1.0, om: float = 0.0) -> dict[str, float]:
    out = {name: float(round(1.0 / xi, 6)) for name, xi in zip(kernel.EFFICIENCY_NAMES, x[:3])}
    out["decode_small_batch"] = float(round(1.0 / u, 6))
    out["decode_layer_latency_s"] = float(round(float(x[3]), 9))
    out["overlap"] = float(om)
    return out


FIT_ALL = False
"""Whether :func:`fit` fits decode_small_batch and overlap too. Off: the five calibration rows (all DeepSeek-V3/R1
large expert-parallel serving) do not identify them; fitted, they trade the per-layer latency for overlap
(held-out median |error| 27 % against 16 % with them neutral, November 2026 data). They stay at their neutral
values (1 and 0: the calibrated layer of before) until the calibration set holds small-batch and dense rows;
``python -m tokenlib.model.calibrate --fit-all`` fits them."""


def fit(deployments: pd.DataFrame | None = None, root: Path | str | None = None,
        fit_all: bool | None = None) -> dict[str, float]:
    """Fit on the calibration rows; returns ``{"prefill", "decode", "network", "decode_small_batch",
    "decode_layer_latency_s", "overlap"}``.

    For each (decode_small_batch, overlap) on :data:`SMALL_BATCH_GRID` x :data:`OVERLAP_GRID` the other four
    are the exact bounded least-squares solution with the piecewise branches (is the small-batch floor
    binding, which of compute+memory and network is shorter) held at the previous solution, iterated until
    the branches stop changing; the grid point with the least exact loss wins (ties: no penalty, no overlap).
    """
    df = load("deployments", root) if deployments is None else deployments
    cal = df[df["role"] == "calibration"]
    if cal.empty:
        raise ValueError("no deployments with role=calibration to fit on")
    records = cast(list[dict[str, Any]], cal.to_dict("records"))
    parts = [_row_parts(r, root) for r in records]
    measured = 1.0 / cal["tokens_per_s_per_chip"].to_numpy(dtype=float)
    every = FIT_ALL if fit_all is None else check_flag("fit_all", fit_all)
    best: tuple[float, FloatArray, float, float] | None = None
    for u in SMALL_BATCH_GRID if every else (1.0,):
        for om in OVERLAP_GRID if every else (0.0,):
            x = LOWER.copy()
            for _ in range(8):
                a, b = _linear_rows(parts, x, u, om)
                new = _bounded_lstsq(a / measured[:, None], 1.0 - b / measured)
                if np.allclose(new, x, rtol=1e-12, atol=1e-15):
                    break
                x = new
            loss = float(sum((_predict_parts(p, x, u, om) / t - 1.0) ** 2 for p, t in zip(parts, measured)))
            if best is None or loss < best[0] - 1e-12:
                best = (loss, x, u, om)
    assert best is not None
    return _params_to_dict(best[1], best[2], best[3])


#: The deployment columns that describe the serving layout and speculative decoding (see data/schema.yaml).
LAYOUT_COLUMNS = ("attention", "expert_parallel", "spec_method", "draft_tokens", "accept_length")


def _kernel_accepts(name: str) -> bool:
    """True when the kernel takes option ``name`` (a :class:`~tokenlib.model.kernel.KernelOptions` field, which
    :func:`~tokenlib.model.kernel.throughput` and :func:`~tokenlib.model.kernel.static_batch_throughput` both
    accept as a keyword)."""
    return name in {f.name for f in fields(kernel.KernelOptions)}


NO_ACCEPT_LENGTH = "the source publishes no acceptance length"
"""Why a speculative run cannot be expressed (in :func:`row_options`' reason): the kernel never guesses it."""


def row_options(r: Mapping[str, Any], root: Path | str | None = None) -> tuple[dict[str, Any], str, str]:
    """Kernel keyword arguments for one deployment's layout columns, and why it cannot be expressed.

    Returns ``(kwargs, not_expressible, approximations)``. ``kwargs`` carries ``attention``,
    ``expert_parallel`` and ``speculative={"draft_tokens": k, "accept_length": a}`` for the columns the
    row fills, each only when the kernel accepts that argument. ``not_expressible`` is empty when the
    kernel can predict the run as measured, else the reason: speculative decoding the kernel cannot model
    (no ``speculative`` argument yet, or no published acceptance length), or a precision it has no peak
    for (e.g. FP4). ``approximations`` names layout columns the kernel does not take yet, so their
    effect is the kernel's default layout instead (the prediction is still made).
    """
    rr = dict(r)
    kwargs: dict[str, Any] = {}
    reasons: list[str] = []
    approx: list[str] = []
    precision = _cell(rr, "precision", "bf16")
    if precision not in specs.PRECISIONS:
        reasons.append(f"precision {precision}: the kernel has no {precision} peak")
    elif "chip_id" in rr:
        chip = specs.chip(str(rr["chip_id"]), root)  # an unknown chip is an error, not an inexpressible row
        try:
            chip.peak_tflops(precision)
        except ValueError:
            reasons.append(f"precision {precision}: chip {rr['chip_id']} has no {precision} peak in chips.csv")
    for name in ("attention", "expert_parallel"):
        value = _cell(rr, name, "")
        if not value:
            continue
        typed: Any = int(float(value)) if name == "expert_parallel" else value
        if _kernel_accepts(name):
            kwargs[name] = typed
        else:
            approx.append(f"{name}={typed} not passed (the kernel has no {name} argument yet; its default layout is used)")
    method = _cell(rr, "spec_method", "")
    if method:
        k = _cell(rr, "draft_tokens", "")
        a = _cell(rr, "accept_length", "")
        what = f"speculative decoding ({method}, k={int(float(k)) if k else '?'})"
        if not _kernel_accepts("speculative"):
            reasons.append(f"{what}: the kernel has no speculative argument yet")
        elif not a:
            reasons.append(f"{what}: {NO_ACCEPT_LENGTH}")
        else:
            kwargs["speculative"] = {"draft_tokens": int(float(k)), "accept_length": float(a)}
    return kwargs, "; ".join(reasons), "; ".join(approx)


def _predict(r: dict[str, Any], root: Path | str | None, eff: Mapping[str, float], kv_reads: str | None,
             options: Mapping[str, Any]) -> tuple[float, float]:
    """Ideal and calibrated tokens/s per chip for one deployment row."""
    # a measured run evidently fit in memory: check it without the kernel's overhead assumption
    kw: dict[str, Any] = dict(**_common(r, root), memory_overhead=0.0, **options)
    if kv_reads is not None:
        kw["kv_reads"] = kv_reads
    cal_kw: dict[str, Any] = dict(efficiencies=eff, decode_layer_latency_s=float(eff.get("decode_layer_latency_s", 0.0)))
    model, chip = str(r["model_id"]), str(r["chip_id"])
    if _is_static(r):
        lengths: dict[str, Any] = dict(input_len=float(r["input_tokens"]), output_len=float(r["output_tokens"]))
        ideal = float(kernel.static_batch_throughput(model, chip, calibrated=False, **lengths, **kw))
        cal = float(kernel.static_batch_throughput(model, chip, calibrated=True, **lengths, **kw, **cal_kw))
    else:
        ctx = float(r["context"])
        ideal = float(kernel.throughput(model, chip, str(r["phase"]), context=ctx, calibrated=False, **kw))
        cal = float(kernel.throughput(model, chip, str(r["phase"]), context=ctx, calibrated=True, **kw, **cal_kw))
    return ideal, cal


def validate(root: Path | str | None = None, efficiencies: Mapping[str, float] | None = None,
             kv_reads: str | None = None, include_inexpressible: bool = False) -> pd.DataFrame:
    """One row per measured deployment: measured, ideal and calibrated tokens/s per chip, signed % errors.

    ``kv_reads`` (one of :data:`tokenlib.model.kernel.KV_READS`) overrides every row's ``kv_reads``, to show
    what that term does. Rows with ``metric == "static_batch_end_to_end"`` are predicted with
    :func:`tokenlib.model.kernel.static_batch_throughput` (output tokens over the whole run, prefill included).
    Each row's layout columns are passed to the kernel where it takes them (:func:`row_options`).

    Rows the kernel cannot express (:func:`row_options`: speculative decoding it cannot model, a precision
    it has no peak for) are left out, so every error in the table is the kernel's on a run it can describe;
    :func:`inexpressible` lists them with the reason. ``include_inexpressible=True`` keeps them, with NaN
    predictions and errors.

    Columns: id, system, model_id, chip_id, phase, precision, n_chips, batch, context, role, metric, measured,
    ideal, calibrated, ideal_error_pct, calibrated_error_pct (100 x (predicted - measured) / measured),
    ratio (calibrated / measured), spec_method, tokens_per_s_per_user (as measured, where published),
    expressible, not_expressible (the reason, empty when expressible), approximations, source_url.
    """
    if kv_reads is not None:
        check_choice("kv_reads", kv_reads, kernel.KV_READS)
    check_flag("include_inexpressible", include_inexpressible)
    df = load("deployments", root)
    eff = {**kernel.efficiencies(), **kernel.overheads()} if efficiencies is None else efficiencies
    out = []
    records = cast(list[dict[str, Any]], df.to_dict("records"))
    for r in records:
        options, reason, approx = row_options(r, root)
        if reason and not include_inexpressible:
            continue
        ideal, cal = (float("nan"), float("nan")) if reason else _predict(r, root, eff, kv_reads, options)
        meas = float(r["tokens_per_s_per_chip"])
        out.append({
            **{k: r[k] for k in ("id", "system", "model_id", "chip_id", "phase", "precision", "n_chips",
                                 "batch", "context", "role")},
            "metric": _cell(r, "metric", "steady_state"),
            "measured": meas, "ideal": ideal, "calibrated": cal,
            "ideal_error_pct": 100.0 * (ideal - meas) / meas,
            "calibrated_error_pct": 100.0 * (cal - meas) / meas,
            "ratio": cal / meas,
            "spec_method": _cell(r, "spec_method", ""),
            "tokens_per_s_per_user": float(_cell(r, "tokens_per_s_per_user", "nan")),
            "expressible": not reason, "not_expressible": reason, "approximations": approx,
            "source_url": r["source_url"],
        })
    return pd.DataFrame(out)


EXPLAIN_COLUMNS = ("part", "runs", "compute_ms", "memory_ms", "weights_ms", "network_ms", "layer_latency_ms",
                   "pass_ms", "share")


def explain(row_id: str, root: Path | str | None = None, efficiencies: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Where the calibrated kernel puts the time of one measured deployment, pass by pass.

    One row per pass of the run as :func:`validate` predicts it (a static-batch row: the prefill step, then the
    decode step run ``(output - 1) / accept_length`` times; a steady-state row: one engine step; with speculation
    the verification and draft passes apart). Columns (:data:`EXPLAIN_COLUMNS`): part, runs (times the pass runs
    in the measured window), the ideal terms of one pass in ms (compute, memory, of which weights, network),
    layer_latency_ms (decode layers x ``decode_layer_latency_s``), pass_ms (the calibrated seconds of one pass,
    in ms) and share (of the run's calibrated time). ``attrs`` carries measured, calibrated and ideal tokens/s per
    chip, ``ratio`` (calibrated / measured) and ``measured_ms_per_run_token`` against ``calibrated_ms_per_run_token``
    (chip-milliseconds per output token: 1000 / tokens/s per chip). ``efficiencies``: as in :func:`validate` (default: the committed fit).
    """
    df = load("deployments", root)
    ids = [str(i) for i in df["id"]]
    check_choice("row_id", row_id, ids)
    r = cast(dict[str, Any], df[df["id"] == row_id].iloc[0].to_dict())
    options, reason, _ = row_options(r, root)
    if reason:
        raise ValueError(f"deployment {row_id!r} cannot be expressed by the kernel: {reason}")
    eff = {**kernel.efficiencies(), **kernel.overheads()} if efficiencies is None else dict(efficiencies)
    tau = float(eff.get("decode_layer_latency_s", 0.0))  # as _predict reads it, so the parts add up to its figure
    steps, tokens = _row_steps(r, root)
    rows = []
    for phase, step, count in steps:
        speculative = len(step.parts) > 1
        for i, (terms, times) in enumerate(step.parts):
            name = phase if not speculative else f"{phase} {'verify' if i == 0 else 'draft'}"
            sec = float(kernel.step_seconds(terms, phase, calibrated=True, eff=eff, tau=tau))
            rows.append({"part": name, "runs": count * times, "compute_ms": 1e3 * float(terms["compute"]),
                         "memory_ms": 1e3 * float(terms["memory"]), "weights_ms": 1e3 * float(terms["weights"]),
                         "network_ms": 1e3 * float(terms["network"]),
                         "layer_latency_ms": 1e3 * float(terms["layers"]) * tau,
                         "pass_ms": 1e3 * sec})
    out = pd.DataFrame(rows, columns=list(EXPLAIN_COLUMNS[:-1]))
    total = float((out["runs"] * out["pass_ms"]).sum())
    out["share"] = out["runs"] * out["pass_ms"] / total
    ideal, calibrated = _predict(r, root, eff, None, options)
    measured = float(r["tokens_per_s_per_chip"])
    out.attrs.update({"id": row_id, "measured": measured, "calibrated": calibrated, "ideal": ideal,
                      "ratio": calibrated / measured, "calibrated_ms_per_run_token": total / tokens,
                      "measured_ms_per_run_token": 1e3 / measured})
    return out


def inexpressible(root: Path | str | None = None) -> pd.DataFrame:
    """The measured deployments :func:`validate` leaves out, and why: columns id, system, chip_id, phase,
    role, measured, reason."""
    t = validate(root, include_inexpressible=True)
    t = t[~t["expressible"]]
    return t[["id", "system", "chip_id", "phase", "role", "measured", "not_expressible"]].rename(
        columns={"not_expressible": "reason"}).reset_index(drop=True)


ACCURACY_COLUMNS = ("chip_id", "n", "median_abs_error_pct_calibrated", "median_abs_error_pct_ideal",
                    "max_factor_calibrated", "max_factor_ideal", "bias_pct_calibrated", "bias_pct_ideal")


def accuracy_by_chip(table: pd.DataFrame, role: str = "validation", chips: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-chip accuracy of the kernel on the ``role`` rows of a :func:`validate` table, ideal beside calibrated.

    Columns (:data:`ACCURACY_COLUMNS`): chip_id, n (rows), median |error| % (calibrated, ideal), worst factor
    (max of predicted/measured and measured/predicted; calibrated, ideal) and signed bias (median signed %
    error, positive = the kernel predicts more tokens/s than measured; calibrated, ideal). Rows the kernel
    cannot express are never counted (NaN predictions are dropped). ``chips`` lists chips to report in that
    order, with n = 0 and empty statistics for a chip without a case; by default every chip that has one.
    """
    need = {"role", "chip_id", "calibrated_error_pct", "ideal_error_pct", "ratio", "ideal", "measured"}
    if not need <= set(table.columns):
        raise ValueError(f"the table needs columns {sorted(need)}, got {sorted(table.columns)}")
    roles = sorted(set(table["role"].astype(str)))
    check_choice("role", role, roles)
    t = table[(table["role"] == role) & table["ratio"].notna()]
    order = list(dict.fromkeys(t["chip_id"].astype(str))) if chips is None else [str(c) for c in chips]
    out = []
    for chip in order:
        g = t[t["chip_id"] == chip]
        if g.empty:
            out.append({"chip_id": chip, "n": 0, **{c: float("nan") for c in ACCURACY_COLUMNS[2:]}})
            continue
        ideal_ratio = g["ideal"] / g["measured"]
        out.append({
            "chip_id": chip, "n": int(len(g)),
            "median_abs_error_pct_calibrated": float(g["calibrated_error_pct"].abs().median()),
            "median_abs_error_pct_ideal": float(g["ideal_error_pct"].abs().median()),
            "max_factor_calibrated": float(np.max(np.maximum(g["ratio"], 1.0 / g["ratio"]))),
            "max_factor_ideal": float(np.max(np.maximum(ideal_ratio, 1.0 / ideal_ratio))),
            "bias_pct_calibrated": float(g["calibrated_error_pct"].median()),
            "bias_pct_ideal": float(g["ideal_error_pct"].median()),
        })
    return pd.DataFrame(out, columns=list(ACCURACY_COLUMNS))


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """Median absolute % error (ideal and calibrated) per role and overall, and the worst ratio."""
    res: dict[str, Any] = {}
    table = table[table["ratio"].notna()] if "ratio" in table.columns else table
    for role, g in [("all", table), *table.groupby("role")]:
        res[str(role)] = {
            "n": int(len(g)),
            "median_abs_error_pct_calibrated": round(float(g["calibrated_error_pct"].abs().median()), 1),
            "median_abs_error_pct_ideal": round(float(g["ideal_error_pct"].abs().median()), 1),
            "max_factor_calibrated": round(float(np.max(np.maximum(g["ratio"], 1.0 / g["ratio"]))), 2),
        }
    return res


def build(root: Path | str | None = None, fit_all: bool | None = None) -> dict[str, Any]:
    """The content of ``calibration.json``: fitted efficiencies and overheads, what they were fitted on, errors."""
    df = load("deployments", root)
    params = fit(df, root, fit_all)
    table = validate(root, params)
    gone = inexpressible(root)
    return {
        "efficiencies": {k: params[k] for k in (*kernel.EFFICIENCY_NAMES, *kernel.CURVE_NAMES)},
        "overheads": {k: params.get(k, 0.0) for k in kernel.OVERHEAD_NAMES},
        "model": "time/pass = n_layers*decode_layer_latency_s [decode only] + X + Y - overlap*min(X, Y), "
                 "X = (t_compute + t_memory)/eff[phase] (decode: at least t_weights/decode_small_batch), "
                 "Y = t_network/eff['network']; speculative decoding: k draft passes + one verification pass per "
                 "step; static-batch rows: one prefill step + (output-1)/accept_length decode steps",
        "fitted_on": sorted(df.loc[df["role"] == "calibration", "id"].tolist()),
        "held_out": sorted(df.loc[df["role"] == "validation", "id"].tolist()),
        "not_expressible": {str(i): str(w) for i, w in zip(gone["id"], gone["reason"])},
        "errors": summary(table),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tokenlib.model.calibrate [--check] [--root DIR] [--explain ID]``."""
    p = argparse.ArgumentParser(prog="python -m tokenlib.model.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if calibration.json differs from a fresh fit")
    p.add_argument("--root", default=None, help="data folder (default: the book's data/)")
    p.add_argument("--out", default=str(kernel.CALIBRATION_FILE))
    p.add_argument("--fit-all", action="store_true", help="fit decode_small_batch and overlap too (see FIT_ALL)")
    p.add_argument("--explain", metavar="ID", default=None,
                   help="print where the calibrated kernel puts the time of deployment ID (see explain()) and exit")
    a = p.parse_args(argv)
    if a.explain is not None:
        try:
            table = explain(a.explain, a.root)
        except Exception as exc:  # one-line message, non-zero exit
            print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
            return 2
        at = table.attrs
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"{at['id']}: measured {at['measured']:.4g} tokens/s per chip ({at['measured_ms_per_run_token']:.4g} chip-ms "
              f"per output token), calibrated {at['calibrated']:.4g} ({at['calibrated_ms_per_run_token']:.4g} ms), "
              f"ideal {at['ideal']:.4g}; calibrated / measured = {at['ratio']:.3g}")
        return 0
    try:
        content = build(a.root, True if a.fit_all else None)
    except Exception as exc:  # one-line message, non-zero exit
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    text = json.dumps(content, indent=2, sort_keys=True) + "\n"
    if a.check:
        current = Path(a.out).read_text(encoding="utf-8") if Path(a.out).exists() else ""
        cur = json.loads(current or "{}")
        if cur.get("efficiencies") != content["efficiencies"] or cur.get("overheads") != content["overheads"]:
            print(f"error: {a.out} is stale; run python -m tokenlib.model.calibrate", file=sys.stderr)
            return 1
        print("calibration.json is up to date")
        return 0
    Path(a.out).write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
