import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tokenlib.model import calibrate
from tokenlib.model import kernel

FIX = Path(__file__).parent / "fixtures"


def test_refit_reproduces_committed_file():
    committed = json.loads(kernel.CALIBRATION_FILE.read_text())
    fresh = calibrate.build()
    assert fresh["efficiencies"] == committed["efficiencies"]
    assert fresh["overheads"] == committed["overheads"]


def test_overheads_named_and_non_negative():
    o = kernel.overheads()
    assert set(o) == set(kernel.OVERHEAD_NAMES)
    assert all(v >= 0 for v in o.values())


def test_efficiencies_in_range_and_named():
    e = kernel.efficiencies()
    assert set(e) == set(kernel.EFFICIENCY_NAMES) | set(kernel.CURVE_NAMES)
    assert all(0 < v <= 1 for v in e.values())


def test_validate_table_and_targets():
    t = calibrate.validate()
    assert {"measured", "ideal", "calibrated", "calibrated_error_pct", "ideal_error_pct", "role"} <= set(t.columns)
    assert set(t["role"]) == {"calibration", "validation"}
    assert (t["calibrated"] <= t["ideal"] * (1 + 1e-12)).all()
    cal = t[t["role"] == "calibration"]
    held = t[t["role"] == "validation"]
    assert len(held) >= 8
    assert cal["calibrated_error_pct"].abs().median() <= 25
    assert held["calibrated_error_pct"].abs().median() <= 25  # the target, on held-out cases
    assert t["calibrated_error_pct"].abs().median() <= 25
    factor = np.maximum(t["ratio"], 1 / t["ratio"])
    # the other target: every case within a factor of 2. It fails today on the Ascend 910B (vLLM-Ascend
    # nightly baselines, over-predicted; the chapter says so) and on Qwen's batch-1 Qwen3-235B runs on H20
    # (under-predicted: the per-layer decode latency fitted on large expert-parallel serving, 289 us, is about
    # twice what a single-node TP8 step pays); any other case beyond 2x fails here
    beyond = t.loc[factor > 2]
    assert set(beyond["chip_id"]) <= {"ascend-910b", "h20"}, beyond[["id", "ratio"]]
    assert set(beyond.loc[beyond["chip_id"] == "h20", "model_id"]) <= {"qwen3-235b-a22b"}, beyond[["id", "ratio"]]
    assert factor.max() <= 3.5, t.loc[factor > 3.5, ["id", "ratio"]]  # and none of them beyond 3.5x


def test_static_batch_rows_are_predicted_end_to_end():
    # Every static-batch row, whichever the data holds: its prediction is output tokens over the whole run,
    # assembled here by hand from the steady-state rates (one prefill step, then output_len - 1 decode steps
    # at the mean KV length), not by calling the function validate() calls.
    from tokenlib.data import load

    t = calibrate.validate().set_index("id")
    rows = load("deployments")
    rows = rows[rows["metric"] == "static_batch_end_to_end"]
    left_out = set(calibrate.inexpressible()["id"])  # validate() leaves these out, each with its reason
    assert set(rows["id"]) - set(t.index) <= left_out
    rows = rows[~rows["id"].isin(left_out)]
    assert len(rows), "no static-batch row to test"
    for r in rows.itertuples():
        b, n, il, ol = float(r.batch), float(r.n_chips), float(r.input_tokens), float(r.output_tokens)
        layout, _, _ = calibrate.row_options({k: (None if pd.isna(v) else v) for k, v in r._asdict().items()})  # the row's attention / expert-parallel / draft settings
        kw = dict(batch=b, precision=r.precision, kv_precision=r.kv_precision, n_chips=n, memory_overhead=0.0,
                  kv_reads=r.kv_reads if isinstance(r.kv_reads, str) and r.kv_reads else "once_per_kv_head", **layout)
        pre = float(kernel.throughput(r.model_id, r.chip_id, "prefill", context=il, **kw))  # tokens/s per chip
        dec = float(kernel.throughput(r.model_id, r.chip_id, "decode", context=il + ol / 2, **kw))
        seconds = (b * il / n) / pre + (ol - 1) * (b / n) / dec
        assert t.loc[r.id, "calibrated"] == pytest.approx((b * ol / n) / seconds, rel=0.01), r.id
        # prefill weighs on the run: the decode-only rate is above the end-to-end one (a one-token prompt
        # weighs next to nothing, so there the two agree to 0.1 %)
        if il >= 128:
            assert dec > t.loc[r.id, "calibrated"], r.id
        else:
            assert dec == pytest.approx(t.loc[r.id, "calibrated"], rel=1e-3), r.id


