"""The inference kernel: memory fit, KV-cache size, roofline throughput and its calibrated layer.

Two layers, always labelled:

* **ideal** (``calibrated=False``): a roofline with perfect overlap. Per chip and per engine step,
  ``t = max(t_compute, t_memory, t_network)`` where
  ``t_compute = FLOPs / dense peak`` (weights: 2 x active params per token, plus attention FLOPs),
  ``t_memory = bytes read from HBM / HBM bandwidth`` (resident weights touched + KV cache read/written),
  ``t_network = bytes exchanged / link bandwidth`` (MoE expert dispatch/combine or tensor-parallel
  all-reduce). It is what the hardware allows.
* **calibrated** (``calibrated=True``): the same terms, *serialised* and divided by named
  phase-specific efficiencies, plus a fixed per-layer latency in decode, all fitted once, globally,
  on published measurements (:mod:`tokenlib.model.calibrate`, stored in ``tokenlib/model/calibration.json``):
  ``t = L * tau_decode [decode only] + (t_compute + t_memory) / eff[phase] + t_network / eff["network"]``.
  ``tau_decode`` (``decode_layer_latency_s``) is the time each of the ``L`` layers costs per decode
  step whatever the batch: kernel launches, synchronisation and the latency (not bandwidth) of the
  expert dispatch/combine or all-reduce. It dominates at small batch / tight TPOT. Because every
  efficiency is <= 1, ``tau >= 0`` and a sum is >= a max, calibrated <= ideal always.

Physics common to both layers (see :data:`ASSUMPTIONS`): weight-GEMM FLOPs run at the peak of the
requested precision, attention FLOPs at the BF16 peak; MoE groups of at least
``moe_dp_attention_min_chips`` chips are served with data-parallel attention + expert parallelism,
so every chip holds (and reads each step) the whole non-expert part of the model plus its share of
the experts; smaller MoE groups and dense models are tensor-parallel (all weights sharded).

Conventions: ``batch`` = concurrent sequences served by the ``n_chips`` group; ``context`` = prompt
length (prefill) or mean KV length (decode); results are tokens per second **per chip** (prefill:
input tokens, decode: output tokens). Every function broadcasts over numpy arrays; scalars in give
floats out. Model and chip may be arrays of ids for grids.

Batches that do not fit in HBM: ``on_oom="raise"`` (default) raises :class:`MemoryFitError`;
``on_oom="nan"`` returns NaN for those scenarios (the flag: NaN *only* ever means "does not fit";
use :func:`fits` to get the boolean mask). A number is never returned for a batch that does not fit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tokenlib.data import specs
from tokenlib.errors import MissingSpecError, check_choice, check_count, check_flag, check_fraction, check_number, check_shapes

FloatArray = npt.NDArray[np.float64]
PHASES = ("prefill", "decode")
KV_READS = ("once_per_kv_head", "once_per_query_head")
"""How a decode attention kernel reads the KV cache of grouped-query (GQA) models: each KV head once
per step for all the query heads that share it, or once for every query head (see ASSUMPTIONS)."""
EFFICIENCY_NAMES = ("prefill", "decode", "network")
OVERHEAD_NAMES = ("decode_layer_latency_s",)
"""Fitted fixed-time terms (seconds), stored in ``calibration.json`` under ``overheads``."""

ASSUMPTIONS: dict[str, dict[str, Any]] = {
    "memory_overhead_fraction": {
        "value": 0.10,
        "kind": "assumption",
        "note": "Share of HBM not available for weights + KV cache (activations, runtime, fragmentation). "
        "Our assumption, not a published constant.",
    },
    "kv_precision": {
        "value": "bf16",
        "kind": "sourced",
        "note": "KV cache kept in BF16: DeepSeek Day-6 overview, 'core MLA computations and combine "
        "transmissions use the BF16 format'.",
        "source": "https://github.com/deepseek-ai/open-infra-index/blob/3122a25220273cb0806f591e52c4171bd869d8ad/"
        "202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_overview.md",
    },
    "attention_precision": {
        "value": "bf16",
        "kind": "sourced",
        "note": "Attention (score and value matmuls) runs at the BF16 peak whatever the weight precision: "
        "DeepSeek Day-6 overview, 'core MLA computations and combine transmissions use the BF16 format'. "
        "Applied to every model (an assumption for GQA engines with FP8 attention kernels).",
        "source": "https://github.com/deepseek-ai/open-infra-index/blob/3122a25220273cb0806f591e52c4171bd869d8ad/"
        "202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_overview.md",
    },
    "kv_reads": {
        "value": "once_per_kv_head",
        "kind": "assumption",
        "note": "Decode attention reads each KV head of a GQA model once per step, shared by the query heads "
        "of its group (the default: what grouped-query kernels such as TensorRT-LLM's XQA do). Older "
        "kernels launched one thread block per (sequence, query head) and so read each KV head once per "
        "query head, n_heads / n_kv_heads times as many bytes: TensorRT-LLM v0.6.1's masked MHA kernel, "
        "'The different kernels assign a threadblock for B x H pair' and 'const unsigned hi_kv{hi / "
        "qhead_per_kv};' (decoderMaskedMultiheadAttentionTemplate.h at the v0.6.1 performance page's "
        "commit). Pass kv_reads='once_per_query_head' for such engines; no L2-cache reuse is credited, so "
        "that setting is an upper bound on the bytes read. MLA models are unaffected (their latent is "
        "one shared head).",
        "source": "https://github.com/NVIDIA/TensorRT-LLM/blob/138f96d45f90b9667426f7c47297d8c06bafac73/cpp/"
        "tensorrt_llm/kernels/decoderMaskedMultiheadAttention/decoderMaskedMultiheadAttentionTemplate.h",
    },
    "moe_dp_attention_min_chips": {
        "value": 16,
        "kind": "assumption",
        "note": "MoE serving groups of at least this many chips use data-parallel attention + expert "
        "parallelism (DeepSeek Day-6 'EP32/DP32', 'EP144/DP144'; SGLang 'DP Attention' with EP32/EP72; "
        "CloudMatrix-Infer EP320): each chip holds the non-expert weights N = active - k*e and 1/n of "
        "the expert weights E = n_routed*e, with e = (total - active)/(n_routed - k) per expert "
        "(derived from models.csv). Smaller MoE groups are taken as tensor-parallel (all weights / n).",
    },
    "moe_node_dedup": {
        "value": "prefill",
        "kind": "sourced",
        "note": "Prefill expert dispatch across nodes sends one RDMA copy per destination node and forwards "
        "inside the node over NVLink (DeepEP 'normal kernels ... asymmetric-domain bandwidth forwarding, "
        "such as forwarding data from NVLink domain to RDMA domain'); decode uses DeepEP 'low-latency "
        "kernels with pure RDMA', one copy per remote expert. Expected distinct remote domains among k "
        "experts placed uniformly: D(1-(1-1/D)^k)(D-1)/D for D domains.",
        "source": "https://github.com/deepseek-ai/DeepEP",
    },
    "scale_out_gbps": {
        "value": 50.0,
        "kind": "sourced",
        "note": "Per-chip bandwidth between nodes (one 400 Gb/s RDMA NIC per GPU): DeepEP README, 'CX7 "
        "InfiniBand 400 Gb/s RDMA network card (~50 GB/s maximum bandwidth)'. Used when a serving "
        "group spans more chips than one scale-up domain.",
        "source": "https://github.com/deepseek-ai/DeepEP",
    },
    "scale_up_domain": {
        "value": {"default": 8},
        "kind": "assumption",
        "note": "Chips sharing the scale-up link (NVLink/HCCS/UB) when data/scaleup_domains.csv has no row for "
        "the chip: 8 = one HGX/Atlas node. Larger domains are sourced rows of that table (ascend-910c: 384, the "
        "CloudMatrix384 supernode). Scale-up bandwidth per direction = interconnect_gbps / 2 (chips.csv quotes "
        "the bidirectional total).",
    },
}
"""Every kernel assumption, named, with its value and whether it is sourced or our assumption."""


class MemoryFitError(ValueError):
    """Weights + KV cache for the requested batch do not fit in the chips' HBM."""


