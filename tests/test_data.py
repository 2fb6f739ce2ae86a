"""The data layer: every table validates, bad rows are refused with file, line, column and value,
and the coverage the book promises is there."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import tokenlib
from tokenlib import data
from tokenlib.data import DataValidationError, number_shown
from tokenlib.errors import UnknownChoiceError

DATA = data.default_data_dir()
TABLES = data.table_names()


@pytest.mark.parametrize("name", TABLES)
def test_every_table_validates(name: str) -> None:
    df = tokenlib.load(name)
    assert len(df) > 0, f"{name}.csv is empty"
    spec = data.table_spec(name)
    assert list(df.columns) == spec.column_names


@pytest.mark.parametrize("name", [t for t in TABLES if data.table_spec(t).sources_table])
def test_per_number_sources_validate(name: str) -> None:
    sources = data.load_sources(name)
    ids = set(tokenlib.load(name)["id"])
    assert set(sources["item_id"]) <= ids


def test_every_row_has_provenance() -> None:
    for name in TABLES:
        spec = data.table_spec(name)
        df = tokenlib.load(name)
        if spec.provenance_exempt_if:
            col = spec.provenance_exempt_if["column"]
            df = df[~df[col].isin(spec.provenance_exempt_if["values"])]
        for column in ("source_url", "source_title", "quote", "accessed", "kind"):
            assert df[column].notna().all(), f"{name}: rows without {column}"
        derived = df[df["kind"].isin(["estimate", "derived"])]
        assert derived["method"].notna().all(), f"{name}: estimate/derived rows without a method"


def test_dates_are_parsed() -> None:
    prices = tokenlib.load("prices")
    assert pd.api.types.is_datetime64_any_dtype(prices["effective_date"])
    assert pd.api.types.is_datetime64_any_dtype(prices["accessed"])
    assert pd.api.types.is_float_dtype(prices["input_price"])


def test_unknown_table_names_the_choices() -> None:
    with pytest.raises(UnknownChoiceError) as err:
        tokenlib.load("price")
    assert "prices" in str(err.value) and "Did you mean 'prices'" in str(err.value)


# --- coverage the book promises (issue: data/) --------------------------------------------------


def test_price_coverage() -> None:
    prices = tokenlib.load("prices")
    assert len(prices) >= 100
    chinese = prices[prices["provider_country"] == "CN"]["provider"].nunique()
    western = prices[prices["provider_country"] != "CN"]["provider"].nunique()
    assert chinese >= 9, f"only {chinese} Chinese providers"
    assert western >= 3, f"only {western} Western providers"
    assert prices["effective_date"].min() <= pd.Timestamp("2024-05-31")


def test_price_lanes_agree_with_price_type() -> None:
    """A time-of-day or promotional price sits in its own lane; a list lane holds standard prices only."""
    p = tokenlib.load("prices")
    banded = p["price_type"].isin(["off_peak", "peak", "promotional"])
    bad = p[banded & (p["lane"] != p["price_type"])]
    assert bad.empty, bad[["provider", "model", "effective_date", "price_type", "lane"]].to_string()
    listed = p["lane"].isin(["mainland_list", "international_list", "batch"])
    bad = p[listed & (p["price_type"] != "standard")]
    assert bad.empty, bad[["provider", "model", "effective_date", "price_type", "lane"]].to_string()
    # the mainland list is the CNY page, the international list the USD page (no exception so far)
    assert set(p.loc[p["lane"] == "mainland_list", "currency"]) <= {"CNY"}
    assert set(p.loc[p["lane"] == "international_list", "currency"]) <= {"USD"}


def test_fx_covers_every_price_month() -> None:
    prices = tokenlib.load("prices")
    fx = tokenlib.load("fx")
    months = set(prices["effective_date"].dt.to_period("M"))
    missing = sorted(str(m) for m in months - set(fx["month"]))
    assert not missing, f"price rows in months with no FX rate: {missing}"


def test_chip_coverage() -> None:
    chips = tokenlib.load("chips")
    assert len(chips) >= 12
    assert (chips["country"] == "CN").sum() >= 5
    required = {"a100-sxm", "a800", "h100-sxm", "h800", "h20", "h200", "ascend-910b", "ascend-910c"}
    assert required <= set(chips["id"])


def test_every_chip_price_says_what_it_buys() -> None:
    # a card price and a per-chip share of a server price need different capex multipliers (tokenlib.model.cost)
    chips = tokenlib.load("chips")
    priced = chips[chips["price_usd"].notna()]
    assert priced["price_basis"].isin(["card", "system_share"]).all(), priced[["id", "price_basis"]]
    assert chips.loc[chips["price_usd"].isna(), "price_basis"].isna().all()
    assert chips.set_index("id").loc["h100-sxm", "price_basis"] == "system_share"  # DGX per-GPU share


def test_export_control_coverage() -> None:
    events = tokenlib.load("export_controls")
    in_range = events[(events["date"] >= "2022-01-01") & (events["date"] <= "2026-12-31")]
    assert len(in_range) >= 10


def test_place_coverage() -> None:
    places = tokenlib.load("places")
    core = {"beijing", "hangzhou", "shanghai", "shenzhen", "ulanqab", "guizhou", "zhongwei", "qingyang"}
    assert core <= set(places["place"])
    located = places[places["metric"].isin(["latitude", "longitude"])].groupby("place")["metric"].nunique()
    assert all(located.get(p, 0) == 2 for p in core), f"places without coordinates: {located.to_dict()}"


def test_models_and_deployments_reference_known_ids() -> None:
    models = set(tokenlib.load("models")["id"])
    chips = set(tokenlib.load("chips")["id"])
    dep = tokenlib.load("deployments")
    assert set(dep["model_id"]) <= models
    assert set(dep["chip_id"]) <= chips


# --- the quote check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text", "shown"),
    [
        (989.0, "989 TFLOPS", True),
        (2.039, "Memory bandwidth (byte/s)=2039000000000.0", True),
        (0.8, "0.0008元/千tokens", True),
        (87072.0, "the total daily cost amounts to $87,072.", True),
        (7.2, "7.25", False),
        (0.464, "46.4%", False),
        (0.0, "免费", True),
    ],
)
def test_number_shown(value: float, text: str, shown: bool) -> None:
    assert number_shown(value, text) is shown


# --- mutation tests: a corrupted copy must be refused, naming file, line, column and value ------


def _corrupt(tmp_path: Path, table: str, edit: Callable[[list[dict[str, str]]], None]) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(DATA / "schema.yaml", folder / "schema.yaml")
    if (DATA / "sources").is_dir():
        shutil.copytree(DATA / "sources", folder / "sources")
    with open(DATA / f"{table}.csv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    edit(rows)
    with open(folder / f"{table}.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def _set(row: int, column: str, value: str) -> Callable[[list[dict[str, str]]], None]:
    def edit(rows: list[dict[str, str]]) -> None:
        rows[row][column] = value

    return edit


MUTATIONS = [
    # (table, edit, line, column, text that must appear)
    ("prices", _set(2, "source_url", ""), 4, "source_url", "missing"),
    ("prices", _set(5, "quote", ""), 7, "quote", "missing"),
    ("prices", _set(3, "effective_date", "2024-13-45"), 5, "effective_date", "2024-13-45"),
    ("prices", _set(4, "input_price", "-1.5"), 6, "input_price", "-1.5"),
    ("prices", _set(6, "currency", "EUR"), 8, "currency", "EUR"),
    ("prices", _set(7, "unit", "per_token"), 9, "unit", "per_token"),
    ("prices", _set(8, "output_price", "nan"), 10, "output_price", "nan"),
    ("prices", _set(9, "output_price", "123456.789"), 11, "output_price", "123456.789"),
    ("chips", _set(1, "id", "a100-sxm"), 3, "id", "duplicate"),
    ("chips", _set(0, "kind", "estimate"), 2, "method", "method"),
    ("fx", _set(0, "month", "May 2024"), 2, "month", "May 2024"),
    ("places", _set(0, "place", "atlantis"), 2, "place", "atlantis"),
    ("deployments", _set(0, "metric", "static_batch_end_to_end"), 2, "input_tokens", "required cell is empty when metric"),
    ("deployments", _set(0, "kv_reads", "sometimes"), 2, "kv_reads", "sometimes"),
]


@pytest.mark.parametrize(("table", "edit", "line", "column", "needle"), MUTATIONS)
def test_loader_refuses_bad_rows(
    tmp_path: Path, table: str, edit: Callable[[list[dict[str, str]]], None], line: int, column: str, needle: str
) -> None:
    folder = _corrupt(tmp_path, table, edit)
    with pytest.raises(DataValidationError) as err:
        data.load(table, root=folder)
    message = str(err.value)
    assert f"{table}.csv:{line}: {column}" in message, message
    assert needle in message, message


def test_loader_refuses_missing_column(tmp_path: Path) -> None:
    def drop(rows: list[dict[str, str]]) -> None:
        for r in rows:
            r.pop("accessed")

    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(DATA / "schema.yaml", folder / "schema.yaml")
    df = pd.read_csv(DATA / "fx.csv", dtype=str, keep_default_na=False).drop(columns=["accessed"])
    df.to_csv(folder / "fx.csv", index=False)
    with pytest.raises(DataValidationError, match=r"fx.csv:1: header: missing columns \['accessed'\]"):
        data.load("fx", root=folder)


def test_a_bad_file_leaves_nothing_loaded(tmp_path: Path) -> None:
    folder = _corrupt(tmp_path, "fx", _set(0, "cny_per_usd", "-7"))
    with pytest.raises(DataValidationError):
        data.load("fx", root=folder)
    # the good copy still loads and is unaffected
    assert (tokenlib.load("fx")["cny_per_usd"] > 0).all()


def test_fx_row_is_the_rate_the_conversions_use() -> None:
    from tokenlib.data import fx
    latest = fx.row()
    assert (float(latest["cny_per_usd"]), str(latest["month"])) == fx.cny_per_usd()
    assert str(fx.row("2025-02")["month"]) == "2025-02" and latest["source_url"]
    with pytest.raises(ValueError, match="1999-01"):
        fx.row("1999-01")


def test_check_refuses_a_file_without_its_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """One file cannot be validated as every table: the check asks which, naming the choices."""
    from tokenlib import data as tdata

    path = tmp_path / "prices_draft.csv"
    path.write_text("provider\n", encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        tdata.main(["check", "--file", str(path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--table" in err and str(path) in err and "'prices'" in err
