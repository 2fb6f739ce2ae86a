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
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from tokenlib.model import kernel
from tokenlib.data import load
from tokenlib.errors import check_choice

FloatArray = kernel.FloatArray


N_PARAMS = 4  # 1/eff prefill, 1/eff decode, 1/eff network, decode_layer_latency_s
LOWER = np.array([1.0, 1.0, 1.0, 0.0])


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


def _row_terms(r: dict[str, Any], root: Path | str | None) -> FloatArray:
    """Seconds per measured token at every parameter = 1: columns (compute+memory) of prefill, of decode,
    network, and decode layers. A row's predicted seconds per token is ``terms @ x``."""
    row = np.zeros(N_PARAMS)
    kw = _common(r, root)
    if _is_static(r):
        t = kernel.static_batch_times(str(r["model_id"]), str(r["chip_id"]), input_len=float(r["input_tokens"]),
                                      output_len=float(r["output_tokens"]), **kw)
        parts = [("prefill", t["prefill"], 1.0), ("decode", t["decode"], float(t["decode_steps"]))]
        tokens = float(t["tokens"])
    else:
        step = kernel.step_times(str(r["model_id"]), str(r["chip_id"]), str(r["phase"]), context=float(r["context"]), **kw)
        parts = [(str(r["phase"]), step, 1.0)]
        tokens = float(step["tokens"])
    for phase, terms, count in parts:
        row[0 if phase == "prefill" else 1] += count * (float(terms["compute"]) + float(terms["memory"])) / tokens
        row[2] += count * float(terms["network"]) / tokens
        row[3] += count * float(terms["layers"]) / tokens
    return row


def _design(df: pd.DataFrame, root: Path | str | None) -> tuple[FloatArray, FloatArray]:
    """Per-token seconds per unit parameter (columns: prefill, decode, network, decode layers) and measured s/token."""
    records = cast(list[dict[str, Any]], df.to_dict("records"))
    a = np.array([_row_terms(r, root) for r in records]).reshape(len(records), N_PARAMS)
    measured = 1.0 / df["tokens_per_s_per_chip"].to_numpy(dtype=float)
    return a, measured


def _params_to_dict(x: FloatArray) -> dict[str, float]:
    out = {name: float(round(1.0 / xi, 6)) for name, xi in zip(kernel.EFFICIENCY_NAMES, x[:3])}
    out["decode_layer_latency_s"] = float(round(float(x[3]), 9))
    return out


def fit(deployments: pd.DataFrame | None = None, root: Path | str | None = None) -> dict[str, float]:
    """Fit on the calibration rows; returns ``{"prefill", "decode", "network", "decode_layer_latency_s"}``."""
    df = load("deployments", root) if deployments is None else deployments
    cal = df[df["role"] == "calibration"]
    if cal.empty:
        raise ValueError("no deployments with role=calibration to fit on")
    a, t = _design(cal, root)
    m = a / t[:, None]  # want m @ x ~= 1
    best: tuple[float, FloatArray] | None = None
    for free in itertools.product((False, True), repeat=N_PARAMS):
        x = LOWER.copy()
        idx = [j for j in range(N_PARAMS) if free[j] and np.any(m[:, j] > 0)]
        fixed = [j for j in range(N_PARAMS) if j not in idx]
        if idx:
            rhs = 1.0 - m[:, fixed] @ x[fixed]
            sol, *_ = np.linalg.lstsq(m[:, idx], rhs, rcond=None)
            if np.any(sol < LOWER[idx] - 1e-12):
                continue
            x[idx] = sol
        loss = float(np.sum((m @ x - 1.0) ** 2))
        if best is None or loss < best[0] - 1e-15:
            best = (loss, x)
    assert best is not None  # the all-at-bounds set is always feasible
    return _params_to_dict(best[1])


def validate(root: Path | str | None = None, efficiencies: Mapping[str, float] | None = None,
             kv_reads: str | None = None) -> pd.DataFrame:
    """One row per measured deployment: measured, ideal and calibrated tokens/s per chip, signed % errors.

    ``kv_reads`` (one of :data:`tokenlib.model.kernel.KV_READS`) overrides every row's ``kv_reads``, to show
    what that term does. Rows with ``metric == "static_batch_end_to_end"`` are predicted with
    :func:`tokenlib.model.kernel.static_batch_throughput` (output tokens over the whole run, prefill included).

    Columns: id, system, model_id, chip_id, phase, precision, n_chips, batch, context, role, metric, measured,
    ideal, calibrated, ideal_error_pct, calibrated_error_pct (100 x (predicted - measured) / measured),
    ratio (calibrated / measured), source_url.
    """
    if kv_reads is not None:
        check_choice("kv_reads", kv_reads, kernel.KV_READS)
    df = load("deployments", root)
    eff = {**kernel.efficiencies(), **kernel.overheads()} if efficiencies is None else efficiencies
    out = []
    records = cast(list[dict[str, Any]], df.to_dict("records"))
    for r in records:
        # a measured run evidently fit in memory: check it without the kernel's overhead assumption
        kw: dict[str, Any] = dict(**_common(r, root), memory_overhead=0.0)
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
        meas = float(r["tokens_per_s_per_chip"])
        out.append({
            **{k: r[k] for k in ("id", "system", "model_id", "chip_id", "phase", "precision", "n_chips",
                                 "batch", "context", "role")},
            "metric": _cell(r, "metric", "steady_state"),
            "measured": meas, "ideal": ideal, "calibrated": cal,
            "ideal_error_pct": 100.0 * (ideal - meas) / meas,
            "calibrated_error_pct": 100.0 * (cal - meas) / meas,
            "ratio": cal / meas, "source_url": r["source_url"],
        })
    return pd.DataFrame(out)


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """Median absolute % error (ideal and calibrated) per role and overall, and the worst ratio."""
    res: dict[str, Any] = {}
    for role, g in [("all", table), *table.groupby("role")]:
        res[str(role)] = {
            "n": int(len(g)),
            "median_abs_error_pct_calibrated": round(float(g["calibrated_error_pct"].abs().median()), 1),
            "median_abs_error_pct_ideal": round(float(g["ideal_error_pct"].abs().median()), 1),
            "max_factor_calibrated": round(float(np.max(np.maximum(g["ratio"], 1.0 / g["ratio"]))), 2),
        }
    return res


def build(root: Path | str | None = None) -> dict[str, Any]:
    """The content of ``calibration.json``: fitted efficiencies and overheads, what they were fitted on, errors."""
    df = load("deployments", root)
    params = fit(df, root)
    table = validate(root, params)
    return {
        "efficiencies": {k: params[k] for k in kernel.EFFICIENCY_NAMES},
        "overheads": {k: params.get(k, 0.0) for k in kernel.OVERHEAD_NAMES},
        "model": "time/step = n_layers*decode_layer_latency_s [decode only] + (t_compute + t_memory)/eff[phase] "
                 "+ t_network/eff['network']; static-batch rows: one prefill step + (output-1) decode steps",
        "fitted_on": sorted(df.loc[df["role"] == "calibration", "id"].tolist()),
        "held_out": sorted(df.loc[df["role"] == "validation", "id"].tolist()),
        "errors": summary(table),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tokenlib.model.calibrate [--check] [--root DIR]``."""
    p = argparse.ArgumentParser(prog="python -m tokenlib.model.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if calibration.json differs from a fresh fit")
    p.add_argument("--root", default=None, help="data folder (default: the book's data/)")
    p.add_argument("--out", default=str(kernel.CALIBRATION_FILE))
    a = p.parse_args(argv)
    try:
        content = build(a.root)
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
