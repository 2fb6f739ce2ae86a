"""Issue 17 kernel API: latency frontier, speed-constrained throughput and cost, speculative decoding, parallel
layout arguments, the overlap and small-batch terms, and the typed option objects (issue 21 item 4)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenlib
from conftest import run_cli
from tokenlib.model import cost, kernel
from tokenlib.model.frontier import COLUMNS, frontier

DS = dict(context=4096, precision="fp8", n_chips=144)
EFF = {"prefill": 0.5, "decode": 0.8, "network": 0.7, "decode_layer_latency_s": 2e-4}
TOL = 1e-9


def test_frontier_is_exported_and_has_its_columns():
    assert tokenlib.frontier is frontier
    f = frontier("deepseek-v3", "h800", **DS)
    assert set(COLUMNS) <= set(f.columns)
    assert (f["batch"] >= 1).all() and f["batch"].is_monotonic_increasing
    np.testing.assert_allclose(f["tpot_ms"], 1000.0 / f["tokens_per_s_per_user"], rtol=TOL)
    # tokens/s per chip = batch x tokens/s per user / chips (one output token per user per step)
    np.testing.assert_allclose(f["tokens_per_s_per_chip"], f["batch"] * f["tokens_per_s_per_user"] / 144, rtol=TOL)
    assert f["ttft_ms"].gt(0).all()
    top = kernel.max_batch("deepseek-v3", "h800", **DS)
    assert f["batch"].max() == top  # the default batches end at the largest that fits


def test_frontier_cost_column_only_with_cost_arguments():
    assert "cost_per_mtok" not in frontier("deepseek-v3", "h800", **DS, batches=[64, 128]).columns
    f = frontier("deepseek-v3", "h800", **DS, batches=[64, 128], utilization=0.5, cny_per_usd=7.0)
    direct = cost.cost_per_mtok("deepseek-v3", "h800", "decode", batch=np.array([64, 128]), utilization=0.5,
                                cny_per_usd=7.0, **DS)
    np.testing.assert_allclose(f["cost_per_mtok"], direct, rtol=1e-9)


def test_frontier_grid_long_form():
    f = frontier(np.array(["deepseek-v3", "qwen3-235b-a22b"]), "h20", context=2048, precision="fp8", n_chips=16,
                 batches=[1, 8, 64])
    assert list(f["model"].astype(str).unique()) == ["deepseek-v3", "qwen3-235b-a22b"]
    assert len(f) == 6


@settings(max_examples=25, deadline=None)
@given(model=st.sampled_from(["deepseek-v3", "llama-3.1-70b", "qwen3-235b-a22b", "qwen3-32b"]),
       chip=st.sampled_from(["h800", "h20", "ascend-910b", "h200"]),
       n=st.sampled_from([1, 2, 8, 16, 32]), context=st.integers(128, 16384),
       small=st.sampled_from([1.0, 0.5, 0.3]), overlap=st.sampled_from([0.0, 0.5, 1.0]),
       spec=st.sampled_from([None, {"draft_tokens": 1, "accept_length": 1.8}, {"draft_tokens": 3, "accept_length": 2.5}]))
def test_speed_per_user_never_rises_with_batch(model, chip, n, context, small, overlap, spec):
    b = np.array([1, 2, 3, 4, 8, 16, 31, 64, 100, 256, 1024, 4096])
    eff = {**EFF, "decode_small_batch": small, "overlap": overlap}
    r = kernel.rates(model, chip, "decode", batch=b, context=context, precision="fp8", n_chips=n,
                     options=kernel.KernelOptions.of(efficiencies=eff, speculative=spec))
    assert np.all(np.diff(r.per_user) <= r.per_user[:-1] * 1e-12)
    ideal = kernel.rates(model, chip, "decode", batch=b, context=context, precision="fp8", n_chips=n,
                         options=kernel.KernelOptions.of(calibrated=False, speculative=spec))
    assert np.all(r.per_chip <= ideal.per_chip * (1 + 1e-12))  # calibrated <= ideal, overlap and floor included


def test_speed_constrained_throughput_picks_the_largest_batch():
    b = kernel.batch_for_speed("deepseek-v3", "h800", tokens_per_s_per_user=20, **DS)
    speed = kernel.rates("deepseek-v3", "h800", "decode", batch=np.array([b, b + 1]), **DS).per_user
    assert speed[0] >= 20 > speed[1]
    got = kernel.throughput("deepseek-v3", "h800", "decode", tokens_per_s_per_user=20, **DS)
    assert got == pytest.approx(kernel.throughput("deepseek-v3", "h800", "decode", batch=b, **DS), rel=TOL)
    arr = kernel.throughput("deepseek-v3", "h800", "decode", tokens_per_s_per_user=np.array([10.0, 20.0, 35.0]), **DS)
    assert arr.shape == (3,) and arr[0] > arr[1] > arr[2]  # a faster user costs throughput
    c = cost.cost_per_mtok("deepseek-v3", "h800", "decode", tokens_per_s_per_user=np.array([20.0, 35.0]), **DS)
    assert c[1] > c[0]


def test_unreachable_speed_names_target_and_best():
    with pytest.raises(ValueError, match=r"reaches 5000 tokens/s per user.*best reachable is [0-9.]+ tokens/s"):
        kernel.throughput("deepseek-v3", "h800", "decode", tokens_per_s_per_user=5000, **DS)
    out = kernel.throughput("deepseek-v3", "h800", "decode", tokens_per_s_per_user=np.array([20.0, 5000.0]),
                            on_oom="nan", **DS)
    assert np.isfinite(out[0]) and np.isnan(out[1])
    with pytest.raises(ValueError, match="exactly one"):
        kernel.throughput("deepseek-v3", "h800", "decode", batch=8, tokens_per_s_per_user=20, **DS)
    with pytest.raises(ValueError, match="prefill"):
        cost.cost_per_mtok("deepseek-v3", "h800", "prefill", tokens_per_s_per_user=20, **DS)


def test_speculation_with_no_accepted_draft_costs_more():
    kw = dict(batch=np.array([1, 64, 2048]), **DS)
    plain = kernel.throughput("deepseek-v3", "h800", "decode", **kw)
    wasted = kernel.throughput("deepseek-v3", "h800", "decode", speculative={"draft_tokens": 2, "accept_length": 1}, **kw)
    assert np.all(wasted < plain)
    good = kernel.throughput("deepseek-v3", "h800", "decode", speculative={"draft_tokens": 1, "accept_length": 1.9},
                             batch=1, context=4096, precision="fp8", n_chips=144)
    assert good > plain[0]  # at batch 1 the step is latency-bound: accepted drafts are nearly free tokens
    c0 = cost.cost_per_mtok("deepseek-v3", "h800", "decode", **kw)
    c1 = cost.cost_per_mtok("deepseek-v3", "h800", "decode", speculative={"draft_tokens": 2, "accept_length": 1}, **kw)
    assert np.all(c1 >= c0)
    s = kernel.static_batch_throughput("llama-3.1-70b", "h200", batch=8, input_len=128, output_len=512, precision="fp8",
                                       speculative={"draft_tokens": 3, "accept_length": 1.0})
    assert s < kernel.static_batch_throughput("llama-3.1-70b", "h200", batch=8, input_len=128, output_len=512,
                                              precision="fp8")


def test_speculation_memory_counts_the_draft():
    spec = {"draft_tokens": 1, "accept_length": 1.8}
    assert kernel.max_batch("deepseek-v3", "h800", speculative=spec, **DS) < kernel.max_batch("deepseek-v3", "h800", **DS)
    need = kernel.memory_required_bytes_per_chip("llama-3.1-70b", batch=4, context=1000, precision="fp8", n_chips=2)
    more = kernel.memory_required_bytes_per_chip(
        "llama-3.1-70b", batch=4, context=1000, precision="fp8", n_chips=2,
        speculative={"draft_tokens": 4, "accept_length": 3, "method": "draft_model", "draft_model": "qwen3-32b"})
    assert more > need + 32e9 * 1.0 / 2 * 0.99  # the draft model's weights, sharded over the pair


@pytest.mark.parametrize("spec, match", [
    ({"draft_tokens": 2, "accept_length": 3.5}, r"accept_length 3.5 must lie in \[1, draft_tokens \+ 1\] = \[1, 3\]"),
    ({"draft_tokens": 2, "accept_length": 0.5}, "accept_length"),
    ({"draft_tokens": 0, "accept_length": 1}, "draft_tokens"),
    ({"draft_tokens": 1.5, "accept_length": 1}, "draft_tokens"),
    ({"draft_tokens": 1}, "needs"),
    ({"draft_tokens": 1, "accept_length": 1, "acceptance": 2}, "unknown keys"),
    ({"draft_tokens": 1, "accept_length": 1, "method": "medusa"}, "medusa"),
    ({"draft_tokens": 1, "accept_length": 1, "method": "draft_model"}, "draft_model"),
])
def test_bad_speculative(spec, match):
    with pytest.raises(ValueError, match=match):
        kernel.throughput("deepseek-v3", "h800", "decode", batch=8, speculative=spec, **DS)


def test_layout_arguments():
    kw = dict(batch=64, context=2048, precision="fp8", n_chips=8)
    default = kernel.memory_required_bytes_per_chip("deepseek-v3", **kw)
    assert kernel.memory_required_bytes_per_chip("deepseek-v3", attention="tp", **kw) == pytest.approx(default, rel=TOL)
    dp = kernel.memory_required_bytes_per_chip("deepseek-v3", attention="dp", **kw)
    assert dp > default  # every chip holds the whole non-expert part
    # unchanged meaning when not given: 16+ chips is DP attention with experts over the group
    kw16 = {**kw, "n_chips": 16}
    assert kernel.throughput("deepseek-v3", "h800", "decode", **kw16) == pytest.approx(
        kernel.throughput("deepseek-v3", "h800", "decode", attention="dp", expert_parallel=16, **kw16), rel=TOL)
    # a dense model in DP is n replicas: no network, whole weights per chip
    t = kernel.step_times("llama-3.1-70b", "h200", "decode", attention="dp", batch=16, context=1000, precision="fp8",
                          n_chips=2)
    assert float(t["network"]) == 0.0
    with pytest.raises(ValueError, match="attention"):
        kernel.throughput("deepseek-v3", "h800", "decode", attention="ep", **kw)
    with pytest.raises(ValueError, match="expert_parallel 16 exceeds n_chips 8"):
        kernel.throughput("deepseek-v3", "h800", "decode", expert_parallel=16, **kw)


def test_overlap_term_hides_network_time():
    kw = dict(batch=4096, context=4096, precision="fp8", n_chips=144)
    t = [kernel.throughput("deepseek-v3", "h800", "decode", efficiencies=EFF, overlap=om, **kw) for om in (0, 0.5, 1)]
    assert t[0] < t[1] < t[2]
    with pytest.raises(ValueError, match="overlap"):
        kernel.throughput("deepseek-v3", "h800", "decode", overlap=1.5, **kw)


def test_small_batch_curve_slows_batch_one_only():
    kw = dict(context=1024, precision="bf16", n_chips=1)
    slow = {**EFF, "decode_small_batch": 0.4}
    b1 = [kernel.throughput("qwen3-32b", "h20", "decode", batch=1, efficiencies=e, **kw) for e in (EFF, slow)]
    assert b1[1] < b1[0]
    big = [kernel.throughput("qwen3-32b", "h20", "decode", batch=20, context=8192, precision="fp8",
                             efficiencies=e) for e in (EFF, slow)]
    assert big[1] == pytest.approx(big[0], rel=TOL)  # KV reads dominate: the floor no longer binds


def test_kernel_options_pass_through_cost():
    kw = dict(batch=8, context=8192, precision="fp8", n_chips=1, cny_per_usd=7.0)
    per_kv = cost.cost_per_mtok("llama-3.1-70b", "h200", "decode", **kw)
    per_q = cost.cost_per_mtok("llama-3.1-70b", "h200", "decode", kv_reads="once_per_query_head", **kw)
    assert per_q > per_kv
    obj = cost.cost_per_mtok("llama-3.1-70b", "h200", "decode", batch=8, context=8192, precision="fp8",
                             options=kernel.KernelOptions(kv_reads="once_per_query_head"),
                             assumptions=cost.CostAssumptions(cny_per_usd=7.0))
    assert obj == pytest.approx(per_q, rel=TOL)
    with pytest.raises(TypeError, match="unknown keyword.*kv_read"):
        cost.cost_per_mtok("llama-3.1-70b", "h200", "decode", kv_read="x", **kw)


def test_cost_assumptions_equal_the_legacy_keywords():
    legacy = dict(utilization=0.6, life_years=4, wacc=0.08, pue=1.2, load_factor=0.6, cny_per_usd=7.1)
    scen = dict(batch=256, context=2048, precision="fp8", n_chips=16)
    a = cost.cost_per_mtok("deepseek-v3", "h800", "decode", **scen, **legacy)
    b = cost.cost_per_mtok("deepseek-v3", "h800", "decode", **scen, assumptions=cost.CostAssumptions(**legacy))
    assert a == pytest.approx(b, rel=TOL)
    assert cost.CostAssumptions().life_years == cost.ASSUMPTIONS["life_years"]["value"]
    with pytest.raises(Exception):
        cost.CostAssumptions().life_years = 3  # frozen


def test_cli_speed_target():
    out = run_cli("estimate", "--model", "deepseek-v3", "--chip", "h800", "--phase", "decode", "--context", "4096",
                  "--n-chips", "144", "--precision", "fp8", "--tokens-per-s-per-user", "20", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["tokens_per_s_per_user"] >= 20
    assert r["batch"] == kernel.batch_for_speed("deepseek-v3", "h800", tokens_per_s_per_user=20, **DS)


def test_fp4_only_where_a_dense_fp4_peak_is_given():
    from tokenlib.errors import MissingSpecError
    kw = dict(batch=8, context=4096, n_chips=1)
    fp4 = kernel.throughput("qwen3-32b", "b200", "prefill", precision="fp4", **kw)
    fp8 = kernel.throughput("qwen3-32b", "b200", "prefill", precision="fp8", **kw)
    assert fp4 > fp8  # compute-bound prefill at the FP4 peak
    assert kernel.memory_required_bytes_per_chip("qwen3-32b", precision="fp4", **kw) < \
        kernel.memory_required_bytes_per_chip("qwen3-32b", precision="fp8", **kw)
    with pytest.raises(MissingSpecError, match="h200.*fp4"):
        kernel.throughput("qwen3-32b", "h200", "decode", precision="fp4", **kw)


def test_mtp_module_weights_from_models_csv():
    spec = {"draft_tokens": 1, "accept_length": 1.8}
    kw = dict(batch=1, context=1000, precision="fp8", n_chips=8, attention="tp")
    extra = (kernel.memory_required_bytes_per_chip("deepseek-v3", speculative=spec, **kw)
             - kernel.memory_required_bytes_per_chip("deepseek-v3", **kw))
    kv_layer = 1000 * kernel.kv_bytes_per_token("deepseek-v3") / 61 / 8
    assert extra == pytest.approx(14e9 / 8 + kv_layer, rel=1e-9)  # the README's 14B, sharded over 8
