"""Benchmark: >= 1e6 scenarios through one vectorized ``cost_per_mtok`` call vs a per-scenario loop.

Grid: models x chips x places x utilisation x batch x context (broadcast, ids stay small arrays).
Prints median-of-5 seconds, scenarios/s, peak memory (tracemalloc), and the speed-up over a plain
Python loop of scalar calls on a 1e4 random sample of the same scenarios (extrapolated per scenario).
Run: ``python benchmarks/bench_cost_grid.py`` (not a timed test).
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import numpy as np

from tokenlib.model import cost
from tokenlib.model import kernel
from tokenlib.data import places
from tokenlib.data import specs

MODELS = np.array(["deepseek-v3", "deepseek-r1", "qwen3-235b-a22b", "llama-3.1-70b", "qwen2.5-72b", "qwen3-32b"])
CHIPS = np.array(["h800", "h100-sxm", "h200", "h20", "a100-sxm", "a800", "ascend-910b", "ascend-910c",
                  "b200", "mi300x", "l20", "biren-br100"])


def main() -> None:
    chips = np.array([c for c in CHIPS if c in specs.chip_ids()])
    plc = np.array(places.places_with_electricity())
    util = np.linspace(0.3, 0.9, 10)
    batch = np.round(np.geomspace(8, 16384, 20))  # whole sequences (the kernel refuses fractional counts)
    context = np.geomspace(256, 32768, 10)
    shape = (len(MODELS), len(chips), len(plc), len(util), len(batch), len(context))
    n = int(np.prod(shape))
    grid = dict(
        model=MODELS.reshape(-1, 1, 1, 1, 1, 1), chip=chips.reshape(1, -1, 1, 1, 1, 1),
        place=plc.reshape(1, 1, -1, 1, 1, 1), utilization=util.reshape(1, 1, 1, -1, 1, 1),
        batch=batch.reshape(1, 1, 1, 1, -1, 1), context=context.reshape(1, 1, 1, 1, 1, -1),
    )
    common = dict(phase="decode", precision="fp8", n_chips=64, on_oom="nan", cny_per_usd=7.2)
    kernel.efficiencies()
    cost.cost_per_mtok(**{k: v.ravel()[0] if hasattr(v, "ravel") else v for k, v in grid.items()}, **common)  # warm caches
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        out = cost.cost_per_mtok(**grid, **common)
        times.append(time.perf_counter() - t0)
    assert out.shape == shape
    tracemalloc.start()
    cost.cost_per_mtok(**grid, **common)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    med = statistics.median(times)

    rng = np.random.default_rng(0)
    idx = [rng.integers(0, s, 10_000) for s in shape]
    t0 = time.perf_counter()
    loop = [cost.cost_per_mtok(model=str(MODELS[a]), chip=str(chips[b]), place=str(plc[c]), utilization=float(util[d]),
                               batch=float(batch[e]), context=float(context[f]), **common)
            for a, b, c, d, e, f in zip(*idx)]
    loop_per = (time.perf_counter() - t0) / 10_000
    vec = out[tuple(idx)]
    assert np.allclose(np.asarray(loop), vec, equal_nan=True), "loop and vectorized results differ"
    finite = np.isfinite(out).mean()
    print(f"scenarios: {n:,} (shape {shape}); {finite:.1%} fit in memory, the rest are NaN by design")
    print(f"vectorized cost_per_mtok: median of 5 = {med:.3f} s  ({n / med:,.0f} scenarios/s); runs {[round(t, 3) for t in times]}")
    print(f"peak traced memory during one call: {peak / 2**20:,.0f} MiB")
    print(f"per-scenario Python loop (1e4 sample): {loop_per * 1e6:,.1f} us/scenario -> extrapolated {loop_per * n:,.1f} s")
    print(f"speed-up vectorized vs loop: {loop_per * n / med:,.0f}x")


if __name__ == "__main__":
    main()
