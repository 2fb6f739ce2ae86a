"""The bad-input matrix: every kind of bad input gets a clear error naming what is wrong, never a number.

Kinds: a missing figure the kernel needs; a value outside its domain; answers that must agree
(min_chips / max_batch / fits); broken data files; hidden data defaults (FX month, caches); the CLI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli
from tokenlib import data
from tokenlib.model import cost
from tokenlib.model import kernel
from tokenlib.data import specs
from tokenlib.errors import MissingSpecError

DATA = ROOT / "data"
KW = dict(batch=64, context=2000, precision="fp8")


# ----------------------------------------------------------------------------- missing figures


@pytest.mark.parametrize("call, who, field", [
    (lambda: kernel.throughput("deepseek-v3", "metax-c500", "decode", n_chips=1, **KW), "metax-c500", "hbm_tbps"),
    (lambda: kernel.throughput("llama-2-70b", "b200", "decode", n_chips=2, **KW), "b200", "interconnect_gbps"),
    (lambda: kernel.throughput("llama-2-70b", np.array(["h100-sxm", "l20"]), "prefill", n_chips=8, **KW),
     "l20", "interconnect_gbps"),
    (lambda: cost.cost_per_mtok("deepseek-v3", "metax-c500", "decode", n_chips=1, **KW), "metax-c500", "hbm_tbps"),
    (lambda: kernel.static_batch_throughput("llama-2-70b", "b200", batch=8, input_len=128, output_len=128,
                                            n_chips=2, precision="fp8"), "b200", "interconnect_gbps"),
])
def test_missing_figure_names_chip_and_field(call, who, field):
    with pytest.raises(MissingSpecError, match=rf"{who}.*{field}"):
        call()


def test_missing_link_is_an_explicit_choice_not_a_default():
    x = kernel.throughput("llama-2-70b", "b200", "decode", n_chips=2, missing_link="scale_out", **KW)
    assert np.isfinite(x) and x > 0
    with pytest.raises(ValueError, match="missing_link"):
        kernel.throughput("llama-2-70b", "b200", "decode", n_chips=2, missing_link="guess", **KW)


def test_one_chip_needs_no_link_figure():
    assert kernel.throughput("qwen3-32b", "l20", "decode", n_chips=1, batch=8, context=1000, precision="fp8") > 0


def _edit(path: Path, row_id: str, column: str, value: str, key: str = "id") -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[df[key] == row_id, column] = value
    df.to_csv(path, index=False, lineterminator="\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new stamp even within one clock tick


def test_missing_tdp_is_not_free_power(data_copy: Path):
    _edit(data_copy / "chips.csv", "h100-sxm", "tdp_w", "")
    with pytest.raises(MissingSpecError, match="h100-sxm.*tdp_w"):
        cost.chip_hour_cost("h100-sxm", electricity_cny_per_kwh=0.5, root=data_copy)


def test_on_oom_nan_is_the_only_nan():
    out = kernel.throughput("llama-2-70b", "h100-sxm", "decode", batch=np.array([1, 100000]), context=4000,
                            precision="fp8", n_chips=1, on_oom="nan")
    assert np.isfinite(out[0]) and np.isnan(out[1])


# ----------------------------------------------------------------------------- domains

T = dict(model="llama-2-70b", chip="h100-sxm", phase="decode")


@pytest.mark.parametrize("kwargs, name", [
    (dict(batch=1, context=1_000_000, n_chips=8), "context"),  # Llama-2-70B: max_context 4096
    (dict(batch=1.5, context=100, n_chips=8), "batch"),
    (dict(batch=True, context=100, n_chips=8), "batch"),
    (dict(batch=0, context=100, n_chips=8), "batch"),
    (dict(batch=1, context=100, n_chips=2.5), "n_chips"),
    (dict(batch=1, context=100, n_chips=True), "n_chips"),
    (dict(batch=1, context=0, n_chips=8), "context"),
    (dict(batch=1, context=float("nan"), n_chips=8), "context"),
    (dict(batch=1, context=100, n_chips=8, memory_overhead=-5), "memory_overhead"),
    (dict(batch=1, context=100, n_chips=8, memory_overhead=1.0), "memory_overhead"),
    (dict(batch=1, context=100, n_chips=8, calibrated=1), "calibrated"),
    (dict(batch=[1, 2], context=100, n_chips=[1, 2, 3]), "batch .*n_chips"),
])
def test_kernel_domain(kwargs, name):
    with pytest.raises(ValueError, match=name):
        kernel.throughput(T["model"], T["chip"], T["phase"], precision="fp8", **kwargs)


@pytest.mark.parametrize("kwargs, name", [
    (dict(pue=0.5), "pue"),
    (dict(load_factor=5), "load_factor"),
    (dict(load_factor=0), "load_factor"),
    (dict(utilization=0), "utilization"),
    (dict(utilization=1.5), "utilization"),
    (dict(cached_input_cost_fraction=2), "cached_input_cost_fraction"),
    (dict(life_years=True), "life_years"),
])
def test_cost_domain(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cost.cost_per_mtok("llama-2-70b", "h100-sxm", "decode", batch=8, context=1000, precision="fp8", n_chips=2,
                           electricity_cny_per_kwh=0.5, **kwargs)


def test_shape_mismatch_names_the_parameters():
    with pytest.raises(ValueError, match=r"chip \(3,\).*batch \(2,\)"):
        kernel.throughput("llama-2-70b", np.array(["h100-sxm", "h200", "h20"]), "decode", batch=np.array([1, 2]),
                          context=100, precision="fp8", n_chips=8)
    with pytest.raises(ValueError, match=r"chip \(2,\).*place \(3,\)"):
        cost.cost_per_mtok("llama-2-70b", np.array(["h100-sxm", "h200"]), "decode", batch=8, context=100,
                           precision="fp8", n_chips=8, place=np.array(["beijing", "guizhou", "ulanqab"]))


def test_memory_overhead_minus_five_no_longer_fits_140gb_on_one_chip():
    with pytest.raises(ValueError, match="memory_overhead"):
        kernel.fits("llama-2-70b", "h100-sxm", batch=1, context=100, memory_overhead=-5)


# ----------------------------------------------------------------------------- consistency

GRID = [(m, c, b, ctx) for m in ("deepseek-v3", "qwen3-235b-a22b", "kimi-k2", "glm-4.5", "llama-3.1-70b")
        for c in ("h100-sxm", "h20", "ascend-910b", "ascend-910c", "a800") for b in (1, 64, 1024) for ctx in (1000, 8000)]


@pytest.mark.parametrize("precision", ["fp8", "bf16"])
def test_min_chips_max_batch_and_fits_agree(precision):
    disagree = []
    for m, c, b, ctx in GRID:
        kw = dict(context=ctx, precision=precision)
        n = kernel.min_chips(m, c, batch=b, on_oom="nan", **kw)
        # every group size at once (fits broadcasts over n_chips): True where a group of k + 1 chips holds it
        fit_by_k = np.asarray(kernel.fits(m, c, batch=b, n_chips=np.arange(1, 400), **kw))
        if not np.isfinite(n):
            assert not fit_by_k.any(), (m, c, b, ctx)
            continue
        n = int(n)
        if not fit_by_k[n - 1] or fit_by_k[:n - 1].any():
            disagree.append((m, c, b, ctx, n))
            continue
        mb = kernel.max_batch(m, c, n_chips=n, **kw)
        if mb < b or kernel.fits(m, c, batch=mb + 1, n_chips=n, **kw):
            disagree.append((m, c, b, ctx, n, mb))
    assert not disagree


def test_min_chips_raises_when_no_group_fits():
    # DeepSeek-V3's non-expert part at BF16 with a huge KV cache: no group of RTX 4090s (24 GB) holds it
    with pytest.raises(kernel.MemoryFitError):
        kernel.min_chips("deepseek-v3", "rtx-4090", batch=4096, context=8000, precision="bf16")


# ----------------------------------------------------------------------------- data files


def _csv(root: Path, name: str) -> Path:
    return root / f"{name}.csv"


def _mutate_text(path: Path, fn) -> None:
    path.write_bytes(fn(path.read_bytes()))


def _first_data_line(path: Path) -> int:
    return 2


LOADER_CASES = {
    "empty file": ("fx", lambda b: b"", r"fx\.csv:1: file is empty"),
    "header only": ("fx", lambda b: b.split(b"\n", 1)[0] + b"\n", r"fx\.csv:2: no data rows"),
    "short row": ("fx", lambda b: b.replace(b"\n2024-02,7.1935,", b"\n2024-02\n", 1).split(b"\n2024-03")[0] + b"\n",
                  r"fx\.csv:3: row has 1 cells, fewer"),
    "long row": ("models", lambda b: b.rstrip(b"\r\n") + b",extra\n", r"models\.csv:13: row has \d+ cells, more than the header.s"),
    "bad byte": ("fx", lambda b: b.replace(b"2024-03,", b"2024-03\xff,", 1), r"fx\.csv:4:8: byte 0xff is not UTF-8"),
    "blank line": ("fx", lambda b: b.replace(b"\n2024-03", b"\n\n2024-03", 1), r"fx\.csv:4: blank line"),
    "id differs only in case": ("chips", lambda b: b.replace(b"\na800,", b"\nA100-SXM,", 1),
                                r"chips\.csv:3: id: duplicate key .*line 2"),
    "id with a trailing space": ("chips", lambda b: b.replace(b"\na800,", b"\na100-sxm ,", 1),
                                 r"chips\.csv:3: id: key cell 'a100-sxm ' has leading or trailing spaces"),
    "future accessed date": ("fx", lambda b: b.replace(b",2026-11-28,", b",2099-01-01,", 1),
                             r"fx\.csv:2: accessed: date 2099-01-01 is in the future"),
    "active above total": ("models", lambda b: b.replace(b"llama-2-70b,Llama 2 70B,meta,,70,70,", b"llama-2-70b,Llama 2 70B,meta,,70,700,", 1),
                           r"models\.csv:4: active_params_b: value 700 exceeds total_params_b"),
    "unknown chip in a deployment": ("deployments", lambda b: b.replace(b",deepseek-v3,h800,prefill,", b",deepseek-v3,h8000,prefill,", 1),
                                     r"deployments\.csv:2: chip_id: unknown id 'h8000', not in chips\.csv \(did you mean 'h800'\?\)"),
    "unknown model in a deployment": ("deployments", lambda b: b.replace(b",deepseek-v3,h800,prefill,", b",deepseek-v9,h800,prefill,", 1),
                                      r"deployments\.csv:2: model_id: unknown id 'deepseek-v9'"),
    "a date's digits shown as the number": ("fx", lambda b: b.replace(b"2024-01,7.1707,", b"2024-01,1,", 1).replace(b"2024-01-01,7.1707", b"2024-01-01", 1),
                                            r"fx\.csv:2: cny_per_usd: value 1 is not shown"),
    "share above one": ("places", None, r"places\.csv:\d+: value: value 1.5 is outside \[0, 1\] for unit share"),
}


@pytest.mark.parametrize("case", sorted(LOADER_CASES))
def test_loader_refuses(case, data_copy: Path):
    table, fn, message = LOADER_CASES[case]
    path = _csv(data_copy, table)
    if fn is None:  # a share of 1.5 in places.csv (quote edited to show it)
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        i = df.index[df["unit"] == "share"][0]
        df.loc[i, ["value", "quote"]] = ["1.5", "1.5"]
        df.to_csv(path, index=False, lineterminator="\n")
    else:
        _mutate_text(path, fn)
    with pytest.raises(data.DataValidationError, match=message):
        data.validate_file(table, path, None)


def test_bom_and_crlf_files_load(data_copy: Path):
    path = _csv(data_copy, "fx")
    _mutate_text(path, lambda b: b"\xef\xbb\xbf" + b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    df = data.validate_file("fx", path, None)
    assert list(df.columns)[0] == "month" and len(df) == len(data.load("fx"))


def test_a_year_in_a_date_still_shows_a_launch_year():
    assert data.number_shown(2020, "Release date: 2020-11-16")
    assert not data.number_shown(16, "Release date: 2020-11-16")
    assert not data.number_shown(2.02, "Release date: 2020-11-16")  # a year is never rescaled by 1000
    assert data.number_shown(0.2, "DeepSeek-V4-Flash0.2 RMB1 RMB2 RMB")  # table text without cell breaks
    assert not data.number_shown(22, "qwen3_235b_a22b")


# ----------------------------------------------------------------------------- hidden defaults


def test_specs_cache_sees_an_edited_file(data_copy: Path):
    assert specs.chip("h100-sxm", data_copy).price_usd == 33600
    _edit(data_copy / "chips.csv", "h100-sxm", "price_usd", "")
    assert np.isnan(specs.chip("h100-sxm", data_copy).price_usd)


def test_load_cache_sees_an_edited_schema(data_copy: Path):
    assert len(data.load("fx", data_copy)) > 0
    schema = data_copy / "schema.yaml"
    schema.write_text(schema.read_text(encoding="utf-8").replace(
        "cny_per_usd: {type: float, min: 0,", "cny_per_usd: {type: float, min: 100,"), encoding="utf-8")
    with pytest.raises(data.DataValidationError, match="minimum"):
        data.load("fx", data_copy)


# ----------------------------------------------------------------------------- CLI

ARGS = ["estimate", "--model", "deepseek-v3", "--chip", "h800", "--phase", "decode", "--batch", "12686",
        "--context", "4989", "--precision", "fp8", "--n-chips", "144"]


run = run_cli


def _set(args: list[str], flag: str, value: str | None) -> list[str]:
    out = list(args)
    if flag in out:
        i = out.index(flag)
        del out[i:i + 2]
    return out + ([flag, value] if value is not None else [])


CLI_CASES = {
    "missing HBM bandwidth": _set(_set(ARGS, "--chip", "metax-c500"), "--n-chips", "1"),
    "missing link figure": _set(_set(_set(ARGS, "--chip", "b200"), "--n-chips", "2"), "--model", "llama-2-70b"),
    "context above the model's maximum": _set(_set(ARGS, "--model", "llama-2-70b"), "--context", "1000000"),
    "fractional batch": _set(ARGS, "--batch", "2.5"),
    "nan batch": _set(ARGS, "--batch", "nan"),
    "unknown chip": _set(ARGS, "--chip", "h8000"),
    "bad number": _set(ARGS, "--batch", "lots"),
    "missing argument": ARGS[:3],
    "unknown option": ARGS + ["--colour", "red"],
    "unknown fx month": _set(ARGS, "--fx-month", "1999-01"),
    "no subcommand": [],
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_error_text_is_one_line(case):
    r = run(*CLI_CASES[case])
    assert r.returncode == 2, r.stdout
    assert r.stdout == "" and r.stderr.startswith("error:") and r.stderr.strip().count("\n") == 0, r.stderr
    assert "nan" not in r.stdout.lower()


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_json_error_is_one_json_object(case):
    r = run(*CLI_CASES[case], "--json")
    assert r.returncode == 2
    obj = json.loads(r.stdout)
    assert set(obj) == {"error", "type"} and obj["error"] and r.stdout.strip().count("\n") == 0


def test_cli_names_the_fx_month_it_used():
    latest = data.load("fx")["month"].max().strftime("%Y-%m")
    r = run(*ARGS)
    assert r.returncode == 0 and f"latest month in data/fx.csv ({latest})" in r.stdout
    d = json.loads(run(*ARGS, "--json", "--fx-month", "2025-02").stdout)
    assert d["fx_month"] == "2025-02" and d["fx_basis"] == "--fx-month 2025-02"
