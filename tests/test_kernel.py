from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenlib
from tokenlib.model import cost, kernel

FIX = Path(__file__).parent / "fixtures"
EFF = {"prefill": 0.9, "decode": 0.6, "network": 0.8}


def test_kv_bytes_hand_computed():
    assert kernel.kv_bytes_per_token("deepseek-v3", root=FIX) == (512 + 64) * 61 * 2 == 70_272
    assert kernel.kv_bytes_per_token("deepseek-v3", "fp8", root=FIX) == 35_136
    assert kernel.kv_bytes_per_token("llama-2-70b", root=FIX) == 2 * 80 * 8 * 128 * 2 == 327_680
    # Qwen3-235B: 94 layers, 4 KV heads, head dim 128
    assert kernel.kv_bytes_per_token("qwen3-235b-a22b", root=FIX) == 2 * 94 * 4 * 128 * 2


def test_kv_bytes_raw_mha_equals_gqa_with_all_heads():
    assert float(kernel.kv_bytes_per_token_raw(0, 32, 32, 128, np.nan, np.nan, 2)) == 2 * 32 * 32 * 128 * 2


def test_memory_fit_and_limits():
    # Llama-2-70B bf16 = 140 GB of weights: not on one 80 GB chip, fits on two with a small batch
    assert not kernel.fits("llama-2-70b", "h800", batch=1, context=1024, root=FIX)
    assert kernel.fits("llama-2-70b", "h800", batch=1, context=1024, n_chips=2, root=FIX)
    assert kernel.min_chips("llama-2-70b", "h800", batch=1, context=1024, root=FIX) == 2
    b = kernel.max_batch("llama-2-70b", "h800", context=4096, n_chips=2, root=FIX)
    assert kernel.fits("llama-2-70b", "h800", batch=b, context=4096, n_chips=2, root=FIX)
    assert not kernel.fits("llama-2-70b", "h800", batch=b + 1, context=4096, n_chips=2, root=FIX)
    assert kernel.max_batch("llama-2-70b", "h800", context=4096, n_chips=1, root=FIX) == 0


def test_oom_raises_or_nan_never_a_number():
    with pytest.raises(kernel.MemoryFitError):
        kernel.throughput("llama-2-70b", "h800", "decode", batch=1, context=1024, root=FIX, efficiencies=EFF)
    out = kernel.throughput("llama-2-70b", "h800", "decode", batch=np.array([1, 1]), context=1024,
                            n_chips=np.array([1, 2]), on_oom="nan", root=FIX, efficiencies=EFF)
    assert np.isnan(out[0]) and np.isfinite(out[1])


def test_roofline_hand_case_dense_decode():
    # Llama-2-70B fp8 on 2 x H800, batch 1: memory-bound; weights 70e9 bytes / 2 chips
    t = kernel.step_times("llama-2-70b", "h800", "decode", batch=1, context=1000, precision="fp8",
                          n_chips=2, root=FIX)
    expected_mem = (70e9 / 2 + 0.5 * 1000 * 327_680) / 3.35e12
    assert float(t["memory"]) == pytest.approx(expected_mem)
    ideal = kernel.throughput("llama-2-70b", "h800", "decode", batch=1, context=1000, precision="fp8",
                              n_chips=2, calibrated=False, root=FIX)
    assert ideal == pytest.approx(0.5 / max(float(t["compute"]), float(t["memory"]), float(t["network"])))


def test_bad_inputs():
    kw = dict(batch=8, context=1024, n_chips=2, root=FIX, efficiencies=EFF)
    with pytest.raises(ValueError, match="phase"):
        kernel.throughput("llama-2-70b", "h800", "train", **kw)
    for bad in (-1, np.nan, np.inf):
        with pytest.raises(ValueError, match="batch"):
            kernel.throughput("llama-2-70b", "h800", "decode", **{**kw, "batch": bad})
    with pytest.raises(ValueError, match="context"):
        kernel.throughput("llama-2-70b", "h800", "decode", **{**kw, "context": -5})
    with pytest.raises(ValueError, match="precision"):
        kernel.throughput("llama-2-70b", "h800", "decode", precision="fp3", **kw)
    with pytest.raises(ValueError, match="h800.*fp4 peak"):  # fp4 only where chips.csv gives a dense FP4 peak
        kernel.throughput("llama-2-70b", "h800", "decode", precision="fp4", **kw)
    with pytest.raises(ValueError, match="efficiency"):
        kernel.throughput("llama-2-70b", "h800", "decode", **{**kw, "efficiencies": {**EFF, "decode": 1.5}})


