"""Fit the kernel's named efficiencies and decode latency once, globally, and check them on held-out measurements.

The calibrated layer (see :mod:`tokenlib.kernel`) predicts, per chip and per engine step,
``time = L * tau + (t_compute + t_memory) / eff[phase] + t_network / eff["network"]`` (``L * tau``
in decode only: ``tau`` = ``decode_layer_latency_s``). Per token that is linear in
``x = (1/eff_prefill, 1/eff_decode, 1/eff_network, tau)``, so the fit is an exact bounded
least-squares problem: minimise the sum over the ``role == "calibration"`` rows of
``(predicted time / measured time - 1) ** 2`` subject to ``1/eff >= 1`` (every efficiency <= 1, which
keeps calibrated <= ideal) and ``tau >= 0``; it is solved exactly by enumerating which bounds are
active. A parameter no calibration row can identify stays at its bound (efficiency 1, tau 0). Rows
with ``role == "validation"`` are never used to fit; :func:`validate` reports the error on both.

Run ``python -m tokenlib.calibrate`` to refit and rewrite ``tokenlib/calibration.json`` (runtime
never fits). ``python -m tokenlib.calibrate --check`` exits non-zero if the committed file is stale.
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

from tokenlib import kernel
from tokenlib.data import load

FloatArray = kernel.FloatArray


N_PARAMS = 4  # 1/eff prefill, 1/eff decode, 1/eff network, decode_layer_latency_s
LOWER = np.array([1.0, 1.0, 1.0, 0.0])


def _kv_precision(r: dict[str, Any]) -> str:
    v = r.get("kv_precision")
    return "bf16" if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) in ("", "nan", "None") else str(v)


def _design(df: pd.DataFrame, root: Path | str | None) -> tuple[FloatArray, FloatArray]:
    """Per-token seconds per unit parameter (columns: prefill, decode, network, decode layers) and measured s/token."""
    a = np.zeros((len(df), N_PARAMS))
    records = cast(list[dict[str, Any]], df.to_dict("records"))
    for i, r in enumerate(records):
        t = kernel.step_times(str(r["model_id"]), str(r["chip_id"]), str(r["phase"]), batch=float(r["batch"]),
                              context=float(r["context"]), precision=str(r["precision"]),
                              n_chips=float(r["n_chips"]), kv_precision=_kv_precision(r), root=root)
        tok = float(t["tokens"])
        a[i, 0 if r["phase"] == "prefill" else 1] = (float(t["compute"]) + float(t["memory"])) / tok
        a[i, 2] = float(t["network"]) / tok
        a[i, 3] = float(t["layers"]) / tok
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


def validate(root: Path | str | None = None, efficiencies: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per measured deployment: measured, ideal and calibrated tokens/s per chip, signed % errors.

    Columns: id, system, model_id, chip_id, phase, precision, n_chips, batch, context, role, measured,
    ideal, calibrated, ideal_error_pct, calibrated_error_pct (100 x (predicted - measured) / measured),
    ratio (calibrated / measured), source_url.
    """
    df = load("deployments", root)
    eff = {**kernel.efficiencies(), **kernel.overheads()} if efficiencies is None else efficiencies
    out = []
    records = cast(list[dict[str, Any]], df.to_dict("records"))
    for r in records:
        kw: dict[str, Any] = dict(batch=float(r["batch"]), context=float(r["context"]),
                                  precision=str(r["precision"]), n_chips=float(r["n_chips"]),
                                  kv_precision=_kv_precision(r), root=root)
        ids = (str(r["model_id"]), str(r["chip_id"]), str(r["phase"]))
        ideal = float(kernel.throughput(*ids, calibrated=False, **kw))
        cal = float(kernel.throughput(*ids, calibrated=True, efficiencies=eff,
                                      decode_layer_latency_s=float(eff.get("decode_layer_latency_s", 0.0)), **kw))
        meas = float(r["tokens_per_s_per_chip"])
        out.append({
            **{k: r[k] for k in ("id", "system", "model_id", "chip_id", "phase", "precision", "n_chips",
                                 "batch", "context", "role")},
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
        "overheads": {k: params[k] for k in kernel.OVERHEAD_NAMES},
        "model": "time/step = n_layers*decode_layer_latency_s [decode only] + (t_compute + t_memory)/eff[phase] "
                 "+ t_network/eff['network']",
        "fitted_on": sorted(df.loc[df["role"] == "calibration", "id"].tolist()),
        "held_out": sorted(df.loc[df["role"] == "validation", "id"].tolist()),
        "errors": summary(table),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tokenlib.calibrate [--check] [--root DIR]``."""
    p = argparse.ArgumentParser(prog="python -m tokenlib.calibrate", description=__doc__.splitlines()[0])
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
            print(f"error: {a.out} is stale; run python -m tokenlib.calibrate", file=sys.stderr)
            return 1
        print("calibration.json is up to date")
        return 0
    Path(a.out).write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
