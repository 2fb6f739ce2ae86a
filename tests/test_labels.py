"""Every id a chapter shows has a reader-facing label in data/labels.csv (so a new chip, provider or place is
a data change: its row, and its label row; this test names what is missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import copy_data
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
    folder = copy_data(tmp_path)
    with open(folder / "labels.csv", "a", encoding="utf-8") as f:
        f.write("chip,new-chip,,,New Chip,editorial,,,,,,,\n")
    assert labels.short_names("chip", folder)["new-chip"] == "New Chip"
    with open(folder / "labels.csv", "a", encoding="utf-8") as f:  # a sourced name needs its source
        f.write("place,nowhere,Nowhere,,,sourced,,,,,,,\n")
    with pytest.raises(tokenlib.DataValidationError, match="source_url"):
        labels.names("place", folder)


def test_a_sourced_label_is_written_in_its_quote(tmp_path: Path) -> None:
    """A sourced label passes the quote check like a number: its quote writes the name (company and bracketed
    brand each; a place's Chinese name stands for its romanisation), an editorial one needs no quote."""
    from tokenlib.data.loader import name_parts

    assert name_parts("ByteDance (Doubao)") == ["ByteDance", "Doubao"]
    assert name_parts("Moore Threads S4000") == ["Moore Threads S4000"]
    folder = copy_data(tmp_path)
    src = "https://github.com/MoonshotAI/Kimi-K2/blob/11062d119a82873f7f786cd2733c57d42ee65b79/README.md"
    good = f'provider,moon2,Moonshot (Kimi),,,sourced,{src},t,"You are Kimi, an AI assistant created by Moonshot AI.",2026-12-01,reported,,\n'
    with open(folder / "labels.csv", "a", encoding="utf-8") as f:
        f.write(good)
        f.write(f'place,nowhere,Nowhere,无处,,sourced,{src},t,无处可去,2026-12-01,reported,,\n')
    assert labels.names("provider", folder)["moon2"] == "Moonshot (Kimi)"
    with open(folder / "labels.csv", "a", encoding="utf-8") as f:
        f.write(f'provider,moon3,Moonshot (Kimi),,,sourced,{src},t,"You are an AI assistant created by Moonshot AI.",2026-12-01,reported,,\n')
        f.write(f'chip,chip3,,,Chip Three,sourced,{src},t,Chip 3 is fast,2026-12-01,reported,,\n')
        f.write(f'place,elsewhere,Elsewhere,别处,,sourced,{src},t,Elsewhere is far,2026-12-01,reported,,\n')
    with pytest.raises(tokenlib.DataValidationError) as err:
        labels.names("provider", folder)
    text = str(err.value)
    assert "name_en: ['Kimi'] not written" in text
    assert "short: ['Chip Three'] not written" in text
    assert "name_zh: ['别处'] not written" in text
    assert "Moonshot" not in text.split("name_en:")[1].split("\n")[0]  # only the missing part is named

