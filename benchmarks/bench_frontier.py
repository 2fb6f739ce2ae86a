"""Benchmark: ``tokenlib.frontier`` over 10^6 (scenario, batch) points, as one call.

Scenarios: 5 models x 10 chips x 5 contexts x 4 group sizes = 1,000; batches: 1,000 (whole, from 1 to about
17,000, nearly geometric). Prints median-of-5 seconds for the whole table (a DataFrame of every point that fits) and for the
kernel arrays alone (:func:`tokenlib.model.kernel.rates`). Target (issue 17): <= 0.5 s on the book's 2-core
machine. Run: ``python benchmarks/bench_frontier.py`` (not a timed test).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from tokenlib.data import specs
from tokenlib.model import kernel
from tokenlib.model.frontier import frontier

MODELS = np.array(["deepseek-v3", "qwen3-235b-a22b", "llama-3.1-70b", "qwen3-32b", "kimi-k2"])
CHIPS = np.array(["h800", "h100-sxm", "h200", "h20", "a100-sxm", "ascend-910b", "ascend-910c", "b200", "mi300x",
                  "biren-br100"])


def main() -> None:
    chips = np.array([c for c in CHIPS if c in specs.chip_ids()])
    models = np.array([m for m in MODELS if m in specs.model_ids()])
    context = np.array([1024.0, 2048.0, 4096.0, 8192.0, 16384.0])
    n = np.array([8.0, 16.0, 32.0, 64.0])
    m, c, x, g = np.meshgrid(models, chips, context, n, indexing="ij")
    scen = dict(model=m.ravel(), chip=c.ravel(), context=x.ravel(), n_chips=g.ravel())
    batches = np.unique(np.round(np.geomspace(1, 16384, 1000) + np.arange(1000)))
    points = len(scen["model"]) * len(batches)
    kw = dict(precision="fp8", missing_link="scale_out")
    frontier(**{k: v[:2] for k, v in scen.items()}, batches=batches[:4], **kw)  # warm the caches
    times, arrays = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        table = frontier(**scen, batches=batches, **kw)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        kernel.rates(scen["model"][:, None], scen["chip"][:, None], "decode", batch=batches[None, :],
                     context=scen["context"][:, None], precision="fp8", n_chips=scen["n_chips"][:, None],
                     options=kernel.KernelOptions(missing_link="scale_out"))
        arrays.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"frontier: {points:,} (scenario, batch) points ({len(scen['model']):,} scenarios x {len(batches):,} "
          f"batches), {len(table):,} rows fit in memory")
    print(f"frontier table, one call: median of 5 = {med:.3f} s ({points / med:,.0f} points/s; target <= 0.5 s); "
          f"runs {[round(t, 3) for t in times]}")
    print(f"kernel arrays alone (kernel.rates): median of 5 = {statistics.median(arrays):.3f} s")


if __name__ == "__main__":
    main()