def _arr(x: Any) -> FloatArray:
    return np.asarray(x, dtype=float)


def _out(x: FloatArray, scalar: bool) -> Any:
    return float(x) if scalar and np.ndim(x) == 0 else x


# ----------------------------------------------------------------------------- pure formulas


def kv_bytes_per_token_raw(
    attention_code: Any, n_layers: Any, n_kv_heads: Any, head_dim: Any,
    kv_lora_rank: Any, qk_rope_head_dim: Any, kv_bytes: Any,
) -> FloatArray:
    """KV-cache bytes per token (all layers). attention_code: 0 MHA, 1 GQA, 2 MLA.

    MHA/GQA: ``2 * n_layers * n_kv_heads * head_dim * bytes`` (keys and values).
    MLA: ``(kv_lora_rank + qk_rope_head_dim) * n_layers * bytes`` (compressed latent + RoPE key).
    """
    code = _arr(attention_code)
    gqa = 2.0 * _arr(n_layers) * _arr(n_kv_heads) * _arr(head_dim) * _arr(kv_bytes)
    mla = (np.nan_to_num(_arr(kv_lora_rank)) + np.nan_to_num(_arr(qk_rope_head_dim))) * _arr(n_layers) * _arr(kv_bytes)
    result: FloatArray = np.where(code == 2, mla, gqa)
    return result


def attention_flops_per_token(
    attention_code: Any, n_layers: Any, n_heads: Any, head_dim: Any, kv_lora_rank: Any,
    qk_rope_head_dim: Any, attended: Any, phase_is_decode: Any,
) -> FloatArray:
    """Attention FLOPs per token attending over ``attended`` earlier tokens (score + value matmuls).

    MHA/GQA: ``4 * n_layers * n_heads * head_dim * attended``.
    MLA decode (weights absorbed, attention in latent space): ``2 * n_layers * n_heads * attended *
    (2 * kv_lora_rank + qk_rope_head_dim)``. MLA prefill (not absorbed): ``2 * n_layers * n_heads *
    attended * (2 * head_dim + qk_rope_head_dim)``.
    """
    code = _arr(attention_code)
    L, H, D = _arr(n_layers), _arr(n_heads), _arr(head_dim)
    r = np.nan_to_num(_arr(kv_lora_rank))
    rope = np.nan_to_num(_arr(qk_rope_head_dim))
    a = _arr(attended)
    gqa = 4.0 * L * H * D * a
    mla = np.where(_arr(phase_is_decode) > 0, 2.0 * L * H * a * (2.0 * r + rope), 2.0 * L * H * a * (2.0 * D + rope))
    result: FloatArray = np.where(code == 2, mla, gqa)
    return result


