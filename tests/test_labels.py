"""Every id a chapter shows has a reader-facing label in data/labels.csv (so a new chip, provider or place is
a data change: its row, and its label row; this test names what is missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

import tokenlib
from tokenlib.data import labels, table_spec
from tokenlib.data.places import display_name
from tokenlib.errors import UnknownChoiceError


def test_every_chip_provider_and_place_has_a_label() -> None:
    missing = {
        "chip": sorted(set(tokenlib.load("chips")["id"]) - set(labels.short_names("chip"))),
        "provider": sorted(set(tokenlib.load("prices")["provider"]) - set(labels.names("provider"))),
        "place": sorted(set(table_spec("places").column("place").values) - set(labels.names("place"))),
    }
    assert not any(missing.values()), f"ids without a row in data/labels.csv: {missing}"


def test_names_join_english_and_chinese() -> None:
    assert display_name("ulanqab") == "Ulanqab 乌兰察布"
    assert labels.short_names("chip")["h100-sxm"] == "H100"
    with pytest.raises(UnknownChoiceError, match="ulanqab"):
        display_name("ulanqabb")
    with pytest.raises(UnknownChoiceError, match="entity"):
        labels.names("city")


def test_a_label_is_a_data_row(tmp_path: Path) -> None:
    import shutil

    from tokenlib.data import default_data_dir

    folder = tmp_path / "data"
    shutil.copytree(default_data_dir(), folder)
    with open(folder / "labels.csv", "a", encoding="utf-8") as f:
        f.write("chip,new-chip,,,New Chip,editorial,,,,,,,\n")
    assert labels.short_names("chip", folder)["new-chip"] == "New Chip"
    with open(folder / "labels.csv", "a", encoding="utf-8") as f:  # a sourced name needs its source
        f.write("place,nowhere,Nowhere,,,sourced,,,,,,,\n")
    with pytest.raises(tokenlib.DataValidationError, match="source_url"):
        labels.names("place", folder)
