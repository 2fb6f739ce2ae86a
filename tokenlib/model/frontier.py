"""The latency frontier: throughput per chip against speed per user, over batch.

:func:`frontier` evaluates a scenario (or a grid of scenarios: model, chip, context and n_chips broadcast)
at a list of decode batches and returns one row per (scenario, batch) that fits in memory, with
``tokens_per_s_per_chip`` (what a chip-hour sells), ``tokens_per_s_per_user`` (what a user sees),
``tpot_ms`` (time per output token = 1000 / tokens per s per user), ``ttft_ms`` (time to first token: the
calibrated prefill of one prompt of ``prompt`` tokens, default ``context``, on the same group, queueing
excluded) and, when cost arguments are given (``place``, ``assumptions`` or any
:class:`~tokenlib.model.cost.CostAssumptions` field), ``cost_per_mtok`` (output tokens, ``currency``).
Reading a cost "at 20 tokens/s per user" is :func:`tokenlib.model.cost.cost_per_mtok` with
``tokens_per_s_per_user=20``; this table draws the whole curve.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tokenlib.data import specs
from tokenlib.errors import check_count
from tokenlib.model import cost, kernel
from tokenlib.model.kernel import ArrayLike, Ids, KernelOptions

COLUMNS = ("batch", "tokens_per_s_per_chip", "tokens_per_s_per_user", "tpot_ms", "ttft_ms")


def default_batches(top: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """1, 2, 4, ... up to ``top``, and ``top`` itself (the largest batch that fits)."""
    top = max(float(top), 1.0)
    powers = 2.0 ** np.arange(int(np.floor(np.log2(top))) + 1)
    return np.unique(np.append(powers, np.floor(top)))


def frontier(
    model: Ids, chip: Ids, *, context: ArrayLike, precision: str = "bf16", n_chips: ArrayLike = 1,
    batches: ArrayLike | None = None, prompt: ArrayLike | None = None, root: Path | str | None = None,
    place: Any = None, currency: str = "CNY", assumptions: cost.CostAssumptions | None = None,
    **kernel_options: Any,
) -> pd.DataFrame:
    """One row per (scenario, batch) that fits: ``batch`` and :data:`COLUMNS`, plus ``model``, ``chip``,
    ``context``, ``n_chips`` when those are arrays, and ``cost_per_mtok`` when cost arguments are given.

    ``kernel_options``: any :class:`~tokenlib.model.kernel.KernelOptions` field (``speculative``,
    ``attention``, ``expert_parallel``, ``kv_precision``, ``calibrated``...) and any
    :class:`~tokenlib.model.cost.CostAssumptions` field (``utilization``, ``electricity_cny_per_kwh``...).
    ``batches``: the decode batches (sequences per group; default 1, 2, 4, ... up to the largest that fits).
    """
    cost_names = {f.name for f in fields(cost.CostAssumptions)}
    cost_kw = {k: v for k, v in kernel_options.items() if k in cost_names}
    o = KernelOptions.of(**{k: v for k, v in kernel_options.items() if k not in cost_names})
    ids_m, ids_c = np.asarray(model), np.asarray(chip)
    c, n = np.asarray(context, dtype=float), np.asarray(n_chips, dtype=float)
    shape = np.broadcast_shapes(ids_m.shape, ids_c.shape, c.shape, n.shape)
    if batches is None:
        top = kernel.max_batch(model, chip, context=context, precision=precision, n_chips=n_chips,
                               kv_precision=o.kv_precision, memory_overhead=o.memory_overhead, root=root,
                               attention=o.attention, expert_parallel=o.expert_parallel, speculative=o.speculative)
        b = default_batches(float(np.max(top)))
    else:
        b = np.ravel(check_count("batches", batches))
    grid = (*shape, len(b))

    def col(a: ArrayLike) -> Any:
        return np.reshape(np.asarray(a), (*np.shape(a), 1)) if np.ndim(a) else a

    bb = np.reshape(b, (1,) * len(shape) + (len(b),))
    r = kernel.rates(col(model), col(chip), "decode", batch=bb, context=col(context), precision=precision,
                     n_chips=col(n_chips), options=o, root=root)
    pre = kernel.rates(model, chip, "prefill", batch=1, context=context if prompt is None else prompt,
                       precision=precision, n_chips=n_chips, options=replace(o, speculative=None), root=root)
    ok = np.broadcast_to(r.ok, grid).ravel()
    out: dict[str, Any] = {}
    for name, arr in (("model", ids_m), ("chip", ids_c), ("context", c), ("n_chips", n)):
        if not arr.ndim:
            continue
        if arr.dtype.kind in "UOS":  # ids: categorical codes of the (few) scenarios, not a million strings
            cats, codes = np.unique(arr, return_inverse=True)
            full_codes = np.broadcast_to(col(codes.reshape(arr.shape)), grid).ravel()[ok]
            out[name] = pd.Categorical.from_codes(np.asarray(full_codes, dtype=np.intp),
                                                  dtype=pd.CategoricalDtype([str(v) for v in cats]))
        else:
            out[name] = np.broadcast_to(col(arr), grid).ravel()[ok]
    out["batch"] = np.broadcast_to(bb, grid).ravel()[ok]
    per_user = np.broadcast_to(r.per_user, grid).ravel()[ok]
    out["tokens_per_s_per_chip"] = np.broadcast_to(r.per_chip, grid).ravel()[ok]
    out["tokens_per_s_per_user"] = per_user
    out["tpot_ms"] = 1000.0 / per_user
    # prefill of one prompt on the group: the whole group's time for its input tokens
    out["ttft_ms"] = np.broadcast_to(col(1000.0 * pre.step_s), grid).ravel()[ok]
    if place is not None or assumptions is not None or cost_kw:
        a = cost.CostAssumptions.of(assumptions, **cost_kw)
        hour = cost.chip_hour_cost(col(chip), place=col(place) if place is not None else None, currency=currency,
                                   root=root, assumptions=a)
        util = np.asarray(a.utilization, dtype=np.float64)
        per_mtok = np.asarray(hour) / (np.asarray(r.per_chip) * 3600.0 * util) * 1e6
        out["cost_per_mtok"] = np.broadcast_to(per_mtok, grid).ravel()[ok]
    return pd.DataFrame(out)


__all__ = ["frontier", "default_batches", "COLUMNS", "specs"]
