"""Command line: ``python -m tokenlib estimate --model deepseek-v3 --chip h800 --phase decode ...``.

Prints throughput (ideal and calibrated), cost per Mtok (input, cached input, output as applicable)
and every assumption used; ``--json`` prints one JSON object. Errors (bad arguments included): one line
``error: ...`` on stderr, exit 2; with ``--json``, one JSON object ``{"error": ...}`` on stdout instead.
A number that is not finite is never printed: it is an error. Defaults read from the data (the CNY/USD
month, the electricity price) are named in the output.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from tokenlib.model import cost
from tokenlib.model import kernel


class UsageError(ValueError):
    """A bad command line (argparse would otherwise print a usage block and exit)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m tokenlib", description="Token Capital inference cost kernel")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("estimate", help="throughput and cost per million tokens for one scenario")
    e.add_argument("--model", required=True)
    e.add_argument("--chip", required=True)
    e.add_argument("--phase", required=True, help="prefill, decode or cached_input")
    e.add_argument("--batch", type=float, default=None, help="concurrent sequences in the n-chip group")
    e.add_argument("--tokens-per-s-per-user", type=float, default=None,
                   help="instead of --batch (decode): the largest batch that still gives each user this speed")
    e.add_argument("--draft-tokens", type=int, default=None, help="speculative decoding: draft tokens per step (k)")
    e.add_argument("--accept-length", type=float, default=None,
                   help="speculative decoding: mean tokens accepted per step, bonus included (1 <= a <= k + 1)")
    e.add_argument("--attention", default=None, help="parallel layout of attention: tp or dp (default: the kernel's rule)")
    e.add_argument("--expert-parallel", type=int, default=None, help="chips the experts are spread over")
    e.add_argument("--context", type=float, required=True, help="prompt length (prefill) or KV length (decode)")
    e.add_argument("--precision", default="bf16",
                   help="weights and matmul inputs: bf16, fp16, fp8, int8 (W8A8; 'w8a8' is accepted) or fp4 "
                        "(only on chips with a published dense FP4 peak)")
    e.add_argument("--n-chips", type=float, default=1.0)
    e.add_argument("--place", default=None)
    e.add_argument("--electricity", type=float, default=None, help="CNY/kWh (instead of --place)")
    e.add_argument("--utilization", type=float, default=None)
    e.add_argument("--currency", default="CNY")
    e.add_argument("--fx-month", default=None, help="YYYY-MM of the CNY/USD rate (default: the latest in data/fx.csv)")
    e.add_argument("--json", action="store_true")
    return p