def test_precision_names_engines_use_price_as_the_kernels_ids():
    """'W8A8' (vLLM-Ascend, MindIE) is the kernel's int8; 'BF16' its bf16; a format the kernel does not price
    (W4A8) is refused by name, with the valid ids."""
    kw = dict(batch=8, context=4096, n_chips=2)
    base = kernel.throughput("qwen3-32b", "ascend-910b", "decode", precision="int8", **kw)
    assert kernel.throughput("qwen3-32b", "ascend-910b", "decode", precision="W8A8", **kw) == pytest.approx(base, rel=1e-12)
    assert kernel.throughput("qwen3-32b", "ascend-910b", "decode", precision="w8a8", kv_precision="BF16", **kw) == \
        pytest.approx(base, rel=1e-12)
    fr = tokenlib.frontier("qwen3-32b", "ascend-910b", context=4096, precision="w8a8", n_chips=2, batches=[1, 8])
    assert fr["tokens_per_s_per_chip"].iloc[-1] == pytest.approx(base, rel=1e-9)
    assert cost.cost_per_mtok("qwen3-32b", "h20", "decode", precision="BF16", batch=8, context=4096) == \
        pytest.approx(cost.cost_per_mtok("qwen3-32b", "h20", "decode", precision="bf16", batch=8, context=4096), rel=1e-12)
    for bad in ("w4a8", "int4", 8, None):
        with pytest.raises(ValueError, match=r"unknown precision .*Valid precision ids: bf16, fp16, fp4, fp8, int8"):
            kernel.throughput("qwen3-32b", "ascend-910b", "decode", precision=bad, **kw)

def test_arrays_equal_scalars():
    models = np.array(["deepseek-v3", "qwen3-235b-a22b"])[:, None, None]
    chips = np.array(["h800", "h200", "ascend-910c"])[None, :, None]
    batch = np.array([64.0, 2048.0])[None, None, :]
    grid = kernel.throughput(models, chips, "decode", batch=batch, context=2048, precision="fp8",
                             n_chips=64, root=FIX, efficiencies=EFF)
    assert grid.shape == (2, 3, 2)
    for i, m in enumerate(models.ravel()):
        for j, c in enumerate(chips.ravel()):
            for k, b in enumerate(batch.ravel()):
                s = kernel.throughput(str(m), str(c), "decode", batch=float(b), context=2048, precision="fp8",
                                      n_chips=64, root=FIX, efficiencies=EFF)
                assert isinstance(s, float) and s == pytest.approx(grid[i, j, k], rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    phase=st.sampled_from(["prefill", "decode"]),
    chip=st.sampled_from(["h800", "h100-sxm", "h200", "a100-sxm", "ascend-910c"]),
    model=st.sampled_from(["deepseek-v3", "qwen3-235b-a22b", "llama-3.1-70b"]),
    batch=st.integers(1, 4096), context=st.floats(16, 32768), n_chips=st.sampled_from([8, 16, 64, 320]),
    eff=st.tuples(st.floats(0.01, 1), st.floats(0.01, 1), st.floats(0.01, 1)),
)
def test_calibrated_never_exceeds_ideal(phase, chip, model, batch, context, n_chips, eff):
    e = dict(zip(kernel.EFFICIENCY_NAMES, eff))
    kw = dict(batch=batch, context=context, precision="fp8", n_chips=n_chips, root=FIX, on_oom="nan")
    ideal = kernel.throughput(model, chip, phase, calibrated=False, **kw)
    cal = kernel.throughput(model, chip, phase, calibrated=True, efficiencies=e, **kw)
    assert (np.isnan(ideal) and np.isnan(cal)) or cal <= ideal * (1 + 1e-12)


def test_real_data_committed_efficiencies_calibrated_below_ideal():
    kw = dict(batch=12686, context=4989, precision="fp8", n_chips=144)
    ideal = kernel.throughput("deepseek-v3", "h800", "decode", calibrated=False, **kw)
    cal = kernel.throughput("deepseek-v3", "h800", "decode", **kw)
    assert 0 < cal <= ideal


