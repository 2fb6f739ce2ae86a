import json
from pathlib import Path

import numpy as np

from tokenlib import calibrate, kernel

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
    assert set(e) == set(kernel.EFFICIENCY_NAMES)
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
    assert (factor[t["role"] == "calibration"] <= 2).all()
    # Known gap (see calibration report): the two 2023 TensorRT-LLM v0.6.1 Llama-2-70B rows are
    # predicted >2x too fast; every other case is within 2x. Fail if that set grows.
    outside = set(t.loc[factor > 2, "id"])
    assert outside <= {"trtllm-v061-llama2-70b-h100-tp4", "trtllm-v061-llama2-70b-h100-tp2-2k"}


def test_latency_bound_case_no_longer_off_by_3x():
    t = calibrate.validate().set_index("id")
    assert abs(t.loc["cloudmatrix384-decode15ms-910c", "calibrated_error_pct"]) <= 25


def test_fit_uses_only_calibration_rows():
    from tokenlib.data import load
    df = load("deployments", FIX)
    e1 = calibrate.fit(df, FIX)
    df2 = df.copy()
    df2.loc[df2["role"] == "validation", "tokens_per_s_per_chip"] *= 10
    assert calibrate.fit(df2, FIX) == e1