# ----------------------------------------------------------------------------- helpers on ids


def _check_common(batch: Any, context: Any, n_chips: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
    b = check_count("batch", batch)
    c = check_number("context", context, allow_zero=False)
    n = check_count("n_chips", n_chips)
    check_shapes(batch=b, context=c, n_chips=n)
    return b, c, n


MISSING_LINK = ("raise", "scale_out")
"""What to do when a serving group inside one scale-up domain needs the chip's link figure
(``interconnect_gbps``) and chips.csv has none: raise (default), or, when the caller says so,
carry the traffic over the scale-out network (``scale_out_gbps``) inside the node as well."""


def _missing(what: str, ids: Any, values: Any, field: str, table: str, needed: Any = True, hint: str = "") -> None:
    """Raise :class:`MissingSpecError` where ``values`` (a field of ids) is empty but ``needed``."""
    bad = ~(np.isfinite(values) & (np.asarray(values) > 0)) & np.asarray(needed, dtype=bool)
    if np.any(bad):
        shape = np.broadcast_shapes(np.shape(ids), np.shape(bad))
        names = np.broadcast_to(np.asarray(ids), shape)[np.broadcast_to(bad, shape)]
        raise MissingSpecError(what, [str(x) for x in names.ravel()], field, table, hint)


def _check_model(model: Any, m: Mapping[str, FloatArray], context: Any = None) -> None:
    """The model fields the kernel needs are present, and ``context`` is within the model's maximum."""
    _missing("model", model, m["kv_lora_rank"], "kv_lora_rank", "models", m["attention_code"] == 2)
    _missing("model", model, m["qk_rope_head_dim"], "qk_rope_head_dim", "models", m["attention_code"] == 2)
    _missing("model", model, m["n_experts_per_token"], "n_experts_per_token", "models",
             np.nan_to_num(m["n_routed_experts"]) > 0)
    if context is None:
        return
    c = np.asarray(context, dtype=float)
    top = m["max_context"]
    over = np.isfinite(top) & (c > top)  # models without a published max_context are not limited
    if np.any(over):
        shape = np.broadcast_shapes(np.shape(model), np.shape(over))
        ids = np.broadcast_to(np.asarray(model), shape)[np.broadcast_to(over, shape)]
        tops = np.broadcast_to(top, shape)[np.broadcast_to(over, shape)]
        got = np.broadcast_to(c, shape)[np.broadcast_to(over, shape)]
        raise ValueError(f"context {got.max():g} tokens exceeds the maximum context of model "
                         f"{str(ids.ravel()[0])!r} ({tops.ravel()[0]:g} tokens, max_context in data/models.csv)")


def _overhead(memory_overhead: Any) -> float:
    if memory_overhead is None:
        return float(ASSUMPTIONS["memory_overhead_fraction"]["value"])
    return float(check_fraction("memory_overhead", memory_overhead, closed_low=True, closed_high=False))


def _precision_bytes(name: str, precision: str) -> float:
    check_choice(name, precision, specs.PRECISIONS)
    return specs.BYTES_PER_VALUE[precision]


def kv_bytes_per_token(model: Any, kv_precision: str = "bf16", root: Path | str | None = None) -> Any:
    """KV-cache bytes per token for model id(s), e.g. DeepSeek-V3 in BF16: (512+64)*61*2 = 70,272."""
    kvb = _precision_bytes("kv_precision", kv_precision)
    m = specs.model_fields(model, root)
    out = kv_bytes_per_token_raw(m["attention_code"], m["n_layers"], m["n_kv_heads"], m["head_dim"],
                                 m["kv_lora_rank"], m["qk_rope_head_dim"], kvb)
    return _out(out, np.ndim(model) == 0)


def moe_split_raw(total_b: Any, active_b: Any, n_routed: Any, k: Any) -> tuple[FloatArray, FloatArray]:
    """(non-expert params, all routed-expert params), in billions, from total/active params and expert counts.

    Per routed expert (all layers): ``e = (total - active) / (n_routed - k)``; non-expert (attention,
    embeddings, dense and shared-expert FFNs): ``N = active - k * e``; routed experts: ``E = n_routed * e``.
    Dense models (no routed experts) give ``N = total``, ``E = 0``.
    """
    t, a = _arr(total_b), _arr(active_b)
    nr, kk = np.nan_to_num(_arr(n_routed)), np.nan_to_num(_arr(k))
    moe = (nr > 0) & (nr > kk)
    e = np.where(moe, (t - a) / np.where(moe, nr - kk, 1.0), 0.0)
    non_expert: FloatArray = np.where(moe, np.maximum(a - kk * e, 0.0), t)
    experts: FloatArray = np.where(moe, t - non_expert, 0.0)
    return non_expert, experts


def _dp_attention(m: dict[str, FloatArray], n: FloatArray) -> Any:
    """True where a MoE group is served with DP attention + EP (see ASSUMPTIONS)."""
    thr = float(ASSUMPTIONS["moe_dp_attention_min_chips"]["value"])
    return (np.nan_to_num(m["n_routed_experts"]) > 0) & (n >= thr)


def _weights_per_chip_b(m: dict[str, FloatArray], n: FloatArray) -> FloatArray:
    """Billions of parameters resident on each chip."""
    non_expert, experts = moe_split_raw(m["total_params_b"], m["active_params_b"], m["n_routed_experts"],
                                        m["n_experts_per_token"])
    result: FloatArray = np.where(_dp_attention(m, n), non_expert + experts / n, m["total_params_b"] / n)
    return result


def _memory_per_chip(m: dict[str, FloatArray], b: FloatArray, c: FloatArray, n: FloatArray,
                     wbytes: float, kvb: float) -> FloatArray:
    kv = kv_bytes_per_token_raw(m["attention_code"], m["n_layers"], m["n_kv_heads"], m["head_dim"],
                                m["kv_lora_rank"], m["qk_rope_head_dim"], kvb)
    result: FloatArray = _weights_per_chip_b(m, n) * 1e9 * wbytes + b * c * kv / n
    return result


def _capacity(ch: dict[str, FloatArray], overhead: float, chip: Any = None) -> FloatArray:
    if chip is not None:
        _missing("chip", chip, ch["hbm_gb"], "hbm_gb", "chips")
    result: FloatArray = ch["hbm_gb"] * 1e9 * (1.0 - overhead)
    return result


def memory_required_bytes_per_chip(
    model: Any, *, batch: Any, context: Any, precision: str = "bf16", n_chips: Any = 1,
    kv_precision: str = "bf16", root: Path | str | None = None,
) -> Any:
    """Bytes each chip must hold: weights (total params, sharded evenly) + KV cache (batch x context)."""
    b, c, n = _check_common(batch, context, n_chips)
    wbytes = _precision_bytes("precision", precision)
    kvb = _precision_bytes("kv_precision", kv_precision)
    out = _memory_per_chip(specs.model_fields(model, root), b, c, n, wbytes, kvb)
    return _out(out, all(np.ndim(x) == 0 for x in (model, batch, context, n_chips)))


def fits(
    model: Any, chip: Any, *, batch: Any, context: Any, precision: str = "bf16", n_chips: Any = 1,
    kv_precision: str = "bf16", memory_overhead: float | None = None, root: Path | str | None = None,
) -> Any:
    """True where weights + KV cache fit in ``n_chips`` x HBM x (1 - memory overhead).

    ``memory_overhead`` is a share in [0, 1); ``context`` may not exceed the model's ``max_context``
    (where models.csv gives one). :func:`min_chips` and :func:`max_batch` are defined through this test.
    """
    return _fits(model, chip, batch=batch, context=context, precision=precision, n_chips=n_chips,
                 kv_precision=kv_precision, memory_overhead=memory_overhead, root=root)


def _fits(
    model: Any, chip: Any, *, batch: Any, context: Any, precision: str, n_chips: Any, kv_precision: str,
    memory_overhead: float | None, root: Path | str | None, check_context: bool = True,
) -> Any:
    b, c, n = _check_common(batch, context, n_chips)
    check_shapes(model=np.asarray(model), chip=np.asarray(chip), batch=b, context=c, n_chips=n)
    ov = _overhead(memory_overhead)
    m = specs.model_fields(model, root)
    _check_model(model, m, c if check_context else None)
    need = _memory_per_chip(m, b, c, n, _precision_bytes("precision", precision),
                            _precision_bytes("kv_precision", kv_precision))
    ok = need <= _capacity(specs.chip_fields(chip, root), ov, chip)
    return bool(ok) if np.ndim(ok) == 0 else ok


def min_chips(
    model: Any, chip: Any, *, batch: Any, context: Any, precision: str = "bf16",
    kv_precision: str = "bf16", memory_overhead: float | None = None, root: Path | str | None = None,
    on_oom: str = "raise",
) -> Any:
    """Smallest whole number of chips ``n`` for which :func:`fits` is True.

    Memory per chip is not monotonic in ``n`` for MoE models: at ``moe_dp_attention_min_chips`` the
    layout switches to data-parallel attention and every chip then holds the whole non-expert part.
    So the count is solved per layout (tensor-parallel below the switch, DP attention + EP from it)
    and then checked with :func:`fits` itself. Where no group size fits (the non-expert weights alone
    exceed one chip and tensor parallelism needs more chips than the switch allows):
    ``on_oom="raise"`` raises :class:`MemoryFitError`, ``"nan"`` gives NaN.
    """
    check_choice("on_oom", on_oom, ("raise", "nan"))
    b, c, _ = _check_common(batch, context, 1)
    ov = _overhead(memory_overhead)
    m = specs.model_fields(model, root)
    _check_model(model, m, c)
    wbytes = _precision_bytes("precision", precision)
    kvb = _precision_bytes("kv_precision", kv_precision)
    cap = _capacity(specs.chip_fields(chip, root), ov, chip)
    kv = kv_bytes_per_token_raw(m["attention_code"], m["n_layers"], m["n_kv_heads"], m["head_dim"],
                                m["kv_lora_rank"], m["qk_rope_head_dim"], kvb)
    non_expert, experts = moe_split_raw(m["total_params_b"], m["active_params_b"], m["n_routed_experts"],
                                        m["n_experts_per_token"])
    thr = float(ASSUMPTIONS["moe_dp_attention_min_chips"]["value"])
    moe = np.nan_to_num(m["n_routed_experts"]) > 0
    cache = b * c * kv
    n_tp = np.maximum(np.ceil((m["total_params_b"] * 1e9 * wbytes + cache) / cap), 1.0)
    room = cap - non_expert * 1e9 * wbytes
    with np.errstate(divide="ignore", invalid="ignore"):
        n_dp = np.where(room > 0, np.maximum(np.ceil((experts * 1e9 * wbytes + cache) / room), thr), np.inf)
    n = np.where(moe & (n_tp >= thr), n_dp, n_tp)
    # exact check with the memory test fits() uses (absorbs float rounding at the boundary)
    for _ in range(2):
        finite = np.isfinite(n)
        probe = np.where(finite, n, 1.0)
        need = _memory_per_chip(m, b, c, probe, wbytes, kvb)
        step = np.where(moe & (probe < thr) & (probe + 1 >= thr), n_dp, probe + 1)  # TP -> DP switch
        n = np.where(finite & (need > cap), step, n)
    if np.any(~np.isfinite(n)):
        _guard_fit(n, np.isfinite(n), on_oom, f"{model!r} at {precision} with batch {batch!r} x context "
                   f"{context!r} on any number of {chip!r} chips (the non-expert weights exceed one chip)")
        out: FloatArray = np.where(np.isfinite(n), n, np.nan)
        return out if np.ndim(out) else float(out)
    return int(n) if np.ndim(n) == 0 else n


def max_batch(
    model: Any, chip: Any, *, context: Any, precision: str = "bf16", n_chips: Any = 1,
    kv_precision: str = "bf16", memory_overhead: float | None = None, root: Path | str | None = None,
) -> Any:
    """Largest whole batch (sequences per group) for which :func:`fits` is True; 0 when even the
    weights (with one sequence) do not fit."""
    _, c, n = _check_common(1, context, n_chips)
    ov = _overhead(memory_overhead)
    m = specs.model_fields(model, root)
    _check_model(model, m, c)
    wbytes = _precision_bytes("precision", precision)
    kvb = _precision_bytes("kv_precision", kv_precision)
    kv = kv_bytes_per_token_raw(m["attention_code"], m["n_layers"], m["n_kv_heads"], m["head_dim"],
                                m["kv_lora_rank"], m["qk_rope_head_dim"], kvb)
    cap = _capacity(specs.chip_fields(chip, root), ov, chip)
    free = (cap - _weights_per_chip_b(m, n) * 1e9 * wbytes) * n
    out = np.maximum(np.floor(free / (kv * c)), 0.0)
    # exact check with the memory test fits() uses (absorbs float rounding at the boundary)
    for _ in range(2):
        over = (out > 0) & (_memory_per_chip(m, np.maximum(out, 1.0), c, n, wbytes, kvb) > cap)
        out = np.where(over, out - 1.0, out)
        under = _memory_per_chip(m, out + 1.0, c, n, wbytes, kvb) <= cap
        out = np.where(under, out + 1.0, out)
    return int(out) if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------- efficiencies

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


def _calibration(path: str) -> dict[str, Any]:
    p = Path(path)
    stamp = (p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else (0, -1)
    return _calibration_cached(path, stamp)


@lru_cache(maxsize=4)
def _calibration_cached(path: str, _stamp: tuple[int, int]) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: run `python -m tokenlib.model.calibrate` to fit the efficiencies")
    loaded: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    return loaded


def _load_efficiencies(path: str) -> dict[str, float]:
    return {k: float(_calibration(path)["efficiencies"][k]) for k in EFFICIENCY_NAMES}


def efficiencies(path: Path | str | None = None) -> dict[str, float]:
    """The fitted, named efficiencies (prefill, decode, network) from ``calibration.json``."""
    return _load_efficiencies(str(path or CALIBRATION_FILE))


def _load_overheads(path: str) -> dict[str, float]:
    got = _calibration(path).get("overheads", {})
    return {k: float(got.get(k, 0.0)) for k in OVERHEAD_NAMES}


def overheads(path: Path | str | None = None) -> dict[str, float]:
    """The fitted fixed-time terms (``decode_layer_latency_s``, seconds per layer per decode step)."""
    return _load_overheads(str(path or CALIBRATION_FILE))


# ----------------------------------------------------------------------------- roofline terms


def _domain_size(ch: Mapping[str, FloatArray]) -> FloatArray:
    # chips per scale-up domain (specs.chip_fields of data/scaleup_domains.csv, sourced), else the default node
    dom = ch["scaleup_domain_chips"]
    result: FloatArray = np.where(np.isfinite(dom), dom, float(ASSUMPTIONS["scale_up_domain"]["value"]["default"]))
    return result


def _link_gbps(ch: dict[str, FloatArray], chip: Any, n: FloatArray, scale_out_gbps: float,
               missing_link: str = "raise") -> FloatArray:
    inside = (n > 1) & (n <= _domain_size(ch))
    if missing_link == "raise":
        _missing("chip", chip, ch["interconnect_gbps"], "interconnect_gbps", "chips", inside,
                 "It carries the traffic inside one scale-up domain; pass missing_link='scale_out' to use the "
                 "scale-out network there instead (say so where the result is shown).")
    up = ch["interconnect_gbps"] / 2.0
    up = np.where(np.isfinite(up) & (up > 0), up, scale_out_gbps)
    result: FloatArray = np.where(n <= _domain_size(ch), up, scale_out_gbps)
    return result


def step_times(
    model: Any, chip: Any, phase: str, *, batch: Any, context: Any, precision: str = "bf16",
    n_chips: Any = 1, kv_precision: str = "bf16", scale_out_gbps: float | None = None,
    kv_reads: str = "once_per_kv_head", root: Path | str | None = None, missing_link: str = "raise",
) -> dict[str, Any]:
    """Roofline terms per chip for one engine step, in seconds, plus the tokens that step yields.

    Returns ``{"tokens": ..., "compute": ..., "memory": ..., "network": ..., "layers": ...}`` (tokens per
    chip per step; prefill: batch x context / n_chips, decode: batch / n_chips; ``layers``: the number
    of layers that pay the fixed per-layer decode latency in the calibrated layer, 0 in prefill).
    ``kv_reads``: see :data:`KV_READS` and ``ASSUMPTIONS["kv_reads"]`` (decode only).
    A figure the step needs that chips.csv or models.csv lacks raises :class:`MissingSpecError` naming
    the chip or model and the field (``missing_link``: see :data:`MISSING_LINK`).
    """
    return _step_times(model, chip, phase, batch=batch, context=context, precision=precision, n_chips=n_chips,
                       kv_precision=kv_precision, scale_out_gbps=scale_out_gbps, kv_reads=kv_reads, root=root,
                       missing_link=missing_link)


def _step_times(
    model: Any, chip: Any, phase: str, *, batch: Any, context: Any, precision: str, n_chips: Any,
    kv_precision: str, scale_out_gbps: float | None, kv_reads: str, root: Path | str | None,
    missing_link: str, check_context: bool = True,
) -> dict[str, Any]:
    check_choice("phase", phase, PHASES)
    check_choice("kv_reads", kv_reads, KV_READS)
    check_choice("missing_link", missing_link, MISSING_LINK)
    b, c, n = _check_common(batch, context, n_chips)
    check_shapes(model=np.asarray(model), chip=np.asarray(chip), batch=b, context=c, n_chips=n)
    wbytes = _precision_bytes("precision", precision)
    kvb = _precision_bytes("kv_precision", kv_precision)
    so = float(ASSUMPTIONS["scale_out_gbps"]["value"]) if scale_out_gbps is None else float(
        check_number("scale_out_gbps", scale_out_gbps, allow_zero=False))
    m = specs.model_fields(model, root)
    ch = specs.chip_fields(chip, root)
    _check_model(model, m, c if check_context else None)
    decode = phase == "decode"
    attn_precision = str(ASSUMPTIONS["attention_precision"]["value"])
    for p in (precision, attn_precision):
        _missing("chip", chip, ch[f"peak_{p}"], f"{p} peak (any of {', '.join(specs.PEAK_FALLBACK[p])})", "chips")
    _missing("chip", chip, ch["hbm_tbps"], "hbm_tbps", "chips")
    peak = ch[f"peak_{precision}"] * 1e12
    attn_peak = ch[f"peak_{attn_precision}"] * 1e12
    kv = kv_bytes_per_token_raw(m["attention_code"], m["n_layers"], m["n_kv_heads"], m["head_dim"],
                                m["kv_lora_rank"], m["qk_rope_head_dim"], kvb)
    attended = c if decode else c / 2.0
    attn_tok = attention_flops_per_token(
        m["attention_code"], m["n_layers"], m["n_heads"], m["head_dim"], m["kv_lora_rank"],
        m["qk_rope_head_dim"], attended, 1.0 if decode else 0.0)
    group_tokens = b if decode else b * c
    tokens = group_tokens / n
    # weight bytes read per step on one chip.
    # TP (dense, small MoE groups): unique params touched by the group's tokens (active per token,
    # capped at all params), sharded over n. DP attention + EP (large MoE groups): every chip reads
    # the whole non-expert part, plus the experts it hosts that at least one routed token hits.
    non_expert, experts = moe_split_raw(m["total_params_b"], m["active_params_b"], m["n_routed_experts"],
                                        m["n_experts_per_token"])
    k = np.nan_to_num(m["n_experts_per_token"])
    n_routed = np.maximum(np.nan_to_num(m["n_routed_experts"]), 1.0)
    tp_read = np.minimum(m["total_params_b"], m["active_params_b"] * group_tokens) / n
    dp_read = non_expert + experts / n * np.minimum(1.0, group_tokens * k / n_routed)
    weights_read = wbytes * 1e9 * np.where(_dp_attention(m, n), dp_read, tp_read)
    rereads = np.where((m["attention_code"] != 2) & (kv_reads == "once_per_query_head"),
                       m["n_heads"] / m["n_kv_heads"], 1.0)
    kv_traffic = tokens * c * kv * rereads if decode else tokens * kv  # decode reads the cache, prefill writes it
    moe = np.nan_to_num(m["n_routed_experts"]) > 0
    remote = (n - 1.0) / n
    # MoE dispatch (at the weight precision) + BF16 combine, per token per layer, k expert copies.
    # Prefill across scale-up domains: DeepEP "normal" kernels send one copy per destination node over
    # RDMA and fan out over NVLink, so only the expected number of distinct remote domains among the k
    # experts crosses the slow link (see ASSUMPTIONS["moe_node_dedup"]). Decode ("low-latency" kernels):
    # one RDMA copy per remote expert.
    domains = np.maximum(n / _domain_size(ch), 1.0)
    distinct_remote = domains * (1.0 - (1.0 - 1.0 / domains) ** k) * (domains - 1.0) / domains
    copies = np.where((domains > 1.0) & (not decode), distinct_remote, k * remote)
    moe_bytes = m["n_layers"] * m["hidden_size"] * copies * (wbytes + 2.0)
    tp_bytes = m["n_layers"] * 2.0 * m["hidden_size"] * 2.0 * 2.0 * remote  # 2 ring all-reduces/layer, bf16
    net_tok = np.where(moe, moe_bytes, tp_bytes)
    link = _link_gbps(ch, chip, n, so, missing_link) * 1e9
    return {
        "tokens": tokens,
        "compute": tokens * (2e9 * m["active_params_b"] / peak + attn_tok / attn_peak),
        "memory": (weights_read + kv_traffic) / (ch["hbm_tbps"] * 1e12),
        "network": tokens * net_tok / link,
        "layers": m["n_layers"] * (1.0 if decode else 0.0) + 0.0 * tokens,
    }


def _resolve_calibration(
    efficiencies: Mapping[str, float] | None, decode_layer_latency_s: float | None,
) -> tuple[dict[str, float], float]:
    """The efficiencies and per-layer decode latency to use: the fitted ones unless overridden (checked)."""
    eff = dict(_load_efficiencies(str(CALIBRATION_FILE))) if efficiencies is None else dict(efficiencies)
    for name in EFFICIENCY_NAMES:
        check_choice("efficiency", name, eff.keys())
        check_number(f"efficiency {name}", eff[name], allow_zero=False, upper=1.0)
    if decode_layer_latency_s is not None:
        tau = float(decode_layer_latency_s)
    elif efficiencies is not None and "decode_layer_latency_s" in efficiencies:
        tau = float(efficiencies["decode_layer_latency_s"])
    else:
        tau = _load_overheads(str(CALIBRATION_FILE))["decode_layer_latency_s"]
    check_number("decode_layer_latency_s", tau, allow_zero=True)
    return eff, tau


def _step_timer(calibrated: bool, efficiencies: Mapping[str, float] | None,
                decode_layer_latency_s: float | None) -> Callable[[Mapping[str, Any], str], Any]:
    """``(step terms, phase) -> seconds`` for the requested layer, efficiencies resolved and checked once."""
    if not calibrated:
        return lambda t, phase: step_seconds(t, phase, calibrated=False)
    eff, tau = _resolve_calibration(efficiencies, decode_layer_latency_s)
    return lambda t, phase: step_seconds(t, phase, calibrated=True, eff=eff, tau=tau)


def step_seconds(t: Mapping[str, Any], phase: str, *, calibrated: bool,
                 eff: Mapping[str, float] | None = None, tau: float = 0.0) -> Any:
    """Seconds per engine step from :func:`step_times` terms: ideal = max of the terms; calibrated =
    ``layers * tau + (compute + memory) / eff[phase] + network / eff["network"]``."""
    if not calibrated:
        return np.maximum(np.maximum(t["compute"], t["memory"]), t["network"])
    if eff is None:
        raise ValueError("step_seconds(calibrated=True) needs eff (the efficiencies)")
    return t["layers"] * tau + (t["compute"] + t["memory"]) / eff[phase] + t["network"] / eff["network"]


def _guard_fit(value: FloatArray, ok: Any, on_oom: str, what: str) -> FloatArray:
    if np.all(ok):
        return value
    if on_oom == "raise":
        raise MemoryFitError(
            f"{what} does not fit in HBM (weights + KV cache + "
            f"{ASSUMPTIONS['memory_overhead_fraction']['value']:.0%} overhead); use more chips, a "
            "smaller batch, or on_oom='nan'")
    result: FloatArray = np.where(ok, value, np.nan)
    return result


def throughput(
    model: Any, chip: Any, phase: str, *, batch: Any, context: Any, precision: str = "bf16",
    n_chips: Any = 1, calibrated: bool = True, kv_precision: str = "bf16",
    efficiencies: Mapping[str, float] | None = None, on_oom: str = "raise",
    scale_out_gbps: float | None = None, root: Path | str | None = None,
    decode_layer_latency_s: float | None = None, kv_reads: str = "once_per_kv_head",
    memory_overhead: float | None = None, missing_link: str = "raise",
) -> Any:
    """Tokens per second per chip (prefill: input tokens, decode: output tokens).

    ``calibrated=False`` gives the ideal roofline; ``True`` the calibrated estimate (see module doc).
    ``efficiencies`` overrides the fitted ones (keys ``prefill``, ``decode``, ``network``, each in (0, 1];
    it may also carry ``decode_layer_latency_s``). ``decode_layer_latency_s`` overrides the fitted
    fixed per-layer decode latency (seconds, >= 0); by default the fitted value is used.
    ``kv_reads``: how the decode attention kernel reads a GQA model's KV cache (:data:`KV_READS`).
    ``on_oom``: ``"raise"`` (default) or ``"nan"`` for scenarios whose batch does not fit in memory;
    ``memory_overhead`` overrides the assumed unusable share of HBM in that check ([0, 1)).
    A missing chip or model figure raises :class:`~tokenlib.errors.MissingSpecError` (``missing_link``:
    :data:`MISSING_LINK`); NaN comes only from ``on_oom="nan"``.
    Returns a float when every argument is a scalar, else an ndarray (numpy broadcasting).
    """
    check_choice("on_oom", on_oom, ("raise", "nan"))
    check_flag("calibrated", calibrated)
    t = step_times(model, chip, phase, batch=batch, context=context, precision=precision,
                   n_chips=n_chips, kv_precision=kv_precision, scale_out_gbps=scale_out_gbps,
                   kv_reads=kv_reads, root=root, missing_link=missing_link)
    step = _step_timer(calibrated, efficiencies, decode_layer_latency_s)(t, phase)
    ok = fits(model, chip, batch=batch, context=context, precision=precision, n_chips=n_chips,
              kv_precision=kv_precision, memory_overhead=memory_overhead, root=root)
    tps = _guard_fit(np.asarray(t["tokens"] / step, dtype=float), ok, on_oom,
                     f"batch {batch!r} x context {context!r} of {model!r} at {precision} on {n_chips!r} x {chip!r}")
    scalar = all(np.ndim(x) == 0 for x in (model, chip, batch, context, n_chips))
    return _out(np.asarray(tps, dtype=float), scalar)


def static_batch_times(
    model: Any, chip: Any, *, batch: Any, input_len: Any, output_len: Any, precision: str = "bf16",
    n_chips: Any = 1, kv_precision: str = "bf16", scale_out_gbps: float | None = None,
    kv_reads: str = "once_per_kv_head", root: Path | str | None = None, missing_link: str = "raise",
) -> dict[str, Any]:
    """Roofline terms of one static-batch run: ``batch`` prompts of ``input_len`` tokens prefilled in one
    step, then ``output_len - 1`` decode steps (the prefill yields the first output token).

    Returns ``{"prefill": step terms, "decode": step terms at the mean KV length
    input_len + output_len / 2, "decode_steps": output_len - 1, "tokens": output tokens per chip}``.
    Decode time is linear in the KV length, so the mean length gives the run's total decode time.
    """
    il = check_count("input_len", input_len)
    ol = check_count("output_len", output_len)
    b, _, n = _check_common(batch, 1, n_chips)
    check_shapes(batch=b, input_len=il, output_len=ol, n_chips=n)
    common: dict[str, Any] = dict(batch=batch, precision=precision, n_chips=n_chips, kv_precision=kv_precision,
                                  scale_out_gbps=scale_out_gbps, kv_reads=kv_reads, root=root,
                                  missing_link=missing_link)
    _check_model(model, specs.model_fields(model, root), il)  # the prompt must fit the model's window
    return {
        "prefill": step_times(model, chip, "prefill", context=il, **common),
        "decode": _step_times(model, chip, "decode", context=il + ol / 2.0, check_context=False, **common),
        "decode_steps": ol - 1.0,
        "tokens": b * ol / n,
    }


def static_batch_throughput(
    model: Any, chip: Any, *, batch: Any, input_len: Any, output_len: Any, precision: str = "bf16",
    n_chips: Any = 1, calibrated: bool = True, kv_precision: str = "bf16",
    efficiencies: Mapping[str, float] | None = None, on_oom: str = "raise",
    scale_out_gbps: float | None = None, root: Path | str | None = None,
    decode_layer_latency_s: float | None = None, kv_reads: str = "once_per_kv_head",
    memory_overhead: float | None = None, missing_link: str = "raise",
) -> Any:
    """Output tokens per second per chip of a static-batch benchmark, prefill time included.

    This is the metric of offline benchmarks such as TensorRT-LLM's gptSessionBenchmark
    (``out_tps = output_seqlen * batch_size / total_latency / tp``): every sequence is prefilled, then
    decoded to ``output_len`` tokens. Memory must hold the KV cache at its longest
    (``input_len + output_len``). Other arguments as in :func:`throughput`.
    """
    check_choice("on_oom", on_oom, ("raise", "nan"))
    check_flag("calibrated", calibrated)
    t = static_batch_times(model, chip, batch=batch, input_len=input_len, output_len=output_len,
                           precision=precision, n_chips=n_chips, kv_precision=kv_precision,
                           scale_out_gbps=scale_out_gbps, kv_reads=kv_reads, root=root,
                           missing_link=missing_link)
    timer = _step_timer(calibrated, efficiencies, decode_layer_latency_s)
    total = timer(t["prefill"], "prefill") + t["decode_steps"] * timer(t["decode"], "decode")
    longest = _arr(input_len) + _arr(output_len)
    # only the prompt is held to max_context: published static-batch runs decode past it (TensorRT-LLM's
    # Llama-2-70B 128-in/4096-out benchmark, data/deployments.csv)
    ok = _fits(model, chip, batch=batch, context=longest, precision=precision, n_chips=n_chips,
               kv_precision=kv_precision, memory_overhead=memory_overhead, root=root, check_context=False)
    tps = _guard_fit(np.asarray(t["tokens"] / total, dtype=float), ok, on_oom,
                     f"batch {batch!r} x {input_len!r}+{output_len!r} tokens of {model!r} at {precision} "
                     f"on {n_chips!r} x {chip!r}")
    scalar = all(np.ndim(x) == 0 for x in (model, chip, batch, input_len, output_len, n_chips))
    return _out(np.asarray(tps, dtype=float), scalar)
