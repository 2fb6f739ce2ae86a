from pathlib import Path

import numpy as np
import pytest

from conftest import copy_data
from tokenlib.data import specs
from tokenlib.errors import UnknownChoiceError

FIX = Path(__file__).parent / "fixtures"
HOPPER = ["h100-sxm", "h800", "h200"]


def test_chip_and_model_lookup_fixture():
    c = specs.chip("h800", FIX)
    assert c.hbm_gb == 80 and c.peak_tflops("fp8") == 1979
    m = specs.model("deepseek-v3", FIX)
    assert m.attention == "MLA" and m.is_moe and m.kv_lora_rank == 512


def test_unknown_ids_name_valid_choices():
    with pytest.raises(UnknownChoiceError) as e:
        specs.chip("h8000", FIX)
    assert "h800" in str(e.value) and "Did you mean" in str(e.value)
    with pytest.raises(UnknownChoiceError):
        specs.model("gpt-5", FIX)
    with pytest.raises(UnknownChoiceError):
        specs.chip_fields(np.array(["h800", "nope"]), FIX)


def test_precision_fallback_documented():
    # A100 has no FP8 units: fp8 falls back to its INT8 peak; Ascend 910C (no fp8/int8 published) to BF16
    assert specs.chip("a100-sxm", FIX).peak_tflops("fp8") == 624
    assert specs.chip("ascend-910c", FIX).peak_tflops("int8") == 752
    f = specs.chip_fields(np.array(["a100-sxm", "ascend-910c"]), FIX)
    assert list(f["peak_fp8"]) == [624, 752]


def test_arrays_of_ids_keep_shape():
    f = specs.chip_fields(np.array([["h800"], ["h200"]]), FIX)
    assert f["hbm_gb"].shape == (2, 1) and f["hbm_gb"][1, 0] == 141


@pytest.mark.parametrize("root", [FIX, None])
def test_hopper_fp8_is_twice_bf16(root):
    ids = specs.chip_ids(root)
    for cid in HOPPER:
        if cid in ids:
            c = specs.chip(cid, root)
            assert c.fp8_tflops == pytest.approx(2 * c.bf16_tflops, rel=0.002)


def test_real_models_have_required_ids():
    ids = specs.model_ids()
    for mid in ["deepseek-v3", "deepseek-r1", "llama-2-70b", "llama-3.1-70b", "qwen2.5-72b", "qwen3-235b-a22b"]:
        assert mid in ids
    v3, r1 = specs.model("deepseek-v3"), specs.model("deepseek-r1")
    for f in specs.MODEL_FIELDS:
        if f not in ("max_context", "mtp_params_b"):  # R1's MTP module size is not sourced (V3's README gives 14B)
            assert getattr(v3, f) == getattr(r1, f) or (np.isnan(getattr(v3, f)) and np.isnan(getattr(r1, f)))


def test_every_place_has_a_display_name() -> None:
    import yaml

    from tokenlib.data import places
    from tokenlib.data import schema_path
    from tokenlib.errors import UnknownChoiceError

    enum = yaml.safe_load(schema_path().read_text(encoding="utf-8"))["enums"]["place"]
    assert set(enum) == set(places.PLACE_NAMES)
    assert places.display_name("hangzhou") == "Hangzhou 杭州"
    with pytest.raises(UnknownChoiceError, match="Did you mean 'hangzhou'"):
        places.display_name("hangzou")


def test_ascend_int8_peak_is_derived_twice_fp16():
    # the CloudMatrix384 calibration rows ran INT8; with no INT8 figure the kernel used to run them at the
    # 16-bit peak. The derived peak (2 x FP16, Da Vinci cube) must be in chips.csv and labelled as derived.
    from tokenlib.data import load_sources

    src = load_sources("chips")
    for chip_id in ("ascend-910b", "ascend-910c"):
        c = specs.chip(chip_id)
        assert c.peak_tflops("int8") == pytest.approx(2 * c.fp16_tflops, rel=1e-9)
        rows = src[(src["item_id"] == chip_id) & (src["field"] == "int8_tops")]
        assert len(rows) >= 1 and (rows["kind"] == "derived").all() and rows["method"].str.contains("2 x").all()


def test_scale_up_domain_is_a_sourced_row_not_code(tmp_path: Path) -> None:
    from tokenlib.model import kernel

    book = specs.chip_fields(np.array(["ascend-910c", "h100-sxm"]))
    assert book["scaleup_domain_chips"][0] == 384 and np.isnan(book["scaleup_domain_chips"][1])
    assert kernel._domain_size(book).tolist() == [384.0, 8.0]  # no row: the kernel's default, one node
    # a bigger domain for another chip is one data row (with its quote), no code change
    folder = copy_data(tmp_path)
    with open(folder / "scaleup_domains.csv", "a", encoding="utf-8") as f:
        f.write('h100-sxm,a test system,72,https://arxiv.org/abs/2506.12708,"a title","a quote with 72 chips",'
                "2026-12-01,reported,,\n")
    got = specs.chip_fields(np.array(["h100-sxm", "h200"]), folder)
    assert got["scaleup_domain_chips"][0] == 72 and np.isnan(got["scaleup_domain_chips"][1])


def test_scale_up_domain_is_under_the_quote_check(tmp_path: Path) -> None:
    from tokenlib.data import DataValidationError, load

    folder = copy_data(tmp_path)
    p = folder / "scaleup_domains.csv"
    p.write_text(p.read_text(encoding="utf-8").replace("ascend-910c,Huawei CloudMatrix384,384,",
                                                         "ascend-910c,Huawei CloudMatrix384,385,"), encoding="utf-8")
    with pytest.raises(DataValidationError, match="domain_chips"):
        load("scaleup_domains", folder)
