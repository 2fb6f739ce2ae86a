"""Typed views of the chip and model tables (``data/chips.csv``, ``data/models.csv``).

Specs are data, not code: every number here comes from the sourced CSVs via :func:`tokenlib.data.load`.
This module turns them into small frozen records (one chip, one model) and into column arrays indexed
by id, so the kernel can evaluate grids of chips x models with numpy fancy indexing.

Units: TFLOPS / TOPS (dense peak), GB (1e9 bytes), TB/s (1e12 bytes/s), GB/s, W, USD, billions of parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tokenlib.arrays import FloatArray
from tokenlib.data import data_stamp, load, table_names
from tokenlib.errors import check_choice

PRECISIONS = ("bf16", "fp16", "fp8", "int8", "fp4")
"""Precisions the kernel understands (weights and matmul inputs)."""

PRECISION_ALIASES = {"w8a8": "int8", "bfloat16": "bf16", "float16": "fp16", "fp8_e4m3": "fp8", "nvfp4": "fp4",
                     "mxfp4": "fp4"}
"""Other names engines and papers give the same precisions (case is ignored too): W8A8 is the kernel's ``int8``
(weights and activations in INT8, see :data:`PEAK_FALLBACK`); NVFP4 and MXFP4 are block-scaled 4-bit formats
priced at the chip's dense FP4 peak. Formats that are not one of :data:`PRECISIONS` (W4A8, W4A16, INT4) have no
alias: the kernel does not price them."""


def precision_id(precision: object, what: str = "precision") -> str:
    """The kernel's id for ``precision``: one of :data:`PRECISIONS`, or a name from :data:`PRECISION_ALIASES`,
    case ignored (``"W8A8"`` -> ``"int8"``). Anything else raises :class:`UnknownChoiceError` naming the valid ids."""
    if isinstance(precision, str):
        key = precision.strip().lower()
        key = PRECISION_ALIASES.get(key, key)
        if key in PRECISIONS:
            return key
    return check_choice(what, precision, PRECISIONS)


BYTES_PER_VALUE = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5}
"""Bytes per stored value for each precision."""

PEAK_COLUMN = {"bf16": "bf16_tflops", "fp16": "fp16_tflops", "fp8": "fp8_tflops", "int8": "int8_tops",
               "fp4": "fp4_tflops"}

PEAK_FALLBACK = {
    "bf16": ("bf16_tflops", "fp16_tflops"),
    "fp16": ("fp16_tflops", "bf16_tflops"),
    "fp8": ("fp8_tflops", "int8_tops", "bf16_tflops", "fp16_tflops"),
    "int8": ("int8_tops", "fp8_tflops", "bf16_tflops", "fp16_tflops"),
    "fp4": ("fp4_tflops",),
}
"""Documented fallback when a chip has no published peak for a precision.