def estimate(a: argparse.Namespace) -> dict[str, Any]:
    """Compute the estimate dict for parsed arguments."""
    kphase = "decode" if a.phase == "decode" else "prefill"
    if (a.batch is None) == (a.tokens_per_s_per_user is None):
        raise UsageError("give --batch or --tokens-per-s-per-user (decode), exactly one")
    spec = None
    if a.draft_tokens is not None or a.accept_length is not None:
        if a.draft_tokens is None or a.accept_length is None:
            raise UsageError("speculative decoding needs both --draft-tokens and --accept-length")
        spec = kernel.Speculative(a.draft_tokens, a.accept_length)
    opts = kernel.KernelOptions.of(speculative=spec, attention=a.attention, expert_parallel=a.expert_parallel)
    batch = a.batch
    if batch is None:
        if a.phase != "decode":
            raise UsageError("--tokens-per-s-per-user sets the decode batch: use it with --phase decode")
        batch = float(kernel.batch_for_speed(a.model, a.chip, context=a.context, tokens_per_s_per_user=a.tokens_per_s_per_user,
                                             precision=a.precision, n_chips=a.n_chips, options=opts))
    kw: dict[str, Any] = dict(batch=batch, context=a.context, precision=a.precision, n_chips=a.n_chips, options=opts)
    ideal = kernel.throughput(a.model, a.chip, kphase, calibrated=False, **kw) if a.phase in ("prefill", "decode", "cached_input") else None
    cal = kernel.throughput(a.model, a.chip, kphase, calibrated=True, **kw)
    r = kernel.rates(a.model, a.chip, kphase, batch=batch, context=a.context, precision=a.precision,
                     n_chips=a.n_chips, options=opts)
    per_mtok = cost.cost_per_mtok(a.model, a.chip, a.phase, place=a.place, electricity_cny_per_kwh=a.electricity,
                                  utilization=a.utilization, currency=a.currency, fx_month=a.fx_month, **kw)
    hour = cost.chip_hour_cost(a.chip, place=a.place, electricity_cny_per_kwh=a.electricity, currency=a.currency,
                               fx_month=a.fx_month)
    from tokenlib.data import fx
    from tokenlib.data import specs

    rate, month = fx.cny_per_usd(a.fx_month)
    price = specs.chip(a.chip).price_usd
    return {
        "model": a.model, "chip": a.chip, "phase": a.phase, "precision": specs.precision_id(a.precision), "batch": batch,
        "batch_basis": ("--batch" if a.batch is not None else
                        f"largest batch giving >= {a.tokens_per_s_per_user:g} tokens/s per user"),
        "tokens_per_s_per_user": float(r.per_user) if kphase == "decode" else None,
        "speculative": None if spec is None else {"draft_tokens": spec.draft_tokens, "accept_length": spec.accept_length},
        "context": a.context, "n_chips": a.n_chips, "place": a.place,
        "tokens_per_s_per_chip": {"ideal": ideal, "calibrated": cal},
        "efficiencies": kernel.efficiencies(),
        "overheads": kernel.overheads(),
        "cost_per_mtok": per_mtok, "currency": a.currency, "chip_hour_cost": hour,
        "chip_cost_basis": "price_usd from chips.csv" if price == price else "rental fallback (no price in chips.csv)",
        "cny_per_usd": rate, "fx_month": month,
        "fx_basis": (f"--fx-month {month}" if a.fx_month else
                     f"latest month in data/fx.csv ({month}); pass --fx-month to choose another"),
        "electricity_basis": (f"--place {a.place}" if a.place else "--electricity" if a.electricity is not None
                              else "default: median of the sourced place prices in data/places.csv"),
        "electricity_cny_per_kwh": (a.electricity if a.electricity is not None else
                                    cost._electricity(a.place, None, None).item()),
        "assumptions": {k: {kk: vv for kk, vv in v.items()} for k, v in cost.assumptions().items()},
    }


def _print_text(r: dict[str, Any]) -> None:
    t = r["tokens_per_s_per_chip"]
    print(f"{r['model']} on {r['n_chips']:g} x {r['chip']}, {r['phase']}, {r['precision']}, batch {r['batch']:g} "
          f"({r['batch_basis']}), context {r['context']:g}")
    if r["tokens_per_s_per_user"] is not None:
        print(f"  speed per user: {r['tokens_per_s_per_user']:,.1f} tokens/s")
    print(f"  throughput per chip: ideal {t['ideal']:,.0f} tok/s, calibrated {t['calibrated']:,.0f} tok/s "
          f"(efficiencies {r['efficiencies']}; decode latency per layer "
          f"{r['overheads']['decode_layer_latency_s'] * 1e6:.0f} us)")
    print(f"  cost: {r['cost_per_mtok']:.4f} {r['currency']}/Mtok; chip-hour {r['chip_hour_cost']:.3f} {r['currency']} "
          f"({r['chip_cost_basis']}); FX {r['cny_per_usd']} CNY/USD ({r['fx_basis']}); "
          f"electricity {r['electricity_cny_per_kwh']:.3f} CNY/kWh ({r['electricity_basis']})")
    print("  assumptions:")
    for k, v in r["assumptions"].items():
        print(f"    {k} = {v['value']} [{v['kind']}] {v.get('note', '')}")


def _finite(value: Any, where: str = "result") -> None:
    """Refuse a non-finite number anywhere in the result (the CLI never prints nan or inf)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite(v, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is not a finite number ({value}); this is a bug or a gap in the data")


def _fail(exc: BaseException, as_json: bool) -> int:
    msg = " ".join(str(exc).split())
    if as_json:
        print(json.dumps({"error": msg, "type": type(exc).__name__}))
    else:
        print(f"error: {type(exc).__name__}: {msg}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    try:
        a = _parser().parse_args(args)
        result = json.loads(json.dumps(estimate(a), default=float))
        _finite(result)
        text = json.dumps(result, allow_nan=False)
    except Exception as exc:  # every failure: one line, non-zero exit  # noqa: BLE001
        return _fail(exc, as_json)
    if a.json:
        print(text)
    else:
        _print_text(result)
    return 0