def test_kv_reads_override_shows_what_the_term_does():
    base = calibrate.validate().set_index("id")
    grouped = calibrate.validate(kv_reads="once_per_kv_head").set_index("id")
    rid = "trtllm-v061-llama2-70b-h100-tp4"
    assert grouped.loc[rid, "calibrated"] > 2 * base.loc[rid, "calibrated"]
    # rows already grouped (and MLA models) are unchanged
    for same in ("trtllm-v07a-llama2-70b-h200-tp1", "deepseek-day6-decode-h800"):
        assert grouped.loc[same, "calibrated"] == pytest.approx(base.loc[same, "calibrated"])


def test_latency_bound_case_no_longer_off_by_3x():
    rid = "cloudmatrix384-decode15ms-910c"  # decoded with MTP: expressible once the kernel takes `speculative`
    if calibrate._kernel_accepts("speculative"):
        t = calibrate.validate().set_index("id")
        assert abs(t.loc[rid, "calibrated_error_pct"]) <= 25
    else:
        gone = calibrate.inexpressible().set_index("id")
        assert "speculative" in gone.loc[rid, "reason"]


def test_fit_uses_only_calibration_rows():
    from tokenlib.data import load
    df = load("deployments", FIX)
    e1 = calibrate.fit(df, FIX)
    df2 = df.copy()
    df2.loc[df2["role"] == "validation", "tokens_per_s_per_chip"] *= 10
    assert calibrate.fit(df2, FIX) == e1


# ----------------------------------------------------------------- layout columns, inexpressible rows

def _row(**kw):
    base = {"precision": "fp8", "attention": "", "expert_parallel": "", "spec_method": "", "draft_tokens": "",
            "accept_length": ""}
    base.update(kw)
    return base


def test_row_options_pass_through_only_what_the_kernel_takes(monkeypatch):
    takes: set[str] = set()
    monkeypatch.setattr(calibrate, "_kernel_accepts", lambda name: name in takes)
    spec = _row(spec_method="mtp", draft_tokens=1, accept_length=1.8, attention="dp", expert_parallel=16)
    kw, why, approx = calibrate.row_options(spec)
    assert kw == {} and "speculative" in why and "no speculative argument" in why
    assert "attention=dp" in approx and "expert_parallel=16" in approx
    takes |= {"speculative", "attention", "expert_parallel"}
    kw, why, approx = calibrate.row_options(spec)
    assert why == "" and approx == ""
    assert kw == {"attention": "dp", "expert_parallel": 16,
                  "speculative": {"draft_tokens": 1, "accept_length": pytest.approx(1.8)}}
    kw, why, _ = calibrate.row_options(_row(spec_method="eagle3", draft_tokens=3))
    assert "speculative" not in kw and "no acceptance length" in why  # acceptance lengths are never guessed
    _, why, _ = calibrate.row_options(_row(precision="fp4", chip_id="h800"))  # no FP4 peak on the H800
    assert "fp4" in why
    assert calibrate.row_options(_row()) == ({}, "", "")


def test_inexpressible_rows_are_listed_not_dropped_silently():
    shown = calibrate.validate()
    gone = calibrate.inexpressible()
    allrows = calibrate.validate(include_inexpressible=True)
    ids = set(tokenlib_load("deployments")["id"])
    assert set(shown["id"]) | set(gone["id"]) == ids
    assert not set(shown["id"]) & set(gone["id"])
    assert (gone["reason"].str.len() > 0).all() and shown["expressible"].all()
    hidden = allrows[~allrows["expressible"]]
    assert hidden["calibrated"].isna().all() and hidden["ratio"].isna().all()
    # the summary ignores them even when they are in the table
    assert calibrate.summary(allrows)["all"]["n"] == len(shown)
    with pytest.raises(ValueError, match="include_inexpressible"):
        calibrate.validate(include_inexpressible="yes")


def tokenlib_load(name):
    from tokenlib.data import load
    return load(name)


def test_speculative_columns_are_consistent():
    d = tokenlib_load("deployments")
    spec = d["spec_method"].notna() & (d["spec_method"].astype(str) != "")
    assert d.loc[spec, "draft_tokens"].notna().all()
    assert d.loc[~spec, ["draft_tokens", "accept_length"]].isna().all().all()
    a, k = d.loc[spec, "accept_length"], d.loc[spec, "draft_tokens"]
    ok = a.isna() | ((a >= 1) & (a <= k + 1))
    assert ok.all(), d.loc[spec & ~ok, ["id", "draft_tokens", "accept_length"]]


