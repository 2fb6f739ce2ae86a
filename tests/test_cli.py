import json
from pathlib import Path

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["estimate", "--model", "deepseek-v3", "--chip", "h800", "--phase", "decode", "--batch", "12686",
        "--context", "4989", "--precision", "fp8", "--n-chips", "144"]


def run(*args):
    return run_cli(*args)


def test_estimate_text_prints_assumptions():
    r = run(*ARGS)
    assert r.returncode == 0, r.stderr
    assert "calibrated" in r.stdout and "CNY/Mtok" in r.stdout
    for name in ["life_years", "pue", "load_factor", "hosting_usd_per_kw_month", "utilization",
                 "rental_usd_per_chip_hour", "memory_overhead_fraction"]:
        assert name in r.stdout


def test_estimate_json_one_object():
    # a real child process, as a user runs it (the other CLI tests run in-process)
    r = run_cli(*ARGS, "--json", "--place", "guizhou", in_process=False)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["tokens_per_s_per_chip"]["calibrated"] <= d["tokens_per_s_per_chip"]["ideal"]
    assert d["cost_per_mtok"] > 0 and "cost.pue" in d["assumptions"]


def test_errors_one_line_nonzero():
    for bad in (["--chip", "h8000"], ["--place", "atlantis"], ["--batch", "-3"], ["--phase", "train"]):
        args = list(ARGS)
        if bad[0] in args:
            args[args.index(bad[0]) + 1] = bad[1]
        else:
            args += bad
        r = run(*args)
        assert r.returncode != 0
        assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error:")