The first column that is present is used. So FP8 on a chip without FP8 units (A100, Ascend 910B/910C) runs
at its INT8 peak if it has one, else at its BF16/FP16 peak (weights stay 1 byte: weight-only
quantisation, W8A16). INT8 without a published INT8 peak falls back the same way. Memory traffic
always uses the requested precision's bytes. The fallback never *raises* throughput above a
published figure for that precision; it can only understate a chip whose low-precision peak is
simply unpublished (a gap in chips.csv, listed in its notes). FP4 has no fallback: it is priced only on a chip
whose row gives a dense FP4 peak (``fp4_tflops``), and raises elsewhere. INT8 is W8A8 (weights and activations
in INT8, at the INT8 peak), as the Ascend deployments run it; KV-cache precision is a separate argument."""

CHIP_FIELDS = (
    "bf16_tflops", "fp16_tflops", "fp8_tflops", "int8_tops", "fp4_tflops", "hbm_gb", "hbm_tbps",
    "interconnect_gbps", "tdp_w", "price_usd",
)
MODEL_FIELDS = (
    "total_params_b", "active_params_b", "n_layers", "hidden_size", "n_heads", "n_kv_heads",
    "head_dim", "kv_lora_rank", "qk_rope_head_dim", "n_routed_experts", "n_experts_per_token",
    "n_shared_experts", "max_context", "mtp_params_b",
)
ATTENTION_CODES = {"MHA": 0, "GQA": 1, "MLA": 2}


@dataclass(frozen=True)
class Chip:
    """One accelerator. Missing published figures are NaN."""

    id: str
    name: str
    vendor: str
    country: str
    bf16_tflops: float
    fp16_tflops: float
    fp8_tflops: float
    int8_tops: float
    hbm_gb: float
    hbm_tbps: float
    interconnect_gbps: float
    tdp_w: float
    price_usd: float
    price_basis: str = ""
    """What ``price_usd`` buys: ``"card"``, ``"system_share"`` (see data/schema.yaml) or ``""`` when no price."""
    fp4_tflops: float = float("nan")
    """Dense FP4 peak, where published."""

    def peak_tflops(self, precision: str) -> float:
        """Dense peak (TFLOPS/TOPS) used for ``precision``, with the :data:`PEAK_FALLBACK` rule."""
        precision = precision_id(precision)
        for col in PEAK_FALLBACK[precision]:
            v = float(getattr(self, col))
            if np.isfinite(v) and v > 0:
                return v
        raise ValueError(f"chip {self.id!r} has no published peak for {precision} or any fallback")


@dataclass(frozen=True)
class Model:
    """One model architecture. Optional MLA/MoE fields are NaN when not applicable."""

    id: str
    name: str
    attention: str
    total_params_b: float
    active_params_b: float
    n_layers: float
    hidden_size: float
    n_heads: float
    n_kv_heads: float
    head_dim: float
    kv_lora_rank: float
    qk_rope_head_dim: float
    n_routed_experts: float
    n_experts_per_token: float
    n_shared_experts: float
    max_context: float
    mtp_params_b: float = float("nan")
    """Parameters of the multi-token-prediction module(s) shipped with the model (billions), where published."""

    @property
    def is_moe(self) -> bool:
        """True for mixture-of-experts models (routed experts present)."""
        return bool(np.isfinite(self.n_routed_experts) and self.n_routed_experts > 0)


def _root_key(root: Path | str | None) -> str:
    return "" if root is None else str(Path(root).resolve())


def _chips(root: str) -> pd.DataFrame:
    return _chips_cached(root, data_stamp(root or None))


def _models(root: str) -> pd.DataFrame:
    return _models_cached(root, data_stamp(root or None))


# caches are keyed on the data folder's file stamps: an edited chips.csv is seen by the next call
@lru_cache(maxsize=16)
def _chips_cached(root: str, _stamp: tuple[tuple[str, int, int], ...]) -> pd.DataFrame:
    df = load("chips", root or None)
    return df.set_index("id", drop=False)


@lru_cache(maxsize=16)
def _models_cached(root: str, _stamp: tuple[tuple[str, int, int], ...]) -> pd.DataFrame:
    df = load("models", root or None)
    return df.set_index("id", drop=False)


def chips_table(root: Path | str | None = None) -> pd.DataFrame:
    """The validated chips table, indexed by id (a copy)."""
    return _chips(_root_key(root)).copy()


def models_table(root: Path | str | None = None) -> pd.DataFrame:
    """The validated models table, indexed by id (a copy)."""
    return _models(_root_key(root)).copy()


def chip_ids(root: Path | str | None = None) -> list[str]:
    """Valid chip ids."""
    return list(_chips(_root_key(root)).index)


def model_ids(root: Path | str | None = None) -> list[str]:
    """Valid model ids."""
    return list(_models(_root_key(root)).index)


def _f(row: Any, col: str) -> float:
    v = row.get(col) if hasattr(row, "get") else None
    try:
        return float(v) if v is not None and not pd.isna(v) else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def chip(chip_id: str, root: Path | str | None = None) -> Chip:
    """The chip ``chip_id``; unknown ids raise :class:`~tokenlib.errors.UnknownChoiceError`."""
    df = _chips(_root_key(root))
    check_choice("chip", chip_id, df.index)
    r = df.loc[chip_id]
    basis = r.get("price_basis")
    return Chip(
        id=chip_id, name=str(r["name"]), vendor=str(r["vendor"]), country=str(r["country"]),
        **{c: _f(r, c) for c in CHIP_FIELDS},
        price_basis="" if basis is None or pd.isna(basis) else str(basis),
    )


def model(model_id: str, root: Path | str | None = None) -> Model:
    """The model ``model_id``; unknown ids raise :class:`~tokenlib.errors.UnknownChoiceError`."""
    df = _models(_root_key(root))
    check_choice("model", model_id, df.index)
    r = df.loc[model_id]
    return Model(
        id=model_id, name=str(r["name"]), attention=str(r["attention"]),
        **{c: _f(r, c) for c in MODEL_FIELDS},
    )


def _numeric_arrays(df: pd.DataFrame, fields: Sequence[str]) -> tuple[tuple[str, ...], dict[str, FloatArray]]:
    """Row ids and one float array per field (NaN where a table lacks the column or a value)."""
    ids = tuple(str(i) for i in df.index)
    arrays = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) if c in df else
              np.full(len(df), np.nan) for c in fields}
    return ids, arrays


def _freeze(arrays: dict[str, FloatArray]) -> None:
    """Cached arrays are shared between callers: make them read-only."""
    for a in arrays.values():
        a.setflags(write=False)


def _arrays(kind: str, root: str) -> tuple[tuple[str, ...], dict[str, FloatArray]]:
    """Ids and read-only field arrays of the chips (``kind="chip"``) or models (``"model"``) of a data folder."""
    return _arrays_cached(kind, root, data_stamp(root or None))


@lru_cache(maxsize=32)
def _arrays_cached(kind: str, root: str, _stamp: tuple[tuple[str, int, int], ...]) -> tuple[tuple[str, ...], dict[str, FloatArray]]:
    df = _chips(root) if kind == "chip" else _models(root)
    ids, arrays = _numeric_arrays(df, CHIP_FIELDS if kind == "chip" else MODEL_FIELDS)
    if kind == "chip":
        _add_chip_arrays(df, arrays, root)
    else:
        arrays["attention_code"] = np.array([ATTENTION_CODES[str(a)] for a in df["attention"]], dtype=float)
    _freeze(arrays)
    return ids, arrays


def _add_chip_arrays(df: pd.DataFrame, arrays: dict[str, FloatArray], root: str) -> None:
    # price basis as a number the cost kernel can broadcast: 1 = per-chip share of a system price,
    # 0 = card price, NaN = no basis recorded (data/schema.yaml, price_basis)
    basis = df["price_basis"] if "price_basis" in df else pd.Series([None] * len(df), index=df.index)
    arrays["price_is_system_share"] = np.array(
        [1.0 if b == "system_share" else 0.0 if b == "card" else np.nan for b in basis], dtype=float)
    arrays["scaleup_domain_chips"] = _scaleup_domains(root, df)
    for p in PRECISIONS:  # effective peak per precision after the documented fallback
        eff = np.full(len(df), np.nan)
        for col in reversed(PEAK_FALLBACK[p]):
            v = arrays[col]
            eff = np.where(np.isfinite(v) & (v > 0), v, eff)
        arrays[f"peak_{p}"] = eff


def _scaleup_domains(root: str, chips: pd.DataFrame) -> FloatArray:
    """Chips per scale-up domain from ``data/scaleup_domains.csv``, aligned with ``chips``; NaN where the table
    has no row for a chip (the kernel then uses its default, one node) or a data folder has no such table."""
    if "scaleup_domains" not in table_names(Path(root) if root else None):
        return np.full(len(chips), np.nan)
    try:
        dom = load("scaleup_domains", root or None)
    except FileNotFoundError:
        return np.full(len(chips), np.nan)
    size = dict(zip(dom["chip_id"].astype(str), dom["domain_chips"].astype(float)))
    return np.array([size.get(str(c), np.nan) for c in chips["id"]], dtype=float)


def _index_of(what: str, values: Any, ids: tuple[str, ...]) -> npt.NDArray[np.intp]:
    arr = np.asarray(values)
    if arr.dtype.kind not in "UOS":
        raise TypeError(f"{what} must be an id string or an array of id strings, got {values!r}")
    lookup = {k: i for i, k in enumerate(ids)}
    uniq, inverse = np.unique(arr, return_inverse=True)
    codes = np.empty(len(uniq), dtype=np.intp)
    for j, u in enumerate(uniq):
        u = str(u)
        if u not in lookup:
            check_choice(what, u, ids)  # raises with valid ids and the closest match
        codes[j] = lookup[u]
    return codes[inverse].reshape(arr.shape)


def _fields(kind: str, ids_in: Any, root: Path | str | None) -> dict[str, FloatArray]:
    ids, arrays = _arrays(kind, _root_key(root))
    idx = _index_of(kind, ids_in, ids)
    return {k: v[idx] for k, v in arrays.items()}


def chip_fields(chip_id: Any, root: Path | str | None = None) -> dict[str, FloatArray]:
    """Field arrays for one chip id or an array of ids (same shape as ``chip_id``)."""
    return _fields("chip", chip_id, root)


def model_fields(model_id: Any, root: Path | str | None = None) -> dict[str, FloatArray]:
    """Field arrays for one model id or an array of ids (same shape as ``model_id``)."""
    return _fields("model", model_id, root)


def clear_cache() -> None:
    """Forget cached tables (not needed after an edit: the caches key on the files' stamps)."""
    for f in (_chips_cached, _models_cached, _arrays_cached):
        f.cache_clear()