def test_accuracy_by_chip():
    t = pd.DataFrame({
        "role": ["validation"] * 5 + ["calibration"],
        "chip_id": ["a", "a", "a", "b", "b", "a"],
        "measured": [100.0, 100.0, 100.0, 50.0, 50.0, 100.0],
        "calibrated": [110.0, 80.0, 150.0, 25.0, float("nan"), 400.0],
        "ideal": [200.0, 300.0, 250.0, 100.0, float("nan"), 900.0],
    })
    t["ratio"] = t["calibrated"] / t["measured"]
    t["calibrated_error_pct"] = 100 * (t["calibrated"] - t["measured"]) / t["measured"]
    t["ideal_error_pct"] = 100 * (t["ideal"] - t["measured"]) / t["measured"]
    acc = calibrate.accuracy_by_chip(t, chips=["a", "b", "c"]).set_index("chip_id")
    assert list(acc.columns) == list(calibrate.ACCURACY_COLUMNS[1:])
    a = acc.loc["a"]
    assert a["n"] == 3  # the calibration row is not counted
    assert a["median_abs_error_pct_calibrated"] == pytest.approx(20.0)  # |+10|, |-20|, |+50|
    assert a["bias_pct_calibrated"] == pytest.approx(10.0)  # signed median
    assert a["max_factor_calibrated"] == pytest.approx(1.5)
    assert a["median_abs_error_pct_ideal"] == pytest.approx(150.0) and a["max_factor_ideal"] == pytest.approx(3.0)
    b = acc.loc["b"]  # the NaN (inexpressible) row is dropped
    assert b["n"] == 1 and b["max_factor_calibrated"] == pytest.approx(2.0) and b["bias_pct_calibrated"] == pytest.approx(-50.0)
    assert acc.loc["c", "n"] == 0 and np.isnan(acc.loc["c", "median_abs_error_pct_calibrated"])
    assert list(calibrate.accuracy_by_chip(t)["chip_id"]) == ["a", "b"]  # default: chips that have a case
    with pytest.raises(ValueError, match="holdout"):
        calibrate.accuracy_by_chip(t, role="holdout")
    with pytest.raises(ValueError, match="needs columns"):
        calibrate.accuracy_by_chip(t.drop(columns=["ideal"]))


def test_accuracy_table_on_the_book_data():
    v = calibrate.validate()
    acc = calibrate.accuracy_by_chip(v, chips=["h20", "ascend-910b", "ascend-910c", "h800"]).set_index("chip_id")
    held = v[v["role"] == "validation"]
    for chip, row in acc.iterrows():
        assert row["n"] == int((held["chip_id"] == chip).sum())
    assert acc.loc["h20", "n"] >= 3 and acc.loc["ascend-910b", "n"] >= 1 and acc.loc["ascend-910c", "n"] >= 1


def test_explain_adds_up_to_the_validated_prediction():
    # explain() splits each row's calibrated time into passes; the passes must add up to what validate() predicts
    t = calibrate.validate()
    assert len(t) >= 30
    for _, row in t.iterrows():
        parts = calibrate.explain(str(row["id"]))
        assert list(parts.columns) == list(calibrate.EXPLAIN_COLUMNS)
        assert parts["share"].sum() == pytest.approx(1.0, abs=1e-9)
        assert (parts["pass_ms"] >= parts[["compute_ms", "memory_ms", "network_ms"]].max(axis=1) - 1e-12).all()
        assert 1e3 / parts.attrs["calibrated_ms_per_run_token"] == pytest.approx(row["calibrated"], rel=1e-9)
        assert parts.attrs["calibrated"] == pytest.approx(row["calibrated"], rel=1e-12)
        assert parts.attrs["ratio"] == pytest.approx(row["ratio"], rel=1e-12)


def test_explain_names_bad_ids_and_inexpressible_rows(capsys):
    with pytest.raises(ValueError, match="no-such-row"):
        calibrate.explain("no-such-row")
    gone = calibrate.inexpressible()
    if len(gone):
        with pytest.raises(ValueError, match="cannot be expressed"):
            calibrate.explain(str(gone["id"].iloc[0]))
    assert calibrate.main(["--explain", "qwen-speed-qwen3-235b-bf16-h20-tp8-in1"]) == 0
    out = capsys.readouterr().out
    assert "decode" in out and "calibrated / measured" in out
    assert calibrate.main(["--explain", "no-such-row"]) == 2


def test_explain_with_given_efficiencies_adds_up_to_its_own_prediction():
    # efficiencies without a per-layer latency: the parts and the calibrated figure must use the same (none)
    eff = kernel.efficiencies()
    assert "decode_layer_latency_s" not in eff
    for row_id in ("antgroup-h20-decode-bs1", "qwen-speed-qwen3-235b-bf16-h20-tp8-in1"):
        parts = calibrate.explain(row_id, efficiencies=eff)
        assert 1e3 / parts.attrs["calibrated_ms_per_run_token"] == pytest.approx(parts.attrs["calibrated"], rel=1e-9)


def test_row_options_name_an_unknown_chip():
    # an unknown chip is a bad row, not one the kernel merely cannot express
    with pytest.raises(ValueError, match="unknown chip 'nope'"):
        calibrate.row_options(_row(chip_id="nope", precision="fp8"))
