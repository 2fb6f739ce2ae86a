"""The inference kernel: memory fit, KV-cache size, roofline throughput and its calibrated layer.

Two layers, always labelled:

* **ideal** (``calibrated=False``): a roofline with perfect overlap. Per chip and per engine step,
  ``t = max(t_compute, t_memory, t_network)`` where
  ``t_compute = FLOPs / dense peak`` (weights: 2 x active params per token, plus attention FLOPs),
  ``t_memory = bytes read from HBM / HBM bandwidth`` (resident weights touched + KV cache read/written),
  ``t_network = bytes exchanged / link bandwidth`` (MoE expert dispatch/combine or tensor-parallel
  all-reduce). It is what the hardware allows.
* **calibrated** (``calibrated=True``): the same terms divided by named phase-specific efficiencies, plus a
  fixed per-layer latency in decode, all fitted once, globally, on published measurements
  (:mod:`tokenlib.model.calibrate`, stored in ``tokenlib/model/calibration.json``). Per pass:
  ``t = L * tau [decode only] + X + Y - overlap * min(X, Y)`` with ``X = (t_compute + t_memory) / eff[phase]``
  and ``Y = t_network / eff["network"]``. Three named terms:

  - ``tau`` (``decode_layer_latency_s``): the time each of the ``L`` layers costs per decode step whatever
    the batch (kernel launches, synchronisation, the latency of dispatch/combine or all-reduce);
  - ``overlap`` in [0, 1]: the share of the shorter of X and Y hidden under the longer (0: serialised, the
    sum; 1: perfect overlap, the max), as engines with two micro-batches overlap communication;
  - ``decode_small_batch`` in (0, 1], the small-batch decode curve: in decode ``X`` is at least
    ``t_weights / decode_small_batch``, i.e. a step never streams the weights faster than that share of HBM
    bandwidth. At batch 1 the weights are nearly all the traffic, so the effective efficiency is about
    ``decode_small_batch``; as KV reads and compute grow with the batch it rises to ``eff["decode"]``. Being a
    maximum of terms that never fall with the batch, it keeps speed per user non-increasing in the batch.

  Because every efficiency is <= 1, ``tau >= 0`` and ``X + Y - overlap * min(X, Y) >= max(X, Y)``,
  calibrated <= ideal always.

Speculative decoding (``speculative={"draft_tokens": k, "accept_length": a}``, :class:`Speculative`): an
engine step is ``k`` draft passes at the batch plus one verification pass over ``k + 1`` tokens per sequence,
and yields ``a`` tokens per sequence; each pass is timed as above and the times add. Memory counts the
draft's weights and KV cache.

Physics common to both layers (see :data:`ASSUMPTIONS`): weight-GEMM FLOPs run at the peak of the
requested precision (``fp4`` only where chips.csv gives a dense FP4 peak; ``int8`` is W8A8, and ``"w8a8"`` is
accepted for it, see :data:`tokenlib.data.specs.PRECISION_ALIASES`), attention
FLOPs at the BF16 peak. Parallel layout (``attention``, ``expert_parallel``; see :data:`ATTENTION_LAYOUTS`):
by default MoE groups of at least ``moe_dp_attention_min_chips`` chips are served with data-parallel
attention + expert parallelism over the group, so every chip holds (and reads each step) the whole
non-expert part of the model plus its share of the experts; smaller MoE groups and dense models are
tensor-parallel (all weights sharded). Both can be set per call.

This module is above the ~400-line guide (issue 21): the formulas, the layouts, speculation and the
calibrated timer share private terms; the latency frontier table is in :mod:`tokenlib.model.frontier`.

Conventions: ``batch`` = concurrent sequences served by the ``n_chips`` group; ``context`` = prompt
length (prefill) or mean KV length (decode); results are tokens per second **per chip** (prefill:
input tokens, decode: output tokens). Every function broadcasts over numpy arrays; scalars in give
floats out. Model and chip may be arrays of ids for grids.

Batches that do not fit in HBM: ``on_oom="raise"`` (default) raises :class:`MemoryFitError`;
``on_oom="nan"`` returns NaN for those scenarios (the flag: NaN *only* ever means "does not fit";
use :func:`fits` to get the boolean mask). A number is never returned for a batch that does not fit.

Why this module is long: every roofline term (weights, KV cache, attention and expert layouts, the
network, speculative passes) is computed from one private scenario (``_Scenario``, ``_layout``, ``_context``)
and the calibrated layer reads those same terms; split into files, those privates would become a public
interface nobody else should call. The cost of a token is :mod:`tokenlib.model.cost`; the fit,
:mod:`tokenlib.model.calibrate`; the latency frontier, :mod:`tokenlib.model.frontier`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, TypedDict, Unpack

import numpy as np
import numpy.typing as npt

from tokenlib.data import specs
from tokenlib.errors import MissingSpecError, check_choice, check_count, check_flag, check_fraction, check_number, check_shapes

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike
"""A number or an array of numbers (anything numpy broadcasts)."""
Ids = npt.ArrayLike
"""A chip or model id, or an array of ids."""
PHASES = ("prefill", "decode")
KV_READS = ("once_per_kv_head", "once_per_query_head")
"""How a decode attention kernel reads the KV cache of grouped-query (GQA) models: each KV head once
per step for all the query heads that share it, or once for every query head (see ASSUMPTIONS)."""
EFFICIENCY_NAMES = ("prefill", "decode", "network")
CURVE_NAMES = ("decode_small_batch",)
"""Fitted efficiencies beyond the three phase ones: ``decode_small_batch`` (the small-batch decode curve: a decode
step never streams the weights faster than this share of HBM bandwidth), stored under ``efficiencies``."""
OVERHEAD_NAMES = ("decode_layer_latency_s", "overlap")
"""Fitted fixed-time and overlap terms, stored in ``calibration.json`` under ``overheads``:
``decode_layer_latency_s`` (seconds per layer per decode step) and ``overlap`` (the share of the shorter of
compute+memory time and network time hidden under the longer, in [0, 1])."""

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
    "draft_layer": {
        "value": 1,
        "kind": "assumption",
        "note": "Our assumption: a draft token of MTP or EAGLE-3 costs one decoder layer of the target model (its "
        "per-layer share of the compute, weight reads, KV cache and expert traffic, plus the fixed per-layer "
        "latency); the output head's own cost is not counted. The MTP module's resident weights are models.csv "
        "mtp_params_b where sourced (DeepSeek-V3: 14B, its README), else one layer's share (total / n_layers); "
        "its KV cache is one more layer's.",
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


def _arr(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=float)


def _out(x: FloatArray, scalar: bool) -> Any:
    return float(x) if scalar and np.ndim(x) == 0 else x


# ----------------------------------------------------------------------------- pure formulas


def kv_bytes_per_token_raw(
    attention_code: ArrayLike, n_layers: ArrayLike, n_kv_heads: ArrayLike, head_dim: ArrayLike,
    kv_lora_rank: ArrayLike, qk_rope_head_dim: ArrayLike, kv_bytes: ArrayLike,
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
    attention_code: ArrayLike, n_layers: ArrayLike, n_heads: ArrayLike, head_dim: ArrayLike,
    kv_lora_rank: ArrayLike, qk_rope_head_dim: ArrayLike, attended: ArrayLike, phase_is_decode: ArrayLike,
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


def _check_common(batch: ArrayLike, context: ArrayLike, n_chips: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
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


def _check_model(model: Ids, m: Mapping[str, FloatArray], context: ArrayLike | None = None) -> None:
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
    return specs.BYTES_PER_VALUE[specs.precision_id(precision, name)]


def kv_bytes_per_token(model: Any, kv_precision: str = "bf16", root: Path | str | None = None) -> Any:
    """KV-cache bytes per token for model id(s), e.g. DeepSeek-V3 in BF16: (512+64)*61*2 = 70,272."""
    kvb = _precision_bytes("kv_precision", kv_precision)
    out = _kv(specs.model_fields(model, root), kvb)
    return _out(out, np.ndim(model) == 0)


# ----------------------------------------------------------------------------- options: layout, speculation

ATTENTION_LAYOUTS = ("tp", "dp")
"""``attention="tp"``: attention (and dense FFN) weights sharded over the group, every chip sees every token;
``"dp"``: data-parallel attention, every chip holds the whole non-expert part and serves ``batch / n`` of the
sequences (a dense model in ``"dp"`` is ``n`` independent replicas). Default (``None``): the rule of
``ASSUMPTIONS["moe_dp_attention_min_chips"]``."""
SPEC_METHODS = ("mtp", "eagle3", "draft_model")
"""How draft tokens are proposed: ``mtp`` (the model's own multi-token-prediction module, DeepSeek-V3 style),
``eagle3`` (an EAGLE-3 head) or ``draft_model`` (a separate model from data/models.csv)."""


@dataclass(frozen=True)
class Speculative:
    """Speculative decoding: ``draft_tokens`` (k) proposed per step, ``accept_length`` (a) = mean tokens accepted
    per verification step, the bonus token included (``1 <= a <= k + 1``).

    Each engine step runs ``k`` sequential draft passes at the batch (MTP/EAGLE-3: one layer of the target
    model each, ``ASSUMPTIONS["draft_layer"]``; ``draft_model``: that model's whole step) and one verification
    pass of the target over ``k + 1`` tokens per sequence; it yields ``a`` tokens per sequence. Memory holds the
    draft's weights and KV cache too.
    """

    draft_tokens: int
    accept_length: float
    method: str = "mtp"
    draft_model: str | None = None


def speculative_config(spec: Speculative | Mapping[str, Any] | None) -> Speculative | None:
    """Check a ``speculative=`` argument (a :class:`Speculative` or a dict with its fields)."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        fields = {"draft_tokens", "accept_length", "method", "draft_model"}
        unknown = sorted(set(spec) - fields)
        if unknown:
            raise ValueError(f"speculative: unknown keys {unknown}; valid: {sorted(fields)}")
        missing = sorted({"draft_tokens", "accept_length"} - set(spec))
        if missing:
            raise ValueError(f"speculative needs {missing} (e.g. {{'draft_tokens': 1, 'accept_length': 1.8}})")
        spec = Speculative(**spec)
    if not isinstance(spec, Speculative):
        raise TypeError(f"speculative must be a dict or Speculative, got {spec!r}")
    k = check_count("speculative draft_tokens", spec.draft_tokens)
    a = check_number("speculative accept_length", spec.accept_length, allow_zero=False)
    if np.ndim(k) or np.ndim(a):
        raise ValueError("speculative draft_tokens and accept_length must be scalars")
    if not 1.0 <= float(a) <= float(k) + 1.0:
        raise ValueError(f"speculative accept_length {float(a):g} must lie in [1, draft_tokens + 1] = [1, {float(k) + 1:g}] "
                         "(mean tokens accepted per verification step, the bonus token included)")
    check_choice("speculative method", spec.method, SPEC_METHODS)
    if (spec.method == "draft_model") != (spec.draft_model is not None):
        raise ValueError("speculative: give draft_model (a model id in data/models.csv) exactly when method='draft_model'")
    return Speculative(int(k), float(a), spec.method, spec.draft_model)


@dataclass(frozen=True)
class KernelOptions:
    """Every option of :func:`throughput` besides the scenario, in one typed object (passable through
    :func:`tokenlib.model.cost.cost_per_mtok` and :func:`tokenlib.model.frontier.frontier`). Defaults are the
    kernel's (see :data:`ASSUMPTIONS`); ``None`` = the documented default or the fitted value."""

    calibrated: bool = True
    kv_precision: str = "bf16"
    kv_reads: str = "once_per_kv_head"
    attention: str | None = None
    expert_parallel: int | None = None
    speculative: Speculative | Mapping[str, Any] | None = None
    scale_out_gbps: float | None = None
    missing_link: str = "raise"
    memory_overhead: float | None = None
    efficiencies: Mapping[str, float] | None = None
    decode_layer_latency_s: float | None = None
    overlap: float | None = None
    on_oom: str = "raise"

    @classmethod
    def of(cls, options: KernelOptions | Mapping[str, Any] | None = None, **overrides: Any) -> KernelOptions:
        """Options from an object, a dict of field names, or keywords (keywords win); unknown names raise."""
        base = options if isinstance(options, KernelOptions) else cls()
        given = {**(dict(options) if isinstance(options, Mapping) else {}), **overrides}
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - names)
        if unknown:
            raise TypeError(f"unknown kernel option(s) {unknown}; valid: {sorted(names)}")
        out = replace(base, **given)
        out.check()
        return out

    def check(self) -> None:
        """Raise on a bad value (named, with the valid choices)."""
        check_flag("calibrated", self.calibrated)
        check_choice("kv_reads", self.kv_reads, KV_READS)
        check_choice("missing_link", self.missing_link, MISSING_LINK)
        check_choice("on_oom", self.on_oom, ("raise", "nan"))
        _precision_bytes("kv_precision", self.kv_precision)
        if self.attention is not None:
            check_choice("attention", self.attention, ATTENTION_LAYOUTS)
        if self.expert_parallel is not None:
            check_count("expert_parallel", self.expert_parallel)
        if self.overlap is not None:
            check_fraction("overlap", self.overlap, closed_low=True)
        speculative_config(self.speculative)


class KernelKeywords(TypedDict, total=False):
    """The :class:`KernelOptions` fields as separate keywords, the spelling :func:`throughput` took before
    ``options`` (still accepted; a keyword given with ``options`` is applied over it where it differs from the
    default). The field names must stay those of :class:`KernelOptions` (tests/test_kernel.py checks)."""

    calibrated: bool
    kv_precision: str
    kv_reads: str
    attention: str | None
    expert_parallel: int | None
    speculative: Speculative | Mapping[str, Any] | None
    scale_out_gbps: float | None
    missing_link: str
    memory_overhead: float | None
    efficiencies: Mapping[str, float] | None
    decode_layer_latency_s: float | None
    overlap: float | None
    on_oom: str


# ----------------------------------------------------------------------------- layout and memory


def moe_split_raw(total_b: ArrayLike, active_b: ArrayLike, n_routed: ArrayLike,
                  k: ArrayLike) -> tuple[FloatArray, FloatArray]:
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


class _Layout(NamedTuple):
    dp: npt.NDArray[np.bool_]
    """data-parallel attention (per scenario)"""
    ep: FloatArray
    """expert-parallel degree; NaN = experts sharded with the rest (tensor parallel over the group)"""


def _layout(m: Mapping[str, FloatArray], n: FloatArray, attention: str | None = None,
            expert_parallel: ArrayLike | None = None) -> _Layout:
    """The parallel layout (see :data:`ATTENTION_LAYOUTS`): given, or the default rule of ASSUMPTIONS."""
    moe = np.nan_to_num(m["n_routed_experts"]) > 0
    if attention is None:
        dp = moe & (n >= float(ASSUMPTIONS["moe_dp_attention_min_chips"]["value"]))
    else:
        check_choice("attention", attention, ATTENTION_LAYOUTS)
        dp = np.full(np.broadcast_shapes(np.shape(moe), np.shape(n)), attention == "dp")
    if expert_parallel is None:
        ep: FloatArray = np.where(dp & moe, n, np.nan)
    else:
        e = check_count("expert_parallel", expert_parallel)
        if np.any(e > n):
            raise ValueError(f"expert_parallel {np.max(e):g} exceeds n_chips {np.min(n):g}: experts are spread over "
                             "chips of the serving group")
        ep = np.where(moe, e, np.nan)
    return _Layout(np.asarray(dp, dtype=bool), ep)


def _weights_per_chip_b(m: Mapping[str, FloatArray], n: FloatArray, lay: _Layout) -> FloatArray:
    """Billions of parameters resident on each chip."""
    non_expert, experts = moe_split_raw(m["total_params_b"], m["active_params_b"], m["n_routed_experts"],
                                        m["n_experts_per_token"])
    sharded = np.isfinite(lay.ep)
    per_ep = experts / np.where(sharded, lay.ep, 1.0)
    result: FloatArray = np.where(lay.dp, non_expert + np.where(sharded, per_ep, experts / n),
                                  np.where(sharded, non_expert / n + per_ep, m["total_params_b"] / n))
    return result


def _weights_read_b(m: Mapping[str, FloatArray], n: FloatArray, lay: _Layout, group_tokens: FloatArray) -> FloatArray:
    """Billions of parameters one chip reads in a step that processes ``group_tokens`` tokens over the group.

    TP with experts sharded alongside: unique params touched (active per token, capped at all params) / n.
    DP attention: the whole non-expert part, plus the hosted experts at least one routed token hits (the EP
    group of ``ep`` chips receives ``group_tokens x ep / n`` tokens). TP attention with EP: non-expert / n
    plus the hit experts."""
    non_expert, experts = moe_split_raw(m["total_params_b"], m["active_params_b"], m["n_routed_experts"],
                                        m["n_experts_per_token"])
    k = np.nan_to_num(m["n_experts_per_token"])
    n_routed = np.maximum(np.nan_to_num(m["n_routed_experts"]), 1.0)
    sharded = np.isfinite(lay.ep)
    e = np.where(sharded, lay.ep, n)
    to_group = np.where(lay.dp, group_tokens * e / n, group_tokens)
    hit = experts / e * np.minimum(1.0, to_group * k / n_routed)
    tp_read = np.minimum(m["total_params_b"], m["active_params_b"] * group_tokens) / n
    result: FloatArray = np.where(lay.dp, non_expert + hit, np.where(sharded, non_expert / n + hit, tp_read))
    return result


def _kv(m: Mapping[str, FloatArray], kvb: float) -> FloatArray:
    """KV-cache bytes per token of the model fields ``m`` (all layers)."""
    return kv_bytes_per_token_raw(m["attention_code"], m["n_layers"], m["n_kv_heads"], m["head_dim"],
                                  m["kv_lora_rank"], m["qk_rope_head_dim"], kvb)


class _Draft(NamedTuple):
    """What speculation adds: a draft model's fields (draft_model) or None (one extra target layer)."""

    spec: Speculative
    m: dict[str, FloatArray] | None


def _draft(spec: Speculative | Mapping[str, Any] | None, root: Path | str | None) -> _Draft | None:
    s = speculative_config(spec)
    if s is None:
        return None
    return _Draft(s, specs.model_fields(s.draft_model, root) if s.draft_model is not None else None)


def _draft_params_b(m: Mapping[str, FloatArray], d: _Draft) -> FloatArray:
    """Parameters (billions) the draft adds to every replica: the draft model's, or the MTP module's
    (models.csv ``mtp_params_b``), or one layer's worth of the target (``total / n_layers``)."""
    if d.m is not None:
        return d.m["total_params_b"]
    one_layer = m["total_params_b"] / m["n_layers"]
    if d.spec.method == "mtp":
        mtp = m["mtp_params_b"]
        return np.where(np.isfinite(mtp) & (mtp > 0), mtp, one_layer)
    return one_layer


def _memory_parts(m: Mapping[str, FloatArray], c: FloatArray, n: FloatArray, wbytes: float, kvb: float,
                  lay: _Layout, d: _Draft | None) -> tuple[FloatArray, FloatArray]:
    """(bytes per chip that do not depend on the batch, bytes per chip per sequence in the batch)."""
    weights = _weights_per_chip_b(m, n, lay)
    kv = _kv(m, kvb)
    if d is not None:
        # MTP / EAGLE-3 heads are sharded like the target; a draft model is tensor-parallel over the group
        share = weights / m["total_params_b"] if d.m is None else 1.0 / n
        weights = weights + _draft_params_b(m, d) * share
        kv = kv + (_kv(d.m, kvb) if d.m is not None else kv / m["n_layers"])
    fixed: FloatArray = weights * 1e9 * wbytes
    per_seq: FloatArray = c * kv / n
    return fixed, per_seq


def _memory_per_chip(m: Mapping[str, FloatArray], b: FloatArray, c: FloatArray, n: FloatArray,
                     wbytes: float, kvb: float, lay: _Layout | None = None, d: _Draft | None = None) -> FloatArray:
    fixed, per_seq = _memory_parts(m, c, n, wbytes, kvb, _layout(m, n) if lay is None else lay, d)
    result: FloatArray = fixed + b * per_seq
    return result


def _capacity(ch: dict[str, FloatArray], overhead: float, chip: Ids | None = None) -> FloatArray:
    if chip is not None:
        _missing("chip", chip, ch["hbm_gb"], "hbm_gb", "chips")
    result: FloatArray = ch["hbm_gb"] * 1e9 * (1.0 - overhead)
    return result


def memory_required_bytes_per_chip(
    model: Ids, *, batch: ArrayLike, context: ArrayLike, precision: str = "bf16", n_chips: ArrayLike = 1,
    kv_precision: str = "bf16", root: Path | str | None = None, attention: str | None = None,
    expert_parallel: ArrayLike | None = None, speculative: Speculative | Mapping[str, Any] | None = None,
) -> Any:
    """Bytes each chip must hold: weights (per the layout) + KV cache (batch x context), the draft's included."""
    b, c, n = _check_common(batch, context, n_chips)
    wbytes = _precision_bytes("precision", precision)
    kvb = _precision_bytes("kv_precision", kv_precision)
    m = specs.model_fields(model, root)
    out = _memory_per_chip(m, b, c, n, wbytes, kvb, _layout(m, n, attention, expert_parallel), _draft(speculative, root))
    return _out(out, all(np.ndim(x) == 0 for x in (model, batch, context, n_chips)))


def fits(
    model: Ids, chip: Ids, *, batch: ArrayLike, context: ArrayLike, precision: str = "bf16", n_chips: ArrayLike = 1,
    kv_precision: str = "bf16", memory_overhead: float | None = None, root: Path | str | None = None,
    attention: str | None = None, expert_parallel: ArrayLike | None = None,
    speculative: Speculative | Mapping[str, Any] | None = None,
) -> Any:
    """True where weights + KV cache fit in ``n_chips`` x HBM x (1 - memory overhead).

    ``memory_overhead`` is a share in [0, 1); ``context`` may not exceed the model's ``max_context``
    (where models.csv gives one). :func:`min_chips` and :func:`max_batch` are defined through this test.
    """
    return _fits(model, chip, batch=batch, context=context, precision=precision, n_chips=n_chips,
                 kv_precision=kv_precision, memory_overhead=memory_overhead, root=root, attention=attention,
                 expert_parallel=expert_parallel, speculative=speculative)


def _fits(
    model: Ids, chip: Ids, *, batch: ArrayLike, context: ArrayLike, precision: str, n_chips: ArrayLike,
    kv_precision: str, memory_overhead: float | None, root: Path | str | None, check_context: bool = True,
    attention: str | None = None, expert_parallel: ArrayLike | None = None,
    speculative: Speculative | Mapping[str, Any] | None = None,
) -> Any:
    b, c, n = _check_common(batch, context, n_chips)
    check_shapes(model=np.asarray(model), chip=np.asarray(chip), batch=b, context=c, n_chips=n)
    ov = _overhead(memory_overhead)
    m = specs.model_fields(model, root)
    _check_model(model, m, c if check_context else None)
    need = _memory_per_chip(m, b, c, n, _precision_bytes("precision", precision),
                            _precision_bytes("kv_precision", kv_precision), _layout(m, n, attention, expert_parallel),
                            _draft(speculative, root))
    ok = need <= _capacity(specs.chip_fields(chip, root), ov, chip)
    return bool(ok) if np.ndim(ok) == 0 else ok
def min_chips(
    model: Ids, chip: Ids, *, batch: ArrayLike, context: ArrayLike, precision: str = "bf16",
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
    kv = _kv(m, kvb)
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
    model: Ids, chip: Ids, *, context: ArrayLike, precision: str = "bf16", n_chips: ArrayLike = 1,
    kv_precision: str = "bf16", memory_overhead: float | None = None, root: Path | str | None = None,
    attention: str | None = None, expert_parallel: ArrayLike | None = None,
    speculative: Speculative | Mapping[str, Any] | None = None,
) -> Any:
    """Largest whole batch (sequences per group) for which :func:`fits` is True; 0 when even the
    weights (with one sequence) do not fit."""
    _, c, n = _check_common(1, context, n_chips)
    ov = _overhead(memory_overhead)
    m = specs.model_fields(model, root)
    _check_model(model, m, c)
    out = _max_batch(m, specs.chip_fields(chip, root), chip, c, n, _precision_bytes("precision", precision),
                     _precision_bytes("kv_precision", kv_precision), ov, _layout(m, n, attention, expert_parallel),
                     _draft(speculative, root))
    return int(out) if np.ndim(out) == 0 else out


def _max_batch(m: Mapping[str, FloatArray], ch: dict[str, FloatArray], chip: Ids, c: FloatArray, n: FloatArray,
               wbytes: float, kvb: float, ov: float, lay: _Layout, d: _Draft | None) -> FloatArray:
    cap = _capacity(ch, ov, chip)
    fixed, per_seq = _memory_parts(m, c, n, wbytes, kvb, lay, d)
    out: FloatArray = np.maximum(np.floor((cap - fixed) / per_seq), 0.0)
    # exact check with the memory test fits() uses (absorbs float rounding at the boundary)
    for _ in range(2):
        out = np.where((out > 0) & (fixed + out * per_seq > cap), out - 1.0, out)
        out = np.where(fixed + (out + 1.0) * per_seq <= cap, out + 1.0, out)
    return out


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
    got = _calibration(path)["efficiencies"]
    out = {k: float(got[k]) for k in EFFICIENCY_NAMES}
    out.update({k: float(got.get(k, 1.0)) for k in CURVE_NAMES})
    return out


def efficiencies(path: Path | str | None = None) -> dict[str, float]:
    """The fitted, named efficiencies (prefill, decode, network, decode_small_batch) from ``calibration.json``."""
    return _load_efficiencies(str(path or CALIBRATION_FILE))


def _load_overheads(path: str) -> dict[str, float]:
    got = _calibration(path).get("overheads", {})
    return {k: float(got.get(k, 0.0)) for k in OVERHEAD_NAMES}


def overheads(path: Path | str | None = None) -> dict[str, float]:
    """The fitted fixed-time and overlap terms: ``decode_layer_latency_s`` (seconds per layer per decode step)
    and ``overlap`` (the share of the shorter of compute+memory and network time hidden under the longer)."""
    return _load_overheads(str(path or CALIBRATION_FILE))


class Calibration(NamedTuple):
    """The calibrated layer's global parameters (see the module doc)."""

    prefill: float
    decode: float
    network: float
    decode_small_batch: float
    decode_layer_latency_s: float
    overlap: float


def _resolve_calibration(efficiencies: Mapping[str, float] | None, decode_layer_latency_s: float | None,
                         overlap: float | None = None) -> Calibration:
    """The parameters to use: the fitted ones unless overridden (checked). An ``efficiencies`` override must
    name prefill, decode and network; it may carry decode_small_batch, decode_layer_latency_s and overlap,
    which otherwise keep their fitted values."""
    fitted = {**_load_efficiencies(str(CALIBRATION_FILE)), **_load_overheads(str(CALIBRATION_FILE))}
    eff = dict(fitted) if efficiencies is None else {**fitted, **dict(efficiencies)}
    if efficiencies is not None:
        for name in EFFICIENCY_NAMES:
            check_choice("efficiency", name, efficiencies.keys())
    for name in (*EFFICIENCY_NAMES, *CURVE_NAMES):
        check_number(f"efficiency {name}", eff[name], allow_zero=False, upper=1.0)
    tau = float(eff["decode_layer_latency_s"] if decode_layer_latency_s is None else decode_layer_latency_s)
    check_number("decode_layer_latency_s", tau, allow_zero=True)
    om = float(eff["overlap"] if overlap is None else overlap)
    check_fraction("overlap", om, closed_low=True)
    return Calibration(float(eff["prefill"]), float(eff["decode"]), float(eff["network"]),
                       float(eff["decode_small_batch"]), tau, om)


# ----------------------------------------------------------------------------- roofline terms


def _domain_size(ch: Mapping[str, FloatArray]) -> FloatArray:
    # chips per scale-up domain (specs.chip_fields of data/scaleup_domains.csv, sourced), else the default node
    dom = ch["scaleup_domain_chips"]
    result: FloatArray = np.where(np.isfinite(dom), dom, float(ASSUMPTIONS["scale_up_domain"]["value"]["default"]))
    return result


def _link_gbps(ch: dict[str, FloatArray], chip: Ids, n: FloatArray, scale_out_gbps: float,
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


Terms = dict[str, FloatArray]
"""Seconds per chip of one pass: ``compute``, ``memory`` (of which ``weights``), ``network``; ``layers`` (the
layers paying the fixed per-layer decode latency) and ``tokens`` (tokens processed per chip)."""


class Step(NamedTuple):
    """One engine step: its passes (terms, times run per step), the output tokens per chip it yields (prefill:
    input tokens) and the tokens each sequence gains (decode: 1, or the accept length with speculation)."""

    parts: list[tuple[Terms, float]]
    tokens: FloatArray
    per_user: FloatArray


class _Ctx(NamedTuple):
    """Everything the terms need, resolved and checked once per call."""

    m: dict[str, FloatArray]
    chip: Ids
    peak: FloatArray
    attn_peak: FloatArray
    hbm: FloatArray
    domain: FloatArray
    link: FloatArray
    wbytes: float
    kvb: float
    kv_reads: str


def _pass_terms(x: _Ctx, m: Mapping[str, FloatArray], decode: bool, b: FloatArray, c: FloatArray, n: FloatArray,
                lay: _Layout, q: float = 1.0) -> Terms:
    """One forward pass of model fields ``m`` over ``b`` sequences (decode: ``q`` tokens each; prefill: ``c``)."""
    kv = _kv(m, x.kvb)
    attended = c if decode else c / 2.0
    attn_tok = attention_flops_per_token(m["attention_code"], m["n_layers"], m["n_heads"], m["head_dim"],
                                         m["kv_lora_rank"], m["qk_rope_head_dim"], attended, 1.0 if decode else 0.0)
    group_tokens = b * q if decode else b * c
    tokens = group_tokens / n
    weights = x.wbytes * 1e9 * _weights_read_b(m, n, lay, group_tokens) / x.hbm
    rereads = np.where((m["attention_code"] != 2) & (x.kv_reads == "once_per_query_head"),
                       m["n_heads"] / m["n_kv_heads"], 1.0)
    # decode reads each sequence's cache once per pass (all q query tokens share it); prefill writes it
    kv_traffic = b / n * c * kv * rereads if decode else tokens * kv
    moe = np.nan_to_num(m["n_routed_experts"]) > 0
    k = np.nan_to_num(m["n_experts_per_token"])
    ep = np.where(np.isfinite(lay.ep), lay.ep, n)
    remote = (ep - 1.0) / ep
    # MoE dispatch (at the weight precision) + BF16 combine, per token per layer, k expert copies.
    # Prefill across scale-up domains: DeepEP "normal" kernels send one copy per destination node over
    # RDMA and fan out over NVLink, so only the expected number of distinct remote domains among the k
    # experts crosses the slow link (see ASSUMPTIONS["moe_node_dedup"]). Decode ("low-latency" kernels):
    # one RDMA copy per remote expert.
    domains = np.maximum(n / x.domain, 1.0)
    distinct_remote = domains * (1.0 - (1.0 - 1.0 / domains) ** k) * (domains - 1.0) / domains
    copies = np.where((domains > 1.0) & (not decode), distinct_remote, k * remote)
    moe_bytes = m["n_layers"] * m["hidden_size"] * copies * (x.wbytes + 2.0)
    # dense tensor parallel: 2 ring all-reduces per layer in BF16; dense data parallel: none
    tp_bytes = np.where(lay.dp, 0.0, m["n_layers"] * 2.0 * m["hidden_size"] * 2.0 * 2.0 * (n - 1.0) / n)
    net_tok = np.where(moe, moe_bytes, tp_bytes)
    return {
        "tokens": tokens,
        "compute": tokens * (2e9 * m["active_params_b"] / x.peak + attn_tok / x.attn_peak),
        "memory": weights + kv_traffic / x.hbm,
        "weights": weights + 0.0 * tokens,
        "network": tokens * net_tok / x.link,
        "layers": m["n_layers"] * (1.0 if decode else 0.0) + 0.0 * tokens,
    }


def _scaled(t: Terms, f: FloatArray | float) -> Terms:
    return {k: v * f for k, v in t.items()}


def _context(model: Ids, chip: Ids, precision: str, n: FloatArray, o: KernelOptions, root: Path | str | None,
             m: dict[str, FloatArray] | None = None) -> _Ctx:
    precision = specs.precision_id(precision)
    wbytes = _precision_bytes("precision", precision)
    kvb = _precision_bytes("kv_precision", o.kv_precision)
    so = float(ASSUMPTIONS["scale_out_gbps"]["value"]) if o.scale_out_gbps is None else float(
        check_number("scale_out_gbps", o.scale_out_gbps, allow_zero=False))
    m = specs.model_fields(model, root) if m is None else m
    ch = specs.chip_fields(chip, root)
    attn_precision = str(ASSUMPTIONS["attention_precision"]["value"])
    for p in (precision, attn_precision):
        _missing("chip", chip, ch[f"peak_{p}"], f"{p} peak (any of {', '.join(specs.PEAK_FALLBACK[p])})", "chips")
    _missing("chip", chip, ch["hbm_tbps"], "hbm_tbps", "chips")
    return _Ctx(m, chip, ch[f"peak_{precision}"] * 1e12, ch[f"peak_{attn_precision}"] * 1e12, ch["hbm_tbps"] * 1e12,
                _domain_size(ch), _link_gbps(ch, chip, n, so, o.missing_link) * 1e9, wbytes, kvb, o.kv_reads)


def _engine_step(x: _Ctx, decode: bool, b: FloatArray, c: FloatArray, n: FloatArray, lay: _Layout,
                 d: _Draft | None) -> Step:
    """The passes of one engine step (speculation: k draft passes + one verification pass over k + 1 tokens)."""
    if d is None or not decode:
        t = _pass_terms(x, x.m, decode, b, c, n, lay)
        return Step([(t, 1.0)], t["tokens"], np.ones_like(t["tokens"]))
    k, a = float(d.spec.draft_tokens), float(d.spec.accept_length)
    verify = _pass_terms(x, x.m, True, b, c, n, lay, q=k + 1.0)
    if d.m is None:  # MTP / EAGLE-3: one target layer per draft token
        draft = _scaled(_pass_terms(x, x.m, True, b, c, n, lay), float(ASSUMPTIONS["draft_layer"]["value"]) / x.m["n_layers"])
    else:
        draft = _pass_terms(x, d.m, True, b, c, n, _layout(d.m, n, "tp"))
    tokens = b * a / n
    return Step([(verify, 1.0), (draft, k)], tokens, np.full(np.shape(tokens), a))


def _part_seconds(t: Mapping[str, FloatArray], phase: str, cal: Calibration | None) -> FloatArray:
    if cal is None:
        ideal: FloatArray = np.maximum(np.maximum(t["compute"], t["memory"]), t["network"])
        return ideal
    x = (t["compute"] + t["memory"]) / (cal.prefill if phase == "prefill" else cal.decode)
    if phase == "decode":  # small-batch decode: the weights stream at most at decode_small_batch x HBM bandwidth
        x = np.maximum(x, t["weights"] / cal.decode_small_batch)
    y = t["network"] / cal.network
    out: FloatArray = t["layers"] * cal.decode_layer_latency_s + x + y - cal.overlap * np.minimum(x, y)
    return out


def step_seconds(t: Mapping[str, Any] | Step, phase: str, *, calibrated: bool,
                 eff: Mapping[str, float] | Calibration | None = None, tau: float | None = None) -> Any:
    """Seconds per engine step from :func:`step_times` terms (or a :class:`Step`): ideal = max of the terms;
    calibrated: see the module doc (``eff``: a :class:`Calibration`, or efficiencies to resolve)."""
    cal: Calibration | None = None
    if calibrated:
        if eff is None:
            raise ValueError("step_seconds(calibrated=True) needs eff (the efficiencies)")
        cal = eff if isinstance(eff, Calibration) else _resolve_calibration(eff, tau)
    if isinstance(t, Step):
        return sum((_part_seconds(p, phase, cal) * count for p, count in t.parts), np.zeros(()))
    if "weights" not in t:
        t = {**t, "weights": np.zeros(np.shape(t["memory"]))}
    return _part_seconds(t, phase, cal)


class _Scenario(NamedTuple):
    x: _Ctx
    b: FloatArray
    c: FloatArray
    n: FloatArray
    lay: _Layout
    d: _Draft | None


def _scenario(model: Ids, chip: Ids, phase: str, batch: ArrayLike, context: ArrayLike, precision: str,
              n_chips: ArrayLike, o: KernelOptions, root: Path | str | None, check_context: bool = True) -> _Scenario:
    check_choice("phase", phase, PHASES)
    b, c, n = _check_common(batch, context, n_chips)
    check_shapes(model=np.asarray(model), chip=np.asarray(chip), batch=b, context=c, n_chips=n)
    m = specs.model_fields(model, root)
    _check_model(model, m, c if check_context else None)
    d = _draft(o.speculative, root)
    if d is not None and d.m is not None:
        _check_model(str(d.spec.draft_model), d.m)
    x = _context(model, chip, precision, n, o, root, m)
    return _Scenario(x, b, c, n, _layout(m, n, o.attention, o.expert_parallel), d)


def step_times(
    model: Ids, chip: Ids, phase: str, *, batch: ArrayLike, context: ArrayLike, precision: str = "bf16",
    n_chips: ArrayLike = 1, kv_precision: str = "bf16", scale_out_gbps: float | None = None,
    kv_reads: str = "once_per_kv_head", root: Path | str | None = None, missing_link: str = "raise",
    attention: str | None = None, expert_parallel: int | None = None,
    speculative: Speculative | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Roofline terms per chip for one engine step, in seconds, plus the tokens that step yields.

    Returns ``{"tokens", "compute", "memory", "weights", "network", "layers"}`` (tokens per chip per step;
    prefill: batch x context / n_chips, decode: batch / n_chips, times the accept length with speculation;
    ``weights``: the part of ``memory`` that streams weights; ``layers``: the layers that pay the fixed
    per-layer decode latency in the calibrated layer, 0 in prefill). With speculation the draft and
    verification passes are summed (:func:`engine_step` keeps them apart).
    ``kv_reads``: see :data:`KV_READS` and ``ASSUMPTIONS["kv_reads"]`` (decode only).
    A figure the step needs that chips.csv or models.csv lacks raises :class:`MissingSpecError` naming
    the chip or model and the field (``missing_link``: see :data:`MISSING_LINK`).
    """
    st = engine_step(model, chip, phase, batch=batch, context=context, precision=precision, n_chips=n_chips,
                     options=KernelOptions.of(kv_precision=kv_precision, scale_out_gbps=scale_out_gbps, kv_reads=kv_reads,
                                              missing_link=missing_link, attention=attention,
                                              expert_parallel=expert_parallel, speculative=speculative), root=root)
    out: dict[str, Any] = {k: sum((p[k] * cnt for p, cnt in st.parts), np.zeros(())) for k in st.parts[0][0]}
    out["tokens"] = st.tokens
    return out


def engine_step(model: Ids, chip: Ids, phase: str, *, batch: ArrayLike, context: ArrayLike, precision: str = "bf16",
                n_chips: ArrayLike = 1, options: KernelOptions | None = None, root: Path | str | None = None,
                check_context: bool = True) -> Step:
    """The :class:`Step` (passes, output tokens per chip, tokens per sequence) of one engine step."""
    s = _scenario(model, chip, phase, batch, context, precision, n_chips, options or KernelOptions(), root, check_context)
    return _engine_step(s.x, phase == "decode", s.b, s.c, s.n, s.lay, s.d)


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


def _cal(o: KernelOptions) -> Calibration | None:
    return _resolve_calibration(o.efficiencies, o.decode_layer_latency_s, o.overlap) if o.calibrated else None


def _seconds(step: Step, phase: str, cal: Calibration | None) -> FloatArray:
    total: FloatArray = sum((_part_seconds(p, phase, cal) * count for p, count in step.parts), np.zeros(()))
    return total


class Rates(NamedTuple):
    """Per scenario: output tokens/s per chip, tokens/s per user, seconds per engine step, and the fit mask."""

    per_chip: FloatArray
    per_user: FloatArray
    step_s: FloatArray
    ok: npt.NDArray[np.bool_]


def rates(model: Ids, chip: Ids, phase: str, *, batch: ArrayLike, context: ArrayLike, precision: str = "bf16",
          n_chips: ArrayLike = 1, options: KernelOptions | None = None, root: Path | str | None = None) -> Rates:
    """Throughput per chip and per user of one scenario grid, without the memory guard (``ok`` says what fits)."""
    o = options or KernelOptions()
    s = _scenario(model, chip, phase, batch, context, precision, n_chips, o, root)
    return _rates(s, phase, _cal(o), o)


def _rates(s: _Scenario, phase: str, cal: Calibration | None, o: KernelOptions) -> Rates:
    step = _engine_step(s.x, phase == "decode", s.b, s.c, s.n, s.lay, s.d)
    sec = _seconds(step, phase, cal)
    fixed, per_seq = _memory_parts(s.x.m, s.c, s.n, s.x.wbytes, s.x.kvb, s.lay, s.d)
    ok = fixed + s.b * per_seq <= _capacity(specs.chip_fields(s.x.chip), _overhead(o.memory_overhead), s.x.chip)
    per_user = step.per_user / sec if phase == "decode" else s.c / sec
    return Rates(step.tokens / sec, per_user, sec, np.asarray(ok, dtype=bool))


def batch_for_speed(
    model: Ids, chip: Ids, *, context: ArrayLike, tokens_per_s_per_user: ArrayLike, precision: str = "bf16",
    n_chips: ArrayLike = 1, options: KernelOptions | None = None, root: Path | str | None = None,
) -> Any:
    """Largest whole decode batch (sequences per group) that fits in memory and still gives every user at least
    ``tokens_per_s_per_user``. Speed per user never rises with batch (every term of a step is non-decreasing
    in it), so a bisection over ``[1, max_batch]`` finds it. Where no batch reaches the target: raises, naming
    it and the best reachable speed (batch 1), or NaN with ``on_oom="nan"``."""
    o = options or KernelOptions()
    target = check_number("tokens_per_s_per_user", tokens_per_s_per_user, allow_zero=False)
    s = _scenario(model, chip, "decode", 1, context, precision, n_chips, o, root)
    cal = _cal(o)
    shape = np.broadcast_shapes(np.shape(target), np.shape(s.c), np.shape(s.n), np.shape(s.x.peak), np.shape(s.x.m["n_layers"]))
    top = np.broadcast_to(_max_batch(s.x.m, specs.chip_fields(chip, root), chip, s.c, s.n, s.x.wbytes, s.x.kvb,
                                     _overhead(o.memory_overhead), s.lay, s.d), shape)

    def speed(b: FloatArray) -> FloatArray:
        step = _engine_step(s.x, True, b, s.c, s.n, s.lay, s.d)
        out: FloatArray = np.broadcast_to(step.per_user / _seconds(step, "decode", cal), shape)
        return out

    best = speed(np.ones(shape))
    lo = np.where((best >= target) & (top >= 1), 1.0, 0.0)  # largest known-good batch (0: none)
    hi = np.where(lo > 0, top, 0.0)  # smallest batch known to be too slow is > hi
    for _ in range(64):  # bisection: lo good, everything above hi bad
        todo = hi > lo
        if not np.any(todo):
            break
        mid = np.where(todo, np.ceil((lo + hi) / 2.0), 1.0)
        good = speed(mid) >= target
        lo = np.where(todo & good, mid, lo)
        hi = np.where(todo & ~good, mid - 1.0, hi)
    bad = lo < 1
    if np.any(bad):
        if o.on_oom == "raise":
            i = np.unravel_index(int(np.argmax(bad)), shape)
            why = ("even batch 1 does not fit in memory" if top[i] < 1 else
                   f"the best reachable is {float(best[i]):.4g} tokens/s per user, at batch 1")
            raise ValueError(f"no batch of {np.broadcast_to(np.asarray(model), shape)[i]!s} on "
                             f"{float(np.broadcast_to(s.n, shape)[i]):g} x {np.broadcast_to(np.asarray(chip), shape)[i]!s} "
                             f"at context {float(np.broadcast_to(s.c, shape)[i]):g} reaches {float(np.broadcast_to(target, shape)[i]):g} "
                             f"tokens/s per user: {why} (on_oom='nan' gives NaN there)")
        lo = np.where(bad, np.nan, lo)
    return int(lo) if lo.ndim == 0 and np.isfinite(lo) else _out(lo, lo.ndim == 0)


def _batch_or_speed(batch: ArrayLike | None, speed: ArrayLike | None, phase: str) -> None:
    if (batch is None) == (speed is None):
        raise ValueError("give batch or tokens_per_s_per_user (the largest batch meeting that speed), exactly one")
    if speed is not None and phase != "decode":
        raise ValueError(f"tokens_per_s_per_user sets the decode batch; phase {phase!r} needs batch")


def throughput(
    model: Ids, chip: Ids, phase: str, *, batch: ArrayLike | None = None, context: ArrayLike, precision: str = "bf16",
    n_chips: ArrayLike = 1, tokens_per_s_per_user: ArrayLike | None = None, root: Path | str | None = None,
    options: KernelOptions | None = None, **legacy: Unpack[KernelKeywords],
) -> Any:
    """Tokens per second per chip (prefill: input tokens, decode: output tokens).

    ``calibrated=False`` gives the ideal roofline; ``True`` the calibrated estimate (see module doc).
    ``efficiencies`` overrides the fitted ones (keys ``prefill``, ``decode``, ``network``, each in (0, 1];
    it may also carry ``decode_small_batch``, ``decode_layer_latency_s`` and ``overlap``).
    ``decode_layer_latency_s`` overrides the fitted fixed per-layer decode latency (seconds, >= 0) and
    ``overlap`` the fitted compute-network overlap share ([0, 1]).
    ``kv_reads``: how the decode attention kernel reads a GQA model's KV cache (:data:`KV_READS`).
    ``attention`` (:data:`ATTENTION_LAYOUTS`) and ``expert_parallel`` (chips the experts are spread over) set
    the parallel layout; by default the rule of ``ASSUMPTIONS["moe_dp_attention_min_chips"]``.
    ``speculative``: ``{"draft_tokens": k, "accept_length": a}`` (:class:`Speculative`).
    ``tokens_per_s_per_user`` instead of ``batch`` (decode): the throughput at the largest batch that still
    gives each user that speed (:func:`batch_for_speed`).
    ``on_oom``: ``"raise"`` (default) or ``"nan"`` for scenarios whose batch does not fit in memory;
    ``memory_overhead`` overrides the assumed unusable share of HBM in that check ([0, 1)).
    ``options``: a :class:`KernelOptions` holding all of the above; each may instead be given as a keyword
    (:class:`KernelKeywords`), applied over ``options`` where it differs from the default.
    A missing chip or model figure raises :class:`~tokenlib.errors.MissingSpecError` (``missing_link``:
    :data:`MISSING_LINK`); NaN comes only from ``on_oom="nan"``.
    Returns a float when every argument is a scalar, else an ndarray (numpy broadcasting).
    """
    o = _merge(options, legacy)
    _batch_or_speed(batch, tokens_per_s_per_user, phase)
    if batch is None and tokens_per_s_per_user is not None:
        batch = batch_for_speed(model, chip, context=context, tokens_per_s_per_user=tokens_per_s_per_user,
                                precision=precision, n_chips=n_chips, options=o, root=root)
        if np.any(~np.isfinite(batch)):  # on_oom="nan": no batch reaches the speed there
            good = np.where(np.isfinite(batch), batch, 1.0)
            tps = throughput(model, chip, phase, batch=good, context=context, precision=precision, n_chips=n_chips,
                             root=root, options=replace(o, on_oom="nan"))
            return _out(np.where(np.isfinite(batch), tps, np.nan), np.ndim(tps) == 0)
    assert batch is not None  # _batch_or_speed: one of the two is given
    s = _scenario(model, chip, phase, batch, context, precision, n_chips, o, root)
    r = _rates(s, phase, _cal(o), o)
    tps = _guard_fit(np.asarray(r.per_chip, dtype=float), r.ok, o.on_oom,
                     f"batch {batch!r} x context {context!r} of {model!r} at {precision} on {n_chips!r} x {chip!r}")
    scalar = all(np.ndim(v) == 0 for v in (model, chip, batch, context, n_chips)) and np.ndim(
        0 if tokens_per_s_per_user is None else tokens_per_s_per_user) == 0
    return _out(np.asarray(tps, dtype=float), scalar)


_DEFAULTS = KernelOptions()
_UNKNOWN = object()  # a name KernelOptions lacks: passed on, so KernelOptions.of names it


def _merge(options: KernelOptions | None, kw: KernelKeywords | Mapping[str, Any] | None = None,
           **more: Any) -> KernelOptions:
    """``options`` with every keyword that differs from the default applied on top (unknown names raise)."""
    changed = {k: v for k, v in {**(kw or {}), **more}.items() if not _same(v, getattr(_DEFAULTS, k, _UNKNOWN))}
    return KernelOptions.of(options, **changed)


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and isinstance(a, (str, bool, int, float)) and a == b)


def static_batch_times(
    model: Ids, chip: Ids, *, batch: ArrayLike, input_len: ArrayLike, output_len: ArrayLike, precision: str = "bf16",
    n_chips: ArrayLike = 1, kv_precision: str = "bf16", scale_out_gbps: float | None = None,
    kv_reads: str = "once_per_kv_head", root: Path | str | None = None, missing_link: str = "raise",
    attention: str | None = None, expert_parallel: int | None = None,
    speculative: Speculative | Mapping[str, Any] | None = None, options: KernelOptions | None = None,
) -> dict[str, Any]:
    """Roofline terms of one static-batch run: ``batch`` prompts of ``input_len`` tokens prefilled in one
    step, then decode steps until ``output_len`` tokens (the prefill yields the first output token; with
    speculation each decode step yields the accept length).

    Returns ``{"prefill": Step, "decode": Step at the mean KV length input_len + output_len / 2,
    "decode_steps": (output_len - 1) / tokens per step, "tokens": output tokens per chip}``.
    Decode time is linear in the KV length, so the mean length gives the run's total decode time.
    """
    o = _merge(options, kv_precision=kv_precision, scale_out_gbps=scale_out_gbps, kv_reads=kv_reads,
               missing_link=missing_link, attention=attention, expert_parallel=expert_parallel, speculative=speculative)
    il = check_count("input_len", input_len)
    ol = check_count("output_len", output_len)
    b, _, n = _check_common(batch, 1, n_chips)
    check_shapes(batch=b, input_len=il, output_len=ol, n_chips=n)
    _check_model(model, specs.model_fields(model, root), il)  # the prompt must fit the model's window
    pre = engine_step(model, chip, "prefill", batch=batch, context=il, precision=precision, n_chips=n_chips,
                      options=replace(o, speculative=None), root=root)
    dec = engine_step(model, chip, "decode", batch=batch, context=il + ol / 2.0, precision=precision,
                      n_chips=n_chips, options=o, root=root, check_context=False)
    return {"prefill": pre, "decode": dec, "decode_steps": (ol - 1.0) / dec.per_user, "tokens": b * ol / n}


def static_batch_throughput(
    model: Ids, chip: Ids, *, batch: ArrayLike, input_len: ArrayLike, output_len: ArrayLike, precision: str = "bf16",
    n_chips: ArrayLike = 1, root: Path | str | None = None, options: KernelOptions | None = None,
    **legacy: Unpack[KernelKeywords],
) -> Any:
    """Output tokens per second per chip of a static-batch benchmark, prefill time included.

    This is the metric of offline benchmarks such as TensorRT-LLM's gptSessionBenchmark
    (``out_tps = output_seqlen * batch_size / total_latency / tp``): every sequence is prefilled, then
    decoded to ``output_len`` tokens. Memory must hold the KV cache at its longest
    (``input_len + output_len``). Other arguments as in :func:`throughput`.
    """
    o = _merge(options, legacy)
    t = static_batch_times(model, chip, batch=batch, input_len=input_len, output_len=output_len,
                           precision=precision, n_chips=n_chips, root=root, options=o)
    cal = _cal(o)
    total = _seconds(t["prefill"], "prefill", cal) + t["decode_steps"] * _seconds(t["decode"], "decode", cal)
    longest = _arr(input_len) + _arr(output_len)
    # only the prompt is held to max_context: published static-batch runs decode past it (TensorRT-LLM's
    # Llama-2-70B 128-in/4096-out benchmark, data/deployments.csv)
    ok = _fits(model, chip, batch=batch, context=longest, precision=precision, n_chips=n_chips,
               kv_precision=o.kv_precision, memory_overhead=o.memory_overhead, root=root, check_context=False,
               attention=o.attention, expert_parallel=o.expert_parallel, speculative=o.speculative)
    tps = _guard_fit(np.asarray(t["tokens"] / total, dtype=float), ok, o.on_oom,
                     f"batch {batch!r} x {input_len!r}+{output_len!r} tokens of {model!r} at {precision} "
                     f"on {n_chips!r} x {chip!r}")
    scalar = all(np.ndim(x) == 0 for x in (model, chip, batch, input_len, output_len, n_chips))
    return _out(np.asarray(tps, dtype=float), scalar)