def test_kv_reads_per_query_head_multiplies_gqa_kv_traffic_only():
    kw = dict(batch=64, context=2000, precision="fp8", kv_precision="fp8", n_chips=2, root=FIX)
    grouped = kernel.step_times("llama-2-70b", "h800", "decode", **kw)
    per_head = kernel.step_times("llama-2-70b", "h800", "decode", kv_reads="once_per_query_head", **kw)
    kv_bytes_per_chip = 64 * 2000 * 327_680 / 2 / 2  # fp8 KV, two chips
    # Llama-2-70B: 64 query heads share 8 KV heads -> 8x the KV reads, 7 extra copies
    assert float(per_head["memory"] - grouped["memory"]) == pytest.approx(7 * kv_bytes_per_chip / 3.35e12)
    assert float(per_head["compute"]) == float(grouped["compute"])
    prefill = [kernel.step_times("llama-2-70b", "h800", "prefill", kv_reads=k, **kw)["memory"] for k in kernel.KV_READS]
    assert float(prefill[0]) == float(prefill[1])
    mla = [kernel.step_times("deepseek-v3", "h800", "decode", kv_reads=k, batch=64, context=2000, n_chips=32,
                             root=FIX)["memory"] for k in kernel.KV_READS]
    assert float(mla[0]) == float(mla[1])
    with pytest.raises(ValueError, match="kv_reads"):
        kernel.throughput("llama-2-70b", "h800", "decode", kv_reads="twice", **kw)


def test_static_batch_is_prefill_plus_decode_steps():
    kw = dict(batch=32, precision="fp8", kv_precision="fp8", n_chips=2, root=FIX, efficiencies=EFF,
              decode_layer_latency_s=1e-4)
    out = kernel.static_batch_throughput("llama-2-70b", "h800", input_len=1000, output_len=201, **kw)
    pre = kernel.throughput("llama-2-70b", "h800", "prefill", context=1000, **kw)
    dec = kernel.throughput("llama-2-70b", "h800", "decode", context=1000 + 201 / 2, **kw)
    seconds = 32 * 1000 / 2 / pre + 200 * (32 / 2) / dec  # per chip: one prefill step, 200 decode steps
    assert out == pytest.approx(32 * 201 / 2 / seconds)
    # output tokens per second: more than the prefill-diluted rate, less than pure decode
    assert out < dec
    arr = kernel.static_batch_throughput("llama-2-70b", "h800", input_len=np.array([1000, 2000]), output_len=201, **kw)
    assert arr[0] == pytest.approx(out) and arr[1] < arr[0]


def test_static_batch_checks_memory_at_the_longest_sequence():
    kw = dict(batch=150, precision="fp8", kv_precision="fp8", n_chips=2, root=FIX, efficiencies=EFF)
    # fits at the mean KV length of 2,500 tokens, not at the final 4,000
    assert kernel.fits("llama-2-70b", "h800", context=2500, **{k: kw[k] for k in ("batch", "precision", "kv_precision", "n_chips", "root")})
    with pytest.raises(kernel.MemoryFitError):
        kernel.static_batch_throughput("llama-2-70b", "h800", input_len=1000, output_len=3000, **kw)
    assert np.isnan(kernel.static_batch_throughput("llama-2-70b", "h800", input_len=1000, output_len=3000,
                                                   on_oom="nan", **kw))
    for bad in (0, -5, np.nan):
        with pytest.raises(ValueError, match="output_len"):
            kernel.static_batch_throughput("llama-2-70b", "h800", input_len=100, output_len=bad, **kw)


def test_kernel_keywords_are_the_options_fields():
    # the keyword spelling and the options object are one list of names: a field added to one only fails here
    from dataclasses import fields
    assert set(kernel.KernelKeywords.__annotations__) == {f.name for f in fields(kernel.KernelOptions)}


def test_unknown_kernel_keyword_names_the_valid_ones():
    with pytest.raises(TypeError, match="kv_reeds.*valid"):
        kernel.throughput("llama-2-70b", "h800", "decode", batch=8, context=1000, kv_reeds="once_per_kv_head")
